"""The telemetry hooks, and the one way chatstream calls them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ChatStreamError
from .events import ResponseEvent

if TYPE_CHECKING:
    from .response import Response

__all__ = ["StreamStart", "Telemetry", "call_hook"]

log = logging.getLogger("chatstream")

T = TypeVar("T")


@dataclass(frozen=True)
class StreamStart:
    """What :meth:`Telemetry.on_stream_start` is told of a stream that starts.

    Attributes:
        url: Where the request goes, with the values of its query string and any user
            info replaced (never a key). The headers are not given: they carry the key.
        body: The request body (read it, do not change it).
        started_at: When the request was sent, in seconds since the epoch.
        api: The wire: ``"chat"`` (Chat Completions) or ``"responses"`` (the
            Responses API; the body is then a Responses request).
    """

    url: str
    body: Mapping[str, Any]
    started_at: float
    api: str = "chat"


class Telemetry:
    """Hooks called as streams run; subclass it and override what you need.

    One instance serves every stream of a :class:`~chatstream.Client`, on each stream's
    worker thread, several at once. To tell the streams apart, return a value from
    :meth:`on_stream_start` (a span, a dict, a stream number): every later hook of that
    stream is given it as ``context``. The hooks must be quick and must not raise.
    """

    def on_stream_start(self, stream: StreamStart) -> Any:
        """A stream starts (before its first request); returns the ``context`` given to
        the stream's other hooks (``None`` by default)."""
        return None

    def on_request(
        self,
        context: Any,
        attempt: int,
        status: int | None,
        error: ChatStreamError | None,
        duration: float,
    ) -> None:
        """One HTTP attempt ended: its number (1 for the first), the status (``None`` if
        no response arrived), the error if it failed, and how long it took in seconds."""

    def on_retry(self, context: Any, attempt: int, delay: float, error: ChatStreamError) -> None:
        """The request failed with ``error`` before any answer, and will be sent again in
        ``delay`` seconds as request number ``attempt`` (the numbering of
        :meth:`on_request`: 2 for the first retry). Also called, with a delay of 0, when
        the server rejected ``stream_options`` and the request is sent again without it
        (see :ref:`retries`), and before each resume of a Responses stream that dropped
        (``error`` is the drop; see :ref:`resuming-a-stream`)."""

    def on_sse_event(
        self,
        context: Any,
        event: ResponseEvent | None,
        error: ChatStreamError | None,
        elapsed: float,
    ) -> None:
        """An event was produced (``error`` is ``None``), or the stream failed (``event``
        is ``None``); ``elapsed`` is the time since the previous event, in seconds
        (events read together share one reading of the clock: after the first of them,
        ``elapsed`` is 0)."""

    def on_stream_end(
        self, context: Any, response: Response, error: ChatStreamError | None
    ) -> None:
        """The stream ended, whatever the outcome (completed, failed, or closed by the
        caller: ``error`` is then a :class:`~chatstream.StreamClosedError`), with its
        final or partial ``response`` and its :attr:`~chatstream.Response.timing`. Called
        once, before ``on_end`` and before :meth:`ChatStream.result
        <chatstream.ChatStream.result>` returns."""


def call_hook(hook: Callable[..., T], *args: object) -> T | None:
    """Call a telemetry hook and return what it returned. One that raises an
    ``Exception`` is logged (and gives ``None``) and the stream goes on; anything else
    (``SystemExit``, a framework's cancellation) propagates, and the stream ends in a
    :class:`~chatstream.CallbackError` carrying it."""
    try:
        return hook(*args)
    except Exception:
        log.exception("a telemetry hook raised")
        return None

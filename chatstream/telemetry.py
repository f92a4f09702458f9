"""The telemetry hooks, and the one way chatstream calls them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .errors import ChatStreamError
from .events import ResponseEvent

__all__ = ["Telemetry", "call_hook"]

log = logging.getLogger("chatstream")


class Telemetry:
    """Hooks called as streams run; subclass it and override what you need.

    The hooks run on the stream's worker thread and must be quick and must not raise.
    """

    def on_request(
        self, attempt: int, status: int | None, error: ChatStreamError | None, duration: float
    ) -> None:
        """One HTTP attempt ended: its number (1 for the first), the status (``None`` if
        no response arrived), the error if it failed, and how long it took in seconds."""

    def on_retry(self, attempt: int, delay: float, error: ChatStreamError) -> None:
        """The request failed with ``error`` before any answer, and will be sent again in
        ``delay`` seconds as request number ``attempt`` (the numbering of
        :meth:`on_request`: 2 for the first retry). Also called, with a delay of 0, when
        the server rejected ``stream_options`` and the request is sent again without it
        (see :ref:`retries`)."""

    def on_sse_event(
        self, event: ResponseEvent | None, error: ChatStreamError | None, elapsed: float
    ) -> None:
        """An event was produced (``error`` is ``None``), or the stream failed (``event``
        is ``None``); ``elapsed`` is the time since the previous event, in seconds."""


def call_hook(hook: Callable[..., object], *args: object) -> None:
    """Call a telemetry hook. One that raises an ``Exception`` is logged and the stream
    goes on; anything else (``SystemExit``, a framework's cancellation) propagates, and
    the stream ends in a :class:`~chatstream.CallbackError` carrying it."""
    try:
        hook(*args)
    except Exception:
        log.exception("a telemetry hook raised")

"""Showing streams on the command line, one of three ways: rendered for a person, one
JSON object per event (``--json``), or one result object per response (``--result``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Literal, TextIO

from .errors import ChatStreamError
from .events import RateLimits, ResponseEvent
from .render import Renderer
from .response import Response

__all__ = ["Mode", "Presenter"]

#: How streams are shown: ``text`` for a person, ``json`` (one object per event) or
#: ``result`` (one object per response).
Mode = Literal["text", "json", "result"]


class Presenter:
    """Shows each stream of a session the same way.

    Args:
        out: Where the output goes (standard output).
        err: Where error lines go in ``text`` mode (standard error).
        mode: See :data:`Mode`.
        show_reasoning: Show reasoning text in ``text`` mode.
        timed: End each stream with time to first token and tokens per second (live
            streams; a replayed file has no timing worth showing).
        hint: Advice appended to an error line in ``text`` mode, or ``None``.
    """

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        mode: Mode = "text",
        show_reasoning: bool = True,
        timed: bool = False,
        hint: Callable[[ChatStreamError], str | None] | None = None,
    ) -> None:
        self.out = out
        self.err = err
        self.mode = mode
        self.timed = timed
        self.hint = hint
        #: The terminal renderer, in ``text`` mode only.
        self.renderer = Renderer(out, show_reasoning=show_reasoning) if mode == "text" else None

    def show(
        self,
        events: Iterable[ResponseEvent],
        response: Callable[[], Response],
        *,
        started: float | None = None,
    ) -> ChatStreamError | None:
        """Consume ``events`` and show them; return the error the stream ended in.

        Args:
            events: The stream's events (iterating may raise its error).
            response: Gives the final or partial response once the events are consumed.
            started: When the request was sent (``time.monotonic()``), for the timing.
        """
        out, renderer = self.out, self.renderer
        started = time.monotonic() if started is None else started
        first: float | None = None
        error: ChatStreamError | None = None
        try:
            for event in events:
                if first is None and not isinstance(event, RateLimits):
                    first = time.monotonic() - started
                if renderer is not None:
                    renderer.event(event)
                elif self.mode == "json":
                    out.write(event.to_json() + "\n")
                out.flush()
        except ChatStreamError as exc:
            error = exc
        elapsed = time.monotonic() - started
        result = response()
        if self.mode == "result":
            out.write(json.dumps(result.to_result_dict(), ensure_ascii=False) + "\n")
        elif self.mode == "json" and error is not None:
            line = {"type": "error", "kind": error.kind, "message": error.message}
            out.write(json.dumps(line) + "\n")
        elif renderer is not None:
            if not self.timed:
                renderer.summary(result.usage)
            elif first is not None:
                renderer.summary(result.usage, elapsed=elapsed, first_token=first)
            if error is not None:
                hint = self.hint(error) if self.hint is not None else None
                renderer.error(error, self.err, hint=hint)
                self.err.flush()
        out.flush()
        return error

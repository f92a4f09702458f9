"""Showing streams on the command line, one of three ways: rendered for a person, one
JSON object per event (``--json``), or one result object per response (``--result``).

Standard output carries the answer (or the JSON) only; notes, statistics and errors go to
standard error, so ``chatstream chat "hi" > answer.txt`` captures the answer alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Literal, TextIO

from ..errors import ChatStreamError
from ..events import (
    OutputTextDelta,
    RateLimits,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
)
from ..response import Response
from .render import Renderer

__all__ = ["CUT_SHORT", "Mode", "Presenter", "token_rate"]

#: How streams are shown: ``text`` for a person, ``json`` (one object per event) or
#: ``result`` (one object per response).
Mode = Literal["text", "json", "result"]

#: The note for an answer the server cut short, by finish reason.
CUT_SHORT = {
    "length": "cut short: max tokens (raise --max-tokens for more)",
    "content_filter": "cut short: the provider's content filter",
}

# A rate needs a measured duration: the deltas of a reply that came whole (a server that
# ignored "stream": true, a replayed file) arrive within microseconds of each other, and
# dividing by that gave "45621.8 tok/s". Below this span, no rate is shown.
_MIN_RATE_SPAN = 0.1


def token_rate(output_tokens: int, span: float, deltas: int) -> float | None:
    """Tokens per second over ``span`` seconds of ``deltas`` streamed pieces, or ``None``
    when the duration was not measured (fewer than two pieces, or too short a span).

    >>> token_rate(50, 2.0, 48)
    25.0
    >>> token_rate(50, 0.00002, 3) is None
    True
    """
    if deltas < 2 or span < _MIN_RATE_SPAN or output_tokens <= 0:
        return None
    return output_tokens / span


class Presenter:
    """Shows each stream of a session the same way.

    Args:
        out: Where the answer goes (standard output).
        err: Where notes, statistics and errors go (standard error).
        mode: See :data:`Mode`.
        show_reasoning: Show reasoning text in ``text`` mode.
        timed: End each stream with time to first token and tokens per second (live
            streams; a replayed file has no timing worth showing).
        describe: The line shown for an error (its message, by default).
    """

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        mode: Mode = "text",
        show_reasoning: bool = True,
        timed: bool = False,
        describe: Callable[[ChatStreamError], str] | None = None,
    ) -> None:
        self.out = out
        self.err = err
        self.mode = mode
        self.timed = timed
        self.describe = describe or (lambda error: error.message)
        #: The renderer of ``text`` mode; in the other modes it shows notes and errors
        #: only (on standard error).
        self.renderer = Renderer(out if mode == "text" else err, err, show_reasoning=show_reasoning)

    def note(self, text: str) -> None:
        """A note on standard error."""
        self.renderer.note(text)

    def error(self, error: ChatStreamError) -> None:
        """The line for ``error``, on standard error."""
        self.renderer.error(self.describe(error))

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
        last = 0.0
        deltas = 0
        error: ChatStreamError | None = None
        try:
            for event in events:
                now = time.monotonic()
                if first is None and not isinstance(event, RateLimits):
                    first = now
                if isinstance(event, (OutputTextDelta, ReasoningContentDelta, RefusalDelta)):
                    deltas += 1
                    last = now
                if self.mode == "text":
                    renderer.event(event)
                elif self.mode == "json":
                    out.write(event.to_json() + "\n")
                out.flush()
        except ChatStreamError as exc:
            error = exc
        result = response()
        if self.mode == "result":
            out.write(json.dumps(result.to_result_dict(), ensure_ascii=False) + "\n")
        elif self.mode == "json" and error is not None:
            line = {"type": "error", "kind": error.kind, "message": error.message}
            out.write(json.dumps(line) + "\n")
        out.flush()
        if self.mode == "text":
            if not self.timed:
                renderer.summary(result.usage)
            elif first is not None:
                usage = result.usage
                rate = None
                if usage is not None:
                    rate = token_rate(usage.output_tokens, last - first, deltas)
                renderer.summary(usage, first_token=first - started, rate=rate)
        if error is None and result.truncated:
            reason = result.finish_reason or ""
            self.note("· " + CUT_SHORT.get(reason, f"cut short ({reason})"))
        if error is not None:
            self.error(error)
        renderer.flush()
        return error

"""Showing streams on the command line, one of three ways: rendered for a person, one
JSON object per event (``--json``), or one result object per response (``--result``).

Standard output carries the answer (or the JSON) only; notes, statistics and errors go to
standard error, so ``chatstream chat "hi" > answer.txt`` captures the answer alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Literal, TextIO

from ..errors import ChatStreamError
from ..events import (
    ResponseEvent,
)
from ..response import Response
from .render import Renderer

__all__ = ["CUT_SHORT", "Mode", "Presenter"]

#: How streams are shown: ``text`` for a person, ``json`` (one object per event) or
#: ``result`` (one object per response).
Mode = Literal["text", "json", "result"]

#: The note for an answer the server cut short, by finish reason.
CUT_SHORT = {
    "length": "cut short: max tokens (raise --max-tokens for more)",
    "content_filter": "cut short: the provider's content filter",
}


class Presenter:
    """Shows each stream of a session the same way.

    Args:
        out: Where the answer goes (standard output).
        err: Where notes, statistics and errors go (standard error).
        mode: See :data:`Mode`.
        show_reasoning: Show reasoning text in ``text`` mode.
        timed: End each stream with time to first token and tokens per second, from its
            :attr:`~chatstream.Response.timing` (live streams; a replayed file has no
            timing worth showing).
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
    ) -> ChatStreamError | None:
        """Consume ``events`` and show them; return the error the stream ended in.

        Args:
            events: The stream's events (iterating may raise its error).
            response: Gives the final or partial response once the events are consumed.
        """
        out, renderer = self.out, self.renderer
        error: ChatStreamError | None = None
        try:
            for event in events:
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
            timing = result.timing
            if not self.timed or timing is None or timing.time_to_first_content is None:
                renderer.summary(result.usage)
            else:
                renderer.summary(
                    result.usage,
                    first_token=timing.time_to_first_content,
                    rate=timing.output_tokens_per_second,
                )
        if error is None and result.truncated:
            reason = result.finish_reason or ""
            self.note("· " + CUT_SHORT.get(reason, f"cut short ({reason})"))
        if error is not None:
            self.error(error)
        renderer.flush()
        return error

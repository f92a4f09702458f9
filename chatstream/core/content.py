"""The content options in one place: think tags, then tool calls written as text.

The accumulator hands each content delta of a choice to its :class:`ContentFilter` and
sends on what comes out: text, reasoning, and recovered calls, in order. Thinking is
split off first, so a ``<tool_call>`` written while thinking stays reasoning.
"""

from __future__ import annotations

from ..config import ThinkTags
from .textcalls import TextCall, TextCallSplitter
from .think import ThinkSplitter

__all__ = ["ContentFilter", "Piece"]

#: ("text", s), ("reasoning", s), or a recovered call.
Piece = tuple[str, str] | TextCall


class ContentFilter:
    """One choice's content through the enabled splitters (sans-I/O)."""

    def __init__(self, *, think: ThinkTags | None, calls: bool, bare_calls: bool) -> None:
        self._think = ThinkSplitter(think) if think is not None else None
        self._calls = TextCallSplitter(bare=bare_calls) if calls else None

    def feed(self, text: str) -> list[Piece]:
        """The pieces a content delta completes."""
        if self._think is None:
            return self._text(text)
        out: list[Piece] = []
        for reasoning, piece in self._think.feed(text):
            if reasoning:
                out.append(("reasoning", piece))
            else:
                out += self._text(piece)
        return out

    def flush(self) -> list[Piece]:
        """The choice's content ended: what was held back."""
        out: list[Piece] = []
        if self._think is not None:
            for reasoning, piece in self._think.flush():
                if reasoning:
                    out.append(("reasoning", piece))
                else:
                    out += self._text(piece)
        if self._calls is not None:
            out += [p if isinstance(p, TextCall) else ("text", p) for p in self._calls.flush()]
        return out

    def _text(self, text: str) -> list[Piece]:
        if self._calls is None:
            return [("text", text)]
        return [p if isinstance(p, TextCall) else ("text", p) for p in self._calls.feed(text)]

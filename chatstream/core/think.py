"""Reasoning written into the content between ``<think>`` tags, moved to reasoning.

Some servers (llama.cpp without a reasoning parser, many proxies) pass a model's
thinking through as text: ``<think>is the sky blue</think>Yes.``. With
``StreamOptions(think_tags=True)`` (or a :class:`~chatstream.ThinkTags`), chatstream
sends what is between the tags as reasoning and the rest as text. Tags may be cut
anywhere between two deltas (``<th`` then ``ink>``): text that could be the start of a
tag is held back until the next delta says whether it is one::

    >>> from chatstream import ThinkTags
    >>> from chatstream.core.think import ThinkSplitter
    >>> splitter = ThinkSplitter(ThinkTags())
    >>> splitter.feed("<th") + splitter.feed("ink>is it blue</thi") + splitter.feed("nk>\\nYes.")
    [(True, 'is it blue'), (False, 'Yes.')]

Some chat templates end the prompt with ``<think>``, so the answer starts inside the
thinking and only ``</think>`` appears: ``ThinkTags(starts_inside=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..config import ThinkTags

__all__ = ["ThinkSplitter"]


#: A piece of the content: (is it reasoning, its text).
Piece = tuple[bool, str]


def _held(data: str, tags: Sequence[str], longest: int) -> int:
    """The length of the longest end of ``data`` that is the start of one of ``tags``
    (and not a whole tag): those characters may be a tag cut by the delta's end."""
    tail = data[-(longest - 1) :] if longest > 1 else ""
    start = tail.find("<")
    while start != -1:
        end = tail[start:]
        if any(tag.startswith(end) for tag in tags):
            return len(end)
        start = tail.find("<", start + 1)
    return 0


class ThinkSplitter:
    """Splits content deltas into text and reasoning at think tags (sans-I/O).

    :meth:`feed` each delta of one choice's content in order and :meth:`flush` at the end;
    each returns ``(is_reasoning, text)`` pieces. The pieces do not depend on how the
    content was cut into deltas. Whitespace right after a tag is dropped (templates put a
    line break there).
    """

    def __init__(self, tags: ThinkTags) -> None:
        self.tags = tags
        self._openers = tuple(f"<{name}>" for name in tags.names)
        self._closers_of = {f"<{name}>": (f"</{name}>",) for name in tags.names}
        every_closer = tuple(f"</{name}>" for name in tags.names)
        self._longest = max(len(t) for t in self._openers + every_closer)
        # "start" (only whitespace so far: a block may open), "inside" a block, or
        # "after" (the answer: every tag from here on is text).
        self._state = "start"
        #: The closing tags that end the current block; empty outside a block.
        self._closers: tuple[str, ...] = ()
        self._close_re: re.Pattern[str] | None = None
        self._pending = ""
        self._skip_space = False
        if tags.starts_inside:
            self._enter(every_closer)
            self._skip_space = False

    @staticmethod
    def _pattern(tags: tuple[str, ...]) -> re.Pattern[str] | None:
        return re.compile("|".join(re.escape(t) for t in tags)) if tags else None

    @property
    def inside(self) -> bool:
        """True while the content is inside a think block."""
        return bool(self._closers)

    def feed(self, text: str) -> list[Piece]:
        """The pieces ``text`` completes (some of it may be held back)."""
        data = self._pending + text
        self._pending = ""
        if self._skip_space:
            stripped = data.lstrip()
            if not stripped:
                return []
            data = stripped
            self._skip_space = False
        if self._state == "start":
            # A block opens only here: at the start of the content, after whitespace
            # (which goes with the tag).
            stripped = data.lstrip()
            for opener in self._openers:
                if stripped.startswith(opener):
                    self._enter(self._closers_of[opener])
                    return self.feed(stripped[len(opener) :])
            if any(opener.startswith(stripped) for opener in self._openers):
                self._pending = data  # whitespace, or the start of an opening tag
                return []
            self._state = "after"
        if self._state == "after":
            return [(False, data)] if data else []
        assert self._close_re is not None
        found = self._close_re.search(data)
        out: list[Piece] = []
        if found is None:
            keep = _held(data, self._closers, self._longest)
            if keep:
                self._pending = data[-keep:]
                data = data[:-keep]
            if data:
                out.append((True, data))
            return out
        if found.start():
            out.append((True, data[: found.start()]))
        # The block ended: what follows is the answer, tags and all.
        self._state = "after"
        self._closers = ()
        self._close_re = None
        self._skip_space = True
        return out + self.feed(data[found.end() :])

    def _enter(self, closers: tuple[str, ...]) -> None:
        self._state = "inside"
        self._closers = closers
        self._close_re = self._pattern(closers)
        self._skip_space = True

    def flush(self) -> list[Piece]:
        """The content ended: what was held back (an unfinished tag is text)."""
        held, self._pending = self._pending, ""
        return [(self.inside, held)] if held else []

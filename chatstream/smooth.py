"""Smooth text for people: text deltas re-chunked by word or by line, at a steady pace.

Providers send text in uneven bursts (a whole sentence, then three letters). A person
reads it better a word at a time; a terminal or a browser redraws less with whole
lines. :class:`Smoother` re-chunks text (sans-I/O); :func:`smooth` does it to the text
deltas of a stream of events, optionally with a pause between pieces::

    >>> from chatstream.smooth import Smoother
    >>> smoother = Smoother("word")
    >>> smoother.feed("Hel") + smoother.feed("lo wor") + smoother.feed("ld") + smoother.flush()
    ['Hello ', 'world']

Joined, the pieces are exactly the text that went in. Off by default everywhere; the
Tk, notebook and relay recipes take it as an option.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from .events import OutputTextDelta, ResponseEvent

__all__ = ["Chunking", "Smoother", "smooth"]

#: How text is re-chunked: ``word`` (a word and the whitespace after it) or ``line``
#: (up to and including a line break).
Chunking = Literal["word", "line"]

# A word is sent with the whitespace after it, once the next word has started (so a run
# of spaces cut between two deltas is still one piece).
_PIECES = {"word": re.compile(r"\S*\s+(?=\S)"), "line": re.compile(r"[^\n]*\n")}


class Smoother:
    """Re-chunks text into words or lines (sans-I/O).

    :meth:`feed` returns the whole pieces the text completes and holds the rest back;
    :meth:`flush` returns what is held (at the end of the text, or before anything else
    must be shown).
    """

    def __init__(self, by: Chunking = "word") -> None:
        if by not in _PIECES:
            raise ValueError(f"by must be 'word' or 'line', not {by!r}")
        self.by = by
        self._pattern = _PIECES[by]
        self._held = ""

    def feed(self, text: str) -> list[str]:
        """The whole pieces that ``text`` completes."""
        data = self._held + text
        pieces: list[str] = []
        end = 0
        for match in self._pattern.finditer(data):
            if match.start() != end:
                break
            pieces.append(match.group())
            end = match.end()
        self._held = data[end:]
        return pieces

    def flush(self) -> list[str]:
        """What is held back, as one piece (or nothing)."""
        held, self._held = self._held, ""
        return [held] if held else []


def smooth(
    events: Iterable[ResponseEvent],
    *,
    by: Chunking = "word",
    delay: float = 0.0,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[ResponseEvent]:
    """``events`` with their text deltas re-chunked by word or line.

    Every other event passes through unchanged, after the text held back (so an item's
    deltas still come before its ``OutputItemDone``). Each choice is smoothed apart.
    When ``events`` raises (the stream failed), the text held back is given first, then
    the error is raised: nothing that arrived is lost.

    Args:
        events: A stream's events (a :class:`~chatstream.ChatStream`, say).
        by: See :data:`Chunking`.
        delay: Seconds to wait before each text piece after the first of a burst: a
            steady pace for a person to read (0, the default, waits never).
        sleep: How to wait (tests pass a fake).
    """
    smoothers: dict[int, Smoother] = {}

    def held() -> Iterator[ResponseEvent]:
        for index, smoother in smoothers.items():
            for piece in smoother.flush():
                yield OutputTextDelta(piece, index)

    iterator = iter(events)
    while True:
        try:
            event = next(iterator)
        except StopIteration:
            break
        except Exception:
            # The stream failed: what was held back arrived, so it is shown before the
            # error (the display then ends as the error's partial response does).
            yield from held()
            raise
        if isinstance(event, OutputTextDelta):
            smoother = smoothers.get(event.choice_index)
            if smoother is None:
                smoother = smoothers[event.choice_index] = Smoother(by)
            for i, piece in enumerate(smoother.feed(event.delta)):
                if delay and i:
                    sleep(delay)
                yield OutputTextDelta(piece, event.choice_index)
        else:
            yield from held()
            yield event
    yield from held()

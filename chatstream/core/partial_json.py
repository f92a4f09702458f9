"""Views of JSON text that is still arriving: tool-call arguments, JSON content.

:class:`PartialJson` holds the text received so far and, as it grows, the value it
parses to so far (an object whose keys and strings only grow)::

    >>> from chatstream.core.partial_json import PartialJson
    >>> view = PartialJson()
    >>> for piece in ['{"path": "no', 'tes.md", "lines": [1', ', 2]', '}']:
    ...     _ = view.append(piece)
    ...     print(view.value)
    {'path': 'no'}
    {'path': 'notes.md', 'lines': []}
    {'path': 'notes.md', 'lines': [1, 2]}
    {'path': 'notes.md', 'lines': [1, 2]}

A view is for showing progress and is never the final value: the text may stop anywhere,
a number is left out until something follows it (``12`` may become ``123``), and an
unfinished ``true`` is left out. The final value is the whole text, parsed strictly
(``json.loads``) once the item is finished.

Why it stays linear
-------------------
Parsing the whole text again at every piece (what openai-python's ``.stream()`` helper
does) costs time quadratic in its size: about 35 s for a 10 MB tool call. A view is
refreshed on every piece only while the text is short (under 4 KiB); after that, only
once it has grown by a quarter since the last parse, so the text is parsed about five
times its length in all, whatever the number of pieces, and the value in between is the
last one parsed (never more than a fifth behind). Parsing is jiter's partial mode, the
parser of pydantic and openai-python, which reads about 300 MB/s here; a hand-written
incremental parser in Python would walk every character and be slower (see
``docs/performance.rst``).
"""

from __future__ import annotations

from typing import Any

import jiter

__all__ = ["PartialJson", "parse_partial"]

# Below this many characters, every piece refreshes the view (cheap, and short
# arguments are the ones a person watches).
_FRESH = 4096
# Beyond it, a refresh once the text has grown by this fraction (1/4): about five times
# the text is parsed in all.
_GROWTH_SHIFT = 2

_NUMBER = frozenset("0123456789+-.eE")
_SPACE = frozenset(" \t\r\n")


def _complete_prefix(text: str) -> str:
    """``text`` less a number at its very end, which may still grow (``12`` → ``123``).

    A run of number characters counts as a number when what precedes it (spaces aside)
    starts a value: ``:``, ``,``, ``[`` or nothing. Inside a string that is a guess
    that errs by leaving a few characters out until the next refresh.
    """
    end = len(text)
    i = end
    while i and text[i - 1] in _NUMBER:
        i -= 1
    if i == end:
        return text
    j = i
    while j and text[j - 1] in _SPACE:
        j -= 1
    if not j or text[j - 1] in ":,[":
        return text[:i]
    return text


_MISSING: Any = object()


def parse_partial(text: str) -> Any:
    """The value of the JSON ``text`` so far, or ``None`` when none can be read yet.

    Unfinished strings count as far as they go; unfinished keys, numbers and literals
    are left out.
    """
    value = _parse(text)
    return None if value is _MISSING else value


def _parse(text: str) -> Any:
    text = _complete_prefix(text)
    if not text.strip():
        return _MISSING
    try:
        return jiter.from_json(text.encode(), partial_mode="trailing-strings")
    except ValueError:
        return _MISSING  # not JSON (yet, or at all): keep the last view


class PartialJson:
    """JSON text as it arrives, with the value parsed so far in :attr:`value`.

    Refreshing is geometric (see the module's notes), so appending N characters in any
    number of pieces costs time linear in N.
    """

    __slots__ = ("_next", "_pieces", "_size", "value")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._size = 0
        self._next = 0
        #: The value parsed so far (``None`` until something could be parsed). Shared
        #: between the events that carry it until the next refresh: do not modify it.
        self.value: Any = None

    @property
    def text(self) -> str:
        """All the text received."""
        return "".join(self._pieces)

    def append(self, piece: str) -> bool:
        """Add ``piece``; return whether :attr:`value` was refreshed."""
        if not piece:
            return False
        self._pieces.append(piece)
        self._size += len(piece)
        if self._size < self._next:
            return False
        text = "".join(self._pieces)
        self._pieces = [text]  # joined once here, not again at the next refresh
        size = self._size
        self._next = size + 1 if size < _FRESH else size + (size >> _GROWTH_SHIFT)
        value = _parse(text)
        if value is _MISSING:
            return False
        self.value = value
        return True

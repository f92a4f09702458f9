"""Server-Sent Events: bytes in, SSE messages out. No I/O of its own.

One field grammar, :func:`_parse_lines` (``data:``, ``event:``, comments, the one
optional space after the colon, multi-line data), with a shorter path for the usual
event, a single ``data:`` line, under the same rules: its data is the rest of the line
less one leading space (half the decoder's cost per event; see ``docs/performance.rst``).
The rules are sseclient-py 1.9's, and sseclient-py is their oracle: the tests check,
through its public API (``SSEClient(source).events()``), that both paths give what it
gives (``tests/core/test_sse.py``). chatstream does not use it at run time, because
sseclient-py fed raw network pieces has failures measured on real streams
(``shared/research/reliability.md`` §1):

* its event buffer grows by copying, so one large event fed in small pieces costs
  quadratic time (8 MiB in 128-byte pieces took 113 s);
* a UTF-8 byte order mark hides the first event;
* a ``\\n`` line followed by a ``\\r\\n`` blank line (or ``\\r`` then ``\\r\\n``) is not
  seen as the end of an event, so two events merge;
* one invalid UTF-8 byte raises inside its generator and ends the stream;
* its field parser joins ``data:`` lines with ``+=`` on the event's string, so one event
  of many short ``data:`` lines costs quadratic time (2 MiB of ``data: x`` lines: 1.6 s,
  four times more per doubling).

:class:`SSEDecoder` therefore frames events itself (linear in the input, any mix of
CR, LF and CRLF, split anywhere, a size limit), strips the BOM and repairs invalid UTF-8
(U+FFFD, as the WHATWG decoder does) before the fields of each whole event are parsed,
in time linear in its lines. The whole lines of a large event are parsed as they arrive
(beyond :data:`PARSE_AHEAD` bytes), so that each piece fed costs time in proportion to
its size, never to the event's: a process that reads many streams parses a piece of
each in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Limits
from ..errors import EventTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "PARSE_AHEAD", "SSEDecoder", "SSEMessage"]

#: Default limit on the size of one SSE event (16 MiB, :attr:`Limits.max_event_bytes
#: <chatstream.Limits.max_event_bytes>`): far above any real chunk, low enough that a
#: hostile or broken server cannot exhaust memory.
DEFAULT_MAX_EVENT_BYTES: int = Limits.max_event_bytes

#: An unfinished event holding more than this many bytes not yet parsed has its whole
#: lines parsed at once (see the module documentation).
PARSE_AHEAD = 4096

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched SSE event: its ``event:`` type (``"message"`` by default) and data."""

    event: str
    data: str


class _Fields:
    """The fields of an event read so far, its lines parsed by :func:`_read_fields`."""

    __slots__ = ("data", "event", "size")

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []
        self.size = 0  # the bytes parsed (as received)

    def message(self) -> SSEMessage | None:
        """The event they make, if it is dispatched (it has data)."""
        if not self.data:
            return None
        return SSEMessage(self.event or "message", "\n".join(self.data))


def _parse_lines(block: bytes) -> SSEMessage | None:
    """The fields of one event, by sseclient-py 1.9's rules (``SSEClient.events``), with
    the ``data:`` lines collected in a list and joined once, so that the cost is linear
    in the number of lines. ``block`` is valid UTF-8 whose lines end in LF.

    The rules: blank and whitespace-only lines and ``:`` comments are skipped; the field
    name is the text before the first ``:`` and the value what follows, less one leading
    space (no ``:`` at all: an empty value); only ``id``, ``event``, ``data`` and ``retry``
    count; ``data`` values are joined with LF; an event without a ``data`` line is not
    dispatched; the last ``event:`` wins, and an empty one means ``"message"``.
    """
    fields = _Fields()
    _read_fields(block, fields)
    return fields.message()


def _read_fields(block: bytes, fields: _Fields) -> None:
    """Add the fields of ``block`` (whole lines, as for :func:`_parse_lines`) to
    ``fields``."""
    event = fields.event
    data = fields.data
    for raw in block.splitlines():
        line = raw.decode("utf-8")
        if not line.strip() or line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if not colon:
            value = ""
        elif value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    fields.event = event


class SSEDecoder:
    """Turns a byte stream into :class:`SSEMessage` objects, fed piece by piece.

    Gives the same messages however the bytes are split (inside a multi-byte character,
    between ``\\r`` and ``\\n``, one byte at a time). Comment lines (keep-alives such as
    ``: ping``) produce nothing.

    Args:
        max_event_bytes: Largest allowed event, in bytes; a larger one raises
            :class:`~chatstream.EventTooLargeError` as soon as it is seen.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        # The unfinished event: its pieces, joined once it is complete, so that a large
        # event arriving in many pieces costs linear time.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_ends_lf = False
        # The fields of the unfinished event's lines parsed ahead, or None; then
        # _pending is never empty (it may hold b""), and _pending_size counts them too.
        self._fields: _Fields | None = None
        # The events completed in this feed whose lines were parsed ahead (one at most).
        self._done: list[SSEMessage] = []
        # The last byte fed was CR: an LF first in the next piece completes that CRLF.
        self._after_cr = False
        # Bytes held until we know whether the stream starts with a BOM.
        self._head: bytes | None = b""

    def feed(self, data: bytes) -> list[SSEMessage]:
        """Add bytes; return the messages they complete.

        Raises:
            EventTooLargeError: An event is larger than ``max_event_bytes``.
        """
        if not data:
            # Nothing to add, and it must not reset the CR state below: a CR at the end
            # of the last piece still pairs with an LF at the start of the next.
            return []
        if self._head is not None:
            data = self._head + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._head = data
                return []
            self._head = None
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if self._after_cr:
            self._after_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if not data:
            return []
        if b"\r" in data:
            # SSE lines end in CR, LF or CRLF, in any mix: make them all LF so that a
            # blank line is always b"\n\n".
            self._after_cr = data[-1:] == b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._pending and data.endswith(b"\n\n") and data.count(b"\n") == 2:
            # The usual piece (servers write each event at once, in its own HTTP chunk):
            # one whole event of one line, with nothing pending before or after it.
            blocks = self._checked([data[:-2]], len(data))
        else:
            blocks = self._frame(data)
            if self._done:
                done, self._done = self._done, []
                return done + self._messages(blocks) if blocks else done
        return self._messages(blocks) if blocks else []

    def close(self) -> list[SSEMessage]:
        """End of input: return the last event if it lacked its closing blank line."""
        tail: list[bytes] = []
        if self._head:
            tail.append(self._head)
        self._head = None
        tail.extend(self._pending)
        self._pending = []
        self._pending_size = 0
        block = b"".join(tail)
        if self._fields is not None:
            message = self._finish(block)
            return [] if message is None else [message]
        if not block.strip():
            return []
        return self._messages([block])

    def _messages(self, blocks: list[bytes]) -> list[SSEMessage]:
        """The messages of whole event blocks, in order."""
        messages: list[SSEMessage] = []
        for block in blocks:
            if block.startswith(b"data:") and b"\n" not in block:
                # Nearly every event is one data line: sseclient-py's rules (see
                # _parse_lines) make its value the rest of the line less one leading
                # space. Decoding with "replace" is _repair() and a strict decode.
                value = block[6:] if block[5:6] == b" " else block[5:]
                messages.append(SSEMessage("message", value.decode("utf-8", "replace")))
            else:
                message = _parse_lines(self._repair(block))
                if message is not None:
                    messages.append(message)
        return messages

    def _frame(self, data: bytes) -> list[bytes]:
        """Split off the whole event blocks (blank ones dropped); keep the rest."""
        self._done.clear()  # (left over if the last feed raised)
        # No block is longer than what was pending plus this piece.
        longest = self._pending_size + len(data)
        blocks: list[bytes] = []
        pending = self._pending
        if self._pending_ends_lf and data[:1] == b"\n":
            # The blank line straddles two pieces.
            blocks.append(self._complete(b""))
            data = data[1:]
        pieces = data.split(b"\n\n")
        last = pieces.pop()
        for piece in pieces:
            if pending:
                piece = self._complete(piece)
            blocks.append(piece)
        if last:
            pending.append(last)
            self._pending_size += len(last)
        self._pending_ends_lf = bool(pending) and last[-1:] == b"\n"
        blocks = self._checked(blocks, longest)
        if b"\n" in last and self._pending_size - self._parsed() > PARSE_AHEAD:
            self._parse_ahead()
        return blocks

    def _parsed(self) -> int:
        """How many bytes of the unfinished event were parsed ahead."""
        return 0 if self._fields is None else self._fields.size

    def _complete(self, piece: bytes) -> bytes:
        """The unfinished event, ended by ``piece``: its block, or ``b""`` when its lines
        were parsed ahead (its message is then in ``_done``)."""
        pending = self._pending
        pending.append(piece)
        block = b"".join(pending)
        pending.clear()
        self._pending_size = 0
        if self._fields is None:
            return block
        if self._parsed() + len(block) > self.max_event_bytes:
            self._fields = None
            raise self._too_large()
        message = self._finish(block)
        if message is not None:
            self._done.append(message)
        return b""

    def _finish(self, block: bytes) -> SSEMessage | None:
        """The message of the event whose lines were parsed ahead, ``block`` its rest."""
        fields = self._fields
        assert fields is not None
        self._fields = None
        _read_fields(self._repair(block), fields)
        return fields.message()

    def _parse_ahead(self) -> None:
        """Parse the whole lines of the unfinished event now (see :data:`PARSE_AHEAD`)."""
        pending = self._pending
        data = b"".join(pending)
        cut = data.rfind(b"\n") + 1
        if self._fields is None:
            self._fields = _Fields()
        # A line ends at LF, which no UTF-8 character contains: repairing the lines
        # apart gives what repairing the whole event would.
        _read_fields(self._repair(data[:cut]), self._fields)
        self._fields.size += cut
        pending[:] = [data[cut:]]

    def _checked(self, blocks: list[bytes], longest: int) -> list[bytes]:
        """``blocks`` less the blank ones, once neither they nor the pending bytes exceed
        the size limit (``longest`` bounds them all, so most pieces need no count)."""
        limit = self.max_event_bytes
        if longest > limit and (self._pending_size > limit or any(len(b) > limit for b in blocks)):
            raise self._too_large()
        # (not b.isspace() is b.strip() without the copy)
        return [b for b in blocks if b and not b.isspace()]

    def _too_large(self) -> EventTooLargeError:
        limit = self.max_event_bytes
        return EventTooLargeError(
            f"An SSE event is larger than the limit of {limit} bytes.", limit=limit
        )

    @staticmethod
    def _repair(block: bytes) -> bytes:
        """The block with invalid UTF-8 replaced by U+FFFD, so one bad byte costs one
        character instead of the rest of the stream."""
        if block.isascii():
            return block
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return block.decode("utf-8", "replace").encode("utf-8")
        return block

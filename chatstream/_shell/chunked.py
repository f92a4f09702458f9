"""The chunked transfer coding (RFC 9112, section 7.1), decoded without I/O: bytes as
they arrive in, the body's bytes out.

:class:`chatstream._shell.transport.BodyReader` reads a chunked body through it, so that one
read takes every chunk that has arrived, where ``http.client`` returns one chunk per
read (one SSE event, as servers send them). With hundreds of streams queueing for the
interpreter lock, a stream that gets its turn then reads all it has been sent since its
last turn at once (see docs/threading.rst).

It is as lenient as ``http.client``, which it replaces here: chunk extensions are
ignored, the size may be surrounded by spaces, a bare LF ends a line, the two bytes after
a chunk's data are not looked at, trailers are read and dropped, and a body whose input
ends after its last chunk (before or within its trailers) is complete.
"""

from __future__ import annotations

__all__ = ["MAX_LINE", "ChunkedDecoder", "ChunkedError"]

#: The longest line accepted: a chunk size, a trailer, or an interim response's header
#: (``http.client``'s limit).
MAX_LINE = 65536

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedError(ValueError):
    """The body is not valid chunked coding."""


class ChunkedDecoder:
    """Decodes one chunked body. :meth:`feed` takes the bytes read, in any pieces, and
    returns the body's bytes among them; :attr:`done` is True once the last chunk and
    its trailers were read."""

    __slots__ = ("_buffer", "_left", "_state", "error")

    def __init__(self) -> None:
        #: Set when invalid coding was found after body bytes that were returned: the
        #: next :meth:`feed` raises it.
        self.error: ChunkedError | None = None
        self._buffer = b""  # an unfinished line, or the bytes after a chunk not yet seen
        self._left = 0  # bytes of the current chunk's data still to come
        self._state = _SIZE

    @property
    def done(self) -> bool:
        """True once the whole body was read (bytes fed after it are ignored)."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """The body's bytes in ``data`` (possibly none).

        Raises:
            ChunkedError: A chunk size or trailer line is invalid or too long. Body bytes
                before it in the same ``data`` are returned first; the next call raises.
        """
        if self.error is not None:
            raise self.error
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        out: list[bytes] = []
        try:
            self._decode(data, out)
        except ChunkedError as exc:
            if not any(out):
                raise
            self.error = exc
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def finish(self) -> bool:
        """The input ended: True when the body is complete, as for ``http.client``, which
        reads a last chunk followed by the end of the input (no blank line, or trailers
        cut short) as the end of the body; False when it was cut before its last chunk."""
        if self._state == _TRAILER:
            self._state = _DONE
            self._buffer = b""
        return self._state == _DONE

    def _decode(self, data: bytes, out: list[bytes]) -> None:
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
            elif state == _DATA_END:
                # http.client drops these two bytes unread ("\r\n"); so do we.
                if end - pos < 2:
                    break
                pos += 2
                self._state = _SIZE
            elif state == _DONE:
                pos = end
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    if end - pos > MAX_LINE:
                        raise ChunkedError("chunk size or trailer line too long")
                    break
                line = data[pos:newline]
                pos = newline + 1
                if len(line) > MAX_LINE:
                    raise ChunkedError("chunk size or trailer line too long")
                if state == _SIZE:
                    self._size(line)
                elif not line.strip(b"\r"):  # the blank line after the trailers
                    self._state = _DONE
        if pos < end and self._state != _DONE:
            self._buffer = data[pos:]

    def _size(self, line: bytes) -> None:
        semicolon = line.find(b";")
        if semicolon >= 0:
            line = line[:semicolon]
        line = line.strip()
        # Hex digits only: int() would also take a sign, underscores or "0x".
        if not line or line.lstrip(b"0123456789abcdefABCDEF"):
            raise ChunkedError(f"invalid chunk size {line[:40]!r}")
        size = int(line, 16)
        if size:
            self._left = size
            self._state = _DATA
        else:
            self._state = _TRAILER

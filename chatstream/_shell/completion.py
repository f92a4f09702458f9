"""A whole JSON completion, from a server that ignored ``"stream": true``.

The reading is here; the meaning is the core's
(:meth:`~chatstream.StreamParser.feed_completion`). One call site:
:meth:`chatstream._shell.reading.ReadLoop.run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .delivery import Interrupted

if TYPE_CHECKING:
    from .reading import Body, ReadLoop

__all__ = ["read_completion"]


def read_completion(reader: ReadLoop, body: Body, mime: str) -> None:
    """A server that ignored ``"stream": true`` sent one JSON completion: read it whole
    (up to the event size limit, and one byte more to notice a larger one) and let the
    core take it."""
    limit = reader.settings.limits.max_event_bytes
    delivery = reader.delivery
    pieces: list[bytes] = []
    size = 0
    while size <= limit:
        data = reader.read_some(body)
        if not data or reader.stopped():
            break
        if delivery.on_bytes is not None:
            delivery.body_bytes(data)
        pieces.append(data)
        size += len(data)
    if reader.stopped():
        raise Interrupted  # closed or timed out while reading: _end() reports it
    parser = reader.parser
    events = parser.feed_completion(b"".join(pieces), content_type=mime)
    reader.settle()
    delivery.events(events)
    if parser.error is not None:
        raise parser.error

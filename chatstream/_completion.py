"""A whole JSON completion, from a server that ignored ``"stream": true``.

One function with one call site (:meth:`chatstream._reading.ReadLoop.run`), so that the
core can take this over.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import _http
from ._delivery import Interrupted
from .errors import EventTooLargeError

if TYPE_CHECKING:
    from ._reading import Body, ReadLoop

__all__ = ["read_completion"]


def read_completion(reader: ReadLoop, body: Body) -> None:
    """A server that ignored ``"stream": true`` sent one JSON completion: read it whole
    and run it through the core ."""
    limit = reader.settings.max_event_bytes
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
    raw = b"".join(pieces)
    accumulator = reader.parser.accumulator
    if len(raw) > limit:
        raise accumulator.fail(
            EventTooLargeError(
                f"The response is larger than the limit of {limit} bytes.", limit=limit
            )
        )
    try:
        completion = json.loads(raw)
    except ValueError:
        completion = None
    if isinstance(completion, dict) and completion.get("error") is not None:
        events = accumulator.feed(completion)
    else:
        events = accumulator.feed(_http.chunk_from_completion(completion))
        events += accumulator.finish(done=True)
    reader.settle()
    delivery.events(events)
    if accumulator.error is not None:
        raise accumulator.error

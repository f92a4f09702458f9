"""The sans-I/O core: bytes in, events out.

No sockets, threads, clocks or HTTP library: feed it the bytes of a streamed response
(or chunks already decoded) and it gives the events and the final result. The client
runs this same core on a worker thread.

::

    >>> from chatstream.core import StreamParser
    >>> parser = StreamParser()
    >>> events = parser.feed(b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\\n\\n')
    >>> events += parser.feed(b"data: [DONE]\\n\\n") + parser.close()
    >>> parser.response.content
    'Hi'
"""

from .accumulator import Accumulator
from .parser import StreamParser, iter_events
from .sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEMessage

__all__ = [
    "Accumulator",
    "DEFAULT_MAX_EVENT_BYTES",
    "SSEDecoder",
    "SSEMessage",
    "StreamParser",
    "iter_events",
]

"""The sans-I/O core: the bytes of a streamed response in, events out.

:class:`StreamParser` joins SSE decoding (:mod:`chatstream.sse`) and the reduction rules
(:mod:`chatstream.accumulator`). It has no sockets, threads or clocks; the client drives
it from a socket, and anyone can drive it from a recording::

    >>> import chatstream
    >>> parser = chatstream.StreamParser()
    >>> events = parser.feed(b'data: {"choices":[{"delta":{"content":"Hi"}}]}\\n\\n')
    >>> events += parser.feed(b'data: [DONE]\\n\\n')
    >>> [type(e).__name__ for e in events]
    ['OutputItemAdded', 'OutputTextDelta', 'OutputItemDone', 'Completed']
    >>> parser.result().content
    'Hi'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .accumulator import Accumulator
from .errors import ChatStreamError, EventTooLargeError
from .events import ResponseEvent
from .response import Response
from .sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder, SSEMessage

__all__ = ["StreamParser", "iter_events"]

log = logging.getLogger("chatstream")

# The end-of-stream sentinel, and the bracketless form some servers and stubs send.
_SENTINELS = ("[DONE]", "DONE")

# The C scanner behind json.loads, called without json.loads' Python layers.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(data: str) -> Any:
    """``json.loads(data)`` for text with no whitespace around it (0.6 us less per chunk,
    a tenth of the parser's time)."""
    try:
        value, end = _scan(data, 0)
    except StopIteration:
        end = -1
    if end != len(data):
        return json.loads(data)  # not exactly one JSON value: raises json.loads' error
    return value


class StreamParser:
    """Turns the body of a streamed Chat Completions response into events.

    Feed it the body's bytes as they arrive, split anywhere, then call :meth:`close` at
    the end of the body. Each call returns the events the bytes completed. A stream that
    fails does not raise here: :attr:`error` is set, :attr:`ended` becomes true, and
    :meth:`result` raises it.

    Args:
        max_event_bytes: Largest allowed SSE event, in bytes (default 16 MiB).
        drop_tool_calls_on_stop: The specification's rule that ``finish_reason: "stop"``
            drops every tool call (off by default; see :class:`Accumulator`).
        length_is_error: The specification's rule that ``finish_reason: "length"`` ends
            the stream in :class:`~chatstream.ContextWindowExceeded` (off by default:
            the stream ends normally and :attr:`Response.truncated` is true).
        raw_chunks: Also return each chunk as sent, as a :class:`~chatstream.RawChunk`
            event before the events made from it (off by default).
    """

    def __init__(
        self,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        drop_tool_calls_on_stop: bool = False,
        length_is_error: bool = False,
        raw_chunks: bool = False,
    ) -> None:
        self._sse = SSEDecoder(max_event_bytes)
        #: The reduction state; its events are the ones this parser returns.
        self.accumulator = Accumulator(
            drop_tool_calls_on_stop=drop_tool_calls_on_stop,
            length_is_error=length_is_error,
            raw_chunks=raw_chunks,
        )
        #: How many SSE messages with data have been read (keep-alive comments are not
        #: messages).
        self.messages = 0

    @property
    def ended(self) -> bool:
        """True once the stream has ended (``[DONE]``, an error, or :meth:`close`)."""
        return self.accumulator.ended

    @property
    def error(self) -> ChatStreamError | None:
        """The error that ended the stream, or ``None``."""
        return self.accumulator.error

    @property
    def response(self) -> Response:
        """The response so far: complete once the stream ended normally."""
        return self.accumulator.response

    def feed(self, data: bytes) -> list[ResponseEvent]:
        """Add bytes of the body; return the events they complete.

        Bytes after the stream has ended (after ``[DONE]``, say) are ignored.
        """
        if self.accumulator.ended:
            return []
        try:
            messages = self._sse.feed(data)
        except EventTooLargeError as exc:
            self.accumulator.fail(exc)
            return []
        return self._reduce(messages)

    def close(self) -> list[ResponseEvent]:
        """The body ended; return the last events. The stream is over after this."""
        if self.accumulator.ended:
            return []
        events = self._reduce(self._sse.close())
        return events + self.accumulator.finish()

    def fail(self, error: ChatStreamError) -> ChatStreamError:
        """End the stream with an error from outside (the connection broke, say); return
        it with its ``partial`` response set."""
        return self.accumulator.fail(error)

    def result(self) -> Response:
        """The finished response.

        Raises:
            ChatStreamError: The error that ended the stream (with ``partial`` set).
            RuntimeError: The stream has not ended yet.
        """
        if self.accumulator.error is not None:
            raise self.accumulator.error
        if not self.accumulator.ended:
            raise RuntimeError("the stream has not ended; call close() at the end of input")
        return self.accumulator.response

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[ResponseEvent]:
        """Feed every piece of ``chunks`` and yield the events; stop reading at the end
        of the stream.

        Raises:
            ChatStreamError: When the stream ended in an error, after the events that
                came before it.
        """
        for data in chunks:
            yield from self.feed(data)
            if self.accumulator.ended:
                break
        else:
            yield from self.close()
        if self.accumulator.error is not None:
            raise self.accumulator.error

    def _reduce(self, messages: list[SSEMessage]) -> list[ResponseEvent]:
        accumulator = self.accumulator
        events: list[ResponseEvent] = []
        self.messages += len(messages)
        for message in messages:
            # As the specification does: trimmed, then compared with the sentinels.
            # (strip() costs nothing on data with no surrounding whitespace.)
            data = message.data.strip()
            if not data:
                continue
            if data in _SENTINELS:
                events += accumulator.finish(done=True)
                break
            chunk: object
            try:
                chunk = _loads(data)
            except (ValueError, RecursionError):
                # Not JSON (a ping, a proxy's note), or nested too deeply to read: the
                # text goes to the accumulator, which skips and counts it as the
                # specification skips it (or, from an ``event: error`` frame, reports
                # it as the error's message).
                if message.event != "error":
                    log.debug("skipping an SSE event whose data is not JSON (%d chars)", len(data))
                chunk = data
            events += accumulator.feed(chunk, event=message.event)
            if accumulator.ended:
                break
        return events


def iter_events(
    chunks: Iterable[bytes],
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    drop_tool_calls_on_stop: bool = False,
    length_is_error: bool = False,
    raw_chunks: bool = False,
) -> Iterator[ResponseEvent]:
    """Yield the events of a streamed body given as pieces of bytes (a list, a file
    opened in binary mode, a socket reader).

    Raises:
        ChatStreamError: When the stream ended in an error, after the events before it;
            its ``partial`` holds the response so far.
    """
    parser = StreamParser(
        max_event_bytes=max_event_bytes,
        drop_tool_calls_on_stop=drop_tool_calls_on_stop,
        length_is_error=length_is_error,
        raw_chunks=raw_chunks,
    )
    return parser.iter_events(chunks)

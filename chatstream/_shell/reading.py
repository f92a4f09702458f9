"""The read loop: a response body's bytes into the core, its events to the delivery,
and the timestamps the time limits are computed from (see :mod:`chatstream._shell.deadlines`).

Progress, for the idle limit, is a completed line: an event's line or a keep-alive
comment restarts the idle clock; bytes that never finish a line do not.

After ``[DONE]``, once the stream's end was delivered (the caller never waits for it),
the rest of the body (normally just the end of the chunked encoding) is read for at most
:data:`~chatstream._shell.deadlines.DRAIN_TIME` seconds and :data:`DRAIN_BYTES` in all,
so that the connection goes back to the pool for the next request; it is closed instead
if the end does not come (see :meth:`ReadLoop.drain`).

A server that ignored ``"stream": true`` and sent one JSON completion is read whole and
handed to the core (:meth:`~chatstream.StreamParser.feed_completion`); any other body
that is not an event stream ends in :class:`~chatstream.UnexpectedResponseError`.

Whether to go on is the stream's :class:`~chatstream._shell.lifecycle.Lifecycle`: a
stop or a cut ends the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ..core.parser import StreamParser
from ..errors import ChatStreamError
from ..events import OutputItemAdded, RateLimits, RawChunk, ResponseEvent
from . import http as _http
from . import process as _process
from . import transport as _transport
from .deadlines import Clocks
from .delivery import Delivery, Interrupted
from .exchange import Settings
from .lifecycle import Lifecycle

__all__ = [
    "DRAIN_BYTES",
    "QUICK_READ",
    "READ_SIZE",
    "TURN_BYTES",
    "Body",
    "Dropped",
    "Opener",
    "ReadLoop",
]

#: Bytes asked for per read: whatever has arrived, up to this much.
READ_SIZE = 65536
#: The most read after ``[DONE]`` to reach the end of the body; more, and the
#: connection is closed rather than reused.
DRAIN_BYTES = 65536
#: A read that returned within this many seconds took bytes that were already there; a
#: longer one waited for them (see :meth:`ReadLoop.run`, coalescing).
QUICK_READ = 0.0005
_sleep = time.sleep  # (replaced in tests)
#: Events that open a stream: a pause never delays them (nor the first text).
_OPENING = (OutputItemAdded, RateLimits, RawChunk)
#: The most bytes of one read parsed in one turn of the parse lock: a larger read is
#: parsed in turns of this size, so that a stream sent one huge event (15 MB of short
#: lines, say) lets the others parse between two of its turns.
TURN_BYTES = 8192


def _feed_in_turns(
    parser: StreamParser, data: bytes, parse_lock: _process.FifoLock
) -> list[ResponseEvent]:
    """``parser.feed(data)``, holding ``parse_lock`` for :data:`TURN_BYTES` at a time."""
    events: list[ResponseEvent] = []
    for start in range(0, len(data), TURN_BYTES):
        with parse_lock:
            events += parser.feed(data[start : start + TURN_BYTES])
    return events


class Body(Protocol):
    """What the worker reads (:class:`chatstream._shell.transport.BodyReader`; tests use a
    fake)."""

    @property
    def status(self) -> int:
        """The response's HTTP status."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""

    def read(self, size: int) -> bytes:
        """What has arrived, up to ``size`` bytes; ``b""`` at the end."""

    def release(self) -> None:
        """The end was read: the connection may be reused."""

    def expect_end(self) -> None:
        """The stream is over and only the end of the body is still to be read (then
        :meth:`release` or :meth:`close` is called)."""

    def shutdown(self) -> None:
        """Wake a blocked read (any thread)."""

    def close(self) -> None:
        """Done with the body."""


class Dropped(Exception):
    """The body ended before the stream did, and the stream may be resumed: the core was
    left open (:meth:`ReadLoop.finish` ends it if it is not)."""


#: Opens the response: given the function to call with each body as soon as it exists,
#: returns the body to read, or ``None`` when stopped meanwhile.
Opener = Callable[[Callable[[Body], None]], Body | None]


class ReadLoop:
    """Reads one body (see the module documentation), for as long as ``life`` says the
    stream goes on; tells it when the body ended (:meth:`Lifecycle.settle
    <chatstream._shell.lifecycle.Lifecycle.settle>`)."""

    def __init__(
        self,
        parser: StreamParser,
        delivery: Delivery,
        settings: Settings,
        life: Lifecycle,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.parser = parser
        self.delivery = delivery
        self.settings = settings
        self.life = life
        self.clock = clock
        self.last_wait = 0.0
        self.reading_since: float | None = None
        self.line_waited = 0.0
        self.event_waited = 0.0
        self.finishing = False
        #: ``[DONE]`` was read and the stream is over: the rest of the body is to be
        #: read by :meth:`drain`.
        self.to_drain = False
        self.drain_since: float | None = None
        #: Asked when a body ends before the stream: true to leave the core open and
        #: raise :class:`Dropped` (the stream is resumed); ``None``: never.
        self.resumable: Callable[[], bool] | None = None

    @property
    def draining(self) -> bool:
        """True while :meth:`drain` runs."""
        return self.drain_since is not None

    def _pause(self) -> float:
        """How long to wait before a read that would wait anyway (see
        :class:`~chatstream.Coalescing`): it depends on how many streams run."""
        coalescing = self.settings.coalescing
        return 0.0 if coalescing is None else coalescing.pause(_process.running())

    def clocks(self, *, started: float, headers_since: float | None) -> Clocks:
        """The timestamps of the time limits, now."""
        # The waited times first: a read is counted late, never twice (see read_some).
        line_waited, event_waited = self.line_waited, self.event_waited
        return Clocks(
            started=started,
            headers_since=headers_since,
            reading_since=self.reading_since,
            line_waited=line_waited,
            event_waited=event_waited,
            finishing=self.finishing,
            drain_since=self.drain_since,
        )

    def run(self, body: Body, *, resumed: bool = False) -> None:
        """Read ``body`` to its end (or until stopped or cut), feeding the core
        (``resumed``: a body that continues the stream, whose rate limits were
        delivered with the first one's)."""
        parser = self.parser
        delivery = self.delivery
        headers = body.headers
        limits = None if resumed else _http.rate_limit_headers(headers)
        if limits:
            delivery.events([RateLimits(limits)])
        mime = _http.media_type(headers)
        if mime and mime != "text/event-stream":
            if mime == "application/json" or mime.endswith("+json"):
                self._read_completion(body, mime)
                return
            self._unexpected(body, mime)
        life = self.life
        seen = 0
        data = b""
        observer = delivery.observer
        # Iterated streams pause too: a pause saves their iterating thread's wake-ups
        # as well as the worker's (docs/performance.rst, "Longer pauses").
        pause = self._pause if self.settings.coalescing is not None else None
        # With hundreds of streams whose bytes arrive together, each of their threads
        # would queue for the interpreter lock and wake up every switch interval (5 ms)
        # to ask for it: a thousand threads make a few hundred thousand wake-ups a
        # second, which took more CPU than the streams' work and grew with their number
        # (docs/performance.rst, "A thousand streams"). Parsing one at a time, the others
        # wait on this lock instead, which wakes each of them once, when its turn comes.
        parse_lock = _process.parse_lock() if pause is not None else None
        content = False  # the first content event was delivered
        woke: float | None = None  # when the last pause ended
        resumed = False  # the last read was the first after a pause
        while True:
            if pause is None or not content or resumed or self.last_wait <= QUICK_READ:
                resumed = False
            else:
                # The last read waited for its bytes (and was not the one that took
                # what arrived during a pause, which waits for the interpreter lock
                # when many threads run), so the next one would wait too: with many
                # streams running, wake up at most once a pause, and read what arrived
                # meanwhile at once (see docs/threading.rst).
                delay = pause()
                if woke is not None:
                    delay -= self.clock() - woke
                if delay > 0.0:
                    _sleep(delay)
                    woke = self.clock()
                    resumed = True
            data = self.read_some(body)
            if life.stopping:
                raise Interrupted
            if not data or life.cut:
                break
            observer.body_read()
            if delivery.on_bytes is not None:
                delivery.body_bytes(data)
            if b"\n" in data or b"\r" in data:
                self.line_waited = 0.0  # a line was completed: the server makes progress
            if parse_lock is None:
                events = parser.feed(data)
            elif len(data) <= TURN_BYTES:
                with parse_lock:
                    events = parser.feed(data)
            else:
                events = _feed_in_turns(parser, data, parse_lock)
            if parser.ended:
                life.settle()
            if events:
                delivery.events(events)
                if not content:
                    content = any(not isinstance(e, _OPENING) for e in events)
            if parser.messages != seen:
                seen = parser.messages
                self.event_waited = 0.0
            if parser.ended:
                self.to_drain = parser.error is None
                break
            self.finishing = parser.accumulator.all_choices_finished
        if not parser.ended:
            if not data and not life.cut:
                body.release()
            resumable = self.resumable
            if resumable is not None and not life.cut and resumable():
                raise Dropped
            self.finish()
        if parser.error is not None:
            raise parser.error

    def finish(self) -> None:
        """The input ended: close the core and deliver its last events; raise its error
        if it ended in one."""
        parser = self.parser
        events = parser.close()
        self.life.settle()
        self.delivery.events(events)
        if parser.error is not None:
            raise parser.error

    def read_some(self, body: Body) -> bytes:
        """One blocking read of what has arrived, watched by the watchdog; ``b""`` at the
        end of the body, or once stopped or cut."""
        self.reading_since = started = self.clock()
        try:
            return body.read(READ_SIZE)
        except _transport.READ_ERRORS as exc:
            if self.life.stopping or self.life.cut:
                return b""  # the read failed because the stream was stopped
            error = _http.transport_error(
                exc,
                before_response=False,
                secrets=self.settings.secrets,
                idle=self.settings.timeouts.idle,
            )
        finally:
            # In this order: the watchdog reads the waited times first, so it may count
            # a read late, never twice.
            self.reading_since = None
            self.last_wait = waited = self.clock() - started
            self.line_waited += waited
            self.event_waited += waited
        # Raised outside the except block, with its redacted cause: the original may
        # quote the URL, and must not be chained as the error's context.
        raise error

    def drain(self, body: Body) -> None:
        """After ``[DONE]`` and the stream's end: read the rest of the body (normally just
        the end of the chunked encoding), :data:`DRAIN_BYTES` at most, within the
        deadlines' :data:`~chatstream._shell.deadlines.DRAIN_TIME` in all (the watchdog
        cuts it), and give the connection back to the pool; it is closed instead if the
        end does not come."""
        self.to_drain = False
        self.drain_since = self.clock()
        body.expect_end()
        size = 0
        try:
            while size <= DRAIN_BYTES:
                data = self.read_some(body)
                if self.life.stopping or self.life.cut:
                    return
                if not data:
                    body.release()
                    return
                size += len(data)
        except ChatStreamError:
            return  # the outcome is already the core's: only the connection is lost
        finally:
            self.drain_since = None

    def _read_completion(self, body: Body, mime: str) -> None:
        """A server that ignored ``"stream": true`` sent one JSON completion: read it
        whole (up to the event size limit, and one byte more to notice a larger one) and
        let the core take it."""
        limit = self.settings.limits.max_event_bytes
        delivery = self.delivery
        pieces: list[bytes] = []
        size = 0
        while size <= limit:
            data = self.read_some(body)
            if not data or self.life.stopping:
                break
            if delivery.on_bytes is not None:
                delivery.body_bytes(data)
            pieces.append(data)
            size += len(data)
        if self.life.stopping:
            raise Interrupted  # closed or timed out while reading: the worker reports it
        parser = self.parser
        events = parser.feed_completion(b"".join(pieces), content_type=mime)
        self.life.settle()
        delivery.events(events)
        if parser.error is not None:
            raise parser.error

    def _unexpected(self, body: Body, mime: str) -> None:
        self.reading_since = self.clock()  # the snippet read is watched too
        try:
            error = _http.unexpected_response(body.status, mime, body.read, self.settings.secrets)
        finally:
            self.reading_since = None
        if self.life.stopping:
            raise Interrupted
        raise error

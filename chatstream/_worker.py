"""The worker: one thread per stream that opens the response, reads its body into the
core and delivers what comes out, until the stream's one outcome is decided.

The parts, each in its own module: the HTTP exchange (:mod:`chatstream._exchange`), the
body reader (:mod:`chatstream._transport`), the time limits
(:mod:`chatstream._deadlines`, enforced by :mod:`chatstream._watchdog`) and the delivery
(:mod:`chatstream._delivery`). This module is the read loop and the stop state.

One outcome
-----------
A stream ends exactly once, and everything that observes the end (the iterator,
``result()``, ``on_end``, ``error.partial.error``, telemetry) is given the value decided
in :meth:`Worker._end`, by these rules, in order:

1. A callback raised (on the worker, or dispatched before the end): ``CallbackError``
   -- unless the body itself had already ended in an error, which stands.
2. The body ended (``[DONE]``, the end of the body, the finish grace, an error in the
   stream): the core's outcome, whatever ``close()`` or a time limit does afterwards.
3. Stopped from outside (closed, a time limit): that reason's error; what the stopping
   caused (a read failing on the shut-down socket) is not the outcome.
4. Otherwise the error the worker met (HTTP, transport, a bug), or success.
"""

from __future__ import annotations

import atexit
import dataclasses
import enum
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from . import _http, _transport
from ._deadlines import Clocks, next_deadline
from ._delivery import (
    BytesCallback,
    Delivery,
    Dispatch,
    EndCallback,
    EventCallback,
    Interrupted,
)
from ._exchange import Settings, TurnState, open_response
from ._watchdog import Watchdog
from .errors import (
    CallbackError,
    ChatStreamError,
    EventTooLargeError,
    IdleTimeoutError,
    StreamClosedError,
    StreamError,
)
from .events import RateLimits
from .parser import StreamParser
from .response import ErrorInfo, Response

__all__ = ["Body", "Opener", "StopReason", "Worker", "make_worker", "read_completion"]

log = logging.getLogger("chatstream")

#: Bytes asked for per read: whatever has arrived, up to this much.
READ_SIZE = 65536
#: The most read after ``[DONE]`` to reach the end of the body; more, and the
#: connection is closed rather than reused.
DRAIN_BYTES = 65536


class StopReason(enum.Enum):
    """Why a stream was stopped from outside the read loop (the first reason wins)."""

    CLOSED = "closed"
    IDLE = "idle"
    EVENT = "event"
    TOTAL = "total"
    CALLBACK = "callback"


class Body(Protocol):
    """What the worker reads (:class:`chatstream._transport.BodyReader`; tests use a
    fake)."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""

    def read(self, size: int) -> bytes:
        """What has arrived, up to ``size`` bytes; ``b""`` at the end."""

    def release(self) -> None:
        """The end was read: the connection may be reused."""

    def shutdown(self) -> None:
        """Wake a blocked read (any thread)."""

    def close(self) -> None:
        """Done with the body."""


#: Opens the response: given the function to call with each body as soon as it exists,
#: returns the body to read, or ``None`` when stopped meanwhile.
Opener = Callable[[Callable[[Body], None]], "Body | None"]


# Streams still running, stopped at interpreter exit so that no worker is cut off in
# the middle of a write to a dying interpreter.
_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for worker in list(_LIVE):
        worker.stop(StopReason.CLOSED)


def _forget_after_fork() -> None:
    # A forked child never touches its parent's streams (see Worker.stop).
    global _LIVE
    _LIVE = weakref.WeakSet()


os.register_at_fork(after_in_child=_forget_after_fork)


class Worker:
    """Everything the worker thread uses. It holds the :class:`ChatStream` only while a
    callback needs it (``keep``), so an iterator-only stream dropped without ``close()``
    can be collected, and its finalizer then stops the worker."""

    def __init__(
        self,
        settings: Settings,
        request: dict[str, Any],
        *,
        delivery: Delivery,
        watchdog: Watchdog,
        turn: TurnState | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.settings = settings
        self.request = request
        self.turn = turn
        self.watchdog = watchdog
        self.clock = watchdog.clock
        self.timeouts = settings.timeouts
        self.delivery = delivery
        self.queue = delivery.queue
        self.parser = StreamParser(
            max_event_bytes=settings.max_event_bytes,
            drop_tool_calls_on_stop=settings.drop_tool_calls_on_stop,
        )
        self._open_body = opener or self._open_http
        self.finished = threading.Event()
        self.outcome: Response | None = None
        self.error: ChatStreamError | None = None
        #: Whatever must live as long as the worker runs (the stream, when it has callbacks).
        self.keep: object = None
        self._pid = os.getpid()
        # The stop state. The lock is re-entrant: stop() may run in a signal handler
        # that interrupted this same thread's stop().
        self._lock = threading.RLock()
        self.reason: StopReason | None = None
        self._callback_error: BaseException | None = None
        self._final = False  # the body ended (the core decided): rule 2
        self._decided = False
        self._cut = False  # the finish grace or the drain ran out: the body was shut down
        self._stopped = threading.Event()
        self._body: Body | None = None
        self._slot = _transport.ConnectionSlot(self.clock)
        # The clocks of the time limits (see _deadlines).
        self._started = self.clock()
        self._reading_since: float | None = None
        self._line_waited = 0.0
        self._event_waited = 0.0
        self._finishing = False
        self._draining = False
        self.thread = threading.Thread(target=self._run, name="chatstream-worker", daemon=True)

    def start(self) -> None:
        _LIVE.add(self)
        self.watchdog.register(self)
        self.thread.start()

    # --- from outside ------------------------------------------------------------------

    def stop(self, reason: StopReason) -> None:
        """Ask the worker to stop (from any thread, or a signal handler); returns at
        once. The first reason wins; once the outcome is decided, nothing changes it."""
        if os.getpid() != self._pid:
            return  # a forked child: the stream, and its socket, are the parent's
        with self._lock:
            if self._decided or self.reason is not None:
                return
            self.reason = reason
        delivery = self.delivery
        delivery.stopping = True
        if reason in (StopReason.CLOSED, StopReason.CALLBACK):
            delivery.halted = True
        self._stopped.set()
        self.queue.interrupt()
        self._slot.abort()
        body = self._body
        if body is not None:
            body.shutdown()

    def callback_failed(self, exc: BaseException) -> None:
        """A callback raised (on any thread)."""
        with self._lock:
            late = self._decided
            if not late and self._callback_error is None:
                self._callback_error = exc
        if late:
            # A dispatched callback that ran after the end: too late to change the
            # outcome, but never silent.
            log.error("a callback raised after the stream ended", exc_info=exc)
        else:
            self.stop(StopReason.CALLBACK)

    def check_deadline(self, now: float) -> float | None:
        """The watchdog's question: act if a time limit has passed; else say when to
        look again."""
        if self.reason is not None or self.finished.is_set():
            return None
        if self._final and not self._draining:
            return None
        # The waited times first: a read is counted late, never twice (see _read_some).
        line_waited, event_waited = self._line_waited, self._event_waited
        clocks = Clocks(
            started=self._started,
            headers_since=self._slot.waiting_since,
            reading_since=self._reading_since,
            line_waited=line_waited,
            event_waited=event_waited,
            finishing=self._finishing,
            draining=self._draining,
        )
        deadline = next_deadline(clocks, self.timeouts)
        if deadline is None:
            return None
        when, expiry = deadline
        if now < when:
            return when
        if expiry.fails:
            self.stop(StopReason(expiry.value))
        else:  # the grace or the drain: stop reading, without failing the stream
            self._cut = True
            body = self._body
            if body is not None:
                body.shutdown()
        return None

    # --- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        error: ChatStreamError | None = None
        try:
            body = self._open_body(self._attach)
            if body is not None:
                self._read(body)
        except ChatStreamError as exc:
            error = exc
        except Interrupted:
            pass
        except Exception as exc:  # a bug: still end the stream, never leave a consumer hanging
            log.exception("chatstream worker failed")
            error = StreamError(f"Internal error in chatstream ({type(exc).__name__}).")
            # Its type and message only: the frames hold the request (its headers, the
            # key) and the socket, for as long as the error lives.
            error.__cause__ = _http.redacted_cause(exc, self.settings.secrets)
            error.__suppress_context__ = True
        except BaseException as exc:  # only user code raises these: a telemetry hook
            self.callback_failed(exc)
        finally:
            if self._body is not None:
                self._body.close()
            self.watchdog.unregister(self)
            _LIVE.discard(self)
        self._end(error)

    def _open_http(self, attach: Callable[[Body], None]) -> Body | None:
        response = open_response(
            self.settings,
            self.request,
            turn=self.turn,
            stopped=self._stopped,
            attach=lambda r: attach(_transport.BodyReader(r)),
            slot=self._slot,
        )
        return None if response is None else self._body

    def _attach(self, body: Body) -> None:
        """Make ``body`` the one :meth:`stop` wakes (as soon as its headers arrived, so
        that reading an error body is interruptible too)."""
        self._body = body
        if self.reason is not None:
            body.shutdown()

    def _settle(self) -> None:
        """The body ended (the core has its outcome): from now on, a close or a time
        limit no longer changes it."""
        with self._lock:
            self._final = True

    def _read(self, body: Body) -> None:
        parser = self.parser
        delivery = self.delivery
        headers = body.headers
        limits = _http.rate_limit_headers(headers)
        if limits:
            delivery.events([RateLimits(limits)])
        mime = headers.get("content-type", "").split(";")[0].strip().lower()
        if mime and mime != "text/event-stream":
            if mime == "application/json" or mime.endswith("+json"):
                read_completion(self, body)
                return
            self._unexpected(body, mime)
        seen = 0
        data = b""
        while True:
            data = self._read_some(body)
            if self.reason is not None:
                raise Interrupted
            if not data or self._cut:
                break
            if delivery.on_bytes is not None:
                delivery.body_bytes(data)
            if b"\n" in data or b"\r" in data:
                self._line_waited = 0.0  # a line was completed: the server makes progress
            events = parser.feed(data)
            if parser.ended:
                self._settle()
            if events:
                delivery.events(events)
            if parser.messages != seen:
                seen = parser.messages
                self._event_waited = 0.0
            if parser.ended:
                if parser.error is None:
                    self._drain(body)
                break
            self._finishing = parser.accumulator.all_choices_finished
        if not parser.ended:
            if not data and not self._cut:
                body.release()
            events = parser.close()
            self._settle()
            delivery.events(events)
        if parser.error is not None:
            raise parser.error

    def _read_some(self, body: Body) -> bytes:
        """One blocking read of what has arrived, watched by the watchdog; ``b""`` at the
        end of the body, or once stopped or cut."""
        self._reading_since = started = self.clock()
        try:
            return body.read(READ_SIZE)
        except _transport.READ_ERRORS as exc:
            if self.reason is not None or self._cut:
                return b""  # the read failed because the stream was stopped
            error = _http.transport_error(
                exc, before_response=False, secrets=self.settings.secrets, idle=self.timeouts.idle
            )
        finally:
            # In this order: the watchdog reads the waited times first, so it may count
            # a read late, never twice.
            self._reading_since = None
            waited = self.clock() - started
            self._line_waited += waited
            self._event_waited += waited
        # Raised outside the except block, with its redacted cause: the original may
        # quote the URL, and must not be chained as the error's context.
        raise error

    def _drain(self, body: Body) -> None:
        """After ``[DONE]``: read the rest of the body (normally just the end of the
        chunked encoding) for at most :data:`~chatstream._deadlines.DRAIN_TIME` seconds and
        :data:`DRAIN_BYTES`, and give the connection back to the pool; it is closed
        instead if the end does not come."""
        self._draining = True
        size = 0
        try:
            while size <= DRAIN_BYTES:
                data = self._read_some(body)
                if self.reason is not None or self._cut:
                    return
                if not data:
                    body.release()
                    return
                size += len(data)
        except ChatStreamError:
            return  # the outcome is already the core's: only the connection is lost
        finally:
            self._draining = False

    def _unexpected(self, body: Body, mime: str) -> None:
        self._reading_since = self.clock()  # the snippet read is watched too
        try:
            error = _http.unexpected_response(
                body.response,  # type: ignore[attr-defined]
                mime,
                self.settings.secrets,
            )
        finally:
            self._reading_since = None
        if self.reason is not None:
            raise Interrupted
        raise error

    # --- the end -------------------------------------------------------------------------

    def _end(self, error: ChatStreamError | None) -> None:
        """Decide the outcome (see the module documentation) and tell every observer."""
        parser = self.parser
        with self._lock:
            self._decided = True
            reason = self.reason
            cause = self._callback_error
        if reason is StopReason.CALLBACK and not (self._final and parser.error is not None):
            error = CallbackError(
                "A callback (on_event, on_bytes, dispatch or a telemetry hook) raised; "
                "the stream was stopped."
            )
            error.__cause__ = cause
        elif self._final:
            error = parser.error
        elif reason is not None:
            error = self._stop_error(reason)
        response = parser.response
        if error is not None:
            error = parser.fail(error)
            # Errors quote what the server sent, which may echo the key back.
            _http.scrub_error(error, self.settings.secrets)
            response = dataclasses.replace(
                error.partial or response, error=ErrorInfo(error.kind, error.message)
            )
            error.partial = response
            log.debug("stream ended: %s: %s", error.kind, error.message)
        else:
            log.debug("stream completed (%d events read)", parser.messages)
        self.error = error
        self.outcome = response
        self.finished.set()
        self.delivery.end(response, error)
        self.keep = None

    def _stop_error(self, reason: StopReason) -> ChatStreamError:
        """The error for a stream stopped from outside the worker."""
        if reason is StopReason.CLOSED:
            return StreamClosedError("The stream was closed before it ended.")
        t = self.timeouts
        limit = {StopReason.IDLE: t.idle, StopReason.EVENT: t.event, StopReason.TOTAL: t.total}
        seconds = limit[reason] or 0.0
        message = {
            StopReason.IDLE: f"No data arrived for {seconds} s (idle timeout); a proxy that "
            "buffers the whole response looks like this too.",
            StopReason.EVENT: f"No event arrived for {seconds} s (event timeout).",
            StopReason.TOTAL: f"The stream took longer than {seconds} s (total timeout).",
        }[reason]
        return IdleTimeoutError(message, timeout=seconds, limit=reason.value)


def make_worker(
    settings: Settings,
    request: dict[str, Any],
    *,
    watchdog: Watchdog,
    queue_size: int,
    on_event: EventCallback | None = None,
    on_end: EndCallback | None = None,
    on_bytes: BytesCallback | None = None,
    dispatch: Dispatch | None = None,
    iterate: bool | None = None,
    turn: TurnState | None = None,
    opener: Opener | None = None,
) -> Worker:
    """A worker and its delivery, as :meth:`Client.stream <chatstream.Client.stream>`
    describes the arguments (``opener`` replaces the HTTP exchange, for tests)."""
    worker: Worker
    delivery = Delivery(
        on_event=on_event,
        on_end=on_end,
        on_bytes=on_bytes,
        dispatch=dispatch,
        iterate=on_event is None if iterate is None else iterate,
        queue_size=queue_size,
        telemetry=settings.telemetry,
        clock=watchdog.clock,
        fail=lambda exc: worker.callback_failed(exc),
    )
    worker = Worker(
        settings, request, delivery=delivery, watchdog=watchdog, turn=turn, opener=opener
    )
    return worker


def read_completion(worker: Worker, body: Body) -> None:
    """A server that ignored ``"stream": true`` sent one JSON completion: read it whole
    and run it through the core (this function's one call site is :meth:`Worker._read`)."""
    limit = worker.settings.max_event_bytes
    delivery = worker.delivery
    pieces: list[bytes] = []
    size = 0
    while size <= limit:
        data = worker._read_some(body)
        if not data or worker.reason is not None:
            break
        if delivery.on_bytes is not None:
            delivery.body_bytes(data)
        pieces.append(data)
        size += len(data)
    if worker.reason is not None:
        raise Interrupted  # closed or timed out while reading: _end() reports it
    raw = b"".join(pieces)
    accumulator = worker.parser.accumulator
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
    worker._settle()
    delivery.events(events)
    if accumulator.error is not None:
        raise accumulator.error

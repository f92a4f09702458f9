"""The worker: one thread per stream that opens the response, reads its body into the
core and delivers what comes out, until the stream's one outcome is decided.

The parts, each in its own module: the HTTP exchange (:mod:`chatstream._shell.exchange`), the
body reader (:mod:`chatstream._shell.transport`), the time limits
(:mod:`chatstream._shell.deadlines`, enforced by :mod:`chatstream._shell.watchdog`) and the delivery
(:mod:`chatstream._shell.delivery`), the read loop (:mod:`chatstream._shell.reading`). This module
is the thread and the stop state.

How the outcome is decided: :mod:`chatstream._shell.outcome`.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ..core.parser import StreamParser
from ..errors import ChatStreamError, StreamError
from ..response import ErrorInfo, Response
from . import http as _http
from . import threads as _threads
from . import transport as _transport
from .deadlines import next_deadline
from .delivery import Delivery, Interrupted
from .exchange import Settings, TurnState, open_response
from .outcome import StopReason, decide
from .reading import Body, Opener, ReadLoop
from .watchdog import Watchdog

__all__ = ["Body", "Opener", "StopReason", "Worker"]

log = logging.getLogger("chatstream")

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
    """Everything the worker thread uses. It holds no reference to the
    :class:`ChatStream`, so a stream nobody refers to can be collected; its finalizer
    then closes an iterator-only stream and lets one with callbacks run to its end."""

    def __init__(
        self,
        settings: Settings,
        request: dict[str, Any],
        *,
        delivery: Delivery,
        watchdog: Watchdog,
        turn: TurnState | None = None,
        opener: Opener | None = None,
        parser: StreamParser | None = None,
    ) -> None:
        self.settings = settings
        self.request = request
        self.turn = turn
        self.watchdog = watchdog
        self.clock = watchdog.clock
        self.timeouts = settings.timeouts
        self.delivery = delivery
        self.queue = delivery.queue
        self.parser = parser or StreamParser(max_event_bytes=settings.max_event_bytes)
        self._open_body = opener or self._open_http
        self.finished = threading.Event()
        self.outcome: Response | None = None
        self.error: ChatStreamError | None = None
        self._pid = os.getpid()
        # The stop state. The lock is re-entrant: stop() may run in a signal handler
        # that interrupted this same thread's stop().
        self._lock = threading.RLock()
        self.reason: StopReason | None = None
        self._callback_error: BaseException | None = None
        self._final = False  # the body ended (the core decided): rule 2
        self._decided = False
        self._stopped = threading.Event()
        self._body: Body | None = None
        self._slot = _transport.ConnectionSlot(self.clock)
        self._started = self.clock()
        self.reader = ReadLoop(
            self.parser,
            delivery,
            settings,
            clock=self.clock,
            stopped=lambda: self.reason is not None,
            settle=self._settle,
            # Iterated streams pause too: a pause saves their iterating thread's
            # wake-ups as well as the worker's (docs/performance.rst, "Longer pauses").
            pause=self._pause if settings.coalescing is not None else None,
        )
        #: The worker's run on a thread of the pool (see :mod:`chatstream._shell.threads`).
        self.job = _threads.Job(self._run)

    def start(self) -> None:
        """Start the run; returns at once, without waiting for a thread to take it."""
        _LIVE.add(self)
        self.watchdog.register(self)
        _threads.submit(self.job)

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
        reader = self.reader
        if reader.draining:
            return self._check_drain(now)
        if self.reason is not None or self.finished.is_set() or self._final:
            return None
        clocks = reader.clocks(started=self._started, headers_since=self._slot.waiting_since)
        deadline = next_deadline(clocks, self.timeouts)
        if deadline is None:
            return None
        when, expiry = deadline
        if now < when:
            return when
        if expiry.fails:
            self.stop(StopReason(expiry.value))
        else:  # the grace: stop reading, without failing the stream
            self._cut()
        return None

    def _check_drain(self, now: float) -> float | None:
        """:meth:`check_deadline` after the end: any deadline cuts the drain (the
        outcome was decided already)."""
        clocks = self.reader.clocks(started=self._started, headers_since=None)
        deadline = next_deadline(clocks, self.timeouts)
        if deadline is not None and now < deadline[0]:
            return deadline[0]
        self._cut()
        return None

    def _cut(self) -> None:
        """Stop reading the body without failing the stream."""
        self.reader.cut = True
        body = self._body
        if body is not None:
            body.shutdown()

    # --- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        error: ChatStreamError | None = None
        body: Body | None = None
        try:
            body = self._open_body(self._attach)
            if body is not None:
                self.reader.run(body)
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
            if body is None or not self.reader.to_drain:
                self._let_go()
        self._end(error)
        if body is not None and self.reader.to_drain:
            # The caller's wait ended at Completed; the rest of the body comes after.
            try:
                self.reader.drain(body)
            finally:
                self._let_go()

    def _let_go(self) -> None:
        """Close the body (its connection too, unless it went back to the pool) and stop
        being watched."""
        if self._body is not None:
            self._body.close()
        self.watchdog.unregister(self)
        _LIVE.discard(self)

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

    def _pause(self) -> float:
        """How long to wait before a read that would wait anyway (see
        :class:`~chatstream.Coalescing`): it depends on how many streams run."""
        coalescing = self.settings.coalescing
        return 0.0 if coalescing is None else coalescing.pause(len(_LIVE))

    def _settle(self) -> None:
        """The body ended (the core has its outcome): from now on, a close or a time
        limit no longer changes it."""
        with self._lock:
            self._final = True

    # --- the end -------------------------------------------------------------------------

    def _end(self, error: ChatStreamError | None) -> None:
        """Decide the outcome (see :mod:`chatstream._shell.outcome`) and tell every observer."""
        parser = self.parser
        with self._lock:
            self._decided = True
            reason = self.reason
            cause = self._callback_error
        error = decide(
            reason=reason,
            body_ended=self._final,
            body_error=parser.error,
            met=error,
            callback_error=cause,
            timeouts=self.timeouts,
        )
        response = parser.response
        if error is not None:
            error = parser.fail(error)
            # Errors quote what the server sent, which may echo the key back.
            _http.scrub_error(error, self.settings.secrets)
            response = dataclasses.replace(error.partial or response, error=ErrorInfo.of(error))
            error.partial = response
            log.debug("stream ended: %s: %s", error.kind, error.message)
        else:
            log.debug("stream completed (%d events read)", parser.messages)
        self.error = error
        self.outcome = response
        self.finished.set()
        self.delivery.end(response, error)

"""The worker: one thread per stream that opens the response, reads its body into the
core and delivers what comes out, until the stream's one outcome is decided.

The parts, each in its own module: the HTTP exchange (:mod:`chatstream._shell.exchange`), the
body reader (:mod:`chatstream._shell.transport`), the time limits
(:mod:`chatstream._shell.deadlines`, enforced by :mod:`chatstream._shell.watchdog`) and the delivery
(:mod:`chatstream._shell.delivery`), the read loop (:mod:`chatstream._shell.reading`), the stop
state (:mod:`chatstream._shell.lifecycle`), the process-wide state
(:mod:`chatstream._shell.process`). This module is the thread.

How the outcome is decided: :mod:`chatstream._shell.outcome`.

A stream that cannot get a thread -- the watchdog's or a worker's, when the process is at
its thread limit -- ends at once in :class:`~chatstream.ThreadLimitError`, nothing sent:
it never runs without its time limits, nor waits behind another stream.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..core.parser import StreamParser
from ..errors import ChatStreamError, StreamConnectionError, StreamError, ThreadLimitError
from ..response import ErrorInfo, Response
from . import http as _http
from . import process as _process
from . import transport as _transport
from .deadlines import next_deadline
from .delivery import Delivery, Interrupted
from .exchange import Settings, TurnState, open_response
from .outcome import StopReason, decide
from .reading import Body, Dropped, Opener, ReadLoop
from .resume import Resumer, resumes
from .threads import Job
from .watchdog import Watchdog

__all__ = ["Body", "Opener", "StopReason", "Worker"]

log = logging.getLogger("chatstream")


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
        #: The stop state, shared with the delivery, its queue and the read loop.
        self.life = life = delivery.life
        self.delivery = delivery
        self.queue = delivery.queue
        # The core, with the stream's options and limits (read once, here).
        self.parser = parser or StreamParser(
            options=settings.options, limits=settings.limits, request=request
        )
        self._open_body = opener or self._open_http
        self.finished = life.finished
        self.outcome: Response | None = None
        self.error: ChatStreamError | None = None
        self._body: Body | None = None
        self._slot = _transport.ConnectionSlot(self.clock)
        self._started = self.clock()
        self.reader = ReadLoop(self.parser, delivery, settings, life, clock=self.clock)
        #: Continues a Responses stream that dropped (see :mod:`chatstream._shell.resume`).
        self.resumer: Resumer | None = None
        if resumes(settings, request, self.parser):
            self.resumer = Resumer(
                settings, self.parser, life, slot=self._slot, observer=delivery.observer, turn=turn
            )
            self.reader.resumable = self.resumer.possible
        #: The worker's run on a thread of the pool (see :mod:`chatstream._shell.threads`).
        self.job = Job(self._run, self._refused)
        life.on_stop(self._slot.abort)
        life.on_stop(self._shutdown_body)

    def start(self) -> None:
        """Start the run; returns at once, without waiting for a thread to take it. A
        stream that cannot have the threads it needs has ended when this returns."""
        _process.started(self, self.settings.session)
        try:
            self.watchdog.register(self)
        except Exception as exc:  # its limits would be off: it must not run
            self.job.refuse(exc)
            return
        _process.pool().submit(self.job)

    # --- from outside ------------------------------------------------------------------

    def stop(self, reason: StopReason) -> None:
        """Ask the worker to stop (from any thread, or a signal handler); returns at
        once (see :meth:`Lifecycle.stop <chatstream._shell.lifecycle.Lifecycle.stop>`)."""
        self.life.stop(reason)

    def _shutdown_body(self) -> None:
        body = self._body
        if body is not None:
            body.shutdown()

    def check_deadline(self, now: float) -> float | None:
        """The watchdog's question: act if a time limit has passed; else say when to
        look again."""
        life = self.life
        reader = self.reader
        if reader.draining:
            return self._check_drain(now)
        if life.stopping or life.finished.is_set() or life.settled:
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
        self.life.cut = True
        self._shutdown_body()

    # --- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        error: ChatStreamError | None = None
        body: Body | None = None
        try:
            self.delivery.observer.start(
                _http.redact_url(self.settings.url), self.request, self.settings.options.api
            )
            body = self._open_body(self._attach)
            if body is not None:
                body = self._read(body)
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
            self.life.fail(exc)
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

    def _read(self, body: Body) -> Body:
        """Read ``body`` into the core, resuming the stream on a new body each time it
        drops while it may be resumed; returns the body read last."""
        resumed = False
        while True:
            try:
                self.reader.run(body, resumed=resumed)
                return body
            except (Dropped, StreamConnectionError) as exc:
                drop: Dropped | StreamConnectionError = exc
            resumer = self.resumer
            again: Body | None = None
            if resumer is not None and (isinstance(drop, Dropped) or resumer.possible()):
                body.close()  # (a body that ended was released: its connection is reused)
                again = resumer.reopen(drop, self._hold)
            if again is None:
                if isinstance(drop, Dropped):
                    self.reader.finish()  # the core's end, as if never resumable
                    return body
                raise drop
            body, resumed = again, True

    def _let_go(self) -> None:
        """Close the body (its connection too, unless it went back to the pool) and stop
        being watched."""
        if self._body is not None:
            self._body.close()
        self.watchdog.unregister(self)
        _process.ended(self)

    def _refused(self, error: BaseException) -> None:
        """No thread could be started for this stream: end it at once, nothing sent."""
        self.watchdog.unregister(self)
        _process.ended(self)
        # Telemetry sees the stream begin and end, as for any other failure.
        self.delivery.observer.start(
            _http.redact_url(self.settings.url), self.request, self.settings.options.api
        )
        refusal = ThreadLimitError(
            "No thread could be started for the stream (the process is at its thread "
            "limit); nothing was sent."
        )
        refusal.__cause__ = error
        self._end(refusal)

    def _open_http(self, attach: Callable[[Body], None]) -> Body | None:
        response = open_response(
            self.settings,
            self.request,
            turn=self.turn,
            stopped=self.life.stopped,
            attach=lambda r: attach(_transport.BodyReader(r)),
            slot=self._slot,
            observer=self.delivery.observer,
        )
        return None if response is None else self._body

    def _attach(self, body: Body) -> None:
        """Make ``body`` the one :meth:`stop` wakes (as soon as its headers arrived, so
        that reading an error body is interruptible too)."""
        self.delivery.observer.headers_arrived()
        self._hold(body)

    def _hold(self, body: Body) -> None:
        """Make ``body`` the one :meth:`stop` wakes and the end closes."""
        self._body = body
        if self.life.stopping:
            body.shutdown()

    # --- the end -------------------------------------------------------------------------

    def _end(self, error: ChatStreamError | None) -> None:
        """Decide the outcome (see :mod:`chatstream._shell.outcome`) and tell every observer."""
        parser = self.parser
        stopped = self.life.end()
        error = decide(
            reason=stopped.reason,
            body_ended=stopped.settled,
            body_error=parser.error,
            met=error,
            callback_error=stopped.callback_error,
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
        observer = self.delivery.observer
        response = observer.timed(response)
        if error is not None:
            error.partial = response
        try:  # before the end is announced: a span ends before result() returns
            if error is not None:
                observer.failed(error)
            observer.ended(response, error)
        except BaseException:
            log.exception("a telemetry hook raised after the stream ended")
        self.error = error
        self.outcome = response
        self.finished.set()
        self.delivery.end(response, error)

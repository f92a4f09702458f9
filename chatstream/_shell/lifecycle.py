"""One stream's stop state: a state, one lock, and the hooks that run when it stops.

The worker, the read loop, the delivery and the queue share one :class:`Lifecycle` and
read their stop state from it, instead of each keeping flags of its own::

    RUNNING ──stop(reason)──▶ STOPPING ──end()──▶ ENDED
       └──────────────────────end()─────────────────┘

* :meth:`Lifecycle.stop` (a close, a time limit, a callback that raised) records the
  first reason and runs the stop hooks: each wakes one thing the worker may be blocked
  on (the body's socket, the request waiting for its headers, the queue).
* :meth:`Lifecycle.settle` records that the body ended: the core's outcome stands,
  whatever a stop does afterwards (:mod:`chatstream._shell.outcome`, rule 2).
* :meth:`Lifecycle.end` decides: from then on nothing changes the outcome.
* :meth:`Lifecycle.close` is the caller's ``close()``: a stop, and the iterators end.

Every method may be called from any thread, and :meth:`stop` and :meth:`close` from a
signal handler that interrupted a thread inside them (the lock is re-entrant, and the
hooks never wait for a lock). In a forked child, :meth:`stop` does nothing: the stream,
and its socket, are the parent's.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .outcome import StopReason

__all__ = ["Lifecycle", "State", "Stopped"]

log = logging.getLogger("chatstream")


class State(enum.Enum):
    """Where a stream is in its life."""

    #: Opening the response or reading it.
    RUNNING = "running"
    #: Asked to stop from outside (see :attr:`Lifecycle.reason`); not decided yet.
    STOPPING = "stopping"
    #: The outcome is decided: nothing changes it any more.
    ENDED = "ended"


@dataclass(frozen=True)
class Stopped:
    """What the outcome is decided from (see :func:`~chatstream._shell.outcome.decide`)."""

    reason: StopReason | None
    settled: bool
    callback_error: BaseException | None


class Lifecycle:
    """One stream's stop state (see the module documentation)."""

    def __init__(self) -> None:
        # Re-entrant: stop() may run in a signal handler that interrupted this same
        # thread's stop().
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._on_stop: list[Callable[[], None]] = []
        self._on_close: list[Callable[[], None]] = []
        self.state = State.RUNNING
        #: Why the stream was stopped from outside (the first reason), or ``None``.
        self.reason: StopReason | None = None
        #: True once a stop was asked: no more callbacks, no more reads. (Attributes,
        #: not properties: read for every event.)
        self.stopping = False
        #: True when the stream was closed or a callback raised: dispatched calls that
        #: have not run yet are skipped.
        self.halted = False
        #: The body ended: the core has its outcome (rule 2).
        self.settled = False
        #: The finish grace or the drain ran out: reading ends, without failing.
        self.cut = False
        #: The caller closed the stream: iterators end, dispatched calls are skipped.
        self.closed = False
        #: What a callback raised first, if one did before the end.
        self.callback_error: BaseException | None = None
        #: Set with the first stop, for waits that take an event (the retry's pause).
        self.stopped = threading.Event()
        #: Set once the outcome is decided and stored: every observer may look.
        self.finished = threading.Event()

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the stream is stopped (at once if it already was). A hook
        returns at once, from any thread, and never raises."""
        with self._lock:
            if self.state is State.ENDED:
                return  # nothing is left to wake
            if self.reason is None:
                self._on_stop.append(hook)
                return
        hook()

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the caller closes the stream (same rules as
        :meth:`on_stop`)."""
        with self._lock:
            if not self.closed:
                self._on_close.append(hook)
                return
        hook()

    def stop(self, reason: StopReason) -> None:
        """Stop the stream for ``reason``; returns at once. The first reason wins, and
        once the outcome is decided nothing changes it."""
        if os.getpid() != self._pid:
            return  # a forked child: the stream, and its socket, are the parent's
        with self._lock:
            if self.state is not State.RUNNING:
                return
            self.state = State.STOPPING
            self.reason = reason
            self.halted = reason is StopReason.CLOSED or reason is StopReason.CALLBACK
            self.stopping = True
            hooks, self._on_stop = self._on_stop, []
        self.stopped.set()
        for hook in hooks:
            hook()

    def close(self) -> None:
        """The caller's ``close()``: stop the stream (if it still runs) and end every
        iterator. Idempotent; returns at once."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            hooks, self._on_close = self._on_close, []
        self.stop(StopReason.CLOSED)
        for hook in hooks:
            hook()

    def fail(self, exc: BaseException) -> None:
        """A callback raised ``exc`` (on any thread): the stream stops, and ends in a
        :class:`~chatstream.CallbackError` unless its outcome was already decided."""
        with self._lock:
            late = self.state is State.ENDED
            if not late and self.callback_error is None:
                self.callback_error = exc
        if late:
            # A dispatched callback that ran after the end: too late to change the
            # outcome, but never silent.
            log.error("a callback raised after the stream ended", exc_info=exc)
        else:
            self.stop(StopReason.CALLBACK)

    def settle(self) -> None:
        """The body ended: from now on, a stop no longer changes the outcome."""
        with self._lock:
            self.settled = True

    def end(self) -> Stopped:
        """Decide: nothing changes the outcome after this. Returns what it is decided
        from."""
        with self._lock:
            self.state = State.ENDED
            self._on_stop = []
            return Stopped(self.reason, self.settled, self.callback_error)

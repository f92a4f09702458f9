"""The shell's process-wide state, in one place, and what a forked child does with it.

* the **live streams**: closed at interpreter exit, so that no worker is cut off in the
  middle of a write to a dying interpreter; their number sets the coalescing pause;
* the **parse lock**: held by the stream whose bytes are being parsed when streams
  coalesce (see :meth:`chatstream._shell.reading.ReadLoop.run`); none with
  free-threaded Python, where streams parse in parallel;
* the **thread pool** the workers run on (:mod:`chatstream._shell.threads`);
* the **watchdog** that enforces every stream's time limits
  (:mod:`chatstream._shell.watchdog`);
* the **sessions** streams were sent with: their connection pools.

After ``fork()`` the child has none of its parent's threads, and any lock one of them
held stays held forever; the sockets it inherits are the parent's connections. So one
hook, run in the child, starts it afresh: no live stream (the inherited ones are the
parent's, and stopping one in the child does nothing:
:class:`~chatstream._shell.lifecycle.Lifecycle`), a new parse lock, a new pool, a new
watchdog (every watchdog of an inherited stream forgets its thread), and every session's
connection pools empty, their sockets dropped without touching the parent's connections
(:func:`chatstream._shell.transport.forget_pooled_connections`). The query filter on
urllib3's loggers (:mod:`chatstream._shell.redact`) holds no lock and stays: the child's
clients still need it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from collections import deque
from typing import Protocol

import requests

from . import transport as _transport
from .outcome import StopReason
from .threads import Pool
from .watchdog import Watchdog

__all__ = [
    "FifoLock",
    "LiveStream",
    "default_watchdog",
    "ended",
    "idle_threads",
    "parse_lock",
    "pool",
    "running",
    "started",
]


class LiveStream(Protocol):
    """What the process needs of a running stream."""

    @property
    def watchdog(self) -> Watchdog:
        """The watchdog that enforces its time limits."""

    def stop(self, reason: StopReason) -> None:
        """Stop it; returns at once."""


class FifoLock:
    """A lock taken in turns: released while others wait, it passes to the one that has
    waited longest (``threading.Lock`` would let the thread that releases it take it
    again at once, before a waiting thread wakes up)."""

    __slots__ = ("_lock", "_mutex", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held by the thread whose turn it is
        self._mutex = threading.Lock()  # guards _waiting, and the hand-over
        self._waiting: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        if self._lock.acquire(blocking=False):
            return
        with self._mutex:
            if self._lock.acquire(blocking=False):  # released meanwhile
                return
            baton = threading.Lock()
            baton.acquire()
            self._waiting.append(baton)
        baton.acquire()  # released by the holder, which hands the turn over

    def __exit__(self, *exc_info: object) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # the lock stays held: now theirs
            else:
                self._lock.release()


class _State:
    """Everything that a forked child must not inherit as it is."""

    def __init__(self) -> None:
        self.live: weakref.WeakSet[LiveStream] = weakref.WeakSet()
        self.parse_lock: FifoLock | None = (
            FifoLock() if getattr(sys, "_is_gil_enabled", lambda: True)() else None
        )
        self.pool = Pool()
        self.watchdog: Watchdog | None = None
        self.watchdog_lock = threading.Lock()


_state = _State()
#: The sessions streams were sent with (kept across a fork: the child's clients use
#: them, with their pools emptied).
_sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()


def started(stream: LiveStream, session: requests.Session) -> None:
    """``stream`` runs, sending with ``session``."""
    _state.live.add(stream)
    _sessions.add(session)


def ended(stream: LiveStream) -> None:
    """``stream`` has ended."""
    _state.live.discard(stream)


def running() -> int:
    """How many streams run in the process."""
    return len(_state.live)


def parse_lock() -> FifoLock | None:
    """The lock a stream holds while it parses, when streams coalesce (``None`` with
    free-threaded Python)."""
    return _state.parse_lock


def pool() -> Pool:
    """The threads streams run on."""
    return _state.pool


def idle_threads() -> set[threading.Thread]:
    """The pool's threads that run no stream now (they end by themselves within
    :data:`~chatstream._shell.threads.IDLE_TIMEOUT` seconds): what a leak check should
    not count."""
    return _state.pool.idle_threads()


def default_watchdog() -> Watchdog:
    """The process's watchdog."""
    state = _state
    with state.watchdog_lock:
        if state.watchdog is None:
            state.watchdog = Watchdog()
        return state.watchdog


@atexit.register
def _close_all() -> None:
    for stream in list(_state.live):
        stream.stop(StopReason.CLOSED)


def _after_fork_in_child() -> None:
    global _state
    inherited = list(_state.live)
    _state = _State()
    for stream in inherited:
        stream.watchdog.reset_in_child()
    for session in list(_sessions):
        _transport.forget_pooled_connections(session)


os.register_at_fork(after_in_child=_after_fork_in_child)

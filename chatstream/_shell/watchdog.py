"""The watchdog: one thread that enforces every live stream's time limits.

A socket read timeout cannot do this job: it bounds each ``recv``, so a server trickling
a byte every half second keeps a stream alive forever (measured). Instead each stream
reports when it is blocked reading, and the watchdog ends streams that have waited too
long by shutting their socket down, which wakes the blocked reader at once.

One thread serves every stream of the process. It starts with the first stream and ends
when the last one ends, so an idle program keeps no thread. The clock can be injected,
and :meth:`Watchdog.check` run by hand, so tests need no sleeping.

After ``fork()`` the child has none of the parent's threads: every watchdog forgets its
thread and its streams there (they are the parent's), so the child's own streams get a
thread of their own.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["Watchable", "Watchdog", "default_watchdog"]

#: The longest the thread sleeps between checks: limits fire at most this late.
TICK = 0.1


class Watchable(Protocol):
    """What the watchdog needs of a stream."""

    def check_deadline(self, now: float) -> float | None:
        """Act if a limit has passed; return when to look again (or None: not needed)."""


class Watchdog:
    """Checks registered streams against their limits.

    Args:
        clock: Monotonic seconds; ``time.monotonic`` unless a test injects another.
        thread: Run a background thread. Without one, call :meth:`check` yourself.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, thread: bool = True) -> None:
        self.clock = clock
        self._use_thread = thread
        self._streams: weakref.WeakSet[Watchable] = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        _ALL.add(self)

    def _after_fork(self) -> None:
        # The parent's watchdog thread does not exist here, and its lock may have been
        # held by it at the fork.
        self._streams = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread = None

    def register(self, stream: Watchable) -> None:
        """Watch ``stream`` until :meth:`unregister`."""
        with self._wake:
            self._streams.add(stream)
            if self._use_thread and self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="chatstream-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def unregister(self, stream: Watchable) -> None:
        """Stop watching ``stream``."""
        with self._wake:
            self._streams.discard(stream)
            self._wake.notify()

    def check(self) -> float | None:
        """Check every stream once; return the earliest time to check again."""
        now = self.clock()
        with self._wake:
            streams = list(self._streams)
        soonest: float | None = None
        for stream in streams:
            when = stream.check_deadline(now)
            if when is not None and (soonest is None or when < soonest):
                soonest = when
        return soonest

    def _run(self) -> None:
        while True:
            soonest = self.check()
            with self._wake:
                if not self._streams:
                    self._thread = None
                    return
                wait = TICK if soonest is None else min(TICK, max(soonest - self.clock(), 0.0))
                self._wake.wait(wait)


_ALL: weakref.WeakSet[Watchdog] = weakref.WeakSet()
_default: Watchdog | None = None
_default_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _default, _default_lock
    _default_lock = threading.Lock()
    _default = None
    for watchdog in list(_ALL):
        watchdog._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_watchdog() -> Watchdog:
    """The process's shared watchdog."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Watchdog()
        return _default

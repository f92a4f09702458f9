"""The watchdog: one thread that enforces every live stream's time limits.

A socket read timeout cannot do this job: it bounds each ``recv``, so a server trickling
a byte every half second keeps a stream alive forever (measured). Instead each stream
reports when it is blocked reading, and the watchdog ends streams that have waited too
long by shutting their socket down, which wakes the blocked reader at once.

One thread serves every stream of the process. It starts with the first stream and ends
when the last one ends, so an idle program keeps no thread. The clock can be injected,
and :meth:`Watchdog.check` run by hand, so tests need no sleeping.
"""

from __future__ import annotations

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

    def poke(self) -> None:
        """Look again now (a stream's limits moved closer)."""
        with self._wake:
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


_default: Watchdog | None = None
_default_lock = threading.Lock()


def default_watchdog() -> Watchdog:
    """The process's shared watchdog."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Watchdog()
        return _default

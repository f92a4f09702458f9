"""The watchdog: one thread that enforces every live stream's time limits.

A socket read timeout cannot do this job: it bounds each ``recv``, so a server trickling
a byte every half second keeps a stream alive forever (measured). Instead each stream
reports when it is blocked reading, and the watchdog ends streams that have waited too
long by shutting their socket down, which wakes the blocked reader at once.

One thread serves every stream of the process. It starts with the first stream and ends
when the last one ends, so an idle program keeps no thread. The clock can be injected,
and :meth:`Watchdog.check` run by hand, so tests need no sleeping.

When its thread cannot be started (the process is at its thread limit),
:meth:`Watchdog.register` raises and watches nothing: the stream fails at once rather
than run without its time limits, and the next stream tries again.

The process's watchdog is :func:`chatstream._shell.process.default_watchdog`. After
``fork()`` the child has none of the parent's threads: every watchdog forgets its thread
and its streams there (they are the parent's; :meth:`Watchdog.reset_in_child`), so the
child's own streams get a thread of their own.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["TICK", "THREAD_NAME", "Watchable", "Watchdog"]

#: The longest the thread sleeps between checks: limits fire at most this late.
TICK = 0.1
THREAD_NAME = "chatstream-watchdog"


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

    def reset_in_child(self) -> None:
        """Forget the parent's thread and streams (in a forked child)."""
        # The parent's watchdog thread does not exist here, and its lock may have been
        # held by it at the fork.
        self._streams = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread = None

    def register(self, stream: Watchable) -> None:
        """Watch ``stream`` until :meth:`unregister`.

        Raises:
            RuntimeError: The watchdog's thread could not be started (``stream`` is not
                watched).
        """
        with self._wake:
            self._streams.add(stream)
            if self._use_thread and self._thread is None:
                thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                try:
                    thread.start()
                except BaseException:
                    # Watched by no thread: the stream must not run (its limits would be
                    # silently off), and the next one tries again.
                    self._streams.discard(stream)
                    raise
                self._thread = thread
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

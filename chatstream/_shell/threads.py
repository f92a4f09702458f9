"""The threads streams run on: a process-wide pool of reusable worker threads.

Each running stream has a thread of its own for as long as it runs. When it ends, its
thread waits :data:`IDLE_TIMEOUT` seconds for the next stream, then ends: an idle
program keeps no thread, and a program that starts streams again and again does not
pay for a new thread each time.

Starting a stream never waits for a thread to start. ``Thread.start()`` waits until the
new thread runs, and when hundreds of threads queue for the interpreter lock that
takes milliseconds per thread (1 000 streams took 8.3 s to start, measured). So
:func:`submit` hands the stream to an idle thread if there is one, and otherwise asks
the starter thread (one per process, itself gone when it has nothing to do) for one more
thread, and returns. Each new thread starts one more, if more are owed, before it takes a
stream: the threads of a burst start in parallel, not one after another.

After ``fork()`` the child has none of the parent's threads: the pool forgets them and
its queue (the parent's streams are the parent's), and starts afresh.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["IDLE_TIMEOUT", "Job", "idle_threads", "submit"]

log = logging.getLogger("chatstream")

#: How long a thread with nothing to run waits for the next stream before it ends.
IDLE_TIMEOUT = 2.0

RUNNING_NAME = "chatstream-worker"
IDLE_NAME = "chatstream-idle"


class Job:
    """One stream's run on the pool: join it, ask whether it still runs, and which
    thread it runs on."""

    __slots__ = ("_done", "_target", "thread")

    def __init__(self, target: Callable[[], None]) -> None:
        self._target: Callable[[], None] | None = target
        self._done = threading.Event()
        #: The thread it runs (or ran) on; ``None`` until it starts.
        self.thread: threading.Thread | None = None

    def join(self, timeout: float | None = None) -> bool:
        """Wait until it has run to its end; True if it has."""
        return self._done.wait(timeout)

    def is_alive(self) -> bool:
        """True until it has run to its end (waiting for a thread included)."""
        return not self._done.is_set()

    def _run(self) -> None:
        target, self._target = self._target, None  # hold nothing once it ran
        self.thread = threading.current_thread()
        try:
            if target is not None:
                target()
        except BaseException:  # the target handles its own errors: this is a bug
            log.exception("chatstream worker failed")
        finally:
            self._done.set()


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # idle threads wait here
        self._more = threading.Condition(self._lock)  # the starter waits here
        self._jobs: deque[Job] = deque()
        self._idle: set[threading.Thread] = set()  # threads waiting for a job
        self._promised = 0  # threads asked of the starter and not yet waiting
        self._owed = 0  # threads the starter has still to start
        self._starter: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        start_starter = False
        with self._lock:
            self._jobs.append(job)
            if len(self._idle) + self._promised >= len(self._jobs):
                self._work.notify()
                return
            self._promised += 1
            self._owed += 1
            if self._starter is None:
                self._starter = threading.Thread(
                    target=self._start_threads, name="chatstream-starter", daemon=True
                )
                start_starter = True
            else:
                self._more.notify()
        if start_starter:
            # Once per burst, and before the burst saturates anything.
            assert self._starter is not None
            self._starter.start()

    def idle_threads(self) -> set[threading.Thread]:
        with self._lock:
            idle = set(self._idle)
            if self._starter is not None and self._owed == 0:
                idle.add(self._starter)
            return idle

    def _start_threads(self) -> None:
        while True:
            with self._lock:
                if self._owed == 0:
                    self._more.wait(IDLE_TIMEOUT)
                    if self._owed == 0:
                        self._starter = None
                        return
                self._owed -= 1
            self._start_one()

    def _start_one(self) -> None:
        """Start one thread owed (counted off ``_owed`` already)."""
        try:
            threading.Thread(target=self._serve, name=RUNNING_NAME, daemon=True).start()
        except BaseException:  # no thread to be had (RuntimeError): run a job here
            log.exception("chatstream could not start a worker thread")
            with self._lock:
                self._promised -= 1
                job = self._jobs.popleft() if self._jobs else None
            if job is not None:
                job._run()

    def _serve(self) -> None:
        me = threading.current_thread()
        with self._lock:
            self._promised -= 1
            helping = self._owed > 0
            if helping:
                self._owed -= 1
        if helping:
            # More threads are owed: start one from here too, so that the threads of a
            # burst are started in parallel (each start waits for its thread to run).
            self._start_one()
        while True:
            with self._lock:
                if not self._jobs:
                    me.name = IDLE_NAME
                    self._idle.add(me)
                    while not self._jobs:
                        if not self._work.wait(IDLE_TIMEOUT) and not self._jobs:
                            self._idle.discard(me)
                            return
                    self._idle.discard(me)
                    me.name = RUNNING_NAME
                job = self._jobs.popleft()
            job._run()
            del job  # hold no stream while idle


_pool = _Pool()


def _after_fork_in_child() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_after_fork_in_child)


def submit(job: Job) -> None:
    """Run ``job`` on a pool thread, soon; returns at once."""
    _pool.submit(job)


def idle_threads() -> set[threading.Thread]:
    """The pool's threads that run no stream now (they end by themselves within
    :data:`IDLE_TIMEOUT` seconds): what a leak check should not count."""
    return _pool.idle_threads()

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

When no thread can be started (the process is at its thread limit: ``ulimit -u``, a
container's ``pids.max``), the stream that was to run on it is refused at once (its
job's ``refuse`` is called: the stream fails without sending anything), and the pool
tries again for the next stream: no stream ever waits behind another one for a thread.

The process's pool is :func:`chatstream._shell.process.pool`; after ``fork()`` the child
gets a new one (the parent's threads do not exist there).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["IDLE_TIMEOUT", "IDLE_NAME", "RUNNING_NAME", "Job", "Pool", "Refuse"]

log = logging.getLogger("chatstream")

#: How long a thread with nothing to run waits for the next stream before it ends.
IDLE_TIMEOUT = 2.0

RUNNING_NAME = "chatstream-worker"
IDLE_NAME = "chatstream-idle"
STARTER_NAME = "chatstream-starter"

#: Told why no thread could be had for a job (``Thread.start()``'s error).
Refuse = Callable[[BaseException], None]


class Job:
    """One stream's run on the pool: join it, ask whether it still runs, and which
    thread it runs on. ``refuse`` runs instead of ``target`` when no thread could be
    started for it."""

    __slots__ = ("_done", "_refuse", "_target", "thread")

    def __init__(self, target: Callable[[], None], refuse: Refuse) -> None:
        self._target: Callable[[], None] | None = target
        self._refuse: Refuse | None = refuse
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
        target, self._target, self._refuse = self._target, None, None  # hold nothing
        self.thread = threading.current_thread()
        try:
            if target is not None:
                target()
        except BaseException:  # the target handles its own errors: this is a bug
            log.exception("chatstream worker failed")
        finally:
            self._done.set()

    def refuse(self, error: BaseException) -> None:
        """Run ``refuse`` instead of the target: no thread could be had for it."""
        refuse, self._target, self._refuse = self._refuse, None, None
        try:
            if refuse is not None:
                refuse(error)
        except BaseException:  # the refusal handles its own errors: this is a bug
            log.exception("chatstream worker failed")
        finally:
            self._done.set()


class Pool:
    """Reusable threads for jobs (see the module documentation)."""

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
        """Run ``job`` on a thread of the pool, soon; returns at once (after refusing
        it, when no thread can be started)."""
        with self._lock:
            self._jobs.append(job)
            if len(self._idle) + self._promised >= len(self._jobs):
                self._work.notify()
                return
            self._promised += 1
            self._owed += 1
            if self._starter is not None:
                self._more.notify()
                return
            starter = self._starter = threading.Thread(
                target=self._start_threads, name=STARTER_NAME, daemon=True
            )
        try:
            # Once per burst, and before the burst saturates anything.
            starter.start()
        except Exception as exc:
            with self._lock:
                if self._starter is starter:
                    self._starter = None
                # The threads it owed will not come: the jobs they were for are refused
                # (so is a job submitted meanwhile), and the next submit tries again.
                self._promised -= self._owed
                self._owed = 0
                refused = self._unserved()
            self._refuse(refused, exc)

    def _unserved(self) -> list[Job]:
        """Take the jobs no thread will come for (with the lock held), oldest first."""
        refused: list[Job] = []
        while len(self._jobs) > len(self._idle) + self._promised:
            refused.append(self._jobs.popleft())
        return refused

    @staticmethod
    def _refuse(jobs: list[Job], error: BaseException) -> None:
        log.warning("chatstream could not start a thread: %s", error)
        for job in jobs:
            job.refuse(error)

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
        except Exception as exc:  # no thread to be had: refuse the job it was for
            with self._lock:
                self._promised -= 1
                refused = self._unserved()
            self._refuse(refused, exc)

    def _serve(self) -> None:
        me = threading.current_thread()
        with self._lock:
            helping = self._owed > 0
            if helping:
                self._owed -= 1
        if helping:
            # More threads are owed: start one from here too, so that the threads of a
            # burst are started in parallel (each start waits for its thread to run).
            self._start_one()
        # Counted as promised until now, so that a thread that failed to start above
        # refuses no job this one is about to take.
        promised = True
        while True:
            with self._lock:
                if promised:
                    self._promised -= 1
                    promised = False
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

"""Test configuration shared by every test module."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from chatstream._shell.process import idle_threads
from tests.loopback import LoopbackServer

# Hypothesis: random (not derandomized, so every run explores new inputs) but bounded, so
# that the whole suite stays fast. A property's own @settings(max_examples=...) narrows
# this further. HYPOTHESIS_PROFILE=thorough runs far more examples by hand.
settings.register_profile(
    "chatstream",
    max_examples=50,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("chatstream"),
    max_examples=2000,  # 40 times each property's own budget
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "chatstream"))


# --- Leak checking and the loopback server (used by the client tests) -----------------

#: How long a test's worker and watchdog threads (which end asynchronously) and their
#: sockets get to go away before the test counts them as leaked.
LEAK_DEADLINE = 2.0


def _open_fds() -> int:
    """How many file descriptors this process has open (Linux: /proc/self/fd)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except FileNotFoundError:  # pragma: no cover - not Linux
        return 0


def busy_threads() -> int:
    """How many threads this process runs, not counting chatstream's idle pool threads
    (they hold no stream, and end by themselves: see :mod:`chatstream._shell.threads`)."""
    return threading.active_count() - len(idle_threads())


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test unless the thread count and the open file descriptors are back to
    where they were before it, within :data:`LEAK_DEADLINE` seconds of its end.

    Request it explicitly, or for a whole module with
    ``pytestmark = pytest.mark.usefixtures("no_leaks")`` (fixtures named there are set
    up before the test's own, so the ``server`` fixture is closed before the check).
    """
    threads = busy_threads()
    fds = _open_fds()
    yield
    deadline = time.monotonic() + LEAK_DEADLINE
    collected_at = 0.0
    while True:
        now_threads, now_fds = busy_threads(), _open_fds()
        if now_threads <= threads and now_fds <= fds:
            return
        now = time.monotonic()
        if now > deadline:
            names = sorted(t.name for t in threading.enumerate())
            pytest.fail(
                f"leak: {now_threads - threads} thread(s) and {now_fds - fds} file "
                f"descriptor(s) still open {LEAK_DEADLINE} s after the test; threads: {names}"
            )
        if now - collected_at > 0.05:
            # A stream dropped inside a traceback (a cycle) is freed, and so closed, by
            # the collector: give it the chance, but not on every poll (it is slow).
            gc.collect()
            collected_at = now
        else:
            # Worker and watchdog threads end asynchronously, and there is no event to
            # wait on for "some thread ended": poll briefly.
            time.sleep(0.005)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server on 127.0.0.1, closed after the test."""
    with LoopbackServer(io_timeout=10.0) as srv:
        yield srv

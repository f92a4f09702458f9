"""The queue between a stream's worker and its iterating threads: a wake-up from a signal
handler that found the queue's lock taken is passed on by the thread holding it, not
left to the bounded wait (set to a minute here, so that only the hand-over can pass)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from chatstream._shell import delivery as _delivery
from chatstream._shell.delivery import EventQueue, Interrupted
from chatstream._shell.lifecycle import Lifecycle
from chatstream.events import OutputTextDelta

from ..adversarial.harness import wait_until

WAIT = 10.0


@pytest.fixture(autouse=True)
def long_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_delivery, "POLL", 60.0)
    monkeypatch.setattr(_delivery, "_WAKE_TRY", 0.01)


def waiting(condition: threading.Condition) -> Callable[[], bool]:
    return lambda: bool(condition._waiters)  # type: ignore[attr-defined]


def test_a_close_that_found_the_lock_taken_reaches_the_worker_waiting_for_room() -> None:
    life = Lifecycle()
    queue = EventQueue(1, life)
    queue.put([OutputTextDelta("x")])  # full: the next put waits for room
    outcome: list[str] = []

    def worker() -> None:
        try:
            queue.put([OutputTextDelta("x")])
            outcome.append("put")
        except Interrupted:
            outcome.append("interrupted")

    thread = threading.Thread(target=worker)
    thread.start()
    assert wait_until(waiting(queue._room), WAIT)
    with queue._lock:  # a signal handler closed the stream while this thread held it
        life.close()
    assert queue.get() is None  # the holder's next turn at the lock passes it on
    thread.join(WAIT)
    assert outcome == ["interrupted"]


def test_a_close_that_found_the_lock_taken_reaches_every_waiting_consumer() -> None:
    life = Lifecycle()
    queue = EventQueue(4, life)
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    assert wait_until(waiting(queue._ready), WAIT)
    with queue._lock:
        life.close()
    assert queue.get() is None
    thread.join(WAIT)
    assert got == [None]

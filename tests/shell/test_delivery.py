"""Delivery (chatstream._shell.delivery): the queue between a stream's worker and its
iterating threads, where a wake-up from a signal handler that found the queue's lock taken
is passed on by the thread holding it, not left to the bounded wait (set to a minute here,
so that only the hand-over can pass); and ``Client.stream(on_bytes=...)``, the body's bytes
as read, the hook behind ``chatstream chat --record``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

import chatstream
from chatstream._shell import delivery as _delivery
from chatstream._shell.delivery import EventQueue, Interrupted
from chatstream._shell.lifecycle import Lifecycle
from chatstream.events import OutputTextDelta
from tests.helpers import build_body, chunk
from tests.loopback import LoopbackServer, sse_body

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


# --- Client.stream(on_bytes=...): the body's bytes as read -----------------------------------


pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"
BODY = build_body(
    [chunk("h\u00e9llo"), chunk(finish="stop")],
    event=None,
    done=True,
)


@pytest.mark.parametrize("gzip", [False, True])
def test_on_bytes_gets_the_decoded_body_on_the_worker_thread(
    server: LoopbackServer, gzip: bool
) -> None:
    server.route(PATH, sse_body(BODY, split=True, gzip=gzip))
    pieces: list[bytes] = []
    threads: set[str] = set()

    def record(data: bytes) -> None:
        pieces.append(data)
        threads.add(threading.current_thread().name)

    with chatstream.Client(server.url + "/v1") as client:
        response = client.stream({"model": "m", "messages": []}, on_bytes=record).result()
    assert response.content == "h\u00e9llo"
    assert b"".join(pieces) == BODY
    assert threads == {"chatstream-worker"}


def test_on_bytes_sees_a_whole_json_completion(server: LoopbackServer) -> None:
    completion = {
        "id": "c1",
        "choices": [{"index": 0, "message": {"content": "whole"}, "finish_reason": "stop"}],
    }
    data = json.dumps(completion).encode()
    server.route(PATH, lambda conn: conn.respond(200, data, {"Content-Type": "application/json"}))
    pieces: list[bytes] = []
    with chatstream.Client(server.url + "/v1") as client:
        stream = client.stream({"model": "m", "messages": []}, on_bytes=pieces.append)
        assert stream.result().content == "whole"
    assert b"".join(pieces) == data


def test_an_on_bytes_that_raises_ends_the_stream(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(BODY))

    def full_disk(data: bytes) -> None:
        raise OSError("No space left on device")

    with chatstream.Client(server.url + "/v1") as client:
        stream = client.stream({"model": "m", "messages": []}, on_bytes=full_disk)
        with pytest.raises(chatstream.CallbackError) as caught:
            stream.result()
    assert isinstance(caught.value.__cause__, OSError)

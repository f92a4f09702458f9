"""The worker threads' pool (chatstream._shell.threads): starting a stream never waits for a
thread to start, threads are reused while idle, and idle threads end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatstream import ChatStreamError, Client, Connections, Response, Retry, Telemetry
from chatstream._shell import process as _process
from chatstream._shell import threads as _threads
from chatstream._shell.threads import RUNNING_NAME
from tests.loopback import LoopbackServer, sse_body

from ..adversarial.harness import wait_until
from ..fakes import STALL, FakeBody, fake_stream
from ..helpers import BODY, HELLO

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT = 10.0


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[Client]:
    server.set_default(sse_body(HELLO))
    with Client(
        server.url + "/v1", "k", retry=Retry(max_retries=0), connections=Connections(pool_size=64)
    ) as c:
        yield c


def _start_callback_streams(client: Client, n: int) -> tuple[list[Any], list[Response]]:
    ends: list[Response] = []
    lock = threading.Lock()

    def on_end(response: Response) -> None:
        with lock:
            ends.append(response)

    streams = [client.stream(BODY, on_event=lambda e: None, on_end=on_end) for _ in range(n)]
    return streams, ends


def test_starting_streams_starts_no_worker_thread_on_the_calling_thread(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    started_here: list[str] = []
    start = threading.Thread.start
    me = threading.current_thread()

    def recording_start(self: threading.Thread) -> None:
        if threading.current_thread() is me:
            started_here.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    streams, ends = _start_callback_streams(client, 40)
    # At most the watchdog and the pool's starter, once each: never a thread per stream.
    assert sorted(started_here) in (
        [],
        ["chatstream-starter"],
        ["chatstream-watchdog"],
        ["chatstream-starter", "chatstream-watchdog"],
    )
    assert wait_until(lambda: len(ends) == 40, WAIT)
    assert [r.content for r in ends] == ["Hello"] * 40
    assert all(s.result(timeout=WAIT).content == "Hello" for s in streams)


def test_a_stream_runs_on_a_thread_left_idle_by_an_earlier_one(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_threads, "IDLE_TIMEOUT", 5.0)  # none ends during the test
    first = client.stream(BODY)
    assert first.result(timeout=WAIT).content == "Hello"
    assert first._worker.job.join(WAIT)
    idle = _process.idle_threads()
    assert first._worker.job.thread in idle
    second = client.stream(BODY)
    assert second.result(timeout=WAIT).content == "Hello"
    assert second._worker.job.thread in idle


def test_idle_threads_end_after_the_idle_timeout(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_threads, "IDLE_TIMEOUT", 0.05)
    streams, ends = _start_callback_streams(client, 20)
    assert wait_until(lambda: len(ends) == 20, WAIT)
    threads = {s._worker.job.thread for s in streams if s._worker.job.join(WAIT)}
    assert threads and None not in threads
    for thread in threads:
        assert thread is not None
        thread.join(WAIT)
        assert not thread.is_alive()
    assert wait_until(lambda: not _process.idle_threads(), WAIT)


# --- a thread that cannot start (the process is at its thread limit) -------------------


def fail_to_start_once(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Make the next start of a thread named ``name`` fail as it does at the process's
    thread limit; returns the names of the threads that failed to start."""
    start = threading.Thread.start
    failed: list[str] = []

    def start_or_fail(self: threading.Thread) -> None:
        if self.name == name and not failed:
            failed.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", start_or_fail)
    return failed


@pytest.fixture
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool with no thread yet, so that the next stream needs a new one."""
    monkeypatch.setattr(_process._state, "pool", _threads.Pool())


@pytest.mark.usefixtures("fresh_pool")
def test_a_stream_whose_pool_starter_cannot_start_fails_at_once_and_the_next_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed = fail_to_start_once(monkeypatch, "chatstream-starter")
    first = fake_stream(FakeBody([HELLO]))
    assert failed == ["chatstream-starter"]
    with pytest.raises(ChatStreamError) as caught:
        first.result(timeout=WAIT)
    assert caught.value.kind == "thread_limit"
    assert fake_stream(FakeBody([HELLO])).result(timeout=WAIT).content == "Hello"


class _Recorder(Telemetry):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_stream_start(self, stream: Any) -> object:
        self.calls.append(("start", None))
        return "context"

    def on_stream_end(self, context: object, response: Response, error: Any) -> None:
        self.calls.append(("end", (context, error.kind if error else None)))


@pytest.mark.usefixtures("fresh_pool")
def test_telemetry_sees_a_stream_refused_a_thread_start_and_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fail_to_start_once(monkeypatch, "chatstream-starter")
    recorder = _Recorder()
    stream = fake_stream(FakeBody([HELLO]), telemetry=recorder)
    with pytest.raises(ChatStreamError):
        stream.result(timeout=WAIT)
    assert recorder.calls == [("start", None), ("end", ("context", "thread_limit"))]


@pytest.mark.usefixtures("fresh_pool")
def test_a_stream_whose_worker_thread_cannot_start_holds_up_no_other_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed = fail_to_start_once(monkeypatch, RUNNING_NAME)
    stalled = FakeBody([STALL])
    with fake_stream(stalled) as first:
        # It failed, or (the fault) runs on the starter thread, which starts no more.
        assert wait_until(lambda: first.done or stalled.stalled.is_set(), WAIT)
        assert failed == [RUNNING_NAME]
        assert fake_stream(FakeBody([HELLO])).result(timeout=WAIT).content == "Hello"
        with pytest.raises(ChatStreamError) as caught:
            first.result(timeout=WAIT)
        assert caught.value.kind == "thread_limit"

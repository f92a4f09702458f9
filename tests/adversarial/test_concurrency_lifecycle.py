"""§4 D (cases 41-50): cancellation, backpressure, callbacks, many streams, abandoned
streams, interpreter exit.

``close()`` from another thread returns in under 100 ms whatever the worker is blocked on
(a socket read, the wait for the headers, a full queue, a slow callback); the worker is
gone within a second; the stream ends exactly once, as closed; the next stream on the
same client works.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from chatstream import (
    CallbackError,
    ChatStream,
    Client,
    ResponseEvent,
    StreamClosedError,
    StreamOptions,
    TotalTimeoutError,
)
from chatstream._shell.reading import READ_SIZE
from tests.helpers import CLOSE_BOUND, WORKER_BOUND, answer, chunk, limit_bound
from tests.loopback import Conn, LoopbackServer, sequence, sse_body

from .harness import (
    BODY,
    IDLE,
    PATH,
    MiB,
    PeakRSS,
    check,
    event,
    run_stream,
    start,
    wait_until,
    words,
)

ROOT = Path(__file__).resolve().parents[2]


def _stall(first: bytes, *, mode: str = "chunked") -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode)  # type: ignore[arg-type]
        if first:
            conn.write(first)
        conn.sleep(60)

    return handler


def _never_answers(conn: Conn) -> None:
    conn.sleep(60)  # reads the request, sends nothing


def _close_fast(stream: ChatStream) -> float:
    began = time.monotonic()
    stream.close()
    took = time.monotonic() - began
    assert took < CLOSE_BOUND, f"close() took {took:.3f} s"
    return took


def _worker_gone(stream: ChatStream, within: float = WORKER_BOUND) -> None:
    thread = stream._worker.job
    thread.join(within)
    assert not thread.is_alive(), f"the worker outlived close() by {within} s"


def _next_stream_works(server: LoopbackServer, client: Client) -> None:
    server.route(PATH, sse_body(answer("next ", "one")))
    out = check(run_stream(client))
    assert out.final.content == "next one"


@pytest.mark.parametrize("mode", ["chunked", "close"])
def test_42_close_while_the_worker_is_blocked_in_recv(
    server: LoopbackServer, client: Client, mode: str
) -> None:
    server.route(PATH, _stall(event(chunk("before ")), mode=mode))
    running = start(client, guard=10.0)
    running.wait_events(2)  # the message opened, then its first delta
    _close_fast(running.stream)
    _worker_gone(running.stream)
    # Exactly one outcome: closed -- not completed, even on a close-delimited body,
    # where the shut-down socket reads as a clean end of the body.
    out = check(running.wait(), StreamClosedError, prefix=True)
    assert out.iter_error is None  # iteration simply stops after close()
    assert out.final.content == "before "
    _next_stream_works(server, client)


def test_close_while_waiting_for_the_headers(server: LoopbackServer, client: Client) -> None:
    # The server accepts the request and never answers: the worker is blocked inside
    # requests, before any response exists. The client's adapter lets close() abort it.
    server.route(PATH, _never_answers)
    running = start(client, guard=10.0)
    server.wait_for_requests(1)
    time.sleep(0.05)  # let the worker block in getresponse()
    _close_fast(running.stream)
    _worker_gone(running.stream)
    out = check(running.wait(), StreamClosedError)
    assert out.elapsed < WORKER_BOUND
    _next_stream_works(server, client)


def test_close_while_connecting_never_blocks_the_caller(
    server: LoopbackServer, client: Client
) -> None:
    # Closed before the request is even sent: the request is aborted as soon as its
    # connection has a socket.
    server.route(PATH, _never_answers)
    running = start(client, guard=10.0)
    _close_fast(running.stream)
    _worker_gone(running.stream)
    check(running.wait(), StreamClosedError)


def test_with_a_users_session_a_header_wait_ends_at_the_read_timeout(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # Documented limit: a session you pass keeps its own adapters, which cannot be
    # interrupted before the headers. close() still returns at once, and the worker
    # ends at the socket read timeout (idle + 1 s).
    server.route(PATH, _never_answers)
    with requests.Session() as session:
        client = client_for(server, session=session)
        running = start(client, guard=10.0)
        server.wait_for_requests(1)
        _close_fast(running.stream)
        _worker_gone(running.stream, within=limit_bound(IDLE + 1.0))
        out = check(running.wait(), StreamClosedError)
        assert out.elapsed < limit_bound(IDLE + 1.0)


def test_a_total_limit_ends_a_header_wait_on_time(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, _never_answers)
    client = client_for(server, idle=5.0, total=0.5)
    out = check(run_stream(client, guard=5.0), TotalTimeoutError)
    assert out.error is not None and out.error.name == "total"  # type: ignore[attr-defined]
    assert out.elapsed < limit_bound(0.5)


def _flood(count: int, size: int = 1) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        piece = event(chunk("x" * size))
        batch = piece * 100
        for _ in range(count // 100):
            conn.write(batch)
        conn.write(event(chunk(finish="stop")) + b"data: [DONE]\n\n")

    return handler


def _per_read(size: int) -> int:
    """The most events of ``_flood(..., size)`` one read can bring: a queue holds its
    limit less one plus one read's batch, at most (docs/threading.rst)."""
    # A read is at most READ_SIZE bytes, and may complete an event the one before began.
    return READ_SIZE // len(event(chunk("x" * size))) + 1


def test_43_close_while_the_worker_waits_on_a_full_queue(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _flood(10_000))
    stream = client.stream(BODY, options=StreamOptions(queue_size=1))
    worker = stream._worker
    # Nobody takes events: the worker fills the queue and waits for room.
    assert wait_until(lambda: worker.queue.qsize() >= 1 and worker.reader.reading_since is None, 5)
    time.sleep(0.05)
    _close_fast(stream)
    _worker_gone(stream)
    assert list(stream) == []  # iteration simply stops after close()
    with pytest.raises(StreamClosedError) as info:
        stream.result(timeout=1)
    assert info.value.partial is not None


def test_close_while_the_worker_is_in_a_slow_callback(
    server: LoopbackServer, client: Client
) -> None:
    # Ten events arrive in one read; the callback takes 0.3 s each. close() returns at
    # once, and the worker stops after the callback it is in, not after all ten.
    server.route(PATH, _stall(b"".join(event(chunk(w)) for w in words(10))))  # one write
    entered = threading.Event()

    def slow(_: ResponseEvent) -> None:
        entered.set()
        time.sleep(0.3)

    running = start(client, on_event=slow, guard=10.0)
    assert entered.wait(5)
    _close_fast(running.stream)
    _worker_gone(running.stream, within=1.0)
    check(running.wait(), StreamClosedError, prefix=True)
    _next_stream_works(server, client)


def test_41_a_consumer_that_never_reads_bounds_memory_and_still_closes(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, _flood(100_000, size=16))
    client = client_for(server, idle=0.5)
    with PeakRSS() as rss:
        stream = client.stream(BODY, options=StreamOptions(queue_size=64))
        worker = stream._worker
        # Time spent waiting for the consumer is not idle time: no idle timeout fires
        # while the queue is full (the documented policy: the reader waits).
        assert wait_until(lambda: worker.queue.qsize() >= 64, 5)
        time.sleep(IDLE + 0.3)
        assert not stream.done
        assert worker.queue.qsize() <= 64 - 1 + _per_read(16)
        _close_fast(stream)
        _worker_gone(stream)
    assert rss.growth < 10 * MiB, f"RSS grew {rss.growth / MiB:.1f} MiB"
    with pytest.raises(StreamClosedError):
        stream.result(timeout=1)


def test_41_the_total_limit_still_ends_a_stream_blocked_on_its_queue(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, _flood(10_000))
    client = client_for(server, total=0.5)
    stream = client.stream(BODY, options=StreamOptions(queue_size=8))
    # Nobody reads: the worker waits on the full queue until the total limit ends it.
    assert wait_until(lambda: stream.done, 2.0)
    seen: list[ResponseEvent] = []
    with pytest.raises(TotalTimeoutError) as info:
        for item in stream:  # the queued events, then the error
            seen.append(item)
    assert info.value.name == "total"
    assert 0 < len(seen) <= 8 - 1 + _per_read(1)
    _worker_gone(stream)


def test_41_result_alone_never_stalls_on_a_full_queue(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _flood(20_000))
    stream = client.stream(BODY, options=StreamOptions(queue_size=4))
    response = stream.result(timeout=10)
    assert response.content == "x" * 20_000


def test_44_close_is_idempotent_from_any_thread_at_any_time(
    server: LoopbackServer, client: Client
) -> None:
    # Twice, and from 8 threads at once, on a live stream.
    server.route(PATH, _stall(event(chunk("a"))))
    stream = client.stream(BODY)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def closer() -> None:
        try:
            barrier.wait()
            stream.close()
            stream.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=closer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert errors == []
    _worker_gone(stream)
    with pytest.raises(StreamClosedError):
        stream.result(timeout=1)
    assert list(stream) == []

    # Right after it was made, before a byte arrived.
    stream = client.stream(BODY)
    stream.close()
    stream.close()
    _worker_gone(stream)
    with pytest.raises(StreamClosedError):
        stream.result(timeout=1)

    # After it completed: the outcome stays the completion.
    server.route(PATH, sse_body(answer("done")))
    with client.stream(BODY) as stream:
        response = stream.result(timeout=5)
    stream.close()
    assert stream.result(timeout=1) is response and response.content == "done"


def test_45_a_raising_callback_ends_the_stream_with_callback_error(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _stall(b"".join(event(chunk(w)) for w in words(5))))
    calls: list[ResponseEvent] = []

    class Boom(Exception):
        pass

    def third_raises(item: ResponseEvent) -> None:
        calls.append(item)
        if len(calls) == 3:
            raise Boom("the third event")

    out = check(run_stream(client, on_event=third_raises, guard=10.0), CallbackError, prefix=True)
    assert isinstance(out.error.__cause__, Boom)
    assert len(calls) == 3  # nothing after the failing call
    assert out.elapsed < WORKER_BOUND  # not the 60 s stall: the socket was shut down
    _worker_gone(out.stream)
    _next_stream_works(server, client)


def test_46_a_slow_callback_is_no_idle_time(server: LoopbackServer, client: Client) -> None:
    # Each event takes longer in the callback than the idle limit; the watchdog measures
    # time blocked reading, so nothing times out.
    server.route(PATH, sse_body(answer(*words(3))))
    out = check(run_stream(client, on_event=lambda _: time.sleep(IDLE * 0.6), guard=10.0))
    assert out.final.content == "".join(words(3))
    assert out.elapsed > 3 * IDLE * 0.6


def test_47_two_hundred_concurrent_streams_on_one_client(
    server: LoopbackServer, client_for: Callable[..., Client], secret_logs: logging.Handler
) -> None:
    server.route(PATH, sse_body(answer(*words(50))))
    # 200 connects at once can overflow the test server's listen backlog (64): a dropped
    # SYN is sent again after 1 s, so the connect limit must be longer than that.
    # How fast many streams run is measured in benchmarks/ (paced.py), not here.
    client = client_for(server, connect=5.0, idle=5.0)
    streams = [client.stream(BODY, on_event=lambda _: None) for _ in range(200)]
    results = [s.result(timeout=60) for s in streams]
    assert all(r.content == "".join(words(50)) for r in results)
    pool_full = [
        r
        for r in secret_logs.records  # type: ignore[attr-defined]
        if "pool is full" in r.getMessage()
    ]
    assert pool_full == []
    assert wait_until(lambda: not any(s._worker.job.is_alive() for s in streams), 2)


def test_48_a_stream_dropped_without_close_is_closed_by_the_collector(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _stall(b"".join(event(chunk(w)) for w in words(3))))
    stream = client.stream(BODY)
    thread = stream._worker.job
    for _ in stream:
        break  # leave the loop, keep nothing
    del stream
    gc.collect()
    thread.join(WORKER_BOUND)
    assert not thread.is_alive()

    # The with-statement closes deterministically.
    with client.stream(BODY) as stream:
        for _ in stream:
            break
    thread = stream._worker.job
    thread.join(WORKER_BOUND)
    assert not thread.is_alive()
    with pytest.raises(StreamClosedError):
        stream.result(timeout=1)


def test_49_interpreter_exit_is_not_held_up_by_a_live_stream() -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from tests.loopback import LoopbackServer
        import chatstream

        def stall(conn):
            conn.send_head(headers={"Content-Type": "text/event-stream"})
            conn.write(b'data: {"choices":[{"delta":{"content":"x"}}]}\\n\\n')
            conn.sleep(60)

        server = LoopbackServer(stall)
        client = chatstream.Client(server.url + "/v1", api_key="sk-x", timeouts=60)
        stream = client.stream({"model": "m", "messages": []})
        next(iter(stream))
        print("ready", flush=True)
        # exit with the stream (and the server) still live
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ready = time.monotonic()
        assert line.strip() == b"ready", proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout=10)
        exited = time.monotonic() - ready
        stderr = proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 0
    assert exited < WORKER_BOUND, f"exit took {exited:.2f} s"
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")


def test_50_cancel_mid_stream_then_a_new_stream_on_the_same_client(
    server: LoopbackServer, client: Client
) -> None:
    first = _stall(b"".join(event(chunk(w)) for w in words(3, "old")))
    server.route(PATH, sequence(first, sse_body(answer(*words(3, "new")))))
    running = start(client, guard=5.0)
    running.wait_events(2)
    _close_fast(running.stream)
    check(running.wait(), StreamClosedError, prefix=True)
    out = check(run_stream(client))
    assert out.final.content == "".join(words(3, "new"))  # nothing of the old stream

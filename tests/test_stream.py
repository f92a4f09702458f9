"""The threaded client over real sockets, against the loopback server (tests/loopback.py).

Every test checks that nothing leaked (the ``no_leaks`` fixture: threads and file
descriptors back to their count before the test). No test sleeps to wait for something
it can wait for: waits are on events, queues and thread joins, each with a deadline. The
loopback handlers pace themselves with ``Conn.sleep`` where a test needs a slow server.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import chatstream
from chatstream import (
    AuthenticationError,
    ChatStream,
    ChatStreamError,
    Client,
    Completed,
    ConnectError,
    EventTimeoutError,
    FunctionCall,
    IdleTimeoutError,
    IncompleteStreamError,
    OutputItemDone,
    OutputTextDelta,
    ProviderError,
    RateLimitError,
    RateLimits,
    RedirectError,
    Response,
    ResponseEvent,
    Retry,
    ServerError,
    StreamClosedError,
    StreamConnectionError,
    StreamOptions,
    Telemetry,
    Timeouts,
    TotalTimeoutError,
    UnexpectedResponseError,
)
from chatstream._shell import process as _process
from chatstream._shell.threads import Job
from chatstream._shell.watchdog import Watchdog
from tests.loopback import (
    BodyMode,
    Conn,
    LoopbackServer,
    json_error,
    sequence,
    sse_body,
)

from .helpers import (
    BODY,
    CLOSE_BOUND,
    CORPUS,
    DONE,
    HELLO,
    TIMEOUTS,
    USAGE,
    WORKER_BOUND,
    answer,
    chunk,
    comparable,
    corpus_names,
    drain,
    event,
    expectation,
    limit_bound,
    texts,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

KEY = "sk-CANARY-5f0c2a41-loopback"
#: Quick retries.
RETRY = Retry(max_retries=2, backoff=0.01, jitter=0.0)
#: The longest any test waits for something that should happen at once.
WAIT = 5.0
#: How long a server holds back the rest of a body for a client to show it got the start.
HOLD = 2.0
MODES: list[BodyMode] = ["chunked", "close"]


# --- building bodies ----------------------------------------------------------------------


def core_events(body: bytes) -> list[ResponseEvent]:
    """What the sans-I/O core makes of ``body``: what the client must deliver."""
    return list(chatstream.iter_events([body]))


class FakeClock:
    """A monotonic clock that moves only when told to (for an injected watchdog)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def advance_until(
    condition: Callable[[], bool], clock: FakeClock, watchdog: Watchdog, step: float
) -> None:
    """Move the fake clock by ``step`` and run the watchdog's check until ``condition``
    holds (the worker may not be blocked in its read yet at the first check)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the watchdog never acted"
        clock.now += step
        watchdog.check()
        threading.Event().wait(0.005)  # let the worker reach its read


# --- handlers -----------------------------------------------------------------------------


def stall_after(*events: bytes, mode: BodyMode = "chunked") -> Callable[[Conn], None]:
    """Send ``events``, then keep the connection open and silent until the server
    closes."""

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode)
        for piece in events:
            conn.write(piece)
        conn.sleep(60)

    return handler


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def make_client(server: LoopbackServer) -> Iterator[Callable[..., Client]]:
    """Clients for ``server`` (API key ``KEY``), closed after the test."""
    clients: list[Client] = []

    def make(base_url: str | None = None, **options: Any) -> Client:
        options.setdefault("timeouts", TIMEOUTS)
        options.setdefault("retry", Retry(max_retries=0))
        c = Client(base_url or server.url + "/v1", options.pop("api_key", KEY), **options)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def outcome(stream: ChatStream) -> Response:
    """The stream's response, complete or partial."""
    try:
        return stream.result(timeout=WAIT)
    except ChatStreamError as error:
        assert error.partial is not None
        return error.partial


def failure(stream: ChatStream) -> ChatStreamError:
    """The error the stream ends in (it must end in one)."""
    with pytest.raises(ChatStreamError) as info:
        stream.result(timeout=WAIT)
    return info.value


def first_text(stream: ChatStream) -> str:
    """Iterate up to the first text delta and return it."""
    for item in stream:
        if isinstance(item, OutputTextDelta):
            return item.delta
    raise AssertionError("the stream ended without text")


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``target`` on a new thread; the list receives its return value or exception."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def joined(job: Job, timeout: float = WAIT) -> bool:
    job.join(timeout)
    return not job.is_alive()


# --- reading: framing and promptness ------------------------------------------------------


@pytest.mark.parametrize("mode", ["chunked", "close", "length"])
def test_a_stream_completes_over_each_body_framing(
    server: LoopbackServer, make_client: Callable[..., Client], mode: BodyMode
) -> None:
    server.set_default(sse_body(HELLO, mode=mode))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
    assert error is None
    assert events == core_events(HELLO)


@pytest.mark.parametrize("mode", MODES)
def test_a_gzip_body_is_decoded(
    server: LoopbackServer, make_client: Callable[..., Client], mode: BodyMode
) -> None:
    server.set_default(sse_body(HELLO, mode=mode, gzip=True, split=True))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
    assert error is None
    assert events == core_events(HELLO)


@pytest.mark.parametrize("gzip", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_an_event_arrives_before_the_rest_of_the_body(
    server: LoopbackServer, make_client: Callable[..., Client], mode: BodyMode, gzip: bool
) -> None:
    # The server holds the rest back until the client has seen the first event: a
    # client that waited for more bytes (iter_content on a close-delimited body does)
    # would hang here until the server gave up.
    released, gave_up = threading.Event(), threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode, gzip=gzip)
        conn.write(event(chunk("first")))
        if not released.wait(HOLD):
            gave_up.set()  # the client did not see the first event in time
        conn.write(event(chunk(finish="stop")) + DONE)
        conn.end()

    server.set_default(handler)
    with make_client().stream(BODY) as stream:
        assert first_text(stream) == "first"
        assert not gave_up.is_set()
        released.set()
        assert stream.result(timeout=WAIT).content == "first"


def test_an_event_in_a_partly_sent_http_chunk_arrives_at_once(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    # One HTTP chunk holds the whole body, and only its first event has been sent: the
    # client must not wait for the rest of the chunk (a whole-chunk reader would).
    first = event(chunk("first"))
    rest = event(chunk(finish="stop")) + DONE
    released, gave_up = threading.Event(), threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_head(
            headers={"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
        )
        conn.raw(b"%x\r\n" % (len(first) + len(rest)) + first)
        if not released.wait(HOLD):
            gave_up.set()  # the client did not see the first event in time
        conn.raw(rest + b"\r\n0\r\n\r\n")

    server.set_default(handler)
    with make_client().stream(BODY) as stream:
        assert first_text(stream) == "first"
        assert not gave_up.is_set()
        released.set()
        assert stream.result(timeout=WAIT).content == "first"


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[LoopbackServer]:
    """One server for the whole corpus (a server per test would double its run time):
    ``/{mode}/{name}/chat/completions`` serves stream ``name`` in ``mode``, in random
    1-9 byte writes."""
    with LoopbackServer(io_timeout=10.0) as srv:
        for mode in MODES:
            for name in corpus_names():
                body = (CORPUS / f"{name}.sse").read_bytes()
                handler = sse_body(body, mode=mode, split=True, seed=len(name))
                srv.route(f"/{mode}/{name}/chat/completions", handler)
        yield srv


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", corpus_names())
def test_a_conformance_stream_in_tiny_writes_gives_its_expected_result(
    corpus_server: LoopbackServer, name: str, mode: BodyMode
) -> None:
    client = Client(f"{corpus_server.url}/{mode}/{name}", KEY, timeouts=TIMEOUTS)
    with client, client.stream(BODY) as stream:
        result = outcome(stream)
    assert comparable(result.to_result_dict()) == comparable(expectation(name))


# --- iterating and result() ---------------------------------------------------------------


def test_iteration_yields_every_event_in_order(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    body = answer(*[f"w{i} " for i in range(50)], usage=USAGE)
    server.set_default(sse_body(body, split=True))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
    assert error is None
    assert events == core_events(body)
    assert isinstance(events[-1], Completed)


def test_iteration_raises_the_typed_error_after_the_events_before_it(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    error_event = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    server.set_default(sse_body(event(chunk("par")) + event(chunk("tial")) + error_event))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
    assert isinstance(error, ProviderError)
    assert texts(events) == "partial"
    assert error.partial is not None and error.partial.content == "partial"


# --- close() ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_close_from_another_thread_returns_at_once_during_a_blocked_read(
    server: LoopbackServer, make_client: Callable[..., Client], mode: BodyMode
) -> None:
    server.set_default(stall_after(event(chunk("first")), mode=mode))
    stream = make_client().stream(BODY)
    assert first_text(stream) == "first"
    rest, out = in_thread(lambda: drain(stream))  # blocked: the server says nothing more
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < CLOSE_BOUND
    assert joined(rest, WORKER_BOUND)
    assert out == [([], None)]  # iteration simply stopped


@pytest.mark.parametrize("mode", MODES)
def test_result_after_close_raises_stream_closed_with_the_partial_response(
    server: LoopbackServer, make_client: Callable[..., Client], mode: BodyMode
) -> None:
    # On a close-delimited body the woken reader sees a clean EOF: it must still end as
    # closed, not as completed or incomplete.
    server.set_default(stall_after(event(chunk("first")), event(chunk(finish="stop")), mode=mode))
    stream = make_client().stream(BODY, options=StreamOptions(queue_size=1))
    assert first_text(stream) == "first"
    stream.close()
    error = failure(stream)
    assert isinstance(error, StreamClosedError)
    assert error.partial is not None and error.partial.content == "first"


def test_close_while_waiting_for_the_headers_ends_the_stream_at_once(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    arrived = threading.Event()

    def handler(conn: Conn) -> None:
        arrived.set()
        conn.sleep(60)

    server.set_default(handler)
    stream = make_client().stream(BODY)
    assert arrived.wait(WAIT)
    started = time.monotonic()
    stream.close()
    assert isinstance(failure(stream), StreamClosedError)
    assert time.monotonic() - started < WORKER_BOUND


def test_close_during_a_retry_wait_ends_the_stream_as_closed(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(json_error(503, {"error": {"message": "busy"}}))
    client = make_client(retry=Retry(max_retries=1, backoff=30.0))
    stream = client.stream(BODY)
    server.wait_for_requests(1, WAIT)
    started = time.monotonic()
    stream.close()
    assert isinstance(failure(stream), StreamClosedError)  # not the 503 it was retrying
    assert time.monotonic() - started < WORKER_BOUND  # not the 30 s backoff
    assert len(server.requests) == 1


def test_the_with_statement_closes_the_stream(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(stall_after(event(chunk("a"))))
    with make_client().stream(BODY) as stream:
        assert first_text(stream) == "a"
    assert isinstance(failure(stream), StreamClosedError)
    assert joined(stream._worker.job, WORKER_BOUND)


def test_a_stream_dropped_without_close_is_closed_when_collected(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(stall_after(event(chunk("a"))))
    stream = make_client().stream(BODY)
    events = iter(stream)
    assert isinstance(next(events), chatstream.OutputItemAdded)
    worker = stream._worker.job
    del events, stream
    gc.collect()
    assert joined(worker, WORKER_BOUND)  # its socket is released too: no_leaks counts fds


def test_a_new_stream_on_the_same_client_works_after_a_close(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.route(
        "/v1/chat/completions", sequence(stall_after(event(chunk("old"))), sse_body(HELLO))
    )
    client = make_client()
    with client.stream(BODY) as old:
        assert first_text(old) == "old"
    with client.stream(BODY) as new:
        events, error = drain(new)
    assert error is None and texts(events) == "Hello"


def test_interpreter_exit_is_not_held_up_by_a_live_stream(tmp_path: Path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(
        "import chatstream\n"
        "from tests.loopback import LoopbackServer\n"
        "def stall(conn):\n"
        "    conn.send_head(headers={'Content-Type': 'text/event-stream'})\n"
        '    conn.write(b\'data: {"choices":[{"delta":{"content":"x"}}]}\\n\\n\')\n'
        "    conn.sleep(60)\n"
        "server = LoopbackServer(stall)\n"
        "stream = chatstream.Client(server.url, 'sk-x').stream({'model': 'm'})\n"
        "next(iter(stream))\n"
        "print('streaming', flush=True)\n"
    )
    root = Path(__file__).resolve().parent.parent
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout == "streaming\n"
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 10


# --- the end of a stream ------------------------------------------------------------------


def test_done_on_a_connection_kept_open_completes_at_once(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(stall_after(event(chunk("Hi")), event(chunk(finish="stop")), DONE))
    client = make_client(timeouts=TIMEOUTS.replace(finish_grace=30.0))
    started = time.monotonic()
    with client.stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "Hi"
    assert time.monotonic() - started < WORKER_BOUND  # at [DONE], not after the grace


def test_junk_after_done_is_ignored(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(
        sse_body(event(chunk("Hi")) + DONE + event(chunk("junk")) + b"data: {not json\n\n")
    )
    with make_client().stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "Hi"


# --- backpressure and callbacks -----------------------------------------------------------


def flood(total: int, sent_all: threading.Event) -> Callable[[Conn], None]:
    """Write ``total`` events of 1 KiB of text as fast as the client takes them."""
    one = event(chunk("y" * 1000))
    block = one * 64

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        try:
            for _ in range(total // 64):
                conn.write(block)
            conn.write(event(chunk(finish="stop")) + DONE)
            sent_all.set()
        except OSError:
            pass  # the client went away

    return handler


def test_a_full_queue_stops_the_reading(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    sent_all = threading.Event()
    server.set_default(flood(64 * 1024, sent_all))  # 64 MiB: more than any socket buffer
    with make_client().stream(BODY, options=StreamOptions(queue_size=4)) as stream:
        assert first_text(stream)
        # The consumer takes nothing more: the server must block.
        assert not sent_all.wait(0.3)
        # What was read is bounded by the queue, plus one read's worth of events.
        assert stream._worker.parser.messages <= 4 + 3 * 64


def test_close_works_while_the_reader_waits_for_queue_space(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    sent_all = threading.Event()
    server.set_default(flood(64 * 1024, sent_all))
    stream = make_client().stream(BODY, options=StreamOptions(queue_size=4))
    assert first_text(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < CLOSE_BOUND
    assert joined(stream._worker.job, WORKER_BOUND)
    assert isinstance(failure(stream), StreamClosedError)
    assert not sent_all.is_set()


# --- time limits --------------------------------------------------------------------------


def test_the_idle_timeout_fires_with_an_injected_clock_without_waiting(
    server: LoopbackServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    watchdog = Watchdog(clock=clock, thread=False)
    # The private seam: the client takes the process's watchdog from this function.
    monkeypatch.setattr(_process, "default_watchdog", lambda: watchdog)
    server.set_default(stall_after(event(chunk("before the silence"))))
    # The real idle limit is the default 300 s: nothing may wait for it.
    client = make_client(timeouts=Timeouts())
    started = time.monotonic()
    with client.stream(BODY) as stream:
        assert first_text(stream) == "before the silence"
        # The worker is (or is about to be) blocked reading: move past its limit and
        # check, until the watchdog catches it blocked.
        advance_until(lambda: stream.done, clock, watchdog, 301.0)
        error = failure(stream)
    assert isinstance(error, IdleTimeoutError)
    assert (error.name, error.timeout) == ("idle", 300.0)
    assert error.partial is not None and error.partial.content == "before the silence"
    assert time.monotonic() - started < WAIT


def test_the_idle_timeout_fires_with_the_real_clock(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(stall_after(event(chunk("x"))))
    client = make_client(timeouts=TIMEOUTS.replace(idle=0.3))
    started = time.monotonic()
    with client.stream(BODY) as stream:
        error = failure(stream)
    elapsed = time.monotonic() - started
    assert isinstance(error, IdleTimeoutError) and error.name == "idle"
    assert elapsed < limit_bound(0.3)


def test_keep_alive_comments_count_as_activity(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        for _ in range(10):  # 1 s of pings, twice the idle limit
            conn.write(b": ping\n\n")
            conn.sleep(0.1)
        conn.write(answer("awake", usage=USAGE))
        conn.end()

    server.set_default(handler)
    client = make_client(timeouts=TIMEOUTS.replace(idle=0.5))
    with client.stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "awake"


def test_a_trickle_is_caught_by_the_event_timeout(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    # One byte every 50 ms of a comment line that never ends: bytes keep coming, so
    # neither the socket timeout nor the idle limit would ever fire.
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("so far")))
        conn.write(b":")
        while True:
            conn.sleep(0.05)
            conn.write(b"z")

    server.set_default(handler)
    client = make_client(timeouts=TIMEOUTS.replace(idle=1.0, event=0.4))
    started = time.monotonic()
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, EventTimeoutError) and error.name == "event"
    assert error.partial is not None and error.partial.content == "so far"
    assert time.monotonic() - started < limit_bound(0.4)


def test_the_total_timeout_ends_a_stream_that_still_flows(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        while True:
            conn.write(event(chunk("tick ")))
            conn.sleep(0.05)

    server.set_default(handler)
    client = make_client(timeouts=TIMEOUTS.replace(total=0.4))
    started = time.monotonic()
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, TotalTimeoutError) and error.name == "total"
    assert error.partial is not None and error.partial.content.startswith("tick ")
    assert time.monotonic() - started < limit_bound(0.4)


def test_the_total_timeout_covers_the_wait_for_the_headers(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(lambda conn: conn.sleep(60))  # never answers
    client = make_client(timeouts=TIMEOUTS.replace(total=0.3))
    started = time.monotonic()
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, TotalTimeoutError) and error.name == "total"
    assert time.monotonic() - started < limit_bound(0.3)


def test_a_slow_callback_does_not_trip_the_idle_timeout(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    # The bytes keep arriving while the callback works; the idle limit counts only the
    # time the reader waits for bytes.
    server.set_default(sse_body(answer("slow", "er", usage=USAGE), delay=0.02))

    def slow(event: ResponseEvent) -> None:
        if isinstance(event, OutputTextDelta):
            time.sleep(0.35)  # work that takes longer than the idle limit

    client = make_client(timeouts=TIMEOUTS.replace(idle=0.15))
    with client.stream(BODY, on_event=slow) as stream:
        assert stream.result(timeout=WAIT).content == "slower"


# --- HTTP errors and other answers --------------------------------------------------------


def test_a_json_error_is_its_typed_error_over_a_socket(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(
        json_error(401, {"error": {"message": "bad key", "type": "auth", "code": "k"}})
    )
    with make_client().stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.type, error.code) == (401, "auth", "k")
    assert "bad key" in error.message


def test_a_huge_error_body_is_not_read_whole(
    server: LoopbackServer, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 10 * 1024 * 1024
    finished = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_head(500, {"Content-Type": "text/plain"}, mode="length", length=size)
        try:
            for _ in range(size // 65536):
                conn.write(b"e" * 65536)
            finished.set()
        except OSError:
            pass

    reads: list[int] = []
    original = chatstream._shell.http.read_limited

    def counting(response: Any, limit: int) -> bytes:
        data = original(response, limit)
        reads.append(len(data))
        return data

    monkeypatch.setattr(chatstream._shell.http, "read_limited", counting)
    server.set_default(handler)
    with make_client().stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, ServerError) and error.status == 500
    assert sum(reads) <= 64 * 1024
    assert len(error.body) <= 512


def test_a_json_completion_is_turned_into_the_same_events(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    completion = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Let me look.", "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": USAGE,
    }
    server.set_default(json_error(200, completion))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
        response = stream.result(timeout=WAIT)
    assert error is None
    assert texts(events) == "Let me look."
    done = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert FunctionCall(name="f", arguments="{}", call_id="call_1") in done
    assert isinstance(events[-1], Completed)
    assert response.content == "Let me look." and response.finish_reason == "tool_calls"
    assert [c.name for c in response.tool_calls] == ["f"]
    assert response.usage is not None and response.usage.total_tokens == 5
    assert response.response_id == "chatcmpl-9"


def test_a_stalled_json_completion_is_caught_by_the_idle_timeout(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "application/json"}, mode="length", length=99)
        conn.write(b'{"choices": [')
        conn.sleep(60)

    server.set_default(handler)
    started = time.monotonic()
    with make_client(timeouts=TIMEOUTS.replace(idle=0.3)).stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, IdleTimeoutError) and error.name == "idle"
    assert time.monotonic() - started < limit_bound(0.3)


def test_an_html_page_is_an_unexpected_response_naming_its_content_type(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    page = b"<html><body>Please log in</body></html>"
    server.set_default(lambda conn: conn.respond(200, page, {"Content-Type": "text/html"}))
    with make_client().stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, UnexpectedResponseError)
    assert error.content_type == "text/html" and "text/html" in error.message
    assert "Please log in" in error.body


def test_a_redirect_is_not_followed(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    with LoopbackServer(sse_body(HELLO)) as other:
        target = other.url + "/v1/chat/completions?token=secret-token"
        server.set_default(
            lambda conn: conn.respond(307, b"", {"Location": target, "Content-Length": "0"})
        )
        with make_client(retry=RETRY).stream(BODY) as stream:
            error = failure(stream)
        assert other.requests == []
    assert isinstance(error, RedirectError) and error.status == 307
    assert error.location == other.url + "/v1/chat/completions"
    assert "secret-token" not in str(error)
    assert len(server.requests) == 1


@pytest.mark.parametrize("rst", [False, True])
def test_a_connection_cut_mid_body_is_a_connection_error_keeping_the_events(
    server: LoopbackServer, make_client: Callable[..., Client], rst: bool
) -> None:
    sent = threading.Event()

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("kept")))
        sent.wait(WAIT)
        conn.write(b'data: {"choices":[{"delta":{"cont')
        conn.abort(rst=rst)

    server.set_default(handler)
    with make_client(retry=RETRY).stream(BODY) as stream:
        assert first_text(stream) == "kept"
        sent.set()
        _, error = drain(stream)
    assert isinstance(error, StreamConnectionError)
    assert not isinstance(error, ConnectError)
    assert error.partial is not None and error.partial.content == "kept"
    assert len(server.requests) == 1  # never sent again once bytes were received


def test_a_close_delimited_body_cut_before_the_finish_is_incomplete(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode="close")
        conn.write(event(chunk("half an ans")) + b'data: {"choices":[{"delta":{"content":"w')
        conn.end()

    server.set_default(handler)
    with make_client().stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, IncompleteStreamError)
    assert error.partial is not None and error.partial.content == "half an ans"


# --- retries ------------------------------------------------------------------------------


def test_a_503_then_a_200_succeeds_with_two_requests(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sequence(json_error(503, {"error": {"message": "busy"}}), sse_body(HELLO)))
    with make_client(retry=RETRY).stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "Hello"
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


def test_a_429_with_retry_after_zero_is_retried(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    limited = json_error(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
    server.set_default(sequence(limited, sse_body(HELLO)))
    with make_client(retry=RETRY).stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "Hello"
    assert len(server.requests) == 2


def test_retry_after_is_waited_before_the_retry(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    limited = json_error(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "300"})
    server.set_default(sequence(limited, sse_body(HELLO)))
    ended: list[float] = []

    class Clock(Telemetry):
        def on_request(self, *args: Any) -> None:
            ended.append(time.monotonic())

    client = make_client(retry=RETRY, telemetry=Clock())
    with client.stream(BODY) as stream:
        assert stream.result(timeout=WAIT).content == "Hello"
    assert len(ended) == 2
    assert ended[1] - ended[0] >= 0.3  # the second attempt started after the wait


def test_retries_stop_after_max_retries(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(json_error(429, {"error": {"message": "no"}}, {"Retry-After": "0"}))
    with make_client(retry=RETRY).stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, RateLimitError) and error.retry_after == 0
    assert len(server.requests) == 3


def test_a_200_that_breaks_mid_body_is_not_requested_again(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("once")))
        conn.abort()

    server.set_default(handler)
    with make_client(retry=RETRY).stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, StreamConnectionError)
    assert error.partial is not None and error.partial.content == "once"
    assert len(server.requests) == 1


def test_connection_refused_is_a_connect_error_after_the_retries(
    make_client: Callable[..., Client],
) -> None:
    with LoopbackServer() as gone:
        url = gone.url  # a port nothing listens on once it is closed
    attempts: list[tuple[int, int | None, ChatStreamError | None]] = []

    class Record(Telemetry):
        def on_request(
            self,
            context: Any,
            attempt: int,
            status: int | None,
            error: ChatStreamError | None,
            duration: float,
        ) -> None:
            attempts.append((attempt, status, error))

    client = make_client(url + "/v1", retry=RETRY, telemetry=Record())
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, ConnectError)
    assert [(a, s) for a, s, _ in attempts] == [(1, None), (2, None), (3, None)]
    assert all(isinstance(e, ConnectError) for _, _, e in attempts)


def test_a_stale_keep_alive_connection_is_retried_on_a_new_one(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    # The first response is read to its end, so its connection goes back to the pool;
    # the server then closes that connection when the next request arrives on it,
    # without answering (a keep-alive timeout racing the reuse).
    def handler(conn: Conn) -> None:
        if conn.request.index_on_connection > 0:
            return  # close without a response
        conn.keep_alive = True
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(answer("ok", usage=USAGE, done=False))
        conn.end()

    server.set_default(handler)
    client = make_client(retry=RETRY)
    for _ in range(2):
        with client.stream(BODY) as stream:
            assert stream.result(timeout=WAIT).content == "ok"
    reused = [r.index_on_connection for r in server.requests]
    assert reused == [0, 1, 0]  # the pooled connection was reused, then a new one made


# --- sticky turn routing ------------------------------------------------------------------


def turn_state_server(server: LoopbackServer, *values: str | None) -> None:
    """Answer each request with HELLO and the next turn-state value (None: no header)."""
    handlers = [
        sse_body(HELLO, headers={"x-codex-turn-state": v} if v is not None else None)
        for v in values
    ]
    server.set_default(sequence(*handlers))


def sent_turn_states(server: LoopbackServer) -> list[str | None]:
    return [r.headers.get("x-codex-turn-state") for r in server.requests]


def test_the_turn_state_of_the_first_response_is_sent_back_within_the_turn(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    turn_state_server(server, "backend-7", None, None)
    client = make_client()
    with client.turn() as turn:
        for _ in range(3):
            turn.stream(BODY).result(timeout=WAIT)
        assert turn.state == "backend-7"
    assert sent_turn_states(server) == [None, "backend-7", "backend-7"]


def test_the_turn_state_is_set_once(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    turn_state_server(server, "first", "second", None)
    with make_client().turn() as turn:
        for _ in range(3):
            turn.stream(BODY).result(timeout=WAIT)
    assert sent_turn_states(server) == [None, "first", "first"]


def test_the_turn_state_is_sent_on_a_retry(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    busy = json_error(503, {"error": {"message": "busy"}}, {"x-codex-turn-state": "pinned"})
    server.set_default(sequence(busy, sse_body(HELLO)))
    with make_client(retry=RETRY).turn() as turn:
        assert turn.stream(BODY).result(timeout=WAIT).content == "Hello"
    assert sent_turn_states(server) == [None, "pinned"]


def test_a_new_turn_starts_without_turn_state(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    turn_state_server(server, "one", "two", None)
    client = make_client()
    with client.turn() as turn:
        turn.stream(BODY).result(timeout=WAIT)
    with client.turn() as turn:
        turn.stream(BODY).result(timeout=WAIT)
        turn.stream(BODY).result(timeout=WAIT)
    assert sent_turn_states(server) == [None, None, "two"]


def test_streams_outside_a_turn_never_send_turn_state(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    turn_state_server(server, "one", None)
    client = make_client()
    client.stream(BODY).result(timeout=WAIT)
    client.stream(BODY).result(timeout=WAIT)
    assert sent_turn_states(server) == [None, None]


def test_the_turn_state_header_name_is_configurable(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(HELLO, headers={"x-route": "r1"}))
    with make_client(turn_state_header="x-route").turn() as turn:
        turn.stream(BODY).result(timeout=WAIT)
        turn.stream(BODY).result(timeout=WAIT)
    assert [r.headers.get("x-route") for r in server.requests] == [None, "r1"]


def test_a_turn_shared_by_threads_keeps_one_state(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    counter = iter(range(1000))
    lock = threading.Lock()

    def handler(conn: Conn) -> None:
        with lock:
            n = next(counter)
        sse_body(HELLO, headers={"x-codex-turn-state": f"s{n}"})(conn)

    server.set_default(handler)
    with make_client().turn() as turn:
        threads = [in_thread(lambda: turn.stream(BODY).result(timeout=WAIT)) for _ in range(8)]
        for thread, _ in threads:
            assert joined(thread)
        state = turn.state
        turn.stream(BODY).result(timeout=WAIT)
    assert state is not None
    assert server.requests[-1].headers["x-codex-turn-state"] == state


# --- telemetry and rate limits ------------------------------------------------------------


class Recorder(Telemetry):
    def __init__(self) -> None:
        self.requests: list[tuple[int, int | None, ChatStreamError | None, float]] = []
        self.events: list[tuple[ResponseEvent | None, ChatStreamError | None, float]] = []

    def on_request(
        self,
        context: Any,
        attempt: int,
        status: int | None,
        error: ChatStreamError | None,
        duration: float,
    ) -> None:
        self.requests.append((attempt, status, error, duration))

    def on_sse_event(
        self,
        context: Any,
        event: ResponseEvent | None,
        error: ChatStreamError | None,
        elapsed: float,
    ) -> None:
        self.events.append((event, error, elapsed))


def test_telemetry_reports_each_http_attempt(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sequence(json_error(503, {"error": {"message": "busy"}}), sse_body(HELLO)))
    recorder = Recorder()
    with make_client(retry=RETRY, telemetry=recorder).stream(BODY) as stream:
        stream.result(timeout=WAIT)
    assert [(a, s) for a, s, _, _ in recorder.requests] == [(1, 503), (2, 200)]
    assert isinstance(recorder.requests[0][2], ServerError)
    assert recorder.requests[1][2] is None
    assert all(d >= 0 for _, _, _, d in recorder.requests)


def test_telemetry_reports_each_event(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(HELLO))
    recorder = Recorder()
    with make_client(telemetry=recorder).stream(BODY) as stream:
        stream.result(timeout=WAIT)
    assert [e for e, _, _ in recorder.events] == core_events(HELLO)
    assert all(err is None and elapsed >= 0 for _, err, elapsed in recorder.events)


def test_telemetry_reports_the_error_once(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(event(chunk("par")), mode="close"))
    recorder = Recorder()
    with make_client(telemetry=recorder).stream(BODY) as stream:
        error = failure(stream)
    errors = [(e, err) for e, err, _ in recorder.events if err is not None]
    assert errors == [(None, error)]
    assert recorder.events[-1][1] is error


def test_a_raising_telemetry_hook_does_not_break_the_stream(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    class Broken(Telemetry):
        def on_request(self, *args: Any) -> None:
            raise RuntimeError("hook")

        def on_sse_event(self, *args: Any) -> None:
            raise RuntimeError("hook")

    server.set_default(sse_body(event(chunk("par")), mode="close"))
    with make_client(telemetry=Broken()).stream(BODY) as stream:
        assert isinstance(failure(stream), IncompleteStreamError)


def test_rate_limit_headers_give_a_first_rate_limits_event(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    headers = {"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-tokens": "6m0s"}
    server.set_default(sse_body(HELLO, headers=headers))
    with make_client().stream(BODY) as stream:
        events, _ = drain(stream)
    assert events[0] == RateLimits({"remaining-requests": "99", "reset-tokens": "6m0s"})
    assert events[1:] == core_events(HELLO)


def test_no_rate_limit_headers_no_rate_limits_event(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(HELLO))
    with make_client().stream(BODY) as stream:
        events, _ = drain(stream)
    assert not any(isinstance(e, RateLimits) for e in events)


def test_the_client_logs_under_the_chatstream_logger(
    server: LoopbackServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    server.set_default(sequence(json_error(503, {"error": {"message": "busy"}}), sse_body(HELLO)))
    caplog.set_level(logging.DEBUG, logger="chatstream")
    with make_client(retry=RETRY).stream(BODY) as stream:
        stream.result(timeout=WAIT)
    mine = [r.getMessage() for r in caplog.records if r.name == "chatstream"]
    assert any(m.startswith("POST ") for m in mine)
    assert any(m.startswith("retrying") for m in mine)
    assert any(m.startswith("stream completed") for m in mine)


# --- the API key --------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def assert_no_key(error: BaseException, *texts: str) -> None:
    for e in _chain(error):
        assert KEY not in str(e) and KEY not in repr(e), type(e)
        for value in vars(e).values():
            assert KEY not in repr(value)
    assert KEY not in "".join(traceback.format_exception(error))
    for text in texts:
        assert KEY not in text


def cut_mid_body(conn: Conn) -> None:
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    conn.write(event(chunk("x")))
    conn.abort(rst=True)


FAILURES: dict[str, Callable[[Conn], None]] = {
    "401 echoing the key": lambda conn: conn.respond(
        401,
        json.dumps({"error": {"message": f"bad key: {conn.headers['Authorization']}"}}).encode(),
        {"Content-Type": "application/json", "X-Echo": conn.headers["Authorization"]},
    ),
    "html echoing the key": lambda conn: conn.respond(
        200, f"<p>{conn.headers['Authorization']}</p>".encode(), {"Content-Type": "text/html"}
    ),
    "redirect": lambda conn: conn.respond(
        302, b"", {"Location": f"http://127.0.0.1:1/?key={KEY}", "Content-Length": "0"}
    ),
    "cut mid-body": cut_mid_body,
    "error event echoing the key": sse_body(
        b'data: {"error": {"message": "key ' + KEY.encode() + b' revoked"}}\n\n'
    ),
}


@pytest.mark.parametrize("scenario", list(FAILURES))
def test_the_key_never_appears_in_logs_errors_or_reprs(
    server: LoopbackServer,
    make_client: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    server.set_default(FAILURES[scenario])
    for name in (None, "urllib3", "chatstream"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = make_client(retry=RETRY)
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert_no_key(error, repr(client), repr(stream), caplog.text)
    assert all(KEY not in str(r.args) for r in caplog.records)


def test_the_key_never_appears_when_the_connection_is_refused(
    make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    with LoopbackServer() as gone:
        url = gone.url
    for name in (None, "urllib3", "chatstream"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = make_client(url + "/v1", retry=RETRY)
    with client.stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, ConnectError)
    assert_no_key(error, repr(client), caplog.text)


def test_a_401_echoing_the_authorization_header_is_redacted(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(FAILURES["401 echoing the key"])
    with make_client().stream(BODY) as stream:
        error = failure(stream)
    assert isinstance(error, AuthenticationError)
    assert "bad key: Bearer [REDACTED]" in error.body
    assert KEY not in error.body and KEY not in error.message
    assert KEY not in json.dumps(error.headers)


@pytest.fixture
def netrc_for_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~/.netrc (through NETRC) with an entry for 127.0.0.1."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))


@pytest.mark.usefixtures("netrc_for_loopback")
def test_a_netrc_entry_does_not_replace_the_bearer_header(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(HELLO))
    with make_client().stream(BODY) as stream:
        stream.result(timeout=WAIT)
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.usefixtures("netrc_for_loopback")
def test_the_netrc_is_read_where_no_key_is_given(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    # The control for the test above: this NETRC file is in effect.
    server.set_default(sse_body(HELLO))
    with make_client(api_key=None).stream(BODY) as stream:
        stream.result(timeout=WAIT)
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


def test_a_session_given_to_the_client_is_used_and_left_open(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(HELLO))
    with requests.Session() as session:
        session.headers["X-From-Session"] = "yes"
        client = make_client(session=session)
        with client.stream(BODY) as stream:
            assert stream.result(timeout=WAIT).content == "Hello"
        client.close()
        assert session.get(server.url + "/v1/chat/completions", timeout=WAIT).ok
    assert server.requests[0].headers["X-From-Session"] == "yes"
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


# --- many streams at once -----------------------------------------------------------------


def test_two_hundred_concurrent_streams_on_one_client(
    server: LoopbackServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    body = answer(*[f"{i} " for i in range(20)], usage=USAGE)
    expected = "".join(f"{i} " for i in range(20))
    server.set_default(sse_body(body))
    # Two hundred connects at once overflow the listen backlog, and a dropped SYN is sent
    # again after a second: the connect limit leaves room for that on a busy machine.
    client = make_client(retry=RETRY, timeouts=Timeouts(connect=10.0, idle=10.0))
    results: list[str | BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(200)

    def run() -> None:
        start.wait(WAIT)
        content: str | BaseException
        try:
            with client.stream(BODY) as stream:
                events, error = drain(stream)
                content = error or texts(events)
        except BaseException as exc:  # reported below
            content = exc
        with lock:
            results.append(content)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == [expected] * 200
    assert "Connection pool is full" not in caplog.text


# --- an answer cut short ------------------------------------------------------------------

CUT = (
    event(chunk("Once upon"))
    + event(chunk(finish="length"))
    + event(chunk(usage=USAGE, choices=False))
    + DONE
)


def test_a_length_finish_ends_the_stream_normally_with_a_truncated_result(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(CUT))
    with make_client().stream(BODY) as stream:
        events, error = drain(stream)
        response = stream.result()
    assert error is None
    assert isinstance(events[-1], Completed)
    assert (response.content, response.finish_reason, response.truncated) == (
        "Once upon",
        "length",
        True,
    )


@pytest.mark.parametrize("where", ["client", "stream"])
def test_length_is_error_restores_the_specifications_context_window_error(
    server: LoopbackServer, make_client: Callable[..., Client], where: str
) -> None:
    server.set_default(sse_body(CUT))
    client = (
        make_client(options=StreamOptions(length_is_error=True))
        if where == "client"
        else make_client()
    )
    options = StreamOptions(length_is_error=True) if where == "stream" else None
    with client.stream(BODY, options=options) as stream:
        events, error = drain(stream)
    assert isinstance(error, chatstream.ContextWindowExceeded)
    assert error.partial is not None and error.partial.content == "Once upon"
    assert not any(isinstance(e, Completed) for e in events)


def test_a_stream_can_turn_the_clients_length_is_error_off(
    server: LoopbackServer, make_client: Callable[..., Client]
) -> None:
    server.set_default(sse_body(CUT))
    with make_client(options=StreamOptions(length_is_error=True)).stream(
        BODY, options=StreamOptions(length_is_error=False)
    ) as stream:
        drain(stream)
        assert stream.result().truncated

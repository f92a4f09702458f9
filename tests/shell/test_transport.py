"""Connections are reused: a stream that ends at ``data: [DONE]`` reads the rest of its
body (the end of the chunked encoding) and hands the connection back to the pool, so an
agent loop's sequential requests share one connection, over HTTP and over TLS (a
certificate for 127.0.0.1 from a throw-away CA made by ``trustme``)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from chatstream import ChatStream, Client, Completed, Connections, Timeouts
from chatstream._shell.deadlines import DRAIN_TIME
from tests.loopback import Conn, LoopbackServer

from ..helpers import BODY, answer, chunk, event

pytestmark = pytest.mark.usefixtures("no_leaks")

STREAMS = 50
HI = answer("Hel", "lo")


def keep_alive(body: bytes) -> Any:
    """A handler that sends ``body`` as a chunked stream and keeps the connection open."""

    def handler(conn: Conn) -> None:
        conn.keep_alive = True
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(body)
        conn.end()

    return handler


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["http", "https"])
def served(
    request: pytest.FixtureRequest, ca: trustme.CA
) -> Iterator[tuple[LoopbackServer, Client]]:
    tls: ssl.SSLContext | None = None
    if request.param == "https":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
    with LoopbackServer(io_timeout=10.0, tls=tls) as server, ca.cert_pem.tempfile() as path:
        client = Client(
            server.url + "/v1",
            "sk-test",
            timeouts=Timeouts(idle=5.0),
            retry=0,
            connections=Connections(verify=path),
        )
        with client:
            yield server, client


def test_sequential_streams_that_end_at_done_share_one_connection(
    served: tuple[LoopbackServer, Client],
) -> None:
    server, client = served
    server.set_default(keep_alive(HI))
    for _ in range(STREAMS):
        with client.stream(BODY) as stream:
            assert stream.result(timeout=10).content == "Hello"
    requests = server.wait_for_requests(STREAMS)
    assert {r.connection_id for r in requests} == {0}


def test_a_body_that_goes_on_after_done_is_closed_not_reused(
    served: tuple[LoopbackServer, Client],
) -> None:
    server, client = served

    def lingering(conn: Conn) -> None:
        conn.keep_alive = True
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(HI)
        conn.sleep(10)  # the end of the body does not come
        conn.end()

    server.set_default(lingering)
    for _ in range(2):
        with client.stream(BODY) as stream:
            assert stream.result(timeout=10).content == "Hello"
    assert [r.connection_id for r in server.wait_for_requests(2)] == [0, 1]


def test_a_stream_ended_by_the_end_of_its_body_shares_the_connection(
    served: tuple[LoopbackServer, Client],
) -> None:
    server, client = served
    server.set_default(keep_alive(event(chunk("Hi")) + event(chunk(finish="stop"))))
    for _ in range(3):
        with client.stream(BODY) as stream:
            assert stream.result(timeout=10).content == "Hi"
    assert {r.connection_id for r in server.wait_for_requests(3)} == {0}


# --- the drain after [DONE]: after the caller's end, bounded in total --------------------

#: The longest the lingering server below goes on sending keep-alives.
LINGER_LIMIT = 10.0


class Lingering:
    """A handler that sends the answer, then a keep-alive comment every 50 ms (the body
    never ends) until :attr:`stop` is set, then ends the body."""

    def __init__(self) -> None:
        self.lingering = threading.Event()  # the answer is being sent, keep-alives follow
        self.stop = threading.Event()
        self.stopped = threading.Event()  # the server stopped lingering
        self.cut_at: float | None = None  # when the client closed the connection

    def __call__(self, conn: Conn) -> None:
        conn.keep_alive = True
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        # Set first: the client may read the answer and end before this thread runs again.
        self.lingering.set()
        conn.write(HI)
        deadline = time.monotonic() + LINGER_LIMIT
        try:
            while not self.stop.wait(0.05) and time.monotonic() < deadline:
                conn.write(b": keep-alive\n")
        except OSError:
            self.cut_at = time.monotonic()
            raise
        finally:
            self.stopped.set()
        conn.end()


@pytest.fixture
def lingering(served: tuple[LoopbackServer, Client]) -> Iterator[Lingering]:
    handler = Lingering()
    served[0].set_default(handler)
    try:
        yield handler
    finally:
        handler.stop.set()


def test_iteration_ends_at_completed_while_the_body_goes_on(
    served: tuple[LoopbackServer, Client], lingering: Lingering
) -> None:
    client = served[1]
    with client.stream(BODY) as stream:
        events = list(stream)
    assert isinstance(events[-1], Completed)
    assert lingering.lingering.is_set() and not lingering.stopped.is_set()


def test_result_returns_at_completed_while_the_body_goes_on(
    served: tuple[LoopbackServer, Client], lingering: Lingering
) -> None:
    client = served[1]
    with client.stream(BODY) as stream:
        assert stream.result(timeout=10).content == "Hello"
    assert lingering.lingering.is_set() and not lingering.stopped.is_set()


def _worker_ended(stream: ChatStream) -> float:
    """When the stream's worker ended (it reads the rest of the body after the end)."""
    job = stream._worker.job
    while job.is_alive():
        job.join(0.01)
    return time.monotonic()


def test_the_rest_of_a_body_that_goes_on_is_read_for_a_bounded_time_in_all(
    served: tuple[LoopbackServer, Client], lingering: Lingering
) -> None:
    client = served[1]
    with client.stream(BODY) as stream:
        stream.result(timeout=10)
        ended = time.monotonic()
        assert _worker_ended(stream) - ended < 3 * DRAIN_TIME
    assert lingering.stopped.wait(5) and lingering.cut_at is not None
    assert not lingering.stop.is_set()  # the client cut it: the server was still lingering


def test_a_connection_whose_drain_was_cut_is_not_reused(
    served: tuple[LoopbackServer, Client], lingering: Lingering
) -> None:
    server, client = served
    with client.stream(BODY) as stream:
        stream.result(timeout=10)
    assert lingering.stopped.wait(5)
    lingering.stop.set()  # the second answer ends at once
    with client.stream(BODY) as stream:
        stream.result(timeout=10)
    assert [r.connection_id for r in server.wait_for_requests(2)] == [0, 1]

"""Self-tests for the loopback test server in ``tests/loopback.py``."""

from __future__ import annotations

import gc
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import WORKER_BOUND
from tests.loopback import (
    BodyMode,
    Conn,
    LoopbackServer,
    gzip_stream,
    json_error,
    sequence,
    split_pieces,
    sse_body,
)

# Multi-byte UTF-8 characters make sure split writes cut inside characters too.
SSE = (
    b'data: {"choices":[{"delta":{"content":"h\xc3\xa9llo \xe2\x9c\x93"}}]}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"choices":[{"delta":{"content":" w\xc3\xb6rld"}}]}\r\n\r\n'
    b"data: [DONE]\n\n"
)
MODES: list[BodyMode] = ["chunked", "close", "length"]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


def _raw_get(srv: LoopbackServer, path: str = "/") -> bytes:
    """Send a minimal GET over a plain socket and return every byte of the reply."""
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def _parse_chunks(raw: bytes) -> list[bytes]:
    """Split a raw chunked HTTP response into its chunk payloads (terminator excluded)."""
    _, _, rest = raw.partition(b"\r\n\r\n")
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


@pytest.mark.parametrize("gzip", [False, True])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_bodies_arrive_intact(
    server: LoopbackServer, mode: BodyMode, split: bool, gzip: bool
) -> None:
    server.route("/sse", sse_body(SSE, mode=mode, split=split, gzip=gzip, seed=3))
    resp = requests.get(server.url + "/sse", timeout=5)
    assert resp.status_code == 200
    assert resp.content == SSE  # requests undoes the gzip encoding
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers.get("Content-Encoding") == ("gzip" if gzip else None)
    if mode == "chunked":
        assert resp.headers["Transfer-Encoding"] == "chunked"
    elif mode == "close":
        assert "Content-Length" not in resp.headers
        assert "Transfer-Encoding" not in resp.headers
        assert resp.headers["Connection"] == "close"
    else:
        # The declared length must match the bytes on the wire exactly (compressed or not).
        head, _, wire_body = _raw_get(server, "/sse").partition(b"\r\n\r\n")
        assert int(resp.headers["Content-Length"]) == len(wire_body)
        assert b"\r\nContent-Length: %d\r\n" % len(wire_body) in head + b"\r\n"


def test_write_split_sends_small_chunks(server: LoopbackServer) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write_split(SSE, rng=random.Random(7))
        conn.end()

    server.set_default(handler)
    chunks = _parse_chunks(_raw_get(server))
    assert b"".join(chunks) == SSE
    assert all(1 <= len(chunk) <= 9 for chunk in chunks)
    assert chunks == split_pieces(SSE, rng=random.Random(7))  # seeded: reproducible


def test_gzip_writes_are_sync_flushed(server: LoopbackServer) -> None:
    # Every chunk must decode to its own plaintext at once, as a streaming client needs.
    server.set_default(sse_body(SSE, gzip=True))
    chunks = _parse_chunks(_raw_get(server))
    decoder = zlib.decompressobj(wbits=31)
    events = [decoder.decompress(chunk) for chunk in chunks]
    assert events[:-1] == [
        b'data: {"choices":[{"delta":{"content":"h\xc3\xa9llo \xe2\x9c\x93"}}]}\n\n',
        b": keep-alive comment\n\n",
        b'data: {"choices":[{"delta":{"content":" w\xc3\xb6rld"}}]}\r\n\r\n',
        b"data: [DONE]\n\n",
    ]
    assert events[-1] == b"" and decoder.eof
    assert b"".join(chunks) == gzip_stream(events[:-1])  # what "length" mode declares


@pytest.mark.parametrize("rst", [False, True])
def test_abort_gives_client_an_error(server: LoopbackServer, rst: bool) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(b"data: partial\n\n")
        conn.abort(rst=rst)

    server.set_default(handler)
    with pytest.raises(requests.exceptions.RequestException):
        resp = requests.get(server.url, stream=True, timeout=5)
        with resp:
            for _ in resp.iter_content(None):
                pass


def test_requests_are_recorded(server: LoopbackServer) -> None:
    other = LoopbackServer()
    try:
        server.route("/v1/chat/completions", sse_body(SSE))
        resp = requests.post(
            server.url + "/v1/chat/completions?x=1",
            json={"model": "m", "stream": True},
            headers={"Authorization": "Bearer sk-test"},
            timeout=5,
        )
        assert resp.content == SSE
        # A generator body makes requests send the request body chunked.
        requests.put(server.url + "/upload", data=iter([b"ab", b"", b"cde"]), timeout=5)
    finally:
        other.close()
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions?x=1")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.json() == {"model": "m", "stream": True}
    assert (second.method, second.body) == ("PUT", b"abcde")
    assert second.headers["Transfer-Encoding"] == "chunked"
    assert other.requests == []
    assert server.errors == []


def test_json_error_sequence_and_404(server: LoopbackServer) -> None:
    server.route(
        "/v1",
        sequence(
            json_error(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
            sse_body(SSE),
        ),
    )
    first = requests.get(server.url + "/v1", timeout=5)
    assert first.status_code == 429
    assert first.json() == {"error": {"message": "slow down"}}
    assert first.headers["Retry-After"] == "1"
    assert first.headers["Content-Length"] == str(len(first.content))
    assert requests.get(server.url + "/v1", timeout=5).content == SSE
    assert requests.get(server.url + "/nope", timeout=5).status_code == 404


def test_keep_alive_serves_several_requests_on_one_connection(server: LoopbackServer) -> None:
    def handler(conn: Conn) -> None:
        conn.keep_alive = True
        conn.respond(200, b"ok %d" % conn.request.index_on_connection)

    server.set_default(handler)
    with requests.Session() as session:
        assert session.get(server.url, timeout=5).content == b"ok 0"
        assert session.get(server.url, timeout=5).content == b"ok 1"
    assert [r.connection_id for r in server.requests] == [0, 0]


def test_handler_exception_is_recorded_and_answered_500(server: LoopbackServer) -> None:
    def handler(conn: Conn) -> None:
        raise AssertionError("boom")

    server.set_default(handler)
    resp = requests.get(server.url, timeout=5)
    assert resp.status_code == 500
    assert [str(exc) for exc in server.errors] == ["boom"]


def _open_fds() -> int | None:
    """Count the open descriptors of this process, where /proc makes that cheap."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_close_is_prompt_and_leaks_nothing_while_a_handler_stalls() -> None:
    gc.collect()
    threads_before = threading.active_count()
    fds_before = _open_fds()

    def stall(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(b"data: first\n\n")
        conn.sleep(60)
        conn.write(b"data: never sent\n\n")

    srv = LoopbackServer(stall)
    with requests.Session() as session:
        resp = session.get(srv.url, stream=True, timeout=5)
        chunks = resp.iter_content(None)
        assert next(chunks) == b"data: first\n\n"
        assert threading.active_count() == threads_before + 2  # accept loop + handler

        started = time.monotonic()
        srv.close()
        assert time.monotonic() - started < WORKER_BOUND  # not the handler's 60 s sleep
        # The handler ended without finishing the body, so the client sees an error
        # rather than a clean end of stream.
        with pytest.raises(requests.exceptions.RequestException):
            for _ in chunks:
                pass
        resp.close()

    assert threading.active_count() == threads_before
    assert srv.errors == []
    gc.collect()
    assert _open_fds() == fds_before

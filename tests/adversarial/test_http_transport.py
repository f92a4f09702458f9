"""§4 B (cases 22-36): HTTP and transport. Every status, framing, truncation, encoding,
redirect, proxy and connection failure ends in one typed error (or a success), with the
events received before it kept, and is never retried once a byte of a 200 arrived."""

from __future__ import annotations

import email.utils
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from chatstream import (
    AuthenticationError,
    BadRequestError,
    Client,
    ConnectError,
    ConnectTimeoutError,
    IdleTimeoutError,
    IncompleteStreamError,
    NotFoundError,
    RateLimitError,
    RedirectError,
    ServerError,
    StreamConnectionError,
    UnexpectedResponseError,
)
from tests.helpers import CLOSE_BOUND, WORKER_BOUND, answer, chunk, limit_bound
from tests.loopback import Conn, LoopbackServer, json_error, sequence, sse_body

from .harness import (
    DONE,
    IDLE,
    PATH,
    QUERY_CANARY,
    check,
    event,
    run_stream,
    words,
)

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _error_body(message: str, kind: str, code: str) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


# --- 22, 23: a 200 that is not an event stream --------------------------------------------


def test_22_html_200_is_an_unexpected_response(server: LoopbackServer, client: Client) -> None:
    page = b"<!doctype html><html><title>Sign in</title>" + b"<p>login</p>" * 500 + b"</html>"
    server.route(PATH, lambda c: c.respond(200, page, {"Content-Type": "text/html"}))
    out = check(run_stream(client), UnexpectedResponseError)
    error = out.error
    assert isinstance(error, UnexpectedResponseError)
    assert error.status == 200 and error.content_type == "text/html"
    assert "text/html" in str(error) and "200" in str(error)
    assert error.body.startswith("<!doctype html>") and len(error.body) <= 512


def test_23_json_completion_from_a_server_that_ignored_stream(
    server: LoopbackServer, client: Client
) -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "whole"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    server.route(PATH, json_error(200, completion))
    out = check(run_stream(client))
    assert out.final.content == "whole" and out.final.usage is not None


# --- 24-26: error statuses and retries -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, BadRequestError),
    ],
)
def test_24_error_status_with_a_json_body(
    server: LoopbackServer, client_for: Callable[..., Client], status: int, cls: type
) -> None:
    server.route(PATH, json_error(status, _error_body("nope", "invalid_request_error", "bad")))
    client = client_for(server, retries=2)
    out = check(run_stream(client), cls)
    error = out.error
    assert error.status == status  # type: ignore[union-attr]
    assert "nope" in str(error)
    assert (error.type, error.code) == ("invalid_request_error", "bad")  # type: ignore[union-attr]
    assert len(server.requests) == 1  # never retried


def test_24_a_huge_error_body_is_read_only_up_to_64_KiB(
    server: LoopbackServer, client: Client
) -> None:
    # 64 KiB at once, then the rest of 10 MiB slowly: reading past the limit would hang.
    def huge(conn: Conn) -> None:
        total = 10 * 1024 * 1024
        conn.send_head(401, {"Content-Type": "application/json"}, mode="length", length=total)
        conn.write(b'{"error": {"message": "' + b"x" * (64 * 1024))
        sent = 64 * 1024 + 23
        while sent < total:
            conn.sleep(0.05)
            conn.write(b"y" * 1024)
            sent += 1024

    server.route(PATH, huge)
    # Not the whole trickled body: the read stops at the snippet.
    out = check(run_stream(client), AuthenticationError, within=WORKER_BOUND)
    assert len(out.error.body) <= 512  # type: ignore[union-attr]


def _date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "in 30 s"}, 30.0),  # an HTTP date, made when the test runs
        ({"Retry-After": "3600"}, 3600.0),
    ],
)
def test_25_rate_limit_hints(
    server: LoopbackServer, client: Client, headers: dict[str, str], hint: float
) -> None:
    if headers.get("Retry-After") == "in 30 s":
        headers = {"Retry-After": _date_in(30)}
    server.route(PATH, json_error(429, _error_body("slow down", "rate_limit", "429"), headers))
    out = check(run_stream(client), RateLimitError)
    retry_after = out.error.retry_after  # type: ignore[union-attr]
    assert retry_after is not None and abs(retry_after - hint) < 2.0


def test_25_a_429_is_retried_after_its_hint(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    limited = json_error(429, _error_body("wait", "rate_limit", "429"), {"retry-after-ms": "300"})
    server.route(PATH, sequence(limited, sse_body(answer("after ", "wait"))))
    client = client_for(server, retries=2)
    out = check(run_stream(client, guard=4.0))
    assert out.final.content == "after wait"
    assert len(server.requests) == 2
    assert out.elapsed >= 0.3


def test_25_a_hint_beyond_the_cap_is_not_retried(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(
        PATH, json_error(429, _error_body("later", "rate_limit", "429"), {"Retry-After": "3600"})
    )
    client = client_for(server, retries=2)
    out = check(run_stream(client), RateLimitError, within=WORKER_BOUND)  # not 3600 s
    assert len(server.requests) == 1
    assert out.error is not None


def test_25_never_retried_once_an_event_was_delivered(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    def breaks(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("once ")))
        conn.write(event(chunk("only")))
        conn.abort(rst=True)

    server.route(PATH, breaks)
    client = client_for(server, retries=3)
    out = check(run_stream(client), StreamConnectionError)
    assert out.final.content == "once only"
    assert len(server.requests) == 1  # output is never duplicated


@pytest.mark.parametrize("status", [500, 502, 503])
def test_26_server_errors_with_an_html_page_are_retried_then_typed(
    server: LoopbackServer, client_for: Callable[..., Client], status: int
) -> None:
    server.route(PATH, lambda c: c.respond(status, NGINX_502, {"Content-Type": "text/html"}))
    client = client_for(server, retries=2)
    out = check(run_stream(client, guard=4.0), ServerError)
    assert out.error.status == status  # type: ignore[union-attr]
    assert len(server.requests) == 3
    assert "nginx" in out.error.body  # type: ignore[union-attr]


# --- 27 / 55: redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
@pytest.mark.parametrize("where", ["other-host", "same-host"])
def test_27_redirects_are_never_followed(
    server: LoopbackServer, client_for: Callable[..., Client], status: int, where: str
) -> None:
    with LoopbackServer() as other:
        other.route(PATH, sse_body(answer("stolen")))
        target = other.url if where == "other-host" else server.url
        location = f"{target}{PATH}?sig=SECRETSIG&key={QUERY_CANARY}"
        server.route(PATH, lambda c: c.respond(status, b"", {"Location": location}))
        client = client_for(server, retries=2, headers={"x-api-key": "sk-CANARY-header"})
        out = check(run_stream(client), RedirectError)
        error = out.error
        assert isinstance(error, RedirectError) and error.status == status
        assert error.location == f"{target}{PATH}"  # the query string is dropped
        assert "SECRETSIG" not in str(error)
        assert len(server.requests) == 1
    # Server B received nothing: no Authorization, no api-key, no body.
    assert other.requests == [] or where == "same-host"


# --- 28, 29: truncation and resets ----------------------------------------------------------


def _cut(kind: str) -> Callable[[Conn], None]:
    two = event(chunk("kept ")) + event(chunk("too"))

    def handler(conn: Conn) -> None:
        if kind == "length-short":
            conn.send_head(
                headers={"Content-Type": "text/event-stream"}, mode="length", length=10_000
            )
            conn.write(two)
            conn.abort()
            return
        mode = "close" if kind.startswith("close") else "chunked"
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode)  # type: ignore[arg-type]
        conn.write(two)
        if kind == "chunked-mid-chunk":
            conn.raw(b"100\r\n" + b'data: {"choices":[{"delta":{"content":"lost')
            conn.abort()
        elif kind == "chunked-between-chunks":
            conn.abort()
        elif kind == "rst":
            conn.abort(rst=True)
        elif kind == "close-mid-event":
            conn.write(b'data: {"choices":[{"delta":{"content":"lo')
            conn.abort()
        elif kind == "close-between-events":
            conn.abort()

    return handler


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("chunked-mid-chunk", StreamConnectionError),
        ("chunked-between-chunks", StreamConnectionError),
        ("length-short", StreamConnectionError),
        ("rst", StreamConnectionError),
        ("close-mid-event", IncompleteStreamError),  # 29: no transport error exists
        ("close-between-events", IncompleteStreamError),
    ],
)
def test_28_29_truncated_bodies_keep_every_event_before_the_cut(
    server: LoopbackServer, client: Client, kind: str, cls: type
) -> None:
    server.route(PATH, _cut(kind))
    out = check(run_stream(client), cls)
    assert out.final.content == "kept too"  # the unterminated tail is not applied


# --- 30, 31: gzip -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chunked", "close"])
def test_30_gzip_with_a_sync_flush_per_event_streams_promptly(
    server: LoopbackServer, client_for: Callable[..., Client], mode: str
) -> None:
    sent: list[float] = []

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode, gzip=True)  # type: ignore[arg-type]
        for word in words(3):
            sent.append(time.monotonic())
            conn.write(event(chunk(word)))
            conn.sleep(1.5)
        conn.write(event(chunk(finish="stop")) + DONE)

    server.route(PATH, handler)
    out = check(run_stream(client_for(server, idle=5.0), guard=10.0))
    deltas = [
        t
        for t, e in zip(out.times, out.events, strict=True)
        if type(e).__name__ == "OutputTextDelta"
    ]
    assert len(deltas) == 3
    for was_sent, arrived in zip(sent, deltas, strict=True):
        # Held back, it would wait for the next write (1.5 s later) or the end; the plan
        # says 100 ms, and a busy machine is allowed five times that.
        assert arrived - was_sent < 0.5, f"an event waited {arrived - was_sent:.3f} s"
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_31_corrupt_gzip_mid_stream_is_a_connection_error(
    server: LoopbackServer, client: Client
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})
        gz = zlib.compressobj(wbits=31)
        conn.write(gz.compress(event(chunk("fine "))) + gz.flush(zlib.Z_SYNC_FLUSH))
        conn.write(b"\x00garbage that is not deflate\xff" * 4)
        conn.end()

    server.route(PATH, handler)
    out = check(run_stream(client), StreamConnectionError)
    assert "decompress" in str(out.error)
    assert out.final.content == "fine "


# --- 32: stale keep-alive connections -------------------------------------------------------------


def test_32_a_server_closing_idle_connections_is_retried_before_any_byte(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    answered: list[int] = []
    body = answer("fresh")

    def keep_then_drop(conn: Conn) -> None:
        conn.keep_alive = True
        conn.respond(200, body, {"Content-Type": "text/event-stream"})
        answered.append(1)
        # Close the idle connection 50 ms after the response (the next read times out).
        conn._sock.settimeout(0.05)

    server.route(PATH, keep_then_drop)
    client = client_for(server, retries=2)
    rng = random.Random(32)
    for _ in range(20):
        out = run_stream(client)
        if out.error is not None:
            check(out, ConnectError)
        else:
            check(out)
            assert out.final.content == "fresh"
        time.sleep(rng.uniform(0.0, 0.1))
    # Never a second POST once a response had begun: every response sent was consumed.
    assert len(answered) == 20


# --- 34: proxies -------------------------------------------------------------------------------


def _proxy(buffering: bool) -> Callable[[Conn], None]:
    """A plain-HTTP forward proxy (absolute-form request target), relaying the response
    as it arrives or, when ``buffering``, sending the headers and then holding the whole
    body until the origin ends it (nginx's ``proxy_buffering``)."""

    def handler(conn: Conn) -> None:
        target = conn.path.split("//", 1)[1]
        hostport, _, path = target.partition("/")
        host, _, port = hostport.partition(":")
        lines = [f"{conn.method} /{path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in conn.headers.items() if k.lower() != "connection"]
        lines.append("Connection: close")
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + conn.body)
            pending = b""
            head_sent = False
            while not conn.stopping:
                try:
                    data = upstream.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                if not buffering:
                    conn.raw(data)
                    continue
                pending += data
                if not head_sent and b"\r\n\r\n" in pending:
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    conn.raw(head + b"\r\n\r\n")
                    head_sent = True
            conn.raw(pending)
        conn.abort()

    return handler


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(io_timeout=10.0) as srv:
        for name in (
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", srv.url)
        monkeypatch.setenv("http_proxy", srv.url)
        yield srv


def test_34a_a_pass_through_proxy_works(
    server: LoopbackServer, proxy: LoopbackServer, client: Client
) -> None:
    proxy.set_default(_proxy(buffering=False))
    server.route(PATH, sse_body(answer("via ", "proxy"), split=True))
    out = check(run_stream(client))
    assert out.final.content == "via proxy"
    assert len(proxy.requests) == 1 and proxy.requests[0].path.startswith("http://")


def test_34b_a_buffering_proxy_looks_idle_and_says_so(
    server: LoopbackServer, proxy: LoopbackServer, client: Client
) -> None:
    proxy.set_default(_proxy(buffering=True))

    def slow(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        for word in words(30):
            conn.write(event(chunk(word)))
            conn.sleep(0.1)

    server.route(PATH, slow)
    out = check(run_stream(client), IdleTimeoutError)
    assert "proxy" in str(out.error)


def test_34c_no_proxy_bypasses_it(
    server: LoopbackServer, proxy: LoopbackServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    proxy.set_default(_proxy(buffering=False))
    server.route(PATH, sse_body(answer("direct")))
    check(run_stream(client))
    assert proxy.requests == []


# --- 35, 36: slow answers, no answers, no accept ---------------------------------------------


def _late_head(delay: float) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.sleep(delay)
        sse_body(answer("late"))(conn)

    return handler


def test_35_a_late_status_line_is_not_a_connect_timeout(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # Headers after 1 s; connect timeout 0.2 s; idle 0.5 s, so the header wait (idle +
    # 1 s) allows 1.5 s.
    server.route(PATH, _late_head(1.0))
    client = client_for(server, connect=0.2, idle=IDLE)
    out = check(run_stream(client, guard=4.0))
    assert out.final.content == "late"


def test_35_headers_later_than_the_idle_limit_time_out(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _late_head(30.0))
    out = check(run_stream(client, guard=limit_bound(IDLE + 1.0) + 1.0), IdleTimeoutError)
    assert out.elapsed < limit_bound(IDLE + 1.0)
    assert "proxy" in str(out.error)


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A listener that never accepts, its backlog full: connects hang in SYN-SENT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_36_a_listener_that_never_accepts_is_a_connect_timeout(
    full_backlog: str, client_for: Callable[..., Client]
) -> None:
    client = client_for(full_backlog, connect=0.5, retries=0)
    out = check(run_stream(client, guard=5.0), ConnectTimeoutError)
    assert out.elapsed < limit_bound(0.5)


def test_36_connect_timeouts_are_retried_within_their_bound(
    full_backlog: str, client_for: Callable[..., Client]
) -> None:
    client = client_for(full_backlog, connect=0.3, retries=1)
    out = check(run_stream(client, guard=5.0), ConnectTimeoutError)
    assert out.elapsed < limit_bound(2 * 0.3 + 0.2)  # two attempts and the backoff


def test_connection_refused_is_a_connect_error(client_for: Callable[..., Client]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        client = client_for(f"http://127.0.0.1:{port}", retries=1)
        out = check(run_stream(client), ConnectError)
    assert not isinstance(out.error, ConnectTimeoutError)


def test_close_while_waiting_to_retry_returns_at_once(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # A stream closed while it waits to retry stops waiting at once.
    server.route(
        PATH, json_error(503, _error_body("busy", "server_error", "503"), {"Retry-After": "30"})
    )
    client = client_for(server, retries=3, retry=None)
    stream = client.stream({"model": "m", "messages": []})
    server.wait_for_requests(1)
    time.sleep(0.1)
    began = time.monotonic()
    stream.close()
    assert time.monotonic() - began < CLOSE_BOUND  # not the 30 s Retry-After
    stream._worker.job.join(WORKER_BOUND)
    assert not stream._worker.job.is_alive()
    assert threading.active_count() > 0

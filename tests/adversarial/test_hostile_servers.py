"""§4 E (cases 57-59) and the other hostile servers: each ends in a typed error within
its limit, with bounded memory (the growth of the peak resident set is measured, and the
bound covers the in-process server too).

The suite's clients use ``max_event_bytes`` of 4 MiB here, so that the limits are reached
in a fraction of a second. The other hostile servers of the brief are in
``test_http_transport.py``: a redirect to another host (which receives nothing: case 27),
a listener that never accepts (case 36), a server that never answers (case 35).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest

from chatstream import (
    Client,
    ConnectError,
    EventTooLargeError,
    IdleTimeoutError,
    Limits,
    OutputTextDelta,
    StreamOptions,
)
from tests.helpers import chunk, limit_bound
from tests.loopback import Conn, LoopbackServer

from .harness import (
    BODY,
    DONE,
    PATH,
    MiB,
    PeakRSS,
    check,
    event,
    run_stream,
)

LIMIT = 4 * MiB


@pytest.fixture
def capped(server: LoopbackServer, client_for: Callable[..., Client]) -> Client:
    return client_for(server, idle=1.0, limits=Limits(max_event_bytes=LIMIT))


def _endless_line(conn: Conn) -> None:
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    conn.write(event(chunk("before ")))
    conn.write(b"data: ")
    piece = b"y" * (16 * 1024)
    while True:
        conn.write(piece)


def _endless_close_delimited(conn: Conn) -> None:
    conn.send_head(headers={"Content-Type": "text/event-stream"}, mode="close")
    conn.write(event(chunk("before ")))
    conn.write(b"data: ")
    piece = b"z" * (64 * 1024)
    while True:
        conn.write(piece)


def _huge_http_chunk(conn: Conn) -> None:
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    conn.write(event(chunk("before ")))
    conn.raw(b"100000000\r\n")  # 4 GiB announced
    conn.raw(b"data: ")
    piece = b"z" * (64 * 1024)
    while True:
        conn.raw(piece)


@pytest.mark.parametrize(
    "handler",
    [_endless_line, _endless_close_delimited, _huge_http_chunk],
    ids=["endless-line", "close-delimited-endless", "4GiB-chunk"],
)
def test_57_an_endless_event_stops_at_the_event_limit(
    server: LoopbackServer, capped: Client, handler: Callable[[Conn], None]
) -> None:
    server.route(PATH, handler)
    with PeakRSS() as rss:
        out = check(run_stream(capped, guard=5.0), EventTooLargeError)
    assert out.error.limit == LIMIT  # type: ignore[union-attr]
    assert out.final.content == "before "
    assert rss.growth < 3 * LIMIT, f"peak RSS grew {rss.growth / MiB:.1f} MiB"


def test_58_a_decompression_bomb_stops_at_the_event_limit(
    server: LoopbackServer, capped: Client
) -> None:
    def bomb(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})
        gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = (b"data: " + b"y" * 1000 + b"\n") * 1024  # 1 MiB of lines, no blank line
        conn.write(gz.compress(event(chunk("before "))) + gz.flush(zlib.Z_SYNC_FLUSH))
        squeezed = gz.compress(block) + gz.flush(zlib.Z_SYNC_FLUSH)
        sizes.append(len(squeezed))
        while True:
            conn.write(squeezed)
            squeezed = gz.compress(block) + gz.flush(zlib.Z_SYNC_FLUSH)
            sizes.append(len(squeezed))

    sizes: list[int] = []
    server.route(PATH, bomb)
    with PeakRSS() as rss:
        out = check(run_stream(capped, guard=5.0), EventTooLargeError)
    assert out.final.content == "before "
    assert sizes[1] < 16 * 1024  # each inflating MiB costs the server a few KiB
    assert rss.growth < 3 * LIMIT, f"peak RSS grew {rss.growth / MiB:.1f} MiB"


def test_59_a_flood_of_tiny_events_with_a_consumer_keeping_up(
    server: LoopbackServer, client: Client
) -> None:
    count = 100_000

    def flood(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        tiny = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n' * 1000
        for _ in range(count // 1000):
            conn.write(tiny)
        conn.write(event(chunk(finish="stop")) + DONE)

    server.route(PATH, flood)
    deltas = 0
    with PeakRSS() as rss, client.stream(BODY, options=StreamOptions(queue_size=256)) as stream:
        for item in stream:  # keeps no event
            if isinstance(item, OutputTextDelta):
                deltas += 1
        response = stream.result(timeout=1)
    assert deltas == count and len(response.content) == count
    assert rss.growth < 32 * MiB, f"peak RSS grew {rss.growth / MiB:.1f} MiB"


def test_endless_headers_are_refused(server: LoopbackServer, client: Client) -> None:
    def many(conn: Conn) -> None:
        conn.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        for i in range(100_000):
            conn.raw(b"X-Filler-%d: %s\r\n" % (i, b"v" * 100))

    server.route(PATH, many)
    check(run_stream(client), ConnectError)


def test_an_endless_status_line_is_refused(server: LoopbackServer, client: Client) -> None:
    def endless(conn: Conn) -> None:
        conn.raw(b"HTTP/1.1 200 ")
        while True:
            conn.raw(b"O" * 65536)

    server.route(PATH, endless)
    check(run_stream(client), ConnectError)


def test_trickled_headers_are_bounded_by_the_idle_limit(
    server: LoopbackServer, client: Client
) -> None:
    # A byte of header every 0.1 s: the socket read timeout (per recv) never fires. The
    # watchdog bounds the whole header wait by the idle limit + 1 s.
    def trickle(conn: Conn) -> None:
        conn.raw(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while True:
            conn.sleep(0.1)
            conn.raw(b"a")

    server.route(PATH, trickle)
    idle = client.timeouts.idle or 0.0
    out = check(run_stream(client, guard=limit_bound(idle + 1.0) + 1.0), IdleTimeoutError)
    assert out.elapsed < limit_bound(idle + 1.0)


def test_a_reset_before_the_headers_is_a_connect_error(
    server: LoopbackServer, client: Client
) -> None:
    def reset(conn: Conn) -> None:
        conn.abort(rst=True)

    server.route(PATH, reset)
    check(run_stream(client), ConnectError)

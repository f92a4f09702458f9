"""§4 C (cases 37-40): time limits. A stalled, trickling or endless stream ends in
:class:`~chatstream.IdleTimeoutError` naming the limit, on time (never early), with what
arrived before kept. Progress is a completed line: an event's line or a keep-alive comment
keeps the idle limit away (keep-alives not the event limit), bytes that never finish a
line do not."""

from __future__ import annotations

import json
from collections.abc import Callable

from chatstream import Client, EventTimeoutError, IdleTimeoutError, TotalTimeoutError
from tests.helpers import answer, chunk, limit_bound
from tests.loopback import Conn, LoopbackServer

from .harness import IDLE, PATH, check, event, run_stream, words


def _stall_after(first: bytes, *, mode: str = "chunked") -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode)  # type: ignore[arg-type]
        conn.write(first)
        conn.sleep(60)

    return handler


def test_37_stall_after_one_event_times_out_on_time(server: LoopbackServer, client: Client) -> None:
    for mode in ("chunked", "close"):
        server.route(PATH, _stall_after(event(chunk("kept")), mode=mode))
        out = check(run_stream(client), IdleTimeoutError)
        assert out.error is not None and out.error.name == "idle"  # type: ignore[attr-defined]
        assert out.final.content == "kept"
        stalled = out.elapsed - (out.times[0] - out.started)
        assert stalled < limit_bound(IDLE), stalled


def test_38_a_trickle_never_completing_a_line_hits_the_idle_limit(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # One byte of a comment every 0.1 s: bytes keep arriving, but no line is ever
    # completed, so the server makes no progress: the idle limit ends it.
    def trickle(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("first")))
        conn.write(b":")
        while True:
            conn.sleep(0.1)
            conn.write(b"x")

    server.route(PATH, trickle)
    client = client_for(server, idle=0.5)
    out = check(run_stream(client, guard=3.0), IdleTimeoutError)
    assert out.error is not None and out.error.name == "idle"  # type: ignore[attr-defined]
    assert out.final.content == "first"


def test_38_completed_lines_of_a_slow_event_keep_the_idle_clock_alive(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # One event sent as a data line per line of indented JSON, one every 0.15 s (over
    # 1.5 s in all) against an idle limit of 0.5 s: each completed line is progress.
    pieces = json.dumps(chunk("slow"), indent=1).splitlines()
    assert len(pieces) >= 10

    def lines(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        for piece in pieces:
            conn.write(f"data: {piece}\n".encode())
            conn.sleep(0.15)
        conn.write(b"\n" + event(chunk(finish="stop")) + b"data: [DONE]\n\n")

    server.route(PATH, lines)
    client = client_for(server, idle=0.5)
    out = check(run_stream(client, guard=5.0))
    assert out.final.content == "slow"


def test_38_trickle_is_ended_by_the_total_limit_too(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    def trickle(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        while True:
            conn.write(b": ping\n\n")
            conn.sleep(0.1)

    server.route(PATH, trickle)
    client = client_for(server, idle=0.5, total=1.0)
    out = check(run_stream(client, guard=3.0), TotalTimeoutError)
    assert out.error is not None and out.error.name == "total"  # type: ignore[attr-defined]


def _keepalives_then(body: bytes, *, seconds: float, every: float) -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        for _ in range(round(seconds / every)):
            conn.write(b": keepalive\n\n")
            conn.sleep(every)
        conn.write(body)

    return handler


def test_39_keepalives_keep_the_idle_timer_alive(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    # 1.5 s of keep-alives every 0.1 s against an idle limit of 0.5 s: completes.
    server.route(PATH, _keepalives_then(answer("late ", "answer"), seconds=1.5, every=0.1))
    client = client_for(server, idle=0.5)
    out = check(run_stream(client, guard=4.0))
    assert out.final.content == "late answer"


def test_39_keepalives_do_not_count_for_the_event_limit(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, _keepalives_then(answer("never"), seconds=3.0, every=0.1))
    client = client_for(server, idle=0.5, event=0.8)
    out = check(run_stream(client, guard=5.0), EventTimeoutError)
    assert out.error is not None and out.error.name == "event"  # type: ignore[attr-defined]
    assert out.elapsed < limit_bound(0.8)


def test_40_total_limit_ends_a_healthy_long_stream_with_its_partial(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    def slow(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        for word in words(40):
            conn.write(event(chunk(word)))
            conn.sleep(0.1)  # 4 s in all
        conn.write(event(chunk(finish="stop")))

    server.route(PATH, slow)
    client = client_for(server, idle=0.5, total=1.0)
    out = check(run_stream(client, guard=5.0), TotalTimeoutError)
    assert out.error is not None and out.error.name == "total"  # type: ignore[attr-defined]
    assert out.elapsed < limit_bound(1.0)
    assert out.final.content.startswith("w0 w1 ")

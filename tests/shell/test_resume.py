"""Resuming a Responses stream that dropped (``Retry.max_resumes``): over loopback, a
server that cuts the connection mid-stream and serves ``GET /responses/{id}?stream=true
&starting_after=N``; and the core's part, :meth:`StreamParser.resume`."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chatstream import (
    ChatStreamError,
    Client,
    IncompleteStreamError,
    Response,
    ResponseEvent,
    Retry,
    StreamConnectionError,
    StreamParser,
    Telemetry,
    Timeouts,
    TotalTimeoutError,
)
from chatstream._shell.resume import resume_url

from ..helpers import TIMEOUTS, drain, limit_bound
from ..loopback import Conn, Handler, LoopbackServer, sse_body

pytestmark = pytest.mark.usefixtures("no_leaks")

RESPONSE = {"id": "resp_1", "model": "m", "status": "in_progress", "background": True}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
DELTAS = ["One", " two", " three", " four", " five"]
REQUEST = {"model": "m", "input": "count", "background": True}
#: Resumes at once (no jitter, a millisecond's wait), at most twice.
RESUMING = Retry(max_resumes=2, backoff=0.001, jitter=0.0)


def _events() -> list[dict[str, Any]]:
    """A background response's stream, each event with its sequence number."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": RESPONSE},
        {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
    ]
    events += [
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": d}
        for d in DELTAS
    ]
    done = {**MESSAGE, "content": [{"type": "output_text", "text": "".join(DELTAS)}]}
    events += [
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": {**RESPONSE, "status": "completed"}},
    ]
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


EVENTS = _events()


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def cut_after(count: int, *, half: bool = True, rst: bool = False) -> Handler:
    """Send the first ``count`` events (and half of the next one, with ``half``), then
    cut the connection (a reset with ``rst``)."""

    def handler(conn: Conn) -> None:
        conn.send_head(200, {"Content-Type": "text/event-stream"}, mode="close")
        conn.write(sse(EVENTS[:count]))
        if half:
            conn.write(sse(EVENTS[count : count + 1])[:20])
        conn.abort(rst=rst)

    return handler


def starting_after(conn: Conn) -> int:
    return int(parse_qs(urlsplit(conn.path).query)["starting_after"][0])


def resume_from(back: int = 0, *, cut: int | None = None) -> Handler:
    """Serve the stream again after ``starting_after`` (``back`` events earlier: a server
    that repeats), to its end, or cut after ``cut`` events."""

    def handler(conn: Conn) -> None:
        rest = EVENTS[max(starting_after(conn) + 1 - back, 0) :]
        if cut is None:
            sse_body(sse(rest))(conn)
            return
        conn.send_head(200, {"Content-Type": "text/event-stream"}, mode="close")
        conn.write(sse(rest[:cut]))
        conn.abort()

    return handler


def serve(server: LoopbackServer, first: Handler, again: Handler) -> Client:
    server.route("/v1/responses", first)
    server.route("/v1/responses/resp_1", again)
    return Client(
        server.url + "/v1", api_key="sk-test", timeouts=TIMEOUTS, retry=RESUMING, api="responses"
    )


def run(client: Client, body: dict[str, Any] = REQUEST) -> tuple[list[ResponseEvent], Any, Any]:
    """The events, the error (or None) and the response (or the partial) of one stream."""
    with client, client.stream(body) as stream:
        events, error = drain(stream)
        response = stream.result() if error is None else error.partial
    return events, error, response


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[list[ResponseEvent], Response]:
    """The events and the response of the stream read without a drop."""
    with LoopbackServer() as server:
        server.route("/v1/responses", sse_body(sse(EVENTS)))
        events, error, response = run(Client(server.url + "/v1", api="responses"))
    assert error is None
    return events, response


def test_a_stream_cut_mid_stream_goes_on_from_its_last_sequence_number(
    server: LoopbackServer, uninterrupted: tuple[list[ResponseEvent], Response]
) -> None:
    events, error, response = run(serve(server, cut_after(4), resume_from()))
    assert error is None
    assert (events, response) == uninterrupted
    assert response.content == "One two three four five"
    assert [r.method for r in server.requests] == ["POST", "GET"]
    assert starting_after_of(server.requests[1].path) == 3


def starting_after_of(path: str) -> int:
    query = parse_qs(urlsplit(path).query)
    assert query["stream"] == ["true"]
    return int(query["starting_after"][0])


def test_a_connection_reset_mid_stream_is_resumed_too(
    server: LoopbackServer, uninterrupted: tuple[list[ResponseEvent], Response]
) -> None:
    events, error, response = run(serve(server, cut_after(5, rst=True), resume_from()))
    assert error is None
    assert (events, response) == uninterrupted


def test_events_a_server_sends_again_on_resume_are_skipped(
    server: LoopbackServer, uninterrupted: tuple[list[ResponseEvent], Response]
) -> None:
    events, error, response = run(serve(server, cut_after(5), resume_from(back=4)))
    assert error is None
    assert (events, response) == uninterrupted


def test_a_stream_may_drop_again_and_be_resumed_again(
    server: LoopbackServer, uninterrupted: tuple[list[ResponseEvent], Response]
) -> None:
    second = resume_from(cut=2)
    first_get = threading.Event()

    def again(conn: Conn) -> None:
        if first_get.is_set():
            resume_from()(conn)
        else:
            first_get.set()
            second(conn)

    events, error, response = run(serve(server, cut_after(3), again))
    assert error is None
    assert (events, response) == uninterrupted
    assert [starting_after_of(r.path) for r in server.requests[1:]] == [2, 4]


def test_the_resume_is_a_get_with_the_same_credentials_and_no_body(
    server: LoopbackServer,
) -> None:
    run(serve(server, cut_after(4), resume_from()))
    post, get = server.requests
    assert get.method == "GET"
    assert get.path == "/v1/responses/resp_1?stream=true&starting_after=3"
    assert get.headers["Authorization"] == post.headers["Authorization"] == "Bearer sk-test"
    assert get.body == b""
    assert "Content-Type" not in get.headers and "Content-Length" not in get.headers


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(cut_after(0), id="cut-before-any-event"),
        pytest.param(
            sse_body(
                sse([{k: v for k, v in e.items() if k != "sequence_number"} for e in EVENTS[:4]])
            ),
            id="events-without-sequence-numbers",
        ),
        pytest.param(sse_body(sse(EVENTS[1:4])), id="no-response-created"),
    ],
)
def test_a_stream_with_no_id_or_no_sequence_number_is_not_resumed(
    server: LoopbackServer, first: Handler
) -> None:
    _, error, _ = run(serve(server, first, resume_from()))
    assert isinstance(error, IncompleteStreamError)
    assert [r.method for r in server.requests] == ["POST"]


def test_resuming_is_off_by_default(server: LoopbackServer) -> None:
    client = serve(server, cut_after(4, half=False), resume_from())
    client.retry = Retry()
    _, error, response = run(client)
    assert isinstance(error, IncompleteStreamError)
    assert response.content == "One two"
    assert [r.method for r in server.requests] == ["POST"]


def test_a_connection_reset_is_reported_when_resuming_is_off(server: LoopbackServer) -> None:
    client = serve(server, cut_after(4, rst=True), resume_from())
    client.retry = Retry()
    _, error, response = run(client)
    assert isinstance(error, StreamConnectionError)
    assert response.content == "One two"


def test_a_request_without_background_is_not_resumed(server: LoopbackServer) -> None:
    _, error, _ = run(serve(server, cut_after(4), resume_from()), {"model": "m", "input": "count"})
    assert isinstance(error, IncompleteStreamError)
    assert [r.method for r in server.requests] == ["POST"]


def test_resumes_are_bounded_and_the_drop_keeps_everything_read(server: LoopbackServer) -> None:
    _, error, response = run(serve(server, cut_after(3), resume_from(cut=1)))
    assert isinstance(error, IncompleteStreamError)
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]
    assert response.content == "One two three"
    assert error.partial is response


def test_a_server_that_cannot_resume_leaves_the_drop_reported(server: LoopbackServer) -> None:
    def not_found(conn: Conn) -> None:
        conn.respond(404, b'{"error": {"message": "not a background response"}}')

    _, error, response = run(serve(server, cut_after(4), not_found))
    assert isinstance(error, IncompleteStreamError)
    assert response.content == "One two"
    assert [r.method for r in server.requests] == ["POST", "GET"]  # 404 is not retried


def test_a_resume_answered_with_a_status_the_policy_retries_is_tried_again(
    server: LoopbackServer, uninterrupted: tuple[list[ResponseEvent], Response]
) -> None:
    answered = threading.Event()

    def busy_once(conn: Conn) -> None:
        if answered.is_set():
            resume_from()(conn)
        else:
            answered.set()
            conn.respond(503, b'{"error": {"message": "busy"}}')

    events, error, response = run(serve(server, cut_after(4), busy_once))
    assert error is None
    assert (events, response) == uninterrupted
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]


def test_a_resume_answered_with_json_is_not_read(server: LoopbackServer) -> None:
    whole = json.dumps({**RESPONSE, "status": "completed", "output": []}).encode()

    def as_json(conn: Conn) -> None:
        conn.respond(200, whole, {"Content-Type": "application/json"})

    _, error, response = run(serve(server, cut_after(4), as_json))
    assert isinstance(error, IncompleteStreamError)
    assert response.content == "One two"


def test_a_resume_counts_as_a_retry_in_the_timing_and_the_telemetry(
    server: LoopbackServer,
) -> None:
    retries: list[tuple[int, str]] = []

    class Hooks(Telemetry):
        def on_retry(
            self, context: Any, attempt: int, delay: float, error: ChatStreamError
        ) -> None:
            retries.append((attempt, type(error).__name__))

    client = serve(server, cut_after(4), resume_from())
    client.telemetry = Hooks()
    _, error, response = run(client)
    assert error is None
    assert response.timing.retry_waits == (pytest.approx(0.001),)
    assert retries == [(2, "IncompleteStreamError")]


def test_the_total_time_limit_runs_across_the_resumed_requests(server: LoopbackServer) -> None:
    def cut_at_once(conn: Conn) -> None:  # resumable again and again, never ending
        conn.send_head(200, {"Content-Type": "text/event-stream"}, mode="close")
        conn.sleep(0.05)
        conn.abort()

    client = serve(server, cut_after(4), cut_at_once)
    client.retry = Retry(max_resumes=10_000, backoff=0.001, max_backoff=0.001)
    client.timeouts = Timeouts(connect=2.0, idle=5.0, total=0.5)
    started = time.monotonic()
    _, error, response = run(client)
    assert isinstance(error, TotalTimeoutError)
    assert time.monotonic() - started < limit_bound(0.5)
    assert len(server.requests) > 2
    assert response.content == "One two"


# --- the core ------------------------------------------------------------------------------


def test_the_parser_skips_what_it_read_once_resumed() -> None:
    parser = StreamParser(api="responses")
    events = parser.feed(sse(EVENTS[:4]) + sse(EVENTS[4:5])[:15])
    assert parser.last_sequence_number == 3
    parser.resume()
    events += parser.feed(sse(EVENTS[1:]))
    whole = StreamParser(api="responses")
    assert events == whole.feed(sse(EVENTS))
    assert parser.result() == whole.result()


def test_without_a_resume_events_are_read_as_sent_whatever_their_numbers() -> None:
    # A server that numbers oddly on one connection loses nothing.
    same = [{**e, "sequence_number": 0} for e in EVENTS]
    parser = StreamParser(api="responses")
    list(parser.iter_events([sse(same)]))
    assert parser.result().content == "One two three four five"


def test_only_a_responses_stream_that_has_not_ended_can_be_resumed() -> None:
    with pytest.raises(RuntimeError):
        StreamParser().resume()
    parser = StreamParser(api="responses")
    parser.feed(sse(EVENTS))
    with pytest.raises(RuntimeError):
        parser.resume()


def test_the_resume_url_keeps_the_query_of_the_base_url() -> None:
    url = resume_url("https://gw.example/v1/responses?key=k", "resp/1", 7)
    assert url == "https://gw.example/v1/responses/resp%2F1?key=k&stream=true&starting_after=7"

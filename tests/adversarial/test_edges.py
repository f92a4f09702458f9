"""Issue 10: hostile and odd responses, leaked credentials and limits, over the loopback
socket. Each test is named for the behaviour it proves and asserts the four invariants
and the canary check through :func:`harness.check` (the leak and log checks are the
suite's autouse fixtures). Arguments checked at the call, which need no socket, are in
``tests/test_arguments.py``; the core's half of the JSON completion path is in
``tests/test_completion.py``."""

from __future__ import annotations

import base64
import email.utils
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chatstream import (
    APIStatusError,
    BadRequestError,
    Client,
    ContextLengthExceededError,
    ContextWindowExceeded,
    IncompleteStreamError,
    LimitExceededError,
    Limits,
    OutputTextDelta,
    ProviderError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TooManyChoicesError,
    TooManyToolCallsError,
    UnexpectedResponseError,
)
from tests.helpers import answer, chunk
from tests.loopback import Conn, LoopbackServer, json_error, sequence, sse_body

from .harness import (
    CANARY,
    PATH,
    check,
    event,
    run_stream,
    sse,
)

HTTP_ERRORS = Path(__file__).parent.parent / "data" / "http-errors"

COMPLETION = {
    "id": "chatcmpl-1",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}
    ],
}


def _json_200(body: bytes, mode: str = "length") -> Callable[[Conn], None]:
    def handler(conn: Conn) -> None:
        if mode == "close":
            conn.send_head(200, {"Content-Type": "application/json"}, mode="close")
            conn.write(body)
            conn.end()
        else:
            conn.respond(200, body, {"Content-Type": "application/json"})

    return handler


def _no_piece_of(secret: str, text: str, size: int = 8) -> bool:
    """True when no ``size`` characters of ``secret`` appear in ``text`` together."""
    return not any(secret[i : i + size] in text for i in range(len(secret) - size + 1))


# --- 1, 2: a 200 JSON body that is not a completion ---------------------------------------


def test_an_event_stream_sent_as_json_is_an_unexpected_response(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _json_200(sse(chunk("looks fine"), chunk(finish="stop"))))
    out = check(run_stream(client), UnexpectedResponseError)
    assert "event stream" in str(out.error)
    assert out.error.body.startswith("data: ")  # type: ignore[union-attr]
    assert out.final.content == ""


def test_a_json_completion_cut_off_mid_way_is_incomplete(
    server: LoopbackServer, client: Client
) -> None:
    whole = json.dumps(COMPLETION).encode()
    server.route(PATH, _json_200(whole[: len(whole) // 2], mode="close"))
    out = check(run_stream(client), IncompleteStreamError)
    assert "cut off" in str(out.error)


def test_a_gateways_detail_object_is_an_unexpected_response_quoting_it(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, _json_200(b'{"detail": "Upstream model is loading"}'))
    out = check(run_stream(client), UnexpectedResponseError)
    assert 'no "choices"' in str(out.error) and "Upstream model is loading" in str(out.error)
    assert out.error.status == 200  # type: ignore[union-attr]
    assert out.error.content_type == "application/json"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"choices": 5}', '"choices" is a number'),
        (b'{"choices": true}', '"choices" is a boolean'),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (
            json.dumps(
                {
                    "choices": [
                        {
                            "message": {"content": "x", "tool_calls": [{"id": "c"}, 7, None]},
                            "finish_reason": "tool_calls",
                        }
                    ]
                }
            ).encode(),
            "tool_calls[0] is a call without a function",
        ),
        (
            json.dumps(
                {
                    "choices": [
                        {
                            "message": {
                                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]
                            }
                        }
                    ]
                }
            ).encode(),
            "arguments is a object, not a string",
        ),
    ],
    ids=["choices-number", "choices-true", "deep-nesting", "junk-tool-calls", "object-arguments"],
)
def test_a_hostile_json_completion_is_a_typed_error_saying_what_is_wrong(
    server: LoopbackServer, client: Client, body: bytes, says: str
) -> None:
    server.route(PATH, _json_200(body))
    out = check(run_stream(client), UnexpectedResponseError)
    assert says in str(out.error)


# --- 3, 4: interim responses, a repeated Content-Type --------------------------------------


@pytest.mark.parametrize("interim", [b"102 Processing", b"103 Early Hints\r\nLink: </s.css>"])
def test_interim_responses_before_the_answer_are_skipped(
    server: LoopbackServer, client: Client, interim: bytes
) -> None:
    respond = sse_body(answer("after ", "interim"))

    def handler(conn: Conn) -> None:
        conn.raw(b"HTTP/1.1 " + interim + b"\r\n\r\n")
        respond(conn)

    server.route(PATH, handler)
    out = check(run_stream(client))
    assert out.final.content == "after interim"
    assert len(server.requests) == 1


def test_a_content_type_sent_twice_as_event_stream_is_an_event_stream(
    server: LoopbackServer, client: Client
) -> None:
    twice = [("Content-Type", "text/event-stream"), ("Content-Type", "text/event-stream")]
    server.route(PATH, sse_body(answer("proxied"), headers=twice))
    assert check(run_stream(client)).final.content == "proxied"


def test_a_content_type_sent_twice_with_another_type_is_still_unexpected(
    server: LoopbackServer, client: Client
) -> None:
    mixed = [("Content-Type", "text/event-stream"), ("Content-Type", "text/html")]
    server.route(PATH, sse_body(answer("?"), headers=mixed))
    check(run_stream(client), UnexpectedResponseError)


# --- 5: surrogates --------------------------------------------------------------------------


def test_a_surrogate_pair_split_across_two_deltas_is_joined(
    server: LoopbackServer, client: Client
) -> None:
    # As some servers split an emoji: each half escaped in its own delta.
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"smile \\ud83d"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00!"},"finish_reason":"stop"}]}'
        b"\n\ndata: [DONE]\n\n"
    )
    server.route(PATH, sse_body(body))
    out = check(run_stream(client))
    assert out.final.content == "smile \U0001f600!"
    out.final.content.encode()  # UTF-8 again: it can be sent back


def test_the_deltas_of_an_emoji_split_across_two_deltas_are_whole_characters(
    server: LoopbackServer, client: Client
) -> None:
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"hi \\ud83d"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00!"},"finish_reason":"stop"}]}'
        b"\n\ndata: [DONE]\n\n"
    )
    server.route(PATH, sse_body(body))
    out = check(run_stream(client))
    deltas = [e.delta for e in out.events if isinstance(e, OutputTextDelta)]
    assert deltas == ["hi ", "\U0001f600!"]
    assert "".join(deltas) == out.final.content


def test_a_lone_surrogate_sent_back_is_replaced_not_an_internal_error(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, sse_body(answer("ok")))
    messages = [{"role": "assistant", "content": "half \ud83d emoji"}]
    check(run_stream(client, body={"model": "m", "messages": messages}))
    sent = server.requests[0].json()["messages"][0]["content"]
    assert sent == "half \ufffd emoji"


# --- 6, 7: Retry-After values, unknown charsets ---------------------------------------------


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-inf", "1e400", "Fri, 01 Jan 99999999999 00:00:00 GMT"]
)
def test_an_unusable_retry_after_is_absent(
    server: LoopbackServer, client: Client, value: str
) -> None:
    server.route(PATH, json_error(429, {"error": {"message": "slow"}}, {"Retry-After": value}))
    out = check(run_stream(client), RateLimitError)
    assert out.error.retry_after is None  # type: ignore[union-attr]


def test_a_429_with_an_overflowing_retry_after_date_is_still_retried(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    limited = json_error(
        429, {"error": {"message": "slow"}}, {"Retry-After": "Fri, 01 Jan 99999999999 00:00:00 GMT"}
    )
    server.route(PATH, sequence(limited, sse_body(answer("second ", "try"))))
    out = check(run_stream(client_for(server, retries=1)))
    assert out.final.content == "second try" and len(server.requests) == 2


def test_a_retry_after_date_still_gives_a_finite_wait(
    server: LoopbackServer, client: Client
) -> None:
    date = email.utils.formatdate(time.time() + 20, usegmt=True)
    server.route(PATH, json_error(429, {"error": {"message": "slow"}}, {"Retry-After": date}))
    out = check(run_stream(client), RateLimitError)
    assert 10 < out.error.retry_after < 30  # type: ignore[union-attr, operator]


@pytest.mark.parametrize("charset", ["utf8mb4", "base64", "no-such-codec"])
def test_an_error_body_in_an_unknown_charset_is_decoded_and_retried(
    server: LoopbackServer, client_for: Callable[..., Client], charset: str
) -> None:
    failed = json_error(
        500,
        '{"error": {"message": "overloaded"}}',
        {"Content-Type": f"application/json; charset={charset}"},
    )
    server.route(PATH, sequence(failed, sse_body(answer("recovered"))))
    out = check(run_stream(client_for(server, retries=1)))
    assert out.final.content == "recovered" and len(server.requests) == 2


def test_an_error_body_in_an_unknown_charset_is_quoted(
    server: LoopbackServer, client: Client
) -> None:
    server.route(
        PATH,
        json_error(
            500,
            '{"error": {"message": "overloaded"}}',
            {"Content-Type": "application/json; charset=utf8mb4"},
        ),
    )
    out = check(run_stream(client), ServerError)
    assert "overloaded" in str(out.error) and "overloaded" in out.error.body  # type: ignore[union-attr]


# --- 8-10: credentials never shown ----------------------------------------------------------


@pytest.mark.parametrize("cut", [4, 10, len(CANARY) - 1])
def test_a_key_cut_by_the_snippet_of_a_200_page_is_not_shown(
    server: LoopbackServer, client: Client, cut: int
) -> None:
    # The page's 512th character falls inside the echoed key.
    page = "x" * (512 - cut) + CANARY + "</html>"
    server.route(PATH, lambda c: c.respond(200, page.encode(), {"Content-Type": "text/html"}))
    out = check(run_stream(client), UnexpectedResponseError)
    assert _no_piece_of(CANARY, out.error.body, size=4)  # type: ignore[union-attr]


def test_a_key_cut_by_the_snippet_of_a_json_200_is_not_shown(
    server: LoopbackServer, client: Client
) -> None:
    detail = "y" * (512 - 14 - 20) + CANARY
    server.route(PATH, _json_200(json.dumps({"detail": detail}).encode()))
    out = check(run_stream(client), UnexpectedResponseError)
    assert _no_piece_of(CANARY, out.error.body, size=4)  # type: ignore[union-attr]


def test_a_key_cut_by_the_snippet_of_an_error_status_is_not_shown(
    server: LoopbackServer, client: Client
) -> None:
    page = "z" * (512 - 9) + CANARY
    server.route(PATH, lambda c: c.respond(403, page.encode(), {"Content-Type": "text/html"}))
    out = check(run_stream(client), APIStatusError)
    assert _no_piece_of(CANARY, out.error.body, size=4)  # type: ignore[union-attr]


def _echo_credentials(status: int) -> Callable[[Conn], None]:
    """Answers ``status`` with a body and a header quoting every credential header."""

    def handler(conn: Conn) -> None:
        seen = {k: v for k, v in conn.headers.items() if "auth" in k.lower()}
        body = json.dumps({"error": {"message": f"denied: {seen}"}, "target": conn.path})
        conn.respond(
            status, body.encode(), {"Content-Type": "application/json", "X-Seen": str(seen)}
        )

    return handler


def test_basic_credentials_in_the_base_url_are_never_shown(server: LoopbackServer) -> None:
    password = "pw-" + CANARY
    server.route(PATH, _echo_credentials(401))
    base = server.url.replace("http://", f"http://someone:{password}@") + "/v1"
    with Client(base, api_key=None, retry=0, timeouts=1.0) as client:
        out = check(run_stream(client), APIStatusError, client=client)
    sent = server.requests[0].headers["Authorization"]
    basic = sent.split()[-1]
    assert sent.startswith("Basic ") and base64.b64decode(basic).decode().endswith(password)
    texts = [str(out.error), repr(out.error), out.error.body, repr(out.error.headers), repr(client)]  # type: ignore[union-attr]
    assert not any(basic in t or "pw-" in t for t in texts)


def test_proxy_credentials_are_never_shown(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, client_for: Callable[..., Client]
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    password = "proxy-" + CANARY
    proxy_url = server.url.replace("http://", f"http://agent:{password}@")
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    server.set_default(_echo_credentials(407))  # the "proxy" asks again, echoing them
    client = client_for(server)
    out = check(run_stream(client), APIStatusError, client=client)
    assert out.error.status == 407  # type: ignore[union-attr]
    sent = server.requests[0].headers["Proxy-Authorization"]
    basic = sent.split()[-1]
    assert base64.b64decode(basic).decode() == f"agent:{password}"
    texts = [str(out.error), repr(out.error), out.error.body, repr(out.error.headers)]  # type: ignore[union-attr]
    assert not any(basic in t or "proxy-sk" in t for t in texts)


def test_a_key_echoed_as_a_payload_key_is_redacted(server: LoopbackServer, client: Client) -> None:
    def echo(conn: Conn) -> None:
        key = conn.headers["Authorization"].split()[-1]
        frame = {"error": {"message": "quota", "usage_by_key": {key: 12}}}
        sse_body(event(chunk("kept ")) + event(frame))(conn)

    server.route(PATH, echo)
    out = check(run_stream(client), ProviderError)  # check() looks into payload's repr
    assert out.final.content == "kept "
    assert "[REDACTED]" in out.error.payload["error"]["usage_by_key"]  # type: ignore[union-attr]


# --- 13: an unusable turn-state value -------------------------------------------------------


@pytest.mark.parametrize("value", ["a\x00b", "tab\x0bbed", "\xff\xfe"])
def test_an_invalid_turn_state_value_is_ignored_and_the_turn_keeps_working(
    server: LoopbackServer, client: Client, value: str
) -> None:
    # A value with a control character or outside ASCII is no valid header value to
    # send back (servers may refuse the request); the turn goes on without it.
    body = answer("turn")
    pinned = sse_body(body, headers=[("x-codex-turn-state", value)])
    server.route(PATH, sequence(pinned, sse_body(body)))
    with client.turn() as turn:
        for _ in range(2):
            assert check(run_stream(client, turn=turn)).final.content == "turn"
    assert turn.state is None and len(server.requests) == 2
    assert "x-codex-turn-state" not in server.requests[1].headers


# --- 16: limits against hostile volume ------------------------------------------------------


def test_too_many_choices_end_the_stream_keeping_the_partial(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, sse_body(sse(*(chunk(f"c{i}", index=i) for i in range(4)))))
    out = check(run_stream(client_for(server, limits=Limits(max_choices=3))), TooManyChoicesError)
    error = out.error
    assert (error.name, error.limit) == ("max_choices", 3)  # type: ignore[union-attr]
    assert [c.content for c in out.final.choices] == ["c0", "c1", "c2"]


def test_too_many_tool_calls_in_a_choice_end_the_stream_keeping_the_partial(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    calls = [
        chunk(
            tool_calls=[{"index": i, "id": f"c{i}", "function": {"name": "f", "arguments": "{}"}}]
        )
        for i in range(5)
    ]
    server.route(PATH, sse_body(sse(chunk("text "), *calls)))
    out = check(
        run_stream(client_for(server, limits=Limits(max_tool_calls=4))), TooManyToolCallsError
    )
    assert out.error.name == "max_tool_calls"  # type: ignore[union-attr]
    assert out.final.content == "text "
    assert len(out.final.choices[0].incomplete_tool_calls) == 4


def test_a_body_over_max_total_bytes_ends_the_stream_keeping_the_partial(
    server: LoopbackServer, client: Client
) -> None:
    first = event(chunk("kept"))
    server.route(PATH, sse_body(first + b"".join(event(chunk("x" * 100)) for _ in range(50))))
    out = check(
        run_stream(client, limits=Limits(max_total_bytes=len(first) + 10)), ResponseTooLargeError
    )
    assert out.error.name == "max_total_bytes"  # type: ignore[union-attr]
    assert out.final.content == "kept"


def test_a_limit_given_to_stream_overrides_the_clients(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, sse_body(sse(*(chunk(f"c{i}", index=i) for i in range(3)))))
    client = client_for(server, limits=Limits(max_choices=2))
    assert len(check(run_stream(client, limits=Limits(max_choices=3))).final.choices) == 3
    check(run_stream(client), LimitExceededError)


def test_a_stream_without_a_byte_limit_lifts_the_clients(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    server.route(PATH, sse_body(sse(*(chunk("x" * 100) for _ in range(50)))))
    client = client_for(server, limits=Limits(max_total_bytes=1000))
    lifted = client.limits.replace(max_total_bytes=None)
    assert check(run_stream(client, limits=lifted)).final.content == "x" * 5000
    check(run_stream(client), LimitExceededError)


# --- context windows --------------------------------------------------------------------------


def _serve_recorded(server: LoopbackServer, name: str) -> None:
    """Answer with a recorded response (``tests/data/http-errors``), as it was sent."""
    head, _, body = (HTTP_ERRORS / name).read_bytes().partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers.pop("Content-Length", None)
    server.route(PATH, lambda c: c.respond(status, body, headers))


def test_a_recorded_llamacpp_context_error_is_a_context_window_error(
    server: LoopbackServer, client: Client
) -> None:
    _serve_recorded(server, "llamacpp-400-exceed-context.http")
    out = check(run_stream(client), ContextLengthExceededError)
    error = out.error
    assert isinstance(error, ContextWindowExceeded) and isinstance(error, BadRequestError)
    assert error.status == 400 and error.type == "exceed_context_size_error"
    assert "exceeds the available context size" in error.body
    assert error.headers["server"] == "llama.cpp"
    assert len(server.requests) == 1  # not retried


def test_a_recorded_llamacpp_invalid_request_is_a_plain_bad_request(
    server: LoopbackServer, client: Client
) -> None:
    _serve_recorded(server, "llamacpp-400-invalid-request.http")
    out = check(run_stream(client), BadRequestError)
    assert not isinstance(out.error, ContextWindowExceeded)

"""§4 A (cases 1-21): framing and parsing, over the real socket where the plan says so
(anything whose behaviour could depend on how bytes arrive), in memory for the rules of
the reducer (cases 2, 3, 10, 15-21)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import chatstream
from chatstream import (
    ChatStreamError,
    Client,
    Completed,
    IncompleteStreamError,
    ProviderError,
    ResponseEvent,
    StreamParser,
)
from chatstream.core.sse import SSEDecoder
from tests.helpers import (
    CORPUS,
    WORKER_BOUND,
    answer,
    chunk,
    comparable,
    corpus_names,
    expectation,
    limit_bound,
)
from tests.loopback import BodyMode, Conn, LoopbackServer, sse_body

from .harness import (
    DONE,
    PATH,
    MiB,
    PeakRSS,
    assert_reduces_to,
    check,
    event,
    run_stream,
    sse,
    words,
)

MODES: list[BodyMode] = ["chunked", "close"]


def core(
    pieces: Iterable[bytes], **options: Any
) -> tuple[list[ResponseEvent], ChatStreamError | None, chatstream.Response]:
    """Run the core over ``pieces`` and check its invariants: it ends exactly once
    (Completed last, or one ChatStreamError), and its events reduce to its response."""
    parser = StreamParser(**options)
    events: list[ResponseEvent] = []
    error: ChatStreamError | None = None
    try:
        for item in parser.iter_events(pieces):
            events.append(item)
    except ChatStreamError as exc:
        error = exc
    completed = [i for i, e in enumerate(events) if isinstance(e, Completed)]
    if error is None:
        assert completed == [len(events) - 1]
        response = parser.result()
    else:
        assert completed == [] and error.partial is not None
        response = error.partial
    assert_reduces_to(events, response)
    return events, error, response


def splits(data: bytes, rng: random.Random, most: int = 9) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, most)
        out.append(data[i : i + n])
        i += n
    return out


# --- 1, 61: split invariance, and the corpus over the socket -------------------------------

CORPUS_NAMES = corpus_names()


@pytest.mark.parametrize("mode", MODES)
def test_61_the_corpus_over_loopback_in_random_small_writes(
    server: LoopbackServer, client: Client, mode: BodyMode
) -> None:
    for number, name in enumerate(CORPUS_NAMES):
        body = (CORPUS / f"{name}.sse").read_bytes()
        server.route(PATH, sse_body(body, mode=mode, split=True, seed=number))
        want = expectation(name)
        # Thousands of writes of a few bytes from a server in this process: the longest
        # streams take 1.5 to 2.5 s on a busy machine. The guard only catches a hang.
        out = run_stream(client, guard=30.0)
        expect = None
        if want.get("error"):
            expect = type(out.error) if isinstance(out.error, ChatStreamError) else ChatStreamError
        check(out, expect)
        assert comparable(out.final.to_result_dict()) == comparable(want), name


def _big_stream(n: int) -> bytes:
    texts = ["héllo ", "✓ ", "你好", "🎉", "a\r\nb", "plain "]
    body = b"".join(
        event(chunk(texts[i % len(texts)] + str(i)), eol="\r\n")
        + (b": ping\r\n\r\n" if i % 97 == 0 else b"")
        for i in range(n)
    )
    return body + event(chunk(finish="stop"), eol="\r\n") + b"data: [DONE]\r\n\r\n"


def test_1_a_5000_event_stream_is_split_invariant() -> None:
    body = _big_stream(5000)
    _, error, whole = core([body])
    assert error is None
    rng = random.Random(1)
    for _ in range(20):
        _, error, response = core(splits(body, rng, most=64))
        assert error is None and response == whole
    # Between every \r and \n, and inside every multi-byte character: 1-byte pieces.
    small = _big_stream(300)
    _, _, small_whole = core([small])
    _, _, one_byte = core(small[i : i + 1] for i in range(len(small)))
    assert one_byte == small_whole


@pytest.mark.parametrize("mode", MODES)
def test_1_the_generated_stream_over_loopback(
    server: LoopbackServer, client: Client, mode: BodyMode
) -> None:
    body = _big_stream(2000)
    _, _, whole = core([body])
    server.route(PATH, sse_body(body, mode=mode, split=True, seed=5))
    out = check(run_stream(client, guard=10.0))
    assert out.final.content == whole.content


# --- 2, 3, 10: line endings and fields (in memory) ------------------------------------------------


def test_2_lf_crlf_and_cr_endings_give_the_same_result() -> None:
    lf = answer(*words(20))
    results = [core([lf.replace(b"\n", eol)])[2] for eol in (b"\n", b"\r\n", b"\r")]
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("body", [b"data: a\n\r\ndata: b\n\n", b"data: a\r\r\ndata: b\n\n"])
def test_3_mixed_endings_still_separate_events(body: bytes) -> None:
    decoder = SSEDecoder()
    messages = decoder.feed(body) + decoder.close()
    assert [m.data for m in messages] == ["a", "b"]


def test_10_multi_line_data_and_the_one_optional_space() -> None:
    decoder = SSEDecoder()
    messages = decoder.feed(b"data: a\ndata: b\n\ndata:x\n\ndata:  x\n\n")
    assert [m.data for m in messages] == ["a\nb", "x", " x"]


# --- 4-9, 12-14: over the socket ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_4_a_leading_bom_does_not_hide_the_first_event(
    server: LoopbackServer, client: Client, mode: BodyMode
) -> None:
    server.route(
        PATH, sse_body(b"\xef\xbb\xbf" + answer("first ", "second"), mode=mode, split=True)
    )
    out = check(run_stream(client))
    assert out.final.content == "first second"


@pytest.mark.parametrize(
    ("tail", "cls", "content"),
    [
        # (a) a whole chunk without its blank line: applied (the documented choice: the
        # body ended, the event is complete JSON), still no finish: incomplete.
        (b'data: {"choices":[{"delta":{"content":"x"}}]}', IncompleteStreamError, "kept x"),
        # (b) half an event: not JSON, skipped, incomplete.
        (b'data: {"cho', IncompleteStreamError, "kept "),
        # (c) [DONE] without its blank line: the end of the stream.
        (b"data: [DONE]", None, "kept "),
    ],
)
def test_5_an_unterminated_last_event(
    server: LoopbackServer, client: Client, tail: bytes, cls: type | None, content: str
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode="close")
        conn.write(event(chunk("kept ")))
        conn.write(tail)
        conn.end()  # FIN: a close-delimited body ends here

    server.route(PATH, handler)
    out = check(run_stream(client), cls)
    assert out.final.content == content


def test_6_invalid_utf8_costs_one_character_not_the_stream(
    server: LoopbackServer, client: Client
) -> None:
    bad = b'data: {"choices":[{"delta":{"content":"bad \xff\xfe here"}}]}\n\n'
    body = (
        event(chunk("before ")) + bad + event(chunk(" after")) + event(chunk(finish="stop")) + DONE
    )
    server.route(PATH, sse_body(body, split=True))
    out = check(run_stream(client))
    assert out.final.content == "before bad \ufffd\ufffd here after"


def test_7_non_json_data_is_skipped_and_counted(server: LoopbackServer, client: Client) -> None:
    junk = [
        b"data: ping\n\n",
        b"data: {'choices': []}\n\n",
        b"data: 42\n\n",
        b'data: {"choices": {}}\n\n',
    ]
    body = (
        event(chunk("a")) + b"".join(junk) + event(chunk("b")) + event(chunk(finish="stop")) + DONE
    )
    server.route(PATH, sse_body(body))
    out = check(run_stream(client))
    assert out.final.content == "ab"
    assert out.final.skipped_events == 3  # the object with "choices": {} is a chunk


def test_8_an_error_frame_after_two_deltas(server: LoopbackServer, client: Client) -> None:
    frame = b'event: error\ndata: {"error":{"message":"m","type":"server_error","code":"c"}}\n\n'
    server.route(PATH, sse_body(event(chunk("one ")) + event(chunk("two")) + frame + DONE))
    out = check(run_stream(client), ProviderError)
    error = out.error
    assert isinstance(error, ProviderError)
    assert (error.type, error.code) == ("server_error", "c") and "m" in error.message
    assert out.final.content == "one two"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "overloaded", "type": "server_error"}}, "overloaded"),
        ({"error": "plain string"}, "plain string"),
        ({"type": "error", "message": "typed"}, None),
        ({"error": None, "choices": [{"index": 0, "delta": {"content": "!"}}]}, "not an error"),
    ],
)
def test_9_in_band_error_variants(
    server: LoopbackServer, client: Client, payload: dict[str, Any], message: str | None
) -> None:
    body = event(chunk("ok")) + event(payload) + event(chunk(finish="stop")) + DONE
    server.route(PATH, sse_body(body))
    if message == "not an error":
        out = check(run_stream(client))
        assert out.final.content == "ok!"
        return
    out = check(run_stream(client), ProviderError)
    if message is not None:
        assert message in str(out.error)
    assert out.final.content == "ok"


@pytest.mark.parametrize(
    ("mode", "write"), [("chunked", "one-chunk"), ("chunked", "16KiB"), ("close", "16KiB")]
)
def test_11_an_8_MiB_event_below_the_cap(
    server: LoopbackServer, client: Client, mode: BodyMode, write: str
) -> None:
    text = "y" * (8 * MiB)
    big = event(chunk(text))

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"}, mode=mode)
        if write == "one-chunk":
            conn.write(big)
        else:
            for i in range(0, len(big), 16 * 1024):
                conn.write(big[i : i + 16 * 1024])
        conn.write(event(chunk(finish="stop")) + DONE)
        conn.end()

    server.route(PATH, handler)
    # No time limit here but the guard: that the cost is linear in the event's size is
    # measured by benchmarks/bench_core.py ("one event", 10 and 20 MB), not asserted.
    with PeakRSS() as rss:
        out = check(run_stream(client, guard=10.0))
    assert out.final.content == text
    # The in-process server's copies count too (the test's text and event, framing one
    # 8 MiB chunk copies it again), and the client holds a few transient copies of one
    # event (its bytes joined, its decoded text, the parsed JSON, the content): about ten
    # in all, measured at 80 MiB with the code of 0.1 as with today's. A quadratic number
    # of copies would be hundreds.
    assert rss.growth < 16 * 8 * MiB, f"peak RSS grew {rss.growth / MiB:.0f} MiB"


def test_12_a_comment_flood_costs_nothing(server: LoopbackServer, client: Client) -> None:
    body = b": ping\n" * 10_000 + b"\n" + answer("content")
    server.route(PATH, sse_body(body))
    # What it costs is measured in benchmarks/ (bench_core.py); here: nothing is made of it.
    out = check(run_stream(client))
    assert out.final.content == "content"
    assert next(e for e in out.events if type(e).__name__ == "OutputTextDelta").delta == "content"


@pytest.mark.parametrize("sentinel", [b"data: [DONE]\n\n", b"data: DONE\n\n"])
def test_13_done_then_junk_and_a_socket_held_open(
    server: LoopbackServer, client_for: Callable[..., Client], sentinel: bytes
) -> None:
    done_at: list[float] = []

    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("fin")))
        done_at.append(time.monotonic())
        conn.write(sentinel + b"data: junk\n\ngarbage\xff\n\n")
        conn.sleep(60)

    server.route(PATH, handler)
    out = check(run_stream(client_for(server, idle=30.0), guard=10.0))
    assert out.times[-1] - done_at[0] < WORKER_BOUND  # at [DONE], never the idle timeout
    assert out.final.content == "fin"


def test_14_a_duplicated_final_chunk_completes_once(server: LoopbackServer, client: Client) -> None:
    final = event(chunk(finish="stop"))
    body = event(chunk("x")) + final + final + event(chunk("")) + DONE
    server.route(PATH, sse_body(body))
    out = check(run_stream(client))
    assert out.final.finish_reason == "stop" and out.final.content == "x"


def test_a_finished_stream_without_done_on_an_open_socket_completes_after_the_grace(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    def handler(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("done")) + event(chunk(finish="stop")))
        conn.sleep(60)

    server.route(PATH, handler)
    client = client_for(server, idle=5.0, grace=0.3)
    out = check(run_stream(client, guard=5.0))
    assert out.elapsed < limit_bound(0.3)  # the grace, not the 60 s stall


# --- 15-21: the reducer's rules (in memory) ------------------------------------------------------


def _call(
    index: int | None = None,
    id: str | None = None,
    name: str | None = None,
    args: str | None = None,
) -> dict[str, Any]:
    fragment: dict[str, Any] = {"type": "function", "function": {}}
    if index is not None:
        fragment["index"] = index
    if id is not None:
        fragment["id"] = id
    if name is not None:
        fragment["function"]["name"] = name
    if args is not None:
        fragment["function"]["arguments"] = args
    return fragment


def _calls_body(*fragments: dict[str, Any], finish: str = "tool_calls") -> bytes:
    return sse(*(chunk(tool_calls=[f]) for f in fragments), chunk(finish=finish))


def test_15_two_parallel_calls_interleaved_by_index() -> None:
    body = _calls_body(
        _call(0, "a", "f", ""),
        _call(1, "b", "g", ""),
        _call(0, args='{"x"'),
        _call(1, args='{"y":'),
        _call(0, args=":1}"),
        _call(1, args="2}"),
    )
    _, error, response = core([body])
    assert error is None
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("a", "f", '{"x":1}'),
        ("b", "g", '{"y":2}'),
    ]


def test_16_no_index_repeated_ids_and_empty_later_names() -> None:
    body = _calls_body(
        _call(id="a", name="f", args='{"q":'),
        _call(args='"v"'),
        _call(id="a", name="", args="}"),
    )
    _, error, response = core([body])
    assert error is None
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("a", "f", '{"q":"v"}')
    ]


def test_17_ollama_index_zero_with_different_ids_and_no_ids() -> None:
    body = _calls_body(_call(0, "a", "f", "{}"), _call(0, "b", "g", "{}"))
    _, _, response = core([body])
    assert [(c.call_id, c.name) for c in response.tool_calls] == [("a", "f"), ("b", "g")]
    _, _, response = core([_calls_body(_call(0, name="f", args="{}"))])
    assert [c.call_id for c in response.tool_calls] == ["tool-call-0"]


@pytest.mark.parametrize("args", ['{}{"a":1}', '{"q": "tru', '{"a":1}{"b":2}'])
def test_18_arguments_that_are_not_json_are_delivered_raw(args: str) -> None:
    _, error, response = core([_calls_body(_call(0, "a", "f", args))])
    assert error is None
    assert [c.arguments for c in response.tool_calls] == [args]


def test_19_a_call_cut_off_by_stop_or_eof_is_incomplete() -> None:
    _, error, response = core([_calls_body(_call(0, "a", "f", '{"q": "tru'), finish="stop")])
    assert error is None and response.tool_calls == ()
    assert [c.arguments for c in response.incomplete_tool_calls] == ['{"q": "tru']
    body = sse(chunk(tool_calls=[_call(0, "a", "f", '{"q"')]), done=False)
    _, error, response = core([body])
    assert isinstance(error, IncompleteStreamError)
    assert [c.arguments for c in response.incomplete_tool_calls] == ['{"q"']


def test_20_empty_and_null_shapes_do_not_crash() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    body = sse(
        {"choices": [], "usage": usage},
        {"choices": None},
        {"choices": [{"index": 0, "delta": None}]},
        {"choices": [{"index": 0}]},
        {"choices": [{"index": 0, "delta": {"content": []}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": None, "content": "t"}}]},
        chunk(finish="stop"),
    )
    _, error, response = core([body])
    assert error is None and response.content == "t"
    assert response.usage is not None and response.usage.total_tokens == 3


def test_21_interleaved_choices_accumulate_separately() -> None:
    body = sse(
        chunk("a", index=0),
        chunk("x", index=1),
        chunk("b", index=0),
        chunk("y", index=1),
        chunk(finish="stop", index=0),
        chunk(finish="stop", index=1),
    )
    _, error, response = core([body])
    assert error is None
    assert [(c.index, c.content) for c in response.choices] == [(0, "ab"), (1, "xy")]


def test_json_exceptions_never_surface() -> None:
    # Depth bombs and huge numbers in data: skipped, never a RecursionError/ValueError.
    bomb = "[" * 100_000 + "]" * 100_000
    body = event(chunk("a")) + f"data: {bomb}\n\n".encode() + b"data: 1e999999\n\n"
    body += b'data: {"choices":[{"delta":{"content":"b"}}], "n": ' + b"9" * 5000 + b"}\n\n"
    body += event(chunk(finish="stop"))
    _, error, response = core([body])
    assert error is None and response.content.startswith("a")
    json.dumps(response.to_result_dict())

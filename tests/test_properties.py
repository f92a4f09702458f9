"""Properties (reliability.md §4 A.1, A.2 and F.60): the output never depends on how the
bytes are split or which line endings frame them, and it agrees with independent
references: a WHATWG event-stream framer, and the chunks fed straight to the reducer."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatstream import (
    Accumulator,
    Response,
    ResponseEvent,
    StreamOptions,
    StreamParser,
    event_from_json,
)
from chatstream.core.sse import SSEDecoder, SSEMessage

from .helpers import CORPUS, chunk, corpus_names, examples

NAMES = corpus_names()


# --- running the core ------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    events: list[ResponseEvent]
    result: dict[str, Any]
    error: tuple[str, str] | None


def run_pieces(pieces: list[bytes]) -> Run:
    parser = StreamParser()
    events: list[ResponseEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    error = parser.error
    return Run(
        events,
        parser.response.to_result_dict(),
        None if error is None else (error.kind, error.message),
    )


def split_at(body: bytes, cuts: set[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(body)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def cut_points(draw: st.DrawFn, size: int) -> set[int]:
    """Random cuts, plus a window cut into 1-byte pieces (every byte boundary there:
    inside multi-byte characters, between CR and LF, inside [DONE]...)."""
    if size < 2:
        return set()
    cuts = draw(st.sets(st.integers(1, size - 1), max_size=60))
    start = draw(st.integers(0, size - 1))
    width = draw(st.integers(0, 96))
    return cuts | set(range(start, min(size, start + width)))


# --- (a) the conformance corpus --------------------------------------------------------


@cache
def corpus_body(name: str) -> bytes:
    return (CORPUS / f"{name}.sse").read_bytes()


@cache
def corpus_whole(name: str) -> Run:
    return run_pieces([corpus_body(name)])


SMALL = [n for n in NAMES if len(corpus_body(n)) <= 64 * 1024]


@pytest.mark.parametrize("name", SMALL)
def test_a_corpus_stream_fed_one_byte_at_a_time_gives_what_the_whole_body_gives(
    name: str,
) -> None:
    body = corpus_body(name)
    assert run_pieces([body[i : i + 1] for i in range(len(body))]) == corpus_whole(name)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=examples(5), deadline=None)
@given(data=st.data())
def test_a_corpus_stream_split_anywhere_gives_what_the_whole_body_gives(
    name: str, data: st.DataObject
) -> None:
    body = corpus_body(name)
    pieces = split_at(body, data.draw(cut_points(len(body)), label="cuts"))
    assert run_pieces(pieces) == corpus_whole(name)


# --- (b) generated streams -------------------------------------------------------------

# Text with what breaks naive framing and decoding: CJK, emoji (4-byte UTF-8), CR and LF
# (escaped inside the JSON strings), quotes, backslashes, NUL, U+2028.
TEXT = st.text(
    st.one_of(
        st.sampled_from(list('ab \r\n\t"\\:你好世界😀🎉é\x00\u2028\ufeff')),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=8,
)


@dataclass(frozen=True)
class Generated:
    chunks: list[dict[str, Any]]
    content: str
    reasoning: str
    call_arguments: str | None
    done: bool


@st.composite
def generated_streams(draw: st.DrawFn) -> Generated:
    chunks: list[dict[str, Any]] = []
    content: list[str] = []
    reasoning: list[str] = []
    for kind, value in draw(
        st.lists(st.tuples(st.sampled_from(["content", "reasoning_content"]), TEXT), max_size=12)
    ):
        (content if kind == "content" else reasoning).append(value)
        chunks.append(chunk(delta={kind: value}))
    call_arguments = None
    if draw(st.booleans()):
        call_arguments = json.dumps({"q": draw(TEXT)}, ensure_ascii=draw(st.booleans()))
        first = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
        fragments = [first]
        cuts = draw(st.sets(st.integers(1, len(call_arguments) - 1), max_size=5))
        bounds = [0, *sorted(cuts), len(call_arguments)]
        for a, b in itertools.pairwise(bounds):
            fragments.append({"index": 0, "function": {"arguments": call_arguments[a:b]}})
        for fragment in fragments:
            chunks.append(chunk(tool_calls=[fragment]))
    reason = "stop" if call_arguments is None else "tool_calls"
    chunks.append(chunk(finish=reason))
    if draw(st.booleans()):
        chunks.append(chunk(usage={"prompt_tokens": 3, "completion_tokens": 4}, choices=False))
    return Generated(
        chunks, "".join(content), "".join(reasoning), call_arguments, draw(st.booleans())
    )


@st.composite
def sse_bodies(draw: st.DrawFn, stream: Generated) -> bytes:
    """``stream`` as an SSE body: one event per chunk, some as multi-line data, with
    comments, optional ``event:`` lines and one line-ending style."""
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    events: list[list[str]] = []
    for payload in stream.chunks:
        lines = []
        if draw(st.booleans()):
            lines.append(": keep-alive")
        if draw(st.booleans()):
            lines.append("event: message")
        text = json.dumps(payload, ensure_ascii=draw(st.booleans()))
        if draw(st.booleans()):
            # Multi-line data: the JSON spread over lines, joined again with LF.
            text = json.dumps(payload, ensure_ascii=draw(st.booleans()), indent=1)
        prefix = draw(st.sampled_from(["data: ", "data:"]))
        lines += [prefix + line for line in text.split("\n")]
        events.append(lines)
        if draw(st.booleans()):
            events.append([": ping"])
    if stream.done:
        events.append(["data: [DONE]"])
    body = "".join(eol.join(lines) + eol + eol for lines in events)
    if draw(st.booleans()):
        body = body[: -len(eol)]  # the last event without its blank line
    return body.encode()


def reference_events(stream: Generated) -> list[ResponseEvent]:
    """The chunks fed straight to the reducer, no SSE involved."""
    accumulator = Accumulator()
    events: list[ResponseEvent] = []
    for payload in stream.chunks:
        events += accumulator.feed(json.loads(json.dumps(payload)))
    return events + accumulator.finish(done=stream.done)


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data(), stream=generated_streams())
def test_a_generated_stream_gives_the_same_events_however_framed_and_split(
    data: st.DataObject, stream: Generated
) -> None:
    body = data.draw(sse_bodies(stream), label="body")
    whole = run_pieces([body])
    split = run_pieces(split_at(body, data.draw(cut_points(len(body)), label="cuts")))
    assert split == whole
    assert whole.error is None
    assert whole.events == reference_events(stream)
    assert whole.result["content"] == stream.content
    assert whole.result["reasoning"] == stream.reasoning
    if stream.call_arguments is None:
        assert whole.result["tool_calls"] == []
    else:
        assert whole.result["tool_calls"] == [
            {"call_id": "call_1", "name": "f", "arguments": stream.call_arguments}
        ]


# --- the SSE framing against a WHATWG reference ----------------------------------------


def whatwg_messages(body: bytes) -> list[SSEMessage]:
    """The WHATWG event-stream interpretation of ``body``, written independently of
    chatstream: decode with U+FFFD, drop one leading BOM, lines end in CRLF, LF or CR in
    any mix. One deviation, sseclient-py's and documented: the last event is dispatched
    at end of input even without its blank line."""
    text = body.decode("utf-8", "replace").removeprefix("\ufeff")
    messages = []
    data: list[str] = []
    event = ""
    for line in [*re.split(r"\r\n|\r|\n", text), ""]:
        if line == "":
            if data:
                messages.append(SSEMessage(event or "message", "\n".join(data)))
            data, event = [], ""
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    return messages


LINE = st.one_of(
    st.sampled_from(["", "", "", ": c", ":", "data", "data:", "event: e", "event:", "id: 1"]),
    st.builds(
        lambda name, value: name + value,
        st.sampled_from(["data: ", "data:", "data:  ", "event: ", "retry: ", "x: "]),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=8),
    ),
)


@st.composite
def raw_sse_bodies(draw: st.DrawFn) -> bytes:
    """Random lines, each with its own line ending (so any mix of CR, LF and CRLF), an
    optional BOM, and now and then an invalid UTF-8 byte."""
    parts = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    for line in draw(st.lists(LINE, max_size=30)):
        raw = line.encode()
        if draw(st.integers(0, 9)) == 0:
            raw += b"\xff"
        parts.append(raw + draw(st.sampled_from([b"\n", b"\r\n", b"\r"])))
    return b"".join(parts)


def sse_decode(pieces: list[bytes]) -> list[SSEMessage]:
    decoder = SSEDecoder()
    messages: list[SSEMessage] = []
    for piece in pieces:
        messages += decoder.feed(piece)
    return messages + decoder.close()


@settings(max_examples=examples(50), deadline=None)
@given(data=st.data(), body=raw_sse_bodies())
def test_sse_framing_agrees_with_a_whatwg_reference_however_split(
    data: st.DataObject, body: bytes
) -> None:
    pieces = split_at(body, data.draw(cut_points(len(body)), label="cuts"))
    assert sse_decode(pieces) == whatwg_messages(body)


# --- arbitrary JSON never breaks the reducer -------------------------------------------

KEYS = st.sampled_from(
    [
        "choices", "delta", "message", "index", "content", "reasoning", "reasoning_content",
        "reasoning_details", "text", "summary", "thinking", "type", "refusal", "tool_calls",
        "function_call", "id", "function", "name", "arguments", "finish_reason", "usage",
        "x_groq", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
        "prompt_tokens_details", "completion_tokens_details", "reasoning_tokens",
        "prompt_cache_hit_tokens", "error", "code", "model",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.sampled_from(["stop", "tool_calls", "length", "content_filter", "thinking", "error"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=examples(50), deadline=None)
@given(chunks=st.lists(JSON, max_size=8), done=st.booleans())
def test_the_reducer_never_raises_on_any_json_and_its_result_is_json(
    chunks: list[Any], done: bool
) -> None:
    accumulator = Accumulator()
    for value in chunks:
        accumulator.feed(value)
    accumulator.finish(done=done)
    assert accumulator.ended
    json.dumps(accumulator.response.to_result_dict())


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data(), chunks=st.lists(st.dictionaries(KEYS, JSON, max_size=4), max_size=8))
def test_arbitrary_chunks_give_the_same_events_however_split(
    data: st.DataObject, chunks: list[dict[str, Any]]
) -> None:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode()
    whole = run_pieces([body])
    assert run_pieces(split_at(body, data.draw(cut_points(len(body)), label="cuts"))) == whole


@settings(max_examples=examples(30), deadline=None)
@given(chunks=st.lists(st.dictionaries(KEYS, JSON, max_size=4), max_size=6))
def test_every_event_and_result_of_any_json_hashes_and_round_trips_through_json(
    chunks: list[dict[str, Any]],
) -> None:
    accumulator = Accumulator(options=StreamOptions(raw_chunks=True))
    events = [e for value in chunks for e in accumulator.feed(value)] + accumulator.finish()
    for event in events:
        again = event_from_json(event.to_json())
        assert again == event and hash(again) == hash(event)
        assert again.to_json() == event.to_json()
    response = accumulator.response
    again_response = Response.from_json(response.to_json())
    assert again_response == response and hash(again_response) == hash(response)
    assert again_response.to_json() == response.to_json()

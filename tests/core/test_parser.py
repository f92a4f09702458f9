"""The parser (chatstream.core.parser), without sockets: whole JSON completions
(``StreamParser.feed_completion``), the limits, surrogate halves, and each chunk's JSON
read by jiter, falling back to ``json.loads`` for what jiter rejects (the pair must read
exactly what ``json.loads`` reads, the same way, and reject exactly what it rejects)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatstream import (
    IncompleteStreamError,
    LimitExceededError,
    Limits,
    ProviderError,
    StreamParser,
    TooManyChoicesError,
    TooManyToolCallsError,
    UnexpectedResponseError,
)
from chatstream._shell import http as _http
from chatstream.core.parser import _loads

from ..helpers import chunk, event, examples


def _completion(**message: Any) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    return json.dumps({"id": "c1", "model": "m", "choices": [choice]}).encode()


# --- StreamParser.feed_completion ------------------------------------------------------------


def test_a_whole_completion_with_a_custom_tool_call_is_read() -> None:
    calls = [{"id": "t1", "type": "custom", "custom": {"name": "patch", "input": "*** x"}}]
    parser = StreamParser()
    parser.feed_completion(_completion(content=None, tool_calls=calls))
    (call,) = parser.result().tool_calls
    assert (call.name, call.arguments, call.custom) == ("patch", "*** x", True)


def test_a_whole_completion_gives_the_events_of_a_stream() -> None:
    calls = [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    parser = StreamParser()
    parser.feed_completion(_completion(content="hi", tool_calls=calls))
    result = parser.result()
    assert result.content == "hi" and [c.name for c in result.tool_calls] == ["f"]


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b'data: {"choices": []}\n\n', UnexpectedResponseError, "event stream"),
        (b'{"detail": "Not Found"}', UnexpectedResponseError, "detail: Not Found"),
        (b'{"choices": 5}', UnexpectedResponseError, "is a number"),
        (b'{"choices": true}', UnexpectedResponseError, "is a boolean"),
        (b'{"choices": []}', UnexpectedResponseError, "empty list"),
        (b'{"choices": [3]}', UnexpectedResponseError, "choices[0] is a number"),
        (b'{"choices": [{"message": "hi"}]}', UnexpectedResponseError, "message is a string"),
        (b"true", UnexpectedResponseError, "boolean, not a chat completion"),
        (b"<html>", UnexpectedResponseError, "not JSON"),
        (b"", UnexpectedResponseError, "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, UnexpectedResponseError, "nested too deeply"),
        (b'{"id": "c1", "choices": [{"message": {"content": "cut', IncompleteStreamError, "cut"),
        (b'{"id": "c1", "choices": [', IncompleteStreamError, "cut off"),
        (b'{"error": {"message": "overloaded"}}', ProviderError, "overloaded"),
    ],
)
def test_a_body_that_is_not_a_completion_is_never_a_success(
    body: bytes, error: type[Exception], says: str
) -> None:
    parser = StreamParser()
    assert parser.feed_completion(body) == [] or parser.error is not None
    assert isinstance(parser.error, error) and says in str(parser.error)
    assert parser.ended and not parser.response.ok
    with pytest.raises(error):
        parser.result()


@pytest.mark.parametrize(
    ("calls", "says"),
    [
        ("x", "tool_calls is a string"),
        ([1], "tool_calls[0] is a number"),
        ([{"id": "t"}], "call without a function"),
        ([{"function": {"name": 3}}], "name is a number"),
        ([{"function": {"name": "f", "arguments": {"a": 1}}}], "arguments is a object"),
        ([{"function": {"arguments": "{}"}}], "has no function name"),
    ],
)
def test_junk_in_a_completions_tool_calls_is_named(calls: Any, says: str) -> None:
    parser = StreamParser()
    parser.feed_completion(_completion(content="", tool_calls=calls))
    assert isinstance(parser.error, UnexpectedResponseError) and says in str(parser.error)


def test_the_error_of_a_body_that_is_not_a_completion_quotes_its_start() -> None:
    parser = StreamParser()
    parser.feed_completion(b'{"detail": "' + b"d" * 2000 + b'"}')
    error = parser.error
    assert isinstance(error, UnexpectedResponseError)
    assert error.body.startswith('{"detail": "ddd') and len(error.body) == 512
    assert (error.status, error.content_type) == (200, "application/json")


def test_a_completion_over_max_event_bytes_is_too_large() -> None:
    parser = StreamParser(limits=Limits(max_event_bytes=100))
    parser.feed_completion(_completion(content="x" * 200))
    assert parser.error is not None and parser.error.kind == "event_too_large"


# --- limits ----------------------------------------------------------------------------------


def test_max_choices_ends_the_stream_keeping_the_choices_within_it() -> None:
    parser = StreamParser(limits=Limits(max_choices=2))
    for index in range(3):
        parser.feed(event(chunk(f"c{index}", index=index)))
    error = parser.error
    assert isinstance(error, TooManyChoicesError) and error.name == "max_choices"
    assert [c.content for c in parser.response.choices] == ["c0", "c1"]


def test_max_tool_calls_ends_the_stream_keeping_the_calls_within_it() -> None:
    parser = StreamParser(limits=Limits(max_tool_calls=2))
    for n in range(3):
        call = {"index": n, "id": f"t{n}", "function": {"name": "f", "arguments": ""}}
        parser.feed(event(chunk(tool_calls=[call])))
    error = parser.error
    assert isinstance(error, TooManyToolCallsError) and error.limit == 2
    assert [c.call_id for c in parser.response.choices[0].incomplete_tool_calls] == ["t0", "t1"]


def test_max_tool_calls_counts_per_choice() -> None:
    parser = StreamParser(limits=Limits(max_tool_calls=1))
    for index in range(3):
        call = {"index": 0, "id": f"t{index}", "function": {"name": "f", "arguments": "{}"}}
        parser.feed(event(chunk(tool_calls=[call], index=index)))
    assert parser.error is None


def test_max_total_bytes_keeps_every_byte_up_to_it() -> None:
    first = event(chunk("kept"))
    parser = StreamParser(limits=Limits(max_total_bytes=len(first)))
    parser.feed(first + event(chunk("over")))
    assert isinstance(parser.error, LimitExceededError)
    assert parser.response.content == "kept"


def test_max_total_bytes_is_off_by_default() -> None:
    parser = StreamParser()
    for _ in range(2000):
        parser.feed(event(chunk("x" * 1000)))
    assert parser.error is None and len(parser.response.content) == 2_000_000


# --- surrogate halves ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["content", "reasoning_content", "refusal"])
def test_a_surrogate_pair_split_across_deltas_is_joined(field: str) -> None:
    parser = StreamParser()
    parser.feed(b'data: {"choices":[{"delta":{"%s":"a\\ud83d"}}]}\n\n' % field.encode())
    parser.feed(b'data: {"choices":[{"delta":{"%s":"\\ude00b"}}]}\n\n' % field.encode())
    parser.feed(b"data: [DONE]\n\n")
    choice = parser.result().choices[0]
    text = {"content": choice.content, "reasoning_content": choice.reasoning}.get(
        field, choice.refusal
    )
    assert text == "a\U0001f600b"


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    # A lone half cannot be a character, nor UTF-8 (issue 20, item 11).
    parser = StreamParser()
    parser.feed(b'data: {"choices":[{"delta":{"content":"x\\ud800y"}}]}\n\ndata: [DONE]\n\n')
    assert parser.result().content == "x\ufffdy"


def test_a_lone_surrogate_is_replaced_when_the_body_is_encoded() -> None:
    body = {"messages": [{"content": "x\ud800y \ud83d\ude00"}]}
    sent = json.loads(_http.encode_body(body))
    assert sent["messages"][0]["content"] == "x\ufffdy \U0001f600"


# --- each chunk's JSON: jiter, then json.loads -----------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, in the same key order; floats to the sign and NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def outcome(read: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", read(text)
    except (ValueError, RecursionError) as exc:
        return "error", type(exc)


def assert_reads_like_json(text: str) -> None:
    expected, got = outcome(json.loads, text), outcome(_loads, text)
    assert expected[0] == got[0], (text, expected, got)
    if expected[0] == "value":
        assert same(expected[1], got[1]), text
    else:
        assert expected[1] is got[1], text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@settings(max_examples=examples(200), deadline=None)
@given(json_values, st.booleans())
def test_any_json_value_reads_as_json_loads_reads_it(value: Any, ascii_only: bool) -> None:
    assert_reads_like_json(json.dumps(value, ensure_ascii=ascii_only))


@settings(max_examples=examples(400), deadline=None)
@given(st.text(alphabet='{}[]",:-+.0123456789eEtrufalsnINaiy\\u \t\n\r\x00\x1f\ud83d', max_size=24))
def test_hostile_text_is_read_or_rejected_as_json_loads_does(text: str) -> None:
    assert_reads_like_json(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('"\\ud83d"', id="lone-surrogate-escape-of-a-split-emoji"),
        pytest.param('"\\ud83d\\ude00"', id="surrogate-pair-escape"),
        pytest.param("[NaN, Infinity, -Infinity]", id="non-finite-numbers"),
        pytest.param('{"a": 1, "a": 2}', id="duplicate-keys-last-wins"),
        pytest.param("1e400", id="overflowing-float"),
        pytest.param("-0.0", id="negative-zero"),
        pytest.param("1" * 5000, id="huge-integer"),
        pytest.param('"a\x01b"', id="raw-control-character"),
        pytest.param("01", id="leading-zero"),
        pytest.param('{"a": 1} x', id="trailing-data"),
        pytest.param("[" * 300 + "]" * 300, id="nesting-past-jiters-limit"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="nesting-past-pythons-limit"),
        pytest.param("\ud83d", id="lone-surrogate-in-the-text"),
    ],
)
def test_an_edge_case_reads_as_json_loads_reads_it(text: str) -> None:
    assert_reads_like_json(text)

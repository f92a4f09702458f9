"""Issue 10 in the core and in the HTTP helpers, without sockets: whole JSON completions
(``StreamParser.feed_completion``), the limits, surrogate halves, ``Retry-After``
values, redaction, and the providers' context-window errors."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
import requests
import responses

from chatstream import (
    BadRequestError,
    Client,
    ContextLengthExceededError,
    ContextWindowExceeded,
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
from chatstream._shell import redact as _redact

from ..helpers import BODY, chunk, event

BASE = "http://api.test/v1"
URL = BASE + "/chat/completions"


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


# --- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "1e400"},
        {"retry-after": "-inf"},
        {"retry-after": "Fri, 01 Jan 99999999999 00:00:00 GMT"},
        {"retry-after": "Mon, 32 Foo 2026 99:99:99 GMT"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": "1e400"},
    ],
)
def test_an_unusable_retry_after_value_is_absent(headers: dict[str, str]) -> None:
    assert _http.retry_after(requests.structures.CaseInsensitiveDict(headers)) is None


@pytest.mark.parametrize("value", ["0", "2", "2.5", "-3", "1e300"])
def test_a_retry_after_is_always_a_finite_number(value: str) -> None:
    wait = _http.retry_after({"retry-after": value})
    assert wait is not None and math.isfinite(wait) and wait >= 0


# --- redaction -------------------------------------------------------------------------------


def test_secrets_include_url_and_proxy_user_info_in_plain_and_basic_forms() -> None:
    secrets = _redact.secrets_of(
        "sk-key", {}, "http://user:url-pass@h/v1", ["http://proxy-user:proxy-pass@p:3128"]
    )
    encoded = base64.b64encode(b"proxy-user:proxy-pass").decode()
    text = f"url-pass proxy-user:proxy-pass Proxy-Authorization: {encoded} sk-key"
    redacted = _redact.redact(text, secrets)
    for secret in ("url-pass", "proxy-pass", encoded, "sk-key"):
        assert secret not in redacted


def test_a_short_password_is_redacted_only_with_its_user() -> None:
    secrets = _redact.secrets_of(None, {}, "http://u:p@h/v1")
    assert _redact.redact("u:p in a plain sentence", secrets) == "[REDACTED] in a plain sentence"


def test_payload_keys_are_redacted_as_well_as_values() -> None:
    error = ProviderError("x", payload={"error": {"sk-key": ["sk-key"], "other": 1}})
    _redact.scrub_error(error, ("sk-key",))
    assert error.payload == {"error": {"[REDACTED]": ["[REDACTED]"], "other": 1}}


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_snippet_cut_inside_a_secret_shows_none_of_it(cut: int) -> None:
    secret = "sk-0123456789abcdef"
    text = "x" * (100 - cut) + secret + "tail"
    snippet = _redact.redact_snippet(text, (secret,), 100)
    assert not any(secret[:n] in snippet for n in range(4, len(secret)))


# --- context windows -------------------------------------------------------------------------


CONTEXT_ERRORS = {
    "openai": {
        "error": {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    },
    "llamacpp": {
        "error": {
            "code": 400,
            "message": "request (5024 tokens) exceeds the available context size (4096 tokens)",
            "type": "exceed_context_size_error",
        }
    },
    "vllm": {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you "
        "requested 5000 tokens (4000 in the messages, 1000 in the completion).",
        "type": "BadRequestError",
        "code": 400,
    },
    "anthropic": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 207791 tokens > 200000 maximum",
        },
    },
    "anthropic-max-tokens": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "input length and `max_tokens` exceed context limit: 178959 + 64000 > "
            "200000, decrease input length or `max_tokens` and try again",
        },
    },
    "gemini": [
        {
            "error": {
                "code": 400,
                "message": "The input token count (314175) exceeds the maximum number of "
                "tokens allowed (131072).",
                "status": "INVALID_ARGUMENT",
            }
        }
    ],
    "mistral": {
        "object": "error",
        "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model "
        "with 32768 maximum context length",
        "type": "invalid_request_error",
        "code": None,
    },
    "openrouter": {
        "error": {
            "message": "This endpoint's maximum context length is 32768 tokens. However, you "
            "requested about 42832 tokens (42832 of text input).",
            "code": 400,
        }
    },
}


@pytest.mark.parametrize("provider", sorted(CONTEXT_ERRORS))
@responses.activate
def test_a_providers_context_error_is_a_context_window_error_with_its_facts(
    provider: str,
) -> None:
    responses.post(URL, json=CONTEXT_ERRORS[provider], status=400, headers={"x-request-id": "r"})
    with pytest.raises(ContextLengthExceededError) as info:
        Client(BASE, "sk-key", retry=2).stream(BODY).result(timeout=5)
    error = info.value
    assert isinstance(error, ContextWindowExceeded) and isinstance(error, BadRequestError)
    assert error.status == 400 and error.request_id == "r" and error.body
    assert error.kind == "context_window_exceeded"
    assert len(responses.calls) == 1


@responses.activate
def test_another_bad_request_is_no_context_window_error() -> None:
    responses.post(URL, json={"error": {"message": "unknown field 'x'"}}, status=400)
    with pytest.raises(BadRequestError) as info:
        Client(BASE, retry=0).stream(BODY).result(timeout=5)
    assert not isinstance(info.value, ContextWindowExceeded)


def test_a_content_type_repeated_by_a_proxy_is_one_media_type() -> None:
    assert _http.media_type({"content-type": "text/event-stream, text/event-stream"}) == (
        "text/event-stream"
    )
    assert _http.media_type({"content-type": "Text/Event-Stream; charset=utf-8"}) == (
        "text/event-stream"
    )
    assert _http.media_type({"content-type": "text/event-stream, text/html"}) == (
        "text/event-stream, text/html"
    )

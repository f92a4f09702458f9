"""A stream's result is frozen: tuples for what it holds, the provider's data read-only,
hashable, and its JSON unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatstream import (
    ChatStreamError,
    ErrorInfo,
    FunctionCall,
    Response,
    StreamOptions,
    StreamParser,
)

BODY = (
    b'data: {"id":"c1","model":"m","citations":["u"],"timings":{"n":[1]},"choices":[{'
    b'"delta":{"content":"Hi","annotations":[{"type":"url","at":[0,2]}],'
    b'"reasoning_details":[{"type":"reasoning.text","text":"r","index":0}],'
    b'"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"},'
    b'"extra_content":{"google":{"sig":"s"}}}]},'
    b'"logprobs":{"content":[{"token":"Hi","top_logprobs":[]}]},"finish_reason":"tool_calls"}],'
    b'"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)


def result() -> Response:
    parser = StreamParser(options=StreamOptions(raw_chunks=True))
    parser.feed(BODY)
    parser.close()
    return parser.result()


def test_a_response_with_the_providers_data_hashes() -> None:
    response = result()
    assert hash(response) == hash(result())


def test_a_response_read_back_from_json_is_equal_hashes_alike_and_holds_tuples() -> None:
    response = result()
    again = Response.from_json(response.to_json())
    assert again == response and hash(again) == hash(response)
    assert again.to_json() == response.to_json()
    assert type(again.choices) is tuple and type(again.items) is tuple
    assert type(again.tool_calls) is tuple and type(again.incomplete_tool_calls) is tuple


def test_the_json_of_a_response_writes_arrays_for_its_tuples() -> None:
    data = json.loads(result().to_json())
    assert isinstance(data["choices"], list) and isinstance(data["choices"][0]["items"], list)
    assert data["choices"][0]["logprobs"] == {
        "content": [{"token": "Hi", "top_logprobs": []}],
        "refusal": None,
    }


def test_to_dict_gives_plain_json_that_may_be_changed() -> None:
    data = result().to_dict()
    data["choices"][0]["annotations"][0]["at"].append(3)
    data["timings"]["n"].append(2)
    assert result().timings == {"n": [1]}


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.choices[0].tool_calls.append(FunctionCall("g", "{}", "x")),
        lambda r: r.items.append(r.items[0]),
        lambda r: r.choices.append(r.choices[0]),
    ],
    ids=["tool_calls", "items", "choices"],
)
def test_what_a_response_holds_cannot_be_appended_to(change: Any) -> None:
    with pytest.raises(AttributeError):
        change(result())


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.logprobs["content"].append({}),
        lambda r: r.annotations[0]["at"].append(3),
        lambda r: r.items[0].details[0].update(text="x"),
        lambda r: r.tool_calls[0].extra_content["google"].pop("sig"),
        lambda r: r.usage.prompt_tokens_details.clear(),
        lambda r: r.timings["n"].append(2),
        lambda r: r.citations.append("v"),
    ],
    ids=["logprobs", "annotations", "details", "extra_content", "usage", "timings", "cites"],
)
def test_the_providers_data_in_a_response_cannot_be_changed(change: Any) -> None:
    response = result()
    with pytest.raises(TypeError, match="read-only"):
        change(response)
    assert response == result()


def test_the_message_to_send_back_is_plain_json_that_may_be_changed() -> None:
    message = result().to_message()
    message["tool_calls"][0]["extra_content"]["google"]["sig"] = "changed"
    message["reasoning_details"][0]["text"] = "changed"
    assert result().tool_calls[0].extra_content == {"google": {"sig": "s"}}


def test_an_errors_facts_are_read_only_and_out_of_the_hash() -> None:
    info = ErrorInfo.of(ChatStreamError("boom"))
    assert hash(info) == hash(ErrorInfo("error", "boom", attributes={"other": [1]}))
    with pytest.raises(TypeError):
        ErrorInfo("error", "x", attributes={"a": [1]}).attributes["a"].append(2)

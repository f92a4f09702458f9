"""Every item, content part and event round-trips through JSON with its ``"type"`` tag."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from chatstream import (
    AudioDelta,
    ChoiceResult,
    Completed,
    Created,
    FunctionCall,
    FunctionCallArgumentsDelta,
    Message,
    OtherItem,
    OutputElementDone,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputText,
    OutputTextDelta,
    OutputTextParsed,
    RateLimits,
    RawChunk,
    Reasoning,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningText,
    Refusal,
    RefusalDelta,
    Response,
    Serializable,
    SummaryText,
    TokenUsage,
    event_from_dict,
    event_from_json,
    item_from_dict,
)
from chatstream.events import _KINDS

PARTS: list[Serializable] = [
    OutputText("hi 你好 😀"),
    Refusal("no"),
    ReasoningText("because"),
    SummaryText("in short"),
]

ITEMS: list[Message | Reasoning | FunctionCall | OtherItem] = [
    Message(),
    Message(content=[OutputText("a"), Refusal("b"), OutputText("c")], id="msg_1"),
    Reasoning(),
    Reasoning(
        id="rs_1",
        summary=[SummaryText("s")],
        content=[ReasoningText("t1"), ReasoningText("t2")],
        encrypted_content="opaque",
    ),
    FunctionCall(name="get_weather", arguments='{"city": "Paris"}', call_id="call_1"),
    FunctionCall(name="f", arguments="{not json", call_id="tool-call-0", id="fc_1"),
    # What providers need back, kept raw.
    Message(content=[OutputText("see")], annotations=[{"type": "url_citation", "url": "u"}]),
    Reasoning(
        id="rd_1",
        content=[ReasoningText("t")],
        encrypted_content="enc",
        details=[{"type": "reasoning.encrypted", "data": "enc", "id": "rd_1"}],
        thinking_blocks=[{"type": "thinking", "thinking": "t", "signature": "sig"}],
    ),
    FunctionCall(
        name="g",
        arguments="{}",
        call_id="c2",
        extra_content={"google": {"thought_signature": "c2ln"}},
    ),
    FunctionCall(name="patch", arguments="*** free text", call_id="c3", custom=True),
    # The Responses wire: ids, status, per-part annotations and logprobs, hosted items.
    Message(
        content=[OutputText("x", [{"type": "url_citation"}], [{"token": "x", "logprob": -1}])],
        id="msg_2",
        status="completed",
    ),
    FunctionCall(name="f", arguments="{}", call_id="call_9", id="fc_9", status="completed"),
    OtherItem(
        "web_search_call", {"type": "web_search_call", "id": "ws_1", "status": "done"}, "ws_1"
    ),
]

EVENTS: list[Any] = [
    RateLimits({"remaining-requests": "99", "reset-tokens": "6m0s"}),
    *[OutputItemAdded(item, choice_index=i % 2) for i, item in enumerate(ITEMS)],
    OutputTextDelta("Hello"),
    OutputTextDelta('\r\n"quoted" \\ 😀', choice_index=2),
    RefusalDelta("I can't", choice_index=1),
    OutputTextDelta("Hi", logprobs=[{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]),
    RefusalDelta("no", logprobs=[{"token": "no", "logprob": -0.2, "bytes": [110, 111]}]),
    AudioDelta(transcript="Hel", data="AAA=", id="audio_1", expires_at=1700000000),
    AudioDelta(transcript="lo", choice_index=1),
    RawChunk({"id": "x", "choices": [], "vendor_field": {"nested": [1, None, "a"]}}),
    ReasoningContentDelta("hmm", content_index=3, choice_index=1),
    *[OutputItemDone(item, choice_index=i % 3) for i, item in enumerate(ITEMS)],
    Completed(),
    Completed("chatcmpl-1", TokenUsage(10, 4, 20, 7, 30)),
    Completed(
        "chatcmpl-2",
        TokenUsage(
            10,
            0,
            20,
            0,
            30,
            cost=0.0001017,
            cost_details={"upstream_inference_cost": None},
            prompt_tokens_details={"cached_tokens": 0, "audio_tokens": 0},
            completion_tokens_details={"reasoning_tokens": 0, "accepted_prediction_tokens": 0},
        ),
        system_fingerprint="fp_1",
        service_tier="default",
        citations=["https://example.com/a"],
        search_results=[{"title": "A", "url": "https://example.com/a"}],
        timings={"prompt_n": 3, "predicted_per_second": 82.3},
    ),
    FunctionCallArgumentsDelta("call_1", '{"city": "Pa', output_index=1, choice_index=2),
    FunctionCallArgumentsDelta("call_1", "ris", parsed={"city": "Pa", "n": [1, 2.5, None]}),
    OutputItemIncomplete(ITEMS[5], output_index=3, choice_index=1),
    OutputTextParsed({"answer": "4", "steps": ["a"]}, choice_index=1),
    Created("resp_1", "gpt-5", sequence_number=0),
    Created(),
    ReasoningSummaryPartAdded(1, sequence_number=4),
    ReasoningSummaryDelta("**Plan**", summary_index=1, sequence_number=5),
    OutputTextDelta("seq", sequence_number=7),
    OutputItemAdded(ITEMS[0], output_index=2, sequence_number=8),
    Completed("resp_1", sequence_number=9),
    OutputElementDone({"name": "apple", "qty": 3}, index=2, choice_index=1),
]


def _id(obj: object) -> str:
    return type(obj).__name__


def test_every_kind_has_a_round_trip_case_here() -> None:
    covered = {type(o).type for o in [*PARTS, *ITEMS, *EVENTS]}
    assert covered == set(_KINDS)


@pytest.mark.parametrize("event", EVENTS, ids=_id)
def test_an_event_round_trips_through_to_json_and_event_from_json(event: Any) -> None:
    text = event.to_json()
    assert json.loads(text)["type"] == type(event).type
    assert event_from_json(text) == event
    assert event_from_json(text.encode()) == event


@pytest.mark.parametrize("event", EVENTS, ids=_id)
def test_an_event_round_trips_through_its_own_classs_from_json(event: Any) -> None:
    assert type(event).from_json(event.to_json()) == event
    assert Serializable.from_json(event.to_json()) == event


@pytest.mark.parametrize("event", EVENTS, ids=_id)
def test_an_event_round_trips_through_to_dict_and_event_from_dict(event: Any) -> None:
    data = event.to_dict()
    assert next(iter(data)) == "type"  # the tag comes first
    assert event_from_dict(data) == event
    assert event_from_dict(json.loads(json.dumps(data))) == event


@pytest.mark.parametrize("item", ITEMS, ids=_id)
def test_an_item_round_trips_through_item_from_dict(item: Any) -> None:
    data = item.to_dict()
    assert data["type"] == type(item).type
    assert item_from_dict(data) == item
    assert item_from_dict(json.loads(item.to_json())) == item
    assert type(item).from_json(item.to_json()) == item


@pytest.mark.parametrize("part", PARTS, ids=_id)
def test_a_content_part_round_trips_with_its_tag(part: Any) -> None:
    assert json.loads(part.to_json()) == {"type": type(part).type, "text": part.text}
    assert type(part).from_json(part.to_json()) == part
    assert Serializable.from_dict(part.to_dict()) == part


def test_items_inside_events_and_parts_inside_items_carry_their_tags() -> None:
    event = OutputItemDone(Message(content=[OutputText("a"), Refusal("b")]))
    data = json.loads(event.to_json())
    assert data["item"]["type"] == "message"
    assert [p["type"] for p in data["item"]["content"]] == ["output_text", "refusal"]


def test_text_is_written_as_utf8_json_that_reads_back_unchanged() -> None:
    delta = OutputTextDelta("\u2028\x00é😀")
    assert event_from_json(delta.to_json()) == delta


@pytest.mark.parametrize(
    "data",
    [
        {"type": "no_such_kind", "delta": "x"},
        {"delta": "x"},
        {"type": None},
        {"type": "message", "role": "assistant", "content": []},  # an item, not an event
        {"type": "output_text", "text": "x"},  # a part, not an event
    ],
    ids=["unknown", "missing", "null", "item", "part"],
)
def test_event_from_dict_rejects_a_tag_that_names_no_event(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event_from_dict(data)
    with pytest.raises(ValueError):
        event_from_json(json.dumps(data))


@pytest.mark.parametrize(
    "data",
    [
        OutputTextDelta("x").to_dict(),
        OutputText("x").to_dict(),
        {"type": "nope"},
        {"name": "f", "arguments": "{}", "call_id": "c"},
    ],
    ids=["event", "part", "unknown", "missing"],
)
def test_item_from_dict_rejects_a_tag_that_names_no_item(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        item_from_dict(data)


def test_a_class_rejects_the_json_of_another_kind() -> None:
    with pytest.raises(ValueError):
        OutputText.from_json(Refusal("x").to_json())
    with pytest.raises(ValueError):
        OutputTextDelta.from_dict(RefusalDelta("x").to_dict())


@pytest.mark.parametrize("text", ["[]", '"x"', "1", "null"])
def test_json_that_is_not_an_object_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        event_from_json(text)


def test_a_tag_naming_an_item_inside_an_event_must_be_an_item() -> None:
    data = OutputItemDone(FunctionCall("f", "{}", "c")).to_dict()
    data["item"] = OutputTextDelta("x").to_dict()
    with pytest.raises(ValueError):
        event_from_dict(data)


def test_token_usage_round_trips() -> None:
    usage = TokenUsage(
        input_tokens=1,
        cached_input_tokens=2,
        output_tokens=3,
        reasoning_output_tokens=4,
        total_tokens=5,
    )
    assert TokenUsage.from_json(usage.to_json()) == usage
    assert TokenUsage.from_dict(usage.to_dict()) == usage
    assert usage.to_dict() == {
        "input_tokens": 1,
        "cached_input_tokens": 2,
        "output_tokens": 3,
        "reasoning_output_tokens": 4,
        "total_tokens": 5,
    }


def test_the_text_shortcuts_of_items_join_their_parts() -> None:
    message = Message(content=[OutputText("a"), Refusal("r"), OutputText("b")])
    assert message.text == "ab"
    assert Reasoning(content=[ReasoningText("x"), ReasoningText("y")]).text == "xy"


@pytest.mark.parametrize(
    "data",
    [
        {"type": "output_text_delta"},
        {"type": "output_item_done", "item": {"type": "function_call", "name": "f"}},
        {"type": "output_item_added", "item": "not an object"},
    ],
    ids=["missing-delta", "item-missing-fields", "item-not-an-object"],
)
def test_event_from_dict_rejects_missing_or_malformed_fields(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event_from_dict(data)


def test_the_fast_argument_delta_is_the_same_event_as_the_constructed_one() -> None:
    # The accumulator makes these without __init__ (see events._arguments_delta): every
    # field must be set, and the result equal to the one __init__ makes.
    from dataclasses import fields

    from chatstream.events import _arguments_delta

    made = _arguments_delta("c", "x", 2, 1, {"a": 1})
    assert made == FunctionCallArgumentsDelta("c", "x", 2, 1, {"a": 1})
    assert set(vars(made)) == {f.name for f in fields(FunctionCallArgumentsDelta)}
    assert event_from_json(made.to_json()) == made


@pytest.mark.parametrize("event", EVENTS, ids=_id)
def test_an_event_hashes_alike_after_a_round_trip_through_json(event: Any) -> None:
    again = event_from_json(event.to_json())
    assert again == event and hash(again) == hash(event)


@pytest.mark.parametrize("item", ITEMS, ids=_id)
def test_an_item_read_back_from_json_holds_tuples(item: Any) -> None:
    again = item_from_dict(json.loads(json.dumps(item.to_dict())))
    for name in ("content", "summary"):
        assert type(getattr(again, name, ())) is tuple


def test_an_items_json_is_unchanged_by_the_tuples_it_holds() -> None:
    message = Message(content=(OutputText("a"),), annotations=[{"type": "url", "n": [1]}])
    assert message.to_json() == (
        '{"type": "message", "role": "assistant", "content": [{"type": "output_text", '
        '"text": "a"}], "id": null, "annotations": [{"type": "url", "n": [1]}]}'
    )


def test_an_item_given_lists_holds_tuples() -> None:
    message = Message(content=[OutputText("a")])  # type: ignore[arg-type]
    assert message.content == (OutputText("a"),)
    with pytest.raises(AttributeError):
        message.content.append(OutputText("b"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "change"),
    [
        (RawChunk({"choices": [{"delta": {}}]}), lambda e: e.chunk.update(x=1)),
        (RawChunk({"choices": [{"delta": {}}]}), lambda e: e.chunk["choices"].append(1)),
        (RawChunk({"choices": [{"delta": {}}]}), lambda e: e.chunk["choices"][0].pop("delta")),
        (OutputTextDelta("a", logprobs=[{"t": "a"}]), lambda e: e.logprobs[0].clear()),
        (RateLimits({"remaining-requests": "9"}), lambda e: e.headers.setdefault("a", "b")),
    ],
    ids=["top", "array", "nested", "logprobs", "headers"],
)
def test_the_providers_data_in_an_event_cannot_be_changed(event: Any, change: Any) -> None:
    before = event.to_json()
    with pytest.raises(TypeError, match="read-only"):
        change(event)
    assert event.to_json() == before


def test_the_providers_data_equals_and_serialises_as_the_json_it_came_from() -> None:
    raw = {"id": "x", "choices": [{"delta": {"content": "a"}, "logprobs": None}], "n": [1, 2]}
    chunk = RawChunk(raw).chunk
    assert chunk == raw and isinstance(chunk, dict) and isinstance(chunk["n"], list)
    assert json.loads(json.dumps(chunk)) == raw


def test_the_providers_data_is_copied_not_shared_with_what_it_came_from() -> None:
    raw: dict[str, Any] = {"nested": {"a": [1]}}
    event = RawChunk(raw)
    raw["nested"]["a"].append(2)
    assert event.chunk == {"nested": {"a": [1]}}


def test_the_providers_data_survives_copy_and_pickle_read_only() -> None:
    event = OutputTextDelta("a", logprobs=[{"t": "a", "top": [{"t": "b"}]}])
    for again in (copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
        assert again == event
        with pytest.raises(TypeError):
            again.logprobs[0]["top"].append(1)  # type: ignore[index]


def test_the_providers_data_stays_out_of_the_hash() -> None:
    one = OutputTextDelta("a", logprobs=[{"t": "a"}])
    other = OutputTextDelta("a", logprobs=[{"t": "b"}])
    assert one != other and hash(one) == hash(other)


# --- a response's JSON is always UTF-8 (issue 20, item 12) --------------------------------


def test_a_responses_json_replaces_a_lone_surrogate_so_it_can_be_saved_as_utf8() -> None:
    response = Response(
        choices=[ChoiceResult(index=0, content="half \ud83d")],
        citations=["\udc00 cited", "a \ud83d\ude00 pair kept as halves"],
    )
    text = response.to_json()
    text.encode()  # UTF-8, so it can be written to a file
    loaded = Response.from_json(text)
    assert loaded.content == "half \ufffd"
    assert loaded.citations == ["\ufffd cited", "a \U0001f600 pair kept as halves"]


def test_a_responses_json_without_surrogates_is_unchanged() -> None:
    response = Response(choices=[ChoiceResult(index=0, content="hi 你好 😀")])
    assert Response.from_json(response.to_json()) == response

"""Typed answers (``output=T``): the request asks for the type, the partial value's
finished parts are validated while it streams, the end is validated strictly, and the
three ways an answer cannot be had are typed errors carrying the partial response.

The core is driven directly (sans I/O); the client tests run over loopback."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_validator

import chatstream
from chatstream import (
    Client,
    ConfigurationError,
    Conversation,
    OutputElementDone,
    OutputRefusedError,
    OutputTextParsed,
    OutputTruncatedError,
    OutputValidationError,
)
from chatstream.core.schema import output_type
from chatstream.core.typed import asking_for, for_request
from tests.helpers import BODY, TIMEOUTS, build_body, chunk, examples
from tests.loopback import LoopbackServer, sse_body
from tests.scripted import responses_calls_body, responses_model, responses_text_body

PATH = "/v1/chat/completions"


class Item(BaseModel):
    name: str
    qty: int = Field(ge=0)


class Order(BaseModel):
    customer: str
    rush: bool
    items: list[Item]
    note: str | None = None


ORDER = {
    "customer": "Ada",
    "rush": True,
    "items": [{"name": "apple", "qty": 3}, {"name": "pear", "qty": 12}],
    "note": None,
}

ITEM_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 0}},
    "required": ["name", "qty"],
    "additionalProperties": False,
}


def run(
    spec: Any, pieces: list[str], finish: str = "stop", body: dict[str, Any] | None = None
) -> tuple[list[Any], chatstream.StreamParser]:
    """Feed ``pieces`` of content to a parser reading answers of ``spec``."""
    kind, _ = for_request(spec, body or {})
    parser = chatstream.StreamParser(output=kind)
    accumulator = parser.accumulator
    events: list[Any] = []
    for piece in pieces:
        events += accumulator.feed(chunk(piece))
    events += accumulator.feed(chunk(finish=finish))
    events += accumulator.finish(done=True)
    return events, parser


def split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def views(events: list[Any]) -> list[Any]:
    return [e.parsed for e in events if isinstance(e, OutputTextParsed)]


# --- the request -------------------------------------------------------------------------


def test_a_model_asks_for_its_strict_json_schema() -> None:
    _, response_format = for_request(Order, {})
    assert response_format is not None
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Order", True)
    assert spec["schema"]["required"] == ["customer", "rush", "items", "note"]
    assert spec["schema"]["additionalProperties"] is False


def test_a_list_goes_on_the_wire_wrapped_in_an_object() -> None:
    _, response_format = for_request(list[Item], {})
    assert response_format is not None
    schema = response_format["json_schema"]["schema"]
    assert schema["type"] == "object"
    assert schema["properties"]["elements"]["type"] == "array"
    assert "$defs" in schema  # where the elements' $ref points


def test_a_body_with_its_own_response_format_is_left_alone() -> None:
    own = {"response_format": {"type": "json_object"}}
    _, response_format = for_request(list[Item], own)
    assert response_format is None


def test_a_schema_keyword_the_validator_does_not_check_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="patternProperties"):
        output_type({"type": "object", "patternProperties": {"^a": {"type": "string"}}})


# --- the view while it streams -----------------------------------------------------------


def test_finished_parts_are_validated_and_open_ones_shown_as_they_stand() -> None:
    events, _ = run(Order, split(json.dumps(ORDER), 4))
    seen = views(events)
    half = [
        v
        for v in seen
        if isinstance(v, dict)
        and isinstance(v.get("items"), list)
        and len(v["items"]) == 2
        and v["items"][1] != {}
    ]
    assert isinstance(half[0]["items"][0], Item)  # the first item, finished
    assert isinstance(half[0]["items"][1], dict)  # the second, still open
    assert isinstance(seen[-1], Order)


def test_a_view_is_sent_only_when_it_changed() -> None:
    events, _ = run(Order, split(json.dumps(ORDER, indent=4), 1))
    seen = views(events)
    assert all(a != b for a, b in itertools.pairwise(seen))


def test_the_last_view_is_the_validated_answer() -> None:
    events, parser = run(Order, split(json.dumps(ORDER), 7))
    assert views(events)[-1] == parser.response.parsed == Order.model_validate(ORDER)


def test_each_finished_element_of_a_list_is_announced_once_validated() -> None:
    elements = [{"name": f"n{i}", "qty": i} for i in range(5)]
    events, _ = run(list[Item], split(json.dumps({"elements": elements}), 3))
    done = [e for e in events if isinstance(e, OutputElementDone)]
    assert [e.index for e in done] == [0, 1, 2, 3, 4]
    assert [e.element for e in done] == [Item(**x) for x in elements]


def test_each_element_is_validated_once_however_many_pieces() -> None:
    calls: list[str] = []

    class Counted(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def count(cls, value: str) -> str:
            calls.append(value)
            return value

    elements = [{"name": f"n{i}"} for i in range(50)]
    run(list[Counted], split(json.dumps({"elements": elements}), 2))
    # once while streaming (not again when the list closes), once in the final
    # validation of the whole text
    assert sorted(calls) == sorted([x["name"] for x in elements] * 2)


def test_a_list_asked_for_in_the_bodys_own_format_is_read_bare() -> None:
    own = {"response_format": {"type": "json_object"}}
    text = json.dumps([{"name": "a", "qty": 1}, {"name": "b", "qty": 2}])
    events, parser = run(list[Item], split(text, 5), body=own)
    assert [e.index for e in events if isinstance(e, OutputElementDone)] == [0, 1]
    assert parser.response.parsed == [Item(name="a", qty=1), Item(name="b", qty=2)]


def test_a_json_schema_is_validated_without_pydantic_types() -> None:
    text = json.dumps({"name": "apple", "qty": 3})
    _, parser = run(ITEM_SCHEMA, split(text, 4))
    assert parser.response.parsed == {"name": "apple", "qty": 3}


def test_a_dataclass_and_a_literal_are_taken_by_pydantic() -> None:
    @dataclass
    class Verdict:
        label: Literal["yes", "no"]
        score: float

    _, parser = run(Verdict, ['{"label": "ye', 's", "score": 0.5}'])
    assert parser.response.parsed == Verdict("yes", 0.5)


# --- the errors ----------------------------------------------------------------------------


def test_an_answer_that_does_not_validate_ends_in_output_validation_error() -> None:
    text = json.dumps({"name": "apple", "qty": -1})
    _, parser = run(Item, [text])
    error = parser.error
    assert isinstance(error, OutputValidationError)
    assert error.errors[0]["loc"] == ["qty"]
    assert error.raw == text
    assert error.partial is not None and error.partial.content == text


def test_the_json_schema_validator_reports_in_pydantics_shape() -> None:
    _, parser = run(ITEM_SCHEMA, [json.dumps({"name": 3, "qty": 1, "x": 0})])
    error = parser.error
    assert isinstance(error, OutputValidationError)
    assert {(tuple(e["loc"]), e["type"]) for e in error.errors} == {
        (("name",), "string_type"),
        (("x",), "extra_forbidden"),
    }


def test_an_answer_cut_by_length_ends_in_output_truncated_error() -> None:
    _, parser = run(Item, ['{"name": "app'], finish="length")
    error = parser.error
    assert isinstance(error, OutputTruncatedError)
    assert (error.finish_reason, error.raw) == ("length", '{"name": "app')


def test_a_refusal_ends_in_output_refused_error() -> None:
    kind, _ = for_request(Item, {})
    parser = chatstream.StreamParser(output=kind)
    parser.accumulator.feed(chunk(delta={"refusal": "I can't help with that."}))
    parser.accumulator.feed(chunk(finish="stop"))
    parser.accumulator.finish(done=True)
    error = parser.error
    assert isinstance(error, OutputRefusedError)
    assert error.refusal == "I can't help with that."
    assert error.partial is not None and error.partial.refusal == error.refusal


def test_an_answer_made_of_tool_calls_is_not_checked() -> None:
    kind, _ = for_request(Item, {})
    parser = chatstream.StreamParser(output=kind)
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    parser.accumulator.feed(chunk(tool_calls=[call]))
    parser.accumulator.feed(chunk(finish="tool_calls"))
    parser.accumulator.finish(done=True)
    assert parser.error is None
    assert parser.response.parsed is None


# --- the property: a view never contradicts the final value -------------------------------


def _agrees(view: Any, final: Any) -> bool:
    """Whether ``view`` (a view's part) can still become ``final`` (the answer's)."""
    if isinstance(view, BaseModel):
        return view == final
    if isinstance(final, BaseModel):
        final = {name: getattr(final, name) for name in type(final).model_fields}
    if isinstance(view, dict):
        return isinstance(final, dict) and all(
            k in final and _agrees(v, final[k]) for k, v in view.items()
        )
    if isinstance(view, list):
        return (
            isinstance(final, list)
            and len(view) <= len(final)
            and all(_agrees(v, f) for v, f in zip(view, final, strict=False))
        )
    if isinstance(view, str):
        return isinstance(final, str) and final.startswith(view)
    return bool(view == final)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
ITEMS = st.builds(Item, name=TEXT, qty=st.integers(0, 10**6))
ORDERS = st.builds(
    Order,
    customer=TEXT,
    rush=st.booleans(),
    items=st.lists(ITEMS, max_size=4),
    note=st.none() | TEXT,
)


@given(
    order=ORDERS, cuts=st.lists(st.integers(1, 400), max_size=30), indent=st.sampled_from([None, 1])
)
def test_every_prefix_gives_a_view_that_never_contradicts_the_final_value(
    order: Order, cuts: list[int], indent: int | None
) -> None:
    text = json.dumps(order.model_dump(), indent=indent)
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in itertools.pairwise(points) if b > a]
    events, parser = run(Order, pieces)
    final = parser.response.parsed
    assert final == order
    for view in views(events):
        assert _agrees(view, final), view


@settings(max_examples=examples(20))
@given(order=ORDERS)
def test_a_view_after_every_character_never_contradicts_the_final_value(order: Order) -> None:
    text = json.dumps({"elements": [order.model_dump()]})
    events, parser = run(list[Order], list(text))
    for view in views(events):
        assert _agrees(view, parser.response.parsed)


@given(
    value=st.fixed_dictionaries(
        {"name": TEXT, "qty": st.integers(0, 99)},
    ),
    size=st.integers(1, 9),
)
def test_a_json_schema_view_never_contradicts_the_final_value(
    value: dict[str, Any], size: int
) -> None:
    events, parser = run(ITEM_SCHEMA, split(json.dumps(value), size))
    assert parser.response.parsed == value
    for view in views(events):
        assert _agrees(view, value)


# --- over loopback -------------------------------------------------------------------------


def _answer(text: str, size: int = 5, finish: str = "stop") -> bytes:
    return build_body(
        [chunk(piece) for piece in split(text, size)] + [chunk(finish=finish)], done=True
    )


@pytest.mark.usefixtures("no_leaks")
def test_a_stream_asks_for_the_type_and_returns_the_validated_answer(
    server: LoopbackServer,
) -> None:
    server.route(PATH, sse_body(_answer(json.dumps(ORDER))))
    with (
        Client(server.url + "/v1", timeouts=TIMEOUTS) as client,
        client.stream(BODY, output=Order) as stream,
    ):
        seen = [e.parsed for e in stream if isinstance(e, OutputTextParsed)]
        response = stream.result()
    sent = server.requests[0].json()
    assert sent["response_format"]["json_schema"]["name"] == "Order"
    assert response.parsed == Order.model_validate(ORDER)
    assert seen[-1] == response.parsed


@pytest.mark.usefixtures("no_leaks")
def test_a_stream_whose_answer_does_not_validate_raises_with_the_partial(
    server: LoopbackServer,
) -> None:
    server.route(PATH, sse_body(_answer('{"name": "apple"}')))
    with (
        Client(server.url + "/v1", timeouts=TIMEOUTS) as client,
        client.stream(BODY, output=Item) as stream,
        pytest.raises(OutputValidationError) as caught,
    ):
        stream.result()
    assert caught.value.partial is not None
    assert caught.value.partial.content == '{"name": "apple"}'
    assert caught.value.errors[0]["type"] == "missing"


@pytest.mark.usefixtures("no_leaks")
def test_a_conversation_asks_for_a_typed_answer(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(_answer(json.dumps({"name": "fig", "qty": 2}))))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        response = conversation.ask("One fig", output=Item)
    assert response.parsed == Item(name="fig", qty=2)
    assert "response_format" in server.requests[0].json()
    assert "response_format" not in conversation.request  # only for that turn


# --- the Responses wire --------------------------------------------------------------------

RESPONSES_PATH = "/v1/responses"
RESPONSES_BODY: dict[str, Any] = {"model": "m", "input": "An order, please."}


def run_responses(spec: Any, data: bytes) -> tuple[list[Any], chatstream.StreamParser]:
    """Read a Responses SSE body as answers of ``spec``."""
    kind, _ = for_request(spec, {}, "responses")
    parser = chatstream.StreamParser(api="responses", output=kind)
    events = parser.feed(data) + parser.close()
    return events, parser


def test_the_responses_wire_asks_in_text_format_flat_and_strict() -> None:
    _, text_format = for_request(Order, {}, "responses")
    assert text_format is not None
    assert (text_format["type"], text_format["name"], text_format["strict"]) == (
        "json_schema",
        "Order",
        True,
    )
    assert text_format["schema"]["additionalProperties"] is False


def test_a_list_goes_in_text_format_wrapped_in_an_object() -> None:
    _, text_format = for_request(list[Item], {}, "responses")
    assert text_format is not None
    assert text_format["schema"]["properties"]["elements"]["type"] == "array"


def test_a_body_with_its_own_text_format_is_left_alone() -> None:
    own = {"text": {"format": {"type": "json_object"}}}
    assert asking_for(Item, own, "responses")[1] == own


def test_text_format_is_added_beside_the_other_text_fields() -> None:
    _, body = asking_for(Item, {"input": "x", "text": {"verbosity": "low"}}, "responses")
    assert body["text"]["verbosity"] == "low"
    assert body["text"]["format"]["name"] == "Item"
    assert "response_format" not in body


def test_responses_text_deltas_give_the_views_chat_content_gives() -> None:
    text = json.dumps(ORDER)
    chat_events, _ = run(Order, split(text, 4))
    events, parser = run_responses(Order, responses_text_body(text, size=4))
    assert views(events) == views(chat_events)
    assert parser.response.parsed == Order.model_validate(ORDER)
    assert views(events)[-1] == parser.response.parsed


def test_each_finished_element_of_a_list_is_announced_once_on_the_responses_wire() -> None:
    elements = [{"name": f"n{i}", "qty": i} for i in range(4)]
    data = responses_text_body(json.dumps({"elements": elements}), size=3)
    events, parser = run_responses(list[Item], data)
    done = [e for e in events if isinstance(e, OutputElementDone)]
    assert [e.index for e in done] == [0, 1, 2, 3]
    assert [e.element for e in done] == parser.response.parsed == [Item(**x) for x in elements]


def test_an_answer_cut_by_max_output_tokens_ends_in_output_truncated_error() -> None:
    data = responses_text_body('{"name": "app', incomplete="max_output_tokens")
    _, parser = run_responses(Item, data)
    error = parser.error
    assert isinstance(error, OutputTruncatedError)
    assert (error.finish_reason, error.raw) == ("max_output_tokens", '{"name": "app')
    assert error.partial is not None and error.partial.content == '{"name": "app'


def test_a_refusal_on_the_responses_wire_ends_in_output_refused_error() -> None:
    message = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    events = [
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.refusal.delta", "output_index": 0, "delta": "I can't help."},
        {"type": "response.completed", "response": {"id": "resp_1"}},
    ]
    data = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
    _, parser = run_responses(Item, data)
    error = parser.error
    assert isinstance(error, OutputRefusedError)
    assert error.refusal == "I can't help."


def test_an_answer_that_does_not_validate_on_the_responses_wire_is_an_error() -> None:
    _, parser = run_responses(Item, responses_text_body('{"name": "apple"}'))
    error = parser.error
    assert isinstance(error, OutputValidationError)
    assert error.errors[0]["type"] == "missing"
    assert error.partial is not None and error.partial.content == '{"name": "apple"}'


def test_an_answer_made_of_function_calls_is_not_checked_on_the_responses_wire() -> None:
    _, parser = run_responses(Item, responses_calls_body([("f", {})]))
    assert parser.error is None
    assert parser.response.parsed is None
    assert len(parser.response.tool_calls) == 1


@pytest.mark.usefixtures("no_leaks")
def test_a_responses_stream_asks_in_text_format_and_returns_the_validated_answer(
    server: LoopbackServer,
) -> None:
    server.route(RESPONSES_PATH, responses_model(lambda items: json.dumps(ORDER)))
    with (
        Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses") as client,
        client.stream(RESPONSES_BODY, output=Order) as stream,
    ):
        seen = [e.parsed for e in stream if isinstance(e, OutputTextParsed)]
        response = stream.result()
    sent = server.requests[0].json()
    assert sent["text"]["format"]["name"] == "Order"
    assert response.parsed == Order.model_validate(ORDER) == seen[-1]


@pytest.mark.usefixtures("no_leaks")
def test_a_responses_stream_cut_by_max_output_tokens_raises_output_truncated_error(
    server: LoopbackServer,
) -> None:
    cut = responses_text_body('{"customer": "Ada", "ru', incomplete="max_output_tokens")
    server.route(RESPONSES_PATH, responses_model(lambda items: cut))
    with (
        Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses") as client,
        client.stream({**RESPONSES_BODY, "max_output_tokens": 8}, output=Order) as stream,
        pytest.raises(OutputTruncatedError) as caught,
    ):
        stream.result()
    assert caught.value.finish_reason == "max_output_tokens"
    assert caught.value.partial is not None
    assert caught.value.partial.truncated


@pytest.mark.usefixtures("no_leaks")
def test_a_responses_conversation_asks_for_a_typed_answer(server: LoopbackServer) -> None:
    server.route(
        RESPONSES_PATH, responses_model(lambda items: json.dumps({"name": "fig", "qty": 2}))
    )
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"}, api="responses")
        response = conversation.ask("One fig", output=Item)
    assert response.parsed == Item(name="fig", qty=2)
    assert server.requests[0].json()["text"]["format"]["name"] == "Item"
    assert "text" not in conversation.request  # only for that turn

"""What providers send beyond text, reasoning and tool calls is kept, typed where common
and raw where not; and it round-trips through JSON with the events and the result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatstream import (
    AudioDelta,
    Completed,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RawChunk,
    Reasoning,
    RefusalDelta,
    Response,
    StreamOptions,
    StreamParser,
    event_from_json,
)

from ..helpers import CORPUS, build_body, chunk, corpus_names, kinds


def parse(chunks: list[dict[str, Any]], **options: Any) -> tuple[list[Any], Response]:
    parser = StreamParser(**options)
    events = parser.feed(build_body(chunks, done=True))
    events += parser.close()
    return events, parser.result()


def replay(name: str, **options: Any) -> tuple[list[Any], Response]:
    parser = StreamParser(**options)
    events = parser.feed((CORPUS / f"{name}.sse").read_bytes())
    events += parser.close()
    return events, parser.response


# --- tool calls ------------------------------------------------------------------------

GEMINI_CALL = {
    "id": "call_g1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
}


def test_a_gemini_thought_signature_is_kept_on_the_call() -> None:
    _, response = parse([chunk(tool_calls=[GEMINI_CALL], finish="stop")])
    assert response.tool_calls[0].extra_content == {"google": {"thought_signature": "c2lnbmF0dXJl"}}


def test_a_call_without_extra_content_has_none() -> None:
    call = {k: v for k, v in GEMINI_CALL.items() if k != "extra_content"}
    _, response = parse([chunk(tool_calls=[call], finish="tool_calls")])
    assert response.tool_calls[0].extra_content is None


# --- reasoning entries -----------------------------------------------------------------

OPENROUTER_DETAILS = [
    chunk(
        delta={
            "reasoning": "Let me",
            "reasoning_details": [
                {"type": "reasoning.text", "text": "Let me", "index": 0, "format": "x"}
            ],
        }
    ),
    chunk(
        delta={
            "reasoning": " think.",
            "reasoning_details": [{"type": "reasoning.text", "text": " think.", "index": 0}],
        }
    ),
    chunk(
        delta={
            "reasoning_details": [
                {"type": "reasoning.text", "text": "", "signature": "sig-1", "index": 0}
            ]
        }
    ),
    chunk(
        delta={
            "reasoning_details": [
                {"type": "reasoning.encrypted", "data": "ZW5j", "id": "rs_9", "index": 1}
            ]
        }
    ),
    chunk("Done.", finish="stop"),
]


def reasoning_item(response: Response) -> Reasoning:
    items = [item for item in response.items if isinstance(item, Reasoning)]
    assert len(items) == 1
    return items[0]


def test_reasoning_details_fragments_are_joined_and_kept_raw() -> None:
    _, response = parse(OPENROUTER_DETAILS)
    assert reasoning_item(response).details == [
        {
            "type": "reasoning.text",
            "text": "Let me think.",
            "index": 0,
            "format": "x",
            "signature": "sig-1",
        },
        {"type": "reasoning.encrypted", "data": "ZW5j", "id": "rs_9", "index": 1},
    ]


def test_an_encrypted_entry_fills_encrypted_content_and_id() -> None:
    _, response = parse(OPENROUTER_DETAILS)
    item = reasoning_item(response)
    assert item.encrypted_content == "ZW5j"
    assert item.id == "rs_9"
    assert item.text == "Let me think."


def test_an_encrypted_entry_alone_still_makes_a_reasoning_item() -> None:
    encrypted = {"type": "reasoning.encrypted", "data": "ZW5j"}
    events, response = parse(
        [chunk(delta={"reasoning_details": [encrypted]}), chunk("Hi", finish="stop")]
    )
    assert kinds(events)[:2] == ["OutputItemAdded(Reasoning)", "OutputItemAdded(Message)"]
    assert reasoning_item(response).details == [encrypted]
    assert reasoning_item(response).content == ()


def test_thinking_block_signatures_are_kept() -> None:
    pieces = [("Hm", None), ("m.", None), ("", "EqQ")]
    blocks = [{"type": "thinking", "thinking": t, "signature": s} for t, s in pieces]
    chunks = [chunk(delta={"thinking_blocks": [block]}) for block in blocks]
    _, response = parse([*chunks, chunk("ok", finish="stop")])
    assert reasoning_item(response).thinking_blocks == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "EqQ"}
    ]
    assert response.reasoning == "Hmm."


def test_the_reasoning_field_name_is_remembered() -> None:
    _, response = parse([chunk(delta={"reasoning_content": "r"}), chunk("a", finish="stop")])
    assert response.choices[0].reasoning_field == "reasoning_content"


# --- logprobs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai-logprobs", "llamacpp-logprobs"])
def test_content_logprobs_ride_on_the_text_deltas_and_are_collected(name: str) -> None:
    events, response = replay(name)
    deltas = [e for e in events if isinstance(e, OutputTextDelta)]
    assert deltas and all(e.logprobs for e in deltas)
    on_events = [entry for e in deltas for entry in e.logprobs or []]
    assert response.logprobs is not None
    assert response.logprobs["content"] == on_events
    assert "".join(entry["token"] for entry in on_events) == response.content


def test_refusal_logprobs_ride_on_the_refusal_deltas_and_are_collected() -> None:
    events, response = replay("openai-refusal-logprobs")
    deltas = [e for e in events if isinstance(e, RefusalDelta)]
    assert deltas and all(e.logprobs for e in deltas)
    assert response.logprobs is not None
    assert response.logprobs["refusal"] == [entry for e in deltas for entry in e.logprobs or []]
    assert "".join(entry["token"] for entry in response.logprobs["refusal"]) == response.refusal


def test_a_stream_without_logprobs_has_none() -> None:
    events, response = replay("openai-plain-text")
    assert response.logprobs is None
    assert all(e.logprobs is None for e in events if isinstance(e, OutputTextDelta))


# --- citations and annotations ---------------------------------------------------------

CITATION = {
    "type": "url_citation",
    "url_citation": {"url": "https://example.com", "title": "Ex", "start_index": 0, "end_index": 3},
}


def test_delta_annotations_are_kept_on_the_message_and_the_result() -> None:
    _, response = parse(
        [chunk("See"), chunk(delta={"annotations": [CITATION]}), chunk(finish="stop")]
    )
    messages = [item for item in response.items if isinstance(item, Message)]
    assert messages[0].annotations == [CITATION]
    assert response.annotations == [CITATION]


def test_perplexity_citations_reach_the_result_and_completed() -> None:
    events, response = replay("perplexity-citations")
    assert response.citations is not None
    assert response.citations[0] == "https://populationstat.com/united-states/san-francisco"
    assert isinstance(events[-1], Completed)
    assert events[-1].citations == response.citations


def test_search_results_are_kept() -> None:
    results = [{"title": "A", "url": "https://example.com/a", "date": None}]
    _, response = parse([chunk("x", finish="stop", search_results=results)])
    assert response.search_results == results


# --- usage extras and response metadata ------------------------------------------------


def test_openrouter_cost_is_kept_with_the_usage() -> None:
    _, response = replay("openrouter-moonshot-text-usage-cost")
    assert response.usage is not None
    assert response.usage.cost == 0.0001017
    assert response.usage.cost_details == {"upstream_inference_cost": None}


def test_the_full_token_details_are_kept() -> None:
    details = {"cached_tokens": 2, "audio_tokens": 1}
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": details}
    _, response = parse([chunk("x", finish="stop", usage=usage)])
    assert response.usage is not None
    assert response.usage.prompt_tokens_details == details
    assert response.usage.cached_input_tokens == 2


def test_top_level_reasoning_tokens_count_when_there_are_no_details() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 9, "reasoning_tokens": 4}
    _, response = parse([chunk("x", finish="stop", usage=usage)])
    assert response.usage is not None
    assert response.usage.reasoning_output_tokens == 4


def test_llamacpp_timings_are_kept() -> None:
    events, response = replay("llamacpp-server-usage-timings")
    assert response.timings is not None
    assert response.timings["predicted_n"] == 60
    assert isinstance(events[-1], Completed)
    assert events[-1].timings == response.timings


def test_system_fingerprint_and_service_tier_are_kept() -> None:
    _, response = replay("openai-text-long")
    assert response.system_fingerprint and response.system_fingerprint.startswith("fp_")
    assert response.service_tier == "default"


# --- audio -----------------------------------------------------------------------------

AUDIO_STREAM = [
    chunk(delta={"audio": {"id": "audio_1", "transcript": "Hel", "data": "AAA", "expires_at": 17}}),
    chunk(delta={"audio": {"transcript": "lo", "data": "BBB"}}),
    chunk(delta={"audio": {"data": "CCC"}}, finish="stop"),
]


def test_audio_deltas_are_events() -> None:
    events, _ = parse(AUDIO_STREAM)
    assert [e for e in events if isinstance(e, AudioDelta)] == [
        AudioDelta(transcript="Hel", data="AAA", id="audio_1", expires_at=17),
        AudioDelta(transcript="lo", data="BBB"),
        AudioDelta(data="CCC"),
    ]


def test_the_whole_audio_is_on_the_result() -> None:
    _, response = parse(AUDIO_STREAM)
    assert response.audio is not None
    assert (response.audio.id, response.audio.transcript, response.audio.data) == (
        "audio_1",
        "Hello",
        "AAABBBCCC",
    )
    assert response.audio.expires_at == 17


# --- the escape hatch ------------------------------------------------------------------


def test_raw_chunks_deliver_unknown_fields_before_their_events() -> None:
    odd = chunk(delta={"content": "Hi", "vendor_delta": 1}, vendor_top={"x": [1]})
    events, _ = parse([odd, chunk(finish="stop")], options=StreamOptions(raw_chunks=True))
    assert isinstance(events[0], RawChunk)
    assert events[0].chunk == odd
    assert kinds(events[:3]) == ["RawChunk", "OutputItemAdded(Message)", "OutputTextDelta"]
    assert sum(isinstance(e, RawChunk) for e in events) == 2


def test_raw_chunks_are_off_by_default() -> None:
    events, _ = parse([chunk("Hi", finish="stop")])
    assert not any(isinstance(e, RawChunk) for e in events)


# --- JSON round trips ------------------------------------------------------------------

RICH_STREAMS = {
    "details": OPENROUTER_DETAILS,
    "audio": AUDIO_STREAM,
    "gemini": [chunk(tool_calls=[GEMINI_CALL], finish="stop")],
    "annotations": [chunk(delta={"content": "See", "annotations": [CITATION]}, finish="stop")],
}


@pytest.mark.parametrize("name", sorted(RICH_STREAMS))
def test_every_event_with_provider_data_round_trips_through_json(name: str) -> None:
    events, _ = parse(RICH_STREAMS[name], options=StreamOptions(raw_chunks=True))
    assert [event_from_json(e.to_json()) for e in events] == events


@pytest.mark.parametrize("name", corpus_names())
def test_every_corpus_event_round_trips_through_json(name: str) -> None:
    events, _ = replay(name, options=StreamOptions(raw_chunks=True))
    assert [event_from_json(e.to_json()) for e in events] == events


@pytest.mark.parametrize("name", corpus_names())
def test_a_corpus_result_loads_back_whole_from_json(name: str) -> None:
    _, response = replay(name)
    loaded = Response.from_json(response.to_json())
    assert loaded.to_dict() == response.to_dict()
    assert loaded.to_result_dict() == response.to_result_dict()


@pytest.mark.parametrize("name", sorted(RICH_STREAMS))
def test_a_result_with_provider_data_loads_back_equal(name: str) -> None:
    _, response = parse(RICH_STREAMS[name])
    assert Response.from_json(response.to_json()) == response


def test_a_failed_result_loads_back_with_its_error() -> None:
    _, response = replay("llamacpp-python-200-then-nothing")
    assert response.error is not None
    loaded = Response.from_json(response.to_json())
    assert loaded.error == response.error  # class name, kind, message and attributes
    assert loaded.error is not None and loaded.error.error_class == "IncompleteStreamError"


def test_a_provider_errors_facts_load_back() -> None:
    error_chunk = {"error": {"message": "overloaded", "type": "server_error", "code": 529}}
    parser = StreamParser()
    parser.feed(build_body([chunk("a"), error_chunk]))
    loaded = Response.from_json(parser.response.to_json())
    assert loaded.error is not None
    assert (loaded.error.kind, loaded.error.attributes.get("code")) == ("provider_error", 529)


@pytest.mark.parametrize("text", ["[]", '{"choices": [{"content": "no index"}]}', "{"])
def test_a_malformed_result_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Response.from_json(text)


def test_provider_data_costs_no_json_in_a_plain_stream() -> None:
    events, _ = parse([chunk("Hi", finish="stop")])
    for event in events:
        data = json.loads(event.to_json())
        assert "logprobs" not in data and "citations" not in data
        item = data.get("item", {})
        assert "annotations" not in item and "extra_content" not in item


def test_items_compare_as_before_when_there_is_no_provider_data() -> None:
    events, _ = parse([chunk("Hi", finish="stop")])
    done = [e for e in events if isinstance(e, OutputItemDone)]
    added = [e for e in events if isinstance(e, OutputItemAdded)]
    assert done[0].item == Message(content=done[0].item.content)  # type: ignore[union-attr]
    assert added[0].item == Message()
    assert FunctionCall("f", "{}", "c") == FunctionCall("f", "{}", "c", extra_content=None)


# --- to_message: what goes back --------------------------------------------------------


def test_to_message_of_a_plain_answer_is_its_text() -> None:
    _, response = parse([chunk("Hi", finish="stop")])
    assert response.to_message() == {"role": "assistant", "content": "Hi"}


def test_to_message_of_a_refusal_carries_it() -> None:
    _, response = replay("openai-refusal")
    message = response.to_message()
    assert message["refusal"] == response.refusal
    assert message["content"] == ""


def test_to_message_sends_a_custom_call_as_custom() -> None:
    custom = {"index": 0, "id": "call_c", "type": "custom", "custom": {"name": "patch"}}
    more = {"index": 0, "custom": {"input": "*** Begin"}}
    _, response = parse(
        [
            chunk(tool_calls=[custom]),
            chunk(tool_calls=[more]),
            chunk(finish="tool_calls"),
        ]
    )
    assert response.to_message()["tool_calls"] == [
        {"id": "call_c", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}}
    ]


def test_to_message_sends_openrouters_reasoning_details_and_reasoning_back() -> None:
    _, response = parse(OPENROUTER_DETAILS)
    message = response.to_message()
    assert message["reasoning_details"] == reasoning_item(response).details
    assert message["reasoning"] == "Let me think."
    assert "reasoning_content" not in message


def test_to_message_sends_thinking_blocks_back() -> None:
    block = {"type": "thinking", "thinking": "Hm", "signature": "EqQ"}
    _, response = parse([chunk(delta={"thinking_blocks": [block]}), chunk("ok", finish="stop")])
    assert response.to_message()["thinking_blocks"] == [block]


def test_to_message_never_invents_reasoning_from_content_parts() -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}]
    _, response = parse([chunk(delta={"content": parts}), chunk("ok", finish="stop")])
    assert response.reasoning == "hm"
    assert response.to_message() == {"role": "assistant", "content": "ok"}


def test_to_message_refers_to_the_audio_by_id() -> None:
    _, response = parse(AUDIO_STREAM)
    assert response.to_message() == {"role": "assistant", "content": "", "audio": {"id": "audio_1"}}


def test_to_message_per_choice() -> None:
    _, response = replay("openai-n3-multiple-choices")
    assert [response.to_message(c.index)["content"] for c in response.choices] == [
        c.content for c in response.choices
    ]
    with pytest.raises(IndexError):
        response.to_message(7)


def test_to_message_survives_a_json_round_trip() -> None:
    _, response = parse(OPENROUTER_DETAILS)
    assert Response.from_json(response.to_json()).to_message() == response.to_message()


def test_a_whole_completion_keeps_its_provider_data() -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1}], "refusal": None}
    completion = {
        "id": "chatcmpl-9",
        "system_fingerprint": "fp_9",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi", "annotations": [CITATION]},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
    }
    parser = StreamParser()
    parser.feed_completion(json.dumps(completion).encode())
    response = parser.result()
    assert response.logprobs == logprobs
    assert response.annotations == [CITATION]
    assert response.system_fingerprint == "fp_9"

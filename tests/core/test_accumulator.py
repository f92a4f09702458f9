"""The reduction rules of ``shared/conformance/README.md``, one test each, and the
adversarial framing/parsing cases A.7-A.21 of ``shared/research/reliability.md`` §4 that
concern the core. Where the rules define an order of events, the tests assert it."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pytest

from chatstream import (
    Accumulator,
    ChatStreamError,
    Completed,
    ContextWindowExceeded,
    FunctionCall,
    FunctionCallArgumentsDelta,
    IncompleteStreamError,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputText,
    OutputTextDelta,
    ProviderError,
    RawChunk,
    Reasoning,
    ReasoningContentDelta,
    ReasoningText,
    Refusal,
    RefusalDelta,
    Response,
    ResponseEvent,
    StreamClosedError,
    StreamOptions,
    StreamParser,
    TokenUsage,
)
from chatstream.core.sse import SSEDecoder

from ..helpers import CORPUS, build_body, chunk, corpus_names, kinds

# --- helpers ---------------------------------------------------------------------------


def frag(
    index: int | None = None,
    id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
) -> dict[str, Any]:
    """One tool-call fragment, with only the keys given."""
    out: dict[str, Any] = {}
    if index is not None:
        out["index"] = index
    if id is not None:
        out["id"] = id
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        out["function"] = function
    return out


def calls(*fragments: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return chunk(tool_calls=list(fragments), **kw)


def finish(reason: str = "stop", **kw: Any) -> dict[str, Any]:
    return chunk(finish=reason, **kw)


@dataclass
class Outcome:
    events: list[ResponseEvent]
    response: Response
    error: ChatStreamError | None

    @property
    def kinds(self) -> list[str]:
        return kinds(self.events)

    @property
    def done_calls(self) -> list[FunctionCall]:
        return [
            e.item
            for e in self.events
            if isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall)
        ]


def parse_body(body: bytes, **options: Any) -> Outcome:
    parser = StreamParser(**options)
    events = parser.feed(body) + parser.close()
    return Outcome(events, parser.response, parser.error)


def parse(chunks: list[Any], *, done: bool = True, **options: Any) -> Outcome:
    """The outcome of a body with one ``data:`` event per chunk (and ``[DONE]``)."""
    return parse_body(build_body(chunks, event=None, done=done), **options)


def call_dicts(calls: list[FunctionCall]) -> list[tuple[str, str, str]]:
    return [(c.call_id, c.name, c.arguments) for c in calls]


# --- text ------------------------------------------------------------------------------


def test_string_content_is_text_in_one_message() -> None:
    out = parse([chunk("Hello"), chunk(", world"), finish()])
    assert out.kinds == [
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputTextDelta",
        "OutputItemDone(Message)",
        "Completed",
    ]
    assert out.events[1] == OutputTextDelta("Hello")
    assert out.events[3] == OutputItemDone(Message(content=[OutputText("Hello, world")]))
    assert out.response.content == "Hello, world"


def test_empty_and_null_content_open_no_message() -> None:
    # OpenAI's first delta is {"role": "assistant", "content": ""}.
    out = parse(
        [
            chunk(delta={"role": "assistant", "content": ""}),
            chunk(delta={"content": None}),
            finish(),
        ]
    )
    assert out.kinds == ["Completed"]
    assert out.response.content == ""


def test_each_text_part_of_a_content_array_is_text() -> None:
    parts = [{"type": "text", "text": "a"}, {"text": "b"}, {"type": "image_url"}, "junk"]
    out = parse([chunk(delta={"content": parts}), finish()])
    assert out.response.content == "ab"
    assert [e for e in out.events if isinstance(e, OutputTextDelta)] == [
        OutputTextDelta("a"),
        OutputTextDelta("b"),
    ]


def test_thinking_parts_of_a_content_array_are_reasoning() -> None:
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "answer"},
    ]
    out = parse([chunk(delta={"content": parts}), finish()])
    assert (out.response.reasoning, out.response.content) == ("hmm", "answer")
    assert out.kinds == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputItemDone(Reasoning)",
        "OutputItemDone(Message)",
        "Completed",
    ]


# --- reasoning -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delta",
    [
        {"reasoning": "think"},
        {"reasoning": {"text": "think"}},
        {"reasoning": {"content": "think"}},
        {"reasoning_content": "think"},
        {"reasoning_details": [{"type": "reasoning.text", "text": "think"}]},
        {"reasoning_details": [{"type": "reasoning.summary", "summary": "think"}]},
        {"reasoning": None, "reasoning_content": "think"},
        {"reasoning": "", "reasoning_content": "think"},
        {"reasoning_content": {"text": "think"}},
        {"thinking_blocks": [{"type": "thinking", "thinking": "think", "signature": "s"}]},
    ],
    ids=[
        "reasoning",
        "reasoning.text",
        "reasoning.content",
        "reasoning_content",
        "details.text",
        "details.summary",
        "null-reasoning",
        "empty-reasoning",
        "reasoning_content.text",
        "thinking_blocks",
    ],
)
def test_reasoning_is_read_from_each_providers_field(delta: dict[str, Any]) -> None:
    out = parse([chunk(delta=delta), finish()])
    assert out.response.reasoning == "think"
    assert out.kinds == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemDone(Reasoning)",
        "Completed",
    ]
    assert out.events[1] == ReasoningContentDelta("think", content_index=0, choice_index=0)
    done = out.events[2]
    assert isinstance(done, OutputItemDone) and isinstance(done.item, Reasoning)
    assert done.item.content == (ReasoningText("think"),)


@pytest.mark.parametrize(
    "delta",
    [
        {"reasoning": "x", "reasoning_content": "x"},
        {"reasoning_content": "x", "reasoning_details": [{"text": "x"}]},
        {"reasoning": "x", "reasoning_details": [{"text": "x"}]},
        {
            "reasoning": {"text": "x"},
            "reasoning_content": "x",
            "reasoning_details": [{"text": "x"}],
        },
        {"reasoning_content": {"text": "x"}, "thinking_blocks": [{"thinking": "x"}]},
        {"reasoning_details": [{"text": "x"}], "thinking_blocks": [{"thinking": "x"}]},
    ],
)
def test_reasoning_sent_under_two_names_is_never_doubled(delta: dict[str, Any]) -> None:
    out = parse([chunk(delta=delta), chunk(delta=delta), finish()])
    assert out.response.reasoning == "xx"


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_in_a_choices_message_counts(field: str) -> None:
    out = parse([{"choices": [{"index": 0, "message": {field: "r"}}]}, finish()])
    assert out.response.reasoning == "r"


def test_reasoning_deltas_join_into_one_reasoning_item() -> None:
    out = parse([chunk(delta={"reasoning": "a"}), chunk(delta={"reasoning": "b"}), finish()])
    deltas = [e for e in out.events if isinstance(e, ReasoningContentDelta)]
    assert deltas == [ReasoningContentDelta("a"), ReasoningContentDelta("b")]
    assert out.response.items == (Reasoning(content=[ReasoningText("ab")]),)


def test_on_stop_reasoning_is_finished_before_the_message() -> None:
    out = parse([chunk(delta={"reasoning": "r"}), chunk("t"), finish()])
    assert out.kinds == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputItemDone(Reasoning)",
        "OutputItemDone(Message)",
        "Completed",
    ]


def test_within_one_delta_reasoning_comes_before_text() -> None:
    out = parse([chunk(delta={"content": "t", "reasoning_content": "r"}), finish()])
    assert out.kinds[:4] == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
    ]


# --- refusal ---------------------------------------------------------------------------


def test_refusal_strings_are_joined() -> None:
    out = parse([chunk(delta={"refusal": "I can"}), chunk(delta={"refusal": "not."}), finish()])
    assert out.response.refusal == "I cannot."
    assert out.kinds == [
        "OutputItemAdded(Message)",
        "RefusalDelta",
        "RefusalDelta",
        "OutputItemDone(Message)",
        "Completed",
    ]
    assert out.events[1] == RefusalDelta("I can")
    assert out.events[3] == OutputItemDone(Message(content=[Refusal("I cannot.")]))


def test_refusal_is_none_when_none_was_sent() -> None:
    out = parse([chunk(delta={"content": "hi", "refusal": None}), finish()])
    assert out.response.refusal is None


def test_message_parts_keep_their_order_and_join_runs_of_one_kind() -> None:
    out = parse([chunk("a"), chunk("b"), chunk(delta={"refusal": "no"}), chunk("c"), finish()])
    assert out.response.items == (
        Message(content=[OutputText("ab"), Refusal("no"), OutputText("c")]),
    )


# --- tool calls: matching fragments to calls -------------------------------------------


def test_fragments_are_matched_to_calls_by_index() -> None:
    out = parse(
        [
            calls(frag(0, "call_a", "a", "")),
            calls(frag(1, "call_b", "b", "")),
            calls(frag(0, arguments='{"x":')),
            calls(frag(1, arguments='{"y":')),
            calls(frag(0, arguments="1}")),
            calls(frag(1, arguments="2}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [
        ("call_a", "a", '{"x":1}'),
        ("call_b", "b", '{"y":2}'),
    ]


def test_openai_parallel_calls_interleaved_by_index_complete_in_first_appearance_order() -> None:
    # A.15: the OpenAI shape: index on every delta, id and name only on the first.
    out = parse(
        [
            calls(frag(1, "call_b", "second", "")),
            calls(frag(0, "call_a", "first", "")),
            calls(frag(0, arguments="{}"), frag(1, arguments='{"k"')),
            calls(frag(1, arguments=":1}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.done_calls) == [
        ("call_b", "second", '{"k":1}'),
        ("call_a", "first", "{}"),
    ]


def test_a_known_id_is_matched_whatever_its_index() -> None:
    out = parse(
        [calls(frag(0, "call_a", "a", '{"x":')), calls(frag(5, "call_a", None, "1}")), finish()]
    )
    assert call_dicts(out.response.tool_calls) == [("call_a", "a", '{"x":1}')]


def test_a_fragment_with_neither_id_nor_index_continues_the_last_call() -> None:
    # A.16: calls without an index (Mistral).
    out = parse(
        [
            calls(frag(None, "call_a", "a", '{"x"')),
            calls(frag(None, None, None, ":1}")),
            calls(frag(None, "call_b", "b", "{")),
            calls(frag(None, None, None, "}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [
        ("call_a", "a", '{"x":1}'),
        ("call_b", "b", "{}"),
    ]


def test_a_new_id_without_an_index_opens_a_new_call() -> None:
    out = parse([calls(frag(None, "call_a", "a", "{}"), frag(None, "call_b", "b", "{}")), finish()])
    assert [c.call_id for c in out.response.tool_calls] == ["call_a", "call_b"]


def test_an_empty_id_counts_as_absent() -> None:
    out = parse(
        [calls(frag(0, "call_a", "a", "{")), calls(frag(0, "", None, "}")), finish("tool_calls")]
    )
    assert call_dicts(out.response.tool_calls) == [("call_a", "a", "{}")]


def test_ids_and_names_repeated_on_every_fragment_are_neither_changed_nor_doubled() -> None:
    # A.16: some servers repeat id and name on every fragment, or send name "" later.
    out = parse(
        [
            calls(frag(0, "call_a", "get", "")),
            calls(frag(0, "call_a", "get", '{"q":')),
            calls(frag(0, "call_a", "", '"x"')),
            calls(frag(0, None, "", "}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [("call_a", "get", '{"q":"x"}')]


def test_the_first_non_empty_name_wins() -> None:
    out = parse(
        [calls(frag(0, "c", "", "")), calls(frag(0, None, "late", "{}")), finish("tool_calls")]
    )
    assert call_dicts(out.response.tool_calls) == [("c", "late", "{}")]


def test_a_different_id_on_an_occupied_index_opens_a_new_call() -> None:
    # A.17: Ollama and Bedrock proxies number every parallel call 0.
    out = parse(
        [
            calls(frag(0, "call_1", "a", '{"n":1}')),
            calls(frag(0, "call_2", "b", '{"n":')),
            calls(frag(0, None, None, "2}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [
        ("call_1", "a", '{"n":1}'),
        ("call_2", "b", '{"n":2}'),
    ]


def test_arguments_are_joined_in_arrival_order_and_null_adds_nothing() -> None:
    out = parse(
        [
            calls(frag(0, "c", "f", None)),
            calls({"index": 0, "function": {"arguments": None}}),
            calls(frag(0, None, None, '{"a"')),
            calls({"index": 0, "function": {"arguments": None}}),
            calls(frag(0, None, None, ": 1}")),
            finish("tool_calls"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [("c", "f", '{"a": 1}')]


@pytest.mark.parametrize("index", [0, 3])
def test_a_call_without_an_id_gets_tool_call_and_its_index(index: int) -> None:
    out = parse([calls(frag(index, None, "f", "{}")), finish("tool_calls")])
    assert call_dicts(out.response.tool_calls) == [(f"tool-call-{index}", "f", "{}")]


def test_a_legacy_function_call_twin_is_ignored_when_tool_calls_are_present() -> None:
    delta = {
        "tool_calls": [frag(0, "call_a", "f", '{"a":1}')],
        "function_call": {"name": "f", "arguments": '{"a":1}'},
    }
    out = parse([chunk(delta=delta), finish("tool_calls")])
    assert call_dicts(out.response.tool_calls) == [("call_a", "f", '{"a":1}')]


def test_a_lone_legacy_function_call_is_handled_as_a_call() -> None:
    out = parse(
        [
            chunk(delta={"function_call": {"name": "f", "arguments": ""}}),
            chunk(delta={"function_call": {"arguments": '{"a":'}}),
            chunk(delta={"function_call": {"arguments": "1}"}}),
            finish("function_call"),
        ]
    )
    assert call_dicts(out.response.tool_calls) == [("tool-call-0", "f", '{"a":1}')]
    assert out.kinds == [
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "FunctionCallArgumentsDelta",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]


def test_a_call_that_never_got_a_name_is_dropped() -> None:
    out = parse(
        [calls(frag(0, "anon", None, "{}")), calls(frag(1, "b", "b", "{}")), finish("tool_calls")]
    )
    assert call_dicts(out.response.tool_calls) == [("b", "b", "{}")]
    assert out.response.incomplete_tool_calls == ()


# --- tool calls: when they are completed -----------------------------------------------


def test_on_tool_calls_reasoning_then_every_call_is_finished_and_the_message_at_the_end() -> None:
    out = parse(
        [
            chunk(delta={"reasoning": "r"}),
            chunk("t"),
            calls(frag(0, "a", "fa", "{}"), frag(1, "b", "fb", "{}")),
            finish("tool_calls"),
        ]
    )
    assert out.kinds == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "OutputItemDone(Reasoning)",
        "OutputItemDone(FunctionCall)",
        "OutputItemDone(FunctionCall)",
        "OutputItemDone(Message)",
        "Completed",
    ]
    assert [c.call_id for c in out.done_calls] == ["a", "b"]


@pytest.mark.parametrize("arguments", ['{}{"a":1}', '{"q": "tru', "not json", "[1, 2"])
def test_on_tool_calls_arguments_that_are_not_json_are_delivered_raw(arguments: str) -> None:
    # A.18: the raw text, unchanged; no exception.
    out = parse([calls(frag(0, "c", "f", arguments)), finish("tool_calls")])
    assert out.error is None
    assert call_dicts(out.done_calls) == [("c", "f", arguments)]


@pytest.mark.parametrize("reason", ["stop", "end_turn", "eos"])
@pytest.mark.parametrize("arguments", ["", "{}", '{"a": [1, 2]}'])
def test_on_another_finish_reason_a_call_with_whole_arguments_is_completed(
    reason: str, arguments: str
) -> None:
    # Ollama, Gemini and sometimes OpenAI end finished calls with "stop".
    out = parse([chunk("t"), calls(frag(0, "c", "f", arguments)), finish(reason)])
    assert call_dicts(out.done_calls) == [("c", "f", arguments)]
    assert out.kinds == [
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputItemAdded(FunctionCall)",
        *(["FunctionCallArgumentsDelta"] if arguments else []),
        "OutputItemDone(Message)",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]
    assert out.response.incomplete_tool_calls == ()


def custom(
    index: int | None = None, id: str | None = None, name: str | None = None, text: str = ""
) -> dict[str, Any]:
    """One fragment of a custom (free-text) tool call."""
    out: dict[str, Any] = {"type": "custom", "custom": {"input": text}}
    if index is not None:
        out["index"] = index
    if id is not None:
        out["id"] = id
    if name is not None:
        out["custom"]["name"] = name
    return out


def test_a_custom_tool_call_merges_its_input_like_arguments() -> None:
    out = parse(
        [
            calls(custom(0, "c", "shell", "ls -")),
            calls(custom(0, text="la /")),
            calls(custom(0, text="tmp")),
            finish("tool_calls"),
        ]
    )
    assert out.done_calls == [FunctionCall("shell", "ls -la /tmp", "c", custom=True)]


@pytest.mark.parametrize("reason", ["stop", "end_turn"])
def test_a_custom_call_whose_input_is_not_json_is_completed_on_a_normal_finish(reason: str) -> None:
    out = parse([calls(custom(0, "c", "shell", "echo {")), finish(reason)])
    assert out.done_calls == [FunctionCall("shell", "echo {", "c", custom=True)]


def test_a_custom_call_cut_by_length_is_incomplete() -> None:
    out = parse([calls(custom(0, "c", "shell", '{"a": 1}')), finish("length")])
    assert out.done_calls == []
    assert out.response.incomplete_tool_calls == (
        FunctionCall("shell", '{"a": 1}', "c", custom=True),
    )


def test_function_and_custom_calls_in_one_delta_are_two_calls() -> None:
    out = parse([calls(frag(0, "a", "f", "{}"), custom(1, "b", "g", "raw")), finish("tool_calls")])
    assert out.done_calls == [
        FunctionCall("f", "{}", "a"),
        FunctionCall("g", "raw", "b", custom=True),
    ]


def test_on_stop_a_cut_off_call_is_reported_incomplete_not_completed() -> None:
    # A.19
    out = parse([calls(frag(0, "c", "f", '{"q": "tru')), calls(frag(1, "d", "g", "{}")), finish()])
    assert out.error is None
    assert call_dicts(out.response.tool_calls) == [("d", "g", "{}")]
    assert call_dicts(out.response.incomplete_tool_calls) == [("c", "f", '{"q": "tru')]


def test_done_without_a_finish_reason_completes_whole_calls_only() -> None:
    out = parse([calls(frag(0, "a", "f", "{}")), calls(frag(1, "b", "g", "{"))], done=True)
    assert out.error is None
    assert call_dicts(out.response.tool_calls) == [("a", "f", "{}")]
    assert call_dicts(out.response.incomplete_tool_calls) == [("b", "g", "{")]


def test_end_of_input_after_a_finish_reason_completes_calls_received_after_it() -> None:
    out = parse([finish(), calls(frag(0, "a", "f", "{}"))], done=False)
    assert out.error is None
    assert call_dicts(out.response.tool_calls) == [("a", "f", "{}")]


def test_end_of_input_while_a_call_is_partial_is_an_incomplete_stream_keeping_the_call() -> None:
    # A.19: EOF with neither [DONE] nor a finish reason.
    out = parse([chunk("t"), calls(frag(0, "a", "f", '{"x": 1}'))], done=False)
    assert isinstance(out.error, IncompleteStreamError)
    assert out.done_calls == []
    assert call_dicts(out.response.incomplete_tool_calls) == [("a", "f", '{"x": 1}')]
    assert out.response.content == "t"


ENDINGS_IN_ERROR = {
    "finish-error": [finish("error")],
    "error-chunk": [{"error": {"message": "boom"}}],
    "error-event": b'event: error\ndata: {"message": "boom"}\n\n',
    "eof": [],
}


@pytest.mark.parametrize("ending", ENDINGS_IN_ERROR, ids=list(ENDINGS_IN_ERROR))
def test_no_call_is_completed_when_the_stream_ends_in_an_error(ending: str) -> None:
    head = build_body([calls(frag(0, "a", "f", "{}"))], event=None)
    tail = ENDINGS_IN_ERROR[ending]
    body = head + (tail if isinstance(tail, bytes) else build_body(tail, event=None))
    out = parse_body(body)
    assert out.error is not None
    assert out.done_calls == []
    assert out.response.tool_calls == ()
    assert call_dicts(out.response.incomplete_tool_calls) == [("a", "f", "{}")]
    assert out.error.partial is not None
    assert out.error.partial.incomplete_tool_calls == out.response.incomplete_tool_calls


# --- usage -----------------------------------------------------------------------------

FULL_USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 20,
    "total_tokens": 30,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 7},
}


def test_usage_fields_are_normalised() -> None:
    out = parse([chunk("t"), finish(usage=FULL_USAGE)])
    assert out.response.usage == TokenUsage(
        input_tokens=10,
        cached_input_tokens=4,
        output_tokens=20,
        reasoning_output_tokens=7,
        total_tokens=30,
        prompt_tokens_details={"cached_tokens": 4},
        completion_tokens_details={"reasoning_tokens": 7},
    )


def test_completed_carries_the_usage_and_the_response_id() -> None:
    out = parse([chunk("t"), finish(usage=FULL_USAGE)])
    assert isinstance(out.events[-1], Completed)
    assert out.events[-1].response_id == "chatcmpl-1"
    assert out.events[-1].token_usage == out.response.usage


def test_total_tokens_absent_is_the_sum_of_input_and_output() -> None:
    out = parse([finish(usage={"prompt_tokens": 3, "completion_tokens": 4})])
    assert out.response.usage is not None
    assert out.response.usage.total_tokens == 7


def test_null_counts_are_zero() -> None:
    usage = {
        "prompt_tokens": None,
        "completion_tokens": 5,
        "total_tokens": 5,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    out = parse([finish(usage=usage)])
    assert out.response.usage is not None
    assert out.response.usage.counts() == TokenUsage(0, 0, 5, 0, 5).counts()


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        ({"prompt_tokens_details": {"cached_tokens": 4}}, 4),
        ({"cached_tokens": 5}, 5),  # Moonshot
        ({"prompt_cache_hit_tokens": 6}, 6),  # DeepSeek
        ({"prompt_tokens_details": {"cached_tokens": 4}, "cached_tokens": 5}, 4),
        ({"cached_tokens": 5, "prompt_cache_hit_tokens": 6}, 5),
        ({"prompt_tokens_details": {"cached_tokens": None}, "prompt_cache_hit_tokens": 6}, 6),
        ({}, 0),
    ],
    ids=["details", "top-level", "cache-hit", "details-first", "top-level-first", "null", "none"],
)
def test_cached_input_tokens_come_from_the_first_field_present(
    usage: dict[str, Any], cached: int
) -> None:
    out = parse([finish(usage={"prompt_tokens": 10, "completion_tokens": 1, **usage})])
    assert out.response.usage is not None
    assert out.response.usage.cached_input_tokens == cached


def test_the_last_non_null_usage_wins() -> None:
    out = parse(
        [
            chunk("a", usage={"prompt_tokens": 1, "completion_tokens": 1}),
            chunk("b", usage={"prompt_tokens": 1, "completion_tokens": 2}),
            {**chunk("c"), "usage": None},  # present as null, not absent
            finish(),
        ]
    )
    assert out.response.usage == TokenUsage(1, 0, 2, 0, 3)


def test_usage_on_a_chunk_with_empty_choices_after_the_finish_counts() -> None:
    trailing = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    out = parse([chunk("t"), finish(), trailing])
    assert out.response.usage == TokenUsage(2, 0, 0, 0, 2)
    assert isinstance(out.events[-1], Completed)
    assert out.events[-1].token_usage == out.response.usage


def test_groq_x_groq_usage_counts_when_there_is_no_top_level_usage() -> None:
    out = parse([finish(x_groq={"id": "req", "usage": {"prompt_tokens": 9}})])
    assert out.response.usage == TokenUsage(9, 0, 0, 0, 9)


def test_a_top_level_usage_wins_over_x_groq() -> None:
    out = parse([finish(usage={"prompt_tokens": 1}, x_groq={"usage": {"prompt_tokens": 9}})])
    assert out.response.usage == TokenUsage(1, 0, 0, 0, 1)


def test_no_usage_is_none() -> None:
    assert parse([chunk("t"), finish()]).response.usage is None


# --- how a stream ends -----------------------------------------------------------------


@pytest.mark.parametrize("sentinel", [b"[DONE]", b"DONE", b" [DONE] "])
def test_the_done_sentinel_ends_the_stream_normally(sentinel: bytes) -> None:
    body = build_body([chunk("t")], event=None) + b"data: " + sentinel + b"\n\n"
    out = parse_body(body)
    assert out.error is None
    assert out.kinds[-2:] == ["OutputItemDone(Message)", "Completed"]


def test_input_after_done_is_ignored() -> None:
    # A.13: junk after [DONE], and a connection held open, change nothing.
    body = build_body([chunk("t")], event=None, done=True) + b'data: {"choices": [{\n\ngarbage'
    parser = StreamParser()
    events = parser.feed(body)
    assert isinstance(events[-1], Completed)
    assert parser.ended
    assert parser.feed(build_body([chunk("more")])) == []
    assert parser.close() == []
    assert parser.result().content == "t"


def test_end_of_input_after_a_finish_reason_ends_the_stream_normally() -> None:
    out = parse([chunk("t"), finish()], done=False)
    assert out.error is None
    assert isinstance(out.events[-1], Completed)


def test_end_of_input_without_done_or_finish_is_an_incomplete_stream_keeping_everything() -> None:
    out = parse(
        [chunk(delta={"reasoning": "r"}), chunk("t", usage={"prompt_tokens": 1})], done=False
    )
    assert isinstance(out.error, IncompleteStreamError)
    assert out.error.kind == "incomplete_stream"
    assert not any(isinstance(e, Completed) for e in out.events)
    assert (out.response.reasoning, out.response.content) == ("r", "t")
    assert out.response.usage == TokenUsage(1, 0, 0, 0, 1)
    assert out.error.partial == out.response


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_a_cut_short_finish_ends_normally_keeping_the_text_and_the_trailing_usage(
    reason: str,
) -> None:
    trailing = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 8}}
    out = parse([chunk("cut"), finish(reason), trailing])
    assert out.error is None
    assert out.kinds[-3:] == ["OutputTextDelta", "OutputItemDone(Message)", "Completed"]
    assert out.response.content == "cut"
    assert out.response.finish_reason == reason
    assert out.response.truncated
    assert out.events[-1] == Completed("chatcmpl-1", TokenUsage(5, 0, 8, 0, 13))


def test_a_stop_finish_is_not_truncated() -> None:
    assert not parse([chunk("whole"), finish("stop")]).response.truncated


def test_length_keeps_finished_calls_and_reports_cut_ones_as_incomplete() -> None:
    out = parse(
        [
            calls(frag(0, "a", "f", '{"x": 1}'), frag(1, "b", "g", '{"y": ')),
            finish("length"),
        ]
    )
    assert out.error is None
    assert call_dicts(out.response.tool_calls) == [("a", "f", '{"x": 1}')]
    assert call_dicts(out.response.incomplete_tool_calls) == [("b", "g", '{"y": ')]


def test_length_is_context_window_exceeded_in_the_specifications_mode() -> None:
    trailing = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 8}}
    out = parse(
        [chunk("cut"), finish("length"), trailing], options=StreamOptions(length_is_error=True)
    )
    assert isinstance(out.error, ContextWindowExceeded)
    assert out.error.kind == "context_window_exceeded"
    assert out.response.content == "cut"
    assert out.response.finish_reason == "length"
    assert out.response.usage == TokenUsage(5, 0, 8, 0, 13)
    assert not any(isinstance(e, Completed) for e in out.events)


def test_content_filter_is_not_an_error_in_the_specifications_mode() -> None:
    out = parse(
        [chunk("so"), finish("content_filter")], options=StreamOptions(length_is_error=True)
    )
    assert out.error is None
    assert out.response.truncated


def test_finish_reason_error_without_an_error_object_is_a_provider_error() -> None:
    out = parse([chunk("so far"), finish("error")])
    assert isinstance(out.error, ProviderError)
    assert out.error.kind == "provider_error"
    assert "finish_reason" in out.error.message
    assert out.response.content == "so far"
    assert not any(isinstance(e, Completed) for e in out.events)


@pytest.mark.parametrize(
    "extra",
    [[finish()], [chunk()], [chunk("", finish="stop")]],
    ids=["same-finish-chunk", "empty-delta", "empty-content-and-finish"],
)
def test_a_duplicated_final_chunk_gives_exactly_one_completed(extra: list[Any]) -> None:
    # A.14
    out = parse([chunk("t"), finish(), *extra])
    assert out.kinds.count("Completed") == 1
    assert out.kinds.count("OutputItemDone(Message)") == 1
    assert out.response.finish_reason == "stop"


def test_old_ollamas_empty_finish_reason_is_no_finish_reason() -> None:
    out = parse([chunk("a", finish=""), chunk("b", finish="")], done=False)
    assert isinstance(out.error, IncompleteStreamError)
    assert out.response.finish_reason is None


def test_a_last_event_without_its_closing_blank_line_is_read() -> None:
    out = parse_body(b'data: {"choices":[{"delta":{"content":"t"},"finish_reason":"stop"}]}')
    assert out.error is None
    assert out.response.content == "t"


def test_the_finish_reason_is_reported_as_sent() -> None:
    assert parse([chunk("t"), finish("end_turn")]).response.finish_reason == "end_turn"


def test_response_id_and_model_are_the_first_non_empty_ones() -> None:
    out = parse(
        [
            {"id": "", "model": "", "choices": []},
            {"id": "first", "model": "m1", "choices": []},
            {"id": "second", "model": "m2", "choices": []},
        ]
    )
    assert (out.response.response_id, out.response.model) == ("first", "m1")


# --- provider errors (A.8, A.9) --------------------------------------------------------


def test_an_event_error_frame_is_a_provider_error_keeping_earlier_deltas() -> None:
    body = build_body([chunk("a"), chunk("b")], event=None) + (
        b"event: error\n"
        b'data: {"error":{"message":"m","type":"server_error","code":"c","param":"p"}}\n\n'
    )
    out = parse_body(body)
    assert isinstance(out.error, ProviderError)
    assert out.error.kind == "provider_error"
    assert (out.error.type, out.error.code, out.error.param) == ("server_error", "c", "p")
    assert "m" in out.error.message
    assert out.response.content == "ab"
    assert not any(isinstance(e, Completed) for e in out.events)


def test_an_event_error_frame_whose_data_is_not_json_is_a_provider_error_with_that_text() -> None:
    out = parse_body(b"event: error\ndata: upstream timed out\n\n")
    assert isinstance(out.error, ProviderError)
    assert "upstream timed out" in out.error.message


@pytest.mark.parametrize(
    ("payload", "message", "type_", "code"),
    [
        ({"error": {"message": "m", "type": "t", "code": 429}}, "m", "t", 429),
        ({"error": "plain string"}, "plain string", None, None),
        ({"type": "error", "message": "m2"}, "m2", "error", None),
        (
            {"type": "error", "error": {"message": "m3", "type": "overloaded"}},
            "m3",
            "overloaded",
            None,
        ),
    ],
    ids=["error-object", "error-string", "type-error", "type-error-nested"],
)
def test_in_band_error_shapes_are_provider_errors(
    payload: dict[str, Any], message: str, type_: str | None, code: int | None
) -> None:
    out = parse([chunk("kept"), payload, chunk("after")])
    assert isinstance(out.error, ProviderError)
    assert message in out.error.message
    assert (out.error.type, out.error.code) == (type_, code)
    assert out.error.payload == payload
    assert out.response.content == "kept"


def test_a_null_error_field_is_processed_normally() -> None:
    out = parse([{"error": None, "choices": [{"index": 0, "delta": {"content": "ok"}}]}, finish()])
    assert out.error is None
    assert out.response.content == "ok"


def test_an_error_chunks_deltas_are_kept_but_its_finish_reason_is_not_applied() -> None:
    payload = {
        "error": {"message": "m"},
        "choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}],
    }
    out = parse([chunk("a"), payload])
    assert isinstance(out.error, ProviderError)
    assert out.response.content == "ax"
    assert not any(isinstance(e, OutputItemDone) for e in out.events)


# --- skipped input (A.7) and shapes that must not crash (A.20) -------------------------


@pytest.mark.parametrize(
    "data",
    [b"ping", b"{'choices': []}", b"42", b'"text"', b"[1, 2]", b"null", b"{", b"NaN"],
)
def test_data_that_is_not_a_json_object_is_skipped_and_counted(data: bytes) -> None:
    body = (
        build_body([chunk("a")], event=None)
        + b"data: "
        + data
        + b"\n\n"
        + build_body([chunk("b"), finish()], event=None, done=True)
    )
    out = parse_body(body)
    assert out.error is None
    assert out.response.content == "ab"
    assert out.response.skipped_events == 1


def test_deeply_nested_json_data_is_skipped_not_raised() -> None:
    # Regression: json.loads raises RecursionError (not ValueError) on deep nesting.
    body = b"data: " + b"[" * 100_000 + b"\n\n" + build_body([chunk("t"), finish()], event=None)
    out = parse_body(body)
    assert out.error is None
    assert out.response.content == "t"
    assert out.response.skipped_events == 1


def test_deeply_nested_tool_call_arguments_do_not_raise() -> None:
    # Regression: checking whether the arguments are whole JSON must not raise either.
    arguments = "[" * 100_000 + "]" * 100_000
    out = parse([calls(frag(0, "c", "f", arguments)), finish()])
    assert out.error is None
    assert [len(c.arguments) for c in out.response.incomplete_tool_calls] == [200_000]


@pytest.mark.parametrize(
    ("head", "tail"), [(b'data: {"error": ', b"}"), (b"event: error\ndata: ", b"")]
)
def test_an_error_nested_as_deeply_as_json_can_read_does_not_raise(
    head: bytes, tail: bytes
) -> None:
    # Regression: an error whose detail json.loads could just read (nested right up to
    # the recursion limit) made json.dumps raise RecursionError when building the
    # message. Every depth near the limit is tried, since where the edge lies depends on
    # the depth of the stack (which is far below 400 frames here).
    limit = sys.getrecursionlimit()
    for depth in range(max(0, limit - 400), limit + 10):
        body = head + b"[" * depth + b"]" * depth + tail + b"\n\n"
        out = parse_body(body)
        assert out.error is not None or out.response.skipped_events == 1


def test_the_skipped_count_of_the_response_so_far_is_current() -> None:
    # Regression: the count was bumped behind the response cache's back.
    parser = StreamParser()
    parser.feed(build_body([chunk("a")]))
    assert parser.response.skipped_events == 0
    parser.feed(b"data: ping\n\n")
    assert parser.response.skipped_events == 1


def test_chunks_whose_choices_are_not_a_list_are_ignored() -> None:
    out = parse([chunk("a"), {"choices": {"0": {"delta": {"content": "x"}}}}, finish()])
    assert out.response.content == "a"


@pytest.mark.parametrize(
    "odd",
    [
        {"choices": [], "usage": {"prompt_tokens": 1}},
        {"choices": None},
        {},
        {"choices": [{"index": 0, "delta": None}]},
        {"choices": [{"index": 0}]},
        {"choices": [{"index": 0, "delta": {"content": []}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": None}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_details": None}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": None}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": []}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [None, 1, "x"]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": None}]}}]},
        {"choices": [{"index": 0, "delta": {"content": [None, {"type": "thinking"}]}}]},
        {"choices": [None, 3, "x"]},
        {"choices": [{"index": "0", "delta": {"content": 5}}]},
        {"choices": [{"index": 0, "delta": {"content": None}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}}], "usage": "lots", "x_groq": None},
        {"choices": [{"index": 0, "delta": {"refusal": None}}]},
    ],
)
def test_odd_but_harmless_shapes_change_nothing(odd: dict[str, Any]) -> None:
    out = parse([chunk("a"), odd, chunk("b"), finish()])
    assert out.error is None
    assert out.response.content == "ab"
    assert out.response.reasoning == ""
    assert out.response.tool_calls == ()


# --- several choices (A.21) ------------------------------------------------------------


def test_choices_interleaved_are_accumulated_apart_with_their_index_on_events() -> None:
    out = parse(
        [
            chunk("a0", index=0),
            chunk("b0", index=1),
            calls(frag(0, "c1", "f", "{}"), index=1),
            chunk("a1", index=0),
            finish("stop", index=0),
            finish("tool_calls", index=1),
        ]
    )
    assert [(c.index, c.content, c.finish_reason) for c in out.response.choices] == [
        (0, "a0a1", "stop"),
        (1, "b0", "tool_calls"),
    ]
    assert out.response.choices[1].tool_calls == (FunctionCall("f", "{}", "c1"),)
    deltas = [e for e in out.events if isinstance(e, OutputTextDelta)]
    assert [(e.delta, e.choice_index) for e in deltas] == [("a0", 0), ("b0", 1), ("a1", 0)]
    added = [e.choice_index for e in out.events if isinstance(e, OutputItemAdded)]
    assert added == [0, 1, 1]
    assert out.kinds.count("Completed") == 1


def test_the_shortcuts_of_the_response_are_choice_zeros() -> None:
    out = parse([chunk("one", index=1), chunk("zero", index=0), finish(index=0), finish(index=1)])
    assert out.response.content == "zero"
    assert [c.index for c in out.response.choices] == [0, 1]


def test_a_choice_without_an_index_takes_its_position() -> None:
    both = {"choices": [{"delta": {"content": "x"}}, {"delta": {"content": "y"}}]}
    out = parse([both, finish()])
    assert [c.content for c in out.response.choices] == ["x", "y"]


# --- the Accumulator on its own --------------------------------------------------------


def test_the_accumulator_skips_and_counts_anything_but_an_object() -> None:
    acc = Accumulator()
    assert acc.feed([1]) == []
    assert acc.feed("x") == []
    assert acc.response.skipped_events == 2


@pytest.mark.parametrize("name", corpus_names())
def test_chunks_given_as_other_mappings_reduce_as_dicts_do(name: str) -> None:
    # json.loads(..., object_pairs_hook=OrderedDict) at every level, against plain dicts.
    decoder = SSEDecoder()
    messages = decoder.feed((CORPUS / f"{name}.sse").read_bytes()) + decoder.close()
    plain, ordered = Accumulator(), Accumulator()
    got: list[list[ResponseEvent]] = [[], []]
    for message in messages:
        data = message.data.strip()
        if data in ("[DONE]", "DONE"):
            break
        try:
            chunks = json.loads(data), json.loads(data, object_pairs_hook=OrderedDict)
        except ValueError:
            chunks = data, data
        got[0] += plain.feed(chunks[0], event=message.event)
        got[1] += ordered.feed(chunks[1], event=message.event)
    got[0] += plain.finish(done=True)
    got[1] += ordered.finish(done=True)
    assert got[1] == got[0]
    assert ordered.response == plain.response
    assert ordered.response.skipped_events == plain.response.skipped_events


def test_the_accumulator_ignores_input_once_ended() -> None:
    acc = Accumulator()
    acc.feed(chunk("a"))
    events = acc.finish(done=True)
    assert isinstance(events[-1], Completed)
    assert acc.feed(chunk("b")) == []
    assert acc.finish(done=True) == []
    assert acc.response.content == "a"


def test_failing_the_accumulator_keeps_what_arrived_in_the_errors_partial() -> None:
    acc = Accumulator()
    acc.feed(chunk("a"))
    error = acc.fail(StreamClosedError("closed"))
    assert acc.ended and acc.error is error
    assert error.partial is not None and error.partial.content == "a"
    assert acc.fail(StreamClosedError("again")) is error


def test_all_choices_finished_once_every_choice_seen_has_a_finish_reason() -> None:
    acc = Accumulator()
    acc.feed(chunk("a", index=0))
    acc.feed(chunk("b", index=1))
    acc.feed(finish(index=0))
    assert not acc.all_choices_finished
    acc.feed(finish(index=1))
    assert acc.all_choices_finished


def test_the_same_chunks_always_give_the_same_events() -> None:
    chunks = [chunk(delta={"reasoning": "r"}), chunk("t"), calls(frag(0, "c", "f", "{}")), finish()]
    first = parse(chunks)
    again = parse(json.loads(json.dumps(chunks)))
    assert first.events == again.events


def test_a_response_without_a_choice_zero_cannot_be_changed_through_its_shortcuts() -> None:
    # Regression: the choice 0 stood in for such a response is shared; its tool calls
    # were a list, so appending to one response's changed every other's.
    first = parse([chunk("only choice 1", index=1), finish(index=1)]).response
    with pytest.raises(AttributeError):
        first.tool_calls.append(FunctionCall("f", "{}", "c"))  # type: ignore[attr-defined]
    assert Response().tool_calls == ()


# --- split surrogate pairs (issue 20, item 11) ---------------------------------------------

SPLIT_EMOJI = ["hi \ud83d", "\ude00!"]


def _surrogate_stream(
    kind: str, pieces: list[str], options: StreamOptions | None = None
) -> tuple[list[str], str]:
    """The deltas of ``kind`` a stream carrying ``pieces`` as that kind gives, and the
    finished text of that kind."""
    chunks: list[dict[str, Any]] = []
    for number, piece in enumerate(pieces):
        if kind == "text":
            chunks.append(chunk(piece))
        elif kind == "reasoning":
            chunks.append(chunk(reasoning=piece))
        elif kind == "refusal":
            chunks.append(chunk(delta={"refusal": piece}))
        else:
            head = {"id": "call_1", "function": {"name": "f", "arguments": piece}}
            fragment = head if number == 0 else {"function": {"arguments": piece}}
            chunks.append(chunk(tool_calls=[{"index": 0, **fragment}]))
    chunks.append(chunk(finish="tool_calls" if kind == "arguments" else "stop"))
    parser = StreamParser(options=options)
    events = parser.feed(build_body(chunks, done=True)) + parser.close()  # JSON-escaped halves
    result = parser.result()
    final = {
        "text": result.content,
        "reasoning": result.reasoning,
        "refusal": result.refusal or "",
        "arguments": result.tool_calls[0].arguments if result.tool_calls else "",
    }[kind]
    kinds_of = {
        "text": OutputTextDelta,
        "reasoning": ReasoningContentDelta,
        "refusal": RefusalDelta,
        "arguments": FunctionCallArgumentsDelta,
    }
    deltas = [e.delta for e in events if isinstance(e, kinds_of[kind])]  # type: ignore[attr-defined]
    return deltas, final


KINDS = ["text", "reasoning", "refusal", "arguments"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_emoji_split_across_two_deltas_reaches_consumers_whole(kind: str) -> None:
    deltas, final = _surrogate_stream(kind, SPLIT_EMOJI)
    assert final == "hi \U0001f600!"
    assert "".join(deltas) == final
    for delta in deltas:
        delta.encode()  # whole characters: no lone half of a pair


@pytest.mark.parametrize(
    "options", [StreamOptions(think_tags=True), StreamOptions(text_tool_calls=True)]
)
def test_an_emoji_split_across_two_deltas_is_whole_through_the_content_options(
    options: StreamOptions,
) -> None:
    deltas, final = _surrogate_stream("text", SPLIT_EMOJI, options)
    assert "".join(deltas) == final == "hi \U0001f600!"
    for delta in deltas:
        delta.encode()


@pytest.mark.parametrize("kind", KINDS)
def test_a_lone_half_at_the_end_becomes_a_replacement_character(kind: str) -> None:
    deltas, final = _surrogate_stream(kind, ["hi \ud83d"])
    assert "".join(deltas) == final == "hi \ufffd"


@pytest.mark.parametrize("kind", KINDS)
def test_a_lone_half_inside_a_delta_becomes_a_replacement_character(kind: str) -> None:
    deltas, final = _surrogate_stream(kind, ["a\udc00b", "\ud83dc"])
    assert "".join(deltas) == final == "a\ufffdb\ufffdc"


def test_a_lone_half_held_when_the_stream_fails_is_in_the_partial_as_a_replacement() -> None:
    parser = StreamParser()
    parser.feed(build_body([chunk("hi \ud83d")]))
    parser.close()
    assert parser.error is not None and parser.error.partial is not None
    assert parser.error.partial.content == "hi \ufffd"


# --- raw chunks are the caller's own (issue 20, item 12) ------------------------------------


def test_a_raw_chunk_cannot_be_changed_and_shares_nothing_with_the_result() -> None:
    citations = ["https://a.example"]
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = build_body(
        [chunk("Hi", citations=citations), chunk(finish="stop", usage=usage, citations=citations)],
        done=True,
    )
    parser = StreamParser(options=StreamOptions(raw_chunks=True))
    for event in parser.feed(body):
        if isinstance(event, RawChunk):  # what an on_event callback may try on it
            if "usage" in event.chunk:
                with pytest.raises(TypeError):
                    event.chunk["usage"]["prompt_tokens"] = 999
            with pytest.raises(TypeError):
                event.chunk["citations"].append("https://evil.example")
            with pytest.raises(TypeError):
                event.chunk["choices"][0]["delta"]["content"] = "changed"
    parser.close()
    result = parser.result()
    assert result.usage is not None and result.usage.input_tokens == 3
    assert result.citations == ["https://a.example"]
    assert result.content == "Hi"

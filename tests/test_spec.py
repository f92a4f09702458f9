"""The specification's own tests (``mod tests`` of the Chat Completions reducer), one to
one: same names, same bodies, same assertions on event order."""

from __future__ import annotations

from chatstream import (
    Completed,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    Reasoning,
    ReasoningContentDelta,
    StreamOptions,
    StreamParser,
)

from .helpers import build_body, kinds, without_live_views
from .helpers import collect_events as collect_all_events


def collect_events(body: bytes, **options: object) -> list[object]:
    """The events the specification emits: chatstream's live views of tool calls (which
    the specification does not have) left out, the order of the others kept."""
    return without_live_views(collect_all_events(body, **options))


def test_completes_on_done_sentinel_without_json() -> None:
    events = collect_events(b"event: message\ndata: [DONE]\n\n")
    assert kinds(events) == ["Completed"]


def test_concatenates_tool_call_arguments_across_deltas() -> None:
    delta_name = {
        "choices": [
            {"delta": {"tool_calls": [{"id": "call_a", "index": 0, "function": {"name": "do_a"}}]}}
        ]
    }
    delta_args_1 = {
        "choices": [
            {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{ "foo":'}}]}}
        ]
    }
    delta_args_2 = {
        "choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]
    }
    finish = {"choices": [{"finish_reason": "tool_calls"}]}
    events = collect_events(build_body([delta_name, delta_args_1, delta_args_2, finish]))
    assert kinds(events) == ["OutputItemDone(FunctionCall)", "Completed"]
    call = events[0].item  # type: ignore[union-attr]
    assert call == FunctionCall(name="do_a", arguments='{ "foo":1}', call_id="call_a")


def test_emits_multiple_tool_calls() -> None:
    delta_a = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"id": "call_a", "function": {"name": "do_a", "arguments": '{"foo":1}'}}
                    ]
                }
            }
        ]
    }
    delta_b = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"id": "call_b", "function": {"name": "do_b", "arguments": '{"bar":2}'}}
                    ]
                }
            }
        ]
    }
    finish = {"choices": [{"finish_reason": "tool_calls"}]}
    events = collect_events(build_body([delta_a, delta_b, finish]))
    assert kinds(events) == [
        "OutputItemDone(FunctionCall)",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]
    assert events[0].item == FunctionCall("do_a", '{"foo":1}', "call_a")  # type: ignore[union-attr]
    assert events[1].item == FunctionCall("do_b", '{"bar":2}', "call_b")  # type: ignore[union-attr]


def test_emits_tool_calls_for_multiple_choices() -> None:
    payload = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "index": 0,
                            "function": {"name": "do_a", "arguments": "{}"},
                        }
                    ]
                },
                "finish_reason": "tool_calls",
            },
            {
                "delta": {
                    "tool_calls": [
                        {
                            "id": "call_b",
                            "index": 0,
                            "function": {"name": "do_b", "arguments": "{}"},
                        }
                    ]
                },
                "finish_reason": "tool_calls",
            },
        ]
    }
    events = collect_events(build_body([payload]))
    assert kinds(events) == [
        "OutputItemDone(FunctionCall)",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]
    assert events[0].item == FunctionCall("do_a", "{}", "call_a")  # type: ignore[union-attr]
    assert events[1].item == FunctionCall("do_b", "{}", "call_b")  # type: ignore[union-attr]
    # chatstream keeps each choice apart and says which one an event belongs to.
    assert [e.choice_index for e in events[:2]] == [0, 1]  # type: ignore[union-attr]


def test_merges_tool_calls_by_index_when_id_missing_on_subsequent_deltas() -> None:
    delta_with_id = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "function": {"name": "do_a", "arguments": '{ "foo":'},
                        }
                    ]
                }
            }
        ]
    }
    delta_without_id = {
        "choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]
    }
    finish = {"choices": [{"finish_reason": "tool_calls"}]}
    events = collect_events(build_body([delta_with_id, delta_without_id, finish]))
    assert kinds(events) == ["OutputItemDone(FunctionCall)", "Completed"]
    assert events[0].item == FunctionCall("do_a", '{ "foo":1}', "call_a")  # type: ignore[union-attr]


def test_preserves_tool_call_name_when_empty_deltas_arrive() -> None:
    delta_with_name = {
        "choices": [{"delta": {"tool_calls": [{"id": "call_a", "function": {"name": "do_a"}}]}}]
    }
    delta_with_empty_name = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [{"id": "call_a", "function": {"name": "", "arguments": "{}"}}]
                }
            }
        ]
    }
    finish = {"choices": [{"finish_reason": "tool_calls"}]}
    events = collect_events(build_body([delta_with_name, delta_with_empty_name, finish]))
    assert kinds(events) == ["OutputItemDone(FunctionCall)", "Completed"]
    call = events[0].item  # type: ignore[union-attr]
    assert isinstance(call, FunctionCall)
    assert (call.name, call.arguments) == ("do_a", "{}")


def test_emits_tool_calls_even_when_content_and_reasoning_present() -> None:
    delta_content_and_tools = {
        "choices": [
            {
                "delta": {
                    "content": [{"text": "hi"}],
                    "reasoning": "because",
                    "tool_calls": [
                        {"id": "call_a", "function": {"name": "do_a", "arguments": "{}"}}
                    ],
                }
            }
        ]
    }
    finish = {"choices": [{"finish_reason": "tool_calls"}]}
    events = collect_events(build_body([delta_content_and_tools, finish]))
    assert kinds(events) == [
        "OutputItemAdded(Reasoning)",
        "ReasoningContentDelta",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputItemDone(Reasoning)",
        "OutputItemDone(FunctionCall)",
        "OutputItemDone(Message)",
        "Completed",
    ]
    assert events[1] == ReasoningContentDelta("because", 0)
    assert events[3] == OutputTextDelta("hi")
    call = events[5].item  # type: ignore[union-attr]
    assert isinstance(call, FunctionCall)
    assert (call.call_id, call.name) == ("call_a", "do_a")
    assert isinstance(events[0], OutputItemAdded) and isinstance(events[0].item, Reasoning)
    assert isinstance(events[6], OutputItemDone) and isinstance(events[6].item, Message)


def _tool_then_stop() -> bytes:
    delta_tool = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"id": "call_a", "function": {"name": "do_a", "arguments": "{}"}}
                    ]
                }
            }
        ]
    }
    finish_stop = {"choices": [{"finish_reason": "stop"}]}
    return build_body([delta_tool, finish_stop])


def test_drops_partial_tool_calls_on_stop_finish_reason() -> None:
    # The specification's rule, restored by its option.
    events = collect_events(_tool_then_stop(), options=StreamOptions(drop_tool_calls_on_stop=True))
    assert not any(
        isinstance(e, OutputItemDone) and isinstance(e.item, FunctionCall) for e in events
    )
    assert isinstance(events[-1], Completed)


def test_keeps_finished_tool_calls_on_stop_finish_reason_by_default() -> None:
    # The default (conformance README): a call whose arguments are whole is kept, since
    # Ollama, Gemini and sometimes OpenAI finish tool calls with "stop".
    events = collect_events(_tool_then_stop())
    assert kinds(events) == ["OutputItemDone(FunctionCall)", "Completed"]
    assert events[0].item == FunctionCall("do_a", "{}", "call_a")  # type: ignore[union-attr]


def test_reports_cut_off_tool_call_on_stop_as_incomplete() -> None:
    delta_tool = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"id": "call_a", "function": {"name": "do_a", "arguments": '{"q": "tru'}}
                    ]
                }
            }
        ]
    }
    finish_stop = {"choices": [{"finish_reason": "stop"}]}
    parser = StreamParser()
    events = parser.feed(build_body([delta_tool, finish_stop])) + parser.close()
    assert kinds(without_live_views(events)) == ["Completed"]
    # chatstream's own: the announced call ends with an event that says it was cut off.
    assert kinds(events) == [
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "OutputItemIncomplete(FunctionCall)",
        "Completed",
    ]
    response = parser.result()
    assert response.tool_calls == ()
    assert response.incomplete_tool_calls == (FunctionCall("do_a", '{"q": "tru', "call_a"),)

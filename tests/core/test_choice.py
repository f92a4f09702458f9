"""Tool calls as they stream: announced when named, arguments piece by piece, ended whole
or incomplete (sans-I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatstream import (
    FunctionCall,
    FunctionCallArgumentsDelta,
    LimitExceededError,
    Limits,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    ProviderError,
    ResponseEvent,
    StreamOptions,
    StreamParser,
)

from ..helpers import build_body, chunk, kinds


def frag(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> Any:
    function: dict[str, Any] = {"arguments": args}
    if name is not None:
        function["name"] = name
    out: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        out["id"] = id
    return chunk(tool_calls=[out])


def events_of(chunks: list[dict[str, Any]], **options: Any) -> list[ResponseEvent]:
    parser = StreamParser(**options)
    return parser.feed(build_body(chunks)) + parser.close()


def deltas(events: list[ResponseEvent]) -> list[FunctionCallArgumentsDelta]:
    return [e for e in events if isinstance(e, FunctionCallArgumentsDelta)]


def test_a_call_is_announced_with_its_name_and_id_before_its_arguments_arrive() -> None:
    events = events_of([frag(0, id="call_1", name="write_file")])
    assert kinds(events[:1]) == ["OutputItemAdded(FunctionCall)"]
    assert events[0].item == FunctionCall("write_file", "", "call_1")  # type: ignore[union-attr]


def test_each_argument_fragment_is_a_delta_in_arrival_order() -> None:
    pieces = ['{"pa', 'th": "a', '.txt"}']
    chunks = [frag(0, id="c", name="f")] + [frag(0, args=p) for p in pieces]
    events = events_of([*chunks, chunk(finish="tool_calls")])
    assert [(d.call_id, d.delta, d.output_index) for d in deltas(events)] == [
        ("c", p, 0) for p in pieces
    ]


def test_fragments_before_the_name_follow_the_announcement_at_once() -> None:
    chunks = [frag(0, args='{"a"'), frag(0, args=": 1"), frag(0, id="c", name="f", args="}")]
    events = events_of([*chunks, chunk(finish="tool_calls")])
    assert kinds(events) == [
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "FunctionCallArgumentsDelta",
        "FunctionCallArgumentsDelta",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]
    assert [d.delta for d in deltas(events)] == ['{"a"', ": 1", "}"]


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20), st.integers(0, 25))
def test_the_deltas_of_a_call_join_to_exactly_its_final_arguments(
    pieces: list[str], named_at: int
) -> None:
    named_at = min(named_at, len(pieces) - 1)
    chunks = [
        frag(0, id="c" if i == named_at else None, name="f" if i == named_at else None, args=p)
        for i, p in enumerate(pieces)
    ]
    events = events_of([*chunks, chunk(finish="tool_calls")])
    done = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert [c.arguments for c in done] == ["".join(pieces)]  # type: ignore[union-attr]
    assert "".join(d.delta for d in deltas(events)) == "".join(pieces)


def test_parallel_calls_have_their_own_output_index() -> None:
    chunks = [
        frag(0, id="a", name="f", args="{"),
        frag(1, id="b", name="g", args="["),
        frag(0, args="}"),
        frag(1, args="]"),
        chunk(finish="tool_calls"),
    ]
    events = events_of(chunks)
    assert [(d.call_id, d.output_index, d.delta) for d in deltas(events)] == [
        ("a", 0, "{"),
        ("b", 1, "["),
        ("a", 0, "}"),
        ("b", 1, "]"),
    ]


def test_each_choice_announces_its_own_calls() -> None:
    def call(index: int) -> dict[str, Any]:
        fragment = {"index": 0, "id": f"c{index}", "function": {"name": "f", "arguments": "{}"}}
        return chunk(tool_calls=[fragment], index=index)

    events = events_of([call(0), call(1)], request=None)
    added = [(e.choice_index, e.item.call_id) for e in events if isinstance(e, OutputItemAdded)]
    assert added == [(0, "c0"), (1, "c1")]
    assert [(d.choice_index, d.output_index) for d in deltas(events)] == [(0, 0), (1, 0)]


def test_a_call_cut_off_at_a_normal_end_ends_with_an_incomplete_event() -> None:
    events = events_of([frag(0, id="c", name="f", args='{"q": "ca'), chunk(finish="stop")])
    assert kinds(events) == [
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "OutputItemIncomplete(FunctionCall)",
        "Completed",
    ]
    ended = events[2]
    assert isinstance(ended, OutputItemIncomplete)
    assert ended.item == FunctionCall("f", '{"q": "ca', "c")


def test_a_call_dropped_by_the_specifications_stop_rule_ends_as_incomplete() -> None:
    chunks = [frag(0, id="c", name="f", args="{}"), chunk(finish="stop")]
    events = events_of(chunks, options=StreamOptions(drop_tool_calls_on_stop=True))
    assert "OutputItemIncomplete(FunctionCall)" in kinds(events)
    assert "OutputItemDone(FunctionCall)" not in kinds(events)


def test_a_call_that_never_gets_a_name_is_never_announced() -> None:
    events = events_of([frag(0, args="{}"), chunk(finish="tool_calls")])
    assert kinds(events) == ["Completed"]


def test_a_failed_stream_sends_no_incomplete_event_and_lists_the_call_in_its_partial() -> None:
    body = build_body([frag(0, id="c", name="f", args="{"), {"error": {"message": "boom"}}])
    parser = StreamParser()
    events = parser.feed(body) + parser.close()
    assert kinds(events) == ["OutputItemAdded(FunctionCall)", "FunctionCallArgumentsDelta"]
    with pytest.raises(ProviderError) as caught:
        parser.result()
    assert caught.value.partial is not None
    assert caught.value.partial.incomplete_tool_calls == (FunctionCall("f", "{", "c"),)


def test_a_custom_tool_calls_input_streams_as_argument_deltas() -> None:
    def custom(text: str, **extra: Any) -> dict[str, Any]:
        fragment = {"index": 0, "type": "custom", "custom": {"input": text, **extra}}
        if "name" in extra:
            fragment["id"] = "ct"
        return chunk(tool_calls=[fragment])

    events = events_of(
        [custom("*** Begin", name="apply_patch"), custom(" Patch"), chunk(finish="tool_calls")],
        options=StreamOptions(partial_json=True),
    )
    assert events[0].item == FunctionCall("apply_patch", "", "ct", custom=True)  # type: ignore[union-attr]
    assert [(d.delta, d.parsed) for d in deltas(events)] == [("*** Begin", None), (" Patch", None)]
    done = events[-2]
    assert isinstance(done, OutputItemDone)
    assert done.item == FunctionCall("apply_patch", "*** Begin Patch", "ct", custom=True)


def test_without_partial_json_a_delta_has_no_view() -> None:
    events = events_of([frag(0, id="c", name="f", args='{"a": "b"}'), chunk(finish="tool_calls")])
    assert [d.parsed for d in deltas(events)] == [None]


def test_a_call_over_the_tool_call_limit_is_never_announced() -> None:
    chunks = [frag(0, id="a", name="f", args="{}"), frag(1, id="b", name="g", args="{}")]
    parser = StreamParser(limits=Limits(max_tool_calls=1))
    events = parser.feed(build_body(chunks)) + parser.close()
    added = [e.item.call_id for e in events if isinstance(e, OutputItemAdded)]
    assert added == ["a"]
    assert [d.call_id for d in deltas(events)] == ["a"]
    assert isinstance(parser.error, LimitExceededError)


def test_a_custom_call_cut_off_by_length_ends_with_an_incomplete_event() -> None:
    fragment = {
        "index": 0,
        "id": "ct",
        "type": "custom",
        "custom": {"name": "apply_patch", "input": "*** Begin"},
    }
    events = events_of([chunk(tool_calls=[fragment]), chunk(finish="length")])
    ended = [e for e in events if isinstance(e, OutputItemIncomplete)]
    assert [e.item for e in ended] == [FunctionCall("apply_patch", "*** Begin", "ct", custom=True)]
    assert "OutputItemDone(FunctionCall)" not in kinds(events)

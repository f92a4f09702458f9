"""Partial JSON views: what a view shows, that it only grows, that it is never taken for
the final value, and that it is refreshed geometrically (sans-I/O)."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatstream import (
    FunctionCallArgumentsDelta,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextParsed,
    StreamOptions,
    StreamParser,
)
from chatstream.core.partial_json import PartialJson, parse_partial

from ..helpers import build_body, chunk

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def grows(old: Any, new: Any) -> bool:
    """Whether ``new`` extends ``old``: same keys and more, strings longer, lists longer,
    and every other value unchanged."""
    if old is None:
        return True
    if isinstance(old, str):
        return isinstance(new, str) and new.startswith(old)
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and grows(v, new[k]) for k, v in old.items())
    if isinstance(old, list):
        return (
            isinstance(new, list)
            and len(new) >= len(old)
            and all(grows(v, w) for v, w in zip(old[:-1], new, strict=False))
            and (not old or grows(old[-1], new[len(old) - 1]))
        )
    return bool(old == new)


@given(JSON_VALUES.filter(lambda v: isinstance(v, (dict, list))), st.randoms())
def test_a_view_only_grows_and_ends_at_the_whole_value(value: Any, rng: random.Random) -> None:
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    view = PartialJson()
    seen: list[Any] = []
    i = 0
    while i < len(text):
        step = rng.randint(1, 9)
        view.append(text[i : i + step])
        seen.append(view.value)
        i += step
    for old, new in itertools.pairwise(seen):
        assert grows(old, new), (old, new)
    assert view.value == value  # a short text is parsed again at every piece


def test_unfinished_strings_show_as_far_as_they_go() -> None:
    assert parse_partial('{"path": "no') == {"path": "no"}


def test_a_number_shows_only_once_something_follows_it() -> None:
    assert parse_partial('{"n": 12') == {}
    assert parse_partial('{"n": 12,') == {"n": 12}
    assert parse_partial("[1, 2") == [1]


def test_an_unfinished_key_or_literal_is_left_out() -> None:
    assert parse_partial('{"a": 1, "ke') == {"a": 1}
    assert parse_partial('{"ok": tr') == {}


def test_text_that_is_not_json_has_no_view() -> None:
    assert parse_partial("Sure, here is") is None
    assert parse_partial("   ") is None


def test_a_long_text_is_parsed_again_only_as_it_grows_by_a_quarter() -> None:
    text = json.dumps({"content": "x" * 1_000_000})
    view = PartialJson()
    refreshes = sum(view.append(text[i : i + 250]) for i in range(0, len(text), 250))
    # Every piece below 4 KiB (16 pieces), then about log(1 MB / 4 KiB) / log(1.25).
    assert refreshes < 16 + 30
    assert len(view.value["content"]) > 0.75 * 1_000_000


def call_chunks(arguments: list[str], finish: str) -> list[dict[str, Any]]:
    head = {"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}
    fragments = [{"index": 0, "function": {"arguments": piece}} for piece in arguments]
    calls = [chunk(tool_calls=[fragment]) for fragment in [head, *fragments]]
    return [*calls, chunk(finish=finish)]


def test_each_argument_delta_carries_the_arguments_parsed_so_far() -> None:
    parser = StreamParser(options=StreamOptions(partial_json=True))
    events = parser.feed(build_body(call_chunks(['{"path": "a', '.md", "n": 1', "}"], "stop")))
    views = [e.parsed for e in events if isinstance(e, FunctionCallArgumentsDelta)]
    assert views == [{"path": "a"}, {"path": "a.md"}, {"path": "a.md", "n": 1}]


def test_a_call_cut_off_with_a_view_that_parses_stays_incomplete() -> None:
    # The view of '{"path": "a' is {"path": "a"}: it must not make the call whole.
    parser = StreamParser(options=StreamOptions(partial_json=True))
    events = parser.feed(build_body(call_chunks(['{"path": "a'], "stop"))) + parser.close()
    assert not [e for e in events if isinstance(e, OutputItemDone)]
    assert [e.item.arguments for e in events if isinstance(e, OutputItemIncomplete)] == [
        '{"path": "a'
    ]
    assert parser.result().tool_calls == ()


def content_body(pieces: list[str]) -> bytes:
    return build_body([*(chunk(p) for p in pieces), chunk(finish="stop")])


def test_json_content_is_parsed_when_the_request_asked_for_json() -> None:
    request = {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}
    parser = StreamParser(request=request, options=StreamOptions(partial_json=True))
    events = parser.feed(content_body(['{"a": "x', 'y"}']))
    assert [(type(e).__name__, getattr(e, "parsed", None)) for e in events[1:]] == [
        ("OutputTextDelta", None),
        ("OutputTextParsed", {"a": "x"}),
        ("OutputTextDelta", None),
        ("OutputTextParsed", {"a": "xy"}),
        ("OutputItemDone", None),
    ]


def test_content_is_not_parsed_when_the_request_did_not_ask_for_json() -> None:
    parser = StreamParser(
        request={"response_format": {"type": "text"}}, options=StreamOptions(partial_json=True)
    )
    events = parser.feed(content_body(['{"a": 1}']))
    assert not [e for e in events if isinstance(e, OutputTextParsed)]


def test_content_is_not_parsed_without_partial_json() -> None:
    parser = StreamParser(request={"response_format": {"type": "json_object"}})
    events = parser.feed(content_body(['{"a": 1}']))
    assert not [e for e in events if isinstance(e, OutputTextParsed)]

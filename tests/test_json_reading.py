"""Each chunk's JSON is read by jiter, falling back to ``json.loads`` for what jiter
rejects: the pair must read exactly what ``json.loads`` reads, the same way, and reject
exactly what it rejects."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatstream.core.parser import _loads

from .helpers import examples


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

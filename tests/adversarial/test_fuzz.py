"""Fuzzing the core (:class:`chatstream.StreamParser`, :func:`chatstream.iter_events`)
with hostile bodies: random bytes, truncated and mutated corpus streams, random JSON in
place of chunks (wrong types everywhere), nested depth bombs, random splits.

Whatever the body, the core ends normally or in a documented
:class:`~chatstream.ChatStreamError` subclass, never another exception, never a hang;
its events reduce to its (partial) response; and its result is plain JSON.

The budget is the hypothesis profile's (``tests/conftest.py``): bounded in CI,
``HYPOTHESIS_PROFILE=thorough`` for a long run by hand (see ``docs/reliability.rst``).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import chatstream
from chatstream import (
    Completed,
    ContextWindowExceeded,
    EventTooLargeError,
    IncompleteStreamError,
    Limits,
    ProviderError,
    ResponseEvent,
    StreamParser,
    iter_events,
)
from tests.helpers import CORPUS, corpus_names, examples

from .harness import assert_reduces_to

#: Every error the core itself may end a stream in (the transport's are the client's).
CORE_ERRORS = (
    IncompleteStreamError,
    ContextWindowExceeded,
    ProviderError,
    EventTooLargeError,
)

CORPUS_BODIES = [(CORPUS / f"{name}.sse").read_bytes() for name in corpus_names()]


def run_core(pieces: list[bytes], **options: Any) -> None:
    """Feed ``pieces`` and check everything the core promises."""
    parser = StreamParser(**options)
    events: list[ResponseEvent] = []
    error = None
    try:
        for item in parser.iter_events(iter(pieces)):
            events.append(item)
    except CORE_ERRORS as exc:
        error = exc
    # Any other exception propagates and fails the property.
    completed = [i for i, e in enumerate(events) if isinstance(e, Completed)]
    if error is None:
        assert completed == [len(events) - 1]
        response = parser.result()
    else:
        assert completed == []
        assert error.partial is not None
        assert error.partial.error == chatstream.ErrorInfo.of(error)
        response = error.partial
    assert parser.ended
    assert parser.feed(b"data: more\n\n") == [] and parser.close() == []
    assert_reduces_to(events, response)
    result = response.to_result_dict()
    json.loads(json.dumps(result, allow_nan=False))
    for item in events:
        item.to_dict()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` cut at ``points`` (positions modulo its length)."""
    if not data:
        return [data]
    marks = sorted({p % len(data) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


cuts = st.lists(st.integers(min_value=0, max_value=10**6), max_size=30)


@settings(max_examples=examples(100))
@given(st.binary(max_size=4096), cuts)
def test_random_bytes(data: bytes, points: list[int]) -> None:
    run_core(cut(data, points))


sse_ish = st.lists(
    st.sampled_from(
        [
            b"data: ",
            b"data:",
            b"event: error\n",
            b"event: ",
            b": ping",
            b"\n",
            b"\r",
            b"\r\n",
            b"\n\n",
            b"[DONE]",
            b"DONE",
            b"{",
            b"}",
            b'"choices"',
            b":",
            b"[",
            b"]",
            b",",
            b'{"choices":[{"delta":{"content":"x"}}]}',
            b'"finish_reason":"stop"',
            b"\xff",
            b"\xef\xbb\xbf",
            b"id: 1\n",
            b"retry: x\n",
            b"\x00",
            b" ",
            b"null",
        ]
    ),
    max_size=200,
).map(b"".join)


@settings(max_examples=examples(100))
@given(sse_ish, cuts)
def test_random_sse_tokens(data: bytes, points: list[int]) -> None:
    run_core(cut(data, points))


@settings(max_examples=examples(60))
@given(st.sampled_from(range(len(CORPUS_BODIES))), st.integers(min_value=0), cuts)
def test_truncated_corpus_streams(which: int, at: int, points: list[int]) -> None:
    body = CORPUS_BODIES[which]
    run_core(cut(body[: at % (len(body) + 1)], points))


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "duplicate"]),
    st.integers(min_value=0),
    st.binary(min_size=1, max_size=8),
)


@settings(max_examples=examples(100))
@given(st.sampled_from(range(len(CORPUS_BODIES))), st.lists(mutation, min_size=1, max_size=8), cuts)
def test_mutated_corpus_streams(
    which: int, mutations: list[tuple[str, int, bytes]], points: list[int]
) -> None:
    body = bytearray(CORPUS_BODIES[which])
    for kind, where, data in mutations:
        at = where % (len(body) + 1)
        if kind == "flip" and at < len(body):
            body[at] ^= data[0] or 1
        elif kind == "insert":
            body[at:at] = data
        elif kind == "delete":
            del body[at : at + len(data)]
        elif kind == "duplicate":
            body[at:at] = body[at : at + 64]
    run_core(cut(bytes(body), points))


# --- random JSON in place of chunks ------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
indexes = st.one_of(
    st.integers(min_value=-3, max_value=5),
    st.integers(min_value=2**31, max_value=2**64),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.none(),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy, or junk of any type in its place."""
    return st.one_of(strategy, junk)


fragment = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "index": indexes,
            "id": maybe(st.sampled_from(["a", "b", "", "call_1"])),
            "type": maybe(st.just("function")),
            "function": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": maybe(st.sampled_from(["f", "g", ""])),
                        "arguments": maybe(st.sampled_from(['{"a":', "1}", "", "{}", '"x"'])),
                    },
                )
            ),
        },
    )
)
delta = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "role": maybe(st.just("assistant")),
            "content": maybe(st.text(max_size=10) | st.lists(junk, max_size=3)),
            "reasoning": maybe(st.text(max_size=10)),
            "reasoning_content": maybe(st.text(max_size=10)),
            "reasoning_details": maybe(st.lists(junk, max_size=3)),
            "refusal": maybe(st.text(max_size=10)),
            "tool_calls": maybe(st.lists(fragment, max_size=4)),
            "function_call": maybe(fragment),
        },
    )
)
choice = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "index": indexes,
            "delta": delta,
            "message": maybe(st.fixed_dictionaries({}, optional={"reasoning": junk})),
            "finish_reason": maybe(
                st.sampled_from(
                    ["stop", "length", "tool_calls", "content_filter", "function_call", "", "other"]
                )
            ),
        },
    )
)
count = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.none(),
    st.booleans(),
)
usage = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            k: count
            for k in (
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "cached_tokens",
                "prompt_cache_hit_tokens",
            )
        }
        | {
            "prompt_tokens_details": maybe(
                st.fixed_dictionaries({}, optional={"cached_tokens": count})
            ),
            "completion_tokens_details": maybe(
                st.fixed_dictionaries({}, optional={"reasoning_tokens": count})
            ),
        },
    )
)
chunk_shape = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "id": maybe(st.text(max_size=5)),
            "model": maybe(st.text(max_size=5)),
            "choices": maybe(st.lists(choice, max_size=3)),
            "usage": usage,
            "x_groq": maybe(st.fixed_dictionaries({}, optional={"usage": usage})),
            "error": st.one_of(st.none(), junk),
            "type": maybe(st.sampled_from(["error", "chunk"])),
        },
    )
)


def body_of(chunks: list[Any], events: list[str | None], done: bool) -> bytes:
    out = []
    for value, name in zip(chunks, events, strict=False):
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(value)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


@settings(max_examples=examples(200))
@given(
    st.lists(chunk_shape, max_size=12),
    st.lists(
        st.sampled_from([None, None, None, "message", "error", "ping", ""]),
        min_size=12,
        max_size=12,
    ),
    st.booleans(),
    cuts,
)
def test_random_json_shapes_in_place_of_chunks(
    chunks: list[Any], events: list[str | None], done: bool, points: list[int]
) -> None:
    run_core(cut(body_of(chunks, events, done), points))


@settings(max_examples=examples(30))
@given(
    st.integers(min_value=1, max_value=5000),
    st.sampled_from(["list", "dict", "error-list", "error-dict", "error-frame", "args"]),
)
def test_nested_depth_bombs(depth: int, where: str) -> None:
    # Built as text: json.dumps itself gives up on deep nesting.
    if where in ("list", "error-list"):
        inner = "[" * depth + '"x"' + "]" * depth
    else:
        inner = '{"a":' * depth + '"x"' + "}" * depth
    if where in ("list", "dict"):
        text = '{"choices":[{"index":0,"delta":{"content":' + inner + "}}]}"
    elif where in ("error-list", "error-dict"):
        text = '{"error":' + inner + "}"
    elif where == "error-frame":
        text = inner
    else:
        args = json.dumps("[" * depth + "]" * depth)
        text = (
            '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":'
            '{"name":"f","arguments":' + args + '}}]},"finish_reason":"stop"}]}'
        )
    head = "event: error\n" if where == "error-frame" else ""
    body = (
        f'{head}data: {text}\n\ndata: {{"choices":[{{"delta":{{"content":"ok"}}}}]}}\n\n'.encode()
    )
    run_core([body])


def _raw_depth_bomb(depth: int) -> bytes:
    return b"data: " + b"[" * depth + b"]" * depth + b"\n\n"


def test_raw_depth_bombs_at_every_scale() -> None:
    for depth in (10, 900, 990, 1000, 5000, 100_000, 1_000_000):
        run_core([_raw_depth_bomb(depth), b"event: error\n", _raw_depth_bomb(depth)])


@settings(max_examples=examples(50))
@given(st.binary(min_size=1, max_size=2000), st.integers(min_value=1, max_value=512))
def test_event_limit_holds_for_any_body(data: bytes, limit: int) -> None:
    run_core([data, data], limits=Limits(max_event_bytes=limit))


def test_numbers_json_accepts_but_the_result_must_not_carry() -> None:
    # NaN, Infinity and huge exponents are accepted by Python's json module: none may
    # reach the result (which must stay strict JSON).
    for value in ("NaN", "Infinity", "-Infinity", "1e400", "-0.0", str(2**200)):
        usage = (
            f'{{"prompt_tokens": {value}, "completion_tokens": {value}, "total_tokens": {value}}}'
        )
        choice = '{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}'
        body = f'data: {{"choices":[{choice}],"usage":{usage}}}\n\n'
        run_core([body.encode()])


def test_iter_events_of_nothing_is_incomplete() -> None:
    try:
        list(iter_events([]))
    except IncompleteStreamError as exc:
        assert exc.partial is not None
    else:
        raise AssertionError("an empty body completed")

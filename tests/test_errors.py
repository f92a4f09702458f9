"""The error tree: drawn once (the same in errors.py and docs/errors.rst, as the classes
are), one class per limit, and nothing of a refused request under StreamError."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import chatstream
from chatstream import errors
from chatstream.response import ErrorInfo

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.rst"
CLASSES = [getattr(errors, name) for name in errors.__all__]
NAMES = {cls.__name__ for cls in CLASSES}


def hierarchy() -> dict[str, tuple[str | None, frozenset[str]]]:
    """Each class: the base it is drawn under (its first), and its others."""
    shape: dict[str, tuple[str | None, frozenset[str]]] = {}
    for cls in CLASSES:
        bases = [b.__name__ for b in cls.__bases__ if b is not Exception]
        if cls is errors.ChatStreamError:
            shape[cls.__name__] = (None, frozenset())
        else:
            shape[cls.__name__] = (bases[0], frozenset(bases[1:]))
    return shape


def drawn(text: str) -> dict[str, tuple[str | None, frozenset[str]]]:
    """The tree drawn in ``text``: each class, the class above it, and its "also a"s."""
    lines = text[text.index("    ChatStreamError\n") :].splitlines()
    shape: dict[str, tuple[str | None, frozenset[str]]] = {}
    path: list[str] = []
    last = ""
    for line in lines:
        if not line.strip():
            break
        match = re.match(r"^ {4}((?:[│ ] {3})*)(?:[├└]── )?(\w+)", line)
        if match and match.group(2) in NAMES:
            depth = len(match.group(1)) // 4 + (1 if "── " in line else 0)
            del path[depth:]
            last = match.group(2)
            shape[last] = (path[-1] if path else None, frozenset())
            path.append(last)
        also = re.findall(r"also an? (\w+)", line)
        parent, others = shape[last]
        shape[last] = (parent, others | set(also))
    return shape


def test_the_docstrings_tree_draws_every_class_under_its_bases() -> None:
    assert drawn(errors.__doc__ or "") == hierarchy()


def test_the_docs_tree_draws_every_class_under_its_bases() -> None:
    assert drawn(DOCS.read_text(encoding="utf-8")) == hierarchy()


@pytest.mark.parametrize(
    "cls",
    [c for c in CLASSES if issubclass(c, (errors.APIStatusError, errors.ConnectError))],
    ids=lambda c: c.__name__,
)
def test_a_refused_request_or_a_failed_connection_is_no_stream_error(cls: type) -> None:
    assert not issubclass(cls, errors.StreamError)


def test_both_context_window_errors_are_one_class_to_catch() -> None:
    assert issubclass(errors.ContextLengthExceededError, errors.ContextWindowExceeded)
    assert issubclass(errors.LengthFinishError, errors.ContextWindowExceeded)
    assert issubclass(errors.LengthFinishError, errors.StreamError)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_class_says_when_it_is_raised(cls: type) -> None:
    assert "raise" in (cls.__doc__ or "").lower()


def test_the_callback_errors_docstring_names_every_callback() -> None:
    doc = errors.CallbackError.__doc__ or ""
    callbacks = [
        name
        for name in inspect.signature(chatstream.Client.stream).parameters
        if name.startswith("on_") or name == "dispatch"
    ]
    assert callbacks and all(f"``{name}``" in doc for name in callbacks)
    assert "telemetry" in doc


@pytest.mark.parametrize(
    "cls",
    [c for c in CLASSES if issubclass(c, errors.LimitExceededError) and c.name],
    ids=lambda c: c.__name__,
)
def test_every_limit_error_has_its_own_kind_and_the_same_shape(cls: type) -> None:
    error = cls("over", limit=5)
    assert (error.limit, error.name) == (5, cls.name)
    assert ErrorInfo.of(error).attributes == {"limit": 5, "name": cls.name}


def test_the_limit_errors_have_distinct_kinds_and_options() -> None:
    limits = [c for c in CLASSES if issubclass(c, errors.LimitExceededError) and c.name]
    timeouts = [c for c in CLASSES if issubclass(c, errors.StreamTimeoutError) and c.name]
    assert len({c.kind for c in limits}) == len({c.name for c in limits}) == len(limits) == 4
    assert len({c.kind for c in timeouts}) == len({c.name for c in timeouts}) == 3


def event(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


def test_an_event_over_max_event_bytes_is_an_event_too_large_error() -> None:
    parser = chatstream.StreamParser(limits=chatstream.Limits(max_event_bytes=64))
    parser.feed(event('{"big": "' + "x" * 100 + '"}'))
    error = parser.error
    assert isinstance(error, errors.EventTooLargeError)
    assert isinstance(error, errors.LimitExceededError)
    assert (error.name, error.limit, error.kind) == ("max_event_bytes", 64, "event_too_large")


def test_a_body_over_max_total_bytes_is_a_response_too_large_error() -> None:
    first = event('{"choices":[{"delta":{"content":"a"}}]}')
    parser = chatstream.StreamParser(limits=chatstream.Limits(max_total_bytes=len(first) + 4))
    parser.feed(first + first)
    error = parser.error
    assert isinstance(error, errors.ResponseTooLargeError)
    assert (error.name, error.limit) == ("max_total_bytes", len(first) + 4)
    assert parser.response.content == "a"


def test_one_choice_too_many_is_a_too_many_choices_error() -> None:
    parser = chatstream.StreamParser(limits=chatstream.Limits(max_choices=1))
    parser.feed(event('{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{}}]}'))
    error = parser.error
    assert isinstance(error, errors.TooManyChoicesError)
    assert (error.name, error.limit, error.kind) == ("max_choices", 1, "too_many_choices")


def test_one_tool_call_too_many_is_a_too_many_tool_calls_error() -> None:
    calls = ",".join(f'{{"index":{n},"function":{{"name":"f"}}}}' for n in range(3))
    parser = chatstream.StreamParser(limits=chatstream.Limits(max_tool_calls=2))
    parser.feed(event(f'{{"choices":[{{"delta":{{"tool_calls":[{calls}]}}}}]}}'))
    error = parser.error
    assert isinstance(error, errors.TooManyToolCallsError)
    assert (error.name, error.limit) == ("max_tool_calls", 2)


def test_a_length_finish_as_an_error_is_a_length_finish_error() -> None:
    parser = chatstream.StreamParser(options=chatstream.StreamOptions(length_is_error=True))
    parser.feed(event('{"choices":[{"delta":{"content":"a"},"finish_reason":"length"}]}'))
    parser.close()
    assert isinstance(parser.error, errors.LengthFinishError)
    assert parser.error.kind == "context_window_exceeded"

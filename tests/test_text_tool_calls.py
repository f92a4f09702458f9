"""Tool calls written as text, recovered as calls, at every split of the text (sans-I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream import FunctionCall, OutputTextDelta, StreamOptions, StreamParser
from chatstream.core.textcalls import TextCallSplitter, requires_tool_call

from .helpers import build_body, chunk, kinds

TOOLS = [{"type": "function", "function": {"name": "ls", "parameters": {}}}]
REQUIRED = {"tools": TOOLS, "tool_choice": "required"}


def body_of(pieces: list[str], finish: str = "stop") -> bytes:
    return build_body([*(chunk(p) for p in pieces), chunk(finish=finish)], done=True)


def splits(text: str) -> list[list[str]]:
    """``text`` cut once at every position, and cut into single characters."""
    return [[text[:i], text[i:]] for i in range(1, len(text))] + [list(text)]


def outcome(pieces: list[str], **options: Any) -> tuple[str, list[FunctionCall], str]:
    """The text deltas joined, the finished calls, and the final content."""
    parser = StreamParser(**options, options=StreamOptions(text_tool_calls=True))
    events = parser.feed(body_of(pieces)) + parser.close()
    shown = "".join(e.delta for e in events if isinstance(e, OutputTextDelta))
    response = parser.result()
    return shown, list(response.tool_calls), response.content


HERMES = (
    'Let me look.\n<tool_call>\n{"name": "ls", "arguments": {"path": "/tmp"}}\n</tool_call>\n'
    '<tool_call>{"name": "cat", "arguments": {"file": "a</tool_cal"}}</tool_call>'
)
HERMES_CALLS = [
    FunctionCall("ls", '{"path": "/tmp"}', "tool-call-0"),
    FunctionCall("cat", '{"file": "a</tool_cal"}', "tool-call-1"),
]


@pytest.mark.parametrize("pieces", splits(HERMES))
def test_hermes_blocks_become_calls_at_every_split(pieces: list[str]) -> None:
    assert outcome(pieces) == ("Let me look.", HERMES_CALLS, "Let me look.")


MISTRAL = (
    '[TOOL_CALLS][{"name": "ls", "arguments": {"path": "/"}}, {"name": "pwd", "arguments": {}}]'
)


@pytest.mark.parametrize("pieces", splits(MISTRAL))
def test_a_mistral_call_list_becomes_calls_at_every_split(pieces: list[str]) -> None:
    calls = [
        FunctionCall("ls", '{"path": "/"}', "tool-call-0"),
        FunctionCall("pwd", "{}", "tool-call-1"),
    ]
    assert outcome(pieces) == ("", calls, "")


MISTRAL_ARGS = '[TOOL_CALLS]ls[ARGS]{"path": "[ARGS]"}'


@pytest.mark.parametrize("pieces", splits(MISTRAL_ARGS))
def test_the_newer_mistral_form_becomes_a_call_at_every_split(pieces: list[str]) -> None:
    assert outcome(pieces) == ("", [FunctionCall("ls", '{"path": "[ARGS]"}', "tool-call-0")], "")


BARE = ' {"name": "ls", "parameters": {"path": "}{"}}'


@pytest.mark.parametrize("pieces", splits(BARE))
def test_a_bare_call_object_becomes_a_call_when_the_request_required_one(
    pieces: list[str],
) -> None:
    expected = [FunctionCall("ls", '{"path": "}{"}', "tool-call-0")]
    assert outcome(pieces, request=REQUIRED) == ("", expected, "")


def test_a_bare_call_object_stays_text_when_no_call_was_required() -> None:
    request = {"tools": TOOLS, "tool_choice": "auto"}
    assert outcome([BARE], request=request) == (BARE, [], BARE)


def test_a_json_answer_that_is_not_a_call_stays_text_even_when_one_was_required() -> None:
    answer = '{"answer": 42}'
    assert outcome([answer[:5], answer[5:]], request=REQUIRED) == (answer, [], answer)


PLAIN = "Use <b>bold</b>, [TOOL] or <tool> freely: {not a call}."


@pytest.mark.parametrize("pieces", splits(PLAIN))
def test_ordinary_text_comes_through_unchanged_at_every_split(pieces: list[str]) -> None:
    assert outcome(pieces) == (PLAIN, [], PLAIN)


def test_a_block_that_is_not_a_call_is_shown_as_text_unchanged() -> None:
    text = "Here: <tool_call>not json</tool_call> done"
    assert outcome([text[:12], text[12:]]) == (text, [], text)


def test_an_unclosed_block_that_parses_at_the_end_becomes_a_call() -> None:
    text = '<tool_call>{"name": "ls", "arguments": {}}'
    assert outcome([text]) == ("", [FunctionCall("ls", "{}", "tool-call-0")], "")


def test_a_block_cut_off_at_the_end_is_shown_as_text() -> None:
    text = 'Wait <tool_call>{"name": "ls", "argu'
    assert outcome([text]) == (text, [], text)


def test_a_recovered_call_streams_like_any_call() -> None:
    parser = StreamParser(options=StreamOptions(text_tool_calls=True))
    events = parser.feed(body_of(['<tool_call>{"name": "ls", "arguments": {}}</tool_call>']))
    assert kinds(events) == [
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]


def test_a_call_written_while_thinking_stays_reasoning() -> None:
    text = '<think>maybe <tool_call>{"name": "ls"}</tool_call></think>No call needed.'
    parser = StreamParser(options=StreamOptions(text_tool_calls=True, think_tags=True))
    parser.feed(body_of([text]))
    parser.close()
    response = parser.result()
    assert response.tool_calls == ()
    assert response.content == "No call needed."
    assert "<tool_call>" in response.reasoning


def test_without_the_option_call_text_is_plain_text() -> None:
    parser = StreamParser()
    parser.feed(body_of([HERMES]))
    parser.close()
    assert parser.result().content == HERMES
    assert parser.result().tool_calls == ()


@pytest.mark.parametrize(
    ("request_body", "required"),
    [
        (None, False),
        ({"tools": TOOLS}, False),
        ({"tools": TOOLS, "tool_choice": "auto"}, False),
        ({"tools": TOOLS, "tool_choice": "required"}, True),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "ls"}}}, True),
        ({"tool_choice": "required"}, False),
    ],
)
def test_a_call_is_required_only_with_tools_and_a_requiring_tool_choice(
    request_body: dict[str, Any] | None, required: bool
) -> None:
    assert requires_tool_call(request_body) is required


def test_the_splitter_hands_on_the_text_around_calls() -> None:
    splitter = TextCallSplitter()
    pieces = splitter.feed("a <tool_call>") + splitter.feed('{"name": "f"}</tool_call> b')
    assert [p if isinstance(p, str) else p.name for p in pieces + splitter.flush()] == [
        "a",
        "f",
        "b",
    ]

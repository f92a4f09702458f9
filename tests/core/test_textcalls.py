"""Tool calls written as text, recovered as calls, at every split of the text (sans-I/O)."""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import chatstream
from chatstream import (
    Client,
    FunctionCall,
    Limits,
    OutputTextDelta,
    StreamOptions,
    StreamParser,
    TooManyToolCallsError,
)
from chatstream.core.textcalls import TextCallSplitter, requires_tool_call

from ..helpers import BODY, build_body, chunk, kinds
from ..loopback import Conn, LoopbackServer

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


def test_the_splitter_hands_on_the_text_before_calls_and_drops_the_whitespace() -> None:
    splitter = TextCallSplitter()
    pieces = splitter.feed("a\n<tool_call>") + splitter.feed('{"name": "f"}</tool_call>\n ')
    assert [p if isinstance(p, str) else p.name for p in pieces + splitter.flush()] == ["a", "f"]


# --- only the forms the model families emit (issue 20, item 2) --------------------------

WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'

PROSE = [
    # A Hermes example in fenced code, closed and left open at the end.
    f"Here is how a call looks:\n```\n<tool_call>\n{WEATHER}\n</tool_call>\n```",
    f"Here is how a call looks:\n~~~xml\n<tool_call>\n{WEATHER}\n</tool_call>\n",
    # Mistral's marker in the middle of a sentence, and ending one.
    'For example [TOOL_CALLS][{"name":"delete_file","arguments":{"path":"/"}}] is what…',
    f"The syntax is [TOOL_CALLS][{WEATHER}]",
    # A Hermes block in the middle of a line, and one followed by more prose.
    f"Write <tool_call>{WEATHER}</tool_call>",
    f"<tool_call>{WEATHER}</tool_call>\nThat is the format.",
    f"[TOOL_CALLS][{WEATHER}] is Mistral's form.",
    # A marker at a line start that does not go on as a call.
    "<tool_call> tags wrap a call.\n[TOOL_CALLS] starts one.",
    "<tool_call>\n```python\nprint(1)\n```",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_and_examples_that_mention_calls_stay_text_at_every_split(text: str) -> None:
    for pieces in splits(text):
        assert outcome(pieces) == (text, [], text), pieces


def test_calls_after_an_example_in_fenced_code_are_recovered_and_the_example_is_text() -> None:
    before = f"Example:\n```\n<tool_call>{WEATHER}</tool_call>\n```\nNow for real:"
    text = before + '\n<tool_call>{"name": "ls", "arguments": {}}</tool_call>\n'
    for pieces in splits(text):
        assert outcome(pieces) == (before, [FunctionCall("ls", "{}", "tool-call-0")], before)


def test_a_hermes_block_may_follow_leading_whitespace_at_the_start_of_the_content() -> None:
    text = ' \n<tool_call>{"name": "ls", "arguments": {}}</tool_call>'
    assert outcome([text]) == ("", [FunctionCall("ls", "{}", "tool-call-0")], "")


def test_a_mistral_marker_may_follow_leading_whitespace() -> None:
    text = '\n [TOOL_CALLS][{"name": "ls", "arguments": {}}]'
    assert outcome([text]) == ("", [FunctionCall("ls", "{}", "tool-call-0")], "")


MISTRAL_PARALLEL = '[TOOL_CALLS]ls[ARGS]{"path": "/"}[TOOL_CALLS]pwd[ARGS]{}'


@pytest.mark.parametrize("pieces", splits(MISTRAL_PARALLEL))
def test_parallel_calls_of_the_newer_mistral_form_become_calls_at_every_split(
    pieces: list[str],
) -> None:
    calls = [
        FunctionCall("ls", '{"path": "/"}', "tool-call-0"),
        FunctionCall("pwd", "{}", "tool-call-1"),
    ]
    assert outcome(pieces) == ("", calls, "")


def test_a_bare_call_followed_by_prose_stays_text() -> None:
    text = '{"name": "ls", "arguments": {}} is the call.'
    assert outcome([text[:9], text[9:]], request=REQUIRED) == (text, [], text)


# --- text held back only while it can still be a call (issue 20, item 9) ------------------


def shown_before_the_end(text: str) -> str:
    """The text deltas a stream that has sent ``text`` (and not ended) gave so far."""
    parser = StreamParser(options=StreamOptions(text_tool_calls=True))
    events = parser.feed(build_body([chunk(text)]))
    return "".join(e.delta for e in events if isinstance(e, OutputTextDelta))


@pytest.mark.parametrize(
    "text",
    [
        "Mistral writes [TOOL_CALLS] before its calls, Hermes <tool_call> around each.",
        "I will not call it.\n[TOOL_CALLS] is Mistral's marker.",
        "<tool_call> tags wrap a call, as in my example.",
        "First line.\n<tool_call> is a tag.",
    ],
)
def test_prose_that_mentions_a_marker_streams_on_at_once(text: str) -> None:
    assert shown_before_the_end(text) == text


def test_a_marker_at_the_start_of_a_line_is_held_only_until_it_is_not_a_call() -> None:
    assert shown_before_the_end("Look:\n<tool_") == "Look:"
    assert shown_before_the_end("Look:\n<tool_call>\n{") == "Look:"
    assert shown_before_the_end("Look:\n<tool_call>\nHello") == "Look:\n<tool_call>\nHello"


def _calls_body(n: int) -> bytes:
    blocks = [f'<tool_call>{{"name": "f{i}", "arguments": {{}}}}</tool_call>\n' for i in range(n)]
    return body_of(blocks)


def test_recovered_calls_count_against_max_tool_calls() -> None:
    parser = StreamParser(
        options=StreamOptions(text_tool_calls=True), limits=Limits(max_tool_calls=2)
    )
    parser.feed(_calls_body(3))
    parser.close()
    error = parser.error
    assert isinstance(error, TooManyToolCallsError)
    assert (error.name, error.limit) == ("max_tool_calls", 2)
    assert error.partial is not None
    assert len(error.partial.choices[0].incomplete_tool_calls) == 2


def test_as_many_recovered_calls_as_max_tool_calls_are_allowed() -> None:
    parser = StreamParser(
        options=StreamOptions(text_tool_calls=True), limits=Limits(max_tool_calls=3)
    )
    parser.feed(_calls_body(3))
    parser.close()
    assert parser.error is None
    assert [c.name for c in parser.result().tool_calls] == ["f0", "f1", "f2"]


def _lines_run(body: bytes) -> int:
    """How many lines of chatstream's code reading ``body`` runs: a measure of its work
    that does not depend on the machine."""
    package = str(Path(chatstream.__file__).parent)
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(package) else None

    parser = StreamParser(
        options=StreamOptions(text_tool_calls=True), limits=Limits(max_tool_calls=100_000)
    )
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        parser.feed(body)
        parser.close()
    finally:
        sys.settrace(previous)
    assert parser.error is None
    return count


def test_recovering_calls_is_linear_in_their_number() -> None:
    # 8 000 calls took seconds, growing with the square of their number; the work for
    # four times the calls is now about four times the work (the square would be 16).
    small, large = _lines_run(_calls_body(500)), _lines_run(_calls_body(2000))
    assert large < 5 * small, (small, large)


def test_prose_that_mentions_a_marker_reaches_a_client_before_the_answer_ends(
    server: LoopbackServer,
) -> None:
    prose = "Mistral writes [TOOL_CALLS] first, Hermes wraps calls in <tool_call> tags."
    gate = threading.Event()

    def paused(conn: Conn) -> None:  # the rest of the answer waits until the prose arrived
        conn.send_head(200, {"Content-Type": "text/event-stream"})
        conn.write(build_body([chunk(prose)]))
        gate.wait(10)
        conn.write(build_body([chunk(" Done."), chunk(finish="stop")], done=True))
        conn.end()

    server.route("/v1/chat/completions", paused)
    arrived: queue.Queue[str] = queue.Queue()

    def on_event(event: chatstream.ResponseEvent) -> None:
        if isinstance(event, OutputTextDelta):
            arrived.put(event.delta)

    timeouts = chatstream.Timeouts(connect=2.0, idle=15.0)
    with Client(
        server.url + "/v1", timeouts=timeouts, retry=0, options=StreamOptions(text_tool_calls=True)
    ) as client:
        stream = client.stream(BODY, on_event=on_event)
        try:
            first = arrived.get(timeout=5)
        finally:
            gate.set()
        assert stream.result(timeout=10).content == prose + " Done."
    assert first == prose

"""The terminal renderer shows a tool call as it streams."""

from __future__ import annotations

import io

from chatstream import (
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
)
from chatstream.cli.render import Renderer


def renderer() -> tuple[Renderer, io.StringIO]:
    out = io.StringIO()
    return Renderer(out, color=False), out


def test_the_name_shows_the_moment_it_arrives_then_the_arguments_as_they_stream() -> None:
    r, out = renderer()
    r.event(OutputItemAdded(FunctionCall("read_file", "", "c1")))
    assert out.getvalue() == "→ read_file("
    r.event(FunctionCallArgumentsDelta("c1", '{"path": '))
    assert out.getvalue() == '→ read_file({"path": '
    r.event(FunctionCallArgumentsDelta("c1", '"a.md"}'))
    r.event(OutputItemDone(FunctionCall("read_file", '{"path": "a.md"}', "c1")))
    assert out.getvalue() == '→ read_file({"path": "a.md"})  (c1)\n'


def test_a_call_cut_off_says_so() -> None:
    r, out = renderer()
    r.event(OutputItemAdded(FunctionCall("f", "", "c1")))
    r.event(FunctionCallArgumentsDelta("c1", '{"a'))
    r.event(OutputItemIncomplete(FunctionCall("f", '{"a', "c1")))
    assert out.getvalue() == '→ f({"a)  (c1, cut off)\n'


def test_a_second_call_at_the_same_time_is_written_whole_when_it_ends() -> None:
    r, out = renderer()
    r.event(OutputItemAdded(FunctionCall("f", "", "a")))
    r.event(OutputItemAdded(FunctionCall("g", "", "b", custom=False), choice_index=0))
    r.event(FunctionCallArgumentsDelta("a", "{}"))
    r.event(FunctionCallArgumentsDelta("b", "[1]", output_index=1))
    r.event(OutputItemDone(FunctionCall("f", "{}", "a")))
    r.event(OutputItemDone(FunctionCall("g", "[1]", "b")))
    assert out.getvalue() == "→ f({})  (a)\n→ g([1])  (b)\n"


def test_text_during_a_call_ends_its_line_and_the_call_is_written_whole_at_its_end() -> None:
    r, out = renderer()
    r.event(OutputItemAdded(FunctionCall("f", "", "a")))
    r.event(FunctionCallArgumentsDelta("a", "{"))
    r.event(OutputTextDelta("note"))
    r.event(FunctionCallArgumentsDelta("a", "}"))
    r.event(OutputItemDone(FunctionCall("f", "{}", "a")))
    assert out.getvalue() == "→ f({…\nnote\n→ f({})  (a)\n"

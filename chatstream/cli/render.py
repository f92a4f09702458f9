"""Showing a stream to a person on a terminal: the answer on one stream (standard
output), everything about it on another (standard error): reasoning set apart, tool calls
as they stream (``→ name(`` the moment the name is known, then the arguments), notes, the
closing statistics line and errors.

On a terminal both streams show in one window, in the order written; redirected, the
answer's file holds the answer only (``chatstream chat "hi" > answer.txt``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TextIO

from ..events import (
    Completed,
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
    RateLimits,
    Reasoning,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
    TokenUsage,
)

__all__ = ["Renderer", "pretty_arguments", "use_color"]

_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_CYAN = "\x1b[36m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_GREEN = "\x1b[32m"
_RESET = "\x1b[0m"
# The longest tool result shown, in characters.
_RESULT_WIDTH = 100


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Renderer:
    """Writes events as a person would want to read them: the answer to ``out``, the rest
    (reasoning, tool calls, notes, statistics, errors) to ``err``.

    One method per kind of event (``on_<event type>``), so that a new kind of event is one
    more method and one more line in :attr:`handlers`.

    Args:
        out: Where the answer goes.
        err: Where everything else goes (default: ``out``).
        color: Use ANSI colours (default: :func:`use_color` of each stream).
        show_reasoning: Show reasoning text (dimmed); otherwise only note that it ran.
    """

    def __init__(
        self,
        out: TextIO,
        err: TextIO | None = None,
        *,
        color: bool | None = None,
        show_reasoning: bool = True,
    ) -> None:
        self.out = out
        self.err = out if err is None else err
        self._color = {
            id(stream): use_color(stream) if color is None else color
            for stream in (self.out, self.err)
        }
        self.show_reasoning = show_reasoning
        # The stream whose last line is still open (no line break yet), if any.
        self._open: TextIO | None = None
        self._last: TextIO | None = None
        self._choice = 0
        # What the last output was: "reasoning" (a block still open), "text", "call"
        # or None.
        self._block: str | None = None
        # The tool call whose arguments are being written as they arrive (one at a
        # time; the others are kept and written whole when they end), by call_id.
        self._live_call: str | None = None
        self._held_calls: dict[str, tuple[str, list[str]]] = {}
        #: The method showing each kind of event.
        self.handlers: dict[type[Any], Callable[[Any], None]] = {
            OutputTextDelta: self.on_output_text_delta,
            ReasoningContentDelta: self.on_reasoning_content_delta,
            RefusalDelta: self.on_refusal_delta,
            OutputItemAdded: self.on_output_item_added,
            OutputItemDone: self.on_output_item_done,
            OutputItemIncomplete: self.on_output_item_incomplete,
            FunctionCallArgumentsDelta: self.on_function_call_arguments_delta,
            Completed: self.on_completed,
            RateLimits: self.on_rate_limits,
        }

    # --- writing -------------------------------------------------------------------------

    def _style(self, stream: TextIO, text: str, *codes: str) -> str:
        if self._color[id(stream)] and codes:
            return "".join(codes) + text + _RESET
        return text

    def _write(self, stream: TextIO, text: str, *codes: str) -> None:
        if not text:
            return
        if self._open is not None and self._open is not stream:
            self._open.write("\n")  # a line left open on the other stream ends first
            self._open = None
        if self._last is not None and self._last is not stream:
            self._last.flush()  # what came before shows before (one terminal, two streams)
        stream.write(self._style(stream, text, *codes))
        self._last = stream
        self._open = None if text.endswith("\n") else stream

    def _newline(self) -> None:
        if self._open is not None:
            self._open.write("\n")
            self._open = None

    def flush(self) -> None:
        """Flush both streams."""
        self.out.flush()
        if self.err is not self.out:
            self.err.flush()

    def _switch_choice(self, index: int) -> None:
        if index != self._choice:
            self._choice = index
            self._hold_live_call()
            self._end_reasoning()
            self._newline()
            self._write(self.err, f"── choice {index} ──", _BOLD)
            self._write(self.err, "\n")

    def _start_reasoning(self) -> None:
        if self._block != "reasoning":
            self._block = "reasoning"
            self._newline()
            label = "thinking…" if self.show_reasoning else "thinking… (hidden)"
            self._write(self.err, label, _DIM)
            self._write(self.err, "\n")

    def _end_reasoning(self) -> None:
        """Close an open reasoning block with a blank line (the item itself may finish
        later: providers finish reasoning only with the whole choice)."""
        if self._block == "reasoning":
            self._newline()
            self._write(self.err, "\n")
        self._block = None

    def _answer(self, text: str, *codes: str) -> None:
        self._hold_live_call()
        self._end_reasoning()
        self._block = "text"
        self._write(self.out, text, *codes)

    # --- events --------------------------------------------------------------------------

    def event(self, event: ResponseEvent) -> None:
        """Show one event (with the method :attr:`handlers` names for its kind)."""
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def on_output_text_delta(self, event: OutputTextDelta) -> None:
        """Answer text: on ``out``, as it arrives."""
        self._switch_choice(event.choice_index)
        self._answer(event.delta)

    def on_reasoning_content_delta(self, event: ReasoningContentDelta) -> None:
        """Reasoning text: dimmed under a ``thinking…`` line (only the line when hidden)."""
        self._hold_live_call()
        self._switch_choice(event.choice_index)
        self._start_reasoning()
        if self.show_reasoning:
            self._write(self.err, event.delta, _DIM)

    def on_refusal_delta(self, event: RefusalDelta) -> None:
        """Refusal text: the answer, in yellow."""
        self._switch_choice(event.choice_index)
        self._answer(event.delta, _YELLOW)

    def on_output_item_added(self, event: OutputItemAdded) -> None:
        """An item began: a reasoning block opens; a tool call shows ``→ name(``."""
        self._switch_choice(event.choice_index)
        if isinstance(event.item, Reasoning):
            self._hold_live_call()
            self._start_reasoning()
        elif isinstance(event.item, FunctionCall):
            self._call_added(event.item)

    def on_output_item_done(self, event: OutputItemDone) -> None:
        """An item finished: a tool call is closed (or shown whole, if it was not
        streamed here), other items end their line."""
        self._switch_choice(event.choice_index)
        item = event.item
        if isinstance(item, Reasoning):
            self._end_reasoning()
        elif isinstance(item, FunctionCall):
            self._call_ended(item)
        else:
            self._newline()

    def on_output_item_incomplete(self, event: OutputItemIncomplete) -> None:
        """An item was cut off: a tool call is closed, marked as cut off."""
        self._switch_choice(event.choice_index)
        if isinstance(event.item, FunctionCall):
            self._call_ended(event.item, cut_off=True)

    def on_function_call_arguments_delta(self, event: FunctionCallArgumentsDelta) -> None:
        """More of a tool call's arguments: written if it is the call being shown."""
        self._switch_choice(event.choice_index)
        if event.call_id == self._live_call:
            self._write(self.err, event.delta)
        elif event.call_id in self._held_calls:
            self._held_calls[event.call_id][1].append(event.delta)

    def on_completed(self, event: Completed) -> None:
        """The response ended."""
        self._end_reasoning()
        self._newline()

    def on_rate_limits(self, event: RateLimits) -> None:
        """Rate-limit headers: not shown."""

    def _call_added(self, call: FunctionCall) -> None:
        """A call is announced: ``→ name(`` at once, unless another call is being
        written, in which case this one is written whole when it ends."""
        if self._live_call is None and self._block != "call":
            self._end_reasoning()
            self._newline()
            self._write(self.err, f"→ {call.name}(", _BOLD, _CYAN)
            self._live_call = call.call_id
            self._block = "call"
        else:
            self._held_calls[call.call_id] = (call.name, [])

    def _hold_live_call(self) -> None:
        """Something else is shown: the call being written continues out of sight."""
        if self._live_call is not None:
            self._held_calls[self._live_call] = ("", [])  # shown again, whole, at its end
            self._live_call = None
            self._write(self.err, "…\n")
        if self._block == "call":
            self._block = None

    def _call_ended(self, call: FunctionCall, *, cut_off: bool = False) -> None:
        note = f"  ({call.call_id}, cut off)" if cut_off else f"  ({call.call_id})"
        if self._live_call is not None and call.call_id == self._live_call:
            self._write(self.err, ")", _BOLD, _CYAN)
            self._write(self.err, note, _DIM)
            self._write(self.err, "\n")
            self._live_call = None
            self._block = None
            return
        # Not streamed here (another call was, or the events began later): all at once.
        self._held_calls.pop(call.call_id, None)
        self._end_reasoning()
        self._newline()
        self._write(self.err, f"→ {call.name}(", _BOLD, _CYAN)
        self._write(self.err, call.arguments)
        self._write(self.err, ")", _BOLD, _CYAN)
        self._write(self.err, note, _DIM)
        self._write(self.err, "\n")

    # --- the rest of a session -----------------------------------------------------------

    def user(self, text: str) -> None:
        """The user's message, the way a chat transcript shows it."""
        self._end_reasoning()
        self._newline()
        self._write(self.err, "you> ", _BOLD, _GREEN)
        self._write(self.err, text + "\n\n")

    def tool_result(self, call: FunctionCall, result: str) -> None:
        """The result sent back for a tool call, on one line (cut if long)."""
        self._newline()
        text = " ".join(result.split())
        if len(text) > _RESULT_WIDTH:
            text = text[: _RESULT_WIDTH - 1] + "…"
        self._write(self.err, f"← {call.name}", _BOLD, _CYAN)
        self._write(self.err, f"  ({call.call_id})\n", _DIM)
        self._write(self.err, _indent(text), _DIM)
        self._write(self.err, "\n\n")

    def note(self, text: str) -> None:
        """A line of commentary, dimmed, set apart from the answer."""
        self._end_reasoning()
        self._newline()
        self._write(self.err, text, _DIM)
        self._write(self.err, "\n")
        self.flush()

    def prompt(self, text: str) -> str:
        """``text`` styled as a prompt for the user's input (it is not written)."""
        return self._style(self.err, text, _BOLD, _GREEN)

    def summary(
        self,
        usage: TokenUsage | None,
        *,
        first_token: float | None = None,
        rate: float | None = None,
        elapsed: float | None = None,
    ) -> None:
        """The closing line: time to first token, tokens per second, usage (each part
        only when known)."""
        parts = []
        if first_token is not None:
            parts.append(f"first token {first_token * 1000:.0f} ms")
        if rate is not None:
            parts.append(f"{rate:.1f} tok/s")
        if usage is not None:
            tokens = f"{usage.input_tokens} in"
            if usage.cached_input_tokens:
                tokens += f" ({usage.cached_input_tokens} cached)"
            tokens += f", {usage.output_tokens} out"
            if usage.reasoning_output_tokens:
                tokens += f" ({usage.reasoning_output_tokens} reasoning)"
            parts.append(tokens)
        elif elapsed is not None:
            parts.append(f"{elapsed:.2f} s")
        if parts:
            self.note("· " + " · ".join(parts))

    def error(self, message: str) -> None:
        """A line saying what went wrong (and what to try), on ``err``."""
        self._end_reasoning()
        self._newline()
        self._write(self.err, "error: ", _RED, _BOLD)
        self._write(self.err, message + "\n")
        self.flush()


def pretty_arguments(arguments: str) -> str:
    """Tool-call arguments indented when they are JSON, as they are otherwise."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])

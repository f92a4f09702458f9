"""Showing a stream to a person on a terminal: text as it arrives, reasoning set apart,
tool calls as they stream (``→ name(`` the moment the name is known, then the
arguments), a closing line with usage."""

from __future__ import annotations

import json
import os
from typing import TextIO

from .errors import ChatStreamError
from .events import (
    Completed,
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
    Reasoning,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
    TokenUsage,
)

__all__ = ["Renderer", "use_color"]

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
    """Writes events to a text stream as a person would want to read them.

    Args:
        out: Where to write.
        color: Use ANSI colours (default: :func:`use_color` of ``out``).
        show_reasoning: Show reasoning text (dimmed); otherwise only note that it ran.
    """

    def __init__(
        self, out: TextIO, *, color: bool | None = None, show_reasoning: bool = True
    ) -> None:
        self.out = out
        self.color = use_color(out) if color is None else color
        self.show_reasoning = show_reasoning
        self._at_line_start = True
        self._choice = 0
        # What the last output was: "reasoning" (a block still open), "text" or None.
        self._block: str | None = None
        # The tool call whose arguments are being written as they arrive (one at a
        # time; the others are kept and written whole when they end), by call_id.
        self._live_call: str | None = None
        self._held_calls: dict[str, tuple[str, list[str]]] = {}

    def _style(self, text: str, *codes: str) -> str:
        return "".join(codes) + text + _RESET if self.color and codes else text

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self._at_line_start = text.endswith("\n")

    def _newline(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _switch_choice(self, index: int) -> None:
        if index != self._choice:
            self._choice = index
            self._hold_live_call()
            self._end_reasoning()
            self._newline()
            self._write(self._style(f"── choice {index} ──", _BOLD) + "\n")

    def _start_reasoning(self) -> None:
        if self._block != "reasoning":
            self._block = "reasoning"
            self._newline()
            label = "thinking…" if self.show_reasoning else "thinking… (hidden)"
            self._write(self._style(label, _DIM) + "\n")

    def _end_reasoning(self) -> None:
        """Close an open reasoning block with a blank line (the item itself may finish
        later: providers finish reasoning only with the whole choice)."""
        if self._block == "reasoning":
            self._newline()
            self._write("\n")
        self._block = None

    def _answer(self, text: str, *codes: str) -> None:
        self._hold_live_call()
        self._end_reasoning()
        self._block = "text"
        self._write(self._style(text, *codes))

    def event(self, event: ResponseEvent) -> None:
        """Show one event."""
        if isinstance(event, OutputTextDelta):
            self._switch_choice(event.choice_index)
            self._answer(event.delta)
        elif isinstance(event, FunctionCallArgumentsDelta):
            self._switch_choice(event.choice_index)
            if event.call_id == self._live_call:
                self._write(event.delta)
            elif event.call_id in self._held_calls:
                self._held_calls[event.call_id][1].append(event.delta)
        elif isinstance(event, ReasoningContentDelta):
            self._hold_live_call()
            self._switch_choice(event.choice_index)
            self._start_reasoning()
            if self.show_reasoning:
                self._write(self._style(event.delta, _DIM))
        elif isinstance(event, RefusalDelta):
            self._switch_choice(event.choice_index)
            self._answer(event.delta, _YELLOW)
        elif isinstance(event, OutputItemAdded):
            self._switch_choice(event.choice_index)
            if isinstance(event.item, Reasoning):
                self._hold_live_call()
                self._start_reasoning()
            elif isinstance(event.item, FunctionCall):
                self._call_added(event.item)
        elif isinstance(event, OutputItemDone):
            self._switch_choice(event.choice_index)
            item = event.item
            if isinstance(item, Reasoning):
                self._end_reasoning()
            elif isinstance(item, FunctionCall):
                self._call_ended(item)
            else:
                self._newline()
        elif isinstance(event, OutputItemIncomplete):
            self._switch_choice(event.choice_index)
            if isinstance(event.item, FunctionCall):
                self._call_ended(event.item, cut_off=True)
        elif isinstance(event, Completed):
            self._end_reasoning()
            self._newline()

    def _call_added(self, call: FunctionCall) -> None:
        """A call is announced: ``→ name(`` at once, unless another call is being
        written, in which case this one is written whole when it ends."""
        if self._live_call is None and self._block != "call":
            self._end_reasoning()
            self._newline()
            self._write(self._style(f"→ {call.name}(", _BOLD, _CYAN))
            self._live_call = call.call_id
            self._block = "call"
        else:
            self._held_calls[call.call_id] = (call.name, [])

    def _hold_live_call(self) -> None:
        """Something else is shown: the call being written continues out of sight."""
        if self._live_call is not None:
            self._held_calls[self._live_call] = ("", [])  # shown again, whole, at its end
            self._live_call = None
            self._write("…\n")
        if self._block == "call":
            self._block = None

    def _call_ended(self, call: FunctionCall, *, cut_off: bool = False) -> None:
        note = f"  ({call.call_id}, cut off)" if cut_off else f"  ({call.call_id})"
        if self._live_call is not None and call.call_id == self._live_call:
            self._write(self._style(")", _BOLD, _CYAN) + self._style(note, _DIM) + "\n")
            self._live_call = None
            self._block = None
            return
        # Not streamed here (another call was, or the events began later): all at once.
        self._held_calls.pop(call.call_id, None)
        self._end_reasoning()
        self._newline()
        head = self._style(f"→ {call.name}(", _BOLD, _CYAN)
        tail = self._style(")", _BOLD, _CYAN) + self._style(note, _DIM)
        self._write(head + call.arguments + tail + "\n")

    def user(self, text: str) -> None:
        """The user's message, the way a chat transcript shows it."""
        self._end_reasoning()
        self._newline()
        self._write(self._style("you> ", _BOLD, _GREEN) + text + "\n\n")

    def tool_result(self, call: FunctionCall, result: str) -> None:
        """The result sent back for a tool call, on one line (cut if long)."""
        self._newline()
        head = self._style(f"← {call.name}", _BOLD, _CYAN) + self._style(
            f"  ({call.call_id})", _DIM
        )
        text = " ".join(result.split())
        if len(text) > _RESULT_WIDTH:
            text = text[: _RESULT_WIDTH - 1] + "…"
        self._write(head + "\n" + self._style(_indent(text), _DIM) + "\n\n")

    def note(self, text: str) -> None:
        """A line of commentary, dimmed, set apart from the answer."""
        self._newline()
        self._write(self._style(text, _DIM) + "\n")

    def prompt(self, text: str) -> str:
        """``text`` styled as a prompt for the user's input (it is not written)."""
        return self._style(text, _BOLD, _GREEN)

    def summary(
        self,
        usage: TokenUsage | None,
        *,
        elapsed: float | None = None,
        first_token: float | None = None,
    ) -> None:
        """The closing line: time to first token, tokens per second, usage."""
        parts = []
        if first_token is not None:
            parts.append(f"first token {first_token * 1000:.0f} ms")
        if usage is not None:
            if (
                elapsed
                and first_token is not None
                and elapsed > first_token
                and usage.output_tokens
            ):
                rate = usage.output_tokens / (elapsed - first_token)
                parts.append(f"{rate:.1f} tok/s")
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
            self._newline()
            self._write(self._style("· " + " · ".join(parts), _DIM) + "\n")

    def error(self, error: ChatStreamError, err: TextIO, *, hint: str | None = None) -> None:
        """The error that ended the stream, as one line on ``err``, with ``hint`` (what
        to try) after it."""
        self._newline()
        self.out.flush()  # the answer so far before the error, when both are a terminal
        message = error.message + (f" {hint}" if hint else "")
        err.write(self._style("error: ", _RED, _BOLD) + message + "\n")


def pretty_arguments(arguments: str) -> str:
    """Tool-call arguments indented when they are JSON, as they are otherwise."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])

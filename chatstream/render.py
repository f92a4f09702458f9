"""Showing a stream to a person on a terminal: text as it arrives, reasoning set apart,
tool calls with pretty-printed arguments, a closing line with usage."""

from __future__ import annotations

import json
import os
from typing import TextIO

from .errors import ChatStreamError
from .events import (
    Completed,
    FunctionCall,
    OutputItemAdded,
    OutputItemDone,
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
_RESET = "\x1b[0m"


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
            self._newline()
            self._write(self._style(f"── choice {index} ──", _BOLD) + "\n")

    def event(self, event: ResponseEvent) -> None:
        """Show one event."""
        if isinstance(event, OutputTextDelta):
            self._switch_choice(event.choice_index)
            self._write(event.delta)
        elif isinstance(event, ReasoningContentDelta):
            self._switch_choice(event.choice_index)
            if self.show_reasoning:
                self._write(self._style(event.delta, _DIM))
        elif isinstance(event, RefusalDelta):
            self._switch_choice(event.choice_index)
            self._write(self._style(event.delta, _YELLOW))
        elif isinstance(event, OutputItemAdded):
            self._switch_choice(event.choice_index)
            if isinstance(event.item, Reasoning):
                self._newline()
                label = "thinking…" if self.show_reasoning else "thinking… (hidden)"
                self._write(self._style(label, _DIM) + "\n")
        elif isinstance(event, OutputItemDone):
            self._switch_choice(event.choice_index)
            item = event.item
            if isinstance(item, Reasoning):
                self._newline()
                self._write("\n")
            elif isinstance(item, FunctionCall):
                self._tool_call(item)
            else:
                self._newline()
        elif isinstance(event, Completed):
            self._newline()

    def _tool_call(self, call: FunctionCall) -> None:
        self._newline()
        head = self._style(f"→ {call.name}", _BOLD, _CYAN) + self._style(
            f"  ({call.call_id})", _DIM
        )
        self._write(head + "\n")
        self._write(_indent(pretty_arguments(call.arguments)) + "\n")

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

    def error(self, error: ChatStreamError, err: TextIO) -> None:
        """The error that ended the stream, as one line on ``err``."""
        self._newline()
        err.write(self._style("error: ", _RED, _BOLD) + error.message + "\n")


def pretty_arguments(arguments: str) -> str:
    """Tool-call arguments indented when they are JSON, as they are otherwise."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines() or [""])

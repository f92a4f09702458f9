"""The result of a stream: what it produced, finished or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ChatStreamError
from .events import FunctionCall, ResponseItem, TokenUsage

__all__ = ["ChoiceResult", "Response", "TRUNCATING_FINISH_REASONS"]

#: The finish reasons that end an answer before the model was done with it.
TRUNCATING_FINISH_REASONS = frozenset({"length", "content_filter"})


@dataclass(frozen=True)
class ChoiceResult:
    """What one choice (one of the ``n`` answers asked for) produced.

    Attributes:
        index: The choice's index.
        content: All its assistant text, joined.
        reasoning: All its reasoning text, joined.
        refusal: Its refusal text, or ``None`` if it sent none.
        tool_calls: The tool calls it finished, in order of first appearance.
        incomplete_tool_calls: Named tool calls it started but did not finish (cut off,
            or the stream failed): reported so nothing received is lost, never handed
            over as if whole.
        finish_reason: Its last ``finish_reason`` as the provider sent it, or ``None``.
        items: Its finished items, in the order they were finished.
    """

    index: int
    content: str = ""
    reasoning: str = ""
    refusal: str | None = None
    tool_calls: list[FunctionCall] = field(default_factory=list)
    incomplete_tool_calls: list[FunctionCall] = field(default_factory=list)
    finish_reason: str | None = None
    items: list[ResponseItem] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """True when the answer was cut short: ``finish_reason`` is ``"length"`` (the
        ``max_tokens`` limit or the context window) or ``"content_filter"``."""
        return self.finish_reason in TRUNCATING_FINISH_REASONS

    def to_result_dict(self) -> dict[str, Any]:
        """This choice in the conformance result format."""
        return {
            "index": self.index,
            "content": self.content,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [_call_dict(c) for c in self.tool_calls],
            "incomplete_tool_calls": [_call_dict(c) for c in self.incomplete_tool_calls],
            "finish_reason": self.finish_reason,
        }


def _call_dict(call: FunctionCall) -> dict[str, str]:
    return {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}


@dataclass(frozen=True)
class Response:
    """A stream's result: complete when it ended normally, partial when it failed.

    The shortcuts ``content``, ``reasoning``, ``refusal``, ``tool_calls``,
    ``incomplete_tool_calls``, ``finish_reason`` and ``items`` are those of choice 0, the
    only choice unless more were asked for.

    Attributes:
        response_id: The chunks' ``id`` (the first non-empty one), or ``""``.
        model: The chunks' ``model`` (the first non-empty one), or ``None``.
        choices: One result per choice seen, sorted by index.
        usage: Token usage (the last one the stream reported), or ``None``.
        error: The error that ended the stream, or ``None`` if it ended normally.
        skipped_events: Events whose data was not a JSON object, skipped.
    """

    response_id: str = ""
    model: str | None = None
    choices: list[ChoiceResult] = field(default_factory=list)
    usage: TokenUsage | None = None
    error: ChatStreamError | None = None
    skipped_events: int = 0

    @property
    def _first(self) -> ChoiceResult:
        for choice in self.choices:
            if choice.index == 0:
                return choice
        # A new one each time: a shared instance would share its lists between responses.
        return ChoiceResult(index=0)

    @property
    def content(self) -> str:
        """Choice 0's assistant text."""
        return self._first.content

    @property
    def reasoning(self) -> str:
        """Choice 0's reasoning text."""
        return self._first.reasoning

    @property
    def refusal(self) -> str | None:
        """Choice 0's refusal, or ``None``."""
        return self._first.refusal

    @property
    def tool_calls(self) -> list[FunctionCall]:
        """Choice 0's finished tool calls."""
        return self._first.tool_calls

    @property
    def incomplete_tool_calls(self) -> list[FunctionCall]:
        """Choice 0's tool calls that were started but not finished."""
        return self._first.incomplete_tool_calls

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish reason."""
        return self._first.finish_reason

    @property
    def items(self) -> list[ResponseItem]:
        """Choice 0's finished items, in order."""
        return self._first.items

    @property
    def truncated(self) -> bool:
        """True when choice 0's answer was cut short (``finish_reason`` ``"length"`` or
        ``"content_filter"``): the stream ended normally, but the model was not done."""
        return self._first.truncated

    @property
    def ok(self) -> bool:
        """True when the stream ended normally."""
        return self.error is None

    def to_result_dict(self) -> dict[str, Any]:
        """The result object of the conformance format (what ``replay --result`` prints)."""
        first = self._first.to_result_dict()
        usage = self.usage
        return {
            "response_id": self.response_id,
            "model": self.model,
            "finish_reason": first["finish_reason"],
            "content": first["content"],
            "reasoning": first["reasoning"],
            "refusal": first["refusal"],
            "tool_calls": first["tool_calls"],
            "incomplete_tool_calls": first["incomplete_tool_calls"],
            "usage": None if usage is None else usage.to_dict(),
            "error": None
            if self.error is None
            else {"kind": self.error.kind, "message": self.error.message},
            "choices": [c.to_result_dict() for c in self.choices],
        }

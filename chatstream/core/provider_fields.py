"""Reading what providers put beyond the common fields: reasoning under each of its names,
the raw reasoning entries that must be sent back, logprobs, annotations, audio, usage in
its many shapes, and in-band error objects.

Pure functions of the chunk's JSON, plus :class:`ProviderData`, which keeps per choice
what arrived in pieces.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ProviderError
from ..events import (
    Audio,
    AudioDelta,
    Reasoning,
    ReasoningText,
    ResponseEvent,
    TokenUsage,
    _freeze,
    _ReadOnlyDict,
    _ReadOnlyList,
)

__all__ = [
    "Events",
    "ProviderData",
    "merge_entries",
    "normalised_usage",
    "provider_error",
    "reasoning_field",
    "reasoning_text",
]

#: The events one call produces, in order.
Events = list[ResponseEvent]

_WHOLE_ENTRIES = frozenset({"reasoning.encrypted", "redacted_thinking"})
# The text fields of reasoning entries, joined when one entry arrives in fragments.
_ENTRY_TEXT = ("text", "summary", "thinking")


def merge_entries(kept: list[dict[str, Any]], entries: list[Any]) -> None:
    """Add raw reasoning entries (``reasoning_details``, ``thinking_blocks``) to ``kept``,
    joining the fragments of one entry: an entry continues the last one when both have
    the same ``type`` and ``index`` and the last is not yet signed. Its text fields are
    appended; its other fields fill in what the entry did not have yet."""
    for entry in entries:
        if type(entry) is not dict:
            continue
        last = kept[-1] if kept else None
        if (
            last is not None
            and last.get("type") == entry.get("type")
            and last.get("index") == entry.get("index")
            and last.get("type") not in _WHOLE_ENTRIES
            and not last.get("signature")
        ):
            for key, value in entry.items():
                if key in _ENTRY_TEXT and type(value) is str and type(last.get(key)) is str:
                    last[key] += value
                elif value is not None and last.get(key) is None:
                    last[key] = value
        else:
            kept.append(dict(entry))


class ProviderData:
    """What a choice received beyond text, reasoning text and tool calls."""

    __slots__ = (
        "annotations",
        "audio_data",
        "audio_expires_at",
        "audio_id",
        "audio_transcript",
        "content_logprobs",
        "details",
        "done_annotations",
        "refusal_logprobs",
        "thinking_blocks",
    )

    def __init__(self) -> None:
        self.content_logprobs: list[Any] | None = None
        self.refusal_logprobs: list[Any] | None = None
        self.annotations: list[Any] = []  # of the open message
        self.done_annotations: list[Any] = []  # of the finished messages
        self.details: list[dict[str, Any]] = []
        self.thinking_blocks: list[dict[str, Any]] = []
        self.audio_id: str | None = None
        self.audio_expires_at: int | None = None
        self.audio_transcript: list[str] | None = None
        self.audio_data: list[str] = []

    def add_logprobs(self, raw: dict[str, Any]) -> tuple[list[Any] | None, list[Any] | None]:
        """Collect a chunk's ``logprobs``; return its content and refusal entries, frozen
        once here for both the delta event and the result."""
        content = raw.get("content")
        refusal = raw.get("refusal")
        if type(content) is list:
            content = _freeze(content)
            if self.content_logprobs is None:
                self.content_logprobs = []
            self.content_logprobs += content
        else:
            content = None
        if type(refusal) is list:
            refusal = _freeze(refusal)
            if self.refusal_logprobs is None:
                self.refusal_logprobs = []
            self.refusal_logprobs += refusal
        else:
            refusal = None
        return content, refusal

    def logprobs(self) -> _ReadOnlyDict | None:
        content, refusal = self.content_logprobs, self.refusal_logprobs
        if content is None and refusal is None:
            return None
        return _ReadOnlyDict(
            content=None if content is None else _ReadOnlyList(content),
            refusal=None if refusal is None else _ReadOnlyList(refusal),
        )

    def take_annotations(self) -> list[Any] | None:
        """The open message's annotations, moved to the finished ones."""
        if not self.annotations:
            return None
        taken = self.annotations
        self.done_annotations += taken
        self.annotations = []
        return _ReadOnlyList(taken)

    def all_annotations(self) -> list[Any] | None:
        every = self.done_annotations + self.annotations
        return _ReadOnlyList(every) if every else None

    def add_audio(self, audio: dict[str, Any], index: int, events: Events) -> None:
        transcript = audio.get("transcript")
        data = audio.get("data")
        audio_id = audio.get("id")
        expires_at = audio.get("expires_at")
        transcript = transcript if type(transcript) is str else ""
        data = data if type(data) is str else ""
        audio_id = audio_id if type(audio_id) is str and audio_id else None
        expires_at = expires_at if type(expires_at) is int else None
        if self.audio_transcript is None:
            self.audio_transcript = []
        self.audio_transcript.append(transcript)
        self.audio_data.append(data)
        if audio_id is not None and self.audio_id is None:
            self.audio_id = audio_id
        if expires_at is not None:
            self.audio_expires_at = expires_at
        events.append(AudioDelta(transcript, data, audio_id, expires_at, index))

    def audio(self) -> Audio | None:
        if self.audio_transcript is None:
            return None
        return Audio(
            id=self.audio_id,
            transcript="".join(self.audio_transcript),
            data="".join(self.audio_data),
            expires_at=self.audio_expires_at,
        )

    def has_reasoning_data(self) -> bool:
        return bool(self.details or self.thinking_blocks)

    def reasoning_item(self, content: tuple[ReasoningText, ...]) -> Reasoning:
        """The finished reasoning item, with the raw entries received since the last one."""
        details, self.details = self.details, []
        blocks, self.thinking_blocks = self.thinking_blocks, []
        encrypted = None
        item_id = ""
        for entry in details + blocks:
            if encrypted is None and entry.get("type") in _WHOLE_ENTRIES:
                data = entry.get("data")
                encrypted = data if type(data) is str else None
            value = entry.get("id")
            if not item_id and type(value) is str:
                item_id = value
        return Reasoning(
            id=item_id,
            content=content,
            encrypted_content=encrypted,
            details=_freeze(details) if details else None,
            thinking_blocks=_freeze(blocks) if blocks else None,
        )


def reasoning_text(delta: dict[str, Any]) -> str | None:
    """The reasoning of a delta, from exactly one of the fields providers use for it.

    Some providers send the same text under two names, so the first present field wins
    and the others are ignored: ``reasoning`` (a string, or an object with ``text`` or
    ``content``; the specification's field, vLLM, Ollama, OpenRouter), then
    ``reasoning_content`` (a string, or an object with ``text``; DeepSeek, Qwen, xAI,
    older vLLM), then the ``text`` or ``summary`` of ``reasoning_details`` entries
    (OpenRouter), then the ``thinking`` of ``thinking_blocks`` entries (LiteLLM's
    Anthropic-compatible shape).
    """
    reasoning = delta.get("reasoning")
    if type(reasoning) is str:
        if reasoning:
            return reasoning
    elif type(reasoning) is dict:
        for key in ("text", "content"):
            value = reasoning.get(key)
            if type(value) is str:
                return value
    content = delta.get("reasoning_content")
    if type(content) is dict:
        content = content.get("text")
    if type(content) is str and content:
        return content
    details = delta.get("reasoning_details")
    if type(details) is list:
        return _joined(details, ("text", "summary"))
    blocks = delta.get("thinking_blocks")
    if type(blocks) is list:
        return _joined(blocks, ("thinking",))
    return None


def reasoning_field(delta: dict[str, Any]) -> str | None:
    """The field :func:`reasoning_text` read the reasoning from (same order)."""
    reasoning = delta.get("reasoning")
    if (type(reasoning) is str and reasoning) or type(reasoning) is dict:
        return "reasoning"
    content = delta.get("reasoning_content")
    if type(content) in (str, dict) and content:
        return "reasoning_content"
    if type(delta.get("reasoning_details")) is list:
        return "reasoning_details"
    if type(delta.get("thinking_blocks")) is list:
        return "thinking_blocks"
    return None


#: The delta fields only some providers send (read by read_rare_fields).
def _joined(entries: list[Any], keys: tuple[str, ...]) -> str:
    """The text of each entry (an object) under the first of ``keys`` it has, joined."""
    texts = []
    for entry in entries:
        if type(entry) is dict:
            for key in keys:
                value = entry.get(key)
                if type(value) is str:
                    texts.append(value)
                    break
    return "".join(texts)


def _int(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def normalised_usage(raw: dict[str, Any]) -> TokenUsage:
    """Normalise a provider's usage object (``null`` counts as 0)."""
    prompt = raw.get("prompt_tokens_details")
    cached = prompt.get("cached_tokens") if type(prompt) is dict else None
    if type(cached) is not int:
        cached = raw.get("cached_tokens")  # Moonshot
    if type(cached) is not int:
        cached = raw.get("prompt_cache_hit_tokens")  # DeepSeek
    completion = raw.get("completion_tokens_details")
    reasoning = completion.get("reasoning_tokens") if type(completion) is dict else None
    if type(reasoning) is not int:
        reasoning = raw.get("reasoning_tokens")  # at the top level (some gateways)
    cost = raw.get("cost")
    cost_details = raw.get("cost_details")
    input_tokens = _int(raw.get("prompt_tokens"))
    output_tokens = _int(raw.get("completion_tokens"))
    total = raw.get("total_tokens")
    return TokenUsage(
        input_tokens=input_tokens,
        cached_input_tokens=_int(cached),
        output_tokens=output_tokens,
        reasoning_output_tokens=_int(reasoning),
        total_tokens=total if type(total) is int and total >= 0 else input_tokens + output_tokens,
        cost=cost if type(cost) in (int, float) else None,
        cost_details=cost_details if type(cost_details) is dict else None,
        prompt_tokens_details=prompt if type(prompt) is dict else None,
        completion_tokens_details=completion if type(completion) is dict else None,
    )


def provider_error(payload: Any) -> ProviderError:
    """A :class:`ProviderError` from an in-band error object, in any of its shapes:
    ``{"error": {...}}``, ``{"error": "text"}``, ``{"type": "error", "message": ...}``,
    ``{"type": "error", "error": {...}}``, or the data of an ``event: error`` frame."""
    detail: Any = payload
    if type(payload) is dict:
        inner = payload.get("error")
        if inner is not None:
            detail = inner
    if type(detail) is dict:
        message = detail.get("message")
        kind = detail.get("type")
        code = detail.get("code")
        param = detail.get("param")
        return ProviderError(
            f"The provider reported an error: {message}"
            if isinstance(message, str) and message
            else "The provider reported an error.",
            type=kind if type(kind) is str else None,
            code=code if type(code) in (str, int) else None,
            param=param if type(param) is str else None,
            payload=payload,
        )
    if type(detail) is str:
        text = detail
    else:
        try:
            text = json.dumps(detail)
        except RecursionError:  # it parsed, but one level deeper here is too deep
            text = f"(a {type(detail).__name__} nested too deeply to show)"
    return ProviderError(f"The provider reported an error: {text}", payload=payload)

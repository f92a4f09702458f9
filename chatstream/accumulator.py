"""The reduction rules: Chat Completions chunks in, ordered events and finished items out.

Theory of operation
-------------------
The :class:`Accumulator` is fed one parsed chunk at a time (``feed``), then told how the
input ended (``finish``). Each call returns the events it produced, in order. It does no
I/O and keeps no clock: the same chunks always give the same events.

Per choice it keeps at most one open reasoning item, one open assistant message and the
tool calls being assembled. Within a delta, reasoning is read before text and text
before tool calls, so when one chunk carries all three the items open in that order.

A ``finish_reason`` finishes the choice's items, in the specification's order:

* ``tool_calls`` (and the legacy ``function_call``): the reasoning item, then every named
  call in order of first appearance. The message stays open until the stream ends.
* ``error`` (with no error object): the stream ends in :class:`~chatstream.ProviderError`.
* ``stop``, ``length``, ``content_filter`` or any other reason: the reasoning item, the
  message, then the named calls whose arguments are empty or parse as JSON. A call whose
  arguments do not parse was cut off; it is reported as incomplete, never handed over as
  whole. ``length`` and ``content_filter`` are normal ends: the answer was cut short, and
  :attr:`~chatstream.Response.truncated` says so. (The specification instead ends a
  ``length`` stream in :class:`~chatstream.ContextWindowExceeded`; ``length_is_error=True``
  restores that, finishing nothing more.)

:class:`~chatstream.Completed` carries the usage and the response id, and usage often
arrives after the finish chunk, so it is sent when the input ends (``[DONE]``, or end of
input after a finish reason), after every item still open has been finished. Input that
ends with neither is cut off: :class:`~chatstream.IncompleteStreamError`.

Where the rules go beyond the specification, they follow
``shared/conformance/README.md``, whose corpus of recorded provider streams proves them;
each extension is marked below with the quirk it handles.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ._content import ContentFilter, Piece
from .errors import (
    ChatStreamError,
    ContextWindowExceeded,
    IncompleteStreamError,
    LimitExceededError,
    ProviderError,
)
from .events import (
    Audio,
    AudioDelta,
    Completed,
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputText,
    OutputTextDelta,
    OutputTextParsed,
    RawChunk,
    Reasoning,
    ReasoningContentDelta,
    ReasoningText,
    Refusal,
    RefusalDelta,
    ResponseEvent,
    ResponseItem,
    TokenUsage,
    _arguments_delta,
)
from .partial_json import PartialJson
from .response import ChoiceResult, ErrorInfo, Response
from .textcalls import TextCall, requires_tool_call
from .think import ThinkTags

__all__ = ["DEFAULT_MAX_CHOICES", "DEFAULT_MAX_TOOL_CALLS", "Accumulator"]

log = logging.getLogger("chatstream")

Events = list[ResponseEvent]

#: Most choices a response may have (openai-node caps them too).
DEFAULT_MAX_CHOICES = 128
#: Most tool calls one choice may make.
DEFAULT_MAX_TOOL_CALLS = 1024


def _join(pieces: list[str]) -> str:
    """The pieces of a text joined. An emoji some servers split between two deltas
    (``"\\ud83d"`` ending one, ``"\\ude00"`` starting the next) is joined back into its
    character; a lone half stays as it is. Only a piece's last character can be the
    first half of a split pair (JSON joins the pairs within one string), so only those
    are looked at."""
    text = "".join(pieces)
    if any(piece and "\ud800" <= piece[-1] <= "\udbff" for piece in pieces):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text


class _Call:
    """A tool call being assembled from fragments."""

    __slots__ = (
        "announced_id",
        "arguments",
        "custom",
        "extra_content",
        "id",
        "name",
        "output_index",
        "slot",
        "view",
    )

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        # A custom (free-text) tool call: its input is text, never JSON.
        self.custom = False
        # Gemini's thought signature lives here and must go back with the call.
        self.extra_content: dict[str, Any] | None = None
        # Set when the call is announced (its OutputItemAdded, once it has a name): its
        # position among the choice's calls, and the call_id its events carry.
        self.output_index: int | None = None
        self.announced_id = ""
        # The partial JSON view of the arguments (partial_json=True only).
        self.view: PartialJson | None = None

    def item(self) -> FunctionCall:
        return FunctionCall(
            name=self.name or "",
            arguments=_join(self.arguments),
            call_id=self.id or f"tool-call-{self.slot}",
            custom=self.custom,
            extra_content=self.extra_content,
        )

    def looks_whole(self, reason: str | None) -> bool:
        """Whether the call was not cut off: empty arguments, or arguments that parse as
        JSON. A custom call's input is free text, so only a ``length`` finish says it
        was cut off."""
        if self.custom:
            return reason != "length"
        text = "".join(self.arguments)
        if not text.strip():
            return True
        try:
            json.loads(text)
        except (ValueError, RecursionError):  # nested too deeply to read: not whole
            return False
        return True


class _Choice:
    """The state of one choice."""

    __slots__ = (
        "announced",
        "calls",
        "calls_by_id",
        "calls_by_slot",
        "content_filter",
        "done_calls",
        "finish_reason",
        "incomplete_calls",
        "index",
        "items",
        "json_view",
        "last_call",
        "message_open",
        "message_parts",
        "next_slot",
        "partial_json",
        "provider",
        "reasoning_field",
        "reasoning_open",
        "reasoning_parts",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        # What the choice received is kept once: in its finished items, and in the parts
        # of the open ones (see _received).
        # The open message: its parts as [kind, pieces], consecutive pieces of one kind
        # joined into one part (the specification's later versions do the same).
        self.message_parts: list[tuple[type[OutputText | Refusal], list[str]]] = []
        self.message_open = False
        self.reasoning_parts: list[str] = []
        self.reasoning_open = False
        # Tool calls being assembled, in order of first appearance.
        self.calls: list[_Call] = []
        self.calls_by_slot: dict[int, _Call] = {}
        self.calls_by_id: dict[str, _Call] = {}
        self.last_call: _Call | None = None
        self.next_slot = 0
        self.done_calls: list[FunctionCall] = []
        self.incomplete_calls: list[FunctionCall] = []
        self.items: list[ResponseItem] = []
        self.finish_reason: str | None = None
        # What only some providers send (logprobs, annotations, audio, raw reasoning
        # entries); made on first use, so the common streams pay nothing for it.
        self.provider: _ProviderData | None = None
        # The delta field the reasoning text came in, to send it back under that name.
        self.reasoning_field: str | None = None
        # Live views: how many calls were announced, and whether to parse them partially.
        self.announced = 0
        self.partial_json = False
        # The content options (think tags, calls as text), and the JSON content view.
        self.content_filter: ContentFilter | None = None
        self.json_view: PartialJson | None = None

    def extras(self) -> _ProviderData:
        if self.provider is None:
            self.provider = _ProviderData()
        return self.provider

    # --- appending ---------------------------------------------------------------------

    def add_text(
        self,
        text: str,
        events: Events,
        filtered: bool = False,
        logprobs: list[Any] | None = None,
    ) -> None:
        """Add content text; ``filtered``: it already went through the content filter;
        ``logprobs``: the chunk's content logprobs, carried on the delta event."""
        if self.content_filter is not None and not filtered:
            self.add_pieces(self.content_filter.feed(text), events)
            return
        self._message_piece(OutputText, text, events)
        events.append(OutputTextDelta(text, self.index, logprobs))
        view = self.json_view
        if view is not None and view.append(text):
            events.append(OutputTextParsed(view.value, self.index))

    def add_pieces(self, pieces: list[Piece], events: Events) -> None:
        """What the content filter made of the content: text, reasoning, calls."""
        for piece in pieces:
            if isinstance(piece, TextCall):
                slot = self.next_slot
                while slot in self.calls_by_slot:
                    slot += 1
                function = {"name": piece.name, "arguments": piece.arguments}
                self.add_call_fragment({"index": slot, "function": function}, events)
            elif piece[0] == "reasoning":
                self.add_reasoning(piece[1], events)
            elif piece[1]:
                self.add_text(piece[1], events, filtered=True)

    def flush_content(self, events: Events) -> None:
        """The content ended: hand on what the content filter held back."""
        if self.content_filter is not None:
            self.add_pieces(self.content_filter.flush(), events)

    def add_refusal(self, text: str, events: Events, logprobs: list[Any] | None = None) -> None:
        self._message_piece(Refusal, text, events)
        events.append(RefusalDelta(text, self.index, logprobs))

    def _message_piece(self, kind: type[OutputText | Refusal], text: str, events: Events) -> None:
        if not self.message_open:
            self.message_open = True
            events.append(OutputItemAdded(Message(), self.index))
        parts = self.message_parts
        if parts and parts[-1][0] is kind:
            parts[-1][1].append(text)
        else:
            parts.append((kind, [text]))

    def add_reasoning(self, text: str, events: Events) -> None:
        self.open_reasoning(events)
        self.reasoning_parts.append(text)
        events.append(ReasoningContentDelta(text, 0, self.index))

    def open_reasoning(self, events: Events) -> None:
        if not self.reasoning_open:
            self.reasoning_open = True
            events.append(OutputItemAdded(Reasoning(), self.index))

    def add_call_fragment(self, fragment: dict[str, Any], events: Events) -> None:
        if len(fragment) == 2:
            # The usual fragment, {"index": i, "function": {"arguments": "..."}} for a
            # call open at i (most of a long call), handled as the general rules below
            # would, in fewer steps; anything else goes on to them.
            index = fragment.get("index")
            function = fragment.get("function")
            if type(index) is int and index >= 0 and type(function) is dict:
                call = self.calls_by_slot.get(index)
                arguments = function.get("arguments")
                if call is not None and len(function) == 1 and type(arguments) is str:
                    if arguments:
                        call.arguments.append(arguments)
                        if call.view is None and call.output_index is not None:
                            events.append(
                                _arguments_delta(
                                    call.announced_id,
                                    arguments,
                                    call.output_index,
                                    self.index,
                                    None,
                                )
                            )
                        elif call.output_index is not None:
                            self._arguments_delta(call, arguments, events)
                    self.last_call = call
                    return
        index = fragment.get("index")
        slot = index if type(index) is int and index >= 0 else None
        call_id = fragment.get("id")
        if type(call_id) is not str or not call_id:
            call_id = None  # an empty id counts as absent (alibaba-tool-call)
        call = self.calls_by_id.get(call_id) if call_id is not None else None
        if call is None and slot is not None:
            call = self.calls_by_slot.get(slot)
            if call is not None and call_id is not None and call.id not in (None, call_id):
                # A new id on an occupied index is a new call: Ollama and Bedrock proxies
                # number every parallel call 0 (vercel/ai#14277, langchain#35281).
                call = None
        if call is None and call_id is None and slot is None:
            call = self.last_call  # neither id nor index: it continues the last call
        if call is None:
            if slot is None:
                while self.next_slot in self.calls_by_slot:
                    self.next_slot += 1
                slot = self.next_slot
                self.next_slot += 1
            call = _Call(slot)
            self.calls.append(call)
            self.calls_by_slot[slot] = call
        if call_id is not None and call.id is None:
            call.id = call_id
            self.calls_by_id[call_id] = call
        function = fragment.get("function")
        key = "arguments"
        if type(function) is not dict:
            # OpenAI's custom (free-text) tools: {"type": "custom", "custom": {"name",
            # "input"}}; the input text is joined like arguments.
            function = fragment.get("custom")
            key = "input"
            if type(function) is dict:
                call.custom = True
        if type(function) is dict:
            name = function.get("name")
            if call.name is None and type(name) is str and name:
                call.name = name  # the first non-empty name; repeats never double it
                self._announce(call, events)
            arguments = function.get(key)
            if type(arguments) is str and arguments:
                call.arguments.append(arguments)
                if call.output_index is not None:
                    self._arguments_delta(call, arguments, events)
        extra = fragment.get("extra_content")
        if type(extra) is dict:
            call.extra_content = (
                extra if call.extra_content is None else {**call.extra_content, **extra}
            )
        self.last_call = call

    def _announce(self, call: _Call, events: Events) -> None:
        """The call has a name: announce it, then the arguments that came before."""
        call.output_index = self.announced
        self.announced += 1
        # Its events keep the id known now (an id that comes later is the item's).
        call.announced_id = call.id or f"tool-call-{call.slot}"
        if self.partial_json and not call.custom:
            call.view = PartialJson()
        item = FunctionCall(call.name or "", "", call.announced_id, custom=call.custom)
        events.append(OutputItemAdded(item, self.index))
        for piece in call.arguments:
            self._arguments_delta(call, piece, events)

    def _arguments_delta(self, call: _Call, piece: str, events: Events) -> None:
        view = call.view
        if view is not None:
            view.append(piece)
        events.append(
            _arguments_delta(
                call.announced_id,
                piece,
                call.output_index or 0,
                self.index,
                None if view is None else view.value,
            )
        )

    # --- finishing ---------------------------------------------------------------------

    def finish_reasoning(self, events: Events) -> None:
        if self.reasoning_open:
            self.reasoning_open = False
            text = _join(self.reasoning_parts)
            self.reasoning_parts = []
            content = [ReasoningText(text)] if text else []
            if self.provider is None or not self.provider.has_reasoning_data():
                self._done(Reasoning(content=content), events)
            else:
                self._done(self.provider.reasoning_item(content), events)

    def finish_message(self, events: Events) -> None:
        if self.message_open:
            self.message_open = False
            content = [kind(_join(pieces)) for kind, pieces in self.message_parts]
            self.message_parts = []
            annotations = None if self.provider is None else self.provider.take_annotations()
            self._done(Message(content=content, annotations=annotations), events)

    def finish_calls(self, events: Events, *, complete: bool, check_json: bool) -> None:
        """Hand over the open calls: all named ones when ``complete``, else none; with
        ``check_json`` only those that were not cut off. Unnamed calls are dropped."""
        for call in self.calls:
            if call.name is None:
                log.debug("dropping tool call %s: it never got a name", call.slot)
            elif complete and (not check_json or call.looks_whole(self.finish_reason)):
                item = call.item()
                self.done_calls.append(item)
                self._done(item, events)
            else:
                item = call.item()
                self.incomplete_calls.append(item)
                events.append(OutputItemIncomplete(item, call.output_index or 0, self.index))
        self.calls = []
        self.calls_by_slot = {}
        self.calls_by_id = {}
        self.last_call = None
        self.next_slot = 0

    def drop_last_call(self) -> None:
        """Forget the call opened last (one over the limit)."""
        call = self.calls.pop()
        self.calls_by_slot.pop(call.slot, None)
        if call.id is not None:
            self.calls_by_id.pop(call.id, None)
        self.last_call = self.calls[-1] if self.calls else None

    def call_count(self) -> int:
        """How many tool calls the choice has made (finished, cut off or open)."""
        return len(self.done_calls) + len(self.incomplete_calls) + len(self.calls)

    def _done(self, item: ResponseItem, events: Events) -> None:
        self.items.append(item)
        events.append(OutputItemDone(item, self.index))

    def _received(self) -> tuple[list[str], list[str], list[str]]:
        """The text, refusal and reasoning received, in order: the parts of the finished
        items, then the pieces of the open ones. A finished item's text is already
        joined, so the result shares that string instead of holding a second copy."""
        text: list[str] = []
        refusal: list[str] = []
        reasoning: list[str] = []
        for item in self.items:
            if type(item) is Message:
                for part in item.content:
                    (text if type(part) is OutputText else refusal).append(part.text)
            elif type(item) is Reasoning:
                reasoning += [part.text for part in item.content]
        for kind, pieces in self.message_parts:
            (text if kind is OutputText else refusal).extend(pieces)
        reasoning += self.reasoning_parts
        return text, refusal, reasoning

    def result(self) -> ChoiceResult:
        pending = [c.item() for c in self.calls if c.name is not None]
        text, refusal, reasoning = self._received()
        provider = self.provider
        return ChoiceResult(
            index=self.index,
            content=_join(text),
            reasoning=_join(reasoning),
            refusal=_join(refusal) if refusal else None,
            tool_calls=list(self.done_calls),
            incomplete_tool_calls=self.incomplete_calls + pending,
            finish_reason=self.finish_reason,
            items=list(self.items),
            logprobs=None if provider is None else provider.logprobs(),
            annotations=None if provider is None else provider.all_annotations(),
            audio=None if provider is None else provider.audio(),
            reasoning_field=self.reasoning_field,
        )


# Entry types whose data comes whole (encrypted reasoning): never joined with another.
_WHOLE_ENTRIES = frozenset({"reasoning.encrypted", "redacted_thinking"})
# The text fields of reasoning entries, joined when one entry arrives in fragments.
_ENTRY_TEXT = ("text", "summary", "thinking")


def _merge_entries(kept: list[dict[str, Any]], entries: list[Any]) -> None:
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


class _ProviderData:
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
        """Collect a chunk's ``logprobs``; return its content and refusal entries."""
        content = raw.get("content")
        refusal = raw.get("refusal")
        if type(content) is list:
            if self.content_logprobs is None:
                self.content_logprobs = []
            self.content_logprobs += content
        else:
            content = None
        if type(refusal) is list:
            if self.refusal_logprobs is None:
                self.refusal_logprobs = []
            self.refusal_logprobs += refusal
        else:
            refusal = None
        return content, refusal

    def logprobs(self) -> dict[str, Any] | None:
        if self.content_logprobs is None and self.refusal_logprobs is None:
            return None
        return {"content": self.content_logprobs, "refusal": self.refusal_logprobs}

    def take_annotations(self) -> list[Any] | None:
        """The open message's annotations, moved to the finished ones."""
        if not self.annotations:
            return None
        taken = self.annotations
        self.done_annotations += taken
        self.annotations = []
        return taken

    def all_annotations(self) -> list[Any] | None:
        every = self.done_annotations + self.annotations
        return every or None

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

    def reasoning_item(self, content: list[ReasoningText]) -> Reasoning:
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
            details=details or None,
            thinking_blocks=blocks or None,
        )


def _reasoning_text(delta: dict[str, Any]) -> str | None:
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


def _reasoning_field(delta: dict[str, Any]) -> str | None:
    """The field :func:`_reasoning_text` read the reasoning from (same order)."""
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


#: The delta fields only some providers send (read by _rare_delta_fields).
_RARE_DELTA_KEYS = frozenset({"reasoning_details", "thinking_blocks", "annotations", "audio"})


def _rare_delta_fields(state: _Choice, delta: dict[str, Any], events: Events) -> None:
    """Keep what only some providers put in a delta: the raw reasoning entries (they go
    back on the next request), URL annotations and audio."""
    details = delta.get("reasoning_details")
    if type(details) is list and details:
        state.open_reasoning(events)  # also for entries without text (encrypted ones)
        _merge_entries(state.extras().details, details)
    blocks = delta.get("thinking_blocks")
    if type(blocks) is list and blocks:
        state.open_reasoning(events)
        _merge_entries(state.extras().thinking_blocks, blocks)
    annotations = delta.get("annotations")
    if type(annotations) is list and annotations:
        state.extras().annotations += annotations
    audio = delta.get("audio")
    if type(audio) is dict:
        state.extras().add_audio(audio, state.index, events)


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


def _usage(raw: dict[str, Any]) -> TokenUsage:
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


def _provider_error(payload: Any) -> ProviderError:
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


class Accumulator:
    """Reduces Chat Completions chunks to events and a :class:`~chatstream.Response`.

    Feed it every chunk (a parsed ``data:`` payload) in order, then call :meth:`finish`
    once the input ends. It never raises for what a provider sends: a stream that ends
    in an error sets :attr:`error` instead, after which it ignores further input.

    Args:
        drop_tool_calls_on_stop: Restore the specification's rule that ``finish_reason:
            "stop"`` drops every tool call. By default a finished call is kept, because
            Ollama, Gemini and sometimes OpenAI end tool calls with ``stop``.
        length_is_error: Restore the specification's rule that ``finish_reason:
            "length"`` ends the stream in :class:`~chatstream.ContextWindowExceeded`. By
            default it is a normal end whose answer was cut short (a ``max_tokens`` limit
            is the caller's own choice, not a failure).
        raw_chunks: Also return each chunk as it was sent, as a
            :class:`~chatstream.RawChunk` event before the events made from it.
        max_choices: Most choices; one more ends the stream in
            :class:`~chatstream.LimitExceededError`.
        max_tool_calls: Most tool calls in one choice; likewise.
        partial_json: Give each :class:`~chatstream.FunctionCallArgumentsDelta` the
            arguments parsed so far (``parsed``), and, when ``request`` asked for JSON
            content, send :class:`~chatstream.OutputTextParsed` as it grows (see
            :mod:`chatstream.partial_json`).
        think_tags: Move the content between these think tags to reasoning (see
            :mod:`chatstream.think`).
        text_tool_calls: Recover tool calls written into the content as calls (see
            :mod:`chatstream.textcalls`).
        request: The request body, when known: its ``response_format`` and its
            ``tools`` and ``tool_choice`` tell what content to expect.
    """

    def __init__(
        self,
        *,
        drop_tool_calls_on_stop: bool = False,
        length_is_error: bool = False,
        raw_chunks: bool = False,
        max_choices: int = DEFAULT_MAX_CHOICES,
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
        partial_json: bool = False,
        think_tags: ThinkTags | None = None,
        text_tool_calls: bool = False,
        request: Mapping[str, Any] | None = None,
    ) -> None:
        self.drop_tool_calls_on_stop = drop_tool_calls_on_stop
        self.length_is_error = length_is_error
        self.raw_chunks = raw_chunks
        self.max_choices = max_choices
        self.max_tool_calls = max_tool_calls
        self.partial_json = partial_json
        self.think_tags = think_tags
        self.text_tool_calls = text_tool_calls
        format_ = request.get("response_format") if request else None
        self._json_content = partial_json and (
            isinstance(format_, Mapping) and format_.get("type") in ("json_object", "json_schema")
        )
        self._bare_calls = text_tool_calls and requires_tool_call(request)
        #: The error that ended the stream, or ``None``.
        self.error: ChatStreamError | None = None
        #: True once the stream has ended, normally or not.
        self.ended = False
        #: Events whose data was not a JSON object (skipped).
        self.skipped_events = 0
        self._choices: dict[int, _Choice] = {}
        self._response_id = ""
        self._model: str | None = None
        self._usage: dict[str, Any] | None = None
        self._seen_finish = False
        # An error a finish reason announced; it ends the stream once the input ends,
        # so that a usage chunk after the finish still counts.
        self._pending_error: ChatStreamError | None = None
        # A choice finished with "error" in the chunk being read: the stream ends in it.
        self._error_finish: ProviderError | None = None
        self._cache: Response | None = None
        # What the chunks say about the whole response (see Completed).
        self._fingerprint: str | None = None
        self._head_read = False
        self._service_tier: str | None = None
        self._citations: list[Any] | None = None
        self._search_results: list[Any] | None = None
        self._timings: dict[str, Any] | None = None

    @property
    def all_choices_finished(self) -> bool:
        """True when every choice seen so far has a finish reason: only trailing usage
        or ``[DONE]`` can follow."""
        return self._seen_finish and all(
            c.finish_reason is not None for c in self._choices.values()
        )

    def feed(self, chunk: Any, *, event: str = "message") -> Events:
        """Add one chunk (the parsed data of one SSE event) and return its events.

        Args:
            chunk: The decoded JSON. Anything but an object is skipped and counted.
            event: The SSE event type; data of an ``error`` event is a provider error.
        """
        if self.ended:
            return []
        self._cache = None
        if event == "error":
            self._fail(_provider_error(chunk))
            return []
        if type(chunk) is not dict:
            self.skipped_events += 1
            return []
        if not self._response_id:
            value = chunk.get("id")
            if type(value) is str:
                self._response_id = value
        if self._model is None:
            value = chunk.get("model")
            if type(value) is str and value:
                self._model = value
        events: Events = []
        if self.raw_chunks:
            events.append(RawChunk(chunk))
        if not self._head_read:
            # The same on every chunk: read until the first one with choices.
            value = chunk.get("system_fingerprint")
            if type(value) is str and value:
                self._fingerprint = value
            value = chunk.get("service_tier")
            if type(value) is str and value:
                self._service_tier = value
            self._head_read = bool(chunk.get("choices"))
        # Perplexity repeats these on every chunk; llama.cpp sends timings on the last.
        value = chunk.get("citations")
        if type(value) is list:
            self._citations = value
        value = chunk.get("search_results")
        if type(value) is list:
            self._search_results = value
        value = chunk.get("timings")
        if type(value) is dict:
            self._timings = value
        usage = chunk.get("usage")
        if type(usage) is not dict:
            groq = chunk.get("x_groq")
            usage = groq.get("usage") if type(groq) is dict else None
        if type(usage) is dict:
            self._usage = usage  # the last one wins (xAI sends it before the last chunk)
        error = chunk.get("error")
        failed = error is not None or chunk.get("type") == "error"
        choices = chunk.get("choices")
        if type(choices) is list:
            for position, choice in enumerate(choices):
                if type(choice) is dict:
                    self._feed_choice(choice, position, events, finish=not failed)
                    if self.ended:  # a limit was reached
                        return events
        if failed:
            # The chunk's deltas are kept, but its finish reason is not applied: a stream
            # that ends in an error completes nothing.
            self._fail(_provider_error(chunk))
        elif self._error_finish is not None:
            self._fail(self._error_finish)
        return events

    def _feed_choice(
        self, choice: dict[str, Any], position: int, events: Events, *, finish: bool
    ) -> None:
        index = choice.get("index")
        if type(index) is not int or index < 0:
            index = position
        state = self._choices.get(index)
        if state is None:
            if len(self._choices) >= self.max_choices:
                self._over_limit("max_choices", self.max_choices, "choices")
                return
            state = self._choices[index] = _Choice(index)
            self._set_up(state)
        delta = choice.get("delta")
        if type(delta) is dict:
            text_logprobs = refusal_logprobs = None
            logprobs = choice.get("logprobs")
            if type(logprobs) is dict:
                text_logprobs, refusal_logprobs = state.extras().add_logprobs(logprobs)
            reasoning = _reasoning_text(delta)
            if reasoning:
                state.add_reasoning(reasoning, events)
                if state.reasoning_field is None:
                    state.reasoning_field = _reasoning_field(delta)
            # A lone content delta (most chunks) has none of the rarer fields.
            if (len(delta) > 1 or "content" not in delta) and not _RARE_DELTA_KEYS.isdisjoint(
                delta
            ):
                _rare_delta_fields(state, delta, events)
            content = delta.get("content")
            if type(content) is str:
                if content:
                    state.add_text(content, events, logprobs=text_logprobs)
            elif type(content) is list:
                self._content_parts(state, content, events)
            refusal = delta.get("refusal")
            if type(refusal) is str and refusal:
                state.add_refusal(refusal, events, refusal_logprobs)
            calls = delta.get("tool_calls")
            if type(calls) is list and calls:
                for fragment in calls:
                    if type(fragment) is dict:
                        mark = len(events)
                        state.add_call_fragment(fragment, events)
                        if state.call_count() > self.max_tool_calls:
                            state.drop_last_call()  # the partial keeps the calls allowed
                            del events[mark:]  # and the events, the calls announced
                            self._over_limit("max_tool_calls", self.max_tool_calls, "tool calls")
                            return
            else:
                legacy = delta.get("function_call")
                if type(legacy) is dict:
                    # The legacy single-call form; ignored when tool_calls is present,
                    # since some servers send both (llamacpp-forced-tool-call).
                    state.add_call_fragment({"function": legacy}, events)
        message = choice.get("message")
        if type(message) is dict:
            # The specification reads message.reasoning; message.reasoning_content is
            # the same for the servers that use that name.
            reasoning = _reasoning_text(
                {
                    "reasoning": message.get("reasoning"),
                    "reasoning_content": message.get("reasoning_content"),
                }
            )
            if reasoning:
                state.add_reasoning(reasoning, events)
                if state.reasoning_field is None:
                    state.reasoning_field = _reasoning_field(message)
        reason = choice.get("finish_reason")
        # Old Ollama sends "" on every chunk: that is no finish reason.
        if finish and type(reason) is str and reason:
            self._finish_choice(state, reason, events)

    def _set_up(self, state: _Choice) -> None:
        """Give a new choice the live views and content options asked for."""
        state.partial_json = self.partial_json
        if self._json_content:
            state.json_view = PartialJson()
        if self.think_tags is not None or self.text_tool_calls:
            state.content_filter = ContentFilter(
                think=self.think_tags, calls=self.text_tool_calls, bare_calls=self._bare_calls
            )

    @staticmethod
    def _content_parts(state: _Choice, parts: list[Any], events: Events) -> None:
        # Content as an array of parts (Mistral): "thinking" parts nest reasoning.
        for part in parts:
            if type(part) is not dict:
                continue
            if part.get("type") == "thinking":
                thinking = part.get("thinking")
                if type(thinking) is str:
                    thinking = [{"text": thinking}]
                if type(thinking) is list:
                    for entry in thinking:
                        text = entry.get("text") if type(entry) is dict else None
                        if type(text) is str and text:
                            state.add_reasoning(text, events)
            else:
                text = part.get("text")
                if type(text) is str and text:
                    state.add_text(text, events)

    def _finish_choice(self, state: _Choice, reason: str, events: Events) -> None:
        state.flush_content(events)
        state.finish_reason = reason
        self._seen_finish = True
        if reason in ("tool_calls", "function_call"):
            state.finish_reasoning(events)
            state.finish_calls(events, complete=True, check_json=False)
        elif reason == "error":
            # An error with no error object: nothing of the choice is finished.
            if self._error_finish is None:
                self._error_finish = ProviderError(
                    f'The provider ended choice {state.index} with finish_reason "error".'
                )
        elif reason == "length" and self.length_is_error:
            self._pending_error = self._pending_error or ContextWindowExceeded(
                'The model stopped at its token limit (finish_reason "length").'
            )
        else:
            state.finish_reasoning(events)
            state.finish_message(events)
            keep = not (reason == "stop" and self.drop_tool_calls_on_stop)
            state.finish_calls(events, complete=keep, check_json=True)

    def finish(self, *, done: bool = False) -> Events:
        """The input ended; return the last events.

        Args:
            done: The ``[DONE]`` sentinel was seen (a normal end even without a finish
                reason). Otherwise the input simply ran out, which is a normal end only
                after a finish reason.
        """
        if self.ended:
            return []
        self._cache = None
        if self._pending_error is not None:
            self._fail(self._pending_error)
            return []
        if not done and not self._seen_finish:
            self._fail(IncompleteStreamError("The stream ended without [DONE] or a finish_reason."))
            return []
        events: Events = []
        for index in sorted(self._choices):
            state = self._choices[index]
            state.flush_content(events)
            state.finish_reasoning(events)
            state.finish_message(events)
            state.finish_calls(events, complete=True, check_json=True)
        self.ended = True
        events.append(
            Completed(
                self._response_id,
                self.usage,
                system_fingerprint=self._fingerprint,
                service_tier=self._service_tier,
                citations=self._citations,
                search_results=self._search_results,
                timings=self._timings,
            )
        )
        return events

    def _over_limit(self, limit: str, maximum: int, what: str) -> None:
        self._fail(
            LimitExceededError(
                f"The response has more than {maximum} {what} ({limit}); reading stopped.",
                limit=limit,
                maximum=maximum,
            )
        )

    def fail(self, error: ChatStreamError) -> ChatStreamError:
        """End the stream with ``error`` (the transport failed, say); return it with its
        ``partial`` response set. A stream that had already failed keeps its own error,
        which is returned instead."""
        if self.ended:
            if self.error is not None:
                return self.error
            if error.partial is None:
                error.partial = self.response  # it had ended normally: all of it
            return error
        self._cache = None
        self._fail(error)
        return error

    def _fail(self, error: ChatStreamError) -> None:
        for state in self._choices.values():
            state.flush_content([])  # what was held back is kept in the partial result
        self.ended = True
        self.error = error
        error.partial = self.response

    @property
    def usage(self) -> TokenUsage | None:
        """The usage reported so far, normalised, or ``None``."""
        return None if self._usage is None else _usage(self._usage)

    @property
    def response(self) -> Response:
        """The response as far as it got (complete once the stream has ended normally)."""
        if self._cache is None:
            self._cache = Response(
                response_id=self._response_id,
                model=self._model,
                choices=[self._choices[i].result() for i in sorted(self._choices)],
                usage=self.usage,
                error=None if self.error is None else ErrorInfo.of(self.error),
                skipped_events=self.skipped_events,
                system_fingerprint=self._fingerprint,
                service_tier=self._service_tier,
                citations=self._citations,
                search_results=self._search_results,
                timings=self._timings,
            )
        return self._cache

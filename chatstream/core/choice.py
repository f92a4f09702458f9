"""The state of one choice while a stream is reduced: its open reasoning item and message,
the tool calls being assembled from their fragments, and the provider data kept for it.

:class:`ChoiceState` appends what a delta carries and finishes its items when told to;
the :class:`~chatstream.Accumulator` decides when (see its module for the rules).
"""

from __future__ import annotations

import enum
import json
import logging
import re
from typing import Any

from ..errors import ChatStreamError, OutputError
from ..events import (
    FunctionCall,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputText,
    OutputTextDelta,
    OutputTextParsed,
    Reasoning,
    ReasoningContentDelta,
    ReasoningText,
    Refusal,
    RefusalDelta,
    ResponseItem,
    _arguments_delta,
    _freeze,
)
from ..response import ChoiceResult, _whole_text
from .content import ContentFilter, Piece
from .partial_json import PartialJson
from .provider_fields import Events, ProviderData, merge_entries
from .textcalls import TextCall
from .typed import TypedJson, check_answer

__all__ = [
    "RARE_DELTA_KEYS",
    "UNCOMMON_DELTA_KEYS",
    "ChoiceState",
    "Events",
    "Handover",
    "join_text",
    "read_rare_fields",
]

log = logging.getLogger("chatstream")


def join_text(pieces: list[str]) -> str:
    """The pieces of a text joined. An emoji some servers split between two deltas
    (``"\\ud83d"`` ending one, ``"\\ude00"`` starting the next) is joined back into its
    character; a lone half stays as it is. Only a piece's last character can be the
    first half of a split pair (JSON joins the pairs within one string), so only those
    are looked at."""
    text = "".join(pieces)
    if any(piece and "\ud800" <= piece[-1] <= "\udbff" for piece in pieces):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")
#: What a lone half of a surrogate pair becomes: U+FFFD REPLACEMENT CHARACTER.
REPLACEMENT = "\ufffd"


def whole_chars(held: str, piece: str) -> tuple[str, str]:
    """``piece`` after ``held`` (a high surrogate the last piece ended with), as whole
    characters, and the high surrogate it ends with, held for the next piece.

    Some servers split an emoji between two deltas (``"hi \\ud83d"``, ``"\\ude00!"``);
    the two halves are joined here, so every delta holds whole characters and the
    deltas add up to the text. A half whose other half never comes cannot be a
    character (nor UTF-8): it becomes U+FFFD."""
    if held:
        piece = held + piece
    held = ""
    if piece and "\ud800" <= piece[-1] <= "\udbff":
        held = piece[-1]
        piece = piece[:-1]
    if _SURROGATE.search(piece):
        piece = _whole_text(piece)
    return piece, held


class Handover(enum.Enum):
    """Which of a choice's open tool calls are handed over as finished when it ends."""

    #: Every named call (``finish_reason: "tool_calls"``: the model says they are whole).
    ALL = "all"
    #: The named calls that were not cut off (arguments empty or parsing as JSON).
    WHOLE = "whole"
    #: None (the specification's ``stop`` drops them): each is reported incomplete.
    NONE = "none"


class CallState:
    """A tool call being assembled from fragments."""

    __slots__ = (
        "announced_id",
        "arguments",
        "custom",
        "extra_content",
        "held",
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
        # A high surrogate that ended the last fragment: the next one completes it.
        self.held = ""
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
            arguments=join_text(self.arguments) + (REPLACEMENT if self.held else ""),
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


class ChoiceState:
    """The state of one choice."""

    __slots__ = (
        "announced",
        "calls",
        "calls_by_id",
        "calls_by_slot",
        "content_filter",
        "done_calls",
        "finish_reason",
        "held_reasoning",
        "held_refusal",
        "held_text",
        "incomplete_calls",
        "index",
        "items",
        "json_view",
        "last_call",
        "max_calls",
        "message_open",
        "message_parts",
        "next_slot",
        "over_limit",
        "parsed",
        "partial_json",
        "provider",
        "reasoning_field",
        "reasoning_open",
        "reasoning_parts",
        "typed_view",
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
        self.calls: list[CallState] = []
        self.calls_by_slot: dict[int, CallState] = {}
        self.calls_by_id: dict[str, CallState] = {}
        self.last_call: CallState | None = None
        self.next_slot = 0
        self.done_calls: list[FunctionCall] = []
        self.incomplete_calls: list[FunctionCall] = []
        self.items: list[ResponseItem] = []
        self.finish_reason: str | None = None
        # What only some providers send (logprobs, annotations, audio, raw reasoning
        # entries); made on first use, so the common streams pay nothing for it.
        self.provider: ProviderData | None = None
        # The delta field the reasoning text came in, to send it back under that name.
        self.reasoning_field: str | None = None
        # Live views: how many calls were announced, and whether to parse them partially.
        self.announced = 0
        self.partial_json = False
        # The content options (think tags, calls as text), and the JSON content view.
        self.content_filter: ContentFilter | None = None
        self.json_view: PartialJson | None = None
        # The high surrogate a text, refusal or reasoning delta ended with (see
        # whole_chars): held until the next piece of its kind.
        self.held_text = self.held_refusal = self.held_reasoning = ""
        # Most tool calls, for those recovered from text (the accumulator checks the
        # others); set when one more was made.
        self.max_calls: int | None = None
        self.over_limit = False
        # The typed view of the content (output=T), and the validated answer.
        self.typed_view: TypedJson | None = None
        self.parsed: Any = None

    def extras(self) -> ProviderData:
        if self.provider is None:
            self.provider = ProviderData()
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
        if not filtered:
            if self.held_text or not text.isascii():
                text, self.held_text = whole_chars(self.held_text, text)
                if not text:
                    return
            if self.content_filter is not None:
                self.add_pieces(self.content_filter.feed(text), events)
                return
        self._message_piece(OutputText, text, events)
        events.append(OutputTextDelta(text, self.index, logprobs))
        view = self.json_view
        if view is not None and view.append(text):
            events.append(OutputTextParsed(view.value, self.index))
        typed = self.typed_view
        if typed is not None:
            self._typed_events(*typed.append(text), events)

    def _typed_events(self, changed: bool, new: list[Any], events: Events) -> None:
        typed = self.typed_view
        assert typed is not None
        typed.add_events(changed, new, self.index, events)

    def check_output(self, events: Events) -> ChatStreamError | None:
        """The content ended: validate it as the typed answer (a choice that answered
        with tool calls only is not an answer); return the error it ends in, if any."""
        typed = self.typed_view
        if typed is None:
            return None
        text, refusal, _ = self._received()
        content = join_text(text)
        if self.done_calls and not content.strip():
            return None
        try:
            self.parsed = check_answer(
                typed.kind, content, join_text(refusal) if refusal else None, self.finish_reason
            )
        except OutputError as error:
            return error
        self._typed_events(*typed.finish(self.parsed), events)
        return None

    def add_pieces(self, pieces: list[Piece], events: Events) -> None:
        """What the content filter made of the content: text, reasoning, calls."""
        for piece in pieces:
            if isinstance(piece, TextCall):
                if self.max_calls is not None and self.call_count() >= self.max_calls:
                    self.over_limit = True
                    return
                slot = self.next_slot
                while slot in self.calls_by_slot:
                    slot += 1
                self.next_slot = slot + 1  # so the next call looks no further back
                function = {"name": piece.name, "arguments": piece.arguments}
                self.add_call_fragment({"index": slot, "function": function}, events)
            elif piece[0] == "reasoning":
                self.add_reasoning(piece[1], events)
            elif piece[1]:
                self.add_text(piece[1], events, filtered=True)

    def flush_content(self, events: Events) -> None:
        """The content ended: hand on what was held back (a lone half of a surrogate
        pair becomes U+FFFD; see :func:`whole_chars`)."""
        if self.held_reasoning:
            self.held_reasoning = ""
            self.add_reasoning(REPLACEMENT, events)
        if self.held_text:
            self.held_text = ""
            self.add_text(REPLACEMENT, events)
        if self.content_filter is not None:
            self.add_pieces(self.content_filter.flush(), events)
        if self.held_refusal:
            self.held_refusal = ""
            self.add_refusal(REPLACEMENT, events)

    def add_refusal(self, text: str, events: Events, logprobs: list[Any] | None = None) -> None:
        if self.held_refusal or not text.isascii():
            text, self.held_refusal = whole_chars(self.held_refusal, text)
            if not text:
                return
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
        if self.held_reasoning or not text.isascii():
            text, self.held_reasoning = whole_chars(self.held_reasoning, text)
            if not text:
                return
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
                    if call.held or not arguments.isascii():
                        arguments, call.held = whole_chars(call.held, arguments)
                    if arguments:
                        call.arguments.append(arguments)
                        if call.output_index is not None:
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
            call = CallState(slot)
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
            if type(arguments) is str and (call.held or not arguments.isascii()):
                arguments, call.held = whole_chars(call.held, arguments)
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

    def _announce(self, call: CallState, events: Events) -> None:
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

    def _arguments_delta(self, call: CallState, piece: str, events: Events) -> None:
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
            text = join_text(self.reasoning_parts)
            self.reasoning_parts = []
            content = (ReasoningText(text),) if text else ()
            if self.provider is None or not self.provider.has_reasoning_data():
                self._done(Reasoning(content=content), events)
            else:
                self._done(self.provider.reasoning_item(content), events)

    def finish_message(self, events: Events) -> None:
        if self.message_open:
            self.message_open = False
            content = tuple([kind(join_text(pieces)) for kind, pieces in self.message_parts])
            self.message_parts = []
            annotations = None if self.provider is None else self.provider.take_annotations()
            self._done(Message(content=content, annotations=annotations), events)

    def finish_calls(self, events: Events, handover: Handover) -> None:
        """End the open calls: the named ones ``handover`` picks are finished, the other
        named ones reported incomplete; unnamed calls are dropped."""
        for call in self.calls:
            if call.held:  # the first half of a pair whose second never came
                call.held = ""
                call.arguments.append(REPLACEMENT)
                if call.output_index is not None:
                    self._arguments_delta(call, REPLACEMENT, events)
            if call.name is None:
                log.debug("dropping tool call %s: it never got a name", call.slot)
            elif handover is Handover.ALL or (
                handover is Handover.WHOLE and call.looks_whole(self.finish_reason)
            ):
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
            content=join_text(text),
            reasoning=join_text(reasoning),
            refusal=join_text(refusal) if refusal else None,
            tool_calls=tuple(self.done_calls),
            incomplete_tool_calls=tuple(self.incomplete_calls + pending),
            finish_reason=self.finish_reason,
            items=tuple(self.items),
            logprobs=None if provider is None else provider.logprobs(),
            annotations=None if provider is None else provider.all_annotations(),
            audio=None if provider is None else provider.audio(),
            reasoning_field=self.reasoning_field,
            parsed=self.parsed,
        )


# Entry types whose data comes whole (encrypted reasoning): never joined with another.
RARE_DELTA_KEYS = frozenset({"reasoning_details", "thinking_blocks", "annotations", "audio"})
#: Every field of a delta that is read, besides its content and tool calls.
UNCOMMON_DELTA_KEYS = RARE_DELTA_KEYS | {
    "reasoning",
    "reasoning_content",
    "refusal",
    "function_call",
}


def read_rare_fields(state: ChoiceState, delta: dict[str, Any], events: Events) -> None:
    """Keep what only some providers put in a delta: the raw reasoning entries (they go
    back on the next request), URL annotations and audio."""
    details = delta.get("reasoning_details")
    if type(details) is list and details:
        state.open_reasoning(events)  # also for entries without text (encrypted ones)
        merge_entries(state.extras().details, details)
    blocks = delta.get("thinking_blocks")
    if type(blocks) is list and blocks:
        state.open_reasoning(events)
        merge_entries(state.extras().thinking_blocks, blocks)
    annotations = delta.get("annotations")
    if type(annotations) is list and annotations:
        state.extras().annotations += _freeze(annotations)
    audio = delta.get("audio")
    if type(audio) is dict:
        state.extras().add_audio(audio, state.index, events)

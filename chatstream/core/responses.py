"""The Responses API's reduction rules: its stream events in, the same events and items as
the Chat Completions wire out.

A Responses stream (``POST /responses`` with ``"stream": true``) sends one JSON event per
SSE message, named by its ``type``: ``response.created``, then for each output item
``response.output_item.added``, the deltas of its parts, ``response.output_item.done``,
and at the end one terminal event (``response.completed``, ``response.incomplete`` or
``response.failed``). :class:`ResponsesAccumulator` reads them into the events of
:mod:`chatstream.events` and a :class:`~chatstream.Response`, with the interface of the
:class:`~chatstream.Accumulator`, so the parser, the client and the faces read both wires
the same way::

    >>> from chatstream import StreamParser
    >>> parser = StreamParser(api="responses")
    >>> body = (
    ...     b'data: {"type":"response.created","response":{"id":"resp_1"}}\\n\\n'
    ...     b'data: {"type":"response.output_item.added","output_index":0,'
    ...     b'"item":{"type":"message","id":"msg_1","role":"assistant","content":[]}}\\n\\n'
    ...     b'data: {"type":"response.output_text.delta","output_index":0,"delta":"Hi"}\\n\\n'
    ...     b'data: {"type":"response.output_item.done","output_index":0,'
    ...     b'"item":{"type":"message","id":"msg_1","role":"assistant"}}\\n\\n'
    ...     b'data: {"type":"response.completed","response":{"id":"resp_1"}}\\n\\n'
    ... )
    >>> [type(e).__name__ for e in parser.feed(body) + parser.close()]
    ['Created', 'OutputItemAdded', 'OutputTextDelta', 'OutputItemDone', 'Completed']
    >>> parser.result().content, parser.result().finish_reason
    ('Hi', 'completed')

The rules are those of ``shared/conformance/README.md`` ("rules v3"):

* Items are placed by ``output_index``; an event without one goes to the item with its
  ``item_id``, else to the item touched last (llama.cpp's server sends neither index).
* A done item is authoritative for each field it carries (``content``, ``summary``,
  ``arguments``, ...); a bare one keeps what its deltas gave.
* ``response.completed`` and ``response.incomplete`` end the stream normally (the finish
  reason is ``"completed"``, or the incomplete reason such as ``"max_output_tokens"``);
  ``response.failed`` ends it in the error its ``code`` names; an ``error`` event, or a
  bare ``{"error": ...}`` payload, is the error unless a terminal event follows; the end of
  input before a terminal event is :class:`~chatstream.IncompleteStreamError`. Nothing
  after a terminal event is read.
* Function and custom tool calls are finished by their own done event; one never done is
  incomplete, and on any error every call is.
* Every other item type (hosted tools, ...) is kept whole as an
  :class:`~chatstream.OtherItem`; unknown event types are skipped (and sent as
  :class:`~chatstream.RawChunk` with ``raw_chunks=True``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .._arguments import given
from ..config import Limits, StreamOptions
from ..errors import (
    ChatStreamError,
    IncompleteStreamError,
    OutputError,
    ProviderContextWindowError,
    ProviderError,
    ProviderRateLimitError,
    QuotaExceededError,
    TooManyToolCallsError,
)
from ..events import (
    Completed,
    Created,
    FunctionCall,
    FunctionCallArgumentsDelta,
    Message,
    OtherItem,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputText,
    OutputTextDelta,
    OutputTextParsed,
    RawChunk,
    Reasoning,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningText,
    Refusal,
    RefusalDelta,
    ResponseItem,
    SummaryText,
    TokenUsage,
)
from ..response import ChoiceResult, ErrorInfo, Response
from .choice import join_text
from .partial_json import PartialJson
from .provider_fields import Events, provider_error
from .schema import OutputType
from .typed import TypedJson, check_answer

__all__ = ["ResponsesAccumulator", "retry_delay", "token_usage"]

#: The item types that are tool calls the caller runs (every other type is kept whole).
_CALL_TYPES = frozenset({"function_call", "custom_tool_call"})

# "Rate limit reached ... Please try again in 1.5s" (or "20ms", "2 seconds").
_RETRY = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|s)", re.IGNORECASE)


def retry_delay(message: object) -> float | None:
    """The wait, in seconds, that a rate-limit message asks for ("... try again in 1.5s",
    "... in 20ms", "... in 2 seconds"), or ``None``."""
    if not isinstance(message, str):
        return None
    found = _RETRY.search(message)
    if found is None:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2).lower() == "ms" else value


def _count(value: object) -> int:
    return value if type(value) is int else 0


def token_usage(usage: Mapping[str, Any]) -> TokenUsage:
    """A Responses ``usage`` object, normalised (``null`` counts as 0; ``total_tokens`` as
    sent, else the sum). The detail objects are kept as sent, ``input_tokens_details``
    as ``prompt_tokens_details`` and ``output_tokens_details`` as
    ``completion_tokens_details``."""
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    return TokenUsage(
        input_tokens=input_tokens,
        cached_input_tokens=_count(inputs.get("cached_tokens")) if type(inputs) is dict else 0,
        output_tokens=output_tokens,
        reasoning_output_tokens=(
            _count(outputs.get("reasoning_tokens")) if type(outputs) is dict else 0
        ),
        total_tokens=total if type(total) is int else input_tokens + output_tokens,
        prompt_tokens_details=inputs if type(inputs) is dict else None,
        completion_tokens_details=outputs if type(outputs) is dict else None,
    )


class _Part:
    """One content (or summary) part of an item being assembled."""

    __slots__ = ("annotations", "kind", "logprobs", "pieces")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.pieces: list[str] = []
        self.annotations: list[Any] | None = None
        self.logprobs: list[Any] | None = None

    def text(self) -> str:
        return join_text(self.pieces)

    def set_text(self, text: object) -> None:
        """The whole text, from a done event or item (authoritative)."""
        if isinstance(text, str):
            self.pieces = [text] if text else []


class _Slot:
    """One output item being assembled, at its place in the response's output."""

    __slots__ = (
        "arguments",
        "call_id",
        "done",
        "encrypted_content",
        "id",
        "item",
        "kind",
        "name",
        "parts",
        "position",
        "raw",
        "role",
        "status",
        "summary",
        "view",
    )

    def __init__(self, position: int, kind: str) -> None:
        self.position = position
        self.kind = kind
        self.id: str | None = None
        self.raw: dict[str, Any] = {}
        # Content parts by content_index (message text and refusal, reasoning text).
        self.parts: dict[int, _Part] = {}
        # Reasoning summary parts by summary_index.
        self.summary: dict[int, _Part] = {}
        self.arguments: list[str] = []
        self.name: str | None = None
        self.call_id: str | None = None
        self.role = "assistant"
        self.status: str | None = None
        self.encrypted_content: str | None = None
        self.done = False
        # The finished item (once done, or finished at a normal end).
        self.item: ResponseItem | None = None
        self.view: PartialJson | None = None

    def part(self, index: object, kind: str, where: dict[int, _Part] | None = None) -> _Part:
        """The part at ``index``; without an index, the last part of ``kind`` (a new one
        if there is none)."""
        parts = self.parts if where is None else where
        if type(index) is int:
            part = parts.get(index)
            if part is None:
                part = parts[index] = _Part(kind)
            return part
        for key in sorted(parts, reverse=True):
            if parts[key].kind == kind:
                return parts[key]
        part = parts[max(parts) + 1 if parts else 0] = _Part(kind)
        return part

    def read(self, raw: dict[str, Any]) -> None:
        """Take the fields ``raw`` (an added or done item) carries, as authoritative."""
        self.raw = raw
        value = raw.get("id")
        if type(value) is str and value:
            self.id = value
        value = raw.get("status")
        if type(value) is str:
            self.status = value
        kind = self.kind
        if kind == "message":
            value = raw.get("role")
            if type(value) is str and value:
                self.role = value
            content = raw.get("content")
            if type(content) is list and content:
                self._content(content, {"output_text": "text", "refusal": "refusal"})
        elif kind == "reasoning":
            summary = raw.get("summary")
            if type(summary) is list and summary:
                old = self.summary
                self.summary = {}
                for index, entry in enumerate(summary):
                    part = self.summary[index] = old.get(index) or _Part("summary_text")
                    if type(entry) is dict:
                        part.set_text(entry.get("text"))
            content = raw.get("content")
            if type(content) is list and content:
                self._content(content, {"reasoning_text": "text"})
            value = raw.get("encrypted_content")
            if type(value) is str:
                self.encrypted_content = value
        elif kind in _CALL_TYPES:
            value = raw.get("name")
            if type(value) is str and value:
                self.name = value
            value = raw.get("call_id")
            if type(value) is str and value:
                self.call_id = value
            value = raw.get("arguments" if kind == "function_call" else "input")
            if type(value) is str and (value or self.done):
                self.arguments = [value] if value else []

    def _content(self, content: list[Any], fields: dict[str, str]) -> None:
        old = self.parts
        self.parts = {}
        for index, entry in enumerate(content):
            if type(entry) is not dict:
                continue
            kind = entry.get("type")
            field = fields.get(kind) if type(kind) is str else None
            if field is None:
                continue
            part = old.get(index)
            if part is None or part.kind != kind:
                part = _Part(str(kind))
            part.set_text(entry.get(field))
            for name in ("annotations", "logprobs"):
                value = entry.get(name)
                if type(value) is list and value:
                    setattr(part, name, value)
            self.parts[index] = part

    def typed(self) -> ResponseItem:
        """The item as it stands, typed."""
        kind = self.kind
        if kind == "message":
            content: list[OutputText | Refusal] = []
            annotations: list[Any] = []
            for index in sorted(self.parts):
                part = self.parts[index]
                if part.kind == "refusal":
                    content.append(Refusal(part.text()))
                elif part.kind == "output_text":
                    content.append(OutputText(part.text(), part.annotations, part.logprobs))
                    annotations += part.annotations or ()
            return Message(
                role=self.role,
                content=tuple(content),
                id=self.id,
                annotations=annotations or None,
                status=self.status,
            )
        if kind == "reasoning":
            return Reasoning(
                id=self.id or "",
                summary=tuple(SummaryText(self.summary[i].text()) for i in sorted(self.summary)),
                content=tuple(
                    ReasoningText(self.parts[i].text())
                    for i in sorted(self.parts)
                    if self.parts[i].kind == "reasoning_text"
                ),
                encrypted_content=self.encrypted_content,
                status=self.status,
            )
        if kind in _CALL_TYPES:
            return FunctionCall(
                name=self.name or "",
                arguments=join_text(self.arguments),
                call_id=self.call_id or self.id or f"tool-call-{self.position}",
                id=self.id,
                custom=kind == "custom_tool_call",
                status=self.status,
            )
        return OtherItem(kind, self.raw, self.id)


class ResponsesAccumulator:
    """Reduces Responses API stream events to events and a :class:`~chatstream.Response`.

    The same interface as :class:`~chatstream.Accumulator`: feed it every event (a parsed
    ``data:`` payload) in order, then call :meth:`finish` once the input ends; a stream
    that ends in an error sets :attr:`error` instead of raising.

    Args:
        options: How the stream is read: ``raw_chunks`` (each event also as a
            :class:`~chatstream.RawChunk` before the events made from it) and
            ``partial_json`` (each :class:`~chatstream.FunctionCallArgumentsDelta` with
            the arguments parsed so far, and, when ``request`` asks for JSON text in
            ``text.format``, :class:`~chatstream.OutputTextParsed` as it grows) apply on
            this wire.
        limits: ``max_tool_calls`` is the most tool call items; one more ends the
            stream in :class:`~chatstream.LimitExceededError`.
        request: The request body, when known.
        output: The type of the answer (see :mod:`chatstream.core.typed`): the output
            text is seen as a partial value of it while it streams, and validated at the
            terminal event, as on the chat wire (an answer cut by ``response.incomplete``
            is cut short; an answer made of function calls only is not checked).
    """

    def __init__(
        self,
        *,
        options: StreamOptions | None = None,
        limits: Limits | None = None,
        request: Mapping[str, Any] | None = None,
        output: OutputType | None = None,
    ) -> None:
        #: The type of the answer, or ``None``.
        self.output = output
        #: How the stream is read.
        self.options = options = given(StreamOptions, "options", options)
        #: The limits (only ``max_tool_calls`` is the accumulator's).
        self.limits = limits = given(Limits, "limits", limits)
        # Read once here, never per event.
        self.raw_chunks = options.raw_chunks
        self.max_tool_calls = limits.max_tool_calls
        self.partial_json = partial_json = options.partial_json
        text = request.get("text") if request else None
        format_ = text.get("format") if isinstance(text, Mapping) else None
        self._typed = None if output is None else TypedJson(output)
        self._parsed: Any = None
        self._json_view = (
            PartialJson()
            if partial_json
            and output is None
            and isinstance(format_, Mapping)
            and format_.get("type") in ("json_object", "json_schema")
            else None
        )
        #: The error that ended the stream, or ``None``.
        self.error: ChatStreamError | None = None
        #: True once the stream has ended, normally or not.
        self.ended = False
        #: Events whose data was not a JSON object (skipped).
        self.skipped_events = 0
        #: The highest ``sequence_number`` read, or ``None`` while none came (a server
        #: that sends none, like llama.cpp's): where a resumed stream starts after.
        self.last_sequence_number: int | None = None
        # Since resume(): events at or before last_sequence_number are skipped.
        self._resumed = False
        self._slots: dict[int, _Slot] = {}
        self._by_id: dict[str, _Slot] = {}
        self._last: _Slot | None = None
        self._calls = 0
        self._response_id = ""
        self._model: str | None = None
        self._service_tier: str | None = None
        self._usage: TokenUsage | None = None
        self._finish_reason: str | None = None
        # An error event (or a bare error object): the error, unless a terminal follows.
        self._pending_error: ChatStreamError | None = None
        self._cache: Response | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], int | None, Events], None]] = {
            "response.output_text.delta": self._text_delta,
            "response.function_call_arguments.delta": self._arguments_delta,
            "response.custom_tool_call_input.delta": self._arguments_delta,
            "response.reasoning_summary_text.delta": self._summary_delta,
            "response.reasoning_text.delta": self._reasoning_delta,
            "response.refusal.delta": self._refusal_delta,
            "response.output_item.added": self._item_added,
            "response.output_item.done": self._item_done,
            "response.content_part.added": self._content_part,
            "response.content_part.done": self._content_part,
            "response.output_text.done": self._text_done,
            "response.refusal.done": self._text_done,
            "response.reasoning_text.done": self._text_done,
            "response.output_text.annotation.added": self._annotation,
            "response.reasoning_summary_part.added": self._summary_part,
            "response.reasoning_summary_part.done": self._summary_part,
            "response.reasoning_summary_text.done": self._summary_part,
            "response.function_call_arguments.done": self._arguments_done,
            "response.custom_tool_call_input.done": self._arguments_done,
            "response.created": self._created,
            "response.in_progress": self._head,
            "response.queued": self._head,
            "response.completed": self._terminal,
            "response.incomplete": self._terminal,
            "response.failed": self._terminal,
            "error": self._error_event,
        }

    @property
    def all_choices_finished(self) -> bool:
        """Always false: on this wire the terminal event itself ends the stream."""
        return False

    def feed(self, chunk: Any, *, event: str = "message") -> Events:
        """Add one event (the parsed data of one SSE message) and return its events.

        Args:
            chunk: The decoded JSON; anything but an object is skipped and counted.
            event: The SSE event name; the payload's ``type`` decides, but an
                ``error`` frame without a ``type`` is an error.
        """
        if self.ended:
            return []
        if type(chunk) is dict:
            seq = chunk.get("sequence_number")
            if type(seq) is int:
                last = self.last_sequence_number
                if last is None or seq > last:
                    self.last_sequence_number = seq
                elif self._resumed:
                    return []  # sent before the stream dropped, and read then
        self._cache = None
        if type(chunk) is not dict:
            if isinstance(chunk, Mapping):
                chunk = dict(chunk)
            else:
                if event == "error":
                    self._pending_error = provider_error(chunk)
                else:
                    self.skipped_events += 1
                return []
        events: Events = []
        if self.raw_chunks:
            events.append(RawChunk(chunk))
        kind = chunk.get("type")
        handler = self._handlers.get(kind) if type(kind) is str else None
        if handler is not None:
            seq = chunk.get("sequence_number")
            handler(chunk, seq if type(seq) is int else None, events)
        elif kind is None and (chunk.get("error") is not None or event == "error"):
            # llama.cpp's server fails mid-stream with a bare {"error": {...}}.
            self._pending_error = provider_error(chunk)
        return events

    def resume(self) -> None:
        """The events that follow come from the stream sent again after
        :attr:`last_sequence_number` (a resumed Responses stream): from now on an event
        whose ``sequence_number`` is at or before the highest one read is skipped, so a
        server that repeats events delivers none of them twice. (Not before a resume: on
        one connection, events are read as sent.)"""
        self._resumed = True

    # --- placement -------------------------------------------------------------------

    def _new_slot(self, position: int | None, kind: str) -> _Slot:
        if position is None:
            position = max(self._slots) + 1 if self._slots else 0
        slot = self._slots[position] = _Slot(position, kind)
        if kind in _CALL_TYPES:
            self._calls += 1
            if self._calls > self.max_tool_calls:
                del self._slots[position]
                limit = self.max_tool_calls
                self._fail(
                    TooManyToolCallsError(
                        f"The response has more than {limit} tool calls (max_tool_calls); "
                        "reading stopped.",
                        limit=limit,
                    )
                )
            elif self.partial_json and kind == "function_call":
                slot.view = PartialJson()
        return slot

    def _place(self, chunk: dict[str, Any], kind: str, events: Events) -> _Slot | None:
        """The item an event belongs to: by ``output_index``, else ``item_id``, else the
        item touched last; an item that was never added is added now."""
        index = chunk.get("output_index")
        slot: _Slot | None
        if type(index) is int:
            slot = self._slots.get(index)
        else:
            index = None
            item_id = chunk.get("item_id")
            slot = self._by_id.get(item_id) if type(item_id) is str else None
            if slot is None:
                slot = self._last
        if slot is None:
            slot = self._new_slot(index, kind)
            if self.ended:
                return None
            item_id = chunk.get("item_id")
            if type(item_id) is str and item_id:
                slot.id = item_id
                self._by_id[item_id] = slot
            events.append(OutputItemAdded(slot.typed(), 0, slot.position))
        self._last = slot
        return slot

    # --- the events ------------------------------------------------------------------

    def _text_delta(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        delta = chunk.get("delta")
        slot = self._place(chunk, "message", events)
        if slot is None or type(delta) is not str or not delta:
            return
        part = slot.part(chunk.get("content_index"), "output_text")
        part.pieces.append(delta)
        logprobs = chunk.get("logprobs")
        if type(logprobs) is list and logprobs:
            part.logprobs = (part.logprobs or []) + logprobs
        else:
            logprobs = None
        events.append(OutputTextDelta(delta, 0, logprobs, seq))
        view = self._json_view
        if view is not None and view.append(delta):
            events.append(OutputTextParsed(view.value, 0))
        typed = self._typed
        if typed is not None:
            typed.add_events(*typed.append(delta), 0, events)

    def _refusal_delta(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        delta = chunk.get("delta")
        slot = self._place(chunk, "message", events)
        if slot is None or type(delta) is not str or not delta:
            return
        slot.part(chunk.get("content_index"), "refusal").pieces.append(delta)
        events.append(RefusalDelta(delta, 0, None, seq))

    def _reasoning_delta(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        delta = chunk.get("delta")
        slot = self._place(chunk, "reasoning", events)
        if slot is None or type(delta) is not str or not delta:
            return
        index = chunk.get("content_index")
        slot.part(index, "reasoning_text").pieces.append(delta)
        events.append(ReasoningContentDelta(delta, index if type(index) is int else 0, 0, seq))

    def _summary_delta(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        delta = chunk.get("delta")
        slot = self._place(chunk, "reasoning", events)
        if slot is None or type(delta) is not str or not delta:
            return
        index = chunk.get("summary_index")
        slot.part(index, "summary_text", slot.summary).pieces.append(delta)
        events.append(ReasoningSummaryDelta(delta, index if type(index) is int else 0, 0, seq))

    def _summary_part(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        slot = self._place(chunk, "reasoning", events)
        if slot is None:
            return
        index = chunk.get("summary_index")
        kind = chunk["type"]
        if kind == "response.reasoning_summary_part.added" and type(index) is int:
            slot.part(index, "summary_text", slot.summary)
            events.append(ReasoningSummaryPartAdded(index, 0, seq))
        elif kind == "response.reasoning_summary_text.done":
            slot.part(index, "summary_text", slot.summary).set_text(chunk.get("text"))
        else:  # part.done: the whole part
            part = chunk.get("part")
            if type(part) is dict:
                slot.part(index, "summary_text", slot.summary).set_text(part.get("text"))

    def _arguments_delta(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        delta = chunk.get("delta")
        custom = chunk["type"] == "response.custom_tool_call_input.delta"
        slot = self._place(chunk, "custom_tool_call" if custom else "function_call", events)
        if slot is None or type(delta) is not str or not delta:
            return
        slot.arguments.append(delta)
        view = slot.view
        if view is not None:
            view.append(delta)
        events.append(
            FunctionCallArgumentsDelta(
                slot.call_id or slot.id or f"tool-call-{slot.position}",
                delta,
                slot.position,
                0,
                None if view is None else view.value,
                seq,
            )
        )

    def _arguments_done(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        slot = self._place(chunk, "function_call", events)
        if slot is None:
            return
        value = chunk.get("arguments" if slot.kind == "function_call" else "input")
        if type(value) is str:
            slot.arguments = [value] if value else []
        name = chunk.get("name")
        if type(name) is str and name:
            slot.name = name

    def _content_part(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        raw = chunk.get("part")
        kind = raw.get("type") if type(raw) is dict else None
        if type(kind) is not str:
            return
        slot = self._place(chunk, "reasoning" if kind == "reasoning_text" else "message", events)
        if slot is None:
            return
        part = slot.part(chunk.get("content_index"), kind)
        if chunk["type"] == "response.content_part.done" and type(raw) is dict:
            part.set_text(raw.get("refusal" if kind == "refusal" else "text"))
            for name in ("annotations", "logprobs"):
                value = raw.get(name)
                if type(value) is list and value:
                    setattr(part, name, value)

    def _text_done(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        kind = {
            "response.output_text.done": "output_text",
            "response.refusal.done": "refusal",
            "response.reasoning_text.done": "reasoning_text",
        }[chunk["type"]]
        slot = self._place(chunk, "reasoning" if kind == "reasoning_text" else "message", events)
        if slot is not None:
            part = slot.part(chunk.get("content_index"), kind)
            part.set_text(chunk.get("refusal" if kind == "refusal" else "text"))

    def _annotation(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        slot = self._place(chunk, "message", events)
        annotation = chunk.get("annotation")
        if slot is not None and annotation is not None:
            part = slot.part(chunk.get("content_index"), "output_text")
            part.annotations = [*(part.annotations or ()), annotation]

    def _item_added(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        raw = chunk.get("item")
        if type(raw) is not dict:
            return
        slot = self._item_slot(chunk, raw)
        if slot is None:
            return
        slot.read(raw)
        if slot.id is not None:
            self._by_id[slot.id] = slot
        events.append(OutputItemAdded(slot.typed(), 0, slot.position, seq))
        if slot.arguments:  # arguments the added item already carried
            call = slot.call_id or slot.id or f"tool-call-{slot.position}"
            view = slot.view
            if view is not None:
                view.append(slot.arguments[0])
            value = None if view is None else view.value
            events.append(
                FunctionCallArgumentsDelta(call, slot.arguments[0], slot.position, 0, value)
            )

    def _item_done(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        raw = chunk.get("item")
        if type(raw) is not dict:
            return
        slot = self._item_slot(chunk, raw)
        if slot is None or slot.done:
            return
        slot.done = True
        slot.read(raw)
        if slot.id is not None:
            self._by_id[slot.id] = slot
        slot.item = slot.typed()
        events.append(OutputItemDone(slot.item, 0, slot.position, seq))

    def _item_slot(self, chunk: dict[str, Any], raw: dict[str, Any]) -> _Slot | None:
        """The place of an added or done item: its ``output_index``, else its ``id``; an
        item with neither is a new one after the others."""
        kind = raw.get("type")
        kind = kind if type(kind) is str and kind else "message"
        index = chunk.get("output_index")
        slot: _Slot | None = None
        if type(index) is int:
            slot = self._slots.get(index)
        else:
            index = None
            item_id = raw.get("id")
            if type(item_id) is str:
                slot = self._by_id.get(item_id)
        if slot is None:
            slot = self._new_slot(index, kind)
            if self.ended:
                return None
        elif slot.kind != kind and not slot.done:
            slot.kind = kind  # the item's own type wins over what a delta implied
        self._last = slot
        return slot

    def _read_response(self, response: object, *, terminal: bool) -> dict[str, Any]:
        if type(response) is not dict:
            return {}
        value = response.get("id")
        if type(value) is str and value and (terminal or not self._response_id):
            self._response_id = value
        value = response.get("model")
        if type(value) is str and value and (terminal or self._model is None):
            self._model = value
        value = response.get("service_tier")
        if type(value) is str and value:
            self._service_tier = value
        return response

    def _created(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        self._read_response(chunk.get("response"), terminal=False)
        events.append(Created(self._response_id, self._model, seq))

    def _head(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        self._read_response(chunk.get("response"), terminal=False)

    def _error_event(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        self._pending_error = provider_error(chunk)

    def _terminal(self, chunk: dict[str, Any], seq: int | None, events: Events) -> None:
        response = self._read_response(chunk.get("response"), terminal=True)
        usage = response.get("usage")
        if type(usage) is dict:
            self._usage = token_usage(usage)
        kind = chunk["type"]
        if kind == "response.failed":
            self._finish_reason = "failed"
            self._fail(_failure(response.get("error"), self._pending_error))
            return
        if kind == "response.completed":
            self._finish_reason = "completed"
        else:
            details = response.get("incomplete_details")
            reason = details.get("reason") if type(details) is dict else None
            self._finish_reason = reason if type(reason) is str and reason else "incomplete"
        for position in sorted(self._slots):
            slot = self._slots[position]
            if slot.done:
                continue
            if slot.kind in ("message", "reasoning"):
                slot.item = slot.typed()
                events.append(OutputItemDone(slot.item, 0, position))
            elif slot.kind in _CALL_TYPES and slot.name is not None:
                events.append(OutputItemIncomplete(slot.typed(), position, 0))
        error = self._check_output(events)
        if error is not None:
            self._fail(error)
            return
        self.ended = True
        timings = chunk.get("timings")  # llama.cpp's server puts them beside the response
        events.append(
            Completed(
                self._response_id,
                self._usage,
                service_tier=self._service_tier,
                timings=timings if type(timings) is dict else None,
                sequence_number=seq,
            )
        )

    def _check_output(self, events: Events) -> OutputError | None:
        """The response ended normally: validate its text as the typed answer (one made
        of function calls only is not an answer); return the error it ends in, if any."""
        typed = self._typed
        if typed is None:
            return None
        self._cache = None
        choice = self._choice()
        if choice.tool_calls and not choice.content.strip():
            return None
        try:
            self._parsed = check_answer(
                typed.kind, choice.content, choice.refusal, choice.finish_reason
            )
        except OutputError as error:
            return error
        typed.add_events(*typed.finish(self._parsed), 0, events)
        return None

    # --- the end ---------------------------------------------------------------------

    def finish(self, *, done: bool = False) -> Events:
        """The input ended (``done``: with ``[DONE]``) before a terminal event: the stream
        ends in the error an ``error`` event announced, or as cut off."""
        if self.ended:
            return []
        self._cache = None
        self._fail(
            self._pending_error
            or IncompleteStreamError(
                "The stream closed before response.completed"
                + (" ([DONE] came first)." if done else ".")
            )
        )
        return []

    def fail(self, error: ChatStreamError) -> ChatStreamError:
        """End the stream with ``error`` from outside; return it with ``partial`` set (a
        stream that had already failed keeps and returns its own error)."""
        if self.ended:
            if self.error is not None:
                return self.error
            if error.partial is None:
                error.partial = self.response
            return error
        self._cache = None
        self._fail(error)
        return error

    def _fail(self, error: ChatStreamError) -> None:
        self.ended = True
        self.error = error
        self._cache = None
        error.partial = self.response

    @property
    def usage(self) -> TokenUsage | None:
        """The usage of the terminal event, or ``None``."""
        return self._usage

    @property
    def response(self) -> Response:
        """The response as far as it got (complete once the stream has ended normally)."""
        if self._cache is None:
            self._cache = Response(
                response_id=self._response_id,
                model=self._model,
                choices=(self._choice(),) if self._slots or self.ended else (),
                usage=self._usage,
                error=None if self.error is None else ErrorInfo.of(self.error),
                skipped_events=self.skipped_events,
                service_tier=self._service_tier,
                api="responses",
            )
        return self._cache

    def _choice(self) -> ChoiceResult:
        text: list[str] = []
        refusal: list[str] = []
        reasoning: list[str] = []
        summary: list[str] = []
        calls: list[FunctionCall] = []
        incomplete: list[FunctionCall] = []
        items: list[ResponseItem] = []
        others: list[OtherItem] = []
        logprobs: list[Any] = []
        annotations: list[Any] = []
        failed = self.error is not None
        for position in sorted(self._slots):
            slot = self._slots[position]
            kind = slot.kind
            if kind == "message":
                for index in sorted(slot.parts):
                    part = slot.parts[index]
                    if part.kind == "output_text":
                        text.append(part.text())
                        logprobs += part.logprobs or ()
                        annotations += part.annotations or ()
                    elif part.kind == "refusal":
                        refusal.append(part.text())
            elif kind == "reasoning":
                summary += [slot.summary[i].text() for i in sorted(slot.summary)]
                reasoning += [
                    slot.parts[i].text()
                    for i in sorted(slot.parts)
                    if slot.parts[i].kind == "reasoning_text"
                ]
            elif kind in _CALL_TYPES:
                if slot.name is not None:
                    call = slot.item if slot.item is not None else slot.typed()
                    if isinstance(call, FunctionCall):
                        (calls if slot.done and not failed else incomplete).append(call)
            elif slot.done and isinstance(slot.item, OtherItem):
                others.append(slot.item)
            if slot.item is not None:
                items.append(slot.item)
        return ChoiceResult(
            index=0,
            content="".join(text),
            reasoning="".join(reasoning),
            refusal="".join(refusal) if refusal else None,
            tool_calls=tuple(calls),
            incomplete_tool_calls=tuple(incomplete),
            finish_reason=self._finish_reason,
            items=tuple(items),
            logprobs={"content": logprobs, "refusal": None} if logprobs else None,
            annotations=annotations or None,
            reasoning_summary=tuple(summary),
            other_items=tuple(others),
            parsed=self._parsed,
        )


def _failure(error: object, earlier: ChatStreamError | None) -> ChatStreamError:
    """The error a ``response.failed`` event names by its ``error.code``."""
    if type(error) is not dict:
        return earlier or ProviderError("The response failed (response.failed).")
    code = error.get("code")
    message = error.get("message")
    said = (
        f"The response failed: {message}"
        if isinstance(message, str) and message
        else (f"The response failed ({code})." if code else "The response failed.")
    )
    facts: dict[str, Any] = {
        "type": error.get("type") if type(error.get("type")) is str else None,
        "code": code if type(code) in (str, int) else None,
        "param": error.get("param") if type(error.get("param")) is str else None,
        "payload": error,
    }
    if code == "context_length_exceeded":
        return ProviderContextWindowError(said, **facts)
    if code == "insufficient_quota":
        return QuotaExceededError(said, **facts)
    if code == "rate_limit_exceeded":
        return ProviderRateLimitError(said, retry_after=retry_delay(message), **facts)
    return ProviderError(said, **facts)

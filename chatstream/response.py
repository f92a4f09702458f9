"""The result of a stream: what it produced, finished or not."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ChatStreamError
from .events import (
    Audio,
    FunctionCall,
    Message,
    OtherItem,
    OutputText,
    Reasoning,
    ResponseItem,
    TokenUsage,
    _freeze,
    _ReadOnlyDict,
    _set,
    _thaw,
    _tuple,
    item_from_dict,
)

__all__ = [
    "API_NAMES",
    "ChoiceResult",
    "ErrorInfo",
    "Response",
    "TRUNCATING_FINISH_REASONS",
    "Timing",
    "tool_output",
]

#: The finish reasons that end an answer before the model was done with it (the
#: Responses wire's ``response.incomplete`` says ``max_output_tokens``).
TRUNCATING_FINISH_REASONS = frozenset({"length", "content_filter", "max_output_tokens"})

#: The two wires: ``"chat"`` (``POST /chat/completions``) and ``"responses"``
#: (``POST /responses``).
API_NAMES = ("chat", "responses")


@dataclass(frozen=True)
class ErrorInfo:
    """What ended a stream, as :attr:`Response.error` records it.

    The exception itself is what is raised (its ``partial`` is the response); the
    response keeps a copy of its facts, so that neither refers to the other in a cycle
    that keeps a traceback, and the socket its frames hold, alive.

    Attributes:
        kind: The error's :attr:`~chatstream.ChatStreamError.kind` (``"closed"``,
            ``"idle_timeout"``, ...).
        message: Its message.
        error_class: The name of its class (``"ProviderError"``, ...).
        attributes: Its other attributes that JSON can hold (``status``, ``code``,
            ``retry_after``, ``limit``, ...), read-only.
    """

    kind: str
    message: str
    error_class: str = "ChatStreamError"
    attributes: Mapping[str, Any] = field(default_factory=_ReadOnlyDict, hash=False)

    def __post_init__(self) -> None:
        _set(self, "attributes", _freeze(self.attributes))

    @classmethod
    def of(cls, error: ChatStreamError) -> ErrorInfo:
        """The facts of ``error``."""
        attributes: dict[str, Any] = {}
        for name, value in vars(error).items():
            if name in ("message", "partial") or name.startswith("_"):
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError, RecursionError):
                continue  # kept as the exception's attribute only
            attributes[name] = value
        return cls(error.kind, error.message, type(error).__name__, attributes)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Timing:
    """When the parts of one stream happened, as :attr:`Response.timing` records them.

    Durations are in seconds since the request was sent (the first attempt's, retries
    included), measured with a monotonic clock; ``None`` when it did not happen (no
    content came, say). Content is text, reasoning, a refusal, a tool call or audio.
    Times are taken per read of the body, not per event: events that arrive in one read
    arrive together.

    Attributes:
        started_at: When the request was sent, in seconds since the epoch (wall clock).
        time_to_headers: Until the response headers arrived (the last attempt's).
        time_to_first_byte: Until the first read of the body returned bytes.
        time_to_first_content: Until the first content arrived.
        time_to_last_content: Until the last content arrived.
        duration: Until the stream ended (completed, failed or closed).
        content_arrivals: How many reads brought content.
        gap_p50: The median gap between two reads that brought content, or ``None``
            with fewer than two.
        gap_p90: Their 90th percentile (over a uniform sample of 1024 gaps, in a longer
            stream), or ``None``.
        gap_max: The longest gap, or ``None``.
        output_tokens_per_second: The usage's output tokens over the time from the first
            content to the last, or ``None`` when the usage gave no count or that time
            was not measured (content in fewer than two reads, or in less than 0.1 s: a
            reply that came whole).
        retry_waits: The wait before each request sent again, in order (one entry per
            retry; 0 for the resend without ``stream_options``), a resume of a dropped
            Responses stream included.
    """

    started_at: float
    time_to_headers: float | None = None
    time_to_first_byte: float | None = None
    time_to_first_content: float | None = None
    time_to_last_content: float | None = None
    duration: float = 0.0
    content_arrivals: int = 0
    gap_p50: float | None = None
    gap_p90: float | None = None
    gap_max: float | None = None
    output_tokens_per_second: float | None = None
    retry_waits: tuple[float, ...] = ()

    @property
    def retries(self) -> int:
        """How many times the request was sent again."""
        return len(self.retry_waits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["retry_waits"] = list(self.retry_waits)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        """Rebuild timings from :meth:`to_dict` output (unknown keys are ignored).

        Raises:
            ValueError: ``started_at`` is missing, or a field is malformed.
        """
        try:
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in data.items() if k in known}
            values["retry_waits"] = tuple(float(w) for w in values.get("retry_waits", ()))
            return cls(**values)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read timings: missing or malformed field ({exc})") from exc


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
        logprobs: ``{"content": [...], "refusal": [...]}``, the ``logprobs`` entries of
            all its chunks joined (a key is ``None`` when none came), or ``None`` when
            the provider sent none.
        annotations: Its ``delta.annotations`` entries (URL citations) as sent, or
            ``None``.
        audio: Its audio answer, or ``None``.
        reasoning_field: The delta field its reasoning text came in
            (``"reasoning"``, ``"reasoning_content"``, ...), or ``None``:
            :meth:`to_message` sends the reasoning back under that name.
        reasoning_summary: The texts of its reasoning summary parts, in order (the
            Responses wire; ``[]`` on the Chat Completions wire).
        other_items: Its finished items of any other type (hosted tools' calls and
            results, ...), kept whole, in output order (the Responses wire).
        parsed: The answer as a value of the type asked for with ``output=T``,
            validated, or ``None``. Not written by :meth:`to_dict` (it is a Python
            value); validate ``content`` again after :meth:`from_dict`.
    """

    index: int
    content: str = ""
    reasoning: str = ""
    refusal: str | None = None
    tool_calls: tuple[FunctionCall, ...] = ()
    incomplete_tool_calls: tuple[FunctionCall, ...] = ()
    finish_reason: str | None = None
    items: tuple[ResponseItem, ...] = ()
    logprobs: Mapping[str, Any] | None = field(default=None, hash=False)
    annotations: Sequence[Mapping[str, Any]] | None = field(default=None, hash=False)
    audio: Audio | None = None
    reasoning_field: str | None = None
    reasoning_summary: tuple[str, ...] = ()
    other_items: tuple[OtherItem, ...] = ()
    parsed: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "tool_calls", _tuple(self.tool_calls))
        _set(self, "incomplete_tool_calls", _tuple(self.incomplete_tool_calls))
        _set(self, "items", _tuple(self.items))
        _set(self, "reasoning_summary", _tuple(self.reasoning_summary))
        _set(self, "other_items", _tuple(self.other_items))
        if self.logprobs is not None:
            _set(self, "logprobs", _freeze(self.logprobs))
        if self.annotations is not None:
            _set(self, "annotations", _freeze(self.annotations))

    @property
    def truncated(self) -> bool:
        """True when the answer was cut short: ``finish_reason`` is ``"length"`` (the
        ``max_tokens`` limit or the context window), ``"max_output_tokens"`` (the
        Responses wire's) or ``"content_filter"``."""
        return self.finish_reason in TRUNCATING_FINISH_REASONS

    def to_message(self) -> dict[str, Any]:
        """The assistant message to send back in the next request's ``messages``.

        It holds the text (``content``; ``""`` when the model sent none, since some
        servers, llama-cpp-python's among them, reject ``null``), the ``refusal``,
        the finished ``tool_calls`` with their ids (function calls, and custom calls as
        ``{"type": "custom", "custom": {"name", "input"}}``), and what the provider
        streamed for it to get back, only when it streamed it: the reasoning text under
        the field it came in when that was ``reasoning_content`` (DeepSeek and Kimi
        require it after a tool call in thinking mode) or ``reasoning``, OpenRouter's
        ``reasoning_details``, ``thinking_blocks`` with their signatures, each call's
        ``extra_content`` (Gemini's thought signatures) and the audio's ``id``.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.refusal is not None:
            message["refusal"] = self.refusal
        if self.reasoning and self.reasoning_field in ("reasoning_content", "reasoning"):
            message[self.reasoning_field] = self.reasoning
        details: list[Any] = []
        blocks: list[Any] = []
        for item in self.items:
            if isinstance(item, Reasoning):
                details += map(_thaw, item.details or ())
                blocks += map(_thaw, item.thinking_blocks or ())
        if details:
            message["reasoning_details"] = details
        if blocks:
            message["thinking_blocks"] = blocks
        if self.tool_calls:
            message["tool_calls"] = [_call_message(call) for call in self.tool_calls]
        if self.audio is not None and self.audio.id:
            message["audio"] = {"id": self.audio.id}
        return message

    def to_dict(self) -> dict[str, Any]:
        """This choice as a JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "index": self.index,
            "content": self.content,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "incomplete_tool_calls": [c.to_dict() for c in self.incomplete_tool_calls],
            "finish_reason": self.finish_reason,
            "items": [item.to_dict() for item in self.items],
            "logprobs": _thaw(self.logprobs),
            "annotations": _thaw(self.annotations),
            "audio": None if self.audio is None else self.audio.to_dict(),
            "reasoning_field": self.reasoning_field,
            "reasoning_summary": list(self.reasoning_summary),
            "other_items": [item.to_dict() for item in self.other_items],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChoiceResult:
        """Rebuild a choice from :meth:`to_dict` output.

        Raises:
            ValueError: A field is missing or malformed.
        """
        try:
            audio = data.get("audio")
            return cls(
                index=data["index"],
                content=data.get("content", ""),
                reasoning=data.get("reasoning", ""),
                refusal=data.get("refusal"),
                tool_calls=tuple([FunctionCall.from_dict(c) for c in data.get("tool_calls", [])]),
                incomplete_tool_calls=tuple(
                    [FunctionCall.from_dict(c) for c in data.get("incomplete_tool_calls", [])]
                ),
                finish_reason=data.get("finish_reason"),
                items=tuple([item_from_dict(item) for item in data.get("items", [])]),
                logprobs=data.get("logprobs"),
                annotations=data.get("annotations"),
                audio=None if audio is None else Audio.from_dict(audio),
                reasoning_field=data.get("reasoning_field"),
                reasoning_summary=tuple(data.get("reasoning_summary", ())),
                other_items=tuple(OtherItem.from_dict(i) for i in data.get("other_items", ())),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read a choice: missing or malformed field ({exc})") from exc

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


def _whole_text(text: str) -> str:
    """``text`` as it can be written in UTF-8: each pair of surrogate halves joined into
    its character, and each lone half (of an emoji a server split, say) replaced with
    U+FFFD REPLACEMENT CHARACTER."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _call_dict(call: FunctionCall) -> dict[str, str]:
    return {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}


def _call_message(call: FunctionCall) -> dict[str, Any]:
    """A finished call as an entry of an assistant message's ``tool_calls``."""
    entry: dict[str, Any]
    if call.custom:
        entry = {
            "id": call.call_id,
            "type": "custom",
            "custom": {"name": call.name, "input": call.arguments},
        }
    else:
        entry = {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
    if call.extra_content is not None:
        entry["extra_content"] = _thaw(call.extra_content)
    return entry


def tool_output(call: FunctionCall | str, output: str | list[Any]) -> dict[str, Any]:
    """The Responses API ``input`` item carrying the result of ``call`` (a
    :class:`~chatstream.FunctionCall`, or its ``call_id``): a
    ``function_call_output``, or a ``custom_tool_call_output`` for a custom tool."""
    if isinstance(call, FunctionCall):
        kind = "custom_tool_call_output" if call.custom else "function_call_output"
        call_id = call.call_id
    else:
        kind, call_id = "function_call_output", call
    return {"type": kind, "call_id": call_id, "output": output}


def _input_item(item: ResponseItem) -> dict[str, Any] | None:
    """A finished item as a Responses API ``input`` item, or ``None`` when it cannot be
    sent back (a reasoning item without an id)."""
    entry: dict[str, Any]
    if isinstance(item, Message):
        content: list[dict[str, Any]] = []
        for part in item.content:
            if isinstance(part, OutputText):
                content.append(
                    {
                        "type": "output_text",
                        "text": part.text,
                        "annotations": _thaw(part.annotations) or [],
                    }
                )
            else:
                content.append({"type": "refusal", "refusal": part.text})
        entry = {"type": "message", "role": item.role, "content": content}
        if item.id:
            entry["id"] = item.id
            entry["status"] = item.status or "completed"
        return entry
    if isinstance(item, Reasoning):
        if not item.id:
            return None
        entry = {
            "type": "reasoning",
            "id": item.id,
            "summary": [{"type": "summary_text", "text": p.text} for p in item.summary],
        }
        if item.content:
            entry["content"] = [{"type": "reasoning_text", "text": p.text} for p in item.content]
        if item.encrypted_content is not None:
            entry["encrypted_content"] = item.encrypted_content
        return entry
    if isinstance(item, FunctionCall):
        if item.custom:
            entry = {"type": "custom_tool_call", "call_id": item.call_id, "name": item.name}
            entry["input"] = item.arguments
        else:
            entry = {"type": "function_call", "call_id": item.call_id, "name": item.name}
            entry["arguments"] = item.arguments
        if item.id:
            entry["id"] = item.id
        if item.status:
            entry["status"] = item.status
        return entry
    data: dict[str, Any] = _thaw(item.data)
    return data


def _error_dict(error: ErrorInfo) -> dict[str, Any]:
    """An error's class, kind, message and JSON-ready attributes."""
    return {
        "kind": error.kind,
        "class": error.error_class,
        "message": error.message,
        "attributes": _thaw(error.attributes),
    }


def _error_from_dict(data: dict[str, Any]) -> ErrorInfo:
    """An error's facts read back from :func:`_error_dict` output."""
    return ErrorInfo(
        kind=str(data.get("kind", "error")),
        message=str(data.get("message", "")),
        error_class=str(data.get("class", "ChatStreamError")),
        attributes=dict(data.get("attributes") or {}),
    )


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
        error: The facts of the error that ended the stream (an :class:`ErrorInfo`), or ``None`` if
            it ended normally.
        skipped_events: Events whose data was not a JSON object, skipped.
        system_fingerprint: OpenAI's backend configuration id, or ``None``.
        service_tier: The tier that served the request, or ``None``.
        citations: Perplexity's ``citations`` (URLs), or ``None``.
        search_results: Perplexity's ``search_results``, or ``None``.
        timings: llama.cpp's ``timings`` (prompt and generation speed), or ``None``.
        api: The wire it was read from: ``"chat"`` or ``"responses"``.
        timing: When the stream's parts happened (a :class:`Timing`), or ``None`` for a
            response not read from a live stream (parsed from bytes, say). Not compared
            by ``==``.

    :meth:`to_dict` / :meth:`to_json` write it whole and :meth:`from_dict` /
    :meth:`from_json` read it back, so a recorded result loads as it was.
    """

    response_id: str = ""
    model: str | None = None
    choices: tuple[ChoiceResult, ...] = ()
    usage: TokenUsage | None = None
    error: ErrorInfo | None = None
    skipped_events: int = 0
    system_fingerprint: str | None = None
    service_tier: str | None = None
    citations: Sequence[Any] | None = field(default=None, hash=False)
    search_results: Sequence[Any] | None = field(default=None, hash=False)
    timings: Mapping[str, Any] | None = field(default=None, hash=False)
    api: str = "chat"
    timing: Timing | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "choices", _tuple(self.choices))
        for name in ("citations", "search_results", "timings"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _freeze(value))

    @property
    def _first(self) -> ChoiceResult:
        for choice in self.choices:
            if choice.index == 0:
                return choice
        return _NO_CHOICE

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
    def parsed(self) -> Any:
        """Choice 0's typed answer (``output=T``), validated; ``None`` without ``output``
        or for a response whose answer was tool calls."""
        return self._first.parsed

    @property
    def tool_calls(self) -> tuple[FunctionCall, ...]:
        """Choice 0's finished tool calls."""
        return self._first.tool_calls

    @property
    def incomplete_tool_calls(self) -> tuple[FunctionCall, ...]:
        """Choice 0's tool calls that were started but not finished."""
        return self._first.incomplete_tool_calls

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish reason."""
        return self._first.finish_reason

    @property
    def items(self) -> tuple[ResponseItem, ...]:
        """Choice 0's finished items, in order."""
        return self._first.items

    @property
    def reasoning_summary(self) -> tuple[str, ...]:
        """Choice 0's reasoning summary parts (the Responses wire)."""
        return self._first.reasoning_summary

    @property
    def other_items(self) -> tuple[OtherItem, ...]:
        """Choice 0's items of other types, kept whole (the Responses wire)."""
        return self._first.other_items

    @property
    def truncated(self) -> bool:
        """True when choice 0's answer was cut short (``finish_reason`` ``"length"``,
        ``"max_output_tokens"`` or ``"content_filter"``): the stream ended normally, but
        the model was not done."""
        return self._first.truncated

    @property
    def ok(self) -> bool:
        """True when the stream ended normally."""
        return self.error is None

    @property
    def logprobs(self) -> Mapping[str, Any] | None:
        """Choice 0's logprobs (see :attr:`ChoiceResult.logprobs`)."""
        return self._first.logprobs

    @property
    def annotations(self) -> Sequence[Mapping[str, Any]] | None:
        """Choice 0's annotations."""
        return self._first.annotations

    @property
    def audio(self) -> Audio | None:
        """Choice 0's audio answer."""
        return self._first.audio

    def to_message(self, choice: int = 0) -> dict[str, Any]:
        """The assistant message of choice ``choice`` for the next request (see
        :meth:`ChoiceResult.to_message`)::

            messages.append(response.to_message())
            messages += [{"role": "tool", "tool_call_id": c.call_id, "content": run(c)}
                         for c in response.tool_calls]
        """
        for result in self.choices:
            if result.index == choice:
                return result.to_message()
        if choice == 0:
            return self._first.to_message()
        raise IndexError(f"the response has no choice {choice}")

    def to_input(
        self, tool_outputs: Mapping[str, str | list[Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The Responses API ``input`` items that give this answer back on the next
        request, then the results of its tool calls::

            outputs = {call.call_id: run(call) for call in response.tool_calls}
            history += response.to_input(outputs)
            body = {"model": m, "input": history}

        The items are choice 0's finished items in output order, as the server sent them:
        messages (with their ids, status, text, refusal and annotations), reasoning items
        with their ``id``, ``summary``, ``content`` and ``encrypted_content`` (a
        reasoning item without an id, as Chat Completions streams make them, is left
        out: the wire cannot take it back), function calls and custom tool calls with
        ``call_id`` and ``id``, and every other item whole. ``tool_outputs`` maps a
        ``call_id`` to its result; each becomes a ``function_call_output`` (or
        ``custom_tool_call_output``) item after the answer, in the order of the calls.

        (To continue from the server's stored copy instead, send only the new items with
        ``"previous_response_id": response.response_id``.)
        """
        items = [entry for entry in map(_input_item, self.items) if entry is not None]
        if tool_outputs:
            for call in self.tool_calls:
                if call.call_id in tool_outputs:
                    items.append(tool_output(call, tool_outputs[call.call_id]))
        return items

    def to_dict(self) -> dict[str, Any]:
        """The whole response as a JSON-ready dict; :meth:`from_dict` reads it back.

        The error is written as its class, kind, message and plain attributes."""
        return {
            "response_id": self.response_id,
            "model": self.model,
            "choices": [c.to_dict() for c in self.choices],
            "usage": None if self.usage is None else self.usage.to_dict(),
            "error": None if self.error is None else _error_dict(self.error),
            "skipped_events": self.skipped_events,
            "system_fingerprint": self.system_fingerprint,
            "service_tier": self.service_tier,
            "citations": _thaw(self.citations),
            "search_results": _thaw(self.search_results),
            "timings": _thaw(self.timings),
            "api": self.api,
            "timing": None if self.timing is None else self.timing.to_dict(),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text, always valid as UTF-8: a lone half of a
        surrogate pair anywhere in the response (provider data is kept as it came) is
        written as U+FFFD, so the text can be saved or sent."""
        text = json.dumps(self.to_dict(), ensure_ascii=False)
        try:
            text.encode()
        except UnicodeEncodeError:
            return _whole_text(text)
        return text

    @classmethod
    def from_dict(cls, data: Any) -> Response:
        """Rebuild a response from :meth:`to_dict` output.

        Raises:
            ValueError: ``data`` is not an object, or a field is missing or malformed.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        try:
            usage = data.get("usage")
            error = data.get("error")
            timing = data.get("timing")
            response = cls(
                response_id=data.get("response_id", ""),
                model=data.get("model"),
                choices=tuple([ChoiceResult.from_dict(c) for c in data.get("choices", [])]),
                usage=None if usage is None else TokenUsage.from_dict(usage),
                error=None if error is None else _error_from_dict(error),
                skipped_events=data.get("skipped_events", 0),
                system_fingerprint=data.get("system_fingerprint"),
                service_tier=data.get("service_tier"),
                citations=data.get("citations"),
                search_results=data.get("search_results"),
                timings=data.get("timings"),
                api=data.get("api", "chat"),
                timing=None if timing is None else Timing.from_dict(timing),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read a response: missing or malformed field ({exc})") from exc
        return response

    @classmethod
    def from_json(cls, text: str | bytes) -> Response:
        """Rebuild a response from :meth:`to_json` output.

        Raises:
            ValueError: The text is not JSON, or not a response.
        """
        return cls.from_dict(json.loads(text))

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
            "usage": None if usage is None else usage.counts(),
            "reasoning_summary": list(self._first.reasoning_summary),
            "other_items": [item.item_type for item in self._first.other_items],
            "error": None
            if self.error is None
            else {"kind": self.error.kind, "message": self.error.message},
            "choices": [c.to_result_dict() for c in self.choices],
        }


#: Choice 0 of a response that has none.
_NO_CHOICE = ChoiceResult(index=0)

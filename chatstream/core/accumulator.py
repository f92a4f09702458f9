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
  ``length`` stream in :class:`~chatstream.LengthFinishError`; ``length_is_error=True``
  restores that, finishing nothing more.)

:class:`~chatstream.Completed` carries the usage and the response id, and usage often
arrives after the finish chunk, so it is sent when the input ends (``[DONE]``, or end of
input after a finish reason), after every item still open has been finished. Input that
ends with neither is cut off: :class:`~chatstream.IncompleteStreamError`.

Where the rules go beyond the specification, they follow
``shared/conformance/README.md``, whose corpus of recorded provider streams proves them;
each extension is marked with the quirk it handles, here and in the two modules this one
builds on: ``_choice`` (the state of one choice) and ``_provider_fields`` (reading the
fields each provider names its own way).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._arguments import given
from ..config import Limits, StreamOptions, ThinkTags
from ..errors import (
    ChatStreamError,
    IncompleteStreamError,
    LengthFinishError,
    LimitExceededError,
    ProviderError,
    TooManyChoicesError,
    TooManyToolCallsError,
)
from ..events import Completed, RawChunk, TokenUsage, _freeze_optional
from ..response import ErrorInfo, Response
from .choice import (
    RARE_DELTA_KEYS,
    UNCOMMON_DELTA_KEYS,
    ChoiceState,
    Events,
    Handover,
    read_rare_fields,
)
from .content import ContentFilter
from .partial_json import PartialJson
from .provider_fields import normalised_usage, provider_error, reasoning_field, reasoning_text
from .schema import OutputType
from .textcalls import requires_tool_call
from .typed import TypedJson

__all__ = ["Accumulator"]


#: The top-level fields of a chunk besides its id, model and choices that are read.
_CHUNK_FIELDS = frozenset(
    {"citations", "search_results", "timings", "usage", "x_groq", "error", "type"}
)

log = logging.getLogger("chatstream")


class Accumulator:
    """Reduces Chat Completions chunks to events and a :class:`~chatstream.Response`.

    Feed it every chunk (a parsed ``data:`` payload) in order, then call :meth:`finish`
    once the input ends. It never raises for what a provider sends: a stream that ends
    in an error sets :attr:`error` instead, after which it ignores further input.

    Args:
        options: How the stream is read (:class:`~chatstream.StreamOptions`; the
            defaults when left out). Its ``drop_tool_calls_on_stop`` and
            ``length_is_error`` restore two rules of the specification that are off by
            default (see above); ``partial_json`` gives each
            :class:`~chatstream.FunctionCallArgumentsDelta` the arguments parsed so far
            and, when ``request`` asked for JSON content, sends
            :class:`~chatstream.OutputTextParsed` as it grows (see
            :mod:`chatstream.core.partial_json`); ``think_tags`` and ``text_tool_calls``
            are :mod:`chatstream.core.think` and :mod:`chatstream.core.textcalls`.
            ``queue_size`` is not the core's.
        limits: Its ``max_choices`` and ``max_tool_calls``
            (:class:`~chatstream.Limits`): one more choice, or one more call in a
            choice, ends the stream in :class:`~chatstream.TooManyChoicesError`, or
            :class:`~chatstream.TooManyToolCallsError`. The
            byte limits are the parser's.
        request: The request body, when known: its ``response_format`` and its
            ``tools`` and ``tool_choice`` tell what content to expect.
        output: The type of the answer (see :mod:`chatstream.core.typed`): the content
            is seen as a partial value of it while it streams, and validated at the
            end (the stream then ends in an :class:`~chatstream.OutputError` when the
            model refused, was cut short, or answered what does not validate).
    """

    def __init__(
        self,
        *,
        options: StreamOptions | None = None,
        limits: Limits | None = None,
        request: Mapping[str, Any] | None = None,
        output: OutputType | None = None,
    ) -> None:
        self.output = output
        #: How the stream is read.
        self.options = options = given(StreamOptions, "options", options)
        #: The limits (only ``max_choices`` and ``max_tool_calls`` are the
        #: accumulator's).
        self.limits = limits = given(Limits, "limits", limits)
        # Read once here, never per chunk.
        self._drop_tool_calls_on_stop = options.drop_tool_calls_on_stop
        self._length_is_error = options.length_is_error
        self._raw_chunks = options.raw_chunks
        self._max_choices = limits.max_choices
        self._max_tool_calls = limits.max_tool_calls
        partial_json = self._partial_json = options.partial_json
        tags = options.think_tags
        self._think_tags = tags if isinstance(tags, ThinkTags) else None
        text_tool_calls = self._text_tool_calls = options.text_tool_calls
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
        self._choices: dict[int, ChoiceState] = {}
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
            chunk: The decoded JSON: a dict, or any other mapping (an ``OrderedDict``
                from ``object_pairs_hook``, say), read as the same dict. Anything but an
                object is skipped and counted.
            event: The SSE event type; data of an ``error`` event is a provider error.
        """
        if self.ended:
            return []
        self._cache = None
        if type(chunk) is not dict and isinstance(chunk, Mapping):
            chunk = _plain(chunk)
        if event == "error":
            self._fail(provider_error(chunk))
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
        if self._raw_chunks:
            # The event freezes a copy: nothing of it is shared with the result.
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
        # Most chunks carry none of the rarer top-level fields: one look says so.
        failed = not _CHUNK_FIELDS.isdisjoint(chunk) and self._read_chunk_fields(chunk)
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
            self._fail(provider_error(chunk))
        elif self._error_finish is not None:
            self._fail(self._error_finish)
        return events

    def _read_chunk_fields(self, chunk: dict[str, Any]) -> bool:
        """Keep the rarer top-level fields of a chunk; return whether it is an error."""
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
        return chunk.get("error") is not None or chunk.get("type") == "error"

    def _feed_choice(
        self, choice: dict[str, Any], position: int, events: Events, *, finish: bool
    ) -> None:
        index = choice.get("index")
        if type(index) is not int or index < 0:
            index = position
        state = self._choices.get(index)
        if state is None:
            if len(self._choices) >= self._max_choices:
                self._over_limit(TooManyChoicesError, self._max_choices, "choices")
                return
            state = self._choices[index] = ChoiceState(index)
            self._set_up(state)
        delta = choice.get("delta")
        if type(delta) is dict:
            text_logprobs = refusal_logprobs = None
            logprobs = choice.get("logprobs")
            if type(logprobs) is dict:
                text_logprobs, refusal_logprobs = state.extras().add_logprobs(logprobs)
            # Most deltas hold only content or tool-call fragments: one look says so.
            uncommon = not UNCOMMON_DELTA_KEYS.isdisjoint(delta)
            if uncommon:
                reasoning = reasoning_text(delta)
                if reasoning:
                    state.add_reasoning(reasoning, events)
                    if state.reasoning_field is None:
                        state.reasoning_field = reasoning_field(delta)
                if not RARE_DELTA_KEYS.isdisjoint(delta):
                    read_rare_fields(state, delta, events)
            content = delta.get("content")
            if type(content) is str:
                if content:
                    state.add_text(content, events, logprobs=text_logprobs)
            elif type(content) is list:
                self._content_parts(state, content, events)
            if state.over_limit:  # tool calls recovered from the text
                self._over_limit(TooManyToolCallsError, self._max_tool_calls, "tool calls")
                return
            if uncommon:
                refusal = delta.get("refusal")
                if type(refusal) is str and refusal:
                    state.add_refusal(refusal, events, refusal_logprobs)
            calls = delta.get("tool_calls")
            if type(calls) is list and calls:
                for fragment in calls:
                    if type(fragment) is dict:
                        mark = len(events)
                        opened = len(state.calls)
                        state.add_call_fragment(fragment, events)
                        if len(state.calls) > opened and state.call_count() > self._max_tool_calls:
                            state.drop_last_call()  # the partial keeps the calls allowed
                            del events[mark:]  # and the events, the calls announced
                            self._over_limit(
                                TooManyToolCallsError, self._max_tool_calls, "tool calls"
                            )
                            return
            elif uncommon:
                legacy = delta.get("function_call")
                if type(legacy) is dict:
                    # The legacy single-call form; ignored when tool_calls is present,
                    # since some servers send both (llamacpp-forced-tool-call).
                    state.add_call_fragment({"function": legacy}, events)
        message = choice.get("message")
        if type(message) is dict:
            # The specification reads message.reasoning; message.reasoning_content is
            # the same for the servers that use that name.
            reasoning = reasoning_text(
                {
                    "reasoning": message.get("reasoning"),
                    "reasoning_content": message.get("reasoning_content"),
                }
            )
            if reasoning:
                state.add_reasoning(reasoning, events)
                if state.reasoning_field is None:
                    state.reasoning_field = reasoning_field(message)
        reason = choice.get("finish_reason")
        # Old Ollama sends "" on every chunk: that is no finish reason.
        if finish and type(reason) is str and reason:
            self._finish_choice(state, reason, events)

    def _set_up(self, state: ChoiceState) -> None:
        """Give a new choice the live views and content options asked for."""
        state.partial_json = self._partial_json
        if self.output is not None:
            state.typed_view = TypedJson(self.output)
        elif self._json_content:
            state.json_view = PartialJson()
        state.max_calls = self._max_tool_calls
        if self._think_tags is not None or self._text_tool_calls:
            state.content_filter = ContentFilter(
                think=self._think_tags, calls=self._text_tool_calls, bare_calls=self._bare_calls
            )

    @staticmethod
    def _content_parts(state: ChoiceState, parts: list[Any], events: Events) -> None:
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

    def _finish_choice(self, state: ChoiceState, reason: str, events: Events) -> None:
        state.flush_content(events)
        if state.over_limit:
            self._over_limit(TooManyToolCallsError, self._max_tool_calls, "tool calls")
            return
        state.finish_reason = reason
        self._seen_finish = True
        if reason in ("tool_calls", "function_call"):
            state.finish_reasoning(events)
            state.finish_calls(events, Handover.ALL)
        elif reason == "error":
            # An error with no error object: nothing of the choice is finished.
            if self._error_finish is None:
                self._error_finish = ProviderError(
                    f'The provider ended choice {state.index} with finish_reason "error".'
                )
        elif reason == "length" and self._length_is_error:
            self._pending_error = self._pending_error or LengthFinishError(
                'The model stopped at its token limit (finish_reason "length").'
            )
        else:
            state.finish_reasoning(events)
            state.finish_message(events)
            drop = reason == "stop" and self._drop_tool_calls_on_stop
            state.finish_calls(events, Handover.NONE if drop else Handover.WHOLE)

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
            if state.over_limit:
                self._over_limit(TooManyToolCallsError, self._max_tool_calls, "tool calls")
                return events
            state.finish_reasoning(events)
            state.finish_message(events)
            state.finish_calls(events, Handover.WHOLE)
        for index in sorted(self._choices):
            error = self._choices[index].check_output(events)
            if error is not None:
                self._fail(error)
                return events
        self.ended = True
        events.append(
            Completed(
                self._response_id,
                self.usage,
                system_fingerprint=self._fingerprint,
                service_tier=self._service_tier,
                # Kept as sent (Perplexity repeats them on every chunk), frozen here.
                citations=_freeze_optional(self._citations),
                search_results=_freeze_optional(self._search_results),
                timings=self._timings,
            )
        )
        return events

    def _over_limit(self, error: type[LimitExceededError], limit: int, what: str) -> None:
        self._fail(
            error(
                f"The response has more than {limit} {what} ({error.name}); reading stopped.",
                limit=limit,
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
        return None if self._usage is None else normalised_usage(self._usage)

    @property
    def response(self) -> Response:
        """The response as far as it got (complete once the stream has ended normally)."""
        if self._cache is None:
            self._cache = Response(
                response_id=self._response_id,
                model=self._model,
                choices=tuple([self._choices[i].result() for i in sorted(self._choices)]),
                usage=self.usage,
                error=None if self.error is None else ErrorInfo.of(self.error),
                skipped_events=self.skipped_events,
                system_fingerprint=self._fingerprint,
                service_tier=self._service_tier,
                citations=_freeze_optional(self._citations),
                search_results=_freeze_optional(self._search_results),
                timings=self._timings,
            )
        return self._cache


def _plain(value: Any) -> Any:
    """``value`` with every mapping in it a dict and every tuple a list, as ``json.loads``
    would have made them: the rules look for exactly those types."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value

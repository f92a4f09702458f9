"""The sans-I/O core: the bytes of a streamed response in, events out.

:class:`StreamParser` joins SSE decoding (:mod:`chatstream.core.sse`) and the reduction rules
(:mod:`chatstream.core.accumulator`). It has no sockets, threads or clocks; the client drives
it from a socket, and anyone can drive it from a recording::

    >>> import chatstream
    >>> parser = chatstream.StreamParser()
    >>> events = parser.feed(b'data: {"choices":[{"delta":{"content":"Hi"}}]}\\n\\n')
    >>> events += parser.feed(b'data: [DONE]\\n\\n')
    >>> [type(e).__name__ for e in events]
    ['OutputItemAdded', 'OutputTextDelta', 'OutputItemDone', 'Completed']
    >>> parser.result().content
    'Hi'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jiter

from .._arguments import given
from ..config import Limits, StreamOptions
from ..errors import (
    ChatStreamError,
    EventTooLargeError,
    IncompleteStreamError,
    ResponseTooLargeError,
    UnexpectedResponseError,
)
from ..events import ResponseEvent
from ..response import Response
from .accumulator import Accumulator
from .responses import ResponsesAccumulator
from .schema import OutputType
from .sse import SSEDecoder, SSEMessage

__all__ = ["StreamParser", "iter_events"]

log = logging.getLogger("chatstream")

# The end-of-stream sentinel, and the bracketless form some servers and stubs send.
_SENTINELS = ("[DONE]", "DONE")

_from_json: Callable[[bytes], Any] = jiter.from_json


def _loads(data: str) -> Any:
    """``json.loads(data)``, in a third of the time (a third of the parser's time).

    jiter reads every text json reads the same way, and nothing json rejects
    (``tests/core/test_parser.py`` checks both on generated and hostile input). What jiter
    rejects goes to ``json.loads``, whose value or error is the answer: that keeps what
    only the standard library reads, such as the lone surrogate escape some servers
    leave when they split an emoji between two chunks, or nesting deeper than jiter's
    limit.
    """
    try:
        return _from_json(data.encode())
    except ValueError:  # UnicodeEncodeError included
        return json.loads(data)


class StreamParser:
    """Turns the body of a streamed Chat Completions (or Responses API) response into
    events.

    Feed it the body's bytes as they arrive, split anywhere, then call :meth:`close` at
    the end of the body. Each call returns the events the bytes completed. A stream that
    fails does not raise here: :attr:`error` is set, :attr:`ended` becomes true, and
    :meth:`result` raises it.

    A server that ignored ``"stream": true`` sends one whole JSON completion instead:
    give it to :meth:`feed_completion`.

    The limits against hostile volume end the stream in a
    :class:`~chatstream.LimitExceededError` (one subclass per limit), keeping what came
    before.

    Args:
        options: How the stream is read and viewed (:class:`~chatstream.StreamOptions`;
            the defaults when left out).
        limits: How much the response may hold (:class:`~chatstream.Limits`; the
            defaults when left out: 16 MiB an event, 128 choices, 1024 tool calls a
            choice, no limit on the whole body).
        request: The request body, when known (:meth:`Client.stream
            <chatstream.Client.stream>` passes it): its ``response_format`` and
            ``tool_choice`` tell which views apply.
        output: The type of the answer: an :class:`~chatstream.core.schema.OutputType`
            (see :mod:`chatstream.core.typed`); ``None``: none.
        api: The wire, instead of ``options.api``: ``"chat"`` (Chat Completions chunks)
            or ``"responses"`` (Responses API events, read by
            :class:`~chatstream.core.responses.ResponsesAccumulator` into the same
            events); ``None``: ``options.api``.

    Raises:
        ConfigurationError: An option is invalid, or ``api`` is neither wire.
    """

    def __init__(
        self,
        *,
        options: StreamOptions | None = None,
        limits: Limits | None = None,
        request: Mapping[str, Any] | None = None,
        output: OutputType | None = None,
        api: str | None = None,
    ) -> None:
        options = given(StreamOptions, "options", options)
        if api is not None and api != options.api:
            options = options.replace(api=api)  # checks it
        limits = given(Limits, "limits", limits)
        #: The wire read: ``"chat"`` or ``"responses"``.
        self.api = options.api
        self._sse = SSEDecoder(limits.max_event_bytes)
        self._max_event_bytes = limits.max_event_bytes
        #: The reduction state; its events are the ones this parser returns.
        self.accumulator: Accumulator | ResponsesAccumulator
        if self.api == "responses":
            self.accumulator = ResponsesAccumulator(
                options=options, limits=limits, request=request, output=output
            )
        else:
            self.accumulator = Accumulator(
                options=options, limits=limits, request=request, output=output
            )
        #: How many SSE messages with data have been read (keep-alive comments are not
        #: messages).
        self.messages = 0
        self._max_total_bytes = limits.max_total_bytes
        # The bytes still allowed by max_total_bytes (None: no limit).
        self._bytes_left = limits.max_total_bytes

    @property
    def options(self) -> StreamOptions:
        """How the stream is read."""
        return self.accumulator.options

    @property
    def limits(self) -> Limits:
        """The limits of this stream."""
        return self.accumulator.limits

    @property
    def ended(self) -> bool:
        """True once the stream has ended (``[DONE]``, an error, or :meth:`close`)."""
        return self.accumulator.ended

    @property
    def error(self) -> ChatStreamError | None:
        """The error that ended the stream, or ``None``."""
        return self.accumulator.error

    @property
    def response(self) -> Response:
        """The response so far: complete once the stream ended normally."""
        return self.accumulator.response

    @property
    def last_sequence_number(self) -> int | None:
        """The highest ``sequence_number`` read on the Responses wire (``None`` while
        none came, and always on the chat wire): where a resumed stream starts after."""
        accumulator = self.accumulator
        if isinstance(accumulator, ResponsesAccumulator):
            return accumulator.last_sequence_number
        return None

    def resume(self) -> None:
        """A new body continues this Responses stream after
        :attr:`last_sequence_number` (``GET /responses/{id}?stream=true&starting_after=N``,
        once the first body dropped): what was left of the old body's unfinished SSE
        message is dropped, and an event of the new one at or before the last sequence
        number read is skipped, so none is delivered twice. Feed the new body's bytes
        after this as usual; the stream goes on as if it had never dropped.

            >>> import chatstream, json
            >>> parser = chatstream.StreamParser(api="responses")
            >>> def event(n: int, kind: str, **more: object) -> bytes:
            ...     data = {"type": kind, "sequence_number": n, **more}
            ...     return b"data: " + json.dumps(data).encode() + b"\\n\\n"
            >>> first = event(0, "response.created", response={"id": "resp_1"})
            >>> first += event(1, "response.output_text.delta", output_index=0, delta="Hel")
            >>> events = parser.feed(first + b'data: {"type": "respo')  # then it drops
            >>> parser.response.response_id, parser.last_sequence_number
            ('resp_1', 1)
            >>> parser.resume()
            >>> again = event(1, "response.output_text.delta", output_index=0, delta="Hel")
            >>> again += event(2, "response.output_text.delta", output_index=0, delta="lo")
            >>> again += event(3, "response.completed", response={"id": "resp_1"})
            >>> events += parser.feed(again)
            >>> parser.result().content
            'Hello'

        Raises:
            RuntimeError: The parser reads the chat wire, or the stream has ended.
        """
        accumulator = self.accumulator
        if not isinstance(accumulator, ResponsesAccumulator):
            raise RuntimeError("only a Responses API stream can be resumed")
        if accumulator.ended:
            raise RuntimeError("the stream has ended: there is nothing to resume")
        self._sse = SSEDecoder(self._max_event_bytes)
        accumulator.resume()

    def feed(self, data: bytes) -> list[ResponseEvent]:
        """Add bytes of the body; return the events they complete.

        Bytes after the stream has ended (after ``[DONE]``, say) are ignored.
        """
        if self.accumulator.ended:
            return []
        over = False
        if self._bytes_left is not None:
            # What fits is read, so the partial response holds every byte allowed.
            over = len(data) > self._bytes_left
            data = data[: self._bytes_left]
            self._bytes_left -= len(data)
        try:
            messages = self._sse.feed(data)
        except EventTooLargeError as exc:
            self.accumulator.fail(exc)
            return []
        events = self._reduce(messages)
        if over and not self.accumulator.ended:
            self.accumulator.fail(self._too_many_bytes())
        return events

    def feed_completion(
        self, body: bytes, *, content_type: str = "application/json"
    ) -> list[ResponseEvent]:
        """Take a whole (non-streamed) chat completion, as a server that ignored
        ``"stream": true`` sends it, and return all its events; the stream is over
        after this.

        Only a completion is a success. A body that is not one ends the stream in
        :class:`~chatstream.UnexpectedResponseError` saying what was wrong (an event
        stream sent as JSON, a gateway's ``{"detail": ...}``, ``"choices": 5``, a tool
        call that is not one, nesting too deep to read), with the start of the body;
        one cut off mid-way ends it in :class:`~chatstream.IncompleteStreamError`; an
        ``{"error": ...}`` object in :class:`~chatstream.ProviderError`.

            >>> import chatstream
            >>> parser = chatstream.StreamParser()
            >>> body = b'{"choices":[{"message":{"content":"Hi"},"finish_reason":"stop"}]}'
            >>> [type(e).__name__ for e in parser.feed_completion(body)]
            ['OutputItemAdded', 'OutputTextDelta', 'OutputItemDone', 'Completed']
            >>> parser.result().content
            'Hi'
            >>> parser = chatstream.StreamParser()
            >>> parser.feed_completion(b'{"detail": "Not authenticated"}')
            []
            >>> print(parser.error)
            The JSON body is not a chat completion: it has no "choices" (detail: Not authenticated).

        Args:
            body: The whole response body.
            content_type: Its media type, for the error.
        """
        if self.accumulator.ended:
            return []
        if self._bytes_left is not None and len(body) > self._bytes_left:
            self.accumulator.fail(self._too_many_bytes())
            return []
        if len(body) > self._max_event_bytes:
            limit = self._max_event_bytes
            self.accumulator.fail(
                EventTooLargeError(
                    f"The response is larger than the limit of {limit} bytes.", limit=limit
                )
            )
            return []
        text = body.decode("utf-8", "replace").lstrip("\ufeff")
        if self.api == "responses":
            return self._whole_response(text, content_type)
        try:
            chunk, problem = _completion_chunk(text)
        except _CutOff:
            self.accumulator.fail(
                IncompleteStreamError(
                    f"The JSON completion was cut off after {len(body)} bytes: the "
                    "connection closed before its end."
                )
            )
            return []
        if problem is not None:
            self.accumulator.fail(
                UnexpectedResponseError(
                    problem, status=200, content_type=content_type, body=text[:_SNIPPET]
                )
            )
            return []
        events = self.accumulator.feed(chunk)
        return events + self.accumulator.finish(done=True)

    def _whole_response(self, text: str, content_type: str) -> list[ResponseEvent]:
        """A whole (non-streamed) Responses API response, read as the stream of its
        items: each output item added and done, then its terminal event by status."""
        accumulator = self.accumulator
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and value.get("error") is not None:
            accumulator.feed(value)  # a provider error object
            return accumulator.finish(done=True)
        output = value.get("output") if isinstance(value, dict) else None
        if not isinstance(value, dict) or not isinstance(output, list):
            accumulator.fail(
                UnexpectedResponseError(
                    'The JSON body is not a Responses API response: it has no "output" list.',
                    status=200,
                    content_type=content_type,
                    body=text[:_SNIPPET],
                )
            )
            return []
        events = accumulator.feed({"type": "response.created", "response": value})
        for index, item in enumerate(output):
            for kind in ("response.output_item.added", "response.output_item.done"):
                events += accumulator.feed({"type": kind, "output_index": index, "item": item})
        status = value.get("status")
        terminal = {"failed": "response.failed", "incomplete": "response.incomplete"}
        events += accumulator.feed(
            {"type": terminal.get(str(status), "response.completed"), "response": value}
        )
        return events + accumulator.finish(done=True)

    def _too_many_bytes(self) -> ResponseTooLargeError:
        limit = self._max_total_bytes or 0
        return ResponseTooLargeError(
            f"The response is larger than max_total_bytes ({limit} bytes); reading stopped.",
            limit=limit,
        )

    def close(self) -> list[ResponseEvent]:
        """The body ended; return the last events. The stream is over after this."""
        if self.accumulator.ended:
            return []
        events = self._reduce(self._sse.close())
        return events + self.accumulator.finish()

    def fail(self, error: ChatStreamError) -> ChatStreamError:
        """End the stream with an error from outside (the connection broke, say); return
        it with its ``partial`` response set."""
        return self.accumulator.fail(error)

    def result(self) -> Response:
        """The finished response.

        Raises:
            ChatStreamError: The error that ended the stream (with ``partial`` set).
            RuntimeError: The stream has not ended yet.
        """
        if self.accumulator.error is not None:
            raise self.accumulator.error
        if not self.accumulator.ended:
            raise RuntimeError("the stream has not ended; call close() at the end of input")
        return self.accumulator.response

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[ResponseEvent]:
        """Feed every piece of ``chunks`` and yield the events; stop reading at the end
        of the stream.

        Raises:
            ChatStreamError: When the stream ended in an error, after the events that
                came before it.
        """
        for data in chunks:
            yield from self.feed(data)
            if self.accumulator.ended:
                break
        else:
            yield from self.close()
        if self.accumulator.error is not None:
            raise self.accumulator.error

    def _reduce(self, messages: list[SSEMessage]) -> list[ResponseEvent]:
        accumulator = self.accumulator
        events: list[ResponseEvent] = []
        self.messages += len(messages)
        for message in messages:
            # As the specification does: trimmed, then compared with the sentinels.
            # (strip() costs nothing on data with no surrounding whitespace.)
            data = message.data.strip()
            if not data:
                continue
            if data in _SENTINELS:
                events += accumulator.finish(done=True)
                break
            chunk: object
            try:
                chunk = _loads(data)
            except (ValueError, RecursionError):
                # Not JSON (a ping, a proxy's note), or nested too deeply to read: the
                # text goes to the accumulator, which skips and counts it as the
                # specification skips it (or, from an ``event: error`` frame, reports
                # it as the error's message).
                if message.event != "error":
                    log.debug("skipping an SSE event whose data is not JSON (%d chars)", len(data))
                chunk = data
            events += accumulator.feed(chunk, event=message.event)
            if accumulator.ended:
                break
        return events


# How much of a body that is not a completion an error quotes.
_SNIPPET = 512


class _CutOff(Exception):
    """The JSON text ends before its value does."""


def _completion_chunk(text: str) -> tuple[dict[str, Any], str | None]:
    """The streamed chunk equivalent to a whole chat completion (each choice's
    ``message`` becomes its ``delta``), or what is wrong with it.

    Raises:
        _CutOff: The text is the start of a JSON value, cut off.
    """
    stripped = text.strip()
    try:
        completion = json.loads(stripped)
    except RecursionError:
        return {}, "The JSON body is nested too deeply to read."
    except json.JSONDecodeError as exc:
        if stripped.startswith(("{", "[")) and (
            exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string")
        ):
            raise _CutOff from None
        if stripped.startswith(("data:", "event:", ":")):
            return {}, "The body is an event stream sent as JSON: it is not a completion."
        return {}, f"The body is not JSON ({exc.msg} at {exc.pos})."
    if not isinstance(completion, dict):
        return {}, f"The JSON body is a {_json_type(completion)}, not a chat completion."
    if completion.get("error") is not None or completion.get("type") == "error":
        return completion, None  # a provider error: the accumulator reports it
    choices = completion.get("choices")
    if choices is None:
        detail = completion.get("detail") or completion.get("message")
        said = f" (detail: {detail})" if isinstance(detail, str) and detail else ""
        return {}, f'The JSON body is not a chat completion: it has no "choices"{said}.'
    if not isinstance(choices, list) or not choices:
        what = "an empty list" if choices == [] else f"a {_json_type(choices)}"
        return {}, f'The JSON body is not a chat completion: its "choices" is {what}.'
    chunk = {k: v for k, v in completion.items() if k != "choices"}
    chunk["choices"] = []
    for position, choice in enumerate(choices):
        where = f"The completion's choices[{position}]"
        if not isinstance(choice, dict):
            return {}, f"{where} is a {_json_type(choice)}, not a choice."
        message = choice.get("message")
        if not isinstance(message, dict):
            return {}, f"{where}.message is a {_json_type(message)}, not a message."
        delta = dict(message)
        calls = message.get("tool_calls")
        if calls is not None:
            problem = _tool_calls_problem(calls, f"{where}.message.tool_calls")
            if problem:
                return {}, problem
            delta["tool_calls"] = [dict(call, index=i) for i, call in enumerate(calls)]
        chunk["choices"].append(
            {
                "index": choice.get("index", position),
                "delta": delta,
                "finish_reason": choice.get("finish_reason"),
                "logprobs": choice.get("logprobs"),
            }
        )
    return chunk, None


def _tool_calls_problem(calls: Any, where: str) -> str | None:
    """What is wrong with a completion's ``tool_calls``, or ``None``. A call is a
    ``function`` (``name``, ``arguments``) or a custom tool's call (``custom``:
    ``name``, ``input``)."""
    if not isinstance(calls, list):
        return f"{where} is a {_json_type(calls)}, not a list."
    for number, call in enumerate(calls):
        at = f"{where}[{number}]"
        if not isinstance(call, dict):
            return f"{at} is a {_json_type(call)}, not a tool call."
        kind, text = ("custom", "input") if "function" not in call else ("function", "arguments")
        function = call.get(kind)
        if not isinstance(function, dict):
            return f"{at} is a call without a function."
        for field in ("name", text):
            value = function.get(field)
            if value is not None and not isinstance(value, str):
                return f"{at}.{kind}.{field} is a {_json_type(value)}, not a string."
        if not function.get("name"):
            return f"{at} has no function name."
    return None


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type[Any], str] = {str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)


def iter_events(
    chunks: Iterable[bytes],
    *,
    options: StreamOptions | None = None,
    limits: Limits | None = None,
    request: Mapping[str, Any] | None = None,
    api: str | None = None,
) -> Iterator[ResponseEvent]:
    """Yield the events of a streamed body given as pieces of bytes (a list, a file
    opened in binary mode, a socket reader), read as :class:`StreamParser` with these
    arguments reads it (``api="responses"`` for a Responses API stream).

    Raises:
        ChatStreamError: When the stream ended in an error, after the events before it;
            its ``partial`` holds the response so far.
    """
    parser = StreamParser(options=options, limits=limits, request=request, api=api)
    return parser.iter_events(chunks)

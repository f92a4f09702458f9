"""Relaying a stream to a browser as Server-Sent Events, from any WSGI framework.

Two protocols: chatstream's own events (:func:`sse_events`), and the AI SDK's UI
Message Stream protocol (:func:`ui_message_stream`), which front ends written with
``useChat`` read as they are.

:func:`sse_events` turns a :class:`~chatstream.ChatStream` into the bytes of an
``text/event-stream`` body: one SSE event per chatstream event, named by its type, with
its JSON as data, then a ``done`` event with the result (or an ``error`` event). Hand it
to the framework as a streaming response body::

    # Flask
    return flask.Response(sse_events(stream), headers=SSE_HEADERS)
    # Django
    return StreamingHttpResponse(sse_events(stream), headers=SSE_HEADERS)

When the browser goes away, the WSGI server calls the body's ``close()``, which closes the
upstream stream at once: its connection is released and the provider stops generating.

In the browser, listen for the event types you need (``EventSource`` only takes ``GET``;
for a ``POST``, read ``fetch()``'s body)::

    const source = new EventSource("/chat?q=hello");
    source.addEventListener("output_text_delta", e => out.textContent += JSON.parse(e.data).delta);
    // A tool call as it streams: its name at once, then its arguments piece by piece.
    source.addEventListener("output_item_added", e => {
      const item = JSON.parse(e.data).item;
      if (item.type === "function_call") out.textContent += `\n→ ${item.name}(`;
    });
    source.addEventListener("function_call_arguments_delta",
      e => out.textContent += JSON.parse(e.data).delta);
    source.addEventListener("done", () => source.close());
    source.addEventListener("error", () => source.close());
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from .errors import ChatStreamError, ConfigurationError
from .events import (
    FunctionCall,
    FunctionCallArgumentsDelta,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
    RateLimits,
    Reasoning,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
)
from .response import Response
from .smooth import Chunking, smooth
from .stream import ChatStream
from .tools import ToolLoop, ToolResult

__all__ = [
    "SSEBody",
    "SSE_HEADERS",
    "UIMessageChunks",
    "UIMessageStreamBody",
    "UI_MESSAGE_STREAM_HEADERS",
    "sse_events",
    "ui_message_stream",
]

#: Response headers for an event stream relayed through proxies: no caching, and no
#: buffering by nginx (which would hold the events back until the end).
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


#: Response headers for the AI SDK's UI Message Stream protocol: the SSE headers, and the
#: header by which the AI SDK's client knows the protocol and its version.
UI_MESSAGE_STREAM_HEADERS = {**SSE_HEADERS, "x-vercel-ai-ui-message-stream": "v1"}


def sse_events(
    stream: ChatStream, *, smooth_by: Chunking | None = None, rate_limits: bool = False
) -> SSEBody:
    """The SSE body relaying ``stream``; see :class:`SSEBody`.

    ``smooth_by`` (``"word"`` or ``"line"``) relays the text a word or a line at a time
    (see :mod:`chatstream.smooth`): fewer, whole pieces for the browser to draw.
    ``rate_limits=True`` relays the provider's ``x-ratelimit-*`` headers too (the
    ``rate_limits`` event): they describe your account's key, not the browser's user,
    so they are left out unless asked for.
    """
    return SSEBody(stream, smooth_by=smooth_by, rate_limits=rate_limits)


def _frame(name: str, data: str) -> bytes:
    # The data is JSON on one line (json.dumps escapes line breaks), so one data field.
    return f"event: {name}\ndata: {data}\n\n".encode()


class _Relay:
    """An iterable of ``bytes`` for a WSGI response body; :meth:`close` (called by every
    WSGI server when the response ends or the client goes away, started or not) stops
    relaying and closes the upstream streams."""

    def __init__(self) -> None:
        self._frames = self._generate()
        self._open: list[ChatStream | ToolLoop] = []

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def _generate(self) -> Generator[bytes, None, None]:
        raise NotImplementedError  # pragma: no cover

    def close(self) -> None:
        """Stop relaying and close the upstream stream or tool loop (idempotent)."""
        self._frames.close()
        for stream in self._open:
            stream.close()


class SSEBody(_Relay):
    """An iterable of ``bytes`` for a WSGI response body, relaying a stream.

    It yields, in order:

    * ``event: <type>`` / ``data: <event JSON>`` for each event of the stream (``type`` is
      the event's tag, e.g. ``output_text_delta``; the data is
      :meth:`~chatstream.Serializable.to_json`);
    * at the end, ``event: done`` with the result object
      (:meth:`~chatstream.Response.to_result_dict`), or ``event: error`` with
      ``{"kind": ..., "message": ...}`` when the stream failed. An answer cut short by
      ``max_tokens`` or a content filter ends normally: ``done``, its ``finish_reason``
      ``"length"`` or ``"content_filter"`` saying so.

    :meth:`close` (called by every WSGI server when the response ends or the client goes
    away, started or not) closes the upstream stream.
    """

    def __init__(
        self, stream: ChatStream, *, smooth_by: Chunking | None = None, rate_limits: bool = False
    ) -> None:
        self.stream = stream
        self.smooth_by = smooth_by
        self.rate_limits = rate_limits
        super().__init__()
        self._open.append(stream)

    def _generate(self) -> Generator[bytes, None, None]:
        stream = self.stream
        events = stream if self.smooth_by is None else smooth(stream, by=self.smooth_by)
        try:
            for event in events:
                if isinstance(event, RateLimits) and not self.rate_limits:
                    continue
                yield _frame(event.type, event.to_json())
            result = stream.result()
        except ChatStreamError as exc:
            error = {"kind": exc.kind, "message": exc.message}
            yield _frame("error", json.dumps(error, ensure_ascii=False))
        else:
            yield _frame("done", json.dumps(result.to_result_dict(), ensure_ascii=False))
        finally:
            stream.close()


# --- the AI SDK's UI Message Stream protocol ---------------------------------------------


#: How a Chat Completions ``finish_reason`` reads in the protocol's ``finish`` chunk.
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
}


class UIMessageChunks:
    """Turns chatstream's events into the chunks (JSON objects) of the AI SDK's UI Message
    Stream protocol, one assistant message. Sans-I/O: :class:`UIMessageStreamBody` frames
    what it returns.

    Call :meth:`start` once, :meth:`event` for each event, :meth:`tool_output` and
    :meth:`next_step` between the steps of a tool loop, then :meth:`finish` or
    :meth:`fail`. Only the first choice (``choice_index`` 0) is relayed: a chat front
    end shows one answer. A refusal is relayed as text, since the protocol has no part
    for it.

    >>> from chatstream import OutputTextDelta, Response
    >>> chunks = UIMessageChunks(message_id="m1")
    >>> chunks.start() + chunks.event(OutputTextDelta("Hi"))
    [{'type': 'start', 'messageId': 'm1'}, {'type': 'start-step'},
     {'type': 'text-start', 'id': 'text-1'}, {'type': 'text-delta', 'id': 'text-1', 'delta': 'Hi'}]
    >>> chunks.finish(Response())  # no finish_reason reads as "stop"
    [{'type': 'text-end', 'id': 'text-1'}, {'type': 'finish-step'},
     {'type': 'finish', 'finishReason': 'stop'}]
    """

    def __init__(self, *, message_id: str | None = None) -> None:
        self.message_id = message_id if message_id is not None else f"msg-{uuid.uuid4().hex}"
        self._parts = 0
        self._open: tuple[str, str] | None = None  # (kind, id) of the open text or reasoning
        self._calls: dict[str, str] = {}  # call_id -> name, of calls whose input streams

    def start(self) -> list[dict[str, Any]]:
        """The chunks that open the message and its first step."""
        return [{"type": "start", "messageId": self.message_id}, {"type": "start-step"}]

    def event(self, event: ResponseEvent) -> list[dict[str, Any]]:
        """The chunks for one event (none for events the protocol has no place for)."""
        if getattr(event, "choice_index", 0) != 0:
            return []
        if isinstance(event, (OutputTextDelta, RefusalDelta)):
            return self._delta("text", event.delta)
        if isinstance(event, ReasoningContentDelta):
            return self._delta("reasoning", event.delta)
        if isinstance(event, FunctionCallArgumentsDelta):
            if event.call_id not in self._calls or not event.delta:
                return []
            return [
                {
                    "type": "tool-input-delta",
                    "toolCallId": event.call_id,
                    "inputTextDelta": event.delta,
                }
            ]
        if isinstance(event, (OutputItemAdded, OutputItemDone, OutputItemIncomplete)):
            return self._item(event)
        return []

    def tool_output(self, result: ToolResult) -> list[dict[str, Any]]:
        """The chunk relaying a tool call's result: ``tool-output-available`` with its
        :attr:`~chatstream.tools.ToolResult.output` (or its text), ``tool-output-denied``
        for a call ``approve`` refused, ``tool-output-error`` (its text) for one that
        failed, was interrupted or named no tool."""
        call_id = result.call.call_id
        if result.status == "ok":
            output = result.content if result.output is None else result.output
            return [{"type": "tool-output-available", "toolCallId": call_id, "output": output}]
        if result.status == "refused":
            return [{"type": "tool-output-denied", "toolCallId": call_id}]
        return [{"type": "tool-output-error", "toolCallId": call_id, "errorText": result.content}]

    def next_step(self) -> list[dict[str, Any]]:
        """The chunks between two model requests of one message (a tool loop's steps)."""
        return [*self._close(), {"type": "finish-step"}, {"type": "start-step"}]

    def finish(self, response: Response) -> list[dict[str, Any]]:
        """The chunks that end the message after a stream ended normally."""
        reason = _FINISH_REASONS.get(response.finish_reason or "stop", "other")
        return [*self._close(), {"type": "finish-step"}, {"type": "finish", "finishReason": reason}]

    def fail(self, error: ChatStreamError) -> list[dict[str, Any]]:
        """The chunks that end the message after the stream failed."""
        return [*self._close(), {"type": "error", "errorText": error.message}]

    def _delta(self, kind: str, delta: str) -> list[dict[str, Any]]:
        if not delta:
            return []
        chunks: list[dict[str, Any]] = []
        if self._open is None or self._open[0] != kind:
            chunks += self._close()
            self._parts += 1
            self._open = (kind, f"{kind}-{self._parts}")
            chunks.append({"type": f"{kind}-start", "id": self._open[1]})
        chunks.append({"type": f"{kind}-delta", "id": self._open[1], "delta": delta})
        return chunks

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        kind, part_id = self._open
        self._open = None
        return [{"type": f"{kind}-end", "id": part_id}]

    def _item(
        self, event: OutputItemAdded | OutputItemDone | OutputItemIncomplete
    ) -> list[dict[str, Any]]:
        item = event.item
        if isinstance(item, (Message, Reasoning)):
            kind = "text" if isinstance(item, Message) else "reasoning"
            done = not isinstance(event, OutputItemAdded)
            return self._close() if done and self._open and self._open[0] == kind else []
        if not isinstance(item, FunctionCall):
            return []
        chunks: list[dict[str, Any]] = []
        if item.call_id not in self._calls:
            chunks += self._close()
            self._calls[item.call_id] = item.name
            start: dict[str, Any] = {"type": "tool-input-start", "toolCallId": item.call_id}
            start["toolName"] = item.name
            if item.custom:
                start["inputEncoding"] = "text"
            chunks.append(start)
        if isinstance(event, OutputItemAdded):
            return chunks
        name = self._calls[item.call_id]
        common = {"toolCallId": item.call_id, "toolName": name}
        if isinstance(event, OutputItemIncomplete):
            error = "The tool call was cut off before its arguments were complete."
            chunks.append(
                {"type": "tool-input-error", **common, "input": item.arguments, "errorText": error}
            )
            return chunks
        if item.custom:
            return [*chunks, {"type": "tool-input-available", **common, "input": item.arguments}]
        try:
            arguments = json.loads(item.arguments) if item.arguments.strip() else {}
        except ValueError:
            error = "The tool call's arguments are not valid JSON."
            chunks.append(
                {"type": "tool-input-error", **common, "input": item.arguments, "errorText": error}
            )
        else:
            chunks.append({"type": "tool-input-available", **common, "input": arguments})
        return chunks


#: What :func:`ui_message_stream` relays: one stream, a tool loop, or the steps of a tool
#: loop of one's own (streams and tool results).
Source = ChatStream | ToolLoop | Iterable[ChatStream | ToolResult]


def ui_message_stream(
    source: Source,
    *,
    message_id: str | None = None,
    smooth_by: Chunking | None = None,
) -> UIMessageStreamBody:
    """The body relaying ``source`` in the AI SDK's UI Message Stream protocol, for
    front ends written with its ``useChat`` (React, Vue, Svelte) or ``Chat`` class;
    send it with :data:`UI_MESSAGE_STREAM_HEADERS`::

        # Flask
        return flask.Response(ui_message_stream(stream), headers=UI_MESSAGE_STREAM_HEADERS)
        # Django
        return StreamingHttpResponse(ui_message_stream(stream), headers=UI_MESSAGE_STREAM_HEADERS)

    ``source`` is one stream, or a tool loop relayed as one assistant message (each
    model request a step, each call's result a ``tool-output-*`` chunk):

    * a :class:`~chatstream.tools.ToolLoop`, from :meth:`Conversation.run_steps
      <chatstream.Conversation.run_steps>`; it runs as the body is read;
    * or the steps of a loop of one's own: an iterable (a generator, say) of streams
      and :class:`~chatstream.tools.ToolResult` values, relayed in order. The iterable
      is advanced only after the previous stream ended, so a generator can read
      ``stream.result()`` to run the tools it asked for.

    ``smooth_by`` (``"word"`` or ``"line"``) relays the text a word or a line at a time
    (streams and iterables of them). When the browser stops (``useChat``'s ``stop()``),
    the server closes the body, which closes the upstream stream, or the tool loop (no
    new tool starts; running tools see ``cancelled``).

    Raises:
        ConfigurationError: ``smooth_by`` with a tool loop.
    """
    return UIMessageStreamBody(source, message_id=message_id, smooth_by=smooth_by)


class UIMessageStreamBody(_Relay):
    """An iterable of ``bytes`` for a WSGI response body: ``data: <chunk JSON>`` for each
    chunk of :class:`UIMessageChunks`, then ``data: [DONE]``. A failed stream ends the
    message with an ``error`` chunk (its message, never a key or header) and no later
    step runs."""

    def __init__(
        self,
        source: Source,
        *,
        message_id: str | None = None,
        smooth_by: Chunking | None = None,
    ) -> None:
        if smooth_by is not None and isinstance(source, ToolLoop):
            raise ConfigurationError("smooth_by is for streams; a tool loop is relayed as is")
        self.source = source
        self.chunks = UIMessageChunks(message_id=message_id)
        self.smooth_by = smooth_by
        super().__init__()
        if isinstance(source, (ChatStream, ToolLoop)):
            self._open.append(source)  # closed with the body, even if never read

    def _generate(self) -> Generator[bytes, None, None]:
        chunks = self.chunks
        source = self.source
        steps = iter([source] if isinstance(source, ChatStream) else source)
        yield from _data(chunks.start())
        response: Response | None = None
        try:
            if isinstance(source, ToolLoop):
                yield from self._loop(source, steps)
                response = source.result()
            else:
                for step in steps:
                    response = yield from self._step(step, response)
        except ChatStreamError as exc:
            yield from _data(chunks.fail(exc))
        else:
            yield from _data(chunks.finish(response if response is not None else Response()))
        finally:
            for upstream in self._open:
                upstream.close()
            close = getattr(steps, "close", None)
            if close is not None:
                close()
        yield b"data: [DONE]\n\n"

    def _step(
        self, step: ChatStream | ToolResult | Any, response: Response | None
    ) -> Generator[bytes, None, Response | None]:
        """Relay one item of a loop of one's own; the last response so far."""
        chunks = self.chunks
        if isinstance(step, ToolResult):
            yield from _data(chunks.tool_output(step))
            return response
        if response is not None:
            yield from _data(chunks.next_step())
        if step not in self._open:
            self._open.append(step)
        events = step if self.smooth_by is None else smooth(step, by=self.smooth_by)
        for event in events:
            yield from _data(chunks.event(event))
        response = step.result()
        step.close()
        return response

    def _loop(self, loop: ToolLoop, steps: Iterator[Any]) -> Generator[bytes, None, None]:
        """Relay the events of a :class:`~chatstream.tools.ToolLoop`, step by step."""
        chunks = self.chunks
        number = 1
        for step_event in steps:
            if step_event.step != number:
                number = step_event.step
                yield from _data(chunks.next_step())
            event = step_event.event
            if isinstance(event, ToolResult):
                yield from _data(chunks.tool_output(event))
            else:
                yield from _data(chunks.event(event))


def _data(chunks: list[dict[str, Any]]) -> Iterator[bytes]:
    # One data field per chunk: json.dumps puts the chunk on one line.
    for chunk in chunks:
        yield b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"

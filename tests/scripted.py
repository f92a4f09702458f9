"""A scripted model on the loopback server, with a provider's checks on the history.

:func:`model` serves each request with what ``script(messages)`` says: a text answer
(a ``str``) or tool calls (a list of ``(name, arguments)`` pairs). Before that it checks
the history as OpenAI does and answers 400 where OpenAI would: a ``tool`` message whose
content is not text, or an assistant message with tool calls not each answered by a
``tool`` message before the next message of another role.

:func:`responses_model` is the same on the Responses wire (``POST /responses``): the
script is given the ``input`` items, and may also answer with a whole SSE body
(``bytes``); the checks are that wire's (:func:`input_problem`, :func:`request_problem`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tests.helpers import build_body, chunk
from tests.loopback import Conn, Handler, json_error, sse_body

__all__ = [
    "ResponsesScript",
    "Script",
    "calls_body",
    "history_problem",
    "input_problem",
    "model",
    "request_problem",
    "responses_calls_body",
    "responses_model",
    "responses_text_body",
    "text_body",
]

#: What the model does for a request: a text answer, or tool calls (name, arguments).
Script = Callable[[list[dict[str, Any]]], "str | Sequence[tuple[str, Any]]"]


def text_body(text: str) -> bytes:
    """A streamed text answer."""
    return build_body([chunk(text), chunk(finish="stop")], event=None, done=True)


def calls_body(calls: Sequence[tuple[str, Any]], step: int = 0) -> bytes:
    """A streamed answer made of tool calls, each in two argument pieces."""
    chunks = []
    for number, (name, arguments) in enumerate(calls):
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        half = len(text) // 2
        call_id = f"call_{step}_{number}"
        chunks.append(
            chunk(
                tool_calls=[
                    {
                        "index": number,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": text[:half]},
                    }
                ]
            )
        )
        chunks.append(chunk(tool_calls=[{"index": number, "function": {"arguments": text[half:]}}]))
    chunks.append(chunk(finish="tool_calls"))
    return build_body(chunks, event=None, done=True)


def history_problem(messages: list[dict[str, Any]]) -> str | None:
    """Why OpenAI would answer 400 to these messages, or ``None``."""
    open_calls: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            if not isinstance(message.get("content"), str):
                return "Invalid type for 'messages[].content': expected a string."
            if message.get("tool_call_id") not in open_calls:
                return "A tool message must answer a preceding tool call."
            open_calls.remove(message["tool_call_id"])
            continue
        if open_calls:
            return f"The tool calls {open_calls} have no response messages."
        if role == "assistant":
            open_calls = [c["id"] for c in message.get("tool_calls") or []]
    if open_calls:
        return f"The tool calls {open_calls} have no response messages."
    return None


def model(script: Script) -> Handler:
    """A handler that answers as ``script`` says, after the history checks."""
    steps = [0]

    def handler(conn: Conn) -> None:
        messages = conn.json()["messages"]
        problem = history_problem(messages)
        if problem is not None:
            json_error(400, {"error": {"message": problem, "type": "invalid_request_error"}})(conn)
            return
        answer = script(messages)
        steps[0] += 1
        if isinstance(answer, str):
            sse_body(text_body(answer))(conn)
        else:
            sse_body(calls_body(answer, steps[0]))(conn)

    return handler


# --- the Responses wire ---------------------------------------------------------------

#: What the model does for a Responses request, given its ``input`` items: a text
#: answer, function calls (name, arguments), or a whole SSE body.
ResponsesScript = Callable[[list[dict[str, Any]]], "str | bytes | Sequence[tuple[str, Any]]"]

#: The usage every scripted Responses answer reports.
RESPONSES_USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 19,
}


def _events(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _response(response_id: str, status: str, **more: Any) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "model": "m-2025", "status": status, **more}


def responses_text_body(
    text: str,
    *,
    size: int = 5,
    incomplete: str | None = None,
    response_id: str = "resp_1",
) -> bytes:
    """A streamed Responses text answer in pieces of ``size`` characters; with
    ``incomplete``, cut by ``response.incomplete`` for that reason (the message done as
    incomplete)."""
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress"}
    status = "incomplete" if incomplete else "completed"
    part = {"type": "output_text", "text": text, "annotations": []}
    deltas = [
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "content_index": 0,
            "item_id": "msg_1",
            "delta": text[i : i + size],
        }
        for i in range(0, len(text), size)
    ]
    terminal: dict[str, Any] = {
        "type": f"response.{status}",
        "response": _response(response_id, status, usage=RESPONSES_USAGE),
    }
    if incomplete:
        terminal["response"]["incomplete_details"] = {"reason": incomplete}
    return _events(
        {"type": "response.created", "response": _response(response_id, "in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {
            "type": "response.content_part.added",
            "output_index": 0,
            "content_index": 0,
            "item_id": "msg_1",
            "part": {**part, "text": ""},
        },
        *deltas,
        {
            "type": "response.output_text.done",
            "output_index": 0,
            "content_index": 0,
            "item_id": "msg_1",
            "text": text,
        },
        {
            "type": "response.content_part.done",
            "output_index": 0,
            "content_index": 0,
            "item_id": "msg_1",
            "part": part,
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "status": status, "content": [part]},
        },
        terminal,
    )


def responses_calls_body(calls: Sequence[tuple[str, Any]], step: int = 0) -> bytes:
    """A streamed Responses answer made of function calls, each in two argument pieces."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(f"resp_{step}", "in_progress")}
    ]
    for number, (name, arguments) in enumerate(calls):
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        half = len(text) // 2
        item = {
            "type": "function_call",
            "id": f"fc_{step}_{number}",
            "call_id": f"call_{step}_{number}",
            "name": name,
            "arguments": "",
            "status": "in_progress",
        }
        events.append({"type": "response.output_item.added", "output_index": number, "item": item})
        for piece in (text[:half], text[half:]):
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "output_index": number,
                    "item_id": item["id"],
                    "delta": piece,
                }
            )
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": number,
                "item": {**item, "arguments": text, "status": "completed"},
            }
        )
    events.append(
        {
            "type": "response.completed",
            "response": _response(f"resp_{step}", "completed", usage=RESPONSES_USAGE),
        }
    )
    return _events(*events)


def input_problem(items: list[dict[str, Any]]) -> str | None:
    """Why OpenAI would answer 400 to these ``input`` items, or ``None``: a
    ``function_call_output`` whose output is not text or that answers no earlier
    ``function_call``, or a ``function_call`` no ``function_call_output`` answers."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            calls.append(item.get("call_id", ""))
        elif kind == "function_call_output":
            if not isinstance(item.get("output"), str):
                return "Invalid type for 'input[].output': expected a string."
            call_id = item.get("call_id")
            if call_id not in calls:
                return f"No tool call found for function call output with call_id {call_id}."
            answered.add(item["call_id"])
    for call_id in calls:
        if call_id not in answered:
            return f"No tool output found for function call {call_id}."
    return None


def request_problem(request: dict[str, Any]) -> str | None:
    """Why OpenAI would answer 400 to this Responses request body, or ``None``: its
    ``input`` (:func:`input_problem`), a function tool in the chat shape, or a
    ``text.format`` without its name and schema."""
    if "messages" in request or "response_format" in request:
        return "Unsupported parameter: the Responses API takes input and text.format."
    for number, tool in enumerate(request.get("tools") or ()):
        if tool.get("type") == "function" and not isinstance(tool.get("name"), str):
            return f"Missing required parameter: 'tools[{number}].name'."
    form = (request.get("text") or {}).get("format")
    if isinstance(form, dict) and form.get("type") == "json_schema":
        for key in ("name", "schema"):
            if key not in form:
                return f"Missing required parameter: 'text.format.{key}'."
    items = request.get("input")
    return input_problem(items) if isinstance(items, list) else None


def responses_model(script: ResponsesScript) -> Handler:
    """A ``/responses`` handler that answers as ``script`` says, after the checks."""
    steps = [0]

    def handler(conn: Conn) -> None:
        request = conn.json()
        problem = request_problem(request)
        if problem is not None:
            json_error(400, {"error": {"message": problem, "type": "invalid_request_error"}})(conn)
            return
        items = request["input"]
        if isinstance(items, str):  # a bare prompt is one user message
            items = [{"role": "user", "content": items}]
        answer = script(items)
        steps[0] += 1
        if isinstance(answer, bytes):
            sse_body(answer)(conn)
        elif isinstance(answer, str):
            sse_body(responses_text_body(answer, response_id=f"resp_{steps[0]}"))(conn)
        else:
            sse_body(responses_calls_body(answer, steps[0]))(conn)

    return handler

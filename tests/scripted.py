"""A scripted model on the loopback server, with a provider's checks on the history.

:func:`model` serves each request with what ``script(messages)`` says: a text answer
(a ``str``) or tool calls (a list of ``(name, arguments)`` pairs). Before that it checks
the history as OpenAI does and answers 400 where OpenAI would: a ``tool`` message whose
content is not text, or an assistant message with tool calls not each answered by a
``tool`` message before the next message of another role.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tests.helpers import build_body, chunk
from tests.loopback import Conn, Handler, json_error, sse_body

__all__ = ["Script", "calls_body", "history_problem", "model", "text_body"]

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

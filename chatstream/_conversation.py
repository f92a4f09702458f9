"""A conversation: its history, and the tool round trips of each user turn.

Each user turn is one :meth:`Client.turn <chatstream.Client.turn>`: the first request,
then one follow-up per round of tool calls (the assistant's calls and a ``role: tool``
message per result appended to the messages), until the model answers without calling a
tool. A turn that fails leaves the history as it was before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .client import Client, Turn
from .errors import ChatStreamError
from .events import FunctionCall
from .response import Response

__all__ = ["Conversation", "RunTool", "Send"]

#: Sends one request of a turn and shows its stream: given the turn and the request
#: body, returns the response (partial when it failed) and the error it ended in.
Send = Callable[[Turn, dict[str, Any]], tuple[Response, ChatStreamError | None]]
#: Answers a tool call: the result text to send back (raises to abandon the turn).
RunTool = Callable[[FunctionCall], str]


class Conversation:
    """The messages exchanged so far, and how to add a user turn to them.

    Args:
        client: Sends the requests.
        request: The rest of every request body (``model``, ``tools``, ``temperature``,
            ...); ``messages`` is filled in here.
        system: A system message to start the conversation with.
    """

    def __init__(
        self, client: Client, request: Mapping[str, Any], *, system: str | None = None
    ) -> None:
        self.client = client
        self.request = dict(request)
        #: The history: every message of every turn that succeeded.
        self.messages: list[dict[str, Any]] = []
        if system:
            self.messages.append({"role": "system", "content": system})

    def ask(self, text: str, send: Send, run_tool: RunTool) -> ChatStreamError | None:
        """Run one user turn: send ``text``, answer the tool calls with ``run_tool``,
        until the model answers without calling a tool.

        Returns:
            The error a request of the turn ended in, or ``None``. After an error (or an
            exception from ``send`` or ``run_tool``) the history is as it was before.
        """
        added: list[dict[str, Any]] = [{"role": "user", "content": text}]
        with self.client.turn() as turn:
            while True:
                body = {**self.request, "messages": [*self.messages, *added]}
                response, error = send(turn, body)
                if error is not None:
                    return error
                added.append(assistant_message(response))
                if not response.tool_calls:
                    break
                for call in response.tool_calls:
                    added.append(
                        {"role": "tool", "tool_call_id": call.call_id, "content": run_tool(call)}
                    )
        self.messages.extend(added)
        return None


def assistant_message(response: Response) -> dict[str, Any]:
    """The assistant's message for the history: its text and its tool calls (reasoning is
    not sent back: several providers reject it in a request)."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in response.tool_calls
        ]
    elif message["content"] is None:
        message["content"] = ""
    return message

"""A conversation: its history, and the tool round trips of each user turn.

:class:`Conversation` holds the messages exchanged so far and builds every request from
them. Each user turn is one :meth:`Client.turn <chatstream.Client.turn>` (its requests
stick to one backend): the user's message, then one request per round of tool calls,
each answer added with :meth:`Response.to_message <chatstream.Response.to_message>`, so
that what the provider needs back (DeepSeek's ``reasoning_content``, Gemini's thought
signatures, OpenRouter's ``reasoning_details``) goes back exactly as it was streamed::

    conversation = chatstream.Conversation(client, {"model": "m", "tools": tools})
    response = conversation.ask("Weather in Paris?", run_tool=lambda call: "18 C, sunny")
    print(response.content)             # the answer after the tool round trips
    conversation.messages               # user, assistant (tool_calls), tool, assistant

Or one step at a time::

    conversation.add_user("Weather in Paris?")
    response = conversation.send()      # the assistant's message is in the history now
    for call in response.tool_calls:
        conversation.add_tool_result(call, "18 C, sunny")
    response = conversation.send()      # the follow-up, in the same turn

An answer cut short (``finish_reason: "length"``) is a normal end and stays in the
history. A request that fails adds nothing to it.

Reasoning text goes back only within its turn: the requests leave ``reasoning_content``
and ``reasoning`` out of the assistant messages before the last user message, as
DeepSeek asks (its thinking mode needs them on the tool follow-ups of a turn, and
ignores or rejects them later). The history keeps them; signatures and
``reasoning_details`` are always sent.

On the Responses wire (``Conversation(client, request, api="responses")``, or a client made
with ``api="responses"``) the history is the ``input`` items: each answer goes back as
:meth:`Response.to_input <chatstream.Response.to_input>` gives it (messages, function
calls, reasoning items with their ids and ``encrypted_content``), each tool result as a
``function_call_output``; reasoning items of earlier turns are left out unless
``keep_reasoning``. With ``previous_response_id=True`` each request sends only the items
added since the last answer, with that answer's id, and the server supplies the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._arguments import api as _api
from .client import Client, Turn
from .errors import ConfigurationError
from .events import FunctionCall
from .response import Response, tool_output

__all__ = ["Conversation", "RunTool", "Send"]

#: Answers a tool call: the result text to send back (raising abandons the turn).
RunTool = Callable[[FunctionCall], str]
#: Sends one request of a turn and returns its response; raises the
#: :class:`~chatstream.ChatStreamError` the stream ended in. The default streams it
#: quietly (``turn.stream(body).result()``); a caller that shows the stream passes its own.
Send = Callable[[Turn, dict[str, Any]], Response]


def _quietly(api: str) -> Send:
    """The default :data:`Send`: the request streamed quietly on the wire ``api``."""

    def send(turn: Turn, body: dict[str, Any]) -> Response:
        with turn.stream(body, api=api) as stream:
            return stream.result()

    return send


def _without_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    if "reasoning_content" not in message and "reasoning" not in message:
        return message
    return {k: v for k, v in message.items() if k not in ("reasoning_content", "reasoning")}


class Conversation:
    """The messages exchanged so far, and how to add a turn to them.

    Args:
        client: Sends the requests.
        request: The rest of every request body (``model``, ``tools``, ``temperature``,
            ...); ``messages`` is filled in from the history.
        system: A system message to start the conversation with.
        messages: Earlier messages to start from (after ``system``).
        send: How each request is sent (see :data:`Send`); by default quietly, on the
            conversation's wire (a ``send`` of your own streams on the wire you choose).
        keep_reasoning: Send the reasoning text of earlier turns too (by default only
            the current turn's goes back).
        api: The wire: ``"chat"`` (the history is ``messages``) or ``"responses"`` (the
            history is ``input`` items); by default the client's.
        previous_response_id: On the Responses wire, continue from the server's stored
            copy of the last answer: send only the newer items, with its
            ``previous_response_id`` (the server must store responses).

    Raises:
        ConfigurationError: ``api`` is neither wire, or ``previous_response_id`` is asked
            for on the chat wire.
    """

    def __init__(
        self,
        client: Client,
        request: Mapping[str, Any] | None = None,
        *,
        system: str | None = None,
        messages: Iterable[Mapping[str, Any]] = (),
        send: Send | None = None,
        keep_reasoning: bool = False,
        api: str | None = None,
        previous_response_id: bool = False,
    ) -> None:
        #: The wire: ``"chat"`` or ``"responses"``.
        self.api = _api(client.api if api is None else api)
        if previous_response_id and self.api != "responses":
            raise ConfigurationError('previous_response_id needs api="responses"')
        self.previous_response_id = previous_response_id
        # The last answer's id, and where the items after it start (previous_response_id).
        self._last_id = ""
        self._after = 0
        self.client = client
        self.request = dict(request or {})
        #: The history: every message (``input`` item on the Responses wire) added, in
        #: order (plain dicts, as sent).
        self.messages: list[dict[str, Any]] = []
        if system:
            self.messages.append({"role": "system", "content": system})
        self.messages += [dict(m) for m in messages]
        self._send = send or _quietly(self.api)
        self.keep_reasoning = keep_reasoning
        self._turn: Turn | None = None

    @property
    def turn(self) -> Turn | None:
        """The current user turn (its requests stick to one backend), or ``None``
        before the first user message."""
        return self._turn

    def add_user(self, content: str | list[Any]) -> None:
        """Add the user's message; it starts a new turn."""
        self.messages.append({"role": "user", "content": content})
        self._turn = Turn(self.client)

    def add_response(self, response: Response, choice: int = 0) -> dict[str, Any]:
        """Add the assistant's message of ``response`` (its choice ``choice``); return it.

        On the Responses wire its output items are added (see
        :meth:`Response.to_input <chatstream.Response.to_input>`), and the last one is
        returned."""
        if self.api == "responses":
            items = response.to_input()
            self.messages += items
            self._last_id = response.response_id
            self._after = len(self.messages)
            return items[-1] if items else {}
        message = response.to_message(choice)
        self.messages.append(message)
        return message

    def add_tool_result(self, call: FunctionCall | str, content: str | list[Any]) -> None:
        """Add the result of a tool call (the call, or its ``call_id``): a ``tool``
        message, or on the Responses wire a ``function_call_output`` item."""
        if self.api == "responses":
            self.messages.append(tool_output(call, content))
            return
        call_id = call.call_id if isinstance(call, FunctionCall) else call
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})

    def body(self) -> dict[str, Any]:
        """The next request's body: the request, with the history as ``messages`` (as
        ``input`` on the Responses wire), reasoning of earlier turns left out unless
        ``keep_reasoning``."""
        messages = self.messages
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        turn_start = users[-1] if users else 0
        if self.api == "responses":
            if self.previous_response_id and self._last_id:
                items = messages[self._after :]
                return {**self.request, "input": items, "previous_response_id": self._last_id}
            if not self.keep_reasoning:
                messages = [
                    m
                    for i, m in enumerate(messages)
                    if not (i < turn_start and m.get("type") == "reasoning")
                ]
            return {**self.request, "input": list(messages)}
        if not self.keep_reasoning:
            messages = [
                _without_reasoning(m) if i < turn_start and m.get("role") == "assistant" else m
                for i, m in enumerate(messages)
            ]
        return {**self.request, "messages": list(messages)}

    def send(self) -> Response:
        """Send the history as the next request of the current turn, and add the
        answer to it.

        Returns:
            The response (complete; :attr:`~chatstream.Response.truncated` says when it
            was cut short).

        Raises:
            ChatStreamError: The request failed; the history is unchanged.
        """
        if self._turn is None:
            self._turn = Turn(self.client)
        response = self._send(self._turn, self.body())
        self.add_response(response)
        return response

    def ask(self, content: str | list[Any], run_tool: RunTool | None = None) -> Response:
        """Run one user turn: add ``content``, send it, and while the model calls tools,
        answer each call with ``run_tool`` and send the results back.

        Without ``run_tool`` it returns after the first response, tool calls and all;
        add their results with :meth:`add_tool_result` and continue with :meth:`send`.

        Returns:
            The last response of the turn.

        Raises:
            ChatStreamError: A request of the turn failed. The history is as it was
                before the turn (so is it when ``run_tool`` raises).
        """
        before = len(self.messages)
        chained = (self._last_id, self._after)
        try:
            self.add_user(content)
            response = self.send()
            while run_tool is not None and response.tool_calls:
                for call in response.tool_calls:
                    self.add_tool_result(call, run_tool(call))
                response = self.send()
        except BaseException:
            del self.messages[before:]
            self._last_id, self._after = chained
            raise
        return response

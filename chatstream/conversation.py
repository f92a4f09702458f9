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

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._arguments import api as _api
from .client import Client, Turn
from .config import StreamOptions
from .core import typed as _typed
from .core.schema import OutputType
from .errors import ChatStreamError, ConfigurationError, MaxStepsExceededError
from .events import FunctionCall
from .response import Response, tool_output
from .stream import ChatStream
from .tools import StepEvent, Tool, ToolLoop, as_tools

__all__ = ["DEFAULT_MAX_STEPS", "Conversation", "RunTool", "Send", "tool_content"]

#: Answers a tool call: the result to send back, text or a value JSON can encode
#: (raising abandons the turn).
RunTool = Callable[[FunctionCall], Any]
#: The most model responses one turn of :meth:`Conversation.ask` may take (the first
#: answer and the follow-ups after each round of tool calls).
DEFAULT_MAX_STEPS = 10
#: Sends one request of a turn and returns its response; raises the
#: :class:`~chatstream.ChatStreamError` the stream ended in. The default streams it
#: quietly (``turn.stream(body).result()``); a caller that shows the stream passes its own.
Send = Callable[[Turn, dict[str, Any]], Response]


def tool_content(value: Any) -> str:
    """A tool's result as the text of a ``tool`` message: text as it is; anything else
    JSON-encoded (a dict, a list, a number, ``None``, a dataclass, a pydantic model),
    since providers answer 400 to a JSON object in ``content``.

    Raises:
        ConfigurationError: The value is neither text nor encodable as JSON.
    """
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)  # a pydantic model
    if callable(dump):
        return str(dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"a tool returned a {type(value).__name__}, which is neither text nor "
            f"encodable as JSON ({exc}); return a str, or a value json.dumps accepts"
        ) from None


def _check_steps(max_steps: Any) -> None:
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ConfigurationError("max_steps must be a whole number of at least 1")


def _checked(response: Response, kind: OutputType) -> Response:
    """``response`` with its answer validated as ``kind`` (for a ``send`` of the caller's
    own, which streamed without the type)."""
    first = response.choices[0] if response.choices else None
    if first is None or (first.tool_calls and not first.content.strip()):
        return response
    try:
        parsed = _typed.check_answer(kind, first.content, first.refusal, first.finish_reason)
    except ChatStreamError as error:
        error.partial = response
        raise
    choices = (dataclasses.replace(first, parsed=parsed), *response.choices[1:])
    return dataclasses.replace(response, choices=choices)


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
            The steps of a tool loop go through it too (their events are then its to show).
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
        # The options of the conversation's streams when its wire is not the client's.
        self._options: StreamOptions | None = (
            None if self.api == client.api else client.options.replace(api=self.api)
        )
        self.client = client
        self.request = dict(request or {})
        #: The history: every message (``input`` item on the Responses wire) added, in
        #: order (plain dicts, as sent).
        self.messages: list[dict[str, Any]] = []
        if system:
            self.messages.append({"role": "system", "content": system})
        self.messages += [dict(m) for m in messages]
        self._send = send
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

    def send(
        self,
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        output: Any = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Response:
        """Send the history as the next request of the current turn, and add the
        answer to it.

        Args:
            tools: Tool definitions sent besides the request's own ``tools``.
            extra_body: Fields set on this request's body, over the request's own
                (``{"tool_choice": "none"}``, say).
            output: The type of the answer (see :meth:`Client.stream
                <chatstream.Client.stream>`): the request asks for it, and the
                response's :attr:`~chatstream.Response.parsed` is the validated answer
                (an answer made of tool calls is not checked).

        Returns:
            The response (complete; :attr:`~chatstream.Response.truncated` says when it
            was cut short).

        Raises:
            OutputError: The answer is not a value of ``output`` (it is not added).
            ChatStreamError: The request failed; the history is unchanged.
        """
        turn, body, kind = self._next(tools, output, extra_body)
        if self._send is None:
            with turn.stream(body, output=kind, options=self._options) as stream:
                response = stream.result()
        else:
            response = self._send(turn, body)
            if kind is not None:
                response = _checked(response, kind)
        self.add_response(response)
        return response

    def stream_next(
        self,
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        output: Any = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatStream:
        """Start the next request of the current turn and return its stream; its answer
        is not added to the history (see :meth:`add_response`).

        Args:
            tools: Tool definitions sent besides the request's own ``tools``.
            output: The type of the answer (see :meth:`send`).
            extra_body: Fields set on this request's body (see :meth:`send`).
        """
        turn, body, kind = self._next(tools, output, extra_body)
        return turn.stream(body, output=kind, options=self._options)

    def _next(
        self, tools: Sequence[Mapping[str, Any]], output: Any, extra: Mapping[str, Any] | None
    ) -> tuple[Turn, dict[str, Any], OutputType | None]:
        """The turn, body and answer type of the next request."""
        if self._turn is None:
            self._turn = Turn(self.client)
        body = self.body()
        if extra:
            body.update(extra)
        if tools:
            body["tools"] = [*body.get("tools", ()), *tools]
        kind = None
        if output is not None:
            kind, body = _typed.asking_for(output, body, self.api)
        return self._turn, body, kind

    def run_steps(
        self,
        prompt: str | list[Any] | None,
        tools: Iterable[Tool | Callable[..., Any]],
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        parallel: bool = True,
        approve: Callable[[FunctionCall], bool] | None = None,
        on_tool_error: str = "send",
        on_event: Callable[[StepEvent], None] | None = None,
        output: Any = None,
        prepare_step: Callable[[int], Mapping[str, Any] | None] | None = None,
    ) -> ToolLoop:
        """Start a tool loop: add ``prompt`` (unless ``None``), then stream a step, run
        its tool calls, send the results back, and repeat until the model answers
        without a call. Iterate the loop for each step's events, or call its
        :meth:`~chatstream.tools.ToolLoop.result`; :meth:`~chatstream.tools.ToolLoop.close`
        stops it from any thread (see :mod:`chatstream.tools`).

        Args:
            prompt: The user's message.
            tools: Python functions (see :meth:`Tool.of <chatstream.tools.Tool.of>`)
                or :class:`~chatstream.tools.Tool` values; their definitions are sent
                with every step.
            max_steps: The most responses (steps) of the loop; a model still calling
                tools at the last one ends it in
                :class:`~chatstream.MaxStepsExceededError`.
            parallel: Run the calls of one step at once, each on its own thread.
            approve: Asked before each call; ``False`` sends a refusal back instead.
            on_tool_error: ``"send"``: a tool that raises sends its error text back to
                the model; ``"stop"``: the loop raises the tool's exception (the history
                answers every call first).
            on_event: Called with each :class:`~chatstream.tools.StepEvent`, in the
                thread running the loop.
            output: The type of the final answer (see :meth:`send`).
            prepare_step: Called before each step with its number (from 1); the fields
                it returns are set on that step's request body (see :meth:`send`'s
                ``extra_body``): force a tool on the first step with ``{"tool_choice":
                ...}``, or ask for the answer with ``{"tool_choice": "none"}``.
        """
        _check_steps(max_steps)
        loop = ToolLoop(
            self,
            as_tools(tools),
            max_steps=max_steps,
            parallel=parallel,
            approve=approve,
            on_tool_error=on_tool_error,
            on_event=on_event,
            output=output,
            prepare_step=prepare_step,
        )
        if prompt is not None:
            self.add_user(prompt)
        return loop

    def run(
        self,
        prompt: str | list[Any] | None,
        tools: Iterable[Tool | Callable[..., Any]],
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        parallel: bool = True,
        approve: Callable[[FunctionCall], bool] | None = None,
        on_tool_error: str = "send",
        on_event: Callable[[StepEvent], None] | None = None,
        output: Any = None,
        prepare_step: Callable[[int], Mapping[str, Any] | None] | None = None,
    ) -> Response:
        """:meth:`run_steps` to its end: the final response (the answer). The arguments
        are those of :meth:`run_steps`.

        Raises:
            MaxStepsExceededError: The model still called tools at the last step.
            StreamClosedError: The loop was closed before it answered.
            ChatStreamError: A request failed. In every case the history stays valid
                for a next request.
        """
        return self.run_steps(
            prompt,
            tools,
            max_steps=max_steps,
            parallel=parallel,
            approve=approve,
            on_tool_error=on_tool_error,
            on_event=on_event,
            output=output,
            prepare_step=prepare_step,
        ).result()

    def ask(
        self,
        content: str | list[Any],
        run_tool: RunTool | None = None,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        output: Any = None,
    ) -> Response:
        """Run one user turn: add ``content``, send it, and while the model calls tools,
        answer each call with ``run_tool`` and send the results back.

        Without ``run_tool`` it returns after the first response, tool calls and all;
        add their results with :meth:`add_tool_result` and continue with :meth:`send`.
        With it, the turn is a :class:`~chatstream.tools.ToolLoop` (see :meth:`run`)
        run in this thread, one call after the other, that ``run_tool`` answers every
        call of. A result that is not text is sent JSON-encoded (see
        :func:`tool_content`).

        Args:
            content: The user's message.
            run_tool: Answers each tool call.
            max_steps: The most responses the turn may take (the first answer and one
                follow-up per round of tool calls); a model still calling tools at the
                last one ends the turn in :class:`~chatstream.MaxStepsExceededError`.
            output: The type of the answer (see :meth:`send`): the last response's
                :attr:`~chatstream.Response.parsed` is the validated answer.

        Returns:
            The last response of the turn.

        Raises:
            MaxStepsExceededError: The model still called tools at the last step. The
                turn stays in the history (the calls of that step are answered as not
                run, so the next request is valid); the error carries it too.
            ChatStreamError: A request of the turn failed. The history is as it was
                before the turn (so is it when ``run_tool`` raises, or returns what
                cannot be encoded: then before the next request is sent).
        """
        _check_steps(max_steps)
        loop = None
        if run_tool is not None:
            loop = ToolLoop(
                self,
                {},
                max_steps=max_steps,
                parallel=False,
                approve=None,
                on_tool_error="stop",
                on_event=None,
                output=output,
                run_call=run_tool,
            )
        before = len(self.messages)
        chained = (self._last_id, self._after)
        try:
            self.add_user(content)
            return self.send(output=output) if loop is None else loop.result()
        except MaxStepsExceededError:
            raise
        except BaseException:
            del self.messages[before:]
            self._last_id, self._after = chained
            raise

"""Tools the model can call, and the loop that runs them.

A :class:`Tool` is a Python function with its name, description and the JSON Schema of
its arguments; :meth:`Tool.of` makes one from a function's signature, type hints and
docstring. :class:`ToolLoop` (made by :meth:`Conversation.run_steps
<chatstream.Conversation.run_steps>`) streams a step, runs the step's calls, sends the
results back in the calls' order, and repeats until the model answers without a call::

    def get_weather(city: str) -> str:
        \"\"\"The current weather in a city.\"\"\"
        return "18 C, sunny"

    response = conversation.run("Weather in Oslo?", tools=[get_weather])

Threads: the loop runs in the thread that iterates it (or calls :meth:`ToolLoop.result`),
and so do the calls of a step, one after the other; with ``parallel`` several calls of
one step run at once, each on a thread of its own.
:meth:`ToolLoop.close` works from any thread: it stops the model's stream, starts no
new tool, and sets the ``cancelled`` event the running tools see in their
:class:`ToolContext`.

Whatever ends the loop, the conversation's history stays valid for a next request:
every call of an assistant message is answered, a call that did not run with a result
that says why.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core.schema import Invalid, OutputType, function_parameters
from .errors import ConfigurationError, MaxStepsExceededError, StreamClosedError, ToolArgumentsError
from .events import FunctionCall, ResponseEvent
from .response import Response

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = [
    "INTERRUPTED",
    "NOT_RUN",
    "as_tools",
    "REFUSED",
    "StepEvent",
    "Tool",
    "ToolContext",
    "ToolLoop",
    "ToolResult",
]

#: The result of a call that did not run to its end because the loop was stopped.
INTERRUPTED = "Interrupted: the run was stopped before this tool call finished."
#: The result of a call the ``approve`` function refused.
REFUSED = "Refused: the user did not allow this tool call."
#: The result of a call made at the last step ``max_steps`` allows.
NOT_RUN = "Not run: the turn reached its step limit."


@dataclass
class ToolContext:
    """What a running tool can know: its call, the step, and whether the loop was
    stopped (``cancelled`` is set by :meth:`ToolLoop.close`; a long tool checks it)."""

    call: FunctionCall
    step: int
    cancelled: threading.Event


@dataclass(frozen=True)
class Tool:
    """A function the model can call.

    Attributes:
        name: The name the model calls it by.
        function: Called with the validated arguments as keyword arguments (and the
            :class:`ToolContext` as ``context`` when it has such a parameter); returns
            the result, text or a value JSON can encode.
        parameters: The type of its arguments: a JSON Schema ``dict``, or an
            :class:`~chatstream.core.schema.OutputType`.
        description: What it does, for the model.
    """

    name: str
    function: Callable[..., Any]
    parameters: Any = field(default_factory=lambda: {"type": "object", "properties": {}})
    description: str = ""

    @classmethod
    def of(cls, function: Callable[..., Any], name: str | None = None) -> Tool:
        """The tool of a Python function: its name, its docstring's first paragraph as
        the description, and its parameters' types (pydantic where installed, else the
        subset of :func:`~chatstream.core.schema.function_parameters`). A parameter
        named ``context`` receives the :class:`ToolContext` and is not shown to the model.

        Raises:
            ConfigurationError: A parameter's type cannot be described.
        """
        description, parameters = function_parameters(function, skip=("context",))
        return cls(name or function.__name__, function, parameters, description)

    @property
    def _kind(self) -> OutputType:
        from .core.schema import output_type

        return output_type(self.parameters)

    def definition(self, api: str = "chat") -> dict[str, Any]:
        """The entry of the request's ``tools``: ``{"type": "function", "function":
        {...}}``, or on the Responses wire (``api="responses"``) the flat
        ``{"type": "function", "name": ..., "parameters": ..., "strict": false}`` (that
        wire's functions are strict unless told, and strict mode refuses a schema with
        optional parameters: the arguments are validated here instead, as on chat)."""
        function: dict[str, Any] = {"name": self.name, "parameters": self._kind.schema}
        if self.description:
            function["description"] = self.description
        if api == "responses":
            return {"type": "function", **function, "strict": False}
        return {"type": "function", "function": function}

    def arguments(self, call: FunctionCall) -> dict[str, Any]:
        """The call's arguments, validated: keyword arguments for :attr:`function`, as
        the Python values its annotations name. This is where a call's arguments are
        parsed: a :class:`~chatstream.FunctionCall` is the streamed record of the call
        (its ``arguments`` the text as sent, whatever the tools), and only the tool
        knows its parameters.

        Raises:
            ToolArgumentsError: They are not JSON, or do not fit the parameters.
        """
        try:
            value = self._kind.validate_json(call.arguments or "{}")
        except Invalid as exc:
            raise ToolArgumentsError(
                f"The arguments of {self.name} do not fit its parameters: {exc.summary()}",
                name=self.name,
                arguments=call.arguments,
                errors=exc.errors,
            ) from None
        return dict(value)

    def run(self, call: FunctionCall, context: ToolContext) -> Any:
        """Validate the call's arguments and call the function."""
        kwargs = self.arguments(call)
        if "context" in inspect.signature(self.function).parameters:
            kwargs["context"] = context
        return self.function(**kwargs)

    def answer(self, call: FunctionCall, context: ToolContext) -> ToolResult:
        """Run the call; its result as the loop sends it back: the function's result
        (see :func:`~chatstream.conversation.tool_content`), or, when the arguments do
        not fit or the function raises, the error text (status ``"error"``)."""
        return _answer(call, lambda: self.run(call, context))


def as_tools(tools: Iterable[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    """The tools by name (functions made into :class:`Tool` values)."""
    found: dict[str, Tool] = {}
    for tool in tools:
        made = tool if isinstance(tool, Tool) else Tool.of(tool)
        if made.name in found:
            raise ConfigurationError(f"two tools are named {made.name!r}")
        found[made.name] = made
    return found


@dataclass(frozen=True)
class ToolResult:
    """A call's result, as sent back: ``content`` is the text of the ``tool`` message;
    ``error`` is the exception the tool raised (or ``None``); ``status`` is ``"ok"``,
    ``"error"``, ``"refused"``, ``"interrupted"`` or ``"unknown_tool"``; ``output`` is
    the result as a JSON value (what the tool returned when it was text, else what
    ``content`` encodes), for a front end to show (``None`` when not known: then
    ``content`` is what to show)."""

    call: FunctionCall
    content: str
    status: str = "ok"
    error: BaseException | None = None
    output: Any = None


@dataclass(frozen=True)
class StepEvent:
    """An event of a tool loop: ``event`` is a stream event of step ``step`` (from 1),
    or the :class:`ToolResult` of one of its calls."""

    step: int
    event: ResponseEvent | ToolResult


class ToolLoop:
    """A running tool loop (see the module); iterate it for its :class:`StepEvent`\\ s,
    or call :meth:`result`. Made by :meth:`Conversation.run_steps
    <chatstream.Conversation.run_steps>` (and, without events, by
    :meth:`Conversation.ask <chatstream.Conversation.ask>`).

    A conversation made with a ``send`` function of its own (see
    :class:`~chatstream.Conversation`) sends each step through it: the stream's events
    are then the ``send`` function's to show, and the loop yields only the
    :class:`ToolResult`\\ s; :meth:`close` stops the loop between steps and tools.

    Args:
        prepare_step: See :meth:`Conversation.run_steps
            <chatstream.Conversation.run_steps>`.
        run_call: Answers the calls no tool is named for (called with the call, in the
            loop's thread); without it such a call is answered with an error text.
    """

    def __init__(
        self,
        conversation: Conversation,
        tools: dict[str, Tool],
        *,
        max_steps: int,
        parallel: bool,
        approve: Callable[[FunctionCall], bool] | None,
        on_tool_error: str,
        on_event: Callable[[StepEvent], None] | None,
        output: Any,
        run_call: Callable[[FunctionCall], Any] | None = None,
        prepare_step: Callable[[int], Mapping[str, Any] | None] | None = None,
    ) -> None:
        if on_tool_error not in ("send", "stop"):
            raise ConfigurationError('on_tool_error must be "send" or "stop"')
        self.conversation = conversation
        self.tools = tools
        self.max_steps = max_steps
        self.parallel = parallel
        self.approve = approve
        self.on_tool_error = on_tool_error
        self.on_event = on_event
        self.output = output
        self.run_call = run_call
        self.prepare_step = prepare_step
        #: Set by :meth:`close`; running tools see it in their :class:`ToolContext`.
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._response: Response | None = None
        self._steps = self._run()

    def __iter__(self) -> Iterator[StepEvent]:
        return self._steps

    def result(self) -> Response:
        """Run the loop to its end; return the last response (the answer).

        Raises:
            MaxStepsExceededError: The model still called tools at step ``max_steps``.
            StreamClosedError: The loop was closed.
            ChatStreamError: A request failed.
        """
        for _ in self._steps:
            pass
        if self._response is None:
            raise StreamClosedError("The tool loop was closed before it answered.")
        return self._response

    def close(self) -> None:
        """Stop the loop, from any thread: the model's stream is closed, no new tool
        starts, running tools see ``cancelled``. Idempotent."""
        with self._lock:
            self.cancelled.set()
            stream = self._stream
        if stream is not None:
            stream.close()

    def __enter__(self) -> ToolLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _emit(self, event: StepEvent) -> StepEvent:
        if self.on_event is not None:
            self.on_event(event)
        return event

    def _run(self) -> Iterator[StepEvent]:
        # The history is valid for a next request at every yield: a step's assistant
        # message is added once its stream has ended, and its calls' results all
        # together, before they are yielded.
        conversation = self.conversation
        for step in range(1, self.max_steps + 1):
            response = yield from self._stream_step(step)
            if response is None:
                return  # closed while streaming: the history holds what is valid
            calls = response.tool_calls
            if not calls:
                self._response = response
                return
            if step == self.max_steps:
                for call in calls:
                    conversation.add_tool_result(call, NOT_RUN)
                raise MaxStepsExceededError(
                    f"The model still called tools after {self.max_steps} steps "
                    "(max_steps); the run was stopped there.",
                    max_steps=self.max_steps,
                    messages=[dict(m) for m in conversation.messages],
                    partial=response,
                )
            results = self._run_calls(step, calls)
            for result in results:
                yield self._emit(StepEvent(step, result))
            failed = next((r for r in results if r.status == "error"), None)
            if failed is not None and self.on_tool_error == "stop":
                assert failed.error is not None
                raise failed.error
            if self.cancelled.is_set():
                return

    def _stream_step(self, step: int) -> Generator[StepEvent, None, Response | None]:
        conversation = self.conversation
        definitions = [t.definition(conversation.api) for t in self.tools.values()]
        extra = self.prepare_step(step) if self.prepare_step is not None else None
        if conversation._send is not None:  # the conversation shows its streams itself
            if self.cancelled.is_set():
                return None
            return conversation.send(tools=definitions, output=self.output, extra_body=extra)
        with self._lock:
            if self.cancelled.is_set():
                return None
            stream = self._stream = conversation.stream_next(
                tools=definitions, output=self.output, extra_body=extra
            )
        try:
            with stream:
                for event in stream:
                    yield self._emit(StepEvent(step, event))
                response: Response = stream.result()
        except StreamClosedError as error:
            if error.partial is not None and error.partial.content:
                conversation.messages.append(
                    {"role": "assistant", "content": error.partial.content}
                )
            return None
        finally:
            with self._lock:
                self._stream = None
        conversation.add_response(response)
        return response

    def _run_calls(self, step: int, calls: Sequence[FunctionCall]) -> list[ToolResult]:
        """Run a step's calls and add their results to the history, in the calls' order.
        The calls run in the loop's thread, one after the other; with ``parallel``,
        several at once, each on a thread of its own. Whatever happens, every call is
        answered (an exception raised here, such as a ``KeyboardInterrupt``, first
        answers them all)."""
        results: list[ToolResult | None] = [None] * len(calls)
        threads: list[threading.Thread] = []
        on_threads = self.parallel and len(calls) > 1
        try:
            for number, call in enumerate(calls):
                if self.cancelled.is_set():
                    break
                if not on_threads and self.on_tool_error == "stop" and _failed(results):
                    break  # the loop stops at this failure: the next calls are not run
                run = self._runner(call, step)
                if isinstance(run, ToolResult):
                    results[number] = run
                elif on_threads:
                    thread = threading.Thread(
                        target=_run_one,
                        args=(run, call, results, number),
                        name=f"chatstream-tool-{call.name}",
                        daemon=True,
                    )
                    thread.start()
                    threads.append(thread)
                else:
                    _run_one(run, call, results, number)
        finally:
            for thread in threads:
                thread.join()
            final = [
                r if r is not None else ToolResult(call, INTERRUPTED, "interrupted")
                for r, call in zip(results, calls, strict=True)
            ]
            for result in final:
                self.conversation.add_tool_result(result.call, result.content)
        return final

    def _runner(self, call: FunctionCall, step: int) -> Callable[[], Any] | ToolResult:
        """What runs ``call``, or its result when it is not to run."""
        tool = self.tools.get(call.name)
        run_call = self.run_call
        if tool is None and run_call is None:
            return ToolResult(call, f"Error: there is no tool named {call.name!r}.", "unknown_tool")
        if self.approve is not None and not self.approve(call):
            return ToolResult(call, REFUSED, "refused")
        if tool is None:
            assert run_call is not None
            return lambda: run_call(call)
        context = ToolContext(call, step, self.cancelled)
        return lambda: tool.run(call, context)


def _failed(results: Sequence[ToolResult | None]) -> bool:
    return any(r is not None and r.status == "error" for r in results)


def _answer(call: FunctionCall, run: Callable[[], Any]) -> ToolResult:
    from .conversation import tool_content

    try:
        value = run()
        content = tool_content(value)
    except ToolArgumentsError as exc:
        return ToolResult(call, f"Error: {exc}", "error", exc)
    except Exception as exc:  # the tool's own failure goes back to the model
        return ToolResult(call, f"Error: {type(exc).__name__}: {exc}", "error", exc)
    output = value if isinstance(value, str) else json.loads(content)
    return ToolResult(call, content, output=output)


def _run_one(
    run: Callable[[], Any], call: FunctionCall, results: list[ToolResult | None], number: int
) -> None:
    results[number] = _answer(call, run)

"""The conversation loop of ``chatstream chat`` and ``chatstream demo``: user turns, tool
results, Ctrl-C, the in-conversation commands.

Each user turn is one :meth:`Client.turn <chatstream.Client.turn>` (tool round trips
included), shown live through a :class:`~chatstream.cli.present.Presenter`. In a
conversation, Ctrl-C while an answer streams stops that answer (its stream and connection
are closed) and returns to the prompt; the part already shown stays in the history,
marked as cut. At the prompt, Ctrl-C, Ctrl-D, ``/exit`` and ``/quit`` leave.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..client import Client, Turn
from ..conversation import Conversation
from ..errors import ChatStreamError
from ..events import FunctionCall
from ..response import Response
from ..stream import ChatStream
from ..tools import Tool, ToolContext
from .present import Presenter
from .recording import Recorder, UsageError

__all__ = [
    "COMMANDS",
    "CUT_MARK",
    "LineReader",
    "RunTool",
    "Session",
    "outcome",
    "python_tool_result",
    "typed_tool_result",
]

EXIT_OK = 0
EXIT_STREAM_ERROR = 1

#: Answers a tool call: the result text to send back.
RunTool = Callable[[FunctionCall], str]

#: What ends the text of an answer cut by Ctrl-C, in the history sent back to the model.
CUT_MARK = "[cut short: interrupted by the user]"

#: The commands a conversation understands (a line that is one is not sent).
COMMANDS = {
    "/help": "show these commands",
    "/exit": "leave the conversation (also /quit, Ctrl-D, or Ctrl-C at the prompt)",
    "/quit": "leave the conversation",
}


# --- the seam with the conversation helper: all the session needs of it ------------------
# (kept to these functions so that another helper means editing only them)

Send = Callable[[Turn, dict[str, Any]], Response]


def _new_history(
    client: Client, request: Mapping[str, Any], system: str | None, send: Send
) -> Conversation:
    return Conversation(client, request, system=system, send=send)


def _ask(history: Conversation, text: str, run_tool: RunTool) -> ChatStreamError | None:
    try:
        history.ask(text, run_tool)
    except ChatStreamError as exc:
        return exc
    return None


def _messages(history: Conversation) -> list[dict[str, Any]]:
    return history.messages


def _set_messages(history: Conversation, messages: list[dict[str, Any]]) -> None:
    history.messages[:] = messages


# --- the session -----------------------------------------------------------------------


class Session:
    """A conversation with a server, shown through a presenter, each response recorded
    if asked.

    Args:
        client: Sends the requests.
        request: The rest of every request body (``model``, ``tools``, ...).
        presenter: Shows each stream.
        system: A system message to start with.
        recorder: Saves each response (``--record``).
    """

    def __init__(
        self,
        client: Client,
        request: Mapping[str, Any],
        presenter: Presenter,
        *,
        system: str | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.presenter = presenter
        self.recorder = recorder
        self.history = _new_history(client, request, system, self._send)
        # The request being shown, while it is (what a Ctrl-C cuts).
        self._current: tuple[dict[str, Any], ChatStream] | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far."""
        return _messages(self.history)

    def ask(self, text: str, run_tool: RunTool) -> int:
        """One user turn; its exit status. Ctrl-C propagates (one-shot mode ends on it)."""
        self._current = None
        try:
            error = _ask(self.history, text, run_tool)
        finally:
            if self.recorder is not None:
                self.recorder.close()
        return EXIT_OK if error is None else EXIT_STREAM_ERROR

    def ask_interruptibly(self, text: str, run_tool: RunTool) -> int:
        """One user turn of a conversation: Ctrl-C stops it and keeps what was shown."""
        try:
            return self.ask(text, run_tool)
        except KeyboardInterrupt:
            # A second Ctrl-C while the stream is being closed waits until it is
            # (then it leaves): interrupted half-way, the closing could leave the
            # stream's connection and thread behind.
            with _sigint_deferred():
                self._cut()
            return EXIT_OK

    def _send(self, turn: Turn, body: dict[str, Any]) -> Response:
        """One request of a turn, shown; its response, or the error it ended in (raised,
        once shown)."""
        record = self.recorder.start() if self.recorder is not None else None
        with turn.stream(body, on_bytes=record) as stream:
            self._current = (body, stream)
            error = self.presenter.show(stream, lambda: outcome(stream))
        if self.recorder is not None:
            self.recorder.finish(error)
        self._current = None
        if error is not None:
            raise error
        return outcome(stream)

    def _cut(self) -> None:
        """After Ctrl-C: the answer so far joins the history, marked as cut (a turn
        stopped while a tool result was being typed is dropped)."""
        current, self._current = self._current, None
        if current is None:
            self.presenter.note("· interrupted: the turn was dropped")
            return
        body, stream = current
        stream.close()
        partial = outcome(stream)
        content = partial.content
        text = f"{content}\n{CUT_MARK}" if content else CUT_MARK
        # The history is as it was before the turn; the turn's messages so far are the
        # end of the request that was cut.
        before = _messages(self.history)
        turn = body["messages"][len(before) :]
        _set_messages(self.history, [*before, *turn, {"role": "assistant", "content": text}])
        self.presenter.note(
            "· interrupted: the answer so far is kept in the conversation "
            "(Ctrl-C again, Ctrl-D or /exit to leave)"
        )

    def repl(self, reader: LineReader, run_tool: RunTool) -> int:
        """Read user turns until the input ends; 1 if any turn ended in an error."""
        status = EXIT_OK
        renderer = self.presenter.renderer
        while True:
            try:
                if self.messages and self.presenter.mode == "text":
                    renderer.note("")
                line = reader.read("you> ")
            except KeyboardInterrupt:
                renderer.note("")
                return status
            if line is None:
                return status
            text = line.strip()
            if text in ("/exit", "/quit"):
                return status
            if text == "/help":
                for command, what in COMMANDS.items():
                    renderer.note(f"{command:7} {what}")
                renderer.note("Ctrl-C  stop the answer being written")
                continue
            if not text:
                continue
            if not reader.interactive:
                renderer.user(text)  # a transcript read from a pipe shows what was asked
            status = max(status, self.ask_interruptibly(text, run_tool))


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a SIGINT that arrives inside the block; raise it as KeyboardInterrupt at the
    block's end (main thread only: elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def outcome(stream: ChatStream) -> Response:
    """The response of a stream that has ended: complete, or partial when it failed."""
    try:
        return stream.result()
    except ChatStreamError as exc:
        assert exc.partial is not None
        return exc.partial


class LineReader:
    """Reads the user's lines from standard input, with a prompt when it is a terminal
    (line editing too when standard output is one as well)."""

    def __init__(self, presenter: Presenter) -> None:
        self.presenter = presenter

    @property
    def interactive(self) -> bool:
        """Whether standard input is a terminal."""
        return sys.stdin.isatty()

    def read(self, prompt: str) -> str | None:
        """One line without its line break, or ``None`` at the end of the input."""
        renderer = self.presenter.renderer
        out = self.presenter.out
        if self.interactive and out.isatty():
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401 - line editing and history for input()
            # readline must be told which characters of the prompt take no room.
            styled = re.sub(r"(\x1b\[[0-9;]*m)", "\001\\1\002", renderer.prompt(prompt))
            try:
                return input(styled)
            except EOFError:
                out.write("\n")
                return None
        if self.interactive:
            self.presenter.err.write(prompt)
            self.presenter.err.flush()
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None


def typed_tool_result(reader: LineReader) -> RunTool:
    """Tool results typed by the user, one line each."""

    def run_tool(call: FunctionCall) -> str:
        line = reader.read(f"{call.name} result> ")
        if line is None:
            raise UsageError(f"the model called {call.name}, but the input ended before its result")
        return line

    return run_tool


def python_tool_result(tools: Mapping[str, Tool], other: RunTool, presenter: Presenter) -> RunTool:
    """Runs the calls of the Python ``tools`` (``--tool``) on this machine, showing each
    result; ``other`` answers the rest. A tool that raises, or arguments that do not fit
    it, send the error text back to the model, as :meth:`Conversation.run
    <chatstream.Conversation.run>` does."""
    if not tools:
        return other

    def run_tool(call: FunctionCall) -> str:
        tool = tools.get(call.name)
        if tool is None:
            return other(call)
        result = tool.answer(call, ToolContext(call, 0, threading.Event()))
        if presenter.mode == "text":
            presenter.renderer.tool_result(call, result.content)
        return result.content

    return run_tool

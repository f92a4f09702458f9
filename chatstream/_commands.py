"""The ``chat`` and ``demo`` commands: a conversation with a server, shown live.

Both run the real client (worker thread, queue, watchdog) and use one
:meth:`Client.turn <chatstream.Client.turn>` per user turn, tool round trips included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TextIO

from ._present import Mode, Presenter
from .client import Client, Turn
from .conversation import Conversation
from .demo import DemoServer
from .errors import (
    ChatStreamError,
    ConfigurationError,
    ConnectError,
    IdleTimeoutError,
    UnexpectedResponseError,
)
from .events import FunctionCall
from .response import Response
from .stream import ChatStream

__all__ = ["UsageError", "run_chat", "run_demo"]

EXIT_OK = 0
EXIT_STREAM_ERROR = 1


class UsageError(Exception):
    """Bad usage or unreadable input: one line to stderr, exit status 2."""


# --- the commands ----------------------------------------------------------------------


def run_chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chatstream chat``: one prompt, or a conversation read line by line."""
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise UsageError(
            "no server given: pass --base-url URL or set OPENAI_BASE_URL "
            "(e.g. https://api.openai.com/v1, http://localhost:11434/v1)"
        )
    model = args.model or os.environ.get("CHATSTREAM_MODEL")
    if not model:
        raise UsageError("no model given: pass --model NAME or set CHATSTREAM_MODEL")
    request: dict[str, Any] = {"model": model}
    if args.tools:
        request["tools"] = _load_tools(args.tools)
    if args.temperature is not None:
        request["temperature"] = args.temperature
    if args.max_tokens is not None:
        request["max_tokens"] = args.max_tokens
    try:
        client = Client(
            base_url,
            os.environ.get(args.api_key_env) or None,
            idle_timeout=args.idle_timeout,
            headers=_parse_headers(args.header),
        )
    except ConfigurationError as exc:
        raise UsageError(exc.message) from None
    presenter = _presenter(args, out, err, hint=_hints(base_url))
    reader = _LineReader(presenter)
    with client, _Recorder(args.record) as recorder:
        chat = _Chat(client, request, args.system, presenter, recorder)

        def run_tool(call: FunctionCall) -> str:
            line = reader.read(f"{call.name} result> ")
            if line is None:
                raise UsageError(
                    f"the model called {call.name}, but the input ended before its result"
                )
            return line

        if args.prompt is not None:
            return chat.ask(args.prompt, run_tool)
        return _repl(chat, reader, run_tool)


def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chatstream demo``: the bundled conversation, from a local server."""
    fast = args.fast or os.environ.get("CHATSTREAM_DEMO_FAST", "") not in ("", "0")
    presenter = _presenter(args, out, err)
    renderer = presenter.renderer
    with DemoServer(fast=fast) as server, Client(server.base_url) as client:
        script = server.script
        request = {"model": script.model, "tools": script.tools}
        chat = _Chat(client, request, script.system, presenter)
        if renderer is not None:
            renderer.note(
                f"chatstream demo · a local model at {server.base_url} · no key, no network"
            )
            renderer.user(script.prompt)

        def run_tool(call: FunctionCall) -> str:
            result = script.run_tool(call)
            if renderer is not None:
                renderer.note(f"running {call.name} on this machine…")
                renderer.tool_result(call, result)
            return result

        return chat.ask(script.prompt, run_tool)


# --- the pieces ------------------------------------------------------------------------


def _presenter(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    hint: Callable[[ChatStreamError], str | None] | None = None,
) -> Presenter:
    mode: Mode = "json" if args.json else "result" if args.result else "text"
    return Presenter(
        out, err, mode=mode, show_reasoning=not args.no_reasoning, timed=True, hint=hint
    )


class _Chat:
    """A conversation shown through a presenter, each response recorded if asked."""

    def __init__(
        self,
        client: Client,
        request: dict[str, Any],
        system: str | None,
        presenter: Presenter,
        recorder: _Recorder | None = None,
    ) -> None:
        self.conversation = Conversation(client, request, system=system, send=self._send)
        self.presenter = presenter
        self.recorder = recorder

    def ask(self, text: str, run_tool: Callable[[FunctionCall], str]) -> int:
        """One user turn; its exit status (the presenter has shown any error)."""
        try:
            self.conversation.ask(text, run_tool)
        except ChatStreamError:
            return EXIT_STREAM_ERROR
        return EXIT_OK

    def _send(self, turn: Turn, body: dict[str, Any]) -> Response:
        record = self.recorder.next() if self.recorder is not None else None
        started = time.monotonic()
        with turn.stream(body, on_bytes=record) as stream:
            self.presenter.show(stream, lambda: _outcome(stream), started=started)
        return stream.result()


def _outcome(stream: ChatStream) -> Response:
    """The response of a stream that has ended: complete, or partial when it failed."""
    try:
        return stream.result()
    except ChatStreamError as exc:
        assert exc.partial is not None
        return exc.partial


def _repl(chat: _Chat, reader: _LineReader, run_tool: Callable[[FunctionCall], str]) -> int:
    """Read user turns until the input ends; 1 if any turn ended in an error."""
    status = EXIT_OK
    renderer = chat.presenter.renderer
    while True:
        if renderer is not None and chat.conversation.messages:
            renderer.note("")
        line = reader.read("you> ")
        if line is None or line.strip() in ("/exit", "/quit"):
            return status
        text = line.strip()
        if not text:
            continue
        if renderer is not None and not reader.interactive:
            renderer.user(text)  # a transcript read from a pipe shows what was asked
        status = max(status, chat.ask(text, run_tool))


class _LineReader:
    """Reads the user's lines from standard input, with a prompt when it is a terminal
    (line editing too when standard output is one as well)."""

    def __init__(self, presenter: Presenter) -> None:
        self.presenter = presenter

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty()

    def read(self, prompt: str) -> str | None:
        """One line without its line break, or ``None`` at the end of the input."""
        renderer = self.presenter.renderer
        if self.interactive and renderer is not None and renderer.out.isatty():
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401 - line editing and history for input()
            # readline must be told which characters of the prompt take no room.
            styled = re.sub(r"(\x1b\[[0-9;]*m)", "\001\\1\002", renderer.prompt(prompt))
            try:
                return input(styled)
            except EOFError:
                renderer.out.write("\n")
                return None
        if self.interactive:
            sys.stderr.write(prompt)
            sys.stderr.flush()
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None


class _Recorder:
    """Saves each response body as received: the first to ``path``, later ones (tool
    follow-ups, later turns) to ``stem-2.sse``, ``stem-3.sse``, ... beside it."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self._file: IO[bytes] | None = None

    def next(self) -> Callable[[bytes], object] | None:
        """Where the next response's bytes go (``None`` when not recording)."""
        self.close()
        if self.path is None:
            return None
        self.count += 1
        path = self.path
        if self.count > 1:
            path = path.with_name(f"{path.stem}-{self.count}{path.suffix}")
        try:
            self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        return self._file.write

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _load_tools(path: str) -> list[dict[str, Any]]:
    """The ``tools`` of a JSON file: a list of definitions, or an object with ``tools``."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    tools = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise UsageError(f"{path} must hold a list of tool definitions (OpenAI's tools)")
    return tools


def _parse_headers(pairs: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {pair!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    return headers


def _hints(base_url: str) -> Callable[[ChatStreamError], str | None]:
    """What to try, for the errors whose message cannot know the command line."""

    def hint(error: ChatStreamError) -> str | None:
        if isinstance(error, ConnectError):
            return f"Is a server running at {base_url}? Check --base-url."
        if isinstance(error, UnexpectedResponseError):
            return "Check --base-url: it is the API root, e.g. https://api.openai.com/v1."
        if isinstance(error, IdleTimeoutError):
            return "A slow model may need a longer --idle-timeout."
        return None

    return hint

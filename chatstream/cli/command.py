"""The ``chatstream`` command: ``demo``, ``chat`` and ``replay``.

Standard output carries the answer (or the JSON of ``--json`` / ``--result``) only; notes,
statistics and errors go to standard error. Exit status: 0 when the streams ended
normally, 1 when one ended in an error, 2 for bad usage or an input that cannot be read,
130 when interrupted (Ctrl-C outside a conversation).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .._shell.deadlines import IDLE_RULE
from .._version import __version__
from ..client import Client
from ..config import Retry, Timeouts
from ..core.parser import StreamParser
from ..errors import ConfigurationError
from ..events import FunctionCall
from ..tools import Tool, as_tools
from .advice import Advice, RetryNotes
from .demo import DemoServer
from .present import Mode, Presenter
from .recording import (
    FRAMED_PREFIX,
    Recorder,
    UsageError,
    parse_recording,
    read_input,
    recorded_api,
    serve_recording,
)
from .session import COMMANDS, LineReader, Session, outcome, python_tool_result, typed_tool_result

__all__ = ["main"]

EXIT_OK = 0
EXIT_STREAM_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Library parameter names in a ConfigurationError, and the options that set them.
_FLAGS = {
    "base_url": "--base-url",
    "Timeouts.idle": "--idle-timeout",
    "Retry.max_retries": "--max-retries",
    "headers": "--header",
    "header": "--header",
}


# --- the commands ----------------------------------------------------------------------


def run_chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chatstream chat``: one prompt, or a conversation read line by line."""
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise UsageError(
            "no server given: pass --base-url URL or set OPENAI_BASE_URL "
            "(e.g. https://api.openai.com/v1, http://localhost:11434/v1)"
        )
    if not base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url must be an http:// or https:// URL, not {base_url!r}")
    model = args.model or os.environ.get("CHATSTREAM_MODEL")
    if not model:
        raise UsageError("no model given: pass --model NAME or set CHATSTREAM_MODEL")
    if args.prompt is not None and not args.prompt.strip():
        raise UsageError("the prompt is empty: give a PROMPT, or none for a conversation")
    request = _request(args, model)
    python_tools = _python_tools(args.tool or [])
    if python_tools:
        definitions = [tool.definition() for tool in python_tools.values()]
        request["tools"] = [*request.get("tools", ()), *definitions]
    if args.api == "responses":
        request = _for_responses(request)
    key = os.environ.get(args.api_key_env) or None
    path = "/responses" if args.api == "responses" else "/chat/completions"
    advice = Advice(
        url=base_url.rstrip("/") + path,
        api_key_env=args.api_key_env,
        key_sent=key is not None,
    )
    presenter = _presenter(args, out, err, advice)
    notes = RetryNotes(presenter.note, advice.brief, attempts=args.max_retries + 1)
    try:
        client = Client(
            base_url,
            key,
            timeouts=Timeouts(idle=args.idle_timeout),
            retry=Retry(max_retries=args.max_retries),
            headers=_parse_headers(args.header),
            telemetry=notes,
            api=args.api,
        )
    except ConfigurationError as exc:
        raise UsageError(_in_flags(exc.message)) from None
    recorder = Recorder(args.record)
    client.session.hooks["response"].append(recorder.on_response)
    reader = LineReader(presenter)
    with client, recorder:
        session = Session(client, request, presenter, system=args.system, recorder=recorder)
        run_tool = python_tool_result(python_tools, typed_tool_result(reader), presenter)
        if args.prompt is not None:
            return session.ask(args.prompt, run_tool)
        return session.repl(reader, run_tool)


def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chatstream demo``: the bundled conversation, from a local server."""
    fast = args.fast or os.environ.get("CHATSTREAM_DEMO_FAST", "") not in ("", "0")
    presenter = _presenter(args, out, err, None)
    with DemoServer(fast=fast) as server, Client(server.base_url) as client:
        script = server.script
        request = {"model": script.model, "tools": script.tools}
        session = Session(client, request, presenter, system=script.system)
        if presenter.mode == "text":
            presenter.note(
                f"chatstream demo · a local model at {server.base_url} · no key, no network"
            )
            presenter.renderer.user(script.prompt)

        def run_tool(call: FunctionCall) -> str:
            result = script.run_tool(call)
            if presenter.mode == "text":
                presenter.note(f"running {call.name} on this machine…")
                presenter.renderer.tool_result(call, result)
            return result

        return session.ask(script.prompt, run_tool)


def run_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``chatstream replay``: a recorded response, shown as it was live."""
    presenter = _presenter(args, out, err, None, timed=False)
    first, chunks = read_input(args.file)
    if first.startswith(FRAMED_PREFIX):
        # Not an event stream: the status and headers decide, as the client judges them.
        data = b"".join(chunks)
        api = args.api or recorded_api(parse_recording(data)[3])
        body: dict[str, Any] = {"model": "replay", _CONVERSATION[api]: []}
        with (
            serve_recording(data) as base_url,
            Client(base_url, retry=Retry(max_retries=0), api=api) as client,
        ):
            stream = client.stream(body)
            with stream:
                error = presenter.show(stream, lambda: outcome(stream))
        return EXIT_OK if error is None else EXIT_STREAM_ERROR
    parser = StreamParser(api=args.api or recorded_api(first))
    try:
        error = presenter.show(parser.iter_events(chunks), lambda: parser.response)
    finally:
        # The stream may end before the input does ([DONE], an error): close the file
        # now, not whenever the garbage collector breaks the error's reference cycle.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return EXIT_OK if error is None else EXIT_STREAM_ERROR


# --- the pieces ------------------------------------------------------------------------

#: The body field holding the conversation, on each wire.
_CONVERSATION = {"chat": "messages", "responses": "input"}


def _presenter(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    advice: Advice | None,
    *,
    timed: bool = True,
) -> Presenter:
    mode: Mode = "json" if args.json else "result" if args.result else "text"
    return Presenter(
        out,
        err,
        mode=mode,
        show_reasoning=not args.no_reasoning,
        timed=timed,
        describe=advice.describe if advice is not None else None,
    )


def _request(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """The request body without its messages, from the options."""
    request: dict[str, Any] = {"model": model}
    if args.tools:
        request["tools"] = _load_tools(args.tools)
    if args.tool_choice is not None:
        request["tool_choice"] = _tool_choice(args.tool_choice)
    if args.temperature is not None:
        request["temperature"] = args.temperature
    if args.max_tokens is not None:
        request["max_tokens"] = args.max_tokens
    for key, value in _parse_params(args.param):
        request[key] = value
    return request


def _for_responses(request: dict[str, Any]) -> dict[str, Any]:
    """The request's options as the Responses API names them: ``max_output_tokens``, and
    function tools and a forced tool choice with their fields at the top."""
    out = dict(request)
    if "max_tokens" in out:
        out["max_output_tokens"] = out.pop("max_tokens")
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [_flat(tool) for tool in tools]
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out["tool_choice"] = _flat(choice)
    return out


def _flat(tool: Any) -> Any:
    """``{"type": "function", "function": {...}}`` as ``{"type": "function", ...}``."""
    if isinstance(tool, dict) and tool.get("type") == "function":
        inner = tool.get("function")
        if isinstance(inner, dict):
            return {"type": "function", **inner}
    return tool


def _tool_choice(text: str) -> Any:
    """``auto``, ``none``, ``required``, a tool's name (that tool, forced), or JSON."""
    if text in ("auto", "none", "required"):
        return text
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--tool-choice {text!r} is not JSON: {exc}") from None
    return {"type": "function", "function": {"name": text}}


# Fields the command sets itself: a --param for them would be silently overwritten.
_RESERVED = {
    "messages": "the conversation",
    "stream": "always true",
    "model": "use --model",
}


def _parse_params(pairs: list[str] | None) -> list[tuple[str, Any]]:
    params = []
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=JSON, e.g. --param seed=7")
        if key in _RESERVED:
            raise UsageError(f"--param {key}: not settable ({_RESERVED[key]})")
        try:
            params.append((key, json.loads(value)))
        except ValueError:
            raise UsageError(
                f"--param {pair!r}: the value must be JSON (a string is quoted: "
                f"--param '{key}=\"{value}\"')"
            ) from None
    return params


def _load_tools(path: str) -> list[dict[str, Any]]:
    """The ``tools`` of a JSON file: a list of definitions, or an object with ``tools``."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UsageError(f"--tools: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--tools: {path} is not JSON: {exc}") from None
    tools = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise UsageError(f"--tools: {path} must hold a list of tool definitions (OpenAI's)")
    return tools


def _python_tools(specs: list[str]) -> dict[str, Tool]:
    """The Python functions of ``--tool MODULE:FUNCTION`` as tools, by name (modules
    found from the current directory too, as ``python -m`` does)."""
    if specs and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    functions = []
    for spec in specs:
        module_name, sep, name = spec.partition(":")
        if not sep or not module_name or not name:
            raise UsageError(f"--tool {spec!r}: expected MODULE:FUNCTION")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(f"--tool {spec!r}: cannot import {module_name}: {exc}") from None
        function = getattr(module, name, None)
        if not callable(function):
            raise UsageError(f"--tool {spec!r}: {module_name} has no function {name}")
        functions.append(function)
    try:
        return as_tools(functions)
    except ConfigurationError as exc:
        raise UsageError(f"--tool: {exc.message}") from None


def _parse_headers(pairs: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {pair!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    return headers


def _in_flags(message: str) -> str:
    """A library message about a parameter, in terms of the option that sets it."""
    names = "|".join(re.escape(name) for name in _FLAGS)
    return re.sub(rf"\b({names})\b", lambda m: _FLAGS[m.group(1)], message)


# --- the parser ------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argument type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more: {text!r}")
        return value

    return parse


def _add_output_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, result_help: str
) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print one JSON object per event")
    group.add_argument("--result", action="store_true", help=result_help)
    parser.add_argument("--no-reasoning", action="store_true", help="do not show reasoning text")


_ONE_RESULT = "print the whole result as one JSON object"
_RESULT_PER_REQUEST = (
    "print the whole result as one JSON object per request: one line per response, so "
    "a tool round trip prints one for the call and one for the answer"
)

_CHAT_EPILOG = (
    "in a conversation (no PROMPT):\n"
    + "".join(f"  {command:7} {what}\n" for command, what in COMMANDS.items())
    + "  Ctrl-C  stop the answer being written (it stays in the conversation, marked as cut)\n"
    "  Ctrl-D  leave\n"
    "\n"
    "standard output carries the answer only; notes, statistics and errors go to\n"
    "standard error. Exit status: 0 ok, 1 a stream failed, 2 bad usage, 130 Ctrl-C\n"
    "(one-shot)."
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatstream",
        description="Stream OpenAI-compatible Chat Completions, typed and in order.",
    )
    parser.add_argument("--version", action="version", version=f"chatstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="watch a whole conversation from a built-in local model (no key, no network)",
        description="Start a local server that streams a bundled conversation (reasoning, "
        "text, a tool call and its result, a final answer) and show it the way `chat` does.",
    )
    _add_output_options(demo, result_help=_RESULT_PER_REQUEST)
    # Stream without pauses (tests); CHATSTREAM_DEMO_FAST=1 does the same.
    demo.add_argument("--fast", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=run_demo)

    _add_chat(commands)

    replay = commands.add_parser(
        "replay",
        help="show a recorded response (a file saved by chat --record)",
        description="Read a recorded response and show what it contains, as it was live.",
    )
    replay.add_argument("file", help="the recording; - for standard input")
    replay.add_argument(
        "--api",
        choices=("chat", "responses"),
        help="the wire it was recorded from (default: told by its first event)",
    )
    _add_output_options(replay, result_help=_ONE_RESULT)
    replay.set_defaults(run=run_replay)
    return parser


def _add_chat(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser(
        "chat",
        help="chat with an OpenAI-compatible server: one prompt, or a conversation",
        description="Send PROMPT and stream the answer; without PROMPT, read the "
        "conversation line by line from standard input.",
        epilog=_CHAT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("prompt", nargs="?", help="the message to send (omit for a conversation)")
    server = chat.add_argument_group("server")
    server.add_argument(
        "--base-url",
        metavar="URL",
        help="the API root, e.g. https://api.openai.com/v1 (default: $OPENAI_BASE_URL)",
    )
    server.add_argument(
        "--api-key-env",
        metavar="NAME",
        default="OPENAI_API_KEY",
        help="the environment variable holding the API key (default: OPENAI_API_KEY; "
        "none is sent when it is unset)",
    )
    server.add_argument(
        "--api",
        choices=("chat", "responses"),
        default="chat",
        help="the wire: chat (POST {URL}/chat/completions, the default) or responses "
        "(POST {URL}/responses, the Responses API)",
    )
    server.add_argument(
        "--header",
        metavar="NAME:VALUE",
        action="append",
        help="an extra request header (repeatable)",
    )
    server.add_argument(
        "--idle-timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=300.0,
        help=f"fail after this long with {IDLE_RULE} (default: 300)",
    )
    server.add_argument(
        "--max-retries",
        metavar="N",
        type=_whole_number(0),
        default=2,
        help="retries of a request that failed before any answer (a refused connection, "
        "429, 5xx), each announced on standard error (default: 2)",
    )
    request = chat.add_argument_group("request")
    request.add_argument("--model", help="the model (default: $CHATSTREAM_MODEL)")
    request.add_argument("--system", metavar="TEXT", help="a system message, first")
    request.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    request.add_argument(
        "--max-tokens",
        type=_whole_number(1),
        metavar="N",
        help="the most tokens to generate (max_tokens; 1 or more)",
    )
    request.add_argument(
        "--tools",
        metavar="FILE",
        help="a JSON file of tool definitions; you type each call's result",
    )
    request.add_argument(
        "--tool",
        metavar="MODULE:FUNCTION",
        action="append",
        help="a Python function the model can call, run on this machine: its schema from "
        "its signature and docstring (repeatable)",
    )
    request.add_argument(
        "--tool-choice",
        metavar="CHOICE",
        help="auto, none, required, a tool's name (force that tool), or JSON",
    )
    request.add_argument(
        "--param",
        metavar="KEY=JSON",
        action="append",
        help="any other request field, its value as JSON, e.g. --param seed=7 (repeatable)",
    )
    output = chat.add_argument_group("output")
    _add_output_options(output, result_help=_RESULT_PER_REQUEST)
    output.add_argument(
        "--record",
        metavar="FILE",
        help="save each response as received, for `chatstream replay FILE` "
        "(later responses go to FILE-2, FILE-3, ... with FILE's extension)",
    )
    chat.set_defaults(run=run_chat)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        status: int = args.run(args, out, err)
        return status
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.flush()
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (| head): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK

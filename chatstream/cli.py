"""The ``chatstream`` command: ``demo``, ``chat`` and ``replay``.

Exit status: 0 when the stream ended normally, 1 when it ended in an error, 2 for bad
usage or an input that cannot be read, 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO, TextIO, cast

from ._commands import UsageError, run_chat, run_demo
from ._present import Presenter
from ._version import __version__
from .events import ResponseEvent
from .parser import StreamParser
from .response import Response

__all__ = ["main"]

EXIT_OK = 0
EXIT_STREAM_ERROR = 1
EXIT_USAGE = 2


#: Bad usage or unreadable input: one line to stderr, exit status 2.
_UsageError = UsageError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatstream",
        description="Stream OpenAI-compatible Chat Completions, typed and in order.",
    )
    parser.add_argument("--version", action="version", version=f"chatstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_demo(commands)
    _add_chat(commands)

    replay = commands.add_parser(
        "replay",
        help="show a recorded response body (a .sse file)",
        description="Read a recorded streamed response body and show what it contains.",
    )
    replay.add_argument("file", help="the recorded body; - for standard input")
    _add_output_options(replay)
    replay.add_argument("--no-reasoning", action="store_true", help="do not show reasoning text")
    replay.set_defaults(run=_replay)
    return parser


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="watch a whole conversation from a built-in local model (no key, no network)",
        description="Start a local server that streams a bundled conversation (reasoning, "
        "text, a tool call and its result, a final answer) and show it the way `chat` does.",
    )
    _add_output_options(demo)
    demo.add_argument("--no-reasoning", action="store_true", help="do not show reasoning text")
    # Stream without pauses (tests); CHATSTREAM_DEMO_FAST=1 does the same.
    demo.add_argument("--fast", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=run_demo)


def _add_chat(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser(
        "chat",
        help="chat with an OpenAI-compatible server: one prompt, or a conversation",
        description="Send PROMPT and stream the answer; without PROMPT, read the "
        "conversation line by line from standard input (end it with Ctrl-D).",
    )
    chat.add_argument("prompt", nargs="?", help="the message to send (omit for a conversation)")
    server = chat.add_argument_group("server")
    server.add_argument(
        "--base-url", metavar="URL", help="the API root (default: $OPENAI_BASE_URL)"
    )
    server.add_argument(
        "--api-key-env",
        metavar="NAME",
        default="OPENAI_API_KEY",
        help="the environment variable holding the API key (default: OPENAI_API_KEY; "
        "none is sent when it is unset)",
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
        help="fail when no data arrives for this long (default: 300)",
    )
    request = chat.add_argument_group("request")
    request.add_argument("--model", help="the model (default: $CHATSTREAM_MODEL)")
    request.add_argument("--system", metavar="TEXT", help="a system message")
    request.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    request.add_argument(
        "--max-tokens", type=int, metavar="N", help="the most tokens to generate (max_tokens)"
    )
    request.add_argument(
        "--tools",
        metavar="FILE",
        help="a JSON file of tool definitions; you type each call's result",
    )
    output = chat.add_argument_group("output")
    _add_output_options(output)
    output.add_argument("--no-reasoning", action="store_true", help="do not show reasoning text")
    output.add_argument(
        "--record",
        metavar="FILE",
        help="save each response body exactly as received, for `chatstream replay FILE` "
        "(later responses go to FILE-2, FILE-3, ... with FILE's extension)",
    )
    chat.set_defaults(run=run_chat)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _add_output_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print one JSON object per event")
    group.add_argument(
        "--result", action="store_true", help="print one JSON object: the whole result"
    )


def _read_input(path: str) -> Iterable[bytes]:
    if path == "-":
        # read1: whatever has arrived, so a live pipe is shown as it flows.
        stdin = cast(io.BufferedReader, sys.stdin.buffer)
        return iter(lambda: stdin.read1(65536), b"")
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by _chunks
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _chunks(handle, path)


def _chunks(handle: BinaryIO, path: str) -> Iterable[bytes]:
    with handle:
        try:
            yield from iter(lambda: handle.read(65536), b"")
        except OSError as exc:
            raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    parser = StreamParser()
    chunks = _read_input(args.file)
    try:
        events = parser.iter_events(chunks)
        return present(events, lambda: parser.response, args, out, err)
    finally:
        # The stream may end before the input does ([DONE], an error): close the file
        # now, not whenever the garbage collector breaks the error's reference cycle.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def present(
    events: Iterable[ResponseEvent],
    response: Callable[[], Response],
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> int:
    """Consume ``events`` and show them the way ``--json`` / ``--result`` / neither asks;
    return the exit status."""
    presenter = Presenter(
        out,
        err,
        mode="json" if args.json else "result" if args.result else "text",
        show_reasoning=not getattr(args, "no_reasoning", False),
    )
    error = presenter.show(events, response)
    return EXIT_OK if error is None else EXIT_STREAM_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        status: int = args.run(args, out, err)
        return status
    except _UsageError as exc:
        err.write(f"chatstream: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("\nchatstream: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (| head): not an error of ours. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK

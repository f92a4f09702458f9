"""The ``chatstream`` command.

Exit status: 0 when the stream ended normally, 1 when it ended in an error, 2 for bad
usage or an input that cannot be read.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO, TextIO, cast

from ._version import __version__
from .errors import ChatStreamError
from .events import ResponseEvent
from .parser import StreamParser
from .render import Renderer
from .response import Response

__all__ = ["main"]

EXIT_OK = 0
EXIT_STREAM_ERROR = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """Bad usage or unreadable input: one line to stderr, exit status 2."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatstream",
        description="Stream OpenAI-compatible Chat Completions, typed and in order.",
    )
    parser.add_argument("--version", action="version", version=f"chatstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

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


def _add_output_options(parser: argparse.ArgumentParser) -> None:
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
    events = parser.iter_events(_read_input(args.file))
    return present(events, lambda: parser.response, args, out, err)


def present(
    events: Iterable[ResponseEvent],
    response: Callable[[], Response],
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> int:
    """Consume ``events`` and show them the way ``--json`` / ``--result`` / neither asks;
    return the exit status."""
    renderer = None
    if not args.json and not args.result:
        renderer = Renderer(out, show_reasoning=not getattr(args, "no_reasoning", False))
    error: ChatStreamError | None = None
    try:
        for event in events:
            if args.json:
                out.write(event.to_json() + "\n")
            elif renderer is not None:
                renderer.event(event)
            out.flush()
    except ChatStreamError as exc:
        error = exc
    result = response()
    if args.result:
        out.write(json.dumps(result.to_result_dict(), ensure_ascii=False) + "\n")
    elif args.json and error is not None:
        out.write(
            json.dumps({"type": "error", "kind": error.kind, "message": error.message}) + "\n"
        )
    elif renderer is not None:
        renderer.summary(result.usage)
        if error is not None:
            renderer.error(error, err)
    out.flush()
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

"""Shared helpers for the tests: building bodies, running the core, splitting bytes."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import chatstream
from chatstream import (
    ChatStreamError,
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputItemAdded,
    OutputItemIncomplete,
    OutputTextParsed,
    ResponseEvent,
    StreamParser,
)

DATA = Path(__file__).parent / "data"
#: The request body every client test sends.
BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
#: Short limits, so that a client test that goes wrong fails fast instead of hanging.
TIMEOUTS = chatstream.Timeouts(connect=2.0, idle=5.0)
#: A usage chunk's figures.
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
CORPUS = DATA / "conformance"
#: The corpus of Responses API streams (rules v3).
RESPONSES_CORPUS = DATA / "responses"

# --- wall-clock bounds ----------------------------------------------------------------------
# A test asserts a duration only where the time is the behaviour (a limit fires, close()
# does not wait), and only from above, at SLACK times what the documentation promises:
# a busy machine makes things late, and a test checks the promise, not the machine's
# speed (speed is measured in benchmarks/).

#: How many times the documented figure a wall-clock bound allows.
SLACK = 3.0
#: docs/reliability.rst: close() returns "well under 100 ms".
CLOSE_RETURNS = 0.1
#: docs/reliability.rst: after close(), "the worker ends within a second".
WORKER_ENDS = 1.0
#: docs/errors.rst: a time limit ends the stream "within a tenth of a second" of it.
LIMIT_FIRES = 0.1


def limit_bound(limit: float) -> float:
    """The longest a test lets a stream run whose time limit of ``limit`` seconds fires."""
    return SLACK * (limit + LIMIT_FIRES)


#: The longest a test lets close() take (above SLACK times the promise: close() is the
#: one bound measured on the calling thread alone, where a busy machine shows most).
CLOSE_BOUND = 0.5
#: The longest a test lets a worker live on after close().
WORKER_BOUND = SLACK * WORKER_ENDS


def build_body(
    chunks: Sequence[Any], *, event: str | None = "message", done: bool = False
) -> bytes:
    """An SSE body with one event per chunk (as the specification's tests build them)."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"{head}data: {json.dumps(c)}\n\n" for c in chunks)
    if done:
        body += "data: [DONE]\n\n"
    return body.encode()


def drain(
    events: Iterable[ResponseEvent],
) -> tuple[list[ResponseEvent], ChatStreamError | None]:
    """Iterate ``events`` (a stream, or the core's events) to the end: what it gave, and
    the error it raised (or None)."""
    out: list[ResponseEvent] = []
    try:
        for event in events:
            out.append(event)
    except ChatStreamError as exc:
        return out, exc
    return out, None


def run_core(
    pieces: Iterable[bytes], **options: Any
) -> tuple[list[ResponseEvent], ChatStreamError | None]:
    """Every event the core gives for ``pieces``, and the error it ended in (or None)."""
    return drain(chatstream.iter_events(pieces, **options))


def collect_events(body: bytes, **options: Any) -> list[ResponseEvent]:
    """The events of a body that must end normally."""
    events, error = run_core([body], **options)
    assert error is None, f"stream failed: {error!r}"
    return events


def without_live_views(events: Iterable[Any]) -> list[Any]:
    """``events`` less the live views of tool calls and JSON (their announcement,
    argument deltas, incomplete ends and parsed content), in the same order."""
    live = (FunctionCallArgumentsDelta, OutputItemIncomplete, OutputTextParsed)
    return [
        e
        for e in events
        if not isinstance(e, live)
        and not (isinstance(e, OutputItemAdded) and isinstance(e.item, FunctionCall))
    ]


def result_of(pieces: Iterable[bytes], **options: Any) -> dict[str, Any]:
    """The conformance result object of a body."""
    parser = StreamParser(**options)
    try:
        for _ in parser.iter_events(pieces):
            pass
    except ChatStreamError:
        pass
    return parser.response.to_result_dict()


def random_splits(data: bytes, rng: random.Random, max_piece: int = 9) -> list[bytes]:
    """``data`` cut into random pieces of 1..max_piece bytes."""
    pieces = []
    i = 0
    while i < len(data):
        n = rng.randint(1, max_piece)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def corpus(directory: Path = CORPUS) -> list[dict[str, str]]:
    """The manifest rows of a corpus (by default the conformance corpus)."""
    with open(directory / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def corpus_names(directory: Path = CORPUS) -> list[str]:
    return [row["file"][: -len(".sse")] for row in corpus(directory)]


def expectation(name: str, directory: Path = CORPUS) -> dict[str, Any]:
    text = (directory / f"{name}.expect.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without what the conformance check ignores (model, error message).

    The keys rules v3 added (``reasoning_summary``, ``other_items``) are ``[]`` where an
    older expectation leaves them out, as rules v3 says of Chat Completions streams."""
    out = {k: v for k, v in result.items() if k != "model"}
    out.setdefault("reasoning_summary", [])
    out.setdefault("other_items", [])
    if out.get("error") is not None:
        out["error"] = {"kind": out["error"]["kind"]}
    return out


def examples(n: int) -> int:
    """A property's hypothesis budget: ``n`` examples under the default (bounded) profile,
    scaled up under a bigger one (``HYPOTHESIS_PROFILE=thorough``, see conftest.py)."""
    from hypothesis import settings

    profile = settings.default
    return n * max(1, (50 if profile is None else profile.max_examples) // 50)


def kinds(events: Iterable[object]) -> list[str]:
    """Event class names, with the item's kind for item events: ``OutputItemDone(Message)``."""
    names = []
    for event in events:
        name = type(event).__name__
        item = getattr(event, "item", None)
        names.append(f"{name}({type(item).__name__})" if item is not None else name)
    return names


# --- the one chunk builder -----------------------------------------------------------------


def chunk(
    content: str | None = None,
    *,
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    index: int = 0,
    usage: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning: str | None = None,
    choices: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One Chat Completions chunk (with one choice, unless ``choices`` is false).

    ``delta`` is the choice's delta as given (any fields, any values); ``content``,
    ``reasoning`` and ``tool_calls`` are added to it. The choice's ``finish_reason`` is
    always there (null unless ``finish``); ``usage`` only when given; ``extra`` are more
    top-level fields. A test that needs a field absent or null otherwise says so itself."""
    delta = {} if delta is None else dict(delta)
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    payload: dict[str, Any] = {"id": "chatcmpl-1", "model": "m", **extra}
    payload["choices"] = (
        [{"index": index, "delta": delta, "finish_reason": finish}] if choices else []
    )
    if usage is not None:
        payload["usage"] = usage
    return payload


def event(payload: Any, *, name: str | None = None, eol: str = "\n") -> bytes:
    """One SSE event carrying ``payload`` (JSON-encoded unless already text)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    head = f"event: {name}{eol}" if name else ""
    return f"{head}data: {data}{eol}{eol}".encode()


DONE = b"data: [DONE]\n\n"


def answer(
    *pieces: str,
    finish: str = "stop",
    role: bool = False,
    reasoning: str | None = None,
    usage: dict[str, Any] | None = None,
    done: bool = True,
) -> bytes:
    """A whole streamed answer: an ``assistant`` role chunk (when ``role``), a reasoning
    chunk (when ``reasoning`` is given), one text chunk per piece, the ``finish`` chunk, a
    usage-only chunk without choices (when ``usage`` is given), then ``[DONE]`` (unless
    ``done`` is false)."""
    chunks = [chunk(delta={"role": "assistant"})] if role else []
    if reasoning is not None:
        chunks.append(chunk(reasoning=reasoning))
    chunks += [chunk(p) for p in pieces]
    chunks.append(chunk(finish=finish))
    if usage is not None:
        chunks.append(chunk(usage=usage, choices=False))
    return b"".join(event(c) for c in chunks) + (DONE if done else b"")


#: A short answer: "Hello", with usage.
HELLO = answer("Hel", "lo", usage=USAGE)


def texts(events: Iterable[object]) -> str:
    """The text deltas among ``events``, joined."""
    return "".join(e.delta for e in events if isinstance(e, chatstream.OutputTextDelta))

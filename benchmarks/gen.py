"""Deterministic Chat Completions streams for the benchmarks, with their ground truth.

A stream is a name (``mixed-20000``, ``content-200``, ``giant-10``, ``bigarg-10-40000``)
that :func:`build` turns into the SSE body (``data: {chunk}\\n\\n`` ... ``data: [DONE]``)
and the answer a correct client must reconstruct::

    {"content": str, "reasoning": str, "finish_reason": str, "n_chunks": int,
     "tool_calls": [{"id": str, "name": str, "arguments": str}, ...]}

Kinds:

``mixed-N``
    N chunks: a role chunk, reasoning deltas (a quarter), text deltas of one to four
    words (half; some non-ASCII, quotes, backslashes and newlines), then four tool calls
    whose arguments arrive a few characters at a time (a quarter). Calls 0 and 1 are
    parallel: their deltas alternate. A ``tool_calls`` finish chunk and a usage chunk
    (``choices: []``) close it.
``content-N``
    N text chunks, nothing else (the latency stream).
``giant-MB``
    One text delta of MB million characters: a single ``data:`` line that size.
``bigarg-MB-D``
    One tool call whose arguments (MB million characters of JSON) arrive over D deltas.

:func:`ensure` caches bodies in ``benchmarks/streams/`` (git-ignored): ``NAME.sse`` and
``NAME.json``. Run it alone to make one: ``python benchmarks/gen.py mixed-20000``.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

STREAMS = Path(__file__).resolve().parent / "streams"

_WORDS = (
    "a stream of tokens arrives one delta at a time and the client must put them back "
    "together in order while the model keeps thinking about files functions tests and "
    "errors ; ( ) { } [ ] = + - * / 42 3.14 true false null über façade naïve 東京 "
    'Ωmega ✓ emoji 🙂 "quoted" back\\slash tab\tnew\nline'
)
_VOCAB = _WORDS.split(" ")

_TOOLS = ("search_code", "read_file", "run_tests", "write_patch")


def _chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    choice["logprobs"] = None
    return {
        "id": "chatcmpl-bench-0001",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "bench-model",
        "system_fingerprint": "fp_bench",
        "choices": [choice],
    }


def _usage(n: int) -> dict[str, Any]:
    chunk = _chunk(None)
    chunk["choices"] = []
    chunk["usage"] = {"prompt_tokens": 321, "completion_tokens": n, "total_tokens": 321 + n}
    return chunk


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(" " + rng.choice(_VOCAB) for _ in range(rng.randint(lo, hi)))


def _pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` consecutive pieces of (nearly) equal length."""
    step, extra = divmod(len(text), count)
    out, start = [], 0
    for i in range(count):
        end = start + step + (i < extra)
        out.append(text[start:end])
        start = end
    return out


def _arguments(rng: random.Random, size: int) -> str:
    words: list[str] = []
    total = 0
    while total < size:
        words.append(_words(rng, 3, 8))
        total += len(words[-1])
    return json.dumps({"path": "src/app.py", "query": "".join(words)}, ensure_ascii=False)


def _call_head(index: int, call_id: str, name: str) -> dict[str, Any]:
    function = {"name": name, "arguments": ""}
    return {"index": index, "id": call_id, "type": "function", "function": function}


def _mixed(n: int, kinds: tuple[str, ...], seed: int) -> tuple[list[dict[str, Any]], dict]:
    rng = random.Random(seed)
    truth: dict[str, Any] = {"content": [], "reasoning": [], "tool_calls": []}
    chunks = [_chunk({"role": "assistant", "content": ""})]
    tools = "tools" in kinds
    body = max(n - (3 if tools else 2), 8)  # minus role, finish (and usage) chunks
    n_reasoning = body // 4 if "reasoning" in kinds else 0
    n_tools = body // 4 if tools else 0
    n_content = body - n_reasoning - n_tools
    for _ in range(n_reasoning):
        text = _words(rng, 1, 4)
        truth["reasoning"].append(text)
        chunks.append(_chunk({"reasoning_content": text}))
    for _ in range(n_content):
        text = _words(rng, 1, 4)
        truth["content"].append(text)
        chunks.append(_chunk({"content": text}))
    finish = "stop"
    if tools:
        finish = "tool_calls"
        per_call = n_tools // 4 - 1  # one head chunk per call, then its deltas
        calls = []
        for k in range(4):
            call_id = f"call_bench_{k}"
            args = _arguments(rng, per_call * 6)
            calls.append((_call_head(k, call_id, _TOOLS[k]), _pieces(args, per_call)))
            truth["tool_calls"].append({"id": call_id, "name": _TOOLS[k], "arguments": args})

        def delta(k: int, piece: str) -> dict[str, Any]:
            return _chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})

        # Calls 0 and 1 in parallel (their deltas alternate), then 2 and 3 one after
        # the other.
        chunks.append(_chunk({"tool_calls": [calls[0][0]]}))
        chunks.append(_chunk({"tool_calls": [calls[1][0]]}))
        for a, b in zip(calls[0][1], calls[1][1], strict=True):
            chunks += [delta(0, a), delta(1, b)]
        for k in (2, 3):
            chunks.append(_chunk({"tool_calls": [calls[k][0]]}))
            chunks += [delta(k, piece) for piece in calls[k][1]]
    chunks.append(_chunk({}, finish))
    if tools:
        chunks.append(_usage(len(chunks)))
    truth["finish_reason"] = finish
    return chunks, truth


def _giant(mb: float, seed: int) -> tuple[list[dict[str, Any]], dict]:
    rng = random.Random(seed)
    size = int(mb * 1_000_000)
    words: list[str] = []
    total = 0
    while total < size:
        words.append(_words(rng, 8, 16))
        total += len(words[-1])
    text = "".join(words)[:size]
    chunks = [_chunk({"role": "assistant", "content": text}), _chunk({}, "stop")]
    return chunks, {"content": [text], "reasoning": [], "tool_calls": [], "finish_reason": "stop"}


def _bigarg(mb: float, deltas: int, seed: int) -> tuple[list[dict[str, Any]], dict]:
    rng = random.Random(seed)
    args = _arguments(rng, int(mb * 1_000_000) - 40)
    head = _call_head(0, "call_big", "write_file")
    chunks = [_chunk({"role": "assistant", "content": None, "tool_calls": [head]})]
    for piece in _pieces(args, deltas):
        chunks.append(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    chunks.append(_chunk({}, "tool_calls"))
    truth = {"content": [], "reasoning": [], "finish_reason": "tool_calls"}
    truth["tool_calls"] = [{"id": "call_big", "name": "write_file", "arguments": args}]
    return chunks, truth


def build(name: str, seed: int = 5) -> tuple[bytes, dict[str, Any]]:
    """The body and the ground truth of the stream ``name``."""
    kind, *params = name.split("-")
    if kind == "mixed":
        chunks, truth = _mixed(int(params[0]), ("reasoning", "content", "tools"), seed)
    elif kind == "content":
        chunks, truth = _mixed(int(params[0]), ("content",), seed)
    elif kind == "giant":
        chunks, truth = _giant(float(params[0]), seed)
    elif kind == "bigarg":
        chunks, truth = _bigarg(float(params[0]), int(params[1]), seed)
    else:
        raise ValueError(f"unknown stream kind {kind!r}")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = [f"data: {dumps(chunk)}\n\n" for chunk in chunks]
    body = ("".join(lines) + "data: [DONE]\n\n").encode()
    expected = {
        "content": "".join(truth["content"]),
        "reasoning": "".join(truth["reasoning"]),
        "tool_calls": truth["tool_calls"],
        "finish_reason": truth["finish_reason"],
        "n_chunks": len(chunks),
    }
    return body, expected


def ensure(name: str) -> Path:
    """Make ``streams/NAME.sse`` and ``streams/NAME.json`` unless they exist."""
    path = STREAMS / f"{name}.sse"
    truth = path.with_suffix(".json")
    if not (path.exists() and truth.exists()):
        body, expected = build(name)
        STREAMS.mkdir(exist_ok=True)
        path.write_bytes(body)
        truth.write_text(json.dumps(expected, ensure_ascii=False), encoding="utf-8")
    return path


def expected(name: str) -> dict[str, Any]:
    """The ground truth of a stream made by :func:`ensure`."""
    text = (STREAMS / f"{name}.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        made = ensure(arg)
        print(f"{made}: {made.stat().st_size:,} bytes, {expected(arg)['n_chunks']} chunks")

#!/usr/bin/env python3
"""Timings of chatstream's sans-I/O core (bytes in, events out; no sockets, no threads).

Run by hand from the project root (pytest never collects it)::

    .venv/bin/python benchmarks/bench_core.py            # the whole table (about a minute)
    .venv/bin/python benchmarks/bench_core.py --quick    # smaller sizes, one run each
    .venv/bin/python benchmarks/bench_core.py --baseline # also plain sseclient-py (slow)

Cases, each at a size and at twice that size, so that the growth column shows whether
the cost is linear (about 2x) or quadratic (about 4x):

* ``giant line``: one single-line ``data:`` event carrying a content delta of N MB, fed
  in 128 B, 8 KiB and 64 KiB pieces (the limit on one event is raised above N);
* ``many lines``: one event of N MB made of ``data: x`` lines (sseclient-py's own field
  parser is quadratic in the number of lines);
* ``big argument``: one tool call whose arguments total N MB over N/250 deltas;
* ``mixed``: a stream of reasoning, text and interleaved tool-call deltas (shaped like
  ``shared/bench/gen_stream.py --kind mixed``), reported in microseconds per chunk.

Every time is the best of ``--repeat`` runs; bodies are built and cut into pieces before
the clock starts, and each run checks that the result is intact.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatstream import Limits, StreamParser
from chatstream.core.sse import SSEDecoder

MB = 1_000_000
KIB = 1024


def pieces_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def sse(chunks: list[dict[str, object]]) -> bytes:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return ("".join(f"data: {dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode()


def choice(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def filler(size: int, seed: int) -> str:
    """``size`` characters of word-like ASCII text."""
    rng = random.Random(seed)
    words = ["the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "on"]
    out, total = [], 0
    while total < size:
        word = rng.choice(words) + " "
        out.append(word)
        total += len(word)
    return "".join(out)[:size]


# --- the streams -----------------------------------------------------------------------


def giant_line(size: int) -> tuple[bytes, Callable[[StreamParser], bool]]:
    content = filler(size, 1)
    body = sse([choice({"content": content}), choice({}, "stop")])
    return body, lambda p: p.result().content == content


def big_argument(size: int, deltas: int) -> tuple[bytes, Callable[[StreamParser], bool]]:
    arguments = json.dumps({"path": "big.txt", "content": filler(size - 40, 2)})
    step = -(-len(arguments) // deltas)
    chunks = [
        choice({"tool_calls": [{"index": 0, "id": "call_big", "function": {"name": "write_file"}}]})
    ]
    for i in range(0, len(arguments), step):
        piece = arguments[i : i + step]
        chunks.append(choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    chunks.append(choice({}, "tool_calls"))
    body = sse(chunks)
    return body, lambda p: p.result().tool_calls[0].arguments == arguments


def mixed(n_chunks: int) -> tuple[bytes, Callable[[StreamParser], bool], int]:
    """25% reasoning, 50% text (1-4 words a delta, some non-ASCII and escapes), 25%
    tool-call arguments over 4 calls, the first two interleaved; finish and usage."""
    rng = random.Random(3)
    words = ["the", "of", "and", "to", "in", "café", "東京", "✓", '"quoted"', "back\\slash"]
    words += ["tab\there", "new\nline"]

    def tokens() -> str:
        return "".join(" " + rng.choice(words) for _ in range(rng.randint(1, 4)))

    budget = n_chunks - 2  # less the finish and usage chunks
    per_call = budget // 16 - 1  # a quarter of the chunks: 4 calls, a header each
    calls = []
    for k in range(4):
        args = json.dumps({"query": "".join(tokens() for _ in range(per_call))})
        step = -(-len(args) // per_call)
        calls.append((k, [args[i : i + step] for i in range(0, len(args), step)], args))

    def header(k: int) -> dict[str, object]:
        fragment = {"index": k, "id": f"call_{k}", "function": {"name": "f", "arguments": ""}}
        return choice({"tool_calls": [fragment]})

    def piece(k: int, text: str) -> dict[str, object]:
        return choice({"tool_calls": [{"index": k, "function": {"arguments": text}}]})

    tools = [header(0), header(1)]
    (_, a, _), (_, b, _) = calls[0], calls[1]
    for i in range(max(len(a), len(b))):
        tools += [piece(0, a[i])] if i < len(a) else []
        tools += [piece(1, b[i])] if i < len(b) else []
    for k, pieces, _ in calls[2:]:
        tools += [header(k), *(piece(k, p) for p in pieces)]
    reasoning = [tokens() for _ in range(budget // 4)]
    content = [tokens() for _ in range(budget - len(reasoning) - len(tools))]
    chunks = [choice({"reasoning_content": t}) for t in reasoning]
    chunks += [choice({"content": t}) for t in content]
    chunks += tools
    chunks.append(choice({}, "tool_calls"))
    chunks.append({"id": "chatcmpl-bench", "choices": [], "usage": {"prompt_tokens": 1}})
    expected_text, expected_args = "".join(content), [args for _, _, args in calls]

    def check(p: StreamParser) -> bool:
        result = p.result()
        return (
            result.content == expected_text
            and [c.arguments for c in result.tool_calls] == expected_args
        )

    return sse(chunks), check, len(chunks)


# --- timing ----------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    size_mb: float
    piece: str
    seconds: float
    chunks: int | None = None  # for the per-chunk cost

    @property
    def size(self) -> str:
        if self.chunks is not None:
            return f"{self.chunks} chunks ({self.size_mb:.2f} MB)"
        return f"{self.size_mb:g} MB"


def time_parser(
    body: bytes, piece: int, check: Callable[[StreamParser], bool], repeat: int
) -> float:
    pieces = pieces_of(body, piece)
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        parser = StreamParser(limits=Limits(max_event_bytes=len(body) + MB))
        start = time.perf_counter()
        for data in pieces:
            parser.feed(data)
        parser.close()
        best = min(best, time.perf_counter() - start)
        if not check(parser):
            raise SystemExit("wrong result: the benchmark is broken")
    return best


def time_decoder(body: bytes, piece: int, check: Callable[[int], bool], repeat: int) -> float:
    pieces = pieces_of(body, piece)
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        decoder = SSEDecoder(max_event_bytes=len(body) + MB)
        start = time.perf_counter()
        n = 0
        for data in pieces:
            for message in decoder.feed(data):
                n += len(message.data)
        for message in decoder.close():
            n += len(message.data)
        best = min(best, time.perf_counter() - start)
        if not check(n):
            raise SystemExit("wrong result: the benchmark is broken")
    return best


def time_plain_sseclient(body: bytes, piece: int, repeat: int) -> float:
    from sseclient import SSEClient

    pieces = pieces_of(body, piece)
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for _event in SSEClient(iter(pieces)).events():
            pass
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--repeat", type=int, default=3, help="runs per cell (best is kept)")
    cli.add_argument("--quick", action="store_true", help="a tenth of the sizes, one run")
    cli.add_argument(
        "--baseline", action="store_true", help="also plain sseclient-py on a giant line"
    )
    args = cli.parse_args()
    scale = 0.1 if args.quick else 1.0
    repeat = 1 if args.quick else args.repeat
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(f"  {row.case:<13} {row.size:>24}  {row.piece:>6}  {row.seconds:8.3f} s", flush=True)

    print(f"chatstream core, Python {sys.version.split()[0]}, best of {repeat}")
    for size in (10 * MB * scale, 20 * MB * scale):
        body, check = giant_line(int(size))
        for piece in (128, 8 * KIB, 64 * KIB):
            label = f"{piece}B" if piece < KIB else f"{piece // KIB}KiB"
            report(Row("giant line", size / MB, label, time_parser(body, piece, check, repeat)))
    for size in (2 * MB * scale, 4 * MB * scale):
        lines = int(size) // len(b"data: x\n")
        body = b"data: x\n" * lines + b"\n"
        expected = 2 * lines - 1  # "x" per line, joined with LF
        seconds = time_decoder(body, 64 * KIB, expected.__eq__, repeat)
        report(Row("many lines", size / MB, "64KiB", seconds))
    for size, deltas in ((10 * MB * scale, 40_000 * scale), (20 * MB * scale, 80_000 * scale)):
        body, check = big_argument(int(size), int(deltas))
        report(Row("big argument", size / MB, "64KiB", time_parser(body, 64 * KIB, check, repeat)))
    for n in (int(20_000 * scale), int(40_000 * scale)):
        body, check, n_chunks = mixed(n)
        seconds = time_parser(body, 64 * KIB, check, repeat)
        report(Row("mixed", len(body) / MB, "64KiB", seconds, n_chunks))
    if args.baseline:
        # Plain sseclient-py is quadratic on both: smaller sizes, and one run each.
        for size in (1 * MB * scale, 2 * MB * scale):
            body, _ = giant_line(int(size))
            seconds = time_plain_sseclient(body, 128, 1)
            report(Row("sseclient-py giant line", size / MB, "128B", seconds))
        for size in (0.25 * MB * scale, 0.5 * MB * scale):
            body = b"data: x\n" * (int(size) // 8) + b"\n"
            seconds = time_plain_sseclient(body, 64 * KIB, 1)
            report(Row("sseclient-py many lines", size / MB, "64KiB", seconds))

    print()
    print("| case | size | piece | time | MB/s | µs/chunk | growth when the size doubles |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        smaller = next(
            (
                r
                for r in rows
                if r.case == row.case and r.piece == row.piece and r.size_mb < row.size_mb
            ),
            None,
        )
        growth = f"{row.seconds / smaller.seconds:.2f}" if smaller else ""
        per_chunk = f"{row.seconds / row.chunks * 1e6:.1f}" if row.chunks else ""
        print(
            f"| {row.case} | {row.size} | {row.piece} | {row.seconds:.3f} s "
            f"| {row.size_mb / row.seconds:.0f} | {per_chunk} | {growth} |"
        )


if __name__ == "__main__":
    main()

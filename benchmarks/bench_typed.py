#!/usr/bin/env python3
"""Typed output's cost per chunk against ``partial_json`` alone.

Run by hand from the project root (pytest never collects it)::

    .venv/bin/python benchmarks/bench_typed.py [--elements N] [--repeat R]

One JSON content answer, a list of ``N`` small objects streamed in pieces of 4
characters (the size of a token's text), through :class:`~chatstream.StreamParser`
alone (no sockets, no threads), the chunks parsed before the clock starts, best of
``--repeat`` runs:

* ``partial_json``: ``response_format`` ``json_object`` with ``partial_json=True``
  (views of the JSON, nothing validated);
* ``typed (schema)``: ``output=`` a JSON Schema (the built-in validator);
* ``typed (pydantic)``: ``output=list[Item]`` (pydantic; skipped when not installed).

Each case reports µs per chunk; twice the elements should cost about twice the time
(linear), which the ``x2`` column shows.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from chatstream import StreamOptions, StreamParser
from chatstream.core.typed import for_request

SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["name", "qty"],
        "additionalProperties": False,
    },
}


def chunks(elements: int, wrapped: bool) -> list[dict[str, Any]]:
    items = [{"name": f"item number {i}", "qty": i} for i in range(elements)]
    text = json.dumps({"elements": items} if wrapped else items)
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    out = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


def run(make: Any, body: list[dict[str, Any]]) -> float:
    parser = make()
    feed = parser.accumulator.feed
    start = time.perf_counter()
    for chunk in body:
        feed(chunk)
    parser.accumulator.finish(done=True)
    elapsed = time.perf_counter() - start
    assert parser.error is None, parser.error
    return elapsed


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--elements", type=int, default=20_000)
    args.add_argument("--repeat", type=int, default=3)
    options = args.parse_args()
    cases: list[tuple[str, Any, bool]] = [
        (
            "partial_json",
            lambda: StreamParser(
                options=StreamOptions(partial_json=True),
                request={"response_format": {"type": "json_object"}},
            ),
            False,
        ),
        ("typed (schema)", lambda: StreamParser(output=for_request(SCHEMA, {})[0]), True),
    ]
    try:
        from pydantic import BaseModel

        class Item(BaseModel):
            name: str
            qty: int

        kind = for_request(list[Item], {})[0]
        cases.append(("typed (pydantic)", lambda: StreamParser(output=kind), True))
    except ImportError:
        print("pydantic not installed: its case is skipped")
    print(f"{'case':18} {'chunks':>8} {'µs/chunk':>9} {'x2 time':>8}")
    for name, make, wrapped in cases:
        times = []
        for size in (options.elements, 2 * options.elements):
            body = chunks(size, wrapped)
            best = min(run(make, body) for _ in range(options.repeat))
            times.append((len(body), best))
        (count, first), (_, second) = times
        print(f"{name:18} {count:8} {first / count * 1e6:9.2f} {second / first:8.2f}")


if __name__ == "__main__":
    main()

"""One huge event beside many paced streams: how late the others' events arrive.

::

    python benchmarks/paced_huge.py                     # 100 streams, 15 MB, 3 repetitions
    python benchmarks/paced_huge.py --streams 100 --size 15000000 --repeat 5

N streams of ``content-200`` (one event every 20 ms, so that they last 4 s, from
``paced_server.py``, released together as in ``paced.py``) run with callbacks, and beside
them one more stream that, 0.2 s after their release, is sent a single event of
``--size`` bytes made of short ``data:`` lines (a chunk whose JSON has an empty ``data:``
line between two tokens, again and again). Each row runs in a fresh client process
against a fresh server process, with coalescing (the default) and with
``Client(coalescing=None)``.

Measured: for every text event of the paced streams, how late it arrived, against the
instant the server was due to send it (its release plus its index times the interval);
the median, the 99th percentile and the most over every event of the row; when the huge
stream ended; whether every stream read the right text. The target (issue 20, item 8):
the 99th percentile with coalescing at most twice the one without.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gen
from paced import HERE, REQUEST, STREAM, _pct, _release_info, _url, run_row
from paced_server import HUGE_TEXT, raise_open_files_limit

SIZE = 15_000_000
DELAY_MS = 200
INTERVAL_MS = 20
MODES = ("coalescing", "off")


def _client(mode: str, base: str, **options: Any) -> Any:
    import chatstream

    if mode == "off":
        options["coalescing"] = None
    return chatstream.Client(base, timeouts=chatstream.Timeouts(idle=600), **options)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One row in this fresh process: a warm-up stream, then N paced streams and the huge
    one at once."""
    import chatstream
    from chatstream import OutputTextDelta

    raise_open_files_limit()
    mode, n, port, size = spec["mode"], spec["n"], spec["port"], spec["size"]
    interval_ns = spec["interval_us"] * 1000
    truth = gen.expected(STREAM)["content"]
    clock = time.perf_counter_ns
    _client(mode, _url(port, "warm", 1, 100)).stream(REQUEST).result(timeout=30)

    arrivals: list[list[int]] = [[] for _ in range(n)]
    texts: list[str | None] = [None] * n
    done = threading.Semaphore(0)

    def handlers(i: int) -> tuple[Any, Any]:
        times = arrivals[i]

        def on_event(event: Any) -> None:
            if type(event) is OutputTextDelta:
                times.append(clock())

        def on_end(response: Any) -> None:
            texts[i] = None if response.error is not None else response.content
            done.release()

        return on_event, on_end

    huge_url = f"http://127.0.0.1:{port}/huge/run/{size}/{DELAY_MS}/v1"
    limits = chatstream.Limits(max_event_bytes=size + (1 << 20))
    huge = _client(mode, huge_url, limits=limits).stream(REQUEST)
    client = _client(mode, _url(port, "run", n, spec["interval_us"]))
    streams = []
    for i in range(n):
        on_event, on_end = handlers(i)
        streams.append(client.stream(REQUEST, on_event=on_event, on_end=on_end))
    deadline = time.monotonic() + spec["budget_s"]
    finished = 0
    while finished < n and done.acquire(timeout=max(0.0, deadline - time.monotonic())):
        finished += 1
    try:
        huge_text: str | None = huge.result(timeout=max(0.0, deadline - time.monotonic())).content
    except Exception as exc:  # reported, not raised: the row shows it
        huge_text = f"{type(exc).__name__}: {exc}"
    huge_end = clock()
    release = _release_info(port, "run").get("release_ns") or 0
    # The k-th text delta comes from the server's event k + 1 (event 0 has the role only).
    late = sorted(
        (t - (release + (k + 1) * interval_ns)) / 1e6
        for times in arrivals
        for k, t in enumerate(times)
    )
    return {
        "mode": mode,
        "n": n,
        "size": size,
        "finished": finished,
        "timed_out": finished < n,
        "ok": sum(text == truth for text in texts),
        "huge_ok": huge_text == HUGE_TEXT,
        "huge_text": None if huge_text == HUGE_TEXT else (huge_text or "")[:80],
        "huge_end_s": (huge_end - release) / 1e9 if release else None,
        "late_ms_p50": _pct(late, 0.5),
        "late_ms_p99": _pct(late, 0.99),
        "late_ms_max": late[-1] if late else None,
    }


HEADER = ["N", "coalescing", "size MB", "late p50 ms", "late p99 ms", "late max ms"]
HEADER += ["huge end s", "others", "correct"]


def render(results: list[dict[str, Any]], repeat: int, interval_ms: float) -> str:
    from run import table

    rows = []
    p99: dict[str, float] = {}
    for mode in MODES:
        runs = [r for r in results if r["mode"] == mode]
        good = [r for r in runs if "error" not in r and not r["timed_out"]]
        if not runs:
            continue

        def med(key: str, rs: list[dict[str, Any]] = good) -> str:
            values = [r[key] for r in rs if r.get(key) is not None]
            return "-" if not values else f"{statistics.median(values):.1f}"

        values = [r["late_ms_p99"] for r in good if r.get("late_ms_p99") is not None]
        if values:
            p99[mode] = statistics.median(values)
            spread = f" ({min(values):.0f}-{max(values):.0f})" if len(values) > 1 else ""
        checks = [
            f"{r['ok']}/{r['n']}{'' if r['huge_ok'] else ' huge: ' + str(r['huge_text'])}"
            for r in runs
            if "error" not in r
        ]
        errors = sorted({r["error"][:40] for r in runs if "error" in r})
        rows.append(
            [
                str(runs[0]["n"]),
                mode,
                f"{runs[0]['size'] / 1e6:g}",
                med("late_ms_p50"),
                med("late_ms_p99") + (spread if values else ""),
                med("late_ms_max"),
                med("huge_end_s"),
                f"{min(r['others'] for r in runs):.1f}-{max(r['others'] for r in runs):.1f}",
                ", ".join(checks + errors),
            ]
        )
    title = (
        f"One huge event beside N paced streams ({STREAM}, one event every "
        f"{interval_ms:g} ms, callbacks), a fresh process per row and repetition, "
        f"medians of {repeat}: how late the paced streams' text events arrived against the "
        "server's schedule; huge end: when the huge stream ended, from the release"
    )
    text = table(title, HEADER, rows)
    if "coalescing" in p99 and "off" in p99:
        ratio = p99["coalescing"] / p99["off"]
        met = "met" if ratio <= 2.0 else "NOT MET"
        goal = [["p99 lateness with coalescing <= 2x without", f"{ratio:.2f}x", met]]
        text += "\n\n" + table("Target (issue 20, item 8)", ["target", "measured", ""], goal)
    return text


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        sys.stdout.flush()
        os._exit(0)  # streams stopped at the time limit may still be running
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=100, help="paced streams (N)")
    parser.add_argument("--size", type=int, default=SIZE, help="bytes of the huge event")
    parser.add_argument("--interval-ms", type=float, default=INTERVAL_MS, help="the pacing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per row")
    parser.add_argument("--json", help="write every run's measurements to this file")
    args = parser.parse_args(argv)
    results = []
    for rep in range(args.repeat):
        for mode in MODES:
            result = run_row(
                mode,
                args.streams,
                args.timeout,
                script=HERE / "paced_huge.py",
                size=args.size,
                interval_us=round(args.interval_ms * 1000),
            )
            result["rep"] = rep
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(render(results, args.repeat, args.interval_ms))


if __name__ == "__main__":
    main()

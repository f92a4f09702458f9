#!/usr/bin/env python3
"""Timings of the live views: partial JSON on a huge tool call, and the default path.

Run by hand from the project root (pytest never collects it)::

    .venv/bin/python benchmarks/bench_views.py                # views, and the default path
    .venv/bin/python benchmarks/bench_views.py --before main  # also the default path of
                                                              # another revision, same run

Cases, through :class:`~chatstream.StreamParser` alone (no sockets, no threads), each the
best of ``--repeat`` runs, bodies built before the clock starts and every result checked:

* ``views``: one tool call whose arguments are a 10 MB JSON string (and 20 MB, to show
  the growth), in 40 000 (80 000) fragments, with ``partial_json=True``; the check also
  reads the last view;
* ``default``: the same stream, and the 20 000-chunk mixed stream of ``bench_core.py``,
  with no option. ``--before REV`` times the same two with the chatstream of git
  revision ``REV`` (its ``chatstream/`` package, extracted to a temporary directory and
  run in a fresh process), alternating runs, so both come from one run on one machine.

The targets (issue 12): views at 10 MB under 1.0 s, twice the size at most 2.3 times the
time; the default path no slower than before.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000


def _import(src: Path) -> Any:
    """chatstream from ``src``, then bench_core's stream builders on top of it."""
    sys.path.insert(0, str(src))
    import chatstream

    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import bench_core

    assert Path(chatstream.__file__).resolve().is_relative_to(src.resolve())
    return bench_core


def time_case(src: Path, case: str, size: int, repeat: int, views: bool) -> tuple[float, float]:
    """The best wall-clock time and the best CPU time of the process, in seconds (on a
    shared machine the CPU time is the steadier: it leaves out the time other work had
    the processor)."""
    bench_core = _import(src)
    import chatstream

    if case == "mixed":
        body, check, _ = bench_core.mixed(size)
    else:
        body, check = bench_core.big_argument(size, size // 250)
    pieces = bench_core.pieces_of(body, 64 * 1024)
    largest = len(body) + MB
    if hasattr(chatstream, "StreamOptions"):
        arguments: dict[str, Any] = {
            "options": chatstream.StreamOptions(partial_json=views),
            "limits": chatstream.Limits(max_event_bytes=largest),
        }
    else:  # a revision before StreamOptions and Limits (--before)
        arguments = {"partial_json": views, "max_event_bytes": largest}
    best = cpu = float("inf")
    for _ in range(repeat):
        gc.collect()
        parser = chatstream.StreamParser(**arguments)
        last: Any = None
        start, start_cpu = time.perf_counter(), time.process_time()
        for data in pieces:
            for event in parser.feed(data):
                last = getattr(event, "parsed", last)
        parser.close()
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
        if not check(parser):
            raise SystemExit("wrong result: the benchmark is broken")
        if views and not (isinstance(last, dict) and last.get("path") == "big.txt"):
            raise SystemExit("no view: the benchmark is broken")
    return best, cpu


def in_process(src: Path, case: str, size: int, repeat: int, views: bool) -> tuple[float, float]:
    """One measurement in a fresh interpreter (so two versions never share a process)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import bench_views as b; "
        "print(*b.time_case(b.Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), "
        "int(sys.argv[5]), sys.argv[6] == '1'))"
    )
    here = str(Path(__file__).resolve().parent)
    args = [sys.executable, "-c", code, here, str(src), case, str(size), str(repeat)]
    out = subprocess.run([*args, "1" if views else "0"], check=True, capture_output=True)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def extract(revision: str, into: Path) -> Path:
    """The ``chatstream`` package of a git revision, written under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "chatstream"],
        check=True,
        capture_output=True,
    ).stdout
    tar = into / "src.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return into


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--repeat", type=int, default=3, help="runs per cell (best is kept)")
    cli.add_argument("--rounds", type=int, default=3, help="alternating rounds with --before")
    cli.add_argument("--before", metavar="REV", help="also time the default path of REV")
    args = cli.parse_args()
    print(f"chatstream live views, Python {sys.version.split()[0]}, best of {args.repeat}")

    views: dict[int, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for size in (10 * MB, 20 * MB):
            wall, cpu = in_process(ROOT, "argument", size, args.repeat, True)
            old = views.get(size, (float("inf"), float("inf")))
            views[size] = (min(old[0], wall), min(old[1], cpu))
    for size, (wall, cpu) in views.items():
        print(f"  views    big argument {size // MB:>3} MB  wall {wall:6.3f} s  cpu {cpu:6.3f} s")
    (w10, c10), (w20, c20) = views[10 * MB], views[20 * MB]
    print(
        f"  views: 10 MB in {w10:.3f} s wall, {c10:.3f} s cpu (target < 1.0); "
        f"x2 size: {w20 / w10:.2f}x wall, {c20 / c10:.2f}x cpu (target <= 2.3)"
    )

    cases = [("argument", 10 * MB, "big argument 10 MB"), ("mixed", 20_000, "mixed 20000")]
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"now": ROOT}
        if args.before:
            sources[args.before] = extract(args.before, Path(tmp))
        best: dict[tuple[str, str], tuple[float, float]] = {}
        for _ in range(args.rounds):
            for case, size, _label in cases:
                for name, src in sources.items():
                    wall, cpu = in_process(src, case, size, args.repeat, False)
                    old = best.get((name, case), (float("inf"), float("inf")))
                    best[(name, case)] = (min(old[0], wall), min(old[1], cpu))
        for case, _size, label in cases:
            line = f"  default  {label:<20}"
            for name in sources:
                wall, cpu = best[(name, case)]
                line += f"  {name}: wall {wall:.3f} s cpu {cpu:.3f} s"
            if args.before:
                now, before = best[("now", case)], best[(args.before, case)]
                line += f"  now/before: {now[0] / before[0]:.2f} wall, {now[1] / before[1]:.2f} cpu"
            print(line, flush=True)
    print(json.dumps({"views": {str(k): v for k, v in views.items()}}))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()

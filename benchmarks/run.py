"""chatstream's benchmark suite: every client against a loopback server, one table.

::

    python benchmarks/run.py               # everything (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick       # smaller and fewer runs (about 2 minutes)
    python benchmarks/run.py --only throughput,latency --adapters floor,chatstream
    python benchmarks/run.py profile       # where chatstream's time goes (cProfile)

Sections (``--only``): ``throughput`` (a mixed stream, chunked, close-delimited and gzip,
each adapter run in turn, medians), ``latency`` (one event every 5 ms; from the server's
send to the event leaving the client), ``scale`` (one 10 MB event, one tool call of 10 MB
over 40 000 deltas, and both doubled; a fresh process per run), ``memory`` (a 200 000-chunk
stream read slowly; peak RSS growth against what chatstream holds), ``concurrency``
(200 streams at once in one process) and ``paced`` (100, 500 and 1000 streams at once, one
event every 5 ms each, a fresh process per row: see ``paced.py``).

The server (``server.py``) runs in its own process; streams come from ``gen.py`` and are
cached in ``benchmarks/streams/``. Every adapter's result is checked against the
generator's ground truth. Ratios are to the ``floor`` adapter measured in the same run.
The ``openai`` adapters run when the SDK is installed (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import http.client
import itertools
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import adapters
import gen
import serving as _serving

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
_tags = itertools.count()


# --- plumbing ------------------------------------------------------------------------------


def serving() -> contextlib.AbstractContextManager[int]:
    """Start server.py in its own process; yield its port."""
    return _serving.serving("server.py")


def url(port: int, stream: str, framing: str, interval_us: int = 0) -> str:
    return f"http://127.0.0.1:{port}/{stream}/{framing}/{interval_us}/t{next(_tags)}/v1"


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def sent_times(port: int, base_url: str) -> list[int]:
    """When the server sent each event of the request made to ``base_url``."""
    times: list[int] = json.loads(_get(port, f"/sent/{base_url.split('/')[-2]}"))
    return times


def prepare(port: int, stream: str, *framings: str) -> None:
    """Generate ``stream`` and have the server build its bodies before any measurement."""
    gen.ensure(stream)
    for framing in framings:
        _get(port, f"/prepare/{stream}/{framing}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def table(title: str, header: Sequence[str], rows: list[Sequence[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join(
            [first] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = textwrap.fill(title, 96)
    return "\n".join([title, rule, line(cells[0]), rule, *map(line, cells[1:]), rule])


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


class Report:
    def __init__(self, json_path: str | None) -> None:
        self.json_path = json_path
        self.sections: list[str] = []
        self.data: dict[str, Any] = {}
        self.targets: list[tuple[str, str, bool]] = []

    def add(self, text: str, key: str, data: Any) -> None:
        print("\n" + text, flush=True)
        self.sections.append(text)
        self.data[key] = data

    def target(self, name: str, measured: str, met: bool) -> None:
        self.targets.append((name, measured, met))

    def finish(self, info: dict[str, Any]) -> None:
        if self.targets:
            rows = [(n, m, "met" if ok else "NOT MET") for n, m, ok in self.targets]
            self.add(table("Targets (issue 5)", ("target", "measured", ""), rows), "targets", rows)
        if self.json_path:
            self.data["info"] = info
            Path(self.json_path).write_text(json.dumps(self.data, indent=1), encoding="utf-8")


# --- sections ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    packages = {}
    names = ("chatstream", "requests", "urllib3", "sseclient-py", "openai", "httpx2", "pydantic")
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "packages": packages,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def throughput(args: argparse.Namespace, port: int, report: Report) -> None:
    stream = f"mixed-{args.chunks}"
    prepare(port, stream, "chunked", "close", "gzip")
    truth = gen.expected(stream)
    n = truth["n_chunks"]
    names = args.adapter_names
    results: dict[str, dict[str, Any]] = {}
    for framing in ("chunked", "close", "gzip"):
        base = url(port, stream, framing)
        checks = {a: adapters.check(adapters.ADAPTERS[a](base), truth) for a in names}
        times: dict[str, list[float]] = {a: [] for a in names}
        for _ in range(args.repeat):
            for a in names:  # alternating: A B C A B C ...
                run = functools.partial(adapters.ADAPTERS[a], base)
                times[a].append(timed(run)[0])
        results[framing] = {
            a: {"median_s": statistics.median(t), "times": t, "check": checks[a]}
            for a, t in times.items()
        }
    rows = []
    for a in names:
        row: list[Any] = [a]
        for per in results.values():
            floor = per[adapters.FLOOR]["median_s"]
            row += [f"{per[a]['median_s'] / n * 1e6:.2f}", f"{per[a]['median_s'] / floor:.2f}"]
        row.append(", ".join(sorted({per[a]["check"] for per in results.values()})))
        rows.append(row)
    header = ["adapter"]
    for framing in results:
        header += [f"{framing} us/chunk", "x floor"]
    title = (
        f"Throughput: {stream} ({n} chunks, {gen.ensure(stream).stat().st_size / 1e6:.1f} MB), "
        f"median of {args.repeat} alternating runs per adapter"
    )
    report.add(table(title, [*header, "check"], rows), "throughput", results)
    if "chatstream" in names:
        for framing in ("chunked", "close"):
            per = results[framing]
            cs = per["chatstream"]["median_s"]
            ratio = cs / per[adapters.FLOOR]["median_s"]
            report.target(f"throughput {framing} <= 2.0x floor", f"{ratio:.2f}x", ratio <= 2.0)
            for peer, need in (("openai_create", 6.0), ("openai_stream", 12.0)):
                if peer in per:
                    faster = per[peer]["median_s"] / cs
                    name = f"{framing}: >= {need:g}x faster than {peer}"
                    report.target(name, f"{faster:.1f}x", faster >= need)
        ok = all(per[a]["check"] == "ok" for per in results.values() for a in names)
        report.target("throughput: every result correct", "all ok" if ok else "mismatch", ok)


def _text_events(stream: str) -> list[int]:
    """Indices of the events (in wire order) that carry text."""
    indices = []
    events = gen.ensure(stream).read_bytes().split(b"\n\n")
    for i, event in enumerate(e for e in events if e):
        if event.startswith(b"data: {"):
            choices = json.loads(event[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                indices.append(i)
    return indices


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(args: argparse.Namespace, port: int, report: Report) -> None:
    stream = f"content-{args.events}"
    prepare(port, stream, "chunked", "close", "gzip")
    truth = gen.expected(stream)
    texts = _text_events(stream)
    interval_us = 5000
    rows, data = [], {}
    for framing in ("chunked", "close", "gzip"):
        lat: dict[str, list[float]] = {a: [] for a in args.adapter_names}
        checks: dict[str, set[str]] = {a: set() for a in args.adapter_names}
        for a in args.adapter_names:
            adapters.ADAPTERS[a](url(port, stream, framing))  # warm-up, unpaced
        for _ in range(args.latency_repeat):
            for a in args.adapter_names:
                base = url(port, stream, framing, interval_us)
                stamps: list[int] = []

                def on_text(_text: str, stamps: list[int] = stamps) -> None:
                    stamps.append(time.perf_counter_ns())

                gc.collect()
                checks[a].add(adapters.check(adapters.ADAPTERS[a](base, on_text), truth))
                sent = sent_times(port, base)
                if len(stamps) != len(texts):
                    checks[a].add(f"{len(stamps)} of {len(texts)} text events")
                lat[a] += [(t - sent[i]) / 1e6 for t, i in zip(stamps, texts, strict=False)]
        for a, values in lat.items():
            p50, p90, p99 = (pct(values, q) for q in (0.5, 0.9, 0.99))
            late = sum(v > interval_us / 2000 for v in values) / len(values)
            check = ", ".join(sorted(checks[a]))
            rows.append(
                [framing, a, f"{p50:.3f}", f"{p90:.3f}", f"{p99:.3f}", f"{max(values):.3f}"]
            )
            rows[-1] += [f"{late:.0%}", check]
            data[f"{framing}/{a}"] = {"p50": p50, "p90": p90, "p99": p99, "max": max(values)}
            if a == "chatstream":
                report.target(f"latency p99 < 1 ms, {framing}", f"{p99:.3f} ms", p99 < 1.0)
    title = (
        f"Latency: {stream}, one event every {interval_us / 1000:g} ms, "
        f"{args.latency_repeat} run(s) per adapter; ms from the server's send to the client's "
        "hand-over (held: later than half an interval)"
    )
    header = ["framing", "adapter", "p50", "p90", "p99", "max", "held", "check"]
    report.add(table(title, header, rows), "latency", data)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one adapter in this (fresh) process; measure time, or memory too."""
    fn = adapters.ADAPTERS[spec["adapter"]]
    fn(spec["warmup_url"])  # imports, pools and lazily built models are ready
    gc.collect()
    if spec.get("memory"):
        return _memory_child(spec)
    out: dict[str, Any] = {"times": []}
    truth = gen.expected(spec["stream"])
    deadline = time.perf_counter() + spec["budget_s"]
    for _ in range(spec["repeat"]):
        took, result = timed(lambda: fn(spec["url"]))
        out["times"].append(took)
        out["check"] = adapters.check(result, truth)
        if time.perf_counter() > deadline:
            break
    return out


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _deep_size(root: object) -> int:
    """Bytes held by ``root`` and everything it references (classes and modules aside)."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    skip = (type, type(sys), type(_deep_size), type(len))
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack += obj.keys()
            stack += obj.values()
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += obj
        elif not isinstance(obj, (str, bytes, int, float, bool)):
            stack += gc.get_referents(obj)
    return total


def _memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    import chatstream

    base_rss = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # VmHWM := VmRSS, so the peak below is this run's
    truth = gen.expected(spec["stream"])
    mode = spec["mode"]
    start = time.perf_counter()
    out: dict[str, Any] = {}
    if mode == "floor":
        result = adapters.ADAPTERS["floor"](spec["url"])
        out["held"] = out["queue_bytes"] = 0
    else:
        client = chatstream.Client(spec["url"])
        events = 0
        if mode == "iterate":
            stream = client.stream(
                adapters.REQUEST, options=chatstream.StreamOptions(queue_size=spec["queue_size"])
            )
            deepest = 0
            event_bytes = 0
            with stream:
                for events, event in enumerate(stream, 1):
                    if events % 100 == 0:
                        deepest = max(deepest, stream._worker.queue.qsize())
                        time.sleep(spec["pause_s"])  # the slow consumer
                    if events <= 1000:
                        event_bytes += _deep_size(event)
                response = stream.result()
            out["max_queued"] = deepest
            out["queue_bytes"] = spec["queue_size"] * event_bytes // min(events, 1000)
        else:

            def count(event: object) -> None:
                nonlocal events
                events += 1

            stream = client.stream(adapters.REQUEST, on_event=count)
            response = stream.result()
            out["queue_bytes"] = 0
        out["events"] = events
    out["time_s"] = time.perf_counter() - start
    out["growth"] = _status("VmHWM") - base_rss  # before _deep_size() allocates its own
    if mode == "floor":
        out["check"] = adapters.check(result, truth)
    else:
        out["check"] = adapters.check(adapters._outcome(response), truth)
        out["held"] = _deep_size(stream._worker.parser)  # the accumulated state, the response
    return out


def run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    cmd = [sys.executable, str(HERE / "run.py"), "child", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def scale(args: argparse.Namespace, port: int, report: Report) -> None:
    warm = "content-50"
    prepare(port, warm, "chunked")
    kinds = [
        ("one event", [f"giant-{mb:g}" for mb in args.sizes]),
        ("tool call", [f"bigarg-{mb:g}-{int(mb * 4000)}" for mb in args.sizes]),
    ]
    rows, data = [], {}
    for label, streams in kinds:
        for name in streams:
            prepare(port, name, "chunked")
        for a in args.scale_adapter_names:
            medians: list[float | None] = []
            cells, checks = [], set()
            for name in streams:
                spec = {
                    "adapter": a,
                    "url": url(port, name, "chunked"),
                    "warmup_url": url(port, warm, "chunked"),
                    "stream": name,
                    "repeat": args.scale_repeat,
                    "budget_s": args.scale_timeout / 4,
                }
                if medians and medians[-1] is None:
                    medians.append(None)
                    cells.append("skipped")
                    continue
                done = run_child(spec, args.scale_timeout)
                if done is None or "error" in done:
                    medians.append(None)
                    cells.append(f"> {args.scale_timeout:g}" if done is None else "error")
                    checks.add("too slow" if done is None else done["error"][:50])
                    continue
                medians.append(statistics.median(done["times"]))
                cells.append(f"{medians[-1]:.3f}")
                checks.add(done["check"])
                data[f"{name}/{a}"] = done
            growth = [
                f"{b / a_:.2f}" if a_ and b else "-"
                for a_, b in itertools.pairwise(medians)  # type: ignore[arg-type]
            ]
            rows.append([label, a, *cells, *growth, ", ".join(sorted(checks))])
            if a == "chatstream":
                first = medians[args.sizes.index(10)] if 10 in args.sizes else None
                report.target(
                    f"{label} of 10 MB < 1 s",
                    "-" if first is None else f"{first:.3f} s",
                    first is not None and first < 1.0,
                )
                for (s1, t1), (s2, t2) in itertools.pairwise(zip(args.sizes, medians, strict=True)):
                    ok = t1 is not None and t2 is not None and t2 / t1 <= 2.3
                    shown = "-" if not (t1 and t2) else f"{t2 / t1:.2f}x"
                    report.target(f"{label}: {s1:g} -> {s2:g} MB <= 2.3x time", shown, ok)
    sizes = [f"{mb:g} MB s" for mb in args.sizes]
    grows = [f"x {b / a:g}" for a, b in itertools.pairwise(args.sizes)]
    title = (
        f"Size: chunked, a fresh process per run, median of up to {args.scale_repeat}; "
        f"tool call: 4000 deltas per MB; '>' = stopped after {args.scale_timeout:g} s"
    )
    report.add(table(title, ["stream", "adapter", *sizes, *grows, "check"], rows), "scale", data)


def memory(args: argparse.Namespace, port: int, report: Report) -> None:
    """Peak RSS growth while reading a long stream. The floor keeps nothing but the pieces
    of the result (lists of strings, joined at the end), so its growth is what the
    accumulated result itself costs; chatstream may add the queue's worth, no more."""
    stream = f"mixed-{args.memory_chunks}"
    prepare(port, stream, "chunked")
    prepare(port, "content-50", "chunked")
    rows, data = [], {}
    modes = [
        ("floor", "floor (the result alone)", 0.0),
        ("iterate", "chatstream, slow iterator", args.pause_ms / 1000),
        ("callbacks", "chatstream, callbacks only", 0.0),
    ]
    floor = None
    for mode, label, pause in modes:
        spec = {
            "adapter": "floor" if mode == "floor" else "chatstream",
            "memory": True,
            "mode": mode,
            "url": url(port, stream, "chunked"),
            "warmup_url": url(port, "content-50", "chunked"),
            "stream": stream,
            "queue_size": args.queue_size,
            "pause_s": pause,
        }
        done = run_child(spec, 600)
        if done is None or "error" in done:
            failed = "failed" if done is None else done["error"]
            rows.append([label, "-", "-", "-", "-", "-", failed])
            continue
        data[mode] = done
        growth = done["growth"]
        if mode == "floor":
            floor = growth
        over = None if floor is None else growth - floor
        rows.append(
            [
                label,
                f"{growth / MiB:.1f}",
                "-" if over is None or mode == "floor" else f"{over / MiB:+.1f}",
                f"{done['held'] / MiB:.1f}" if mode != "floor" else "-",
                f"{done['max_queued']} ({done['queue_bytes'] / MiB:.2f} MiB)"
                if mode == "iterate"
                else "-",
                f"{done['time_s']:.2f}",
                done["check"],
            ]
        )
        if mode != "floor":
            allowed = done["queue_bytes"] + 2 * MiB  # the queue, and run-to-run noise
            ok = over is not None and over <= allowed and done["check"] == "ok"
            shown = "-" if over is None else f"{over / MiB:+.1f} MiB"
            bound = "queue's worth" if mode == "iterate" else "nothing (flat)"
            report.target(f"memory, {label}: adds <= {bound} + 2 MiB", shown, ok)
    title = (
        f"Memory: {stream}, chunked, a fresh process per row; peak RSS growth (MiB), and "
        "beyond the floor's; 'held': what chatstream still holds at the end; the slow "
        f"iterator sleeps {args.pause_ms:g} ms every 100 events (queue_size "
        f"{args.queue_size})"
    )
    header = ["reader", "growth", "vs floor", "held", "max queued", "time s", "check"]
    report.add(table(title, header, rows), "memory", data)


def concurrency(args: argparse.Namespace, port: int, report: Report) -> None:
    stream = f"mixed-{args.concurrency_chunks}"
    prepare(port, stream, "chunked")
    truth = gen.expected(stream)
    n = truth["n_chunks"]
    fn = adapters.ADAPTERS["chatstream"]
    base = url(port, stream, "chunked")
    fn(base)
    single = statistics.median(timed(lambda: fn(base))[0] for _ in range(args.repeat * 3))
    rows = []
    data: dict[str, Any] = {"single_s": single}
    for streams in args.streams:
        checks: list[str] = []
        barrier = threading.Barrier(streams + 1)

        def one(barrier: threading.Barrier = barrier, checks: list[str] = checks) -> None:
            barrier.wait()
            checks.append(adapters.check(fn(base), truth))

        threads = [threading.Thread(target=one) for _ in range(streams)]
        for t in threads:
            t.start()
        gc.collect()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        per = wall / (streams * n)
        ok = len(checks) == streams and all(c == "ok" for c in checks)
        correct = f"{checks.count('ok')} of {streams} ok"
        rows.append(
            [
                streams,
                n,
                f"{single / n * 1e6:.2f}",
                f"{per * 1e6:.2f}",
                f"{per / (single / n):.2f}",
                f"{wall:.2f}",
                correct,
            ]
        )
        data[str(streams)] = {"wall_s": wall, "per_chunk_s": per, "ok": ok}
        if streams == max(args.streams):
            ratio = per / (single / n)
            report.target(f"{streams} concurrent streams: all correct", correct, ok)
            report.target(
                f"{streams} concurrent: per chunk <= 1.5x single", f"{ratio:.2f}x", ratio <= 1.5
            )
    title = (
        f"Concurrency: chatstream iterators on threads, {stream} each, chunked; "
        "per-chunk cost = wall time / all chunks"
    )
    header = [
        "streams",
        "chunks each",
        "single us/chunk",
        "concurrent us/chunk",
        "ratio",
        "wall s",
        "check",
    ]
    report.add(table(title, header, rows), "concurrency", data)


def paced(args: argparse.Namespace, port: int, report: Report) -> None:
    """N streams at once, each paced like a model (see paced.py): fresh processes, and a
    server of its own, per row."""
    import paced as paced_module

    streams = [100] if args.quick else [100, 500, 1000]
    modes = [
        m
        for m in paced_module.available_modes()
        if m != "openai" or "openai_create" in args.adapter_names
    ]
    # Three runs even when quick (N = 100 only, a few seconds each): one paced row varies
    # by a third between runs, the first of a series most.
    text, results = paced_module.measure(streams, modes, 3, 90.0, None)
    report.add(text, "paced", results)


# --- profiling -------------------------------------------------------------------------------


def profile(args: argparse.Namespace, port: int) -> None:
    """cProfile of chatstream's worker thread and of the iterating thread."""
    from chatstream._shell import worker as worker_module

    worker_profile = cProfile.Profile()
    run = worker_module.Worker._run

    def profiled_run(self: Any) -> None:
        worker_profile.enable()
        try:
            run(self)
        finally:
            worker_profile.disable()

    stream = f"mixed-{args.chunks}"
    framing = args.profile_framing
    prepare(port, stream, framing)
    base = url(port, stream, framing)
    adapters.ADAPTERS["chatstream"](base)
    worker_module.Worker._run = profiled_run  # type: ignore[method-assign]
    consumer_profile = cProfile.Profile()
    consumer_profile.enable()
    adapters.ADAPTERS["chatstream"](base)
    consumer_profile.disable()
    worker_module.Worker._run = run  # type: ignore[method-assign]
    for label, prof in (("worker thread", worker_profile), ("iterating thread", consumer_profile)):
        print(f"\n=== {label}: {stream}, {framing} ===")
        pstats.Stats(prof).sort_stats(args.profile_sort).print_stats(args.profile_lines)


# --- main --------------------------------------------------------------------------------------

SECTIONS = {
    "throughput": throughput,
    "latency": latency,
    "scale": scale,
    "memory": memory,
    "concurrency": concurrency,
    "paced": paced,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="all", choices=["all", "profile"])
    parser.add_argument("--quick", action="store_true", help="smaller streams, fewer runs")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--adapters", default="all", help="comma-separated (the floor is added)")
    parser.add_argument("--json", help="write every measurement to this file")
    parser.add_argument(
        "--profile-framing", default="chunked", choices=["chunked", "close", "gzip"]
    )
    parser.add_argument("--profile-sort", default="tottime")
    parser.add_argument("--profile-lines", type=int, default=30)
    args = parser.parse_args(argv)
    quick = args.quick
    args.chunks = 10_000 if quick else 20_000
    args.repeat = 3 if quick else 7
    args.events = 100 if quick else 200
    args.latency_repeat = 1 if quick else 3
    args.sizes = [10.0, 20.0]
    args.scale_repeat = 3 if quick else 5
    args.scale_timeout = 8.0 if quick else 60.0
    args.memory_chunks = 200_000
    args.pause_ms = 2.0
    args.queue_size = 1600
    args.concurrency_chunks = 500 if quick else 2000
    args.streams = [200] if quick else [50, 200]
    names = list(adapters.ADAPTERS) if args.adapters == "all" else args.adapters.split(",")
    unknown = set(names) - set(adapters.ADAPTERS)
    if unknown:
        parser.error(f"unknown adapters {sorted(unknown)}; known: {list(adapters.ADAPTERS)}")
    args.adapter_names = [adapters.FLOOR] + [a for a in names if a != adapters.FLOOR]
    # Peers that are quadratic in size would take minutes: they run until the time limit.
    args.scale_adapter_names = args.adapter_names
    info = machine()
    print(json.dumps(info))
    with serving() as port:
        if args.command == "profile":
            profile(args, port)
            return
        report = Report(args.json)
        for section in args.only.split(","):
            SECTIONS[section](args, port, report)
        report.finish(info)


if __name__ == "__main__":
    main()

"""Paced concurrency: N streams at once, each paced like a model.

::

    python benchmarks/paced.py                          # N = 100, 500, 1000; all modes
    python benchmarks/paced.py --streams 100 --modes iterating --repeat 5
    python benchmarks/paced.py --json paced.json

Every stream is ``content-200`` (200 text chunks, then ``[DONE]``), one event every 5 ms,
from ``paced_server.py``, which holds every stream until all N requests have arrived, so
that N really run at once; the stream then ideally lasts 1.0 s. Each row runs in a fresh
client process, against a fresh server process, once per repetition; the modes are:

``iterating``
    a thread per stream iterates ``client.stream(body)`` (one shared ``Client``).
``callbacks``
    one thread starts every stream with ``on_event`` and ``on_end`` and waits.
``openai``
    a thread per stream iterates the ``openai`` SDK's ``create(stream=True)`` (one shared
    client); only with the SDK installed (the ``bench`` extra).

Measured in the client process: *start*, from the first request started to the server's
release (all N requests arrived); *wall*, from the release to the end of the last stream;
CPU time (user + system, every thread) and voluntary context switches (``getrusage``,
every thread, dead ones included) per chunk, over the whole run (starting the streams
too); time to first text and stream end, from the release, per stream; peak threads
(``/proc/self/status``, sampled every 20 ms); peak RSS (``VmHWM``). Every stream's text is
checked against the ground truth. A row that has not finished within ``--timeout``
seconds is stopped and shown as ``> timeout``.

``PACED_COALESCING=off`` in the environment runs chatstream's rows with
``Client(coalescing=None)``; ``PACED_COALESCING=above,wakeups,max_pause`` with that
:class:`chatstream.Coalescing`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gen
from paced_server import raise_open_files_limit
from serving import serving

HERE = Path(__file__).resolve().parent
STREAM = "content-200"
INTERVAL_US = 5000
REQUEST: dict[str, Any] = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
MODES = ("iterating", "callbacks", "openai")
_tags = itertools.count()


# --- the client process ----------------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class _Sampler:
    """Samples the thread count every 20 ms on a thread of its own."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _status("Threads"))

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Record:
    """When each stream got its first text and ended, and what it read."""

    def __init__(self, n: int) -> None:
        self.first: list[int | None] = [None] * n
        self.end: list[int | None] = [None] * n
        self.text: list[str | None] = [None] * n
        self.done = threading.Semaphore(0)
        #: The streams of the callbacks mode: a stream dropped unreferenced is closed.
        self.streams: list[Any] = []


def _run_iterating(url: str, n: int, rec: _Record, client: Any) -> None:
    from chatstream import OutputTextDelta

    clock = time.perf_counter_ns

    def one(i: int) -> None:
        try:
            with client.stream(REQUEST) as stream:
                for event in stream:
                    if type(event) is OutputTextDelta and rec.first[i] is None:
                        rec.first[i] = clock()
                rec.text[i] = stream.result().content
            rec.end[i] = clock()
        finally:
            rec.done.release()

    for i in range(n):
        threading.Thread(target=one, args=(i,), daemon=True).start()


def _run_callbacks(url: str, n: int, rec: _Record, client: Any) -> None:
    from chatstream import OutputTextDelta

    clock = time.perf_counter_ns

    def handlers(i: int) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
        def on_event(event: Any) -> None:
            if type(event) is OutputTextDelta and rec.first[i] is None:
                rec.first[i] = clock()

        def on_end(response: Any) -> None:
            rec.end[i] = clock()
            rec.text[i] = None if response.error is not None else response.content
            rec.done.release()

        return on_event, on_end

    for i in range(n):
        on_event, on_end = handlers(i)
        rec.streams.append(client.stream(REQUEST, on_event=on_event, on_end=on_end))


def _run_openai(url: str, n: int, rec: _Record, client: Any) -> None:
    clock = time.perf_counter_ns

    def one(i: int) -> None:
        try:
            pieces: list[str] = []
            stream = client.chat.completions.create(stream=True, **REQUEST)
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            if rec.first[i] is None:
                                rec.first[i] = clock()
                            pieces.append(choice.delta.content)
            rec.text[i] = "".join(pieces)
            rec.end[i] = clock()
        finally:
            rec.done.release()

    for i in range(n):
        threading.Thread(target=one, args=(i,), daemon=True).start()


RUNNERS = {"iterating": _run_iterating, "callbacks": _run_callbacks, "openai": _run_openai}


def _make_client(mode: str, base: str) -> Any:
    if mode == "openai":
        import openai

        return openai.OpenAI(base_url=base, api_key="sk-bench", max_retries=0, timeout=600)
    import chatstream

    options: dict[str, Any] = {}
    coalescing = os.environ.get("PACED_COALESCING")  # "off", or "above,wakeups,max_pause"
    if coalescing == "off":
        options["coalescing"] = None
    elif coalescing:
        above, wakeups, max_pause = coalescing.split(",")
        options["coalescing"] = chatstream.Coalescing(int(above), float(wakeups), float(max_pause))
    return chatstream.Client(base, timeouts=chatstream.Timeouts(idle=600), **options)


def _release_info(port: int, tag: str) -> dict[str, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/release/{tag}")
        info: dict[str, Any] = json.loads(conn.getresponse().read())
        return info
    finally:
        conn.close()


def _url(port: int, tag: str, n: int, interval_us: int) -> str:
    return f"http://127.0.0.1:{port}/paced/{tag}/{n}/{interval_us}/v1"


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One row in this fresh process: a warm-up stream, then N at once."""
    raise_open_files_limit()
    mode, n, port = spec["mode"], spec["n"], spec["port"]
    truth = gen.expected(STREAM)
    chunks = truth["n_chunks"]
    run = RUNNERS[mode]
    # Warm-up: imports, lazily built models; one stream on its own, quickly.
    warm = _Record(1)
    client = _make_client(mode, _url(port, "warm", 1, 100))
    run("", 1, warm, client)
    warm.done.acquire(timeout=30)
    base = _url(port, "run", n, spec["interval_us"])
    client = _make_client(mode, base)
    rec = _Record(n)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # VmHWM := VmRSS: the peak below is this run's
    deadline = time.monotonic() + spec["budget_s"]
    with _Sampler() as sampler:
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter_ns()
        run(base, n, rec, client)
        started = time.perf_counter_ns()
        finished = 0
        while finished < n and rec.done.acquire(timeout=max(0.0, deadline - time.monotonic())):
            finished += 1
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
    info = _release_info(port, "run")
    release = info.get("release_ns") or 0
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    ok = sum(text == truth["content"] for text in rec.text)
    firsts = sorted((t - release) / 1e6 for t in rec.first if t is not None and release)
    ends = sorted((t - release) / 1e9 for t in rec.end if t is not None and release)
    total_chunks = n * chunks
    return {
        "mode": mode,
        "n": n,
        "finished": finished,
        "ok": ok,
        "timed_out": finished < n,
        "start_s": (release - t0) / 1e9 if release else None,
        "return_s": (started - t0) / 1e9,
        "wall_s": ends[-1] if ends and finished == n else None,
        "cpu_s": cpu,
        "cpu_us_per_chunk": cpu / total_chunks * 1e6,
        "vcs_per_chunk": (usage1.ru_nvcsw - usage0.ru_nvcsw) / total_chunks,
        "ivcs_per_chunk": (usage1.ru_nivcsw - usage0.ru_nivcsw) / total_chunks,
        "ttft_ms_p50": _pct(firsts, 0.5),
        "ttft_ms_p99": _pct(firsts, 0.99),
        "end_s_p50": _pct(ends, 0.5),
        "end_s_max": ends[-1] if ends else None,
        "threads_peak": sampler.peak,
        "rss_peak_mib": _status("VmHWM") / 1024,
        "server_late_ms": info.get("late_ms"),
        "server_cpu_s": info.get("cpu_s"),
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# --- the parent ----------------------------------------------------------------------------


@contextlib.contextmanager
def paced_server() -> Iterator[int]:
    """paced_server.py in a process of its own; yields its port."""
    gen.ensure(STREAM)
    with serving("paced_server.py", STREAM) as port:
        yield port


def _busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, every CPU)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_row(
    mode: str,
    n: int,
    timeout: float,
    script: Path = HERE / "paced.py",
    **extra: Any,
) -> dict[str, Any]:
    """One row, in a fresh client process (``script child SPEC``) against a fresh server
    process; ``extra`` goes into the child's spec. ``others``
    is the CPU the rest of the machine used meanwhile (in CPUs, busy time less this
    row's two processes): the machine is shared, and the load average would count this
    benchmark's own threads."""
    busy, ours, began = _busy_seconds(), _children_cpu(), time.monotonic()
    result: dict[str, Any] = {"mode": mode, "n": n}
    with paced_server() as port:
        spec = {"mode": mode, "n": n, "port": port, "budget_s": timeout, **extra}
        spec.setdefault("interval_us", INTERVAL_US)
        cmd = [sys.executable, str(script), "child", json.dumps(spec)]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout + 60, check=False
            )
        except subprocess.TimeoutExpired:
            # Not even the report came within a minute of the time limit (a saturated
            # interpreter lock): as unfinished as a row stopped at the limit.
            result["error"] = "unfinished, stopped"
        else:
            if done.returncode != 0 or not done.stdout.strip():
                lines = done.stderr.strip().splitlines()
                result["error"] = lines[-1] if lines else "failed"
            else:
                result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    others = (_busy_seconds() - busy) - (_children_cpu() - ours)
    result["others"] = max(0.0, others / (time.monotonic() - began))
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def rows_table(results: list[dict[str, Any]], timeout: float) -> list[list[str]]:
    """One line per (N, mode): medians over the repetitions; wall as median (min-max)."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["n"], r["mode"]), []).append(r)
    rows = []
    for (n, mode), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], MODES.index(kv[0][1]))):
        good = [r for r in runs if "error" not in r and not r["timed_out"]]
        late = len(runs) - len(good)

        def med(key: str, rs: list[dict[str, Any]] = good) -> float | None:
            values = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(values) if values else None

        walls = [r["wall_s"] for r in good]
        wall = "-"
        if walls:
            wall = f"{statistics.median(walls):.2f}"
            if len(walls) > 1:
                wall += f" ({min(walls):.2f}-{max(walls):.2f})"
        if late:
            wall += f" +{late}x>{timeout:g}" if walls else f"> {timeout:g}"
        checks = [f"{r['ok']}/{n}" for r in runs if "error" not in r]
        errors = sorted({r["error"][:40] for r in runs if "error" in r})
        rows.append(
            [
                str(n),
                mode,
                _fmt(med("return_s"), ".2f"),
                _fmt(med("start_s"), ".2f"),
                wall,
                _fmt(med("cpu_us_per_chunk"), ".0f"),
                _fmt(med("vcs_per_chunk"), ".2f"),
                _fmt(med("ttft_ms_p50"), ".1f"),
                _fmt(med("ttft_ms_p99"), ".1f"),
                _fmt(med("end_s_p50"), ".2f"),
                _fmt(med("end_s_max"), ".2f"),
                _fmt(med("threads_peak"), ".0f"),
                _fmt(med("rss_peak_mib"), ".0f"),
                _fmt(med("server_late_ms"), ".1f"),
                f"{min(r['others'] for r in runs):.1f}-{max(r['others'] for r in runs):.1f}",
                ", ".join(checks + errors),
            ]
        )
    return rows


HEADER = [
    "N",
    "mode",
    "launch s",
    "start s",
    "wall s",
    "CPU us/chunk",
    "vcs/chunk",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "end p50 s",
    "end max s",
    "threads",
    "RSS MiB",
    "srv late ms",
    "others",
    "correct",
]


def measure(
    streams: list[int], modes: list[str], repeat: int, timeout: float, json_path: str | None
) -> tuple[str, list[dict[str, Any]]]:
    results = []
    for rep in range(repeat):
        for n in streams:
            for mode in modes:
                result = run_row(mode, n, timeout)
                result["rep"] = rep
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
                if json_path:
                    Path(json_path).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return render(results, repeat, timeout), results


def targets(results: list[dict[str, Any]]) -> list[list[str]]:
    """Issue 14's targets for chatstream, from the medians of these runs."""
    rows = []
    for mode in ("iterating", "callbacks"):

        def median_of(n: int, key: str, mode: str = mode) -> float | None:
            values = [
                r[key]
                for r in results
                if r["n"] == n and r["mode"] == mode and "error" not in r and not r["timed_out"]
            ]
            return statistics.median(values) if values else None

        cpu = median_of(100, "cpu_us_per_chunk")
        if cpu is not None:
            met = "met" if cpu <= 35 else "NOT MET"
            rows.append([f"N = 100, {mode}: CPU per chunk <= 35 us", f"{cpu:.0f} us", met])
        wall_500, wall_1000 = median_of(500, "wall_s"), median_of(1000, "wall_s")
        if wall_500 and wall_1000:
            ratio = (1000 / wall_1000) / (500 / wall_500)
            met = "met" if ratio >= 0.8 else "NOT MET"
            name = f"{mode}: chunk rate at N = 1000 >= 0.8x the rate at N = 500"
            rows.append([name, f"{ratio:.2f}x", met])
    return rows


def render(results: list[dict[str, Any]], repeat: int, timeout: float) -> str:
    """The table (and the targets) of these runs."""
    from run import table

    title = (
        f"Paced concurrency: N streams of {STREAM} at once, one event every "
        f"{INTERVAL_US / 1000:g} ms (ideal wall 1.0 s), a fresh process per row and "
        f"repetition, medians of {repeat}; start: until all N requests arrived; times from "
        "the server's release; launch: until the starting thread(s) returned; CPU and "
        "voluntary context switches (vcs) per chunk over the whole run; srv late: how far "
        "the server's sends fell behind its schedule; others: CPUs used by the rest of the "
        "machine meanwhile (min-max over the runs)"
    )
    text = table(title, HEADER, rows_table(results, timeout))
    goals = targets(results)
    if goals:
        text += "\n\n" + table("Targets (issue 14)", ["target", "measured", ""], goals)
    return text


def available_modes() -> list[str]:
    try:
        import openai  # noqa: F401
    except ImportError:
        return [m for m in MODES if m != "openai"]
    return list(MODES)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        sys.stdout.flush()
        os._exit(0)  # streams stopped at the time limit may still be running
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", default="100,500,1000", help="comma-separated N")
    parser.add_argument("--modes", default=",".join(available_modes()))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per row")
    parser.add_argument("--json", help="write every run's measurements to this file")
    parser.add_argument("--from-json", help="only print the tables of a --json file")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        print(render(saved, max(r.get("rep", 0) for r in saved) + 1, args.timeout))
        return
    streams = [int(s) for s in args.streams.split(",")]
    text, _ = measure(streams, args.modes.split(","), args.repeat, args.timeout, args.json)
    print(text)


if __name__ == "__main__":
    main()

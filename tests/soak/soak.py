"""Soak: many streams in a row on one client -- completed, failed, cancelled at random
points -- with the thread count, the open file descriptors and the resident memory
flat at the end.

Run by hand from the project root (a few minutes for the default 5000 streams)::

    .venv/bin/python -m tests.soak.soak                  # 5000 streams
    .venv/bin/python -m tests.soak.soak --streams 20000 --seed 7

It prints one line per checkpoint and a summary, and exits with status 1 if anything
grew or any stream ended other than as its scenario says. ``tests/soak/test_soak.py``
runs a short version in the test suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import chatstream
from chatstream import (
    ChatStreamError,
    ProviderError,
    Retry,
    ServerError,
    StreamClosedError,
    StreamConnectionError,
    StreamOptions,
    Timeouts,
)
from chatstream._shell.process import idle_threads
from tests.loopback import Conn, LoopbackServer

PATH = "/v1/chat/completions"

#: scenario -> the error class it must end in (None: completes).
SCENARIOS: dict[str, type[ChatStreamError] | None] = {
    "ok": None,
    "ok-close-delimited": None,
    "ok-gzip": None,
    "server-error": ServerError,
    "provider-error": ProviderError,
    "reset": StreamConnectionError,
    "cancel": StreamClosedError,
    "cancel-other-thread": StreamClosedError,
}


def _event(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text.encode()


_FINISH = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


def handler(conn: Conn) -> None:
    """Serves the scenario the request names (``metadata.scenario``, ``metadata.n``)."""
    meta = conn.json().get("metadata", {})
    scenario, n = meta["scenario"], int(meta["n"])
    sse = {"Content-Type": "text/event-stream"}
    if scenario == "server-error":
        conn.respond(500, b'{"error": {"message": "boom"}}', {"Content-Type": "application/json"})
        return
    mode = "close" if scenario == "ok-close-delimited" else "chunked"
    conn.send_head(headers=sse, mode=mode, gzip=scenario == "ok-gzip")  # type: ignore[arg-type]
    for i in range(n):
        conn.write(_event(f"w{i} "))
        if scenario.startswith("cancel"):
            conn.sleep(0.002)  # a write after the client left fails: the handler ends
    if scenario == "provider-error":
        conn.write(b'data: {"error": {"message": "overloaded"}}\n\n')
    elif scenario == "reset":
        conn.abort(rst=True)
        return
    elif scenario.startswith("cancel"):
        while True:  # until the client closes
            conn.sleep(0.01)
            conn.write(b": ping\n\n")
    conn.write(_FINISH)
    conn.end()


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {
            k: int(v) * 1024 for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", f.read(), re.M)
        }


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Report:
    streams: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    baseline: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def growth(self) -> dict[str, int]:
        return {k: self.end[k] - self.baseline[k] for k in self.baseline}

    def ok(self, *, max_rss_growth: int) -> bool:
        g = self.growth
        return not self.wrong and g["threads"] <= 0 and g["fds"] <= 0 and g["rss"] <= max_rss_growth


def _busy_threads() -> int:
    """Threads, not counting the pool's idle ones (they hold no stream and end by
    themselves)."""
    return threading.active_count() - len(idle_threads())


def _settle(baseline_threads: int, timeout: float = 5.0) -> None:
    """Wait (bounded) for worker and handler threads to end."""
    deadline = time.monotonic() + timeout
    while _busy_threads() > baseline_threads and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    gc.collect()


def _measure(baseline_threads: int) -> dict[str, int]:
    _settle(baseline_threads)
    return {"threads": _busy_threads(), "fds": _fds(), "rss": _status()["VmRSS"]}


def _forget(server: LoopbackServer) -> None:
    """The test server records every request and disconnect: drop them, so that only the
    client's memory is measured."""
    server.requests.clear()
    server.disconnects.clear()
    del server.errors[:]


def one_stream(client: chatstream.Client, rng: random.Random, report: Report) -> None:
    scenario = rng.choice(list(SCENARIOS))
    n = rng.randint(1, 60)
    body = {"model": "m", "messages": [], "metadata": {"scenario": scenario, "n": n}}
    expect = SCENARIOS[scenario]
    stop_at = rng.randint(0, n) if scenario.startswith("cancel") else -1
    callback: Callable[[Any], object] | None = (lambda e: None) if rng.random() < 0.3 else None
    stream = client.stream(
        body,
        on_event=callback,
        iterate=True,
        options=StreamOptions(queue_size=rng.choice([1, 8, 1600])),
    )
    text = []
    outcome: str
    try:
        if scenario == "cancel-other-thread":
            timer = threading.Timer(rng.uniform(0.0, 0.02), stream.close)
            timer.start()
        for number, item in enumerate(stream):
            if isinstance(item, chatstream.OutputTextDelta):
                text.append(item.delta)
            if number == stop_at and scenario == "cancel":
                stream.close()
        response = stream.result(timeout=10)
        outcome = "completed"
        final = response
    except ChatStreamError as exc:
        outcome = type(exc).__name__
        final = exc.partial  # type: ignore[assignment]
    finally:
        stream.close()
        if scenario == "cancel-other-thread":
            timer.join()
    report.streams += 1
    report.outcomes[f"{scenario}: {outcome}"] += 1
    wanted = "completed" if expect is None else expect.__name__
    cancelled_late = scenario.startswith("cancel") and outcome == "completed"
    if outcome != wanted and not cancelled_late:
        report.wrong.append(f"{scenario} ended as {outcome}")
    if final is None or not final.content.startswith("".join(text)):
        report.wrong.append(f"{scenario}: delivered text lost")


def soak(streams: int = 5000, seed: int = 0, log: Callable[[str], object] | None = None) -> Report:
    """Run ``streams`` streams; return the report (see :meth:`Report.ok`)."""
    rng = random.Random(seed)
    report = Report()
    began = time.monotonic()
    with LoopbackServer(handler, io_timeout=10.0) as server:
        client = chatstream.Client(
            server.url + "/v1",
            api_key="sk-soak",
            timeouts=Timeouts(connect=2.0, idle=2.0, finish_grace=0.2),
            retry=Retry(max_retries=0),
        )
        with client:
            threads = _busy_threads()
            warmup = max(20, streams // 10)
            for _ in range(warmup):
                one_stream(client, rng, report)
                _forget(server)
            report.baseline = _measure(threads)
            checkpoint = max(1, (streams - warmup) // 5)
            for i in range(streams - warmup):
                one_stream(client, rng, report)
                _forget(server)
                if log is not None and (i + 1) % checkpoint == 0:
                    m = _measure(threads)
                    log(
                        f"{warmup + i + 1:>7} streams  threads {m['threads']}  fds {m['fds']}  "
                        f"rss {m['rss'] / 2**20:.1f} MiB"
                    )
            report.end = _measure(threads)
    report.seconds = time.monotonic() - began
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rss-growth-mib", type=float, default=32.0)
    args = parser.parse_args(argv)
    report = soak(args.streams, args.seed, log=print)
    print(f"{report.streams} streams in {report.seconds:.1f} s")
    for name, n in sorted(report.outcomes.items()):
        print(f"  {n:>6}  {name}")
    print(f"growth after warm-up: {report.growth}")
    for line in report.wrong[:20]:
        print("WRONG:", line)
    ok = report.ok(max_rss_growth=int(args.max_rss_growth_mib * 2**20))
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

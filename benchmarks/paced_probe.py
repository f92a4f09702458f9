"""Where the paced streams' context switches come from, and what candidate changes save.

::

    python benchmarks/paced_probe.py --streams 100 --repeat 3
    python benchmarks/paced_probe.py --streams 1000 --modes callbacks --patches start-no-wait

Runs rows of ``paced.py`` (a fresh client and server process each) with two additions in
the client process:

* every thread, as it ends, adds its own voluntary and involuntary context switches
  (``/proc/thread-self/status``) to its role's total: ``worker`` (chatstream's reading
  threads), ``consumer`` (the iterating threads, or the SDK's), ``watchdog``, ``main``
  and ``sampler``; printed per chunk;
* ``--patches`` applies prototypes of changes to chatstream's worker, by monkeypatching
  (they are measured here, not part of the library):

  ``blocking-socket``
      once the response headers have arrived, the socket has no timeout, so each read is
      one blocking ``recv`` instead of ``poll`` then ``recv`` (each releases and takes
      back the interpreter lock); the watchdog still bounds every wait.
  ``switch-20ms``
      ``sys.setswitchinterval(0.02)`` (the default is 5 ms): how much of the cost is the
      interpreter lock being handed over on request.
  ``header-hub``
      one thread waits, with a selector, for every request's response headers, and wakes
      the waiting workers at most eight at a time, so that a thousand answers arriving
      together do not wake a thousand threads at once.

  Worker threads come from the pool (``chatstream._shell.threads``) and outlive their streams:
  a worker's switches are counted per run of a stream, from its start to its end.
  ``--prewave`` runs a first, unmeasured wave of N streams, which leaves N idle threads
  for the measured one.

* ``--modes hub`` measures a prototype of another shape: one thread reads every
  stream's socket through a ``selectors`` loop (plain sockets, a minimal chunked
  decoder), feeds each stream's :class:`chatstream.StreamParser` and calls its
  callback; no thread per stream. What a worker that shares one reading thread could
  cost per chunk (no retries, timeouts or TLS: a lower bound).

It monkeypatches private parts of ``chatstream._shell.worker`` and ``chatstream._shell.threads``: a
tool for this worker, to be kept in step with it.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paced

ROLES = ("worker", "consumer", "watchdog", "pool", "main", "sampler")


def _switches() -> tuple[int, int]:
    voluntary = involuntary = 0
    with open("/proc/thread-self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary = int(line.split()[1])
    return voluntary, involuntary


def _role(name: str) -> str:
    if name in ("chatstream-worker", "chatstream-idle", "chatstream-starter"):
        return "pool"  # a pool thread, ended idle: its runs are counted as "worker"
    if name == "chatstream-watchdog":
        return "watchdog"
    if name == "hub":
        return "worker"
    if name == "MainThread":
        return "main"
    return "consumer"


_totals: dict[str, list[int]] = {}
_lock = threading.Lock()


def _add(role: str, counts: tuple[int, int]) -> None:
    with _lock:
        total = _totals.setdefault(role, [0, 0, 0])
        total[0] += counts[0]
        total[1] += counts[1]
        total[2] += 1


def _count_switches_per_thread() -> None:
    run = threading.Thread.run

    def counted(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            _add(_role(self.name), _switches())

    threading.Thread.run = counted  # type: ignore[method-assign]

    from chatstream._shell import threads as _threads

    job_run = _threads.Job._run

    def counted_job(self: Any) -> None:
        before = _switches()
        try:
            job_run(self)
        finally:
            after = _switches()
            _add("worker", (after[0] - before[0], after[1] - before[1]))

    _threads.Job._run = counted_job  # type: ignore[method-assign]
    sampler_run = paced._Sampler._run

    def sampler(self: Any) -> None:
        sampler_run(self)
        _add("sampler", _switches())

    paced._Sampler._run = sampler  # type: ignore[method-assign]


def _prewave(spec: dict[str, Any]) -> None:
    """A first wave of N streams, unmeasured, quickly paced; waits for its end."""
    n = spec["n"]
    rec = paced._Record(n)
    client = paced._make_client(spec["mode"], paced._url(spec["port"], "pre", n, 100))
    paced.RUNNERS[spec["mode"]]("", n, rec, client)
    for _ in range(n):
        rec.done.acquire(timeout=spec["budget_s"])


class _HeaderHub:
    """One thread waits, with a selector, for every request's response headers, and
    wakes the waiting workers at most ``AT_ONCE`` at a time (a worker that runs wakes
    the next): a thousand answers that arrive together wake a few threads, not a
    thousand (prototype: no cancellation, no idle exit)."""

    AT_ONCE = 8

    def __init__(self) -> None:
        import collections
        import selectors
        import socket

        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.r, self.w = socket.socketpair()
        self.r.setblocking(False)
        self.sel.register(self.r, selectors.EVENT_READ, None)
        self.pending: list[tuple[Any, Any]] = []
        self.ready: Any = collections.deque()
        self.woken = 0
        self.event_read = selectors.EVENT_READ
        threading.Thread(target=self.loop, name="probe-hub", daemon=True).start()

    def wait(self, sock: Any, timeout: float | None) -> None:
        gate = threading.Lock()
        gate.acquire()
        with self.lock:
            self.pending.append((sock, gate))
        self.w.send(b"x")
        if gate.acquire(timeout=-1 if timeout is None else timeout):
            with self.lock:
                self.woken -= 1
                self._admit()

    def _admit(self) -> None:
        while self.ready and self.woken < self.AT_ONCE:
            self.woken += 1
            self.ready.popleft().release()

    def loop(self) -> None:
        while True:
            events = self.sel.select()
            with self.lock:
                pending, self.pending = self.pending, []
            for sock, gate in pending:
                self.sel.register(sock, self.event_read, gate)
            with self.lock:
                for key, _ in events:
                    if key.data is None:
                        while True:
                            try:
                                if not self.r.recv(4096):
                                    break
                            except BlockingIOError:
                                break
                    else:
                        self.sel.unregister(key.fileobj)
                        self.ready.append(key.data)
                self._admit()


def _patch(name: str) -> None:
    from chatstream._shell import worker as _worker

    worker = _worker.Worker
    if name == "blocking-socket":
        attach = worker._attach

        def attach_blocking(self: Any, body: Any) -> None:
            attach(self, body)
            raw = getattr(getattr(body, "response", None), "raw", None)
            sock = getattr(getattr(raw, "_connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(None)

        worker._attach = attach_blocking  # type: ignore[method-assign]
    elif name == "switch-20ms":
        sys.setswitchinterval(0.02)
    elif name == "header-hub":
        from chatstream._shell import transport as _transport

        hub = _HeaderHub()
        getresponse = _transport._HTTPConnection.getresponse

        def hub_getresponse(self: Any) -> Any:
            sock = self.sock
            if sock is not None:
                hub.wait(sock, sock.gettimeout())
            return getresponse(self)

        _transport._HTTPConnection.getresponse = hub_getresponse  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown patch {name!r}")


class _HubStream:
    """One stream of the hub prototype: its socket's bytes, de-chunked, into a parser."""

    def __init__(self, index: int, parser: Any) -> None:
        self.index = index
        self.parser = parser
        self.buf = bytearray()
        self.head = False
        self.data_left = 0
        self.crlf_left = 0
        self.eof = False

    def body(self, data: bytes) -> bytes:
        buf = self.buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while pos < len(buf) and not self.eof:
            if not self.head:
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                pos, self.head = end + 4, True
            elif self.crlf_left:
                take = min(self.crlf_left, len(buf) - pos)
                pos += take
                self.crlf_left -= take
            elif self.data_left:
                take = min(self.data_left, len(buf) - pos)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self.data_left -= take
                if not self.data_left:
                    self.crlf_left = 2
            else:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                self.data_left = int(buf[pos:end], 16)
                pos = end + 2
                self.eof = self.data_left == 0
        del buf[:pos]
        return b"".join(out)


def _run_hub(url: str, n: int, rec: Any, client: Any) -> None:
    from chatstream import OutputTextDelta, StreamParser

    parts = urlsplit(client.url)
    body = json.dumps(dict(paced.REQUEST, stream=True)).encode()
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    clock = time.perf_counter_ns
    sel = selectors.DefaultSelector()
    for i in range(n):
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.sendall(request)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, _HubStream(i, StreamParser()))

    def finish(sock: socket.socket, stream: _HubStream) -> None:
        if not stream.parser.ended:
            stream.parser.close()
        rec.text[stream.index] = stream.parser.response.content
        rec.end[stream.index] = clock()
        sel.unregister(sock)
        sock.close()
        rec.done.release()

    def loop() -> None:
        left = n
        while left:
            for key, _ in sel.select(1.0):
                sock, stream = key.fileobj, key.data
                data = sock.recv(65536)  # type: ignore[union-attr]
                events = stream.parser.feed(stream.body(data)) if data else []
                for event in events:
                    if type(event) is OutputTextDelta and rec.first[stream.index] is None:
                        rec.first[stream.index] = clock()
                if not data or stream.parser.ended or stream.eof:
                    finish(sock, stream)  # type: ignore[arg-type]
                    left -= 1

    threading.Thread(target=loop, name="hub", daemon=True).start()


paced.RUNNERS["hub"] = _run_hub


def child(spec: dict[str, Any]) -> dict[str, Any]:
    _count_switches_per_thread()
    for name in spec.get("patches", []):
        _patch(name)
    if spec.get("prewave"):
        _prewave(spec)
    start = _switches()
    result = paced.child(spec)
    main = _switches()
    _add("main", (main[0] - start[0], main[1] - start[1]))
    time.sleep(0.5)  # the watchdog thread ends a moment after the last stream
    chunks = spec["n"] * 200
    result["by_role"] = {
        role: {"vcs": v / chunks, "ivcs": iv / chunks, "threads": k}
        for role, (v, iv, k) in _totals.items()
    }
    return result


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(child(json.loads(sys.argv[2]))))
        sys.stdout.flush()
        os._exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--modes", default="iterating,callbacks")
    parser.add_argument("--patches", default="", help="comma-separated, applied together")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prewave", action="store_true", help="a first wave of N, unmeasured")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    patches = [p for p in args.patches.split(",") if p]
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            result = paced.run_row(
                mode,
                args.streams,
                args.timeout,
                Path(__file__),
                patches=patches,
                prewave=args.prewave,
            )
            print(json.dumps(result), file=sys.stderr, flush=True)
            if "error" not in result:
                runs.setdefault(mode, []).append(result)
    wave = ", after a first wave" if args.prewave else ""
    print(
        f"N={args.streams}, patches: {', '.join(patches) or 'none'}{wave}; medians of {args.repeat}"
    )
    for mode, results in runs.items():

        def med(get: Any, results: list[dict[str, Any]] = results) -> float:
            return statistics.median(get(r) for r in results)

        roles = ", ".join(
            f"{role} {med(lambda r, role=role: r['by_role'].get(role, {}).get('vcs', 0)):.2f}"
            for role in ROLES
        )
        print(
            f"  {mode:9} launch {med(lambda r: r['return_s']):.2f} s, "
            f"wall {med(lambda r: r['wall_s'] or 0):.2f} s, "
            f"CPU {med(lambda r: r['cpu_us_per_chunk']):.0f} us/chunk, "
            f"vcs {med(lambda r: r['vcs_per_chunk']):.2f}/chunk ({roles}), "
            f"ivcs {med(lambda r: r['ivcs_per_chunk']):.2f}/chunk, "
            f"others {min(r['others'] for r in results):.1f}-"
            f"{max(r['others'] for r in results):.1f} CPUs"
        )


if __name__ == "__main__":
    main()

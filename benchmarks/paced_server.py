"""A paced loopback server for many concurrent streams (standard library only).

One thread, one ``selectors`` loop, so a thousand connections cost a thousand sockets and
no threads. Run it as its own process (``paced.py`` does, one per measured row)::

    python benchmarks/paced_server.py content-200     # prints "PORT <n>" once listening

``POST /paced/<run>/<n>/<interval_us>/v1/chat/completions`` joins the run named ``<run>``.
Nothing is answered until ``<n>`` requests of that run have arrived: then every one of
them gets its headers and the stream's first event at once (the *release*), and event
*k* at *k* intervals after it, the same instant for every stream of the run, as one
``send`` per event and connection (chunked). A server that falls behind its schedule
sends all the events that are due together and notes how late it was.

``POST /huge/<run>/<bytes>/<delay_ms>/v1/chat/completions`` is the stream that runs beside
the run named ``<run>`` (``paced_huge.py``): its headers and a first event at once, then,
``<delay_ms>`` after the run's release, one event of about ``<bytes>`` bytes made of short
``data:`` lines (a chunk whose JSON is spread over them), its finish and ``[DONE]``.

``GET /release/<run>`` answers, as JSON, when the run was released
(``time.perf_counter_ns()``: CLOCK_MONOTONIC, shared by every process of the machine),
the most its sends were late, and the CPU time the server spent on the run. It listens on
127.0.0.1 only and stops when its standard input closes.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field

import gen

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def raise_open_files_limit() -> int:
    """Allow as many open files as the hard limit does (a thousand streams need more
    than the usual soft limit of 1024 once the process's own files count)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 65536:
        hard = 65536
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Conn:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)


@dataclass
class Run:
    n: int
    interval_ns: int
    conns: list[Conn] = field(default_factory=list)
    release_ns: int = 0
    next_event: int = 0
    late_ns: int = 0
    cpu_at_release: float = 0.0
    cpu_s: float = 0.0
    #: The huge streams beside this run (see the module documentation): each one's
    #: connection, size and delay.
    huge: list[tuple[Conn, int, int]] = field(default_factory=list)


def _chunk(choice: str) -> bytes:
    return (
        b'{"id":"huge","object":"chat.completion.chunk","created":0,"model":"bench-model",'
        b'"choices":[' + choice.encode() + b"]}"
    )


#: The huge stream's first event, and its last two (finish, [DONE]).
HUGE_FIRST = b"data: " + _chunk('{"index":0,"delta":{"role":"assistant","content":""}}') + b"\n\n"
HUGE_LAST = (
    b"data: " + _chunk('{"index":0,"delta":{},"finish_reason":"stop"}') + b"\n\ndata: [DONE]\n\n"
)
#: The text the huge event carries.
HUGE_TEXT = "huge"


def huge_event(size: int) -> bytes:
    """One SSE event of about ``size`` bytes, made of short ``data:`` lines: a chunk whose
    JSON has a line break (an empty ``data:`` line) between two of its tokens, again and
    again."""
    head, tail = _chunk(f'{{"index":0,"delta":{{"content":"{HUGE_TEXT}"}}}}').split(b"[", 1)
    start, end = b"data: " + head + b"[\n", b"data: " + tail + b"\n\n"
    filler = b"data: \n" * max(0, (size - len(start) - len(end)) // 7)
    return start + filler + end


def _framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Server:
    def __init__(self, stream: str) -> None:
        raw = gen.ensure(stream).read_bytes()
        events = [e + b"\n\n" for e in raw.split(b"\n\n") if e]
        self.pieces = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
        self.pieces[-1] += b"0\r\n\r\n"  # the end of the chunked body
        self.sel = selectors.DefaultSelector()
        self.runs: dict[str, Run] = {}
        self.huge: dict[str, list[tuple[Conn, int, int]]] = {}  # waiting for their run
        self.live: list[Run] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(sys.stdin, selectors.EVENT_READ, "stdin")

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def serve(self) -> None:
        clock = time.perf_counter_ns
        while True:
            timeout = 0.5
            if self.live:
                due = min(r.release_ns + r.next_event * r.interval_ns for r in self.live)
                timeout = max(0.0, (due - clock()) / 1e9)
            for key, mask in self.sel.select(timeout):
                if key.data == "accept":
                    self._accept()
                elif key.data == "stdin":
                    if not sys.stdin.buffer.read1(4096):  # type: ignore[attr-defined]
                        return
                else:
                    conn: Conn = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._flush(conn)
                    if mask & selectors.EVENT_READ:
                        self._receive(conn)
            if self.live:
                self._tick(clock())

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sel.register(sock, selectors.EVENT_READ, Conn(sock))

    def _close(self, conn: Conn) -> None:
        self.sel.unregister(conn.sock)
        conn.sock.close()

    def _receive(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        while True:
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(conn.inbuf[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(conn.inbuf) < end + 4 + length:
                return
            del conn.inbuf[: end + 4 + length]
            self._request(conn, head[0].split(" ")[1])

    def _request(self, conn: Conn, path: str) -> None:
        parts = path.strip("/").split("/")
        if parts[:1] == ["release"] and len(parts) == 2:
            run = self.runs.get(parts[1])
            info = (
                {}
                if run is None
                else {
                    "release_ns": run.release_ns,
                    "late_ms": run.late_ns / 1e6,
                    "cpu_s": run.cpu_s,
                    "n": run.n,
                    "arrived": len(run.conns),
                }
            )
            body = json.dumps(info).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            self._send(conn, head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        if parts[:1] == ["huge"] and len(parts) == 7:
            entry = (conn, int(parts[2]), int(parts[3]) * 1_000_000)
            self.huge.setdefault(parts[1], []).append(entry)
            self._send(conn, HEAD + _framed(HUGE_FIRST))
            return
        if parts[:1] != ["paced"] or len(parts) != 7:
            self._send(conn, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        tag, n, interval_us = parts[1], int(parts[2]), int(parts[3])
        run = self.runs.setdefault(tag, Run(n, interval_us * 1000))
        run.conns.append(conn)
        if len(run.conns) == run.n:
            run.cpu_at_release = cpu_seconds()
            run.release_ns = time.perf_counter_ns()
            run.huge = self.huge.pop(tag, [])
            for c in run.conns:
                self._send(c, HEAD)
            self.live.append(run)
            self._tick(run.release_ns)

    def _tick(self, now: int) -> None:
        for run in list(self.live):
            self._send_huge(run, now)
            start = run.next_event
            end = start
            while end < len(self.pieces) and run.release_ns + end * run.interval_ns <= now:
                end += 1
            if end == start:
                continue
            run.late_ns = max(run.late_ns, now - (run.release_ns + start * run.interval_ns))
            data = b"".join(self.pieces[start:end]) if end - start > 1 else self.pieces[start]
            for conn in run.conns:
                self._send(conn, data)
            run.next_event = end
            if end == len(self.pieces):
                run.cpu_s = cpu_seconds() - run.cpu_at_release
                self.live.remove(run)
                self._send_huge(run, None)

    def _send_huge(self, run: Run, now: int | None) -> None:
        """Send the huge events that are due (``now`` None: every one left)."""
        for entry in list(run.huge):
            conn, size, delay_ns = entry
            if now is None or run.release_ns + delay_ns <= now:
                run.huge.remove(entry)
                body = _framed(huge_event(size)) + _framed(HUGE_LAST) + b"0\r\n\r\n"
                self._send(conn, body)

    def _send(self, conn: Conn, data: bytes) -> None:
        if conn.outbuf:
            conn.outbuf += data
            return
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client went away (a stopped benchmark): drop it
            return
        if sent < len(data):
            conn.outbuf += data[sent:]
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except BlockingIOError:
            return
        except OSError:
            conn.outbuf.clear()
            sent = 0
        del conn.outbuf[:sent]
        if not conn.outbuf:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)


def main() -> None:
    raise_open_files_limit()
    server = Server(sys.argv[1] if len(sys.argv) > 1 else "content-200")
    print(f"PORT {server.port}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()

"""A loopback HTTP/1.1 server that replays benchmark streams (standard library only).

Run it as its own process so that it does not share the client's interpreter lock::

    python benchmarks/server.py            # prints "PORT <n>" once listening

Requests go to ``POST /<stream>/<framing>/<interval_us>/<tag>/v1/chat/completions``
(the part before ``/chat/completions`` is the base URL a client is given):

* ``stream``: a name from :mod:`gen` (made and cached on first use).
* ``framing``: ``chunked`` (one event per HTTP chunk), ``close`` (no length, no chunks:
  the body ends when the connection closes) or ``gzip`` (chunked, ``Content-Encoding:
  gzip``, one ``Z_SYNC_FLUSH`` block per event, so each event can be decoded at once).
* ``interval_us``: ``0`` sends the pre-built body as fast as the client reads it (64 KiB
  per ``sendall``); above 0 event *k* is sent at *k* times the interval, one ``send`` per
  event, and the server notes the ``time.perf_counter_ns()`` just before each send.
* ``tag``: names the request; ``GET /sent/<tag>`` then answers the send times of its
  events as a JSON list (used for latency: the clock is CLOCK_MONOTONIC, shared by every
  process of the machine). ``GET /prepare/<stream>/<framing>`` builds a body ahead of
  the measured requests.

It listens on 127.0.0.1 only, serves each connection on its own thread and stops when
its standard input closes (so it never outlives the benchmark that started it).
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time
import zlib

import gen

SLAB = 64 * 1024
_bodies: dict[str, list[bytes]] = {}
_wire: dict[tuple[str, str], bytes] = {}
_sent: dict[str, list[int]] = {}
_lock = threading.Lock()


def _events(name: str) -> list[bytes]:
    with _lock:
        if name not in _bodies:
            raw = gen.ensure(name).read_bytes()
            _bodies[name] = [event + b"\n\n" for event in raw.split(b"\n\n") if event]
        return _bodies[name]


def _framed(framing: str, events: list[bytes]) -> bytes:
    """The whole body as it goes on the wire."""
    if framing == "close":
        return b"".join(events)
    if framing == "gzip":
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        events = [gz.compress(e) + gz.flush(zlib.Z_SYNC_FLUSH) for e in events]
        events.append(gz.flush(zlib.Z_FINISH))
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _wire_body(name: str, framing: str) -> bytes:
    events = _events(name)
    with _lock:
        if (name, framing) not in _wire:
            _wire[name, framing] = _framed(framing, events)
        return _wire[name, framing]


class _Handler(socketserver.StreamRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except OSError:  # the client went away: fine, it may have stopped early
            pass

    def _one_request(self) -> bool:
        line = self.rfile.readline(65537)
        if not line.strip():
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        length = 0
        while True:
            header = self.rfile.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            self.rfile.read(length)
        parts = path.split("?")[0].strip("/").split("/")
        if method == "GET" and len(parts) == 3 and parts[0] == "prepare":
            _wire_body(parts[1], parts[2])  # so that no measured request pays for it
            self._answer(b"text/plain", b"ready")
            return True
        if method == "GET" and len(parts) == 2 and parts[0] == "sent":
            with _lock:
                times = _sent.pop(parts[1], [])
            self._answer(b"application/json", json.dumps(times).encode())
            return True
        if method != "POST" or len(parts) != 7 or parts[4:] != ["v1", "chat", "completions"]:
            self._answer(b"text/plain", b"not found", status=b"404 Not Found")
            return True
        name, framing, interval, tag = parts[0], parts[1], int(parts[2]), parts[3]
        head = [b"HTTP/1.1 200 OK", b"Content-Type: text/event-stream", b"Cache-Control: no-cache"]
        if framing == "close":
            head.append(b"Connection: close")
        else:
            head.append(b"Transfer-Encoding: chunked")
            if framing == "gzip":
                head.append(b"Content-Encoding: gzip")
        sock = self.request
        try:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            if interval > 0:
                self._paced(sock, name, framing, interval * 1000, tag)
            else:
                body = memoryview(_wire_body(name, framing))
                for start in range(0, len(body), SLAB):
                    sock.sendall(body[start : start + SLAB])
        except OSError:
            return False
        if framing == "close":
            sock.shutdown(socket.SHUT_WR)
            return False
        return True

    def _answer(self, kind: bytes, data: bytes, status: bytes = b"200 OK") -> None:
        head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        self.request.sendall(head % (status, kind, len(data)) + data)

    def _paced(self, sock: socket.socket, name: str, framing: str, interval: int, tag: str) -> None:
        gz = zlib.compressobj(6, zlib.DEFLATED, 31) if framing == "gzip" else None
        clock = time.perf_counter_ns
        sent: list[int] = []
        start = clock() + interval
        for k, event in enumerate(_events(name)):
            due = start + k * interval
            while (left := due - clock()) > 0:
                # Sleep most of the wait, spin the last fraction of a millisecond.
                time.sleep(left / 1e9 - 0.0003 if left > 400_000 else 0)
            data = event
            if gz is not None:
                data = gz.compress(data) + gz.flush(zlib.Z_SYNC_FLUSH)
            if framing != "close":
                data = b"%x\r\n%s\r\n" % (len(data), data)
            sent.append(clock())
            sock.sendall(data)
        tail = b""
        if gz is not None:
            end = gz.flush(zlib.Z_FINISH)
            tail = b"%x\r\n%s\r\n" % (len(end), end)
        if framing != "close":
            sock.sendall(tail + b"0\r\n\r\n")
        with _lock:
            _sent[tag] = sent


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def main() -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes the pipe (or exits)
    server.shutdown()


if __name__ == "__main__":
    main()

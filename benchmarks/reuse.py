"""Connection reuse: time to the first event of 50 sequential requests over TLS.

An agent loop sends one request after another on one client. Each request that cannot
reuse the previous connection pays a TCP and a TLS handshake before its first event.
This runs chatstream and the ``openai`` SDK against the same TLS server on 127.0.0.1 (a
certificate from a throw-away CA, made with ``trustme``), each for 50 sequential
streams, and reports the time to the first event of requests 2..50 and the number of
connections each client opened::

    pip install -e '.[bench,test]'     # the openai SDK and trustme
    python benchmarks/reuse.py         # about 10 seconds

The server runs in its own process (standard library only) and answers every request
with the same short chunked stream, keeping the connection open.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

REQUEST: dict[str, Any] = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
EVENTS = [
    json.dumps({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": w}}]})
    for w in ("Hello", ", ", "world", ".")
]
EVENTS.append(
    json.dumps(
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
)


def serve(cert: str, key: str) -> None:
    """The server process: prints ``PORT <n>``, serves until stdin closes."""
    connections = 0
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            nonlocal connections
            with lock:
                connections += 1
            # Each event is its own small write: without this, Nagle's algorithm would
            # hold the second one until the client's delayed ACK (40 ms).
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def do_GET(self) -> None:  # /connections
            body = str(connections).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for data in [*EVENTS, "[DONE]"]:
                frame = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT", server.server_address[1], flush=True)
    sys.stdin.read()


def connections(base: str, ca: str) -> int:
    import requests

    with requests.Session() as session:
        session.trust_env = False
        return int(session.get(f"{base}/connections", verify=ca).text)


def chatstream_first_events(base: str, ca: str, n: int) -> list[float]:
    import chatstream

    times = []
    with chatstream.Client(
        base + "/v1", "sk-bench", retry=0, connections=chatstream.Connections(verify=ca)
    ) as client:
        for _ in range(n):
            started = time.perf_counter()
            with client.stream(REQUEST) as stream:
                first = True
                for event in stream:
                    if first and isinstance(event, chatstream.OutputTextDelta):
                        times.append(time.perf_counter() - started)
                        first = False
    return times


def openai_first_events(base: str, ca: str, n: int) -> list[float]:
    import openai

    times = []
    verify = ssl.create_default_context(cafile=ca)
    with openai.DefaultHttpx2Client(verify=verify, trust_env=False) as http:
        client = openai.OpenAI(
            base_url=base + "/v1", api_key="sk-bench", http_client=http, max_retries=0
        )
        for _ in range(n):
            started = time.perf_counter()
            first = True
            for chunk in client.chat.completions.create(stream=True, **REQUEST):
                if first and chunk.choices and chunk.choices[0].delta.content:
                    times.append(time.perf_counter() - started)
                    first = False
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key, ca_file = (os.path.join(tmp, n) for n in ("cert.pem", "key.pem", "ca.pem"))
        issued.cert_chain_pems[0].write_to_path(cert)
        issued.private_key_pem.write_to_path(key)
        ca.cert_pem.write_to_path(ca_file)
        clients: list[tuple[str, Callable[[str, str, int], list[float]]]] = [
            ("chatstream", chatstream_first_events)
        ]
        try:
            import openai  # noqa: F401

            clients.append(("openai", openai_first_events))
        except ImportError:
            print("(the openai SDK is not installed: chatstream only)")
        print(f"Time to the first event of requests 2..{args.requests}, sequential, one client,")
        print("TLS on 127.0.0.1 (ms); connections opened for all the requests")
        print(f"{'client':<12} {'first':>7} {'p50':>7} {'p90':>7} {'max':>7} {'connections':>12}")
        for name, run in clients:
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", cert, key],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert server.stdout is not None
                port = int(server.stdout.readline().split()[1])
                base = f"https://127.0.0.1:{port}"
                times = run(base, ca_file, args.requests)
                opened = connections(base, ca_file) - 1  # not the query's own
            finally:
                server.stdin.close()  # type: ignore[union-attr]
                server.wait(10)
            rest = sorted(times[1:])
            p90 = rest[int(0.9 * (len(rest) - 1))]
            print(
                f"{name:<12} {times[0] * 1e3:7.2f} {statistics.median(rest) * 1e3:7.2f} "
                f"{p90 * 1e3:7.2f} {rest[-1] * 1e3:7.2f} {opened:>12}"
            )


if __name__ == "__main__":
    main()

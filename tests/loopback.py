r"""Real-socket loopback HTTP/1.1 server for tests.

The server listens on ``127.0.0.1`` (never on a public interface) on an ephemeral port and
writes every byte of every response by hand, so a test controls the framing exactly:
chunked, close-delimited or Content-Length bodies, gzip with a sync flush per write, bodies
dribbled out a few bytes at a time, truncated bodies, TCP resets and arbitrary malformed
bytes.

Usage::

    with LoopbackServer() as server:
        server.route("/v1/chat/completions", sse_body(b"data: {}\n\n", split=True))
        ...  # point the client at server.url
        assert server.requests[0].headers["Authorization"] == "Bearer sk-test"

A handler is a callable taking a :class:`Conn`. It reads the parsed request from the
``Conn`` and writes the response with :meth:`Conn.send_head`, :meth:`Conn.write`,
:meth:`Conn.end`, :meth:`Conn.abort` and :meth:`Conn.raw`. The module uses the standard
library only and does not import the code under test.
"""

from __future__ import annotations

import contextlib
import http
import itertools
import json
import random
import re
import socket
import socketserver
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast

__all__ = [
    "BodyMode",
    "Conn",
    "Handler",
    "HeaderInput",
    "Headers",
    "LoopbackServer",
    "RecordedRequest",
    "ServerStopping",
    "gzip_stream",
    "json_error",
    "sequence",
    "split_pieces",
    "sse_body",
    "sse_events",
]

BodyMode = Literal["chunked", "close", "length"]
"""How a response body is delimited: HTTP chunks, connection close, or Content-Length."""

HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]]
"""Response headers: a mapping, or a sequence of pairs when a name must repeat."""

Handler = Callable[["Conn"], None]
"""A request handler: receives the connection, writes the response, returns None."""

# Limits on what the server accepts from a client; generous for tests, but bounded so a
# broken client cannot make a handler thread buffer without end.
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
_RECV_SIZE = 64 * 1024

# Blank-line event terminators of a Server-Sent Events stream; the CRLF form is listed
# first so that it is not cut in half by the bare "\n\n" alternative.
_SSE_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class ServerStopping(BaseException):
    """Raised inside a handler when the server is closing, to unwind the handler at once.

    It derives from ``BaseException`` (like ``GeneratorExit``) so that a handler's own
    ``except Exception`` cannot swallow it and keep a stalling handler alive.
    """


class _BadRequest(Exception):
    """The client sent bytes that are not a parseable HTTP/1.1 request."""


class _ClientGone(Exception):
    """The client closed the connection in the middle of a request."""


class Headers(MutableMapping[str, str]):
    """Case-insensitive header dictionary that remembers the spelling it was given.

    Repeated header names given to :meth:`add` are joined with ``", "`` as RFC 9110 allows
    for list-valued fields, so lookups always yield a single string.
    """

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        """Build from a mapping or from ``(name, value)`` pairs."""
        # Keyed by the lower-cased name; the value keeps the original name for iteration.
        self._items: dict[str, tuple[str, str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Add a value, joining it to an existing value of the same name with ``", "``."""
        key = name.lower()
        if key in self._items:
            old_name, old_value = self._items[key]
            self._items[key] = (old_name, f"{old_value}, {value}")
        else:
            self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it.

    ``path`` is the request target exactly as sent (query string included).
    ``connection_id`` numbers the TCP connections of one server from 0 and
    ``index_on_connection`` counts the requests served before this one on the same
    connection, so tests can tell a reused keep-alive connection from a new one.
    """

    method: str
    path: str
    version: str
    headers: Headers
    body: bytes
    connection_id: int
    index_on_connection: int

    def json(self) -> Any:
        """Decode the request body as JSON."""
        return json.loads(self.body)


class _SocketReader:
    """Buffered reader over a socket that keeps leftover bytes between requests.

    ``socket.makefile`` is avoided because a buffered file is left in an undefined state
    after a timeout and holds an extra reference that keeps the descriptor open.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        """Receive more bytes; return False at end of stream."""
        data = self._sock.recv(_RECV_SIZE)
        if not data:
            return False
        self._buf += data
        return True

    def readline(self) -> bytes:
        """Return one line including its newline, or what is left (maybe b"") at EOF."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if len(self._buf) > _MAX_LINE:
                raise _BadRequest("line too long")
            if not self._fill():
                rest = bytes(self._buf)
                self._buf.clear()
                return rest

    def read_exact(self, size: int) -> bytes:
        """Return exactly ``size`` bytes; raise :class:`_ClientGone` on early EOF."""
        while len(self._buf) < size:
            if not self._fill():
                raise _ClientGone(f"EOF after {len(self._buf)} of {size} body bytes")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data


def _read_chunked_body(reader: _SocketReader) -> bytes:
    """Read a ``Transfer-Encoding: chunked`` request body, discarding any trailers."""
    body = bytearray()
    while True:
        line = reader.readline()
        if not line.endswith(b"\n"):
            raise _ClientGone("EOF in chunk size line")
        size_field = line.split(b";", 1)[0].strip()  # drop chunk extensions
        try:
            size = int(size_field, 16)
        except ValueError:
            raise _BadRequest(f"bad chunk size {size_field!r}") from None
        if size == 0:
            break
        body += reader.read_exact(size)
        if reader.readline().strip():
            raise _BadRequest("chunk data not followed by CRLF")
    # Trailer section: header lines up to the blank line that ends the message.
    while True:
        line = reader.readline()
        if not line.endswith(b"\n"):
            raise _ClientGone("EOF in chunked trailers")
        if not line.strip():
            return bytes(body)


def _read_request(
    reader: _SocketReader, sock: socket.socket, connection_id: int, index: int
) -> RecordedRequest | None:
    """Read and parse one request; return None if the client closed before sending one."""
    line = reader.readline()
    # RFC 9112 2.2: a server should ignore empty lines received before the request line.
    while line in (b"\r\n", b"\n"):
        line = reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest(f"bad request line {line!r}")
    method, path, version = parts

    headers = Headers()
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline()
        if not line.endswith(b"\n"):
            raise _ClientGone("EOF in request headers")
        if not line.strip():
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise _BadRequest(f"bad header line {line!r}")
        headers.add(name.strip(), value.strip())
    else:
        raise _BadRequest("too many headers")

    if headers.get("Expect", "").lower() == "100-continue":
        # Clients that wait for this interim response would otherwise stall on the body.
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = _read_chunked_body(reader)
    elif "Content-Length" in headers:
        try:
            length = int(headers["Content-Length"])
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        body = reader.read_exact(length)
    else:
        body = b""
    return RecordedRequest(method, path, version, headers, body, connection_id, index)


def split_pieces(
    data: bytes, sizes: tuple[int, int] = (1, 9), rng: random.Random | None = None
) -> list[bytes]:
    """Cut ``data`` into consecutive pieces of random length in ``sizes`` (inclusive).

    ``rng`` defaults to ``random.Random(0)`` so that, like every other random choice in
    this module, the cut is reproducible.
    """
    low, high = sizes
    if not 1 <= low <= high:
        raise ValueError(f"sizes must satisfy 1 <= low <= high, got {sizes!r}")
    rng = rng if rng is not None else random.Random(0)
    pieces: list[bytes] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(low, high)
        pieces.append(data[pos : pos + step])
        pos += step
    return pieces


def _new_gzip() -> Any:
    """Return a zlib compressor producing the gzip container (wbits=31)."""
    # zlib's compressobj type is not exposed under a public name, hence ``Any``.
    return zlib.compressobj(wbits=31)


def gzip_stream(writes: Iterable[bytes]) -> bytes:
    """Return the exact bytes a gzip response emits for this sequence of writes.

    Each non-empty write is compressed and sync-flushed, then the stream is finished, just
    as :meth:`Conn.write` and :meth:`Conn.end` do; zlib is deterministic, so the result's
    length is the Content-Length to declare for a gzip body in ``"length"`` mode.
    """
    compressor = _new_gzip()
    out = bytearray()
    for data in writes:
        if data:
            out += compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    out += compressor.flush(zlib.Z_FINISH)
    return bytes(out)


class Conn:
    """One request on one client connection, plus the tools to answer it.

    The parsed request is available as :attr:`request` and through the shortcuts
    :attr:`method`, :attr:`path`, :attr:`headers` and :attr:`body`.

    Set :attr:`keep_alive` to True (before :meth:`send_head`, so the right ``Connection``
    header is sent) to have the server read another request on the same socket after the
    handler returns. Otherwise the connection is closed after one response.

    If a handler returns after :meth:`send_head` without calling :meth:`end` or
    :meth:`abort`, the server calls :meth:`end` for it. If it returns without sending
    anything, the connection is simply closed (the client sees no response at all).
    """

    def __init__(
        self, server: LoopbackServer, sock: socket.socket, request: RecordedRequest
    ) -> None:
        self.server = server
        self.request = request
        self.keep_alive = False
        self._sock = sock
        self._stop = server.stop_event
        self._mode: BodyMode | None = None
        self._compressor: Any = None
        self._head_sent = False
        self._finished = False
        self._closed = False
        self.bytes_written = 0
        """Body bytes put on the wire after framing and compression (not the head)."""

    # -- request shortcuts -------------------------------------------------------------

    @property
    def method(self) -> str:
        """Request method, e.g. ``"POST"``."""
        return self.request.method

    @property
    def path(self) -> str:
        """Request target as sent, query string included."""
        return self.request.path

    @property
    def headers(self) -> Headers:
        """Request headers (case-insensitive)."""
        return self.request.headers

    @property
    def body(self) -> bytes:
        """Request body, de-chunked if it was sent chunked."""
        return self.request.body

    def json(self) -> Any:
        """Decode the request body as JSON."""
        return self.request.json()

    # -- state -------------------------------------------------------------------------

    @property
    def head_sent(self) -> bool:
        """True once :meth:`send_head` has run."""
        return self._head_sent

    @property
    def finished(self) -> bool:
        """True once the body was ended with :meth:`end`."""
        return self._finished

    @property
    def closed(self) -> bool:
        """True once the socket was closed (close-mode :meth:`end`, or :meth:`abort`)."""
        return self._closed

    @property
    def stopping(self) -> bool:
        """True when the server is closing and the handler should give up."""
        return self._stop.is_set()

    # -- writing -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._stop.is_set():
            raise ServerStopping
        if self._closed:
            raise RuntimeError("connection already closed")

    def raw(self, data: bytes) -> None:
        """Write ``data`` to the socket as is, with no framing (for malformed responses)."""
        self._check_open()
        self._sock.sendall(data)

    def send_head(
        self,
        status: int = 200,
        headers: HeaderInput | None = None,
        mode: BodyMode = "chunked",
        length: int | None = None,
        gzip: bool = False,
        reason: str | None = None,
    ) -> None:
        """Write the status line and headers, and choose how the body will be framed.

        ``mode="chunked"`` adds ``Transfer-Encoding: chunked``; ``"close"`` adds
        ``Connection: close`` and no length, so the body ends when the socket closes;
        ``"length"`` adds ``Content-Length: length`` (required; for a gzip body it is the
        compressed size, see :func:`gzip_stream`). ``gzip=True`` adds
        ``Content-Encoding: gzip`` and compresses every write. A framing header is only
        added when ``headers`` does not already name it, so a test can send conflicting or
        misleading headers on purpose. ``reason`` overrides the standard reason phrase.
        """
        self._check_open()
        if self._head_sent:
            raise RuntimeError("send_head called twice")
        if mode not in ("chunked", "close", "length"):
            raise ValueError(f"unknown body mode {mode!r}")
        if mode == "length" and length is None:
            raise ValueError('mode="length" needs length=')
        if reason is None:
            try:
                reason = http.HTTPStatus(status).phrase
            except ValueError:
                reason = "Unknown"

        given = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        names = {name.lower() for name, _ in given}
        extra: list[tuple[str, str]] = []
        if gzip:
            extra.append(("Content-Encoding", "gzip"))
        if mode == "chunked":
            extra.append(("Transfer-Encoding", "chunked"))
        elif mode == "length":
            extra.append(("Content-Length", str(length)))
        if mode == "close" or not self.keep_alive:
            # Tell the client not to pool a connection the server is about to close;
            # a test that wants a stale pooled connection passes its own Connection header.
            extra.append(("Connection", "close"))
        else:
            extra.append(("Connection", "keep-alive"))
        lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
        lines += [f"{name}: {value}" for name, value in given]
        lines += [f"{name}: {value}" for name, value in extra if name.lower() not in names]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        self._mode = mode
        self._compressor = _new_gzip() if gzip else None
        self._sock.sendall(head)
        self._head_sent = True

    def _send_frame(self, data: bytes) -> None:
        """Put already-compressed body bytes on the wire in the current framing."""
        if self._mode == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self._sock.sendall(data)
        self.bytes_written += len(data)

    def write(self, data: bytes) -> None:
        """Send one body write in the current framing.

        The write is one HTTP chunk in chunked mode, compressed and sync-flushed when gzip
        is on. An empty write is a no-op, because an empty chunk would end the body; use
        :meth:`raw` to send one deliberately.
        """
        self._check_open()
        if not self._head_sent:
            raise RuntimeError("write before send_head")
        if self._finished:
            raise RuntimeError("write after end")
        if not data:
            return
        if self._compressor is not None:
            # A sync flush per write lets the client decode each write as soon as it
            # arrives, which is what a streaming gzip server does.
            data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        self._send_frame(data)

    def write_split(
        self, data: bytes, sizes: tuple[int, int] = (1, 9), rng: random.Random | None = None
    ) -> None:
        """Write ``data`` as many small writes whose sizes are drawn from ``sizes``.

        Each piece is its own write (its own HTTP chunk), so the client must reassemble
        lines and UTF-8 characters cut anywhere. ``rng`` defaults to ``random.Random(0)``;
        see :func:`split_pieces`.
        """
        for piece in split_pieces(data, sizes, rng):
            self.write(piece)

    def end(self) -> None:
        r"""Finish the body properly.

        Flushes gzip, sends the ``0\r\n\r\n`` terminator in chunked mode, and in close
        mode shuts the socket down for writing and closes it.
        """
        self._check_open()
        if not self._head_sent:
            raise RuntimeError("end before send_head")
        if self._finished:
            return
        if self._compressor is not None:
            self._send_frame(self._compressor.flush(zlib.Z_FINISH))
            self._compressor = None
        if self._mode == "chunked":
            self._sock.sendall(b"0\r\n\r\n")
        self._finished = True
        if self._mode == "close":
            # The close is what ends a close-delimited body, so it happens here and not
            # later, when the handler returns.
            self._close_gracefully()

    def abort(self, rst: bool = False) -> None:
        """Cut the connection without finishing the body.

        Without ``rst`` the socket is shut down and closed, so the client sees a FIN (an
        early EOF). With ``rst=True`` ``SO_LINGER`` is set to ``(1, 0)`` and the socket is
        closed without a shutdown, so the kernel sends a TCP RST; a shutdown first would
        send a FIN that the client could read as a clean EOF before the reset arrives.
        """
        if self._closed:
            return
        try:
            if rst:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the peer may already be gone; closing below is all that matters
        self._sock.close()
        self._closed = True

    def respond(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: HeaderInput | None = None,
        gzip: bool = False,
    ) -> None:
        """Send a complete response with a Content-Length body in one go."""
        length = len(gzip_stream([body])) if gzip else len(body)
        self.send_head(status, headers, mode="length", length=length, gzip=gzip)
        self.write(body)
        self.end()

    def sleep(self, seconds: float) -> None:
        """Pause the handler for ``seconds``, unless the server closes first.

        If the server closes meanwhile this returns at once by raising
        :class:`ServerStopping`, which ends the handler quietly.
        """
        if self._stop.wait(seconds):
            raise ServerStopping

    def _close_gracefully(self) -> None:
        """Send FIN and close, unless already closed."""
        if self._closed:
            return
        # The socket may already be shut down by the peer or by LoopbackServer.close().
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        self._sock.close()
        self._closed = True


class _RequestHandler(socketserver.BaseRequestHandler):
    """socketserver glue: hands the accepted socket to the owning LoopbackServer."""

    def handle(self) -> None:
        server = cast(_ThreadedServer, self.server)
        server.owner._serve_connection(cast(socket.socket, self.request))


class _ThreadedServer(socketserver.ThreadingTCPServer):
    """ThreadingTCPServer that tracks its handler threads and their sockets.

    ``daemon_threads`` alone means nothing waits for handler threads, so the threads and
    sockets are tracked here to let :meth:`LoopbackServer.close` end and join them.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, owner: LoopbackServer, tls: ssl.SSLContext | None = None) -> None:
        self.owner = owner
        self.lock = threading.Lock()
        self.closing = False
        self.threads: set[threading.Thread] = set()
        self.sockets: set[socket.socket] = set()
        self._ids = itertools.count()
        # Port 0: the kernel picks a free port, so parallel tests never collide.
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        if tls is not None:
            # The handshake happens at the connection's first read, on its own thread, so
            # a client that rejects the certificate never holds up the accepting thread.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def process_request(self, request: Any, client_address: Any) -> None:
        sock = cast(socket.socket, request)
        # Without TCP_NODELAY, Nagle's algorithm would merge small writes and delay them
        # until the client's (delayed) ACK, hiding the split framing tests ask for.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.owner.io_timeout)
        with self.lock:
            if self.closing:
                self.shutdown_request(sock)
                return
            conn_id = next(self._ids)
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(sock, client_address),
                name=f"loopback-{self.server_address[1]}-conn-{conn_id}",
                daemon=True,
            )
            self.threads.add(thread)
            self.sockets.add(sock)
            self.owner._conn_ids[sock] = conn_id
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:
            self.owner.errors.append(exc)
        finally:
            self.shutdown_request(request)
            with self.lock:
                self.sockets.discard(request)
                self.threads.discard(threading.current_thread())
                self.owner._conn_ids.pop(request, None)


class LoopbackServer:
    """Threaded HTTP/1.1 test server on ``127.0.0.1`` with hand-written responses.

    It starts serving as soon as it is constructed; use it as a context manager or call
    :meth:`close`. Requests are dispatched to the handler registered with :meth:`route`
    for the exact request target, else for the target without its query string, else to
    the default handler, else a 404 is sent.

    Attributes:
        requests: every request received, in arrival order.
        errors: exceptions raised by handlers (not counting client disconnects); a handler
            that fails before sending a head answers 500 with the exception text.
        disconnects: socket errors (broken pipe, reset, timeout) met while serving, i.e.
            the client went away; expected when a test cancels a stream.
        stop_event: set by :meth:`close`; :meth:`Conn.sleep` waits on it.

    """

    def __init__(
        self,
        default: Handler | None = None,
        *,
        io_timeout: float = 30.0,
        join_timeout: float = 2.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Bind, start serving in a background thread and return.

        ``io_timeout`` bounds every socket read or write of a handler thread (a safety
        net; :meth:`close` does not rely on it). ``join_timeout`` bounds how long
        :meth:`close` waits for handler threads. With ``tls`` (a server-side context
        holding the certificate) the server speaks HTTPS.
        """
        self.default_handler = default
        self.io_timeout = io_timeout
        self.join_timeout = join_timeout
        self.requests: list[RecordedRequest] = []
        self.errors: list[Exception] = []
        self.disconnects: list[OSError] = []
        self.stop_event = threading.Event()
        self._routes: dict[str, Handler] = {}
        self._arrived = threading.Condition()
        self._conn_ids: dict[socket.socket, int] = {}
        self._closed = False
        self._scheme = "http" if tls is None else "https"
        self._tcp = _ThreadedServer(self, tls)
        self.host, self.port = cast(tuple[str, int], self._tcp.server_address)
        self._serve_thread = threading.Thread(
            target=self._tcp.serve_forever,
            # A short poll interval keeps shutdown() (which waits for the loop) prompt.
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.port}-accept",
            daemon=True,
        )
        self._serve_thread.start()

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (``https`` with TLS; no trailing slash)."""
        return f"{self._scheme}://{self.host}:{self.port}"

    def route(self, path: str, handler: Handler) -> Handler:
        """Serve requests for ``path`` with ``handler`` (replacing any earlier one)."""
        self._routes[path] = handler
        return handler

    def set_default(self, handler: Handler | None) -> None:
        """Set the handler for requests that match no route (None: answer 404)."""
        self.default_handler = handler

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests have arrived; return them all.

        Raises ``TimeoutError`` if they do not arrive in time.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def _find_handler(self, path: str) -> Handler:
        handler = self._routes.get(path) or self._routes.get(path.split("?", 1)[0])
        return handler or self.default_handler or _not_found

    def _serve_connection(self, sock: socket.socket) -> None:
        """Serve one connection: read requests and run handlers until it should close."""
        reader = _SocketReader(sock)
        conn_id = self._conn_ids.get(sock, -1)
        conn: Conn | None = None
        try:
            for index in itertools.count():
                if self.stop_event.is_set():
                    return
                try:
                    request = _read_request(reader, sock, conn_id, index)
                except _BadRequest as exc:
                    body = f"bad request: {exc}".encode()
                    sock.sendall(
                        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    return
                except _ClientGone:
                    return
                if request is None:
                    return
                with self._arrived:
                    self.requests.append(request)
                    self._arrived.notify_all()
                conn = Conn(self, sock, request)
                try:
                    self._find_handler(request.path)(conn)
                    if conn.head_sent and not conn.finished and not conn.closed:
                        conn.end()
                except (ServerStopping, OSError):
                    raise
                except Exception as exc:
                    self.errors.append(exc)
                    _report_failure(conn, exc)
                    return
                if (
                    not conn.keep_alive
                    or conn.closed
                    or request.headers.get("Connection", "").lower() == "close"
                ):
                    return
        except ServerStopping:
            pass
        except OSError as exc:
            if not self.stop_event.is_set():
                self.disconnects.append(exc)
        finally:
            if conn is not None:
                conn._close_gracefully()
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                sock.close()

    def close(self) -> None:
        """Stop the server and end every handler thread.

        Returns within about ``join_timeout`` seconds even if a handler is stalled.

        Order matters: the stop event wakes handlers sleeping in :meth:`Conn.sleep`;
        shutting the client sockets down wakes threads blocked in ``recv``/``send``; any
        thread still alive after ``join_timeout`` has its socket closed from here.
        """
        if self._closed:
            return
        self._closed = True
        self.stop_event.set()
        self._tcp.shutdown()  # returns once serve_forever has left its loop
        self._serve_thread.join()
        self._tcp.server_close()  # closes the listening socket
        with self._tcp.lock:
            self._tcp.closing = True
            threads = list(self._tcp.threads)
            sockets = list(self._tcp.sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + self.join_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._tcp.lock:
            leftovers = list(self._tcp.sockets)
        for sock in leftovers:
            # Only reached for a handler stuck outside Conn's methods (e.g. time.sleep);
            # its daemon thread cannot be killed, but its descriptor need not leak.
            sock.close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoopbackServer {self.url} requests={len(self.requests)}>"


def _not_found(conn: Conn) -> None:
    """Answer 404 for a path with no route and no default handler."""
    conn.respond(404, f"no route for {conn.path}".encode(), {"Content-Type": "text/plain"})


def _report_failure(conn: Conn, exc: Exception) -> None:
    """Make a failed handler visible to the client: a 500 if possible, else a cut."""
    try:
        if not conn.head_sent and not conn.closed:
            conn.respond(500, f"handler error: {exc!r}".encode(), {"Content-Type": "text/plain"})
        else:
            conn.abort()
    except (OSError, RuntimeError):
        conn.abort()


def sse_events(body: bytes) -> list[bytes]:
    """Split an SSE body after each blank-line event terminator, keeping all bytes."""
    events: list[bytes] = []
    start = 0
    for match in _SSE_EVENT_END.finditer(body):
        events.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        events.append(body[start:])
    return events


def sse_body(
    body: bytes | str,
    mode: BodyMode = "chunked",
    split: bool = False,
    gzip: bool = False,
    seed: int = 0,
    delay: float = 0.0,
    status: int = 200,
    headers: HeaderInput | None = None,
) -> Handler:
    """Return a handler that serves ``body`` as a ``text/event-stream`` response.

    The body is written one SSE event per write (cut after each blank line), or, with
    ``split=True``, each event in random 1-9 byte writes from ``random.Random(seed)``.
    ``delay`` seconds pass between events (via :meth:`Conn.sleep`, so closing the server
    ends the wait). ``mode`` and ``gzip`` are as in :meth:`Conn.send_head`; in
    ``"length"`` mode the Content-Length is computed, compressed size included. ``headers``
    are added to, and override, the default Content-Type and Cache-Control. The handler
    can serve any number of requests and sends the same bytes every time.
    """
    data = body.encode() if isinstance(body, str) else body
    given = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    names = {name.lower() for name, _ in given}
    defaults = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
    all_headers = [(n, v) for n, v in defaults if n.lower() not in names] + given

    def handler(conn: Conn) -> None:
        rng = random.Random(seed)  # per request, so every response is byte-identical
        events = sse_events(data)
        writes = [split_pieces(event, rng=rng) if split else [event] for event in events]
        length: int | None = None
        if mode == "length":
            flat = [piece for pieces in writes for piece in pieces]
            length = len(gzip_stream(flat)) if gzip else len(data)
        conn.send_head(status, all_headers, mode=mode, length=length, gzip=gzip)
        for number, pieces in enumerate(writes):
            if number and delay:
                conn.sleep(delay)
            for piece in pieces:
                conn.write(piece)
        conn.end()

    return handler


def json_error(status: int, payload: Any, headers: HeaderInput | None = None) -> Handler:
    """Return a handler that answers ``status`` with a JSON body and a Content-Length.

    ``payload`` is JSON-encoded unless it is already ``bytes`` or ``str`` (sent verbatim,
    e.g. for deliberately invalid JSON). ``headers`` are sent as well (``Retry-After``...).
    """
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    given = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    if not any(name.lower() == "content-type" for name, _ in given):
        given.insert(0, ("Content-Type", "application/json"))

    def handler(conn: Conn) -> None:
        conn.respond(status, data, given)

    return handler


def sequence(*handlers: Handler) -> Handler:
    """Return a handler that uses ``handlers`` in turn, one per request.

    The last one then serves every further request (e.g. a 503, a 503, then a stream).
    """
    if not handlers:
        raise ValueError("sequence() needs at least one handler")
    lock = threading.Lock()
    calls = itertools.count()

    def handler(conn: Conn) -> None:
        with lock:
            number = next(calls)
        handlers[min(number, len(handlers) - 1)](conn)

    return handler

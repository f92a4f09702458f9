"""``--record`` and ``replay``: saving each response as received, and playing it back.

An event stream (a 2xx with ``Content-Type: text/event-stream``) is saved as its body,
byte for byte, as ``curl`` would save it. Any other response (a JSON reply, an HTML page,
a 401) is saved with its framing, as an HTTP/1.1 message: the status line, the headers
(credentials and transfer framing left out), a blank line, then the body. ``replay``
plays the first kind through the sans-I/O core; the second, which the core alone cannot
judge (the status and the content type decide the outcome), through the real client,
from a one-shot server on ``127.0.0.1``: so the replay ends the way the live run did.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import requests

from .._shell.redact import SECRET_HEADERS
from ..errors import APIStatusError, ChatStreamError, UnexpectedResponseError
from .local_server import LocalHTTPServer

__all__ = [
    "FRAMED_PREFIX",
    "Recorder",
    "UsageError",
    "parse_recording",
    "recorded_api",
    "read_input",
    "serve_recording",
]

#: How a recording with framing starts.
FRAMED_PREFIX = b"HTTP/1.1 "

# Headers never saved: credentials and cookies, and the framing of the body as it was
# sent (the recording holds the body decoded, and the replay server frames it anew).
_LEFT_OUT = {
    *SECRET_HEADERS,
    "set-cookie",
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "keep-alive",
}


def recorded_api(data: bytes) -> str:
    """The wire a recorded event stream was read from, by its first event: ``"responses"``
    when that event is a Responses API event (its ``event:`` name or its ``type`` starts
    with ``response.``), else ``"chat"``."""
    for raw in data.splitlines():
        line = raw.strip()
        if line.startswith(b"event:"):
            return "responses" if line[6:].strip().startswith(b"response.") else "chat"
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            # The first event may be cut where the read stopped: its start is enough.
            head = payload[:200].replace(b" ", b"")
            return "responses" if head.startswith(b'{"type":"response.') else _typed(payload)
    return "chat"


def _typed(payload: bytes) -> str:
    """``"responses"`` for a whole JSON event whose ``type`` starts with ``response.``."""
    import json

    try:
        event = json.loads(payload)
    except ValueError:
        return "chat"
    kind = event.get("type") if isinstance(event, dict) else None
    return "responses" if isinstance(kind, str) and kind.startswith("response.") else "chat"


class UsageError(Exception):
    """Bad usage or unreadable input: one line to stderr, exit status 2."""


def _is_event_stream(status: int, headers: Any) -> bool:
    mime = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    # As the client reads it: no content type at all is read as an event stream too.
    return 200 <= status < 300 and mime in ("", "text/event-stream")


class Recorder:
    """Saves each response of a session: the first to ``path``, later ones (tool
    follow-ups, later turns) to ``stem-2.sse``, ``stem-3.sse``, ... beside it.

    :meth:`on_response` is a ``requests`` response hook (it sees every response's status
    and headers before its body is read); :meth:`start` gives the ``on_bytes`` callback of
    a stream; :meth:`finish` completes the recording once the stream has ended.
    """

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self._file: IO[bytes] | None = None
        self._current: Path | None = None
        self._framed = False
        self._body_seen = False

    def start(self) -> Callable[[bytes], object] | None:
        """Begin the next response's recording; its ``on_bytes`` callback (``None`` when
        not recording)."""
        self.close()
        if self.path is None:
            return None
        self.count += 1
        path = self.path
        if self.count > 1:
            path = path.with_name(f"{path.stem}-{self.count}{path.suffix}")
        self._current = path
        self._open()  # an empty file even if no response ever comes
        return self._write

    def _open(self) -> None:
        assert self._current is not None
        self.close()
        try:
            self._file = open(self._current, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise UsageError(f"cannot write {self._current}: {exc.strerror or exc}") from None
        self._framed = False
        self._body_seen = False

    def on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The response hook: start the file again for this response (a retried request
        records its last attempt), with the framing unless it is an event stream."""
        if self._current is None:
            return
        self._open()
        if not _is_event_stream(response.status_code, response.headers):
            self._framed = True
            assert self._file is not None
            reason = response.reason or http.client.responses.get(response.status_code, "")
            head = [f"HTTP/1.1 {response.status_code} {reason}".rstrip()]
            head += [
                f"{name}: {value}"
                for name, value in response.headers.items()
                if name.lower() not in _LEFT_OUT
            ]
            self._file.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace"))

    def _write(self, data: bytes) -> None:
        if self._file is not None:
            self._body_seen = True
            self._file.write(data)

    def finish(self, error: ChatStreamError | None) -> None:
        """The stream ended: add the body an error read (an error status, a page that is
        not an event stream), then close the file."""
        if self._file is not None and self._framed and not self._body_seen:
            body = ""
            if isinstance(error, (APIStatusError, UnexpectedResponseError)):
                body = error.body
            self._file.write(body.encode("utf-8"))
        self.close()

    def close(self) -> None:
        """Close the file of the response being recorded."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- replay ------------------------------------------------------------------------------


def read_input(path: str) -> tuple[bytes, Iterable[bytes]]:
    """The first bytes of a recording (a file, or ``-`` for standard input) and an
    iterable of all of its bytes, read as they come (a live pipe shows as it flows)."""
    import io
    import sys
    from typing import BinaryIO, cast

    if path == "-":
        stdin = cast(io.BufferedReader, sys.stdin.buffer)
        first = stdin.read1(65536)
        rest: Iterator[bytes] = iter(lambda: stdin.read1(65536), b"")
        return first, _chain(first, rest)
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by _file_chunks
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        first = handle.read(65536)
    except OSError as exc:
        handle.close()
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return first, _file_chunks(handle, path, first)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _file_chunks(handle: IO[bytes], path: str, first: bytes) -> Iterator[bytes]:
    with handle:
        if first:
            yield first
        try:
            yield from iter(lambda: handle.read(65536), b"")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_recording(data: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """The status, reason, headers and body of a recording with framing.

    A recording whose CRLFs became LFs (an editor, git's line-ending conversion) is read
    too: its head ends at the first blank line either way, and an event stream's body
    may end its lines either way. The framing headers are dropped: the replay sends the
    body whole, with its own length.
    """
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf + 1):
        head, body = data[:crlf], data[crlf + 4 :]
    elif lf != -1:
        head, body = data[:lf], data[lf + 2 :]
    else:
        raise UsageError(
            "the recording starts like an HTTP response but no blank line ends its head"
        )
    lines = [line.rstrip("\r") for line in head.decode("latin-1").split("\n")]
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise UsageError(
            f"the recording starts like an HTTP response but its first line is not a "
            f"status line: {lines[0][:80]!r}"
        )
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() not in _FRAMING:
            headers.append((name.strip(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body


#: Headers about how the recorded body was framed, which its replay frames anew.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


class serve_recording:
    """A server on ``127.0.0.1`` answering every request with the recorded response;
    a context manager giving its base URL."""

    def __init__(self, data: bytes) -> None:
        self.status, self.reason, self.headers, self.body = parse_recording(data)
        self._server = _OneShotServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chatstream-replay-server",
            daemon=True,
        )

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


class _OneShotServer(LocalHTTPServer):
    def __init__(self, recording: serve_recording) -> None:
        self.recording = recording
        super().__init__(_ReplayHandler)


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OneShotServer
    timeout = 10.0

    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""

    def do_POST(self) -> None:
        recording = self.server.recording
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True
        self.send_response_only(recording.status, recording.reason or None)
        for name, value in recording.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(recording.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(recording.body)
        self.connection.shutdown(socket.SHUT_WR)

"""The client's own transport pieces: the reader of a response body, and a requests
adapter whose blocked requests can be cancelled from another thread. Nothing outside
this module touches urllib3's or http.client's internals.

Reading a body
--------------
:class:`BodyReader` is what a stream reads: ``read(size)`` returns whatever has arrived
(up to ``size`` bytes, decoded), ``release()`` hands the connection back to the pool
once the body was read to its end, and ``shutdown()`` wakes a blocked read from any
thread at once.

Cancelling the wait for the headers
-----------------------------------
Once a response has arrived, a stream is cancelled through urllib3's
``HTTPResponse.shutdown()``, which wakes a blocked body read at once. Before that -- the
request is sent and the server has not answered yet -- the session's request is blocked inside
urllib3 with no response to shut down, and would stay blocked until the read timeout.
:class:`CancellableAdapter` closes that gap: its connections record themselves in the
:class:`ConnectionSlot` of the request being sent on the current thread (see
:func:`tracking`), so that :meth:`ConnectionSlot.abort` can shut the socket down from
another thread and the blocked ``getresponse()`` fails at once.

The client mounts it on the session it makes. A session you pass to the client keeps
its own adapters, so a close during the wait for the headers then ends the worker only
at the read timeout (the idle timeout + 1 s), as before; mount a
:class:`CancellableAdapter` on your session to get prompt cancellation there too. The
TCP connect itself cannot be interrupted this way: it is bounded by the connect timeout.

After ``fork()``
----------------
A child process inherits its parent's pooled connections: the same sockets. Were it to
send on one, parent and child would read each other's answers.
:func:`forget_pooled_connections` empties every pool of a session in the child, closing
only the child's copy of each socket's descriptor: nothing is sent, nothing is shut
down, and the parent's connection is untouched (see
:mod:`chatstream._shell.process`).

Query strings in urllib3's logs are masked by :mod:`chatstream._shell.redact`.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.response

from .chunked import MAX_LINE, ChunkedDecoder, ChunkedError
from .deadlines import DRAIN_TIME

__all__ = [
    "READ_ERRORS",
    "BodyReader",
    "CancellableAdapter",
    "ConnectionSlot",
    "endpoint_url",
    "forget_pooled_connections",
    "tracking",
]

_log = logging.getLogger("chatstream")

#: How long a request waits, at most, for a connection being drained: the drain's bound,
#: and the watchdog's tick to notice that it ran out.
DRAIN_WAIT = DRAIN_TIME + 0.25

#: What a read of a body may raise: requests', urllib3's, http.client's and the
#: socket's errors.
READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ChunkedError,
    OSError,
)


# --- reading a body ----------------------------------------------------------------------


class BodyReader:
    """The body of a response, read as it arrives.

    Each read returns whatever is buffered or arrives next, so no event waits for later
    bytes. A body with no Content-Encoding and no Content-Length is read straight from the
    socket's buffered reader under ``http.client``'s response: a chunked one through
    :class:`~chatstream._shell.chunked.ChunkedDecoder`, so that one read takes every chunk that
    has arrived (``http.client`` returns one chunk, one SSE event, per read), one that
    ends at connection close as it comes. Any other body goes through urllib3, which
    decodes it and notices a body shorter than its Content-Length.
    """

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self._closed_by_server = False
        self._drained: Callable[[], None] | None = None
        raw = response.raw
        #: Reads what has arrived, up to a size, decoded; ``b""`` at the end.
        self.read: Callable[[int], bytes] = lambda size: raw.read1(size, decode_content=True)
        if self.headers.get("content-encoding") or self.headers.get("content-length"):
            return
        body = getattr(raw, "_fp", None)
        if not isinstance(body, http.client.HTTPResponse) or body.fp is None:
            return
        if not body.chunked:
            self.read = body.read1
        elif body.chunk_left is None:  # nothing of the body was read yet
            self._body = body
            self._chunks = ChunkedDecoder()
            self.read = self._read_chunked

    def _read_chunked(self, size: int) -> bytes:
        body, chunks = self._body, self._chunks
        while True:
            if chunks.error is not None:  # after the bytes before it: raise, never read on
                raise chunks.error
            buffered = body.fp
            if buffered is None:  # the end was read
                return b""
            data = buffered.read1(size)
            if not data:
                if not chunks.finish():
                    raise http.client.IncompleteRead(b"")  # as http.client: the body was cut
                # Complete, but the server closed the connection: never pool it.
                self._closed_by_server = True
                body.close()
                return b""
            out = chunks.feed(data)
            if chunks.done:
                # What http.client does at the end of a chunked body: the connection
                # can go back to the pool (see release()).
                body.close()
                return out
            if out:
                return out

    def release(self) -> None:
        """The body was read to its end: give the connection back to the pool for the
        next request, as urllib3 does when it reads the end itself."""
        raw = self.response.raw
        fp = getattr(raw, "_fp", None)
        if fp is not None and fp.isclosed() and not self._closed_by_server:
            with contextlib.suppress(Exception):
                raw.release_conn()
        self._drain_over()

    def expect_end(self) -> None:
        """The stream is over; only the end of the body is still to be read. Until
        :meth:`release` or :meth:`close`, a request of the same pool that finds no idle
        connection waits for this one (see :class:`_QuietPool`) rather than open one."""
        pool = getattr(self.response.raw, "_pool", None)
        if isinstance(pool, _QuietPool) and self._drained is None:
            self._drained = pool.draining()

    def _drain_over(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None:
            drained()

    def shutdown(self) -> None:
        """Wake a read blocked on this body's socket, from any thread, at once.

        ``Response.close()`` from another thread blocks until the server sends more
        (3.5 s measured); urllib3's ``shutdown()`` does not.
        """
        with contextlib.suppress(Exception):  # already released: nothing is blocked on it
            self.response.raw.shutdown()

    def close(self) -> None:
        """Close the response (its connection too, unless :meth:`release` gave it back)."""
        try:
            self.response.close()
        finally:
            self._drain_over()


# --- cancelling a request that waits for its headers -------------------------------------


class ConnectionSlot:
    """The connection one request is using, so that another thread can abort it.

    Thread-safe. Once :meth:`abort` has been called, every connection recorded later is
    aborted as soon as it has a socket, so a request can never outlive the abort by more
    than its TCP connect.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._connection: urllib3.connection.HTTPConnection | None = None
        self._aborted = False
        #: When the request started waiting for the response headers (``clock`` time),
        #: or ``None``: lets a watchdog bound the whole header wait, which a socket read
        #: timeout cannot do when the server trickles the headers.
        self.waiting_since: float | None = None

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""
        return self._aborted

    def record(self, connection: urllib3.connection.HTTPConnection) -> None:
        """The request is being sent on ``connection``."""
        with self._lock:
            self._connection = connection
            if self._aborted:
                _shut(connection)

    def waiting(self) -> None:
        """The request was sent; its headers are awaited from now on."""
        self.waiting_since = self._clock()

    def clear(self) -> None:
        """The request is over: its connection may go back to the pool, and must no
        longer be touched from here."""
        with self._lock:
            self._connection = None
            self.waiting_since = None

    def abort(self) -> None:
        """Shut down the recorded connection's socket (from any thread; returns at once),
        and any connection recorded later."""
        with self._lock:
            self._aborted = True
            if self._connection is not None:
                _shut(self._connection)


def _shut(connection: urllib3.connection.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing blocks on it
            sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


@contextlib.contextmanager
def tracking(slot: ConnectionSlot | None) -> Iterator[None]:
    """Record in ``slot`` the connection of every request this thread sends meanwhile
    through a :class:`CancellableAdapter`."""
    previous = getattr(_current, "slot", None)
    _current.slot = slot
    try:
        yield
    finally:
        _current.slot = previous


def _record(connection: urllib3.connection.HTTPConnection) -> None:
    """A request is being sent on ``connection``: record it in the thread's slot."""
    slot: ConnectionSlot | None = getattr(_current, "slot", None)
    if slot is not None:
        slot.record(connection)


def _before_response(connection: urllib3.connection.HTTPConnection) -> None:
    """About to wait for the headers: if the slot was aborted while the connection was
    being opened (it had no socket to shut down yet), shut it down now."""
    slot: ConnectionSlot | None = getattr(_current, "slot", None)
    if slot is not None:
        slot.waiting()
        if slot.aborted:
            _shut(connection)


# Interim responses skipped before one request's final response, at most: a server that
# sends them forever is held to this (and to the watchdog's bound on the header wait).
_MAX_INTERIM = 32
_MAX_HEADERS = 100


class _HTTPResponse(http.client.HTTPResponse):
    """``http.client``'s response, which skips every interim ``1xx`` response (``102
    Processing``, ``103 Early Hints``) before the final one, as it skips ``100
    Continue``. (``101 Switching Protocols`` is final: it is returned.)"""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(_MAX_INTERIM):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 <= status < 200) or status == 101:
                return version, status, reason
            _skip_headers(self.fp)
        raise http.client.HTTPException(f"more than {_MAX_INTERIM} interim responses")


def _skip_headers(fp: Any) -> None:
    """Read and drop the header lines of an interim response, up to its blank line."""
    for _ in range(_MAX_HEADERS + 1):
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return
    raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")


class _HTTPConnection(urllib3.connection.HTTPConnection):
    """A connection that records itself in the current thread's slot, and skips interim
    responses."""

    response_class = _HTTPResponse

    def request(self, *args: Any, **kwargs: Any) -> None:
        _record(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        _before_response(self)
        return super().getresponse()


class _HTTPSConnection(_HTTPConnection, urllib3.connection.HTTPSConnection):
    """The same over TLS (the recording methods come first in the MRO)."""


class _QuietPool(urllib3.connectionpool.HTTPConnectionPool):
    """A pool that closes a connection it has no room for without a warning, and lends
    a connection being drained to the next request.

    Each stream holds its connection while it runs, so more concurrent streams than the
    pool's size is normal use, not a misconfiguration: urllib3 would log "Connection
    pool is full, discarding connection" at the end of every such stream.

    A stream's caller gets its response at ``[DONE]``, before the end of the body was
    read (the drain: :meth:`chatstream._shell.reading.ReadLoop.drain`). An agent loop's
    next request then comes at once: finding no idle connection while one is being
    drained, it waits for that drain to end (:data:`DRAIN_WAIT` at most), and so reuses
    the connection instead of opening another.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drains = threading.Condition(threading.Lock())
        self._draining = 0  # connections being drained
        self._drained = 0  # drains ended, ever

    def draining(self) -> Callable[[], None]:
        """A connection of this pool is being drained: returns what to call, once, when
        it is back in the pool or closed."""
        with self._drains:
            self._draining += 1

        def drained() -> None:
            with self._drains:
                self._draining -= 1
                self._drained += 1
                self._drains.notify_all()

        return drained

    def forget_drains(self) -> None:
        """In a forked child: the drains in progress are the parent's threads'."""
        self._drains = threading.Condition(threading.Lock())
        self._draining = 0

    def _get_conn(self, timeout: float | None = None) -> Any:
        if self._draining and not self._idle():
            with self._drains:
                if self._draining:
                    ended = self._drained
                    self._drains.wait_for(lambda: self._drained != ended, DRAIN_WAIT)
        return super()._get_conn(timeout)

    def _idle(self) -> bool:
        """True when a connection waits in the pool (its free slots hold ``None``)."""
        pool = self.pool
        return pool is not None and any(pool.queue)

    def _put_conn(self, conn: Any) -> None:
        pool = self.pool
        if self.block or pool is None:
            super()._put_conn(conn)
            return
        try:
            pool.put(conn, block=False)
            return
        except queue.Full:
            _log.debug("%d connections are pooled already: closing this one", pool.maxsize)
        if conn:
            conn.close()


class _HTTPConnectionPool(_QuietPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(_QuietPool, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {
    "http": _HTTPConnectionPool,
    "https": _HTTPSConnectionPool,
}


class CancellableAdapter(requests.adapters.HTTPAdapter):
    """An ``HTTPAdapter`` whose requests can be aborted from another thread while they
    wait for the response (see the module documentation). Otherwise the same as
    requests' own, proxies included (SOCKS proxies excepted: their requests are not
    tracked)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def close(self) -> None:
        """Close every pooled connection now. urllib3 2.x leaves that to the garbage
        collector, which cannot run it while any response (a finished stream's, say)
        still refers to its pool: the sockets would stay open after ``Client.close()``."""
        for manager in (self.poolmanager, *self.proxy_manager.values()):
            for key in manager.pools.keys():  # noqa: SIM118 (it cannot be iterated)
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        super().close()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:
            manager.pool_classes_by_scheme = _POOLS
        return manager


# --- after fork() ---------------------------------------------------------------------


def forget_pooled_connections(session: requests.Session) -> None:
    """Empty every connection pool of ``session`` (its adapters', proxies' included),
    in a forked child, without touching the parent's connections."""
    for adapter in list(session.adapters.values()):
        managers = [getattr(adapter, "poolmanager", None)]
        managers += list(getattr(adapter, "proxy_manager", {}).values())
        for manager in managers:
            pools = getattr(manager, "pools", None)
            if pools is None:
                continue
            # A parent thread may have held the pools' lock at the fork.
            pools.lock = threading.RLock()
            for key in pools.keys():  # noqa: SIM118 (it cannot be iterated)
                pool = pools.get(key)
                if isinstance(pool, urllib3.connectionpool.HTTPConnectionPool):
                    _forget_pool(pool)


def _forget_pool(pool: urllib3.connectionpool.HTTPConnectionPool) -> None:
    old = pool.pool
    if old is None:  # closed
        return
    # Read without the queue's lock: a parent thread may have held it at the fork.
    connections = [c for c in list(old.queue) if c is not None]
    fresh: queue.LifoQueue[Any] = type(old)(old.maxsize)
    for _ in range(old.maxsize):  # as urllib3 fills a new pool: room for each
        fresh.put(None)
    pool.pool = fresh
    if isinstance(pool, _QuietPool):
        pool.forget_drains()
    for connection in connections:
        sock, connection.sock = connection.sock, None
        if sock is not None:
            # The child's descriptor only: no shutdown(), and a TLS socket sends no
            # close_notify; the parent's copy keeps the connection open.
            with contextlib.suppress(OSError):
                sock.close()


# --- URLs with a query string ------------------------------------------------------------


def endpoint_url(base_url: str, path: str = "/chat/completions") -> str:
    """``base_url`` with ``path`` appended to its path; its query string is kept
    (``https://gw/v1?key=k`` gives ``https://gw/v1/chat/completions?key=k``)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))

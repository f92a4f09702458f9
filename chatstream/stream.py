"""A live stream: a worker thread reads the response and feeds the core; the events
reach you through a bounded queue (iterate the stream) and through callbacks.

Threads
-------
* The **worker** (one per stream, a daemon) sends the request, reads the body with
  blocking reads, runs the core, calls ``on_event`` (unless ``dispatch`` hands the call
  to another thread) and puts the events on the queue. When the queue is full it waits,
  which stops reading: that is the backpressure.
* The **watchdog** (one per process, see :mod:`chatstream._watchdog`) ends a stream that
  waited too long for bytes by shutting its socket down.
* **Your** threads iterate, wait in :meth:`ChatStream.result`, or call
  :meth:`ChatStream.close`, which returns at once from any thread.

Each stream has exactly one outcome: completed, failed (an error, with the partial
response), or closed by the caller.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import requests
import urllib3.exceptions

from . import _http, _transport
from ._watchdog import Watchdog
from .errors import (
    CallbackError,
    ChatStreamError,
    ConfigurationError,
    IdleTimeoutError,
    StreamClosedError,
    StreamError,
)
from .events import RateLimits, ResponseEvent
from .parser import StreamParser
from .response import Response

if TYPE_CHECKING:
    from .client import Client, Turn

__all__ = ["ChatStream"]

log = logging.getLogger("chatstream")

#: Bytes asked for per read: whatever has arrived, up to this much.
READ_SIZE = 65536

EventCallback = Callable[[ResponseEvent], object]
EndCallback = Callable[[Response], object]
BytesCallback = Callable[[bytes], object]
Dispatch = Callable[[Callable[[], None]], object]


class _Terminal:
    """The queue's last item: how the stream ended."""

    __slots__ = ("error",)

    def __init__(self, error: ChatStreamError | None) -> None:
        self.error = error


#: Put on the queue to wake a blocked consumer after close().
_WAKE = _Terminal(None)


class _Interrupted(Exception):
    """The worker was told to stop while waiting for queue space."""


class _EventQueue(queue.Queue):  # type: ignore[type-arg]
    """A ``queue.Queue`` of event batches whose size counts events, not batches.

    The worker puts the events of one read as a batch, so handing events across threads
    costs one lock round-trip per read rather than per event, and no event waits for a
    later one.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._events = 0
        self._interrupted = False

    def _qsize(self) -> int:
        return self._events

    def _put(self, item: list[ResponseEvent] | _Terminal) -> None:
        self.queue.append(item)
        self._events += len(item) if isinstance(item, list) else 1

    def _get(self) -> list[ResponseEvent] | _Terminal:
        item = self.queue.popleft()
        self._events -= len(item) if isinstance(item, list) else 1
        return item  # type: ignore[no-any-return]

    def put_batch(self, batch: list[ResponseEvent]) -> None:
        """Put a batch, waiting while the queue is full.

        When the iterator has not taken the last batch yet, that batch takes these events
        too, and needs no second wake-up: an iterator that runs behind the worker (as it
        does whenever the worker holds the interpreter lock) takes everything queued with
        one ``get``.

        Raises:
            _Interrupted: :meth:`interrupt` was called while waiting.
        """
        with self.mutex:  # (not_full's lock, without the Condition's wrappers)
            while self.maxsize > 0 and self._events >= self.maxsize:
                if self._interrupted:
                    raise _Interrupted
                self.not_full.wait()
            last = self.queue[-1] if self.queue else None
            if type(last) is list:
                last += batch
                self._events += len(batch)
            else:
                self._put(batch)
                self.unfinished_tasks += 1
                self.not_empty.notify()

    def put_final(self, item: _Terminal) -> None:
        """Put an item even when the queue is full (the end of the stream, a wake-up)."""
        with self.mutex:
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify_all()

    def interrupt(self) -> None:
        """Make a waiting (or the next waiting) :meth:`put_batch` give up."""
        with self.mutex:
            self._interrupted = True
            self.not_full.notify_all()


# Streams still running, closed at interpreter exit so that no worker is cut off in the
# middle of a write to a dying interpreter.
_LIVE: weakref.WeakSet[_Worker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for worker in list(_LIVE):
        worker.stop("closed")


class _Worker:
    """Everything the worker thread uses. It holds no reference to the
    :class:`ChatStream`, so a stream dropped without ``close()`` can be collected, and
    its finalizer then stops the worker."""

    def __init__(
        self,
        client: Client,
        body: dict[str, Any],
        *,
        on_event: EventCallback | None,
        on_end: EndCallback | None,
        dispatch: Dispatch | None,
        queue_size: int,
        iterate: bool,
        turn: Turn | None,
        watchdog: Watchdog,
        parser: StreamParser,
        on_bytes: BytesCallback | None = None,
    ) -> None:
        self.client = client
        self.on_bytes = on_bytes
        self.body = body
        self.on_event = on_event
        self.on_end = on_end
        self.dispatch = dispatch
        self.iterate = iterate
        self.turn = turn
        self.watchdog = watchdog
        self.clock = watchdog.clock
        self.timeouts = client.timeouts
        self.queue = _EventQueue(queue_size)
        self.parser = parser
        self.finished = threading.Event()
        self.outcome: Response | None = None
        self.error: ChatStreamError | None = None
        # Why the stream is being stopped from outside the worker: "closed", "idle",
        # "event", "total", "grace" or "callback". The first reason wins.
        self.stop_reason: str | None = None
        self._stop_lock = threading.Lock()
        # Set (under the lock) once the outcome is being decided: stop() is then too late.
        self._ending = False
        self._stopped = threading.Event()
        self._response: requests.Response | None = None
        # The body's read function, chosen by _attach().
        self._read1: Callable[[int], bytes] = _no_body
        # The connection of the request while it waits for the headers (before there
        # is a response to shut down): stop() aborts it.
        self._slot = _transport.ConnectionSlot(self.clock)
        self._callback_error: BaseException | None = None
        # Timestamps (the watchdog's clock) for the limits.
        self._started = self.clock()
        self._reading_since: float | None = None
        # Seconds spent blocked reading since the last data event (reads that brought
        # only keep-alives or part of an event): the event limit's clock, which, like
        # the idle one, does not run while callbacks or a full queue hold the worker.
        self._event_waited = 0.0
        self._grace = False
        self._last_event_at = self._started
        self.thread = threading.Thread(target=self._run, name="chatstream-worker", daemon=True)

    def start(self) -> None:
        _LIVE.add(self)
        self.watchdog.register(self)
        self.thread.start()

    # --- stopping from outside ---------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Ask the worker to stop (from any thread); returns at once.

        The first reason wins, except that the finish grace (``"grace"``, which only
        ends the reading of a stream that has finished) gives way to any later one: a
        ``close()`` must still free a worker that waits for queue space.
        """
        with self._stop_lock:
            if self._ending or (self.stop_reason not in (None, "grace")):
                return
            if self.stop_reason == "grace" and reason == "grace":
                return
            self.stop_reason = reason
        response = self._response
        if reason != "grace":
            self._stopped.set()
            # The grace must not interrupt the queue: the stream's last events (its
            # Completed) are still to be delivered.
            self.queue.interrupt()
            self._slot.abort()
        if response is not None:
            _shutdown(response)

    def check_deadline(self, now: float) -> float | None:
        """The watchdog's question: stop if a time limit has passed; else say when to
        look again."""
        if self.finished.is_set() or self.stop_reason is not None:
            return None
        t = self.timeouts
        deadlines: list[tuple[float, str]] = []
        if t.total is not None:
            deadlines.append((self._started + t.total, "total"))
        waited = self._event_waited  # read before the start of the read (see _read_some)
        headers_since = self._slot.waiting_since
        if headers_since is not None and t.idle is not None:
            # The whole wait for the headers, which a server trickling them stretches
            # past any socket read timeout; the same bound as that timeout.
            deadlines.append((headers_since + t.idle + 1.0, "idle"))
        since = self._reading_since
        if since is not None:
            if self._grace:
                deadlines.append((since + t.finish_grace, "grace"))
            if t.idle is not None:
                deadlines.append((since + t.idle, "idle"))
            if t.event is not None:
                deadlines.append((since + t.event - waited, "event"))
        if not deadlines:
            return None
        when, reason = min(deadlines)
        if now >= when:
            self.stop(reason)
            return None
        return when

    # --- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        error: ChatStreamError | None = None
        try:
            response = self._open()
            if response is not None:
                self._read(response)
        except ChatStreamError as exc:
            # Once stopped from outside (closed, a time limit, a callback), what the
            # stopping caused (a failed read, a retry given up) is not the outcome: the
            # reason is (see _end). An error the stream itself reported is kept there.
            if self.stop_reason in (None, "grace"):
                error = exc
        except _Interrupted:
            pass
        except Exception as exc:  # a bug: still end the stream, never leave a consumer hanging
            log.exception("chatstream worker failed")
            error = StreamError(f"Internal error in chatstream ({type(exc).__name__}).")
            error.__cause__ = exc
        finally:
            if self._response is not None:
                self._response.close()
            self.watchdog.unregister(self)
            _LIVE.discard(self)
        self._end(error)

    def _open(self) -> requests.Response | None:
        """Send the request (retrying while nothing was received); return the response,
        or None when closed meanwhile."""
        response = self.client._send(
            self.body, turn=self.turn, stopped=self._stopped, attach=self._attach, slot=self._slot
        )
        if response is not None:
            self._attach(response)
        return response

    def _attach(self, response: requests.Response) -> None:
        """Make ``response`` the one :meth:`stop` wakes (as soon as its headers arrived,
        so that reading an error body is interruptible too)."""
        self._response = response
        self._read1 = _body_reader(response)
        if self.stop_reason is not None:
            _shutdown(response)

    def _read(self, response: requests.Response) -> None:
        parser = self.parser
        limits = _http.rate_limit_headers(response.headers)
        if limits:
            self._deliver([RateLimits(limits)])
        mime = _http.media_type(response.headers)
        if mime and mime != "text/event-stream":
            if mime == "application/json" or mime.endswith("+json"):
                self._read_completion(response, mime)
                return
            self._reading_since = self.clock()  # the snippet read is watched too
            try:
                error = _http.unexpected_response(response, mime, self.client._secrets)
            finally:
                self._reading_since = None
            raise error
        seen = 0
        while True:
            # read1() on every kind of body: urllib3's read_chunked() would be a little
            # faster per chunk, but it waits for a whole HTTP chunk (up to the read
            # size), holding back the events of a chunk whose start has arrived.
            data = self._read_some(READ_SIZE)
            if self.stop_reason is not None:
                break
            if not data:
                _release_at_end(response)
                break
            if self.on_bytes is not None:
                self._record(data)
            events = parser.feed(data)
            if events:
                self._deliver(events)
            if parser.messages != seen:
                seen = parser.messages
                self._event_waited = 0.0
            if parser.ended:
                break
            self._grace = parser.accumulator.all_choices_finished
        self._conclude()

    def _read_some(self, size: int) -> bytes:
        """One blocking read of what has arrived (up to ``size`` bytes, decoded), watched
        by the watchdog; ``b""`` at the end of the body or once stopped."""
        self._reading_since = started = self.clock()
        try:
            return self._read1(size)
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            if self.stop_reason is not None:
                return b""  # the read failed because the stream was stopped
            error = _http.transport_error(
                exc,
                before_response=False,
                secrets=self.client._secrets,
                idle=self.timeouts.idle,
            )
        finally:
            # In this order: the watchdog reads the waited time first, so it may count
            # a read late, never twice.
            self._reading_since = None
            self._event_waited += self.clock() - started
        # Raised outside the except block, with its redacted cause: the original may
        # quote the URL, and must not be chained as the error's context.
        raise error

    def _read_completion(self, response: requests.Response, mime: str) -> None:
        """A server that ignored ``"stream": true`` sent one JSON completion."""
        limit = self.client.max_event_bytes
        pieces: list[bytes] = []
        size = 0
        while size <= limit:
            data = self._read_some(min(READ_SIZE, limit + 1 - size))
            if not data or self.stop_reason is not None:
                break
            if self.on_bytes is not None:
                self._record(data)
            pieces.append(data)
            size += len(data)
        if self.stop_reason is not None:
            raise _Interrupted  # closed or timed out while reading: _end() reports it
        self._deliver(self.parser.feed_completion(b"".join(pieces), content_type=mime))
        self._conclude()

    def _conclude(self) -> None:
        """The reading stopped: decide how the stream ended."""
        parser = self.parser
        reason = self.stop_reason
        if reason is not None and reason != "grace":
            raise _Interrupted  # _end() turns the reason into the error
        # EOF, [DONE], or the finish grace ran out: the core decides.
        if not parser.ended:
            self._deliver(parser.close())
        if parser.error is not None:
            raise parser.error

    def _stop_error(self, reason: str) -> ChatStreamError:
        """The error for a stream stopped from outside the worker."""
        if reason == "closed":
            return StreamClosedError("The stream was closed before it ended.")
        if reason == "callback":
            error = CallbackError(
                "A callback (on_event or on_bytes) raised; the stream was stopped."
            )
            error.__cause__ = self._callback_error
            return error
        t = self.timeouts
        limit = {"idle": t.idle, "event": t.event, "total": t.total}[reason] or 0.0
        message = {
            "idle": f"No data arrived for {limit} s (idle timeout); a proxy that buffers "
            "the whole response looks like this too.",
            "event": f"No event arrived for {limit} s (event timeout).",
            "total": f"The stream took longer than {limit} s (total timeout).",
        }[reason]
        return IdleTimeoutError(message, timeout=limit, limit=reason)

    # --- delivering --------------------------------------------------------------------

    def _deliver(self, events: list[ResponseEvent]) -> None:
        telemetry = self.client.telemetry
        if telemetry is not None:
            now = self.clock()
            for event in events:
                _call_hook(telemetry.on_sse_event, event, None, now - self._last_event_at)
                self._last_event_at = now
        callback = self.on_event
        if callback is not None:
            if self.dispatch is None:
                for event in events:
                    if self.stop_reason not in (None, "grace"):
                        # Closed (or timed out) meanwhile: no more callbacks, so a slow
                        # one holds the worker for the call it is in, not the batch.
                        raise _Interrupted
                    try:
                        callback(event)
                    except Exception as exc:
                        self._callback_failed(exc)
                        raise _Interrupted from None
            else:
                for event in events:
                    self.dispatch(self._dispatched(callback, event))
        if self.iterate:
            self.queue.put_batch(events)

    def _record(self, data: bytes) -> None:
        """Hand body bytes to ``on_bytes``, on this thread."""
        assert self.on_bytes is not None
        try:
            self.on_bytes(data)
        except Exception as exc:
            self._callback_failed(exc)
            raise _Interrupted from None

    def _dispatched(self, callback: EventCallback, event: ResponseEvent) -> Callable[[], None]:
        def call() -> None:
            if self._callback_error is not None or self.stop_reason == "closed":
                return
            try:
                callback(event)
            except Exception as exc:
                self._callback_failed(exc)

        return call

    def _callback_failed(self, exc: BaseException) -> None:
        if self.finished.is_set():
            # A dispatched callback that ran after the end: too late to change the
            # outcome, but never silent.
            log.error("an on_event callback raised after the stream ended", exc_info=exc)
        elif self._callback_error is None:
            self._callback_error = exc
            self.stop("callback")

    def _end(self, error: ChatStreamError | None) -> None:
        parser = self.parser
        with self._stop_lock:
            self._ending = True
            reason = self.stop_reason
        if error is None and reason is not None and reason != "grace":
            error = self._stop_error(reason)
        if error is not None:
            error = parser.fail(error)
            # Errors quote what the server sent, which may echo the key back.
            _http.scrub_error(error, self.client._secrets)
        self.error = error
        self.outcome = parser.response
        telemetry = self.client.telemetry
        if telemetry is not None and error is not None:
            _call_hook(telemetry.on_sse_event, None, error, self.clock() - self._last_event_at)
        if error is None:
            log.debug("stream completed (%d events read)", parser.messages)
        else:
            log.debug("stream ended: %s: %s", error.kind, error.message)
        self.finished.set()
        self.queue.put_final(_Terminal(error))
        if self.on_end is not None:
            outcome = self.outcome
            if self.dispatch is None:
                _call_quietly(self.on_end, outcome)
            else:
                on_end = self.on_end
                self.dispatch(lambda: _call_quietly(on_end, outcome))


def _call_quietly(callback: EndCallback, response: Response) -> None:
    try:
        callback(response)
    except Exception:
        log.exception("an on_end callback raised")


def _call_hook(hook: Callable[..., object], *args: object) -> None:
    """Call a telemetry hook; one that raises is logged, never allowed to break (or,
    worse, leave unfinished) the stream."""
    try:
        hook(*args)
    except Exception:
        log.exception("a telemetry hook raised")


def _stop_worker(ref: weakref.ref[_Worker]) -> None:
    """Close a dropped stream's worker, if it still exists."""
    worker = ref()
    if worker is not None:
        worker.stop("closed")


def _no_body(size: int) -> bytes:
    return b""


def _body_reader(response: requests.Response) -> Callable[[int], bytes]:
    """The function that reads what has arrived of the body, up to a size, decoded.

    ``read1`` returns whatever is buffered or arrives next, so no event waits for later
    bytes, whether the body is chunked or ends at connection close. Such a body, with no
    Content-Encoding, is read straight from the ``http.client`` response under urllib3's:
    urllib3's own ``read1`` calls the same method after bookkeeping (2.5 µs against 1.0 µs
    per HTTP chunk, measured). Any other body goes through urllib3, which decodes it and
    notices a body shorter than its Content-Length.
    """
    raw = response.raw
    headers = response.headers
    if not headers.get("content-encoding") and not headers.get("content-length"):
        read1 = getattr(getattr(raw, "_fp", None), "read1", None)
        if callable(read1):
            return cast("Callable[[int], bytes]", read1)
    return lambda size: raw.read1(size, decode_content=True)


def _release_at_end(response: requests.Response) -> None:
    """The body was read to its end: give the connection back to the pool for the next
    request, as urllib3 does when it reads the end itself (see :func:`_body_reader`)."""
    raw = response.raw
    fp = getattr(raw, "_fp", None)
    if fp is not None and fp.isclosed():
        with contextlib.suppress(Exception):
            raw.release_conn()


def _shutdown(response: requests.Response) -> None:
    """Wake a read blocked on this response's socket, from any thread, at once.

    ``Response.close()`` from another thread blocks until the server sends more (3.5 s
    measured); urllib3's ``shutdown()`` does not.
    """
    with contextlib.suppress(Exception):  # already released: nothing is blocked on it
        response.raw.shutdown()


class ChatStream:
    """A streaming response being read on a worker thread.

    Iterate it for the events, in order; wait for the end with :meth:`result`; stop it
    from any thread with :meth:`close` (or a ``with`` block). A stream that is dropped
    without being closed is closed when it is garbage-collected.

    Created by :meth:`Client.stream <chatstream.Client.stream>`.
    """

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker
        self._iterable = worker.iterate
        self._exhausted = False
        self._closed = False
        # The finalizer holds the worker weakly: the error it keeps has a traceback
        # whose frames refer to this stream, and a strong reference from the
        # finalizer registry would keep both alive forever (a leak per failed stream).
        # A running worker is held by its thread, so the reference lives while needed.
        self._finalizer = weakref.finalize(self, _stop_worker, weakref.ref(worker))
        worker.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "finished" if self.done else "running"
        return f"<ChatStream {state}>"

    @property
    def done(self) -> bool:
        """True once the stream has ended (whatever the outcome)."""
        return self._worker.finished.is_set()

    def __iter__(self) -> Iterator[ResponseEvent]:
        """The events, in order, as they arrive.

        Raises:
            ChatStreamError: Where the stream failed, after every event before it (its
                ``partial`` holds the response so far). Iteration simply stops after
                :meth:`close`.
            ConfigurationError: The stream was made with ``iterate=False``.
        """
        if not self._iterable:
            raise ConfigurationError(
                "this stream delivers its events to on_event only; pass iterate=True to "
                "Client.stream() to iterate it as well"
            )
        return self._events()

    def _events(self) -> Iterator[ResponseEvent]:
        get = self._worker.queue.get
        while not self._exhausted and not self._closed:
            item = get()
            if isinstance(item, _Terminal):
                if item is _WAKE:
                    continue
                self._exhausted = True
                if item.error is not None and not isinstance(item.error, StreamClosedError):
                    raise item.error
                return
            for event in item:
                if self._closed:
                    return
                yield event

    def result(self, timeout: float | None = None) -> Response:
        """Wait for the end of the stream and return the response.

        Events not yet taken from the iterator are not needed for this: the response is
        built as the stream is read.

        Args:
            timeout: Seconds to wait at most; ``None`` waits for the end.

        Raises:
            ChatStreamError: The stream failed or was closed (``partial`` holds the
                response so far).
            TimeoutError: ``timeout`` passed before the stream ended.
        """
        worker = self._worker
        if worker.iterate and not self._exhausted:
            # Nobody is taking the events from the queue now: stop queueing them, so the
            # reader is never blocked by a full queue, and drop what is there.
            worker.iterate = False
            self._exhausted = True
            self._drain()
        if not worker.finished.wait(timeout):
            raise TimeoutError(f"the stream did not end within {timeout} s")
        if worker.error is not None:
            raise worker.error
        assert worker.outcome is not None
        return worker.outcome

    def _drain(self) -> None:
        get = self._worker.queue.get_nowait
        while True:
            try:
                get()
            except queue.Empty:
                return

    def close(self) -> None:
        """Stop the stream, from any thread; returns at once. Idempotent.

        Iteration stops; a stream still running ends as closed, and :meth:`result` then
        raises :class:`~chatstream.StreamClosedError` with the partial response.
        """
        if self._closed:
            return
        self._closed = True
        self._worker.stop("closed")
        self._worker.queue.put_final(_WAKE)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

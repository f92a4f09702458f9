"""Delivery: how a stream's events reach you, on the worker thread.

In order, for each batch of events the core produced: the stream's timings and
telemetry hook (:mod:`chatstream._shell.timing`), ``on_event``
(called here, or handed to ``dispatch``), then the queue the iterator reads. ``on_bytes``
gets the body as it is read; ``on_end`` the final response, once.

Every callback may raise anything, ``BaseException`` included (``SystemExit``, a
framework's cancellation): the failure is handed to the worker, which ends the stream in
a :class:`~chatstream.CallbackError`; nothing is left half-done and no consumer is left
waiting.

The queue
---------
:class:`EventQueue` holds batches of events (one per read), and counts events, not
batches, against its size: handing events across threads costs one lock round-trip per
read, and no event waits for a later one. Its last item, the terminal, stays: every
consumer that asks after the end gets it, so two threads iterating one stream both end,
and a second loop over a failed stream raises the error again.

:meth:`EventQueue.close` and :meth:`EventQueue.interrupt` may be called from a signal
handler that interrupted a thread holding the queue's lock: they never wait for that
lock (they set a flag and notify only if the lock is free). A thread that holds the lock
notifies for the flags it finds set, so the one the handler interrupted wakes the others
itself; and every wait in the queue is a bounded wait that looks at the flags again, so
no wake-up is ever lost.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from ..errors import ChatStreamError
from ..events import ResponseEvent
from ..response import Response
from ..telemetry import Telemetry
from .timing import Observer

__all__ = [
    "POLL",
    "BytesCallback",
    "Delivery",
    "Dispatch",
    "EndCallback",
    "EventCallback",
    "EventQueue",
    "Interrupted",
    "Terminal",
]

log = logging.getLogger("chatstream")

EventCallback = Callable[[ResponseEvent], object]
EndCallback = Callable[[Response], object]
BytesCallback = Callable[[bytes], object]
Dispatch = Callable[[Callable[[], None]], object]

#: The longest a wait in the queue lasts before it looks at its flags again: only for a
#: wake-up that found the lock taken for longer than ``_WAKE_TRY`` (every other wake-up is
#: prompt). Long, because a waiting thread that wakes up queues for the interpreter lock:
#: a thousand iterated streams waiting for their first event wake 5 000 times a second
#: at 0.2 s (measured to slow such a burst down by a third).
POLL = 2.0
#: How long a wake-up tries for the queue's lock before leaving it to :data:`POLL`.
_WAKE_TRY = 0.05


class Interrupted(Exception):
    """The worker was told to stop while delivering (or a callback failed)."""


class Terminal:
    """The queue's last item: how the stream ended."""

    __slots__ = ("error",)

    def __init__(self, error: ChatStreamError | None) -> None:
        self.error = error


class EventQueue:
    """A bounded queue of event batches, from the worker to the iterating threads."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # for consumers
        self._room = threading.Condition(self._lock)  # for the worker
        self._batches: deque[list[ResponseEvent]] = deque()
        self._size = 0
        self._terminal: Terminal | None = None
        self._keeping = True
        self._closed = False
        self._interrupted = False

    def qsize(self) -> int:
        """How many events wait."""
        return self._size

    def put(self, batch: list[ResponseEvent]) -> None:
        """Add a batch, waiting while the queue is full.

        When the iterator has not taken the last batch yet, that batch takes these events
        too, and needs no second wake-up: an iterator that runs behind the worker takes
        everything queued with one ``get``.

        Raises:
            Interrupted: :meth:`interrupt` was called while waiting.
        """
        with self._lock:
            while self._size >= self.maxsize and self._keeping:
                if self._interrupted:
                    raise Interrupted
                self._room.wait(POLL)
            if not self._keeping:
                return
            if self._batches:
                self._batches[-1] += batch
            else:
                self._batches.append(batch)
                self._ready.notify()
            self._size += len(batch)
            if self._closed or self._interrupted:
                self._flagged()

    def end(self, terminal: Terminal) -> None:
        """Put the terminal (never waits for room); every consumer wakes."""
        with self._lock:
            self._terminal = terminal
            self._ready.notify_all()

    def get(self) -> list[ResponseEvent] | Terminal | None:
        """The next batch, else the terminal (again and again), waiting for either;
        ``None`` once :meth:`close` was called."""
        with self._lock:
            while True:
                if self._closed or self._interrupted:
                    self._flagged()
                    if self._closed:
                        return None
                if self._batches:
                    batch = self._batches.popleft()
                    self._size -= len(batch)
                    self._room.notify()
                    return batch
                if self._terminal is not None:
                    return self._terminal
                self._ready.wait(POLL)

    def discard(self) -> None:
        """Drop every batch, now and from now on (nobody will take them)."""
        with self._lock:
            self._keeping = False
            self._batches.clear()
            self._size = 0
            self._room.notify_all()

    def close(self) -> None:
        """Wake every consumer, which gets ``None`` from now on. Signal-safe."""
        self._closed = True
        self._notify(self._ready)

    def interrupt(self) -> None:
        """Make a waiting (or the next waiting) :meth:`put` give up. Signal-safe."""
        self._interrupted = True
        self._notify(self._room)

    def _flagged(self) -> None:
        """Notify for the flags set (with the lock held): a signal handler that set them
        may have found the lock taken by this thread."""
        if self._closed:
            self._ready.notify_all()
        if self._interrupted:
            self._room.notify_all()

    def _notify(self, condition: threading.Condition) -> None:
        if self._lock.acquire(timeout=_WAKE_TRY):
            try:
                condition.notify_all()
            finally:
                self._lock.release()


class Delivery:
    """Hands a stream's events, bytes and end to their receivers (see the module
    documentation). ``fail`` is told of a callback that raised."""

    def __init__(
        self,
        *,
        on_event: EventCallback | None,
        on_end: EndCallback | None,
        on_bytes: BytesCallback | None,
        dispatch: Dispatch | None,
        iterate: bool,
        queue_size: int,
        telemetry: Telemetry | None,
        clock: Callable[[], float],
        fail: Callable[[BaseException], None],
    ) -> None:
        self.on_event = on_event
        self.on_end = on_end
        self.on_bytes = on_bytes
        self.dispatch = dispatch
        self.iterate = iterate
        self.queue = EventQueue(queue_size)
        #: The stream's timings and telemetry hooks.
        self.observer = Observer(telemetry, clock)
        self.fail = fail
        #: Set when the stream is being stopped: no more calls of ``on_event`` here.
        self.stopping = False
        #: Set when the stream was closed or a callback failed: dispatched calls that
        #: have not run yet are skipped.
        self.halted = False

    @property
    def has_callbacks(self) -> bool:
        """True when a callback (not only the iterator) receives something."""
        return self.on_event is not None or self.on_end is not None or self.on_bytes is not None

    def stop_keeping(self) -> None:
        """Nobody iterates any more: stop queueing events, and drop those queued."""
        self.iterate = False
        self.queue.discard()

    def events(self, events: list[ResponseEvent]) -> None:
        """Deliver a batch of events.

        Raises:
            Interrupted: The stream is being stopped, or a callback raised.
        """
        self.observer.events(events)
        callback = self.on_event
        if callback is not None:
            dispatch = self.dispatch
            for event in events:
                if self.stopping:
                    # No more callbacks, so a slow one holds the worker for the call it
                    # is in, not the batch.
                    raise Interrupted
                try:
                    if dispatch is None:
                        callback(event)
                    else:
                        dispatch(self._dispatched(callback, event))
                except BaseException as exc:
                    self.fail(exc)
                    raise Interrupted from None
        if self.iterate:
            self.queue.put(events)

    def body_bytes(self, data: bytes) -> None:
        """Hand body bytes to ``on_bytes``, on this thread.

        Raises:
            Interrupted: It raised.
        """
        assert self.on_bytes is not None
        try:
            self.on_bytes(data)
        except BaseException as exc:
            self.fail(exc)
            raise Interrupted from None

    def _dispatched(self, callback: EventCallback, event: ResponseEvent) -> Callable[[], None]:
        def call() -> None:
            if self.halted:
                return
            try:
                callback(event)
            except BaseException as exc:
                self.fail(exc)

        return call

    def end(self, response: Response, error: ChatStreamError | None) -> None:
        """The stream ended with this outcome: tell the iterators and ``on_end`` (the
        worker told telemetry). Never raises."""
        self.queue.end(Terminal(error))
        on_end = self.on_end
        if on_end is None:
            return
        if self.dispatch is None:
            _call_on_end(on_end, response)
            return
        try:
            self.dispatch(lambda: _call_on_end(on_end, response))
        except BaseException:
            log.exception("dispatch raised: on_end was not called")


def _call_on_end(callback: EndCallback, response: Response) -> None:
    try:
        callback(response)
    except BaseException:
        log.exception("an on_end callback raised")

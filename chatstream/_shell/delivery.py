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

The queue reads its stream's :class:`~chatstream._shell.lifecycle.Lifecycle`: once the
stream is stopping, a :meth:`~EventQueue.put` waiting for room gives up; once it is
closed, every consumer gets ``None``. Its wake-ups are the lifecycle's hooks, which may
run in a signal handler that interrupted a thread holding the queue's lock: they never
wait for that lock (they notify only if the lock is free). A thread that holds the lock
notifies for the state it finds, so the one the handler interrupted wakes the others
itself; and every wait in the queue is a bounded wait that looks at the state again, so
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
from .lifecycle import Lifecycle
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
    """A bounded queue of event batches, from the worker to the iterating threads, for
    as long as ``life`` lets the stream go on."""

    def __init__(self, maxsize: int, life: Lifecycle) -> None:
        self.maxsize = maxsize
        self._life = life
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # for consumers
        self._room = threading.Condition(self._lock)  # for the worker
        self._batches: deque[list[ResponseEvent]] = deque()
        self._size = 0
        self._terminal: Terminal | None = None
        self._keeping = True
        life.on_stop(lambda: self._notify(self._room))
        life.on_close(lambda: self._notify(self._ready))

    def qsize(self) -> int:
        """How many events wait."""
        return self._size

    def put(self, batch: list[ResponseEvent]) -> None:
        """Add a batch, waiting while the queue is full.

        When the iterator has not taken the last batch yet, that batch takes these events
        too, and needs no second wake-up: an iterator that runs behind the worker takes
        everything queued with one ``get``.

        Raises:
            Interrupted: The stream was stopped while waiting.
        """
        life = self._life
        with self._lock:
            while self._size >= self.maxsize and self._keeping:
                if life.stopping:
                    self._flagged()
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
            if life.closed or life.stopping:
                self._flagged()

    def end(self, terminal: Terminal) -> None:
        """Put the terminal (never waits for room); every consumer wakes."""
        with self._lock:
            self._terminal = terminal
            self._ready.notify_all()

    def get(self) -> list[ResponseEvent] | Terminal | None:
        """The next batch, else the terminal (again and again), waiting for either;
        ``None`` once the stream was closed."""
        life = self._life
        with self._lock:
            while True:
                if life.closed or life.stopping:
                    self._flagged()
                    if life.closed:
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

    def _flagged(self) -> None:
        """Notify for the state found (with the lock held): a signal handler that
        stopped or closed the stream may have found the lock taken by this thread."""
        if self._life.closed:
            self._ready.notify_all()
        if self._life.stopping:
            self._room.notify_all()

    def _notify(self, condition: threading.Condition) -> None:
        if self._lock.acquire(timeout=_WAKE_TRY):
            try:
                condition.notify_all()
            finally:
                self._lock.release()


class Delivery:
    """Hands a stream's events, bytes and end to their receivers (see the module
    documentation); ``life`` is told of a callback that raised, and says when to stop."""

    def __init__(
        self,
        life: Lifecycle,
        *,
        on_event: EventCallback | None,
        on_end: EndCallback | None,
        on_bytes: BytesCallback | None,
        dispatch: Dispatch | None,
        iterate: bool,
        queue_size: int,
        telemetry: Telemetry | None,
        clock: Callable[[], float],
    ) -> None:
        self.life = life
        self.on_event = on_event
        self.on_end = on_end
        self.on_bytes = on_bytes
        self.dispatch = dispatch
        self.iterate = iterate
        self.queue = EventQueue(queue_size, life)
        #: The stream's timings and telemetry hooks.
        self.observer = Observer(telemetry, clock)

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
            life = self.life
            for event in events:
                if life.stopping:
                    # No more callbacks, so a slow one holds the worker for the call it
                    # is in, not the batch.
                    raise Interrupted
                try:
                    if dispatch is None:
                        callback(event)
                    else:
                        dispatch(self._dispatched(callback, event))
                except BaseException as exc:
                    life.fail(exc)
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
            self.life.fail(exc)
            raise Interrupted from None

    def _dispatched(self, callback: EventCallback, event: ResponseEvent) -> Callable[[], None]:
        life = self.life

        def call() -> None:
            if life.halted:
                return
            try:
                callback(event)
            except BaseException as exc:
                life.fail(exc)

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
        except BaseException as exc:
            # Not a bug of chatstream's, and the outcome has already told of a dispatcher
            # that failed before: one line, without a traceback.
            log.warning("dispatch raised %s: on_end was not called", type(exc).__name__)


def _call_on_end(callback: EndCallback, response: Response) -> None:
    try:
        callback(response)
    except BaseException:
        log.exception("an on_end callback raised")

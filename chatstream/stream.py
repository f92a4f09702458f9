"""A live stream: a worker thread reads the response and feeds the core; the events
reach you through a bounded queue (iterate the stream) and through callbacks.

Threads
-------
* The **worker** (one per stream, a daemon; see :mod:`chatstream._shell.worker`) sends the
  request, reads the body with blocking reads, runs the core, calls ``on_event`` (unless
  ``dispatch`` hands the call to another thread) and puts the events on the queue. When
  the queue is full it waits, which stops reading: that is the backpressure.
* The **watchdog** (one per process, see :mod:`chatstream._shell.watchdog`) ends a stream that
  waited too long for bytes by shutting its socket down.
* **Your** threads iterate, wait in :meth:`ChatStream.result`, or call
  :meth:`ChatStream.close`, which returns at once from any thread, and from a signal
  handler.

Each stream has exactly one outcome -- completed, failed (an error, with the partial
response), or closed by the caller -- and every observer is told the same one (see
:doc:`/threading`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from ._shell.delivery import BytesCallback, Delivery, Dispatch, EndCallback, EventCallback, Terminal
from ._shell.exchange import Settings, TurnState
from ._shell.lifecycle import Lifecycle
from ._shell.outcome import StopReason
from ._shell.watchdog import Watchdog
from ._shell.worker import Opener, Worker
from .core.parser import StreamParser
from .errors import ConfigurationError, StreamClosedError
from .events import ResponseEvent
from .response import Response

__all__ = [
    "BytesCallback",
    "ChatStream",
    "Dispatch",
    "EndCallback",
    "EventCallback",
    "make_worker",
]


def make_worker(
    settings: Settings,
    request: dict[str, Any],
    *,
    watchdog: Watchdog,
    on_event: EventCallback | None = None,
    on_end: EndCallback | None = None,
    on_bytes: BytesCallback | None = None,
    dispatch: Dispatch | None = None,
    iterate: bool | None = None,
    turn: TurnState | None = None,
    opener: Opener | None = None,
    parser: StreamParser | None = None,
) -> Worker:
    """A worker and its delivery, as :meth:`Client.stream <chatstream.Client.stream>`
    describes the arguments (``opener`` replaces the HTTP exchange, for tests; ``parser``
    is the core for the stream, else one made from the settings' options and limits)."""
    delivery = Delivery(
        Lifecycle(),
        on_event=on_event,
        on_end=on_end,
        on_bytes=on_bytes,
        dispatch=dispatch,
        iterate=on_event is None if iterate is None else iterate,
        queue_size=settings.options.queue_size,
        telemetry=settings.telemetry,
        clock=watchdog.clock,
    )
    return Worker(
        settings,
        request,
        delivery=delivery,
        watchdog=watchdog,
        turn=turn,
        opener=opener,
        parser=parser,
    )


def _dropped(ref: weakref.ref[Worker]) -> None:
    """Nobody refers to the stream any more. Its callbacks still want the rest, so a
    stream with callbacks runs on (only its events are no longer kept for an iterator
    that can no longer exist); an iterator-only stream is closed."""
    worker = ref()
    if worker is None:
        return
    if worker.delivery.has_callbacks:
        worker.delivery.stop_keeping()
    else:
        worker.stop(StopReason.CLOSED)


class ChatStream:
    """A streaming response being read on a worker thread.

    Iterate it for the events, in order; wait for the end with :meth:`result`; stop it
    from any thread with :meth:`close` (or a ``with`` block).

    A stream with callbacks (``on_event``, ``on_end``, ``on_bytes``) runs until it ends
    even if you keep no reference to it. An iterator-only stream that nobody refers to any
    more is closed when it is garbage-collected.

    Created by :meth:`Client.stream <chatstream.Client.stream>`.
    """

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._iterable = worker.delivery.iterate
        self._exhausted = False  # an iterator saw the end
        self._discarded = False  # result() was called: events are no longer kept
        # The finalizer holds the worker weakly, so that it never keeps it (and the error
        # it keeps) alive; a running worker is held by its thread.
        self._finalizer = weakref.finalize(self, _dropped, weakref.ref(worker))
        worker.start()

    def __repr__(self) -> str:
        state = "closed" if self._worker.life.closed else "finished" if self.done else "running"
        return f"<ChatStream {state}>"

    @property
    def done(self) -> bool:
        """True once the stream has ended (whatever the outcome)."""
        return self._worker.finished.is_set()

    def _not_from_a_callback(self, what: str) -> None:
        worker = self._worker
        if worker.job.thread is threading.current_thread() and not worker.finished.is_set():
            raise RuntimeError(
                f"{what} was called from the stream's own callback, on its worker thread, "
                "which would wait for itself forever; call it from another thread, or "
                "use the events the callback receives"
            )

    def __iter__(self) -> Iterator[ResponseEvent]:
        """The events, in order, as they arrive.

        Several threads may iterate one stream: each event goes to one of them, and all
        of them end. A stream that failed raises its error again on every new loop.

        Raises:
            ChatStreamError: Where the stream failed, after every event before it (its
                ``partial`` holds the response so far). Iteration simply stops after
                :meth:`close`.
            ConfigurationError: The stream was made with ``iterate=False``.
            RuntimeError: Iterated from the stream's own callback, on its worker thread.
        """
        if not self._iterable:
            raise ConfigurationError(
                "this stream delivers its events to on_event only; pass iterate=True to "
                "Client.stream() to iterate it as well"
            )
        self._not_from_a_callback("iterating the stream")
        return self._events()

    def _events(self) -> Iterator[ResponseEvent]:
        worker = self._worker
        if self._discarded:
            worker.finished.wait()
            self._raise_failure(worker.error)
            return
        get = worker.queue.get
        while True:
            item = get()
            if item is None:  # closed
                return
            if isinstance(item, Terminal):
                self._exhausted = True
                self._raise_failure(item.error)
                return
            life = worker.life
            for event in item:
                if life.closed:
                    return
                yield event

    def _raise_failure(self, error: BaseException | None) -> None:
        if (
            error is not None
            and not self._worker.life.closed
            and not isinstance(error, StreamClosedError)
        ):
            raise error

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
            RuntimeError: Called from the stream's own callback, on its worker thread.
        """
        worker = self._worker
        self._not_from_a_callback("result()")
        if worker.delivery.iterate and not self._exhausted and not self._discarded:
            # Nobody is taking the events from the queue now: stop queueing them, so the
            # reader is never blocked by a full queue, and drop what is there.
            self._discarded = True
            worker.delivery.stop_keeping()
        if not worker.finished.wait(timeout):
            raise TimeoutError(f"the stream did not end within {timeout} s")
        if worker.error is not None:
            raise worker.error
        assert worker.outcome is not None
        return worker.outcome

    def close(self) -> None:
        """Stop the stream, from any thread or a signal handler; returns at once.
        Idempotent.

        Iteration stops; a stream still running ends as closed, and :meth:`result` then
        raises :class:`~chatstream.StreamClosedError` with the partial response. A
        stream whose body had already ended (its ``Completed`` was produced) keeps its
        outcome.
        """
        self._worker.life.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

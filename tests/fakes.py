"""A fake response body and a fake clock, to run a stream's worker without a socket.

``fake_stream(FakeBody([...]))`` starts a real :class:`~chatstream.ChatStream` whose
worker reads the given pieces instead of a response: bytes, exceptions to raise,
:data:`STALL` (a read that blocks until the body is shut down, as a silent server does),
and callables, called while the read waits (``clock.tick(0.5)``: time passes).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests

from chatstream import ChatStream, Coalescing, Limits, Retry, StreamOptions, Telemetry, Timeouts
from chatstream._shell.exchange import Settings
from chatstream._shell.watchdog import Watchdog
from chatstream._shell.worker import Body
from chatstream.stream import make_worker

#: A read that blocks until the body is shut down (then fails, as a socket read does).
STALL = object()
#: The longest a fake read blocks (a test that forgets to end a stall fails, not hangs).
STALL_LIMIT = 10.0


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> Callable[[], None]:
        """A body piece that moves the clock on by ``seconds``."""

        def advance() -> None:
            self.now += seconds

        return advance


class FakeBody:
    """A response body made of pieces (see the module documentation)."""

    def __init__(
        self,
        pieces: Iterable[object],
        headers: Mapping[str, str] | None = None,
        *,
        status: int = 200,
    ) -> None:
        self.pieces: deque[object] = deque(pieces)
        self.status = status
        self.headers = {"content-type": "text/event-stream", **(headers or {})}
        self.stalled = threading.Event()  # a read is blocked in a stall
        self.shut = threading.Event()
        self.released = False
        self.closed = False

    def read(self, size: int) -> bytes:
        if self.shut.is_set():
            raise OSError("the socket was shut down")
        if not self.pieces:
            return b""
        piece = self.pieces.popleft()
        while callable(piece):  # something that happens while the read waits (a tick)
            piece()
            piece = self.pieces.popleft() if self.pieces else b""
        if piece is STALL:
            self.stalled.set()
            self.shut.wait(STALL_LIMIT)
            raise OSError("the socket was shut down")
        if isinstance(piece, BaseException):
            raise piece
        assert isinstance(piece, bytes)
        return piece

    def release(self) -> None:
        self.released = True

    def expect_end(self) -> None:
        pass

    def shutdown(self) -> None:
        self.shut.set()

    def close(self) -> None:
        self.closed = True


def settings(
    *,
    timeouts: Timeouts | None = None,
    telemetry: Telemetry | None = None,
    coalescing: Coalescing | None = None,
    options: StreamOptions | None = None,
) -> Settings:
    """Settings for a fake stream (its session is never used)."""
    return Settings(
        url="http://127.0.0.1:9/v1/chat/completions",
        session=requests.Session(),
        auth=None,
        headers=(),
        timeouts=timeouts or Timeouts(connect=2.0, idle=5.0),
        retry=Retry(max_retries=0),
        secrets=("sk-FAKE-secret",),
        telemetry=telemetry,
        include_usage=True,
        turn_state_header="x-turn",
        options=options or StreamOptions(),
        limits=Limits(max_event_bytes=1 << 20),
        coalescing=coalescing,
    )


def fake_stream(
    body: FakeBody,
    *,
    watchdog: Watchdog | None = None,
    timeouts: Timeouts | None = None,
    telemetry: Telemetry | None = None,
    coalescing: Coalescing | None = None,
    options: StreamOptions | None = None,
    **callbacks: Any,
) -> ChatStream:
    """A started stream whose worker reads ``body`` (read with ``options``)."""

    def opener(attach: Callable[[Body], None]) -> Body:
        attach(body)
        return body

    worker = make_worker(
        settings(timeouts=timeouts, telemetry=telemetry, coalescing=coalescing, options=options),
        {"model": "m", "messages": []},
        watchdog=watchdog or Watchdog(clock=FakeClock(), thread=False),
        opener=opener,
        **callbacks,
    )
    return ChatStream(worker)

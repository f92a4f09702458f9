"""Coalescing: with many streams running, a stream pauses before a read that would wait,
never before its first content nor before a read of bytes already there."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from chatstream import Client, Coalescing, ConfigurationError
from chatstream._shell import process as _process
from chatstream._shell import reading as _reading
from chatstream._shell.watchdog import Watchdog
from chatstream.core.parser import StreamParser

from ..fakes import FakeBody, FakeClock, fake_stream
from ..helpers import DONE, answer, chunk, event

WAIT = 5.0
#: Pause whenever a stream runs, for 0.1 s (one stream running: 1 / 10).
SLOW = Coalescing(above=0, wakeups=10.0, max_pause=0.5)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the streams made (none is actually waited)."""
    made: list[float] = []
    monkeypatch.setattr(_reading, "_sleep", made.append)
    return made


def _content(
    clock: FakeClock, coalescing: Coalescing | None, pieces: list[object], iterate: bool = False
) -> str:
    stream = fake_stream(
        FakeBody(pieces),
        watchdog=Watchdog(clock=clock, thread=False),
        coalescing=coalescing,
        on_event=lambda event: None,
        iterate=iterate,
    )
    return stream.result(timeout=WAIT).content


def test_a_stream_pauses_before_a_read_that_would_wait_at_most_once_a_pause(
    pauses: list[float],
) -> None:
    clock = FakeClock()
    wait = clock.tick(0.005)
    pieces: list[object] = [
        wait,
        event(chunk("a")),  # the first content: no pause before it
        wait,
        event(chunk("b")),  # the read before waited: a whole pause (0.1 s) first
        wait,
        event(chunk("c")),  # none: the read before was the first after a pause
        wait,
        event(chunk("d")),  # a pause, less the 0.01 s since the last one ended
        event(chunk("e")),  # none: the read before was the first after a pause
        event(chunk("f")),  # the read before found its bytes there: no pause
        wait,
        event(chunk(finish="stop")) + DONE,  # none either
    ]
    assert _content(clock, SLOW, pieces) == "abcdef"
    assert pauses == pytest.approx([0.1, 0.09])


def test_no_pause_up_to_the_number_of_streams_it_allows(pauses: list[float]) -> None:
    clock = FakeClock()
    wait = clock.tick(0.005)
    pieces: list[object] = [wait, event(chunk("a")), wait, event(chunk("b")), wait]
    pieces.append(answer("c"))
    assert _content(clock, Coalescing(above=1000), pieces) == "abc"
    assert pauses == []


def test_no_pause_without_coalescing(pauses: list[float]) -> None:
    clock = FakeClock()
    wait = clock.tick(0.005)
    pieces: list[object] = [wait, event(chunk("a")), wait, event(chunk("b")), wait]
    pieces.append(answer("c"))
    assert _content(clock, None, pieces) == "abc"
    assert pauses == []


def test_an_iterated_stream_pauses_too(pauses: list[float]) -> None:
    clock = FakeClock()
    wait = clock.tick(0.005)
    pieces: list[object] = [wait, event(chunk("a")), wait, event(chunk("b")), wait]
    pieces.append(answer("c"))
    assert _content(clock, SLOW, pieces, iterate=True) == "abc"
    assert pauses == pytest.approx([0.1])


@pytest.mark.parametrize(("running", "pause"), [(64, 0.0), (65, 0.065), (100, 0.1), (1000, 0.1)])
def test_the_pause_grows_with_the_streams_running_up_to_its_limit(
    running: int, pause: float
) -> None:
    assert Coalescing().pause(running) == pytest.approx(pause)


@pytest.mark.parametrize(
    "changes",
    [{"above": -1}, {"above": 1.5}, {"wakeups": 0}, {"wakeups": True}, {"max_pause": 0}],
)
def test_invalid_coalescing_is_a_configuration_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Coalescing(**changes)  # type: ignore[arg-type]


def test_a_client_takes_coalescing_or_none_and_nothing_else() -> None:
    assert Client("http://127.0.0.1:9/v1", coalescing=None).coalescing is None
    with pytest.raises(ConfigurationError):
        Client("http://127.0.0.1:9/v1", coalescing=0.01)  # type: ignore[arg-type]


# --- a large read is parsed in turns ------------------------------------------------------


class CountingTurn(_process.FifoLock):
    """The parse turn, counting how often it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def __enter__(self) -> None:
        super().__enter__()
        self.taken += 1


def test_a_large_read_is_parsed_in_turns_of_a_bounded_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turn = CountingTurn()
    monkeypatch.setattr(_process._state, "parse_lock", turn)
    big = b'data: {"choices": [\n' + b"data: \n" * 40_000 + b"data: ]}\n\n"
    body = big + answer("Hi")
    stream = fake_stream(FakeBody([body]), coalescing=Coalescing(), on_event=lambda e: None)
    assert stream.result(timeout=WAIT).content == "Hi"
    assert turn.taken >= len(body) // _reading.TURN_BYTES


class _Feeding:
    """A parser that logs each piece it is fed; ``during`` runs during the first."""

    def __init__(self, log: list[str], during: Any) -> None:
        self.log = log
        self.during = during

    def feed(self, data: bytes) -> list[object]:
        if not self.log:
            self.during()
        self.log.append(f"slice of {len(data)}")
        return []


def test_a_stream_waiting_for_the_turn_gets_it_between_two_slices_of_a_large_read() -> None:
    turn = _process.FifoLock()
    log: list[str] = []
    queued = threading.Event()

    def other_stream() -> None:
        with turn:
            log.append("other")

    def start_other() -> None:
        thread = threading.Thread(target=other_stream, daemon=True)
        thread.start()
        # It waits for the turn (held by the large read) before the first slice ends.
        while not turn._waiting:
            thread.join(0.001)
        queued.set()

    parser = cast(StreamParser, _Feeding(log, start_other))
    _reading._feed_in_turns(parser, b"x" * (3 * _reading.TURN_BYTES), turn)
    assert queued.is_set()
    size = _reading.TURN_BYTES
    assert log == [f"slice of {size}", "other", f"slice of {size}", f"slice of {size}"]

"""The stream's worker without a socket: a fake body (pieces of bytes, stalls, errors)
and a fake clock drive it (tests/fakes.py).

Every test checks the lifecycle's invariants: nothing hangs (every wait is bounded),
nothing delivered is lost, no thread is left behind (the ``no_leaks`` fixture), and
every observer -- the iterator, ``result()``, ``on_end``, ``error.partial.error``,
telemetry -- is told the same single outcome (:func:`assert_one_outcome`).
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest

import chatstream
from chatstream import (
    CallbackError,
    ChatStream,
    ChatStreamError,
    Completed,
    ErrorInfo,
    IncompleteStreamError,
    ResponseEvent,
    StreamClosedError,
    StreamError,
    StreamOptions,
    Telemetry,
    Timeouts,
)
from chatstream._shell.deadlines import DRAIN_TIME
from chatstream._shell.watchdog import Watchdog

from ..fakes import STALL, FakeBody, FakeClock, fake_stream
from ..helpers import DONE, answer, chunk, drain, event, kinds

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT = 5.0
HI = answer("Hel", "lo")
HI_EVENTS = list(chatstream.iter_events([HI]))


class Observers(Telemetry):
    """Records what ``on_event``, ``on_end`` and telemetry are told."""

    def __init__(self) -> None:
        self.events: list[ResponseEvent] = []
        self.ends: list[chatstream.Response] = []
        self.errors: list[ChatStreamError] = []
        self.ended = threading.Event()

    def on_event(self, event: ResponseEvent) -> None:
        self.events.append(event)

    def on_end(self, response: chatstream.Response) -> None:
        self.ends.append(response)
        self.ended.set()

    def on_sse_event(
        self,
        context: Any,
        event: ResponseEvent | None,
        error: ChatStreamError | None,
        elapsed: float,
    ) -> None:
        if error is not None:
            self.errors.append(error)


def assert_one_outcome(
    stream: ChatStream, seen: Observers, kind: str | None, *, iterated: BaseException | None = None
) -> ChatStreamError | None:
    """Every observer was told the outcome ``kind`` (``None``: completed); returns the
    error."""
    error: ChatStreamError | None = None
    try:
        stream.result(timeout=WAIT)
    except ChatStreamError as exc:
        error = exc
    assert (error.kind if error else None) == kind, f"result() said {error!r}"
    assert seen.ended.wait(WAIT), "on_end was never called"
    assert len(seen.ends) == 1, "on_end was called more than once"
    told = seen.ends[0].error
    assert told == (None if error is None else ErrorInfo.of(error))
    if error is not None:
        assert error.partial is not None and error.partial.error == told
        assert seen.errors == [error], "telemetry was told another outcome"
        if iterated is not None:
            assert iterated is error, "the iterator was told another outcome"
    else:
        assert seen.errors == []
        assert iterated is None
    stream._worker.job.join(WAIT)
    assert not stream._worker.job.is_alive()
    return error


def observed(body: FakeBody, **options: Any) -> tuple[ChatStream, Observers]:
    seen = Observers()
    options.setdefault("on_end", seen.on_end)
    stream = fake_stream(body, telemetry=seen, **options)
    return stream, seen


# --- the outcome --------------------------------------------------------------------------


def test_a_stream_that_ends_normally_completes_for_every_observer() -> None:
    stream, seen = observed(FakeBody([HI]), iterate=True)
    events, error = drain(stream)
    assert events == HI_EVENTS
    assert_one_outcome(stream, seen, None, iterated=error)


def test_closing_right_after_completed_keeps_the_stream_completed() -> None:
    # The body ended normally and Completed was produced: close() is too late to change it
    # (nor does it cut the read of the rest of the body: see the drain tests).
    stream, seen = observed(FakeBody([HI, b""]), iterate=True)
    for item in stream:
        if isinstance(item, Completed):
            break
    stream.close()
    assert stream.result(timeout=WAIT).content == "Hello"
    assert_one_outcome(stream, seen, None)


def test_closing_before_the_end_is_closed_for_every_observer() -> None:
    body = FakeBody([event(chunk("Hi")), STALL])
    stream, seen = observed(body, iterate=True)
    first = next(iter(stream))
    assert body.stalled.wait(WAIT)
    stream.close()
    error = assert_one_outcome(stream, seen, "closed")
    assert isinstance(error, StreamClosedError)
    assert first == HI_EVENTS[0]
    assert list(stream) == []  # iteration simply stops after close()


def test_a_callback_raising_on_completed_fails_the_stream_for_every_observer() -> None:
    seen = Observers()

    def on_event(item: ResponseEvent) -> None:
        if isinstance(item, Completed):
            raise ValueError("no")

    stream = fake_stream(FakeBody([HI]), telemetry=seen, on_event=on_event, on_end=seen.on_end)
    error = assert_one_outcome(stream, seen, "callback_error")
    assert isinstance(error, CallbackError) and isinstance(error.__cause__, ValueError)
    assert error.partial is not None and error.partial.content == "Hello"  # nothing lost


def test_a_failed_body_keeps_its_error_even_if_a_callback_raises_after() -> None:
    seen = Observers()
    calls: list[ResponseEvent] = []

    def on_event(item: ResponseEvent) -> None:
        calls.append(item)
        raise ValueError("no")

    body = FakeBody([event({"error": {"message": "overloaded"}})])
    stream = fake_stream(body, telemetry=seen, on_event=on_event, on_end=seen.on_end)
    assert_one_outcome(stream, seen, "provider_error")


# --- re-entrancy --------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["result", "iterate"])
def test_waiting_for_the_stream_inside_its_own_callback_raises_at_once(call: str) -> None:
    seen = Observers()
    holder: list[ChatStream] = []
    ready = threading.Event()

    def on_event(item: ResponseEvent) -> None:
        ready.wait(WAIT)
        if call == "result":
            holder[0].result()
        else:
            list(holder[0])

    stream = fake_stream(
        FakeBody([HI]), telemetry=seen, on_event=on_event, on_end=seen.on_end, iterate=True
    )
    holder.append(stream)
    ready.set()
    error = assert_one_outcome(stream, seen, "callback_error", iterated=drain(stream)[1])
    assert isinstance(error, CallbackError)
    assert isinstance(error.__cause__, RuntimeError)
    assert "own callback" in str(error.__cause__)


def test_result_inside_on_end_gives_the_outcome_without_waiting() -> None:
    got: list[str] = []
    holder: list[ChatStream] = []
    done = threading.Event()

    def on_end(response: chatstream.Response) -> None:
        # on_end runs once the outcome is decided: result() no longer waits for anything.
        try:
            holder[0].result()
        except ChatStreamError as exc:
            got.append(exc.kind)
        done.set()

    body = FakeBody([STALL])
    stream = fake_stream(body, on_end=on_end)
    holder.append(stream)
    assert body.stalled.wait(WAIT)
    stream.close()
    assert done.wait(WAIT)
    assert got == ["closed"]


# --- anything user code raises ------------------------------------------------------------


class Cancelled(BaseException):
    """A framework's cancellation (trio.Cancelled, asyncio.CancelledError)."""


RAISED = [
    lambda: SystemExit(3),
    KeyboardInterrupt,
    GeneratorExit,
    Cancelled,
    lambda: ValueError("x"),
]
RAISED_IDS = ["SystemExit", "KeyboardInterrupt", "GeneratorExit", "Cancelled", "ValueError"]


def _raiser(exc: BaseException) -> Any:
    def hook(*args: object) -> None:
        raise exc

    return hook


def _raising_once(exc: BaseException) -> Any:
    """A dispatcher that raises on its first call, then runs what it is given."""
    calls: list[object] = []

    def dispatch(fn: Any) -> None:
        calls.append(fn)
        if len(calls) == 1:
            raise exc
        fn()

    return dispatch


@pytest.mark.parametrize("make", RAISED, ids=RAISED_IDS)
@pytest.mark.parametrize("where", ["on_event", "on_bytes", "dispatch"])
def test_anything_a_callback_raises_ends_the_stream_in_a_callback_error(
    where: str, make: Any
) -> None:
    exc = make()
    seen = Observers()
    options: dict[str, Any] = {"on_end": seen.on_end, "iterate": True}
    if where == "dispatch":
        options["on_event"] = seen.on_event
        options["dispatch"] = _raising_once(exc)
    else:
        options[where] = _raiser(exc)
    stream = fake_stream(FakeBody([HI]), telemetry=seen, **options)
    _events, iterated = drain(stream)
    error = assert_one_outcome(stream, seen, "callback_error", iterated=iterated)
    assert error is not None and error.__cause__ is exc


@pytest.mark.parametrize("make", RAISED[:-1], ids=RAISED_IDS[:-1])
def test_a_telemetry_hook_raising_a_base_exception_ends_in_a_callback_error(make: Any) -> None:
    exc = make()

    class Raising(Observers):
        def on_sse_event(
            self,
            context: Any,
            event: ResponseEvent | None,
            error: ChatStreamError | None,
            elapsed: float,
        ) -> None:
            super().on_sse_event(context, event, error, elapsed)
            if event is not None:
                raise exc

    seen = Raising()
    stream = fake_stream(FakeBody([HI]), telemetry=seen, on_end=seen.on_end, iterate=True)
    _events, iterated = drain(stream)
    error = assert_one_outcome(stream, seen, "callback_error", iterated=iterated)
    assert error is not None and error.__cause__ is exc


def test_a_dispatcher_that_raises_is_not_reported_as_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def destroyed(fn: object) -> None:
        raise RuntimeError("main thread is not in main loop")

    seen = Observers()
    with caplog.at_level(logging.ERROR, logger="chatstream"):
        stream = fake_stream(
            FakeBody([HI]), telemetry=seen, on_event=seen.on_event, dispatch=destroyed
        )
        with pytest.raises(CallbackError) as caught:
            stream.result(timeout=WAIT)
        stream._worker.job.join(WAIT)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert seen.errors == [caught.value]
    assert "worker failed" not in caplog.text  # a callback failure, not a bug


def test_a_dispatcher_that_raises_is_logged_at_most_once_as_a_warning_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def destroyed(fn: object) -> None:
        raise RuntimeError("main thread is not in main loop")

    seen = Observers()
    with caplog.at_level(logging.DEBUG, logger="chatstream"):
        stream = fake_stream(
            FakeBody([HI]), on_event=seen.on_event, on_end=seen.on_end, dispatch=destroyed
        )
        with pytest.raises(CallbackError):
            stream.result(timeout=WAIT)  # reported through the outcome
        stream._worker.job.join(WAIT)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) <= 1
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in loud)


# --- several consumers --------------------------------------------------------------------


def test_two_threads_iterating_one_stream_both_end_with_each_event_once() -> None:
    gate = threading.Event()
    pieces: list[object] = [event(chunk(f"w{i} ")) for i in range(200)]
    body = FakeBody([gate.wait, *pieces, event(chunk(finish="stop")), DONE])
    stream = fake_stream(body, options=StreamOptions(queue_size=5))
    got: list[list[ResponseEvent]] = [[], []]

    def consume(n: int) -> None:
        for item in stream:
            got[n].append(item)

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "an iterator hung"
    everything = got[0] + got[1]
    assert len(everything) == len(set(map(id, everything)))
    assert sorted(map(repr, everything)) == sorted(
        map(repr, chatstream.iter_events([b"".join(pieces) + answer()]))
    )
    assert kinds(everything).count("Completed") == 1


def test_a_second_loop_over_a_failed_stream_raises_the_same_error() -> None:
    stream = fake_stream(FakeBody([event(chunk("cut"))]))  # ends with no finish: incomplete
    with pytest.raises(IncompleteStreamError) as first:
        list(stream)
    with pytest.raises(IncompleteStreamError) as second:
        list(stream)
    assert second.value is first.value


# --- internal errors ----------------------------------------------------------------------


def test_an_internal_error_keeps_the_cause_type_and_message_but_no_frames() -> None:
    seen = Observers()
    body = FakeBody([event(chunk("Hi")), ZeroDivisionError("boom sk-FAKE-secret")])
    stream = fake_stream(body, telemetry=seen, on_end=seen.on_end)
    error = assert_one_outcome(stream, seen, "error")
    assert isinstance(error, StreamError)
    cause = error.__cause__
    assert cause is not None and cause.__traceback__ is None
    assert cause.__cause__ is None and cause.__context__ is None
    assert "ZeroDivisionError: boom" in str(cause)
    assert "sk-FAKE-secret" not in str(cause)
    assert error.partial is not None and error.partial.content == "Hi"


# --- a body that is not an event stream --------------------------------------------------


def test_a_body_answering_html_ends_in_an_unexpected_response_error() -> None:
    page = b"<html><body>Sign in to the Wi-Fi (sk-FAKE-secret)</body></html>"
    body = FakeBody([page], headers={"content-type": "text/html"}, status=203)
    stream, seen = observed(body)
    error = assert_one_outcome(stream, seen, "unexpected_response")
    assert isinstance(error, chatstream.UnexpectedResponseError)
    assert (error.status, error.content_type) == (203, "text/html")
    assert "Sign in to the Wi-Fi" in error.body and "sk-FAKE-secret" not in error.body


def test_a_body_answering_html_that_breaks_keeps_what_arrived_in_its_snippet() -> None:
    body = FakeBody([b"<html>Bad gat", OSError("reset")], headers={"content-type": "text/html"})
    stream, seen = observed(body)
    error = assert_one_outcome(stream, seen, "unexpected_response")
    assert isinstance(error, chatstream.UnexpectedResponseError)
    assert error.body == "<html>Bad gat"


# --- dropped streams ----------------------------------------------------------------------


def test_a_callback_stream_that_nobody_keeps_runs_to_its_end() -> None:
    gate = threading.Event()
    seen = Observers()
    fake_stream(
        FakeBody([event(chunk("a")), gate.wait, event(chunk("b")), answer()]),
        on_event=seen.on_event,
        on_end=seen.on_end,
    )
    gc.collect()
    gate.set()
    assert seen.ended.wait(WAIT)
    assert seen.ends[0].ok and seen.ends[0].content == "ab"


def test_an_iterator_only_stream_that_nobody_keeps_is_closed() -> None:
    body = FakeBody([event(chunk("a")), STALL])
    stream = fake_stream(body)
    thread = stream._worker.job
    assert body.stalled.wait(WAIT)
    del stream
    gc.collect()
    assert body.shut.wait(WAIT), "the dropped stream was not closed"
    thread.join(WAIT)
    assert not thread.is_alive()


# --- liveness: progress is a completed line -----------------------------------------------


def _watched(
    pieces: list[object], clock: FakeClock, **timeouts: float
) -> tuple[ChatStream, FakeBody, Watchdog]:
    watchdog = Watchdog(clock=clock, thread=False)
    body = FakeBody(pieces)
    stream = fake_stream(body, watchdog=watchdog, timeouts=Timeouts(**timeouts))
    return stream, body, watchdog


def test_bytes_that_never_complete_a_line_do_not_reset_the_idle_clock() -> None:
    clock = FakeClock()
    trickle = [clock.tick(0.4), b":", clock.tick(0.4), b"x", clock.tick(0.3), STALL]
    stream, body, watchdog = _watched([event(chunk("a")), *trickle], clock, idle=1.0)
    assert body.stalled.wait(WAIT)
    watchdog.check()  # 1.1 s waited since the last completed line
    with pytest.raises(chatstream.IdleTimeoutError) as caught:
        stream.result(timeout=WAIT)
    assert caught.value.name == "idle"
    assert caught.value.partial is not None and caught.value.partial.content == "a"


def test_completed_keepalive_lines_reset_the_idle_clock() -> None:
    clock = FakeClock()
    pings = [clock.tick(0.4), b": ping\n", clock.tick(0.4), b": ping\n", clock.tick(0.3), STALL]
    stream, body, watchdog = _watched([event(chunk("a")), *pings], clock, idle=1.0)
    assert body.stalled.wait(WAIT)
    assert watchdog.check() is not None  # 0.3 s since the last line: not yet
    assert not stream.done
    stream.close()
    with pytest.raises(StreamClosedError):
        stream.result(timeout=WAIT)


# --- the connection after [DONE] ----------------------------------------------------------


def test_the_rest_of_the_body_after_done_is_read_and_the_connection_released() -> None:
    body = FakeBody([HI, b""])
    stream = fake_stream(body)
    assert stream.result(timeout=WAIT).content == "Hello"
    assert body.released


def test_a_body_that_does_not_end_after_done_is_cut_without_changing_the_outcome() -> None:
    clock = FakeClock()
    stream, body, watchdog = _watched([HI, clock.tick(DRAIN_TIME), STALL], clock, idle=5.0)
    assert body.stalled.wait(WAIT)
    watchdog.check()
    assert stream.result(timeout=WAIT).content == "Hello"
    assert body.shut.is_set() and not body.released


# --- result(), close() and callbacks (moved here from the loopback tests) ---------------------

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_result_returns_the_response() -> None:
    stream = fake_stream(
        FakeBody([HI[: -len(DONE)], event(chunk(usage=USAGE, choices=False)), DONE])
    )
    response = stream.result(timeout=WAIT)
    assert (response.content, response.finish_reason) == ("Hello", "stop")
    assert response.usage is not None and response.usage.total_tokens == 5
    assert response.ok and stream.done


def test_result_raises_the_error_with_the_partial_response() -> None:
    stream = fake_stream(FakeBody([event(chunk("cut "))]))  # no finish, no [DONE]
    with pytest.raises(IncompleteStreamError) as caught:
        stream.result(timeout=WAIT)
    assert caught.value.partial is not None and caught.value.partial.content == "cut "


def test_result_after_iterating_gives_the_same_response() -> None:
    stream = fake_stream(FakeBody([HI]))
    events, error = drain(stream)
    assert error is None and events == HI_EVENTS
    assert stream.result(timeout=WAIT).content == "Hello"


def test_result_with_a_timeout_raises_timeout_error_while_the_stream_runs() -> None:
    body = FakeBody([event(chunk("a")), STALL])
    with fake_stream(body) as stream:
        assert body.stalled.wait(WAIT)
        with pytest.raises(TimeoutError):
            stream.result(timeout=0.05)
        assert not stream.done


def test_result_does_not_need_the_events_to_be_taken() -> None:
    # 500 events with room for 2 in the queue: result() alone must not stall on it.
    stream = fake_stream(FakeBody([answer(*["x"] * 500)]), options=StreamOptions(queue_size=2))
    assert stream.result(timeout=WAIT).content == "x" * 500


def test_close_is_idempotent() -> None:
    stream = fake_stream(FakeBody([event(chunk("a")), STALL]))
    stream.close()
    stream.close()
    with pytest.raises(StreamClosedError):
        stream.result(timeout=WAIT)
    stream.close()


def test_close_after_the_end_keeps_the_outcome() -> None:
    stream = fake_stream(FakeBody([HI]))
    assert stream.result(timeout=WAIT).content == "Hello"
    stream.close()
    assert stream.result(timeout=WAIT).content == "Hello"


def test_close_from_eight_threads_at_once_is_safe() -> None:
    body = FakeBody([event(chunk("a")), STALL])
    stream = fake_stream(body)
    assert body.stalled.wait(WAIT)
    barrier = threading.Barrier(8)

    def close() -> None:
        barrier.wait(WAIT)
        stream.close()

    threads = [threading.Thread(target=close) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    with pytest.raises(StreamClosedError):
        stream.result(timeout=WAIT)


def test_a_callback_only_stream_never_stalls_on_the_queue() -> None:
    body = answer(*["z"] * 3000)
    seen: list[ResponseEvent] = []
    stream = fake_stream(
        FakeBody([body]), on_event=seen.append, options=StreamOptions(queue_size=1)
    )
    assert stream.result(timeout=WAIT).content == "z" * 3000
    assert stream._worker.queue.qsize() == 0  # nothing kept: memory stays flat
    assert seen == list(chatstream.iter_events([body]))


def test_iterating_a_callback_only_stream_is_a_configuration_error() -> None:
    stream = fake_stream(FakeBody([HI]), on_event=lambda e: None)
    with pytest.raises(chatstream.ConfigurationError):
        iter(stream)
    stream.result(timeout=WAIT)


def test_on_event_runs_on_the_worker_thread_in_order_once_each() -> None:
    body = answer(*[f"{i} " for i in range(40)])
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    calls: list[tuple[threading.Thread, ResponseEvent]] = []
    stream = fake_stream(
        FakeBody(pieces),
        on_event=lambda e: calls.append((threading.current_thread(), e)),
        iterate=True,
    )
    events, error = drain(stream)
    assert error is None
    assert [e for _, e in calls] == events == list(chatstream.iter_events([body]))
    assert {t for t, _ in calls} == {stream._worker.job.thread}


def test_a_raising_callback_stops_the_stream_at_that_event() -> None:
    body = FakeBody([event(chunk("a")), event(chunk("b")), event(chunk("c")), STALL])
    boom = ValueError("boom")
    calls: list[ResponseEvent] = []

    def callback(item: ResponseEvent) -> None:
        calls.append(item)
        if len(calls) == 3:
            raise boom

    stream = fake_stream(body, on_event=callback)
    with pytest.raises(CallbackError) as caught:
        stream.result(timeout=WAIT)
    assert caught.value.__cause__ is boom and caught.value.partial is not None
    assert len(calls) == 3  # no event after the one that raised
    assert body.shut.is_set() or not body.pieces  # the body was given up


def test_dispatch_hands_every_callback_to_the_dispatcher_in_order() -> None:
    jobs: list[Any] = []
    seen = Observers()
    stream = fake_stream(
        FakeBody([HI]), on_event=seen.on_event, on_end=seen.on_end, dispatch=jobs.append
    )
    response = stream.result(timeout=WAIT)
    stream._worker.job.join(WAIT)
    assert seen.events == [] and seen.ends == []  # nothing ran on the worker
    for job in jobs:
        job()
    assert seen.events == HI_EVENTS
    assert seen.ends == [response]


def test_on_end_is_called_once_with_the_final_response() -> None:
    seen = Observers()
    stream = fake_stream(FakeBody([HI]), on_end=seen.on_end)
    response = stream.result(timeout=WAIT)
    assert seen.ended.wait(WAIT) and seen.ends == [response]


def test_on_end_is_called_once_with_the_partial_response_of_a_failure() -> None:
    seen = Observers()
    stream = fake_stream(FakeBody([event(chunk("par"))]), on_end=seen.on_end)
    with pytest.raises(IncompleteStreamError) as caught:
        stream.result(timeout=WAIT)
    assert seen.ended.wait(WAIT) and seen.ends == [caught.value.partial]
    assert seen.ends[0].content == "par"


# --- the finish grace ----------------------------------------------------------------------


def test_a_finished_stream_without_done_completes_after_the_finish_grace() -> None:
    # The connection stays open after the finish and the usage, without [DONE].
    clock = FakeClock()
    finished = [
        event(chunk("Hi")),
        event(chunk(finish="stop")),
        event(chunk(usage=USAGE, choices=False)),
    ]
    stream, body, watchdog = _watched(
        [*finished, clock.tick(0.5), STALL], clock, idle=5.0, finish_grace=0.3
    )
    assert body.stalled.wait(WAIT)
    watchdog.check()
    response = stream.result(timeout=WAIT)
    assert (response.content, response.finish_reason) == ("Hi", "stop")
    assert response.usage is not None and response.usage.total_tokens == 5


def test_the_finish_grace_still_delivers_completed_to_a_full_queue() -> None:
    # The queue is full when the grace runs out: the last events (Completed) must wait
    # for room, not be dropped.
    clock = FakeClock()
    finished = event(chunk("Hi")) + event(chunk(finish="stop"))
    expected = list(chatstream.iter_events([finished, DONE]))
    watchdog = Watchdog(clock=clock, thread=False)
    body = FakeBody([finished, clock.tick(2.0), STALL])
    stream = fake_stream(
        body,
        watchdog=watchdog,
        timeouts=Timeouts(idle=5.0, finish_grace=1.0),
        options=StreamOptions(queue_size=len(expected) - 1),
    )
    assert body.stalled.wait(WAIT)
    watchdog.check()
    events, error = drain(stream)
    assert error is None and events == expected
    assert stream.result(timeout=WAIT).content == "Hi"


def test_a_dropped_stream_with_callbacks_and_iteration_stops_keeping_events() -> None:
    # Nobody can iterate a dropped stream: its queue must not fill up and hold the
    # worker forever, while its callbacks still get everything.
    seen = Observers()
    body = answer(*["z"] * 100)
    fake_stream(
        FakeBody([body]),
        on_event=seen.on_event,
        on_end=seen.on_end,
        iterate=True,
        options=StreamOptions(queue_size=1),
    )
    gc.collect()
    assert seen.ended.wait(WAIT)
    assert seen.ends[0].ok and seen.events == list(chatstream.iter_events([body]))

"""The stream's lifecycle over real sockets: what users hit with callbacks, several
consumers, signal handlers, ``fork()`` and GUI dispatchers (one test per behaviour; the
socket-free versions of the rules are in test_worker.py).

The invariants, in every test: nothing hangs (bounded waits; signals and ``fork()`` run
in a subprocess with a timeout), nothing delivered is lost, no thread or file descriptor
is left behind (``no_leaks``), and every observer is told the same single outcome.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator

import pytest

import chatstream
from chatstream import (
    CallbackError,
    ChatStream,
    Client,
    Completed,
    ErrorInfo,
    ResponseEvent,
    ServerError,
    StreamError,
    StreamOptions,
    Timeouts,
)
from chatstream._shell.lifecycle import Lifecycle, State, Stopped
from chatstream._shell.outcome import StopReason
from tests.loopback import Conn, LoopbackServer, json_error, sse_body

from ..adversarial.harness import wait_until
from ..helpers import BODY, answer, chunk, event

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT = 10.0
HI = answer("Hel", "lo")
HI_EVENTS = list(chatstream.iter_events([HI]))


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[Client]:
    with Client(
        server.url + "/v1", "sk-test", timeouts=Timeouts(connect=2.0, idle=5.0), retry=0
    ) as c:
        yield c


def _ended(stream: ChatStream) -> None:
    stream._worker.job.join(WAIT)
    assert not stream._worker.job.is_alive(), "the worker did not end"


class Ends:
    """Records ``on_end``."""

    def __init__(self) -> None:
        self.responses: list[chatstream.Response] = []
        self.done = threading.Event()

    def __call__(self, response: chatstream.Response) -> None:
        self.responses.append(response)
        self.done.set()

    def told(self) -> ErrorInfo | None:
        assert self.done.wait(WAIT), "on_end was never called"
        assert len(self.responses) == 1
        return self.responses[0].error


# --- 1. a finished stream is never reported as closed -------------------------------------


def test_breaking_out_on_completed_and_closing_leaves_the_stream_completed(
    server: LoopbackServer, client: Client
) -> None:
    server.set_default(sse_body(HI))
    for _ in range(40):  # the race this guards against showed up in about 4 of 5 runs
        ends = Ends()
        with client.stream(BODY, on_end=ends, iterate=True) as stream:
            for item in stream:
                if isinstance(item, Completed):
                    break
        assert stream.result(timeout=WAIT).content == "Hello"
        assert ends.told() is None
        _ended(stream)


# --- 2. observers agree -------------------------------------------------------------------


def test_on_event_raising_on_completed_is_one_failure_for_every_observer(
    server: LoopbackServer, client: Client
) -> None:
    server.set_default(sse_body(HI))
    ends = Ends()

    def on_event(item: ResponseEvent) -> None:
        if isinstance(item, Completed):
            raise ValueError("late")

    stream = client.stream(BODY, on_event=on_event, on_end=ends)
    with pytest.raises(CallbackError) as caught:
        stream.result(timeout=WAIT)
    error = caught.value
    assert ends.told() == ErrorInfo.of(error)
    assert error.partial is not None and error.partial.error == ends.told()
    assert error.partial.content == "Hello"
    _ended(stream)


# --- 3. re-entrancy -----------------------------------------------------------------------


@pytest.mark.parametrize("call", ["result", "iterate"])
def test_waiting_for_a_stream_in_its_own_on_event_fails_at_once(
    server: LoopbackServer, client: Client, call: str
) -> None:
    server.set_default(sse_body(HI))
    holder: list[ChatStream] = []
    ready = threading.Event()

    def on_event(item: ResponseEvent) -> None:
        ready.wait(WAIT)
        holder[0].result() if call == "result" else list(holder[0])

    stream = client.stream(BODY, on_event=on_event, iterate=True)
    holder.append(stream)
    ready.set()
    with pytest.raises(CallbackError) as caught:
        stream.result(timeout=WAIT)
    assert isinstance(caught.value.__cause__, RuntimeError)
    _ended(stream)


# --- 4. BaseException from user code ------------------------------------------------------


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_a_base_exception_in_on_event_wakes_the_consumer_with_a_callback_error(
    server: LoopbackServer, client: Client, exc: type[BaseException]
) -> None:
    server.set_default(sse_body(HI))
    ends = Ends()

    def on_event(item: ResponseEvent) -> None:
        raise exc()

    stream = client.stream(BODY, on_event=on_event, on_end=ends, iterate=True)
    with pytest.raises(CallbackError) as caught:
        list(stream)
    assert isinstance(caught.value.__cause__, exc)
    assert ends.told() == ErrorInfo.of(caught.value)
    _ended(stream)


# --- 5. a dispatcher that raises ----------------------------------------------------------


def test_a_dispatcher_that_raises_ends_the_stream_in_a_callback_error(
    server: LoopbackServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.set_default(sse_body(HI))

    def destroyed(fn: Callable[[], None]) -> None:  # Tk's after() once the window is gone
        raise RuntimeError("main thread is not in main loop")

    stream = client.stream(BODY, on_event=lambda item: None, dispatch=destroyed)
    with pytest.raises(CallbackError) as caught:
        stream.result(timeout=WAIT)
    assert isinstance(caught.value.__cause__, RuntimeError)
    _ended(stream)
    assert "worker failed" not in caplog.text


# --- 6. two threads iterating one stream --------------------------------------------------


def test_two_threads_iterating_one_stream_both_end_and_share_the_events(
    server: LoopbackServer, client: Client
) -> None:
    words = [f"w{i} " for i in range(300)]
    body = answer(*words)
    server.set_default(sse_body(body))
    got: list[list[ResponseEvent]] = [[], []]
    with client.stream(BODY, options=StreamOptions(queue_size=4)) as stream:

        def consume(n: int) -> None:
            for item in stream:
                got[n].append(item)

        threads = [threading.Thread(target=consume, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert not any(t.is_alive() for t in threads), "an iterator hung"
    everything = got[0] + got[1]
    assert sorted(map(repr, everything)) == sorted(map(repr, chatstream.iter_events([body])))
    assert sum(isinstance(item, Completed) for item in everything) == 1
    _ended(stream)


# --- 7. iterating a failed stream again ---------------------------------------------------


def test_iterating_a_failed_stream_again_raises_the_error_again(
    server: LoopbackServer, client: Client
) -> None:
    server.set_default(json_error(500, {"error": {"message": "down"}}))
    stream = client.stream(BODY)
    with pytest.raises(ServerError) as first:
        list(stream)
    with pytest.raises(ServerError) as again:
        list(stream)
    assert again.value is first.value
    _ended(stream)


# --- 10. the internal-error path ----------------------------------------------------------


def test_an_internal_error_keeps_the_cause_text_but_not_its_frames(
    server: LoopbackServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set_default(sse_body(HI))

    def broken(self: object, data: bytes) -> list[ResponseEvent]:
        raise KeyError("a bug")

    monkeypatch.setattr(chatstream.StreamParser, "feed", broken)
    stream = client.stream(BODY)
    with pytest.raises(StreamError) as caught:
        stream.result(timeout=WAIT)
    cause = caught.value.__cause__
    assert cause is not None and "KeyError" in str(cause) and "a bug" in str(cause)
    assert cause.__traceback__ is None  # no frames: no headers, no key, no socket held
    assert "sk-test" not in str(cause)
    _ended(stream)


def test_a_core_that_raises_leaves_the_parse_lock_to_the_next_stream(
    server: LoopbackServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set_default(sse_body(HI))
    feed = chatstream.StreamParser.feed
    calls = []

    def broken_once(self: chatstream.StreamParser, data: bytes) -> list[ResponseEvent]:
        calls.append(data)
        if len(calls) == 1:
            raise KeyError("a bug")
        return feed(self, data)

    monkeypatch.setattr(chatstream.StreamParser, "feed", broken_once)
    with pytest.raises(StreamError):
        client.stream(BODY).result(timeout=WAIT)
    assert client.stream(BODY).result(timeout=WAIT).content == "Hello"


def test_a_callback_waiting_for_another_stream_does_not_hold_up_its_parsing(
    server: LoopbackServer, client: Client
) -> None:
    server.set_default(sse_body(HI))
    other_read = threading.Event()
    waited: list[bool] = []

    def wait_for_the_other(event: ResponseEvent) -> None:
        if not waited:
            waited.append(other_read.wait(WAIT))

    first = client.stream(BODY, on_event=wait_for_the_other, iterate=False)
    second = client.stream(BODY, on_event=lambda event: other_read.set(), iterate=False)
    assert second.result(timeout=WAIT).content == "Hello"
    assert first.result(timeout=WAIT).content == "Hello"
    assert waited == [True]


def test_a_stream_waiting_for_room_in_its_queue_does_not_hold_up_the_others(
    server: LoopbackServer, client: Client
) -> None:
    many = answer(*["x"] * 2000)
    server.route("/many/v1/chat/completions", sse_body(many))
    server.set_default(sse_body(HI))
    with Client(server.url + "/many/v1", retry=0, timeouts=Timeouts(idle=5.0)) as flooding:
        stuck = flooding.stream(
            BODY, options=StreamOptions(queue_size=1)
        )  # nobody iterates it: its queue fills
        room = stuck._worker.queue._room
        assert wait_until(lambda: bool(room._waiters), WAIT)  # type: ignore[attr-defined]
        assert client.stream(BODY).result(timeout=WAIT).content == "Hello"
        stuck.close()


# --- 11. fire-and-forget callback streams -------------------------------------------------


def test_a_callback_stream_nobody_keeps_is_read_to_its_end(
    server: LoopbackServer, client: Client
) -> None:
    words = [f"w{i} " for i in range(30)]
    server.set_default(sse_body(answer(*words), delay=0.01))
    ends = Ends()
    received: list[ResponseEvent] = []
    client.stream(BODY, on_event=received.append, on_end=ends)  # not kept
    for _ in range(3):
        gc.collect()
    assert ends.told() is None
    assert ends.responses[0].content == "".join(words)
    assert [type(e) for e in received][-1] is Completed


def test_an_iterator_only_stream_nobody_keeps_is_closed(
    server: LoopbackServer, client: Client
) -> None:
    released = threading.Event()

    def stall(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("a")))
        conn.sleep(WAIT)
        released.set()

    server.set_default(stall)
    stream = client.stream(BODY)
    assert next(iter(stream)) == HI_EVENTS[0]
    thread = stream._worker.job
    del stream
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()


# --- the stop state alone (chatstream._shell.lifecycle) -----------------------------------


def test_the_first_stop_reason_wins_and_runs_each_stop_hook_once() -> None:
    life = Lifecycle()
    woken: list[str] = []
    life.on_stop(lambda: woken.append("socket"))
    life.stop(StopReason.IDLE)
    life.stop(StopReason.CLOSED)
    assert (life.state, life.reason, woken) == (State.STOPPING, StopReason.IDLE, ["socket"])
    assert life.stopped.is_set() and not life.halted


def test_a_stop_hook_registered_after_the_stop_runs_at_once() -> None:
    life = Lifecycle()
    life.stop(StopReason.TOTAL)
    woken: list[str] = []
    life.on_stop(lambda: woken.append("body"))
    assert woken == ["body"]


def test_nothing_stops_a_stream_whose_outcome_is_decided() -> None:
    life = Lifecycle()
    life.settle()
    decided = life.end()
    woken: list[str] = []
    life.on_stop(lambda: woken.append("late"))
    life.stop(StopReason.CLOSED)
    assert decided == Stopped(reason=None, settled=True, callback_error=None)
    assert (life.state, life.reason, woken) == (State.ENDED, None, [])


def test_close_stops_the_stream_and_wakes_the_consumers_even_after_the_end() -> None:
    life = Lifecycle()
    consumers: list[str] = []
    life.on_close(lambda: consumers.append("woken"))
    life.end()
    life.close()
    life.close()
    assert life.closed and consumers == ["woken"] and life.reason is None


def test_a_callback_error_before_the_end_stops_the_stream_and_is_kept() -> None:
    life = Lifecycle()
    boom = ValueError("boom")
    life.fail(boom)
    life.fail(KeyError("later"))
    assert life.end() == Stopped(StopReason.CALLBACK, settled=False, callback_error=boom)
    assert life.halted


def test_a_callback_error_after_the_end_is_logged_not_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    life = Lifecycle()
    life.end()
    life.fail(ValueError("too late"))
    assert life.callback_error is None and life.reason is None
    assert "after the stream ended" in caplog.text


# --- 8 and 9: signals and fork, in a bounded subprocess -----------------------------------

SIGNAL_SCRIPT = """
import os, random, signal, sys, threading
import chatstream

client = chatstream.Client(sys.argv[1] + "/v1", retry=0, timeouts=chatstream.Timeouts(idle=10))
current = []
signal.signal(signal.SIGUSR1, lambda signum, frame: current[0].close())
rng = random.Random(7)
outcomes = set()
for _ in range(int(sys.argv[2])):
    stream = client.stream({"model": "m", "messages": []})
    current[:] = [stream]
    timer = threading.Timer(rng.uniform(0.0, 0.003), os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    for _event in stream:
        pass
    timer.join()
    try:
        stream.result(timeout=10)
        outcomes.add("completed")
    except chatstream.ChatStreamError as error:
        outcomes.add(error.kind)
client.close()
print("ended", sorted(outcomes))
"""


def _endless(conn: Conn) -> None:
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    while True:
        for _ in range(20):
            conn.write(event(chunk("x")))
        conn.sleep(0.0005)


def _run_script(script: str, *args: str, timeout: float = 120.0) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_close_from_a_signal_handler_in_the_iterating_thread_never_deadlocks(
    server: LoopbackServer,
) -> None:
    server.set_default(_endless)
    out = _run_script(SIGNAL_SCRIPT, server.url, "100")
    assert out.strip() == "ended ['closed']"


HELD_LOCK_SCRIPT = """
import os, signal, sys
import chatstream

client = chatstream.Client(sys.argv[1] + "/v1", retry=0)
stream = client.stream({"model": "m", "messages": []})
events = iter(stream)
next(events)
signal.signal(signal.SIGUSR1, lambda signum, frame: stream.close())
# The signal lands while this thread holds the queue's lock, as it does when a handler
# interrupts the iterating thread inside the queue: close() must not wait for that lock.
with stream._worker.queue._lock:
    os.kill(os.getpid(), signal.SIGUSR1)
    for _ in range(3):  # the handler runs at the next function call
        pass
rest = list(events)
stream._worker.job.join(10)
print("closed", rest == [], not stream._worker.job.is_alive())
client.close()
"""


def test_close_from_a_signal_handler_that_interrupted_the_queue_returns(
    server: LoopbackServer,
) -> None:
    server.set_default(_endless)
    out = _run_script(HELD_LOCK_SCRIPT, server.url, timeout=60.0)
    assert out.strip() == "closed True True"


FORK_SCRIPT = """
import gc, os, sys, urllib.request
import chatstream

url = sys.argv[1]
client = chatstream.Client(url + "/v1", retry=0)
parent = client.stream({"model": "m", "messages": []})
events = iter(parent)
first = next(events)
pid = os.fork()
if pid == 0:
    # The child: its own stream keeps its time limits (only the watchdog can end a stream
    # that receives keep-alives), and dropping the inherited one must not touch it.
    child = chatstream.Client(url + "/pings/v1", retry=0,
                              timeouts=chatstream.Timeouts(idle=5, event=0.5))
    try:
        child.stream({"model": "m", "messages": []}).result(timeout=20)
        code = 3
    except chatstream.StreamTimeoutError as error:
        code = 0 if error.name == "event" else 4
    parent.close()
    del parent, events
    gc.collect()
    sys.exit(code)  # a normal exit: atexit hooks and finalizers run
_, status = os.waitpid(pid, 0)
urllib.request.urlopen(url + "/release", data=b"").read()
rest = list(events)
print(os.waitstatus_to_exitcode(status), parent.result(timeout=20).content)
"""


TURN_FORK_SCRIPT = """
import os, sys, threading
import chatstream
from chatstream._shell import process

held, forked = threading.Event(), threading.Event()

def holder():
    with process.parse_lock():  # another thread is parsing when the process forks
        held.set()
        forked.wait(10)

thread = threading.Thread(target=holder)
thread.start()
held.wait(10)
pid = os.fork()
if pid == 0:
    client = chatstream.Client(sys.argv[1] + "/v1", retry=0)
    content = client.stream({"model": "m", "messages": []}).result(timeout=20).content
    os._exit(0 if content == "Hello" else 3)
forked.set()
thread.join()
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_parses_though_a_parent_thread_held_the_parse_lock(
    server: LoopbackServer,
) -> None:
    server.set_default(sse_body(HI))
    assert _run_script(TURN_FORK_SCRIPT, server.url).strip() == "0"


def test_a_forked_child_has_its_own_watchdog_and_never_touches_the_parents_stream(
    server: LoopbackServer,
) -> None:
    release = threading.Event()

    def held(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("Hel")))
        release.wait(60)
        conn.write(event(chunk("lo")) + event(chunk(finish="stop")) + b"data: [DONE]\n\n")

    def pings(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        while True:
            conn.write(b": ping\n\n")
            conn.sleep(0.05)

    def open_gate(conn: Conn) -> None:
        release.set()
        conn.respond(200, b"ok", [("Content-Type", "text/plain")])

    server.route("/v1/chat/completions", held)
    server.route("/pings/v1/chat/completions", pings)
    server.route("/release", open_gate)
    out = _run_script(FORK_SCRIPT, server.url)
    assert out.strip() == "0 Hello"

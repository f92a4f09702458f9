"""Shared machinery of the adversarial suite: the canary key, a consumer with a
wall-clock guard, and the checks of the four invariants.

Every stream of the suite is read through :func:`run_stream` (or :func:`consume`) and judged by
:func:`check`:

* **no hang** -- the consumer runs on its own thread, joined with a timeout (the idle
  timeout + 2 s unless a case says otherwise);
* **exactly one terminal outcome** -- the iterator ends with the same error
  :meth:`~chatstream.ChatStream.result` raises (the very same object), or both report
  success; ``on_end`` is called exactly once; ``Completed`` is the last event of a
  success and absent from a failure;
* **nothing already delivered is lost** -- the events seen by the iterator and by the
  ``on_event`` callback, reduced (text, reasoning and refusal deltas joined, finished
  tool calls collected), equal the final or partial response (a prefix of it where the
  consumer stopped reading: a close, a callback error);
* **no secret** -- the canary key, and the canary in the base URL's query string, are in
  no message, ``repr``, cause or context chain, formatted traceback or public attribute.

The fourth invariant, **no leak**, is the autouse fixture of ``conftest.py``.
"""

from __future__ import annotations

import re
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import chatstream
from chatstream import (
    ChatStream,
    ChatStreamError,
    Client,
    Completed,
    FunctionCall,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    RefusalDelta,
    Response,
    ResponseEvent,
    Retry,
    Timeouts,
    Turn,
)
from chatstream._shell.process import idle_threads
from tests.helpers import BODY, DONE, event

#: The API key every adversarial client uses; it must never surface anywhere.
CANARY = f"sk-CANARY-{uuid.uuid4()}"
#: A second key, carried in the base URL's query string (gateway style).
QUERY_CANARY = f"sk-CANARY-{uuid.uuid4()}"
#: What a leak looks like: either canary, or the unique part of one (a partly masked key
#: still leaks).
_CANARY_PARTS = tuple(
    part for key in (CANARY, QUERY_CANARY) for part in (key, key.split("-", 2)[2])
)

#: The request path every client posts to.
PATH = "/v1/chat/completions"
#: The idle timeout of the suite's clients (seconds): short, so stalls fail fast.
IDLE = 0.5
#: The request body of every stream.


def contains_canary(text: str) -> bool:
    """True when ``text`` holds a canary key (or the unique part of one)."""
    return any(part in text for part in _CANARY_PARTS)


# --- bodies -----------------------------------------------------------------------------


def sse(*payloads: Any, done: bool = True) -> bytes:
    """An SSE body: one event per payload, then ``[DONE]``."""
    return b"".join(event(p) for p in payloads) + (DONE if done else b"")


def words(n: int, prefix: str = "w") -> list[str]:
    """``n`` distinct little text deltas."""
    return [f"{prefix}{i} " for i in range(n)]


# --- clients ----------------------------------------------------------------------------


def make_client(
    url: str,
    *,
    idle: float | None = IDLE,
    connect: float | None = 1.0,
    event: float | None = None,
    total: float | None = None,
    grace: float = 0.3,
    retries: int = 0,
    query_key: bool = True,
    **options: Any,
) -> Client:
    """A client of the server at ``url`` with the suite's short limits and the canary
    key (and, unless ``query_key=False``, a second canary in the query string)."""
    base = url + "/v1" + (f"?key={QUERY_CANARY}" if query_key else "")
    options.setdefault("api_key", CANARY)
    return Client(
        base,
        timeouts=Timeouts(connect=connect, idle=idle, event=event, total=total, finish_grace=grace),
        retry=options.pop("retry", None) or Retry(max_retries=retries, backoff=0.05, jitter=0.1),
        **options,
    )


# --- consuming --------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything a consumer saw of one stream."""

    stream: ChatStream
    events: list[ResponseEvent] = field(default_factory=list)
    callback_events: list[ResponseEvent] = field(default_factory=list)
    ends: list[Response] = field(default_factory=list)
    #: The error the iterator raised, if any.
    iter_error: ChatStreamError | None = None
    #: The error ``result()`` raised, or its response.
    error: ChatStreamError | None = None
    response: Response | None = None
    #: Anything else that escaped (a bug).
    unexpected: BaseException | None = None
    hung: bool = False
    #: Seconds from the request to the end of ``result()``.
    elapsed: float = 0.0
    #: When each event reached the iterator (monotonic seconds).
    times: list[float] = field(default_factory=list)
    started: float = 0.0

    @property
    def final(self) -> Response:
        """The response, or the error's partial response."""
        if self.response is not None:
            return self.response
        assert self.error is not None and self.error.partial is not None
        return self.error.partial


class Running:
    """A stream being read by a consumer thread (see :func:`start`)."""

    def __init__(self, outcome: Outcome, thread: threading.Thread, guard: float) -> None:
        self.outcome = outcome
        self.stream = outcome.stream
        self.thread = thread
        self.guard = guard
        self._arrived = threading.Condition()

    def _event(self, item: ResponseEvent) -> None:
        with self._arrived:
            self.outcome.events.append(item)
            self.outcome.times.append(time.monotonic())
            self._arrived.notify_all()

    def wait_events(self, count: int, timeout: float = 5.0) -> None:
        """Block until the iterator has seen ``count`` events."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.outcome.events) >= count, timeout):
                raise AssertionError(f"{len(self.outcome.events)} of {count} events arrived")

    def wait(self) -> Outcome:
        """Join the consumer within the guard (counted from the request); a consumer still
        blocked then is a hang: the stream is closed and the outcome says ``hung``."""
        out = self.outcome
        self.thread.join(max(0.0, out.started + self.guard - time.monotonic()))
        if self.thread.is_alive():
            out.hung = True
            self.stream.close()
            self.thread.join(2.0)
        return out


def consume(
    stream: ChatStream,
    *,
    guard: float,
    outcome: Outcome | None = None,
    iterate: bool = True,
    on_each: Callable[[ResponseEvent, int], object] | None = None,
) -> Running:
    """Read ``stream`` on a consumer thread: iterate it (unless ``iterate=False``), then
    call ``result()``. :meth:`Running.wait` joins it within ``guard`` seconds."""
    out = outcome or Outcome(stream)
    out.started = out.started or time.monotonic()
    running: Running

    def read() -> None:
        try:
            if iterate:
                try:
                    for number, item in enumerate(stream):
                        running._event(item)
                        if on_each is not None:
                            on_each(item, number)
                except ChatStreamError as exc:
                    out.iter_error = exc
            try:
                out.response = stream.result(timeout=guard)
            except ChatStreamError as exc:
                out.error = exc
        except BaseException as exc:  # a bug in chatstream (or a TimeoutError: a hang)
            out.unexpected = exc
        out.elapsed = time.monotonic() - out.started

    consumer = threading.Thread(target=read, name="adversarial-consumer", daemon=True)
    running = Running(out, consumer, guard)
    consumer.start()
    return running


def start(
    client: Client,
    *,
    guard: float | None = None,
    body: dict[str, Any] | None = None,
    callback: bool = True,
    iterate: bool = True,
    turn: Turn | None = None,
    on_each: Callable[[ResponseEvent, int], object] | None = None,
    on_event: Callable[[ResponseEvent], object] | None = None,
    **stream_options: Any,
) -> Running:
    """Start a stream (with an ``on_event`` recorder unless ``callback=False``) and a
    consumer thread reading it, as part of ``turn`` when given. ``guard`` defaults to
    the idle timeout + 2 s; other options go to :meth:`Client.stream` (``options``,
    ``limits``)."""
    if guard is None:
        guard = (client.timeouts.idle or 0.0) + 2.0
    # Made before the stream: its worker may call back before client.stream() returns.
    outcome = Outcome(None, started=time.monotonic())  # type: ignore[arg-type]

    def record(item: ResponseEvent) -> None:
        outcome.callback_events.append(item)
        if on_event is not None:
            on_event(item)

    stream = (turn or client).stream(
        body or BODY,
        on_event=record if callback else None,
        on_end=outcome.ends.append,
        iterate=iterate,
        **stream_options,
    )
    outcome.stream = stream
    return consume(stream, guard=guard, outcome=outcome, iterate=iterate, on_each=on_each)


def run_stream(client: Client, **options: Any) -> Outcome:
    """:func:`start` a stream and wait for its outcome."""
    return start(client, **options).wait()


# --- the invariants ---------------------------------------------------------------------


def reduce_events(events: Iterable[ResponseEvent]) -> dict[int, dict[str, Any]]:
    """What the events say each choice produced: joined deltas and finished calls."""
    out: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"content": "", "reasoning": "", "refusal": "", "tool_calls": []}
    )
    for item in events:
        if isinstance(item, OutputTextDelta):
            out[item.choice_index]["content"] += item.delta
        elif isinstance(item, ReasoningContentDelta):
            out[item.choice_index]["reasoning"] += item.delta
        elif isinstance(item, RefusalDelta):
            out[item.choice_index]["refusal"] += item.delta
        elif isinstance(item, OutputItemDone) and isinstance(item.item, FunctionCall):
            out[item.choice_index]["tool_calls"].append(item.item)
    return dict(out)


def joined_text(text: str) -> str:
    """``text`` with each pair of surrogate halves joined into its character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def assert_reduces_to(
    events: list[ResponseEvent], response: Response, *, prefix: bool = False
) -> None:
    """The events reduce to ``response`` (to a prefix of it when ``prefix``)."""
    reduced = reduce_events(events)
    choices = {c.index: c for c in response.choices}
    assert set(reduced) <= set(choices), f"events for unknown choices {set(reduced)}"
    for index, choice in choices.items():
        got = reduced.get(index, {"content": "", "reasoning": "", "refusal": "", "tool_calls": []})
        want = {
            "content": choice.content,
            "reasoning": choice.reasoning,
            "refusal": choice.refusal or "",
            "tool_calls": list(choice.tool_calls),
        }
        for key in ("content", "reasoning", "refusal"):
            # Deltas carry the text as it came; joined, the halves of an emoji a server
            # split across two deltas make its character again, as in the response.
            got[key] = joined_text(got[key])
            if prefix:
                assert want[key].startswith(got[key]), f"choice {index} {key}: lost a delta"
            else:
                assert got[key] == want[key], f"choice {index} {key}: {got[key]!r} != {want[key]!r}"
        calls = want["tool_calls"]
        if prefix:
            assert got["tool_calls"] == calls[: len(got["tool_calls"])]
        else:
            assert got["tool_calls"] == calls


def check(
    outcome: Outcome,
    expect: type[ChatStreamError] | None = None,
    *,
    prefix: bool = False,
    within: float | None = None,
    client: Client | None = None,
) -> Outcome:
    """Assert the invariants on one stream's outcome.

    Args:
        expect: The error class the stream must end in; ``None``: it must complete.
        prefix: The consumer stopped reading early (closed, callback failed): what it
            saw only has to be a prefix of the partial response.
        within: Seconds the whole stream may take at most (beyond the guard).
        client: Also check its ``repr`` for the canary.
    """
    # No hang, no stray exception.
    assert not outcome.hung, "the consumer was still blocked at the wall-clock guard"
    if outcome.unexpected is not None:
        raise AssertionError(
            f"an exception that is not a ChatStreamError escaped: {outcome.unexpected!r}"
        ) from outcome.unexpected
    if within is not None:
        assert outcome.elapsed < within, f"took {outcome.elapsed:.2f} s (limit {within} s)"
    # Exactly one terminal outcome.
    assert (outcome.error is None) != (outcome.response is None), "no single outcome"
    if outcome.iter_error is not None:
        assert outcome.error is outcome.iter_error, "iterator and result() disagree"
    completed = [i for i, e in enumerate(outcome.events) if isinstance(e, Completed)]
    if expect is None:
        assert outcome.error is None, f"expected success, got {outcome.error!r}"
        assert outcome.response is not None and outcome.response.ok
        if not prefix:
            assert completed == [len(outcome.events) - 1], "Completed is not the last event"
    else:
        assert isinstance(outcome.error, expect), f"expected {expect.__name__}, got " + (
            repr(outcome.error) if outcome.error else f"success {outcome.response!r}"
        )
        assert completed == [], "a failed stream delivered Completed"
        assert outcome.error.partial is not None, "the error carries no partial response"
        assert outcome.error.partial.error == chatstream.ErrorInfo.of(outcome.error), (
            "the partial response tells another outcome"
        )
        if outcome.iter_error is None and not prefix and outcome.stream._worker.delivery.iterate:
            # Only a close ends iteration silently.
            assert isinstance(outcome.error, chatstream.StreamClosedError), (
                "the iterator ended without raising the stream's error"
            )
    assert len(outcome.ends) == 1, f"on_end called {len(outcome.ends)} times"
    # Nothing already delivered is lost.
    final = outcome.final
    assert_reduces_to(outcome.events, final, prefix=prefix)
    assert_reduces_to(outcome.callback_events, final, prefix=prefix)
    if outcome.callback_events:
        seen = len(outcome.events)
        assert outcome.events == outcome.callback_events[:seen], "iterator and callback differ"
    assert outcome.ends[0].to_result_dict() == final.to_result_dict()
    # No secret anywhere.
    assert_no_canary(outcome.error, outcome.response, outcome.stream, client)
    return outcome


# --- secrets ----------------------------------------------------------------------------


def exception_texts(exc: BaseException) -> list[str]:
    """Every text an exception shows: its message, ``repr``, formatted traceback, public
    attributes, and the same for each exception of its cause and context chain."""
    texts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *traceback.format_exception(current)]
        texts += [repr(v) for k, v in vars(current).items() if k != "partial"]
        partial = getattr(current, "partial", None)
        if partial is not None:
            texts.append(repr(partial.to_result_dict()))
        todo += [current.__cause__, current.__context__]
    return texts


def assert_no_canary(*things: Any) -> None:
    """No canary in any of ``things`` (exceptions in depth, anything else by ``repr``)."""
    for thing in things:
        if thing is None:
            continue
        texts = exception_texts(thing) if isinstance(thing, BaseException) else [repr(thing)]
        for text in texts:
            assert not contains_canary(text), f"canary leaked: {_around_canary(text)}"


def _around_canary(text: str) -> str:
    for part in _CANARY_PARTS:
        at = text.find(part)
        if at >= 0:
            return text[max(0, at - 120) : at + len(part) + 40]
    return ""


# --- resources --------------------------------------------------------------------------


def open_fds() -> int:
    """Open file descriptors of this process."""
    try:
        import os

        return len(os.listdir("/proc/self/fd"))
    except FileNotFoundError:  # pragma: no cover - not Linux
        return 0


def worker_threads() -> list[threading.Thread]:
    """chatstream's live threads (workers and the watchdog), except the pool's idle
    threads (they hold no stream, and end by themselves: see
    :mod:`chatstream._shell.threads`)."""
    idle = idle_threads()
    return [t for t in threading.enumerate() if t.name.startswith("chatstream-") and t not in idle]


def busy_threads() -> int:
    """How many threads this process runs, not counting chatstream's idle pool
    threads."""
    return threading.active_count() - len(idle_threads())


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (threads end
    asynchronously, and nothing signals "some thread ended")."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


_RSS = re.compile(r"^(VmRSS|VmHWM):\s+(\d+) kB", re.M)


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {m.group(1): int(m.group(2)) * 1024 for m in _RSS.finditer(f.read())}


class PeakRSS:
    """Measures how far the resident set grew during a block (peak minus start), from
    the kernel's high-water mark (reset on entry through ``/proc/self/clear_refs``), or
    from a sampling thread where that cannot be reset."""

    def __init__(self) -> None:
        self.growth = 0
        self._start = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._peak = 0

    def __enter__(self) -> PeakRSS:
        import gc

        gc.collect()
        self._start = _status()["VmRSS"]
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _status()["VmRSS"])

    def __exit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak = self._peak
        else:
            peak = _status()["VmHWM"]
        self.growth = max(0, peak - self._start)


MiB = 1024 * 1024

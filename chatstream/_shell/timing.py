"""What a stream tells its observers: its timings (:class:`~chatstream.Timing`, on the
response) and the telemetry hooks, for one stream.

The worker owns one :class:`Observer` per stream and calls it at a few points: the start,
each HTTP attempt and retry, the response headers, the first body read, each batch of
events the core produced (one per read, never one per event: the hot path pays one
clock reading per read that brings content), and the end.

Gaps between content
--------------------
A gap is the time between two reads that brought content (text, reasoning, a refusal, a
tool call or audio): content events that arrive in one read arrive together, and are one
arrival. Their p50, p90 and maximum are computed at the end from :class:`GapSample`,
which keeps the count and the maximum exactly and at most :data:`GAP_SAMPLE` gaps: all
of them up to that many, then a uniform sample of them (reservoir sampling), so a stream
of any length holds a bounded amount.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ChatStreamError
from ..events import ResponseEvent, is_content
from ..response import Response, Timing
from ..telemetry import StreamStart, Telemetry, call_hook

__all__ = ["GAP_SAMPLE", "MIN_RATE_SPAN", "GapSample", "Observer", "percentile", "token_rate"]

#: The most gaps between content arrivals one stream keeps (see the module documentation).
GAP_SAMPLE = 1024

#: The shortest span of content a token rate is computed over. The deltas of a reply that
#: came whole (a server that ignored ``"stream": true``, a replayed file) arrive within
#: microseconds of each other, and dividing by that gave "45621.8 tok/s".
MIN_RATE_SPAN = 0.1


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``ordered`` (sorted, not empty), interpolated
    linearly between the nearest ranks (numpy's default).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.5
    >>> percentile([0.1, 0.2, 0.9], 0.9)
    0.76
    """
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return round(value, 9)


def token_rate(output_tokens: int, span: float, arrivals: int) -> float | None:
    """Tokens per second over ``span`` seconds of content that came in ``arrivals``
    reads, or ``None`` when the duration was not measured (fewer than two arrivals, or a
    span shorter than :data:`MIN_RATE_SPAN`).

    >>> token_rate(50, 2.0, 48)
    25.0
    >>> token_rate(50, 0.00002, 3) is None
    True
    """
    if arrivals < 2 or span < MIN_RATE_SPAN or output_tokens <= 0:
        return None
    return output_tokens / span


class GapSample:
    """The gaps between content arrivals of one stream, in bounded memory: the count and
    the maximum exactly, and at most ``size`` of the gaps (all of them until there are
    more, then a uniform sample: reservoir sampling with a fixed seed, so a run is
    reproducible)."""

    __slots__ = ("_rng", "_values", "count", "maximum", "size")

    def __init__(self, size: int = GAP_SAMPLE) -> None:
        self.size = size
        self.count = 0
        self.maximum = 0.0
        self._values = array("d")
        self._rng: random.Random | None = None

    def add(self, gap: float) -> None:
        """Count one gap."""
        self.count += 1
        if gap > self.maximum:
            self.maximum = gap
        if len(self._values) < self.size:
            self._values.append(gap)
            return
        if self._rng is None:
            self._rng = random.Random(0)
        slot = self._rng.randrange(self.count)
        if slot < self.size:
            self._values[slot] = gap

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the gaps (of the sample, past ``size``), or ``None``
        with none."""
        if not self._values:
            return None
        return percentile(sorted(self._values), q)


class Observer:
    """One stream's telemetry hooks and timings (see the module documentation).

    ``clock`` is the stream's monotonic clock (injected in tests), ``wall`` the clock of
    :attr:`~chatstream.Timing.started_at`.
    """

    def __init__(
        self,
        telemetry: Telemetry | None,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.telemetry = telemetry
        self.clock = clock
        self.wall = wall
        #: What :meth:`Telemetry.on_stream_start` returned: given to every later hook.
        self.context: Any = None
        self.started = clock()
        self.started_at = wall()
        self.headers: float | None = None
        self.first_byte: float | None = None
        self.first_content: float | None = None
        self.last_content: float | None = None
        self.arrivals = 0
        self.gaps = GapSample()
        self.retry_waits: list[float] = []
        #: How many HTTP requests were sent (the last attempt's number).
        self.requests = 0
        self._last_event_at = self.started

    # --- the worker's points ----------------------------------------------------------

    def start(self, url: str, body: Mapping[str, Any], api: str = "chat") -> None:
        """The request is about to be sent (``url`` without secrets, on the wire
        ``api``). A hook that raises anything but an ``Exception`` propagates (see
        :func:`call_hook`)."""
        self.started = self._last_event_at = self.clock()
        self.started_at = self.wall()
        telemetry = self.telemetry
        if telemetry is not None:
            info = StreamStart(url=url, body=body, started_at=self.started_at, api=api)
            self.context = call_hook(telemetry.on_stream_start, info)

    def request(
        self, attempt: int, status: int | None, error: ChatStreamError | None, duration: float
    ) -> None:
        """One HTTP attempt ended."""
        self.requests = max(self.requests, attempt)
        if self.telemetry is not None:
            call_hook(self.telemetry.on_request, self.context, attempt, status, error, duration)

    def retry(self, attempt: int, delay: float, error: ChatStreamError) -> None:
        """The request will be sent again after ``delay`` seconds."""
        self.retry_waits.append(delay)
        if self.telemetry is not None:
            call_hook(self.telemetry.on_retry, self.context, attempt, delay, error)

    def headers_arrived(self) -> None:
        """A response's headers arrived (the last one's count)."""
        self.headers = self.clock()

    def body_read(self) -> None:
        """A read of the body returned bytes."""
        if self.first_byte is None:
            self.first_byte = self.clock()

    def events(self, events: list[ResponseEvent]) -> None:
        """A batch of events (one read's) is being delivered: note when content came,
        and call the event hook."""
        now: float | None = None
        for event in events:
            if is_content(event):
                now = self.clock()
                last = self.last_content
                if last is None:
                    self.first_content = now
                    if self.first_byte is None:  # a body read elsewhere (a whole JSON reply)
                        self.first_byte = now
                else:
                    self.gaps.add(now - last)
                self.last_content = now
                self.arrivals += 1
                break
        telemetry = self.telemetry
        if telemetry is not None:
            if now is None:
                now = self.clock()
            hook = telemetry.on_sse_event
            context = self.context
            for event in events:
                call_hook(hook, context, event, None, now - self._last_event_at)
                self._last_event_at = now

    # --- the end --------------------------------------------------------------------------

    def timed(self, response: Response) -> Response:
        """``response`` with its :class:`~chatstream.Timing`, the stream having ended now."""
        end = self.clock()
        start = self.started

        def since(at: float | None) -> float | None:
            return None if at is None else round(at - start, 9)

        usage = response.usage
        rate = None
        if usage is not None and self.first_content is not None and self.last_content is not None:
            rate = token_rate(
                usage.output_tokens, self.last_content - self.first_content, self.arrivals
            )
        gaps = self.gaps
        timing = Timing(
            started_at=self.started_at,
            time_to_headers=since(self.headers),
            time_to_first_byte=since(self.first_byte),
            time_to_first_content=since(self.first_content),
            time_to_last_content=since(self.last_content),
            duration=round(end - start, 9),
            content_arrivals=self.arrivals,
            gap_p50=gaps.quantile(0.5),
            gap_p90=gaps.quantile(0.9),
            gap_max=round(gaps.maximum, 9) if gaps.count else None,
            output_tokens_per_second=rate,
            retry_waits=tuple(self.retry_waits),
        )
        return dataclasses.replace(response, timing=timing)

    def failed(self, error: ChatStreamError) -> None:
        """The stream failed: the event hook hears of it (with no event)."""
        if self.telemetry is not None:
            call_hook(
                self.telemetry.on_sse_event,
                self.context,
                None,
                error,
                self.clock() - self._last_event_at,
            )

    def ended(self, response: Response, error: ChatStreamError | None) -> None:
        """The stream ended with this outcome."""
        if self.telemetry is not None:
            call_hook(self.telemetry.on_stream_end, self.context, response, error)

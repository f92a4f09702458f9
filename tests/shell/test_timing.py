"""Each stream's timings (Response.timing): the arithmetic alone, the value's JSON form,
and what a stream records, with a fake clock (and once over a real socket)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import chatstream
from chatstream import Response, Retry, Telemetry, Timing
from chatstream._shell.timing import GapSample, percentile, token_rate
from chatstream._shell.watchdog import Watchdog

from ..fakes import FakeBody, FakeClock, fake_stream
from ..helpers import DONE, USAGE, chunk, event
from ..loopback import LoopbackServer, json_error, sequence, sse_body

PATH = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


# --- the arithmetic -------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([0.25], 0.9) == 0.25


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_a_gap_sample_keeps_every_gap_up_to_its_size() -> None:
    sample = GapSample(size=8)
    for gap in (0.3, 0.1, 0.2):
        sample.add(gap)
    assert (sample.count, sample.maximum, sample.quantile(0.5)) == (3, 0.3, 0.2)


def test_a_gap_sample_stays_bounded_and_keeps_the_exact_count_and_maximum() -> None:
    sample = GapSample(size=100)
    for i in range(10_000):
        sample.add(float(i % 100))
    sample.add(500.0)
    assert (sample.count, sample.maximum) == (10_001, 500.0)
    assert len(sample._values) == 100
    median = sample.quantile(0.5)
    assert median is not None and 30.0 < median < 70.0  # a uniform sample of 0..99


def test_an_empty_gap_sample_has_no_quantile() -> None:
    assert GapSample().quantile(0.5) is None


def test_token_rate_needs_two_arrivals_and_a_measured_span() -> None:
    assert token_rate(50, 2.0, 48) == 25.0
    assert token_rate(50, 2.0, 1) is None
    assert token_rate(50, 0.01, 10) is None
    assert token_rate(0, 2.0, 10) is None


# --- the value --------------------------------------------------------------------------------

TIMING = Timing(
    started_at=1_700_000_000.25,
    time_to_headers=0.1,
    time_to_first_byte=0.2,
    time_to_first_content=0.3,
    time_to_last_content=1.3,
    duration=1.4,
    content_arrivals=11,
    gap_p50=0.1,
    gap_p90=0.2,
    gap_max=0.4,
    output_tokens_per_second=20.0,
    retry_waits=(0.5, 1.0),
)


def test_timing_round_trips_through_json_with_the_response() -> None:
    response = Response(response_id="r", timing=TIMING)
    again = Response.from_json(response.to_json())
    assert again.timing == TIMING
    assert isinstance(again.timing.retry_waits, tuple)


def test_timing_counts_its_retries() -> None:
    assert TIMING.retries == 2


def test_a_response_without_timing_round_trips_as_none() -> None:
    assert Response.from_json(Response().to_json()).timing is None


def test_timing_without_its_start_cannot_be_read() -> None:
    with pytest.raises(ValueError):
        Timing.from_dict({"duration": 1.0})


def test_the_conformance_result_has_no_timing() -> None:
    assert "timing" not in Response(timing=TIMING).to_result_dict()


# --- a stream, with a fake clock -------------------------------------------------------------


def timed_stream(pieces: list[object], **options: Any) -> tuple[chatstream.ChatStream, FakeClock]:
    clock = FakeClock()
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False), **options)
    return stream, clock


def test_a_stream_records_when_each_part_happened() -> None:
    clock = FakeClock()
    pieces: list[object] = [
        clock.tick(0.5),
        event(chunk(delta={"role": "assistant"})),
        clock.tick(0.25),
        event(chunk("Hel")),
        clock.tick(0.5),
        event(chunk("lo")),
        clock.tick(0.25),
        event(chunk("!")) + event(chunk(finish="stop")),
        clock.tick(0.125),
        event(chunk(usage=USAGE, choices=False)) + DONE,
    ]
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False))
    before = time.time()
    timing = stream.result(timeout=5).timing
    assert timing is not None
    assert before - 5 <= timing.started_at <= time.time()
    assert timing.time_to_headers == 0.0
    assert timing.time_to_first_byte == 0.5
    assert timing.time_to_first_content == 0.75
    assert timing.time_to_last_content == 1.5
    assert timing.duration == 1.625
    assert timing.content_arrivals == 3
    assert (timing.gap_p50, timing.gap_p90, timing.gap_max) == (0.375, 0.475, 0.5)
    assert timing.output_tokens_per_second == pytest.approx(2 / 0.75)
    assert timing.retry_waits == ()


def test_content_read_together_is_one_arrival() -> None:
    clock = FakeClock()
    pieces: list[object] = [clock.tick(1.0), event(chunk("a")) + event(chunk("b")) + DONE]
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False))
    timing = stream.result(timeout=5).timing
    assert timing is not None
    assert timing.content_arrivals == 1
    assert (timing.gap_p50, timing.gap_max) == (None, None)
    assert timing.time_to_first_content == timing.time_to_last_content == 1.0


def test_a_tool_call_is_content() -> None:
    call = [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f"}}]
    clock = FakeClock()
    pieces: list[object] = [clock.tick(0.5), event(chunk(tool_calls=call)) + DONE]
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False))
    timing = stream.result(timeout=5).timing
    assert timing is not None and timing.time_to_first_content == 0.5


def test_a_stream_without_usage_has_no_token_rate() -> None:
    clock = FakeClock()
    pieces: list[object] = [event(chunk("a")), clock.tick(1.0), event(chunk("b")) + DONE]
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False))
    timing = stream.result(timeout=5).timing
    assert timing is not None and timing.content_arrivals == 2
    assert timing.output_tokens_per_second is None


def test_a_failed_stream_keeps_its_timing_on_the_partial_response() -> None:
    clock = FakeClock()
    pieces: list[object] = [clock.tick(0.5), event(chunk("par")), clock.tick(0.5)]
    stream = fake_stream(FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False))
    with pytest.raises(chatstream.IncompleteStreamError) as failed:
        stream.result(timeout=5)
    partial = failed.value.partial
    assert partial is not None and partial.timing is not None
    assert partial.timing.time_to_first_content == 0.5
    assert partial.timing.duration == 1.0


def test_the_end_hook_gets_the_response_with_its_timing() -> None:
    ended: list[Response] = []
    clock = FakeClock()
    pieces: list[object] = [clock.tick(0.5), event(chunk("a")) + DONE]
    stream = fake_stream(
        FakeBody(pieces), watchdog=Watchdog(clock=clock, thread=False), on_end=ended.append
    )
    stream.result(timeout=5)
    assert ended[0].timing is not None and ended[0].timing.time_to_first_content == 0.5


# --- retries, over a real socket ------------------------------------------------------------------


def test_retries_and_their_waits_are_recorded(server: LoopbackServer) -> None:
    busy = json_error(503, {"error": {"message": "busy"}}, headers={"Retry-After": "0.05"})
    server.route(PATH, sequence(busy, sse_body(event(chunk("hi")) + DONE)))
    retry = Retry(max_retries=2, backoff=0.0, jitter=0.0)
    with chatstream.Client(server.url + "/v1", "sk-x", retry=retry) as client:
        timing = client.stream(BODY).result(timeout=10).timing
    assert timing is not None
    assert timing.retry_waits == (0.05,)
    assert timing.time_to_headers is not None and timing.time_to_headers >= 0.05
    assert timing.time_to_first_content is not None


def test_the_hooks_of_one_stream_share_its_context(server: LoopbackServer) -> None:
    class Numbered(Telemetry):
        def __init__(self) -> None:
            self.seen: list[tuple[str, Any]] = []

        def on_stream_start(self, stream: chatstream.StreamStart) -> Any:
            return stream.body["model"]

        def on_request(self, context: Any, *args: Any) -> None:
            self.seen.append(("request", context))

        def on_sse_event(self, context: Any, *args: Any) -> None:
            self.seen.append(("event", context))

        def on_stream_end(self, context: Any, response: Response, error: Any) -> None:
            self.seen.append(("end", context))

    server.route(PATH, sse_body(event(chunk("hi")) + DONE))
    telemetry = Numbered()
    with chatstream.Client(server.url + "/v1", "sk-x", telemetry=telemetry) as client:
        client.stream({**BODY, "model": "one"}).result(timeout=10)
        client.stream({**BODY, "model": "two"}).result(timeout=10)
    assert {context for _, context in telemetry.seen} == {"one", "two"}
    kinds = [kind for kind, context in telemetry.seen if context == "two"]
    assert kinds[0] == "request" and kinds[-1] == "end" and "event" in kinds

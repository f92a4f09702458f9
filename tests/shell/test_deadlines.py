"""The time limits as a pure function (chatstream._shell.deadlines): plain numbers in, the
next deadline and its kind out. No clock, thread or socket."""

from __future__ import annotations

import pytest

from chatstream import Timeouts
from chatstream._shell.deadlines import DRAIN_TIME, HEADERS_SLACK, Clocks, Expiry, next_deadline

T = Timeouts(connect=5.0, idle=10.0, event=30.0, total=100.0, finish_grace=2.0)
NO_LIMITS = Timeouts(idle=None)

CASES = [
    # (what, clocks, timeouts, expected)
    ("nothing runs and no total: none", Clocks(started=0.0), NO_LIMITS, None),
    ("only the total applies before the request", Clocks(started=5.0), T, (105.0, Expiry.TOTAL)),
    (
        "the whole wait for the headers is bounded by idle plus the slack",
        Clocks(started=0.0, headers_since=3.0),
        T,
        (3.0 + 10.0 + HEADERS_SLACK, Expiry.IDLE),
    ),
    (
        "a blocked read gets the idle limit",
        Clocks(started=0.0, reading_since=50.0),
        T,
        (60.0, Expiry.IDLE),
    ),
    (
        "time already waited since the last completed line counts against idle",
        Clocks(started=0.0, reading_since=50.0, line_waited=4.0),
        T,
        (56.0, Expiry.IDLE),
    ),
    (
        "the event limit counts every wait since the last data event",
        Clocks(started=0.0, reading_since=50.0, event_waited=25.0),
        T,
        (55.0, Expiry.EVENT),
    ),
    (
        "the total limit wins when it is nearest",
        Clocks(started=0.0, reading_since=95.0),
        T,
        (100.0, Expiry.TOTAL),
    ),
    (
        "the finish grace applies once every choice has finished",
        Clocks(started=0.0, reading_since=50.0, finishing=True),
        T,
        (52.0, Expiry.GRACE),
    ),
    (
        "no read, no idle, event or grace limit (callbacks or a full queue hold the worker)",
        Clocks(started=0.0, line_waited=9.0, event_waited=29.0, finishing=True),
        T,
        (100.0, Expiry.TOTAL),
    ),
    (
        "draining after [DONE] has its own bound, in all, from the start of the drain",
        Clocks(started=0.0, reading_since=60.0, line_waited=9.0, drain_since=50.0),
        T,
        (50.0 + DRAIN_TIME, Expiry.DRAIN),
    ),
    (
        "the drain is bounded even between two reads",
        Clocks(started=0.0, drain_since=50.0),
        T,
        (50.0 + DRAIN_TIME, Expiry.DRAIN),
    ),
    (
        "the total limit still applies while draining",
        Clocks(started=0.0, reading_since=99.9, drain_since=99.9),
        T,
        (100.0, Expiry.TOTAL),
    ),
    (
        "limits turned off are not deadlines",
        Clocks(started=0.0, reading_since=50.0, finishing=False),
        NO_LIMITS,
        None,
    ),
]


@pytest.mark.parametrize(
    ("clocks", "timeouts", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_next_deadline_is_the_earliest_that_applies(
    clocks: Clocks, timeouts: Timeouts, expected: tuple[float, Expiry] | None
) -> None:
    assert next_deadline(clocks, timeouts) == expected


@pytest.mark.parametrize(
    ("expiry", "fails"),
    [
        (Expiry.TOTAL, True),
        (Expiry.IDLE, True),
        (Expiry.EVENT, True),
        (Expiry.GRACE, False),
        (Expiry.DRAIN, False),
    ],
)
def test_only_the_time_limits_make_a_stream_fail(expiry: Expiry, fails: bool) -> None:
    assert expiry.fails is fails

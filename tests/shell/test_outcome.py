"""The one-outcome rules as a pure function (chatstream._shell.outcome.decide): what happened
in, the stream's single outcome out."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream import (
    CallbackError,
    EventTimeoutError,
    IdleTimeoutError,
    ProviderError,
    ServerError,
    StreamClosedError,
    Timeouts,
    TotalTimeoutError,
)
from chatstream._shell.outcome import StopReason, decide, stop_error

BODY_ERROR = ProviderError("filtered")
MET = ServerError("down", status=503)
CAUSE = ValueError("in a callback")

CASES: list[tuple[str, dict[str, Any], type[BaseException] | None]] = [
    ("nothing went wrong: completed", {}, None),
    (
        "the body ended normally, then a close: completed",
        {"reason": StopReason.CLOSED, "body_ended": True},
        None,
    ),
    (
        "the body ended normally, then a time limit: completed",
        {"reason": StopReason.TOTAL, "body_ended": True},
        None,
    ),
    (
        "a callback raised after the body ended normally: callback error",
        {"reason": StopReason.CALLBACK, "body_ended": True},
        CallbackError,
    ),
    (
        "a callback raised before the end: callback error",
        {"reason": StopReason.CALLBACK},
        CallbackError,
    ),
    (
        "the body's own error stands against a later callback failure",
        {"reason": StopReason.CALLBACK, "body_ended": True, "body_error": BODY_ERROR},
        ProviderError,
    ),
    (
        "the body's own error stands against a later close",
        {"reason": StopReason.CLOSED, "body_ended": True, "body_error": BODY_ERROR},
        ProviderError,
    ),
    ("closed while running: closed", {"reason": StopReason.CLOSED}, StreamClosedError),
    (
        "closed while running, whatever the close caused: closed",
        {"reason": StopReason.CLOSED, "met": MET},
        StreamClosedError,
    ),
    ("a time limit while running", {"reason": StopReason.IDLE}, IdleTimeoutError),
    ("an error met while running, not stopped: that error", {"met": MET}, ServerError),
]


@pytest.mark.parametrize(
    ("happened", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_outcome_follows_the_rules_in_order(
    happened: dict[str, Any], expected: type[BaseException] | None
) -> None:
    options: dict[str, Any] = {
        "reason": None,
        "body_ended": False,
        "body_error": None,
        "met": None,
        "callback_error": CAUSE,
        "timeouts": Timeouts(idle=7.0),
    }
    options.update(happened)
    outcome = decide(**options)
    if expected is None:
        assert outcome is None
    else:
        assert type(outcome) is expected


def test_a_callback_error_carries_what_the_callback_raised() -> None:
    outcome = decide(
        reason=StopReason.CALLBACK,
        body_ended=False,
        body_error=None,
        met=None,
        callback_error=CAUSE,
        timeouts=Timeouts(),
    )
    assert isinstance(outcome, CallbackError) and outcome.__cause__ is CAUSE


@pytest.mark.parametrize("reason", [StopReason.IDLE, StopReason.EVENT, StopReason.TOTAL])
def test_a_time_limit_error_names_its_limit_and_seconds(reason: StopReason) -> None:
    timeouts = Timeouts(idle=7.0, event=8.0, total=9.0)
    outcome = decide(
        reason=reason,
        body_ended=False,
        body_error=None,
        met=None,
        callback_error=None,
        timeouts=timeouts,
    )
    expected = {
        StopReason.IDLE: IdleTimeoutError,
        StopReason.EVENT: EventTimeoutError,
        StopReason.TOTAL: TotalTimeoutError,
    }[reason]
    assert type(outcome) is expected
    assert outcome.name == reason.value
    assert outcome.timeout == getattr(timeouts, reason.value)


def test_the_idle_message_says_what_the_idle_limit_counts() -> None:
    # Bytes may have trickled all along: the limit is about completed lines, and the
    # message says so (it said "No data arrived").
    error = stop_error(StopReason.IDLE, Timeouts(idle=5.0))
    assert isinstance(error, IdleTimeoutError) and error.name == "idle"
    assert str(error).startswith("No line completed by the server for 5.0 s (idle timeout")
    assert "bytes that never finish a line do not" in str(error)

"""How a stream's one outcome is decided: a pure function of what happened.

A stream ends exactly once, and everything that observes the end (the iterator,
``result()``, ``on_end``, ``error.partial.error``, telemetry) is given the value
:func:`decide` returns, by these rules, in order:

1. A callback raised (on the worker, or dispatched before the end): ``CallbackError``
   -- unless the body itself had already ended in an error, which stands.
2. The body ended (``[DONE]``, the end of the body, the finish grace, an error in the
   stream): the core's outcome, whatever ``close()`` or a time limit does afterwards.
3. Stopped from outside (closed, a time limit): that reason's error; what the stopping
   caused (a read failing on the shut-down socket) is not the outcome.
4. Otherwise the error the worker met (HTTP, transport, a bug), or success (``None``).
"""

from __future__ import annotations

import enum

from ..config import Timeouts
from ..errors import (
    CallbackError,
    ChatStreamError,
    EventTimeoutError,
    IdleTimeoutError,
    StreamClosedError,
    StreamTimeoutError,
    TotalTimeoutError,
)
from .deadlines import idle_message

__all__ = ["StopReason", "decide", "stop_error"]


class StopReason(enum.Enum):
    """Why a stream was stopped from outside the read loop (the first reason wins)."""

    CLOSED = "closed"
    IDLE = "idle"
    EVENT = "event"
    TOTAL = "total"
    CALLBACK = "callback"


def decide(
    *,
    reason: StopReason | None,
    body_ended: bool,
    body_error: ChatStreamError | None,
    met: ChatStreamError | None,
    callback_error: BaseException | None,
    timeouts: Timeouts,
) -> ChatStreamError | None:
    """The error the stream ends in, or ``None`` when it completed (see the module
    documentation).

    Args:
        reason: Why the stream was stopped from outside, if it was.
        body_ended: The core reached its end (normally or in ``body_error``).
        body_error: The core's error, if the body ended in one.
        met: The error the worker met (HTTP, transport, a bug), if any.
        callback_error: What a callback raised, if one did.
        timeouts: The limits, quoted by a time limit's error.
    """
    if reason is StopReason.CALLBACK and not (body_ended and body_error is not None):
        error = CallbackError(
            "A callback (on_event, on_bytes, dispatch or a telemetry hook) raised; "
            "the stream was stopped."
        )
        error.__cause__ = callback_error
        return error
    if body_ended:
        return body_error
    if reason is not None:
        return stop_error(reason, timeouts)
    return met


def stop_error(reason: StopReason, timeouts: Timeouts) -> ChatStreamError:
    """The error for a stream stopped from outside the worker (not by a callback)."""
    if reason is StopReason.CLOSED:
        return StreamClosedError("The stream was closed before it ended.")
    limit = {
        StopReason.IDLE: timeouts.idle,
        StopReason.EVENT: timeouts.event,
        StopReason.TOTAL: timeouts.total,
    }[reason]
    seconds = limit or 0.0
    message = {
        StopReason.IDLE: idle_message(seconds),
        StopReason.EVENT: f"No event arrived for {seconds} s (event timeout).",
        StopReason.TOTAL: f"The stream took longer than {seconds} s (total timeout).",
    }[reason]
    error: type[StreamTimeoutError] = {
        StopReason.IDLE: IdleTimeoutError,
        StopReason.EVENT: EventTimeoutError,
        StopReason.TOTAL: TotalTimeoutError,
    }[reason]
    return error(message, timeout=seconds)

"""A stream's time limits as a pure function: timestamps in, the next deadline out.

The worker records a few timestamps as it goes (:class:`Clocks`); the watchdog asks
:func:`next_deadline` when the earliest limit falls and which one it is. Nothing here
reads a clock, sleeps or touches a socket, so every rule is tested with plain numbers.

Which waits count
-----------------
* ``total`` runs from the start of the request, whatever the stream is doing.
* The wait for the response headers is bounded by ``idle`` + 1 s as a whole (a server
  trickling its headers stretches any socket read timeout without end).
* ``idle`` and ``event`` count only time spent blocked reading the body: time in your
  callbacks, or waiting for you to take events, is not the server's fault. ``idle``
  restarts at every completed line (an event's line or a keep-alive comment), so bytes
  that never finish a line do not keep a stream alive; ``event`` restarts at every data
  event, so keep-alives do not keep it alive either.
* The finish grace (every choice has finished; waiting for ``[DONE]``) and the drain
  (``[DONE]`` was read; waiting for the end of the body so the connection can be
  reused) end the reading without making the stream fail. The drain runs after the
  stream's end was delivered, and is bounded in total by :data:`DRAIN_TIME` (and by
  ``total``, which is never off).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..config import Timeouts

__all__ = [
    "DRAIN_TIME",
    "HEADERS_SLACK",
    "IDLE_RULE",
    "Clocks",
    "Expiry",
    "idle_message",
    "next_deadline",
]

#: What the idle limit counts, in the words every message, docstring and page uses.
IDLE_RULE = (
    "no line completed by the server (an event's line or a keep-alive comment; "
    "bytes that never finish a line do not count)"
)


def idle_message(seconds: float | None) -> str:
    """The message of an :class:`~chatstream.IdleTimeoutError` for the idle limit."""
    return (
        f"No line completed by the server for {seconds} s (idle timeout: keep-alive "
        "comments count, bytes that never finish a line do not); a proxy that buffers "
        "the whole response looks like this too."
    )


#: How long past the idle limit the whole wait for the headers may last (the socket's
#: read timeout is set to the same bound).
HEADERS_SLACK = 1.0

#: How long the rest of a body may take to arrive after ``[DONE]``, in all, before the
#: connection is closed instead of being reused (the end normally follows at once).
DRAIN_TIME = 0.25


class Expiry(enum.Enum):
    """Which limit a deadline belongs to."""

    TOTAL = "total"
    IDLE = "idle"
    EVENT = "event"
    #: The finish grace ran out: the stream is over, the core decides how.
    GRACE = "grace"
    #: The rest of the body after ``[DONE]`` did not arrive in time: close the connection.
    DRAIN = "drain"

    @property
    def fails(self) -> bool:
        """True when reaching this deadline makes the stream fail."""
        return self in (Expiry.TOTAL, Expiry.IDLE, Expiry.EVENT)


@dataclass(frozen=True)
class Clocks:
    """What the worker is doing, as timestamps (all from the same monotonic clock).

    Attributes:
        started: When the request started.
        headers_since: Since when the request waits for the response headers, or None.
        reading_since: Since when a read of the body is blocked, or None.
        line_waited: Seconds spent blocked reading since the last completed line.
        event_waited: Seconds spent blocked reading since the last data event.
        finishing: Every choice has finished (the finish grace applies).
        drain_since: Since when the rest of the body after ``[DONE]`` is being read, or
            None.
    """

    started: float
    headers_since: float | None = None
    reading_since: float | None = None
    line_waited: float = 0.0
    event_waited: float = 0.0
    finishing: bool = False
    drain_since: float | None = None


def next_deadline(clocks: Clocks, timeouts: Timeouts) -> tuple[float, Expiry] | None:
    """The earliest deadline that applies now and its kind, or None if none does."""
    deadlines: list[tuple[float, Expiry]] = []
    if timeouts.total is not None:
        deadlines.append((clocks.started + timeouts.total, Expiry.TOTAL))
    if clocks.drain_since is not None:
        # The stream has ended: nothing but the drain's own bound and the total apply.
        deadlines.append((clocks.drain_since + DRAIN_TIME, Expiry.DRAIN))
        return min(deadlines, key=lambda d: d[0])
    if clocks.headers_since is not None and timeouts.idle is not None:
        deadlines.append((clocks.headers_since + timeouts.idle + HEADERS_SLACK, Expiry.IDLE))
    since = clocks.reading_since
    if since is not None:
        if clocks.finishing:
            deadlines.append((since + timeouts.finish_grace, Expiry.GRACE))
        if timeouts.idle is not None:
            deadlines.append((since + timeouts.idle - clocks.line_waited, Expiry.IDLE))
        if timeouts.event is not None:
            deadlines.append((since + timeouts.event - clocks.event_waited, Expiry.EVENT))
    if not deadlines:
        return None
    return min(deadlines, key=lambda d: d[0])

"""Configuration values: small, immutable, passed around and copied with changes.

::

    >>> from chatstream import Retry, Timeouts
    >>> Timeouts(idle=60).replace(total=600)
    Timeouts(connect=10.0, idle=60, event=None, total=600, finish_grace=2.0)
    >>> Retry(max_retries=0).retries_status(429)
    True
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from ._arguments import MAX_SECONDS, seconds
from .errors import ConfigurationError

__all__ = ["Coalescing", "Retry", "Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """How long a stream may wait, in seconds. ``None`` turns a limit off.

    Attributes:
        connect: To open the connection.
        idle: With no progress, before the stream ends in
            :class:`~chatstream.IdleTimeoutError`. Progress is a completed line: an
            event's line or a keep-alive comment (``: ping``), so keep-alives keep a slow
            stream alive and bytes that never finish a line do not; time spent in your
            callbacks or waiting for you to take events does not count. Also bounds the wait for the
            response headers. The specification's default: 300.
        event: With no data event arriving (keep-alives do not count). Off by default:
            catches a relay that pings while its upstream is stuck.
        total: For the whole stream, from the request to the end. Off by default.
        finish_grace: After every choice has finished, how long to wait for a trailing
            usage chunk or ``[DONE]`` before completing anyway, for servers that keep the
            connection open without sending ``[DONE]``.
    """

    connect: float | None = 10.0
    idle: float | None = 300.0
    event: float | None = None
    total: float | None = None
    finish_grace: float = 2.0

    def __post_init__(self) -> None:
        # Finite and at most a year: longer limits overflow the socket and thread
        # timeouts they become (an internal OverflowError, later, on the worker).
        for field in dataclasses.fields(self):
            name = field.name
            seconds(f"Timeouts.{name}", getattr(self, name), optional=name != "finish_grace")

    def replace(self, **changes: Any) -> Timeouts:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Retry:
    """When and how to send a request again.

    A request is retried only while nothing of the response has been received: when the
    connection fails (including a kept-alive connection the server had just closed),
    and on the statuses in ``statuses``. Never after the first byte of a successful
    response, so output is never duplicated.

    The wait before attempt *n* (1-based) is ``backoff * 2 ** (n - 1)``, at most
    ``max_backoff``, with up to ``jitter`` of it added at random; a ``Retry-After`` (or
    ``retry-after-ms``) from the server replaces it when it asks for longer. A server
    that asks for more than ``max_retry_after`` seconds is not retried.

    Attributes:
        max_retries: How many times to send again; 0 turns retrying off.
        backoff: The first wait, in seconds.
        max_backoff: The longest computed wait.
        jitter: The random share added to each wait (0.25: up to 25 % more).
        max_retry_after: The longest server-requested wait that is honoured.
        statuses: The HTTP statuses that are retried.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigurationError("Retry.max_retries must be a whole number")
        if self.max_retries < 0:
            raise ConfigurationError("Retry.max_retries must be 0 or more")
        for name in ("backoff", "max_backoff", "jitter", "max_retry_after"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= MAX_SECONDS
            ):
                raise ConfigurationError(
                    f"Retry.{name} must be 0 or a positive number of at most {MAX_SECONDS}"
                )

    def retries_status(self, status: int) -> bool:
        """True when a response with this status may be retried."""
        return status in self.statuses

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or ``None`` when the
        server asked for a wait longer than ``max_retry_after``."""
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        base = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        base += base * self.jitter * (rng or random).random()
        return max(base, retry_after or 0.0)

    def replace(self, **changes: Any) -> Retry:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Coalescing:
    """When many streams run at once, each waits a little before reading again, so
    that one wake-up of its thread reads several chunks.

    Every wake-up of a thread costs a few microseconds of CPU and a turn at Python's
    interpreter lock; with hundreds of streams paced like a model, the wake-ups (and
    the threads queueing for the lock) cost more than reading the chunks. Beyond
    ``above`` streams running in the process, a stream whose last read had to wait for
    its bytes pauses before the next read, so that the streams together wake up about
    ``wakeups`` times a second: the pause is the number of streams running divided by
    ``wakeups``, at most ``max_pause`` seconds. A stream never pauses before its first
    content (the time to the first text is not delayed), and a read that finds bytes
    already there is never delayed. The cost: each chunk reaches you up to
    ``max_pause`` later; see :doc:`threading`. With coalescing on, streams also parse
    what they read one at a time, so that their threads wait for their turn on a lock
    rather than in the interpreter lock's queue.

    Pass ``coalescing=None`` to :class:`~chatstream.Client` to read every chunk as
    soon as it arrives, whatever the load.

    Args:
        above: Streams running at once (in the process) up to which no stream pauses.
        wakeups: About how many times a second the streams together wake up to read,
            beyond ``above``.
        max_pause: The longest pause before a read, in seconds.

    ::

        >>> from chatstream import Coalescing
        >>> Coalescing().pause(running=80)
        0.08
        >>> Coalescing().pause(running=500)
        0.1
        >>> Coalescing().pause(running=10)
        0.0
    """

    above: int = 64
    wakeups: float = 1000.0
    max_pause: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.above, bool) or not isinstance(self.above, int) or self.above < 0:
            raise ConfigurationError("Coalescing.above must be a whole number, 0 or more")
        if (
            isinstance(self.wakeups, bool)
            or not isinstance(self.wakeups, (int, float))
            or not self.wakeups > 0
        ):
            raise ConfigurationError("Coalescing.wakeups must be a positive number")
        seconds("Coalescing.max_pause", self.max_pause, optional=False)

    def pause(self, running: int) -> float:
        """Seconds to wait before a read that would wait anyway, with ``running``
        streams running."""
        if running <= self.above:
            return 0.0
        return min(self.max_pause, running / self.wakeups)

    def replace(self, **changes: Any) -> Coalescing:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)

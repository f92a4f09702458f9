"""Configuration values: small, immutable, passed around and copied with changes.

One value per concern, each option declared once: :class:`StreamOptions` (how a stream
is read and viewed), :class:`Limits` (how much a response may hold), :class:`Timeouts`,
:class:`Retry`, :class:`Connections` (the client's connection pool and TLS) and
:class:`Coalescing`. Each checks its fields when made, raising
:class:`~chatstream.ConfigurationError` naming the field::

    >>> from chatstream import Limits, Retry, StreamOptions, Timeouts
    >>> Timeouts(idle=60).replace(total=600)
    Timeouts(connect=10.0, idle=60, event=None, total=600, finish_grace=2.0)
    >>> Retry(max_retries=0).retries_status(429)
    True
    >>> StreamOptions(raw_chunks=True).replace(length_is_error=True).length_is_error
    True
    >>> Limits(max_choices=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chatstream.errors.ConfigurationError: Limits.max_choices must be a whole number ...; got 0
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
from dataclasses import dataclass
from typing import Any

from ._arguments import MAX_SECONDS, count, seconds
from .errors import ConfigurationError

__all__ = [
    "Coalescing",
    "Connections",
    "Limits",
    "Retry",
    "StreamOptions",
    "ThinkTags",
    "Timeouts",
]


def _flag(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{owner}.{name} must be True or False; got {value!r}")


@dataclass(frozen=True)
class ThinkTags:
    """Which tags hold reasoning in the content, and where the answer starts (see
    :attr:`StreamOptions.think_tags`).

    Attributes:
        names: The tag names, without brackets (``think`` matches ``<think>`` and
            ``</think>``). A block ends with the closing tag of the name that opened it.
        starts_inside: The answer starts inside the thinking (the prompt ended with the
            opening tag): everything up to the first closing tag of any name is
            reasoning.
    """

    names: tuple[str, ...] = ("think", "thinking")
    starts_inside: bool = False

    def __post_init__(self) -> None:
        names = self.names
        if isinstance(names, str) or not all(
            isinstance(n, str) and n and re.fullmatch(r"[^<>/\s]+", n) for n in names
        ):
            names = ()
        object.__setattr__(self, "names", tuple(names))
        if not self.names:
            raise ConfigurationError(
                "ThinkTags.names must be non-empty tag names without <, > or /"
            )
        _flag("ThinkTags", "starts_inside", self.starts_inside)

    def replace(self, **changes: Any) -> ThinkTags:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is read and viewed. Give it to :class:`~chatstream.Client` (every
    stream's), to :meth:`Client.stream <chatstream.Client.stream>` (that stream's,
    instead of the client's), or to the core (:class:`~chatstream.StreamParser`,
    :class:`~chatstream.Accumulator`, :func:`~chatstream.iter_events`).

    Attributes:
        length_is_error: The specification's rule that ``finish_reason: "length"`` ends
            the stream in :class:`~chatstream.ContextWindowExceeded`. Off by default:
            the stream ends normally and :attr:`~chatstream.Response.truncated` is true
            (a ``max_tokens`` limit is the caller's own choice, not a failure).
        drop_tool_calls_on_stop: The specification's rule that ``finish_reason:
            "stop"`` drops every tool call. Off by default: a finished call is kept,
            because Ollama, Gemini and sometimes OpenAI end tool calls with ``stop``.
        raw_chunks: Also deliver each chunk as sent, as a
            :class:`~chatstream.RawChunk` event before the events made from it.
        partial_json: Views of JSON as it streams: each
            :class:`~chatstream.FunctionCallArgumentsDelta` carries the arguments parsed
            so far, and JSON content (when the request asks for it) is sent as
            :class:`~chatstream.OutputTextParsed`; see :ref:`live-views`.
        think_tags: Move ``<think>``/``<thinking>`` blocks of the content to reasoning:
            ``True`` (taken as ``ThinkTags()``), or a :class:`ThinkTags` naming the
            tags; ``False`` leaves the content as sent.
        text_tool_calls: Recover tool calls the model wrote into its text as
            :class:`~chatstream.FunctionCall` items.
        queue_size: How many events may wait for the iterator before reading pauses
            (the client's streams only; the core has no queue). The default is room for
            a burst of a whole fast answer, at about 0.24 MiB (see :doc:`performance`).
        api: The wire: ``"chat"`` (``POST {base_url}/chat/completions``, Chat
            Completions chunks) or ``"responses"`` (``POST {base_url}/responses``, the
            Responses API's events, read into the same events; see :doc:`responses`).
            On the Responses wire ``length_is_error``, ``drop_tool_calls_on_stop``,
            ``think_tags`` and ``text_tool_calls`` do not apply.
    """

    length_is_error: bool = False
    drop_tool_calls_on_stop: bool = False
    raw_chunks: bool = False
    partial_json: bool = False
    think_tags: bool | ThinkTags = False
    text_tool_calls: bool = False
    queue_size: int = 1600
    api: str = "chat"

    def __post_init__(self) -> None:
        for name in (
            "length_is_error",
            "drop_tool_calls_on_stop",
            "raw_chunks",
            "partial_json",
            "text_tool_calls",
        ):
            _flag("StreamOptions", name, getattr(self, name))
        if self.think_tags is True:
            object.__setattr__(self, "think_tags", ThinkTags())
        elif not isinstance(self.think_tags, (bool, ThinkTags)):
            raise ConfigurationError(
                "StreamOptions.think_tags must be True, False or a ThinkTags; "
                f"got {self.think_tags!r}"
            )
        count("StreamOptions.queue_size", self.queue_size)
        if self.api not in ("chat", "responses"):
            raise ConfigurationError(
                f'StreamOptions.api must be "chat" or "responses"; got {self.api!r}'
            )

    def replace(self, **changes: Any) -> StreamOptions:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Limits:
    """How much a response may hold: the limits against hostile volume. Going over one
    ends the stream in :class:`~chatstream.LimitExceededError` (an event too large in
    :class:`~chatstream.EventTooLargeError`), keeping what came before; see
    :ref:`limits`. Given where :class:`StreamOptions` are, the same way.

    Attributes:
        max_event_bytes: Largest SSE event (or whole JSON completion), in bytes: 16 MiB.
        max_choices: Most choices a response may have: 128 (openai-node caps them too).
        max_tool_calls: Most tool calls one choice may make: 1024.
        max_total_bytes: Most bytes a response body may have; ``None`` (the default):
            no limit.
    """

    max_event_bytes: int = 16 * 1024 * 1024
    max_choices: int = 128
    max_tool_calls: int = 1024
    max_total_bytes: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            name = field.name
            count(f"Limits.{name}", getattr(self, name), optional=name == "max_total_bytes")

    def replace(self, **changes: Any) -> Limits:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Connections:
    """How the client connects: its own connection pool, and TLS.

    Attributes:
        pool_size: How many connections to the server the client's own session keeps
            open for reuse (``None``: 1024). It does not limit how many streams run at
            once: a stream beyond it opens a connection of its own, which is closed
            (quietly) when the stream ends. Only for the client's own session: mount an
            adapter on a ``session`` you pass.
        verify: How the server's TLS certificate is checked: ``True`` (the default CA
            bundle), ``False`` (not at all), or the path of a CA bundle (a file or a
            directory). ``None`` (the default): the session's own ``verify``.
        cert: A client certificate: the path of a file holding the certificate and its
            key, or a ``(certificate, key)`` pair of paths. ``None`` (the default): the
            session's own ``cert``.

    Paths must exist when the value is made; they are kept as strings.
    """

    pool_size: int | None = None
    verify: bool | str | os.PathLike[str] | None = None
    cert: str | os.PathLike[str] | tuple[str, str] | None = None

    def __post_init__(self) -> None:
        count("Connections.pool_size", self.pool_size, optional=True)
        object.__setattr__(self, "verify", _tls_verify(self.verify))
        object.__setattr__(self, "cert", _tls_cert(self.cert))

    def replace(self, **changes: Any) -> Connections:
        """A copy with some values changed."""
        return dataclasses.replace(self, **changes)


def _tls_verify(verify: Any) -> bool | str | None:
    """How to check the server's certificate: a bool, the path of an existing CA bundle
    (a file or a directory), or ``None`` (the session's own setting)."""
    if verify is None or isinstance(verify, bool):
        return verify
    if not isinstance(verify, (str, os.PathLike)):
        raise ConfigurationError(
            "Connections.verify must be True, False or the path of a CA bundle"
        )
    path = str(os.fspath(verify))
    if not os.path.exists(path):
        raise ConfigurationError(f"Connections.verify: no CA bundle at {path!r}")
    return path


def _tls_cert(cert: Any) -> str | tuple[str, str] | None:
    """A client certificate: the path of an existing file, or a ``(certificate, key)``
    pair of them, or ``None`` (the session's own setting)."""
    if cert is None:
        return None
    paths = tuple(cert) if isinstance(cert, (tuple, list)) else (cert,)
    if not 1 <= len(paths) <= 2 or not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise ConfigurationError(
            "Connections.cert must be a path or a (certificate, key) pair of paths"
        )
    found = tuple(str(os.fspath(p)) for p in paths)
    for path in found:
        if not os.path.isfile(path):
            raise ConfigurationError(f"Connections.cert: no file at {path!r}")
    return found[0] if len(found) == 1 else (found[0], found[1])


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
    response, so output is never duplicated -- except by resuming, which continues a
    stream where it dropped (``max_resumes``).

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
        max_resumes: How many times a Responses API stream that dropped after its first
            byte may be resumed from its last ``sequence_number`` (``GET
            {base_url}/responses/{id}?stream=true&starting_after=N``), each after the
            wait above; 0 (the default) turns resuming off. Only a request with
            ``"background": true`` is resumed, and only once ``response.created`` gave
            the response's id and an event its sequence number: see
            :ref:`resuming-a-stream`.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
    max_resumes: int = 0

    def __post_init__(self) -> None:
        for name in ("max_retries", "max_resumes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"Retry.{name} must be a whole number")
            if value < 0:
                raise ConfigurationError(f"Retry.{name} must be 0 or more")
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

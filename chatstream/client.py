"""The client: holds the connection settings and starts streams.

::

    client = chatstream.Client(base_url="https://api.openai.com/v1", api_key=key)
    with client.stream({"model": "gpt-4o", "messages": [...]}) as stream:
        for event in stream:
            ...
        response = stream.result()
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions

from . import _arguments, _http, _redact, _transport
from ._version import __version__
from ._watchdog import Watchdog, default_watchdog
from .accumulator import DEFAULT_MAX_CHOICES, DEFAULT_MAX_TOOL_CALLS
from .config import Retry, Timeouts
from .errors import (
    APIStatusError,
    ChatStreamError,
    ConfigurationError,
    RateLimitError,
)
from .events import ResponseEvent
from .parser import StreamParser
from .sse import DEFAULT_MAX_EVENT_BYTES
from .stream import BytesCallback, ChatStream, Dispatch, EndCallback, EventCallback, _Worker
from .think import ThinkTags

__all__ = ["Client", "Telemetry", "Turn", "TURN_STATE_HEADER"]

log = logging.getLogger("chatstream")

#: The response header that pins a turn to one backend (the specification's
#: sticky turn routing).
TURN_STATE_HEADER = "x-codex-turn-state"

_UNSET: Any = object()

#: How many connections a client's own session keeps for reuse, unless ``pool_size``
#: says otherwise: room for a thousand concurrent streams.
DEFAULT_POOL_SIZE = 1024


class Telemetry:
    """Hooks called as streams run; subclass it and override what you need.

    Both hooks run on the stream's worker thread and must be quick and must not raise.
    """

    def on_request(
        self, attempt: int, status: int | None, error: ChatStreamError | None, duration: float
    ) -> None:
        """One HTTP attempt ended: its number (1 for the first), the status (``None`` if
        no response arrived), the error if it failed, and how long it took in seconds."""

    def on_sse_event(
        self, event: ResponseEvent | None, error: ChatStreamError | None, elapsed: float
    ) -> None:
        """An event was produced (``error`` is ``None``), or the stream failed (``event``
        is ``None``); ``elapsed`` is the time since the previous event, in seconds."""


class Turn:
    """One user turn: its requests share the backend the first response pinned.

    The first response of the turn that carries the turn-state header (see
    :data:`TURN_STATE_HEADER`) fixes its value for the turn; every later request of the
    turn sends it back, so retries and tool follow-ups reach the same backend. Set once,
    safe to share between threads. Made by :meth:`Client.turn`.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._state: str | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str | None:
        """The pinned value, or ``None`` until a response carried one."""
        return self._state

    def capture(self, value: str | None) -> None:
        """Keep ``value`` if the turn has none yet (later values are ignored, and so is a
        value that cannot be sent back as a header)."""
        if _http.usable_header_value(self.client.turn_state_header, value):
            with self._lock:
                if self._state is None:
                    self._state = value

    def stream(self, body: Mapping[str, Any], **options: Any) -> ChatStream:
        """:meth:`Client.stream`, as part of this turn."""
        return self.client.stream(body, turn=self, **options)


class Client:
    """Streams Chat Completions from an OpenAI-compatible server.

    Safe to share between threads; each :meth:`stream` runs on its own worker thread.

    Args:
        base_url: The API root, e.g. ``https://api.openai.com/v1``; requests go to
            ``{base_url}/chat/completions``.
        api_key: Sent as ``Authorization: Bearer …``; ``None`` or ``""`` sends no
            credentials (local servers). Surrounding whitespace and a ``Bearer`` prefix
            are removed.
        idle_timeout: Seconds without bytes before a stream fails (keep-alives count).
        connect_timeout: Seconds to open a connection.
        max_retries: Retries while nothing has been received (see :class:`Retry`).
        headers: Extra request headers.
        session: A ``requests.Session`` to send with (proxies, certificates, adapters);
            by default the client makes its own.
        telemetry: Hooks for each HTTP attempt and each event.
        timeouts: All time limits at once (overrides ``idle_timeout`` and
            ``connect_timeout``).
        retry: The whole retry policy (overrides ``max_retries``).
        include_usage: Ask for usage (``stream_options.include_usage``). A server that
            rejects the field gets the request once more without it.
        max_event_bytes: Largest allowed SSE event.
        max_choices: Most choices a response may have (see :ref:`limits`).
        max_tool_calls: Most tool calls one choice may make.
        max_total_bytes: Most bytes a response body may have (``None``: no limit).
        drop_tool_calls_on_stop: The specification's rule that ``finish_reason: "stop"``
            drops tool calls (off by default).
        length_is_error: The specification's rule that ``finish_reason: "length"`` ends
            the stream in :class:`~chatstream.ContextWindowExceeded` (off by default: the
            stream ends normally and :attr:`~chatstream.Response.truncated` is true).
        raw_chunks: Also deliver each chunk as sent, as a :class:`~chatstream.RawChunk`
            event before the events made from it (off by default).
        partial_json: Views of JSON as it streams (tool-call arguments parsed so far, and
            JSON content when the request asks for it); see :ref:`live-views`.
        think_tags: Move ``<think>`` blocks of the content to reasoning: ``True`` or a
            :class:`~chatstream.ThinkTags`.
        text_tool_calls: Recover tool calls written into the text as real calls.
        turn_state_header: The header used for sticky turn routing.
        watchdog: The watchdog enforcing time limits (tests inject one with a fake clock).
        pool_size: How many connections to the server the client's own session keeps
            open for reuse (1024 by default). It does not limit how many streams run at
            once: a stream beyond it opens a connection of its own, which is closed
            (quietly) when the stream ends. Only for the client's own session: mount an
            adapter on a ``session`` you pass.
        verify: How the server's TLS certificate is checked: ``True`` (the default CA
            bundle), ``False`` (not at all), or the path of a CA bundle (a file or a
            directory). By default, the ``session``'s own ``verify``.
        cert: A client certificate: the path of a file holding the certificate and its
            key, or a ``(certificate, key)`` pair of paths. By default, the
            ``session``'s own ``cert``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        idle_timeout: float | None = 300.0,
        connect_timeout: float | None = 10.0,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        telemetry: Telemetry | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        include_usage: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        drop_tool_calls_on_stop: bool = False,
        length_is_error: bool = False,
        raw_chunks: bool = False,
        partial_json: bool = False,
        think_tags: bool | ThinkTags = False,
        text_tool_calls: bool = False,
        turn_state_header: str = TURN_STATE_HEADER,
        watchdog: Watchdog | None = None,
        max_choices: int = DEFAULT_MAX_CHOICES,
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
        max_total_bytes: int | None = None,
        pool_size: int | None = None,
        verify: bool | str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | tuple[str, str] | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        # The query string (a gateway's ``?key=...``) stays at the end of the URL.
        self.url = _transport.endpoint_url(self.base_url)
        api_key = _arguments.api_key(api_key)
        self._auth = _http.BearerAuth(api_key) if api_key is not None else None
        self.timeouts = timeouts or Timeouts(
            idle=_arguments.seconds("idle_timeout", idle_timeout),
            connect=_arguments.seconds("connect_timeout", connect_timeout),
        )
        self.retry = retry or Retry(max_retries=max_retries)
        self.headers = _arguments.headers(headers)
        self.max_choices = _arguments.count("max_choices", max_choices)
        self.max_tool_calls = _arguments.count("max_tool_calls", max_tool_calls)
        self.max_total_bytes = _arguments.count("max_total_bytes", max_total_bytes, optional=True)
        if "?" in self.url:
            # The query may carry a key: masked even in urllib3's DEBUG log lines.
            _redact.redact_query_in_logs(self.url)
        self.telemetry = telemetry
        self.include_usage = include_usage
        self.max_event_bytes = max_event_bytes
        self.drop_tool_calls_on_stop = drop_tool_calls_on_stop
        self.length_is_error = length_is_error
        self.raw_chunks = raw_chunks
        #: The live-view options every stream gets unless :meth:`stream` says otherwise.
        self.views: dict[str, Any] = {
            "partial_json": partial_json,
            "think_tags": think_tags,
            "text_tool_calls": text_tool_calls,
        }
        self.turn_state_header = turn_state_header
        self._watchdog = watchdog
        pool_size = _arguments.count("pool_size", pool_size, optional=True)
        if pool_size is not None and session is not None:
            raise ConfigurationError(
                "pool_size sizes the client's own session; for a session you pass, "
                "mount an adapter with the pool size you want on it"
            )
        self.verify = _arguments.tls_verify(verify)
        self.cert = _arguments.tls_cert(cert)
        self._own_session = session is None
        self.session = session or _new_session(pool_size or DEFAULT_POOL_SIZE)
        # Values that must never appear in a message, a log record or a body snippet:
        # the key, credential headers, the URL's user info and query values, and the
        # credentials of its proxies.
        self._secrets = _redact.secrets_of(
            api_key, self.headers, self.url, _http.proxy_urls(self.session, self.url)
        )
        self._rng = random.Random()

    def __repr__(self) -> str:
        key = ", api_key=[REDACTED]" if self._auth else ""
        return f"Client(base_url={_http.redact_url(self.base_url)!r}{key})"

    def close(self) -> None:
        """Release the connection pool (only the client's own session). Streams already
        running carry on."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def turn(self) -> Iterator[Turn]:
        """A user turn whose requests stick to one backend (see :class:`Turn`).

        Every stream started from the turn is part of it::

            with client.turn() as turn:
                first = turn.stream(body)
                ...
                follow_up = turn.stream(body_with_tool_results)
        """
        yield Turn(self)

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        on_event: EventCallback | None = None,
        on_end: EndCallback | None = None,
        dispatch: Dispatch | None = None,
        queue_size: int = 1600,
        iterate: bool | None = None,
        on_bytes: BytesCallback | None = None,
        turn: Turn | None = None,
        max_choices: int | None = None,
        max_tool_calls: int | None = None,
        max_total_bytes: int | None = None,
        partial_json: bool | None = None,
        think_tags: bool | ThinkTags | None = None,
        text_tool_calls: bool | None = None,
    ) -> ChatStream:
        """Send a streaming request and return the live stream at once.

        Args:
            body: The request body (``model``, ``messages``, ``tools``, ...);
                ``"stream": true`` is set for you. A lone surrogate in its text (half of
                an emoji a server split) is sent as U+FFFD.
            on_event: Called with each event, in order, once each, on the worker thread
                (or through ``dispatch``). If it raises, the stream ends in
                :class:`~chatstream.CallbackError`.
            on_end: Called once with the final (or partial) response when the stream ends,
                however it ends.
            dispatch: Hands each callback call to another thread instead, e.g.
                ``lambda fn: root.after(0, fn)`` for Tkinter.
            queue_size: How many events may wait for the iterator before reading pauses.
            iterate: Whether events are also kept for iteration. By default they are,
                unless ``on_event`` is given: a callback-only program then never stalls
                on a full queue.
            on_bytes: Called with each piece of the response body as it is read
                (decoded from any content encoding), before it is parsed, on the worker
                thread (never through ``dispatch``): e.g. a file's ``write``, to record the
                body for ``chatstream replay``. If it raises, the stream ends in
                :class:`~chatstream.CallbackError`.
            turn: Send it as part of this turn (see :meth:`turn`); ``turn.stream(body)``
                does the same.
            max_choices: This stream's limit, instead of the client's (likewise
                ``max_tool_calls`` and ``max_total_bytes``; see :ref:`limits`).
            partial_json: For this stream, instead of the client's setting.
            think_tags: For this stream, instead of the client's setting.
            text_tool_calls: For this stream, instead of the client's setting.

        Raises:
            ConfigurationError: An argument is invalid, or the body cannot be encoded as
                JSON. Everything else is raised by the stream (iterating it, or
                :meth:`~chatstream.ChatStream.result`).
        """
        _arguments.count("queue_size", queue_size)
        limits = _arguments.limits(self, max_choices, max_tool_calls, max_total_bytes)
        request = _http.build_body(body, include_usage=self.include_usage)
        worker = _Worker(
            self,
            request,
            on_event=on_event,
            on_end=on_end,
            dispatch=dispatch,
            queue_size=queue_size,
            iterate=on_event is None if iterate is None else iterate,
            turn=turn,
            watchdog=self._watchdog or default_watchdog(),
            on_bytes=on_bytes,
            parser=StreamParser(
                drop_tool_calls_on_stop=self.drop_tool_calls_on_stop,
                length_is_error=self.length_is_error,
                raw_chunks=self.raw_chunks,
                request=request,
                **limits,
                **_views(self.views, partial_json, think_tags, text_tool_calls),
            ),
        )
        return ChatStream(worker)

    # --- the HTTP exchange (runs on the worker thread) ------------------------------------

    def _headers(self, turn: Turn | None) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream",
            # Compressed SSE streams only if the server flushes per event, and it opens
            # the door to decompression bombs: ask for none (gzip is still read).
            "Accept-Encoding": "identity",
            "Content-Type": "application/json",
            "User-Agent": f"chatstream/{__version__} {requests.utils.default_user_agent()}",
        }
        headers.update(self.headers)
        if turn is not None and turn.state is not None:
            headers[self.turn_state_header] = turn.state
        return headers

    def _send(
        self,
        body: dict[str, Any],
        *,
        turn: Turn | None,
        stopped: threading.Event,
        attach: Callable[[requests.Response], None] | None = None,
        slot: _transport.ConnectionSlot | None = None,
    ) -> requests.Response | None:
        """POST the request, retrying while nothing has been received. Returns the
        response of a 2xx, or ``None`` if the stream was stopped meanwhile.

        ``attach`` is given each response as soon as its headers arrive, before any of
        its body is read (the stream uses it to be able to interrupt the reading).
        ``slot`` records the connection while the request waits for its headers, so that
        the stream can interrupt that wait too (see :mod:`chatstream._transport`).
        """
        retry = self.retry
        t = self.timeouts
        # The read timeout also bounds the wait for the headers; a little above the idle
        # limit, so the watchdog (not the socket) normally reports a stalled body.
        read_timeout = None if t.idle is None else t.idle + 1.0
        attempt = 0  # the retry count's attempt: 1, then 2 for the first retry, ...
        sent = 0  # every request sent, for telemetry (the stream_options fallback too)
        while True:
            attempt += 1
            sent += 1
            started = time.monotonic()
            data = _http.encode_body(body)
            log.debug("POST %s (attempt %d)", _http.redact_url(self.url), attempt)
            error: ChatStreamError | None = None
            try:
                with _transport.tracking(slot):
                    response = self.session.post(
                        self.url,
                        data=data,
                        headers=self._headers(turn),
                        auth=self._auth,
                        stream=True,
                        timeout=(t.connect, read_timeout),
                        allow_redirects=False,
                        # Passed explicitly: otherwise requests lets REQUESTS_CA_BUNDLE
                        # or CURL_CA_BUNDLE replace the session's own verify setting.
                        verify=self.session.verify if self.verify is None else self.verify,
                        cert=self.session.cert if self.cert is None else self.cert,
                    )
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                error = _http.transport_error(
                    exc, before_response=True, secrets=self._secrets, idle=t.idle
                )
            finally:
                if slot is not None:
                    slot.clear()  # the response (or the pool) owns the connection now
            if error is not None:
                # Raised here, not in the except block: the original exception (whose
                # message and request quote the URL and the key) must not become the
                # error's __context__.
                self._telemetry_request(sent, None, error, started)
                retryable = error.kind in ("connect", "connect_timeout")
                if retryable and self._wait_to_retry(attempt, None, stopped):
                    continue
                raise error
            if attach is not None:
                attach(response)
            status = response.status_code
            if turn is not None:
                turn.capture(response.headers.get(self.turn_state_header))
            log.debug("HTTP %d from %s", status, _http.redact_url(self.url))
            if 200 <= status < 300:
                self._telemetry_request(sent, status, None, started)
                if stopped.is_set():
                    response.close()
                    return None
                return response
            try:
                failure = _http.error_for_status(response, self._secrets)
            finally:
                response.close()
            self._telemetry_request(sent, status, failure, started)
            if (
                isinstance(failure, APIStatusError)
                and "stream_options" in body
                and self.include_usage
                and _http.names_stream_options(failure)
            ):
                log.info("the server rejects stream_options; sending the request without it")
                body = {k: v for k, v in body.items() if k != "stream_options"}
                attempt -= 1  # not a retry of the same request
                continue
            if isinstance(failure, APIStatusError) and retry.retries_status(status):
                hint = failure.retry_after if isinstance(failure, RateLimitError) else None
                if hint is None:
                    hint = _http.retry_after(response.headers)
                if self._wait_to_retry(attempt, hint, stopped):
                    continue
            raise failure

    def _wait_to_retry(
        self, attempt: int, retry_after: float | None, stopped: threading.Event
    ) -> bool:
        """Wait before the next attempt; False when no retry is left (or stopped)."""
        if attempt > self.retry.max_retries or stopped.is_set():
            return False
        delay = self.retry.delay(attempt, retry_after, self._rng)
        if delay is None:
            return False
        log.info(
            "retrying in %.2f s (attempt %d of %d)", delay, attempt + 1, self.retry.max_retries + 1
        )
        return not stopped.wait(delay)

    def _telemetry_request(
        self, attempt: int, status: int | None, error: ChatStreamError | None, started: float
    ) -> None:
        if self.telemetry is not None:
            try:
                self.telemetry.on_request(attempt, status, error, time.monotonic() - started)
            except Exception:  # a hook must not break the stream
                log.exception("a telemetry hook raised")


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Cookies are refused: streams share the session, and a load balancer's affinity
    cookie from one must not steer another (sticky routing is the turn's job)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.cookies.set_policy(_NoCookies())
    # Many streams at once share the pool. Its requests can be cancelled while they wait
    # for the headers, and a connection beyond pool_size is closed without urllib3's
    # warning per stream (see _transport).
    adapter = _transport.CancellableAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _views(defaults: dict[str, Any], *overrides: Any) -> dict[str, Any]:
    """The live-view options of one stream: the client's, less what it overrides."""
    return {
        name: default if value is None else value
        for (name, default), value in zip(defaults.items(), overrides, strict=True)
    }

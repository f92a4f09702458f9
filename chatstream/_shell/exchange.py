"""The HTTP exchange of one stream: send the request, retry while nothing has been
received, and hand back the response of a 2xx. It runs on the stream's worker thread.

:class:`Settings` is everything a stream needs from its :class:`~chatstream.Client`, as
one frozen value taken when the stream starts: the stream never reaches back into the
client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
import requests.auth
import urllib3.exceptions

from .._version import __version__
from ..config import Coalescing, Limits, Retry, StreamOptions, Timeouts
from ..errors import APIStatusError, ChatStreamError, RateLimitError
from ..telemetry import Telemetry
from . import http as _http
from . import transport as _transport
from .timing import Observer

__all__ = ["Settings", "TurnState", "open_response", "request_headers", "retry_hint", "send"]

log = logging.getLogger("chatstream")


class TurnState(Protocol):
    """What the exchange needs of a :class:`~chatstream.Turn`."""

    @property
    def state(self) -> str | None:
        """The pinned value, or ``None``."""

    def capture(self, value: str | None) -> None:
        """Keep ``value`` if the turn has none yet."""


@dataclass(frozen=True)
class Settings:
    """A client's settings, as one stream uses them."""

    url: str
    session: requests.Session
    auth: requests.auth.AuthBase | None
    headers: tuple[tuple[str, str], ...]
    timeouts: Timeouts
    retry: Retry
    #: Values never to quote in a message, a log record or a body snippet.
    secrets: tuple[str, ...]
    telemetry: Telemetry | None
    include_usage: bool
    turn_state_header: str
    #: How the stream is read, and its limits: the stream's own, else the client's.
    options: StreamOptions = field(default_factory=StreamOptions)
    limits: Limits = field(default_factory=Limits)
    #: requests' ``verify`` and ``cert`` for every request, given explicitly: otherwise
    #: requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace the session's own.
    verify: Any = True
    cert: Any = None
    #: Pauses before reads when many streams run (``None``: never).
    coalescing: Coalescing | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)


def request_headers(settings: Settings, turn: TurnState | None) -> dict[str, str]:
    """The headers of one request."""
    headers = {
        "Accept": "text/event-stream",
        # Compressed SSE streams only if the server flushes per event, and it opens
        # the door to decompression bombs: ask for none (gzip is still read).
        "Accept-Encoding": "identity",
        "Content-Type": "application/json",
        "User-Agent": f"chatstream/{__version__} {requests.utils.default_user_agent()}",
    }
    headers.update(settings.headers)
    if turn is not None and turn.state is not None:
        headers[settings.turn_state_header] = turn.state
    return headers


def open_response(
    settings: Settings,
    body: dict[str, Any],
    *,
    turn: TurnState | None,
    stopped: threading.Event,
    attach: Callable[[requests.Response], None],
    slot: _transport.ConnectionSlot,
    observer: Observer | None = None,
) -> requests.Response | None:
    """POST the request, retrying while nothing has been received. Returns the
    response of a 2xx, or ``None`` if the stream was stopped meanwhile.

    ``attach`` is given each response as soon as its headers arrive, before any of its
    body is read (the stream uses it to be able to interrupt the reading). ``slot``
    records the connection while the request waits for its headers, so that the stream
    can interrupt that wait too (see :mod:`chatstream._shell.transport`). ``observer``
    hears of each attempt and retry (telemetry, timings).
    """
    retry = settings.retry
    attempt = 0  # the retry count's attempt: 1, then 2 for the first retry, ...
    sent = 0  # every request sent, for telemetry (the stream_options fallback too)
    while True:
        attempt += 1
        sent += 1
        started = time.monotonic()
        data = _http.encode_body(body)
        log.debug("POST %s (attempt %d)", _http.redact_url(settings.url), attempt)
        response = send(
            settings, "POST", settings.url, request_headers(settings, turn), slot, data=data
        )
        if isinstance(response, ChatStreamError):
            error = response
            _report(observer, sent, None, error, started)
            retryable = error.kind in ("connect", "connect_timeout")
            if retryable and _wait_to_retry(
                settings, observer, attempt, sent, error, None, stopped
            ):
                continue
            raise error
        attach(response)
        status = response.status_code
        if turn is not None:
            turn.capture(response.headers.get(settings.turn_state_header))
        log.debug("HTTP %d from %s", status, _http.redact_url(settings.url))
        if 200 <= status < 300:
            _report(observer, sent, status, None, started)
            if stopped.is_set():
                response.close()
                return None
            return response
        try:
            failure = _http.error_for_status(response, settings.secrets)
        finally:
            response.close()
        _report(observer, sent, status, failure, started)
        if (
            isinstance(failure, APIStatusError)
            and "stream_options" in body
            and settings.include_usage
            and _http.names_stream_options(failure)
        ):
            log.info("the server rejects stream_options; sending the request without it")
            _report_retry(observer, sent + 1, 0.0, failure)
            body = {k: v for k, v in body.items() if k != "stream_options"}
            attempt -= 1  # not a retry of the same request
            continue
        if isinstance(failure, APIStatusError) and retry.retries_status(status):
            hint = retry_hint(failure, response)
            if _wait_to_retry(settings, observer, attempt, sent, failure, hint, stopped):
                continue
        raise failure


def send(
    settings: Settings,
    method: str,
    url: str,
    headers: dict[str, str],
    slot: _transport.ConnectionSlot,
    *,
    data: bytes | None = None,
) -> requests.Response | ChatStreamError:
    """Send one request with the stream's settings: its response as soon as its headers
    arrive, or the error it failed with before any response. ``slot`` records the
    connection while the request waits for its headers.

    The error is returned, never raised here: raised in the except block, the original
    exception (whose message and request quote the URL and the key) would become its
    ``__context__``."""
    t = settings.timeouts
    # The read timeout also bounds the wait for the headers; a little above the idle
    # limit, so the watchdog (not the socket) normally reports a stalled body.
    read_timeout = None if t.idle is None else t.idle + 1.0
    try:
        with _transport.tracking(slot):
            return settings.session.request(
                method,
                url,
                data=data,
                headers=headers,
                auth=settings.auth,
                stream=True,
                timeout=(t.connect, read_timeout),
                allow_redirects=False,
                verify=settings.verify,
                cert=settings.cert,
            )
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        return _http.transport_error(
            exc,
            before_response=True,
            secrets=settings.secrets,
            idle=t.idle,
            url=url,
            connect_timeout=t.connect,
        )
    finally:
        slot.clear()  # the response (or the pool) owns the connection now


def retry_hint(failure: ChatStreamError, response: requests.Response) -> float | None:
    """The wait, in seconds, the server asked for before a retry of the request that
    failed with ``failure``: the rate limit error's own, else ``Retry-After``."""
    hint = failure.retry_after if isinstance(failure, RateLimitError) else None
    return _http.retry_after(response.headers) if hint is None else hint


def _wait_to_retry(
    settings: Settings,
    observer: Observer | None,
    attempt: int,
    sent: int,
    error: ChatStreamError,
    retry_after: float | None,
    stopped: threading.Event,
) -> bool:
    """Wait before the next attempt; False when no retry is left (or stopped).
    ``attempt`` counts for the retry policy, ``sent`` every request (for telemetry)."""
    retry = settings.retry
    if attempt > retry.max_retries or stopped.is_set():
        return False
    delay = retry.delay(attempt, retry_after, settings.rng)
    if delay is None:
        return False
    log.info("retrying in %.2f s (attempt %d of %d)", delay, attempt + 1, retry.max_retries + 1)
    _report_retry(observer, sent + 1, delay, error)
    return not stopped.wait(delay)


def _report_retry(
    observer: Observer | None, attempt: int, delay: float, error: ChatStreamError
) -> None:
    if observer is not None:
        observer.retry(attempt, delay, error)


def _report(
    observer: Observer | None,
    attempt: int,
    status: int | None,
    error: ChatStreamError | None,
    started: float,
) -> None:
    if observer is not None:
        observer.request(attempt, status, error, time.monotonic() - started)

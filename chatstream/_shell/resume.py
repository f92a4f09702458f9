"""Resuming a Responses stream that dropped after its first byte.

OpenAI's (and Azure OpenAI's) background responses (``POST /responses`` with
``"background": true, "stream": true``) can be streamed again from a sequence number:
``GET {base_url}/responses/{id}?stream=true&starting_after=N`` sends the events after the
``N``-th. When :attr:`Retry.max_resumes <chatstream.Retry.max_resumes>` allows it, a stream
whose body ends (or whose connection breaks) before its terminal event is continued that
way, with ``N`` the last ``sequence_number`` read, and the core skips any event it had
already read (:meth:`StreamParser.resume <chatstream.StreamParser.resume>`): the caller
sees one stream, no event twice, none missing.

A stream is resumed only on the Responses wire, for a request with ``"background":
true``, once ``response.created`` gave the response's id and an event its sequence
number, and only while it was not stopped (a close, a time limit: the watchdog's limits
run across the resumed requests, the total one from the first request). Each resume is
one request, counted as a retry (:attr:`Timing.retry_waits
<chatstream.Timing.retry_waits>`, :meth:`Telemetry.on_retry
<chatstream.Telemetry.on_retry>`), made after the retry policy's wait. A request that
fails with a status the policy retries, or before any answer, is one resume used; any
other failure (the server cannot resume: 400, 404, a body that is not an event stream)
ends the resuming, and the drop is reported as without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..core.parser import StreamParser
from ..errors import ChatStreamError, IncompleteStreamError
from . import http as _http
from . import transport as _transport
from .delivery import Interrupted
from .exchange import Settings, TurnState, request_headers, retry_hint, send
from .lifecycle import Lifecycle
from .reading import Body
from .timing import Observer

__all__ = ["Resumer", "resume_url", "resumes"]

log = logging.getLogger("chatstream")


def resumes(settings: Settings, request: Mapping[str, Any], parser: StreamParser) -> bool:
    """True when a drop of this stream is to be resumed (see the module documentation)."""
    return (
        settings.retry.max_resumes > 0
        and parser.api == "responses"
        and request.get("background") is True
    )


def resume_url(url: str, response_id: str, after: int) -> str:
    """The URL streaming response ``response_id`` again after event ``after``, from the
    stream's ``url`` (``{base_url}/responses``, its query string kept)."""
    parts = urlsplit(url)
    query = f"stream=true&starting_after={after}"
    if parts.query:
        query = f"{parts.query}&{query}"
    path = f"{parts.path.rstrip('/')}/{quote(response_id, safe='')}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


class Resumer:
    """Resumes one stream, at most ``settings.retry.max_resumes`` times in all."""

    def __init__(
        self,
        settings: Settings,
        parser: StreamParser,
        life: Lifecycle,
        *,
        slot: _transport.ConnectionSlot,
        observer: Observer,
        turn: TurnState | None = None,
    ) -> None:
        self.settings = settings
        self.parser = parser
        self.life = life
        self.slot = slot
        self.observer = observer
        self.turn = turn
        #: Requests made to resume the stream so far.
        self.used = 0

    def possible(self) -> bool:
        """True when the stream may be resumed now: a resume is left, the stream has not
        ended nor been stopped, and its id and a sequence number are known."""
        parser = self.parser
        return (
            self.used < self.settings.retry.max_resumes
            and not parser.ended
            and not self.life.stopping
            and parser.last_sequence_number is not None
            and bool(parser.response.response_id)
        )

    def reopen(self, dropped: BaseException, attach: Callable[[Body], None]) -> Body | None:
        """Ask for the stream again after the last sequence number read, after the retry
        policy's wait, as long as resumes are left; ``attach`` is given each response
        as soon as its headers arrive. Returns the new body (an event stream, its core
        set to skip what was read: see :meth:`StreamParser.resume
        <chatstream.StreamParser.resume>`), or ``None`` when the stream cannot be
        resumed.

        Raises:
            Interrupted: The stream was stopped meanwhile.
        """
        settings = self.settings
        retry = settings.retry
        observer = self.observer
        error = (
            dropped
            if isinstance(dropped, ChatStreamError)
            else IncompleteStreamError("The stream closed before response.completed.")
        )
        hint: float | None = None
        while self.possible():
            self.used += 1
            delay = retry.delay(self.used, hint, settings.rng)
            if delay is None:
                return None
            observer.retry(observer.requests + 1, delay, error)
            log.info("resuming the stream in %.2f s (resume %d)", delay, self.used)
            if self.life.stopped.wait(delay):
                raise Interrupted
            body, failure, hint, again = self._get(attach)
            if self.life.stopping:
                if body is not None:
                    body.close()
                raise Interrupted
            if body is not None:
                self.parser.resume()
                return body
            if not again:
                log.info("the stream cannot be resumed: %s", failure or "not an event stream")
                return None
            if failure is not None:
                error = failure
        return None

    def _get(
        self, attach: Callable[[Body], None]
    ) -> tuple[Body | None, ChatStreamError | None, float | None, bool]:
        """One request for the rest of the stream: the body of an event stream, or the
        error, the wait the server asked for, and whether another resume may follow."""
        settings = self.settings
        parser = self.parser
        after = parser.last_sequence_number
        url = resume_url(settings.url, parser.response.response_id, after or 0)
        headers = request_headers(settings, self.turn)
        del headers["Content-Type"]  # no body
        attempt = self.observer.requests + 1
        started = time.monotonic()
        log.debug("GET %s (resume %d)", _http.redact_url(url), self.used)
        response = send(settings, "GET", url, headers, self.slot)
        if isinstance(response, ChatStreamError):
            error = response
            self.observer.request(attempt, None, error, time.monotonic() - started)
            return None, error, None, error.kind in ("connect", "connect_timeout")
        body = _transport.BodyReader(response)
        attach(body)
        status = response.status_code
        if 200 <= status < 300:
            self.observer.request(attempt, status, None, time.monotonic() - started)
            if _http.media_type(response.headers) == "text/event-stream":
                return body, None, None, True
            body.close()
            return None, None, None, False  # the response whole, say: never read twice
        try:
            failure = _http.error_for_status(response, settings.secrets)
        finally:
            body.close()
        self.observer.request(attempt, status, failure, time.monotonic() - started)
        return None, failure, retry_hint(failure, response), settings.retry.retries_status(status)

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
from collections.abc import Mapping
from typing import Any

import requests

from . import _arguments
from ._shell import http as _http
from ._shell import redact as _redact
from ._shell import transport as _transport
from ._shell.exchange import Settings
from ._shell.process import default_watchdog
from ._shell.watchdog import Watchdog
from .config import Coalescing, Retry, Timeouts
from .core import typed as _typed
from .core.accumulator import DEFAULT_MAX_CHOICES, DEFAULT_MAX_TOOL_CALLS
from .core.parser import StreamParser
from .core.sse import DEFAULT_MAX_EVENT_BYTES
from .core.think import ThinkTags
from .errors import ConfigurationError
from .stream import BytesCallback, ChatStream, Dispatch, EndCallback, EventCallback, make_worker
from .telemetry import Telemetry

__all__ = ["Client", "Telemetry", "Turn", "TURN_STATE_HEADER"]

log = logging.getLogger("chatstream")

#: The response header that pins a turn to one backend (the specification's
#: sticky turn routing).
TURN_STATE_HEADER = "x-codex-turn-state"

#: How many connections a client's own session keeps for reuse, unless ``pool_size``
#: says otherwise: room for a thousand concurrent streams.
DEFAULT_POOL_SIZE = 1024
#: The default :class:`~chatstream.Coalescing`.
DEFAULT_COALESCING = Coalescing()


class Client:
    """Streams Chat Completions from an OpenAI-compatible server.

    Safe to share between threads; each :meth:`stream` runs on its own worker thread.

    Args:
        base_url: The API root, e.g. ``https://api.openai.com/v1``; requests go to
            ``{base_url}/chat/completions``.
        api_key: Sent as ``Authorization: Bearer …``; ``None`` or ``""`` sends no
            credentials (local servers). Surrounding whitespace and a ``Bearer`` prefix
            are removed.
        timeouts: The time limits: a :class:`Timeouts`, or a number of seconds for the
            idle limit alone (the others keep their defaults).
        retry: The retry policy: a :class:`Retry`, or a number of retries (the rest of
            the policy keeps its defaults).
        headers: Extra request headers.
        session: A ``requests.Session`` to send with (proxies, certificates, adapters);
            by default the client makes its own.
        telemetry: Hooks for each HTTP attempt, each retry and each event.
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
        coalescing: When many streams run at once, each one pauses a little before a
            read so that one wake-up reads several chunks: less CPU per chunk, and a
            throughput that holds up better with the number of streams, for chunks
            that reach you up to 100 ms later (see
            :class:`~chatstream.Coalescing`; the default pauses only beyond 64 streams
            running). ``None``: never pause.
        idle_timeout: Older spelling of ``timeouts=Timeouts(idle=...)``.
        connect_timeout: Older spelling of ``timeouts=Timeouts(connect=...)``.
        max_retries: Older spelling of ``retry=...``.

    Raises:
        ConfigurationError: An argument is invalid, or a setting is given in both its
            spellings.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeouts: float | Timeouts | None = None,
        retry: int | Retry | None = None,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        telemetry: Telemetry | None = None,
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
        coalescing: Coalescing | None = DEFAULT_COALESCING,
        idle_timeout: float | None = _arguments.UNSET,
        connect_timeout: float | None = _arguments.UNSET,
        max_retries: int = _arguments.UNSET,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        # The query string (a gateway's ``?key=...``) stays at the end of the URL.
        self.url = _transport.endpoint_url(self.base_url)
        api_key = _arguments.api_key(api_key)
        self._auth = _http.BearerAuth(api_key) if api_key is not None else None
        self.timeouts = _arguments.timeouts(timeouts, idle_timeout, connect_timeout)
        self.retry = _arguments.retry(retry, max_retries)
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
        if coalescing is not None and not isinstance(coalescing, Coalescing):
            raise ConfigurationError("coalescing must be a Coalescing, or None")
        self.coalescing = coalescing
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

    def turn(self) -> Turn:
        """A new user turn whose requests stick to one backend (see :class:`Turn`).

        Every stream started from the turn is part of it (the ``with`` block is
        optional: a turn holds nothing to release)::

            with client.turn() as turn:
                first = turn.stream(body)
                ...
                follow_up = turn.stream(body_with_tool_results)
        """
        return Turn(self)

    def settings(self) -> Settings:
        """This client's settings now, as one frozen value for a stream."""
        return Settings(
            url=self.url,
            session=self.session,
            auth=self._auth,
            headers=tuple(self.headers.items()),
            timeouts=self.timeouts,
            retry=self.retry,
            secrets=self._secrets,
            telemetry=self.telemetry,
            include_usage=self.include_usage,
            max_event_bytes=self.max_event_bytes,
            turn_state_header=self.turn_state_header,
            verify=self.session.verify if self.verify is None else self.verify,
            cert=self.session.cert if self.cert is None else self.cert,
            coalescing=self.coalescing,
            rng=self._rng,
        )

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        on_event: EventCallback | None = None,
        on_end: EndCallback | None = None,
        dispatch: Dispatch | None = None,
        # The specification's channel size: room for a burst of a whole fast answer
        # while the consumer is busy, at about 0.24 MiB (docs/performance.rst).
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
        length_is_error: bool | None = None,
        output: Any = None,
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
            length_is_error: For this stream, instead of the client's setting (the
                specification's mode: ``finish_reason: "length"`` is an error).
            output: The type of the answer: a pydantic model class, anything
                pydantic's ``TypeAdapter`` takes (``list[Model]``, a dataclass, a
                ``TypedDict``), or a JSON Schema ``dict``. The request asks for it
                (``response_format`` ``json_schema``, strict) unless the body has a
                ``response_format``; :class:`~chatstream.OutputTextParsed` events carry
                the value so far, its finished parts validated, and
                :attr:`Response.parsed <chatstream.Response.parsed>` the validated
                answer. A refusal, an answer cut short or one that does not validate
                ends the stream in an :class:`~chatstream.OutputError`. See
                :doc:`/typed`.

        Raises:
            ConfigurationError: An argument is invalid, or the body cannot be encoded as
                JSON. Everything else is raised by the stream (iterating it, or
                :meth:`~chatstream.ChatStream.result`).
        """
        _arguments.count("queue_size", queue_size)
        limits = _arguments.limits(self, max_choices, max_tool_calls, max_total_bytes)
        kind = None
        if output is not None:
            kind, response_format = _typed.for_request(output, body)
            if response_format is not None:
                body = {**body, "response_format": response_format}
        request = _http.build_body(body, include_usage=self.include_usage)
        worker = make_worker(
            self.settings(),
            request,
            watchdog=self._watchdog or default_watchdog(),
            queue_size=queue_size,
            on_event=on_event,
            on_end=on_end,
            on_bytes=on_bytes,
            dispatch=dispatch,
            iterate=iterate,
            turn=turn,
            parser=StreamParser(
                drop_tool_calls_on_stop=self.drop_tool_calls_on_stop,
                length_is_error=(
                    self.length_is_error if length_is_error is None else length_is_error
                ),
                raw_chunks=self.raw_chunks,
                request=request,
                output=kind,
                **limits,
                **_views(self.views, partial_json, think_tags, text_tool_calls),
            ),
        )
        return ChatStream(worker)


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

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing to release: the ``with`` block only marks the turn's extent."""

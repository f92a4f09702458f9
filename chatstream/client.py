"""The client: holds the connection settings and starts streams.

::

    client = chatstream.Client(base_url="https://api.openai.com/v1", api_key=key)
    with client.stream({"model": "gpt-4o", "messages": [...]}) as stream:
        for event in stream:
            ...
        response = stream.result()
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import logging
import random
import threading
from collections.abc import Mapping
from typing import Any

import requests

from . import _arguments
from ._shell import http as _http
from ._shell import process as _process
from ._shell import redact as _redact
from ._shell import transport as _transport
from ._shell.exchange import Settings
from .config import Coalescing, Connections, Limits, Retry, StreamOptions, Timeouts
from .core import typed as _typed
from .core.parser import StreamParser
from .errors import ConfigurationError
from .stream import BytesCallback, ChatStream, Dispatch, EndCallback, EventCallback, make_worker
from .telemetry import Telemetry

__all__ = ["Client", "Telemetry", "Turn", "TURN_STATE_HEADER"]

log = logging.getLogger("chatstream")

#: The response header that pins a turn to one backend (the specification's
#: sticky turn routing).
TURN_STATE_HEADER = "x-codex-turn-state"

#: How many connections a client's own session keeps for reuse, unless
#: :attr:`Connections.pool_size <chatstream.Connections.pool_size>` says otherwise: room
#: for a thousand concurrent streams.
DEFAULT_POOL_SIZE = 1024
#: The default :class:`~chatstream.Coalescing`.
DEFAULT_COALESCING = Coalescing()


class Client:
    """Streams Chat Completions from an OpenAI-compatible server.

    Safe to share between threads; each :meth:`stream` runs on its own worker thread.

    Args:
        base_url: The API root, e.g. ``https://api.openai.com/v1``; requests go to
            ``{base_url}/chat/completions``, or ``{base_url}/responses`` on the
            Responses wire (``api="responses"``).
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
            rejects the field gets the request once more without it. (The Responses
            wire always sends usage: nothing is added there.)
        options: How every stream is read and viewed (a :class:`StreamOptions`), unless
            :meth:`stream` gives its own.
        limits: How much every response may hold (a :class:`Limits`; see
            :ref:`limits`), unless :meth:`stream` gives its own.
        connections: The client's connection pool and TLS (a :class:`Connections`):
            its ``pool_size`` sizes the client's own session only (for a ``session``
            you pass, mount an adapter on it); its ``verify`` and ``cert``, when set,
            replace the session's own.
        coalescing: When many streams run at once, each one pauses a little before a
            read so that one wake-up reads several chunks: less CPU per chunk, and a
            throughput that holds up better with the number of streams, for chunks
            that reach you up to 100 ms later (see
            :class:`~chatstream.Coalescing`; the default pauses only beyond 64 streams
            running). ``None``: never pause.
        turn_state_header: The header used for sticky turn routing (see :class:`Turn`).
            The default, ``x-codex-turn-state``, comes from the coding agent whose
            reducer chatstream ports (see :ref:`the-specification`).
        api: The wire, as ``options.api`` says it (given, it replaces that): ``"chat"``
            (``POST {base_url}/chat/completions``) or ``"responses"`` (``POST
            {base_url}/responses``, read into the same events; see :doc:`responses`). A
            stream chooses its own with ``options=client.options.replace(api=...)``.

    Raises:
        ConfigurationError: An argument is invalid.
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
        options: StreamOptions | None = None,
        limits: Limits | None = None,
        connections: Connections | None = None,
        coalescing: Coalescing | None = DEFAULT_COALESCING,
        turn_state_header: str = TURN_STATE_HEADER,
        api: str | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        # The query string (a gateway's ``?key=...``) stays at the end of the URL.
        self.url = _transport.endpoint_url(self.base_url)
        self.responses_url = _transport.endpoint_url(self.base_url, "/responses")
        api_key = _arguments.api_key(api_key)
        self._auth = _http.BearerAuth(api_key) if api_key is not None else None
        #: The time limits.
        self.timeouts = _timeouts(timeouts)
        #: The retry policy.
        self.retry = _retry(retry)
        self.headers = _arguments.headers(headers)
        if "?" in self.url:
            # The query may carry a key: masked even in urllib3's DEBUG log lines.
            _redact.redact_query_in_logs(self.url)
        self.telemetry = telemetry
        self.include_usage = include_usage
        #: How every stream is read, unless :meth:`stream` says otherwise.
        self.options = _arguments.given(StreamOptions, "options", options)
        if api is not None and api != self.options.api:
            self.options = self.options.replace(api=api)  # checks it
        #: Every stream's limits, unless :meth:`stream` says otherwise.
        self.limits = _arguments.given(Limits, "limits", limits)
        #: The connection pool and TLS.
        self.connections = _arguments.given(Connections, "connections", connections)
        self.turn_state_header = turn_state_header
        pool_size = self.connections.pool_size
        if pool_size is not None and session is not None:
            raise ConfigurationError(
                "Connections.pool_size sizes the client's own session; for a session you "
                "pass, mount an adapter with the pool size you want on it"
            )
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

    @property
    def api(self) -> str:
        """The wire every stream uses unless it gives its own options:
        ``options.api``."""
        return self.options.api

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

    def _settings(self, options: StreamOptions | None, limits: Limits | None) -> Settings:
        """This client's settings now, as one frozen value for a stream, with the
        stream's own options and limits where it gives them."""
        tls = self.connections
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
            turn_state_header=self.turn_state_header,
            options=self.options if options is None else options,
            limits=self.limits if limits is None else limits,
            verify=self.session.verify if tls.verify is None else tls.verify,
            cert=self.session.cert if tls.cert is None else tls.cert,
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
        iterate: bool | None = None,
        on_bytes: BytesCallback | None = None,
        options: StreamOptions | None = None,
        limits: Limits | None = None,
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
            iterate: Whether events are also kept for iteration. By default they are,
                unless ``on_event`` is given: a callback-only program then never stalls
                on a full queue.
            on_bytes: Called with each piece of the response body as it is read
                (decoded from any content encoding), before it is parsed, on the worker
                thread (never through ``dispatch``): e.g. a file's ``write``, to record the
                body for ``chatstream replay``. If it raises, the stream ends in
                :class:`~chatstream.CallbackError`.
            options: This stream's :class:`StreamOptions`, used as given, instead of the
                client's (left out or ``None``: the client's). Change one option with
                ``options=client.options.replace(partial_json=True)``.
            limits: This stream's :class:`Limits`, used as given, instead of the
                client's (left out or ``None``: the client's): so
                ``limits=client.limits.replace(max_total_bytes=None)`` lifts the
                client's limit on the body's size for this stream.
            output: The type of the answer: a pydantic model class, anything
                pydantic's ``TypeAdapter`` takes (``list[Model]``, a dataclass, a
                ``TypedDict``), or a JSON Schema ``dict``. The request asks for it
                (``response_format`` ``json_schema``, strict; on the Responses wire
                ``text.format``) unless the body has its own;
                :class:`~chatstream.OutputTextParsed` events carry the value so far,
                its finished parts validated, and :attr:`Response.parsed
                <chatstream.Response.parsed>` the validated answer. A refusal, an
                answer cut short (``length``, or ``max_output_tokens`` on the
                Responses wire) or one that does not validate ends the stream in an
                :class:`~chatstream.OutputError`. See :doc:`/typed`.

        Raises:
            ConfigurationError: An argument is invalid, the body is shaped for the other
                wire (``messages`` sent to ``/responses``, ``input`` to chat), or it
                cannot be encoded as JSON. Everything else is raised by the stream (iterating it, or
                :meth:`~chatstream.ChatStream.result`).
        """
        return self._stream(
            body,
            on_event=on_event,
            on_end=on_end,
            dispatch=dispatch,
            iterate=iterate,
            on_bytes=on_bytes,
            options=options,
            limits=limits,
            output=output,
            turn=None,
        )

    def _stream(
        self,
        body: Mapping[str, Any],
        *,
        on_event: EventCallback | None,
        on_end: EndCallback | None,
        dispatch: Dispatch | None,
        iterate: bool | None,
        on_bytes: BytesCallback | None,
        options: StreamOptions | None,
        limits: Limits | None,
        output: Any,
        turn: Turn | None,
    ) -> ChatStream:
        """:meth:`stream`, as part of ``turn`` when one is given."""
        if options is not None:
            _arguments.given(StreamOptions, "options", options)
        if limits is not None:
            _arguments.given(Limits, "limits", limits)
        wire = (self.options if options is None else options).api
        _arguments.wire_body(wire, body)
        kind = None
        if output is not None:
            kind, body = _typed.asking_for(output, body, wire)
        settings = self._settings(options, limits)
        if wire == "responses":
            # Usage always comes on this wire: stream_options.include_usage is not its.
            settings = dataclasses.replace(settings, url=self.responses_url, include_usage=False)
        request = _http.build_body(body, include_usage=settings.include_usage)
        worker = make_worker(
            settings,
            request,
            # Looked up on the module for each stream: the tests' seam for a watchdog
            # with a fake clock.
            watchdog=_process.default_watchdog(),
            on_event=on_event,
            on_end=on_end,
            on_bytes=on_bytes,
            dispatch=dispatch,
            iterate=iterate,
            turn=turn,
            parser=StreamParser(
                options=settings.options, limits=settings.limits, request=request, output=kind
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


def _timeouts(value: float | Timeouts | None) -> Timeouts:
    """The client's time limits from ``timeouts=``: a :class:`~chatstream.Timeouts`, or
    the idle limit in seconds."""
    if value is None:
        return Timeouts()
    if isinstance(value, Timeouts):
        return value
    return Timeouts(idle=_arguments.seconds("timeouts", value, optional=False))


def _retry(value: int | Retry | None) -> Retry:
    """The client's retry policy from ``retry=``: a :class:`~chatstream.Retry`, or a
    number of retries."""
    if value is None:
        return Retry()
    if isinstance(value, Retry):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError("retry must be a Retry or a number of retries")
    return Retry(max_retries=value)


class Turn:
    """One user turn: its requests share the backend the first response pinned.

    The first response of the turn that carries the turn-state header
    (``x-codex-turn-state``, or the client's ``turn_state_header``) fixes its value for
    the turn; every later request of the turn sends it back, so retries and tool
    follow-ups reach the same backend. Set once, safe to share between threads. Made by
    :meth:`Client.turn`.
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

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        on_event: EventCallback | None = None,
        on_end: EndCallback | None = None,
        dispatch: Dispatch | None = None,
        iterate: bool | None = None,
        on_bytes: BytesCallback | None = None,
        options: StreamOptions | None = None,
        limits: Limits | None = None,
        output: Any = None,
    ) -> ChatStream:
        """:meth:`Client.stream`, as part of this turn (the same arguments)."""
        return self.client._stream(
            body,
            on_event=on_event,
            on_end=on_end,
            dispatch=dispatch,
            iterate=iterate,
            on_bytes=on_bytes,
            options=options,
            limits=limits,
            output=output,
            turn=self,
        )

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing to release: the ``with`` block only marks the turn's extent."""

"""HTTP details: building the request, reading error responses, mapping failures.

The only module besides the client that knows ``requests``; every exception of
``requests`` and ``urllib3`` is translated here into chatstream's own, built from
redacted pieces (their own messages may quote URLs and headers, credentials included).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3.exceptions

from .._arguments import check_api_key
from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChatStreamError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    ContextLengthExceededError,
    IdleTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    ServerError,
    StreamConnectionError,
    UnexpectedResponseError,
)
from ..response import _whole_text

# redact_url and scrub_error are used by the shell through this module too.
from .deadlines import idle_message
from .redact import (
    REDACTED,
    SECRET_HEADERS,
    redact,
    redact_snippet,
    redact_url,
    scrub_error,
    strip_query,
)

__all__ = [
    "CONNECT_REASONS",
    "BearerAuth",
    "MAX_ERROR_BODY",
    "build_body",
    "connect_cause",
    "encode_body",
    "error_for_status",
    "host_port",
    "is_context_window_error",
    "media_type",
    "names_stream_options",
    "proxy_urls",
    "rate_limit_headers",
    "read_limited",
    "redact_url",
    "redacted_cause",
    "retry_after",
    "scrub_error",
    "transport_error",
    "unexpected_response",
    "usable_header_value",
]

log = logging.getLogger("chatstream")

#: How much of an error response is read (the rest is never downloaded).
MAX_ERROR_BODY = 64 * 1024
#: How much of it an exception quotes.
_SNIPPET = 512


class BearerAuth(requests.auth.AuthBase):
    """Sends the API key as ``Authorization: Bearer …``.

    Passing credentials as an auth object (not a plain header) stops requests from
    replacing them with a ``~/.netrc`` entry for the same host (measured:
    psf/requests#3929). Its ``repr`` never shows the key.
    """

    def __init__(self, api_key: str) -> None:
        check_api_key(api_key)
        self._header = f"Bearer {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "BearerAuth([REDACTED])"


def redacted_cause(exc: BaseException, secrets: tuple[str, ...]) -> Exception:
    """A stand-in for a foreign exception, to chain as ``__cause__``: its type name and
    message, redacted (the original may quote the URL with its query, or headers)."""
    message = redact(str(exc), secrets)
    message = re.sub(r"https?://\S+", lambda m: redact_url(m.group(0)), message)
    return Exception(f"{type(exc).__module__}.{type(exc).__qualname__}: {message}")


def build_body(body: Mapping[str, Any], *, include_usage: bool) -> dict[str, Any]:
    """The request body: the caller's, with ``stream`` on and usage asked for.

    Raises:
        ConfigurationError: It is not a mapping, or cannot be encoded as JSON (checked
            here, before any thread starts, rather than when it is sent).
    """
    if not isinstance(body, Mapping):
        raise ConfigurationError("the request body must be a mapping (a dict)")
    out = dict(body)
    out["stream"] = True
    if include_usage:
        options = out.get("stream_options")
        options = dict(options) if isinstance(options, Mapping) else {}
        options.setdefault("include_usage", True)
        out["stream_options"] = options
    encode_body(out)
    return out


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The request body as UTF-8 JSON.

    A lone surrogate (half of an emoji a server split across two deltas, sent back in
    the conversation) cannot be encoded as UTF-8: it is replaced with U+FFFD, and a
    pair of halves is joined into its character.

    Raises:
        ConfigurationError: A value is not JSON (a ``datetime``, ``bytes``, a ``set``,
            ``nan``), or the body is nested too deeply.
    """
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        # The message names the type (never the value, which may be anything).
        reason = str(exc) if isinstance(exc, TypeError) else type(exc).__name__
        raise ConfigurationError(
            f"the request body cannot be encoded as JSON ({reason[:200]})"
        ) from None
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _whole_text(text).encode()


def usable_header_value(name: str, value: str | None) -> bool:
    """True when ``value`` can be sent back as a header (a response header folded over
    two lines, or with a control character, cannot: requests would refuse every later
    request). An unusable one is logged at DEBUG, without its value."""
    if not value:
        return False
    if _HEADER_VALUE.fullmatch(value) and value.isascii():
        return True
    log.debug("ignoring the %s header of the response: it is not a valid header value", name)
    return False


_HEADER_VALUE = re.compile(r"[\x21-\x7e][\x20-\x7e\t]*")


def proxy_urls(session: requests.Session, url: str) -> list[str]:
    """The proxies the session may use for ``url`` (its own and, when it trusts the
    environment, ``HTTP(S)_PROXY``): their user info is a secret to redact."""
    found = [p for p in session.proxies.values() if isinstance(p, str)]
    if session.trust_env:
        found += list(requests.utils.get_environ_proxies(url).values())
    return found


def media_type(headers: Mapping[str, str]) -> str:
    """The media type of a response (lower case, without parameters). A header sent
    twice (some proxies repeat it) arrives joined by commas: when every value is an event
    stream, so is the body."""
    values = [v.split(";")[0].strip().lower() for v in headers.get("content-type", "").split(",")]
    values = [v for v in values if v] or [""]
    if all(v == values[0] for v in values):
        return values[0]
    return ", ".join(values)


def names_stream_options(error: APIStatusError) -> bool:
    """True when a 400/422 rejects the ``stream_options`` field (Mistral, older Groq,
    some gateways), so the request can be sent again without it."""
    if error.status not in (400, 422):
        return False
    text = f"{error.message} {error.param or ''} {error.body}".lower()
    return "stream_options" in text or "include_usage" in text


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers, keyed by the rest of their lower-case name."""
    prefix = "x-ratelimit-"
    return {k.lower()[len(prefix) :]: v for k, v in headers.items() if k.lower().startswith(prefix)}


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms`` (Azure), else ``Retry-After``
    as seconds or as an HTTP date. Always a finite number or ``None``: a value that is
    none (``nan``, ``inf``, ``1e400``, a date in the year 99999999999) counts as absent."""
    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    wait = when - (time.time() if now is None else now)
    return max(wait, 0.0) if math.isfinite(wait) else None


def _seconds(value: str | None) -> float | None:
    """A finite, non-negative number of seconds from a header value, or ``None``."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def read_limited(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, decoded from its content encoding."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        data = response.raw.read1(limit - size, decode_content=True)
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def _provider_fields(body: bytes) -> tuple[str | None, str | None, str | int | None, str | None]:
    """message, type, code, param of an OpenAI-style JSON error body."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return None, None, None, None
    if isinstance(payload, list) and payload:  # some gateways wrap it in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        return None, None, None, None
    detail = payload.get("error", payload)
    if isinstance(detail, str):
        return detail, None, None, None
    if not isinstance(detail, dict):
        return None, None, None, None
    message, kind, code, param = (detail.get(k) for k in ("message", "type", "code", "param"))
    if message is None and isinstance(payload.get("message"), str):
        message = payload["message"]
    if message is None and isinstance(payload.get("detail"), str):
        message = payload["detail"]  # FastAPI-style servers
    return (
        message if isinstance(message, str) else None,
        kind if isinstance(kind, str) else None,
        code if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
        param if isinstance(param, str) else None,
    )


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}

_HINTS = {
    400: "check the request body",
    401: "check the API key",
    403: "check the key's permissions for this model",
    404: "check the base URL and the model name",
    422: "check the request body",
    429: "wait and try again",
}


def error_for_status(response: requests.Response, secrets: tuple[str, ...]) -> ChatStreamError:
    """The error for a non-2xx response (reads at most :data:`MAX_ERROR_BODY` of it)."""
    status = response.status_code
    headers = _safe_headers(response.headers, secrets)
    if 300 <= status < 400:
        location = strip_query(response.headers.get("location", ""))
        return RedirectError(
            f"The server redirected the request (HTTP {status}) to {location or 'nowhere'}; "
            "chatstream does not follow redirects, which would carry the request and its "
            "credentials elsewhere: use the final URL as the base URL.",
            status=status,
            location=location,
        )
    try:
        raw = read_limited(response, MAX_ERROR_BODY)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        raw = b""
    text = decode_text(raw, response.encoding)
    message, kind, code, param = _provider_fields(raw)
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIStatusError)
    if cls is BadRequestError and is_context_window_error(kind, code, message):
        cls = ContextLengthExceededError
    reason = redact(message, secrets) if message else (response.reason or "error")
    hint = _HINTS.get(status, "the server failed; try again later" if status >= 500 else "")
    summary = f"HTTP {status}: {reason}" + (f" ({hint})" if hint else "")
    fields: dict[str, Any] = {
        "status": status,
        "type": kind,
        "code": code,
        "param": param,
        "body": redact_snippet(text, secrets, _SNIPPET),
        "headers": headers,
        "request_id": headers.get("x-request-id") or headers.get("request-id"),
    }
    if cls is RateLimitError:
        return RateLimitError(summary, retry_after=retry_after(response.headers), **fields)
    return cls(summary, **fields)


# A provider's own code or type for a request over the context window.
_CONTEXT_CODES = frozenset(
    {
        "context_length_exceeded",  # OpenAI, Azure, Groq, Cerebras, DeepSeek, llama-cpp-python
        "exceed_context_size_error",  # llama.cpp (as its type)
        "context_window_exceeded",
        "model_context_window_exceeded",
    }
)
# Codes and types that only say "a bad request" (or echo the status): they leave the
# message to say which. Any other code is the provider's own answer, and decides.
_GENERIC_CODES = frozenset(
    {
        "invalid_request_error",  # OpenAI and the many servers that copy its shape
        "badrequesterror",  # vLLM (with code: 400)
        "bad_request",
        "bad_request_error",
        "invalid_request",
        "error",
    }
)
# The messages of providers that say so in words only, each matched from the start of
# the message and in that provider's own wording, so that text quoted from the request
# (a validation error echoing a user's "What is the maximum context length?") never is.
_CONTEXT_MESSAGE = re.compile(
    r"\s*(?:"
    # OpenAI's wording, kept by vLLM, DeepSeek, llama-cpp-python and OpenRouter
    r"This (?:model|endpoint)'s maximum context length is \d+"
    # llama.cpp: "request (5024 tokens) exceeds the available context size (4096 tokens)"
    r"|(?:the )?request (?:\(\d+ tokens\) )?exceeds the available context size"
    # llama-cpp-python, raised by the model itself
    r"|Requested tokens \(\d+\) exceed context window of \d+"
    # vLLM, for a prompt alone over the limit
    r"|The (?:decoder )?prompt \(length \d+\) is longer than the maximum model length"
    # Anthropic-compatible endpoints: "prompt is too long: 201234 tokens > 200000 maximum"
    r"|prompt is too long: \d+ tokens"
    # Anthropic, when the prompt and max_tokens together do not fit
    r"|input length and `max_tokens` exceed context limit: \d+ \+ \d+ > \d+"
    # Gemini's OpenAI-compatible endpoint
    r"|The input token count \(\d+\) exceeds the maximum number of tokens"
    # Mistral: "Prompt contains 40000 tokens ... too large for model with 32768 maximum
    # context length"
    r"|Prompt contains \d+ tokens.{0,80}too large for model with \d+ maximum context length"
    r")",
    re.IGNORECASE | re.DOTALL,
)


def is_context_window_error(kind: str | None, code: str | int | None, message: str | None) -> bool:
    """True when a 400/422's error says the request does not fit the model's context
    window: by the provider's code or type, or, when it sends none that says what the
    error is, by the start of its message in the words of a provider that says so."""
    codes = [v.lower() for v in (kind, code) if isinstance(v, str) and v.strip()]
    if any(c in _CONTEXT_CODES for c in codes):
        return True
    if any(c not in _GENERIC_CODES and not c.isdigit() for c in codes):
        return False  # the provider's own code says what this is
    return bool(message) and _CONTEXT_MESSAGE.match(message or "") is not None


def decode_text(raw: bytes, charset: str | None) -> str:
    """The text of a body in its declared charset, or UTF-8 when Python does not know
    that one (``utf8mb4``) or it is no text encoding (``base64``): never an error."""
    try:
        return raw.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError, TypeError):
        return raw.decode("utf-8", "replace")


def _safe_headers(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """Response headers with credentials removed: the values of credential headers, and
    any secret (or bearer token) a server echoes in another header."""
    return {
        k.lower(): (
            REDACTED
            if k.lower() in SECRET_HEADERS or k.lower() == "set-cookie"
            else redact(v, secrets)
        )
        for k, v in headers.items()
    }


def unexpected_response(
    status: int,
    content_type: str,
    read: Callable[[int], bytes],
    secrets: tuple[str, ...],
) -> UnexpectedResponseError:
    """The error for a 2xx whose body is not an event stream (an HTML page, say);
    ``read`` reads the body (what has arrived, up to a size)."""
    # A little more than the snippet, so that a secret the cut falls inside is whole
    # (and redacted) before the snippet is cut.
    limit = _SNIPPET + max((len(s) for s in secrets), default=0) * 4
    pieces: list[bytes] = []
    size = 0
    try:
        while size < limit:
            data = read(limit - size)
            if not data:
                break
            pieces.append(data)
            size += len(data)
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        OSError,
        ValueError,  # the chunked decoding's errors
    ):
        pass  # the snippet is what arrived before the failure
    body = redact_snippet(b"".join(pieces).decode("utf-8", "replace"), secrets, _SNIPPET)
    return UnexpectedResponseError(
        f"HTTP {status} with Content-Type {content_type or '(none)'} is not an "
        "event stream; a proxy or a wrong base URL may have answered.",
        status=status,
        content_type=content_type,
        body=body,
    )


def connect_reason(exc: BaseException) -> str | None:
    """Why no connection was made (see :attr:`ConnectError.reason
    <chatstream.ConnectError.reason>`), from the types of the exceptions requests and
    urllib3 wrap around the socket's, never from their messages."""
    chain = _wrapped(exc)
    for reason, types in _REASONS:
        if any(isinstance(e, types) for e in chain):
            return reason
    return None


# In the order they are told apart: a refused connection is also an OSError, and
# urllib3's NewConnectionError (and so NameResolutionError) is also its
# ConnectTimeoutError, so only the standard library's TimeoutError means a timeout.
_REASONS: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("unknown_host", (socket.gaierror, urllib3.exceptions.NameResolutionError)),
    ("refused", (ConnectionRefusedError,)),
    ("tls", (ssl.SSLError, urllib3.exceptions.SSLError)),
    (
        "closed",
        (
            http.client.RemoteDisconnected,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
        ),
    ),
    ("timeout", (TimeoutError,)),
)


def _wrapped(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, urllib3's ``reason`` and
    exceptions among the arguments (requests and urllib3 wrap them each their own way)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 32:
        e = todo.pop()
        if any(e is s for s in seen):
            continue
        seen.append(e)
        inner = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo += [i for i in inner if isinstance(i, BaseException)]
    return seen


#: Each :attr:`ConnectError.reason <chatstream.ConnectError.reason>` in a few words.
CONNECT_REASONS = {
    "unknown_host": "unknown host",
    "refused": "connection refused",
    "tls": "the TLS handshake failed",
    "closed": "closed without answering",
    "timeout": "connect timeout",
}


def host_port(url: str) -> str:
    """``host:port`` of ``url`` (the scheme's default port when none is given), without
    user info: where a connection goes."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "the server"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_cause(reason: str | None, where: str, connect_timeout: float | None) -> str | None:
    """Why no connection to ``where`` (``host:port``) was made, in a sentence's words;
    ``None`` when the reason is not known."""
    if reason == "unknown_host":
        return f"unknown host {where.rsplit(':', 1)[0].strip('[]')!r}"
    if reason == "refused":
        return f"connection refused (nothing listens on {where})"
    if reason == "tls":
        return "the TLS handshake failed"
    if reason == "timeout":
        within = f" within {connect_timeout:g} s" if connect_timeout else ""
        return f"no answer{within} (connect timeout)"
    if reason == "closed":
        return "the server closed the connection without answering"
    return None


def transport_error(
    exc: BaseException,
    *,
    before_response: bool,
    secrets: tuple[str, ...],
    idle: float | None,
    url: str = "",
    connect_timeout: float | None = None,
) -> ChatStreamError:
    """chatstream's error for an exception of requests, urllib3 or the socket (``url``
    and ``connect_timeout`` name where a connection failed, and how long it was given)."""
    detail = type(exc).__name__
    error: ChatStreamError
    where = host_port(url)
    if isinstance(exc, requests.ConnectTimeout):
        cause = connect_cause("timeout", where, connect_timeout)
        error = ConnectTimeoutError(f"Could not connect to {where}: {cause}.")
    elif isinstance(exc, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        error = IdleTimeoutError(
            idle_message(idle),
            timeout=idle or 0.0,
        )
    elif before_response:
        reason = connect_reason(exc)
        cause = connect_cause(reason, where, connect_timeout)
        if cause is None:
            cause = f"no connection, or it failed before any answer ({detail})"
        error = ConnectError(f"Could not connect to {where}: {cause}.", reason=reason)
    elif isinstance(
        exc, (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError)
    ):
        error = StreamConnectionError(
            f"The response body could not be decompressed ({detail}); the stream is broken."
        )
    else:
        error = StreamConnectionError(f"The connection broke while reading the stream ({detail}).")
    error.__cause__ = redacted_cause(exc, secrets)
    error.__suppress_context__ = True
    return error

"""HTTP details: building the request, reading error responses, mapping failures.

The only module besides the client that knows ``requests``; every exception of
``requests`` and ``urllib3`` is translated here into chatstream's own, built from
redacted pieces (their own messages may quote URLs and headers, credentials included).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import requests
import urllib3.exceptions

from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChatStreamError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    IdleTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    ServerError,
    StreamConnectionError,
    UnexpectedResponseError,
)

__all__ = [
    "BearerAuth",
    "MAX_ERROR_BODY",
    "build_body",
    "chunk_from_completion",
    "error_for_status",
    "rate_limit_headers",
    "redact_url",
    "redacted_cause",
    "scrub_error",
    "secret_header_values",
    "strip_query",
    "transport_error",
]

#: How much of an error response is read (the rest is never downloaded).
MAX_ERROR_BODY = 64 * 1024
#: How much of it an exception quotes.
_SNIPPET = 512
_REDACTED = "[REDACTED]"
# Header names whose values are credentials.
_SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "proxy-authorization", "cookie")


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


def check_api_key(api_key: str) -> None:
    """Refuse a key that cannot go into a header, without ever quoting it (requests'
    own error would quote the whole header value)."""
    if not isinstance(api_key, str) or not api_key:
        raise ConfigurationError("invalid API key format: it must be a non-empty string")
    if any(not (32 <= ord(c) < 127) for c in api_key):
        raise ConfigurationError(
            "invalid API key format: it contains a line break, a control character or a "
            "non-ASCII character"
        )


def secret_header_values(headers: Mapping[str, str]) -> list[str]:
    """The credentials among request headers (``api-key``, ``x-api-key``, ...), and the
    token of an ``Authorization`` header, so they can be redacted like the API key."""
    values = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            values.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                values.append(token)
    return values


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret (and every bearer token) replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return re.sub(r"(?i)(bearer\s+)[^\s\"',;]+", r"\1" + _REDACTED, text)


def scrub_error(error: ChatStreamError, secrets: tuple[str, ...]) -> None:
    """Remove the secrets from an error, in place: its message and every other text it
    carries (a provider error in the stream, say, may quote the key back). The partial
    response is left alone."""
    if not secrets:
        return
    for name, value in list(vars(error).items()):
        if name != "partial" and isinstance(value, (str, list, dict)):
            setattr(error, name, _redact_value(value, secrets))
    error.args = tuple(_redact_value(arg, secrets) for arg in error.args)


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def redact_url(url: str) -> str:
    """The URL with the values of its query string and any user info replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    # Built by hand: urlencode() would turn the marker into "%5BREDACTED%5D".
    query = "&".join(f"{quote(k, safe='')}={_REDACTED}" for k, _ in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def strip_query(url: str) -> str:
    """The URL without user info, query string or fragment (where a redirect points,
    say: its query may carry a signature or a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redacted_cause(exc: BaseException, secrets: tuple[str, ...]) -> Exception:
    """A stand-in for a foreign exception, to chain as ``__cause__``: its type name and
    message, redacted (the original may quote the URL with its query, or headers)."""
    message = redact(str(exc), secrets)
    message = re.sub(r"https?://\S+", lambda m: redact_url(m.group(0)), message)
    return Exception(f"{type(exc).__module__}.{type(exc).__qualname__}: {message}")


def build_body(body: Mapping[str, Any], *, include_usage: bool) -> dict[str, Any]:
    """The request body: the caller's, with ``stream`` on and usage asked for."""
    if not isinstance(body, Mapping):
        raise ConfigurationError("the request body must be a mapping (a dict)")
    out = dict(body)
    out["stream"] = True
    if include_usage:
        options = out.get("stream_options")
        options = dict(options) if isinstance(options, Mapping) else {}
        options.setdefault("include_usage", True)
        out["stream_options"] = options
    return out


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
    as seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


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
    except ValueError:
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
    text = redact(raw.decode(response.encoding or "utf-8", "replace"), secrets)
    message, kind, code, param = _provider_fields(raw)
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIStatusError)
    reason = redact(message, secrets) if message else (response.reason or "error")
    hint = _HINTS.get(status, "the server failed; try again later" if status >= 500 else "")
    summary = f"HTTP {status}: {reason}" + (f" ({hint})" if hint else "")
    fields: dict[str, Any] = {
        "status": status,
        "type": kind,
        "code": code,
        "param": param,
        "body": text[:_SNIPPET],
        "headers": headers,
        "request_id": headers.get("x-request-id") or headers.get("request-id"),
    }
    if cls is RateLimitError:
        return RateLimitError(summary, retry_after=retry_after(response.headers), **fields)
    return cls(summary, **fields)


def _safe_headers(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """Response headers with credentials removed: the values of credential headers, and
    any secret (or bearer token) a server echoes in another header."""
    return {
        k.lower(): (
            _REDACTED
            if k.lower() in _SECRET_HEADERS or k.lower() == "set-cookie"
            else redact(v, secrets)
        )
        for k, v in headers.items()
    }


def unexpected_response(
    response: requests.Response, content_type: str, secrets: tuple[str, ...]
) -> UnexpectedResponseError:
    """The error for a 200 whose body is not an event stream (an HTML page, say)."""
    try:
        raw = read_limited(response, _SNIPPET)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        raw = b""
    body = redact(raw.decode("utf-8", "replace"), secrets)
    return UnexpectedResponseError(
        f"HTTP {response.status_code} with Content-Type {content_type or '(none)'} is not an "
        "event stream; a proxy or a wrong base URL may have answered.",
        status=response.status_code,
        content_type=content_type,
        body=body,
    )


def chunk_from_completion(completion: Any) -> dict[str, Any]:
    """A streamed chunk equivalent to a whole (non-streamed) chat completion, for a
    server that ignored ``"stream": true``: each choice's ``message`` becomes its
    ``delta``."""
    if not isinstance(completion, dict):
        return {}
    chunk = {k: v for k, v in completion.items() if k != "choices"}
    choices = []
    for position, choice in enumerate(completion.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        delta = dict(message) if isinstance(message, dict) else {}
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [
                dict(call, index=i) if isinstance(call, dict) else call
                for i, call in enumerate(calls)
            ]
        choices.append(
            {
                "index": choice.get("index", position),
                "delta": delta,
                "finish_reason": choice.get("finish_reason"),
            }
        )
    chunk["choices"] = choices
    return chunk


def transport_error(
    exc: BaseException, *, before_response: bool, secrets: tuple[str, ...], idle: float | None
) -> ChatStreamError:
    """chatstream's error for an exception of requests, urllib3 or the socket."""
    detail = type(exc).__name__
    error: ChatStreamError
    if isinstance(exc, requests.ConnectTimeout):
        error = ConnectTimeoutError("Connecting to the server timed out.")
    elif isinstance(exc, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        error = IdleTimeoutError(
            f"No data arrived for {idle} s (idle timeout); a proxy that buffers the whole "
            "response looks like this too.",
            timeout=idle or 0.0,
            limit="idle",
        )
    elif before_response:
        error = ConnectError(
            f"Could not connect to the server, or it closed the connection before "
            f"answering ({detail})."
        )
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

"""Secrets kept out of messages, bodies, payloads and log lines.

Every credential the client sends is a secret: the API key, credential headers
(``api-key``, ``x-api-key``, ...), the user info of the base URL and of a proxy URL, and
the values of the base URL's query string (a gateway's ``?key=...``). Each is redacted in
the forms a server may echo it in: as sent, percent-decoded, and, for user info, as the
``user:password`` pair and its base64 (the form of a ``Basic`` header, which a proxy's
407 page may quote back).

::

    >>> secrets = secrets_of("sk-abc", {}, "http://u:hunter22@gw/v1?key=k1")
    >>> redact("key sk-abc, basic dTpodW50ZXIyMg==, pass hunter22, key k1", secrets)
    'key [REDACTED], basic [REDACTED], pass [REDACTED], key [REDACTED]'
    >>> redact_url("http://u:hunter22@gw/v1?key=k1")
    'http://gw/v1?key=[REDACTED]'
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from ..errors import ChatStreamError

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "redact",
    "redact_query_in_logs",
    "redact_snippet",
    "redact_url",
    "redact_value",
    "scrub_error",
    "secret_header_values",
    "secrets_of",
    "strip_query",
    "userinfo_secrets",
]

#: What a secret is replaced with.
REDACTED = "[REDACTED]"
#: Header names whose values are credentials.
SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "proxy-authorization", "cookie")
# A password shorter than this is redacted only as part of its ``user:password`` pair:
# replacing every "p" of a message would make it unreadable and protect nothing.
_MIN_ALONE = 6
# The shortest end of a cut snippet that is taken for the start of a secret.
_MIN_TAIL = 4
# Tokens of the schemes a server may echo from an Authorization header.
_SCHEME_TOKEN = re.compile(r"(?i)\b((?:bearer|basic|token)\s+)[^\s\"',;]+")


def secret_header_values(headers: Mapping[str, str]) -> list[str]:
    """The credentials among request headers (``api-key``, ``x-api-key``, ...), and the
    token of an ``Authorization`` header, so they can be redacted like the API key."""
    values = []
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS and isinstance(value, str) and value:
            values.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                values.append(token)
    return values


def userinfo_secrets(url: str) -> list[str]:
    """The credentials in a URL's user info, in every form a server may echo them: the
    ``user:password`` pair (raw and percent-decoded), its base64 (a ``Basic`` header)
    and a long enough password alone."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return []
    found: list[str] = []
    for pair in {userinfo, unquote(userinfo)}:
        user, _, password = pair.partition(":")
        found.append(pair)
        found.append(base64.b64encode(pair.encode("utf-8", "replace")).decode())
        if len(password) >= _MIN_ALONE:
            found.append(password)
        elif not password and len(user) >= _MIN_ALONE:
            found.append(user)  # a token passed as the user name (GitHub style)
    return found


def query_values(url: str) -> list[str]:
    """The values in ``url``'s query string (raw and decoded): they may be keys."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    values = {v for _, v in parse_qsl(query, keep_blank_values=True) if v}
    values |= {piece.partition("=")[2] for piece in query.split("&")} - {""}
    return list(values)


def secrets_of(
    api_key: str | None,
    headers: Mapping[str, str],
    url: str,
    proxies: Iterable[str] = (),
) -> tuple[str, ...]:
    """Every secret a client sends: the key, credential headers, the URL's user info and
    query values, and the user info of its proxies. Longest first, so that a secret
    containing another is replaced whole."""
    found = {api_key or "", *secret_header_values(headers), *query_values(url)}
    found.update(userinfo_secrets(url))
    for proxy in proxies:
        found.update(userinfo_secrets(proxy))
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and every bearer or basic token) replaced."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return _SCHEME_TOKEN.sub(r"\1" + REDACTED, text)


def _redact_cut_tail(text: str, secrets: Iterable[str]) -> str:
    """``text``, the start of something longer, with a secret it was cut inside replaced:
    its last characters may be the first ones of a secret."""
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), _MIN_TAIL - 1, -1):
            if text.endswith(secret[:size]):
                return text[:-size] + REDACTED
    return text


def redact_snippet(text: str, secrets: Iterable[str], size: int) -> str:
    """The first ``size`` characters of ``text``, redacted: the whole text is redacted
    before it is cut, so a cut never leaves part of a secret."""
    secrets = tuple(secrets)
    return _redact_cut_tail(redact(text, secrets)[:size], secrets)


def redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    """A JSON-like value (strings, lists, dicts) with the secrets removed from every
    string in it, dictionary keys included."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secrets) for v in value)
    return value


def scrub_error(error: ChatStreamError, secrets: tuple[str, ...]) -> None:
    """Remove the secrets from an error, in place: its message and every other text it
    carries (a provider error in the stream, say, may quote the key back). The partial
    response is left alone. A ``body`` is the start of a longer text, so a secret it was
    cut inside is removed too."""
    if not secrets:
        return
    for name, value in list(vars(error).items()):
        if name != "partial" and isinstance(value, (str, list, tuple, dict)):
            value = redact_value(value, secrets)
            if name == "body" and isinstance(value, str):
                value = _redact_cut_tail(value, secrets)
            setattr(error, name, value)
    error.args = tuple(redact_value(arg, secrets) for arg in error.args)


def _query_redacted(parts: Any) -> str:
    # Built by hand: urlencode() would turn the marker into "%5BREDACTED%5D".
    return "&".join(
        f"{quote(k, safe='')}={REDACTED}" for k, _ in parse_qsl(parts.query, keep_blank_values=True)
    )


def redact_url(url: str) -> str:
    """The URL with the values of its query string and any user info replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, _query_redacted(parts), ""))


def strip_query(url: str) -> str:
    """The URL without user info, query string or fragment (where a redirect points,
    say: its query may carry a signature or a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- urllib3's log lines -----------------------------------------------------------------


class _QueryFilter(logging.Filter):
    """Masks the query values of request URLs to the registered paths in urllib3's log
    records (they carry the URL as an argument of the message)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and self.paths:
            record.args = tuple(
                self._redact(arg) if isinstance(arg, str) and "?" in arg else arg for arg in args
            )
        return True

    def _redact(self, value: str) -> str:
        try:
            parts = urlsplit(value)
        except ValueError:
            return value
        if parts.path not in self.paths:
            return value
        query = _query_redacted(parts)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query or REDACTED, ""))


_query_filter = _QueryFilter()
_filter_lock = threading.Lock()
#: The urllib3 loggers whose records quote request URLs.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def redact_query_in_logs(url: str) -> None:
    """Mask the query values of requests to ``url``'s path in urllib3's log lines (some
    gateways take the key in the query string; urllib3 logs each request line at DEBUG,
    query included). Installed once; every other log line is left alone."""
    path = urlsplit(url).path
    with _filter_lock:
        if not _query_filter.paths:
            for name in _URL_LOGGERS:
                logging.getLogger(name).addFilter(_query_filter)
        _query_filter.paths.add(path)

"""Checking the arguments users pass, where they pass them.

Each function takes an argument as given to :class:`~chatstream.Client` or
:meth:`~chatstream.Client.stream` and returns it ready to use, or raises
:class:`~chatstream.ConfigurationError` naming the argument, so that a bad value fails
at the call that gave it, never later as a connection or internal error. No message
repeats a value that may be a secret.

::

    >>> api_key("  Bearer sk-abc \\n")
    'sk-abc'
    >>> api_key("") is None
    True
    >>> seconds("idle_timeout", float("inf"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chatstream.errors.ConfigurationError: idle_timeout must be a positive number ... got inf
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:  # config imports this module: at run time, inside the functions
    from .config import Retry, Timeouts

__all__ = [
    "MAX_SECONDS",
    "UNSET",
    "api",
    "api_key",
    "check_api_key",
    "count",
    "headers",
    "limits",
    "retry",
    "seconds",
    "timeouts",
    "tls_cert",
    "tls_verify",
    "wire_body",
]

#: The longest time limit accepted (a year): longer ones overflow the socket and
#: threading timeouts they become; ``None`` turns a limit off.
MAX_SECONDS = 365 * 24 * 3600

#: The default of an older keyword argument: not given.
UNSET: Any = object()


def api_key(value: str | None) -> str | None:
    """An API key as users pass it: surrounding whitespace removed, a ``Bearer``
    prefix removed (it is added when the key is sent), and an empty key taken as no key
    (``os.environ.get("OPENAI_API_KEY", "")``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError("invalid API key format: api_key must be a string or None")
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest:
        value = rest.strip()
    if not value:
        return None
    check_api_key(value)
    return value


def check_api_key(value: str) -> None:
    """Refuse a key that cannot go into a header, without ever quoting it (requests'
    own error would quote the whole header value)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError("invalid API key format: it must be a non-empty string")
    if any(not (32 <= ord(c) < 127) for c in value):
        raise ConfigurationError(
            "invalid API key format: it contains a line break, a control character or a "
            "non-ASCII character"
        )


def headers(value: Mapping[str, str] | None) -> dict[str, str]:
    """Extra request headers: a mapping of strings to strings that can be sent."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError("headers must be a mapping of header names to strings")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError("headers: every header name must be a non-empty string")
        if not isinstance(text, str):
            raise ConfigurationError(
                f"headers[{name!r}] must be a string, got a {type(text).__name__}"
            )
        if any(c in f"{name}{text}" for c in "\r\n\0"):
            raise ConfigurationError(f"header {name!r} contains a line break")
        if not _latin1(text):
            raise ConfigurationError(f"header {name!r} cannot be sent: it is not Latin-1 text")
        out[name] = text
    return out


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def seconds(name: str, value: Any, *, optional: bool = True) -> Any:
    """A time limit: a positive, finite number of seconds of at most
    :data:`MAX_SECONDS` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        what = f"a positive number of seconds of at most {MAX_SECONDS}"
        raise ConfigurationError(
            f"{name} must be {what}{', or None' if optional else ''}; got {value!r}"
        )
    return value


def count(name: str, value: Any, *, minimum: int = 1, optional: bool = False) -> Any:
    """A whole number of at least ``minimum`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"{name} must be a whole number of at least {minimum}"
            f"{', or None' if optional else ''}; got {value!r}"
        )
    return value


def limits(
    defaults: Any,
    max_choices: int | None,
    max_tool_calls: int | None,
    max_total_bytes: int | None,
) -> dict[str, Any]:
    """The parser's limits for one stream: those given (``None``: not given), checked,
    else the ``defaults``' attributes of the same names (the client's)."""
    given = {
        "max_choices": max_choices,
        "max_tool_calls": max_tool_calls,
        "max_total_bytes": max_total_bytes,
    }
    out = {"max_event_bytes": defaults.max_event_bytes}
    for name, value in given.items():
        out[name] = getattr(defaults, name) if value is None else count(name, value)
    return out


def tls_verify(verify: bool | str | os.PathLike[str] | None) -> bool | str | None:
    """How to check the server's certificate: a bool, the path of an existing CA bundle
    (a file or a directory), or ``None`` (the session's own setting)."""
    if verify is None or isinstance(verify, bool):
        return verify
    if not isinstance(verify, (str, os.PathLike)):
        raise ConfigurationError("verify must be True, False or the path of a CA bundle")
    path = os.fspath(verify)
    if not os.path.exists(path):
        raise ConfigurationError(f"verify: no CA bundle at {path!r}")
    return path


def tls_cert(
    cert: str | os.PathLike[str] | tuple[str, str] | None,
) -> str | tuple[str, str] | None:
    """A client certificate: the path of an existing file, or a ``(certificate, key)``
    pair of them, or ``None`` (the session's own setting)."""
    if cert is None:
        return None
    paths = cert if isinstance(cert, tuple) else (cert,)
    if not 1 <= len(paths) <= 2 or not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise ConfigurationError("cert must be a path or a (certificate, key) pair of paths")
    found = tuple(str(os.fspath(p)) for p in paths)
    for path in found:
        if not os.path.isfile(path):
            raise ConfigurationError(f"cert: no file at {path!r}")
    return found[0] if len(found) == 1 else (found[0], found[1])


def timeouts(
    timeouts: float | Timeouts | None, idle: float | None, connect: float | None
) -> Timeouts:
    """The client's time limits from ``timeouts=`` (a :class:`~chatstream.Timeouts` or
    the idle limit in seconds), or from the older ``idle_timeout=`` and
    ``connect_timeout=`` (:data:`UNSET` when not given), never from both."""
    from .config import Timeouts

    older = Timeouts()
    if idle is not UNSET:
        older = older.replace(idle=seconds("idle_timeout", idle))
    if connect is not UNSET:
        older = older.replace(connect=seconds("connect_timeout", connect))
    if timeouts is None:
        return older
    if idle is not UNSET or connect is not UNSET:
        raise ConfigurationError("pass timeouts= or idle_timeout=/connect_timeout=, not both")
    if isinstance(timeouts, Timeouts):
        return timeouts
    return Timeouts(idle=seconds("timeouts", timeouts, optional=False))


def retry(retry: int | Retry | None, max_retries: int) -> Retry:
    """The client's retry policy from ``retry=`` (a :class:`~chatstream.Retry` or a
    number of retries), or from the older ``max_retries=``, never from both."""
    from .config import Retry

    if retry is None:
        return Retry() if max_retries is UNSET else Retry(max_retries=max_retries)
    if max_retries is not UNSET:
        raise ConfigurationError("pass retry= or max_retries=, not both")
    if isinstance(retry, Retry):
        return retry
    if isinstance(retry, bool) or not isinstance(retry, int):
        raise ConfigurationError("retry must be a Retry or a number of retries")
    return Retry(max_retries=retry)


#: The body field that holds the conversation on each wire, and the other wire's.
_WIRE_FIELDS = {"chat": ("messages", "input"), "responses": ("input", "messages")}


def api(value: Any) -> str:
    """The wire named by ``api``: ``"chat"`` or ``"responses"``.

    Raises:
        ConfigurationError: It is neither.
    """
    if value not in _WIRE_FIELDS:
        raise ConfigurationError(f'api must be "chat" or "responses", not {value!r}')
    return str(value)


def wire_body(api: str, body: Any) -> None:
    """Check that ``body`` is shaped for the wire ``api`` posts to.

    Raises:
        ConfigurationError: It carries the other wire's conversation field and not this
            one's (``messages`` sent to ``/responses``, ``input`` to chat).
    """
    if not isinstance(body, Mapping):
        return  # build_body says what is wrong with it
    own, other = _WIRE_FIELDS[api]
    if other in body and own not in body:
        path = "/responses" if api == "responses" else "/chat/completions"
        want = "Responses API" if api == "responses" else "Chat Completions"
        switch = 'api="chat"' if api == "responses" else 'api="responses"'
        raise ConfigurationError(
            f'the request body has "{other}" but no "{own}": {path} (the {want} wire) '
            f'reads "{own}". Send "{own}", or use {switch} for a body shaped for the '
            "other wire."
        )

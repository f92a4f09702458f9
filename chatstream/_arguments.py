"""Checking the arguments users pass, where they pass them.

Each function takes an argument as given to :class:`~chatstream.Client`, to
:meth:`~chatstream.Client.stream` or to a configuration value, and returns it ready to
use, or raises :class:`~chatstream.ConfigurationError` naming the argument, so that a
bad value fails at the call that gave it, never later as a connection or internal
error. No message repeats a value that may be a secret. This module knows no
configuration type (:mod:`chatstream.config` builds on it, never the other way).

::

    >>> api_key("  Bearer sk-abc \\n")
    'sk-abc'
    >>> api_key("") is None
    True
    >>> seconds("Timeouts.idle", float("inf"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chatstream.errors.ConfigurationError: Timeouts.idle must be a positive number ... got inf
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import ConfigurationError

__all__ = [
    "MAX_SECONDS",
    "api_key",
    "check_api_key",
    "count",
    "given",
    "headers",
    "seconds",
]

_T = TypeVar("_T")

#: The longest time limit accepted (a year): longer ones overflow the socket and
#: threading timeouts they become; ``None`` turns a limit off.
MAX_SECONDS = 365 * 24 * 3600


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


def given(kind: type[_T], name: str, value: _T | None) -> _T:
    """A configuration value passed as ``name``: ``value`` itself, or the defaults of
    ``kind`` when it is ``None``."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ConfigurationError(
            f"{name} must be a {kind.__name__} or None; got a {type(value).__name__}"
        )
    return value

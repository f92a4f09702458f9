"""What the command line says about the client's failures and retries, in its own terms:
the URL it tried, the cause of a connection failure, the option to change.

The library's messages cannot know the command line (``--base-url``, ``--max-retries``);
these lines add what they cannot, from the error's type, its reason and the
settings the command was given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._shell.http import CONNECT_REASONS, connect_cause, host_port, names_stream_options
from .._shell.redact import redact_url
from ..client import Telemetry
from ..errors import (
    APIStatusError,
    AuthenticationError,
    ChatStreamError,
    ConnectError,
    ContextWindowExceeded,
    IdleTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)

__all__ = ["Advice", "RetryNotes"]


@dataclass(frozen=True)
class Advice:
    """The settings a command ran with, to say what to change when something fails.

    Attributes:
        url: The URL requests go to (credentials are removed before it is shown).
        api_key_env: The environment variable the key is read from.
        key_sent: Whether a key was sent.
        connect_timeout: The connect timeout, in seconds.
    """

    url: str
    api_key_env: str = "OPENAI_API_KEY"
    key_sent: bool = False
    connect_timeout: float = 10.0

    @property
    def shown_url(self) -> str:
        """:attr:`url` without user info or query values."""
        return redact_url(self.url)

    def describe(self, error: ChatStreamError) -> str:
        """The line shown for ``error``: what happened, and what to try."""
        if isinstance(error, ConnectError):
            return self._connect(error)
        hint = self._hint(error)
        return error.message + (f" {hint}" if hint else "")

    def brief(self, error: ChatStreamError) -> str:
        """What happened, without advice (for a note about a retry)."""
        if isinstance(error, ConnectError):
            if error.reason is None:
                return f"Could not connect to {self.shown_url}."
            reason = CONNECT_REASONS.get(error.reason, error.reason)
            return f"Could not connect to {self.shown_url} ({reason})."
        return error.message

    def _connect(self, error: ConnectError) -> str:
        # The cause in the library's words (as str(error) has it), the URL and the option
        # to change in the command's.
        url = self.shown_url
        parts = urlsplit(url)
        cause = connect_cause(error.reason, host_port(self.url), self.connect_timeout)
        if cause is None:
            return f"{error.message} URL: {url}. Is a server running there? Check --base-url."
        advice = {
            "unknown_host": "Check --base-url.",
            "refused": "Is the server running? Check --base-url.",
            "timeout": "Check --base-url, or the network.",
            "closed": "Check --base-url (http:// or https://?).",
        }.get(error.reason or "", "")
        if error.reason == "tls" and parts.scheme == "https":
            plain = "http://" + _api_root(url)[len("https://") :]
            advice = f"Is it a plain-HTTP server? Try --base-url {plain}"
        return f"Could not connect to {url}: {cause}." + (f" {advice}" if advice else "")

    def _hint(self, error: ChatStreamError) -> str | None:
        if isinstance(error, NotFoundError):
            hint = f"The URL requested was {self.shown_url}."
            if urlsplit(self.url).path.rstrip("/").endswith("/chat/completions/chat/completions"):
                return f"{hint} --base-url is the API root: drop /chat/completions from its end."
            return f"{hint} Check --base-url (the API root) and --model."
        if isinstance(error, UnexpectedResponseError):
            return (
                f"The URL requested was {self.shown_url}. Check --base-url: it is the API "
                "root, e.g. https://api.openai.com/v1."
            )
        if isinstance(error, AuthenticationError):
            if self.key_sent:
                return f"The key was read from ${self.api_key_env} (--api-key-env)."
            return f"No key was sent: ${self.api_key_env} is not set (--api-key-env)."
        if isinstance(error, IdleTimeoutError):
            return "A slow model may need a longer --idle-timeout."
        if isinstance(error, ContextWindowExceeded):
            return "Lower --max-tokens, or shorten the conversation."
        if isinstance(error, (RateLimitError, ServerError)):
            return "--max-retries sets how often it is tried again."
        return None


# How a note about a retry names each ConnectError.reason.
def _api_root(url: str) -> str:
    suffix = "/chat/completions"
    return url[: -len(suffix)] if url.endswith(suffix) else url


class RetryNotes(Telemetry):
    """Says on standard error what is being retried and for how long, as the client
    waits (it would otherwise wait in silence: a ``Retry-After: 20`` is 20 s of nothing).

    ``attempts`` is how many requests the retry policy allows in all, for the
    ``(attempt 2 of 3)`` of each note.
    """

    def __init__(
        self,
        note: Callable[[str], None],
        describe: Callable[[ChatStreamError], str] | None = None,
        *,
        attempts: int | None = None,
    ) -> None:
        self._note = note
        self._describe = describe or (lambda error: error.message)
        self._attempts = attempts

    def on_retry(self, context: Any, attempt: int, delay: float, error: ChatStreamError) -> None:
        if delay == 0.0 and isinstance(error, APIStatusError) and names_stream_options(error):
            self._note("· the server rejects stream_options; sending the request without it")
            return
        of = "" if self._attempts is None else f" of {self._attempts}"
        self._note(f"· {self._describe(error)} retrying in {delay:.2f} s (attempt {attempt}{of})")

"""Every error chatstream raises, rooted in :class:`ChatStreamError`.

::

    ChatStreamError
    ├── StreamError                    the stream started, then ended badly
    │   ├── IncompleteStreamError      ended with neither [DONE] nor a finish_reason
    │   ├── ContextWindowExceeded      the conversation does not fit the model's context
    │   ├── ProviderError              an error object or an "event: error" frame in the stream
    │   ├── EventTooLargeError         one SSE event over the size limit
    │   ├── LimitExceededError         too many choices, tool calls or bytes
    │   ├── IdleTimeoutError           nothing arrived for too long (also a TimeoutError)
    │   ├── StreamConnectionError      the connection broke (also a ConnectionError)
    │   │   └── ConnectError           ... before any response arrived
    │   │       └── ConnectTimeoutError    (also a TimeoutError)
    │   ├── StreamClosedError          closed by the caller
    │   ├── CallbackError              an on_event callback raised
    │   └── OutputError                a typed answer (output=T) that cannot be had
    │       ├── OutputRefusedError         the model refused
    │       ├── OutputTruncatedError       the answer was cut short
    │       └── OutputValidationError      the answer does not fit the type
    ├── APIStatusError                 the server answered with an HTTP error status
    │   ├── BadRequestError            400, 422
    │   │   └── ContextLengthExceededError  ... the request is over the context window
    │   │                                   (also a ContextWindowExceeded)
    │   ├── AuthenticationError        401
    │   ├── PermissionDeniedError      403
    │   ├── NotFoundError              404
    │   ├── RateLimitError             429 (with retry_after)
    │   └── ServerError                5xx
    ├── ToolArgumentsError             a tool call's arguments do not fit the tool
    ├── MaxStepsExceededError          a tool loop reached its step limit
    ├── RedirectError                  a 3xx, which chatstream never follows
    ├── UnexpectedResponseError        a 200 that is not an event stream
    ├── ThreadLimitError               no thread for the stream (also a RuntimeError)
    └── ConfigurationError             bad arguments (also a ValueError)

Every error that ends a stream carries ``partial``: the :class:`~chatstream.Response` as far
as it got, so nothing already received is lost. ``kind`` is a short stable name for the
error, the one ``chatstream replay --result`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .response import Response

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ChatStreamError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ContextLengthExceededError",
    "ContextWindowExceeded",
    "EventTooLargeError",
    "IdleTimeoutError",
    "IncompleteStreamError",
    "LimitExceededError",
    "MaxStepsExceededError",
    "NotFoundError",
    "OutputError",
    "OutputRefusedError",
    "OutputTruncatedError",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "RedirectError",
    "ServerError",
    "StreamClosedError",
    "StreamConnectionError",
    "StreamError",
    "ThreadLimitError",
    "ToolArgumentsError",
    "UnexpectedResponseError",
]


class ChatStreamError(Exception):
    """Base of every chatstream error.

    Attributes:
        message: What happened, in one sentence.
        partial: The response as far as it got when the error ended the stream (text,
            reasoning, tool calls, usage received so far), or ``None`` when no stream
            was started.
    """

    #: A short stable name for this kind of error.
    kind: str = "error"

    def __init__(self, message: str, *, partial: Response | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class StreamError(ChatStreamError):
    """The stream started, then ended in an error."""


class IncompleteStreamError(StreamError):
    """The stream ended with neither ``[DONE]`` nor a ``finish_reason``: it was cut off."""

    kind = "incomplete_stream"


class ContextWindowExceeded(StreamError):
    """The conversation does not fit the model's context window.

    Catch this one class for both ways a provider says so: the server refused the
    request as too long (an HTTP error: :class:`ContextLengthExceededError`, which also
    carries the status, body and headers), or the model stopped at its token limit
    (``finish_reason: "length"`` in the specification's mode,
    ``StreamOptions(length_is_error=True)``; the text produced so far is in
    ``partial``). By default that finish is a normal end, and :attr:`Response.truncated
    <chatstream.Response.truncated>` says the answer was cut short.
    """

    kind = "context_window_exceeded"


class ProviderError(StreamError):
    """The provider reported an error inside the stream.

    Attributes:
        type: The provider's error type (e.g. ``"server_error"``), if it gave one.
        code: The provider's error code, if it gave one.
        param: The request parameter the error is about, if named.
        payload: The error object as the provider sent it.
    """

    kind = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: str | int | None = None,
        param: str | None = None,
        payload: Any = None,
        partial: Response | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.type = type
        self.code = code
        self.param = param
        self.payload = payload


class LimitExceededError(StreamError):
    """The response went past one of the client's limits against hostile volume;
    reading stopped there and ``partial`` keeps what came before.

    Attributes:
        limit: Which limit: ``"max_choices"``, ``"max_tool_calls"`` (in one choice) or
            ``"max_total_bytes"``.
        maximum: Its value.
    """

    kind = "limit_exceeded"

    def __init__(
        self, message: str, *, limit: str, maximum: int, partial: Response | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.limit = limit
        self.maximum = maximum


class EventTooLargeError(StreamError):
    """One SSE event grew past ``limit`` bytes; reading stopped there."""

    kind = "event_too_large"

    def __init__(self, message: str, *, limit: int, partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.limit = limit


class IdleTimeoutError(StreamError, TimeoutError):
    """Nothing arrived within a time limit.

    Attributes:
        timeout: The limit that was reached, in seconds.
        limit: Which limit: ``"idle"`` (no line completed by the server: an event's line
            or a keep-alive comment; bytes that never finish a line do not count),
            ``"event"`` (no data event) or ``"total"`` (the whole stream).
    """

    kind = "idle_timeout"

    def __init__(
        self, message: str, *, timeout: float, limit: str = "idle", partial: Response | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.timeout = timeout
        self.limit = limit


class StreamConnectionError(StreamError, ConnectionError):
    """The connection failed or broke while the response was being read."""

    kind = "connection"


class ConnectError(StreamConnectionError):
    """No connection could be made, or it failed before any response arrived.

    Attributes:
        reason: Why, when it is known: ``"unknown_host"`` (the host name did not
            resolve), ``"refused"`` (nothing listens at that address and port),
            ``"tls"`` (the TLS handshake or the certificate check failed), ``"closed"``
            (the server closed or reset the connection before answering) or
            ``"timeout"`` (connecting took longer than the connect timeout); ``None``
            when the cause is none of these.
    """

    kind = "connect"

    def __init__(
        self, message: str, *, reason: str | None = None, partial: Response | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.reason = reason


class ConnectTimeoutError(ConnectError, TimeoutError):
    """Connecting took longer than the connect timeout (``reason`` is ``"timeout"``)."""

    kind = "connect_timeout"

    def __init__(
        self, message: str, *, reason: str | None = "timeout", partial: Response | None = None
    ) -> None:
        super().__init__(message, reason=reason, partial=partial)


class StreamClosedError(StreamError):
    """The stream was closed by the caller before it ended."""

    kind = "closed"


class CallbackError(StreamError):
    """An ``on_event`` callback raised; the original exception is ``__cause__``."""

    kind = "callback_error"


class OutputError(StreamError):
    """A typed answer (``output=T``) that cannot be had; ``partial`` is the response.

    Attributes:
        raw: The answer's text as received (``partial.content``).
    """

    kind = "output"

    def __init__(self, message: str, *, raw: str = "", partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.raw = raw


class OutputRefusedError(OutputError):
    """The model refused to answer in the type asked for.

    Attributes:
        refusal: Its refusal text.
    """

    kind = "output_refused"

    def __init__(
        self, message: str, *, refusal: str, raw: str = "", partial: Response | None = None
    ) -> None:
        super().__init__(message, raw=raw, partial=partial)
        self.refusal = refusal


class OutputTruncatedError(OutputError):
    """The typed answer was cut short (``finish_reason`` ``"length"`` or
    ``"content_filter"``), so it is not a whole value.

    Attributes:
        finish_reason: The finish reason that cut it.
    """

    kind = "output_truncated"

    def __init__(
        self, message: str, *, finish_reason: str, raw: str = "", partial: Response | None = None
    ) -> None:
        super().__init__(message, raw=raw, partial=partial)
        self.finish_reason = finish_reason


class OutputValidationError(OutputError):
    """The answer is not JSON, or does not fit the type asked for.

    Attributes:
        errors: The validator's errors: dicts with ``loc`` (the path to the value, a
            list of keys and indexes), ``msg`` and ``type``, as pydantic reports them
            (the JSON Schema validator reports the same keys).
    """

    kind = "output_validation"

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]],
        raw: str = "",
        partial: Response | None = None,
    ) -> None:
        super().__init__(message, raw=raw, partial=partial)
        self.errors = errors


class ToolArgumentsError(ChatStreamError):
    """A tool call's arguments are not JSON, or do not fit the tool's parameters.

    Attributes:
        name: The tool's name.
        arguments: The arguments as the model wrote them.
        errors: The validator's errors (as :class:`OutputValidationError` has them).
    """

    kind = "tool_arguments"

    def __init__(
        self, message: str, *, name: str, arguments: str, errors: list[dict[str, Any]]
    ) -> None:
        super().__init__(message)
        self.name = name
        self.arguments = arguments
        self.errors = errors


class MaxStepsExceededError(ChatStreamError):
    """A tool loop reached its step limit while the model was still calling tools.

    ``partial`` is the last response (with the calls that were not run).

    Attributes:
        max_steps: The limit: the most model responses of one turn.
        messages: The conversation so far, valid for a next request: the calls that were
            not run are answered with a result that says so.
    """

    kind = "max_steps"

    def __init__(
        self,
        message: str,
        *,
        max_steps: int,
        messages: list[dict[str, Any]],
        partial: Response | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.max_steps = max_steps
        self.messages = messages


class APIStatusError(ChatStreamError):
    """The server answered with an HTTP error status.

    Attributes:
        status: The HTTP status code.
        type: The provider's error type from a JSON error body, if any.
        code: The provider's error code from a JSON error body, if any.
        param: The request parameter the error is about, if named.
        body: The start of the response body, with credentials removed.
        headers: The response headers.
        request_id: The provider's request id header, if any.
    """

    kind = "http_status"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: str | int | None = None,
        param: str | None = None,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        partial: Response | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.body = body
        self.headers = dict(headers or {})
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400 or 422: the server rejected the request."""


class ContextLengthExceededError(BadRequestError, ContextWindowExceeded):
    """The server refused the request because it does not fit the model's context
    window: OpenAI's ``code: "context_length_exceeded"``, llama.cpp's
    ``exceed_context_size_error``, or the equivalent message of another provider (vLLM,
    Anthropic-compatible servers, Mistral, Gemini, OpenRouter, ...).

    Both a :class:`BadRequestError` (with every fact of :class:`APIStatusError`:
    ``status``, ``body``, ``headers``, ``code``, ...) and a
    :class:`ContextWindowExceeded`: shorten the conversation and send it again.
    """

    kind = "context_window_exceeded"


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: wrong base URL, or an unknown model."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After`` or
            ``retry-after-ms``), or ``None``.
    """

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed."""


class RedirectError(ChatStreamError):
    """The server answered with a redirect. chatstream never follows one, because it would
    carry the request and its credentials elsewhere.

    Attributes:
        status: The HTTP status code.
        location: Where it pointed, without its query string.
    """

    kind = "redirect"

    def __init__(
        self, message: str, *, status: int, location: str, partial: Response | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.status = status
        self.location = location


class UnexpectedResponseError(ChatStreamError):
    """The server answered 200, but not with an event stream (an HTML page from a proxy,
    say).

    Attributes:
        status: The HTTP status code.
        content_type: The ``Content-Type`` it sent.
        body: The start of the body, with credentials removed.
    """

    kind = "unexpected_response"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        content_type: str,
        body: str = "",
        partial: Response | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status = status
        self.content_type = content_type
        self.body = body


class ThreadLimitError(ChatStreamError, RuntimeError):
    """No thread could be started for the stream: the process is at its thread limit
    (``ulimit -u``, a container's ``pids.max``). Raised by the stream (iterating it, or
    :meth:`~chatstream.ChatStream.result`) at once, before anything was sent; the next
    stream tries again. ``__cause__`` is the ``RuntimeError`` of ``Thread.start()``."""

    kind = "thread_limit"


class ConfigurationError(ChatStreamError, ValueError):
    """An argument is invalid (the message never repeats a secret)."""

    kind = "configuration"

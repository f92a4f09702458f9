"""Every error chatstream raises, rooted in :class:`ChatStreamError`.

::

    ChatStreamError
    ├── StreamError                    the stream started, then ended badly
    │   ├── IncompleteStreamError      ended with neither [DONE] nor a finish_reason
    │   ├── LengthFinishError          finish_reason "length" with length_is_error=True
    │   │                              (also a ContextWindowExceeded)
    │   ├── ProviderError              an error object or an "event: error" frame in the stream
    │   │   ├── ProviderContextWindowError  the response failed: over the context window
    │   │   │                                   (also a ContextWindowExceeded)
    │   │   ├── ProviderRateLimitError the response failed: rate limited (with retry_after)
    │   │   └── QuotaExceededError     the response failed: the account's quota is used up
    │   ├── LimitExceededError         a limit against hostile volume was passed
    │   │   ├── EventTooLargeError     one SSE event over max_event_bytes
    │   │   ├── ResponseTooLargeError  the body over max_total_bytes
    │   │   ├── TooManyChoicesError    more than max_choices choices
    │   │   └── TooManyToolCallsError  more than max_tool_calls calls in one choice
    │   ├── StreamTimeoutError         a time limit passed (also a TimeoutError)
    │   │   ├── IdleTimeoutError       no bytes for the idle limit
    │   │   ├── EventTimeoutError      no data event for the event limit
    │   │   └── TotalTimeoutError      the whole stream over the total deadline
    │   ├── StreamConnectionError      the connection broke mid-stream (also a ConnectionError)
    │   ├── StreamClosedError          closed by the caller
    │   ├── CallbackError              a callback of yours raised
    │   └── OutputError                a typed answer (output=T) that cannot be had
    │       ├── OutputRefusedError     the model refused
    │       ├── OutputTruncatedError   the answer was cut short
    │       └── OutputValidationError  the answer does not fit the type
    ├── ContextWindowExceeded          the conversation does not fit the model's context
    ├── ConnectError                   no connection, or closed before any response
    │   │                              (also a ConnectionError)
    │   └── ConnectTimeoutError        connecting took too long (also a TimeoutError)
    ├── APIStatusError                 the server answered with an HTTP error status
    │   ├── BadRequestError            400, 422
    │   │   └── ContextLengthExceededError  the request is over the context window
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

A class is drawn under its first base; "also a" names its others. ``except
StreamError`` catches what went wrong once the answer was streaming, never a refused
request (:class:`APIStatusError`) nor a connection that was never made
(:class:`ConnectError`); ``except ConnectionError`` and ``except TimeoutError`` catch
both sides.

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
    "EventTimeoutError",
    "EventTooLargeError",
    "IdleTimeoutError",
    "IncompleteStreamError",
    "LengthFinishError",
    "LimitExceededError",
    "MaxStepsExceededError",
    "NotFoundError",
    "OutputError",
    "OutputRefusedError",
    "OutputTruncatedError",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProviderContextWindowError",
    "ProviderError",
    "ProviderRateLimitError",
    "QuotaExceededError",
    "RateLimitError",
    "RedirectError",
    "ResponseTooLargeError",
    "ServerError",
    "StreamClosedError",
    "StreamConnectionError",
    "StreamError",
    "StreamTimeoutError",
    "ThreadLimitError",
    "TooManyChoicesError",
    "TooManyToolCallsError",
    "ToolArgumentsError",
    "TotalTimeoutError",
    "UnexpectedResponseError",
]


class ChatStreamError(Exception):
    """Base of every chatstream error; never raised as this class itself.

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
    """The stream started (the server answered 200 with an event stream), then ended in
    an error; ``partial`` holds what arrived before it.

    Raised as this class itself only for a bug in chatstream (the original exception is
    ``__cause__``); every expected failure is one of its subclasses.
    """


class IncompleteStreamError(StreamError):
    """Raised when the body ends with neither ``[DONE]`` nor a ``finish_reason`` (cut off
    by a proxy, say), or a JSON completion is cut off mid-way."""

    kind = "incomplete_stream"


class ContextWindowExceeded(ChatStreamError):
    """The conversation does not fit the model's context window.

    Never raised as this class itself: catch it for both ways a provider says so. The
    server refused the request as too long: :class:`ContextLengthExceededError`, an
    HTTP error (it carries the status, body and headers). Or the model stopped at its
    token limit while answering and ``StreamOptions(length_is_error=True)`` asked for
    that to be an error: :class:`LengthFinishError`, a stream error (the text produced
    so far is in ``partial``). By default that finish is a normal end, and :attr:`Response.truncated
    <chatstream.Response.truncated>` says the answer was cut short.
    """

    kind = "context_window_exceeded"


class LengthFinishError(StreamError, ContextWindowExceeded):
    """Raised at the end of a stream with ``finish_reason: "length"`` when
    ``StreamOptions(length_is_error=True)`` (the specification's mode); by default that
    finish is a normal end. Also a :class:`ContextWindowExceeded`."""

    kind = "context_window_exceeded"


class ProviderError(StreamError):
    """Raised when the provider reports an error inside the stream: a chunk that is an
    error object, an ``event: error`` frame, or ``finish_reason: "error"``.

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


class ProviderContextWindowError(ProviderError, ContextWindowExceeded):
    """Raised when the provider fails the response, inside the stream, because the
    conversation does not fit the model's context window (the Responses wire's
    ``response.failed`` with ``code: "context_length_exceeded"``): a
    :class:`ProviderError` and a :class:`ContextWindowExceeded`."""

    kind = "context_window_exceeded"


class ProviderRateLimitError(ProviderError):
    """Raised when the provider fails the response for a rate limit, inside the stream
    (the Responses wire's ``response.failed`` with ``code: "rate_limit_exceeded"``).

    Attributes:
        retry_after: The wait its message asks for ("try again in 1.5s", "... in 20ms"),
            in seconds, or ``None``.
    """

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QuotaExceededError(ProviderError):
    """Raised when the provider fails the response because the account's quota is used
    up (``code: "insufficient_quota"``): retrying will not help."""

    kind = "quota_exceeded"


class LimitExceededError(StreamError):
    """The response went past one of the limits against hostile volume; reading stopped
    there and ``partial`` keeps what came before. Never raised as this class itself:
    each limit has its subclass.

    Attributes:
        limit: The limit's value (a count, or a number of bytes).
        name: The option that sets it (``"max_event_bytes"``, ``"max_total_bytes"``,
            ``"max_choices"`` or ``"max_tool_calls"``).
    """

    kind = "limit_exceeded"
    name = ""

    def __init__(self, message: str, *, limit: int, partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.limit = limit
        # Set on the error itself too, so that ErrorInfo.attributes records it.
        self.name = type(self).name


class EventTooLargeError(LimitExceededError):
    """Raised when one SSE event (or a whole JSON completion) grows past
    ``max_event_bytes``, without buffering more."""

    kind = "event_too_large"
    name = "max_event_bytes"


class ResponseTooLargeError(LimitExceededError):
    """Raised when the body grows past ``max_total_bytes``; ``partial`` holds every byte
    allowed."""

    kind = "response_too_large"
    name = "max_total_bytes"


class TooManyChoicesError(LimitExceededError):
    """Raised when a chunk opens one choice more than ``max_choices``."""

    kind = "too_many_choices"
    name = "max_choices"


class TooManyToolCallsError(LimitExceededError):
    """Raised when one choice opens one tool call more than ``max_tool_calls``; the calls
    within the limit are kept in ``partial``."""

    kind = "too_many_tool_calls"
    name = "max_tool_calls"


class StreamTimeoutError(StreamError, TimeoutError):
    """A time limit of :class:`~chatstream.Timeouts` passed while the response was being
    read. Never raised as this class itself: each limit has its subclass.

    Attributes:
        timeout: The limit that was reached, in seconds.
        name: Its field of :class:`~chatstream.Timeouts`: ``"idle"`` (no line completed by
            the server: an event's line or a keep-alive comment; bytes that never finish a
            line do not count), ``"event"`` (no data event) or ``"total"`` (the whole
            stream).
    """

    kind = "timeout"
    name = ""

    def __init__(self, message: str, *, timeout: float, partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.timeout = timeout
        # Set on the error itself too, so that ErrorInfo.attributes records it.
        self.name = type(self).name


class IdleTimeoutError(StreamTimeoutError):
    """Raised when no bytes arrive for ``Timeouts.idle`` seconds while the worker waits
    for the server (for the body, or for the response headers, whose whole wait is
    bounded by ``idle`` + 1 s)."""

    kind = "idle_timeout"
    name = "idle"


class EventTimeoutError(StreamTimeoutError):
    """Raised when no data event arrives for ``Timeouts.event`` seconds of waiting for
    the server (keep-alive comments do not count)."""

    kind = "event_timeout"
    name = "event"


class TotalTimeoutError(StreamTimeoutError):
    """Raised when the whole stream, from sending the request, takes longer than
    ``Timeouts.total`` seconds."""

    kind = "total_timeout"
    name = "total"


class StreamConnectionError(StreamError, ConnectionError):
    """Raised when the connection breaks while the body is being read (a reset, or a
    body that cannot be decompressed)."""

    kind = "connection"


class StreamClosedError(StreamError):
    """Raised when the caller closes the stream (``close()``, leaving a ``with`` block,
    dropping the stream) before it ended."""

    kind = "closed"


class CallbackError(StreamError):
    """Raised when code of yours called by the stream raises, which stops the stream: an
    ``on_event`` callback (called directly or through ``dispatch``), ``dispatch``
    itself, ``on_bytes``, or a telemetry hook that raises a ``BaseException`` that is no
    ``Exception`` (one that raises an ``Exception`` is logged and the stream goes on).
    The original exception is ``__cause__``. ``on_end`` is called after the end, so
    what it raises is logged instead.
    """

    kind = "callback_error"


class OutputError(StreamError):
    """Raised by a typed stream (``output=T``) when its answer cannot be had as a value
    of the type; ``partial`` is the response.

    Attributes:
        raw: The answer's text as received (``partial.content``).
    """

    kind = "output"

    def __init__(self, message: str, *, raw: str = "", partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.raw = raw


class OutputRefusedError(OutputError):
    """Raised when the model refused to answer in the type asked for.

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
    """Raised when the typed answer was cut short (``finish_reason`` ``"length"`` or
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
    """Raised when the typed answer is not JSON, or does not fit the type asked for.

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
    """Raised when a tool call's arguments are not JSON, or do not fit the tool's
    parameters.

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
    """Raised when a tool loop reaches its step limit while the model is still calling
    tools.

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


class ConnectError(ChatStreamError, ConnectionError):
    """Raised when no connection could be made, or it failed before any response
    arrived, after the retries: no stream started, so this is no :class:`StreamError`.

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
    """Raised when connecting takes longer than ``Timeouts.connect``, after the retries
    (``reason`` is ``"timeout"``)."""

    kind = "connect_timeout"

    def __init__(
        self, message: str, *, reason: str | None = "timeout", partial: Response | None = None
    ) -> None:
        super().__init__(message, reason=reason, partial=partial)


class APIStatusError(ChatStreamError):
    """Raised when the server answers with an HTTP error status (after the retries, for
    the statuses retried); no stream started. Raised as this class for a status no
    subclass covers (405, 413, ...).

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
    """Raised for HTTP 400 or 422: the server rejected the request."""


class ContextLengthExceededError(BadRequestError, ContextWindowExceeded):
    """Raised when the server refuses the request because it does not fit the model's
    context window: OpenAI's ``code: "context_length_exceeded"``, llama.cpp's
    ``exceed_context_size_error``, or the equivalent message of another provider (vLLM,
    Anthropic-compatible servers, Mistral, Gemini, OpenRouter, ...).

    Both a :class:`BadRequestError` (with every fact of :class:`APIStatusError`:
    ``status``, ``body``, ``headers``, ``code``, ...) and a
    :class:`ContextWindowExceeded`: shorten the conversation and send it again.
    """

    kind = "context_window_exceeded"


class AuthenticationError(APIStatusError):
    """Raised for HTTP 401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """Raised for HTTP 403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """Raised for HTTP 404: a wrong base URL, or an unknown model."""


class RateLimitError(APIStatusError):
    """Raised for HTTP 429 (too many requests), after the retries.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After`` or
            ``retry-after-ms``), or ``None``.
    """

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """Raised for HTTP 5xx (the server failed), after the retries."""


class RedirectError(ChatStreamError):
    """Raised when the server answers with a redirect (3xx). chatstream never follows
    one, because it would carry the request and its credentials elsewhere.

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
    """Raised when the server answers 200 with neither an event stream nor a JSON
    completion (an HTML page from a proxy, say), or with a JSON body that is not a
    completion.

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
    """Raised by ``Client(...)`` or ``client.stream(...)``, before any thread starts,
    when an argument is invalid (the message never repeats a secret)."""

    kind = "configuration"

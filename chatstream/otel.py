"""OpenTelemetry for chatstream: a span and the metrics of the GenAI semantic conventions
for every stream (``pip install 'chatstream[otel]'``; see :doc:`/observability`).

The conventions followed are those of OpenTelemetry semantic conventions
:data:`SEMCONV_VERSION` (GenAI client spans and metrics), whose names are still marked
as in development. This module is the only one that imports ``opentelemetry``, and
``import chatstream`` never imports it.

Both wires are reported alike: a Responses API stream is a ``chat`` operation too (the
conventions' value for OpenAI's chat APIs), with ``openai.api.type`` ``"responses"``
instead of ``"chat_completions"`` for the ``openai`` provider; its request parameters
are read from the Responses body (``max_output_tokens``, ``text.format``,
``instructions`` and ``input`` when content is captured), and its finish reasons are the
Responses ones as chatstream reports them (``"completed"``, or the reason of
``response.incomplete`` such as ``"max_output_tokens"``).

Reported errors (``error.type``): the :attr:`~chatstream.ChatStreamError.kind` of the
error a stream ended in (``"rate_limited"``, ``"idle_timeout"``, ``"closed"`` for a stream
closed by the caller, ...; see :doc:`/errors`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from ._version import __version__
from .errors import ChatStreamError
from .events import ResponseEvent, is_content
from .response import ChoiceResult, Response
from .telemetry import StreamStart, Telemetry

__all__ = [
    "DURATION_BUCKETS",
    "FALLBACK_PROVIDER",
    "SEMCONV_VERSION",
    "TOKEN_BUCKETS",
    "OtelTelemetry",
    "provider_name",
]

#: The version of the OpenTelemetry semantic conventions followed.
SEMCONV_VERSION = "1.41.0"
_SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: The conventions' bucket boundaries for durations in seconds (operation duration, time
#: to first chunk, time per output chunk).
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
#: The conventions' bucket boundaries for token counts.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

#: ``gen_ai.provider.name`` for a host the table of :func:`provider_name` does not know:
#: chatstream speaks OpenAI's Chat Completions, and the attribute names the telemetry's
#: flavour (``server.address`` says which server it was). Give ``provider_name=`` to
#: :class:`OtelTelemetry` to name another.
FALLBACK_PROVIDER = "openai"

# Host suffixes of the providers the conventions name, first match wins.
_PROVIDERS = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".inference.ai.azure.com", "azure.ai.inference"),
    ("api.anthropic.com", "anthropic"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.x.ai", "x_ai"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),
    (".ml.cloud.ibm.com", "ibm.watsonx.ai"),
)

# The conventions' output message finish reasons (stop, length, content_filter,
# tool_call, error) for the wires' own.
_FINISH = {
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "completed": "stop",
    "max_output_tokens": "length",
}
#: ``openai.api.type`` by wire.
_API_TYPE = {"chat": "chat_completions", "responses": "responses"}


def provider_name(host: str | None) -> str:
    """The conventions' ``gen_ai.provider.name`` for an API host, else
    :data:`FALLBACK_PROVIDER`.

    >>> provider_name("api.openai.com"), provider_name("my-res.openai.azure.com")
    ('openai', 'azure.ai.openai')
    >>> provider_name("127.0.0.1")
    'openai'
    """
    host = (host or "").lower().rstrip(".")
    for suffix, name in _PROVIDERS:
        if host == suffix.lstrip(".") or host.endswith(
            suffix if suffix[0] == "." else "." + suffix
        ):
            return name
    return FALLBACK_PROVIDER


class _Stream:
    """One stream's span and what its metrics are recorded with."""

    __slots__ = ("base", "chunk_wait", "content_seen", "span")

    def __init__(self, span: Span, base: dict[str, Any]) -> None:
        self.span = span
        #: The metrics' attributes known at the start.
        self.base = base
        self.content_seen = False
        self.chunk_wait = 0.0


class OtelTelemetry(Telemetry):
    """A :class:`~chatstream.Telemetry` that gives every stream a span and records the
    GenAI client metrics (see :doc:`/observability` for what is recorded).

    Args:
        tracer_provider: Where the spans go; the global one (``trace.set_tracer_provider``)
            if ``None``.
        meter_provider: Where the metrics go; the global one if ``None``.
        capture_content: Also record the messages sent and received
            (``gen_ai.input.messages``, ``gen_ai.output.messages``) and the tool
            definitions (``gen_ai.tool.definitions``), as JSON text on the span. Off by
            default: they may hold personal data.
        provider_name: ``gen_ai.provider.name`` for every stream, instead of the one
            told from the host of the URL (see :func:`provider_name`).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        capture_content: bool = False,
        provider_name: str | None = None,
    ) -> None:
        self.capture_content = capture_content
        self.provider_name = provider_name
        self._tracer = trace.get_tracer(
            "chatstream", __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        meter = metrics.get_meter("chatstream", __version__, meter_provider, schema_url=_SCHEMA_URL)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of the response stream.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._per_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description="Time per output chunk, after the first one.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    # --- the hooks ----------------------------------------------------------------------

    def on_stream_start(self, stream: StreamStart) -> _Stream:
        body = stream.body
        parts = urlsplit(stream.url)
        host = parts.hostname
        provider = self.provider_name or provider_name(host)
        base: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
        }
        model = body.get("model")
        if isinstance(model, str) and model:
            base["gen_ai.request.model"] = model
        if host:
            base["server.address"] = host
            base["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        responses = stream.api == "responses"
        attributes = {**base, **_request_attributes(body, responses)}
        if provider == "openai":
            attributes["openai.api.type"] = _API_TYPE.get(stream.api, stream.api)
            tier = body.get("service_tier")
            if isinstance(tier, str):
                attributes["openai.request.service_tier"] = tier
        if self.capture_content:
            attributes.update(_input_content(body, responses))
        name = "chat" if model is None else f"chat {model}"
        span = self._tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=int(stream.started_at * 1e9),
        )
        return _Stream(span, base)

    def on_sse_event(
        self,
        context: Any,
        event: ResponseEvent | None,
        error: ChatStreamError | None,
        elapsed: float,
    ) -> None:
        if not isinstance(context, _Stream) or event is None:
            return
        context.chunk_wait += elapsed
        if is_content(event):
            if context.content_seen:
                self._per_chunk.record(context.chunk_wait, context.base)
            context.content_seen = True
            context.chunk_wait = 0.0

    def on_stream_end(
        self, context: Any, response: Response, error: ChatStreamError | None
    ) -> None:
        if not isinstance(context, _Stream):
            return
        span = context.span
        common = dict(context.base)
        if response.model:
            common["gen_ai.response.model"] = response.model
        attributes: dict[str, Any] = {}
        if response.response_id:
            attributes["gen_ai.response.id"] = response.response_id
        reasons = [c.finish_reason for c in response.choices if c.finish_reason]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        usage = response.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            if usage.cached_input_tokens:
                attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
            if usage.reasoning_output_tokens:
                attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_output_tokens
        timing = response.timing
        first_chunk = None
        if timing is not None:
            first_chunk = timing.time_to_first_byte
            if first_chunk is None:
                first_chunk = timing.time_to_first_content
        if first_chunk is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = first_chunk
        if common["gen_ai.provider.name"] == "openai":
            if response.system_fingerprint:
                attributes["openai.response.system_fingerprint"] = response.system_fingerprint
            if response.service_tier:
                attributes["openai.response.service_tier"] = response.service_tier
        if self.capture_content:
            attributes["gen_ai.output.messages"] = _json(
                [_output_message(c, error) for c in response.choices]
            )
        if error is not None:
            common["error.type"] = error.kind
            span.set_status(Status(StatusCode.ERROR, error.message))
        span.set_attributes({**common, **attributes})
        end = None
        if timing is not None:
            end = int((timing.started_at + timing.duration) * 1e9)
            self._duration.record(timing.duration, common)
        if first_chunk is not None:
            self._first_chunk.record(
                first_chunk, {k: v for k, v in common.items() if k != "error.type"}
            )
        if usage is not None:
            tokens = {k: v for k, v in common.items() if k != "error.type"}
            self._tokens.record(usage.input_tokens, {**tokens, "gen_ai.token.type": "input"})
            self._tokens.record(usage.output_tokens, {**tokens, "gen_ai.token.type": "output"})
        span.end(end_time=end)


def _request_attributes(body: Mapping[str, Any], responses: bool = False) -> dict[str, Any]:
    """The conventions' request attributes that ``body`` gives (a Responses API body
    when ``responses``: its limit is ``max_output_tokens``, its output type
    ``text.format``)."""
    attributes: dict[str, Any] = {"gen_ai.request.stream": True}
    for key, name in (
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("top_k", "gen_ai.request.top_k"),
        ("frequency_penalty", "gen_ai.request.frequency_penalty"),
        ("presence_penalty", "gen_ai.request.presence_penalty"),
    ):
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[name] = float(value)
    limit = (
        body.get("max_output_tokens")
        if responses
        else body.get("max_completion_tokens", body.get("max_tokens"))
    )
    if isinstance(limit, int) and not isinstance(limit, bool):
        attributes["gen_ai.request.max_tokens"] = limit
    seed = body.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        attributes["gen_ai.request.seed"] = seed
    count = body.get("n")
    if isinstance(count, int) and not isinstance(count, bool) and count != 1:
        attributes["gen_ai.request.choice.count"] = count
    stop = body.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    form = body.get("response_format")
    if responses:
        text = body.get("text")
        form = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(form, Mapping):
        kind = form.get("type")
        if kind in ("json_object", "json_schema"):
            attributes["gen_ai.output.type"] = "json"
        elif kind == "text":
            attributes["gen_ai.output.type"] = "text"
    return attributes


# --- content, only with capture_content ---------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind in ("text", "input_text", "output_text"):
                parts.append({"type": "text", "content": part.get("text", "")})
            elif kind == "image_url" and isinstance(part.get("image_url"), Mapping):
                parts.append(
                    {"type": "uri", "modality": "image", "uri": part["image_url"].get("url")}
                )
            elif kind == "input_image" and isinstance(part.get("image_url"), str):
                parts.append({"type": "uri", "modality": "image", "uri": part["image_url"]})
            else:
                parts.append({"type": str(kind)})
    return parts


def _input_content(body: Mapping[str, Any], responses: bool = False) -> dict[str, str]:
    """``gen_ai.input.messages`` (and ``gen_ai.tool.definitions``) from ``body``."""
    if responses:
        return _responses_input_content(body)
    messages = []
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": message.get("content"),
                }
            ]
        else:
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                if not isinstance(call, Mapping):
                    continue
                function = call.get("function") or {}
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": _arguments(function.get("arguments") or ""),
                    }
                )
        messages.append({"role": "system" if role == "developer" else role, "parts": parts})
    content = {"gen_ai.input.messages": _json(messages)}
    tools = body.get("tools")
    if tools:
        content["gen_ai.tool.definitions"] = _json(tools)
    return content


def _responses_input_content(body: Mapping[str, Any]) -> dict[str, str]:
    """``gen_ai.input.messages`` (its items as messages: a function call as a
    ``tool_call`` part of an assistant message, its output as a ``tool`` message's
    ``tool_call_response``), ``gen_ai.system_instructions`` and
    ``gen_ai.tool.definitions`` from a Responses API body."""
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            messages.append(
                {
                    "role": "system" if role == "developer" else role,
                    "parts": _parts(item.get("content")),
                }
            )
        elif kind in ("function_call", "custom_tool_call"):
            raw = item.get("arguments", item.get("input")) or ""
            messages.append(
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": item.get("call_id"),
                            "name": item.get("name"),
                            "arguments": _arguments(raw) if isinstance(raw, str) else raw,
                        }
                    ],
                }
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": item.get("call_id"),
                            "response": item.get("output"),
                        }
                    ],
                }
            )
    content = {"gen_ai.input.messages": _json(messages)}
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        content["gen_ai.system_instructions"] = _json([{"type": "text", "content": instructions}])
    tools = body.get("tools")
    if tools:
        content["gen_ai.tool.definitions"] = _json(tools)
    return content


def _output_message(choice: ChoiceResult, error: ChatStreamError | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    reasoning = choice.reasoning or "\n\n".join(choice.reasoning_summary)
    if reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    if choice.content:
        parts.append({"type": "text", "content": choice.content})
    if choice.refusal:
        parts.append({"type": "refusal", "content": choice.refusal})
    for call in choice.tool_calls:
        parts.append(
            {
                "type": "tool_call",
                "id": call.call_id,
                "name": call.name,
                "arguments": _arguments(call.arguments),
            }
        )
    reason = choice.finish_reason
    if reason == "completed" and choice.tool_calls:
        reason = "tool_calls"  # the Responses wire's end of a turn of calls
    finish = _FINISH.get(reason, reason) if reason else ("error" if error is not None else "stop")
    return {"role": "assistant", "parts": parts, "finish_reason": finish}

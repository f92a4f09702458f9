"""chatstream.otel: the GenAI semantic conventions' span and metrics for every stream,
checked with the OpenTelemetry SDK's in-memory exporter and metric reader over a loopback
server."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import chatstream
from chatstream.otel import DURATION_BUCKETS, TOKEN_BUCKETS, OtelTelemetry, provider_name

from .helpers import DONE, USAGE, chunk, event
from .loopback import LoopbackServer, json_error, sse_body
from .scripted import responses_calls_body, responses_model, responses_text_body

PATH = "/v1/chat/completions"
KEY = "sk-SECRET-key-1234"
HEADER_VALUE = "header-value-5678"
BODY: dict[str, Any] = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ],
}
ANSWER = (
    event(chunk(delta={"role": "assistant"}, id="chatcmpl-42", model="gpt-test-0613"))
    + event(chunk("Hel", id="chatcmpl-42", model="gpt-test-0613"))
    + event(chunk("lo", id="chatcmpl-42", model="gpt-test-0613"))
    + event(chunk(finish="stop", id="chatcmpl-42", model="gpt-test-0613"))
    + event(chunk(usage=USAGE, choices=False, id="chatcmpl-42", model="gpt-test-0613"))
    + DONE
)


class Otel:
    """An OtelTelemetry whose spans and metrics stay in memory."""

    def __init__(self, **options: Any) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = OtelTelemetry(
            tracer_provider, MeterProvider(metric_readers=[self.reader]), **options
        )

    def span(self) -> ReadableSpan:
        (span,) = self.spans.get_finished_spans()
        return span

    def points(self, name: str) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: list[HistogramDataPoint] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += metric.data.data_points  # type: ignore[arg-type]
        return found


@pytest.fixture
def otel() -> Otel:
    return Otel()


@pytest.fixture
def client(server: LoopbackServer, otel: Otel) -> Iterator[chatstream.Client]:
    with chatstream.Client(
        server.url + "/v1",
        KEY,
        telemetry=otel.telemetry,
        headers={"X-Custom": HEADER_VALUE},
        retry=chatstream.Retry(max_retries=0),
    ) as made:
        yield made


def test_a_stream_is_one_client_span_named_for_the_operation_and_model(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    client.stream(BODY).result(timeout=10)
    span = otel.span()
    assert (span.name, span.kind) == ("chat gpt-test", SpanKind.CLIENT)
    assert span.status.status_code == StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url.endswith("/1.41.0")


def test_the_span_has_the_required_and_conditionally_required_attributes(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    body = {**BODY, "n": 2, "seed": 7, "response_format": {"type": "json_object"}}
    client.stream(body).result(timeout=10)
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.request.choice.count"] == 2
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.output.type"] == "json"
    assert attributes["openai.api.type"] == "chat_completions"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert "error.type" not in attributes


def test_the_span_has_the_request_parameters(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    body = {
        **BODY,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 100,
        "stop": ["END", "STOP"],
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
    }
    client.stream(body).result(timeout=10)
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.max_tokens"] == 100
    assert tuple(attributes["gen_ai.request.stop_sequences"]) == ("END", "STOP")  # type: ignore[arg-type]
    assert attributes["gen_ai.request.frequency_penalty"] == 0.1
    assert attributes["gen_ai.request.presence_penalty"] == 0.2
    assert "gen_ai.request.choice.count" not in attributes  # n is 1 unless asked


def test_the_span_has_the_response_usage_and_time_to_first_chunk(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    response = client.stream(BODY).result(timeout=10)
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.response.id"] == "chatcmpl-42"
    assert attributes["gen_ai.response.model"] == "gpt-test-0613"
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert attributes["gen_ai.usage.output_tokens"] == 2
    assert response.timing is not None
    assert attributes["gen_ai.response.time_to_first_chunk"] == response.timing.time_to_first_byte


def test_the_span_lasts_as_long_as_the_stream(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    timing = client.stream(BODY).result(timeout=10).timing
    span = otel.span()
    assert timing is not None and span.start_time is not None and span.end_time is not None
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(timing.duration, abs=1e-6)


def test_a_failed_stream_records_its_error_type(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, json_error(429, {"error": {"message": "Slow down."}}))
    with pytest.raises(chatstream.RateLimitError):
        client.stream(BODY).result(timeout=10)
    span = otel.span()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "rate_limited"
    (point,) = otel.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "rate_limited"


def test_a_closed_stream_ends_its_span(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER, delay=5.0))
    stream = client.stream(BODY)
    for item in stream:
        if isinstance(item, chatstream.OutputItemAdded):
            break
    stream.close()
    with pytest.raises(chatstream.StreamClosedError):
        stream.result(timeout=10)
    span = otel.span()
    assert span.end_time is not None
    assert (span.attributes or {})["error.type"] == "closed"


def test_no_key_or_header_value_is_in_any_attribute(server: LoopbackServer) -> None:
    otel = Otel(capture_content=True)
    server.route(PATH, sse_body(ANSWER))
    url = server.url + "/v1"
    with chatstream.Client(
        url, KEY, telemetry=otel.telemetry, headers={"X-Custom": HEADER_VALUE}
    ) as client:
        client.stream(BODY).result(timeout=10)
    values = [str(v) for v in (otel.span().attributes or {}).values()]
    data = otel.reader.get_metrics_data()
    assert data is not None
    values += [
        str(v)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for v in point.attributes.values()
    ]
    assert len(values) > 20
    assert not [v for v in values if KEY in v or HEADER_VALUE in v or "sk-SECRET" in v]


def test_content_is_not_captured_unless_asked(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    client.stream(BODY).result(timeout=10)
    attributes = otel.span().attributes or {}
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes
    assert not [v for v in attributes.values() if "Say hello" in str(v) or "Hello" in str(v)]


def test_content_is_captured_when_asked(server: LoopbackServer) -> None:
    otel = Otel(capture_content=True)
    server.route(PATH, sse_body(ANSWER))
    with chatstream.Client(server.url + "/v1", KEY, telemetry=otel.telemetry) as client:
        client.stream(BODY).result(timeout=10)
    attributes = otel.span().attributes or {}
    sent = json.loads(str(attributes["gen_ai.input.messages"]))
    received = json.loads(str(attributes["gen_ai.output.messages"]))
    assert sent[1] == {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    assert received == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Hello"}],
            "finish_reason": "stop",
        }
    ]


def test_the_operation_duration_is_recorded_with_the_conventions_buckets(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    timing = client.stream(BODY).result(timeout=10).timing
    (point,) = otel.points("gen_ai.client.operation.duration")
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert timing is not None and point.sum == pytest.approx(timing.duration)
    assert point.attributes["gen_ai.provider.name"] == "openai"
    assert point.attributes["gen_ai.request.model"] == "gpt-test"
    assert point.attributes["gen_ai.response.model"] == "gpt-test-0613"
    assert point.attributes["server.port"] == server.port


def test_token_usage_is_recorded_by_token_type(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    client.stream(BODY).result(timeout=10)
    points = otel.points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in points} == {"input": 3, "output": 2}
    assert all(tuple(p.explicit_bounds) == TOKEN_BUCKETS for p in points)


def test_the_streaming_metrics_are_recorded(
    server: LoopbackServer, client: chatstream.Client, otel: Otel
) -> None:
    server.route(PATH, sse_body(ANSWER))
    client.stream(BODY).result(timeout=10)
    (first,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    (per_chunk,) = otel.points("gen_ai.client.operation.time_per_output_chunk")
    assert first.count == 1 and tuple(first.explicit_bounds) == DURATION_BUCKETS
    assert per_chunk.count == 1  # "lo", the one content chunk after the first


def test_the_provider_is_told_from_the_host() -> None:
    assert provider_name("my-resource.openai.azure.com") == "azure.ai.openai"
    assert provider_name("api.groq.com") == "groq"
    assert provider_name("localhost") == "openai"  # the documented fallback


def test_the_provider_can_be_named(server: LoopbackServer) -> None:
    otel = Otel(provider_name="llama.cpp")
    server.route(PATH, sse_body(ANSWER))
    with chatstream.Client(server.url + "/v1", KEY, telemetry=otel.telemetry) as client:
        client.stream(BODY).result(timeout=10)
    assert (otel.span().attributes or {})["gen_ai.provider.name"] == "llama.cpp"


def test_importing_chatstream_does_not_import_opentelemetry() -> None:
    code = "import sys, chatstream; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the Responses wire ----------------------------------------------------------------

RESPONSES_PATH = "/v1/responses"
RESPONSES_BODY: dict[str, Any] = {
    "model": "gpt-test",
    "instructions": "Be brief.",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
}


def _responses(server: LoopbackServer, otel: Otel, body: bytes, **request: Any) -> None:
    """One stream on the Responses wire, answered with ``body``."""
    server.route(RESPONSES_PATH, responses_model(lambda items: body))
    with (
        chatstream.Client(
            server.url + "/v1", KEY, telemetry=otel.telemetry, api="responses"
        ) as client,
        contextlib.suppress(chatstream.ChatStreamError),
    ):  # the span is checked
        client.stream({**RESPONSES_BODY, **request}).result(timeout=10)


def test_a_responses_stream_is_a_chat_span_of_the_responses_api(
    server: LoopbackServer, otel: Otel
) -> None:
    _responses(server, otel, responses_text_body("Hello", response_id="resp_42"))
    span = otel.span()
    attributes = span.attributes or {}
    assert (span.name, span.kind) == ("chat gpt-test", SpanKind.CLIENT)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["openai.api.type"] == "responses"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["server.port"] == server.port


def test_a_responses_span_reads_the_request_parameters_from_the_responses_body(
    server: LoopbackServer, otel: Otel
) -> None:
    request = {
        "temperature": 0.5,
        "top_p": 0.9,
        "max_output_tokens": 100,
        "max_tokens": 7,  # not a Responses field: not the limit
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}},
    }
    _responses(server, otel, responses_text_body("{}"), **request)
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.max_tokens"] == 100
    assert attributes["gen_ai.output.type"] == "json"


def test_a_responses_span_has_the_response_id_model_reasons_and_usage(
    server: LoopbackServer, otel: Otel
) -> None:
    _responses(server, otel, responses_text_body("Hello", response_id="resp_42"))
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.response.id"] == "resp_42"
    assert attributes["gen_ai.response.model"] == "m-2025"
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("completed",)  # type: ignore[arg-type]
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 4
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 2
    points = otel.points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in points} == {"input": 12, "output": 7}


def test_a_cut_responses_stream_reports_its_incomplete_reason(
    server: LoopbackServer,
) -> None:
    otel = Otel(capture_content=True)
    _responses(server, otel, responses_text_body("Hel", incomplete="max_output_tokens"))
    attributes = otel.span().attributes or {}
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("max_output_tokens",)  # type: ignore[arg-type]
    (message,) = json.loads(str(attributes["gen_ai.output.messages"]))
    assert message["finish_reason"] == "length"


def test_a_failed_responses_stream_records_its_error_type(
    server: LoopbackServer, otel: Otel
) -> None:
    failed = {
        "type": "response.failed",
        "response": {"id": "resp_9", "error": {"code": "rate_limit_exceeded", "message": "Slow"}},
    }
    _responses(server, otel, f"data: {json.dumps(failed)}\n\n".encode())
    span = otel.span()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "rate_limited"
    (point,) = otel.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "rate_limited"


def test_the_streaming_metrics_count_the_responses_text_deltas(
    server: LoopbackServer, otel: Otel
) -> None:
    _responses(server, otel, responses_text_body("Hello, world", size=4))
    (first,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    (per_chunk,) = otel.points("gen_ai.client.operation.time_per_output_chunk")
    assert first.count == 1
    assert per_chunk.count == 2  # "o, w" and "orld", after "Hell"


def test_responses_content_is_captured_as_messages_when_asked(server: LoopbackServer) -> None:
    otel = Otel(capture_content=True)
    history = [
        *RESPONSES_BODY["input"],
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    _responses(server, otel, responses_calls_body([("g", {"b": 2})]), input=history)
    attributes = otel.span().attributes or {}
    sent = json.loads(str(attributes["gen_ai.input.messages"]))
    assert sent == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]
    instructions = json.loads(str(attributes["gen_ai.system_instructions"]))
    assert instructions == [{"type": "text", "content": "Be brief."}]
    (received,) = json.loads(str(attributes["gen_ai.output.messages"]))
    assert received == {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "call_0_0", "name": "g", "arguments": {"b": 2}}],
        "finish_reason": "tool_call",
    }


def test_no_responses_content_is_captured_unless_asked(server: LoopbackServer, otel: Otel) -> None:
    _responses(server, otel, responses_text_body("Hello"))
    attributes = otel.span().attributes or {}
    assert not [k for k in attributes if k.startswith(("gen_ai.input", "gen_ai.output.m"))]
    assert "gen_ai.system_instructions" not in attributes
    assert not [v for v in attributes.values() if "Say hello" in str(v) or "Be brief" in str(v)]

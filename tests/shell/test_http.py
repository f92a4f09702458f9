"""The HTTP details (chatstream._shell.http), without sockets: request building, error
mapping, ``Retry-After`` values and the providers' context-window errors.

The ``responses`` library stands in for the server, so these tests are fast and need no
network. Everything whose behaviour depends on real sockets (reading, cancelling,
timeouts, connection failures) is in ``tests/test_stream.py``.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

import chatstream
from chatstream import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChatStreamError,
    Client,
    ConfigurationError,
    ContextLengthExceededError,
    ContextWindowExceeded,
    Limits,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    Retry,
    ServerError,
    StreamOptions,
    Telemetry,
    Timeouts,
)
from chatstream._shell import http as _http
from chatstream._shell.exchange import request_headers
from tests.helpers import BODY, DATA

pytestmark = pytest.mark.usefixtures("no_leaks")

BASE = "http://api.test/v1"
URL = BASE + "/chat/completions"
KEY = "sk-CANARY-http-0123456789"
SSE = (
    b'data: {"id":"r1","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}'
    b"\n\ndata: [DONE]\n\n"
)


@pytest.fixture
def rs() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(**options: Any) -> Client:
    options.setdefault("retry", 0)
    return Client(BASE, KEY, **options)


def ok(rs: responses.RequestsMock) -> None:
    rs.post(URL, body=SSE, content_type="text/event-stream")


def sent(rs: responses.RequestsMock, number: int = 0) -> requests.PreparedRequest:
    request = rs.calls[number].request
    assert isinstance(request, requests.PreparedRequest)
    return request


def sent_json(rs: responses.RequestsMock, number: int = 0) -> Any:
    body = sent(rs, number).body
    assert isinstance(body, bytes)
    return json.loads(body)


def fail(c: Client, body: dict[str, Any] | None = None) -> ChatStreamError:
    with c.stream(body or BODY) as stream, pytest.raises(ChatStreamError) as info:
        stream.result(timeout=5)
    return info.value


# --- request building ------------------------------------------------------------------


def test_posts_to_chat_completions_under_the_base_url(rs: responses.RequestsMock) -> None:
    ok(rs)
    with Client(BASE + "/", KEY).stream(BODY) as stream:
        assert stream.result(timeout=5).content == "Hi"
    assert sent(rs).method == "POST"
    assert sent(rs).url == URL


def test_stream_true_is_set_even_when_the_body_says_false(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream({**BODY, "stream": False}).result(timeout=5)
    assert sent_json(rs)["stream"] is True


def test_the_rest_of_the_body_is_sent_as_given(rs: responses.RequestsMock) -> None:
    ok(rs)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    client().stream({**BODY, "tools": tools, "temperature": 0.5}).result(timeout=5)
    body = sent_json(rs)
    assert body["messages"] == BODY["messages"]
    assert (body["model"], body["tools"], body["temperature"]) == ("m", tools, 0.5)
    assert sent(rs).headers["Content-Type"] == "application/json"


def test_the_callers_body_is_not_modified(rs: responses.RequestsMock) -> None:
    ok(rs)
    body = {**BODY, "stream_options": {"x": 1}}
    client().stream(body).result(timeout=5)
    assert body == {**BODY, "stream_options": {"x": 1}}


def test_usage_is_asked_for_by_default(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream(BODY).result(timeout=5)
    assert sent_json(rs)["stream_options"] == {"include_usage": True}


def test_usage_is_not_asked_for_when_include_usage_is_false(rs: responses.RequestsMock) -> None:
    ok(rs)
    client(include_usage=False).stream(BODY).result(timeout=5)
    assert "stream_options" not in sent_json(rs)


def test_stream_options_given_by_the_caller_are_kept(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream({**BODY, "stream_options": {"include_usage": False, "x": 1}}).result(timeout=5)
    assert sent_json(rs)["stream_options"] == {"include_usage": False, "x": 1}


def test_accept_is_text_event_stream(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream(BODY).result(timeout=5)
    assert sent(rs).headers["Accept"] == "text/event-stream"


def test_the_key_is_sent_as_a_bearer_token_by_an_auth_object(rs: responses.RequestsMock) -> None:
    ok(rs)
    c = client()
    c.stream(BODY).result(timeout=5)
    assert sent(rs).headers["Authorization"] == f"Bearer {KEY}"
    # An auth object, not a plain header: requests would let ~/.netrc replace a header.
    assert isinstance(c._auth, requests.auth.AuthBase)
    assert "Authorization" not in request_headers(c._settings(None, None), None)


def test_no_authorization_is_sent_without_a_key(rs: responses.RequestsMock) -> None:
    ok(rs)
    Client(BASE, None).stream(BODY).result(timeout=5)
    assert "Authorization" not in sent(rs).headers


def test_custom_headers_are_sent(rs: responses.RequestsMock) -> None:
    ok(rs)
    client(headers={"OpenAI-Organization": "org-1", "X-Trace": "t"}).stream(BODY).result(timeout=5)
    assert sent(rs).headers["OpenAI-Organization"] == "org-1"
    assert sent(rs).headers["X-Trace"] == "t"


def test_the_user_agent_names_chatstream_and_its_version(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream(BODY).result(timeout=5)
    assert sent(rs).headers["User-Agent"].startswith(f"chatstream/{chatstream.__version__} ")


def test_compressed_responses_are_not_asked_for(rs: responses.RequestsMock) -> None:
    ok(rs)
    client().stream(BODY).result(timeout=5)
    assert sent(rs).headers["Accept-Encoding"] == "identity"


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        client(headers={"X-A": "a\r\nInjected: 1"})


def test_a_body_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        client().stream(["not", "a", "dict"])  # type: ignore[arg-type]


def test_queue_size_below_one_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        client().stream(BODY, options=StreamOptions(queue_size=0))


@pytest.mark.parametrize("url", ["api.test/v1", "ftp://api.test", ""])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Client(url, KEY)


# --- defaults and configuration ---------------------------------------------------------


def test_the_defaults_are_the_specifications() -> None:
    c = Client(BASE, KEY)
    assert c.timeouts.idle == 300.0 and c.timeouts.connect == 10.0
    assert c.retry.max_retries == 2
    assert c.include_usage is True
    assert c.turn_state_header == "x-codex-turn-state" == chatstream.client.TURN_STATE_HEADER
    assert (c.options, c.limits) == (StreamOptions(), Limits())


def test_the_default_queue_holds_1600_events(rs: responses.RequestsMock) -> None:
    ok(rs)
    with client().stream(BODY) as stream:
        assert stream._worker.queue.maxsize == 1600
        stream.result(timeout=5)


def test_a_number_of_seconds_is_the_idle_limit_and_a_number_the_retries() -> None:
    c = Client(BASE, KEY, timeouts=7.0, retry=5)
    assert c.timeouts == Timeouts(idle=7.0)
    assert c.retry == Retry(max_retries=5)


def test_whole_values_are_taken_as_they_are() -> None:
    timeouts, retry = Timeouts(idle=7.0, connect=3.0), Retry(max_retries=5, backoff=1.0)
    c = Client(BASE, KEY, timeouts=timeouts, retry=retry)
    assert (c.timeouts, c.retry) == (timeouts, retry)


@pytest.mark.parametrize("options", [{"timeouts": "5"}, {"timeouts": True}, {"retry": 1.5}])
def test_a_setting_of_the_wrong_type_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Client(BASE, KEY, **options)


@pytest.mark.parametrize("field", ["connect", "idle", "event", "total", "finish_grace"])
def test_a_time_limit_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        chatstream.Timeouts(**{field: 0})


def test_the_retry_wait_doubles_up_to_the_cap() -> None:
    retry = Retry(backoff=0.5, max_backoff=1.5, jitter=0.0)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]


def test_the_retry_wait_has_at_most_the_jitter_added() -> None:
    retry = Retry(backoff=1.0, jitter=0.25)
    rng = random.Random(5)
    delays = [retry.delay(1, rng=rng) for _ in range(200)]
    assert all(d is not None and 1.0 <= d <= 1.25 for d in delays)
    assert len(set(delays)) > 100  # random, not constant


def test_a_longer_retry_after_replaces_the_backoff() -> None:
    retry = Retry(backoff=0.5, jitter=0.0, max_retry_after=60)
    assert retry.delay(1, retry_after=10.0) == 10.0
    assert retry.delay(1, retry_after=0.0) == 0.5
    assert retry.delay(1, retry_after=61.0) is None


def test_a_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError):
        Retry(max_retries=-1)


# --- error mapping ----------------------------------------------------------------------

ERRORS = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (422, BadRequestError),
    (429, RateLimitError),
    (500, ServerError),
    (503, ServerError),
]


@pytest.mark.parametrize(("status", "cls"), ERRORS)
def test_an_error_status_is_its_typed_error(
    rs: responses.RequestsMock, status: int, cls: type[APIStatusError]
) -> None:
    payload = {"error": {"message": "went wrong", "type": "some_type", "code": "some_code"}}
    rs.post(URL, json=payload, status=status, headers={"x-request-id": "req-9"})
    error = fail(client())
    assert type(error) is cls
    assert isinstance(error, APIStatusError)
    assert error.status == status
    assert (error.type, error.code) == ("some_type", "some_code")
    assert "went wrong" in error.message and str(status) in error.message
    assert error.request_id == "req-9"
    assert error.partial is not None and error.partial.content == ""
    assert len(rs.calls) == 1  # max_retries=0


def test_an_integer_error_code_is_kept(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "m", "code": 1234}}, status=400)
    assert fail(client()).code == 1234  # type: ignore[attr-defined]


def test_an_error_body_that_is_not_json_still_gives_the_status(
    rs: responses.RequestsMock,
) -> None:
    rs.post(URL, body="<html><h1>502 Bad Gateway</h1></html>", status=502)
    error = fail(client())
    assert isinstance(error, ServerError) and error.status == 502
    assert error.type is None and error.code is None
    assert "502 Bad Gateway" in error.body


# --- which 400 is over the context window ---------------------------------------------------

#: vLLM's 400 for an invalid role: its validation error quotes the message, user text and all.
VLLM_INVALID_ROLE = {
    "object": "error",
    "message": (
        "[{'type': 'literal_error', 'loc': ('body', 'messages', 0, 'role'), 'msg': \"Input "
        "should be 'system', 'assistant', 'user' or 'tool'\", 'input': {'role': 'human', "
        "'content': 'What is the maximum context length of this model?'}}]"
    ),
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


def _recorded_body(name: str) -> tuple[int, bytes]:
    """The status and body of a recorded response (``tests/data/http-errors``)."""
    head, _, body = (DATA / "http-errors" / name).read_bytes().partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_a_400_quoting_the_users_words_about_the_context_length_is_a_plain_bad_request(
    rs: responses.RequestsMock,
) -> None:
    rs.post(URL, json=VLLM_INVALID_ROLE, status=400)
    error = fail(client())
    assert isinstance(error, BadRequestError)
    assert not isinstance(error, ContextLengthExceededError)


def test_a_providers_own_code_decides_over_words_in_its_message(
    rs: responses.RequestsMock,
) -> None:
    error_body = {
        "message": "Your request was rejected: the text 'make the story exceed the context "
        "window' violates our policy.",
        "type": "invalid_request_error",
        "code": "content_policy_violation",
    }
    rs.post(URL, json={"error": error_body}, status=400)
    error = fail(client())
    assert isinstance(error, BadRequestError)
    assert not isinstance(error, ContextLengthExceededError)
    assert error.code == "content_policy_violation"


def test_openais_context_code_is_a_context_length_error(rs: responses.RequestsMock) -> None:
    error_body = {
        "message": "Your messages resulted in 9000 tokens. Please reduce their length.",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
    }
    rs.post(URL, json={"error": error_body}, status=400)
    assert isinstance(fail(client()), ContextLengthExceededError)


def test_vllms_own_wording_without_a_code_is_a_context_length_error(
    rs: responses.RequestsMock,
) -> None:
    error_body = {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you "
        "requested 5120 tokens (4096 in the messages, 1024 in the completion). Please "
        "reduce the length of the messages or completion.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    rs.post(URL, json=error_body, status=400)
    assert isinstance(fail(client()), ContextLengthExceededError)


@pytest.mark.parametrize(
    ("name", "over_the_window"),
    [("llamacpp-400-exceed-context.http", True), ("llamacpp-400-invalid-request.http", False)],
)
def test_llamacpps_recorded_400s(
    rs: responses.RequestsMock, name: str, over_the_window: bool
) -> None:
    status, body = _recorded_body(name)
    rs.post(URL, body=body, status=status, content_type="application/json")
    error = fail(client())
    assert isinstance(error, BadRequestError)
    assert isinstance(error, ContextLengthExceededError) is over_the_window


def test_llamacpps_message_alone_is_a_context_length_error(rs: responses.RequestsMock) -> None:
    # The recorded wording, from a server (or a proxy) that left the type out.
    _, body = _recorded_body("llamacpp-400-exceed-context.http")
    error_body = json.loads(body)["error"]
    del error_body["type"]
    rs.post(URL, json={"error": error_body}, status=400)
    assert isinstance(fail(client()), ContextLengthExceededError)


def test_the_body_snippet_is_at_most_512_characters(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "x" * 5000}}, status=400)
    error = fail(client())
    assert isinstance(error, APIStatusError)
    assert 0 < len(error.body) <= 512


def test_retry_after_in_seconds(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "slow"}}, status=429, headers={"Retry-After": "7"})
    error = fail(client())
    assert isinstance(error, RateLimitError) and error.retry_after == 7.0


def test_retry_after_as_an_http_date(rs: responses.RequestsMock) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    rs.post(URL, json={"error": {"message": "slow"}}, status=429, headers={"Retry-After": when})
    error = fail(client())
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31


def test_retry_after_ms(rs: responses.RequestsMock) -> None:
    headers = {"retry-after-ms": "1500", "Retry-After": "9"}
    rs.post(URL, json={"error": {"message": "slow"}}, status=429, headers=headers)
    error = fail(client())
    assert isinstance(error, RateLimitError) and error.retry_after == 1.5


def test_no_retry_after_header_gives_none(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "slow"}}, status=429)
    error = fail(client())
    assert isinstance(error, RateLimitError) and error.retry_after is None


def test_a_client_error_is_not_retried(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "no"}}, status=400)
    fail(client(retry=Retry(max_retries=3, backoff=0.001)))
    assert len(rs.calls) == 1


def test_a_server_error_is_retried_up_to_max_retries(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "down"}}, status=503)
    error = fail(client(retry=Retry(max_retries=2, backoff=0.001)))
    assert isinstance(error, ServerError)
    assert len(rs.calls) == 3


def test_a_retry_after_above_the_cap_is_not_retried(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {}}, status=429, headers={"Retry-After": "3600"})
    error = fail(client(retry=Retry(max_retries=2, backoff=0.001, max_retry_after=60)))
    assert isinstance(error, RateLimitError) and error.retry_after == 3600
    assert len(rs.calls) == 1


# --- the stream_options fallback ----------------------------------------------------------


def _rejects_stream_options(status: int, message: str) -> Any:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        assert isinstance(request.body, bytes)
        if "stream_options" in json.loads(request.body):
            error = {"error": {"message": message, "type": "invalid_request_error"}}
            return status, {"Content-Type": "application/json"}, json.dumps(error).encode()
        return 200, {"Content-Type": "text/event-stream"}, SSE

    return callback


@pytest.mark.parametrize("status", [400, 422])
def test_a_server_rejecting_stream_options_gets_the_request_again_without_it(
    rs: responses.RequestsMock, status: int
) -> None:
    message = "Extra inputs are not permitted: stream_options"
    rs.add_callback("POST", URL, callback=_rejects_stream_options(status, message))
    assert client().stream(BODY).result(timeout=5).content == "Hi"
    assert len(rs.calls) == 2
    assert "stream_options" in sent_json(rs, 0)
    assert "stream_options" not in sent_json(rs, 1)
    assert sent_json(rs, 1)["messages"] == BODY["messages"]


def test_a_400_that_does_not_name_stream_options_is_not_sent_again(
    rs: responses.RequestsMock,
) -> None:
    rs.add_callback("POST", URL, callback=_rejects_stream_options(400, "model not found"))
    assert isinstance(fail(client()), BadRequestError)
    assert len(rs.calls) == 1


def test_the_fallback_happens_only_once(rs: responses.RequestsMock) -> None:
    error = {"error": {"message": "unknown field stream_options"}}
    rs.post(URL, json=error, status=400)
    assert isinstance(fail(client()), BadRequestError)
    assert len(rs.calls) == 2  # once with, once without; then the error


# --- telemetry of retries -----------------------------------------------------------------


class Retries(Telemetry):
    def __init__(self) -> None:
        self.requests: list[tuple[int, int | None]] = []
        self.retries: list[tuple[int, float, ChatStreamError]] = []

    def on_request(
        self,
        context: Any,
        attempt: int,
        status: int | None,
        error: ChatStreamError | None,
        duration: float,
    ) -> None:
        self.requests.append((attempt, status))

    def on_retry(self, context: Any, attempt: int, delay: float, error: ChatStreamError) -> None:
        self.retries.append((attempt, delay, error))


def test_each_retry_is_announced_with_its_wait_and_its_cause(
    rs: responses.RequestsMock,
) -> None:
    rs.post(URL, json={"error": {"message": "busy"}}, status=503)
    rs.post(URL, json={"error": {"message": "slow"}}, status=429, headers={"Retry-After": "0"})
    ok(rs)
    telemetry = Retries()
    retry = Retry(max_retries=2, backoff=0.01, jitter=0.0)
    assert client(retry=retry, telemetry=telemetry).stream(BODY).result(timeout=5).content == "Hi"
    assert telemetry.requests == [(1, 503), (2, 429), (3, 200)]
    assert [(a, d) for a, d, _ in telemetry.retries] == [(2, 0.01), (3, 0.02)]
    first, second = (error for _, _, error in telemetry.retries)
    assert isinstance(first, ServerError) and first.status == 503
    assert isinstance(second, RateLimitError)


def test_no_retry_is_announced_when_none_is_left(rs: responses.RequestsMock) -> None:
    rs.post(URL, json={"error": {"message": "busy"}}, status=503)
    telemetry = Retries()
    assert isinstance(fail(client(retry=0, telemetry=telemetry)), ServerError)
    assert telemetry.requests == [(1, 503)]
    assert telemetry.retries == []


def test_sending_again_without_stream_options_is_announced_as_a_retry_at_once(
    rs: responses.RequestsMock,
) -> None:
    message = "Extra inputs are not permitted: stream_options"
    rs.add_callback("POST", URL, callback=_rejects_stream_options(400, message))
    telemetry = Retries()
    assert client(telemetry=telemetry).stream(BODY).result(timeout=5).content == "Hi"
    assert telemetry.requests == [(1, 400), (2, 200)]
    [(attempt, delay, error)] = telemetry.retries
    assert (attempt, delay) == (2, 0.0)
    assert isinstance(error, BadRequestError)


def test_a_raising_retry_hook_does_not_stop_the_retry(rs: responses.RequestsMock) -> None:
    class Broken(Telemetry):
        def on_retry(
            self, context: Any, attempt: int, delay: float, error: ChatStreamError
        ) -> None:
            raise RuntimeError("hook")

    rs.post(URL, json={"error": {"message": "busy"}}, status=503)
    ok(rs)
    retry = Retry(max_retries=1, backoff=0.0, jitter=0.0)
    assert client(retry=retry, telemetry=Broken()).stream(BODY).result(timeout=5).content == "Hi"


# --- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_redirect_error_naming_the_location_without_its_query(
    rs: responses.RequestsMock, status: int
) -> None:
    target = f"https://elsewhere.test/v1/chat/completions?key={KEY}&sig=s3cret"
    rs.post(URL, status=status, headers={"Location": target})
    error = fail(client())
    assert isinstance(error, RedirectError)
    assert error.status == status
    assert error.location == "https://elsewhere.test/v1/chat/completions"
    assert error.location in error.message
    assert KEY not in str(error) and "s3cret" not in str(error) and "?" not in error.location
    assert len(rs.calls) == 1  # not followed


# --- the key ------------------------------------------------------------------------------

BAD_KEYS = [
    "sk-abc\r\nX-Injected: 1",
    "sk-abc\nrest",
    "sk-ключ-secret",
    "sk-\u2028secret",
    "sk-\x00nul",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_an_invalid_api_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Client(BASE, key)
    error = info.value
    assert "invalid API key" in str(error)
    for text in (str(error), repr(error), str(error.args)):
        assert key not in text and "secret" not in text and "abc" not in text


@pytest.mark.parametrize("key", ["", "   ", "\n"])
def test_an_empty_api_key_is_no_key(key: str) -> None:
    # The os.environ.get("OPENAI_API_KEY", "") idiom: a local server needs none.
    assert Client(BASE, key)._auth is None


@pytest.mark.parametrize("key", ["  sk-abc  ", "sk-abc\n", "Bearer sk-abc", "bearer  sk-abc "])
def test_an_api_key_is_sent_as_users_pass_it_without_spaces_or_a_doubled_scheme(
    rs: responses.RequestsMock, key: str
) -> None:
    ok(rs)
    Client(BASE, key, retry=0).stream(BODY).result(timeout=5)
    assert sent(rs).headers["Authorization"] == "Bearer sk-abc"


def test_repr_of_the_client_never_shows_the_key() -> None:
    c = Client(BASE + "?api-key=" + KEY, KEY)
    assert KEY not in repr(c) and KEY not in str(c)
    assert "REDACTED" in repr(c)
    assert KEY not in repr(c._auth)
    assert KEY not in repr(vars(c).get("_auth"))


def test_a_credential_passed_as_a_header_is_redacted_like_the_key(
    rs: responses.RequestsMock,
) -> None:
    secret = "azure-CANARY-42"
    echo = {"error": {"message": f"key {secret} is not valid"}}
    rs.post(URL, json=echo, status=401)
    error = fail(Client(BASE, None, retry=0, headers={"api-key": secret}))
    assert sent(rs).headers["api-key"] == secret
    assert secret not in error.message and secret not in error.body  # type: ignore[attr-defined]


def test_a_server_echoing_the_key_in_an_error_body_is_redacted(
    rs: responses.RequestsMock,
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}
    rs.post(URL, json=echo, status=401, headers={"X-Echo": f"Bearer {KEY}"})
    error = fail(client())
    assert isinstance(error, AuthenticationError)
    assert KEY not in error.message and KEY not in error.body and KEY not in repr(error)
    assert "Incorrect API key provided" in error.body
    assert KEY not in json.dumps(error.headers)


# --- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "1e400"},
        {"retry-after": "-inf"},
        {"retry-after": "Fri, 01 Jan 99999999999 00:00:00 GMT"},
        {"retry-after": "Mon, 32 Foo 2026 99:99:99 GMT"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": "1e400"},
    ],
)
def test_an_unusable_retry_after_value_is_absent(headers: dict[str, str]) -> None:
    assert _http.retry_after(requests.structures.CaseInsensitiveDict(headers)) is None


@pytest.mark.parametrize("value", ["0", "2", "2.5", "-3", "1e300"])
def test_a_retry_after_is_always_a_finite_number(value: str) -> None:
    wait = _http.retry_after({"retry-after": value})
    assert wait is not None and math.isfinite(wait) and wait >= 0


# --- context windows -------------------------------------------------------------------------


CONTEXT_ERRORS = {
    "openai": {
        "error": {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    },
    "llamacpp": {
        "error": {
            "code": 400,
            "message": "request (5024 tokens) exceeds the available context size (4096 tokens)",
            "type": "exceed_context_size_error",
        }
    },
    "vllm": {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you "
        "requested 5000 tokens (4000 in the messages, 1000 in the completion).",
        "type": "BadRequestError",
        "code": 400,
    },
    "anthropic": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 207791 tokens > 200000 maximum",
        },
    },
    "anthropic-max-tokens": {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "input length and `max_tokens` exceed context limit: 178959 + 64000 > "
            "200000, decrease input length or `max_tokens` and try again",
        },
    },
    "gemini": [
        {
            "error": {
                "code": 400,
                "message": "The input token count (314175) exceeds the maximum number of "
                "tokens allowed (131072).",
                "status": "INVALID_ARGUMENT",
            }
        }
    ],
    "mistral": {
        "object": "error",
        "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model "
        "with 32768 maximum context length",
        "type": "invalid_request_error",
        "code": None,
    },
    "openrouter": {
        "error": {
            "message": "This endpoint's maximum context length is 32768 tokens. However, you "
            "requested about 42832 tokens (42832 of text input).",
            "code": 400,
        }
    },
}


@pytest.mark.parametrize("provider", sorted(CONTEXT_ERRORS))
@responses.activate
def test_a_providers_context_error_is_a_context_window_error_with_its_facts(
    provider: str,
) -> None:
    responses.post(URL, json=CONTEXT_ERRORS[provider], status=400, headers={"x-request-id": "r"})
    with pytest.raises(ContextLengthExceededError) as info:
        Client(BASE, "sk-key", retry=2).stream(BODY).result(timeout=5)
    error = info.value
    assert isinstance(error, ContextWindowExceeded) and isinstance(error, BadRequestError)
    assert error.status == 400 and error.request_id == "r" and error.body
    assert error.kind == "context_window_exceeded"
    assert len(responses.calls) == 1


@responses.activate
def test_another_bad_request_is_no_context_window_error() -> None:
    responses.post(URL, json={"error": {"message": "unknown field 'x'"}}, status=400)
    with pytest.raises(BadRequestError) as info:
        Client(BASE, retry=0).stream(BODY).result(timeout=5)
    assert not isinstance(info.value, ContextWindowExceeded)


def test_a_content_type_repeated_by_a_proxy_is_one_media_type() -> None:
    assert _http.media_type({"content-type": "text/event-stream, text/event-stream"}) == (
        "text/event-stream"
    )
    assert _http.media_type({"content-type": "Text/Event-Stream; charset=utf-8"}) == (
        "text/event-stream"
    )
    assert _http.media_type({"content-type": "text/event-stream, text/html"}) == (
        "text/event-stream, text/html"
    )

"""§4 E (cases 51-56): secrets. Every test of this suite already runs with the canary
key (``Authorization``) and a second canary in the base URL's query string, with DEBUG
logging on the root, ``urllib3`` and ``chatstream`` loggers captured and checked (the
``secret_logs`` fixture), and every outcome's exception chain checked (``check()``).
This module adds the cases aimed at the secrets themselves."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

import chatstream
from chatstream import (
    AuthenticationError,
    Client,
    ConfigurationError,
    ConnectError,
    ProviderError,
)
from tests.helpers import answer, chunk
from tests.loopback import Conn, LoopbackServer, json_error, sse_body

from .harness import (
    CANARY,
    PATH,
    QUERY_CANARY,
    assert_no_canary,
    check,
    contains_canary,
    event,
    make_client,
    run_stream,
)


def test_51_reprs_and_tracebacks_of_every_public_object(
    server: LoopbackServer, client: Client
) -> None:
    server.route(PATH, sse_body(answer("fine")))
    with client.stream({"model": "m", "messages": []}) as stream:
        response = stream.result(timeout=5)
    assert_no_canary(client, client.timeouts, client.retry, client._auth, stream, response)
    assert contains_canary(client.url)  # it must be sent, so the URL keeps it...
    assert not contains_canary(repr(client))  # ...but never shows it
    # An error raised through iteration, formatted as a user's handler would.
    server.route(PATH, json_error(401, {"error": {"message": "bad key"}}))
    try:
        for _ in client.stream({"model": "m", "messages": []}):
            pass
    except AuthenticationError:
        formatted = traceback.format_exc()
    assert not contains_canary(formatted)


def test_52_a_key_in_the_query_string_is_redacted_everywhere(
    client_for: Callable[..., Client],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: refused
        client = client_for(f"http://127.0.0.1:{s.getsockname()[1]}", retries=1)
        out = check(run_stream(client), ConnectError)
    texts = [str(out.error), repr(out.error), "".join(traceback.format_exception(out.error))]
    assert not any(QUERY_CANARY in t for t in texts)
    assert "key=[REDACTED]" in repr(client)


def test_52_urllib3s_request_line_is_redacted(
    server: LoopbackServer, client: Client, secret_logs: object
) -> None:
    server.route(PATH, sse_body(answer("x")))
    check(run_stream(client))
    lines = [r.getMessage() for r in secret_logs.records if r.name.startswith("urllib3")]  # type: ignore[attr-defined]
    request_lines = [line for line in lines if '"POST ' in line]
    assert request_lines and all("key=[REDACTED]" in line for line in request_lines)
    assert server.requests[0].path.endswith(QUERY_CANARY)  # the server still got the key


def test_52_other_urllib3_log_lines_are_left_alone(
    server: LoopbackServer, client: Client, secret_logs: object
) -> None:
    import requests

    server.route("/other", lambda c: c.respond(200, b"ok"))
    requests.get(server.url + "/other?page=2", timeout=5).close()
    lines = [r.getMessage() for r in secret_logs.records if r.name.startswith("urllib3")]  # type: ignore[attr-defined]
    assert any("/other?page=2" in line for line in lines)


@pytest.mark.parametrize(
    "key",
    [
        "sk-CANARY-line\r\nX-Injected: 1",
        "sk-CANARY-newline\nrest",
        "sk-CANARY-nul\0",
        "sk-CANARY-ünïcode",
        "sk-CANARY-€uro",
    ],
)
def test_53_a_malformed_key_is_refused_without_being_echoed(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Client("http://127.0.0.1:9/v1", api_key=key)
    secret = key.split("-", 2)[-1] if key else "\0never"
    for text in [str(info.value), repr(info.value), *traceback.format_exception(info.value)]:
        assert secret not in text and "CANARY" not in text
    assert "invalid API key format" in str(info.value)


def test_53_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        Client("http://127.0.0.1:9/v1", headers={"api-key": "sk-CANARY-x\r\nEvil: 1"})
    assert "CANARY" not in str(info.value)


def test_54_an_error_body_echoing_the_credentials_is_redacted(
    server: LoopbackServer, client_for: Callable[..., Client]
) -> None:
    def echo(conn: Conn) -> None:
        auth, azure = conn.headers["Authorization"], conn.headers.get("api-key", "")
        message = f"bad key: {auth}, api-key {azure}"
        body = json.dumps({"error": {"message": message, "type": "auth"}, "seen": conn.path})
        conn.respond(
            401,
            body.encode(),
            {"Content-Type": "application/json", "X-Echo": conn.headers["Authorization"]},
        )

    server.route(PATH, echo)
    client = client_for(server, headers={"api-key": "sk-CANARY-azure-style"})
    out = check(run_stream(client), AuthenticationError)
    error = out.error
    assert isinstance(error, AuthenticationError)
    assert "[REDACTED]" in error.body and "[REDACTED]" in error.message
    assert "azure-style" not in error.body + error.message + repr(error.headers)
    assert_no_canary(error.headers, error.body)


def test_54_a_stream_error_echoing_the_key_is_redacted(
    server: LoopbackServer, client: Client
) -> None:
    def echo(conn: Conn) -> None:
        key = conn.headers["Authorization"].split()[-1]
        frame = {"error": {"message": f"quota exceeded for {key}", "type": "quota"}}
        sse_body(event(chunk("partial ")) + event(frame))(conn)

    server.route(PATH, echo)
    out = check(run_stream(client), ProviderError)
    assert "[REDACTED]" in str(out.error)
    assert out.final.content == "partial "


def test_56_a_netrc_entry_does_not_replace_the_bearer_key(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.route(PATH, sse_body(answer("ok")))
    client = make_client(server.url)
    try:
        check(run_stream(client))
    finally:
        client.close()
    assert server.requests[0].headers["Authorization"] == f"Bearer {CANARY}"


def test_an_unset_key_sends_no_credentials(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(answer("ok")))
    with chatstream.Client(server.url + "/v1", api_key=None, timeouts=1.0) as client:
        client.stream({"model": "m", "messages": []}).result(timeout=5)
    assert "Authorization" not in server.requests[0].headers

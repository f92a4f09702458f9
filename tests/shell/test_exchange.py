"""Connections: the pool sized to the concurrency, and the TLS settings honoured.

Over real sockets on 127.0.0.1; the TLS server uses a certificate from a throwaway CA
made by ``trustme``, which no default CA bundle trusts.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme
import urllib3.exceptions

from chatstream import (
    Client,
    ConfigurationError,
    ConnectError,
    Connections,
    ConnectTimeoutError,
    Retry,
)
from chatstream._shell.http import transport_error
from tests.loopback import Conn, LoopbackServer, sse_body

from ..helpers import BODY, TIMEOUTS, USAGE, answer, drain, texts

pytestmark = pytest.mark.usefixtures("no_leaks")

ANSWER = answer("Hello", ", world.", usage=USAGE)
#: The longest a test waits for something that should happen promptly.
WAIT = 10.0
#: Variables through which requests lets the environment choose the CA bundle.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


# --- the connection pool ------------------------------------------------------------------


def _held_until(server: LoopbackServer, count: int) -> None:
    """Answer every request only once ``count`` requests have arrived, so that that many
    streams (and connections) are open at once. The body ends with the chunked body
    (no ``[DONE]``), so the client reads it to its end and may reuse the connection."""

    def handler(conn: Conn) -> None:
        server.wait_for_requests(count, timeout=WAIT)
        conn.keep_alive = True
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(answer("Hello", ", world.", usage=USAGE, done=False))
        conn.end()

    server.set_default(handler)


def _run_at_once(client: Client, count: int) -> list[str]:
    results: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        with client.stream(BODY) as stream:
            events, error = drain(stream)
        with lock:
            results.append(texts(events) if error is None else repr(error))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    return results


def test_more_concurrent_streams_than_the_pool_size_all_complete_without_warnings(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _held_until(server, 5)
    with Client(
        server.url + "/v1", timeouts=TIMEOUTS, connections=Connections(pool_size=2)
    ) as client:
        results = _run_at_once(client, 5)
    assert results == ["Hello, world."] * 5
    assert len({r.connection_id for r in server.requests}) == 5  # all open at once
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_pool_keeps_pool_size_connections_for_the_next_streams(
    server: LoopbackServer,
) -> None:
    _held_until(server, 4)
    with Client(
        server.url + "/v1", timeouts=TIMEOUTS, connections=Connections(pool_size=2)
    ) as client:
        first = _run_at_once(client, 4)
        second = _run_at_once(client, 2)
    assert first + second == ["Hello, world."] * 6
    reused = [r for r in server.requests[4:] if r.index_on_connection > 0]
    assert len(reused) == 2


@pytest.mark.parametrize("size", [0, -1, True, 2.5, "8"])
def test_an_invalid_pool_size_is_a_configuration_error(size: object) -> None:
    with pytest.raises(ConfigurationError, match=r"Connections\.pool_size"):
        Connections(pool_size=size)  # type: ignore[arg-type]


def test_pool_size_with_a_session_of_your_own_is_a_configuration_error() -> None:
    with requests.Session() as session, pytest.raises(ConfigurationError, match="pool_size"):
        Client("http://127.0.0.1:9/v1", session=session, connections=Connections(pool_size=8))


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "my-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA, *, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_certs:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LoopbackServer]:
    with LoopbackServer(io_timeout=WAIT, tls=_server_context(ca)) as srv:
        srv.set_default(sse_body(ANSWER))
        yield srv


@pytest.fixture(params=["variables set", "variables unset"])
def ca_variables(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE pointing at the default bundle (which does
    not trust the test CA), as on many machines; or neither set."""
    for name in CA_VARIABLES:
        if request.param == "variables set":
            monkeypatch.setenv(name, requests.certs.where())
        else:
            monkeypatch.delenv(name, raising=False)


def _content(client: Client) -> str:
    with client, client.stream(BODY) as stream:
        return stream.result().content


@pytest.mark.usefixtures("ca_variables")
def test_the_sessions_verify_setting_is_used(tls_server: LoopbackServer, ca_file: str) -> None:
    with requests.Session() as session:
        session.verify = ca_file
        client = Client(tls_server.url + "/v1", session=session, timeouts=TIMEOUTS)
        assert _content(client) == "Hello, world."


@pytest.mark.usefixtures("ca_variables")
def test_the_clients_verify_setting_is_used(tls_server: LoopbackServer, ca_file: str) -> None:
    client = Client(
        tls_server.url + "/v1", connections=Connections(verify=ca_file), timeouts=TIMEOUTS
    )
    assert _content(client) == "Hello, world."


@pytest.mark.usefixtures("ca_variables")
def test_the_clients_verify_setting_wins_over_the_sessions(
    tls_server: LoopbackServer, ca_file: str
) -> None:
    with requests.Session() as session:
        session.verify = requests.certs.where()
        client = Client(
            tls_server.url + "/v1", session=session, connections=Connections(verify=ca_file)
        )
        assert _content(client) == "Hello, world."


@pytest.mark.usefixtures("ca_variables")
def test_an_untrusted_certificate_fails_to_connect(tls_server: LoopbackServer) -> None:
    client = Client(tls_server.url + "/v1", timeouts=TIMEOUTS, retry=Retry(max_retries=0))
    with pytest.raises(ConnectError) as caught:
        _content(client)
    assert caught.value.reason == "tls"


def test_with_the_defaults_the_ca_bundle_variable_still_chooses_the_bundle(
    tls_server: LoopbackServer, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    client = Client(tls_server.url + "/v1", timeouts=TIMEOUTS)
    assert _content(client) == "Hello, world."


@pytest.fixture
def mutual_tls_server(ca: trustme.CA) -> Iterator[LoopbackServer]:
    with LoopbackServer(io_timeout=WAIT, tls=_server_context(ca, client_certs=True)) as srv:
        srv.set_default(sse_body(ANSWER))
        yield srv


@pytest.fixture
def client_cert(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "client.pem"
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


def test_the_clients_cert_setting_is_presented(
    mutual_tls_server: LoopbackServer, ca_file: str, client_cert: str
) -> None:
    url = mutual_tls_server.url + "/v1"
    client = Client(
        url, connections=Connections(verify=ca_file, cert=client_cert), timeouts=TIMEOUTS
    )
    assert _content(client) == "Hello, world."


def test_the_sessions_cert_setting_is_presented(
    mutual_tls_server: LoopbackServer, ca_file: str, client_cert: str
) -> None:
    with requests.Session() as session:
        session.verify = ca_file
        session.cert = client_cert
        client = Client(mutual_tls_server.url + "/v1", session=session, timeouts=TIMEOUTS)
        assert _content(client) == "Hello, world."


def test_without_a_client_certificate_mutual_tls_fails(
    mutual_tls_server: LoopbackServer, ca_file: str
) -> None:
    url = mutual_tls_server.url + "/v1"
    client = Client(
        url,
        connections=Connections(verify=ca_file),
        timeouts=TIMEOUTS,
        retry=Retry(max_retries=0),
    )
    with pytest.raises(ConnectError):
        _content(client)


@pytest.mark.parametrize(
    "options",
    [
        {"verify": "/nonexistent/ca.pem"},
        {"verify": 1},
        {"cert": "/nonexistent/client.pem"},
        {"cert": ("a.pem", "b.pem", "c.pem")},
        {"cert": 7},
    ],
)
def test_invalid_tls_settings_are_a_configuration_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match=r"Connections\.(verify|cert)"):
        Connections(**options)  # type: ignore[arg-type]


# --- why no connection was made -----------------------------------------------------------


def _connect_error(url: str) -> ConnectError:
    client = Client(url, timeouts=TIMEOUTS, retry=Retry(max_retries=0))
    with pytest.raises(ConnectError) as caught:
        _content(client)
    return caught.value


def test_a_refused_connection_says_refused() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: refused
        port = bound.getsockname()[1]
        assert _connect_error(f"http://127.0.0.1:{port}/v1").reason == "refused"


def test_a_refused_connections_message_names_the_cause_and_where_without_credentials() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: refused
        port = bound.getsockname()[1]
        error = _connect_error(f"http://alice:s3cret@127.0.0.1:{port}/v1?key=sk-query")
    assert str(error) == (
        f"Could not connect to 127.0.0.1:{port}: connection refused "
        f"(nothing listens on 127.0.0.1:{port})."
    )


def test_a_tls_failures_message_says_so(server: LoopbackServer) -> None:
    url = server.url.replace("http://", "https://") + "/v1"
    where = server.url.removeprefix("http://")
    assert str(_connect_error(url)) == f"Could not connect to {where}: the TLS handshake failed."


def test_an_unknown_hosts_message_names_the_host() -> None:
    failure = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    resolving = urllib3.exceptions.NameResolutionError("nohost.invalid", None, failure)  # type: ignore[arg-type]
    error = transport_error(
        requests.ConnectionError(resolving),
        before_response=True,
        secrets=(),
        idle=None,
        url="https://nohost.invalid/v1/chat/completions",
    )
    assert str(error) == "Could not connect to nohost.invalid:443: unknown host 'nohost.invalid'."


def test_a_connect_timeouts_message_gives_the_limit() -> None:
    error = transport_error(
        requests.ConnectTimeout("timed out"),
        before_response=True,
        secrets=(),
        idle=None,
        url="http://10.0.0.9:8000/v1/chat/completions",
        connect_timeout=2.5,
    )
    assert isinstance(error, ConnectTimeoutError)
    assert (
        str(error)
        == "Could not connect to 10.0.0.9:8000: no answer within 2.5 s (connect timeout)."
    )


def test_a_server_closing_before_answering_says_closed(server: LoopbackServer) -> None:
    server.route("/v1/chat/completions", lambda conn: None)  # reads the request, closes
    assert _connect_error(server.url + "/v1").reason == "closed"


def test_https_to_a_plain_http_server_says_tls(server: LoopbackServer) -> None:
    url = server.url.replace("http://", "https://") + "/v1"
    assert _connect_error(url).reason == "tls"


def test_a_connect_timeout_says_timeout() -> None:
    assert ConnectTimeoutError("Connecting timed out.").reason == "timeout"


def test_an_unknown_host_says_unknown_host() -> None:
    # The chain requests and urllib3 build when a name does not resolve (no resolver is
    # asked here: the tests have no network).
    failure = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    resolving = urllib3.exceptions.NameResolutionError("nohost.invalid", None, failure)  # type: ignore[arg-type]
    resolving.__cause__ = failure
    retries = urllib3.exceptions.MaxRetryError(None, "/v1/chat/completions", resolving)  # type: ignore[arg-type]
    error = transport_error(
        requests.ConnectionError(retries), before_response=True, secrets=(), idle=None
    )
    assert isinstance(error, ConnectError) and error.reason == "unknown_host"


def test_the_reason_comes_from_exception_types_never_from_their_words() -> None:
    text = OSError("[Errno 111] Connection refused; SSL; Name or service not known")
    error = transport_error(
        requests.ConnectionError(text), before_response=True, secrets=(), idle=None
    )
    assert isinstance(error, ConnectError) and error.reason is None

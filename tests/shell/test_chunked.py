"""The chunked transfer coding: the decoder alone (against ``http.client``'s, which it
replaces), and a chunked body read through it over a real socket."""

from __future__ import annotations

import http.client
import io
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatstream import Client, StreamConnectionError, Timeouts
from chatstream._shell.chunked import MAX_LINE, ChunkedDecoder, ChunkedError
from tests.loopback import Conn, LoopbackServer, sse_events

from ..helpers import BODY, answer, chunk, event, examples

pytestmark = pytest.mark.usefixtures("no_leaks")


def encode(pieces: list[bytes], *, trailers: bytes = b"") -> bytes:
    """``pieces`` as a chunked body, one chunk each."""
    return (
        b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n" + trailers + b"\r\n"
    )


def decode(wire: bytes, cuts: list[int]) -> tuple[bytes, ChunkedDecoder]:
    """``wire`` fed to a decoder in pieces cut at ``cuts``."""
    decoder = ChunkedDecoder()
    out = []
    start = 0
    for cut in [*sorted(cuts), len(wire)]:
        out.append(decoder.feed(wire[start:cut]))
        start = cut
    return b"".join(out), decoder


def http_client_decode(wire: bytes) -> bytes:
    """What ``http.client`` reads from the same body."""

    class Sock:
        def makefile(self, mode: str) -> io.BufferedReader:
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            return io.BufferedReader(io.BytesIO(head + wire))

    response = http.client.HTTPResponse(Sock())  # type: ignore[arg-type]
    response.begin()
    return response.read()


# --- the decoder ---------------------------------------------------------------------------


WIRES = {
    "plain": encode([b"data: a\n\n", b"data: b\n\n"]),
    "extensions": b"9;name=value\r\ndata: a\n\n\r\n0;last\r\n\r\n",
    "trailers": encode([b"data: a\n\n"], trailers=b"X-Checksum: 1\r\nX-Other: 2\r\n"),
    "bare LF": b"9\ndata: a\n\n\r\n0\n\n",
    "upper-case hex, padded": b"00A \r\n0123456789\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("wire", WIRES.values(), ids=WIRES.keys())
def test_a_body_cut_anywhere_decodes_as_http_client_decodes_it(wire: bytes) -> None:
    expected = http_client_decode(wire)
    for cut in range(len(wire) + 1):
        out, decoder = decode(wire, [cut])
        assert out == expected
        assert decoder.done


@settings(max_examples=examples(200), deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=8),
)
def test_any_chunking_fed_in_any_pieces_gives_the_body(
    pieces: list[bytes], cuts: list[int]
) -> None:
    wire = encode(pieces)
    out, decoder = decode(wire, [c for c in cuts if c <= len(wire)])
    assert out == b"".join(pieces) == http_client_decode(wire)
    assert decoder.done


def test_it_is_not_done_until_the_blank_line_after_the_trailers() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1\r\nx\r\n0\r\nX-Trailer: 1\r\n") == b"x"
    assert not decoder.done
    assert decoder.feed(b"\r\n") == b""
    assert decoder.done


def test_bytes_after_the_end_are_ignored() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1\r\nx\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n") == b"x"
    assert decoder.feed(b"more") == b""
    assert decoder.done


def test_body_bytes_before_invalid_coding_come_out_before_the_error() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1\r\nx\r\nzz\r\n") == b"x"
    with pytest.raises(ChunkedError, match="invalid chunk size"):
        decoder.feed(b"")


def test_a_large_chunk_comes_out_as_it_arrives() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"10000\r\n" + b"a" * 100) == b"a" * 100
    assert decoder.feed(b"b" * 200) == b"b" * 200
    assert not decoder.done


@pytest.mark.parametrize(
    "size", [b"", b"zz", b"-1", b"+1", b"0x1", b"1_0", b"1 0", b"\xff"], ids=repr
)
def test_an_invalid_chunk_size_is_an_error(size: bytes) -> None:
    with pytest.raises(ChunkedError, match="invalid chunk size"):
        ChunkedDecoder().feed(size + b"\r\nx\r\n")


@pytest.mark.parametrize("where", ["size", "trailer"])
def test_a_line_longer_than_the_limit_is_an_error_even_unfinished(where: str) -> None:
    decoder = ChunkedDecoder()
    if where == "trailer":
        decoder.feed(b"0\r\n")
    with pytest.raises(ChunkedError, match="too long"):
        decoder.feed(b"1" * (MAX_LINE + 1))


#: Bodies whose last chunk is followed by the end of the input instead of the blank line
#: after the trailers: complete for ``http.client`` and requests.
CUT_AFTER_LAST_CHUNK = {
    "no final CRLF": b"1\r\nx\r\n0\r\n",
    "a trailer, then the end": b"1\r\nx\r\n0\r\nX-Trailer: 1\r\n",
    "half a trailer, then the end": b"1\r\nx\r\n0\r\nX-Tra",
}


@pytest.mark.parametrize("wire", CUT_AFTER_LAST_CHUNK.values(), ids=CUT_AFTER_LAST_CHUNK.keys())
def test_the_end_of_the_input_after_the_last_chunk_completes_the_body(wire: bytes) -> None:
    assert http_client_decode(wire) == b"x"
    decoder = ChunkedDecoder()
    assert decoder.feed(wire) == b"x"
    assert decoder.finish()
    assert decoder.done


@pytest.mark.parametrize("wire", [b"", b"1\r\n", b"1\r\nx", b"1\r\nx\r\n", b"1\r\nx\r\n0"])
def test_the_end_of_the_input_before_the_last_chunk_leaves_the_body_incomplete(
    wire: bytes,
) -> None:
    decoder = ChunkedDecoder()
    decoder.feed(wire)
    assert not decoder.finish()
    assert not decoder.done


# --- over a real socket -----------------------------------------------------------------------


def send_raw(conn: Conn, wire: bytes) -> None:
    """Answer with ``wire`` as a chunked body, head and framing written here."""
    conn.raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + wire
    )


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[Client]:
    with Client(server.url + "/v1", "sk-test", timeouts=Timeouts(idle=5.0), retry=0) as c:
        yield c


def test_chunks_that_arrived_together_are_read_together(
    server: LoopbackServer, client: Client
) -> None:
    texts = [f"w{i} " for i in range(200)]
    body = answer(*texts)

    server.route("/v1/chat/completions", lambda conn: send_raw(conn, encode(sse_events(body))))
    reads: list[bytes] = []
    with client.stream(BODY, on_bytes=reads.append) as stream:
        assert stream.result(timeout=10).content == "".join(texts)
    # http.client read one chunk (one event) per read: 200 reads and more.
    assert len(reads) <= 3


def test_chunk_extensions_and_trailers_are_read_and_the_connection_reused(
    server: LoopbackServer, client: Client
) -> None:
    def handler(conn: Conn) -> None:
        conn.keep_alive = True
        events = sse_events(answer("Hel", "lo"))
        wire = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(e), e) for e in events)
        send_raw(conn, wire + b"0\r\nX-Trailer: yes\r\n\r\n")

    server.set_default(handler)
    for _ in range(3):
        with client.stream(BODY) as stream:
            assert stream.result(timeout=10).content == "Hello"
    assert {r.connection_id for r in server.wait_for_requests(3)} == {0}


def test_an_invalid_chunk_size_breaks_the_stream_after_what_came_before(
    server: LoopbackServer, client: Client
) -> None:
    kept = event(chunk("kept", delta={"role": "assistant"}))
    server.route(
        "/v1/chat/completions", lambda conn: send_raw(conn, encode([kept])[:-5] + b"zz\r\n")
    )
    stream = client.stream(BODY)
    seen = []
    with pytest.raises(StreamConnectionError, match="ChunkedError") as info:
        for item in stream:
            seen.append(item)
    assert info.value.partial is not None
    assert info.value.partial.content == "kept"
    assert seen


@pytest.mark.parametrize("end", CUT_AFTER_LAST_CHUNK.values(), ids=CUT_AFTER_LAST_CHUNK.keys())
@pytest.mark.parametrize("done", [True, False], ids=["DONE", "no DONE"])
def test_a_body_closed_after_its_last_chunk_is_complete(
    server: LoopbackServer, client: Client, end: bytes, done: bool
) -> None:
    last = end[len(b"1\r\nx\r\n") :]  # the last chunk and what follows it

    def handler(conn: Conn) -> None:
        conn.raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + encode(sse_events(answer("Hel", "lo", done=done)))[: -len(b"0\r\n\r\n")]
            + last
        )
        conn.abort()  # the end of the input: the server closes the connection

    server.set_default(handler)
    for _ in range(2):  # the second request opens a new connection: the first was closed
        with client.stream(BODY) as stream:
            assert stream.result(timeout=10).content == "Hello"
    assert [r.connection_id for r in server.wait_for_requests(2)] == [0, 1]

"""``Client.stream(on_bytes=...)``: the body's bytes as read, the hook behind
``chatstream chat --record``."""

from __future__ import annotations

import json
import threading

import pytest

import chatstream
from tests.helpers import build_body, chunk
from tests.loopback import LoopbackServer, sse_body

pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"
BODY = build_body(
    [chunk("h\u00e9llo"), chunk(finish="stop")],
    event=None,
    done=True,
)


@pytest.mark.parametrize("gzip", [False, True])
def test_on_bytes_gets_the_decoded_body_on_the_worker_thread(
    server: LoopbackServer, gzip: bool
) -> None:
    server.route(PATH, sse_body(BODY, split=True, gzip=gzip))
    pieces: list[bytes] = []
    threads: set[str] = set()

    def record(data: bytes) -> None:
        pieces.append(data)
        threads.add(threading.current_thread().name)

    with chatstream.Client(server.url + "/v1") as client:
        response = client.stream({"model": "m", "messages": []}, on_bytes=record).result()
    assert response.content == "h\u00e9llo"
    assert b"".join(pieces) == BODY
    assert threads == {"chatstream-worker"}


def test_on_bytes_sees_a_whole_json_completion(server: LoopbackServer) -> None:
    completion = {
        "id": "c1",
        "choices": [{"index": 0, "message": {"content": "whole"}, "finish_reason": "stop"}],
    }
    data = json.dumps(completion).encode()
    server.route(PATH, lambda conn: conn.respond(200, data, {"Content-Type": "application/json"}))
    pieces: list[bytes] = []
    with chatstream.Client(server.url + "/v1") as client:
        stream = client.stream({"model": "m", "messages": []}, on_bytes=pieces.append)
        assert stream.result().content == "whole"
    assert b"".join(pieces) == data


def test_an_on_bytes_that_raises_ends_the_stream(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(BODY))

    def full_disk(data: bytes) -> None:
        raise OSError("No space left on device")

    with chatstream.Client(server.url + "/v1") as client:
        stream = client.stream({"model": "m", "messages": []}, on_bytes=full_disk)
        with pytest.raises(chatstream.CallbackError) as caught:
            stream.result()
    assert isinstance(caught.value.__cause__, OSError)

"""The live-view options of the client, over real sockets (tests/loopback.py): set on the
client, overridden per stream, and given the request body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chatstream import (
    Client,
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputTextParsed,
    Retry,
    StreamOptions,
    ThinkTags,
    Timeouts,
)
from tests.helpers import BODY, build_body, chunk
from tests.loopback import LoopbackServer, sse_body

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT = 5.0


def sse(*contents: str | dict[str, Any], finish: str = "stop") -> bytes:
    """A body of content deltas (or other deltas), a finish and [DONE]."""
    chunks = [chunk(c) if isinstance(c, str) else chunk(delta=c) for c in contents]
    return build_body([*chunks, chunk(finish=finish)], event=None, done=True)


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[Client]:
    with Client(
        server.url + "/v1", timeouts=Timeouts(connect=2.0, idle=5.0), retry=Retry(max_retries=0)
    ) as c:
        yield c


def serve(server: LoopbackServer, body: bytes) -> None:
    # Every event in random 1-9 byte writes: the options must not depend on the framing.
    server.route("/v1/chat/completions", sse_body(body, split=True, seed=7))


def call(arguments: str, name: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    fragment: dict[str, Any] = {"index": 0, "function": function}
    if name:
        function["name"] = name
        fragment["id"] = "call_1"
    return {"tool_calls": [fragment]}


def test_partial_json_on_the_client_gives_argument_deltas_their_views(
    server: LoopbackServer,
) -> None:
    serve(server, sse(call('{"path": "a', "write"), call('.md"}'), finish="tool_calls"))
    with (
        Client(
            server.url + "/v1", retry=Retry(max_retries=0), options=StreamOptions(partial_json=True)
        ) as c,
        c.stream(BODY) as stream,
    ):
        views = [e.parsed for e in stream if isinstance(e, FunctionCallArgumentsDelta)]
        assert stream.result(timeout=WAIT).tool_calls == (
            FunctionCall("write", '{"path": "a.md"}', "call_1"),
        )
    assert views == [{"path": "a"}, {"path": "a.md"}]


def test_a_stream_can_turn_partial_json_off_for_itself(server: LoopbackServer) -> None:
    serve(server, sse(call("{}", "f"), finish="tool_calls"))
    with (
        Client(
            server.url + "/v1", retry=Retry(max_retries=0), options=StreamOptions(partial_json=True)
        ) as c,
        c.stream(BODY, options=StreamOptions(partial_json=False)) as stream,
    ):
        views = [e.parsed for e in stream if isinstance(e, FunctionCallArgumentsDelta)]
    assert views == [None]


def test_the_request_body_asking_for_json_turns_on_the_content_view(
    server: LoopbackServer, client: Client
) -> None:
    serve(server, sse('{"answer": "4', '2"}'))
    body = {**BODY, "response_format": {"type": "json_object"}}
    with client.stream(body, options=StreamOptions(partial_json=True)) as stream:
        views = [e.parsed for e in stream if isinstance(e, OutputTextParsed)]
    assert views[-1] == {"answer": "42"}


def test_think_tags_on_a_stream_move_thinking_to_reasoning(
    server: LoopbackServer, client: Client
) -> None:
    serve(server, sse("<thi", "nk>Why?</th", "ink>Because."))
    with client.stream(BODY, options=StreamOptions(think_tags=True)) as stream:
        response = stream.result(timeout=WAIT)
    assert (response.reasoning, response.content) == ("Why?", "Because.")


def test_think_tags_on_the_client_take_a_configuration(server: LoopbackServer) -> None:
    serve(server, sse("Hmm.</reflect>Yes."))
    tags = ThinkTags(names=("reflect",), starts_inside=True)
    with (
        Client(
            server.url + "/v1", retry=Retry(max_retries=0), options=StreamOptions(think_tags=tags)
        ) as c,
        c.stream(BODY) as stream,
    ):
        response = stream.result(timeout=WAIT)
    assert (response.reasoning, response.content) == ("Hmm.", "Yes.")


def test_text_tool_calls_on_a_stream_recover_a_required_bare_call(
    server: LoopbackServer, client: Client
) -> None:
    serve(server, sse('{"name": "ls", "arg', 'uments": {"path": "/"}}'))
    body = {**BODY, "tools": [{"type": "function"}], "tool_choice": "required"}
    with client.stream(body, options=StreamOptions(text_tool_calls=True)) as stream:
        response = stream.result(timeout=WAIT)
    assert response.tool_calls == (FunctionCall("ls", '{"path": "/"}', "tool-call-0"),)
    assert response.content == ""


def test_the_options_are_off_by_default(server: LoopbackServer, client: Client) -> None:
    serve(server, sse("<think>x</think><tool_call>", '{"name": "ls"}</tool_call>'))
    with client.stream(BODY) as stream:
        response = stream.result(timeout=WAIT)
    assert response.content == '<think>x</think><tool_call>{"name": "ls"}</tool_call>'
    assert response.tool_calls == ()


def test_a_streams_options_are_used_as_given_not_merged_with_the_clients(
    server: LoopbackServer,
) -> None:
    serve(server, sse("Hi"))
    raw = StreamOptions(raw_chunks=True)
    with (
        Client(server.url + "/v1", retry=Retry(max_retries=0), options=raw) as c,
        c.stream(BODY, options=StreamOptions(partial_json=True)) as stream,
    ):
        kinds = {type(e).__name__ for e in stream}
    assert "RawChunk" not in kinds and "OutputTextDelta" in kinds

"""The Responses API wire (rules v3): the reducer's rules, choosing the wire, sending back."""

from __future__ import annotations

import json
from typing import Any

import pytest

import chatstream
from chatstream import (
    ChatStreamError,
    Client,
    Completed,
    ConfigurationError,
    Created,
    FunctionCall,
    FunctionCallArgumentsDelta,
    IncompleteStreamError,
    Message,
    OtherItem,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    ProviderError,
    ProviderRateLimitError,
    RawChunk,
    Reasoning,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    StreamOptions,
    StreamParser,
    UnexpectedResponseError,
)
from chatstream.cli.command import main
from chatstream.core.responses import retry_delay

from ..helpers import RESPONSES_CORPUS, TIMEOUTS, comparable, drain, expectation, kinds
from ..loopback import Handler, LoopbackServer, sequence, sse_body

RESPONSE = {"id": "resp_1", "model": "m", "status": "in_progress"}


def body(*events: dict[str, Any], named: bool = False, tail: bytes = b"") -> bytes:
    """An SSE body with one ``data:`` message per event (with ``event:`` lines when
    ``named``, as OpenAI and llama.cpp's server send them)."""
    out = b""
    for event in events:
        head = f"event: {event.get('type', 'message')}\n" if named else ""
        out += f"{head}data: {json.dumps(event)}\n\n".encode()
    return out + tail


def created() -> dict[str, Any]:
    return {"type": "response.created", "response": RESPONSE}


def completed(**response: Any) -> dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {**RESPONSE, "status": "completed", **response},
    }


def added(item: dict[str, Any], index: int | None = 0) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.output_item.added", "item": item}
    if index is not None:
        event["output_index"] = index
    return event


def done(item: dict[str, Any], index: int | None = 0) -> dict[str, Any]:
    return {**added(item, index), "type": "response.output_item.done"}


def text(delta: str, index: int | None = 0, **more: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.output_text.delta", "delta": delta, **more}
    if index is not None:
        event["output_index"] = index
    return event


MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}


def run(data: bytes, **options: Any) -> tuple[list[Any], ChatStreamError | None, Any]:
    parser = StreamParser(api="responses", **options)
    events, error = drain(parser.iter_events([data]))
    return events, error, parser.response


# --- the reducer's rules ------------------------------------------------------------------


def test_llamacpp_dialect_without_indexes_reads_text_and_a_call() -> None:
    # llama.cpp's server: event lines, no output_index/content_index/sequence_number, no
    # function_call_arguments.done, no [DONE].
    data = body(
        created(),
        added(MESSAGE, None),
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "part": {"type": "output_text", "text": ""},
        },
        text("Hel", None, item_id="msg_1"),
        text("lo", None, item_id="msg_1"),
        done({"type": "message", "id": "msg_1", "role": "assistant"}, None),
        added({**CALL, "id": "fc_2"}, None),
        {"type": "response.function_call_arguments.delta", "item_id": "fc_2", "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_2", "delta": "1}"},
        done({**CALL, "id": "fc_2", "arguments": '{"a":1}'}, None),
        completed(),
        named=True,
    )
    events, error, response = run(data)
    assert error is None
    assert response.content == "Hello"
    assert [(c.call_id, c.id, c.arguments) for c in response.tool_calls] == [
        ("call_1", "fc_2", '{"a":1}')
    ]
    assert kinds(events) == [
        "Created",
        "OutputItemAdded(Message)",
        "OutputTextDelta",
        "OutputTextDelta",
        "OutputItemDone(Message)",
        "OutputItemAdded(FunctionCall)",
        "FunctionCallArgumentsDelta",
        "FunctionCallArgumentsDelta",
        "OutputItemDone(FunctionCall)",
        "Completed",
    ]


def test_a_bare_done_item_keeps_the_text_of_its_deltas() -> None:
    data = body(created(), added(MESSAGE), text("Hi"), done(MESSAGE), completed())
    assert run(data)[2].content == "Hi"


def test_a_done_item_that_carries_its_text_wins_over_different_deltas() -> None:
    final = {**MESSAGE, "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}
    data = body(created(), added(MESSAGE), text("Hx"), done(final), completed())
    assert run(data)[2].content == "Hello"


def test_an_error_event_then_response_failed_takes_the_failed_events_kind() -> None:
    failed = {
        "type": "response.failed",
        "response": {**RESPONSE, "error": {"code": "context_length_exceeded", "message": "x"}},
    }
    data = body(created(), {"type": "error", "code": "server_error", "message": "boom"}, failed)
    error = run(data)[1]
    assert isinstance(error, chatstream.ProviderContextWindowError)
    assert isinstance(error, chatstream.ContextWindowExceeded)


def test_a_rate_limit_failure_carries_the_delay_its_message_asks_for() -> None:
    message = "Rate limit reached. Please try again in 20ms."
    failed = {
        "type": "response.failed",
        "response": {**RESPONSE, "error": {"code": "rate_limit_exceeded", "message": message}},
    }
    error = run(body(created(), failed))[1]
    assert isinstance(error, ProviderRateLimitError)
    assert error.kind == "rate_limited" and error.retry_after == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Please try again in 1.5s.", 1.5),
        ("please TRY AGAIN IN 3 seconds", 3.0),
        ("try again in 250ms", 0.25),
        ("try again later", None),
    ],
)
def test_retry_delay_reads_seconds_and_milliseconds(message: str, seconds: float | None) -> None:
    assert retry_delay(message) == seconds


def test_a_bare_error_object_mid_stream_is_a_provider_error_keeping_the_text() -> None:
    # llama.cpp's server: {"error": {...}} with no type and no event line, then the end.
    data = body(created(), added(MESSAGE), text("par"))
    data += b'data: {"error": {"code": 500, "message": "oops", "type": "server_error"}}\n\n'
    _, error, response = run(data)
    assert isinstance(error, ProviderError) and error.code == 500
    assert response.content == "par" and response.error is not None


def test_a_stream_closed_before_a_terminal_event_is_incomplete_with_everything_kept() -> None:
    data = body(
        created(),
        added(CALL),
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{"},
    )
    error = run(data)[1]
    assert isinstance(error, IncompleteStreamError)
    assert error.partial is not None
    assert [c.arguments for c in error.partial.incomplete_tool_calls] == ["{"]


def test_nothing_after_a_terminal_event_is_read() -> None:
    data = body(
        created(), added(MESSAGE), text("a"), completed(), text("b"), completed(id="resp_2")
    )
    response = run(data)[2]
    assert (response.content, response.response_id) == ("a", "resp_1")


def test_incomplete_is_a_normal_end_with_its_reason_and_the_open_call_incomplete() -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {**RESPONSE, "incomplete_details": {"reason": "max_output_tokens"}},
    }
    data = body(
        created(),
        added(CALL),
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"a'},
        incomplete,
    )
    events, error, response = run(data)
    assert error is None and response.truncated
    assert response.finish_reason == "max_output_tokens"
    assert isinstance(events[-2], OutputItemIncomplete) and isinstance(events[-1], Completed)


def test_incomplete_without_a_reason_says_incomplete() -> None:
    data = body(created(), {"type": "response.incomplete", "response": RESPONSE})
    assert run(data)[2].finish_reason == "incomplete"


def test_usage_counts_only_from_the_terminal_event() -> None:
    usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    early = {"type": "response.created", "response": {**RESPONSE, "usage": usage}}
    assert run(body(early, completed()))[2].usage is None
    final = run(body(created(), completed(usage={**usage, "input_tokens_details": None})))[2]
    assert final.usage.counts() == {
        "input_tokens": 5,
        "cached_input_tokens": 0,
        "output_tokens": 2,
        "reasoning_output_tokens": 0,
        "total_tokens": 7,
    }


def test_events_keep_their_sequence_numbers() -> None:
    data = body(
        {**created(), "sequence_number": 0},
        {**added(MESSAGE), "sequence_number": 1},
        {**text("x"), "sequence_number": 2},
        {**completed(), "sequence_number": 3},
    )
    events = run(data)[0]
    assert [getattr(e, "sequence_number", None) for e in events] == [0, 1, 2, None, 3]


def test_summary_parts_are_announced_and_kept_in_order() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"}

    def part(i: int, delta: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "response.reasoning_summary_part.added",
                "output_index": 0,
                "summary_index": i,
            },
            {
                "type": "response.reasoning_summary_text.delta",
                "output_index": 0,
                "summary_index": i,
                "delta": delta,
            },
        ]

    data = body(
        created(), added(reasoning), *part(0, "one"), *part(1, "two"), done(reasoning), completed()
    )
    events, _, response = run(data)
    assert [type(e) for e in events[2:6]] == [
        ReasoningSummaryPartAdded,
        ReasoningSummaryDelta,
        ReasoningSummaryPartAdded,
        ReasoningSummaryDelta,
    ]
    assert response.reasoning_summary == ("one", "two")
    item = response.items[0]
    assert isinstance(item, Reasoning)
    assert (item.id, item.encrypted_content, [p.text for p in item.summary]) == (
        "rs_1",
        "enc",
        ["one", "two"],
    )


def test_hosted_items_are_kept_whole_and_never_tool_calls() -> None:
    shell = {
        "type": "local_shell_call",
        "id": "ls_1",
        "call_id": "call_9",
        "action": {"command": ["ls"]},
    }
    data = body(created(), added(shell), done(shell), completed())
    response = run(data)[2]
    assert response.tool_calls == () and response.incomplete_tool_calls == ()
    assert response.other_items == (OtherItem("local_shell_call", shell, "ls_1"),)


def test_unknown_event_types_are_skipped_and_kept_as_raw_chunks() -> None:
    odd = {"type": "response.web_search_call.searching", "output_index": 0, "item_id": "ws_1"}
    data = body(created(), odd, completed())
    assert [type(e) for e in run(data)[0]] == [Created, Completed]
    raw = run(data, options=StreamOptions(raw_chunks=True))[0]
    assert RawChunk(odd) in raw


def test_partial_json_parses_a_calls_arguments_as_they_stream() -> None:
    delta = {"type": "response.function_call_arguments.delta", "output_index": 0}
    data = body(created(), added(CALL), {**delta, "delta": '{"city": "Pa'}, completed())
    views = [
        e.parsed
        for e in run(data, options=StreamOptions(partial_json=True))[0]
        if isinstance(e, FunctionCallArgumentsDelta)
    ]
    assert views == [{"city": "Pa"}]


def test_every_added_item_is_done_or_incomplete_at_a_normal_end() -> None:
    data = body(created(), added(MESSAGE, 0), text("hi", 0), added(CALL, 1), completed())
    events = run(data)[0]
    ends = [e for e in events if isinstance(e, (OutputItemDone, OutputItemIncomplete))]
    assert [type(e.item) for e in ends] == [Message, FunctionCall]
    assert [type(e.item) for e in events if isinstance(e, OutputItemAdded)] == [
        Message,
        FunctionCall,
    ]


def test_a_whole_response_object_reads_as_its_stream() -> None:
    whole = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [
            {**MESSAGE, "content": [{"type": "output_text", "text": "Hi", "annotations": []}]}
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    }
    parser = StreamParser(api="responses")
    parser.feed_completion(json.dumps(whole).encode())
    assert (parser.result().content, parser.result().usage.total_tokens) == ("Hi", 2)
    other = StreamParser(api="responses")
    other.feed_completion(b'{"detail": "nope"}')
    assert isinstance(other.error, UnexpectedResponseError)


def test_the_chat_wire_reports_no_summary_and_no_other_items() -> None:
    parser = StreamParser()
    parser.feed(b'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n')
    parser.close()
    result = parser.result().to_result_dict()
    assert (result["reasoning_summary"], result["other_items"]) == ([], [])


def test_an_unknown_wire_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        StreamParser(api="completions")


# --- choosing the wire on the client ------------------------------------------------------


def test_the_responses_wire_posts_to_responses_without_stream_options(
    server: LoopbackServer,
) -> None:
    server.route(
        "/v1/responses", sse_body(body(created(), added(MESSAGE), text("ok"), completed()))
    )
    client = Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses")
    with client, client.stream({"model": "m", "input": "hi"}) as stream:
        assert stream.result().content == "ok"
    request = server.requests[-1]
    assert request.path == "/v1/responses"
    assert json.loads(request.body) == {"model": "m", "input": "hi", "stream": True}


def test_one_stream_can_choose_the_other_wire(server: LoopbackServer) -> None:
    server.route(
        "/v1/responses", sse_body(body(created(), added(MESSAGE), text("ok"), completed()))
    )
    client = Client(server.url + "/v1", timeouts=TIMEOUTS)
    with (
        client,
        client.stream(
            {"model": "m", "input": "hi"}, options=StreamOptions(api="responses")
        ) as stream,
    ):
        assert stream.result().api == "responses"
    assert server.requests[-1].path == "/v1/responses"


@pytest.mark.parametrize(
    ("api", "request_body"),
    [("responses", {"model": "m", "messages": []}), ("chat", {"model": "m", "input": "hi"})],
)
def test_a_body_for_the_other_wire_is_refused_before_any_request(
    server: LoopbackServer, api: str, request_body: dict[str, Any]
) -> None:
    client = Client(server.url, timeouts=TIMEOUTS, api=api)
    with client, pytest.raises(ConfigurationError, match="other wire"):
        client.stream(request_body)
    assert server.requests == []


# --- sending back -------------------------------------------------------------------------


def test_to_input_gives_the_items_back_with_their_ids_then_the_tool_outputs() -> None:
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "s"}],
        "encrypted_content": "enc",
    }
    call = {**CALL, "arguments": "{}", "status": "completed"}
    data = body(
        created(),
        added(reasoning, 0),
        done(reasoning, 0),
        added(CALL, 1),
        done(call, 1),
        completed(),
    )
    response = run(data)[2]
    assert response.to_input({"call_1": "42"}) == [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "s"}],
            "encrypted_content": "enc",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
            "id": "fc_1",
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    ]


# --- the conversation ---------------------------------------------------------------------


def _answers(*bodies: bytes) -> Handler:
    """A handler giving each request the next body."""
    return sequence(*[sse_body(b) for b in bodies])


CALL_TURN = body(created(), added(CALL), done({**CALL, "arguments": "{}"}), completed())
TEXT_TURN = body(created(), added(MESSAGE), text("done"), done(MESSAGE), completed(id="resp_2"))


def test_a_conversation_on_the_responses_wire_sends_input_items_and_tool_outputs(
    server: LoopbackServer,
) -> None:
    server.route("/v1/responses", _answers(CALL_TURN, TEXT_TURN))
    client = Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses")
    with client:
        conversation = chatstream.Conversation(client, {"model": "m"})
        answer = conversation.ask("weather?", run_tool=lambda call: "sunny")
    assert answer.content == "done"
    second = json.loads(server.requests[1].body)
    assert second["input"] == [
        {"role": "user", "content": "weather?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
            "id": "fc_1",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]


def test_previous_response_id_sends_only_the_new_items(server: LoopbackServer) -> None:
    server.route("/v1/responses", _answers(CALL_TURN, TEXT_TURN))
    client = Client(server.url + "/v1", timeouts=TIMEOUTS)
    with client:
        conversation = chatstream.Conversation(
            client, {"model": "m"}, api="responses", previous_response_id=True
        )
        conversation.ask("weather?", run_tool=lambda call: "sunny")
    second = json.loads(server.requests[1].body)
    assert second["previous_response_id"] == "resp_1"
    assert second["input"] == [
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    ]


def test_a_failed_request_leaves_the_responses_history_unchanged(server: LoopbackServer) -> None:
    cut = body(created(), added(MESSAGE), text("par"))
    server.route("/v1/responses", _answers(CALL_TURN, TEXT_TURN, cut))
    client = Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses")
    with client:
        conversation = chatstream.Conversation(client, {"model": "m"}, previous_response_id=True)
        conversation.ask("weather?", run_tool=lambda call: "sunny")
        before = list(conversation.messages)
        with pytest.raises(IncompleteStreamError):
            conversation.ask("again?")
        assert conversation.messages == before
        assert conversation.body()["previous_response_id"] == "resp_2"


def test_reasoning_items_of_earlier_turns_are_left_out_unless_kept(server: LoopbackServer) -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"}
    turn = body(
        created(), added(reasoning), done(reasoning), added(MESSAGE, 1), text("a", 1), completed()
    )
    server.route("/v1/responses", _answers(turn, turn, turn, turn))
    client = Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses")
    with client:
        for keep, count in ((False, 0), (True, 1)):
            conversation = chatstream.Conversation(client, {"model": "m"}, keep_reasoning=keep)
            conversation.ask("one")
            conversation.ask("two")
            sent = json.loads(server.requests[-1].body)["input"]
            assert sum(item.get("type") == "reasoning" for item in sent) == count


def test_previous_response_id_on_the_chat_wire_is_a_configuration_error() -> None:
    with Client("http://127.0.0.1:9") as client, pytest.raises(ConfigurationError):
        chatstream.Conversation(client, previous_response_id=True)


# --- the command --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai-custom-tool", "refusal"])
def test_replay_tells_a_responses_recording_by_its_first_event(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(RESPONSES_CORPUS / f"{name}.sse"), "--result"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert comparable(result) == comparable(expectation(name, RESPONSES_CORPUS))


def test_chat_api_responses_posts_input_with_the_options_responses_names(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    server.route("/v1/responses", sse_body(TEXT_TURN))
    tools = tmp_path / "tools.json"
    function = {"name": "f", "parameters": {"type": "object"}}
    tools.write_text(json.dumps([{"type": "function", "function": function}]))
    argv = ["chat", "--base-url", server.url + "/v1", "--model", "m", "--api", "responses"]
    argv += ["--max-tokens", "5", "--tools", str(tools), "--tool-choice", "f", "hello"]
    assert main(argv) == 0
    assert "done" in capsys.readouterr().out
    sent = json.loads(server.requests[-1].body)
    assert sent["input"] == [{"role": "user", "content": "hello"}]
    assert sent["max_output_tokens"] == 5 and "max_tokens" not in sent
    assert sent["tools"] == [{"type": "function", **function}]
    assert sent["tool_choice"] == {"type": "function", "name": "f"}

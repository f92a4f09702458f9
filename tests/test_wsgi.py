"""The AI SDK's UI Message Stream protocol: chatstream.wsgi.UIMessageChunks (what each
event becomes), UIMessageStreamBody (the bytes, the steps, closing), and the ai package's
own reader parsing what the relay sends (node)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

import chatstream
from chatstream import (
    FunctionCall,
    FunctionCallArgumentsDelta,
    Message,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
    Reasoning,
    ReasoningContentDelta,
    RefusalDelta,
)
from chatstream.cli.demo import DemoServer
from chatstream.errors import IncompleteStreamError
from chatstream.tools import INTERRUPTED, REFUSED, ToolResult
from chatstream.wsgi import (
    UI_MESSAGE_STREAM_HEADERS,
    UIMessageChunks,
    ui_message_stream,
)

from .browser_example import example_app, run_node, serving

CALL = FunctionCall(name="get_weather", arguments='{"city": "Annecy"}', call_id="call_1")


def types(chunks: list[dict[str, Any]]) -> list[str]:
    return [chunk["type"] for chunk in chunks]


def started() -> UIMessageChunks:
    chunks = UIMessageChunks(message_id="m")
    chunks.start()
    return chunks


def test_a_message_starts_with_its_id_and_a_step() -> None:
    assert UIMessageChunks(message_id="m").start() == [
        {"type": "start", "messageId": "m"},
        {"type": "start-step"},
    ]


def test_text_deltas_share_one_text_part() -> None:
    chunks = started()
    out = chunks.event(OutputTextDelta("a")) + chunks.event(OutputTextDelta("b"))
    assert out == [
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "a"},
        {"type": "text-delta", "id": "text-1", "delta": "b"},
    ]


def test_reasoning_then_text_closes_the_reasoning_part() -> None:
    chunks = started()
    out = chunks.event(ReasoningContentDelta("think")) + chunks.event(OutputTextDelta("say"))
    assert types(out) == [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
    ]
    assert out[2]["id"] == "reasoning-1" and out[3]["id"] == "text-2"


def test_a_finished_message_item_ends_its_text_part() -> None:
    chunks = started()
    chunks.event(OutputTextDelta("a"))
    assert chunks.event(OutputItemDone(Message())) == [{"type": "text-end", "id": "text-1"}]


def test_a_finished_reasoning_item_ends_its_part() -> None:
    chunks = started()
    chunks.event(ReasoningContentDelta("a"))
    assert types(chunks.event(OutputItemDone(Reasoning()))) == ["reasoning-end"]


def test_a_tool_call_streams_its_input_then_gives_it_parsed() -> None:
    chunks = started()
    out = chunks.event(OutputItemAdded(FunctionCall("get_weather", "", "call_1")))
    out += chunks.event(FunctionCallArgumentsDelta("call_1", '{"city": '))
    out += chunks.event(FunctionCallArgumentsDelta("call_1", '"Annecy"}'))
    out += chunks.event(OutputItemDone(CALL))
    assert out == [
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "get_weather"},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '{"city": '},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '"Annecy"}'},
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "get_weather",
            "input": {"city": "Annecy"},
        },
    ]


def test_a_tool_call_that_starts_closes_the_open_text() -> None:
    chunks = started()
    chunks.event(OutputTextDelta("Let me check."))
    out = chunks.event(OutputItemAdded(CALL))
    assert types(out) == ["text-end", "tool-input-start"]


def test_a_call_finished_without_being_announced_is_started_first() -> None:
    out = started().event(OutputItemDone(CALL))
    assert types(out) == ["tool-input-start", "tool-input-available"]


def test_arguments_that_are_not_json_are_a_tool_input_error() -> None:
    out = started().event(OutputItemDone(FunctionCall("f", '{"a": ', "call_1")))
    assert out[-1]["type"] == "tool-input-error"
    assert out[-1]["input"] == '{"a": ' and out[-1]["errorText"]


def test_a_call_cut_off_is_a_tool_input_error() -> None:
    chunks = started()
    chunks.event(OutputItemAdded(FunctionCall("f", "", "call_1")))
    out = chunks.event(OutputItemIncomplete(FunctionCall("f", '{"a"', "call_1")))
    assert types(out) == ["tool-input-error"]


def test_a_custom_tool_call_gives_its_input_as_text() -> None:
    out = started().event(OutputItemDone(FunctionCall("patch", "*** Begin", "c", custom=True)))
    assert out[0]["inputEncoding"] == "text"
    assert out[1] == {
        "type": "tool-input-available",
        "toolCallId": "c",
        "toolName": "patch",
        "input": "*** Begin",
    }


def test_a_refusal_is_relayed_as_text() -> None:
    assert types(started().event(RefusalDelta("I can't."))) == ["text-start", "text-delta"]


def test_other_choices_are_not_relayed() -> None:
    assert started().event(OutputTextDelta("b", choice_index=1)) == []


def test_arguments_of_a_call_never_announced_are_not_relayed() -> None:
    assert started().event(FunctionCallArgumentsDelta("unknown", "{")) == []


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content-filter"),
        ("tool_calls", "tool-calls"),
        ("eos", "other"),
        (None, "stop"),
    ],
)
def test_the_finish_chunk_names_the_reason_in_the_protocols_words(
    finish_reason: str | None, expected: str
) -> None:
    response = chatstream.Response(
        choices=[chatstream.ChoiceResult(0, finish_reason=finish_reason)]
    )
    assert started().finish(response)[-1] == {"type": "finish", "finishReason": expected}


def test_a_failure_closes_the_open_part_then_sends_the_error() -> None:
    chunks = started()
    chunks.event(OutputTextDelta("a"))
    out = chunks.fail(IncompleteStreamError("The stream ended early."))
    assert out == [
        {"type": "text-end", "id": "text-1"},
        {"type": "error", "errorText": "The stream ended early."},
    ]


def test_a_tool_result_is_its_output() -> None:
    result = ToolResult(CALL, '{"t": 1}', output={"t": 1})
    assert started().tool_output(result) == [
        {"type": "tool-output-available", "toolCallId": "call_1", "output": {"t": 1}}
    ]


def test_a_tool_result_without_an_output_is_its_text() -> None:
    assert started().tool_output(ToolResult(CALL, "18 C")) == [
        {"type": "tool-output-available", "toolCallId": "call_1", "output": "18 C"}
    ]


@pytest.mark.parametrize("status", ["error", "interrupted", "unknown_tool"])
def test_a_tool_result_that_is_no_result_is_an_output_error(status: str) -> None:
    assert started().tool_output(ToolResult(CALL, INTERRUPTED, status)) == [
        {"type": "tool-output-error", "toolCallId": "call_1", "errorText": INTERRUPTED}
    ]


def test_a_refused_call_is_an_output_denied() -> None:
    assert started().tool_output(ToolResult(CALL, REFUSED, "refused")) == [
        {"type": "tool-output-denied", "toolCallId": "call_1"}
    ]


def test_the_headers_name_the_protocol_and_its_version() -> None:
    assert UI_MESSAGE_STREAM_HEADERS["x-vercel-ai-ui-message-stream"] == "v1"
    assert UI_MESSAGE_STREAM_HEADERS["Content-Type"].startswith("text/event-stream")


# --- the body, over a real stream -----------------------------------------------------------


def frames(body: Iterable[bytes]) -> list[Any]:
    """The data of each SSE event of a relayed body (JSON, or the ``[DONE]`` marker)."""
    out: list[Any] = []
    for frame in b"".join(body).decode().split("\n\n"):
        if not frame:
            continue
        assert frame.startswith("data: ") and "\n" not in frame
        data = frame[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.fixture
def demo() -> Iterator[tuple[DemoServer, chatstream.Client]]:
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        yield server, client


def demo_body(server: DemoServer) -> dict[str, Any]:
    script = server.script
    return {
        "model": script.model,
        "messages": [{"role": "user", "content": script.prompt}],
        "tools": script.tools,
    }


def test_a_relayed_stream_is_one_message_ended_by_done(
    demo: tuple[DemoServer, chatstream.Client],
) -> None:
    server, client = demo
    out = frames(ui_message_stream(client.stream(demo_body(server)), message_id="m"))
    assert out[:2] == [{"type": "start", "messageId": "m"}, {"type": "start-step"}]
    assert out[-3:] == [
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "tool-calls"},
        "[DONE]",
    ]
    text = "".join(c["delta"] for c in out[:-1] if c["type"] == "text-delta")
    assert text == server.script.turns[0]["content"]
    available = [c for c in out[:-1] if c["type"] == "tool-input-available"]
    assert [c["toolName"] for c in available] == ["get_weather"]


def test_a_failed_stream_ends_with_an_error_chunk_and_done() -> None:
    with chatstream.Client("http://127.0.0.1:9") as client:  # nothing listens there
        out = frames(ui_message_stream(client.stream({"model": "m", "messages": []})))
    assert out[-2]["type"] == "error" and out[-1] == "[DONE]"


def test_the_steps_of_a_tool_loop_are_one_message(
    demo: tuple[DemoServer, chatstream.Client],
) -> None:
    server, client = demo
    body = demo_body(server)

    def steps() -> Iterator[chatstream.ChatStream | ToolResult]:
        turn = client.turn()
        first = turn.stream(body)
        yield first
        response = first.result()
        call = response.tool_calls[0]
        result = server.script.run_tool(call)
        yield ToolResult(call, result)
        messages = [
            *body["messages"],
            response.to_message(),
            {"role": "tool", "tool_call_id": call.call_id, "content": result},
        ]
        yield turn.stream({**body, "messages": messages})

    out = frames(ui_message_stream(steps()))
    kinds = types(out[:-1])
    assert kinds.count("start-step") == 2 and kinds.count("finish-step") == 2
    assert kinds.index("tool-output-available") < kinds.index("finish-step")
    assert out[-2] == {"type": "finish", "finishReason": "stop"}


def test_a_failed_step_stops_the_loop(demo: tuple[DemoServer, chatstream.Client]) -> None:
    _, client = demo
    later: list[str] = []

    def steps() -> Iterator[chatstream.ChatStream]:
        yield client.stream({"model": "m", "messages": [], "tools": "not a list"})
        later.append("ran")  # never reached: the relay stops at the failure

    out = frames(ui_message_stream(steps()))
    assert out[-2]["type"] == "error" and later == []


def test_closing_the_body_closes_the_upstream_stream() -> None:
    # The paced demo: the answer takes seconds, the browser leaves after the start.
    with DemoServer() as server, chatstream.Client(server.base_url) as client:
        stream = client.stream(demo_body(server))
        body = ui_message_stream(stream)
        next(iter(body))
        body.close()  # what the WSGI server does when the browser goes away (stop())
        with pytest.raises(chatstream.StreamClosedError):
            stream.result(timeout=5)


def test_closing_a_body_never_read_closes_the_stream() -> None:
    with DemoServer() as server, chatstream.Client(server.base_url) as client:
        stream = client.stream(demo_body(server))
        ui_message_stream(stream).close()
        with pytest.raises(chatstream.StreamClosedError):
            stream.result(timeout=5)


# --- the ai package's own reader ------------------------------------------------------------


def test_the_ai_packages_reader_reads_the_whole_tool_loop() -> None:
    with serving() as (url, demo):
        message = run_node("read_ui_stream.mjs", f"{url}/api/chat", demo.script.prompt)
    parts = message["parts"]
    assert message["role"] == "assistant"
    assert [p["type"] for p in parts].count("step-start") == 2
    (tool,) = [p for p in parts if p["type"] == "tool-get_weather"]
    assert tool["state"] == "output-available"
    assert tool["input"]["city"] == "Annecy"
    assert tool["output"] == json.loads(
        demo.script.run_tool(FunctionCall("get_weather", json.dumps(tool["input"]), "c"))
    )
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    assert text == demo.script.turns[0]["content"] + demo.script.turns[1]["content"]
    assert any(p["type"] == "reasoning" and p["text"] for p in parts)


# --- a ToolLoop, relayed --------------------------------------------------------------------


def demo_loop(
    server: DemoServer, client: chatstream.Client, **options: Any
) -> tuple[chatstream.Conversation, chatstream.ToolLoop]:
    script = server.script
    conversation = chatstream.Conversation(client, {"model": script.model}, system=script.system)
    tools = example_app().demo_tools(script)
    return conversation, conversation.run_steps(script.prompt, tools, **options)


def test_a_tool_loop_is_relayed_as_one_message_of_its_steps(
    demo: tuple[DemoServer, chatstream.Client],
) -> None:
    server, client = demo
    conversation, loop = demo_loop(server, client)
    out = frames(ui_message_stream(loop, message_id="m"))
    kinds = types(out[:-1])
    assert kinds.count("start-step") == 2 and kinds.count("finish-step") == 2
    (available,) = [c for c in out[:-1] if c["type"] == "tool-output-available"]
    assert available["toolCallId"] == server.script.tool_call_id
    assert available["output"] == json.loads(conversation.messages[3]["content"])
    assert kinds.index("tool-output-available") < kinds.index("finish-step")
    assert out[-2:] == [{"type": "finish", "finishReason": "stop"}, "[DONE]"]
    text = "".join(c["delta"] for c in out[:-1] if c["type"] == "text-delta")
    assert text == server.script.turns[0]["content"] + server.script.turns[1]["content"]


def test_a_refused_call_of_a_tool_loop_is_relayed_as_denied(
    demo: tuple[DemoServer, chatstream.Client],
) -> None:
    server, client = demo
    _, loop = demo_loop(server, client, approve=lambda call: False)
    out = frames(ui_message_stream(loop))
    denied = [c for c in out[:-1] if c["type"].startswith("tool-output")]
    assert denied == [{"type": "tool-output-denied", "toolCallId": server.script.tool_call_id}]


def test_closing_the_body_closes_the_tool_loop() -> None:
    # The paced demo: the browser leaves while the first step streams.
    with DemoServer() as server, chatstream.Client(server.base_url) as client:
        conversation, loop = demo_loop(server, client)
        body = ui_message_stream(loop)
        frames_read = iter(body)
        while b"text-delta" not in next(frames_read):
            pass
        body.close()
        assert loop.cancelled.is_set()
        with pytest.raises(chatstream.StreamClosedError):
            loop.result()
    assert len(server.received) == 1  # no tool ran, no second request
    assert [m["role"] for m in conversation.messages] == ["system", "user"]


def test_smoothing_is_for_streams_not_tool_loops(
    demo: tuple[DemoServer, chatstream.Client],
) -> None:
    server, client = demo
    _, loop = demo_loop(server, client)
    with loop, pytest.raises(chatstream.ConfigurationError):
        ui_message_stream(loop, smooth_by="word")


def test_the_ai_packages_reader_reads_a_denied_call_of_a_tool_loop() -> None:
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    chat_messages = example_app().chat_messages
    with DemoServer(fast=True) as demo, chatstream.Client(demo.base_url) as client:
        script = demo.script
        tools = example_app().demo_tools(script)

        @Request.application
        def app(request: Request) -> Response:
            history = chat_messages(json.loads(request.get_data())["messages"])
            conversation = chatstream.Conversation(
                client, {"model": script.model}, system=script.system, messages=history
            )
            loop = conversation.run_steps(None, tools, approve=lambda call: False)
            return Response(ui_message_stream(loop), headers=UI_MESSAGE_STREAM_HEADERS)

        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/"
            message = run_node("read_ui_stream.mjs", url, script.prompt)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
    (tool,) = [p for p in message["parts"] if p["type"] == "tool-get_weather"]
    assert tool["state"] == "output-denied"
    assert [p["type"] for p in message["parts"]].count("step-start") == 2

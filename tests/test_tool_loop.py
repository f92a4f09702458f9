"""Conversation.ask(run_tool=...), a tool loop in the asking thread: its tool rounds are
bounded, a raising ``run_tool`` abandons the turn, and a result that is not text is sent
JSON-encoded, against a scripted model on loopback that checks the history
as OpenAI does."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from chatstream import (
    Client,
    ConfigurationError,
    Conversation,
    FunctionCall,
    MaxStepsExceededError,
    Response,
    Turn,
)
from chatstream.tools import INTERRUPTED
from tests.helpers import TIMEOUTS
from tests.loopback import LoopbackServer
from tests.scripted import history_problem, model

pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"


def always_calls(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """A model that calls a tool whatever it is told."""
    return [("lookup", {"q": "again"})]


def calls_then_answers(messages: list[dict[str, Any]]) -> Any:
    if messages[-1]["role"] == "tool":
        return f"The tool said {messages[-1]['content']}"
    return [("lookup", {"q": "x"})]


def test_a_model_that_always_calls_a_tool_ends_the_turn_at_the_step_limit(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(always_calls))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(MaxStepsExceededError) as caught:
            conversation.ask("Go", run_tool=lambda call: "found")
    assert len(server.requests) == 10
    assert caught.value.max_steps == 10
    assert caught.value.partial is not None and caught.value.partial.tool_calls


def test_the_step_limit_is_a_parameter(server: LoopbackServer) -> None:
    server.route(PATH, model(always_calls))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(MaxStepsExceededError):
            conversation.ask("Go", run_tool=lambda call: "found", max_steps=3)
    assert len(server.requests) == 3


def test_the_step_limit_error_carries_a_history_valid_for_the_next_request(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(always_calls))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(MaxStepsExceededError) as caught:
            conversation.ask("Go", run_tool=lambda call: "found", max_steps=2)
    messages = caught.value.messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert history_problem(messages) is None
    assert conversation.messages == messages


def test_a_turn_within_the_limit_answers(server: LoopbackServer) -> None:
    server.route(PATH, model(calls_then_answers))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        response = conversation.ask("Go", run_tool=lambda call: "found", max_steps=2)
    assert response.content == "The tool said found"


@pytest.mark.parametrize(
    ("result", "sent"),
    [({"temp": 18}, '{"temp": 18}'), ([1, "two"], '[1, "two"]'), (18, "18")],
)
def test_a_tool_result_that_is_not_text_is_sent_json_encoded(
    server: LoopbackServer, result: Any, sent: str
) -> None:
    server.route(PATH, model(calls_then_answers))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        response = conversation.ask("Go", run_tool=lambda call: result)
    assert response.content == f"The tool said {sent}"
    assert json.loads(conversation.messages[2]["content"]) == result


def test_a_tool_result_json_cannot_encode_fails_before_the_request(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(calls_then_answers))

    def run_tool(call: FunctionCall) -> Any:
        return object()

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(ConfigurationError, match="neither text nor encodable as JSON"):
            conversation.ask("Go", run_tool=run_tool)
    assert len(server.requests) == 1
    assert conversation.messages == []


def test_run_tool_runs_in_the_thread_that_asks(server: LoopbackServer) -> None:
    server.route(PATH, model(calls_then_answers))
    threads: list[threading.Thread] = []

    def run_tool(call: FunctionCall) -> str:
        threads.append(threading.current_thread())
        return "found"

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        Conversation(client, {"model": "m"}).ask("Go", run_tool=run_tool)
    assert threads == [threading.current_thread()]


def test_a_raising_run_tool_abandons_the_turn_before_the_next_call(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(lambda messages: [("a", {}), ("b", {})]))
    ran: list[str] = []

    def run_tool(call: FunctionCall) -> str:
        ran.append(call.name)
        raise LookupError("no such thing")

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(LookupError):
            conversation.ask("Go", run_tool=run_tool)
    assert ran == ["a"]
    assert conversation.messages == []


def test_a_conversations_own_send_sends_every_step_of_a_turn(server: LoopbackServer) -> None:
    server.route(PATH, model(calls_then_answers))
    sent: list[int] = []

    def send(turn: Turn, body: dict[str, Any]) -> Response:
        sent.append(len(body["messages"]))
        with turn.stream(body) as stream:
            return stream.result()

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"}, send=send)
        response = conversation.ask("Go", run_tool=lambda call: "found")
    assert response.content == "The tool said found"
    assert sent == [1, 3]


def test_a_keyboard_interrupt_in_a_tool_leaves_every_call_answered(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(lambda messages: [("a", {}), ("b", {})]))

    def a() -> str:
        raise KeyboardInterrupt

    def b() -> str:
        return "never run"

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(KeyboardInterrupt):
            conversation.run("Go", tools=[a, b], parallel=False)
    assert [m["content"] for m in conversation.messages[2:]] == [INTERRUPTED, INTERRUPTED]
    assert history_problem(conversation.messages) is None

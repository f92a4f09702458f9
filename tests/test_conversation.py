"""The conversation's tool loops, against a scripted model on loopback that checks the
history as OpenAI does (every call answered before the next message): Conversation.run,
and Conversation.ask(run_tool=...), a tool loop in the asking thread whose tool rounds
are bounded, where a raising ``run_tool`` abandons the turn and a result that is not
text is sent JSON-encoded."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from chatstream import (
    Client,
    ConfigurationError,
    Conversation,
    FunctionCall,
    MaxStepsExceededError,
    OutputTextDelta,
    Response,
    StepEvent,
    StreamClosedError,
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolResult,
    Turn,
)
from chatstream.tools import INTERRUPTED
from tests.helpers import TIMEOUTS
from tests.loopback import LoopbackServer
from tests.scripted import history_problem, model

pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"


def weather_then_answer(messages: list[dict[str, Any]]) -> Any:
    """Calls two tools at once, then answers with what they said."""
    if messages[-1]["role"] == "tool":
        results = [m["content"] for m in messages if m["role"] == "tool"]
        return " | ".join(results)
    return [("slow_weather", {"city": "Oslo"}), ("slow_time", {"city": "Oslo"})]


def slow_weather(city: str) -> str:
    """The weather in a city (slowly).

    Args:
        city: The city's name.
    """
    time.sleep(0.5)
    return f"18 C in {city}"


def slow_time(city: str) -> dict[str, str]:
    """The time in a city (slowly)."""
    time.sleep(0.5)
    return {"city": city, "time": "12:00"}


def _run(server: LoopbackServer, **options: Any) -> tuple[Any, Conversation, float]:
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        start = time.monotonic()
        response = conversation.run("Weather and time in Oslo?", **options)
        return response, conversation, time.monotonic() - start


def test_a_loop_runs_the_calls_and_answers_with_their_results(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    response, conversation, _ = _run(server, tools=[slow_weather, slow_time])
    assert response.content == '18 C in Oslo | {"city": "Oslo", "time": "12:00"}'
    assert [m["role"] for m in conversation.messages] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]


def test_the_tool_definitions_come_from_the_functions(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    _run(server, tools=[slow_weather, slow_time])
    tools = server.requests[0].json()["tools"]
    weather = tools[0]["function"]
    assert weather["name"] == "slow_weather"
    assert weather["description"] == "The weather in a city (slowly)."
    assert weather["parameters"]["properties"]["city"]["description"] == "The city's name."


def test_two_parallel_tools_take_the_time_of_one(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    _, _, parallel = _run(server, tools=[slow_weather, slow_time])
    _, _, serial = _run(server, tools=[slow_weather, slow_time], parallel=False)
    assert serial >= 1.0
    assert parallel < 0.95
    assert parallel < serial - 0.3


def test_a_model_that_always_calls_stops_at_max_steps_with_a_valid_history(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(lambda messages: [("slow_time", {"city": "x"})]))

    def fast(city: str) -> str:
        return "now"

    tool = Tool.of(fast, name="slow_time")
    with pytest.raises(MaxStepsExceededError) as caught:
        _run(server, tools=[tool], max_steps=3)
    assert len(server.requests) == 3
    assert history_problem(caught.value.messages) is None


def test_a_refused_approval_is_told_to_the_model(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    asked: list[str] = []

    def approve(call: FunctionCall) -> bool:
        asked.append(call.name)
        return call.name != "slow_time"

    response, _, _ = _run(server, tools=[slow_weather, slow_time], approve=approve)
    assert asked == ["slow_weather", "slow_time"]
    assert response.content.startswith("18 C in Oslo | Refused:")


def test_a_raising_tool_sends_its_error_text_back(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))

    def slow_time(city: str) -> str:
        raise LookupError(f"no clock in {city}")

    response, _, _ = _run(server, tools=[slow_weather, slow_time])
    assert response.content.endswith("Error: LookupError: no clock in Oslo")


def test_a_raising_tool_can_stop_the_loop_leaving_a_valid_history(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(weather_then_answer))

    def slow_time(city: str) -> str:
        raise LookupError("no clock")

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        with pytest.raises(LookupError):
            conversation.run("Go", tools=[slow_weather, slow_time], on_tool_error="stop")
    assert history_problem(conversation.messages) is None


def test_arguments_that_do_not_fit_are_a_typed_error_sent_back(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))

    def slow_weather(city: int) -> str:
        return "never"

    response, _, _ = _run(server, tools=[slow_weather, slow_time])
    assert response.content.startswith("Error: The arguments of slow_weather do not fit")
    tool = Tool.of(slow_weather)
    with pytest.raises(ToolArgumentsError) as caught:
        tool.arguments(FunctionCall("slow_weather", '{"city": "Oslo"}', "c1"))
    assert caught.value.errors[0]["loc"] == ["city"]


def test_every_steps_events_reach_the_iterator_with_their_step(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    seen: list[StepEvent] = []
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        loop = conversation.run_steps("Go", tools=[slow_weather, slow_time], on_event=seen.append)
        iterated = list(loop)
        loop.result()
    assert iterated == seen
    results = [e for e in seen if isinstance(e.event, ToolResult)]
    assert [(e.step, e.event.call.name) for e in results] == [
        (1, "slow_weather"),
        (1, "slow_time"),
    ]
    assert {e.step for e in seen if isinstance(e.event, OutputTextDelta)} == {2}


def test_close_during_a_tool_cancels_it_and_leaves_a_valid_history(
    server: LoopbackServer,
) -> None:
    server.route(PATH, model(weather_then_answer))
    started = threading.Event()
    saw_cancel = threading.Event()

    def slow_weather(city: str, context: ToolContext) -> str:
        started.set()
        if context.cancelled.wait(5):
            saw_cancel.set()
        return "partial"

    def slow_time(city: str) -> str:
        return "noon"

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        loop = conversation.run_steps("Go", tools=[slow_weather, slow_time])
        closer = threading.Thread(target=lambda: started.wait(5) and loop.close())
        closer.start()
        with pytest.raises(StreamClosedError):
            loop.result()
        closer.join()
    assert saw_cancel.is_set()
    assert len(server.requests) == 1  # no new step after the close
    assert history_problem(conversation.messages) is None
    assert json.dumps(conversation.messages)  # plain JSON, ready to send


def test_close_during_the_models_stream_stops_it_with_a_valid_history(
    server: LoopbackServer,
) -> None:
    from tests.helpers import build_body, chunk
    from tests.loopback import Conn

    def slow_answer(conn: Conn) -> None:
        conn.send_head(200, [("Content-Type", "text/event-stream")])
        conn.write(build_body([chunk("Thinking")], event=None))
        conn.sleep(5)

    server.route(PATH, slow_answer)
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = Conversation(client, {"model": "m"})
        loop = conversation.run_steps("Go", tools=[slow_weather])
        for step_event in loop:
            if isinstance(step_event.event, OutputTextDelta):
                threading.Thread(target=loop.close).start()
        with pytest.raises(StreamClosedError):
            loop.result()
    assert conversation.messages[-1] == {"role": "assistant", "content": "Thinking"}
    assert history_problem(conversation.messages) is None


def test_prepare_step_sets_fields_on_each_steps_request(server: LoopbackServer) -> None:
    server.route(PATH, model(weather_then_answer))
    forced = {"type": "function", "function": {"name": "slow_weather"}}

    def prepare_step(step: int) -> dict[str, Any]:
        return {"tool_choice": forced if step == 1 else "none"}

    response, conversation, _ = _run(
        server, tools=[slow_weather, slow_time], prepare_step=prepare_step
    )
    assert [r.json()["tool_choice"] for r in server.requests] == [forced, "none"]
    assert "tool_choice" not in conversation.request
    assert response.content.startswith("18 C in Oslo")


# --- Conversation.ask(run_tool=...): the tool loop in the asking thread ----------------------


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

"""Conversation.run: the tool loop, against a scripted model on loopback that checks
the history as OpenAI does (every call answered before the next message)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from chatstream import (
    Client,
    Conversation,
    FunctionCall,
    MaxStepsExceededError,
    OutputTextDelta,
    OutputTruncatedError,
    StepEvent,
    StreamClosedError,
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolResult,
)
from chatstream.tools import INTERRUPTED, REFUSED
from tests.helpers import TIMEOUTS
from tests.loopback import LoopbackServer
from tests.scripted import (
    history_problem,
    input_problem,
    model,
    responses_model,
    responses_text_body,
)

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


# --- the Responses wire ----------------------------------------------------------------
# The same loop, with the history as input items: each step's function calls go back as
# they came, each result as a function_call_output; the scripted model refuses a request
# whose function calls are not all answered (as OpenAI does).

RESPONSES_PATH = "/v1/responses"


def weather_then_answer_items(items: list[dict[str, Any]]) -> Any:
    """:func:`weather_then_answer` on the Responses wire."""
    if items[-1].get("type") == "function_call_output":
        return " | ".join(i["output"] for i in items if i.get("type") == "function_call_output")
    return [("slow_weather", {"city": "Oslo"}), ("slow_time", {"city": "Oslo"})]


def _responses_conversation(server: LoopbackServer, client: Client) -> Conversation:
    return Conversation(client, {"model": "m"}, api="responses")


def test_a_responses_loop_sends_the_results_as_function_call_outputs(
    server: LoopbackServer,
) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        response = conversation.run("Weather and time in Oslo?", tools=[fast_weather, fast_time])
    assert response.content == '18 C in Oslo | {"city": "Oslo", "time": "12:00"}'
    sent = server.requests[1].json()["input"]
    assert [(i.get("type"), i.get("call_id")) for i in sent[1:]] == [
        ("function_call", "call_1_0"),
        ("function_call", "call_1_1"),
        ("function_call_output", "call_1_0"),
        ("function_call_output", "call_1_1"),
    ]
    assert input_problem(conversation.messages) is None


def test_the_tools_go_in_the_responses_shape(server: LoopbackServer) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        _responses_conversation(server, client).run("Go", tools=[slow_weather, fast_time])
    weather = server.requests[0].json()["tools"][0]
    assert (weather["type"], weather["name"], weather["strict"]) == (
        "function",
        "slow_weather",
        False,
    )
    assert weather["parameters"]["properties"]["city"]["description"] == "The city's name."
    assert "function" not in weather


def test_two_tools_of_a_responses_step_run_at_once(server: LoopbackServer) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    # Each tool waits for the other to start: run one after the other, both time out.
    both = threading.Barrier(2, timeout=5)

    def slow_weather(city: str) -> str:
        both.wait()
        return f"18 C in {city}"

    def slow_time(city: str) -> str:
        both.wait()
        return "12:00"

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        response = conversation.run("Go", tools=[slow_weather, slow_time])
    assert response.content == "18 C in Oslo | 12:00"


def test_a_refused_approval_is_answered_with_a_function_call_output(
    server: LoopbackServer,
) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        response = conversation.run(
            "Go", tools=[fast_weather, fast_time], approve=lambda call: call.name != "slow_time"
        )
    assert response.content == f"18 C in Oslo | {REFUSED}"
    outputs = [i for i in conversation.messages if i.get("type") == "function_call_output"]
    assert outputs[1] == {"type": "function_call_output", "call_id": "call_1_1", "output": REFUSED}


def test_a_typed_answer_ends_a_responses_loop(server: LoopbackServer) -> None:
    def script(items: list[dict[str, Any]]) -> Any:
        if items[-1].get("type") == "function_call_output":
            return json.dumps({"city": "Oslo", "celsius": 18})
        return [("slow_weather", {"city": "Oslo"})]

    server.route(RESPONSES_PATH, responses_model(script))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        response = conversation.run("Go", tools=[fast_weather], output=Reading)
    assert response.parsed == Reading(city="Oslo", celsius=18)
    assert [r.json()["text"]["format"]["name"] for r in server.requests] == ["Reading"] * 2


def test_a_cut_answer_ends_a_responses_loop_and_the_next_request_is_valid(
    server: LoopbackServer,
) -> None:
    answers = iter(
        [
            [("slow_weather", {"city": "Oslo"})],
            responses_text_body("It is 18 C and", incomplete="max_output_tokens"),
            "Sunny.",
        ]
    )
    server.route(RESPONSES_PATH, responses_model(lambda items: next(answers)))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        response = conversation.run("Go", tools=[fast_weather])
        assert (response.truncated, response.finish_reason) == (True, "max_output_tokens")
        assert conversation.ask("And then?").content == "Sunny."
    assert len(server.requests) == 3


def test_a_typed_answer_cut_short_raises_and_leaves_a_valid_responses_history(
    server: LoopbackServer,
) -> None:
    answers = iter(
        [
            [("slow_weather", {"city": "Oslo"})],
            responses_text_body('{"city": "Os', incomplete="max_output_tokens"),
            "Sunny.",
        ]
    )
    server.route(RESPONSES_PATH, responses_model(lambda items: next(answers)))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        with pytest.raises(OutputTruncatedError):
            conversation.run("Go", tools=[fast_weather], output=Reading)
        assert input_problem(conversation.messages) is None
        assert conversation.ask("Just say it.").content == "Sunny."


def test_close_during_a_tool_leaves_a_responses_history_the_next_request_takes(
    server: LoopbackServer,
) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    started = threading.Event()

    def slow_weather(city: str, context: ToolContext) -> str:
        started.set()
        context.cancelled.wait(5)
        return "partial"

    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        # One after the other: the second call never starts.
        loop = conversation.run_steps("Go", tools=[slow_weather, fast_time], parallel=False)
        closer = threading.Thread(target=lambda: started.wait(5) and loop.close())
        closer.start()
        with pytest.raises(StreamClosedError):
            loop.result()
        closer.join()
        assert len(server.requests) == 1  # no new step after the close
        outputs = [i["output"] for i in conversation.messages if "output" in i]
        assert outputs == ["partial", INTERRUPTED]
        assert input_problem(conversation.messages) is None
        conversation.ask("Never mind.")  # the scripted model refuses an invalid history
    assert len(server.requests) == 2
    sent = server.requests[1].json()["input"]
    assert [i["output"] for i in sent if "output" in i] == ["partial", INTERRUPTED]


def test_close_during_a_responses_stream_keeps_its_text_and_the_next_request_is_valid(
    server: LoopbackServer,
) -> None:
    from tests.loopback import Conn

    started = responses_text_body("Thinking")
    head = started[: started.index(b"event: response.output_text.done")]
    calls = [0]

    def slow_then_answer(conn: Conn) -> None:
        calls[0] += 1
        if calls[0] > 1:
            responses_model(lambda items: "Fine.")(conn)
            return
        conn.send_head(200, [("Content-Type", "text/event-stream")])
        conn.write(head)
        conn.sleep(5)

    server.route(RESPONSES_PATH, slow_then_answer)
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        loop = conversation.run_steps("Go", tools=[fast_weather])
        for step_event in loop:
            if isinstance(step_event.event, OutputTextDelta):
                threading.Thread(target=loop.close).start()
        with pytest.raises(StreamClosedError):
            loop.result()
        assert conversation.messages[-1] == {"role": "assistant", "content": "Thinking"}
        assert conversation.ask("Go on.").content == "Fine."


def test_max_steps_leaves_a_valid_responses_history(server: LoopbackServer) -> None:
    server.route(RESPONSES_PATH, responses_model(lambda items: [("slow_time", {"city": "x"})]))
    with Client(server.url + "/v1", timeouts=TIMEOUTS) as client:
        conversation = _responses_conversation(server, client)
        with pytest.raises(MaxStepsExceededError) as caught:
            conversation.run("Go", tools=[fast_time], max_steps=2)
    assert len(server.requests) == 2
    assert input_problem(caught.value.messages) is None


def test_ask_with_run_tool_answers_with_function_call_outputs(server: LoopbackServer) -> None:
    server.route(RESPONSES_PATH, responses_model(weather_then_answer_items))
    with Client(server.url + "/v1", timeouts=TIMEOUTS, api="responses") as client:
        conversation = Conversation(client, {"model": "m"})
        response = conversation.ask("Go", run_tool=lambda call: f"ran {call.name}")
    assert response.content == "ran slow_weather | ran slow_time"
    assert input_problem(conversation.messages) is None


class Reading(BaseModel):
    city: str
    celsius: int


def fast_weather(city: str) -> str:
    """The weather in a city."""
    return f"18 C in {city}"


def fast_time(city: str) -> dict[str, str]:
    """The time in a city."""
    return {"city": city, "time": "12:00"}


# Named as the scripted model calls them (the slow tools above, without the wait).
fast_time.__name__ = "slow_time"
fast_weather.__name__ = "slow_weather"

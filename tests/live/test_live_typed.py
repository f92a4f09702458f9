"""Typed answers and the tool runner against the real llama.cpp server (Gemma 3 270M):
an answer constrained by a JSON Schema validated into a pydantic model, and a two-tool loop run by
``Conversation.run`` to its answer. The small model calls a tool only when forced, so
the loop forces one tool per step through ``prepare_step`` and asks for the answer with
``tool_choice: "none"``."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream import Client, Conversation, ToolResult

pytestmark = pytest.mark.live

BASE: dict[str, Any] = {"model": "gemma3", "temperature": 0, "seed": 7}


def test_a_json_schema_answer_is_validated_into_a_pydantic_model(llama_server: str) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Capital(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        city: str
        country: str

    # llama-cpp-python's server takes a JSON Schema as {"type": "json_object", "schema"}
    # (it refuses "json_schema"): the body carries its own response_format, which
    # output= keeps, and output= validates the answer.
    response_format = {"type": "json_object", "schema": Capital.model_json_schema()}
    body = {
        **BASE,
        "max_tokens": 80,
        "response_format": response_format,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    with (
        Client(llama_server, timeouts=120) as client,
        client.stream(body, output=Capital) as stream,
    ):
        response = stream.result()
    assert isinstance(response.parsed, Capital)
    assert response.parsed.city and response.parsed.country


def get_weather(city: str) -> dict[str, Any]:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return {"city": city, "temperature_c": 18, "sky": "sunny"}


def get_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: The city's name.
    """
    return f"It is 12:00 in {city}."


def forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def test_a_two_tool_loop_runs_to_its_answer(llama_server: str) -> None:
    plan = {1: forced("get_weather"), 2: forced("get_time")}

    def prepare_step(step: int) -> dict[str, Any]:
        return {"tool_choice": plan.get(step, "none")}

    seen: list[ToolResult] = []
    with Client(llama_server, timeouts=120) as client:
        conversation = Conversation(client, {**BASE, "max_tokens": 60})
        response = conversation.run(
            "What are the weather and the time in Paris? Use the tools.",
            tools=[get_weather, get_time],
            max_steps=3,
            prepare_step=prepare_step,
            on_event=lambda e: seen.append(e.event) if isinstance(e.event, ToolResult) else None,
        )
    assert [r.call.name for r in seen] == ["get_weather", "get_time"]
    assert all(r.status == "ok" for r in seen), [r.content for r in seen]
    assert [m["role"] for m in conversation.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert response.content and not response.tool_calls

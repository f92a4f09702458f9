"""chatstream on the Responses wire against llama.cpp's own server (``llama-server``),
compared with the openai SDK's accumulation of the very same request
(``responses.create(stream=True)``).

Each request runs at temperature 0 on a server without a prompt cache (see
``conftest.py``), so both clients get the same decoding.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatstream import Client, FunctionCall, Response

pytestmark = pytest.mark.live

BASE: dict[str, Any] = {"model": "gemma3", "temperature": 0, "max_output_tokens": 40}
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
CALL = {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}


class Sdk:
    """The openai SDK's view of a request: the events of ``responses.create(...,
    stream=True)``, the text deltas joined and the terminal event's response kept."""

    def __init__(self, base_url: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)

    def create(self, body: dict[str, Any]) -> tuple[str, Any]:
        text, final = "", None
        with self.client, self.client.responses.create(**body, stream=True) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type in ("response.completed", "response.incomplete"):
                    final = event.response
        return text, final


def _both(base_url: str, body: dict[str, Any]) -> tuple[Response, tuple[str, Any]]:
    with Client(base_url, api="responses", timeouts=120.0) as client, client.stream(body) as s:
        ours = s.result()
    return ours, Sdk(base_url).create(body)


def _sdk_calls(final: Any) -> list[tuple[str, str]]:
    return [(o.name, o.arguments) for o in final.output if o.type == "function_call"]


def test_a_plain_answer_matches_the_sdk(llama_cpp_server: str) -> None:
    body = {**BASE, "input": "Name three colours."}
    ours, (text, final) = _both(llama_cpp_server, body)
    assert ours.content == text and ours.content
    assert ours.finish_reason == "completed"
    assert ours.usage is not None
    assert (ours.usage.input_tokens, ours.usage.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert ours.response_id.startswith("resp_") and final.id.startswith("resp_")


def test_a_max_output_tokens_cut_matches_the_sdk(llama_cpp_server: str) -> None:
    body = {**BASE, "input": "Tell a long story about a ship.", "max_output_tokens": 5}
    ours, (text, final) = _both(llama_cpp_server, body)
    assert ours.content == text
    # llama.cpp reports the cut as completed (never response.incomplete).
    assert ours.finish_reason == "completed" and ours.error is None
    assert ours.usage is not None and ours.usage.output_tokens == final.usage.output_tokens == 5


def test_a_forced_tool_call_and_its_follow_up_match_the_sdk(llama_cpp_server: str) -> None:
    body = {**BASE, **CALL, "input": "What is the weather in Paris?"}
    ours, (_, final) = _both(llama_cpp_server, body)
    assert [(c.name, c.arguments) for c in ours.tool_calls] == _sdk_calls(final)
    call = ours.tool_calls[0]
    assert isinstance(call, FunctionCall) and call.name == "get_weather" and call.id

    history: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    history += ours.to_input({call.call_id: "18 C and sunny"})
    assert history[-1] == {
        "type": "function_call_output",
        "call_id": call.call_id,
        "output": "18 C and sunny",
    }
    follow = {**BASE, "tools": TOOLS, "tool_choice": "none", "input": history}
    answer, (text, _) = _both(llama_cpp_server, follow)
    assert answer.content == text and answer.content
    assert answer.tool_calls == () and answer.error is None

"""chatstream against a real llama.cpp server, compared with the openai SDK's own
accumulation of the very same request.

Each measured request runs at temperature 0 with a fixed seed, after a one-token request
that puts the server's prompt cache in the same state for both clients (the server
reuses the previous prompt's prefix, which can change the decoding).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatstream import Client, Conversation, FunctionCall, Response

pytestmark = pytest.mark.live

MODEL = "gemma3"
BASE: dict[str, Any] = {"model": MODEL, "temperature": 0, "seed": 7, "max_tokens": 40}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
FORCED = {"type": "function", "function": {"name": "get_weather"}}


class Sdk:
    """The openai SDK's view of a request: the chunks of ``chat.completions.create(...,
    stream=True)`` accumulated by the SDK's own ``ChatCompletionStreamState`` (the state
    behind its ``.stream()`` helper, whose ``get_final_completion()`` raises on a
    ``length`` finish; the snapshot does not)."""

    def __init__(self, base_url: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)

    def complete(self, body: dict[str, Any]) -> Any:
        from openai.lib.streaming.chat import ChatCompletionStreamState

        state: Any = ChatCompletionStreamState()
        stream = self.client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        with stream:
            for chunk in stream:
                state.handle_chunk(chunk)
        return state.current_completion_snapshot


def reset_cache(client: Client) -> None:
    """A fixed one-token request: the next prompt starts from the same cache state."""
    body = {"model": MODEL, "max_tokens": 1, "temperature": 0, "seed": 7}
    client.stream({**body, "messages": [{"role": "user", "content": "Hi"}]}).result()


def both(llama_server: str, body: dict[str, Any]) -> tuple[Response, Any]:
    """The same request through chatstream and through the SDK."""
    with Client(llama_server, timeouts=120) as client:
        reset_cache(client)
        with client.stream(body) as stream:
            ours = stream.result()
        reset_cache(client)
        theirs = Sdk(llama_server).complete(body)
    return ours, theirs


def assert_same_usage(ours: Response, theirs: Any) -> None:
    """The same usage (llama-cpp-python's server sends none while streaming)."""
    assert (ours.usage is None) == (theirs.usage is None)
    if ours.usage is not None:
        assert ours.usage.input_tokens == theirs.usage.prompt_tokens
        assert ours.usage.output_tokens == theirs.usage.completion_tokens


def test_a_plain_prompt_reads_as_the_sdk_reads_it(llama_server: str) -> None:
    body = {**BASE, "messages": [{"role": "user", "content": "Name three colours."}]}
    ours, theirs = both(llama_server, body)
    choice = theirs.choices[0]
    assert ours.ok and ours.content
    assert ours.content == choice.message.content
    assert ours.finish_reason == choice.finish_reason
    assert ours.model == theirs.model
    assert ours.response_id.startswith("chatcmpl-")  # each request has its own id
    assert_same_usage(ours, theirs)


def test_a_forced_tool_call_reads_as_the_sdk_reads_it(llama_server: str) -> None:
    body = {
        **BASE,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": TOOLS,
        "tool_choice": FORCED,
    }
    ours, theirs = both(llama_server, body)
    [call] = ours.tool_calls
    [their_call] = theirs.choices[0].message.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == their_call.function.arguments
    assert isinstance(json.loads(call.arguments), dict)
    assert ours.finish_reason == theirs.choices[0].finish_reason
    # The server repeats the id and the name on every fragment (each request has its own
    # id): the SDK joins the repeats, chatstream keeps one, the one to send back.
    assert_repeats(their_call.function.name, call.name)
    assert_repeats(their_call.id, call.call_id)
    assert_same_usage(ours, theirs)


def assert_repeats(joined: str, once: str) -> None:
    """``joined`` is one string of ``once``'s length, repeated more than once."""
    times, rest = divmod(len(joined), len(once))
    assert rest == 0 and times > 1 and joined == joined[: len(once)] * times


def test_the_two_turn_tool_loop_with_to_message(llama_server: str) -> None:
    request = {**BASE, "tools": TOOLS}
    calls: list[FunctionCall] = []

    def run_tool(call: FunctionCall) -> str:
        calls.append(call)
        return json.dumps({"city": "Paris", "temperature_c": 18, "sky": "sunny"})

    with Client(llama_server, timeouts=120) as client:
        reset_cache(client)
        conversation = Conversation(client, {**request, "tool_choice": FORCED})
        conversation.add_user("What is the weather in Paris? Use the tool.")
        first = conversation.send()
        assert first.tool_calls, first.content
        for call in first.tool_calls:
            conversation.add_tool_result(call, run_tool(call))
        conversation.request["tool_choice"] = "none"
        body = conversation.body()
        reset_cache(client)
        second = conversation.send()
        reset_cache(client)
        theirs = Sdk(llama_server).complete(body)
    assert conversation.messages[1] == first.to_message()
    assert conversation.messages[1]["tool_calls"][0]["id"] == calls[0].call_id
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "tool", "assistant"]
    assert second.ok and second.content
    assert second.content == theirs.choices[0].message.content
    assert second.finish_reason == theirs.choices[0].finish_reason


def test_a_max_tokens_cut_ends_normally_as_truncated(llama_server: str) -> None:
    body = {
        **BASE,
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
    }
    ours, theirs = both(llama_server, body)
    assert ours.ok
    assert ours.finish_reason == "length" == theirs.choices[0].finish_reason
    assert ours.truncated
    assert ours.content == theirs.choices[0].message.content
    assert_same_usage(ours, theirs)

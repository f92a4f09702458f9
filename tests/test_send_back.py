"""Sending back what the provider needs: servers on loopback that enforce DeepSeek's
thinking-mode rule (a follow-up after a tool call carries ``reasoning_content``) and
Gemini 3's rule (it carries each call's ``extra_content.google.thought_signature``)
reject a follow-up without that data and accept it with it, through the library
(:meth:`Response.to_message`, :class:`Conversation`) and through ``chatstream chat
--tools``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import chatstream
from chatstream import BadRequestError, Client, Conversation, FunctionCall, Response
from tests.helpers import build_body, chunk
from tests.loopback import Conn, LoopbackServer, json_error, sse_body

pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
REASONING = "The user wants the weather; call the tool."
SIGNATURE = "Q2lnbmF0dXJlIG9mIHRoZSB0aG91Z2h0"


def _answer(text: str) -> bytes:
    return build_body([chunk(text), chunk(finish="stop")], event=None, done=True)


# DeepSeek's thinking mode with tools: reasoning_content, then the call.
DEEPSEEK_CALL = build_body(
    [
        chunk(delta={"role": "assistant", "content": None, "reasoning_content": "The user wants "}),
        chunk(delta={"reasoning_content": "the weather; call the tool."}),
        chunk(
            delta={
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_ds1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]}),
        chunk(finish="tool_calls"),
    ],
    event=None,
    done=True,
)

# Gemini 3's OpenAI-compatible endpoint: the whole call in one chunk, no index, a thought
# signature in extra_content, and finish_reason "stop".
GEMINI_CALL = build_body(
    [
        chunk(
            delta={
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_g1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        "extra_content": {"google": {"thought_signature": SIGNATURE}},
                    }
                ],
            },
            finish="stop",
        )
    ],
    event=None,
    done=True,
)


def _reject(conn: Conn, why: str) -> None:
    json_error(400, {"error": {"message": why, "type": "invalid_request_error", "code": 400}})(conn)


def _calling_assistant(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The assistant message whose tool calls the trailing tool results answer."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message
    return None


def deepseek_thinking(conn: Conn) -> None:
    """Calls the tool with reasoning; rejects a follow-up whose assistant message lacks
    the reasoning_content it streamed (as DeepSeek's thinking mode does)."""
    messages = conn.json()["messages"]
    if messages[-1]["role"] == "user":
        sse_body(DEEPSEEK_CALL)(conn)
        return
    assistant = _calling_assistant(messages)
    if assistant is None or assistant.get("reasoning_content") != REASONING:
        _reject(conn, "The reasoning_content in the thinking mode must be passed back to the API.")
        return
    sse_body(_answer("It is 18 degrees in Oslo."))(conn)


def gemini3(conn: Conn) -> None:
    """Calls the tool with a thought signature; rejects a follow-up whose tool call lacks
    it (as Gemini 3's OpenAI-compatible endpoint does)."""
    messages = conn.json()["messages"]
    if messages[-1]["role"] == "user":
        sse_body(GEMINI_CALL)(conn)
        return
    assistant = _calling_assistant(messages) or {}
    calls = assistant.get("tool_calls") or [{}]
    signature = calls[0].get("extra_content", {}).get("google", {}).get("thought_signature")
    if signature != SIGNATURE:
        _reject(conn, "Function call is missing a thought_signature in functionCall parts.")
        return
    sse_body(_answer("It is 18 degrees in Oslo."))(conn)


PROVIDERS: dict[str, Callable[[Conn], None]] = {"deepseek": deepseek_thinking, "gemini": gemini3}


def _run_tool(call: FunctionCall) -> str:
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})
    return '{"temp": 18}'


def _plain_assistant(response: Response) -> dict[str, Any]:
    """An assistant message rebuilt by hand from the text and calls only, as clients do
    that keep nothing else (the follow-up the rules reject)."""
    return {
        "role": "assistant",
        "content": response.content or None,
        "tool_calls": [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in response.tool_calls
        ],
    }


def _first_and_follow_up(
    server: LoopbackServer, build: Callable[[Response], dict[str, Any]]
) -> Response:
    body: dict[str, Any] = {"model": "m", "tools": TOOLS}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo?"}]
    with Client(server.url + "/v1") as client, client.turn() as turn:
        with turn.stream({**body, "messages": messages}) as stream:
            first = stream.result()
        messages.append(build(first))
        messages += [
            {"role": "tool", "tool_call_id": c.call_id, "content": _run_tool(c)}
            for c in first.tool_calls
        ]
        with turn.stream({**body, "messages": messages}) as stream:
            return stream.result()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_follow_up_without_the_providers_data_is_rejected(
    server: LoopbackServer, provider: str
) -> None:
    server.route(PATH, PROVIDERS[provider])
    with pytest.raises(BadRequestError) as caught:
        _first_and_follow_up(server, _plain_assistant)
    assert caught.value.status == 400


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_follow_up_with_to_message_is_accepted(server: LoopbackServer, provider: str) -> None:
    server.route(PATH, PROVIDERS[provider])
    response = _first_and_follow_up(server, lambda r: r.to_message())
    assert response.content == "It is 18 degrees in Oslo."


def test_to_message_sends_deepseeks_reasoning_content_back(server: LoopbackServer) -> None:
    server.route(PATH, deepseek_thinking)
    _first_and_follow_up(server, lambda r: r.to_message())
    assistant = server.requests[1].json()["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "reasoning_content": REASONING,
        "tool_calls": [
            {
                "id": "call_ds1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    }


def test_to_message_sends_geminis_thought_signature_back(server: LoopbackServer) -> None:
    server.route(PATH, gemini3)
    _first_and_follow_up(server, lambda r: r.to_message())
    call = server.requests[1].json()["messages"][1]["tool_calls"][0]
    assert call["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert "reasoning_content" not in server.requests[1].json()["messages"][1]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_conversation_runs_the_tool_loop_against_the_strict_server(
    server: LoopbackServer, provider: str
) -> None:
    server.route(PATH, PROVIDERS[provider])
    with Client(server.url + "/v1") as client:
        conversation = Conversation(client, {"model": "m", "tools": TOOLS})
        response = conversation.ask("Weather in Oslo?", run_tool=_run_tool)
    assert response.content == "It is 18 degrees in Oslo."
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "tool", "assistant"]


def test_a_conversation_step_by_step_stays_in_one_turn(server: LoopbackServer) -> None:
    server.route(PATH, gemini3)
    with Client(server.url + "/v1") as client:
        conversation = Conversation(client, {"model": "m", "tools": TOOLS})
        conversation.add_user("Weather in Oslo?")
        first = conversation.send()
        turn = conversation.turn
        for call in first.tool_calls:
            conversation.add_tool_result(call, _run_tool(call))
        second = conversation.send()
    assert second.content == "It is 18 degrees in Oslo."
    assert conversation.turn is turn


def test_a_rejected_turn_leaves_the_history_as_it_was(server: LoopbackServer) -> None:
    server.route(PATH, deepseek_thinking)
    with Client(server.url + "/v1") as client:
        conversation = Conversation(client, {"model": "m"}, system="sys")

        def run_tool(call: FunctionCall) -> str:
            # Lose the reasoning on the way: the follow-up is rejected.
            conversation.messages[-1].pop("reasoning_content")
            return "{}"

        with pytest.raises(BadRequestError):
            conversation.ask("Weather in Oslo?", run_tool=run_tool)
    assert conversation.messages == [{"role": "system", "content": "sys"}]


def test_reasoning_of_earlier_turns_is_not_sent_again(server: LoopbackServer) -> None:
    server.route(PATH, deepseek_thinking)
    with Client(server.url + "/v1") as client:
        conversation = Conversation(client, {"model": "m"})
        conversation.ask("Weather in Oslo?", run_tool=_run_tool)
        conversation.add_user("And tomorrow?")
        sent = conversation.body()["messages"]
    assert "reasoning_content" in conversation.messages[1]  # the history keeps it
    assert "reasoning_content" not in sent[1]
    assert sent[-1] == {"role": "user", "content": "And tomorrow?"}


def test_a_turn_cut_by_length_stays_in_the_history(server: LoopbackServer) -> None:
    cut = build_body([chunk("Once upon"), chunk(finish="length")], done=True)
    server.route(PATH, sse_body(cut))
    with Client(server.url + "/v1") as client:
        conversation = Conversation(client, {"model": "m", "max_tokens": 2})
        response = conversation.ask("Tell a story")
    assert response.truncated
    assert conversation.messages[-1] == {"role": "assistant", "content": "Once upon"}


# --- chatstream chat --tools, as a user runs it -------------------------------------------


def _chat_with_tools(server: LoopbackServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "NO_COLOR")}
    return subprocess.run(
        [
            *(sys.executable, "-m", "chatstream", "chat", "--base-url", server.url + "/v1"),
            *("--model", "m", "--tools", str(tools), "Weather in Oslo?"),
        ],
        input='{"temp": 18}\n',
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_chat_with_tools_passes_the_strict_servers_follow_up(
    server: LoopbackServer, provider: str, tmp_path: Path
) -> None:
    server.route(PATH, PROVIDERS[provider])
    done = _chat_with_tools(server, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "It is 18 degrees in Oslo." in done.stdout
    assert len(server.requests) == 2
    assert server.requests[1].json()["messages"][-1] == {
        "role": "tool",
        "tool_call_id": server.requests[1].json()["messages"][1]["tool_calls"][0]["id"],
        "content": '{"temp": 18}',
    }


def test_the_strict_servers_reject_what_the_cli_used_to_send(server: LoopbackServer) -> None:
    """The old CLI's follow-up (text and calls only) gets the 400 the issue reported."""
    server.route(PATH, gemini3)
    with Client(server.url + "/v1") as client:
        messages = [{"role": "user", "content": "Weather in Oslo?"}]
        first = client.stream({"model": "m", "messages": messages}).result()
        follow_up = [*messages, _plain_assistant(first)]
        follow_up.append({"role": "tool", "tool_call_id": "call_g1", "content": "{}"})
        with pytest.raises(chatstream.BadRequestError):
            client.stream({"model": "m", "messages": follow_up}).result()


def test_the_chat_repl_keeps_a_turn_cut_by_max_tokens(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatstream.cli import command as cli

    cut = build_body([chunk("Once upon"), chunk(finish="length")], done=True)
    server.route(PATH, sse_body(cut))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Tell a story\ngo on\n"))
    args = ["chat", "--base-url", server.url + "/v1", "--model", "m", "--max-tokens", "2"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert server.requests[1].json()["messages"] == [
        {"role": "user", "content": "Tell a story"},
        {"role": "assistant", "content": "Once upon"},
        {"role": "user", "content": "go on"},
    ]

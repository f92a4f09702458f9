"""``chatstream demo`` end to end (in-process, unpaced), and the demo server's checks."""

from __future__ import annotations

import json
import sys

import pytest

import chatstream
from chatstream.cli import command as cli
from chatstream.cli.demo import DemoServer, load_script

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATSTREAM_DEMO_FAST", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_demo_shows_the_whole_conversation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Standard error into standard output, as on a terminal: the whole transcript.
    monkeypatch.setattr(sys, "stderr", sys.stdout)
    status = cli.main(["demo", "--fast"])
    out, err = capsys.readouterr()
    assert status == 0, err
    script = load_script()
    lines = out.splitlines()
    # In order: the question, the reasoning, the text, the call as it streamed, the
    # local tool run and its result, the second turn's reasoning and answer, usage.
    expected = [
        f"you> {script.prompt}",
        "thinking…",
        script.turns[0]["reasoning"],
        script.turns[0]["content"],
        '→ get_weather({"city": "Annecy", "country": "FR", "date": "tomorrow", '
        '"hours": "06:00-12:00"})  (call_7Qk2wEathr)',
        "running get_weather on this machine…",
        "← get_weather  (call_7Qk2wEathr)",
        "thinking…",
        script.turns[1]["reasoning"],
        "Yes, pack the rain jacket. Tomorrow morning in Annecy looks like this:",
        "- **9 to 15 °C**, so a chilly start",
    ]
    position = -1
    for line in expected:  # each one after the one before
        position = lines.index(line, position + 1)
    summaries = [line for line in lines if line.startswith("· first token")]
    assert len(summaries) == 2
    assert lines[-1] == summaries[-1]
    assert "(128 cached)" in summaries[-1]
    assert "\x1b[" not in out  # not a terminal: no colour


def test_demo_prints_only_the_answers_on_standard_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["demo", "--fast"]) == 0
    out = capsys.readouterr().out
    script = load_script()
    assert out.startswith(script.turns[0]["content"] + "\n")
    assert "thinking" not in out and "get_weather" not in out and "first token" not in out


def test_demo_json_prints_one_event_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--fast", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [chatstream.event_from_json(line) for line in lines]
    assert [type(e).__name__ for e in events].count("Completed") == 2
    calls = [
        e.item
        for e in events
        if isinstance(e, chatstream.OutputItemDone) and isinstance(e.item, chatstream.FunctionCall)
    ]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments)["city"] == "Annecy"
    text = "".join(e.delta for e in events if isinstance(e, chatstream.OutputTextDelta))
    assert "pack the rain jacket" in text
    assert isinstance(events[0], chatstream.RateLimits)


def test_demo_result_prints_one_result_per_response(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["demo", "--fast", "--result"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["finish_reason"] for r in results] == ["tool_calls", "stop"]
    assert results[0]["tool_calls"][0]["name"] == "get_weather"
    assert results[1]["usage"]["cached_input_tokens"] == 128
    assert all(r["error"] is None for r in results)


def test_no_reasoning_hides_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--fast", "--no-reasoning"]) == 0
    out, err = capsys.readouterr()
    assert "thinking… (hidden)" in err
    assert load_script().turns[0]["reasoning"] not in out + err


def test_the_environment_variable_turns_pacing_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSTREAM_DEMO_FAST", "1")
    assert cli.main(["demo", "--result"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_the_server_paces_like_a_model_for_a_few_seconds() -> None:
    with DemoServer() as server:
        body = {"messages": [{"role": "user", "content": "hi"}], "tools": []}
        turns = [[pause for pause, _ in server._chunks(turn, body)] for turn in (0, 1)]
    assert 2.0 < sum(map(sum, turns)) < 8.0
    for pauses in turns:
        assert 0.2 <= pauses[0] <= 0.5  # the time to the first token
        tokens = [pause for pause in pauses[1:] if pause]
        assert min(tokens) >= 0.008 and max(tokens) <= 0.03


def test_a_request_without_tools_gets_a_text_answer() -> None:
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        script = server.script
        messages = [{"role": "user", "content": script.prompt}]
        response = client.stream({"model": script.model, "messages": messages}).result()
    assert response.tool_calls == () and response.finish_reason == "stop"
    assert response.content == script.turns[3]["content"]


def test_a_question_after_a_finished_answer_gets_the_closing_turn() -> None:
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        script = server.script
        messages = [
            {"role": "user", "content": script.prompt},
            {"role": "assistant", "content": "Yes, pack the rain jacket."},
            {"role": "user", "content": "And on Sunday?"},
        ]
        request = {"model": script.model, "messages": messages, "tools": script.tools}
        response = client.stream(request).result()
    assert response.content == script.turns[2]["content"]


def test_the_follow_up_carries_the_tool_message_and_the_turn_state() -> None:
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        script = server.script
        messages = [{"role": "user", "content": script.prompt}]
        with client.turn() as turn:
            request = {"model": script.model, "messages": messages, "tools": script.tools}
            first = turn.stream(request).result()
            call = first.tool_calls[0]
            messages += [
                {
                    "role": "assistant",
                    "content": first.content,
                    "tool_calls": [
                        {
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call.call_id, "content": script.run_tool(call)},
            ]
            second = turn.stream({"model": script.model, "messages": messages}).result()
            assert turn.state == "demo-turn-1"
        # A new turn has no turn state: the server refuses a follow-up from it.
        with pytest.raises(chatstream.BadRequestError, match="did not send back"):
            client.stream({"model": script.model, "messages": messages}).result()
    assert second.content.startswith("Yes, pack the rain jacket.")
    assert second.finish_reason == "stop"
    assert server.received[1]["messages"][-1]["role"] == "tool"


def test_the_server_refuses_a_tool_message_for_an_unknown_call() -> None:
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        messages = [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_other", "content": "{}"},
        ]
        with pytest.raises(chatstream.BadRequestError, match="tool message answering"):
            client.stream({"model": "m", "messages": messages}).result()


def test_the_local_tool_answers_from_the_bundled_forecast() -> None:
    script = load_script()
    call = chatstream.FunctionCall("get_weather", '{"city": "ANNECY"}', "c1")
    assert json.loads(script.run_tool(call))["summary"] == "Showers, clearing late morning"
    unknown = chatstream.FunctionCall("get_weather", '{"city": "Paris"}', "c2")
    assert json.loads(script.run_tool(unknown)) == {"error": "no forecast for Paris"}
    broken = chatstream.FunctionCall("get_weather", "{", "c3")
    assert "error" in json.loads(script.run_tool(broken))

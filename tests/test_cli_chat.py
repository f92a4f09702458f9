"""``chatstream chat`` against a loopback OpenAI-compatible server: one-shot, the REPL,
tools typed in by the user, the output modes, recording, and the error lines."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import chatstream
from chatstream import cli
from tests.helpers import build_body
from tests.loopback import Conn, LoopbackServer, json_error, sequence, sse_body

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


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE = {
    "id": "chatcmpl-1",
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def answer(text: str, reasoning: str = "") -> bytes:
    """A streamed answer: optional reasoning, the text, a stop, usage, [DONE]."""
    chunks = [_chunk({"role": "assistant"})]
    if reasoning:
        chunks.append(_chunk({"reasoning_content": reasoning}))
    chunks += [_chunk({"content": text}), _chunk({}, "stop"), USAGE]
    return build_body(chunks, event=None, done=True)


TOOL_CALL = build_body(
    [
        _chunk({"role": "assistant", "content": "Checking."}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":'},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
        _chunk({}, "tool_calls"),
        USAGE,
    ],
    event=None,
    done=True,
)


def echo(conn: Conn) -> None:
    """Answers "echo: <the last user message>" (with a little reasoning)."""
    last = conn.json()["messages"][-1]
    sse_body(answer(f"echo: {last['content']}", reasoning="Thinking."))(conn)


def weather(conn: Conn) -> None:
    """Calls get_weather when asked about the weather (pinning the turn to a backend),
    answers from the tool's result once it is sent back, and echoes anything else."""
    last = conn.json()["messages"][-1]
    if last["role"] == "user" and "weather" not in last["content"]:
        echo(conn)
    elif last["role"] == "user":
        sse_body(TOOL_CALL, headers={"x-codex-turn-state": "backend-7"})(conn)
    else:
        temp = json.loads(last["content"])["temp"]
        sse_body(answer(f"It is {temp} degrees in Oslo."))(conn)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATSTREAM_MODEL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def chat(server: LoopbackServer, *args: str) -> list[str]:
    return ["chat", "--base-url", server.url + "/v1", "--model", "m", *args]


def type_in(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


# --- one-shot ---------------------------------------------------------------------------


def test_one_shot_sends_the_prompt_and_streams_the_answer(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    options = ["--system", "Be brief.", "--temperature", "0.5", "--max-tokens", "50"]
    status = cli.main(chat(server, *options, "--header", "X-Team: blue", "hello"))
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out.splitlines()[:3] == ["thinking…", "Thinking.", ""]
    assert "echo: hello" in out
    summary = out.splitlines()[-1]
    assert summary.startswith("· first token ") and summary.endswith("12 in, 3 out")
    (request,) = server.requests
    body = request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("m", 0.5, 50)
    assert body["stream"] is True
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.headers["X-Team"] == "blue"


def test_settings_come_from_the_environment(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("CHATSTREAM_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    monkeypatch.setenv("MY_KEY", "sk-mine")
    assert cli.main(["chat", "--api-key-env", "MY_KEY", "--no-reasoning", "hi"]) == 0
    out = capsys.readouterr().out
    assert "thinking… (hidden)" in out and "Thinking." not in out
    (request,) = server.requests
    assert request.json()["model"] == "env-model"
    assert request.headers["Authorization"] == "Bearer sk-mine"


def test_no_key_sends_no_credentials(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    assert cli.main(chat(server, "hi")) == 0
    assert "Authorization" not in server.requests[0].headers


def test_result_prints_exactly_one_result_object(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    assert cli.main(chat(server, "--result", "hi")) == 0
    (line,) = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert (result["content"], result["reasoning"]) == ("echo: hi", "Thinking.")
    assert result["usage"]["output_tokens"] == 3 and result["error"] is None


def test_json_prints_one_event_per_line(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    assert cli.main(chat(server, "--json", "hi")) == 0
    events = [chatstream.event_from_json(line) for line in capsys.readouterr().out.splitlines()]
    assert isinstance(events[-1], chatstream.Completed)
    assert [e.delta for e in events if isinstance(e, chatstream.OutputTextDelta)] == ["echo: hi"]


# --- the REPL ---------------------------------------------------------------------------


def test_the_repl_keeps_the_conversation(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route(PATH, echo)
    type_in(monkeypatch, "first\n\n  \nsecond\n")
    assert cli.main(chat(server, "--system", "sys")) == 0
    out = capsys.readouterr().out
    assert out.index("you> first") < out.index("echo: first") < out.index("you> second")
    assert [r.json()["messages"] for r in server.requests] == [
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"}],
        [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": "second"},
        ],
    ]


def test_a_tool_result_typed_by_the_user_goes_back_in_the_same_turn(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    server.route(PATH, weather)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps({"tools": TOOLS}))
    type_in(monkeypatch, 'weather in Oslo?\n{"temp": 21}\nthanks\n')
    assert cli.main(chat(server, "--tools", str(tools))) == 0
    out = capsys.readouterr().out
    # The call as it streamed, then the answer built from the result.
    assert '→ get_weather({"city": "Oslo"})  (call_1)\n' in out
    assert "It is 21 degrees in Oslo." in out
    first, follow_up, next_turn = server.requests
    assert first.json()["tools"] == TOOLS
    assert "x-codex-turn-state" not in first.headers
    assert follow_up.headers["x-codex-turn-state"] == "backend-7"  # the same turn
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    assert follow_up.json()["messages"] == [
        {"role": "user", "content": "weather in Oslo?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    # The next user turn starts without the turn state, and with the whole history.
    assert "x-codex-turn-state" not in next_turn.headers
    history = next_turn.json()["messages"]
    assert history[-2:] == [
        {"role": "assistant", "content": "It is 21 degrees in Oslo."},
        {"role": "user", "content": "thanks"},
    ]
    assert len(history) == 5


def test_one_shot_with_tools_reads_the_result_from_standard_input(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    server.route(PATH, weather)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))  # a bare list works too
    type_in(monkeypatch, '{"temp": -3}\n')
    assert cli.main(chat(server, "--tools", str(tools), "--result", "weather?")) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["finish_reason"] for r in results] == ["tool_calls", "stop"]
    assert results[1]["content"] == "It is -3 degrees in Oslo."


def test_a_missing_tool_result_is_a_usage_error(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server.route(PATH, weather)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    assert cli.main(chat(server, "--tools", str(tools), "weather?")) == 2
    err = capsys.readouterr().err
    assert (
        err == "chatstream: the model called get_weather, but the input ended before its result\n"
    )


def test_the_repl_goes_on_after_a_failed_turn_and_exits_1(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json_error(400, {"error": {"message": "Unsupported value: 'm'"}})
    server.route(PATH, sequence(bad, echo))
    type_in(monkeypatch, "one\ntwo\n")
    assert cli.main(chat(server)) == 1
    out, err = capsys.readouterr()
    assert err == "error: HTTP 400: Unsupported value: 'm' (check the request body)\n"
    assert "echo: two" in out
    # The failed turn left no trace in the history.
    assert server.requests[1].json()["messages"] == [{"role": "user", "content": "two"}]


# --- recording --------------------------------------------------------------------------


def test_record_saves_the_body_that_replay_reads_back_identically(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = answer("recorded words", reasoning="hmm")
    # Split into 1-9 byte writes: the recording is the bytes, not the events.
    server.route(PATH, sse_body(body, split=True))
    recording = tmp_path / "odd.sse"
    assert cli.main(chat(server, "--result", "--record", str(recording), "hi")) == 0
    live = capsys.readouterr().out
    assert recording.read_bytes() == body
    assert cli.main(["replay", str(recording), "--result"]) == 0
    assert capsys.readouterr().out == live


def test_record_numbers_the_responses_after_the_first(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    server.route(PATH, weather)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    type_in(monkeypatch, '{"temp": 4}\n')
    recording = tmp_path / "chat.sse"
    options = ["--tools", str(tools), "--record", str(recording)]
    assert cli.main(chat(server, *options, "weather?")) == 0
    assert recording.read_bytes() == TOOL_CALL
    assert b"It is 4 degrees" in (tmp_path / "chat-2.sse").read_bytes()


# --- errors -----------------------------------------------------------------------------


def test_a_missing_base_url_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["chat", "--model", "m", "hi"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("chatstream: no server given: pass --base-url URL or set OPENAI_BASE_URL")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url", "http://127.0.0.1:9/v1", "hi"], "no model given"),
        (["--base-url", "ftp://x", "--model", "m", "hi"], "base_url must be an http"),
        (["--base-url", "http://x/v1", "--model", "m", "--header", "nocolon", "hi"], "NAME:VALUE"),
        (
            ["--base-url", "http://x/v1", "--model", "m", "--tools", "/nonexistent", "hi"],
            "cannot read",
        ),
    ],
)
def test_usage_errors_are_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["chat", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_http_401_is_one_clear_line_and_status_1(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {
        "error": {"message": "Incorrect API key provided: sk-bad.", "type": "invalid_request_error"}
    }
    server.route(PATH, json_error(401, error))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad")
    assert cli.main(chat(server, "hi")) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: HTTP 401: Incorrect API key provided: [REDACTED]. (check the API key)\n"


def test_no_server_gives_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer() as gone:
        url = gone.url + "/v1"
    assert cli.main(["chat", "--base-url", url, "--model", "m", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: Could not connect")
    assert err.endswith(f"Is a server running at {url}? Check --base-url.\n")


def test_ctrl_c_stops_the_stream_cleanly(server: LoopbackServer, tmp_path: Path) -> None:
    slow = build_body([_chunk({"content": f"word{i} "}) for i in range(200)], event=None)
    server.route(PATH, sse_body(slow, delay=0.05))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "chatstream", *chat(server, "hi")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.read(5) == b"word0"  # streaming has begun
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert err.decode() == "\nchatstream: interrupted\n"
    # The connection was closed: the server saw the client go away mid-body.
    deadline = time.monotonic() + 5
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.disconnects

"""``chatstream chat`` run as a command (a subprocess) against a loopback server:
one-shot, the conversation, tools typed in by the user, the output streams, retries,
connection failures, input checks, request options, recording, and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import chatstream
from chatstream._shell.deadlines import IDLE_RULE
from chatstream.cli.command import main as cli_main
from tests.helpers import answer, build_body, chunk
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
# Generous: the machine may be busy; no test waits this long unless it is broken.
TIMEOUT = 60


USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


TOOL_CALL = build_body(
    [
        chunk(delta={"role": "assistant", "content": "Checking."}),
        chunk(
            delta={
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
        chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
        chunk(finish="tool_calls"),
        chunk(usage=USAGE, choices=False),
    ],
    event=None,
    done=True,
)


def endless(conn: Conn) -> None:
    """Streams words, one every 50 ms, until the client goes away (or the server closes):
    an answer still being written whenever the Ctrl-C lands, however slowly a busy
    machine runs the command (a body that ends by itself can be read to its end first)."""
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    number = 0
    while True:
        conn.write(build_body([chunk(f"word{number} ")], event=None))
        number += 1
        conn.sleep(0.05)


def echo(conn: Conn) -> None:
    """Answers "echo: <the last user message>" (with a little reasoning)."""
    last = conn.json()["messages"][-1]
    text = f"echo: {last['content']}"
    sse_body(answer(text, role=True, reasoning="Thinking.", usage=USAGE))(conn)


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
        sse_body(answer(f"It is {temp} degrees in Oslo.", role=True, usage=USAGE))(conn)


def completion(conn: Conn) -> None:
    """A server that ignores "stream": true and answers with one JSON completion."""
    body = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A whole answer at once."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }
    conn.respond(200, json.dumps(body).encode(), [("Content-Type", "application/json")])


def html_page(conn: Conn) -> None:
    conn.respond(200, b"<html><body>Sign in</body></html>", [("Content-Type", "text/html")])


@dataclass
class Run:
    status: int
    out: str
    err: str


def environment(**extra: str) -> dict[str, str]:
    """This environment without the settings the command reads, plus ``extra``."""
    names = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATSTREAM_MODEL", "NO_COLOR")
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
) -> Run:
    """``chatstream ARGS`` in a subprocess, ``stdin`` as its input."""
    done = subprocess.run(
        [sys.executable, "-m", "chatstream", *args],
        input=stdin.encode(),
        capture_output=True,
        env=environment() if env is None else env,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
    )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


def chat(server: LoopbackServer, *args: str) -> list[str]:
    return ["chat", "--base-url", server.url + "/v1", "--model", "m", *args]


def tools_file(tmp_path: Path, tools: Any = TOOLS) -> str:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(tools))
    return str(path)


# --- one-shot, and what goes where --------------------------------------------------------


def test_one_shot_sends_the_prompt_and_prints_only_the_answer_on_stdout(
    server: LoopbackServer,
) -> None:
    server.route(PATH, echo)
    options = ["--system", "Be brief.", "--temperature", "0.5", "--max-tokens", "50"]
    env = environment(OPENAI_API_KEY="sk-test")
    result = run_cli(*chat(server, *options, "--header", "X-Team: blue", "hello"), env=env)
    assert (result.status, result.out) == (0, "echo: hello\n")
    assert result.err.splitlines()[:2] == ["thinking…", "Thinking."]
    assert result.err.splitlines()[-1].startswith("· first token ")
    assert result.err.splitlines()[-1].endswith("12 in, 3 out")
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


def test_settings_come_from_the_environment(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    env = environment(
        OPENAI_BASE_URL=server.url + "/v1",
        CHATSTREAM_MODEL="env-model",
        OPENAI_API_KEY="sk-default",
        MY_KEY="sk-mine",
    )
    result = run_cli("chat", "--api-key-env", "MY_KEY", "--no-reasoning", "hi", env=env)
    assert result.status == 0
    assert "thinking… (hidden)" in result.err and "Thinking." not in result.err
    (request,) = server.requests
    assert request.json()["model"] == "env-model"
    assert request.headers["Authorization"] == "Bearer sk-mine"


def test_no_key_sends_no_credentials(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    assert run_cli(*chat(server, "hi")).status == 0
    assert "Authorization" not in server.requests[0].headers


def test_result_prints_one_result_object(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server, "--result", "hi"))
    (line,) = result.out.splitlines()
    data = json.loads(line)
    assert (data["content"], data["reasoning"]) == ("echo: hi", "Thinking.")
    assert data["usage"]["output_tokens"] == 3 and data["error"] is None


def test_json_prints_one_event_per_line(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server, "--json", "hi"))
    events = [chatstream.event_from_json(line) for line in result.out.splitlines()]
    assert isinstance(events[-1], chatstream.Completed)
    assert [e.delta for e in events if isinstance(e, chatstream.OutputTextDelta)] == ["echo: hi"]


def test_a_reply_that_came_whole_shows_no_token_rate(server: LoopbackServer) -> None:
    server.route(PATH, completion)
    result = run_cli(*chat(server, "hi"))
    assert (result.status, result.out) == (0, "A whole answer at once.\n")
    summary = result.err.splitlines()[-1]
    assert summary.startswith("· first token ") and summary.endswith("9 in, 6 out")
    assert "tok/s" not in result.err


def test_a_paced_reply_shows_the_token_rate_of_its_timing(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(answer("a", "b", "c", "d", usage=USAGE), delay=0.05))
    result = run_cli(*chat(server, "hi"))
    summary = result.err.splitlines()[-1]
    assert summary.startswith("· first token ") and " tok/s · 12 in, 3 out" in summary


def test_an_answer_cut_at_max_tokens_is_shown_with_a_note(server: LoopbackServer) -> None:
    server.route(PATH, sse_body(answer("Once upon a", role=True, finish="length", usage=USAGE)))
    result = run_cli(*chat(server, "--max-tokens", "3", "a story"))
    assert (result.status, result.out) == (0, "Once upon a\n")
    assert "· cut short: max tokens" in result.err
    assert "error" not in result.err


# --- the conversation -----------------------------------------------------------------------


def test_the_conversation_keeps_the_history(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server, "--system", "sys"), stdin="first\n\n  \nsecond\n")
    assert result.status == 0
    assert result.out == "echo: first\necho: second\n"
    assert result.err.index("you> first") < result.err.index("you> second")
    assert [r.json()["messages"] for r in server.requests] == [
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "first"}],
        [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": "second"},
        ],
    ]


def test_an_answer_cut_at_max_tokens_stays_in_the_history(server: LoopbackServer) -> None:
    cut = answer("Once upon", role=True, finish="length", usage=USAGE)
    server.route(PATH, sequence(sse_body(cut), echo))
    result = run_cli(*chat(server), stdin="a story\ngo on\n")
    assert result.status == 0
    assert server.requests[1].json()["messages"] == [
        {"role": "user", "content": "a story"},
        {"role": "assistant", "content": "Once upon"},
        {"role": "user", "content": "go on"},
    ]


def test_help_lists_the_commands_and_is_not_sent(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server), stdin="/help\nhi\n/quit\nnever sent\n")
    assert result.status == 0
    assert "/exit" in result.err and "/quit" in result.err and "Ctrl-C" in result.err
    assert [r.json()["messages"][-1]["content"] for r in server.requests] == ["hi"]


def test_exit_leaves_the_conversation(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server), stdin="/exit\nhi\n")
    assert (result.status, result.out, server.requests) == (0, "", [])


def test_a_tool_result_typed_by_the_user_goes_back_in_the_same_turn(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.route(PATH, weather)
    stdin = 'weather in Oslo?\n{"temp": 21}\nthanks\n'
    result = run_cli(*chat(server, "--tools", tools_file(tmp_path, {"tools": TOOLS})), stdin=stdin)
    assert result.status == 0
    # The call as it streamed (on stderr), then the answer built from the result.
    assert '→ get_weather({"city": "Oslo"})  (call_1)\n' in result.err
    assert result.out == "Checking.\nIt is 21 degrees in Oslo.\necho: thanks\n"
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
    assert "x-codex-turn-state" not in next_turn.headers
    history = next_turn.json()["messages"]
    assert history[-2:] == [
        {"role": "assistant", "content": "It is 21 degrees in Oslo."},
        {"role": "user", "content": "thanks"},
    ]
    assert len(history) == 5


def test_result_prints_one_object_per_request_of_a_tool_round_trip(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.route(PATH, weather)
    args = chat(server, "--tools", tools_file(tmp_path), "--result", "weather?")
    result = run_cli(*args, stdin='{"temp": -3}\n')
    results = [json.loads(line) for line in result.out.splitlines()]
    assert [r["finish_reason"] for r in results] == ["tool_calls", "stop"]
    assert results[1]["content"] == "It is -3 degrees in Oslo."


PYTHON_TOOLS = '''
def get_weather(city: str, unit: str = "c") -> dict:
    """The weather now in a city.

    Args:
        city: The city's name.
    """
    if city != "Oslo":
        raise LookupError(f"no station in {city}")
    return {"temp": 21}
'''


def test_a_python_tool_runs_on_this_machine_and_its_result_goes_back(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.route(PATH, weather)
    (tmp_path / "my_tools.py").write_text(PYTHON_TOOLS)
    result = run_cli(*chat(server, "--tool", "my_tools:get_weather", "weather?"), cwd=tmp_path)
    assert (result.status, result.out) == (0, "Checking.\nIt is 21 degrees in Oslo.\n")
    assert "← get_weather" in result.err
    first, follow_up = server.requests
    (definition,) = first.json()["tools"]
    assert definition["function"]["name"] == "get_weather"
    assert definition["function"]["description"] == "The weather now in a city."
    assert definition["function"]["parameters"]["required"] == ["city"]
    assert follow_up.json()["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"temp": 21}',
    }


def test_a_python_tool_that_raises_sends_its_error_to_the_model(
    server: LoopbackServer, tmp_path: Path
) -> None:
    def answers_the_error(conn: Conn) -> None:
        last = conn.json()["messages"][-1]
        if last["role"] == "user":
            body = TOOL_CALL.replace(b'\\"Oslo\\"', b'\\"Paris\\"')
            sse_body(body)(conn)
        else:
            sse_body(answer(f"The tool said: {last['content']}", role=True))(conn)

    server.route(PATH, answers_the_error)
    (tmp_path / "my_tools.py").write_text(PYTHON_TOOLS)
    result = run_cli(*chat(server, "--tool", "my_tools:get_weather", "weather?"), cwd=tmp_path)
    assert result.status == 0
    assert result.out.endswith("The tool said: Error: LookupError: no station in Paris\n")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("my_tools", "expected MODULE:FUNCTION"),
        ("no_such_module:f", "cannot import no_such_module"),
        ("my_tools:nothing", "my_tools has no function nothing"),
    ],
)
def test_a_tool_that_cannot_be_loaded_is_a_usage_error(
    server: LoopbackServer, tmp_path: Path, spec: str, says: str
) -> None:
    (tmp_path / "my_tools.py").write_text(PYTHON_TOOLS)
    result = run_cli(*chat(server, "--tool", spec, "hi"), cwd=tmp_path)
    assert result.status == 2 and says in result.err
    assert server.requests == []


def test_help_says_what_result_prints_and_lists_the_commands() -> None:
    result = run_cli("chat", "--help")
    assert result.status == 0
    assert "one JSON object per request" in result.out
    assert "/exit" in result.out and "/quit" in result.out


def test_a_missing_tool_result_is_a_usage_error(server: LoopbackServer, tmp_path: Path) -> None:
    server.route(PATH, weather)
    result = run_cli(*chat(server, "--tools", tools_file(tmp_path), "weather?"))
    assert result.status == 2
    assert result.err.endswith(
        "error: the model called get_weather, but the input ended before its result\n"
    )


def test_the_conversation_goes_on_after_a_failed_turn_and_exits_1(
    server: LoopbackServer,
) -> None:
    bad = json_error(400, {"error": {"message": "Unsupported value: 'm'"}})
    server.route(PATH, sequence(bad, echo))
    result = run_cli(*chat(server), stdin="one\ntwo\n")
    assert result.status == 1
    assert "error: HTTP 400: Unsupported value: 'm' (check the request body)\n" in result.err
    assert result.out == "echo: two\n"
    # The failed turn left no trace in the history.
    assert server.requests[1].json()["messages"] == [{"role": "user", "content": "two"}]


# --- request options ---------------------------------------------------------------------


def test_tool_choice_param_and_system_shape_the_request(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.route(PATH, echo)
    args = chat(
        server,
        "--tools",
        tools_file(tmp_path),
        "--tool-choice",
        "get_weather",
        "--param",
        "seed=7",
        "--param",
        'stop=["\\n\\n"]',
        "--system",
        "Be brief.",
        "hi",
    )
    assert run_cli(*args, stdin='{"temp": 1}\n').status == 0
    body = server.requests[0].json()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (body["seed"], body["stop"]) == (7, ["\n\n"])
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-tokens", "-5", "hi"], "--max-tokens: must be 1 or more"),
        (["--max-tokens", "0", "hi"], "--max-tokens: must be 1 or more"),
        (["--max-retries", "-1", "hi"], "--max-retries: must be 0 or more"),
        (["  "], "the prompt is empty"),
        (["--param", "seed", "hi"], "expected KEY=JSON"),
        (["--param", "user=bob", "hi"], "the value must be JSON"),
        (["--param", "messages=[]", "hi"], "--param messages: not settable"),
    ],
)
def test_bad_input_is_a_usage_error_before_any_request(
    server: LoopbackServer, args: list[str], message: str
) -> None:
    server.route(PATH, echo)
    result = run_cli(*chat(server, *args))
    assert result.status == 2
    assert message in result.err
    assert server.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-url", "http://127.0.0.1:9/v1", "hi"], "error: no model given"),
        (["--base-url", "ftp://x", "--model", "m", "hi"], "error: --base-url must be an http"),
        (["--base-url", "http://x/v1", "--model", "m", "--header", "nocolon", "hi"], "NAME:VALUE"),
        (["--base-url", "http://x/v1", "--model", "m", "--tools", "/nonexistent", "hi"], "--tools"),
        (["--model", "m", "hi"], "error: no server given: pass --base-url URL"),
    ],
)
def test_usage_errors_are_one_line_with_one_prefix_and_status_2(
    args: list[str], message: str
) -> None:
    result = run_cli("chat", *args)
    assert result.status == 2 and result.out == ""
    assert message in result.err and result.err.count("\n") == 1
    assert result.err.startswith("error: ")


# --- failures: what they say ----------------------------------------------------------------


def test_http_401_is_one_clear_line_naming_the_key_variable(server: LoopbackServer) -> None:
    error = {
        "error": {"message": "Incorrect API key provided: sk-bad.", "type": "invalid_request_error"}
    }
    server.route(PATH, json_error(401, error))
    result = run_cli(*chat(server, "hi"), env=environment(OPENAI_API_KEY="sk-bad"))
    assert (result.status, result.out) == (1, "")
    assert result.err == (
        "error: HTTP 401: Incorrect API key provided: [REDACTED]. (check the API key) "
        "The key was read from $OPENAI_API_KEY (--api-key-env).\n"
    )


def test_a_refused_connection_names_the_cause_and_the_url_without_credentials() -> None:
    with LoopbackServer() as gone:
        netloc = gone.url.removeprefix("http://")
    base_url = f"http://alice:s3cret@{netloc}/v1"
    result = run_cli("chat", "--base-url", base_url, "--model", "m", "--max-retries", "0", "hi")
    assert result.status == 1 and "Traceback" not in result.err
    assert result.err == (
        f"error: Could not connect to http://{netloc}/v1/chat/completions: connection "
        f"refused (nothing listens on {netloc}). Is the server running? Check --base-url.\n"
    )


def test_https_to_a_plain_http_server_is_named_a_tls_failure(server: LoopbackServer) -> None:
    base_url = server.url.replace("http://", "https://") + "/v1"
    result = run_cli("chat", "--base-url", base_url, "--model", "m", "--max-retries", "0", "hi")
    assert result.status == 1
    assert "the TLS handshake failed" in result.err
    assert f"Try --base-url {server.url}/v1" in result.err


def test_a_404_shows_the_url_and_a_base_url_ending_in_the_endpoint_gets_advice(
    server: LoopbackServer,
) -> None:
    server.route(PATH, echo)
    base_url = server.url + "/v1/chat/completions"
    result = run_cli("chat", "--base-url", base_url, "--model", "m", "hi")
    assert result.status == 1
    assert f"The URL requested was {base_url}/chat/completions." in result.err
    assert "--base-url is the API root: drop /chat/completions from its end." in result.err


def test_a_retry_is_announced_on_stderr_with_its_wait(server: LoopbackServer) -> None:
    limited = json_error(429, {"error": {"message": "Slow down."}}, headers={"Retry-After": "0.2"})
    server.route(PATH, sequence(limited, echo))
    result = run_cli(*chat(server, "hi"))
    assert (result.status, result.out) == (0, "echo: hi\n")
    (note,) = [line for line in result.err.splitlines() if "retrying" in line]
    assert note.startswith("· HTTP 429: Slow down.") and "retrying in " in note
    assert "(attempt 2 of 3)" in note


def test_a_retried_connection_names_its_cause_in_the_note() -> None:
    with LoopbackServer() as gone:
        url = gone.url + "/v1"
    result = run_cli("chat", "--base-url", url, "--model", "m", "--max-retries", "1", "hi")
    assert result.status == 1
    (note,) = [line for line in result.err.splitlines() if "retrying" in line]
    assert note.startswith(
        f"· Could not connect to {url}/chat/completions (connection refused). retrying in "
    )


def test_max_retries_0_fails_at_once(server: LoopbackServer) -> None:
    server.route(PATH, json_error(503, {"error": {"message": "Busy."}}))
    result = run_cli(*chat(server, "--max-retries", "0", "hi"))
    assert result.status == 1 and "retrying" not in result.err
    assert len(server.requests) == 1
    assert "--max-retries" in result.err


# --- recording --------------------------------------------------------------------------


def test_record_saves_the_body_that_replay_reads_back_identically(
    server: LoopbackServer, tmp_path: Path
) -> None:
    body = answer("recorded words", role=True, reasoning="hmm", usage=USAGE)
    # Split into 1-9 byte writes: the recording is the bytes, not the events.
    server.route(PATH, sse_body(body, split=True))
    recording = tmp_path / "odd.sse"
    live = run_cli(*chat(server, "--result", "--record", str(recording), "hi"))
    assert live.status == 0
    assert recording.read_bytes() == body
    replayed = run_cli("replay", str(recording), "--result")
    assert (replayed.status, replayed.out) == (live.status, live.out)


@pytest.mark.parametrize(
    "handler",
    [
        json_error(401, {"error": {"message": "Invalid key.", "type": "auth"}}),
        json_error(404, {"error": {"message": "The model m does not exist."}}),
        html_page,
        completion,
    ],
    ids=["401", "404", "html", "json-completion"],
)
def test_a_response_that_is_no_event_stream_replays_as_it_ran(
    server: LoopbackServer, tmp_path: Path, handler: Any
) -> None:
    server.route(PATH, handler)
    recording = tmp_path / "odd.sse"
    live = run_cli(*chat(server, "--result", "--record", str(recording), "hi"))
    assert recording.read_bytes().startswith(b"HTTP/1.1 ")
    replayed = run_cli("replay", str(recording), "--result")
    assert (replayed.status, replayed.out) == (live.status, live.out)
    replayed_text = run_cli("replay", str(recording))
    assert replayed_text.status == live.status


def test_record_numbers_the_responses_after_the_first(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.route(PATH, weather)
    recording = tmp_path / "chat.sse"
    args = chat(server, "--tools", tools_file(tmp_path), "--record", str(recording), "weather?")
    assert run_cli(*args, stdin='{"temp": 4}\n').status == 0
    assert recording.read_bytes() == TOOL_CALL
    assert b"It is 4 degrees" in (tmp_path / "chat-2.sse").read_bytes()


# --- Ctrl-C -------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_for_children() -> Iterator[None]:
    """Start commands inside the block with SIGINT at its default, as from a terminal.

    A process a non-interactive shell started in the background (``stress & pytest``,
    a CI runner) has SIGINT ignored, and an ignored signal stays ignored across exec:
    the command then never saw the Ctrl-C, streamed on, and exited 1 on its own
    (seen as "1 instead of 130 on a loaded machine"). A handled signal is reset to its
    default at exec, so this process handles it while it starts one.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    with _sigint_for_children():
        return subprocess.Popen(
            [sys.executable, "-m", "chatstream", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(),
        )


def _finish(process: subprocess.Popen[bytes], stdin: bytes = b"") -> tuple[bytes, bytes]:
    try:
        return process.communicate(stdin, timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _wait_for_disconnect(server: LoopbackServer) -> None:
    deadline = time.monotonic() + 10
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)


def test_ctrl_c_in_one_shot_exits_130_and_closes_the_stream(server: LoopbackServer) -> None:
    server.route(PATH, endless)
    process = _start(chat(server, "hi"))
    assert process.stdout is not None
    assert process.stdout.read(5) == b"word0"  # streaming has begun
    process.send_signal(signal.SIGINT)
    _, err = _finish(process)
    assert process.returncode == 130
    assert err.decode().endswith("\ninterrupted\n") and b"Traceback" not in err
    _wait_for_disconnect(server)  # the connection was closed mid-body
    assert server.disconnects


def test_ctrl_c_in_a_conversation_stops_the_answer_and_keeps_it_marked_as_cut(
    server: LoopbackServer,
) -> None:
    server.route(PATH, sequence(endless, echo))
    process = _start(chat(server))
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"tell me\n")
    process.stdin.flush()
    assert process.stdout.read(5) == b"word0"
    process.send_signal(signal.SIGINT)
    out, err = _finish(process, b"go on\n")
    assert process.returncode == 0, err
    assert b"interrupted: the answer so far is kept" in err and b"Traceback" not in err
    assert out.decode().endswith("echo: go on\n")
    _wait_for_disconnect(server)
    assert server.disconnects
    _first, second = server.requests
    history = second.json()["messages"]
    assert history[0] == {"role": "user", "content": "tell me"}
    assert history[1]["role"] == "assistant"
    assert history[1]["content"].startswith("word0 ")
    assert history[1]["content"].endswith("\n[cut short: interrupted by the user]")
    assert history[2] == {"role": "user", "content": "go on"}


def test_ctrl_c_at_the_prompt_leaves(server: LoopbackServer) -> None:
    server.route(PATH, echo)
    process = _start(chat(server))
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    process.stdin.write(b"hi\n")
    process.stdin.flush()
    assert process.stdout.readline() == b"echo: hi\n"
    # The statistics line is the turn's last output; then the conversation reads the
    # next line (a little later: no output says when, so wait a moment).
    while not process.stderr.readline().startswith("· first token".encode()):
        pass
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = _finish(process)
    assert process.returncode == 0, err
    assert b"Traceback" not in err


def test_on_a_terminal_ctrl_c_stops_the_answer_then_ctrl_c_at_the_prompt_leaves(
    server: LoopbackServer,
) -> None:
    # A terminal of its own, made the command's controlling terminal by setsid(1) (no
    # fork in this multi-threaded process): a typed Ctrl-C becomes its SIGINT.
    setsid = shutil.which("setsid")
    if setsid is None:
        pytest.skip("setsid(1) is not installed")
    server.route(PATH, sequence(endless, echo))
    fd, terminal = os.openpty()
    with _sigint_for_children():
        process = subprocess.Popen(
            [setsid, "--ctty", sys.executable, "-m", "chatstream", *chat(server)],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=environment(NO_COLOR="1"),
        )
    os.close(terminal)
    seen = b""

    def wait_for(token: bytes, times: int = 1) -> bool:
        nonlocal seen
        deadline = time.monotonic() + TIMEOUT
        while seen.count(token) < times and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:  # the command has gone
                    break
        return seen.count(token) >= times

    try:
        assert wait_for(b"you> ")
        os.write(fd, b"tell me\r")
        assert wait_for(b"word0")
        os.write(fd, b"\x03")  # Ctrl-C, as typed: the terminal sends SIGINT
        assert wait_for(b"interrupted: the answer so far is kept")
        assert wait_for(b"you> ", times=2)  # the prompt again
        # Typed at once, a Ctrl-C can reach readline before it waits for input, and
        # CPython's readline then holds the signal until a key is pressed: as a person
        # types, a moment later.
        time.sleep(0.5)
        os.write(fd, b"\x03")
        assert process.wait(timeout=TIMEOUT) == 0, seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(fd)
    assert b"Traceback" not in seen
    (request,) = server.requests
    assert request.json()["messages"] == [{"role": "user", "content": "tell me"}]


def test_the_cli_help_words_the_idle_rule_as_the_library_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli_main(["chat", "--help"])
    assert IDLE_RULE in " ".join(capsys.readouterr().out.split())


def test_an_emoji_split_across_two_deltas_is_printed_whole(server: LoopbackServer) -> None:
    split = build_body([chunk("hi \ud83d"), chunk("\ude00!"), chunk(finish="stop")], done=True)
    server.route(PATH, sse_body(split))
    env = environment(PYTHONIOENCODING="utf-8")  # strict: a lone half cannot be written
    result = run_cli(*chat(server, "hello"), env=env)
    assert (result.status, result.out) == (0, "hi \U0001f600!\n"), result.err

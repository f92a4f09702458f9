"""``chatstream replay FILE [--json|--result]``: what it prints and its exit status."""

from __future__ import annotations

import builtins
import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatstream import (
    Completed,
    OutputItemAdded,
    OutputTextDelta,
    ResponseEvent,
    event_from_json,
)
from chatstream.cli import recording as _recording
from chatstream.cli.command import main

from ..helpers import CORPUS, build_body, chunk, comparable, expectation, result_of, run_core

REASONING = "Let me think about it."
TEXT = "Checking the weather in Paris."
CHUNKS: list[dict[str, Any]] = [
    chunk(reasoning=REASONING),
    chunk(TEXT),
    chunk(
        tool_calls=[
            {
                "index": 0,
                "id": "call_w",
                "function": {"name": "get_weather", "arguments": '{"city":'},
            }
        ]
    ),
    chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
    chunk(
        finish="tool_calls",
        usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    ),
]
GOOD = build_body(CHUNKS, event=None, done=True)
# Cut off: no [DONE] and no finish_reason.
CUT = build_body(CHUNKS[:2], event=None)


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.sse"
    path.write_bytes(GOOD)
    return path


@pytest.fixture
def cut_file(tmp_path: Path) -> Path:
    path = tmp_path / "cut.sse"
    path.write_bytes(CUT)
    return path


def events_of(body: bytes) -> tuple[list[ResponseEvent], Any]:
    return run_core([body])


# --- human output ----------------------------------------------------------------------


def test_human_output_shows_reasoning_text_and_tool_calls(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(good_file)]) == 0
    out, err = capsys.readouterr()
    assert out == TEXT + "\n"  # the answer alone on standard output
    assert REASONING in err
    assert '→ get_weather({"city":"Paris"})  (call_w)' in err  # the call, as it streamed
    assert "5 in, 7 out" in err  # the usage line
    assert "\x1b[" not in out + err  # no colours when not on a terminal


def test_human_output_can_hide_the_reasoning(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(good_file), "--no-reasoning"]) == 0
    out, err = capsys.readouterr()
    assert REASONING not in out + err
    assert TEXT in out


def test_human_output_of_a_failed_stream_shows_what_arrived_and_one_error_line(
    cut_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(cut_file)]) == 1
    out, err = capsys.readouterr()
    assert out == TEXT + "\n"
    (error_line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "[DONE]" in error_line


# --- --json ----------------------------------------------------------------------------


def test_json_prints_one_event_per_line_that_event_from_json_reads_back(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(good_file), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected, error = events_of(GOOD)
    assert error is None
    assert [event_from_json(line) for line in lines] == expected
    assert isinstance(event_from_json(lines[0]), OutputItemAdded)
    assert isinstance(event_from_json(lines[-1]), Completed)


def test_json_of_a_failed_stream_ends_with_one_error_object(
    cut_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(cut_file), "--json"]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected, error = events_of(CUT)
    assert error is not None
    assert [event_from_json(line) for line in lines[:-1]] == expected
    last = json.loads(lines[-1])
    assert last == {"type": "error", "kind": "incomplete_stream", "message": error.message}


# --- --result --------------------------------------------------------------------------


def test_result_prints_exactly_the_result_object(
    good_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(good_file), "--result"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result == result_of([GOOD])
    assert result["tool_calls"] == [
        {"call_id": "call_w", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    ]
    assert result["error"] is None


def test_result_of_a_failed_stream_carries_the_error_and_exits_1(
    cut_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(cut_file), "--result"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["error"]["kind"] == "incomplete_stream"
    assert (result["content"], result["reasoning"]) == (TEXT, REASONING)


@pytest.mark.parametrize("name", ["openai-parallel-tool-calls", "openai-length"])
def test_result_of_a_corpus_stream_is_its_expectation(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["replay", str(CORPUS / f"{name}.sse"), "--result"])
    expected = expectation(name)
    assert status == (0 if expected["error"] is None else 1)
    assert comparable(json.loads(capsys.readouterr().out)) == comparable(expected)


# --- exit status 2 ---------------------------------------------------------------------


def test_a_missing_file_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sse"
    assert main(["replay", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ") and str(missing) in err
    assert "Traceback" not in err


def test_a_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["replay", "x.sse", "--json", "--result"])
    assert exited.value.code == 2


def test_the_input_file_is_closed_when_the_stream_ends_before_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: a stream that failed before the end of its file left the file open
    # until the garbage collector broke the reference cycle of the error's traceback.
    path = tmp_path / "error-then-more.sse"
    path.write_bytes(CUT + b'event: error\ndata: {"error": "boom"}\n\n' + GOOD)
    opened: list[Any] = []

    def tracking_open(*args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(*args, **kwargs)  # noqa: SIM115 - closed by the CLI
        opened.append(handle)
        return handle

    monkeypatch.setattr(_recording, "open", tracking_open, raising=False)
    gc.disable()
    try:
        assert main(["replay", str(path), "--result"]) == 1
        assert [handle.closed for handle in opened] == [True]
    finally:
        gc.enable()
    assert json.loads(capsys.readouterr().out)["error"]["kind"] == "provider_error"


# --- standard input and the module entry point -----------------------------------------


@pytest.mark.parametrize("flag", ["--result", "--json"])
def test_a_dash_reads_standard_input(
    flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD)))
    assert main(["replay", "-", flag]) == 0
    out = capsys.readouterr().out
    if flag == "--result":
        assert json.loads(out) == result_of([GOOD])
    else:
        assert [event_from_json(line) for line in out.splitlines()] == events_of(GOOD)[0]


def test_python_dash_m_chatstream_replay_prints_the_result(good_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatstream", "replay", str(good_file), "--result"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == result_of([GOOD])
    assert done.stderr == b""


# --- framed recordings --------------------------------------------------------------------

COMPLETION = {
    "id": "r1",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    ],
}
FRAMED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    + json.dumps(COMPLETION).encode()
    + b"\r\n"
)


@pytest.mark.parametrize("line_ends", ["crlf", "lf"])
def test_a_framed_recording_replays_whether_its_crlfs_became_lfs_or_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line_ends: str
) -> None:
    path = tmp_path / "reply.http"
    path.write_bytes(FRAMED if line_ends == "crlf" else FRAMED.replace(b"\r\n", b"\n"))
    assert main(["replay", str(path), "--result"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["content"], result["finish_reason"]) == ("Hi!", "stop")


def test_a_framed_recording_without_a_blank_line_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.http"
    path.write_bytes(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    assert main(["replay", str(path)]) == 2
    assert "no blank line ends its head" in capsys.readouterr().err


# --- an emoji split across two deltas (issue 20, item 11) ---------------------------------

SPLIT_EMOJI = build_body(
    [chunk("hi \ud83d"), chunk("\ude00!"), chunk(finish="stop")], event=None, done=True
)


@pytest.mark.parametrize("flag", ["", "--json", "--result"])
def test_an_emoji_split_across_two_deltas_replays_as_utf8(tmp_path: Path, flag: str) -> None:
    path = tmp_path / "split.sse"
    path.write_bytes(SPLIT_EMOJI)
    done = subprocess.run(
        [sys.executable, "-m", "chatstream", "replay", str(path), *([flag] if flag else [])],
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # strict: a lone half cannot be written
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    if flag == "--json":
        events = [event_from_json(line) for line in out.splitlines()]
        out = "".join(e.delta for e in events if isinstance(e, OutputTextDelta)) + "\n"
    elif flag == "--result":
        out = json.loads(out)["choices"][0]["content"] + "\n"
    assert out == "hi \U0001f600!\n"

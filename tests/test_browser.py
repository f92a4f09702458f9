"""A real browser: the example page (the AI SDK's own useChat, bundled) in headless
Chromium, served by the example Flask app against the demo server. The screenshot is
kept under the test's temporary folder (its path is printed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .browser_example import EXAMPLE, node, run_node, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's script, bundled from chat.jsx with the example's own build."""
    node()
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (CI installs Debian's chromium: see .ci/run)")
    static = tmp_path_factory.mktemp("static")
    build = [node(), "build.mjs", str(static / "chat.js")]
    subprocess.run(build, cwd=EXAMPLE, check=True, timeout=120)
    return static


def artefact(tmp_path: Path, name: str) -> Path:
    """Where a screenshot is kept: $CHATSTREAM_ARTIFACTS when set (CI), else the test's
    temporary folder."""
    folder = Path(os.environ.get("CHATSTREAM_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.mark.slow
def test_the_page_shows_the_streamed_answer_and_the_tool_call(bundle: Path, tmp_path: Path) -> None:
    screenshot = artefact(tmp_path, "browser-chat.png")
    with serving(static_folder=bundle) as (url, demo):
        page = run_node("browser_chat.mjs", f"{url}/", demo.script.prompt, str(screenshot))
    print(f"screenshot: {screenshot}")
    assert page["status"] == "ready" and page["error"] is None
    assert page["consoleErrors"] == []
    (answer,) = page["assistant"]
    turns = demo.script.turns
    assert answer["text"] == turns[0]["content"] + turns[1]["content"]
    (tool,) = answer["tools"]
    assert tool["state"] == "output-available"
    assert tool["text"].startswith('get_weather({"city":"Annecy"')
    assert screenshot.stat().st_size > 0


@pytest.mark.slow
def test_the_stop_button_ends_the_answer_and_the_tool_loop(bundle: Path, tmp_path: Path) -> None:
    screenshot = artefact(tmp_path, "browser-stopped.png")
    with serving(static_folder=bundle, fast=False) as (url, demo):
        page = run_node("browser_chat.mjs", f"{url}/", demo.script.prompt, str(screenshot), "stop")
        requests_made = len(demo.received)
    assert page["status"] == "ready"
    (answer,) = page["assistant"]
    first = demo.script.turns[0]["content"]
    # Stopped while the reasoning streams (the text after it is short: stopping there
    # would race a loaded machine): the answer's text is at most begun.
    assert answer["reasoning"] and first.startswith(answer["text"]) and answer["text"] != first
    # The relay closed the upstream stream: the tool never ran, no second request went out.
    assert answer["tools"] == [] and requests_made == 1

"""The browser example (docs/examples/browser) served on 127.0.0.1 for the tests, and
the node tools they run it with (skipped, with the reason, where missing)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.serving import make_server

import chatstream
from chatstream.cli.demo import DemoServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "browser"
SCRIPTS = Path(__file__).resolve().parent / "js"


def example_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("browser_example_app", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node() -> str:
    """The node executable, with the example's packages installed; skips otherwise."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed (CI installs it: see .ci/run)")
    if not (EXAMPLE / "node_modules" / "ai").is_dir():
        pytest.skip("the example's npm packages are missing: npm ci --prefix docs/examples/browser")
    return found


def run_node(script: str, *args: str, timeout: float = 120) -> Any:
    """Runs one of tests/js/*.mjs; its standard output read as JSON."""
    done = subprocess.run(
        [node(), str(SCRIPTS / script), str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@contextmanager
def serving(
    static_folder: Path | None = None, *, fast: bool = True
) -> Iterator[tuple[str, DemoServer]]:
    """The example app against the demo server (paced like a model unless ``fast``), on
    127.0.0.1; yields its base URL and the demo server."""
    module = example_app()
    with DemoServer(fast=fast) as demo, chatstream.Client(demo.base_url) as client:
        script = demo.script
        app = module.create_app(
            client,
            model=script.model,
            system=script.system,
            tools=module.demo_tools(script),
            static_folder=static_folder or EXAMPLE / "static",
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", demo
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

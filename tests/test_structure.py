"""The shell's imports run one way: client -> stream -> the worker's parts -> the core.
Nothing below the client imports it, at run time or for typing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import chatstream

PACKAGE = Path(chatstream.__file__).parent
BELOW_THE_CLIENT = [
    "stream",
    "_worker",
    "_reading",
    "_delivery",
    "_exchange",
    "_deadlines",
    "_outcome",
    "_completion",
    "_transport",
    "_telemetry",
    "_watchdog",
]


def _imported(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):  # every import, TYPE_CHECKING blocks included
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", BELOW_THE_CLIENT)
def test_no_module_below_the_client_imports_it(module: str) -> None:
    # ".client" is "from .client import ...", "..client" is "from . import client".
    assert {".client", "..client", "chatstream.client"}.isdisjoint(_imported(module))

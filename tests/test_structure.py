"""The shell's imports run one way: client -> stream -> the worker's parts -> the core.
Nothing below the client imports it, at run time or for typing. And a module takes from
another only what that one offers in its ``__all__`` (or a name marked private)."""

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


def _offered(module: str) -> set[str] | None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("module", sorted(path.stem for path in PACKAGE.glob("*.py")))
def test_a_module_imports_from_its_siblings_only_what_they_offer(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    taken = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names
    ]
    unoffered = [
        f"{source}.{name}"
        for source, name in taken
        if not name.startswith("_")
        and (offered := _offered(source)) is not None
        and name not in offered
    ]
    assert unoffered == []

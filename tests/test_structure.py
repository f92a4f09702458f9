"""The package's layers, enforced by folder.

* **vocabulary** (top-level ``events``, ``response``, ``errors``, ``config``,
  ``telemetry``, ``_arguments``, ``_version``): the types every layer speaks; they import
  only each other.
* **core** (``chatstream/core/``): the sans-I/O reader. It imports the vocabulary and
  itself, and no I/O: no HTTP library, no threads, sockets, queues or clocks.
* **shell** (``chatstream/_shell/``): the threaded I/O around the core. It imports the
  core and the vocabulary, never a face.
* **faces** (``client``, ``stream``, ``conversation``, ``notebook``, ``wsgi``, ``smooth``
  and ``chatstream/cli/``): what users call, built on the rest.

A module also takes from another only what that one offers in its ``__all__`` (or a
name marked private).

The tests mirror the package: ``chatstream/core/x.py`` is tested in
``tests/core/test_x.py``, ``chatstream/_shell/x.py`` in ``tests/shell/test_x.py``,
``chatstream/cli/x.py`` in ``tests/cli/test_x.py`` and a top-level ``chatstream/x.py`` in
``tests/test_x.py`` (a leading underscore dropped).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import chatstream

PACKAGE = Path(chatstream.__file__).parent
TESTS = Path(__file__).resolve().parent

VOCABULARY = {"events", "response", "errors", "config", "telemetry", "_arguments", "_version"}
FACES = {"client", "stream", "conversation", "notebook", "wsgi", "smooth", "cli"}
#: What the sans-I/O core must never import.
IO_MODULES = {"requests", "urllib3", "threading", "socket", "selectors", "queue", "time", "http"}
#: At most this many modules at the top of the package (the layout must show the design).
MOST_TOP_LEVEL_MODULES = 16


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name below ``chatstream`` (a package as
    its own name)."""
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    top = module.split(".")[0]
    if top == "core":
        return "core"
    if top == "_shell":
        return "shell"
    if top in VOCABULARY:
        return "vocabulary"
    return "face"


def _imports(module: str) -> set[str]:
    """What ``module`` imports, as absolute names (every import, ``TYPE_CHECKING``
    blocks and imports inside functions included)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    is_package = MODULES[module].name == "__init__.py"
    here = ["chatstream", *module.split(".")] if module else ["chatstream"]
    package = here if is_package else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                absolute = ".".join([*base, *([node.module] if node.module else [])])
            else:
                absolute = node.module or ""
            names.add(absolute)
            names.update(f"{absolute}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _internal(names: set[str]) -> set[str]:
    """The package modules among ``names`` (as dotted names below ``chatstream``)."""
    found = set()
    for name in names:
        if name == "chatstream" or not name.startswith("chatstream."):
            continue
        parts = name.split(".")[1:]
        while parts and ".".join(parts) not in MODULES:
            parts.pop()
        if parts:
            found.add(".".join(parts))
    return found


def _of_layer(layer: str) -> list[str]:
    return sorted(m for m in MODULES if m and _layer(m) == layer)


@pytest.mark.parametrize("module", _of_layer("vocabulary"))
def test_the_vocabulary_imports_only_itself(module: str) -> None:
    outside = {m for m in _internal(_imports(module)) if _layer(m) != "vocabulary"}
    assert outside == set()


@pytest.mark.parametrize("module", _of_layer("core"))
def test_the_core_imports_nothing_of_the_shell_or_the_faces(module: str) -> None:
    outside = {m for m in _internal(_imports(module)) if _layer(m) in {"shell", "face"}}
    assert outside == set()


@pytest.mark.parametrize("module", _of_layer("core"))
def test_the_core_does_no_io(module: str) -> None:
    roots = {name.split(".")[0] for name in _imports(module)}
    assert roots & IO_MODULES == set()


@pytest.mark.parametrize("module", _of_layer("shell"))
def test_the_shell_imports_no_face(module: str) -> None:
    faces = {m for m in _internal(_imports(module)) if _layer(m) == "face"}
    assert faces == set()


def test_the_top_of_the_package_shows_few_modules() -> None:
    top = [p for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    assert len(top) <= MOST_TOP_LEVEL_MODULES, sorted(p.name for p in top)


def test_every_folder_of_the_package_is_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"core", "_shell", "cli"}


def _offered(module: str) -> set[str] | None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_from_its_siblings_only_what_they_offer(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    is_package = MODULES[module].name == "__init__.py"
    here = ["chatstream", *module.split(".")] if module else ["chatstream"]
    package = here if is_package else here[:-1]
    unoffered = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level and node.module):
            continue
        source = ".".join([*package[: len(package) - node.level + 1], node.module])[
            len("chatstream.") :
        ]
        if source not in MODULES:
            continue
        offered = _offered(source)
        unoffered += [
            f"{source}.{alias.name}"
            for alias in node.names
            if not alias.name.startswith("_")
            and offered is not None
            and alias.name not in offered
            and f"{source}.{alias.name}" not in MODULES
        ]
    assert unoffered == []


def _cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports from ``start`` back to itself, if there is one."""
    paths = [[start]]
    seen: set[str] = set()
    while paths:
        path = paths.pop()
        for name in sorted(graph[path[-1]]):
            if name == start:
                return [*path, name]
            if name not in seen:
                seen.add(name)
                paths.append([*path, name])
    return None


@pytest.mark.parametrize("module", _of_layer("shell"))
def test_the_shell_has_no_import_cycle(module: str) -> None:
    """Not even through an import inside a function or a ``TYPE_CHECKING`` block."""
    shell = _of_layer("shell")
    graph = {m: {i for i in _internal(_imports(m)) if i in shell and i != m} for m in shell}
    assert _cycle_through(module, graph) is None


def test_the_argument_checks_know_no_configuration_type() -> None:
    # config builds on _arguments; an import back, even inside a function, was a cycle.
    assert "config" not in _internal(_imports("_arguments"))
    assert "_arguments" in _internal(_imports("config"))


# --- the tests mirror the package ----------------------------------------------------------

#: The test folder of each folder of the package.
TEST_FOLDERS = {"core": "core", "_shell": "shell", "cli": "cli"}

#: Modules without a test file of their own, and why: no logic of their own, or tested
#: wholly through another module's file (named).
NOT_MIRRORED = {
    "": "re-exports the public names: tests/test_public_api.py",
    "core": "re-exports the core's entry points",
    "_shell": "a docstring",
    "cli": "re-exports main",
    "__main__": "calls cli.command.main",
    "_version": "a constant",
    "core.content": "chains the think and text-call splitters: tests/core/test_think.py, "
    "tests/core/test_textcalls.py",
    "cli.advice": "the failures' and retries' wording: tests/cli/test_command.py",
    "cli.present": "--json and --result: tests/cli/test_command.py",
    "cli.session": "the conversation and Ctrl-C, run as a command: tests/cli/test_command.py",
    "cli.local_server": "the demo server's base: tests/cli/test_demo.py",
    "notebook": "the notebook recipe: tests/test_recipes.py",
}

#: Top-level test files that test no one module: suites across the package.
ACROSS = {
    "browser",  # the browser example, end to end
    "conformance",  # the Chat Completions corpus
    "docs_references",  # what the docs cite exists
    "loopback",  # the test server's own tests
    "packaging",  # the sdist and wheel, installed
    "properties",  # splitting and framing never change the output
    "public_api",  # __all__ is what docs/api.rst documents
    "recipes",  # docs/recipes.rst
    "responses_corpus",  # the Responses API corpus
    "send_back",  # providers' follow-up rules, through the library and the command
    "spec",  # the specification's own tests
    "structure",  # this file
}


def _test_file(module: str) -> Path:
    *folders, name = module.split(".")
    return TESTS.joinpath(*(TEST_FOLDERS[f] for f in folders), f"test_{name.lstrip('_')}.py")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in NOT_MIRRORED))
def test_every_module_has_its_test_file_at_the_mirrored_path(module: str) -> None:
    assert _test_file(module).is_file(), f"{_test_file(module).relative_to(TESTS.parent)}"


def test_the_modules_without_a_test_file_are_modules_without_one() -> None:
    assert set(NOT_MIRRORED) <= set(MODULES)
    mirrored = {m for m in NOT_MIRRORED if m and m not in TEST_FOLDERS and _test_file(m).exists()}
    assert mirrored == set(), "has its test file now: take it off NOT_MIRRORED"


def test_every_test_file_is_named_for_a_module_of_its_folder() -> None:
    named = {_test_file(m) for m in MODULES if m and m not in TEST_FOLDERS}
    named |= {TESTS / f"test_{name}.py" for name in ACROSS}
    folders = ["", *TEST_FOLDERS.values()]
    found = {path for folder in folders for path in (TESTS / folder).glob("test_*.py")}
    assert sorted(str(p.relative_to(TESTS)) for p in found - named) == []

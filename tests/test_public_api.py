"""The public API is exactly ``chatstream.__all__``, and exactly what docs/api.rst documents.

docs/api.rst says "Only what this page documents is public". These tests fail as soon as
a name is exported without being documented there, documented without being exported,
or exported without a docstring.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import chatstream

API_RST = Path(__file__).resolve().parent.parent / "docs" / "api.rst"

# ``.. autoclass:: chatstream.Client`` and its kin; ``automodule`` documents a module's
# docstring, not a name.
_DIRECTIVE = re.compile(
    r"^\.\.\s+auto(?:class|exception|function|data|attribute|method|property)::\s*(\S+)\s*$",
    re.MULTILINE,
)


def documented_names() -> list[str]:
    """The names docs/api.rst documents, as written (``chatstream.X``)."""
    return _DIRECTIVE.findall(API_RST.read_text(encoding="utf-8"))


def test_all_is_sorted_and_unique() -> None:
    names = list(chatstream.__all__)
    assert names == sorted(set(names)), "keep chatstream.__all__ sorted, without repeats"


def test_every_documented_name_is_written_as_chatstream_dot_name() -> None:
    names = documented_names()
    assert names, f"no auto* directives found in {API_RST}"
    odd = [n for n in names if not re.fullmatch(r"chatstream\.\w+", n)]
    assert not odd, f"document public names as chatstream.NAME in api.rst: {odd}"


def test_no_name_is_documented_twice() -> None:
    names = documented_names()
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"documented more than once in api.rst: {twice}"


def test_the_documented_names_are_exactly_all() -> None:
    documented = {n.removeprefix("chatstream.") for n in documented_names()}
    exported = set(chatstream.__all__)
    assert not exported - documented, (
        f"exported by chatstream.__all__ but not documented in docs/api.rst: "
        f"{sorted(exported - documented)}"
    )
    assert not documented - exported, (
        f"documented in docs/api.rst but not in chatstream.__all__: {sorted(documented - exported)}"
    )


@pytest.mark.parametrize("name", chatstream.__all__)
def test_every_exported_name_exists(name: str) -> None:
    assert hasattr(chatstream, name)


def _own_docstring(obj: object) -> str:
    """The object's own docstring: not one inherited from a base class, nor the one
    ``dataclasses`` makes up (``Name(field: type, ...)``) for a class without one."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    doc = (doc or "").strip()
    name = getattr(obj, "__name__", "")
    if inspect.isclass(obj) and doc.startswith(f"{name}("):
        return ""
    return doc


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in chatstream.__all__
        if inspect.isclass(getattr(chatstream, n)) or inspect.isfunction(getattr(chatstream, n))
    ],
)
def test_every_exported_class_and_function_has_a_docstring(name: str) -> None:
    assert _own_docstring(getattr(chatstream, name)), f"chatstream.{name} has no docstring"


def _public_members(cls: type) -> list[tuple[str, object]]:
    """Methods and properties a chatstream class defines itself, by public name."""
    members = []
    for member, value in vars(cls).items():
        if member.startswith("_"):
            continue
        if isinstance(value, property):
            members.append((member, value.fget))
        elif isinstance(value, (staticmethod, classmethod)):
            members.append((member, value.__func__))
        elif inspect.isfunction(value):
            members.append((member, value))
    return members


@pytest.mark.parametrize(
    "name", [n for n in chatstream.__all__ if inspect.isclass(getattr(chatstream, n))]
)
def test_every_public_method_and_property_of_an_exported_class_has_a_docstring(
    name: str,
) -> None:
    cls = getattr(chatstream, name)
    missing = [m for m, f in _public_members(cls) if not (getattr(f, "__doc__", "") or "").strip()]
    assert not missing, f"chatstream.{name} members without a docstring: {missing}"

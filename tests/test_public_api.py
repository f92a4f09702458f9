"""The public API is exactly ``chatstream.__all__``, and exactly what docs/api.rst documents.

docs/api.rst says "Only what this page documents is public". These tests fail as soon as
a name is exported without being documented there, documented without being exported,
or exported without a docstring.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

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


# --- the size of the signatures (issue 19): options travel as values, not one by one ---

#: The most parameters (``self`` aside) each entry point may take (issue 19's targets).
#: Each option is a field of StreamOptions, Limits, Timeouts, Retry, Connections or
#: Coalescing instead.
MOST_PARAMETERS = {
    chatstream.Client: 14,
    chatstream.Client.stream: 10,
    chatstream.Turn.stream: 10,
    chatstream.StreamParser: 4,
    chatstream.Accumulator: 4,
    chatstream.iter_events: 5,
}


def _parameters(obj: Any) -> list[str]:
    return [p for p in inspect.signature(obj).parameters if p != "self"]


@pytest.mark.parametrize(
    ("obj", "most"), list(MOST_PARAMETERS.items()), ids=lambda v: getattr(v, "__qualname__", "")
)
def test_an_entry_point_takes_few_parameters(obj: Any, most: int) -> None:
    assert len(_parameters(obj)) <= most, _parameters(obj)


@pytest.mark.parametrize(
    "obj",
    [chatstream.Client, chatstream.StreamParser, chatstream.Accumulator, chatstream.iter_events],
    ids=lambda v: v.__qualname__,
)
def test_options_and_limits_are_taken_the_same_way_everywhere(obj: Any) -> None:
    parameters = inspect.signature(obj).parameters
    for name in ("options", "limits"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is None


def test_a_turn_streams_with_the_clients_arguments() -> None:
    assert _parameters(chatstream.Turn.stream) == _parameters(chatstream.Client.stream)


def _callables() -> list[tuple[str, Any]]:
    """Every exported function and class but the errors, and the public methods of the
    classes."""
    found = []
    for name in chatstream.__all__:
        obj = getattr(chatstream, name)
        if inspect.isfunction(obj):
            found.append((name, obj))
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            found.append((name, obj))
            found += [(f"{name}.{m}", f) for m, f in _public_members(obj) if callable(f)]
    return found


@pytest.mark.parametrize(("name", "obj"), _callables(), ids=[n for n, _ in _callables()])
def test_no_public_callable_takes_arbitrary_keywords(name: str, obj: Any) -> None:
    # ``replace(**changes)`` is the one exception: dataclasses.replace's own signature.
    if name.endswith(".replace"):
        return
    try:
        parameters = inspect.signature(obj).parameters.values()
    except ValueError:  # a builtin's, which has no signature to read
        return
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

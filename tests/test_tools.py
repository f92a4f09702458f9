"""A tool's parameters from its Python signature: the schema the model sees and the
validated arguments, through pydantic and through the subset typed without it (pydantic
made missing by putting ``None`` in ``sys.modules``, so ``import pydantic`` fails)."""

from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Literal, Optional

import pytest

from chatstream import ConfigurationError, FunctionCall, Tool, ToolArgumentsError


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


@dataclasses.dataclass
class Place:
    city: str
    country: str = "FR"


def forecast(
    place: Place,
    days: int = 1,
    unit: Unit = Unit.CELSIUS,
    hours: list[int] | None = None,
    detail: Literal["short", "long"] = "short",
    note: Optional[str] = None,  # noqa: UP045 - the spelling the subset must read too
) -> str:
    """The forecast for a place.

    Args:
        place: Where.
        days: How many days ahead.
    """
    return f"{place.city}: {days} {unit.value} {hours} {detail} {note}"


@pytest.fixture(params=["pydantic", "subset"])
def typed_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: with pydantic, and with pydantic missing."""
    if request.param == "pydantic":
        pytest.importorskip("pydantic")
    else:
        monkeypatch.setitem(sys.modules, "pydantic", None)
    return str(request.param)


def call(arguments: str) -> FunctionCall:
    return FunctionCall("forecast", arguments, "call_1")


def test_optional_parameters_are_not_required(typed_by: str) -> None:
    parameters = Tool.of(forecast).definition()["function"]["parameters"]
    assert parameters["required"] == ["place"]
    assert set(parameters["properties"]) == {"place", "days", "unit", "hours", "detail", "note"}


def test_a_dataclass_parameters_defaulted_field_is_not_required(typed_by: str) -> None:
    parameters = Tool.of(forecast).definition()["function"]["parameters"]
    place = parameters["properties"]["place"]
    if "$ref" in place:  # pydantic puts the dataclass under $defs
        place = parameters["$defs"][place["$ref"].rsplit("/", 1)[-1]]
    assert place["required"] == ["city"]


def test_the_docstring_describes_the_tool_and_its_parameters(typed_by: str) -> None:
    function = Tool.of(forecast).definition()["function"]
    assert function["description"] == "The forecast for a place."
    assert function["parameters"]["properties"]["days"]["description"] == "How many days ahead."


def test_the_arguments_become_the_python_values_the_annotations_name(typed_by: str) -> None:
    tool = Tool.of(forecast)
    arguments = tool.arguments(call('{"place": {"city": "Oslo"}, "unit": "f", "hours": [6]}'))
    assert arguments["place"] == Place("Oslo")
    assert arguments["unit"] is Unit.FAHRENHEIT
    assert arguments["hours"] == [6]


def test_a_call_without_its_optional_arguments_runs_with_the_defaults(typed_by: str) -> None:
    tool = Tool.of(forecast)
    assert forecast(**tool.arguments(call('{"place": {"city": "Oslo"}}'))) == (
        "Oslo: 1 c None short None"
    )


@pytest.mark.parametrize(
    ("arguments", "loc"),
    [
        ('{"days": 2}', ["place"]),
        ('{"place": {"city": "Oslo"}, "days": "two"}', ["days"]),
        ('{"place": {"city": "Oslo"}, "detail": "medium"}', ["detail"]),
    ],
)
def test_arguments_that_do_not_fit_name_where(
    typed_by: str, arguments: str, loc: list[str]
) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        Tool.of(forecast).arguments(call(arguments))
    assert caught.value.errors[0]["loc"][: len(loc)] == loc


def test_without_pydantic_a_type_outside_the_subset_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)

    def when(moment: complex) -> str:
        return ""

    with pytest.raises(ConfigurationError, match=r"when\(moment\).*not in the subset"):
        Tool.of(when)

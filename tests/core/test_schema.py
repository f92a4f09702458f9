"""Types for JSON values (chatstream.core.schema) on their own: the JSON Schema validator,
its errors in pydantic's shape, the types of a value's parts, and the strict form of a
schema for the wire."""

from __future__ import annotations

from typing import Any

import pytest

from chatstream.core.schema import Invalid, OutputType, output_type, strict_schema

PET: dict[str, Any] = {
    "title": "A pet!",
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
        "age": {"type": "integer", "minimum": 1},
    },
    "required": ["tags", "age"],
    "additionalProperties": False,
    "$defs": {"tag": {"type": "string", "maxLength": 3}},
}


def test_a_value_that_fits_the_schema_is_returned_as_it_is() -> None:
    value = {"tags": ["cat"], "age": 2}
    assert output_type(PET).validate(value) is value


def test_every_misfit_is_reported_where_it_is_with_pydantics_error_types() -> None:
    with pytest.raises(Invalid) as info:
        output_type(PET).validate({"tags": ["ok", "long"], "age": 0})
    assert [(e["loc"], e["type"]) for e in info.value.errors] == [
        (["tags", 1], "string_too_long"),
        (["age"], "greater_than_equal"),
    ]
    assert info.value.summary().startswith("tags.1: ")


def test_text_that_is_not_json_is_one_json_invalid_error_at_the_root() -> None:
    with pytest.raises(Invalid) as info:
        output_type(PET).validate_json('{"tags": [')
    assert [(e["loc"], e["type"]) for e in info.value.errors] == [([], "json_invalid")]


def test_an_arrays_elements_share_one_type_followed_through_ref() -> None:
    tags = output_type(PET).child("tags")
    assert tags is not None
    assert tags.child(0) is tags.child(7)
    tag = tags.child(0)
    assert tag is not None
    with pytest.raises(Invalid):
        tag.validate("long")


def test_the_wire_name_is_the_title_made_safe() -> None:
    assert output_type(PET).name == "A_pet_"
    assert output_type({"type": "string"}).name == "output"


def test_an_output_type_is_taken_as_it_is() -> None:
    kind = output_type(PET)
    assert isinstance(kind, OutputType) and output_type(kind) is kind


def test_the_strict_schema_closes_every_object_and_requires_all_its_properties() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}}}
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False and strict["required"] == ["a"]
    inner = strict["properties"]["a"]
    assert inner["additionalProperties"] is False and inner["required"] == ["b"]
    assert "required" not in schema  # the given schema is left as it was

"""Types for JSON values: their JSON Schema for the wire, and their validation.

:func:`output_type` makes an :class:`OutputType` of what a caller names as the type of
an answer or of a tool's arguments:

* a pydantic model class, or anything pydantic's ``TypeAdapter`` takes (a dataclass, a
  ``TypedDict``, ``list[Model]``, ...), validated by pydantic (the ``pydantic`` extra:
  ``pip install chatstream-sse[pydantic]``);
* a JSON Schema (a ``dict``), validated without pydantic by the small validator of this
  module.

The validator covers the subset of JSON Schema that providers accept for structured
output (OpenAI's strict mode, llama.cpp's grammar): ``type`` (one or a list),
``enum``, ``const``, ``properties``, ``required``, ``additionalProperties`` (a boolean
or a schema), ``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``minLength``,
``maxLength``, ``pattern``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``multipleOf``, ``anyOf``, ``oneOf``, ``allOf``, and ``$ref``
to ``#/$defs/...`` or ``#/definitions/...``. ``format``, ``title``, ``description``,
``default``, ``examples`` and ``$schema`` are annotations, not checked. Any other
keyword is refused when the type is made (a :class:`~chatstream.ConfigurationError`),
so that nothing a schema asks for is silently left unchecked; for the rest of JSON
Schema, give a pydantic type.

Why a validator of its own rather than ``jsonschema``: the schemas a provider enforces
are this subset, so the subset is what an answer must be checked against; it keeps
typed output free of a dependency (``jsonschema`` brings four), and its errors have the
same shape as pydantic's (``loc``, ``msg``, ``type``), so code handling
:class:`~chatstream.OutputValidationError` reads both alike.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import math
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "Invalid",
    "OutputType",
    "PydanticType",
    "SchemaType",
    "Wrapped",
    "function_parameters",
    "output_type",
    "strict_schema",
]

#: Keywords the validator checks.
_CHECKED = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
    }
)
#: Keywords that only describe.
_ANNOTATIONS = frozenset(
    {"format", "title", "description", "default", "examples", "$schema", "$id", "$comment"}
)
_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class Invalid(Exception):
    """A value does not fit its type; ``errors`` as pydantic reports them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    def summary(self) -> str:
        """The first errors, in one line."""
        parts = [
            f"{'.'.join(str(k) for k in e.get('loc', ())) or '(the value)'}: {e.get('msg')}"
            for e in self.errors[:3]
        ]
        more = len(self.errors) - 3
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class OutputType:
    """A type of JSON value: its schema, its validation, and the types of its parts."""

    #: A name for the schema on the wire (``json_schema.name``).
    name: str = "output"
    #: The JSON Schema of the values.
    schema: dict[str, Any]

    def validate(self, value: Any) -> Any:
        """The value ``value`` (decoded JSON) stands for; raises :class:`Invalid`."""
        raise NotImplementedError

    def validate_json(self, text: str) -> Any:
        """The value the JSON ``text`` stands for; raises :class:`Invalid`."""
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            error = {"loc": [], "msg": f"Invalid JSON: {exc}", "type": "json_invalid"}
            raise Invalid([error]) from None
        return self.validate(value)

    def child(self, key: str | int) -> OutputType | None:
        """The type of the part at ``key`` (an object's property, an array's element),
        or ``None`` when it cannot be told on its own."""
        return None

    def response_format(self) -> dict[str, Any]:
        """The request's ``response_format`` asking for this type."""
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": True},
        }

    def text_format(self) -> dict[str, Any]:
        """The Responses API request's ``text.format`` asking for this type."""
        return {"type": "json_schema", "name": self.name, "schema": self.schema, "strict": True}


def output_type(spec: Any) -> OutputType:
    """The :class:`OutputType` of ``spec``: an :class:`OutputType` as it is, a JSON
    Schema ``dict``, or a type pydantic can validate.

    Raises:
        ConfigurationError: The schema uses a keyword the validator does not check, or
            pydantic is not installed (or does not take the type).
    """
    if isinstance(spec, OutputType):
        return spec
    if isinstance(spec, Mapping):
        return SchemaType(dict(spec))
    return PydanticType(spec)


def strict_schema(schema: Any) -> Any:
    """``schema`` as OpenAI's strict mode wants it: every object closed
    (``additionalProperties: false``) with all its properties required."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if isinstance(out.get("properties"), dict) and out.get("type", "object") == "object":
        out.setdefault("additionalProperties", False)
        out["required"] = list(out["properties"])
    return out


def _schema_name(text: str) -> str:
    return _NAME.sub("_", text)[:64] or "output"


# --- JSON Schema --------------------------------------------------------------------------


class SchemaType(OutputType):
    """Values checked against a JSON Schema (the subset in the module's notes)."""

    def __init__(self, schema: dict[str, Any], root: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self._root = schema if root is None else root
        if root is None:
            _check_keywords(schema, "#")
            title = schema.get("title")
            self.name = _schema_name(title) if isinstance(title, str) else "output"
        self._children: dict[str | int, OutputType | None] = {}

    def validate(self, value: Any) -> Any:
        errors: list[dict[str, Any]] = []
        _check(self.schema, value, [], errors, self._root)
        if errors:
            raise Invalid(errors)
        return value

    def child(self, key: str | int) -> OutputType | None:
        schema = _resolve(self.schema, self._root)
        # Every element has the same type, unless the array has prefixItems.
        kind: str | int = key if isinstance(key, str) or "prefixItems" in schema else -1
        if kind not in self._children:
            found = _child_schema(schema, key)
            self._children[kind] = None if found is None else SchemaType(found, self._root)
        return self._children[kind]


def _check_keywords(schema: Any, where: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise ConfigurationError(f"the JSON Schema at {where} is not an object")
    unknown = set(schema) - _CHECKED - _ANNOTATIONS
    if unknown:
        raise ConfigurationError(
            f"the JSON Schema at {where} uses {sorted(unknown)}, which chatstream's "
            "validator does not check; give a pydantic type for the rest of JSON Schema"
        )
    types = schema.get("type")
    for name in types if isinstance(types, list) else [types] if types else []:
        if name not in _JSON_TYPES:
            raise ConfigurationError(f"the JSON Schema at {where} has an unknown type {name!r}")
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            _check_keywords(sub, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_keywords(schema[key], f"{where}/{key}")
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        for number, sub in enumerate(schema.get(key) or ()):
            _check_keywords(sub, f"{where}/{key}/{number}")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        match = re.fullmatch(r"#/(\$defs|definitions)/(.+)", ref) if isinstance(ref, str) else None
        target = (root.get(match.group(1)) or {}).get(match.group(2)) if match else None
        if not isinstance(target, dict) or seen > 64:
            raise ConfigurationError(f"cannot resolve $ref {ref!r}")
        schema, seen = target, seen + 1
    return schema


def _child_schema(schema: dict[str, Any], key: str | int) -> dict[str, Any] | None:
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        # Optional[X]: the one alternative that is not null; otherwise unknown.
        real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        return _child_schema(real[0], key) if len(real) == 1 and isinstance(real[0], dict) else None
    if schema.get("allOf"):
        return None
    found: Any = None
    if isinstance(key, str):
        properties = schema.get("properties")
        if isinstance(properties, dict) and key in properties:
            found = properties[key]
        elif isinstance(schema.get("additionalProperties"), dict):
            found = schema["additionalProperties"]
    else:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and key < len(prefix):
            found = prefix[key]
        elif isinstance(schema.get("items"), dict):
            found = schema["items"]
    return found if isinstance(found, dict) else None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fits(name: str, value: Any) -> bool:
    actual = _type_of(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == name


def _error(errors: list[dict[str, Any]], loc: list[Any], kind: str, msg: str) -> None:
    errors.append({"loc": list(loc), "msg": msg, "type": kind})


def _check(
    schema: Any, value: Any, loc: list[Any], errors: list[dict[str, Any]], root: dict[str, Any]
) -> None:
    if schema is True:
        return
    if schema is False:
        _error(errors, loc, "false_schema", "No value is allowed here")
        return
    schema = _resolve(schema, root)
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_fits(name, value) for name in names):
            _error(errors, loc, f"{'_'.join(names)}_type", f"Input should be {' or '.join(names)}")
            return
    if "const" in schema and value != schema["const"]:
        _error(errors, loc, "literal_error", f"Input should be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(repr(o) for o in schema["enum"])
        _error(errors, loc, "enum", f"Input should be one of {options}")
    if isinstance(value, str):
        _check_string(schema, value, loc, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(schema, value, loc, errors)
    elif isinstance(value, list):
        _check_array(schema, value, loc, errors, root)
    elif isinstance(value, dict):
        _check_object(schema, value, loc, errors, root)
    for sub in schema.get("allOf") or ():
        _check(sub, value, loc, errors, root)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            fitting = sum(1 for sub in options if not _errors_of(sub, value, loc, root))
            if fitting == 0 or (key == "oneOf" and fitting > 1):
                _error(errors, loc, "union_error", f"Input fits {fitting} of the {key} options")


def _errors_of(schema: Any, value: Any, loc: list[Any], root: dict[str, Any]) -> bool:
    found: list[dict[str, Any]] = []
    _check(schema, value, loc, found, root)
    return bool(found)


def _check_string(
    schema: dict[str, Any], value: str, loc: list[Any], errors: list[dict[str, Any]]
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        _error(errors, loc, "string_too_short", f"At least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        _error(errors, loc, "string_too_long", f"At most {schema['maxLength']} characters")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        _error(errors, loc, "string_pattern_mismatch", f"Should match {schema['pattern']!r}")


def _check_number(
    schema: dict[str, Any], value: float, loc: list[Any], errors: list[dict[str, Any]]
) -> None:
    bounds = [
        ("minimum", 1, True, "greater_than_equal", ">="),
        ("maximum", -1, True, "less_than_equal", "<="),
        ("exclusiveMinimum", 1, False, "greater_than", ">"),
        ("exclusiveMaximum", -1, False, "less_than", "<"),
    ]
    for key, direction, inclusive, kind, sign in bounds:
        if key not in schema:
            continue
        bound = schema[key]
        holds = (value - bound) * direction > 0 or (inclusive and value == bound)
        if not holds:
            _error(errors, loc, kind, f"Input should be {sign} {bound}")
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step)):
        _error(errors, loc, "multiple_of", f"Input should be a multiple of {step}")


def _check_array(
    schema: dict[str, Any],
    value: list[Any],
    loc: list[Any],
    errors: list[dict[str, Any]],
    root: dict[str, Any],
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        _error(errors, loc, "too_short", f"At least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        _error(errors, loc, "too_long", f"At most {schema['maxItems']} items")
    prefix = schema.get("prefixItems") or []
    items = schema.get("items")
    for number, item in enumerate(value):
        sub = prefix[number] if number < len(prefix) else items
        if sub is not None:
            _check(sub, item, [*loc, number], errors, root)


def _check_object(
    schema: dict[str, Any],
    value: dict[str, Any],
    loc: list[Any],
    errors: list[dict[str, Any]],
    root: dict[str, Any],
) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            _error(errors, [*loc, name], "missing", "Field required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(properties[name], item, [*loc, name], errors, root)
        elif extra is False:
            _error(errors, [*loc, name], "extra_forbidden", "Extra inputs are not permitted")
        elif isinstance(extra, dict):
            _check(extra, item, [*loc, name], errors, root)


# --- pydantic -----------------------------------------------------------------------------


class PydanticType(OutputType):
    """Values validated by pydantic's ``TypeAdapter`` of a Python type. Its schema is
    made strict (see :func:`strict_schema`) unless ``strict`` is false: a tool's
    parameters keep their optional ones optional."""

    def __init__(self, annotation: Any, *, strict: bool = True) -> None:
        try:
            import pydantic
        except ImportError:
            raise ConfigurationError(
                f"{annotation!r} is a Python type, which needs pydantic to be validated "
                "(pip install chatstream-sse[pydantic]); or give a JSON Schema dict"
            ) from None
        self._pydantic = pydantic
        self.annotation = annotation
        try:
            self._adapter: Any = pydantic.TypeAdapter(annotation)
            schema = self._adapter.json_schema()
        except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError) as exc:
            raise ConfigurationError(f"pydantic cannot validate {annotation!r}: {exc}") from None
        self.schema = strict_schema(schema) if strict else schema
        title = annotation.__name__ if isinstance(annotation, type) else schema.get("title")
        self.name = _schema_name(title) if isinstance(title, str) else "output"
        self._children: dict[str | int, OutputType | None] = {}

    def _invalid(self, exc: Any) -> Invalid:
        errors: list[dict[str, Any]] = json.loads(exc.json(include_url=False))
        return Invalid(errors)

    def validate(self, value: Any) -> Any:
        try:
            return self._adapter.validate_python(value)
        except self._pydantic.ValidationError as exc:
            raise self._invalid(exc) from None

    def validate_json(self, text: str) -> Any:
        try:
            return self._adapter.validate_json(text)
        except self._pydantic.ValidationError as exc:
            raise self._invalid(exc) from None

    def child(self, key: str | int) -> OutputType | None:
        fixed = isinstance(key, int) and _is_fixed_tuple(self.annotation)
        kind: str | int = key if isinstance(key, str) or fixed else -1
        if kind not in self._children:
            found = _child_annotation(self.annotation, key)
            child = None
            if found is not None:
                try:
                    child = PydanticType(found)
                except ConfigurationError:
                    child = None
            self._children[kind] = child
        return self._children[kind]


def _strip(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and without ``Optional``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin is typing.Union or type(annotation).__name__ == "UnionType":
            real = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(real) == 1:
                annotation = real[0]
                continue
        return annotation


def _is_fixed_tuple(annotation: Any) -> bool:
    annotation = _strip(annotation)
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is tuple and not (len(args) == 2 and args[1] is ...)


def _child_annotation(annotation: Any, key: str | int) -> Any:
    """The type of the part at ``key`` of a value of ``annotation``, or ``None``."""
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(key, int):
        if origin is tuple:
            if len(args) == 2 and args[1] is ...:
                return args[0]
            return args[key] if key < len(args) else None
        if origin in (list, set, frozenset) or (
            isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
        ):
            return args[0] if args else None
        return None
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return args[1] if len(args) == 2 else None
    fields = getattr(annotation, "model_fields", None)  # a pydantic model
    if isinstance(fields, dict):
        for name, info in fields.items():
            if (info.alias or name) == key:
                metadata = list(info.metadata)
                return (
                    typing.Annotated[(info.annotation, *metadata)] if metadata else info.annotation
                )
        return None
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation)
    ):
        try:
            hints = typing.get_type_hints(annotation, include_extras=True)
        except (NameError, TypeError):
            return None
        return hints.get(key)
    return None


class Wrapped(OutputType):
    """``inner`` sent as the one property ``key`` of an object: providers' strict mode
    wants an object at the root, so a list or a scalar answer is wrapped on the wire."""

    def __init__(self, inner: OutputType, key: str) -> None:
        self.inner = inner
        self.key = key
        self.name = inner.name
        self.schema = {
            "type": "object",
            "properties": {key: inner.schema},
            "required": [key],
            "additionalProperties": False,
        }
        # $defs stay at the root, where the inner schema's $refs point.
        defs = {k: v for k, v in inner.schema.items() if k in ("$defs", "definitions")}
        if defs:
            self.schema["properties"][key] = {
                k: v for k, v in inner.schema.items() if k not in defs
            }
            self.schema.update(defs)

    def validate(self, value: Any) -> Any:
        if not isinstance(value, dict) or self.key not in value:
            raise Invalid([{"loc": [self.key], "msg": "Field required", "type": "missing"}])
        try:
            return {self.key: self.inner.validate(value[self.key])}
        except Invalid as exc:
            located = [{**e, "loc": [self.key, *e.get("loc", [])]} for e in exc.errors]
            raise Invalid(located) from None

    def validate_json(self, text: str) -> Any:
        """The inner value (unwrapped); errors are located in it."""
        value = OutputType.validate_json(_Shape(self.key), text)
        return self.inner.validate(value[self.key])

    def child(self, key: str | int) -> OutputType | None:
        return self.inner if key == self.key else None


class _Shape(OutputType):
    """An object with the property ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def validate(self, value: Any) -> Any:
        if not isinstance(value, dict) or self.key not in value:
            raise Invalid(
                [{"loc": [], "msg": f"Expected an object with {self.key!r}", "type": "missing"}]
            )
        return value


# --- a function's parameters ------------------------------------------------------------


def _doc_parts(doc: str) -> tuple[str, dict[str, str]]:
    """A docstring's first paragraph, and the descriptions of its ``Args:`` entries."""
    text = inspect.cleandoc(doc or "")
    description = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if section:
        name = None
        for line in section.group(1).splitlines():
            entry = re.match(r"\s{2,8}(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
            if entry:
                name = entry.group(1)
                params[name] = entry.group(2).strip()
            elif name and line.strip():
                params[name] += " " + line.strip()
    return description, params


def _subset_schema(annotation: Any, where: str) -> dict[str, Any]:
    """The JSON Schema of ``annotation`` in the subset typed without pydantic."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _subset_schema(args[0], where)
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is type(None):
        return {"type": "null"}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return {"anyOf": [_subset_schema(a, where) for a in args]}
    if origin in (list, set, frozenset, tuple) or annotation in (list, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            return {"type": "array", "prefixItems": [_subset_schema(a, where) for a in args]}
        return {"type": "array", **({"items": _subset_schema(args[0], where)} if args else {})}
    if origin is dict or annotation is dict:
        extra = _subset_schema(args[1], where) if len(args) == 2 else True
        return {"type": "object", "additionalProperties": extra}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        fields = dataclasses.fields(annotation)
        return {
            "type": "object",
            "properties": {f.name: _subset_schema(hints[f.name], where) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
            "additionalProperties": False,
        }
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    raise ConfigurationError(
        f"{where}: the type {annotation!r} is not in the subset typed without pydantic "
        "(str, int, float, bool, lists, dicts, Optional, Literal, Enum, dataclasses); "
        "install pydantic (chatstream-sse[pydantic]) or give a Tool with its schema"
    )


def _convert(annotation: Any, value: Any) -> Any:
    """A validated JSON value as the Python value ``annotation`` names (enum members,
    dataclass instances), for the subset typed without pydantic."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _convert(args[0], value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        return annotation(**{k: _convert(hints.get(k, Any), v) for k, v in value.items()})
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        real = [a for a in args if a is not type(None)]
        return value if value is None or len(real) != 1 else _convert(real[0], value)
    if origin in (list, set, frozenset) and args and isinstance(value, list):
        return origin(_convert(args[0], v) for v in value)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _convert(args[1], v) for k, v in value.items()}
    return value


class _Parameters(OutputType):
    """A function's keyword arguments: validated, then converted to the Python values
    its annotations name."""

    def __init__(self, inner: OutputType, convert: Any) -> None:
        self.inner = inner
        self.schema = inner.schema
        self.name = inner.name
        self._convert = convert

    def validate(self, value: Any) -> Any:
        return self._convert(self.inner.validate(value))


def function_parameters(
    function: Any, *, skip: tuple[str, ...] = (), use_pydantic: bool | None = None
) -> tuple[str, OutputType]:
    """The description of ``function`` (its docstring's first paragraph) and the type of
    its keyword arguments (an object; validating gives a dict of Python values).

    Parameters named in ``skip`` are left out. The types come from the annotations:
    through pydantic where it is installed (any type it takes), otherwise the subset
    ``str``, ``int``, ``float``, ``bool``, lists, dicts, ``Optional``, ``Literal``,
    ``Enum`` and dataclasses. A parameter's description is its docstring entry under
    ``Args:``.

    Raises:
        ConfigurationError: A parameter's type cannot be described.
    """
    description, docs = _doc_parts(getattr(function, "__doc__", "") or "")
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    params = [
        p
        for p in signature.parameters.values()
        if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    name = getattr(function, "__name__", "tool")
    if use_pydantic is None:
        try:
            import pydantic

            use_pydantic = True
        except ImportError:
            use_pydantic = False
    if use_pydantic:
        import pydantic

        fields: dict[str, Any] = {}
        for p in params:
            annotation = hints.get(p.name, Any)
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (
                annotation,
                pydantic.Field(default, description=docs.get(p.name)),
            )
        model = pydantic.create_model(name, **fields)
        # Not strict: a parameter with a default is not required (the request does not
        # ask for strict function calling).
        inner: OutputType = PydanticType(model, strict=False)

        def convert(value: Any) -> Any:
            return {p.name: getattr(value, p.name) for p in params}

        return description, _Parameters(inner, convert)
    properties: dict[str, Any] = {}
    for p in params:
        schema = _subset_schema(hints.get(p.name, Any), f"{name}({p.name})")
        if p.name in docs:
            schema = {**schema, "description": docs[p.name]}
        properties[p.name] = schema
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    object_schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }

    def convert_subset(value: Any) -> Any:
        return {k: _convert(hints.get(k, Any), v) for k, v in value.items()}

    return description, _Parameters(SchemaType(object_schema), convert_subset)

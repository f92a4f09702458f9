"""Typed answers as they stream: a partial value whose finished parts are validated.

With ``output=T`` (:meth:`Client.stream <chatstream.Client.stream>`), the JSON content
of each choice is seen through :class:`TypedJson`. At every refresh of the partial JSON
view (:mod:`chatstream.core.partial_json`, whose geometric schedule keeps the work
linear in the size of the answer) it builds the value so far:

* a part is **complete** once its closing bracket or quote, or a following sibling,
  arrived; a complete part is validated against its own type (a property's type, an
  element's type) once, and shown validated from then on (a pydantic model instance,
  say). A complete part that does not validate on its own is shown as received: the
  whole answer is validated at the end, and that decides.
* the parts still **open** (the last property or element of each unclosed object or
  array, and a string still arriving) are shown as they stand.

For a list answer, each finished element is announced once, validated
(:class:`~chatstream.OutputElementDone`). At the end the whole text is validated
strictly (:meth:`OutputType.validate_json`): that is the response's ``parsed``.

Finding which parts are complete needs the nesting of the text at the refresh point,
which a scan of the text's brackets and quotes gives; the scan is incremental (each
character is looked at once in all) and skips, with a regular expression, everything
but the characters it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import OutputRefusedError, OutputTruncatedError, OutputValidationError
from ..events import OutputElementDone, OutputTextParsed, ResponseEvent
from ..response import TRUNCATING_FINISH_REASONS
from .partial_json import PartialJson
from .schema import Invalid, OutputType, Wrapped, output_type

__all__ = ["TypedJson", "asking_for", "check_answer", "for_request"]

# Outside a string only brackets and quotes matter; inside one, its end and escapes.
_OUTSIDE = re.compile(r'[\[\]{}"]')
_INSIDE = re.compile(r'["\\]')
_SPACE = " \t\r\n"


def for_request(
    spec: Any, body: Mapping[str, Any], api: str = "chat"
) -> tuple[OutputType, dict[str, Any] | None]:
    """The type to read answers to ``body`` with, and the structured-output field to add
    to it (``None`` when the body has its own, whose answers are then read as ``spec``):
    on the chat wire the ``response_format``, on the Responses wire (``api="responses"``)
    the ``text.format``.

    Providers' strict mode wants an object at the root: a list answer goes on the wire
    as ``{"elements": [...]}`` and any other non-object as ``{"value": ...}``, unwrapped
    when read."""
    kind = output_type(spec)
    if api == "responses":
        text = body.get("text")
        if isinstance(text, Mapping) and "format" in text:
            return kind, None
        kind = _rooted(kind)
        return kind, kind.text_format()
    if "response_format" in body:
        return kind, None
    kind = _rooted(kind)
    return kind, kind.response_format()


def asking_for(
    spec: Any, body: Mapping[str, Any], api: str = "chat"
) -> tuple[OutputType, dict[str, Any]]:
    """The type to read answers to ``body`` with, and ``body`` asking for it (see
    :func:`for_request`): with its ``response_format``, or its ``text.format`` on the
    Responses wire (the other fields of ``text``, such as ``verbosity``, kept)."""
    kind, field = for_request(spec, body, api)
    if field is None:
        return kind, dict(body)
    if api == "responses":
        text = body.get("text")
        text = text if isinstance(text, Mapping) else {}
        return kind, {**body, "text": {**text, "format": field}}
    return kind, {**body, "response_format": field}


def _rooted(kind: OutputType) -> OutputType:
    """``kind`` with an object at its root: itself when it is one, else wrapped."""
    root = kind.schema
    ref = root.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        root = (root.get("$defs") or root.get("definitions") or {}).get(name, root)
    if root.get("type") == "object" or ("properties" in root and "type" not in root):
        return kind
    return Wrapped(kind, "elements" if root.get("type") == "array" else "value")


class _Scan:
    """The nesting at the end of the text scanned so far."""

    __slots__ = ("in_string", "position", "stack", "string_start")

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.in_string = False
        self.string_start = 0
        self.position = 0

    def scan(self, text: str) -> None:
        i = self.position
        stack = self.stack
        end = len(text)
        while True:
            if self.in_string:
                match = _INSIDE.search(text, i)
                if match is None:
                    i = end
                    break
                if match.group() == "\\":
                    if match.end() >= end:  # the escaped character has not arrived
                        i = match.start()
                        break
                    i = match.end() + 1
                    continue
                self.in_string = False
                i = match.end()
            else:
                match = _OUTSIDE.search(text, i)
                if match is None:
                    i = end
                    break
                char = match.group()
                i = match.end()
                if char == '"':
                    self.in_string = True
                    self.string_start = match.start()
                elif char in "[{":
                    stack.append(char)
                elif stack:
                    stack.pop()
        self.position = i

    def open_value_string(self, text: str) -> bool:
        """Whether the text ends inside a string that is a value (not a key)."""
        if not self.in_string:
            return False
        if not self.stack or self.stack[-1] == "[":
            return True
        j = self.string_start - 1
        while j >= 0 and text[j] in _SPACE:
            j -= 1
        return j >= 0 and text[j] == ":"


class _Level:
    """What is known of the open container at one level of the text's last path."""

    __slots__ = ("done", "key", "keys", "values")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.done = 0  # how many of its parts are complete (a prefix: JSON only grows)
        self.keys: list[Any] = []
        self.values: list[Any] = []  # their validated values


class TypedJson:
    """JSON content as it arrives, as a partial value of ``kind`` (see the module)."""

    __slots__ = ("_depth", "_levels", "_open_string", "_scan", "announced", "kind", "value", "view")

    def __init__(self, kind: OutputType) -> None:
        self.kind = kind
        self.view = PartialJson()
        self._scan = _Scan()
        self._levels: list[_Level] = []
        self._depth = 0
        self._open_string = False
        #: How many elements of a list answer were announced.
        self.announced = 0
        #: The value so far (``None`` until something could be read).
        self.value: Any = None

    def append(self, piece: str) -> tuple[bool, list[Any]]:
        """Add ``piece``; return whether :attr:`value` changed, and the list elements
        that were finished since the last call."""
        if not self.view.append(piece):
            return False, []
        text = self.view.text
        scan = self._scan
        scan.scan(text)
        self._depth = len(scan.stack)
        self._open_string = scan.open_value_string(text)
        doc = self._node(self.view.value, self.kind, 0, None)
        return self._show(doc, done_elements=None)

    def finish(self, value: Any) -> tuple[bool, list[Any]]:
        """The whole answer was validated to ``value``: show it, and announce the
        elements not announced yet."""
        doc = {self.kind.key: value} if isinstance(self.kind, Wrapped) else value
        return self._show(doc, done_elements=len(value) if isinstance(value, list) else 0)

    def add_events(
        self, changed: bool, new: list[Any], choice: int, events: list[ResponseEvent]
    ) -> None:
        """Add to ``events`` what :meth:`append` or :meth:`finish` returned: the view
        when it changed, then each element finished (choice ``choice``)."""
        if changed:
            events.append(OutputTextParsed(self.value, choice))
        first = self.announced - len(new)
        for number, element in enumerate(new):
            events.append(OutputElementDone(element, first + number, choice))

    def _show(self, doc: Any, done_elements: int | None) -> tuple[bool, list[Any]]:
        value = doc
        level = 0
        if isinstance(self.kind, Wrapped):
            value = doc.get(self.kind.key) if isinstance(doc, dict) else None
            level = 1
        new: list[Any] = []
        if isinstance(value, list):
            if done_elements is None:
                on_path = level < self._depth and level < len(self._levels)
                done_elements = self._levels[level].done if on_path else len(value)
            new = value[self.announced : done_elements]
            self.announced = max(self.announced, done_elements)
        changed = value != self.value
        if changed:
            self.value = value
        return changed, new

    def _complete(self, value: Any, kind: OutputType | None) -> Any:
        if kind is None:
            return value
        try:
            return kind.validate(value)
        except Invalid:
            return value  # shown as received: the whole answer's validation decides

    def _reuse(self, value: Any, level: int, key: Any) -> Any:
        """``value``, a container that just closed, with the parts validated while it
        was open in place of their text's values: validating it then does not validate
        them again (pydantic takes a model instance as it is)."""
        levels = self._levels
        if level >= len(levels) or levels[level].key != key:
            return value
        if not isinstance(value, (list, dict)):
            return value
        known = levels[level]
        rest = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        rest = rest[known.done :]
        if rest:  # the part that was open then: its own finished parts are known too
            rest[0] = (rest[0][0], self._reuse(rest[0][1], level + 1, rest[0][0]))
        del levels[level:]
        if isinstance(value, list):
            return known.values + [part for _, part in rest]
        return {**dict(zip(known.keys, known.values, strict=True)), **dict(rest)}

    def _node(self, value: Any, kind: OutputType | None, level: int, key: Any) -> Any:
        """The view of ``value``, the part at ``level`` of the text's last path."""
        depth = self._depth
        if level >= depth:
            if self._open_string and isinstance(value, str):
                return value  # a string still arriving
            return self._complete(self._reuse(value, level, key), kind)
        if not isinstance(value, (list, dict)):
            return value
        levels = self._levels
        if level < len(levels) and levels[level].key == key:
            known = levels[level]
        else:
            del levels[level:]
            known = _Level(key)
            levels.append(known)
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        count = len(items)
        last_open = count > 0 and (level + 1 < depth or self._open_string)
        done = count - 1 if last_open else count
        for part_key, part in items[known.done : done]:
            part_kind = None if kind is None else kind.child(part_key)
            known.keys.append(part_key)
            known.values.append(self._complete(self._reuse(part, level + 1, part_key), part_kind))
        known.done = max(known.done, done)
        parts = known.values[:done]
        if last_open:
            part_key, part = items[-1]
            part_kind = None if kind is None else kind.child(part_key)
            parts = [*parts, self._node(part, part_kind, level + 1, part_key)]
        if isinstance(value, list):
            return parts
        return dict(zip([k for k, _ in items], parts, strict=True))


def check_answer(
    kind: OutputType, content: str, refusal: str | None, finish_reason: str | None
) -> Any:
    """The validated value of a finished answer.

    Raises:
        OutputError: The model refused, the answer was cut short, or it does not
            validate (the ``partial`` response is for the caller to set).
    """
    if refusal is not None:
        raise OutputRefusedError(
            f"The model refused to answer: {refusal}", refusal=refusal, raw=content
        )
    if finish_reason in TRUNCATING_FINISH_REASONS:
        assert finish_reason is not None
        raise OutputTruncatedError(
            f'The answer was cut short (finish_reason "{finish_reason}"), so it is not a '
            "whole value.",
            finish_reason=finish_reason,
            raw=content,
        )
    try:
        return kind.validate_json(content)
    except Invalid as exc:
        raise OutputValidationError(
            f"The answer does not fit the type asked for: {exc.summary()}",
            errors=exc.errors,
            raw=content,
        ) from None

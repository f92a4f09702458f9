"""Tool calls a model writes into its text, recovered as real calls.

Open models served without a tool-call parser (or with one that missed) write their
calls into the content. With ``text_tool_calls=True`` chatstream recognises these forms
and turns them into :class:`~chatstream.FunctionCall` items, holding their text back from
the text deltas so that a person never sees it:

* Hermes, Qwen and many fine-tunes: ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>``
  (one call per block, any number of blocks);
* Mistral: ``[TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]`` and the newer
  ``[TOOL_CALLS]f[ARGS]{...}``;
* a bare JSON call object, ``{"name": "f", "arguments": {...}}``, as the whole answer,
  only when the request had ``tools`` and a ``tool_choice`` that requires a call
  (``"required"`` or a named function).

``parameters`` is read where ``arguments`` is missing. Text that starts like a call but
is not one (it does not parse, or has no ``name``) is handed on as text, unchanged: only
what becomes a call is held back. Whitespace around recovered calls is dropped::

    >>> from chatstream.core.textcalls import TextCallSplitter
    >>> splitter = TextCallSplitter()
    >>> pieces = splitter.feed('Let me look.\\n<tool_call>\\n{"name": "ls", "argu')
    >>> pieces += splitter.feed('ments": {"path": "/"}}\\n</tool_call>') + splitter.flush()
    >>> pieces
    ['Let me look.', TextCall(name='ls', arguments='{"path": "/"}')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TextCall", "TextCallSplitter", "requires_tool_call"]

_HERMES_OPEN = "<tool_call>"
_HERMES_CLOSE = "</tool_call>"
_MISTRAL = "[TOOL_CALLS]"
_MISTRAL_ARGS = "[ARGS]"
_MARKERS = (_HERMES_OPEN, _MISTRAL)


@dataclass(frozen=True)
class TextCall:
    """A call recovered from text: the function's name and its arguments as JSON text."""

    name: str
    arguments: str


#: What a splitter returns: text to show, or a recovered call.
Piece = str | TextCall


def requires_tool_call(request: Mapping[str, Any] | None) -> bool:
    """Whether ``request`` (a Chat Completions body) offers tools and requires a call."""
    if not request or not request.get("tools"):
        return False
    choice = request.get("tool_choice")
    return choice == "required" or (isinstance(choice, Mapping) and "function" in choice)


def _call(obj: Any, *, strict: bool) -> TextCall | None:
    """The call an object describes, or ``None``. ``strict`` (a bare object) also
    requires its arguments, since an answer may be any JSON object."""
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = obj.get("arguments", obj.get("parameters"))
    if arguments is None:
        if strict:
            return None
        arguments = {}
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return TextCall(name, arguments)


def _calls(text: str, *, strict: bool = False) -> list[TextCall] | None:
    """The calls of a JSON text (an object, or a list of them), or ``None``."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    objects = value if isinstance(value, list) else [value]
    calls = [_call(obj, strict=strict) for obj in objects]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


class _Extent:
    """Finds where a JSON value that starts at the first ``{`` or ``[`` ends, a piece at
    a time (each character is looked at once)."""

    __slots__ = ("depth", "escaped", "in_string", "started")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.started = False

    def end(self, text: str) -> int:
        """The index just past the value's end in ``text``, or -1 if it goes on."""
        for i, c in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == "\\":
                    self.escaped = True
                elif c == '"':
                    self.in_string = False
            elif c == '"':
                self.in_string = True
            elif c in "{[":
                self.depth += 1
                self.started = True
            elif c in "}]":
                self.depth -= 1
                if self.started and self.depth == 0:
                    return i + 1
        return -1


def _held(data: str) -> int:
    """How many characters at the end of ``data`` may be the start of a marker."""
    for k in range(min(len(data), max(map(len, _MARKERS)) - 1), 0, -1):
        end = data[-k:]
        if any(marker.startswith(end) for marker in _MARKERS):
            return k
    return 0


class TextCallSplitter:
    """Splits one choice's content deltas into text and recovered calls (sans-I/O).

    :meth:`feed` each delta in order and :meth:`flush` at the end; each returns text
    pieces and :class:`TextCall` items in order. The result does not depend on how the
    content was cut into deltas.

    Args:
        bare: Also recover an answer that is a bare JSON call object (see
            :func:`requires_tool_call`).
    """

    def __init__(self, *, bare: bool = False) -> None:
        # "text", "hermes" (inside <tool_call>), "mistral" (after [TOOL_CALLS]) or
        # "bare" (an answer that may be a call object).
        self._mode = "bare" if bare else "text"
        self._block: list[str] = []  # the text of the block being read, marker first
        self._tail = ""  # the end of a <tool_call> block so far, where </tool_call> may start
        self._lead = ""  # the whitespace before the block
        self._extent = _Extent()
        self._pending = ""  # held back: the start of a marker, or trailing whitespace
        self._after_call = False  # whitespace after a call is dropped
        self.calls = 0

    def feed(self, text: str) -> list[Piece]:
        """The pieces ``text`` completes."""
        out: list[Piece] = []
        data = self._pending + text
        self._pending = ""
        while data:
            if self._mode == "text":
                data = self._text(data, out)
            elif self._mode == "bare":
                data = self._bare(data, out)
            else:
                data = self._inside(data, out)
        return out

    def flush(self) -> list[Piece]:
        """The content ended: a block still open becomes calls if it parses, else text."""
        out: list[Piece] = []
        if self._mode in ("hermes", "mistral") or (self._mode == "bare" and self._block):
            self._close_block("".join(self._block), out, ended=True)
        self._mode = "text"
        pending, self._pending = self._pending, ""
        if pending and not (self._after_call and pending.isspace()):
            out.append(pending)
        return out

    # --- the modes ---------------------------------------------------------------------

    def _text(self, data: str, out: list[Piece]) -> str:
        if self._after_call:
            stripped = data.lstrip()
            if not stripped:
                return ""
            data = stripped
        starts = [(data.find(m), m) for m in _MARKERS]
        found = [(i, m) for i, m in starts if i != -1]
        if not found:
            keep = _held(data)
            visible = data[: len(data) - keep]
            # Trailing whitespace waits: it is dropped if a call follows.
            body = visible.rstrip()
            if body:
                out.append(body)
                self._after_call = False
            self._pending = visible[len(body) :] + data[len(visible) :]
            return ""
        i, marker = min(found)
        before = data[:i]
        body = before.rstrip()
        if body:
            out.append(body)
        # Whitespace before the block goes with it: dropped if it is a call.
        self._lead = before[len(body) :]
        self._after_call = False
        self._mode = "hermes" if marker == _HERMES_OPEN else "mistral"
        self._block = [marker]
        self._tail = ""
        self._extent = _Extent()
        return data[i + len(marker) :]

    def _bare(self, data: str, out: list[Piece]) -> str:
        if not self._block:
            stripped = data.lstrip()
            if not stripped:
                self._pending = data  # only whitespace so far: undecided
                return ""
            if stripped[0] != "{":
                self._mode = "text"  # an ordinary answer
                return data
            self._block = [data[: len(data) - len(stripped)]]
            data = stripped
        end = self._extent.end(data)
        if end == -1:
            self._block.append(data)
            return ""
        self._block.append(data[:end])
        self._close_block("".join(self._block), out, ended=False)
        self._mode = "text"
        return data[end:]

    def _inside(self, data: str, out: list[Piece]) -> str:
        if self._mode == "hermes":
            # Only the new text and the few characters before it are searched, so a long
            # block costs linear time.
            window = self._tail + data
            end = window.find(_HERMES_CLOSE)
            if end == -1:
                self._block.append(data)
                self._tail = window[-(len(_HERMES_CLOSE) - 1) :]
                return ""
            cut = end + len(_HERMES_CLOSE) - len(self._tail)
            self._block.append(data[:cut])
            rest = data[cut:]
        else:
            end = self._mistral_end(data)
            if end == -1:
                self._block.append(data)
                return ""
            self._block.append(data[:end])
            rest = data[end:]
        self._close_block("".join(self._block), out, ended=False)
        self._mode = "text"
        return rest

    def _mistral_end(self, data: str) -> int:
        """Where the JSON after ``[TOOL_CALLS]`` (or after ``name[ARGS]``) ends."""
        if not self._extent.started:
            seen = "".join(self._block)[len(_MISTRAL) :] + data
            head = seen.lstrip()
            if not head:
                return -1
            if head[0] not in "{[":
                # The newer form, name[ARGS]{...}: wait for [ARGS].
                at = seen.find(_MISTRAL_ARGS)
                if at == -1:
                    return -1
                start = len(seen) - len(data)  # where data starts within seen
                offset = max(at + len(_MISTRAL_ARGS) - start, 0)
                end = self._extent.end(data[offset:])
                return -1 if end == -1 else offset + end
        return self._extent.end(data)

    def _close_block(self, block: str, out: list[Piece], *, ended: bool) -> None:
        """A whole block (or, at the end, an unfinished one): calls, or text as it was."""
        calls: list[TextCall] | None
        if block.startswith(_HERMES_OPEN):
            inner = block[len(_HERMES_OPEN) :]
            if inner.endswith(_HERMES_CLOSE):
                inner = inner[: -len(_HERMES_CLOSE)]
            calls = _calls(inner)
        elif block.startswith(_MISTRAL):
            inner = block[len(_MISTRAL) :]
            name, sep, args = inner.partition(_MISTRAL_ARGS)
            name = name.strip()
            if sep and name and not name.startswith(("{", "[")):
                calls = [TextCall(name, args.strip())] if _is_json(args) else None
            else:
                calls = _calls(inner)
        else:
            calls = _calls(block, strict=True)
        lead, self._lead = self._lead, ""
        if calls is None:
            out.append(lead + block)  # not a call after all: the text, unchanged
            self._after_call = False
            return
        out.extend(calls)
        self.calls += len(calls)
        self._after_call = True

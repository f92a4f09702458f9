"""Tool calls a model writes into its text, recovered as real calls.

Open models served without a tool-call parser (or with one that missed) write their
calls into the content. With ``text_tool_calls=True`` chatstream recognises the forms
these model families emit and turns them into :class:`~chatstream.FunctionCall` items,
holding their text back from the text deltas so that a person never sees it:

* Hermes, Qwen and many fine-tunes: ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>``
  blocks, the first at the start of a line outside fenced code, ending the answer;
* Mistral: ``[TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]`` and the newer
  ``[TOOL_CALLS]f[ARGS]{...}``, at the start of the answer;
* a bare JSON call object, ``{"name": "f", "arguments": {...}}``, as the whole answer,
  only when the request had ``tools`` and a ``tool_choice`` that requires a call
  (``"required"`` or a named function).

The grammar (``ws`` is any run of whitespace, possibly empty; ``{ x }`` repeats)::

    answer       = hermes | mistral | bare | text
    hermes       = [ text NEWLINE ] ws hermes_call { ws hermes_call } ws
    hermes_call  = "<tool_call>" ws calls ws "</tool_call>"
                   (the last "</tool_call>" may be missing at the end of the content)
    mistral      = ws mistral_call { ws mistral_call } ws
    mistral_call = "[TOOL_CALLS]" ws ( calls | name "[ARGS]" ws json_object )
    bare         = ws call ws                    (only when a call is required)
    calls        = call | "[" call { "," call } "]"                (JSON)
    call         = a JSON object with a non-empty string "name", and "arguments"
                   or "parameters" (any JSON; a bare call must have one of them)
    name         = 1*( letter | digit | "_" | "-" | "." | ":" )

The first ``<tool_call>`` of ``hermes`` begins its line (at the very start of the
content, whitespace may come first) and that line is outside fenced code: a line that
starts (after at most three spaces) with three or more backticks or tildes opens a
fence, and the next such line of the same character closes it. Anything else -- a
call in the middle of a sentence, an example in a code block, a call followed by more
prose, a block that does not parse or has no ``name`` -- is text, handed on unchanged.

Text is held back only while it can still become a call by this grammar: the start of
a marker at the start of a line (or of the content), whitespace, and a block being
read. Prose that mentions ``<tool_call>`` or ``[TOOL_CALLS]`` streams on at once. Since
an answer is calls only if nothing but whitespace follows them, recovered calls are
handed on when the content ends. Whitespace around recovered calls is dropped::

    >>> from chatstream.core.textcalls import TextCallSplitter
    >>> splitter = TextCallSplitter()
    >>> pieces = splitter.feed('Let me look.\\n<tool_call>\\n{"name": "ls", "argu')
    >>> pieces += splitter.feed('ments": {"path": "/"}}\\n</tool_call>') + splitter.flush()
    >>> pieces
    ['Let me look.', TextCall(name='ls', arguments='{"path": "/"}')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TextCall", "TextCallSplitter", "requires_tool_call"]

_HERMES_OPEN = "<tool_call>"
_HERMES_CLOSE = "</tool_call>"
_MISTRAL = "[TOOL_CALLS]"
_MISTRAL_ARGS = "[ARGS]"
# A line that opens or closes fenced code (CommonMark: at most three spaces of indent).
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# The start of a line that may still become a fence once more text comes.
_FENCE_START = re.compile(r" {0,3}(`{1,2}|~{1,2})?")
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_WS = re.compile(r"\s*")
# Enough of a line's start to tell a marker or a fence.
_LOOK = 16
_OPENERS = {"hermes": _HERMES_OPEN, "mistral": _MISTRAL, "bare": ""}


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


def _end_of_ws(data: str, i: int) -> int:
    """The index of the first character at or after ``i`` that is not whitespace."""
    match = _WS.match(data, i)
    assert match is not None  # \s* always matches
    return match.end()


class TextCallSplitter:
    """Splits one choice's content deltas into text and recovered calls (sans-I/O).

    :meth:`feed` each delta in order and :meth:`flush` at the end; each returns text
    pieces and :class:`TextCall` items in order. The result does not depend on how the
    content was cut into deltas, and each character is looked at a bounded number of
    times (the work grows with the length of the content, never with its square).

    Args:
        bare: Also recover an answer that is a bare JSON call object (see
            :func:`requires_tool_call`).
    """

    def __init__(self, *, bare: bool = False) -> None:
        self._bare = bare
        #: How many calls were recovered.
        self.calls = 0
        # Held back and read again with the next delta: the start of a marker.
        self._hold = ""
        # --- text ---
        self._start = True  # only whitespace so far
        self._col0 = True  # the next character begins a line
        self._line = ""  # the start of the current line, shown, that may become a fence
        self._fence = ""  # the character of the open fence, or ""
        self._ws: list[str] = []  # trailing whitespace of the text, held: a call may follow
        # --- a run of calls (a section) ---
        self._family = ""  # "", "hermes", "mistral" or "bare"
        self._step = ""  # where in a call: "open", "name", "args", "json", "close", "between"
        self._raw: list[str] = []  # the section's text as it came (its lead whitespace first)
        self._found: list[TextCall] = []  # the section's calls so far
        self._json: list[str] = []  # the JSON of the call being read
        self._name = ""  # the name of a [TOOL_CALLS]name[ARGS] call
        self._extent = _Extent()

    def feed(self, text: str) -> list[Piece]:
        """The pieces ``text`` completes."""
        out: list[Piece] = []
        data = self._hold + text
        self._hold = ""
        while data:
            data = self._section(data, out) if self._family else self._text(data, out)
        return out

    def flush(self) -> list[Piece]:
        """The content ended: a run of calls becomes calls, anything else is text."""
        out: list[Piece] = []
        hold, self._hold = self._hold, ""
        if self._family:
            whole = not hold and (
                self._step == "between"
                or (self._step == "close" and self._family == "hermes" and self._complete())
            )
            if whole:
                out.extend(self._found)
                self.calls += len(self._found)
                self._reset_section()
                self._ws = []
                return out
            self._release("", out)
        self._emit(hold, out)
        if self._ws:
            out.append("".join(self._ws))
            self._ws = []
        return out

    # --- text ------------------------------------------------------------------------

    def _emit(self, text: str, out: list[Piece]) -> None:
        """Hand on ``text``, holding its trailing whitespace back."""
        if not text:
            return
        body = text.rstrip()
        if body:
            out.append("".join(self._ws) + body if self._ws else body)
            self._ws = []
        if len(body) < len(text):
            self._ws.append(text[len(body) :])

    def _text(self, data: str, out: list[Piece]) -> str:
        """Read text up to where a run of calls may start; return the data from there."""
        n = len(data)
        i = 0  # where reading is
        shown = 0  # data[shown:i] is text not handed on yet
        while i < n:
            if not self._col0:
                newline = data.find("\n", i)
                if newline == -1:
                    break
                i = newline + 1
                self._col0 = True
                continue
            if self._start:
                i = _end_of_ws(data, i)
                if i == n:
                    break
            head = self._line + data[i : i + _LOOK]
            if not self._line:
                family = self._family_at(head)
                if family:
                    self._emit(data[shown:i], out)
                    marker = _OPENERS[family]
                    self._open_section(family, marker)
                    return data[i + len(marker) :]
                if i + len(head) == n and self._may_open(head):
                    self._emit(data[shown:i], out)
                    self._hold = data[i:]  # read again with the next delta
                    return ""
            fence = _FENCE.match(head)
            if fence is not None:
                char = fence.group(1)[0]
                if not self._fence:
                    self._fence = char
                elif self._fence == char:
                    self._fence = ""
            elif len(head) - len(self._line) == n - i and _FENCE_START.fullmatch(head):
                # The line's start may still become a fence: shown, and looked at again.
                self._line = head
                self._start = False
                i = n
                break
            self._line = ""
            self._start = False
            self._col0 = False
        self._emit(data[shown:n], out)
        return ""

    def _family_at(self, head: str) -> str:
        """The run of calls that starts a line beginning with ``head``, or ""."""
        if self._start:
            if head.startswith(_MISTRAL):
                return "mistral"
            if self._bare and head.startswith("{"):
                return "bare"
        if not self._fence and head.startswith(_HERMES_OPEN):
            return "hermes"
        return ""

    def _may_open(self, head: str) -> bool:
        """Whether a line beginning with ``head`` (all there is so far) may start calls."""
        return (self._start and _MISTRAL.startswith(head)) or (
            not self._fence and _HERMES_OPEN.startswith(head)
        )

    # --- a run of calls --------------------------------------------------------------

    def _open_section(self, family: str, marker: str) -> None:
        self._family = family
        self._raw = ["".join(self._ws), marker]  # the whitespace before goes with the calls
        self._ws = []
        self._found = []
        self._begin_call("json" if family == "bare" else "open")

    def _begin_call(self, step: str) -> None:
        self._step = step
        self._json = []
        self._name = ""
        self._extent = _Extent()

    def _reset_section(self) -> None:
        self._family = self._step = self._name = ""
        self._raw = []
        self._found = []
        self._json = []

    def _release(self, rest: str, out: list[Piece]) -> None:
        """Not calls after all: the section's text, unchanged, is text."""
        text = "".join(self._raw) + rest
        self._reset_section()
        self._emit(text, out)
        self._col0 = text.endswith("\n")
        self._start = False
        self._line = ""

    def _complete(self) -> bool:
        """Whether the JSON just read is calls; if so they are kept."""
        text = "".join(self._json)
        calls: list[TextCall] | None
        if self._name:
            calls = [TextCall(self._name, text.strip())] if _is_json(text) else None
        else:
            calls = _calls(text, strict=self._family == "bare")
        if calls is None:
            return False
        self._found += calls
        return True

    def _section(self, data: str, out: list[Piece]) -> str:
        """Read a run of calls; return the data left once it turns out to be text."""
        n = len(data)
        i = 0
        while i < n:
            step = self._step
            if step == "json":
                end = self._extent.end(data[i:] if i else data)
                if end == -1:
                    self._json.append(data[i:] if i else data)
                    i = n
                    break
                self._json.append(data[i : i + end])
                i += end
                if self._family == "hermes":
                    self._step = "close"
                elif self._complete():
                    self._step = "between"
                else:
                    return self._text_from(data, i, out)
                continue
            if step == "name":
                match = _NAME.match(data, i)
                if match is not None:
                    self._name += match.group()
                    i = match.end()
                    continue
                marker = _MISTRAL_ARGS
            else:
                i = _end_of_ws(data, i)
                if i == n:
                    break
                c = data[i]
                if step == "open":
                    if c == "{" or (c == "[" and self._family == "mistral"):
                        self._step = "json"
                    elif self._family == "mistral" and _NAME.match(c):
                        self._step = "name"
                    else:
                        return self._text_from(data, i, out)
                    continue
                if step == "args":
                    if c != "{":
                        return self._text_from(data, i, out)
                    self._step = "json"
                    continue
                if step == "close":
                    marker = _HERMES_CLOSE
                elif self._family == "hermes":
                    marker = _HERMES_OPEN
                elif self._family == "mistral":
                    marker = _MISTRAL
                else:
                    return self._text_from(data, i, out)
            # A marker must come next.
            if data.startswith(marker, i):
                i += len(marker)
                if step == "name":
                    if not self._name:
                        return self._text_from(data, i - len(marker), out)
                    self._step = "args"
                elif step == "close":
                    if not self._complete():
                        return self._text_from(data, i, out)
                    self._step = "between"
                else:
                    self._begin_call("open")
                continue
            if marker.startswith(data[i:]):
                self._raw.append(data[:i])
                self._hold = data[i:]  # read again with the next delta
                return ""
            return self._text_from(data, i, out)
        self._raw.append(data)
        return ""

    def _text_from(self, data: str, i: int, out: list[Piece]) -> str:
        """The section is text up to ``data[i]``; the rest is read as text."""
        self._release(data[:i], out)
        return data[i:]

"""Showing a stream in a notebook: one output that updates in place as the stream runs.

::

    from chatstream.notebook import show
    response = show(client.stream({"model": "gpt-4o-mini", "messages": messages}))

In Jupyter (and anything else running an IPython kernel) the cell's output is one block
that grows as the answer arrives, reasoning dimmed above the text, tool calls listed
below it as they stream (``→ name(`` and the arguments so far, pretty-printed once
whole). Elsewhere (a script, a terminal IPython) it prints the stream the way the
``chatstream`` command does. IPython is optional (the
``notebook`` extra: ``pip install '.[notebook]'`` from a checkout).
"""

from __future__ import annotations

import html
import importlib
import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from .cli.render import Renderer, pretty_arguments
from .errors import ChatStreamError
from .events import (
    FunctionCall,
    FunctionCallArgumentsDelta,
    OutputItemAdded,
    OutputItemDone,
    OutputItemIncomplete,
    OutputTextDelta,
    ReasoningContentDelta,
    RefusalDelta,
    ResponseEvent,
)
from .response import Response
from .smooth import Chunking, smooth
from .stream import ChatStream

__all__ = ["DisplayHandle", "show"]


class DisplayHandle(Protocol):
    """Where :func:`show` displays: anything with ``update(bundle)``."""

    def update(self, bundle: dict[str, str]) -> None:
        """Replace what is displayed with ``bundle``, a MIME bundle (``text/html`` and
        ``text/plain``)."""


class _KernelHandle:
    """An output of the IPython kernel, updated in place."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def update(self, bundle: dict[str, str]) -> None:
        self._handle.update(bundle, raw=True)


def show(
    stream: ChatStream,
    *,
    handle: DisplayHandle | None = None,
    out: TextIO | None = None,
    interval: float = 0.1,
    smooth_by: Chunking | None = None,
) -> Response:
    """Show ``stream`` as it runs; return its response once it has ended.

    Args:
        stream: The stream to show (it is consumed and closed).
        handle: Where to display: by default a new output of the running IPython kernel,
            or, outside one, the plain printing to ``out``.
        out: Where plain printing goes (default: standard output).
        interval: The shortest time between two display updates, in seconds (the last
            update always happens): a notebook front end redraws the whole output on
            each.
        smooth_by: Show the text a ``"word"`` or a ``"line"`` at a time (see
            :mod:`chatstream.smooth`), never half a word; ``None`` (the default) shows
            it as it arrives.

    Raises:
        ChatStreamError: The stream failed (shown first; ``partial`` holds what came).
    """
    with stream:
        events: Iterable[ResponseEvent] = stream
        if smooth_by is not None:
            events = smooth(stream, by=smooth_by)
        if handle is None:
            handle = _kernel_display()
        if handle is None:
            return _print(stream, events, out or sys.stdout)
        return _display(stream, events, handle, interval)


def _kernel_display() -> DisplayHandle | None:
    """A new output of the running IPython kernel, or ``None`` outside one."""
    try:  # an optional dependency, imported by name: typed as Any whether present or not
        ipython: Any = importlib.import_module("IPython")
        display: Any = importlib.import_module("IPython.display").display
    except ImportError:
        return None
    shell = ipython.get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None  # a script, or IPython in a terminal: HTML would show as text
    return _KernelHandle(display(_Live().html(), display_id=True, raw=True))


def _print(stream: ChatStream, events: Iterable[ResponseEvent], out: TextIO) -> Response:
    renderer = Renderer(out)
    try:
        for event in events:
            renderer.event(event)
            out.flush()
    except ChatStreamError as exc:
        renderer.error(exc.message)
        raise
    response = stream.result()
    renderer.summary(response.usage)
    if response.truncated:
        renderer.note(f"· {_cut_short(response)}")
    return response


def _display(
    stream: ChatStream, events: Iterable[ResponseEvent], handle: DisplayHandle, interval: float
) -> Response:
    live = _Live()
    shown = 0.0
    try:
        for event in events:
            live.event(event)
            now = time.monotonic()
            if now - shown >= interval:
                handle.update(live.html())
                shown = now
    except ChatStreamError as exc:
        live.error = exc.message
        handle.update(live.html())
        raise
    response = stream.result()
    live.usage = response.usage
    if response.truncated:
        live.cut = _cut_short(response)
    handle.update(live.html())
    return response


def _cut_short(response: Response) -> str:
    """The note for an answer the server cut short (a normal end: no error is raised)."""
    if response.finish_reason == "length":
        return "cut short: max tokens"
    return f"cut short ({response.finish_reason})"


class _Live:
    """What the display shows so far, as an HTML bundle."""

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.text: list[str] = []
        # Each tool call by call_id: its name, its arguments so far, and how it ended
        # ("" while it streams, "done" or "cut off").
        self.calls: dict[str, tuple[str, list[str], str]] = {}
        self.error: str | None = None
        self.cut: str | None = None
        self.usage: Any = None

    def event(self, event: ResponseEvent) -> None:
        if isinstance(event, (OutputTextDelta, RefusalDelta)):
            self.text.append(event.delta)
        elif isinstance(event, ReasoningContentDelta):
            self.reasoning.append(event.delta)
        elif isinstance(event, OutputItemAdded) and isinstance(event.item, FunctionCall):
            self.calls[event.item.call_id] = (event.item.name, [], "")
        elif isinstance(event, FunctionCallArgumentsDelta) and event.call_id in self.calls:
            self.calls[event.call_id][1].append(event.delta)
        elif isinstance(event, (OutputItemDone, OutputItemIncomplete)) and isinstance(
            event.item, FunctionCall
        ):
            end = "done" if isinstance(event, OutputItemDone) else "cut off"
            self.calls[event.item.call_id] = (event.item.name, [event.item.arguments], end)

    def html(self) -> dict[str, str]:
        """A MIME bundle: HTML for the notebook, plain text for anything else."""
        parts = []
        reasoning, text = "".join(self.reasoning), "".join(self.text)
        if reasoning:
            parts.append(_block(reasoning, "opacity:.6;font-style:italic;margin-bottom:.5em"))
        parts.append(_block(text, ""))
        for name, pieces, end in self.calls.values():
            arguments = "".join(pieces)
            if end == "done":
                shown = f"→ {name}\n{pretty_arguments(arguments)}"
            else:
                shown = f"→ {name}({arguments}" + (" (cut off)" if end else "…")
            parts.append(_block(shown, "font-family:monospace"))
        if self.cut:
            parts.append(_block(self.cut, "opacity:.6;font-style:italic"))
        if self.error:
            parts.append(_block(f"error: {self.error}", "color:#c00"))
        if self.usage is not None:
            usage = f"{self.usage.input_tokens} in, {self.usage.output_tokens} out"
            parts.append(_block(usage, "opacity:.6;font-size:smaller"))
        plain = "\n\n".join(p for p in (reasoning, text) if p)
        return {"text/html": "".join(parts), "text/plain": plain}


def _block(text: str, style: str) -> str:
    return f'<div style="white-space:pre-wrap;{style}">{html.escape(text)}</div>'

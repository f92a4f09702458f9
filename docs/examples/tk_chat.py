"""A small Tkinter chat window on chatstream's callbacks.

Run it against any OpenAI-compatible server::

    OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \\
    CHATSTREAM_MODEL=gpt-4o-mini python docs/examples/tk_chat.py

or, with no ``OPENAI_BASE_URL``, against chatstream's built-in demo model (offline).

The stream's callbacks run on its worker thread, but only Tk's thread may touch widgets:
``dispatch=lambda fn: root.after(0, fn)`` hands each callback to Tk's event loop, in order.
The window never blocks: sending starts the stream and returns at once. A tool call shows
as ``→ name(`` the moment the model names the tool, its arguments as they arrive. The
answer is shown a word at a time (:class:`chatstream.smooth.Smoother`), optionally at a
steady pace (``pace_ms``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import chatstream
from chatstream.smooth import Smoother


class View(Protocol):
    """What the controller needs of the window (every call comes on Tk's thread)."""

    def show(self, text: str, style: str) -> None:
        """Append ``text`` with ``style``: "user", "reasoning", "answer", "tool" or
        "error"."""

    def set_busy(self, busy: bool) -> None:
        """Disable the input while an answer streams."""


class ChatController:
    """The window's logic, apart from its widgets: the conversation and its stream.

    Args:
        client: Sends the requests.
        model: The model to ask.
        view: The window.
        after: Tk's ``root.after``: schedules a call on Tk's thread.
        pace_ms: Milliseconds between two words of the answer (0: as they arrive).
    """

    def __init__(
        self,
        client: chatstream.Client,
        model: str,
        view: View,
        after: Callable[[int, Callable[[], None]], object],
        pace_ms: int = 0,
    ) -> None:
        self.client = client
        self.model = model
        self.view = view
        self.after = after
        self.pace_ms = pace_ms
        self.messages: list[dict[str, Any]] = []
        self.stream: chatstream.ChatStream | None = None
        self.words = Smoother("word")
        # With a pace, what is to be shown waits here, in order, for the next tick.
        self.waiting: list[Callable[[], None]] = []

    def send(self, text: str) -> None:
        """Send the user's message; the answer arrives through the callbacks."""
        self.messages.append({"role": "user", "content": text})
        self.view.show(f"you: {text}\n", "user")
        self.view.set_busy(True)
        self.stream = self.client.stream(
            {"model": self.model, "messages": self.messages},
            on_event=self.on_event,
            on_end=self.on_end,
            dispatch=lambda fn: self.after(0, fn),
        )

    def on_event(self, event: chatstream.ResponseEvent) -> None:
        """One event, on Tk's thread."""
        if isinstance(event, chatstream.OutputTextDelta):
            for word in self.words.feed(event.delta):
                self.show(word, "answer", paced=True)
            return
        for rest in self.words.flush():  # the answer's last word, before anything else
            self.show(rest, "answer", paced=True)
        if isinstance(event, chatstream.ReasoningContentDelta):
            self.show(event.delta, "reasoning")
        elif isinstance(event, chatstream.FunctionCallArgumentsDelta):
            self.show(event.delta, "tool")
        elif isinstance(event, chatstream.OutputItemAdded):
            if isinstance(event.item, chatstream.FunctionCall):
                self.show(f"\n→ {event.item.name}(", "tool")
        elif isinstance(event, chatstream.OutputItemIncomplete):
            self.show(") (cut off)", "tool")
        elif isinstance(event, chatstream.OutputItemDone) and isinstance(
            event.item, chatstream.FunctionCall
        ):
            self.show(")", "tool")

    def show(self, text: str, style: str, *, paced: bool = False) -> None:
        """Show ``text`` now, or, with a pace, after what is already waiting."""
        if not self.pace_ms:
            self.view.show(text, style)
            return
        self.waiting.append(lambda: self.view.show(text, style))
        if len(self.waiting) == 1:
            self.after(self.pace_ms if paced else 0, self.tick)

    def tick(self) -> None:
        """Show the next thing waiting (with a pace only)."""
        self.waiting.pop(0)()
        if self.waiting:
            self.after(self.pace_ms, self.tick)

    def on_end(self, response: chatstream.Response) -> None:
        """The stream ended (however it ended), on Tk's thread."""
        for rest in self.words.flush():
            self.show(rest, "answer")
        if self.waiting:  # with a pace: end after the last word is shown
            self.waiting.append(lambda: self.finish(response))
            return
        self.finish(response)

    def finish(self, response: chatstream.Response) -> None:
        """Close the turn: keep the answer, or show the error; accept input again."""
        if response.error is None:
            self.messages.append({"role": "assistant", "content": response.content})
        elif not isinstance(response.error, chatstream.StreamClosedError):
            self.messages.pop()  # the question goes unanswered: drop it
            self.view.show(f"\n{response.error.message}", "error")
        self.view.show("\n\n", "answer")
        self.view.set_busy(False)

    def close(self) -> None:
        """Stop the stream in progress (the window is closing)."""
        if self.stream is not None:
            self.stream.close()


def main() -> None:
    import tkinter as tk
    from tkinter import scrolledtext

    demo = None
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url is None:
        from chatstream.demo import DemoServer

        demo = DemoServer().start()
        base_url = demo.base_url
    client = chatstream.Client(base_url, os.environ.get("OPENAI_API_KEY"))
    model = os.environ.get("CHATSTREAM_MODEL", "chatstream-demo-1")

    root = tk.Tk()
    root.title(f"chatstream · {model}")
    log = scrolledtext.ScrolledText(root, wrap="word", width=80, height=24)
    log.tag_configure("user", font=("TkDefaultFont", 10, "bold"))
    log.tag_configure("reasoning", foreground="gray")
    log.tag_configure("tool", foreground="teal")
    log.tag_configure("error", foreground="red")
    entry = tk.Entry(root)
    log.pack(fill="both", expand=True)
    entry.pack(fill="x")

    class TkView:
        def show(self, text: str, style: str) -> None:
            log.insert("end", text, style)
            log.see("end")

        def set_busy(self, busy: bool) -> None:
            entry.configure(state="disabled" if busy else "normal")

    controller = ChatController(client, model, TkView(), root.after)

    def on_return(_event: object) -> None:
        text = entry.get().strip()
        if text:
            entry.delete(0, "end")
            controller.send(text)

    entry.bind("<Return>", on_return)
    entry.focus()
    try:
        root.mainloop()
    finally:
        controller.close()
        client.close()
        if demo is not None:
            demo.close()


if __name__ == "__main__":
    main()

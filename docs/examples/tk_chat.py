"""A small Tkinter chat window on chatstream's callbacks.

Run it against any OpenAI-compatible server::

    OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \\
    CHATSTREAM_MODEL=gpt-4o-mini python docs/examples/tk_chat.py

or, with no ``OPENAI_BASE_URL``, against chatstream's built-in demo model (offline): it
calls a weather tool, which the window runs and answers, and the model answers from the
result.

The stream's callbacks run on its worker thread, but only Tk's thread may touch widgets:
``dispatch=lambda fn: root.after(0, fn)`` hands each callback to Tk's event loop, in order.
The window never blocks: sending starts the stream and returns at once. A tool call shows
as ``→ name(`` the moment the model names the tool, its arguments as they arrive. The
answer is shown a word at a time (:class:`chatstream.smooth.Smoother`), optionally at a
steady pace (``pace_ms``). A tool call shows
as ``→ name(`` the moment the model names the tool, its arguments as they arrive. The
answer is shown a word at a time (:class:`chatstream.smooth.Smoother`), optionally at a
steady pace (``pace_ms``).
"""

from __future__ import annotations

import json
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


#: Runs a tool call on this machine; its result as text (JSON, by convention).
RunTool = Callable[[chatstream.FunctionCall], str]


def no_tools(call: chatstream.FunctionCall) -> str:
    """The tool runner when the window has none: an error the model can read."""
    return json.dumps({"error": f"no tool named {call.name} here"})


class ChatController:
    """The window's logic, apart from its widgets: the conversation and its streams.

    A user turn may take several requests: when the model calls tools, each call is run
    with ``run_tool``, its result is shown and sent back as a ``role: tool`` message, and
    the follow-up request (in the same :class:`chatstream.Turn`, so it reaches the same
    backend) streams the answer.

    Args:
        client: Sends the requests.
        model: The model to ask.
        view: The window.
        after: Tk's ``root.after``: schedules a call on Tk's thread.
        pace_ms: Milliseconds between two words of the answer (0: as they arrive).
        tools: The request's ``tools`` (OpenAI function definitions), if any.
        run_tool: Runs a tool call (default: :func:`no_tools`).
    """

    def __init__(
        self,
        client: chatstream.Client,
        model: str,
        view: View,
        after: Callable[[int, Callable[[], None]], object],
        pace_ms: int = 0,
        *,
        tools: list[dict[str, Any]] | None = None,
        run_tool: RunTool = no_tools,
    ) -> None:
        self.client = client
        self.model = model
        self.view = view
        self.after = after
        self.pace_ms = pace_ms
        self.tools = tools
        self.run_tool = run_tool
        self.words = Smoother("word")
        # With a pace, what is to be shown waits here, in order, for the next tick.
        self.waiting: list[Callable[[], None]] = []
        self.messages: list[dict[str, Any]] = []
        self.stream: chatstream.ChatStream | None = None
        self._turn: chatstream.Turn | None = None
        self._asked = 0  # messages before the current turn: a failed turn goes back here
        self._shown: str | None = None  # the style last shown in this response

    def send(self, text: str) -> None:
        """Send the user's message; the answer arrives through the callbacks."""
        self._asked = len(self.messages)
        self.messages.append({"role": "user", "content": text})
        self.view.show(f"you: {text}\n", "user")
        self.view.set_busy(True)
        self._turn = chatstream.Turn(self.client)
        self._request()

    def _request(self) -> None:
        assert self._turn is not None
        body: dict[str, Any] = {"model": self.model, "messages": self.messages}
        if self.tools:
            body["tools"] = self.tools
        self._shown = None
        self.stream = self._turn.stream(
            body,
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
        """Show ``text`` now, or, with a pace, after what is already waiting. Reasoning
        is set apart: a ``thinking…`` line before it, a blank line after it."""
        if style == "reasoning" and self._shown != "reasoning":
            self._put("thinking…\n", "reasoning", paced=False)
        elif style != "reasoning" and self._shown == "reasoning":
            self._put("\n\n", "reasoning", paced=False)
        self._shown = style
        self._put(text, style, paced=paced)

    def _put(self, text: str, style: str, *, paced: bool) -> None:
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
        """Close the request: run the tools it asked for and go on with the turn, or keep
        the answer, or show the error; then accept input again."""
        if response.error is not None:
            del self.messages[self._asked :]  # the question goes unanswered: drop the turn
            if response.error.kind != chatstream.StreamClosedError.kind:
                self.view.show(f"\n{response.error.message}", "error")
        elif response.tool_calls:
            self.messages.append(_assistant(response))
            for call in response.tool_calls:
                result = self.run_tool(call)
                self.view.show(f"\n← {call.name}: {result}\n", "tool")
                self.messages.append(
                    {"role": "tool", "tool_call_id": call.call_id, "content": result}
                )
            self._request()  # the same turn goes on with the results
            return
        else:
            self.messages.append({"role": "assistant", "content": response.content})
            if response.truncated:
                self.view.show(f"\n[cut short: {response.finish_reason}]", "error")
        self.view.show("\n\n", "answer")
        self.view.set_busy(False)

    def close(self) -> None:
        """Stop the stream in progress (the window is closing)."""
        if self.stream is not None:
            self.stream.close()


def _assistant(response: chatstream.Response) -> dict[str, Any]:
    """The assistant's message asking for the tool calls, for the history."""
    calls = [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in response.tool_calls
    ]
    return {"role": "assistant", "content": response.content or None, "tool_calls": calls}


def main() -> None:
    import tkinter as tk
    from tkinter import scrolledtext

    demo = None
    base_url = os.environ.get("OPENAI_BASE_URL")
    model = os.environ.get("CHATSTREAM_MODEL", "chatstream-demo-1")
    tools: list[dict[str, Any]] | None = None
    run_tool: RunTool = no_tools
    if base_url is None:
        from chatstream.cli.demo import DemoServer

        demo = DemoServer().start()
        base_url = demo.base_url
        # The demo model asks for its weather tool; the script runs it on this machine.
        model, tools, run_tool = demo.script.model, demo.script.tools, demo.script.run_tool
    client = chatstream.Client(base_url, os.environ.get("OPENAI_API_KEY"))

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

    controller = ChatController(client, model, TkView(), root.after, tools=tools, run_tool=run_tool)

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

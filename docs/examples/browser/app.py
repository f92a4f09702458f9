"""A chat page written with the AI SDK's ``useChat``, served by Flask, answered by chatstream.

The page (``chat.jsx``, bundled by ``npm run build``) is the AI SDK's own client code,
unchanged: it posts the conversation to ``/api/chat`` and reads the answer in the UI
Message Stream protocol, which :func:`chatstream.wsgi.ui_message_stream` speaks. The
backend runs the model's tool calls itself with :meth:`chatstream.Conversation.run_steps`
(Python functions as tools) and relays the loop, all as one assistant message (its
steps). The stop button aborts the request; the server then closes the body, which
closes the loop: its stream stops, no tool starts.

Against ``chatstream demo``'s offline server (no key, no network)::

    cd docs/examples/browser && npm ci && npm run build
    python app.py            # then open http://127.0.0.1:5000

With a real provider, build the app with :func:`create_app` and your own client, model
and tools (Python functions; see :meth:`chatstream.tools.Tool.of`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flask

import chatstream
from chatstream.cli.demo import DemoScript
from chatstream.tools import Tool
from chatstream.wsgi import UI_MESSAGE_STREAM_HEADERS, ui_message_stream

HERE = Path(__file__).parent


def chat_messages(ui_messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Chat Completions messages for the AI SDK's UI messages: text parts become
    ``content``; a tool part with its output becomes the assistant's ``tool_calls`` and
    a ``role: tool`` message (each step of an answer its own assistant message)."""
    messages: list[dict[str, Any]] = []
    for ui in ui_messages:
        if ui.get("role") != "assistant":
            text = "".join(
                p.get("text", "") for p in ui.get("parts", []) if p.get("type") == "text"
            )
            messages.append({"role": str(ui.get("role", "user")), "content": text})
            continue
        text = ""
        calls: list[Any] = []
        results: list[Any] = []
        for part in ui.get("parts", []):
            kind = str(part.get("type", ""))
            if kind == "step-start" and (text or calls):
                messages += _assistant(text, calls, results)
                text, calls, results = "", [], []
            elif kind == "text":
                text += part.get("text", "")
            elif kind.startswith("tool-") and part.get("state") == "output-available":
                call_id = part["toolCallId"]
                arguments = json.dumps(part.get("input", {}), ensure_ascii=False)
                function = {"name": kind[len("tool-") :], "arguments": arguments}
                calls.append({"id": call_id, "type": "function", "function": function})
                output = part.get("output")
                content = output if isinstance(output, str) else json.dumps(output)
                results.append({"role": "tool", "tool_call_id": call_id, "content": content})
        messages += _assistant(text, calls, results)
    return messages


def _assistant(text: str, calls: list[Any], results: list[Any]) -> list[dict[str, Any]]:
    if not (text or calls):
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return [message, *results]


def create_app(
    client: chatstream.Client,
    *,
    model: str,
    system: str,
    tools: Sequence[Tool | Callable[..., Any]],
    static_folder: Path = HERE / "static",
    max_steps: int = 5,
) -> flask.Flask:
    """The Flask app: the page at ``/``, its bundle under ``/static``, the chat at
    ``POST /api/chat``."""
    app = flask.Flask(__name__, static_folder=str(static_folder), static_url_path="/static")

    @app.get("/")
    def page() -> flask.Response:
        return flask.send_file(HERE / "index.html")

    @app.post("/api/chat")
    def chat() -> flask.Response:
        history = chat_messages(flask.request.get_json()["messages"])
        conversation = chatstream.Conversation(
            client, {"model": model}, system=system, messages=history
        )
        # The user's message is the end of the history: no prompt to add.
        loop = conversation.run_steps(None, tools, max_steps=max_steps)
        return flask.Response(ui_message_stream(loop), headers=UI_MESSAGE_STREAM_HEADERS)

    return app


def demo_tools(script: DemoScript) -> list[Tool]:
    """The demo's tools as Python tools: its definitions, answered by its script."""
    tools = []
    for definition in script.tools:
        function = definition["function"]
        name = function["name"]

        def run(_name: str = name, **arguments: Any) -> Any:
            call = chatstream.FunctionCall(_name, json.dumps(arguments), "")
            return json.loads(script.run_tool(call))

        tools.append(
            Tool(name, run, function.get("parameters", {}), function.get("description", ""))
        )
    return tools


def main() -> None:
    """Serve the page against ``chatstream demo``'s offline server."""
    from chatstream.cli.demo import DemoServer

    with DemoServer() as server, chatstream.Client(server.base_url) as client:
        script = server.script
        app = create_app(
            client,
            model=script.model,
            system=script.system,
            tools=demo_tools(script),
        )
        app.run(host="127.0.0.1", port=5000, threaded=True)


if __name__ == "__main__":
    main()

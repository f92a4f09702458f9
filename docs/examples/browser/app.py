"""A chat page written with the AI SDK's ``useChat``, served by Flask, answered by chatstream.

The page (``chat.jsx``, bundled by ``npm run build``) is the AI SDK's own client code,
unchanged: it posts the conversation to ``/api/chat`` and reads the answer in the UI
Message Stream protocol, which :func:`chatstream.wsgi.ui_message_stream` speaks. The
backend runs the model's tool calls itself and sends the results back, all as one
assistant message (its steps). The stop button aborts the request; the server then closes
the body, which closes the upstream stream.

Against ``chatstream demo``'s offline server (no key, no network)::

    cd docs/examples/browser && npm ci && npm run build
    python app.py            # then open http://127.0.0.1:5000

With a real provider, build the app with :func:`create_app` and your own client, model
and tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import flask

import chatstream
from chatstream.wsgi import UI_MESSAGE_STREAM_HEADERS, ToolOutput, ui_message_stream

HERE = Path(__file__).parent

#: Runs one tool call; its result as JSON text.
RunTool = Callable[[chatstream.FunctionCall], str]


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
        text, calls, results = "", [], []
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
    tools: list[dict[str, Any]],
    run_tool: RunTool,
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
        request = flask.request.get_json()
        history = [{"role": "system", "content": system}, *chat_messages(request["messages"])]

        def steps() -> Iterator[chatstream.ChatStream | ToolOutput]:
            # One turn: its requests stick to one backend (the demo checks it).
            turn = client.turn()
            for _ in range(max_steps):
                stream = turn.stream({"model": model, "messages": history, "tools": tools})
                yield stream
                response = stream.result()  # the relay has read it to its end
                if not response.tool_calls:
                    return
                history.append(response.to_message())
                for call in response.tool_calls:
                    result = run_tool(call)
                    yield ToolOutput(call.call_id, json.loads(result))
                    history.append(
                        {"role": "tool", "tool_call_id": call.call_id, "content": result}
                    )

        return flask.Response(ui_message_stream(steps()), headers=UI_MESSAGE_STREAM_HEADERS)

    return app


def main() -> None:
    """Serve the page against ``chatstream demo``'s offline server."""
    from chatstream.cli.demo import DemoServer

    with DemoServer() as server, chatstream.Client(server.base_url) as client:
        script = server.script
        app = create_app(
            client,
            model=script.model,
            system=script.system,
            tools=script.tools,
            run_tool=script.run_tool,
        )
        app.run(host="127.0.0.1", port=5000, threaded=True)


if __name__ == "__main__":
    main()

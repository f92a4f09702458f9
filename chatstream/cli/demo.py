"""An offline stand-in for an OpenAI-compatible server: what ``chatstream demo`` talks to.

:class:`DemoServer` listens on ``127.0.0.1`` (a port the system picks) and answers
``POST /v1/chat/completions`` by streaming a bundled conversation
(``chatstream/data/demo.json``) the way a real model does: reasoning, text and a
``get_weather`` tool call on the first turn; once the request carries the tool's result, a
final answer. Each response is chunked Server-Sent Events with a usage chunk and
``[DONE]``, paced token by token (turn the pacing off with ``fast=True``). A question
asked after a finished answer gets a short closing turn saying what the demo knows; a
request without ``tools`` gets a text answer saying which tool it would need. No
key, no network: it is a real HTTP server, so the client under test takes its whole path
(worker thread, queue, watchdog).

The server checks what a real one would: the follow-up request must carry the
assistant's tool call and a ``role: tool`` message answering it, and the turn-state
header the first response set (sticky turn routing, see :class:`chatstream.Turn`)::

    >>> import chatstream
    >>> from chatstream.cli.demo import DemoServer
    >>> with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
    ...     script = server.script
    ...     messages = [{"role": "user", "content": script.prompt}]
    ...     first = client.stream({"model": script.model, "messages": messages,
    ...                            "tools": script.tools}).result()
    >>> first.content
    "Let me check tomorrow morning's forecast for Annecy."
    >>> first.tool_calls[0].name, first.finish_reason
    ('get_weather', 'tool_calls')
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any

from ..events import FunctionCall
from .local_server import LocalHTTPServer

__all__ = ["DemoScript", "DemoServer", "load_script"]

#: The response header that pins a turn to one backend (see :class:`chatstream.Turn`).
_TURN_STATE = "x-codex-turn-state"

# Seconds per token, drawn at random (seeded: every run streams alike) from these ranges.
_PACE = {"reasoning": (0.010, 0.020), "content": (0.015, 0.028), "arguments": (0.008, 0.016)}

# Roughly how a tokenizer cuts text: a word with its leading space, one digit, a run of
# punctuation, a run of underscores, a run of white space. Long words are cut again below.
_TOKEN = re.compile(r" ?[^\W\d_]+| ?\d| ?[^\w\s]+| ?_+|\s+")


@dataclass(frozen=True)
class DemoScript:
    """The bundled conversation (see :func:`load_script`).

    Attributes:
        model: The model name the demo uses.
        system: The system message.
        prompt: The user's question.
        tools: The request's ``tools`` (OpenAI function definitions).
        turns: What the model streams on each turn: ``reasoning``, ``content``, an
            optional ``tool_call`` (``id``, ``name``, ``arguments``) and ``latency`` (the
            seconds before the first token). The first asks for the tool, the second
            answers from its result, the third answers any later question, the fourth
            answers a request that offers no tools.
        forecasts: What the local ``get_weather`` tool knows, by lower-case city.
    """

    model: str
    system: str
    prompt: str
    tools: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    forecasts: dict[str, Any]

    @property
    def tool_call_id(self) -> str:
        """The id of the first turn's tool call."""
        return str(self.turns[0]["tool_call"]["id"])

    def run_tool(self, call: FunctionCall) -> str:
        """Run a tool call locally; its result as JSON text (an ``error`` object when the
        call cannot be answered)."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if call.name != "get_weather" or not isinstance(arguments, dict):
            result: Any = {"error": f"cannot run {call.name} with {call.arguments!r}"}
        else:
            city = str(arguments.get("city", ""))
            result = self.forecasts.get(city.lower()) or {"error": f"no forecast for {city}"}
        return json.dumps(result, ensure_ascii=False)


def load_script() -> DemoScript:
    """The conversation bundled with chatstream (``chatstream/data/demo.json``)."""
    text = resources.files("chatstream").joinpath("data/demo.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return DemoScript(
        model=raw["model"],
        system=raw["system"],
        prompt=raw["prompt"],
        tools=raw["tools"],
        turns=raw["turns"],
        forecasts=raw["forecasts"],
    )


class _Reject(Exception):
    """The request is not one the demo model can answer: an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DemoServer:
    """A local HTTP server that streams the bundled conversation.

    Use it as a context manager (or call :meth:`start` and :meth:`close`); point a
    :class:`chatstream.Client` at :attr:`base_url`.

    Args:
        fast: Stream without pauses (tests, doctests); otherwise paced like a real
            model, a few seconds for the whole conversation.
        script: The conversation to serve (default: :func:`load_script`).

    Attributes:
        script: The conversation served.
        received: The JSON body of every request answered with a stream, in order.
    """

    def __init__(self, *, fast: bool = False, script: DemoScript | None = None) -> None:
        self.script = script or load_script()
        self.fast = fast
        self.received: list[dict[str, Any]] = []
        self._issued: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = _HTTPServer(self)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API root to give the client, ``http://127.0.0.1:PORT/v1``."""
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> DemoServer:
        """Start serving on a background thread; returns the server."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="chatstream-demo-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: streams in progress end at once, every thread is joined."""
        self._stopping.set()
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
            self._thread = None
        self._http.server_close()  # joins the handler threads

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- answering (handler threads) -------------------------------------------------

    def _choose_turn(self, body: Any, turn_state: str | None) -> int:
        """Which turn of the script answers this request."""
        if not isinstance(body, dict) or body.get("stream") is not True:
            raise _Reject(400, 'The demo model only streams: send "stream": true.')
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
            raise _Reject(400, "messages must be a non-empty list of message objects.")
        last = messages[-1]
        if last.get("role") == "user":
            # After a finished answer, a new question gets the script's closing turn (the
            # demo knows one conversation, and says so), not the first turn once more.
            answered = any(
                isinstance(m, dict) and m.get("role") == "assistant" and not m.get("tool_calls")
                for m in messages[:-1]
            )
            if answered and len(self.script.turns) > 2:
                return 2
            # A model offered no tool cannot call one: it says what it would need.
            if not body.get("tools") and len(self.script.turns) > 3:
                return 3
            return 0
        call_id = self.script.tool_call_id
        if last.get("role") != "tool" or last.get("tool_call_id") != call_id:
            raise _Reject(400, f"Expected a user message, or a tool message answering {call_id}.")
        asked = messages[-2] if len(messages) > 1 else {}
        calls = asked.get("tool_calls") if isinstance(asked, dict) else None
        if not isinstance(calls, list) or not any(
            isinstance(c, dict) and c.get("id") == call_id for c in calls
        ):
            raise _Reject(400, "The tool message must follow the assistant's tool call.")
        with self._lock:
            known = turn_state in self._issued
        if not known:
            raise _Reject(400, f"The follow-up request did not send back {_TURN_STATE}.")
        return 1

    def _turn_state(self) -> str:
        with self._lock:
            state = f"demo-turn-{len(self._issued) + 1}"
            self._issued.add(state)
        return state

    def _chunks(self, number: int, body: dict[str, Any]) -> Iterator[tuple[float, str]]:
        """The SSE data of turn ``number`` with the pause before each, in seconds."""
        turn = self.script.turns[number]
        rng = random.Random(number)
        response_id = f"chatcmpl-demo-{number + 1}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _chunk(response_id, self.script.model, [choice])

        def pace(kind: str) -> float:
            return 0.0 if self.fast else rng.uniform(*_PACE[kind])

        counts = {"reasoning": 0, "content": 0, "arguments": 0}
        yield (0.0 if self.fast else float(turn["latency"])), chunk({"role": "assistant"})
        for kind, field in (("reasoning", "reasoning_content"), ("content", "content")):
            for token in _tokens(turn.get(kind, "")):
                counts[kind] += 1
                yield pace(kind), chunk({field: token})
        call = turn.get("tool_call")
        if call is not None:
            head = {"index": 0, "id": call["id"], "type": "function"}
            yield (
                pace("arguments"),
                chunk(
                    {"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]}
                ),
            )
            for piece in _tokens(json.dumps(call["arguments"], ensure_ascii=False)):
                counts["arguments"] += 1
                fragment = {"index": 0, "function": {"arguments": piece}}
                yield pace("arguments"), chunk({"tool_calls": [fragment]})
        yield pace("content"), chunk({}, "tool_calls" if call is not None else "stop")
        usage = _usage(body, counts, cached_turn=number > 0)
        yield 0.0, _chunk(response_id, self.script.model, [], usage=usage)
        yield 0.0, "[DONE]"


class _HTTPServer(LocalHTTPServer):
    # DemoServer.close() ends the streams in progress before server_close() joins them.
    def __init__(self, owner: DemoServer) -> None:
        self.owner = owner
        super().__init__(_Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 10.0  # a client that stops sending its request

    def setup(self) -> None:
        super().setup()
        # Each chunk is one token: send it now, not when Nagle's algorithm would.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the demo's output is the conversation."""

    def do_GET(self) -> None:
        self._error(404, "Only POST /v1/chat/completions is served here.")

    def do_POST(self) -> None:
        owner = self.server.owner
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, "Only POST /v1/chat/completions is served here.")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            number = owner._choose_turn(body, self.headers.get(_TURN_STATE))
        except ValueError:
            self._error(400, "The request body is not JSON.")
            return
        except _Reject as exc:
            self._error(exc.status, exc.message)
            return
        with owner._lock:
            owner.received.append(body)
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", f"req-demo-{number + 1}")
        self.send_header("x-ratelimit-limit-requests", "60")
        self.send_header("x-ratelimit-remaining-requests", str(59 - number))
        if number == 0:
            self.send_header(_TURN_STATE, owner._turn_state())
        self.end_headers()
        try:
            for pause, data in owner._chunks(number, body):
                if pause and owner._stopping.wait(pause):
                    return
                event = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away (closed the stream, Ctrl-C)

    def _error(self, status: int, message: str) -> None:
        error = {"message": message, "type": "invalid_request_error", "code": None}
        data = json.dumps({"error": error}).encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _chunk(response_id: str, model: str, choices: list[dict[str, Any]], usage: Any = None) -> str:
    chunk = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))


def _tokens(text: str) -> list[str]:
    """``text`` cut roughly the way a model's tokenizer would."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        while len(token) > 8:
            tokens.append(token[:5])
            token = token[5:]
        tokens.append(token)
    return tokens


def _usage(body: dict[str, Any], counts: Mapping[str, int], *, cached_turn: bool) -> Any:
    """An OpenAI-style usage object: the output counts streamed, the prompt estimated
    from the request (about four characters a token)."""
    messages = body.get("messages") or []
    prompt = len(json.dumps([messages, body.get("tools")])) // 4
    # A follow-up request repeats the first one's prompt: a provider's cache would hit.
    cached = (len(json.dumps([messages[:-2], body.get("tools")])) // 4 // 64) * 64
    completion = sum(counts.values())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached if cached_turn else 0},
        "completion_tokens_details": {"reasoning_tokens": counts["reasoning"]},
    }

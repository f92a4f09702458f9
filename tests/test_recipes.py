"""The recipes of docs/recipes.rst: Flask (and any WSGI server) relaying a stream as SSE,
callbacks marshalled onto a GUI thread, and the notebook display."""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import pytest

import chatstream
from chatstream.cli.demo import DemoServer, load_script
from chatstream.notebook import show
from chatstream.wsgi import SSE_HEADERS, sse_events
from tests.helpers import answer, build_body, chunk
from tests.loopback import LoopbackServer, json_error, sse_body

pytestmark = pytest.mark.usefixtures("no_leaks")

PATH = "/v1/chat/completions"
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[chatstream.Client]:
    with chatstream.Client(server.url + "/v1", retry=0) as client:
        yield client


# --- Flask / WSGI -----------------------------------------------------------------------


def relay_app(client: chatstream.Client) -> tuple[flask.Flask, list[chatstream.ChatStream]]:
    """The recipe: a route that relays a stream to the browser."""
    app = flask.Flask(__name__)
    streams: list[chatstream.ChatStream] = []

    @app.get("/chat")
    def chat() -> flask.Response:
        question = flask.request.args["q"]
        stream = client.stream({"model": "m", "messages": [{"role": "user", "content": question}]})
        streams.append(stream)
        return flask.Response(sse_events(stream), headers=SSE_HEADERS)

    return app, streams


def frames(body: bytes) -> list[tuple[str, Any]]:
    """(event name, decoded data) of each SSE frame."""
    out = []
    for frame in body.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_flask_relays_every_event_then_the_result(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Hel", "lo")))
    app, streams = relay_app(client)
    response = app.test_client().get("/chat?q=hi")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["X-Accel-Buffering"] == "no"
    relayed = frames(response.data)
    names = [name for name, _ in relayed]
    assert names == [
        "output_item_added",
        "output_text_delta",
        "output_text_delta",
        "output_item_done",
        "completed",
        "done",
    ]
    events = [chatstream.event_from_dict(data) for _, data in relayed[:-1]]
    assert [e.delta for e in events if isinstance(e, chatstream.OutputTextDelta)] == ["Hel", "lo"]
    assert relayed[-1][1]["content"] == "Hello"
    assert streams[0].done


def test_flask_relays_a_tool_call_as_it_streams(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    def fragment(**function: str) -> dict[str, Any]:
        call = {"index": 0, "function": function}
        if "name" in function:
            call["id"] = "call_1"
        return chunk(tool_calls=[call])

    finish = chunk(finish="tool_calls")
    chunks = [fragment(name="ls", arguments='{"pa'), fragment(arguments='th": "/"}'), finish]
    server.route(PATH, sse_body(build_body(chunks, event=None, done=True)))
    app, _ = relay_app(client)
    relayed = frames(app.test_client().get("/chat?q=hi").data)
    assert [name for name, _ in relayed][:4] == [
        "output_item_added",
        "function_call_arguments_delta",
        "function_call_arguments_delta",
        "output_item_done",
    ]
    assert relayed[0][1]["item"]["name"] == "ls"
    assert [d["delta"] for _, d in relayed[1:3]] == ['{"pa', 'th": "/"}']


def test_flask_relays_text_a_word_at_a_time_when_asked(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Hel", "lo the", "re!")))
    stream = client.stream({"model": "m", "messages": []})
    relayed = frames(b"".join(sse_events(stream, smooth_by="word")))
    deltas = [d["delta"] for name, d in relayed if name == "output_text_delta"]
    assert deltas == ["Hello ", "there!"]


RATE_LIMITED = {"x-ratelimit-remaining-requests": "99", "x-ratelimit-limit-tokens": "30000"}


def test_the_relay_keeps_the_accounts_rate_limit_headers_from_the_browser(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Hi"), headers=RATE_LIMITED))
    stream = client.stream({"model": "m", "messages": []})
    relayed = frames(b"".join(sse_events(stream)))
    assert "rate_limits" not in [name for name, _ in relayed]
    assert "30000" not in json.dumps(relayed)
    assert relayed[-1][0] == "done"


def test_the_relay_forwards_rate_limit_headers_when_asked(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Hi"), headers=RATE_LIMITED))
    stream = client.stream({"model": "m", "messages": []})
    relayed = frames(b"".join(sse_events(stream, rate_limits=True)))
    name, data = relayed[0]
    assert name == "rate_limits" and data["headers"]["limit-tokens"] == "30000"


def test_flask_relays_an_error_as_an_error_event(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, json_error(429, {"error": {"message": "Slow down"}}))
    app, _ = relay_app(client)
    relayed = frames(app.test_client().get("/chat?q=hi").data)
    assert relayed == [
        ("error", {"kind": "rate_limited", "message": "HTTP 429: Slow down (wait and try again)"})
    ]


def test_flask_ends_an_answer_cut_at_max_tokens_with_done_and_its_reason(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Once", " upon", finish="length")))
    app, _ = relay_app(client)
    relayed = frames(app.test_client().get("/chat?q=hi").data)
    name, result = relayed[-1]
    assert (name, result["finish_reason"], result["content"]) == ("done", "length", "Once upon")
    assert result["error"] is None


def test_a_browser_going_away_closes_the_upstream_stream(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    # A long answer, slowly: the browser leaves after the first event.
    server.route(PATH, sse_body(answer(*[f"w{i} " for i in range(500)]), delay=0.02))
    app, streams = relay_app(client)
    response = app.test_client().get("/chat?q=hi", buffered=False)
    first = next(iter(response.response))
    assert first.startswith(b"event: output_item_added\n")
    response.close()  # what the WSGI server does when the client disconnects
    with pytest.raises(chatstream.StreamClosedError) as caught:
        streams[0].result(timeout=5)
    assert caught.value.partial is not None
    # The upstream connection is gone: the server's next write failed.
    deadline = time.monotonic() + 5
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.disconnects


def test_closing_a_body_never_iterated_closes_the_stream(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer(*["x"] * 100), delay=0.02))
    stream = client.stream({"model": "m", "messages": []})
    body = sse_events(stream)
    body.close()  # e.g. Django closing a StreamingHttpResponse that was never sent
    with pytest.raises(chatstream.StreamClosedError):
        stream.result(timeout=5)
    assert list(body) == []


# --- GUI: callbacks on the GUI thread -----------------------------------------------------


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeTk:
    """Stands in for Tk's event loop: ``after`` queues a call, one thread runs them."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="fake-tk")
        self.thread.start()

    def after(self, ms: int, fn: Callable[[], None]) -> str:
        assert ms == 0
        self.calls.put(fn)
        return "after#1"

    def _loop(self) -> None:
        while (fn := self.calls.get()) is not None:
            fn()

    def stop(self) -> None:
        self.calls.put(None)
        self.thread.join()


class RecordingView:
    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []  # (thread name, style, text)
        self.idle = threading.Event()

    def show(self, text: str, style: str) -> None:
        self.shown.append((threading.current_thread().name, style, text))

    def set_busy(self, busy: bool) -> None:
        self.shown.append((threading.current_thread().name, "busy", str(busy)))
        if not busy:
            self.idle.set()


def _tk_demo(questions: list[str]) -> tuple[Any, RecordingView, DemoServer]:
    """The Tk recipe in its demo mode, asked ``questions`` one after the other (each
    once the previous answer is complete)."""
    tk_chat = _load_example("tk_chat")
    tk = FakeTk()
    view = RecordingView()
    try:
        with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
            script = server.script
            controller = tk_chat.ChatController(
                client, script.model, view, tk.after, tools=script.tools, run_tool=script.run_tool
            )
            for question in questions:
                view.idle.clear()
                tk.after(0, lambda q=question: controller.send(q))
                assert view.idle.wait(10)
    finally:
        tk.stop()
    return controller, view, server


def tk_demo_turn() -> tuple[RecordingView, Any, DemoServer]:
    """The Tk controller through one turn of the demo conversation (the tool round trip
    included), on a fake Tk loop: the view it drew, the controller, the demo server."""
    controller, view, server = _tk_demo([load_script().prompt])
    return view, controller, server


def _shown(view: RecordingView, style: str) -> str:
    return "".join(text for _, s, text in view.shown if s == style)


def test_tk_callbacks_run_on_the_gui_thread() -> None:
    _, view, _ = _tk_demo([load_script().prompt])
    assert {thread for thread, _, _ in view.shown} == {"fake-tk"}
    styles = [style for _, style, _ in view.shown]
    assert styles[:3] == ["user", "busy", "reasoning"]
    assert styles[-2:] == ["answer", "busy"]


def test_tk_demo_runs_the_tool_and_streams_the_final_answer() -> None:
    controller, view, server = _tk_demo([load_script().prompt])
    first, final = server.script.turns[0], server.script.turns[1]
    tool = _shown(view, "tool")
    assert tool.startswith("\n→ get_weather(") and "← get_weather: {" in tool
    assert _shown(view, "answer").strip() == first["content"] + final["content"]
    roles = [m["role"] for m in controller.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert controller.messages[-1] == {"role": "assistant", "content": final["content"]}
    assert len(server.received) == 2  # the question, then the follow-up with the result


def test_tk_shows_reasoning_apart_from_the_answer() -> None:
    _, view, server = _tk_demo([load_script().prompt])
    reasoning = _shown(view, "reasoning")
    turns = server.script.turns
    assert reasoning == (
        f"thinking…\n{turns[0]['reasoning']}\n\nthinking…\n{turns[1]['reasoning']}\n\n"
    )


def test_tk_demo_answers_a_second_question_without_replaying_the_first() -> None:
    controller, view, server = _tk_demo([load_script().prompt, "And on Sunday?"])
    closing = server.script.turns[2]["content"]
    assert controller.messages[-2:] == [
        {"role": "user", "content": "And on Sunday?"},
        {"role": "assistant", "content": closing},
    ]
    assert _shown(view, "answer").count(server.script.turns[0]["content"]) == 1


# --- notebook -----------------------------------------------------------------------------


class FakeHandle:
    def __init__(self) -> None:
        self.bundles: list[dict[str, str]] = []

    def update(self, bundle: dict[str, str], **options: Any) -> None:
        self.bundles.append(bundle)
        self.options = options


def _demo_stream(client: chatstream.Client, server: DemoServer) -> chatstream.ChatStream:
    messages = [{"role": "user", "content": server.script.prompt}]
    return client.stream({"model": "demo", "messages": messages, "tools": server.script.tools})


def test_notebook_display_updates_in_place() -> None:
    handle = FakeHandle()
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        response = show(_demo_stream(client, server), handle=handle, interval=0)
    assert response.tool_calls[0].name == "get_weather"
    html = [b["text/html"] for b in handle.bundles]
    assert len(html) > 20  # one per event (interval 0), then the final one
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(html))
    last = handle.bundles[-1]
    assert "The rider wants to know" in last["text/html"]
    assert "opacity:.6;font-style:italic" in last["text/html"]  # reasoning set apart
    assert "Let me check tomorrow morning&#x27;s forecast" in last["text/html"]
    assert (
        "→ get_weather" in last["text/html"]
        and "&quot;city&quot;: &quot;Annecy&quot;" in last["text/html"]
    )
    assert "out</div>" in last["text/html"]  # the usage line
    assert last["text/plain"].endswith("Let me check tomorrow morning's forecast for Annecy.")


def test_notebook_updates_are_throttled() -> None:
    handle = FakeHandle()
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        show(_demo_stream(client, server), handle=handle, interval=60)
    assert len(handle.bundles) == 2  # the first event, and the end


def test_notebook_shows_an_error_then_raises(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, json_error(401, {"error": {"message": "bad key"}}))
    handle = FakeHandle()
    with pytest.raises(chatstream.AuthenticationError):
        show(client.stream({"model": "m", "messages": []}), handle=handle)
    assert "error: HTTP 401: bad key" in handle.bundles[-1]["text/html"]


def test_notebook_shows_an_answer_cut_at_max_tokens_without_raising(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Once", " upon", finish="length")))
    handle = FakeHandle()
    response = show(client.stream({"model": "m", "messages": []}), handle=handle)
    assert (response.content, response.truncated) == ("Once upon", True)
    last = handle.bundles[-1]["text/html"]
    assert "Once upon" in last and "cut short: max tokens" in last and "error" not in last


def test_notebook_printing_notes_an_answer_cut_at_max_tokens(
    server: LoopbackServer, client: chatstream.Client
) -> None:
    server.route(PATH, sse_body(answer("Once", " upon", finish="length")))
    out = io.StringIO()
    show(client.stream({"model": "m", "messages": []}), out=out)
    assert out.getvalue().startswith("Once upon\n")
    assert out.getvalue().endswith("· cut short: max tokens\n")


def test_notebook_falls_back_to_printing_outside_a_kernel() -> None:
    out = io.StringIO()
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        response = show(_demo_stream(client, server), out=out)
    text = out.getvalue()
    assert text.startswith("thinking…\nThe rider wants to know")
    assert "Let me check tomorrow morning's forecast for Annecy.\n→ get_weather" in text
    assert text.splitlines()[-1].startswith("· ") and "out" in text.splitlines()[-1]
    assert response.finish_reason == "tool_calls"


def test_notebook_uses_the_kernel_display_when_ipython_runs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ipython = pytest.importorskip("IPython")
    display_module = pytest.importorskip("IPython.display")
    handle = FakeHandle()
    shown: list[Any] = []

    def display(obj: Any, **options: Any) -> FakeHandle:
        shown.append((obj, options))
        return handle

    class KernelShell:
        kernel = object()

    monkeypatch.setattr(ipython, "get_ipython", KernelShell)
    monkeypatch.setattr(display_module, "display", display)
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        show(_demo_stream(client, server), interval=0)
    assert shown[0][1] == {"display_id": True, "raw": True}
    assert handle.options == {"raw": True}
    assert "forecast for Annecy" in handle.bundles[-1]["text/plain"]


def test_tk_shows_a_call_as_it_streams_and_the_answer_a_word_at_a_time() -> None:
    view, _, _ = tk_demo_turn()
    tool = [text for _, style, text in view.shown if style == "tool"]
    assert tool[0] == "\n→ get_weather("
    closed = tool.index(")")
    assert closed > 2  # the arguments came in pieces between
    assert tool[closed + 1].startswith("\n← get_weather: ")  # then the tool's result
    words = [text for _, style, text in view.shown if style == "answer"][:-1]  # less "\n\n"
    assert all(" " not in w.strip() for w in words)


def test_tk_paces_the_answer_with_after() -> None:
    tk_chat = _load_example("tk_chat")
    view = RecordingView()
    scheduled: list[tuple[int, Callable[[], None]]] = []
    controller = tk_chat.ChatController(
        None, "m", view, lambda ms, fn: scheduled.append((ms, fn)), pace_ms=40
    )
    controller.on_event(chatstream.OutputTextDelta("one two three"))
    assert view.shown == [] and [ms for ms, _ in scheduled] == [40]
    while scheduled:
        scheduled.pop(0)[1]()
    assert [text for _, _, text in view.shown] == ["one ", "two "]


def test_notebook_shows_a_call_while_its_arguments_stream() -> None:
    handle = FakeHandle()
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        show(_demo_stream(client, server), handle=handle, interval=0)
    streaming = [b["text/html"] for b in handle.bundles if "→ get_weather(" in b["text/html"]]
    assert streaming, "the call was only shown once whole"
    assert "…</div>" in streaming[0]


def test_notebook_can_show_the_text_a_word_at_a_time() -> None:
    handle = FakeHandle()
    with DemoServer(fast=True) as server, chatstream.Client(server.base_url) as client:
        response = show(_demo_stream(client, server), handle=handle, interval=0, smooth_by="word")
    texts = [b["text/plain"].rpartition("\n\n")[2] for b in handle.bundles]
    answers = [t for t in texts if t.startswith(response.content[:6])]
    assert answers[-1] == response.content
    assert len(answers) > 3 and all(t.endswith((" ", ".")) for t in answers)

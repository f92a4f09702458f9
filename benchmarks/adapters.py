"""One function per client, each reading one whole streamed completion.

Every adapter is called as ``adapter(base_url, on_text=None)`` and returns the
reconstructed ``(content, reasoning, [(call_id, name, arguments), ...])``, which the
benchmark compares with the stream's ground truth. ``on_text`` (latency runs only) is
called with each text delta at the moment the client hands it to its caller.

Clients and sessions are built once per base URL (``_cached``), so connection pools are
warm and construction is not measured. The ``openai`` adapters are registered only when
the SDK is installed (``pip install -e '.[bench]'``); chatstream never imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
import sseclient

import chatstream
from chatstream import Limits, OutputTextDelta

Result = tuple[str, str, list[tuple[str, str, str]]]
OnText = Callable[[str], object] | None
REQUEST: dict[str, Any] = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}

ADAPTERS: dict[str, Callable[..., Result]] = {}
#: The reference every other adapter is compared with.
FLOOR = "floor"
#: Largest event chatstream accepts in the benchmarks: the doubled size runs send one
#: 20 MB event, over the 16 MiB default.
MAX_EVENT_BYTES = 64 * 1024 * 1024

_cache: dict[tuple[str, str], Any] = {}


def adapter(name: str) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    def register(fn: Callable[..., Result]) -> Callable[..., Result]:
        ADAPTERS[name] = fn
        return fn

    return register


def _cached(kind: str, base_url: str, make: Callable[[], Any]) -> Any:
    key = (kind, base_url)
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


class _Collect:
    """Plain accumulation of chunk dicts: pieces in lists, joined once at the end."""

    def __init__(self, on_text: OnText) -> None:
        self.on_text = on_text
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.content.append(text)
                if self.on_text is not None:
                    self.on_text(text)
            thought = delta.get("reasoning_content")
            if thought:
                self.reasoning.append(thought)
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(call["index"], ["", "", []])
                slot[0] = call.get("id") or slot[0]
                function = call.get("function") or {}
                slot[1] = function.get("name") or slot[1]
                if function.get("arguments"):
                    slot[2].append(function["arguments"])

    def result(self) -> Result:
        calls = [(c[0], c[1], "".join(c[2])) for _, c in sorted(self.calls.items())]
        return "".join(self.content), "".join(self.reasoning), calls


def _session(base_url: str) -> requests.Session:
    session: requests.Session = _cached("requests", base_url, requests.Session)
    return session


def _post(base_url: str) -> requests.Response:
    response = _session(base_url).post(
        base_url + "/chat/completions", json=dict(REQUEST, stream=True), stream=True
    )
    response.raise_for_status()
    return response


@adapter(FLOOR)
def floor(base_url: str, on_text: OnText = None) -> Result:
    """requests ``iter_lines()`` (its default 512-byte reads) and ``json.loads``."""
    acc = _Collect(on_text)
    with _post(base_url) as response:
        for line in response.iter_lines():
            if line.startswith(b"data: "):
                if line == b"data: [DONE]":
                    break
                acc.add(json.loads(line[6:]))
    return acc.result()


@adapter("sseclient")
def sseclient_py(base_url: str, on_text: OnText = None) -> Result:
    """sseclient-py over the response (it iterates it: 128-byte reads) and ``json.loads``."""
    acc = _Collect(on_text)
    with _post(base_url) as response:
        for event in sseclient.SSEClient(response).events():
            if event.data == "[DONE]":
                break
            acc.add(json.loads(event.data))
    return acc.result()


def _client(base_url: str) -> chatstream.Client:
    def make() -> chatstream.Client:
        return chatstream.Client(base_url, limits=Limits(max_event_bytes=MAX_EVENT_BYTES))

    client: chatstream.Client = _cached("chatstream", base_url, make)
    return client


def _outcome(response: chatstream.Response) -> Result:
    calls = [(c.call_id, c.name, c.arguments) for c in response.tool_calls]
    return response.content, response.reasoning, calls


@adapter("chatstream")
def chatstream_iter(base_url: str, on_text: OnText = None) -> Result:
    """chatstream: iterate the events (full accumulation), then ``result()``."""
    with _client(base_url).stream(REQUEST) as stream:
        for event in stream:
            if on_text is not None and type(event) is OutputTextDelta:
                on_text(event.delta)
        return _outcome(stream.result())


@adapter("chatstream_cb")
def chatstream_callbacks(base_url: str, on_text: OnText = None) -> Result:
    """chatstream with ``on_event`` only (nothing queued), then ``result()``."""

    def on_event(event: chatstream.ResponseEvent) -> None:
        if on_text is not None and type(event) is OutputTextDelta:
            on_text(event.delta)

    with _client(base_url).stream(REQUEST, on_event=on_event) as stream:
        return _outcome(stream.result())


try:
    import openai
except ImportError:  # optional: pip install -e '.[bench]'
    openai = None


def _openai(base_url: str) -> Any:
    def make() -> Any:
        return openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, timeout=600)

    return _cached("openai", base_url, make)


if openai is not None:

    @adapter("openai_create")
    def openai_create(base_url: str, on_text: OnText = None) -> Result:
        """``chat.completions.create(stream=True)``, accumulated as user code does."""
        content: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[Any]] = {}
        stream = _openai(base_url).chat.completions.create(stream=True, **REQUEST)
        with stream:
            for chunk in stream:
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        content.append(delta.content)
                        if on_text is not None:
                            on_text(delta.content)
                    thought = getattr(delta, "reasoning_content", None)
                    if thought:
                        reasoning.append(thought)
                    for call in delta.tool_calls or ():
                        slot = calls.setdefault(call.index, ["", "", []])
                        slot[0] = call.id or slot[0]
                        if call.function is not None:
                            slot[1] = call.function.name or slot[1]
                            if call.function.arguments:
                                slot[2].append(call.function.arguments)
        done = [(c[0], c[1], "".join(c[2])) for _, c in sorted(calls.items())]
        return "".join(content), "".join(reasoning), done

    @adapter("openai_stream")
    def openai_stream(base_url: str, on_text: OnText = None) -> Result:
        """``chat.completions.stream()``: its events, then ``get_final_completion()``."""
        completions = _openai(base_url).chat.completions
        if not hasattr(completions, "stream"):  # SDKs before 1.92 have it in beta only
            completions = _openai(base_url).beta.chat.completions
        with completions.stream(**REQUEST) as stream:
            for event in stream:
                if on_text is not None and event.type == "content.delta" and event.delta:
                    on_text(event.delta)
            final = stream.get_final_completion()
        message = final.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()]
        thought = getattr(message, "reasoning_content", None) or ""
        return message.content or "", thought, calls


def check(result: Result, truth: dict[str, Any]) -> str:
    """``"ok"``, or what differs from the ground truth."""
    content, reasoning, calls = result
    if content != truth["content"]:
        return f"content differs ({len(content)} vs {len(truth['content'])} chars)"
    if reasoning != truth["reasoning"]:
        return f"reasoning differs ({len(reasoning)} vs {len(truth['reasoning'])} chars)"
    want = [(c["id"], c["name"], c["arguments"]) for c in truth["tool_calls"]]
    if calls != want:
        return f"tool calls differ ({len(calls)} vs {len(want)} calls)"
    return "ok"

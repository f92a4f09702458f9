"""Relaying a stream to a browser as Server-Sent Events, from any WSGI framework.

:func:`sse_events` turns a :class:`~chatstream.ChatStream` into the bytes of an
``text/event-stream`` body: one SSE event per chatstream event, named by its type, with
its JSON as data, then a ``done`` event with the result (or an ``error`` event). Hand it
to the framework as a streaming response body::

    # Flask
    return flask.Response(sse_events(stream), headers=SSE_HEADERS)
    # Django
    return StreamingHttpResponse(sse_events(stream), headers=SSE_HEADERS)

When the browser goes away, the WSGI server calls the body's ``close()``, which closes the
upstream stream at once: its connection is released and the provider stops generating.

In the browser, listen for the event types you need (``EventSource`` only takes ``GET``;
for a ``POST``, read ``fetch()``'s body)::

    const source = new EventSource("/chat?q=hello");
    source.addEventListener("output_text_delta", e => out.textContent += JSON.parse(e.data).delta);
    // A tool call as it streams: its name at once, then its arguments piece by piece.
    source.addEventListener("output_item_added", e => {
      const item = JSON.parse(e.data).item;
      if (item.type === "function_call") out.textContent += `\n→ ${item.name}(`;
    });
    source.addEventListener("function_call_arguments_delta",
      e => out.textContent += JSON.parse(e.data).delta);
    source.addEventListener("done", () => source.close());
    source.addEventListener("error", () => source.close());
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

from .errors import ChatStreamError
from .events import RateLimits
from .smooth import Chunking, smooth
from .stream import ChatStream

__all__ = ["SSEBody", "SSE_HEADERS", "sse_events"]

#: Response headers for an event stream relayed through proxies: no caching, and no
#: buffering by nginx (which would hold the events back until the end).
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def sse_events(
    stream: ChatStream, *, smooth_by: Chunking | None = None, rate_limits: bool = False
) -> SSEBody:
    """The SSE body relaying ``stream``; see :class:`SSEBody`.

    ``smooth_by`` (``"word"`` or ``"line"``) relays the text a word or a line at a time
    (see :mod:`chatstream.smooth`): fewer, whole pieces for the browser to draw.
    ``rate_limits=True`` relays the provider's ``x-ratelimit-*`` headers too (the
    ``rate_limits`` event): they describe your account's key, not the browser's user,
    so they are left out unless asked for.
    """
    return SSEBody(stream, smooth_by=smooth_by, rate_limits=rate_limits)


def _frame(name: str, data: str) -> bytes:
    # The data is JSON on one line (json.dumps escapes line breaks), so one data field.
    return f"event: {name}\ndata: {data}\n\n".encode()


class SSEBody:
    """An iterable of ``bytes`` for a WSGI response body, relaying a stream.

    It yields, in order:

    * ``event: <type>`` / ``data: <event JSON>`` for each event of the stream (``type`` is
      the event's tag, e.g. ``output_text_delta``; the data is
      :meth:`~chatstream.Serializable.to_json`);
    * at the end, ``event: done`` with the result object
      (:meth:`~chatstream.Response.to_result_dict`), or ``event: error`` with
      ``{"kind": ..., "message": ...}`` when the stream failed. An answer cut short by
      ``max_tokens`` or a content filter ends normally: ``done``, its ``finish_reason``
      ``"length"`` or ``"content_filter"`` saying so.

    :meth:`close` (called by every WSGI server when the response ends or the client goes
    away, started or not) closes the upstream stream.
    """

    def __init__(
        self, stream: ChatStream, *, smooth_by: Chunking | None = None, rate_limits: bool = False
    ) -> None:
        self.stream = stream
        self.smooth_by = smooth_by
        self.rate_limits = rate_limits
        self._frames = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def _generate(self) -> Generator[bytes, None, None]:
        stream = self.stream
        events = stream if self.smooth_by is None else smooth(stream, by=self.smooth_by)
        try:
            for event in events:
                if isinstance(event, RateLimits) and not self.rate_limits:
                    continue
                yield _frame(event.type, event.to_json())
            result = stream.result()
        except ChatStreamError as exc:
            error = {"kind": exc.kind, "message": exc.message}
            yield _frame("error", json.dumps(error, ensure_ascii=False))
        else:
            yield _frame("done", json.dumps(result.to_result_dict(), ensure_ascii=False))
        finally:
            stream.close()

    def close(self) -> None:
        """Stop relaying and close the upstream stream (idempotent)."""
        self._frames.close()
        self.stream.close()

"""The telemetry hooks (chatstream.telemetry) on their own: the base class's hooks do
nothing, and ``call_hook`` keeps a raising hook from breaking the stream while letting
what is not an ``Exception`` through."""

from __future__ import annotations

import logging

import pytest

from chatstream import Telemetry
from chatstream.telemetry import StreamStart, call_hook


def test_the_base_hooks_do_nothing_and_give_no_context() -> None:
    telemetry = Telemetry()
    start = StreamStart(url="http://h/v1/chat/completions", body={}, started_at=0.0)
    assert telemetry.on_stream_start(start) is None
    assert telemetry.on_request(None, 1, 200, None, 0.1) is None


def test_call_hook_returns_what_the_hook_returned() -> None:
    assert call_hook(lambda a, b: (a, b), 1, "x") == (1, "x")


def test_a_hook_that_raises_is_logged_and_gives_none(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> int:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="chatstream"):
        assert call_hook(broken) is None
    assert [r.getMessage() for r in caplog.records] == ["a telemetry hook raised"]
    assert caplog.records[0].exc_info is not None


def test_what_is_not_an_exception_goes_through() -> None:
    def cancelled() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_hook(cancelled)

"""The watchdog (chatstream._shell.watchdog): time limits hold even when its thread could
not be started once (the process at its thread limit)."""

from __future__ import annotations

import pytest

from chatstream import ChatStreamError, Client, IdleTimeoutError, Timeouts, TotalTimeoutError
from chatstream._shell import process as _process
from chatstream._shell.watchdog import Watchdog
from tests.loopback import Conn, LoopbackServer

from ..fakes import STALL, FakeBody, fake_stream
from ..helpers import BODY, HELLO, chunk, event
from .test_threads import fail_to_start_once

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT = 10.0
NAME = "chatstream-watchdog"


def test_a_stream_whose_watchdog_cannot_start_fails_at_once_and_the_next_is_watched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failed = fail_to_start_once(monkeypatch, NAME)
    watchdog = Watchdog()
    first = fake_stream(FakeBody([HELLO]), watchdog=watchdog)
    assert failed == [NAME]
    with pytest.raises(ChatStreamError) as caught:
        first.result(timeout=WAIT)
    assert caught.value.kind == "thread_limit"
    stalled = fake_stream(FakeBody([STALL]), watchdog=watchdog, timeouts=Timeouts(idle=0.2))
    with pytest.raises(IdleTimeoutError):
        stalled.result(timeout=WAIT)


def _trickle(conn: Conn) -> None:
    """A stream that never ends: an event, then a keep-alive comment every 0.2 s."""
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    conn.write(event(chunk("Hi")))
    while True:
        conn.write(b": ping\n\n")
        conn.sleep(0.2)


def test_the_total_limit_still_cuts_a_trickling_stream_after_the_watchdog_failed_once(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process._state, "watchdog", None)  # one with no thread yet
    failed = fail_to_start_once(monkeypatch, NAME)
    server.set_default(_trickle)
    with Client(server.url + "/v1", retry=0, timeouts=Timeouts(idle=1.0, total=2.0)) as client:
        with client.stream(BODY) as first, pytest.raises(ChatStreamError) as caught:
            first.result(timeout=WAIT)
        assert failed == [NAME]
        assert caught.value.kind == "thread_limit"
        with client.stream(BODY) as second, pytest.raises(TotalTimeoutError) as cut:
            # 3x the total limit: it never waits for the trickle to end (it never does).
            second.result(timeout=6.0)
        assert cut.value.name == "total"
        assert cut.value.partial is not None and cut.value.partial.content == "Hi"

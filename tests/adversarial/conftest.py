"""Fixtures of the adversarial suite.

Two of them are autouse, so every test of the suite gets them without asking:

* ``leak_guard`` -- the **no leak** invariant: the thread count and the open file
  descriptors (``/proc/self/fd``) must be back to where they were before the test within
  :data:`LEAK_DEADLINE` seconds of its end (after the server and the clients are closed);
  and no chatstream thread may be left at all.
* ``secret_logs`` -- DEBUG logging on the root, ``urllib3`` and ``chatstream`` loggers,
  captured for the whole test; no record may contain the canary key.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatstream import Client
from tests.loopback import LoopbackServer

from .harness import busy_threads, contains_canary, make_client, open_fds, worker_threads

#: Seconds a test's threads and sockets get to go away after its end.
LEAK_DEADLINE = 3.0


@pytest.fixture(autouse=True)
def leak_guard() -> Iterator[None]:
    """Fail the test if threads or file descriptors outlive it (see the module doc)."""
    gc.collect()
    threads = busy_threads()
    fds = open_fds()
    before = _fd_targets()
    yield
    deadline = time.monotonic() + LEAK_DEADLINE
    while True:
        gc.collect()  # a stream dropped inside a traceback is freed by the collector
        now_threads, now_fds, ours = busy_threads(), open_fds(), worker_threads()
        if now_threads <= threads and now_fds <= fds and not ours:
            return
        if time.monotonic() > deadline:
            names = sorted(t.name for t in threading.enumerate())
            new = sorted(set(_fd_targets().items()) - set(before.items()))
            pytest.fail(
                f"leak: {now_threads - threads} thread(s), {now_fds - fds} file "
                f"descriptor(s) still open {LEAK_DEADLINE} s after the test; threads: "
                f"{names}; new descriptors: {new}"
            )
        time.sleep(0.01)


def _fd_targets() -> dict[str, str]:
    """What each open descriptor points to (for the leak report)."""
    targets = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return targets


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def secret_logs() -> Iterator[_Capture]:
    """Capture every log record at DEBUG; fail if one shows the canary."""
    capture = _Capture()
    names = ("", "urllib3", "chatstream")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    root = loggers[0]
    root.addHandler(capture)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    for record in capture.records:
        text = capture.format(record)
        assert not contains_canary(text), f"canary in a log record: {text[:300]}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server on 127.0.0.1, closed after the test (before the leak
    check, which is set up first)."""
    with LoopbackServer(io_timeout=10.0) as srv:
        yield srv


@pytest.fixture
def client_for() -> Iterator[Callable[..., Client]]:
    """``client_for(server_or_url, **limits)``: a client with the suite's short limits
    and the canary key (see :func:`harness.make_client`), closed after the test."""
    clients: list[Client] = []

    def factory(target: LoopbackServer | str, **options: Any) -> Client:
        url = target if isinstance(target, str) else target.url
        client = make_client(url, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(server: LoopbackServer, client_for: Callable[..., Client]) -> Client:
    """A client of ``server`` with the suite's defaults."""
    return client_for(server)

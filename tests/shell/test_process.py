"""Process-wide state (chatstream._shell.process) across ``fork()``: a child starts with
none of its parent's threads, locks, streams or pooled connections, in a bounded
subprocess over loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from chatstream import Client
from chatstream._shell import process as _process
from chatstream._shell import transport as _transport
from tests.loopback import Conn, LoopbackServer

from ..helpers import BODY, DONE, HELLO, chunk, event

PIECES = 12

SHARED_POOL_SCRIPT = """
import os, sys
import chatstream

url = sys.argv[1]
client = chatstream.Client(url + "/v1", retry=0, timeouts=chatstream.Timeouts(idle=10))

def ask(who):
    body = {"model": "m", "messages": [{"role": "user", "content": who}]}
    try:
        return client.stream(body).result(timeout=30).content
    except chatstream.ChatStreamError as error:
        return f"{error.kind}: {error}"

# Once, so that its connection goes back to the pool before the fork.
pieces = int(sys.argv[2])
warm = ask("warm") == "".join(f"warm{n};" for n in range(pieces))
outcomes = []
for round in range(3):  # parent and child send together; three tries at a collision
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    who = f"child{round}-" if pid == 0 else f"parent{round}-"
    if pid == 0:
        os.write(ready_w, b"x")
    else:
        os.read(ready_r, 1)
    got = ask(who)
    right = got == "".join(f"{who}{n};" for n in range(pieces))
    if pid == 0:
        os._exit(0 if right else 3)
    _, status = os.waitpid(pid, 0)
    outcomes.append((right, os.waitstatus_to_exitcode(status), got))
print(warm, all(o[:2] == (True, 0) for o in outcomes), outcomes)
"""


def _who_asks(conn: Conn) -> None:
    """An answer that names the request's author in every piece, paced so that two
    requests overlap."""
    who = conn.json()["messages"][0]["content"]
    conn.keep_alive = True
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    for n in range(PIECES):
        conn.write(event(chunk(f"{who}{n};")))
        conn.sleep(0.02)
    conn.write(event(chunk(finish="stop")) + DONE)
    conn.end()


def _run_script(script: str, *args: str, timeout: float = 120.0) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_forked_child_and_its_parent_each_get_their_own_answer_on_a_used_client(
    server: LoopbackServer,
) -> None:
    server.set_default(_who_asks)
    out = _run_script(SHARED_POOL_SCRIPT, server.url, str(PIECES))
    assert out.split(" ", 2)[:2] == ["True", "True"], out


def _keep_alive_hello(conn: Conn) -> None:
    conn.keep_alive = True
    conn.send_head(headers={"Content-Type": "text/event-stream"})
    conn.write(HELLO)
    conn.end()


@pytest.mark.usefixtures("no_leaks")
def test_a_session_whose_pooled_connections_were_forgotten_opens_a_new_one(
    server: LoopbackServer,
) -> None:
    server.set_default(_keep_alive_hello)
    with Client(server.url + "/v1", retry=0) as client:
        assert client.stream(BODY).result(timeout=10).content == "Hello"
        _transport.forget_pooled_connections(client.session)  # what a forked child does
        assert client.stream(BODY).result(timeout=10).content == "Hello"
    assert [r.connection_id for r in server.wait_for_requests(2)] == [0, 1]


def test_streams_are_counted_while_they_run(server: LoopbackServer) -> None:
    release = threading.Event()

    def held(conn: Conn) -> None:
        conn.send_head(headers={"Content-Type": "text/event-stream"})
        conn.write(event(chunk("Hi")))
        release.wait(10)
        conn.write(event(chunk(finish="stop")) + DONE)

    server.set_default(held)
    before = _process.running()
    with Client(server.url + "/v1", retry=0) as client:
        stream = client.stream(BODY)
        next(iter(stream))
        assert _process.running() == before + 1
        release.set()
        assert stream.result(timeout=10).content == "Hi"
        assert stream._worker.job.join(10)
    assert _process.running() == before

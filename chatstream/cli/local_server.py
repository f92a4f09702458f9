"""An HTTP server on ``127.0.0.1`` for the demo and for replays: a port the system picks,
no name lookup, quiet about clients that go away."""

from __future__ import annotations

import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LocalHTTPServer"]


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server on ``127.0.0.1``; ``server_close()`` joins its handler
    threads (whoever closes it ends their work first, so that never waits long)."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (getfqdn), which can wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is no news: stay quiet (the default prints a
        traceback)."""

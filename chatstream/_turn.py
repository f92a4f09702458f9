"""A user turn: the requests of one turn stick to the backend the first one reached."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _http

if TYPE_CHECKING:
    from .client import Client
    from .stream import ChatStream

__all__ = ["TURN_STATE_HEADER", "Turn"]

#: The response header that pins a turn to one backend (the specification's
#: sticky turn routing).
TURN_STATE_HEADER = "x-codex-turn-state"


class Turn:
    """One user turn: its requests share the backend the first response pinned.

    The first response of the turn that carries the turn-state header (see
    :data:`TURN_STATE_HEADER`) fixes its value for the turn; every later request of the
    turn sends it back, so retries and tool follow-ups reach the same backend. Set once,
    safe to share between threads. Made by :meth:`Client.turn`.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._state: str | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str | None:
        """The pinned value, or ``None`` until a response carried one."""
        return self._state

    def capture(self, value: str | None) -> None:
        """Keep ``value`` if the turn has none yet (later values are ignored, and so is a
        value that cannot be sent back as a header)."""
        if _http.usable_header_value(self.client.turn_state_header, value):
            with self._lock:
                if self._state is None:
                    self._state = value

    def stream(self, body: Mapping[str, Any], **options: Any) -> ChatStream:
        """:meth:`Client.stream`, as part of this turn."""
        return self.client.stream(body, turn=self, **options)

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing to release: the ``with`` block only marks the turn's extent."""

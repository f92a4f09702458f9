"""Arguments checked where they are given (issue 10, items 11-14): a bad value fails at
``Client(...)`` or ``client.stream(...)`` with a ConfigurationError naming it, before any
thread starts or any byte is sent."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
import responses

from chatstream import Client, ConfigurationError, Limits, StreamOptions, Timeouts
from chatstream.client import Turn
from tests.helpers import BODY

BASE = "http://api.test/v1"
URL = BASE + "/chat/completions"


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"X-Trace": 5}, "X-Trace"),
        ({"api-key": 12345}, "api-key"),
        ({"X-None": None}, "X-None"),
        ({"X-Euro": "€"}, "X-Euro"),
        ({7: "seven"}, "header name"),
    ],
)
def test_a_header_that_cannot_be_sent_fails_at_the_client_naming_it(
    headers: dict[Any, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Client(BASE, headers=headers)


@pytest.mark.parametrize("name", ["idle", "connect"])
@pytest.mark.parametrize("value", [float("inf"), 1e10, float("nan"), 0, -1.0, "30", True])
def test_a_timeout_that_is_no_usable_number_of_seconds_fails_where_it_is_given(
    name: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match=f"Timeouts.{name}"):
        Client(BASE, timeouts=Timeouts(**{name: value}))


@pytest.mark.parametrize("value", [float("inf"), 0, -1.0, "30", True])
def test_a_number_of_seconds_for_timeouts_that_is_not_usable_fails_at_the_client(
    value: Any,
) -> None:
    with pytest.raises(ConfigurationError, match="timeouts"):
        Client(BASE, timeouts=value)


@pytest.mark.parametrize("name", ["connect", "idle", "event", "total", "finish_grace"])
def test_a_timeouts_value_of_inf_fails_when_it_is_made(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Timeouts.{name}"):
        Timeouts(**{name: float("inf")})


def test_none_still_turns_a_timeout_off() -> None:
    client = Client(BASE, timeouts=Timeouts(idle=None, connect=None))
    assert client.timeouts.idle is None and client.timeouts.connect is None


@pytest.mark.parametrize("value", ["10", 0, 2.5, None, True])
def test_a_queue_size_that_is_no_whole_number_fails_at_stream(value: Any) -> None:
    threads = threading.active_count()
    with pytest.raises(ConfigurationError, match="queue_size"):
        Client(BASE).stream(BODY, options=StreamOptions(queue_size=value))
    assert threading.active_count() <= threads  # no thread started (an idle one may end)


@pytest.mark.parametrize(
    "argument", ["max_event_bytes", "max_choices", "max_tool_calls", "max_total_bytes"]
)
@pytest.mark.parametrize("value", [0, "5", 1.5, True])
def test_a_limit_that_is_no_whole_number_fails_when_the_limits_are_made(
    argument: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match=f"Limits.{argument}"):
        Limits(**{argument: value})


@pytest.mark.parametrize("argument", ["options", "limits", "connections"])
def test_a_configuration_value_of_the_wrong_type_fails_at_the_client_naming_it(
    argument: str,
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{argument} must be a "):
        Client(BASE, **{argument: {"max_choices": 2}})


@pytest.mark.parametrize("argument", ["options", "limits"])
def test_a_configuration_value_of_the_wrong_type_fails_at_stream_naming_it(
    argument: str,
) -> None:
    threads = threading.active_count()
    with pytest.raises(ConfigurationError, match=f"^{argument} must be a "):
        Client(BASE).stream(BODY, **{argument: {"max_choices": 2}})
    assert threading.active_count() <= threads  # no thread started (an idle one may end)


@pytest.mark.parametrize(
    "value",
    [datetime.datetime(2026, 1, 1), b"bytes", {"a", "set"}, float("nan"), object()],
    ids=["datetime", "bytes", "set", "nan", "object"],
)
@responses.activate
def test_a_body_that_cannot_be_json_fails_at_stream_before_any_thread(value: Any) -> None:
    threads = threading.active_count()
    with pytest.raises(ConfigurationError, match="cannot be encoded as JSON"):
        Client(BASE).stream({"model": "m", "messages": [{"role": "user", "content": value}]})
    assert threading.active_count() <= threads  # no thread started (an idle one may end)
    assert len(responses.calls) == 0


@pytest.mark.parametrize("value", ["a\nb", "a\r\n b", "\x00", "ключ"])
def test_a_turn_state_value_that_cannot_be_sent_back_is_ignored(value: str) -> None:
    turn = Turn(Client(BASE))
    turn.capture(value)
    assert turn.state is None
    turn.capture("backend-7")
    assert turn.state == "backend-7"

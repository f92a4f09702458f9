"""The configuration values (chatstream/config.py): frozen, checked when made, copied with
``replace()``; each option declared once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from chatstream import (
    Coalescing,
    ConfigurationError,
    Connections,
    Limits,
    Retry,
    StreamOptions,
    ThinkTags,
    Timeouts,
)

VALUES = [StreamOptions(), Limits(), Connections(), Timeouts(), Retry(), Coalescing(), ThinkTags()]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_configuration_value_is_frozen(value: Any) -> None:
    field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, getattr(value, field))


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_configuration_value_is_hashable_and_equal_to_its_copy(value: Any) -> None:
    assert hash(value) == hash(value.replace()) and value == value.replace()


def test_replace_changes_only_what_it_names() -> None:
    options = StreamOptions(raw_chunks=True)
    changed = options.replace(partial_json=True)
    assert changed == StreamOptions(raw_chunks=True, partial_json=True)
    assert options == StreamOptions(raw_chunks=True)


def test_replace_checks_the_new_value() -> None:
    with pytest.raises(ConfigurationError, match=r"Limits\.max_choices"):
        Limits().replace(max_choices=0)


def test_the_defaults_are_the_documented_ones() -> None:
    assert Limits() == Limits(
        max_event_bytes=16 * 1024 * 1024, max_choices=128, max_tool_calls=1024
    )
    assert Limits().max_total_bytes is None
    assert StreamOptions().queue_size == 1600
    assert StreamOptions().api == "chat"
    switches = {k: v for k, v in vars(StreamOptions()).items() if k not in {"queue_size", "api"}}
    assert not any(switches.values())  # every switch is off by default


def test_max_total_bytes_none_is_no_limit_and_the_others_need_a_number() -> None:
    assert Limits(max_total_bytes=None).max_total_bytes is None
    with pytest.raises(ConfigurationError, match=r"Limits\.max_choices"):
        Limits(max_choices=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["length_is_error", "drop_tool_calls_on_stop", "raw_chunks", "partial_json", "text_tool_calls"],
)
@pytest.mark.parametrize("value", [1, "yes", None])
def test_a_switch_that_is_not_a_bool_fails_naming_it(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"StreamOptions\.{name}"):
        StreamOptions(**{name: value})


def test_think_tags_true_means_the_default_tags() -> None:
    assert StreamOptions(think_tags=True) == StreamOptions(think_tags=ThinkTags())
    assert StreamOptions(think_tags=True).think_tags == ThinkTags()


@pytest.mark.parametrize("value", ["think", ("think",), 1])
def test_think_tags_of_another_type_fail_naming_the_field(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"StreamOptions\.think_tags"):
        StreamOptions(think_tags=value)


def test_think_tag_names_given_as_a_list_are_kept_as_a_tuple() -> None:
    assert ThinkTags(names=["reflect"]).names == ("reflect",)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "8"])
def test_a_queue_size_that_is_no_whole_number_of_at_least_one_fails(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"StreamOptions\.queue_size"):
        StreamOptions(queue_size=value)


def test_connections_keep_paths_as_strings(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here")
    connections = Connections(verify=bundle, cert=[bundle, bundle])  # type: ignore[arg-type]
    assert connections.verify == str(bundle)
    assert connections.cert == (str(bundle), str(bundle))
    assert connections == Connections(verify=str(bundle), cert=(str(bundle), str(bundle)))

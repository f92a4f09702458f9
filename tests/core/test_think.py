"""Think tags in the content, moved to reasoning, whatever the chunking (sans-I/O)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatstream import ConfigurationError, StreamOptions, StreamParser, ThinkTags
from chatstream.core.think import ThinkSplitter

from ..helpers import CORPUS, build_body, chunk

RECORDING = CORPUS / "llamacpp-server-think-tags-in-content.sse"


def content_deltas(body: bytes) -> list[str]:
    """The content deltas of a recorded body, in order."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                text = (choice.get("delta") or {}).get("content")
                if text:
                    out.append(text)
    return out


def rechunked(text: str, rng: random.Random) -> bytes:
    """A body carrying ``text`` as content deltas of 1 to 9 characters, then a stop."""
    pieces, i = [], 0
    while i < len(text):
        step = rng.randint(1, 9)
        pieces.append(text[i : i + step])
        i += step
    return build_body([*(chunk(p) for p in pieces), chunk(finish="stop")], done=True)


def split_and_reasoning(body: bytes, think_tags: bool | ThinkTags = True) -> tuple[str, str]:
    parser = StreamParser(options=StreamOptions(think_tags=think_tags))
    parser.feed(body)
    parser.close()
    response = parser.result()
    return response.content, response.reasoning


def test_the_recording_moves_its_think_block_to_reasoning() -> None:
    assert split_and_reasoning(RECORDING.read_bytes()) == (
        "Yes, the sky is blue.",
        "is the sky blue",
    )


def test_without_the_option_the_recording_is_left_as_it_was_sent() -> None:
    parser = StreamParser()
    parser.feed(RECORDING.read_bytes())
    parser.close()
    assert parser.result().content.startswith("<think>is the sky blue</think>")


@settings(max_examples=40)
@given(st.randoms(use_true_random=False))
def test_the_recording_rechunked_in_1_to_9_characters_gives_the_same_result(
    rng: random.Random,
) -> None:
    text = "".join(content_deltas(RECORDING.read_bytes()))
    assert split_and_reasoning(rechunked(text, rng)) == (
        "Yes, the sky is blue.",
        "is the sky blue",
    )


@settings(max_examples=40)
@given(st.integers(0, 2**32))
def test_the_recordings_bytes_split_in_1_to_9_bytes_give_the_same_result(seed: int) -> None:
    rng = random.Random(seed)
    body = RECORDING.read_bytes()
    parser = StreamParser(options=StreamOptions(think_tags=True))
    i = 0
    while i < len(body):
        step = rng.randint(1, 9)
        parser.feed(body[i : i + step])
        i += step
    parser.close()
    assert (parser.result().content, parser.result().reasoning) == (
        "Yes, the sky is blue.",
        "is the sky blue",
    )


@settings(max_examples=40)
@given(st.randoms(use_true_random=False))
def test_an_implicit_opener_rechunked_anyhow_gives_the_same_result(rng: random.Random) -> None:
    body = rechunked("The user greets me.</think>\n\nHello!", rng)
    result = split_and_reasoning(body, think_tags=ThinkTags(starts_inside=True))
    assert result == ("Hello!", "The user greets me.")


def split(text: str, tags: ThinkTags, sizes: list[int]) -> list[tuple[bool, str]]:
    splitter = ThinkSplitter(tags)
    out: list[tuple[bool, str]] = []
    i = 0
    for size in sizes:
        out += splitter.feed(text[i : i + size])
        i += size
    out += splitter.feed(text[i:]) + splitter.flush()
    merged: list[tuple[bool, str]] = []
    for reasoning, piece in out:
        if merged and merged[-1][0] == reasoning:
            merged[-1] = (reasoning, merged[-1][1] + piece)
        else:
            merged.append((reasoning, piece))
    return merged


def test_a_thinking_block_ends_only_at_its_own_closing_tag() -> None:
    assert split("<thinking>a</think>b</thinking>c", ThinkTags(), [3, 7]) == [
        (True, "a</think>b"),
        (False, "c"),
    ]


def test_tag_names_are_configurable() -> None:
    tags = ThinkTags(names=("reasoning",))
    assert split("<reasoning>y</reasoning><think>x</think>z", tags, [2]) == [
        (True, "y"),
        (False, "<think>x</think>z"),
    ]


def test_an_unfinished_tag_at_the_end_is_text() -> None:
    assert split("a <thin", ThinkTags(), [4]) == [(False, "a <thin")]


def test_an_unclosed_block_at_the_end_is_reasoning() -> None:
    assert split("<think>still going", ThinkTags(), [9]) == [(True, "still going")]


def test_text_like_a_tag_that_is_not_one_is_not_held_forever() -> None:
    splitter = ThinkSplitter(ThinkTags())
    assert splitter.feed("a <b") == [(False, "a <b")]


@pytest.mark.parametrize("names", [(), ("",), ("a>b",), ("x/y",)])
def test_a_bad_tag_name_is_a_configuration_error(names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match=r"ThinkTags\.names"):
        ThinkTags(names=names)


def test_text_held_back_when_a_stream_fails_is_kept_in_the_partial_result() -> None:
    body = build_body([{"choices": [{"delta": {"content": "<think>hm</think>So <thi"}}]}])
    parser = StreamParser(options=StreamOptions(think_tags=True))
    parser.feed(body)
    parser.close()
    assert parser.error is not None and parser.error.partial is not None
    assert (parser.error.partial.reasoning, parser.error.partial.content) == ("hm", "So <thi")


# --- a block opens only at the start (issue 20, item 3) ----------------------------------

SENTENCE = "Some models wrap their reasoning in <think> tags. The answer is 42."


def every_split(text: str) -> list[list[int]]:
    return [[i] for i in range(1, len(text))] + [[1] * len(text)]


@pytest.mark.parametrize("sizes", every_split(SENTENCE))
def test_a_think_tag_in_the_middle_of_an_answer_is_text_at_every_split(sizes: list[int]) -> None:
    assert split(SENTENCE, ThinkTags(), sizes) == [(False, SENTENCE)]


def test_a_think_tag_in_the_middle_of_an_answer_stays_in_the_content() -> None:
    body = build_body([chunk(SENTENCE[:40]), chunk(SENTENCE[40:]), chunk(finish="stop")], done=True)
    assert split_and_reasoning(body) == (SENTENCE, "")


def test_a_second_block_after_the_answer_started_is_text() -> None:
    text = "<think>a</think>B <think>c</think> d"
    assert split(text, ThinkTags(), [9]) == [(True, "a"), (False, "B <think>c</think> d")]


def test_after_an_implicit_opener_a_later_block_is_text() -> None:
    tags = ThinkTags(starts_inside=True)
    text = "r</think>Answer <think>x</think>"
    assert split(text, tags, [3]) == [(True, "r"), (False, "Answer <think>x</think>")]


@pytest.mark.parametrize("sizes", every_split("\n <think>a</think>b"))
def test_a_block_may_open_after_leading_whitespace(sizes: list[int]) -> None:
    assert split("\n <think>a</think>b", ThinkTags(), sizes) == [(True, "a"), (False, "b")]


def test_text_after_the_start_is_not_held_back_for_a_possible_tag() -> None:
    splitter = ThinkSplitter(ThinkTags())
    assert splitter.feed("Hi <thi") == [(False, "Hi <thi")]

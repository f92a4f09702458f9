"""Smooth text: text deltas re-chunked by word or line, at a pace (pure)."""

from __future__ import annotations

import random

import pytest

import chatstream
from chatstream import (
    ChatStreamError,
    Completed,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
)
from chatstream.events import Message, OutputText, ResponseEvent
from chatstream.smooth import Smoother, smooth

from .helpers import build_body, chunk

TEXT = "  Hello,  world!\nThis is\tfine \n\nend"


def pieces(text: str, by: str, rng: random.Random) -> list[str]:
    smoother = Smoother(by)  # type: ignore[arg-type]
    out: list[str] = []
    i = 0
    while i < len(text):
        step = rng.randint(1, 6)
        out += smoother.feed(text[i : i + step])
        i += step
    return out + smoother.flush()


@pytest.mark.parametrize("seed", range(20))
def test_words_are_a_word_and_its_whitespace_however_the_text_was_cut(seed: int) -> None:
    assert pieces(TEXT, "word", random.Random(seed)) == [
        "  ",
        "Hello,  ",
        "world!\n",
        "This ",
        "is\t",
        "fine \n\n",
        "end",
    ]


@pytest.mark.parametrize("seed", range(20))
def test_lines_end_at_a_line_break_however_the_text_was_cut(seed: int) -> None:
    assert pieces(TEXT, "line", random.Random(seed)) == [
        "  Hello,  world!\n",
        "This is\tfine \n",
        "\n",
        "end",
    ]


def test_an_unknown_chunking_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Smoother("sentence")  # type: ignore[arg-type]


def events() -> list[ResponseEvent]:
    return [
        ReasoningContentDelta("hm"),
        OutputTextDelta("Hel"),
        OutputTextDelta("lo wo", choice_index=1),
        OutputTextDelta("lo there wor"),
        OutputItemDone(Message(content=[OutputText("Hello there wor")])),
        OutputTextDelta("ld", choice_index=1),
        Completed(),
    ]


def test_text_deltas_are_rechunked_and_held_text_comes_before_the_next_other_event() -> None:
    out = [
        (type(e).__name__, getattr(e, "delta", None), getattr(e, "choice_index", None))
        for e in smooth(events())
    ]
    assert out == [
        ("ReasoningContentDelta", "hm", 0),
        ("OutputTextDelta", "lo ", 1),
        ("OutputTextDelta", "Hello ", 0),
        ("OutputTextDelta", "there ", 0),
        ("OutputTextDelta", "wor", 0),
        ("OutputTextDelta", "wo", 1),
        ("OutputItemDone", None, 0),
        ("OutputTextDelta", "ld", 1),
        ("Completed", None, None),
    ]


def test_a_pace_waits_between_the_pieces_of_one_burst() -> None:
    waits: list[float] = []
    deltas = [OutputTextDelta("one two three four")]
    out = [e.delta for e in smooth(deltas, delay=0.05, sleep=waits.append)]  # type: ignore[union-attr]
    assert out == ["one ", "two ", "three ", "four"]
    assert waits == [0.05, 0.05]


def test_without_a_pace_nothing_waits() -> None:
    def never(seconds: float) -> None:
        raise AssertionError("slept")

    assert len(list(smooth([OutputTextDelta("a b c")], sleep=never))) == 3


def test_the_text_held_back_is_shown_when_the_stream_fails() -> None:
    # Cut off mid-word: the stream fails with the text so far in its partial response.
    body = build_body([chunk("Hello wor"), chunk("ld, and mo")])
    shown = ""
    with pytest.raises(ChatStreamError) as caught:
        for event in smooth(chatstream.iter_events([body])):
            if isinstance(event, OutputTextDelta):
                shown += event.delta
    partial = caught.value.partial
    assert partial is not None
    assert shown == partial.content == "Hello world, and mo"

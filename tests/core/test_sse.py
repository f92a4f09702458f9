"""SSEDecoder: bytes in, SSE messages out, whatever the line endings and however the
bytes are split (reliability.md §1 and §4 A.1-A.6, A.10-A.12); and its shortcut for
one-line ``data:`` events gives what sseclient-py gives."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from chatstream import EventTooLargeError
from chatstream.core import sse as _sse
from chatstream.core.sse import SSEDecoder, SSEMessage, _parse_lines

from ..helpers import examples

BOM = b"\xef\xbb\xbf"


def decode(pieces: Iterable[bytes], **options: int) -> list[SSEMessage]:
    """Every message the decoder gives for ``pieces``, including at close()."""
    decoder = SSEDecoder(**options)
    messages: list[SSEMessage] = []
    for piece in pieces:
        messages += decoder.feed(piece)
    return messages + decoder.close()


def one_byte_at_a_time(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def msg(data: str, event: str = "message") -> SSEMessage:
    return SSEMessage(event, data)


# --- line endings ----------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_style_frames_the_same_events(eol: bytes) -> None:
    body = eol.join([b"data: a", b"", b"event: x", b"data: b", b"data: c", b"", b""])
    assert decode([body]) == [msg("a"), msg("b\nc", "x")]


@pytest.mark.parametrize(
    "body",
    [
        b"data: a\n\r\ndata: b\n\n",  # LF line, CRLF blank line
        b"data: a\r\r\ndata: b\n\n",  # CR line, CRLF blank line
        b"data: a\r\n\ndata: b\r\r",  # CRLF line, LF blank line; then CR, CR
        b"data: a\r\n\rdata: b\n\r",  # CRLF line, CR blank line; then LF, CR
    ],
    ids=["LF+CRLF", "CR+CRLF", "CRLF+LF", "CRLF+CR"],
)
def test_mixed_line_endings_still_end_each_event(body: bytes) -> None:
    # Plain sseclient-py merges the first two into one event "a\nb" (reliability.md §1.1).
    assert decode([body]) == [msg("a"), msg("b")]
    assert decode(one_byte_at_a_time(body)) == [msg("a"), msg("b")]


def test_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    # Were the LF taken as a second line ending, the blank line would end the event early.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [msg("a\nb")]


def test_crlf_blank_line_split_between_cr_and_lf_ends_the_event_once() -> None:
    assert decode([b"data: a\r\n\r", b"\ndata: b\r\n\r\n"]) == [msg("a"), msg("b")]


def test_event_completed_by_a_cr_is_delivered_before_the_next_piece() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [msg("a")]
    assert decoder.feed(b"\ndata: b\r\r") == [msg("b")]


def test_an_empty_piece_between_cr_and_lf_changes_nothing() -> None:
    # Regression: an empty feed used to forget the pending CR, so the LF after it became
    # a second line ending and split the event in two.
    assert decode([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == [msg("a\nb")]


# --- split invariance ------------------------------------------------------------------

SPLIT_BODY = (
    BOM + b": keep-alive\r\n\r\n"
    b'event: message\ndata: {"text": "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80"}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"data:x\rdata:  y\r\r"
    b'event: error\ndata: {"error": "bad \xff byte"}\n\r\n'
    b"data: tail"
)
SPLIT_EXPECTED = [
    msg('{"text": "你好 😀"}'),
    msg("line one\nline two"),
    msg("x\n y"),
    msg('{"error": "bad \ufffd byte"}', "error"),
    msg("tail"),
]


def test_whole_body_gives_the_expected_messages() -> None:
    assert decode([SPLIT_BODY]) == SPLIT_EXPECTED


def test_one_byte_at_a_time_gives_the_same_messages() -> None:
    assert decode(one_byte_at_a_time(SPLIT_BODY)) == SPLIT_EXPECTED


@pytest.mark.parametrize("cut", range(1, len(SPLIT_BODY)))
def test_a_cut_at_any_index_gives_the_same_messages(cut: int) -> None:
    assert decode([SPLIT_BODY[:cut], SPLIT_BODY[cut:]]) == SPLIT_EXPECTED


@settings(max_examples=examples(50), deadline=None)
@given(cuts=st.sets(st.integers(1, len(SPLIT_BODY) - 1), max_size=40))
def test_any_set_of_cuts_gives_the_same_messages(cuts: set[int]) -> None:
    bounds = [0, *sorted(cuts), len(SPLIT_BODY)]
    pieces = [SPLIT_BODY[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(pieces) == SPLIT_EXPECTED


@pytest.mark.parametrize("text", ["é", "你", "😀", "a😀b你好"])
def test_a_multibyte_character_split_across_pieces_is_kept_whole(text: str) -> None:
    body = f"data: {text}\n\n".encode()
    start = len(b"data: ")
    for cut in range(start + 1, start + len(text.encode())):
        assert decode([body[:cut], body[cut:]]) == [msg(text)]
    assert decode(one_byte_at_a_time(body)) == [msg(text)]


# --- byte order mark and invalid UTF-8 -------------------------------------------------


def test_a_leading_bom_is_stripped_and_the_first_event_kept() -> None:
    assert decode([BOM + b"data: a\n\ndata: b\n\n"]) == [msg("a"), msg("b")]


def test_a_leading_bom_arriving_one_byte_at_a_time_is_stripped() -> None:
    assert decode([b"\xef", b"\xbb", b"\xbf", b"data: a\n\n"]) == [msg("a")]
    assert decode(one_byte_at_a_time(BOM + b"data: a\n\n")) == [msg("a")]


def test_a_bom_after_the_first_bytes_is_not_stripped() -> None:
    # Only the stream's first bytes may be a BOM; later it is part of a line, here of a
    # field name that does not exist, so that line is ignored.
    assert decode([b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n"]) == [msg("a"), msg("c")]


def test_a_body_that_is_only_part_of_a_bom_gives_nothing() -> None:
    assert decode([b"\xef\xbb"]) == []


def test_a_body_starting_like_a_bom_but_not_one_keeps_its_bytes() -> None:
    assert decode([b"\xef", b"data: a\n\n"]) == []  # "\ufffddata" is no field
    assert decode([b"\xef\xbb", b"\n\ndata: a\n\n"]) == [msg("a")]


def test_invalid_utf8_is_replaced_and_later_events_still_arrive() -> None:
    body = b"data: a\xff\xfeb\n\ndata: after\n\n"
    assert decode([body]) == [msg("a\ufffd\ufffdb"), msg("after")]
    assert decode(one_byte_at_a_time(body)) == [msg("a\ufffd\ufffdb"), msg("after")]


def test_a_truncated_multibyte_character_at_close_is_replaced() -> None:
    assert decode([b"data: a\xe4\xbd"]) == [msg("a\ufffd")]


# --- field parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b": ping\n\n", b":\n\n", b": keep-alive\r\n\r\n", b": a\n: b\n\n", b"\n\n\n\n", b""],
)
def test_comments_and_keep_alives_produce_no_message(body: bytes) -> None:
    assert decode([body]) == []


def test_a_comment_inside_an_event_is_ignored() -> None:
    assert decode([b"data: a\n: note\ndata: b\n\n"]) == [msg("a\nb")]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert decode([b'data: {"a":\ndata: 1}\n\n']) == [msg('{"a":\n1}')]


def test_data_without_a_space_after_the_colon() -> None:
    assert decode([b"data:x\n\n"]) == [msg("x")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert decode([b"data:  x\n\n"]) == [msg(" x")]


def test_an_empty_data_line_is_dispatched_with_empty_data() -> None:
    assert decode([b"data:\n\n"]) == [msg("")]
    assert decode([b"data\n\n"]) == [msg("")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode([b"event: ping\n\nid: 3\nretry: 10\n\n"]) == []


def test_the_event_type_is_carried_and_defaults_to_message() -> None:
    body = b"event: error\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n"
    assert decode([body]) == [msg("a", "error"), msg("b"), msg("c")]


def test_unknown_fields_and_id_and_retry_do_not_change_the_data() -> None:
    assert decode([b"id: 7\nretry: 100\nfoo: bar\ndata: a\n\n"]) == [msg("a")]


# --- end of input ----------------------------------------------------------------------


def test_the_last_event_without_its_blank_line_is_delivered_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [msg("a")]
    assert decoder.close() == [msg("b")]


def test_a_last_event_ending_mid_line_is_delivered_at_close() -> None:
    assert decode([b'data: {"x":']) == [msg('{"x":')]


def test_close_after_a_complete_event_gives_nothing_more() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [msg("a")]
    assert decoder.close() == []


# --- size limit ------------------------------------------------------------------------


def test_an_event_of_exactly_the_limit_is_accepted() -> None:
    body = b"data: " + b"x" * 94 + b"\n\n"  # 100 bytes with its line ending
    assert decode([body], max_event_bytes=101) == [msg("x" * 94)]


def test_an_event_over_the_limit_in_one_piece_raises() -> None:
    body = b"data: " + b"x" * 200 + b"\n\n"
    with pytest.raises(EventTooLargeError) as caught:
        decode([body], max_event_bytes=100)
    assert caught.value.limit == 100
    assert caught.value.kind == "event_too_large"


def test_an_event_over_the_limit_in_small_pieces_raises_before_much_more_is_buffered() -> None:
    limit, piece = 1000, 16
    decoder = SSEDecoder(max_event_bytes=limit)
    fed = 0
    with pytest.raises(EventTooLargeError):
        for data in [b"data: "] + [b"y" * piece] * 1000:
            fed += len(data)
            decoder.feed(data)
    # Raised by the first piece that took the pending event past the limit: never more
    # than the limit plus one piece was held.
    assert limit < fed <= limit + piece


def test_an_unterminated_event_over_the_limit_raises_even_without_line_breaks() -> None:
    with pytest.raises(EventTooLargeError):
        decode([b"data: " + b"z" * 50] * 3, max_event_bytes=100)


def test_the_limit_applies_to_each_event_not_to_the_stream() -> None:
    body = b"data: 0123456789\n\n" * 100
    assert len(decode([body], max_event_bytes=40)) == 100


def test_a_ten_megabyte_event_in_128_byte_pieces_arrives_intact() -> None:
    # Linear framing: this completes quickly (benchmarks/bench_core.py has the timings;
    # plain sseclient-py copies the whole buffer on every piece).
    payload = (b"0123456789abcdef" * (10 * 1024 * 1024 // 16))[: 10 * 1000 * 1000]
    body = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder()
    messages: list[SSEMessage] = []
    for i in range(0, len(body), 128):
        messages += decoder.feed(body[i : i + 128])
    assert decoder.close() == []
    assert len(messages) == 1
    assert messages[0].data == payload.decode()


def test_an_event_of_many_data_lines_arrives_intact() -> None:
    # 200 000 data lines: sseclient-py's own parser would copy the growing data once per
    # line (quadratic); chatstream parses such an event in linear time.
    body = b"data: x\n" * 200_000 + b"\n"
    messages = decode([body])
    assert messages == [msg("\n".join(["x"] * 200_000))]


def test_the_lines_of_a_large_event_are_parsed_as_they_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # So that each piece costs time in proportion to its size, never to the event's:
    # a process reading many streams parses a piece of each in turn.
    parsed: list[int] = []
    read_fields = _sse._read_fields

    def recording(block: bytes, fields: _sse._Fields) -> None:
        parsed.append(len(block))
        read_fields(block, fields)

    monkeypatch.setattr(_sse, "_read_fields", recording)
    body = b"event: big\n" + b"data: x\n" * 100_000 + b"\n"
    piece = 1000
    messages = decode([body[i : i + piece] for i in range(0, len(body), piece)])
    assert messages == [msg("\n".join(["x"] * 100_000), "big")]
    assert sum(parsed) == len(body) - 2  # every line once (the event ends at "\n\n")
    assert max(parsed) <= _sse.PARSE_AHEAD + piece


@settings(max_examples=examples(50), deadline=None)
@given(cuts=st.sets(st.integers(1, len(SPLIT_BODY) - 1), max_size=40))
def test_events_parsed_ahead_line_by_line_give_the_same_messages(cuts: set[int]) -> None:
    bounds = [0, *sorted(cuts), len(SPLIT_BODY)]
    pieces = [SPLIT_BODY[a:b] for a, b in itertools.pairwise(bounds)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sse, "PARSE_AHEAD", 0)  # every whole line is parsed on arrival
        assert decode(pieces) == SPLIT_EXPECTED


def test_an_event_parsed_ahead_is_still_held_to_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sse, "PARSE_AHEAD", 0)
    with pytest.raises(EventTooLargeError):
        decode([b"data: x\n" * 20, b"data: y\n\n"], max_event_bytes=165)
    assert decode([b"data: x\n" * 20, b"data: y\n\n"], max_event_bytes=170) == [
        msg("\n".join(["x"] * 20 + ["y"]))
    ]


# --- the field parser agrees with sseclient-py, its oracle ---------------------------------

_LINES = st.lists(
    st.one_of(
        st.sampled_from(["data", "data:", "data: ", "event:", "event", ":", ": c", " ", "\x0c"]),
        st.builds(
            lambda field, sep, value: field + sep + value,
            st.sampled_from(["data", "event", "id", "retry", "foo", "Data", " data", ""]),
            st.sampled_from([":", ": ", ":  ", ""]),
            st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")),
        ),
    ),
    max_size=40,
)


@settings(max_examples=examples(50), deadline=None)
@given(lines=_LINES)
def test_the_field_parser_applies_the_same_rules_as_sseclient(lines: list[str]) -> None:
    assume("" not in lines)  # a blank line ends an event: the decoder never passes one on
    block = "\n".join(lines).encode()
    expected = [SSEMessage(e.event, e.data) for e in SSEClient(iter([block + b"\n\n"])).events()]
    assert ([] if (got := _parse_lines(block)) is None else [got]) == expected


# --- the shortcut for one-line data: events, against sseclient-py ----------------------------


# Line content: any bytes but line breaks, weighted towards what the shortcut looks at
# (spaces after the colon, colons, invalid UTF-8).
_LINE = st.lists(
    st.sampled_from([b" ", b":", b"x", b"\xc3\xa9", b"\xc3", b"\xff", b"\xe6\x9d\xb1", b"\t"])
    | st.binary(max_size=4).filter(lambda b: b"\n" not in b and b"\r" not in b),
    max_size=12,
).map(b"".join)


def _sseclient(block: bytes) -> list[SSEMessage]:
    repaired = block.decode("utf-8", "replace").encode("utf-8")
    events = SSEClient(iter([repaired + b"\n\n"])).events()
    return [SSEMessage(e.event, e.data) for e in events]


@given(st.sampled_from([b"data:", b"data: ", b"data:  ", b"data", b"event:", b":"]), _LINE)
@example(b"data: ", b"")
@example(b"data:", b" \xff")
@example(b"data: ", b"[DONE]")
def test_a_one_line_event_gives_what_sseclient_gives(field: bytes, value: bytes) -> None:
    block = field + value
    assert SSEDecoder().feed(block + b"\n\n") == _sseclient(block)


@given(_LINE, st.integers(min_value=1, max_value=20))
def test_a_one_line_event_split_anywhere_gives_the_same_message(value: bytes, cut: int) -> None:
    body = b"data: " + value + b"\n\n"
    decoder = SSEDecoder()
    messages = decoder.feed(body[:cut]) + decoder.feed(body[cut:]) + decoder.close()
    assert messages == _sseclient(b"data: " + value)

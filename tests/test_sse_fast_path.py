"""The decoder's shortcut for one-line ``data:`` events gives what sseclient-py gives."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from sseclient import SSEClient

from chatstream.core.sse import SSEDecoder, SSEMessage

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

"""The Responses API corpus (rules v3): real streams, each against its expected result,
fed whole, split at every position, in random pieces, and over loopback."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from chatstream import ChatStreamError, Client, StreamOptions

from .helpers import (
    RESPONSES_CORPUS,
    TIMEOUTS,
    comparable,
    corpus,
    corpus_names,
    expectation,
    random_splits,
    result_of,
)
from .loopback import BodyMode, LoopbackServer, sse_body

NAMES = corpus_names(RESPONSES_CORPUS)
#: Streams short enough to be cut at every byte in a test's time.
SHORT = [n for n in NAMES if (RESPONSES_CORPUS / f"{n}.sse").stat().st_size <= 4_000]
MODES: list[BodyMode] = ["chunked", "close"]
BODY = {"model": "m", "input": "hi"}


def _body(name: str) -> bytes:
    return (RESPONSES_CORPUS / f"{name}.sse").read_bytes()


def _want(name: str) -> dict[str, object]:
    return comparable(expectation(name, RESPONSES_CORPUS))


def test_manifest_lists_every_recording() -> None:
    on_disk = sorted(p.stem for p in RESPONSES_CORPUS.glob("*.sse"))
    assert sorted(NAMES) == on_disk
    for row in corpus(RESPONSES_CORPUS):
        assert row["license"], f"{row['file']} has no licence in MANIFEST.tsv"
        assert row["source_repository"], f"{row['file']} has no source in MANIFEST.tsv"
        assert (RESPONSES_CORPUS / row["file"].replace(".sse", ".expect.json")).exists()


@pytest.mark.parametrize("name", NAMES)
def test_stream_gives_its_expected_result(name: str) -> None:
    assert comparable(result_of([_body(name)], api="responses")) == _want(name)


@pytest.mark.parametrize("name", SHORT)
def test_stream_split_at_every_position_gives_its_expected_result(name: str) -> None:
    body = _body(name)
    want = _want(name)
    for cut in range(1, len(body)):
        got = comparable(result_of([body[:cut], body[cut:]], api="responses"))
        assert got == want, f"{name} cut at byte {cut}"


@pytest.mark.parametrize("name", NAMES)
def test_stream_in_random_pieces_gives_its_expected_result(name: str) -> None:
    body = _body(name)
    rng = random.Random(name)
    for _ in range(3):
        pieces = random_splits(body, rng, max_piece=rng.choice([3, 17, 200]))
        assert comparable(result_of(pieces, api="responses")) == _want(name)


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(io_timeout=10.0) as server:
        for mode in MODES:
            for name in NAMES:
                handler = sse_body(_body(name), mode=mode, split=True, seed=len(name))
                server.route(f"/{mode}/{name}/responses", handler)
        yield server


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_stream_over_loopback_gives_its_expected_result(
    corpus_server: LoopbackServer, name: str, mode: BodyMode
) -> None:
    client = Client(f"{corpus_server.url}/{mode}/{name}", "sk-test", timeouts=TIMEOUTS)
    with client, client.stream(BODY, options=StreamOptions(api="responses")) as stream:
        try:
            response = stream.result(timeout=10.0)
        except ChatStreamError as error:  # compared below, through the partial
            assert error.partial is not None
            response = error.partial
    assert corpus_server.requests[-1].path == f"/{mode}/{name}/responses"
    assert comparable(response.to_result_dict()) == _want(name)

"""The conformance corpus: real provider streams, each against its expected result."""

from __future__ import annotations

import pytest

from .helpers import CORPUS, comparable, corpus, corpus_names, expectation, result_of

NAMES = corpus_names()


def test_manifest_lists_every_recording() -> None:
    on_disk = sorted(p.stem for p in CORPUS.glob("*.sse"))
    assert sorted(NAMES) == on_disk
    for row in corpus():
        assert row["license"], f"{row['file']} has no licence in MANIFEST.tsv"
        assert row["source_repository"], f"{row['file']} has no source in MANIFEST.tsv"


@pytest.mark.parametrize("name", NAMES)
def test_stream_gives_its_expected_result(name: str) -> None:
    body = (CORPUS / f"{name}.sse").read_bytes()
    assert comparable(result_of([body])) == comparable(expectation(name))

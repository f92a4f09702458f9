"""The docs cite evidence: every corpus stream and test docs/providers.rst names exists,
and every test file the docs name by its path.

docs/providers.rst proves each provider quirk with a recorded stream from
tests/data/conformance/ or, where no recording shows it, with a named test. These tests
fail when a recording or a test is renamed or removed without the page following.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = (ROOT / "docs" / "providers.rst").read_text(encoding="utf-8")
CORPUS = ROOT / "tests" / "data" / "conformance"
TESTS = ROOT / "tests"

# ``openai-plain-text``: a literal with at least two dash-joined lowercase words.
STREAMS = sorted(set(re.findall(r"``([a-z0-9]+(?:-[a-z0-9]+)+)``", PROVIDERS)))
TEST_NAMES = sorted(set(re.findall(r"``(test_\w+)``", PROVIDERS)))


def test_the_page_cites_streams_and_tests() -> None:
    assert len(STREAMS) > 20
    assert len(TEST_NAMES) > 10


@pytest.mark.parametrize("stream", STREAMS)
def test_every_cited_stream_is_in_the_corpus(stream: str) -> None:
    assert (CORPUS / f"{stream}.sse").is_file(), f"{stream}.sse is not in {CORPUS}"
    assert (CORPUS / f"{stream}.expect.json").is_file()


@pytest.mark.parametrize("name", TEST_NAMES)
def test_every_cited_test_is_defined(name: str) -> None:
    pattern = re.compile(rf"^def {name}\(", re.MULTILINE)
    assert any(
        pattern.search(path.read_text(encoding="utf-8")) for path in TESTS.rglob("test_*.py")
    ), f"{name} is cited by docs/providers.rst but no test defines it"


# Every test file the docs, the package's docstrings and the CI script name, by its path.
NAMED_FILES = sorted(
    {
        match
        for path in [
            *ROOT.joinpath("docs").glob("*.rst"),
            *ROOT.joinpath("chatstream").rglob("*.py"),
            ROOT / "README.rst",
            ROOT / ".ci" / "run",
            ROOT / "noxfile.py",
        ]
        if path.is_file()
        for match in re.findall(r"\btests/[\w/]+\.py\b", path.read_text(encoding="utf-8"))
    }
)


def test_the_docs_name_test_files() -> None:
    assert len(NAMED_FILES) > 10


@pytest.mark.parametrize("name", NAMED_FILES)
def test_every_test_file_named_exists(name: str) -> None:
    assert (ROOT / name).is_file(), f"{name} is named but does not exist"

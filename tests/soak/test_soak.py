"""The short soak in the test suite: a few hundred streams in seconds (the long one is
run by hand: ``python -m tests.soak.soak``, see ``docs/reliability.rst``)."""

from __future__ import annotations

from .soak import soak


def test_a_few_hundred_streams_leave_nothing_behind() -> None:
    report = soak(streams=300, seed=1)
    assert report.wrong == []
    assert report.streams == 300
    assert report.ok(max_rss_growth=16 * 2**20), report.growth

"""Tests of ``chatstream.cli``, a file per module (``test_<module>.py``)."""

"""Tests of ``chatstream.core``, a file per module (``test_<module>.py``)."""

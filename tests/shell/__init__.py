"""Tests of ``chatstream._shell``, a file per module (``test_<module>.py``)."""

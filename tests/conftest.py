"""Test configuration shared by every test module."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Hypothesis: random (not derandomized, so every run explores new inputs) but bounded, so
# that the whole suite stays fast. A property's own @settings(max_examples=...) narrows
# this further. HYPOTHESIS_PROFILE=thorough runs far more examples by hand.
settings.register_profile(
    "chatstream",
    max_examples=50,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("chatstream"),
    max_examples=2000,  # 40 times each property's own budget
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "chatstream"))

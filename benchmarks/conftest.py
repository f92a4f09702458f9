"""The benchmarks are scripts run by hand, never tests: keep pytest from collecting or
importing them (``--doctest-modules`` would import every module it is pointed at)."""

collect_ignore_glob = ["*.py"]

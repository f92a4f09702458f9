"""The package version, in one place (read by setup.cfg and docs/conf.py)."""

__version__ = "0.1.0"

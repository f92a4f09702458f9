"""Sessions for contributors and CI: ``nox`` runs them all, ``nox -s tests-3.12`` one.

* ``tests-3.10`` ... ``tests-3.13``: the test suite on each supported Python. The slow
  parts (the adversarial suite over real sockets, with its fuzzing, and the soak) run on
  one version only (3.11): they exercise chatstream's own logic, which does not change
  from one Python to the next, and they would multiply CI's time by four.
  ``CHATSTREAM_FULL=1`` runs them on every version; ``CHATSTREAM_QUICK=1`` on none (CI
  sets it: it has just run the whole suite with the README's command).
* ``lint``: ``mypy --strict``, ``ruff check`` and ``ruff format --check``.
* ``docs``: ``sphinx-build -W`` (warnings are errors); the doc examples run as doctests
  in the test sessions.

An interpreter that is not found is skipped (nox's default); CI asks for all four with
``--error-on-missing-interpreters``.
"""

from __future__ import annotations

import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The version that also runs the slow parts (fuzzing, the soak).
FULL_PYTHON = "3.11"

nox.options.sessions = [*(f"tests-{v}" for v in PYTHONS), "lint", "docs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite (doctests in docs/ included)."""
    session.install("-q", "-e", ".[test]")
    args = list(session.posargs)
    full = os.environ.get("CHATSTREAM_FULL") == "1" or (
        session.python == FULL_PYTHON and os.environ.get("CHATSTREAM_QUICK") != "1"
    )
    if not full:
        args += ["--ignore=tests/adversarial", "--ignore=tests/soak"]
    session.run("python", "-m", "pytest", "-q", *args)


@nox.session
def lint(session: nox.Session) -> None:
    """Types and style."""
    session.install("-q", "-e", ".[lint]")
    session.run("mypy", "--strict", "chatstream")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation, warnings as errors."""
    session.install("-q", "-e", ".[docs]")
    session.run("sphinx-build", "-W", "-q", "-b", "html", "docs", "docs/_build/html")

"""Sphinx configuration for chatstream's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from chatstream import __version__

project = "chatstream"
author = "The chatstream authors"
copyright = "2026, The chatstream authors"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]
# No intersphinx: the docs build offline, and CI has no network.

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False

html_theme = "alabaster"
html_title = f"chatstream {release}"
exclude_patterns = ["_build"]

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
# Types only for the parameters a docstring describes, and the class signature in the
# class's heading: "separated" listed the constructor a second time, with
# "Return type: None".
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False

html_theme = "furo"
html_title = f"chatstream {release}"
# The version is in the title (the sidebar's heading); the source code, as viewcode
# renders it, is linked from every page's sidebar (templates/sidebar/source.html).
templates_path = ["_templates"]
html_sidebars = {
    "**": [
        "sidebar/brand.html",
        "sidebar/search.html",
        "sidebar/scroll-start.html",
        "sidebar/navigation.html",
        "sidebar/source.html",
        "sidebar/scroll-end.html",
    ]
}
exclude_patterns = ["_build"]


def _data_docs(app, what, name, obj, options, lines):
    """Document a value chatstream re-exports (a constant, a type alias such as
    ``chatstream.ResponseEvent``) with the ``#:`` comment where it is defined, never with
    the docstring of its type (``str``, ``int``, a union), which autodoc would show
    otherwise."""
    if what != "data" or not name.startswith("chatstream."):
        return
    from sphinx.pycode import ModuleAnalyzer, PycodeError

    named_module, _, attribute = name.rpartition(".")
    # The module the directive names first (chatstream.wsgi.SSE_HEADERS), then the
    # others, for a name that chatstream/__init__.py re-exports.
    others = sorted(m for m in sys.modules if m.startswith("chatstream.") and m != named_module)
    for module in [named_module, *others]:
        try:
            comments = ModuleAnalyzer.for_module(module).find_attr_docs()
        except PycodeError:
            continue
        if ("", attribute) in comments:
            lines[:] = list(comments[("", attribute)])
            return
    lines[:] = []


def setup(app):
    app.connect("autodoc-process-docstring", _data_docs)

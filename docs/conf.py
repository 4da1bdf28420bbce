"""Sphinx configuration of the gumbel_softmax documentation.

Build (from the repository root, with the package and the docs extra installed):

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

The pages are Markdown (MyST) or reStructuredText; every Python example is a
``testcode``/``doctest`` block or a ``>>>`` docstring example, so the doctest builder runs
them all.  The API reference is generated from the docstrings (autosummary + numpydoc).
"""

import importlib.util

import gumbel_softmax

project = "gumbel_softmax"
author = "the gumbel_softmax authors"
copyright = "the gumbel_softmax authors, MIT license"
version = release = gumbel_softmax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]

# MyST: anchors for headings down to level 3, so that pages link to sections
# (`contract.md#stream-layout`), and the directives the pages use.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference: one page per public name, written at build time under api/generated/.
autosummary_generate = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Doctest: the docstring examples and every testcode/doctest block of the pages.  The
# integrations' examples run when their peer is installed (:skipif: otherwise).
doctest_global_setup = """
import importlib.util
import numpy as np
import gumbel_softmax as gs
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX = importlib.util.find_spec("jax") is not None
HAVE_DASK = importlib.util.find_spec("dask") is not None
"""
import doctest  # noqa: E402

doctest_default_flags = (
    doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1
)

# The integrations' modules need their peer to import; a build without one mocks it so
# that the reference still renders (their examples are then skipped).
autodoc_mock_imports = [m for m in ("torch", "jax", "dask") if importlib.util.find_spec(m) is None]

html_theme = "pydata_sphinx_theme"
html_title = f"gumbel_softmax {release}"
html_theme_options = {"navigation_with_keys": False}
html_static_path = []

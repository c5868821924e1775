"""Sphinx configuration of bpnet's documentation (``make docs`` builds it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Document the bpnet of this checkout, not whatever is installed.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")

import bpnet  # noqa: E402

project = "bpnet"
author = "the bpnet developers"
copyright = "the bpnet developers, MIT licence"
release = version = bpnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "bpnet_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md", "bench.json"]
root_doc = "index"
templates_path = ["_templates"]

html_theme = "furo"
html_title = f"bpnet {release}"
html_static_path: list[str] = []

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
# The numpydoc sections state every type, with shapes; the annotations would repeat
# them in bpnet's internal aliases (``Array``, ``Params``, ``Arch``).
autodoc_typehints = "none"
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter types are written for people ("array (N, k)", "sequence of int"), not
# as cross-references: linking them would only give broken links.
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- warnings as errors, nitpicky -------------------------------------------------
nitpicky = True
# Third-party and typing names in signatures that Sphinx cannot resolve without
# intersphinx (which needs the network, unavailable in CI here); bpnet's own names
# all resolve.
nitpick_ignore_regex = [
    # Other projects' objects: linking them needs intersphinx, which fetches their
    # inventories over the network (CI here has none).
    (r"py:.*", r"(numpy|np|os|time|typing|argparse|contextlib|collections|dataclasses"
               r"|sklearn|scipy|matplotlib|torch|jax|dask|cupy|distributed|array_api_strict"
               r"|array_api_compat)(\..*)?"),
    # Private names (a leading underscore) are not documented, on purpose.
    (r"py:.*", r"(.*\.)?_[a-zA-Z].*"),
]

# -- doctests: the tutorial's and the docstrings' examples ------------------------
doctest_global_setup = """
import numpy as np
import bpnet
"""

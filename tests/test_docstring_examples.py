"""The Examples sections of bpnet's docstrings run and print what they show.

``make docs`` runs them too (with the tutorial's code) under Sphinx's doctest
builder; this test keeps them honest in ``make test``, which needs no Sphinx.
Every module whose source holds an example is collected, so a new Examples
section is tested without being listed here.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import numpy as np
import pytest

import bpnet

PACKAGE = Path(bpnet.__file__).resolve().parent
WITH_EXAMPLES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py") if ">>> " in path.read_text(encoding="utf-8")
)


def test_the_main_public_docstrings_have_examples():
    documented = {"bpnet.model.mlp", "bpnet.model.persistence", "bpnet.gradcheck"}
    assert documented <= set(WITH_EXAMPLES), WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, globs={"np": np, "bpnet": bpnet})
             if t.examples]
    assert tests, f"{name} holds '>>> ' but doctest finds no example in its docstrings"
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()

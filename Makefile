# bpnet: `make demo` and `make test` each set everything up on a fresh clone.
# `make demo` installs what the demo needs (NumPy, array-api-compat, SciPy,
# scikit-learn, tqdm, threadpoolctl: ~300 MB); `make test` adds the test tools and
# the optional backends.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HASH   := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_STAMP := $(VENV)/.demo-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)
DOCS_STAMP := $(VENV)/.docs-$(HASH)
# -W: every Sphinx warning fails the build; -n: every cross-reference must resolve.
SPHINX := $(PY) -m sphinx -W --keep-going -n -q

# Test extras: the optional backends that install on a CPU-only machine.
# torch==2.13.0 is pinned so pip takes the CPU build (an unpinned torch pulls CUDA).
# CuPy imports without a GPU: its detection and device-free code paths get tested.
EXTRAS_TEST := "torch==2.13.0" "jax[cpu]>=0.4.32" "dask[array]>=2024.8" "distributed>=2024.8"

.PHONY: all venv test demo docs lint typecheck bench bench-smoke gpu-check clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[train]"
	touch $@

$(TEST_STAMP): pyproject.toml $(DEMO_STAMP)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q $(EXTRAS_TEST) || echo "note: optional test backends not installed; their tests will skip"
	$(PY) -m pip install -q cupy-cuda12x || echo "note: CuPy not installed; its device-free tests will skip"
	touch $@

venv: $(TEST_STAMP)

$(DOCS_STAMP): pyproject.toml $(DEMO_STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

# The site (docs/_build/html), then every example in it run as a doctest: the
# tutorial's code and the docstrings' Examples sections.
docs: $(DOCS_STAMP)
	$(SPHINX) -b html docs docs/_build/html
	$(SPHINX) -b doctest docs docs/_build/doctest
	@echo "docs: open docs/_build/html/index.html"

lint: venv
	$(VENV)/bin/ruff check bpnet tests benchmarks examples

# mypy over the package and tests/typing/usage.py (the public API used as a user would);
# the settings are pyproject.toml's [tool.mypy].
typecheck: venv
	$(VENV)/bin/mypy

test: venv lint typecheck
	$(PY) -m pytest -q tests

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py

# The benchmarks run once each as tests (no timing), so CI sees they still work.
bench-smoke: venv
	$(PY) -m pytest -q benchmarks --benchmark-disable

bench: venv
	$(PY) -m pytest benchmarks --benchmark-columns=median,iqr,rounds --benchmark-sort=name

# On a machine with a CUDA device: the GPU tests, a sync-debug epoch, step timings
# against torch, the batch sweep against NumPy (< 5 min); one JSON, one table.
gpu-check: venv
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .benchmarks build *.egg-info docs/_build docs/api/generated

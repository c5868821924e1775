"""pytest-benchmark suites over :mod:`bpnet.bench`: ``python -m pytest benchmarks``.

A package, so that its ``conftest.py`` and ``helpers.py`` never clash with the
ones of ``tests/`` (``python -m pytest tests benchmarks`` collects both).
"""

"""pytest-benchmark suites: `pytest benchmarks` (kept out of `make test`)."""

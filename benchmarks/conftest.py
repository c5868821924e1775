"""Fixtures and hooks of the pytest-benchmark suites (helpers are in ``helpers.py``).

One thread count for every library, and quick settings when pytest-benchmark
is disabled (``--benchmark-disable``: each benchmark runs once, as a smoke test
that CI can afford).
"""

from __future__ import annotations

import os

import pytest


def pytest_benchmark_update_machine_info(config, machine_info):
    """File the CPU model, the BLAS library and kernel (threadpoolctl) and the
    OPENBLAS_* variables with every saved pytest-benchmark run."""
    from bpnet.bench import machine_info as bpnet_machine_info

    info = bpnet_machine_info()
    machine_info["bpnet"] = {k: info[k] for k in ("cpu", "cores", "blas", "env", "gpu")}


@pytest.fixture(scope="session")
def quick(request) -> bool:
    """True under ``--benchmark-disable``: run everything once, small and fast."""
    return bool(request.config.getoption("benchmark_disable", default=False))


@pytest.fixture(scope="session")
def threads():
    """Every library limited to the same number of threads for the session:
    ``BPNET_BENCH_THREADS`` (default: one per core).  Torch is imported first,
    when installed, so that its own pool is limited too."""
    from bpnet.bench import limit_threads

    n = int(os.environ.get("BPNET_BENCH_THREADS", os.cpu_count() or 1))
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    with limit_threads(n) as record:
        yield record

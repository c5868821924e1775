"""The BLAS thread policy: one thread for small layers, inside the block only."""

from __future__ import annotations

import numpy as np
import pytest


def test_thread_policy_one_thread_for_small_layers_only():
    from bpnet.backend.threads import ONE_THREAD_BELOW, blas_threads, largest_product

    assert largest_product([784, 256, 256, 10], 256) == 256 * 784 * 256
    assert blas_threads([2, 5, 1], 4, max_threads=2) == 1
    assert blas_threads([1024, 1024, 1024, 10], 1024, max_threads=2) == 2
    n = int(np.sqrt(ONE_THREAD_BELOW)) + 1  # just above the threshold with batch 1
    assert blas_threads([n, n], 1, max_threads=4) == 4
    assert blas_threads([n - 2, n - 2], 1, max_threads=4) == 1


def test_thread_policy_limits_blas_inside_the_block_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bpnet.backend.threads import blas_thread_policy

    def numpy_blas_threads():
        # NumPy's own BLAS (the wheels bundle it in numpy.libs); other pools,
        # SciPy's say, are not the policy's business
        pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        own = [p for p in pools if "numpy" in p["filepath"].split("site-packages")[-1]]
        return [p["num_threads"] for p in (own or pools)]

    before = numpy_blas_threads()
    with blas_thread_policy([2, 5, 1], 4) as n:
        assert n == 1 and numpy_blas_threads() and all(t == 1 for t in numpy_blas_threads())
    assert numpy_blas_threads() == before


def test_thread_policy_never_raises_a_callers_limit():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bpnet.backend.threads import blas_thread_policy

    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        inside = threadpoolctl.threadpool_info()
        with blas_thread_policy([1024, 1024, 1024, 10], 1024) as n:
            assert n is None  # large layers: left as the caller set them
            assert threadpoolctl.threadpool_info() == inside

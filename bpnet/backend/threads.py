"""BLAS thread policy for NumPy training: small layers run on one thread.

A training step of a small network is a chain of small matrix products and
elementwise operations.  OpenBLAS splits a product over its threads once it
holds more than ~2.6e5 multiply-adds (``GEMM_MULTITHREAD_THRESHOLD``), and
waking, synchronising and then leaving the worker threads spinning costs more
than the split saves until a product is about five million multiply-adds;
worse, the spinning workers compete with the single-threaded NumPy operations
that follow.  Large layers, on the other hand, gain nearly the full thread
count.

:func:`blas_threads` picks the count from the largest matrix product of one
step, ``batch * max(fan_in * fan_out)``; :func:`blas_thread_policy` applies it
to the BLAS pools (threadpoolctl) for the duration of a block.

Training wraps a whole fit in :func:`policy` (threadpoolctl costs about a
millisecond to enter, far too much per step).  Other backends than NumPy manage
their own threads and are left alone.  The threshold is
:data:`ONE_THREAD_BELOW`, measured with ``bpnet bench --sweep-threads``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import array_api_compat

__all__ = [
    "ONE_THREAD_BELOW",
    "blas_thread_policy",
    "blas_threads",
    "largest_product",
    "policy",
]

#: Multiply-adds of a step's largest matrix product below which one BLAS thread
#: is at least as fast as two.  Measured on 2 vCPUs (Xeon, OpenBLAS SkylakeX,
#: bpnet step, 11 interleaved rounds, median per-round ratio 2 threads / 1):
#: 0.5M 1.00, 1.0M 1.10, 2.1M 1.30, 4.2M 1.09 | 6.4M 0.88, 8.4M 0.89, 12.8M 0.81,
#: 51M (784-256-256-10 b256) ~0.75, 1.1G (1024^3 b1024) ~0.57.
ONE_THREAD_BELOW = 5_000_000


@functools.cache
def _cpu_count() -> int:
    # os.cpu_count() reads /sys on every call (~15 us), more than a tiny fit step
    return os.cpu_count() or 1


def largest_product(layer_sizes: Sequence[int], batch_size: int) -> int:
    """Multiply-adds of the largest matrix product in one training step,
    ``batch_size * fan_in * fan_out`` of the widest layer (forward, BP2 and BP4
    products of a layer all have this size)."""
    return batch_size * max(a * b for a, b in itertools.pairwise(layer_sizes))


def blas_threads(
    layer_sizes: Sequence[int], batch_size: int, *, max_threads: int | None = None,
) -> int:
    """Threads that suit one training step: 1 for small layers, else
    ``max_threads`` (default: one per core).

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first.
    batch_size : int
        Samples per step.
    max_threads : int, optional
        Upper bound (the count for large layers).
    """
    most = max_threads or _cpu_count()
    if largest_product(layer_sizes, batch_size) < ONE_THREAD_BELOW:
        return 1
    return most


@functools.cache
def _controller() -> Any:
    """A threadpoolctl controller of NumPy's BLAS, made once; None without
    threadpoolctl.

    Making one reads the list of loaded libraries (about 0.4 ms), which a
    ``partial_fit`` per epoch would otherwise pay on every call.  NumPy's BLAS,
    the pool the policy is for, is loaded with NumPy, before bpnet runs: it is
    the one whose file lies in NumPy's own folder (``numpy.libs`` for the
    wheels); where none does (a system BLAS), every BLAS pool loaded so far is
    taken.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    blas = ThreadpoolController().select(user_api="blas")
    own = [lib.filepath for lib in blas.lib_controllers
           if "numpy" in os.path.basename(os.path.dirname(lib.filepath))]
    return blas.select(filepath=own) if own else blas


@contextlib.contextmanager
def blas_thread_policy(
    layer_sizes: Sequence[int], batch_size: int, *, max_threads: int | None = None,
) -> Iterator[int | None]:
    """One BLAS thread for NumPy inside the block where :func:`blas_threads` says
    so (small layers); otherwise the pool is left as the caller set it, so that a
    ``threadpool_limits`` around a fit is never raised.

    Yields the thread count applied, or None when nothing is changed (large
    layers, or threadpoolctl missing).
    """
    controller = _controller()
    if controller is None or blas_threads(layer_sizes, batch_size,
                                          max_threads=max_threads) > 1:
        yield None
        return
    with controller.limit(limits=1, user_api="blas"):
        yield 1


def policy(
    xp: ModuleType, layer_sizes: Sequence[int], batch_size: int
) -> contextlib.AbstractContextManager:
    """The thread policy for training ``layer_sizes`` in batches of ``batch_size``
    on ``xp``: :func:`blas_thread_policy` on NumPy, nothing elsewhere (the other
    libraries manage their own threads)."""
    if not array_api_compat.is_numpy_namespace(xp):
        return contextlib.nullcontext()
    return blas_thread_policy(layer_sizes, batch_size)

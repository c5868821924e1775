"""What a benchmark's figures depend on, and one thread count for every library.

A timing means little without the machine it was taken on: the CPU model, the
BLAS library and the kernel it picked (``threadpoolctl`` reports it;
``OPENBLAS_CORETYPE`` can halve NumPy's GEMM speed), the thread counts and the
``OPENBLAS_*`` variables, the load average and the GPU when there is one.
:func:`machine_info` gathers all of it for the JSON report;
:func:`limit_threads` gives every library the same number of threads, so that
contenders compete on equal terms.

GPUs are described by :func:`bpnet.backend.device_description`, the same
description training prints.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..backend import cuda_available, device_description, get_namespace

__all__ = [
    "blas_info",
    "blas_summary",
    "cpu_model",
    "gpu_description",
    "limit_threads",
    "machine_info",
]

#: Environment variables that change which BLAS kernel runs or how it threads.
_BLAS_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[dict[str, Any]]:
    """Limit every BLAS/OpenMP pool (threadpoolctl) and PyTorch's intra-op pool
    to ``n`` threads for the duration of the block; ``None`` changes nothing.

    Yields a dict that records what was set (``{"threads": n, "torch": n}``).
    """
    record: dict[str, Any] = {"threads": n}
    if n is None:
        yield record
        return
    stack = contextlib.ExitStack()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        record["threadpoolctl"] = "missing: BLAS thread count not limited"
    else:
        stack.enter_context(threadpool_limits(limits=n))
    torch = sys.modules.get("torch")  # only a torch that is already in use
    if torch is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        stack.callback(torch.set_num_threads, before)
        record["torch"] = n
    with stack:
        yield record


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[dict[str, Any]]:
    """The thread pools NumPy (and anything else loaded) uses, with the BLAS
    library, its version, the kernel it picked (``architecture``) and its
    thread count, as reported by ``threadpoolctl``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl is not installed"}]
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads",
            "threading_layer", "prefix")
    return [{k: pool.get(k) for k in keep if k in pool} for pool in threadpool_info()]


def gpu_description() -> str | None:
    """The current CUDA device as :func:`bpnet.backend.device_description` names
    it (``"NVIDIA H100 80GB HBM3, 79.1 GiB (78.5 free)"``), or None when no
    CUDA device answers.

    CuPy is asked first; torch only when something has already imported it
    (importing it costs seconds).  Never raises.
    """
    try:
        if cuda_available():
            return device_description(get_namespace("cupy").empty((0,)))
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return device_description(get_namespace("torch").empty((0,), device="cuda"))
    except Exception:  # a broken driver is as good as no GPU: the figures still stand
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Everything a reader needs to judge a figure.

    Returns
    -------
    dict
        ``cpu``, ``cores``, ``platform``, ``python``, ``numpy``, ``blas``
        (:func:`blas_info`), ``env`` (the BLAS-related variables that are set),
        ``gpu`` (:func:`gpu_description`) and, where the OS reports it,
        ``loadavg``.
    """
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "env": {k: os.environ[k] for k in _BLAS_ENV if k in os.environ},
        "gpu": gpu_description(),
    }
    with contextlib.suppress(OSError):
        info["loadavg"] = list(os.getloadavg())
    return info


def blas_summary(info: Mapping[str, Any] | None = None) -> str:
    """One line naming the BLAS library, its kernel and thread count (from
    ``info``, a :func:`machine_info`, or asked afresh)."""
    pools = info.get("blas") if info else blas_info()
    parts = []
    for pool in pools or []:
        if pool.get("user_api") == "blas":
            parts.append(
                f"{pool.get('internal_api')} {pool.get('version')} "
                f"kernel={pool.get('architecture')} threads={pool.get('num_threads')}"
            )
    return "; ".join(parts) or "BLAS unknown"

"""Measurement core shared by ``bpnet bench`` and the pytest-benchmark suites.

Timings on a shared 2-core machine are noisy, so every comparison here is made
the same way:

* the contenders run **interleaved in one process**, block after block, in a
  rotating order, so a burst of load from elsewhere hits all of them alike;
* each block runs a callable ``number`` times (calibrated so a block lasts a
  few milliseconds, far above the clock's resolution) and records the mean;
* between blocks the loop sleeps ``pause`` seconds: OpenBLAS worker threads spin
  for ~0.1 s after a call and would slow whichever contender runs next;
* the result is the **median** over blocks, and comparisons are **ratios** of
  medians.

Devices that run asynchronously (CuPy, torch on CUDA, JAX) pass a ``sync``
callable that waits for the queued work; the clock is read only after it.

The module also records what the figures depend on: the CPU model, the BLAS
library and the kernel it picked (``threadpoolctl``), thread counts and the
``OPENBLAS_*`` variables, and the GPU when there is one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Timing",
    "blas_info",
    "calibrate",
    "cuda_device_info",
    "interleaved",
    "limit_threads",
    "machine_info",
    "paired_ratio",
    "time_once",
]

#: Environment variables that change which BLAS kernel runs or how it threads.
_BLAS_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


@dataclass
class Timing:
    """Seconds per call of one contender, one entry per timed block.

    Attributes
    ----------
    name : str
    times : list of float
        Mean seconds per call in each block.
    number : int
        Calls per block.
    """

    name: str
    times: list[float] = field(default_factory=list)
    number: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        """Interquartile range of the block times (0 with fewer than 4 blocks)."""
        if len(self.times) < 4:
            return 0.0
        q = statistics.quantiles(self.times, n=4)
        return q[2] - q[0]

    @property
    def min(self) -> float:
        return min(self.times)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "iqr_s": self.iqr,
            "min_s": self.min,
            "blocks": len(self.times),
            "calls_per_block": self.number,
            "times_s": list(self.times),
        }


def paired_ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of ``a``'s block time over ``b``'s block time in the
    same round.

    Both blocks of a round ran within a few tenths of a second of each other,
    so a slow drift in the machine's load (other people's jobs) cancels in each
    ratio; on a shared machine this is steadier than the ratio of medians.
    """
    return statistics.median(x / y for x, y in zip(a.times, b.times, strict=True))


def _noop() -> None:
    return None


def time_once(fn: Callable[[], Any], sync: Callable[[], Any] | None = None) -> float:
    """Wall-clock seconds of one call of ``fn``, device work included."""
    sync = sync or _noop
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def calibrate(
    fn: Callable[[], Any], *, min_block_s: float = 0.01, sync: Callable[[], Any] | None = None,
    max_number: int = 100_000,
) -> int:
    """Calls per block so that a block lasts at least ``min_block_s``.

    One call is made first as a warm-up (first calls pay for allocation, JIT
    compilation, kernel selection), then the count doubles until a block is
    long enough.
    """
    time_once(fn, sync)
    number = 1
    while number < max_number:
        sync_ = sync or _noop
        sync_()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync_()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_block_s:
            break
        # aim straight for the target, at least doubling, at most 100x at once
        guess = int(number * min_block_s / max(elapsed, 1e-9) * 1.2) + 1
        number = min(max(2 * number, guess), 100 * number, max_number)
    return number


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    min_block_s: float = 0.01,
    pause: float = 0.2,
    syncs: Mapping[str, Callable[[], Any]] | None = None,
    number: Mapping[str, int] | None = None,
    contexts: Mapping[str, Callable[[], contextlib.AbstractContextManager]] | None = None,
    seed: int = 0,
) -> dict[str, Timing]:
    """Time several callables side by side: ``repeats`` rounds, one block of each
    per round, in a random order drawn afresh every round.

    Parameters
    ----------
    fns : mapping of name to callable ``() -> Any``
        Each call does one unit of work (one training step, one gradient...).
        A callable may keep state in a closure (parameters it updates).
    repeats : int
        Rounds; the median is taken over these blocks.
    min_block_s : float
        Calibration target for one block.
    pause : float
        Seconds slept before every block so BLAS threads left spinning by the
        previous contender have gone to sleep.
    syncs : mapping of name to callable, optional
        Waits for queued device work of that contender (GPU stream, JAX
        dispatch); called before the clock is read.
    number : mapping of name to int, optional
        Calls per block for some contenders, skipping their calibration (for
        contenders too slow to run many times).
    contexts : mapping of name to callable returning a context manager, optional
        Entered around each block (and the calibration) of that contender, for
        settings that must not be switched on every call (a thread count).
    seed : int
        Seed of the block order, so a run can be repeated exactly.

    Returns
    -------
    dict of name to Timing
    """
    syncs = dict(syncs or {})
    given = dict(number or {})
    ctx = dict(contexts or {})
    names = list(fns)
    counts = dict(given)
    for name in names:
        if name not in counts:
            with ctx.get(name, contextlib.nullcontext)():
                counts[name] = calibrate(fns[name], min_block_s=min_block_s,
                                         sync=syncs.get(name))
    results = {name: Timing(name, [], counts[name]) for name in names}
    # A fresh order every round: a fixed or rotating order always puts the same
    # contender after the same other one, which then inherits its spinning
    # threads, its cache contents and the state of the allocator.
    order = random.Random(seed)
    for _ in range(repeats):
        for name in order.sample(names, len(names)):
            fn, sync, n = fns[name], syncs.get(name) or _noop, counts[name]
            if pause:
                time.sleep(pause)
            with ctx.get(name, contextlib.nullcontext)():
                sync()
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                sync()
                elapsed = time.perf_counter() - t0
            results[name].times.append(elapsed / n)
    return results


# --- threads -------------------------------------------------------------------
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


def _loaded(module: str) -> Any:
    """The module when it is importable, else None (never raises)."""
    try:
        return __import__(module)
    except Exception:
        return None


# --- what the figures depend on -------------------------------------------------------
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


def cuda_device_info() -> dict[str, Any] | None:
    """Name and memory of the current CUDA device (CuPy first, then torch), or
    None when no CUDA device answers.  Torch is asked only when something has
    already imported it (importing it costs seconds)."""
    cupy = _loaded("cupy") if importlib.util.find_spec("cupy") else None
    if cupy is not None:
        try:
            if cupy.is_available():
                dev = cupy.cuda.Device()
                props = cupy.cuda.runtime.getDeviceProperties(dev.id)
                free, total = dev.mem_info
                return {"library": "cupy", "name": props["name"].decode(),
                        "memory_total_bytes": int(total), "memory_free_bytes": int(free)}
        except Exception:
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                return {"library": "torch", "name": torch.cuda.get_device_name(),
                        "memory_total_bytes": int(total), "memory_free_bytes": int(free)}
        except Exception:
            pass
    return None


def machine_info() -> dict[str, Any]:
    """Everything a reader needs to judge a figure: CPU, cores, Python, NumPy,
    the BLAS pools and kernel, BLAS-related environment variables, load, GPU."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "env": {k: os.environ[k] for k in _BLAS_ENV if k in os.environ},
        "gpu": cuda_device_info(),
    }
    with contextlib.suppress(OSError):
        info["loadavg"] = list(os.getloadavg())
    return info


def blas_summary(info: Mapping[str, Any] | None = None) -> str:
    """One line naming the BLAS library, its kernel and thread count."""
    pools = (info or {}).get("blas") if info else blas_info()
    parts = []
    for pool in pools or []:
        if pool.get("user_api") == "blas":
            parts.append(
                f"{pool.get('internal_api')} {pool.get('version')} "
                f"kernel={pool.get('architecture')} threads={pool.get('num_threads')}"
            )
    return "; ".join(parts) or "BLAS unknown"

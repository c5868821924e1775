"""The interleaved median timer shared by ``bpnet bench`` and ``benchmarks/``.

Timings on a shared 2-core machine are noisy, so every comparison here is made
the same way:

* the contenders run **interleaved in one process**, block after block, in a
  random order drawn afresh every round, so a burst of load from elsewhere
  hits all of them alike;
* each block runs a callable ``number`` times (calibrated so a block lasts a
  few milliseconds, far above the clock's resolution) and records the mean;
* between blocks the loop sleeps ``pause`` seconds: OpenBLAS worker threads spin
  for ~0.1 s after a call and would slow whichever contender runs next;
* the result is the **median** over blocks, and comparisons are **ratios** of
  medians.

Devices that run asynchronously (CuPy, torch on CUDA, JAX) pass a ``sync``
callable that waits for the queued work (:func:`bpnet.backend.synchronize`);
the clock is read only after it.

What the figures depend on (CPU, BLAS kernel, threads, GPU) is recorded by
:mod:`bpnet.bench.machine`.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timing", "calibrate", "interleaved", "paired_ratio", "time_once"]


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

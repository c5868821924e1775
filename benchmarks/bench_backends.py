"""Training-step throughput (samples/s) by backend, network and batch size.

One step is what a training loop does per batch: the pure step ``MLP.fit`` runs
(:func:`bpnet.bench.bpnet_step`: the loss and every gradient with the
backend's fast path, e.g. ``jax.jit`` on JAX, and the SGD update), and on Dask
the one ``dask.compute`` of the loss and the new weights.  The batch
is already on the device, as the fit loop keeps it.  GPU backends are
synchronized before the clock is read; the first steps (compilation, CUDA
context, caches) are warm-up and never timed.

Run under pytest-benchmark (medians, IQR, rounds)::

    python -m pytest benchmarks/bench_backends.py --benchmark-columns=median,iqr,rounds

Each result carries ``extra_info``: samples/s, device (GPU name and memory),
BLAS kernel.  ``--benchmark-disable`` runs every case once as a smoke test.

Or print one table of samples/s, interleaving blocks of each backend so
that a busy shared machine slows all of them alike::

    python -m benchmarks.bench_backends [--rounds 3] [--block 7] [--backends numpy,torch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import bpnet
from bpnet import bench

NETS: dict[str, list[int]] = {"64-128-10": [64, 128, 10], "784-256-256-10": [784, 256, 256, 10]}
BATCHES = [64, 256, 1024, 4096]
#: Only GPUs get the largest batch: where they pull ahead of the CPU.
GPU_BATCHES = [*BATCHES, 16384, 65536]


@dataclass(frozen=True)
class Case:
    """A backend as the benchmark runs it."""

    id: str
    backend: str
    device: str | None = None
    module: str = "numpy"
    gpu: bool = False
    portable: bool = False  # run with BPNET_PORTABLE=1 (no fast path)

    def available(self) -> bool:
        try:
            __import__(self.module)
        except ImportError:
            return False
        if self.id == "cupy":
            return bpnet.cuda_available()
        if self.id == "torch-cuda":
            import torch

            return torch.cuda.is_available()
        return True


CASES = [
    Case("numpy", "numpy"),
    Case("torch", "torch", "cpu", module="torch"),
    Case("jax-jit", "jax", module="jax"),
    Case("jax-eager", "jax", module="jax", portable=True),
    Case("dask", "dask", module="dask.array"),
    Case("cupy", "cupy", module="cupy", gpu=True),
    Case("torch-cuda", "torch", "cuda", module="torch", gpu=True),
]


@contextmanager
def _portable(on: bool) -> Iterator[None]:
    old = os.environ.get("BPNET_PORTABLE")
    if on:
        os.environ["BPNET_PORTABLE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("BPNET_PORTABLE", None)
        else:
            os.environ["BPNET_PORTABLE"] = old


def make_step(case: Case, sizes: list[int], batch: int) -> tuple[Callable[[], None], float]:
    """One training step of bpnet on ``case`` (:func:`bpnet.bench.bpnet_step`: the
    step ``MLP.fit`` runs, plain SGD, float32, the batch already on the device),
    waiting for the device after each step.

    Parameters
    ----------
    case : Case
    sizes : list of int
        Layer sizes, input first.
    batch : int
        Samples per step.

    Returns
    -------
    step : callable ``() -> None``
        Runs one step and waits for the device.
    first_loss : float
        Loss of the first step (built with the fast paths ``case`` asks for:
        they are picked when the step is built).
    """
    cfg = bench.StepConfig(f"{'-'.join(map(str, sizes))}-b{batch}", tuple(sizes), batch,
                           "float32")
    with _portable(case.portable):
        c = bench.contender("bpnet", cfg, backend=case.backend, device=case.device)
    sync = c.sync

    def step() -> None:
        c.fn()
        if sync is not None:
            sync()

    return step, c.first_loss


def _params() -> list[Any]:
    out = []
    for case in CASES:
        batches = GPU_BATCHES if case.gpu else BATCHES
        if case.portable:  # the twin of a fast path: its two ends suffice
            batches = [BATCHES[0], BATCHES[-1]]
        for net in NETS:
            for batch in batches:
                marks = [pytest.mark.gpu] if case.gpu else []
                out.append(pytest.param(case, net, batch, id=f"{case.id}-{net}-b{batch}",
                                        marks=marks))
    return out


@pytest.mark.parametrize(("case", "net", "batch"), _params())
def test_train_step_throughput(benchmark, case: Case, net: str, batch: int) -> None:
    pytest.importorskip(case.module)
    if not case.available():
        pytest.skip(f"{case.id}: no device")
    step, first_loss = make_step(case, NETS[net], batch)
    # Warm-up outside the timer: compilation (JAX), CUDA context and allocator,
    # Dask's first graph.  Bounded rounds keep the big cases short.
    rounds = max(5, min(100, 100_000 // (batch * max(1, NETS[net][0] // 64))))
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=2, iterations=1)
    assert np.isfinite(first_loss)
    device = (bench.gpu_description() if case.gpu else None) or bench.cpu_model()
    benchmark.extra_info.update(backend=case.id, net=net, batch=batch, device=device,
                                blas=bench.blas_summary())
    if benchmark.enabled and benchmark.stats is not None:
        benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="blocks of each backend")
    parser.add_argument("--block", type=int, default=7, help="timed steps per block")
    parser.add_argument("--backends", default=",".join(c.id for c in CASES))
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = parser.parse_args(argv)
    wanted = args.backends.split(",")
    cases = [c for c in CASES if c.id in wanted and c.available()]
    print(f"BLAS: {bench.blas_summary()}")
    for net in args.nets.split(","):
        print(f"\n{net}: samples/s, median of {args.rounds} x {args.block} steps (float32)")
        print(f"{'batch':>7} " + "".join(f"{c.id:>14}" for c in cases))
        for batch in map(int, args.batches.split(",")):
            steps = {}
            for c in cases:
                steps[c.id] = make_step(c, NETS[net], batch)[0]
                steps[c.id]()
                steps[c.id]()  # warm-up
            times: dict[str, list[float]] = {c.id: [] for c in cases}
            for _ in range(args.rounds):
                # Blocks of one backend at a time, interleaved across rounds, with
                # a pause before each: BLAS and OpenMP worker threads spin for
                # ~0.1 s after a call and would slow whichever backend ran next.
                # Each step is timed on its own and the median taken over all of
                # them (not bench.interleaved's block means): a short block's
                # first step after the pause runs cold and would dominate its mean.
                for c in cases:
                    time.sleep(0.3)
                    for _ in range(args.block):
                        t = time.perf_counter()
                        steps[c.id]()
                        times[c.id].append(time.perf_counter() - t)
            row = "".join(f"{batch / statistics.median(times[c.id]):>14,.0f}" for c in cases)
            print(f"{batch:>7} {row}", flush=True)
        gpu = [c for c in cases if c.gpu]
        if gpu:
            print("device:", bench.gpu_description())
    return 0


if __name__ == "__main__":
    sys.exit(main())

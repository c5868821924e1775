"""bpnet's training step on a CUDA device (CuPy, torch on CUDA), with GPU
discipline: warm-up steps first (kernel compilation, memory pools), then blocks
of steps with the stream synchronized before the clock is read, and the device
name and memory filed with the figures.  Skipped when no CUDA device answers.

    python -m pytest benchmarks/bench_gpu.py

Nothing asserts a time.
"""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet import bench

STEPS_PER_ROUND = 10  # one synchronisation per 10 steps: throughput, not latency


def _gpu_backends() -> list:
    found = []
    if bpnet.cuda_available():
        found.append(pytest.param(("cupy", None), id="cupy"))
    try:
        import torch

        if torch.cuda.is_available():
            found.append(pytest.param(("torch", "cuda"), id="torch-cuda"))
    except ImportError:
        pass
    return found or [pytest.param(None, id="no-gpu",
                                  marks=pytest.mark.skip(reason="no CUDA device answers"))]


@pytest.mark.gpu
@pytest.mark.parametrize("config", list(bench.STEP_CONFIGS))
@pytest.mark.parametrize("gpu", _gpu_backends())
def test_gpu_step(benchmark, gpu, config, quick):
    backend, device = gpu
    cfg = bench.STEP_CONFIGS[config]
    step = bench.contender("bpnet", cfg, backend=backend, device=device)
    assert step.sync is not None, "a GPU contender must synchronize before the clock"
    for _ in range(3):  # warm-up beyond the builder's first step
        step.fn()
    step.sync()

    def block():
        for _ in range(STEPS_PER_ROUND):
            step.fn()
        step.sync()

    benchmark.pedantic(block, rounds=1 if quick else 20, warmup_rounds=0 if quick else 2)
    benchmark.extra_info.update({"config": cfg.label, "backend": backend,
                                 "device": bench.gpu_description(),
                                 "steps_per_round": STEPS_PER_ROUND,
                                 "first_loss": step.first_loss})
    if benchmark.stats is not None:
        per_step = benchmark.stats.stats.median / STEPS_PER_ROUND
        benchmark.extra_info["samples_per_s"] = cfg.batch / per_step
    # the same first loss as on the host, from the same weights
    host = bench.contender("bpnet", cfg)
    tol = 1e-9 if cfg.dtype == "float64" else 1e-4
    assert step.first_loss == pytest.approx(host.first_loss, rel=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("gpu", _gpu_backends())
def test_gpu_against_host_interleaved(gpu, quick):
    """GPU step and NumPy step side by side on the GEMM-bound configuration."""
    backend, device = gpu
    cfg = bench.STEP_CONFIGS["gemm"]
    gpu_step = bench.contender("bpnet", cfg, backend=backend, device=device)
    host_step = bench.contender("bpnet", cfg)
    t = bench.interleaved({"gpu": gpu_step.fn, "host": host_step.fn},
                          syncs={"gpu": gpu_step.sync}, repeats=1 if quick else 7,
                          min_block_s=0.0 if quick else 0.05, pause=0.0 if quick else 0.2)
    assert np.isfinite(t["gpu"].median) and np.isfinite(t["host"].median)
    print(f"\n{cfg.label}: {backend} {t['host'].median / t['gpu'].median:.1f}x the NumPy step "
          f"on {bench.gpu_description()}")

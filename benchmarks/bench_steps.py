"""Training-step throughput: bpnet against a lean NumPy step, the GEMM floor,
array-api-compat, PyTorch eager, ``jax.jit`` and scikit-learn.

* ``test_step[config-method]``: pytest-benchmark timing of one step of each
  contender (skipped, with the reason, when its library is not installed);
  ``extra_info`` has samples/s and the first-step loss.
* ``test_side_by_side[config]``: all contenders interleaved in one process
  (:func:`bpnet.bench.step_rows`), ratios to the lean step and to the GEMM
  floor; checks that every contender starts from the same loss.  Rows go to
  ``bench-results/bench_steps.json``.

Every library runs on ``BPNET_BENCH_THREADS`` threads (default: one per core).

    python -m pytest benchmarks/bench_steps.py -s

Nothing asserts a time.  ``--benchmark-disable`` runs each step once.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from bpnet import bench

from .helpers import save_results

CONFIGS = list(bench.STEP_CONFIGS)
METHODS = ["bpnet", *bench.PEERS]
_ROWS: list[dict] = []


def _context(method: str, cfg: bench.StepConfig):
    if method == "jax" and cfg.dtype == "float64":
        return bench.jax_x64()
    return contextlib.nullcontext()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("config", CONFIGS)
def test_step(benchmark, config, method, threads):
    cfg = bench.STEP_CONFIGS[config]
    reason = bench.peer_missing(method) if method != "bpnet" else None
    if reason:
        pytest.skip(reason)
    with _context(method, cfg):
        step = bench.contender(method, cfg)
        if step.sync is None:
            benchmark(step.fn)
        else:
            def step_and_wait():
                step.fn()
                step.sync()

            benchmark(step_and_wait)
    benchmark.extra_info.update({"config": cfg.label, "method": method,
                                 "first_loss": step.first_loss, "threads": threads})
    if benchmark.stats is not None:
        benchmark.extra_info["samples_per_s"] = cfg.batch / benchmark.stats.stats.median
    assert step.first_loss is None or np.isfinite(step.first_loss)


@pytest.mark.parametrize("config", CONFIGS)
def test_side_by_side(config, quick, threads):
    cfg = bench.STEP_CONFIGS[config]
    if quick:
        row = bench.step_rows(cfg, bench.PEERS, repeats=1, min_block_s=0.0, pause=0.0)
    else:
        row = bench.step_rows(cfg, bench.PEERS, repeats=9, min_block_s=0.02, pause=0.2)
    expected = {"bpnet", *bench.PEERS} - set(row["skipped"])
    assert set(row["methods"]) == expected
    tol = 1e-9 if cfg.dtype == "float64" else 1e-5
    assert all(d < tol for d in row["loss_agreement"].values()), row["loss_agreement"]
    if not quick:
        row["threads"] = threads
        _ROWS.append(row)
        path = save_results("bench_steps", {"rows": _ROWS})
        print(f"\n{bench.format_step_table([row])}\n({path})")

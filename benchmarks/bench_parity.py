"""Write once, lose nothing: bpnet's public ``fit`` step against the best
hand-written step in each backend's own library (:mod:`bpnet.bench.parity`).

* ``test_call[config-optimizer-contender]``: pytest-benchmark timing of one call
  of a contender, :data:`~bpnet.bench.parity.STEPS` minibatch steps (for bpnet:
  one ``fit(epochs=1)`` over that many batches);
* ``test_table``: every contender of a (configuration, optimizer) row
  interleaved in one process, reported as bpnet's time over each peer's (lower
  is better); rows go to ``bench-results/bench_parity.json``.

Every library runs on ``BPNET_BENCH_THREADS`` threads (default: one per core);
the lean NumPy step runs under bpnet's own BLAS thread policy, so the ratio
measures the code alone.  Nothing asserts a time.

Table mode, the figures of the README::

    python -m benchmarks.bench_parity [--configs C1,C2,C3,C4]
        [--optimizers sgd,momentum,adam] [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np
import pytest

from bpnet.bench import limit_threads, machine_info, parity

from .helpers import save_results

CONTENDERS = [name for lib, peers in parity.LIBRARIES.items()
              for name in (f"bpnet-{lib}", *peers)]
_ROWS: list[dict] = []


def _context(name: str, cfg: parity.ParityConfig):
    from bpnet.bench import jax_x64

    if name.endswith("jax") and cfg.dtype == "float64":
        return jax_x64()
    return contextlib.nullcontext()


def _library(name: str) -> str:
    return name.rsplit("-", 1)[-1]


@pytest.mark.parametrize("name", CONTENDERS)
@pytest.mark.parametrize("optimizer", list(parity.OPTIMIZERS))
@pytest.mark.parametrize("config", list(parity.PARITY_CONFIGS))
def test_call(benchmark, config, optimizer, name, threads, quick):
    reason = parity.missing(_library(name))
    if reason:
        pytest.skip(reason)
    cfg = parity.PARITY_CONFIGS[config]
    if quick and config == "C3":
        pytest.skip("the GEMM-bound configuration takes seconds per call; not in quick runs")
    with _context(name, cfg):
        r = parity.runner(name, cfg, optimizer, steps=2 if quick else parity.STEPS)

        def call():
            r.fn()
            if r.sync is not None:
                r.sync()

        benchmark(call)
        weights = r.weights()
    assert all(np.all(np.isfinite(t)) for pair in weights for t in pair)
    benchmark.extra_info.update({"config": cfg.label, "optimizer": optimizer, "threads": threads})


@pytest.mark.parametrize("config", list(parity.PARITY_CONFIGS))
def test_table(config, quick, threads):
    if quick:
        if config == "C3":
            pytest.skip("the GEMM-bound configuration takes seconds per call; not in quick runs")
        rows = parity.parity_rows([config], ["sgd"], steps=2, repeats=1, min_block_s=0.0,
                                  pause=0.0)
    else:
        rows = parity.parity_rows([config], repeats=7)
    for row in rows:
        assert set(row["ratio"]) == {p for lib in parity.LIBRARIES if lib not in row["skipped"]
                                     for p in parity.LIBRARIES[lib]}
        assert all(np.isfinite(v) and v > 0 for v in row["ratio"].values())
    if not quick:
        _ROWS.extend(rows)
        path = save_results("bench_parity", {"rows": _ROWS, "machine": machine_info(),
                                             "threads": threads})
        print(f"\n{parity.format_parity_table(rows)}\n({path})")


def main(argv: list[str] | None = None) -> int:
    """The parity table, printed as Markdown and filed in ``bench-results``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_parity",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(parity.PARITY_CONFIGS))
    p.add_argument("--optimizers", default=",".join(parity.OPTIMIZERS))
    p.add_argument("--libraries", default=",".join(parity.LIBRARIES))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every library (default: one per core)")
    args = p.parse_args(argv)
    try:
        import torch  # noqa: F401  (so that its own pool is limited too)
    except ImportError:
        pass
    with limit_threads(args.threads) as record:
        rows = parity.parity_rows(args.configs.split(","), args.optimizers.split(","),
                                  args.libraries.split(","), repeats=args.repeats)
    info = machine_info()
    path = save_results("bench_parity", {"rows": rows, "machine": info, "threads": record})
    print(parity.format_parity_table(rows))
    print(f"\n{info['cpu']}, {record}; raw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

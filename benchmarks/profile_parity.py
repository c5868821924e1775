"""Where one contender of the parity benchmark spends its time: a cProfile of
repeated calls, after a warm-up (compilation, first-touch allocations).

    python -m benchmarks.profile_parity C1 sgd bpnet-jax [--calls 200] [--top 15]

Contenders are those of :mod:`bpnet.bench.parity` (``bpnet-numpy``,
``lean-numpy``, ``bpnet-torch``, ``lean-torch``, ``autograd-torch``,
``bpnet-jax``, ``jit-jax``); each call runs one epoch of 32 steps.  Timings
under the profiler are inflated; read the shares, and time with
``python -m benchmarks.bench_parity``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from bpnet.bench import parity


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_parity", description=__doc__)
    p.add_argument("config", choices=sorted(parity.PARITY_CONFIGS))
    p.add_argument("optimizer", choices=sorted(parity.OPTIMIZERS))
    p.add_argument("contender")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    cfg = parity.PARITY_CONFIGS[args.config]
    with parity._x64(cfg, [args.contender.split("-")[-1]]):
        run = parity.runner(args.contender, cfg, args.optimizer)
        for _ in range(20):
            run.fn()
        if run.sync is not None:
            run.sync()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            run.fn()
        if run.sync is not None:
            run.sync()
        profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()

"""Seed 000's times table, learned by L-BFGS in seconds instead of an hour.

The network is seed 000's: two inputs ``(i, j)`` for i, j in 0..10, one hidden
layer of four sigmoid units plus a bias (the seed's fifth, constant unit), and
an identity output for ``i * j``; the cost is half the mean squared error.
Seed 000 handed its per-sample Python loop to ``fmin_l_bfgs_b`` and reached a
cost of 1.0022 after 3,212 seconds.  Here the same cost and gradient come from
batched backprop, and L-BFGS-B runs until it can improve no further.  L-BFGS
finds a local minimum, so the example restarts from the next seed (initial
weights) until one beats the seed's cost; the search is deterministic.

Run: ``python examples/times_table.py``
"""

from __future__ import annotations

import sys
import time

import numpy as np

import bpnet
from bpnet.data import times_table

#: Seed 000's final cost.
SEED_COST = 1.0022033220456583


def train(seed: int, *, max_iter: int = 20000) -> tuple[bpnet.MLP, float, float, int]:
    """One L-BFGS run from ``seed``; returns (net, cost, seconds, iterations)."""
    X, y = times_table()
    net = bpnet.MLP([2, 4, 1], activation="sigmoid", loss="mse", dtype="float64", seed=seed)
    start = time.perf_counter()
    history = net.fit(X, y, optimizer="lbfgs", epochs=max_iter, tol=0.0)
    return net, net.compute_loss(X, y), time.perf_counter() - start, history.epochs


def run(seeds: range = range(10), target: float = SEED_COST) -> dict:
    """Restart from each seed in turn until the cost is below ``target``.

    Returns
    -------
    dict
        ``net``, ``cost``, ``seed``, ``seconds`` (all runs together),
        ``iterations`` (of the final run) and ``tried`` (costs per seed).
    """
    tried: dict[int, float] = {}
    total = 0.0
    best = None
    for seed in seeds:
        net, cost, seconds, iterations = train(seed)
        total += seconds
        tried[seed] = cost
        if best is None or cost < best["cost"]:
            best = {"net": net, "cost": cost, "seed": seed, "iterations": iterations}
        if cost < target:
            break
    return {**best, "seconds": total, "tried": tried}


def main() -> int:
    result = run()
    for seed, cost in result["tried"].items():
        print(f"seed {seed}: cost {cost:.6f}")
    print(f"best cost {result['cost']:.6f} (seed 000 reached {SEED_COST:.4f} in 3,212 s) "
          f"after {result['iterations']} iterations; {result['seconds']:.2f} s in all")
    grid = np.array([[i, j] for j in range(11) for i in range(11)], dtype=float)
    out = bpnet.to_numpy(result["net"].predict(grid))[:, 0].reshape(11, 11)
    print("\nthe learned table (rows j, columns i), rounded:")
    for row in out:
        print(" ".join(f"{v:5.0f}" for v in row))
    return 0 if result["cost"] < SEED_COST else 1


if __name__ == "__main__":
    sys.exit(main())

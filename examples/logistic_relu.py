"""Seed 004's network: a ReLU hidden layer, a linear output and the logistic
loss ``log(1 + exp(-y f(x)))`` on 2-D points labelled -1 or +1.

Seed 004 derived the gradient for one sample at a time with Kronecker
products; bpnet computes the same gradient for a whole batch with the fused
``logistic`` loss (delta_L = -y * sigmoid(-y f)).  The points are two
interleaved spirals, which no linear classifier can separate.

Run: ``python examples/logistic_relu.py``
"""

from __future__ import annotations

import sys

import numpy as np

import bpnet
from bpnet.data import two_spirals


def run(*, hidden: int = 64, epochs: int = 300, seed: int = 0) -> dict:
    """Train on 400 spiral points and test on 400 fresh ones.

    Returns
    -------
    dict
        ``train`` and ``test`` metrics (loss, accuracy), ``history``, ``net``.
    """
    X, y = two_spirals(400, seed=seed)
    X_test, y_test = two_spirals(400, seed=seed + 1000)
    net = bpnet.MLP([2, hidden, 1], activation="relu", loss="logistic", dtype="float64",
                    seed=seed)
    history = net.fit(X, y, optimizer="adam", lr=0.01, batch_size=32, epochs=epochs, seed=seed)
    return {"train": net.evaluate(X, y), "test": net.evaluate(X_test, y_test),
            "history": history, "net": net}


def main() -> int:
    result = run()
    h = result["history"]
    print(f"2-64-1 ReLU, logistic loss, two spirals: loss {h.loss[0]:.3f} -> {h.loss[-1]:.4f} "
          f"in {h.epochs} epochs ({h.elapsed[-1]:.2f} s)")
    for name in ("train", "test"):
        m = result[name]
        print(f"  {name:<5} accuracy {100 * m['accuracy']:.2f}%  loss {m['loss']:.4f}")
    # The decision regions, as a map: + where the network says +1.
    grid = np.linspace(-1.1, 1.1, 23)
    points = np.array([[x, y] for y in grid[::-1] for x in grid])
    side = np.sign(bpnet.to_numpy(result["net"].predict(points))[:, 0]).reshape(23, 23)
    print("\n".join(" ".join("+" if s > 0 else "." for s in row) for row in side))
    return 0 if result["test"]["accuracy"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())

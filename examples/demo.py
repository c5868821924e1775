"""bpnet's demo: check backprop against finite differences, then learn XOR.

Run with ``make demo`` (or ``python examples/demo.py``).
"""

from __future__ import annotations

import sys

import numpy as np

import bpnet


def main() -> int:
    rng = np.random.default_rng(0)
    print("1. Backprop vs naive central differences (64-16-10, ReLU, softmax cross-entropy)")
    net = bpnet.MLP([64, 16, 10], activation="relu", loss="cross_entropy", seed=0)
    X, y = rng.standard_normal((32, 64)), rng.integers(0, 10, 32)
    report = bpnet.gradcheck(net, X, y)
    print(report)

    print("\n2. XOR with a 2-4-1 tanh network, full-batch gradient descent")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    Y = np.array([0, 1, 1, 0], dtype=float)
    xor = bpnet.MLP([2, 4, 1], activation="tanh", loss="mse", dtype="float64", seed=1)
    history = xor.fit(X, Y, lr=0.5, epochs=2000)
    out = bpnet.to_numpy(xor.predict(X))[:, 0]
    errors = int(np.sum(np.round(out) != Y))
    for x, target, o in zip(X, Y, out):
        print(f"   {x.astype(int)} -> {o:6.3f}  (target {int(target)})")
    print(f"   loss {history.loss[0]:.4f} -> {history.loss[-1]:.6f} in {history.epochs} epochs, "
          f"{errors} errors")
    ok = report.passed and errors == 0
    print("\ndemo", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""bpnet's demo, the one ``make demo`` runs.

1. A short check that backprop agrees with naive central differences.
2. The main job: ``bpnet train`` on scikit-learn's handwritten digits with a
   64-128-10 ReLU network, softmax cross-entropy and Adam (batches of 32, 40
   epochs), then train/test loss and accuracy, time, backend and device.

Run: ``make demo`` or ``python examples/demo.py``.  Extra arguments go to
``bpnet train`` (for instance ``--backend torch --epochs 10``).
"""

from __future__ import annotations

import sys

import numpy as np

import bpnet
from bpnet.cli import main as bpnet_main

TRAIN = ["train", "--dataset", "digits", "--hidden", "128", "--activation", "relu",
         "--optimizer", "adam", "--epochs", "40", "--batch-size", "32", "--backend", "auto",
         "--dtype", "float32"]


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    rng = np.random.default_rng(0)
    print("1. Backprop vs naive central differences (64-16-10, ReLU, softmax cross-entropy)")
    net = bpnet.MLP([64, 16, 10], activation="relu", loss="cross_entropy", seed=0)
    report = bpnet.gradcheck(net, rng.standard_normal((32, 64)), rng.integers(0, 10, 32))
    print(report)

    print(f"\n2. bpnet {' '.join(TRAIN + extra)}", flush=True)
    status = bpnet_main(TRAIN + extra)
    ok = report.passed and status == 0
    print("\ndemo", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

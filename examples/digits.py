"""Handwritten digits: a 64-128-10 ReLU network, softmax cross-entropy, Adam.

scikit-learn's bundled 8x8 digits (1,797 images; seed 002 trained on them),
standardized, 25% held out for testing, stratified by class.  Adam with
learning rate 1e-3, batches of 32, 40 epochs: the same settings as the
scikit-learn comparison in ``benchmarks/bench_training.py``.

One split is a small test set (450 images, so one image is 0.22%), so the
example trains on five different splits and reports each test accuracy and
their mean.

Run: ``python examples/digits.py``   (the command line does one split:
``bpnet train --dataset digits``)
"""

from __future__ import annotations

import sys
import time

import numpy as np

import bpnet
from bpnet.data import digits


def train(split_seed: int = 0, *, dtype: str = "float32",
          backend: str = "numpy") -> tuple[bpnet.MLP, dict, float]:
    """Train on one split; returns (net, test metrics, seconds)."""
    s = digits(seed=split_seed)
    net = bpnet.MLP([64, 128, 10], activation="relu", loss="cross_entropy", backend=backend,
                    dtype=dtype, seed=split_seed)
    start = time.perf_counter()
    net.fit(s.X_train, s.y_train, optimizer="adam", lr=1e-3, batch_size=32, epochs=40,
            seed=split_seed)
    seconds = time.perf_counter() - start
    return net, net.evaluate(s.X_test, s.y_test), seconds


def run(splits: range = range(5)) -> list[float]:
    """Test accuracy of one training run per split."""
    return [train(seed)[1]["accuracy"] for seed in splits]


def main() -> int:
    accuracies = []
    for seed in range(5):
        _, test, seconds = train(seed)
        accuracies.append(test["accuracy"])
        print(f"split {seed}: test accuracy {100 * test['accuracy']:.2f}%, "
              f"test loss {test['loss']:.4f}  ({seconds:.2f} s)")
    mean = float(np.mean(accuracies))
    print(f"mean test accuracy over {len(accuracies)} splits: {100 * mean:.2f}%")
    return 0 if mean >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())

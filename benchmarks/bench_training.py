"""Training benchmarks, each measured side by side with its peer in one process.

* Digits, 64-128-10 ReLU, softmax cross-entropy, Adam (lr 1e-3), batches of 32,
  40 epochs: bpnet's ``fit`` against scikit-learn's ``MLPClassifier`` with the
  same settings (no L2 penalty, no early stopping, all 40 epochs).  Target:
  bpnet takes at most half scikit-learn's time at equal or better accuracy.
* One L-BFGS cost-and-gradient evaluation on seed 000's times table (1,210
  rows: every point ten times, as the seed built it): the function bpnet hands
  to SciPy against a faithful copy of the seed's per-sample Python loop.
  Target: at least 1,000 times faster.  Also reported: bpnet on the 121
  distinct rows of ``bpnet.data.times_table()``, the same cost function.

The two sides run interleaved: each round runs the peer (timed by hand, in
pytest-benchmark's untimed ``setup``), pauses so that OpenBLAS's spinning
worker threads settle, then runs bpnet (timed by pytest-benchmark).  Medians,
their ratio, accuracies and the BLAS thread pools (threadpoolctl) go into each
benchmark's ``extra_info`` (``--benchmark-json``), into
``bench-results/bench_training.json`` and, with ``-s``, onto the terminal::

    python -m pytest benchmarks/bench_training.py -s

Nothing here asserts a time; ``--benchmark-disable`` runs each side once, as a
smoke test.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import pytest

import bpnet
from bpnet import data
from bpnet.params import Layout
from bpnet.train.lbfgs import objective

from .helpers import PAUSE_S, report

# --- digits: bpnet vs scikit-learn ------------------------------------------------------------

ROUNDS = 7
EPOCHS = 40


@pytest.fixture(scope="module")
def digits_split():
    pytest.importorskip("sklearn")
    return data.digits(test_size=0.25, seed=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.benchmark(group="digits-adam-40-epochs")
def test_digits_adam_bpnet_vs_sklearn(benchmark, digits_split, dtype):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    s = digits_split
    X_train, X_test = s.X_train.astype(dtype), s.X_test.astype(dtype)
    rounds = 1 if benchmark.disabled else ROUNDS
    seeds = iter(range(rounds))
    peer_times, peer_acc, nets = [], [], []

    def sklearn_round():
        seed = next(seeds)
        clf = MLPClassifier(hidden_layer_sizes=(128,), activation="relu", solver="adam",
                            batch_size=32, max_iter=EPOCHS, learning_rate_init=1e-3, alpha=0.0,
                            tol=0.0, n_iter_no_change=10**9, shuffle=True, random_state=seed)
        start = time.perf_counter()
        with warnings.catch_warnings():  # "did not converge in 40 iterations": intended
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, s.y_train)
        peer_times.append(time.perf_counter() - start)
        assert clf.n_iter_ == EPOCHS
        peer_acc.append(clf.score(X_test, s.y_test))
        time.sleep(PAUSE_S)
        return (seed,), {}

    def bpnet_round(seed):
        start = time.perf_counter()
        net = bpnet.MLP([64, 128, 10], activation="relu", loss="cross_entropy", dtype=dtype,
                        seed=seed)
        history = net.fit(X_train, s.y_train, optimizer="adam", lr=1e-3, batch_size=32,
                          epochs=EPOCHS, seed=seed)
        nets.append((net, time.perf_counter() - start))
        return history

    history = benchmark.pedantic(bpnet_round, setup=sklearn_round, rounds=rounds)
    assert history.epochs == EPOCHS
    ours = [t for _, t in nets]
    accuracy = [net.evaluate(X_test, s.y_test)["accuracy"] for net, _ in nets]
    figures = {
        "dtype": dtype,
        "rounds": rounds,
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "bpnet_median_s": statistics.median(ours),
        "sklearn_median_s": statistics.median(peer_times),
        "ratio_bpnet_over_sklearn": statistics.median(ours) / statistics.median(peer_times),
        "bpnet_accuracy_median": statistics.median(accuracy),
        "sklearn_accuracy_median": statistics.median(peer_acc),
        "bpnet_accuracy": accuracy,
        "sklearn_accuracy": peer_acc,
    }
    report(f"digits_adam_{dtype}", benchmark, figures)
    assert min(accuracy) > 0.9 and min(peer_acc) > 0.9  # both really trained


# --- one L-BFGS evaluation: bpnet vs seed 000's loop -----------------------------------------


def sigmoid(x):
    return 1.0 / (1 + np.exp(-x))


class Seed000:
    """Seed 000's cost and gradient, copied line for line.

    The network is 2-5-1 with the last hidden unit held at 1 (the bias of the
    output), the input extended by a constant 1, identity output, cost
    ``0.5 * mean squared error``.  The seed read every sample from a pandas
    DataFrame with ``.iloc``; so does this copy when pandas is installed.
    Without pandas the rows come from NumPy arrays, which is faster, so the
    speed-up measured then understates the one against the seed
    (``baseline`` in the results says which ran).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, n_hidden: int = 5) -> None:
        try:
            from pandas import DataFrame
        except ImportError:
            self.baseline = "numpy rows (faster than the seed's pandas .iloc)"
            self.x, self.y = x, y.reshape(-1, 1)
            self.row = lambda table, j: table[j]
        else:
            self.baseline = "pandas .iloc rows, as seed 000"
            self.x = DataFrame(x, columns=["x1", "x2"])
            self.y = DataFrame(y.reshape(-1, 1), columns=["y1"])
            self.row = lambda table, j: table.iloc[j].values
        n_neuron = [x.shape[1] + 1, n_hidden, 1]
        self.w_shape = [(n_neuron[i], n_neuron[i - 1]) for i in range(1, len(n_neuron))]
        self.n = x.shape[0]

    def stack(self, flat_w):
        W = []
        for m, n in self.w_shape:
            W.append(flat_w[:m * n].reshape(m, n))
            flat_w = flat_w[m * n:]
        return W

    def cost(self, W):
        cost = 0
        for j in range(self.n):
            yj = self.row(self.y, j)
            xj = self.row(self.x, j)
            a = np.append(xj, 1)
            for i, mat in enumerate(W):
                z = mat @ a
                if i != len(W) - 1:
                    a = sigmoid(z)
                    a[-1] = 1
                else:
                    a = z
            cost += 0.5 * sum((yj - a) ** 2) / self.n
        return cost

    def grad(self, W):
        derivative = [np.zeros(shape) for shape in self.w_shape]
        for j in range(self.n):
            yj = self.row(self.y, j)
            xj = self.row(self.x, j)
            a = [np.append(xj, 1)]
            z = [[]]
            fp = [[]]
            for i, mat in enumerate(W):
                a[-1][-1] = 1
                z.append(mat @ a[-1])
                a.append(sigmoid(z[-1]) if i != len(W) - 1 else z[-1])
                if i != len(W) - 1:
                    this_fp = sigmoid(z[-1]) * (1 - sigmoid(z[-1]))
                    this_fp[-1] = 0
                else:
                    this_fp = np.ones_like(z[-1])
                fp.append(this_fp)
            delta = [-fp[-1] * (yj - a[-1])]
            for i in range(len(W), 1, -1):
                delta = [fp[i - 1] * (W[i - 1].T @ delta[0])] + delta  # noqa: RUF005 (verbatim)
            for i, (this_delta, this_a) in enumerate(zip(delta, a[:-1])):
                derivative[i] += np.outer(this_delta, this_a) / self.n
        return derivative

    def evaluate(self, flat_w):
        """What ``fmin_l_bfgs_b`` asked of the seed at each point: func, then fprime."""
        W = self.stack(flat_w)
        return self.cost(W), np.concatenate([d.flatten() for d in self.grad(W)])


def seed_weights_from(net) -> np.ndarray:
    """bpnet's 2-4-1 weights as the seed's flat 2-5-1 vector (same function)."""
    (W1, b1), (W2, b2) = [(bpnet.to_numpy(W), bpnet.to_numpy(b)) for W, b in net.params]
    hidden = np.zeros((5, 3))
    hidden[:4, :2], hidden[:4, 2] = W1.T, b1  # row 5 feeds the unit pinned to 1
    out = np.append(W2[:, 0], b2)[None, :]
    return np.concatenate([hidden.ravel(), out.ravel()])


EVALS_PER_ROUND = 200


def lbfgs_objective(net: bpnet.MLP, X: np.ndarray, y: np.ndarray):
    """The function ``MLP.fit(optimizer="lbfgs")`` hands SciPy for this float64
    NumPy network on (X, y) (mean squared error, one output), and the flat
    weights it starts from."""
    layout = Layout.of(net.params)
    x, Y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).reshape(-1, 1)
    value_and_grad = objective(layout, x, Y, net.arch, alpha=0.0, xp=np, put=np.asarray)
    return value_and_grad, layout.ravel(net.params, xp=np)


@pytest.mark.benchmark(group="lbfgs-evaluation")
def test_lbfgs_evaluation_vs_seed_000(benchmark):
    X, y = data.times_table(repeat=10)  # seed 000's 1,210 rows
    net = bpnet.MLP([2, 4, 1], activation="sigmoid", loss="mse", dtype="float64", seed=0)
    value_and_grad, theta = lbfgs_objective(net, X, y)
    seed = Seed000(X, y)
    seed_theta = seed_weights_from(net)

    # The same function on both sides: equal cost, equal gradient entries.
    ours_value, ours_grad = value_and_grad(theta)
    seed_value, seed_grad = seed.evaluate(seed_theta)
    assert ours_value == pytest.approx(seed_value, rel=1e-12)
    seed_hidden = seed_grad[:15].reshape(5, 3)
    np.testing.assert_allclose(ours_grad[:8].reshape(2, 4), seed_hidden[:4, :2].T, rtol=1e-9)
    np.testing.assert_allclose(ours_grad[8:12], seed_hidden[:4, 2], rtol=1e-9)
    np.testing.assert_allclose(ours_grad[12:], seed_grad[15:], rtol=1e-9)

    # bpnet's own times_table() has the 121 distinct rows: the same cost and
    # gradient (a mean does not change when every row is repeated ten times).
    distinct, _ = lbfgs_objective(net, *data.times_table())
    assert distinct(theta)[0] == pytest.approx(ours_value, rel=1e-12)

    rounds = 1 if benchmark.disabled else 15
    seed_times, our_times, distinct_times = [], [], []

    def seed_round():
        # No pause here: the seed's 3x1 products never wake OpenBLAS's threads.
        start = time.perf_counter()
        seed.evaluate(seed_theta)
        seed_times.append(time.perf_counter() - start)

    def bpnet_block():
        for fun, times in ((value_and_grad, our_times), (distinct, distinct_times)):
            start = time.perf_counter()
            for _ in range(EVALS_PER_ROUND):
                fun(theta)
            times.append((time.perf_counter() - start) / EVALS_PER_ROUND)

    benchmark.pedantic(bpnet_block, setup=seed_round, rounds=rounds)
    ours, theirs = statistics.median(our_times), statistics.median(seed_times)
    report("lbfgs_evaluation_times_table", benchmark, {
        "rows": int(X.shape[0]),
        "baseline": seed.baseline,
        "rounds": rounds,
        "bpnet_evaluations_per_round": EVALS_PER_ROUND,
        "bpnet_median_s_per_evaluation": ours,
        "seed000_median_s_per_evaluation": theirs,
        "speedup_seed_over_bpnet": theirs / ours,
        "bpnet_121_distinct_rows_median_s": statistics.median(distinct_times),
        "speedup_seed_over_bpnet_121_rows": theirs / statistics.median(distinct_times),
    })

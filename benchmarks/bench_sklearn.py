"""bpnet's scikit-learn estimators against scikit-learn's own, same settings.

Digits (64-128-10 ReLU, Adam, batch 32, 40 epochs, alpha 1e-4) for the
classifier and a 2,000-sample ``make_regression`` set (8-64-1 ReLU, Adam, batch
200, 100 epochs) for the regressor.  Both estimators are built with identical
parameters and seeds and fitted interleaved, round after round, in one process;
the figures are medians of fit time, their ratio, and medians of test accuracy
or R^2::

    python -m pytest benchmarks/bench_sklearn.py -s

No time is asserted; ``--benchmark-disable`` runs one round as a smoke test.
"""

from __future__ import annotations

import statistics
import time
import warnings

import pytest

from .helpers import PAUSE_S, report

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from bpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ROUNDS = 5


def _digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _regression():
    X, y = make_regression(n_samples=2000, n_features=8, noise=5.0, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y / y.std(), random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


CASES = {
    "classifier-digits": (_digits, SkClassifier, MLPClassifier,
                          dict(hidden_layer_sizes=(128,), solver="adam", batch_size=32,
                               max_iter=40, learning_rate_init=1e-3, alpha=1e-4)),
    "regressor-make_regression": (_regression, SkRegressor, MLPRegressor,
                                  dict(hidden_layer_sizes=(64,), solver="adam", batch_size=200,
                                       max_iter=100, learning_rate_init=1e-3, alpha=1e-4)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.benchmark(group="sklearn-estimators")
def test_estimator_vs_sklearn(benchmark, case):
    make_data, Peer, Ours, settings = CASES[case]
    X_train, X_test, y_train, y_test = make_data()
    settings = {**settings, "tol": 0.0, "n_iter_no_change": 10**9}  # run every epoch
    rounds = 1 if benchmark.disabled else ROUNDS
    seeds = iter(range(rounds))
    peer_times, peer_scores, our_times, our_scores = [], [], [], []

    def fit(estimator):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X_train, y_train)
        return time.perf_counter() - start, estimator.score(X_test, y_test)

    def peer_round():
        seed = next(seeds)
        t, score = fit(Peer(random_state=seed, **settings))
        peer_times.append(t)
        peer_scores.append(score)
        time.sleep(PAUSE_S)
        return (seed,), {}

    def our_round(seed):
        t, score = fit(Ours(random_state=seed, **settings))
        our_times.append(t)
        our_scores.append(score)

    benchmark.pedantic(our_round, setup=peer_round, rounds=rounds)
    metric = "accuracy" if "classifier" in case else "r2"
    figures = {
        "case": case,
        "settings": {k: str(v) for k, v in settings.items()},
        "rounds": rounds,
        "bpnet_median_s": statistics.median(our_times),
        "sklearn_median_s": statistics.median(peer_times),
        "ratio_bpnet_over_sklearn": statistics.median(our_times) / statistics.median(peer_times),
        f"bpnet_{metric}_median": statistics.median(our_scores),
        f"sklearn_{metric}_median": statistics.median(peer_scores),
        f"bpnet_{metric}": our_scores,
        f"sklearn_{metric}": peer_scores,
    }
    report(f"sklearn_{case}", benchmark, figures)
    assert min(our_scores) > 0.8 and min(peer_scores) > 0.8  # both really trained

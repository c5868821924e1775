"""bpnet's scikit-learn estimators against scikit-learn's own, same settings, for
each solver.

Two data sets: digits (1,347 training images, 64-128-10 ReLU classifier) and a
2,000-sample ``make_regression`` set (8-64-1 ReLU regressor), each with
``adam``, ``sgd`` (Nesterov momentum) and ``lbfgs``.  Both estimators get
identical parameters and seeds, and run every epoch (``tol=0``; L-BFGS stops
at ``max_iter`` or where its line search ends, at the same iteration on both
sides since they follow the same path).  They are fitted interleaved, seed
after seed, in one process, with a pause between the sides (OpenBLAS's worker
threads spin for a while after a call); the figures are medians over seeds of
the fit time, their ratio, and medians of test accuracy or R^2::

    python -m pytest benchmarks/bench_sklearn.py -s

Goal (issue 13): at most 0.6x scikit-learn's time on every solver, with an
equal or better score.  No time is asserted; ``--benchmark-disable`` runs one
short round as a smoke test.
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


_DIGITS = dict(hidden_layer_sizes=(128,), alpha=1e-4)
_REGRESSION = dict(hidden_layer_sizes=(64,), alpha=1e-4)

#: case -> (data, scikit-learn's estimator, bpnet's, settings)
CASES = {
    "digits-adam": (_digits, SkClassifier, MLPClassifier,
                    dict(_DIGITS, solver="adam", batch_size=32, max_iter=40,
                         learning_rate_init=1e-3)),
    "digits-sgd": (_digits, SkClassifier, MLPClassifier,
                   dict(_DIGITS, solver="sgd", batch_size=32, max_iter=40,
                        learning_rate_init=0.05)),
    "digits-lbfgs": (_digits, SkClassifier, MLPClassifier,
                     dict(_DIGITS, solver="lbfgs", max_iter=100)),
    "regression-adam": (_regression, SkRegressor, MLPRegressor,
                        dict(_REGRESSION, solver="adam", batch_size=200, max_iter=100,
                             learning_rate_init=1e-3)),
    "regression-sgd": (_regression, SkRegressor, MLPRegressor,
                       dict(_REGRESSION, solver="sgd", batch_size=200, max_iter=100,
                            learning_rate_init=0.01)),
    "regression-lbfgs": (_regression, SkRegressor, MLPRegressor,
                         dict(_REGRESSION, solver="lbfgs", max_iter=200)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.benchmark(group="sklearn-estimators")
def test_estimator_vs_sklearn(benchmark, threads, case):
    make_data, Peer, Ours, settings = CASES[case]
    X_train, X_test, y_train, y_test = make_data()
    settings = {**settings, "tol": 0.0, "n_iter_no_change": 10**9}  # run every epoch
    if benchmark.disabled:
        settings["max_iter"] = 3
    rounds = 1 if benchmark.disabled else ROUNDS
    seeds = iter(range(rounds))
    peer, ours = {"time": [], "score": [], "n_iter": []}, {"time": [], "score": [], "n_iter": []}

    def fit(estimator, into):
        start = time.perf_counter()
        with warnings.catch_warnings():  # every epoch runs: "did not converge" is intended
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X_train, y_train)
        into["time"].append(time.perf_counter() - start)
        into["score"].append(estimator.score(X_test, y_test))
        into["n_iter"].append(estimator.n_iter_)

    def peer_round():
        seed = next(seeds)
        fit(Peer(random_state=seed, **settings), peer)
        time.sleep(PAUSE_S)
        return (seed,), {}

    def our_round(seed):
        fit(Ours(random_state=seed, **settings), ours)

    benchmark.pedantic(our_round, setup=peer_round, rounds=rounds)
    metric = "accuracy" if Peer is SkClassifier else "r2"
    ratio = statistics.median(ours["time"]) / statistics.median(peer["time"])
    figures = {
        "case": case,
        "settings": {k: str(v) for k, v in settings.items()},
        "rounds": rounds,
        "threads": threads,
        "bpnet_median_s": statistics.median(ours["time"]),
        "sklearn_median_s": statistics.median(peer["time"]),
        "ratio_bpnet_over_sklearn": ratio,
        f"bpnet_{metric}_median": statistics.median(ours["score"]),
        f"sklearn_{metric}_median": statistics.median(peer["score"]),
        f"bpnet_{metric}": ours["score"],
        f"sklearn_{metric}": peer["score"],
        "bpnet_n_iter": ours["n_iter"],
        "sklearn_n_iter": peer["n_iter"],
    }
    report(f"sklearn_{case}", benchmark, figures, file="bench_sklearn")
    # both really trained, and on the same path: scikit-learn's draws, rules and steps
    assert min(ours["score"]) > (0.5 if benchmark.disabled else 0.9)
    assert ours["n_iter"] == peer["n_iter"]
    assert statistics.median(ours["score"]) == pytest.approx(
        statistics.median(peer["score"]), abs=2e-3)

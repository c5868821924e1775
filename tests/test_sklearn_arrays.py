"""The estimators on arrays of other libraries: ``score`` without an implicit
host copy, data moved once per fit, scikit-learn's metrics in any namespace.

CuPy arrays and CUDA tensors refuse :func:`numpy.asarray`, which
scikit-learn's metrics call.  :mod:`tests.guarded` stands in for them on the
CPU: here the score path is tested with predictions that are Guarded, and end
to end on array-api-strict's ``device1``, whose arrays refuse the host just as
well; ``tests/test_guarded.py`` trains the estimators on Guarded arrays (a
generic backend) and ``tests/test_dask_chunks.py`` on Guarded Dask chunks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

import bpnet  # noqa: E402
from bpnet import inputs  # noqa: E402
from bpnet.sklearn import MLPClassifier, MLPRegressor, _metrics  # noqa: E402

from .guarded import DEVICE, Guarded, HostTransferError, namespace  # noqa: E402
from .helpers import ALL_BACKENDS, backend_params  # noqa: E402

RNG = np.random.default_rng(3)
X = RNG.standard_normal((80, 4))
Y_CLASS = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
Y_REG = X @ np.array([1.0, -1.0, 0.5, 2.0]) + 0.1 * RNG.standard_normal(80)
Y_MULTI = np.stack([Y_REG, X[:, 0] ** 2], axis=1)


def test_guarded_refuses_the_host():
    g = Guarded(np.arange(3.0))
    for leak in (lambda: np.asarray(g), lambda: g + np.ones(3), lambda: g[np.array([0])],
                 lambda: accuracy_score(g, g), lambda: r2_score(g, g)):
        with pytest.raises(HostTransferError):
            leak()
    assert float(namespace.sum(g)) == 3.0 and g.device == DEVICE


class _GuardedOutput:
    """Makes ``predict`` hand back Guarded arrays, as it hands back CuPy arrays
    for CuPy input: what ``score`` does with them is the path under test."""

    def predict(self, X):
        return Guarded(np.asarray(super().predict(X)))


class GuardedClassifier(_GuardedOutput, MLPClassifier):
    pass


class GuardedRegressor(_GuardedOutput, MLPRegressor):
    pass


@pytest.mark.parametrize("weights", [None, "host", "guarded"])
@pytest.mark.parametrize(("ours", "ref", "y"), [
    (GuardedClassifier, MLPClassifier, Y_CLASS),
    (GuardedRegressor, MLPRegressor, Y_REG),
    (GuardedRegressor, MLPRegressor, Y_MULTI),
], ids=["classifier", "regressor", "multi-output"])
def test_score_of_device_predictions_stays_on_the_device(ours, ref, y, weights):
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, random_state=0)
    w = RNG.uniform(0.5, 2.0, size=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        guarded = ours(**params).fit(X, y)
        plain = ref(**params).fit(X, y)
    sample_weight = {None: None, "host": w, "guarded": Guarded(w)}[weights]
    expected = plain.score(X, y, sample_weight=None if weights is None else w)
    for y_given in (Guarded(y), y):  # y on the device, or host data moved explicitly
        got = guarded.score(X, y_given, sample_weight=sample_weight)
        assert isinstance(got, float)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("y_kind", ["labels", "multilabel", "r2", "r2-multi", "r2-constant"])
def test_metrics_equal_sklearns(y_kind):
    rng = np.random.default_rng(7)
    w = rng.uniform(0.1, 3.0, 50)
    if y_kind == "labels":
        y, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
        metric, ref = _metrics.accuracy, accuracy_score
    elif y_kind == "multilabel":
        y, p = rng.integers(0, 2, (50, 3)), rng.integers(0, 2, (50, 3))
        p[:25] = y[:25]
        metric, ref = _metrics.accuracy, accuracy_score
    else:
        y = rng.standard_normal((50, 1 if y_kind == "r2" else 3))
        if y_kind == "r2-constant":  # constant columns: predicted exactly, and not
            y[:, 1] = 2.0
            y[:, 2] = -1.0
        p = y + 0.3 * rng.standard_normal(y.shape)
        if y_kind == "r2-constant":
            p[:, 1] = 2.0
        metric, ref = _metrics.r2, r2_score
    for sample_weight in (None, w):
        want = ref(y, p, sample_weight=sample_weight)
        got = metric(Guarded(y), Guarded(p), None if sample_weight is None else Guarded(w),
                     xp=namespace)
        assert float(got) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_a_non_finite_prediction_scores_nan():
    y = Guarded(np.array([[1.0, 0.0], [0.0, 1.0]]))
    proba = Guarded(np.array([[0.9, 0.1], [np.nan, 0.5]]))
    assert np.isnan(float(_metrics.proba_accuracy(proba, y, multiclass=True, xp=namespace)))
    assert np.isnan(float(_metrics.r2(y, proba, xp=namespace)))
    # finite values whose sum overflows do not make a false NaN
    huge = Guarded(np.full(4, 1e308))
    half = Guarded(np.asarray(0.5))
    assert float(_metrics.finite_or_nan(half, huge, xp=namespace)) == 0.5


#: Libraries with arrays of their own that install on a CPU machine (NumPy input
#: is host data; Dask, JAX and the rest run through the estimator checks).
DEVICE_BACKENDS = backend_params([b for b in ALL_BACKENDS
                                  if b.id in ("strict", "strict-device1", "torch", "cupy")])


@pytest.mark.parametrize("backend", DEVICE_BACKENDS)
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_fit_predict_score_on_the_input_library(backend, Estimator):
    pytest.importorskip(backend.module)
    xp, device = bpnet.backend.get_namespace(backend.name), backend.device
    y = Y_CLASS if Estimator is MLPClassifier else Y_MULTI
    params = dict(hidden_layer_sizes=(6,), max_iter=8, random_state=0, early_stopping=True)
    Xd, yd = xp.asarray(X, device=device), xp.asarray(y, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = Estimator(**params).fit(Xd, yd)
        ref = Estimator(**params).fit(X, y)
    pred = ours.predict(Xd)
    assert bpnet.backend.array_library(pred) == backend.name
    assert bpnet.backend.device_of(pred) == bpnet.backend.device_of(Xd)
    got = ours.score(Xd, yd)
    assert isinstance(got, float)
    assert got == pytest.approx(ref.score(X, y), rel=1e-9, abs=1e-12)
    assert ours.score(Xd, y) == got  # host y is moved to the device explicitly


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_data_moves_once_per_fit(monkeypatch, solver):
    """One check-and-transfer of X per fit, however many epochs (before, every
    epoch was an MLP.partial_fit that checked and uploaded the whole set)."""
    calls = []
    original = inputs.as_input
    monkeypatch.setattr(inputs, "as_input", lambda *a, **k: calls.append(1) or original(*a, **k))
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=7, random_state=0,
                        n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y_CLASS)
    assert clf.n_iter_ == 7 and len(calls) == 1

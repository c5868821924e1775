"""The estimators lose nothing: bad hyper-parameters are refused by name before a
fit changes anything (issue 13 item 14), and a refused or failed refit leaves
the fitted estimator exactly as it was (issue 15, class 6)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from bpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RNG = np.random.default_rng(0)
X3 = RNG.standard_normal((60, 3))
Y3 = np.arange(60) % 3  # classes 0, 1, 2
X5 = RNG.standard_normal((40, 5))
Y5 = np.arange(40) % 2 + 7  # other features, other classes


def _snapshot(est) -> dict:
    """Everything a user can read off a fitted estimator, copied."""
    state = {name: getattr(est, name) for name in (
        "n_features_in_", "n_iter_", "t_", "loss_", "n_outputs_", "n_layers_",
        "out_activation_") if hasattr(est, name)}
    state["loss_curve_"] = list(est.loss_curve_)
    state["weights"] = [w.copy() for w in est.coefs_ + est.intercepts_]
    if hasattr(est, "classes_"):
        state["classes_"] = est.classes_.copy()
    state["prediction"] = est.predict(X3).copy()
    return state


def _assert_unchanged(est, before: dict) -> None:
    after = _snapshot(est)
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for a, b in zip(value, after[key], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            np.testing.assert_array_equal(after[key], value, err_msg=key)


@pytest.fixture
def fitted(backend):
    """A classifier fitted on (X3, Y3), on each backend (float64)."""
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                        backend=backend.name, device=backend.device, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X3, Y3)
    return clf


BAD_PARAMETERS = [
    ("learning_rate_init", np.nan), ("learning_rate_init", np.inf), ("learning_rate_init", 0),
    ("alpha", np.inf), ("alpha", np.nan), ("alpha", -1.0),
    ("epsilon", np.inf), ("epsilon", 0.0),
    ("momentum", np.nan), ("momentum", np.inf), ("momentum", 1.5),
    ("max_iter", np.inf), ("max_iter", 2.5), ("max_iter", 0), ("max_iter", True),
    ("beta_1", 1.0), ("beta_2", np.nan), ("power_t", np.inf), ("tol", np.nan),
    ("validation_fraction", 1.0), ("n_iter_no_change", 2.5), ("n_iter_no_change", 0),
    ("max_fun", 0), ("max_fun", np.inf), ("batch_size", 0), ("batch_size", "all"),
    ("hidden_layer_sizes", (4, 0)), ("hidden_layer_sizes", "wide"),
    ("activation", "softmax"), ("solver", "newton"), ("learning_rate", "cosine"),
    ("shuffle", "yes"), ("verbose", -1), ("dtype", "int8"),
]


@pytest.mark.parametrize(("name", "value"), BAD_PARAMETERS,
                         ids=[f"{n}={v!r}" for n, v in BAD_PARAMETERS])
def test_bad_parameter_is_refused_by_name_before_anything_changes(name, value):
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X3, Y3)
    before = _snapshot(clf)
    clf.set_params(**{name: value})
    # scikit-learn's error type: a ValueError and a TypeError at once
    with pytest.raises(ValueError, match=f"'{name}'") as info:
        clf.fit(X5, Y5)
    assert isinstance(info.value, TypeError)
    _assert_unchanged(clf, before)
    if name not in ("hidden_layer_sizes", "solver"):  # partial_fit checks them too
        with pytest.raises(ValueError, match=f"'{name}'"):
            clf.partial_fit(X3, Y3)
        _assert_unchanged(clf, before)


def test_n_iter_no_change_takes_inf_and_tol_takes_inf():
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=4, n_iter_no_change=np.inf,
                        tol=np.inf, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X3, Y3)
    assert clf.n_iter_ == 4


def test_regressor_loss_is_checked():
    reg = MLPRegressor(loss="absolute_error")
    with pytest.raises(ValueError, match=r"'loss'.*'poisson'"):
        reg.fit(X3, X3[:, 0])
    assert not hasattr(reg, "n_features_in_")


def test_poisson_regressor_refuses_negative_targets_before_fitting():
    reg = MLPRegressor(loss="poisson", max_iter=5)
    with pytest.raises(ValueError, match=">= 0"):
        reg.fit(X3, X3[:, 0] - 10.0)
    assert not hasattr(reg, "n_features_in_")


def test_refused_refits_keep_the_fitted_model(fitted):
    """Each refit below fails; the estimator fitted on (X3, Y3) stays whole."""
    before = _snapshot(fitted)
    y_nan = Y3.astype(float)
    y_nan[0] = np.nan
    X_nan = X3.copy()
    X_nan[1, 1] = np.inf
    failures = [
        (dict(alpha=np.nan), (X5, Y5), "'alpha'"),
        (dict(max_iter=np.inf), (X5, Y5), "'max_iter'"),
        ({}, (X_nan, Y3), "infinity|NaN"),
        ({}, (X3, y_nan), "NaN|Unknown label type"),
        ({}, (X3[:10], Y3), "inconsistent numbers of samples"),
        (dict(early_stopping=True, validation_fraction=0.01), (X3[:9], Y3[:9]),
         "validation set is too small|test_size"),
        (dict(warm_start=True), (X3, Y3 % 2), "warm_start can only be used"),
        (dict(warm_start=True), (X5, Y5), "features"),
        (dict(warm_start=True, hidden_layer_sizes=(6,)), (X3, Y3), "hidden_layer_sizes"),
    ]
    for change, (X, y), match in failures:
        saved = fitted.get_params()
        fitted.set_params(**change)
        with pytest.raises(ValueError, match=match):
            fitted.fit(X, y)
        fitted.set_params(**saved)
        _assert_unchanged(fitted, before)


def test_refused_partial_fits_keep_the_fitted_model(fitted):
    before = _snapshot(fitted)
    for X, y, kwargs, match in [
        (X3, np.full(60, 9), {}, "classes not in"),
        (X3, Y3, {"classes": [0, 1]}, "not the same as on last call"),
        (X5, Y5 % 3, {}, "features"),
    ]:
        with pytest.raises(ValueError, match=match):
            fitted.partial_fit(X, y, **kwargs)
        _assert_unchanged(fitted, before)


def test_a_diverging_refit_keeps_the_fitted_model(backend):
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                       backend=backend.name, device=backend.device, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        reg.fit(X3, X3[:, 0])
    before = _snapshot(reg)
    huge = RNG.uniform(size=X3.shape) * np.finfo(np.float64).max
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow warnings
        for call in (reg.fit, reg.partial_fit):
            with pytest.raises(ValueError, match="non-finite parameter weights"):
                call(huge, X3[:, 0])
            _assert_unchanged(reg, before)


def test_a_refused_first_fit_leaves_the_estimator_unfitted():
    clf = MLPClassifier(max_iter=np.inf)
    with pytest.raises(ValueError, match="'max_iter'"):
        clf.fit(X3, Y3)
    assert not any(name.endswith("_") and not name.startswith("__") for name in vars(clf))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        clf.predict(X3)


def test_pickling_keeps_the_optimizer_state(backend):
    """partial_fit after a pickle round trip continues Adam's moments, as
    scikit-learn's estimators do: the same weights as without the round trip."""
    reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0, learning_rate_init=0.05,
                       backend=backend.name, device=backend.device, dtype="float64")
    y = X3 @ np.array([1.0, -2.0, 0.5])
    reg.partial_fit(X3, y)
    again = pickle.loads(pickle.dumps(reg))
    for est in (reg, again):
        for _ in range(3):
            est.partial_fit(X3, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, again.coefs_ + again.intercepts_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.n_iter_ == 1 and again.t_ == 4 * len(y)

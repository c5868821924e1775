"""bpnet.sklearn as a drop-in for scikit-learn's MLP estimators (issue 13).

Same settings and ``random_state`` give scikit-learn's initial weights,
validation split and sample order, and the same update rules, so the fitted
weights, counters, curves and warnings are scikit-learn's to rounding.  The
comparisons here run both estimators side by side; the tests after them pin
each difference issue 13 listed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sk  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_digits,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import scale  # noqa: E402

import bpnet  # noqa: E402
import bpnet.sklearn as bp  # noqa: E402

X_DIGITS, Y_DIGITS = load_digits(n_class=4, return_X_y=True)
X_DIGITS = X_DIGITS[:240] / 16.0
Y_DIGITS = Y_DIGITS[:240]
X_REG, Y_REG = make_regression(n_samples=200, n_features=10, bias=20.0, noise=100.0,
                               random_state=7)
Y_REG = scale(Y_REG)
X_MULTI, Y_MULTI = make_regression(n_samples=150, n_features=6, n_targets=3, noise=10.0,
                                   random_state=2)
Y_MULTI = scale(Y_MULTI)
DATA = {"MLPClassifier": (X_DIGITS, Y_DIGITS), "MLPRegressor": (X_REG, Y_REG),
        "MLPRegressor-multi": (X_MULTI, Y_MULTI)}


def _fit_both(estimator: str, X, y, *, calls=("fit",), **params):
    """Fit scikit-learn's and bpnet's estimator alike; returns them and the
    warnings each emitted, as (category, message) lists."""
    out = []
    for module in (sk, bp):
        est = getattr(module, estimator)(**params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for call in calls:
                if call == "partial_fit" and estimator == "MLPClassifier":
                    est.partial_fit(X, y, classes=np.unique(y))
                else:
                    getattr(est, call)(X, y)
        out.append((est, [(w.category, str(w.message)) for w in caught
                          if not issubclass(w.category, (DeprecationWarning, RuntimeWarning))]))
    return out


def _assert_same_fit(theirs, ours, *, rtol=1e-9, atol=1e-12):
    for name in ("coefs_", "intercepts_"):
        for a, b in zip(getattr(theirs, name), getattr(ours, name), strict=True):
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=name)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol * 10)
    for name in ("loss_curve_", "validation_scores_"):
        if hasattr(theirs, name) and getattr(theirs, name) is not None:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name),
                                       rtol=rtol * 10, err_msg=name)
    for name in ("best_loss_", "best_validation_score_", "_no_improvement_count"):
        if hasattr(theirs, name):
            want = getattr(theirs, name)
            assert getattr(ours, name) == (want if want is None else pytest.approx(
                want, rel=rtol * 10)), name


STOCHASTIC_CASES = {
    "adam": dict(solver="adam"),
    "adam-early-stopping": dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    "adam-batch-17-no-shuffle": dict(solver="adam", batch_size=17, shuffle=False),
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.1),
    "sgd-classical": dict(solver="sgd", nesterovs_momentum=False, learning_rate_init=0.1),
    "sgd-momentum-0": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    "sgd-momentum-1": dict(solver="sgd", momentum=1.0, learning_rate_init=0.01),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.25,
                           learning_rate_init=0.5),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=1,
                         learning_rate_init=0.1),
    "sgd-early-stopping-tol": dict(solver="sgd", early_stopping=True, tol=0.05,
                                   n_iter_no_change=2, learning_rate_init=0.1),
}


@pytest.mark.parametrize("case", sorted(STOCHASTIC_CASES))
@pytest.mark.parametrize("estimator", sorted(DATA))
def test_stochastic_fits_match_sklearn(estimator, case):
    """Also the loss of a multi-output regression, which scikit-learn reports
    averaged over the outputs (and stops on)."""
    X, y = DATA[estimator]
    params = dict(hidden_layer_sizes=(12,), max_iter=12, random_state=0, alpha=1e-3,
                  **STOCHASTIC_CASES[case])
    (theirs, w_theirs), (ours, w_ours) = _fit_both(estimator.split("-")[0], X, y, **params)
    _assert_same_fit(theirs, ours)
    assert w_ours == w_theirs


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("params", [
    dict(max_iter=40),
    dict(max_iter=200, tol=1e-2),
    dict(max_iter=150, max_fun=10),  # max_fun ends the run, with sklearn's warning
    dict(max_iter=30, activation="logistic", alpha=0.0),
], ids=["max-iter", "converges", "max-fun", "logistic"])
def test_lbfgs_fits_match_sklearn(estimator, params):
    X, y = (X_DIGITS, Y_DIGITS) if estimator == "MLPClassifier" else (X_REG, Y_REG)
    (theirs, w_theirs), (ours, w_ours) = _fit_both(
        estimator, X, y, solver="lbfgs", hidden_layer_sizes=(10,), random_state=1, **params)
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_,
                    strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-8)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    assert w_ours == w_theirs


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("calls", [("fit", "fit"), ("partial_fit",) * 3,
                                   ("fit", "partial_fit", "partial_fit")],
                         ids=["warm-start", "partial-fit", "fit-then-partial-fit"])
def test_continued_fits_match_sklearn(solver, calls):
    """n_iter_ per call, t_ over calls, the optimizer state and the invscaling
    schedule carried the way scikit-learn carries them."""
    params = dict(solver=solver, hidden_layer_sizes=(8,), max_iter=4, random_state=3,
                  warm_start=True, learning_rate="invscaling", power_t=0.25,
                  learning_rate_init=0.3 if solver == "sgd" else 1e-2)
    (theirs, w_theirs), (ours, w_ours) = _fit_both("MLPClassifier", X_DIGITS, Y_DIGITS,
                                                   calls=calls, **params)
    _assert_same_fit(theirs, ours)
    assert w_ours == w_theirs


def test_warm_start_with_early_stopping_keeps_scores_in_step():
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, warm_start=True,
                  early_stopping=True, n_iter_no_change=100)
    (theirs, _), (ours, _) = _fit_both("MLPRegressor", X_REG, Y_REG, calls=("fit", "fit"),
                                       **params)
    _assert_same_fit(theirs, ours)
    assert len(ours.validation_scores_) == len(ours.loss_curve_) == 10
    assert ours.n_iter_ == 5


# -- the differences issue 13 found, one by one ---------------------------------------


def test_lbfgs_tol_is_the_gradient_tolerance_only():
    """Item 1: the default tol=1e-4 no longer stops L-BFGS after a few iterations
    (it took 7, R^2 0.81, when it was ftol as well)."""
    (theirs, w_theirs), (ours, w_ours) = _fit_both(
        "MLPRegressor", X_REG, Y_REG, solver="lbfgs", hidden_layer_sizes=(50,), random_state=1)
    assert ours.n_iter_ == theirs.n_iter_ > 100
    assert ours.score(X_REG, Y_REG) > 0.999 and w_ours == w_theirs == []


def test_lbfgs_warm_start_at_a_converged_point():
    """Item 1: a warm refit that has nothing left to do reports 0 iterations."""
    params = dict(solver="lbfgs", hidden_layer_sizes=(3,), random_state=0, warm_start=True,
                  tol=1e-1, max_iter=500)
    (theirs, _), (ours, _) = _fit_both("MLPRegressor", X_REG, Y_REG, calls=("fit", "fit"),
                                       **params)
    assert ours.n_iter_ == theirs.n_iter_ == 0
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)


def test_optim_lbfgs_takes_ftol_and_gtol_apart():
    """bpnet.optim.lbfgs: ``tol`` sets both (MLP.fit's meaning, unchanged),
    ``gtol`` alone leaves ftol at SciPy's default, ``ftol`` overrides ``tol``."""
    pytest.importorskip("scipy")
    scale_ = np.logspace(0, 3, 20)

    def f(theta):
        return float(np.sum(scale_ * theta**2)), 2 * scale_ * theta

    x0 = np.ones(20)
    both = bpnet.optim.lbfgs(f, x0, maxiter=500, tol=1e-3)
    gtol = bpnet.optim.lbfgs(f, x0, maxiter=500, gtol=1e-3)
    override = bpnet.optim.lbfgs(f, x0, maxiter=500, tol=1e-3, ftol=1e-300)
    assert both.nit < gtol.nit  # the loose ftol stopped the first early
    assert override.nit == gtol.nit and np.array_equal(override.x, gtol.x)
    assert np.max(np.abs(gtol.jac)) <= 1e-3


def test_max_fun_bounds_the_evaluations():
    """Item 2."""
    clf = bp.MLPClassifier(solver="lbfgs", hidden_layer_sizes=(20,), max_fun=7, random_state=0)
    with pytest.warns(ConvergenceWarning, match="EVALUATIONS EXCEEDS LIMIT"):
        clf.fit(X_DIGITS, Y_DIGITS)
    assert 1 <= clf.n_iter_ <= 7


def test_nesterov_with_zero_momentum_is_plain_sgd():
    """Item 3."""
    params = dict(solver="sgd", momentum=0.0, hidden_layer_sizes=(6,), max_iter=3,
                  random_state=0, learning_rate_init=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = bp.MLPClassifier(nesterovs_momentum=True, **params).fit(X_DIGITS, Y_DIGITS)
        b = bp.MLPClassifier(nesterovs_momentum=False, **params).fit(X_DIGITS, Y_DIGITS)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)


def test_warm_start_refuses_other_classes():
    """Item 5, with scikit-learn's message; the fitted model is kept."""
    clf = bp.MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", warm_start=True,
                           max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X_DIGITS, Y_DIGITS)
    before = clf.coefs_
    subset = Y_DIGITS < 3
    with pytest.raises(ValueError, match=r"warm_start can only be used where `y` has the same "
                                         r"classes .* Previously got \[0 1 2 3\], `y` has "
                                         r"\[0 1 2\]"):
        clf.fit(X_DIGITS[subset], Y_DIGITS[subset])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2, 3])
    for a, b in zip(before, clf.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_checks_y_against_classes_on_the_first_call():
    """Item 6."""
    clf = bp.MLPClassifier(solver="sgd")
    with pytest.raises(ValueError, match=r"`y` has classes not in `self\.classes_`"):
        clf.partial_fit([[3, 2], [1, 6]], [1, 0], classes=[2, 3])
    assert not hasattr(clf, "classes_") and not hasattr(clf, "n_features_in_")
    clf.partial_fit([[3, 2], [1, 6]], [1, 0], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="is not the same as on last call to partial_fit"):
        clf.partial_fit([[3, 2]], [1], classes=[0, 1])


def test_multilabel_partial_fit():
    """Item 6: an indicator y trains with partial_fit, one sigmoid per label."""
    X, Y = make_multilabel_classification(n_samples=60, random_state=0, return_indicator=True)
    clf = bp.MLPClassifier(solver="adam", hidden_layer_sizes=(30,), learning_rate_init=0.01,
                           random_state=0)
    for _ in range(60):
        clf.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
    assert clf.out_activation_ == "logistic" and clf.predict(X).shape == Y.shape
    assert clf.score(X, Y) > 0.6


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_partial_fit_refuses_early_stopping(estimator):
    """Item 7: after an early-stopping fit, and on a first call alike."""
    X, y = (X_DIGITS, Y_DIGITS) if estimator == "MLPClassifier" else (X_REG, Y_REG)
    kwargs = {"classes": np.unique(y)} if estimator == "MLPClassifier" else {}
    fresh = getattr(bp, estimator)(early_stopping=True)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        fresh.partial_fit(X, y, **kwargs)
    assert not hasattr(fresh, "n_features_in_")
    fitted = getattr(bp, estimator)(early_stopping=True, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        fitted.fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        fitted.partial_fit(X, y)


def test_non_finite_weights_raise_a_value_error():
    """Item 8: scikit-learn's ValueError, and the previous model is kept."""
    reg = bp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X_REG, Y_REG)
    before = reg.coefs_
    huge = np.finfo(np.float64).max * np.random.default_rng(0).uniform(size=(10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the products
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            reg.fit(huge, np.arange(10.0))
    assert reg.n_features_in_ == 10
    for a, b in zip(before, reg.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_diverging_early_stopping_keeps_the_best_weights():
    """Item 8: NaN validation scores are recorded; the best weights stay."""
    X, y = load_digits(n_class=3, return_X_y=True)
    reg = bp.MLPRegressor(hidden_layer_sizes=(50,), activation="identity", solver="sgd",
                          learning_rate_init=1.0, max_iter=20, early_stopping=True,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="weights became non-finite"):
            reg.fit(X, y)
    assert np.isnan(reg.validation_scores_[-1]) and isinstance(reg.validation_scores_[-1], float)
    assert all(np.all(np.isfinite(c)) for c in reg.coefs_)
    assert reg.best_validation_score_ == max(s for s in reg.validation_scores_
                                             if not np.isnan(s))
    assert np.all(np.isfinite(reg.predict(X)))


def test_early_stopping_split_stratifies_binary_targets_only():
    """Item 9: as scikit-learn: binary targets stratified (so a class of one
    sample is refused, by train_test_split), multilabel rows not (so a rare
    label combination fits)."""
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="The least populated class"):
        bp.MLPClassifier(early_stopping=True).fit(X, [0, 0, 0, 1])
    Xm, Ym = make_multilabel_classification(n_samples=40, random_state=0, return_indicator=True)
    Ym[0] = [1, 0, 1, 0, 1]  # a combination no other row has
    clf = bp.MLPClassifier(early_stopping=True, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(Xm, Ym)
    assert len(clf.validation_scores_) == 5


def test_multiclass_early_stopping_splits_like_sklearn():
    """Item 9: the same rows in the validation set give the same scores."""
    params = dict(hidden_layer_sizes=(8,), max_iter=6, random_state=5, early_stopping=True,
                  validation_fraction=0.25)
    (theirs, _), (ours, _) = _fit_both("MLPClassifier", X_DIGITS, Y_DIGITS, **params)
    assert ours.validation_scores_ == pytest.approx(theirs.validation_scores_, abs=1e-12)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_single_class_fits(solver):
    """Item 10."""
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = np.full(20, "only")
    (theirs, _), (ours, _) = _fit_both("MLPClassifier", X, y, solver=solver, max_iter=5,
                                       hidden_layer_sizes=(4,), random_state=0)
    np.testing.assert_array_equal(ours.classes_, ["only"])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    assert ours.score(X, y) == 1.0


def test_worked_sgd_step_through_the_public_api():
    """The arithmetic of scikit-learn's test_fit (one SGD step of a 3-2-1 logistic
    net with alpha=0.1), set up through net_.set_params instead of private state."""
    X, y = np.array([[0.6, 0.8, 0.7]]), np.array([0])
    clf = bp.MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                           activation="logistic", random_state=1, max_iter=1,
                           hidden_layer_sizes=2, momentum=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.net_.set_params([([[0.1, 0.2], [0.3, 0.1], [0.5, 0]], [0.1, 0.1]),
                         ([[0.1], [0.2]], [1.0])])
    clf.partial_fit(X, y)
    np.testing.assert_almost_equal(
        clf.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]],
        decimal=3)
    np.testing.assert_almost_equal(clf.coefs_[1], [[0.04706], [0.154089]], decimal=3)
    np.testing.assert_almost_equal(clf.intercepts_[0], [0.098333, 0.09626], decimal=3)
    np.testing.assert_almost_equal(clf.intercepts_[1], [0.9235], decimal=3)
    np.testing.assert_almost_equal(clf.predict_proba(X)[0, 1], 0.739, decimal=3)


def test_adaptive_schedule_divides_until_the_floor():
    """scikit-learn's test_adaptive_learning_rate, observed through the weights:
    1e-3 takes 5 divisions by 5 to fall below 1e-6, each after 11 stalled
    epochs, and the sixth stall stops the run, when scikit-learn's stops."""
    params = dict(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive",
                  random_state=0)
    (theirs, _), (ours, _) = _fit_both("MLPClassifier", [[3, 2], [1, 6]], [1, 0], **params)
    assert 6 * 11 <= ours.n_iter_ == theirs.n_iter_ < 3000
    _assert_same_fit(theirs, ours)


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_same_fit_on_every_backend(backend, estimator):
    """The scikit-learn-equal fit holds on bpnet's other backends (float64)."""
    X, y = (X_DIGITS, Y_DIGITS) if estimator == "MLPClassifier" else (X_REG, Y_REG)
    X, y = X[:120], y[:120]
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = getattr(sk, estimator)(**params).fit(X, y)
        ours = getattr(bp, estimator)(backend=backend.name, device=backend.device,
                                      **params).fit(X, y)
    assert ours.net_.backend == bpnet.backend.backend_name(bpnet.backend.get_namespace(
        backend.name))
    _assert_same_fit(theirs, ours, rtol=1e-7, atol=1e-9)

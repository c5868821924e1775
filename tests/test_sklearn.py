"""bpnet.sklearn estimators: scikit-learn's own checks, pipelines, searches, quality."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import bpnet  # noqa: E402
from bpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _check_keywords(check) -> dict:
    """The keywords a check was bound with (through nested partials)."""
    found = {}
    while hasattr(check, "func"):
        found = {**check.keywords, **found}
        check = check.func
    return found


# The checks fit tiny data sets with the default max_iter; scikit-learn's own MLP
# warns there too, and its test suite ignores the warning the same way.  The
# estimators declare Array API support, so the checks run on array-api-strict,
# torch... as well as NumPy.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    if _check_keywords(check).get("array_namespace") == "cupy" and not bpnet.cuda_available():
        pytest.skip("CuPy is installed but no CUDA device answers")
    check(estimator)


def test_the_array_api_checks_run():
    assert MLPClassifier().__sklearn_tags__().array_api_support
    assert MLPRegressor().__sklearn_tags__().array_api_support


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def test_fitted_attributes_match_sklearn_conventions(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        clf.fit(X_train, y_train)
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (10,)]
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ <= clf.loss_curve_[0]
    assert clf.n_features_in_ == 64 and clf.n_layers_ == 3 and clf.out_activation_ == "softmax"
    proba = clf.predict_proba(X_train[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(X_train[:5]), np.argmax(proba, axis=1))


def test_binary_multilabel_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=300,
                        random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):  # too few epochs to converge
        clf.fit(X, y)
    assert clf.out_activation_ == "logistic" and clf.coefs_[-1].shape == (8, 1)
    assert clf.predict_proba(X).shape == (120, 2)
    assert clf.score(X, y) > 0.9 and set(clf.predict(X)) <= {"yes", "no"}
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] * X[:, 1] > 0], axis=1).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=500,
                          random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        multi.fit(X, Y)
    assert multi.predict(X).shape == (120, 3) and multi.predict_proba(X).shape == (120, 3)
    assert multi.score(X, Y) > 0.8


def test_multi_output_regression_and_r2():
    X, Y = make_regression(n_samples=300, n_features=6, n_targets=2, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    Y = Y / Y.std(axis=0)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (300, 2)
    assert reg.score(X, Y) > 0.95
    single = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=300,
                          random_state=0).fit(X, Y[:, 0])
    assert single.predict(X).shape == (300,) and single.score(X, Y[:, 0]) > 0.95


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_solvers_learn(solver, digits):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier(hidden_layer_sizes=(64,), solver=solver, max_iter=60,
                        learning_rate_init=0.1 if solver == "sgd" else 1e-3, random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning) if solver != "lbfgs" else _nothing():
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.93


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_early_stopping_and_adaptive_schedule(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, n_iter_no_change=3,
                        max_iter=500, random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ < 500
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    settings = dict(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=0.5,
                    max_iter=100, tol=1e-2, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        adaptive = MLPClassifier(learning_rate="adaptive", **settings).fit(X_train, y_train)
        constant = MLPClassifier(**settings).fit(X_train, y_train)
    # the constant rate stops at its first stall; the adaptive one divides the
    # step by 5 there and goes on
    assert adaptive.n_iter_ > constant.n_iter_
    assert adaptive.loss_curve_[:constant.n_iter_] == constant.loss_curve_


def test_partial_fit_continues_and_checks_classes(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)
    clf.partial_fit(X_train[:500], y_train[:500], classes=np.arange(10))
    first = clf.loss_
    for _ in range(10):
        clf.partial_fit(X_train, y_train)
    # n_iter_ counts the epochs of the last call, t_ the samples of all, as in
    # scikit-learn
    assert clf.n_iter_ == 1 and clf.t_ == 500 + 10 * len(y_train)
    assert clf.loss_ < first and len(clf.loss_curve_) == 11
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X_train[:, :10], y_train)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


def test_warm_start_keeps_weights(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        clf.fit(X_train, y_train)
    w = clf.coefs_[0].copy()
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        clf.fit(X_train, y_train)
    # n_iter_ counts this fit's epochs, loss_curve_ all of them (scikit-learn's)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 6
    assert not np.array_equal(w, clf.coefs_[0])


def test_pipeline_grid_search_and_cross_validation(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=30, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(16,), (64,)],
                               "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        grid.fit(X_train, y_train)
    assert grid.best_score_ > 0.9 and grid.score(X_test, y_test) > 0.9
    reg = make_pipeline(StandardScaler(), MLPRegressor(solver="lbfgs", max_iter=200,
                                                       random_state=0))
    X, y = make_regression(n_samples=200, n_features=5, noise=0.5, random_state=1)
    assert cross_val_score(reg, X, y / y.std(), cv=3).mean() > 0.9


def test_pickle_round_trip(digits):
    X_train, X_test, y_train, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50, random_state=0)
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        clf.fit(X_train, y_train)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))


def test_bad_parameters_are_reported_at_fit():
    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    for params, match in [
        ({"activation": "softmax"}, "activation"),
        ({"solver": "newton"}, "solver"),
        ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"),
        ({"learning_rate_init": 0}, "learning_rate_init"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ]:
        with pytest.raises(ValueError, match=match):
            MLPClassifier(**params).fit(X, y)


def test_torch_input_trains_on_torch_and_returns_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, random_state=0)
    clf.fit(torch.asarray(X), torch.asarray(y))
    assert clf.net_.backend == "torch"
    assert isinstance(clf.predict(torch.asarray(X)), torch.Tensor)
    assert isinstance(clf.predict_proba(torch.asarray(X)), torch.Tensor)
    ref = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100,
                        random_state=0).fit(X, y)
    np.testing.assert_allclose(bpnet.to_numpy(clf.predict_proba(torch.asarray(X))),
                               ref.predict_proba(X), rtol=1e-6, atol=1e-8)


def test_quality_at_least_sklearn_with_same_settings(digits):
    """Same architecture, solver, schedule and epochs: bpnet's accuracy / R^2 is at
    least scikit-learn's (to within the spread between seeds)."""
    X_train, X_test, y_train, y_test = digits
    settings = dict(hidden_layer_sizes=(128,), solver="adam", batch_size=32, max_iter=40,
                    learning_rate_init=1e-3, alpha=1e-4, tol=0.0, n_iter_no_change=1000)
    ours, theirs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        for seed in range(3):
            ours.append(MLPClassifier(random_state=seed, **settings)
                        .fit(X_train, y_train).score(X_test, y_test))
            theirs.append(SkMLPClassifier(random_state=seed, **settings)
                          .fit(X_train, y_train).score(X_test, y_test))
    assert np.mean(ours) >= np.mean(theirs) - 0.01, (ours, theirs)
    X, y = make_regression(n_samples=600, n_features=8, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = y / y.std()
    Xa, Xb, ya, yb = train_test_split(X, y, random_state=0)
    reg = dict(hidden_layer_sizes=(64,), max_iter=300, random_state=0, tol=0.0,
               n_iter_no_change=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        r2_ours = MLPRegressor(**reg).fit(Xa, ya).score(Xb, yb)
        r2_theirs = SkMLPRegressor(**reg).fit(Xa, ya).score(Xb, yb)
    assert r2_ours >= r2_theirs - 0.01, (r2_ours, r2_theirs)

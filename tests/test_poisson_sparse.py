"""The Poisson loss (half deviance, log link) and scipy.sparse inputs."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet

from .helpers import weights


def test_poisson_gradient_matches_finite_differences(backend, rng):
    X = rng.standard_normal((16, 3))
    Y = rng.poisson(2.0, (16, 2)).astype(float)
    net = bpnet.MLP([3, 5, 2], activation="tanh", loss="poisson", backend=backend.name,
                    device=backend.device, dtype="float64", seed=1)
    assert net.output_activation == "exp"
    report = bpnet.gradcheck(net, X, Y, tol=1e-7)
    assert report.passed, str(report)


def test_poisson_complex_step_and_value(rng):
    X = rng.standard_normal((12, 3))
    Y = rng.poisson(1.0, (12, 1)).astype(float)
    net = bpnet.MLP([3, 4, 1], activation="tanh", loss="poisson", dtype="float64")
    _, grads = net.loss_and_grad(X, Y)
    exact = net.numerical_grad(X, Y, method="complex_step")
    for g, e in zip(grads, exact, strict=True):
        for a, b in zip(g, e, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the half deviance, scikit-learn's: mean of y log(y / mu) - y + mu, mu = exp(z)
    mu = net.predict(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylog = np.where(Y > 0, Y * np.log(Y / mu), 0.0)
    assert net.compute_loss(X, Y) == pytest.approx(np.mean(ylog - Y + mu), rel=1e-12)


def test_poisson_refuses_negative_targets_and_overflow_is_an_error(rng):
    X = rng.standard_normal((10, 2))
    net = bpnet.MLP([2, 3, 1], loss="poisson", dtype="float64")
    with pytest.raises(ValueError, match=">= 0"):
        net.fit(X, -np.ones(10))
    big = [(bpnet.to_numpy(W) * 0 + 400.0, bpnet.to_numpy(b)) for W, b in net.params]
    net.set_params(big)
    # exp(z) overflows to inf, never NaN, and compute_loss names the weights as the cause
    with np.errstate(over="ignore"), pytest.raises(
            FloatingPointError, match="overflows float64 at this network's weights"):
        net.compute_loss(np.abs(X) + 1, np.ones(10))
    # exp overflows (NumPy says so; silenced here): the loop's finiteness
    # check names it, and the weights stay as they were
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="non-finite"):
        net.fit(np.abs(X) + 1, np.ones(10), epochs=2)


def test_poisson_saves_by_name(tmp_path, rng):
    net = bpnet.MLP([2, 3, 1], loss="poisson", dtype="float64")
    net.save(tmp_path / "p.npz")
    back = bpnet.MLP.load(tmp_path / "p.npz")
    assert (back.loss, back.output_activation) == ("poisson", "exp")
    X = rng.standard_normal((4, 2))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


sparse = pytest.importorskip("scipy.sparse")


def _sparse_data(rng, n=60, d=30):
    X = sparse.random(n, d, density=0.1, format="csr", random_state=3, dtype=np.float64)
    sums = np.asarray(X.sum(axis=1)).ravel()
    y = (sums > np.median(sums)).astype(int)
    return X, y


@pytest.mark.parametrize("kind", ["csr_matrix", "csc_matrix", "csr_array"])
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_sparse_fit_equals_dense_fit(kind, optimizer, rng):
    X, y = _sparse_data(rng)
    Xs = getattr(sparse, kind)(X)
    runs = []
    for data in (X.toarray(), Xs):
        net = bpnet.MLP([30, 8, 2], loss="cross_entropy", dtype="float64", seed=2)
        batch = None if optimizer == "lbfgs" else 16
        history = net.fit(data, y, optimizer=optimizer, epochs=4, batch_size=batch,
                          sample_weight=np.linspace(0.5, 2, 60))
        runs.append((history.loss, weights(net), bpnet.to_numpy(net.predict(data))))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-10)
    for p, q in zip(runs[1][1], runs[0][1], strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(runs[1][2], runs[0][2], rtol=1e-10)


def test_sparse_is_never_densified(rng, monkeypatch):
    X, y = _sparse_data(rng)

    def refuse(*args, **kwargs):
        raise AssertionError("densified")

    for cls in (sparse.csr_matrix, sparse.csc_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    net = bpnet.MLP([30, 8, 2], loss="cross_entropy", dtype="float32")
    net.fit(X.tocsc(), y, epochs=2, batch_size=16)
    net.partial_fit(X, y, batch_size=16)
    net.evaluate(X, y, batch_size=20)
    net.loss_and_grad(X, y)
    assert net.predict(X).shape == (60, 2)


@pytest.mark.parametrize("name", ["array_api_strict", "torch"])
def test_sparse_is_refused_by_other_backends(name, rng):
    pytest.importorskip(name)
    X, y = _sparse_data(rng)
    net = bpnet.MLP([30, 4, 2], loss="cross_entropy", backend=name)
    with pytest.raises(TypeError, match="only the numpy backend"):
        net.fit(X, y, epochs=1)
    with pytest.raises(TypeError, match="toarray"):
        net.predict(X)


def test_sparse_estimators_with_weights_and_early_stopping(rng):
    pytest.importorskip("sklearn")
    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X, y = _sparse_data(rng, n=80)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, early_stopping=True,
                        random_state=0)
    dense = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, early_stopping=True,
                          random_state=0)
    w = np.linspace(0.1, 1.0, 80)
    with pytest.warns(Warning):
        clf.fit(X, y, sample_weight=w)
    with pytest.warns(Warning):
        dense.fit(X.toarray(), y, sample_weight=w)
    np.testing.assert_allclose(clf.validation_scores_, dense.validation_scores_)
    np.testing.assert_array_equal(clf.predict(X), dense.predict(X.toarray()))
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, loss="poisson", random_state=0)
    with pytest.warns(Warning):  # max_iter reached
        reg.fit(X, y.astype(float))
    assert reg.out_activation_ == "exp"
    assert np.all(reg.predict(X) > 0)

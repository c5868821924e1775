"""Per-sample weights: scikit-learn's weighted mean, through every path that
trains (the step, the compiled JAX epoch, L-BFGS) and every backend."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet

from .helpers import weights


def _data(rng, n=24):
    X = rng.standard_normal((n, 3))
    Y = rng.standard_normal((n, 2))
    w = rng.integers(0, 4, size=n).astype(float)
    w[:2] = (1.0, 3.0)  # some weight, and not all ones
    return X, Y, w


def _central(net, X, Y, w, alpha, eps=1e-6):
    """Central differences of the weighted loss, one parameter at a time (NumPy)."""
    host = [(bpnet.to_numpy(W).copy(), bpnet.to_numpy(b).copy()) for W, b in net.params]
    twin = bpnet.MLP(net.layer_sizes, activation=net.activation, loss=net.loss,
                     dtype="float64")
    grads = []
    for li, pair in enumerate(host):
        layer = []
        for pi, t in enumerate(pair):
            g = np.zeros_like(t)
            for idx in np.ndindex(t.shape):
                vals = []
                for sign in (1, -1):
                    moved = [(a.copy(), b.copy()) for a, b in host]
                    moved[li][pi][idx] += sign * eps
                    twin.set_params(moved)
                    vals.append(twin.compute_loss(X, Y, alpha=alpha, sample_weight=w))
                g[idx] = (vals[0] - vals[1]) / (2 * eps)
            layer.append(g)
        grads.append(layer)
    return grads


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "poisson"])
def test_weighted_gradient_matches_finite_differences(backend, loss, rng):
    X, _, w = _data(rng)
    Y = {"mse": rng.standard_normal((24, 2)), "cross_entropy": rng.integers(0, 2, 24),
         "poisson": rng.poisson(1.0, (24, 2)).astype(float)}[loss]
    net = bpnet.MLP([3, 4, 2], activation="tanh", loss=loss, backend=backend.name,
                    device=backend.device, dtype="float64", seed=2)
    value, grads = net.loss_and_grad(X, Y, alpha=0.3, sample_weight=w)
    expected = _central(net, X, Y, w, alpha=0.3)
    for (dW, db), (eW, eb) in zip(grads, expected, strict=True):
        np.testing.assert_allclose(bpnet.to_numpy(dW), eW, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(bpnet.to_numpy(db), eb, rtol=1e-6, atol=1e-8)
    assert value == pytest.approx(net.compute_loss(X, Y, alpha=0.3, sample_weight=w))


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_integer_weights_act_as_repeated_rows(name, rng):
    X, Y, w = _data(rng)
    Xd, Yd = np.repeat(X, w.astype(int), axis=0), np.repeat(Y, w.astype(int), axis=0)
    net = bpnet.MLP([3, 5, 2], backend=name, dtype="float64", seed=1)
    value, grads = net.loss_and_grad(X, Y, alpha=0.2, sample_weight=w)
    value_d, grads_d = net.loss_and_grad(Xd, Yd, alpha=0.2)
    assert value == pytest.approx(value_d, rel=1e-13)
    for g, gd in zip(grads, grads_d, strict=True):
        for a, b in zip(g, gd, strict=True):
            np.testing.assert_allclose(bpnet.to_numpy(a), bpnet.to_numpy(b), rtol=1e-12,
                                       atol=1e-14)
    assert net.evaluate(X, Y, sample_weight=w)["loss"] == pytest.approx(
        net.evaluate(Xd, Yd)["loss"], rel=1e-13)
    # full-batch training sees the same objective: the same path, to rounding
    for optimizer in ("lbfgs", "adam"):
        a = bpnet.MLP([3, 5, 2], backend=name, dtype="float64", seed=1)
        b = bpnet.MLP([3, 5, 2], backend=name, dtype="float64", seed=1)
        ha = a.fit(X, Y, sample_weight=w, optimizer=optimizer, epochs=5, batch_size=None,
                   alpha=0.1)
        hb = b.fit(Xd, Yd, optimizer=optimizer, epochs=5, batch_size=None, alpha=0.1)
        np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-10)
        for p, q in zip(weights(a), weights(b), strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-8, atol=1e-10)


def test_unit_weights_are_no_weights_bit_for_bit(backend, rng):
    X, Y, _ = _data(rng)
    runs = []
    for sw in (None, np.ones(len(X))):
        net = bpnet.MLP([3, 5, 2], backend=backend.name, device=backend.device,
                        dtype="float64", seed=4)
        history = net.fit(X, Y, sample_weight=sw, epochs=3, batch_size=7, alpha=0.1)
        runs.append((history.loss, weights(net)))
    assert runs[0][0] == runs[1][0]
    for p, q in zip(runs[0][1], runs[1][1], strict=True):
        assert np.array_equal(p, q)


def test_weighted_minibatches_match_the_numpy_reference(backend, rng):
    """Shuffled, batched, weighted: every backend (the compiled JAX epoch too)
    trains as NumPy does."""
    X, Y, w = _data(rng, n=30)
    out = []
    for name, device in (("numpy", None), (backend.name, backend.device)):
        net = bpnet.MLP([3, 5, 2], backend=name, device=device, dtype="float64", seed=5)
        history = net.fit(X, Y, sample_weight=w, epochs=3, batch_size=8, alpha=0.1)
        loss = net.partial_fit(X, Y, sample_weight=w, batch_size=8)
        out.append(([*history.loss, loss], weights(net)))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-9)
    for p, q in zip(out[1][1], out[0][1], strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("bad,error,match", [
    (np.ones(5), ValueError, "one weight per sample"),
    (np.ones((24, 1)), ValueError, "1-D"),
    (np.r_[np.nan, np.ones(23)], ValueError, "finite"),
    (np.r_[-1.0, np.ones(23)], ValueError, ">= 0"),
    (np.zeros(24), ValueError, "all zero"),
    (np.array(["a"] * 24), TypeError, "real numbers"),
])
def test_bad_weights_are_refused_before_anything_changes(bad, error, match, rng):
    X, Y, _ = _data(rng)
    net = bpnet.MLP([3, 5, 2], dtype="float64")
    net.partial_fit(X, Y)
    before, state = weights(net), net.training_state
    for call in (lambda: net.fit(X, Y, sample_weight=bad),
                 lambda: net.partial_fit(X, Y, sample_weight=bad),
                 lambda: net.loss_and_grad(X, Y, sample_weight=bad),
                 lambda: net.evaluate(X, Y, sample_weight=bad)):
        with pytest.raises(error, match=match):
            call()
    for p, q in zip(weights(net), before, strict=True):
        assert np.array_equal(p, q)
    assert net.training_state == state


def test_weighted_accuracy_and_validation(rng):
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    w = rng.uniform(0.0, 2.0, 40)
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", dtype="float64", seed=0)
    right = np.argmax(bpnet.to_numpy(net.predict(X)), axis=1) == y
    assert net.evaluate(X, y, sample_weight=w)["accuracy"] == pytest.approx(
        w[right].sum() / w.sum())
    history = net.fit(X, y, epochs=2, batch_size=None, validation_data=(X, y, w))
    # full batch: the last epoch's validation runs at the final weights
    scores = net.evaluate(X, y, sample_weight=w)
    assert history.val_accuracy[-1] == pytest.approx(scores["accuracy"])
    assert history.val_loss[-1] == pytest.approx(scores["loss"])


def test_estimators_match_scikit_learn_on_weighted_loss(rng):
    """scikit-learn's own MLP, same initial weights and sample weights: the same
    weighted loss (mini-batches normalised by their weight sums, the penalty
    alpha / (2 sum w)) and the same weights after each SGD epoch, early-stopping
    validation scores weighted by the held-out rows' weights."""
    sk = pytest.importorskip("sklearn.neural_network")
    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X = rng.standard_normal((60, 4))
    y = X @ rng.standard_normal(4)
    labels = (y > 0).astype(int)
    w = rng.uniform(0.0, 3.0, 60)
    settings = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, alpha=0.1,
                    batch_size=16, max_iter=3, random_state=0, learning_rate_init=0.05)
    for ours, theirs, target, extra in (
            (MLPRegressor, sk.MLPRegressor, y, {}),
            (MLPClassifier, sk.MLPClassifier, labels, dict(early_stopping=True)),
            (MLPRegressor, sk.MLPRegressor, y, dict(solver="lbfgs", batch_size="auto"))):
        params = {**settings, **extra}
        a = ours(**params, dtype="float64")
        b = theirs(**params)
        with pytest.warns(Warning):  # both stop at max_iter
            a.fit(X, target, sample_weight=w)
        with pytest.warns(Warning):
            b.fit(X, target, sample_weight=w)
        if params["solver"] == "sgd":
            np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-7)
        assert a.loss_ == pytest.approx(b.loss_, rel=1e-7)
        if extra.get("early_stopping"):
            np.testing.assert_allclose(a.validation_scores_, b.validation_scores_)
        for p, q in zip(a.coefs_, b.coefs_, strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-9)

"""Backprop against naive central differences and against hand-derived formulas."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.activations import ACTIVATIONS

from .helpers import make_targets

LOSSES_OUTPUTS = [
    ("mse", None),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("logistic", None),
    ("cross_entropy", None),
    ("binary_cross_entropy", None),
]


@pytest.mark.parametrize("loss,out", LOSSES_OUTPUTS)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backprop_matches_finite_differences(activation, loss, out, rng):
    k = 3
    X = rng.standard_normal((16, 4))
    Y = make_targets(loss, 16, k, rng)
    net = bpnet.MLP([4, 6, k], activation=activation, loss=loss, output_activation=out,
                    dtype="float64", seed=3)
    report = bpnet.gradcheck(net, X, Y, tol=1e-7)
    assert report.passed, str(report)
    assert set(report.errors) == {"W1", "b1", "W2", "b2"}


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_backprop_any_depth(depth, activation, rng):
    sizes = [3] + [5] * depth + [2]
    X = rng.standard_normal((10, 3))
    Y = rng.integers(0, 2, size=10)
    net = bpnet.MLP(sizes, activation=activation, loss="cross_entropy", dtype="float64", seed=depth)
    report = bpnet.gradcheck(net, X, Y, tol=1e-7)
    assert report.passed, str(report)
    assert len(report.errors) == 2 * (depth + 1)


def test_no_hidden_layer_is_logistic_regression(rng):
    X = rng.standard_normal((30, 4))
    Y = rng.integers(0, 2, size=(30, 1)).astype(float)
    net = bpnet.MLP([4, 1], loss="binary_cross_entropy", dtype="float64")
    (W, b), = net.params
    _, ((dW, db),) = net.loss_and_grad(X, Y)
    p = 1 / (1 + np.exp(-(X @ W + b)))
    np.testing.assert_allclose(dW, X.T @ (p - Y) / 30, rtol=1e-12)
    np.testing.assert_allclose(db, np.mean(p - Y, axis=0), rtol=1e-12)


def test_l2_penalty_gradient(rng):
    X = rng.standard_normal((12, 3))
    Y = rng.standard_normal((12, 2))
    net = bpnet.MLP([3, 4, 2], activation="tanh", dtype="float64")
    loss0, g0 = net.loss_and_grad(X, Y)
    loss1, g1 = net.loss_and_grad(X, Y, alpha=0.3)
    W1 = net.params[0][0]
    sq = sum(float(np.sum(W**2)) for W, _ in net.params)
    assert loss1 == pytest.approx(loss0 + 0.5 * 0.3 * sq / 12, rel=1e-12)
    np.testing.assert_allclose(g1[0][0], g0[0][0] + 0.3 * W1 / 12, rtol=1e-12)
    np.testing.assert_allclose(g1[0][1], g0[0][1], rtol=1e-12)  # biases are not penalised
    fd = net.numerical_grad(X, Y, alpha=0.3)
    np.testing.assert_allclose(g1[0][0], fd[0][0], rtol=1e-6, atol=1e-9)


def seed004_gradient(x, y, Wi, bi, Wo, bo):
    """Seed 004's single-sample formulas: ReLU hidden layer, identity output,
    logistic loss s = log(1 + exp(-y * Yo)), written out by hand."""
    H = np.maximum(x @ Wi + bi, 0)
    Yo = Wo @ H + bo
    g_bo = -y / (1 + np.exp(y * Yo))  # -y * sigmoid(-y * Yo)
    g_Wo = g_bo * H
    g_bi = g_bo * Wo * (H > 0)
    g_Wi = np.outer(x, g_bi)
    return g_Wi, g_bi, g_Wo, g_bo


def test_matches_seed_004_hand_derived_logistic_relu(rng):
    X = rng.standard_normal((25, 2))
    Y = rng.choice([-1.0, 1.0], size=25)
    net = bpnet.MLP([2, 7, 1], activation="relu", loss="logistic", dtype="float64", seed=5)
    (Wi, bi), (Wo, bo) = net.params
    _, ((dWi, dbi), (dWo, dbo)) = net.loss_and_grad(X, Y)
    # the batched loss is the mean over samples of the seed's per-sample loss
    per_sample = [seed004_gradient(x, y, Wi, bi, Wo[:, 0], bo[0]) for x, y in zip(X, Y)]
    mean = [np.mean([g[i] for g in per_sample], axis=0) for i in range(4)]
    np.testing.assert_allclose(dWi, mean[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dbi, mean[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dWo[:, 0], mean[2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dbo[0], mean[3], rtol=1e-12)


def nielsen_bp1_bp4(x, y, params):
    """Nielsen's four equations, one sample at a time, column vectors, sigmoid
    everywhere and quadratic cost (his network.py's backprop)."""
    def s(z):
        return 1 / (1 + np.exp(-z))

    activations, zs = [x[:, None]], []
    for W, b in params:
        zs.append(W.T @ activations[-1] + b[:, None])
        activations.append(s(zs[-1]))
    delta = (activations[-1] - y[:, None]) * s(zs[-1]) * (1 - s(zs[-1]))  # BP1
    grads = [None] * len(params)
    grads[-1] = (activations[-2] @ delta.T, delta[:, 0])  # BP4, BP3
    for l in range(2, len(params) + 1):
        sp = s(zs[-l]) * (1 - s(zs[-l]))
        delta = (params[-l + 1][0] @ delta) * sp  # BP2
        grads[-l] = (activations[-l - 1] @ delta.T, delta[:, 0])
    return grads


def test_matches_nielsen_bp1_to_bp4(rng):
    X = rng.standard_normal((9, 3))
    Y = rng.uniform(size=(9, 2))
    net = bpnet.MLP([3, 5, 4, 2], activation="sigmoid", loss="mse",
                    output_activation="sigmoid", dtype="float64", seed=11)
    params = [(bpnet.to_numpy(W), bpnet.to_numpy(b)) for W, b in net.params]
    _, grads = net.loss_and_grad(X, Y)
    per_sample = [nielsen_bp1_bp4(x, y, params) for x, y in zip(X, Y)]
    for l, (dW, db) in enumerate(grads):
        np.testing.assert_allclose(dW, np.mean([g[l][0] for g in per_sample], axis=0), rtol=1e-11)
        np.testing.assert_allclose(db, np.mean([g[l][1] for g in per_sample], axis=0), rtol=1e-11)


def test_numerical_grad_is_naive_two_passes_per_parameter(monkeypatch, rng):
    from bpnet import kernels

    calls = []
    original = kernels.loss_value
    monkeypatch.setattr(kernels, "loss_value", lambda *a, **k: calls.append(1) or original(*a, **k))
    net = bpnet.MLP([3, 4, 2], dtype="float64")
    net.numerical_grad(rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    assert len(calls) == 2 * net.n_params


def test_float32_gradients_follow_float64(rng):
    X = rng.standard_normal((64, 8))
    Y = rng.integers(0, 4, size=64)
    net64 = bpnet.MLP([8, 16, 4], loss="cross_entropy", dtype="float64")
    net32 = net64.astype("float32")
    l64, g64 = net64.loss_and_grad(X, Y)
    l32, g32 = net32.loss_and_grad(X, Y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for (a, b), (c, d) in zip(g32, g64):
        assert a.dtype == np.float32 and b.dtype == np.float32
        np.testing.assert_allclose(a, c, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(b, d, rtol=1e-3, atol=1e-5)


def test_gradcheck_catches_a_wrong_gradient(monkeypatch, rng):
    from bpnet import kernels

    net = bpnet.MLP([3, 4, 2], activation="tanh", dtype="float64")
    true = kernels.loss_and_grad

    def broken(*args, **kwargs):
        value, grads = true(*args, **kwargs)
        (dW, db), *rest = grads
        return value, [(dW * 1.01, db), *rest]

    monkeypatch.setattr(kernels, "loss_and_grad", broken)
    report = bpnet.gradcheck(net, rng.standard_normal((6, 3)), rng.standard_normal((6, 2)))
    assert not report.passed
    assert report.errors["W1"] > 1e-3 and report.errors["W2"] < 1e-7
    assert "FAIL" in str(report)


def test_l2_penalty_on_every_backend(backend, rng):
    X = rng.standard_normal((10, 3))
    Y = rng.integers(0, 2, size=10)
    ref = bpnet.MLP([3, 4, 2], loss="cross_entropy", dtype="float64", seed=2)
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=2)
    value, grads = net.loss_and_grad(X, Y, alpha=0.7)
    ref_value, ref_grads = ref.loss_and_grad(X, Y, alpha=0.7)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for (dW, db), (rW, rb) in zip(grads, ref_grads):
        np.testing.assert_allclose(bpnet.to_numpy(dW), rW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(bpnet.to_numpy(db), rb, rtol=1e-12, atol=1e-14)

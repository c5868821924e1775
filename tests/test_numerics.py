"""Activations and losses: formulas, derivatives and stability at extreme inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpnet
from bpnet.activations import ACTIVATIONS, sigmoid, softplus
from bpnet.losses import LOSSES, log_softmax

from .helpers import make_targets

EXTREME = np.array([[-1000.0, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1000.0]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_from_output_matches_numerical_derivative(name):
    act = ACTIVATIONS[name]
    z = np.linspace(-4, 4, 41)
    z = z[np.abs(z) > 1e-3]  # ReLU's kink
    a = act.f(z, np)
    h = 1e-6
    numeric = (act.f(z + h, np) - act.f(z - h, np)) / (2 * h)
    exact = np.ones_like(z) if act.df is None else act.df(a, np)
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-9)


def test_reference_values():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(sigmoid(z, np), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(softplus(z, np), np.log1p(np.exp(z)), rtol=1e-15)
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"].f(z, np), [-0.02, 0.0, 3.0])
    assert sigmoid(np.array([-1000.0]), np)[0] == 0.0
    assert sigmoid(np.array([1000.0]), np)[0] == 1.0
    assert softplus(np.array([1000.0]), np)[0] == 1000.0


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_finite_without_warnings_at_extremes(name):
    act = ACTIVATIONS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.f(EXTREME, np)
        d = np.ones_like(a) if act.df is None else act.df(a, np)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))


def assert_finite_without_warnings(net, X, Y):
    """Loss, gradients and predictions are finite, and no warning was raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = net.loss_and_grad(X, Y)
        p = net.predict(X)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for pair in grads for g in pair)
    assert np.all(np.isfinite(p))


#: The losses whose value stays finite at any pre-activation; poisson's is the
#: mean of exp(z), which overflows to inf (never NaN) for large z: see
#: tests/test_poisson_sparse.py.
BOUNDED = sorted(set(LOSSES) - {"poisson"})

@pytest.mark.parametrize("loss", BOUNDED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_losses_finite_at_extreme_preactivations(loss, dtype, rng):
    net = bpnet.MLP([1, 7], activation="relu", loss=loss, dtype=dtype)
    net.set_params([(EXTREME, np.zeros(7))])
    X = np.array([[1.0], [-1.0], [3.0]])
    Y = make_targets(loss, 3, 7, rng)
    assert_finite_without_warnings(net, X, Y)


def test_cross_entropy_value_and_probabilities(rng):
    z = rng.standard_normal((5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    expected = -np.mean(np.log(np.exp(z) / np.exp(z).sum(1, keepdims=True))[np.arange(5), labels])
    net = bpnet.MLP([3, 3], activation="relu", loss="cross_entropy", dtype="float64")
    net.set_params([(np.eye(3), np.zeros(3))])
    value, _ = net.loss_and_grad(z, labels)
    assert value == pytest.approx(expected, rel=1e-12)
    p = net.predict(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    one_hot = np.eye(3)[labels]
    assert net.loss_and_grad(z, one_hot)[0] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(log_softmax(z, np), np.log(p), rtol=1e-12)


@pytest.mark.parametrize(
    "loss,per_sample",
    [
        ("mse", lambda a, y: 0.5 * np.sum((a - y) ** 2, axis=1)),
        ("logistic", lambda a, y: np.sum(np.log1p(np.exp(-y * a)), axis=1)),
        ("binary_cross_entropy", lambda a, y: -np.sum(
            y * np.log(1 / (1 + np.exp(-a))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-a))), axis=1)),
    ],
)
def test_loss_is_mean_of_per_sample_cost(loss, per_sample, rng):
    z = rng.standard_normal((8, 2))
    Y = make_targets(loss, 8, 2, rng)
    net = bpnet.MLP([2, 2], loss=loss, dtype="float64")
    net.set_params([(np.eye(2), np.zeros(2))])
    assert net.compute_loss(z, Y) == pytest.approx(np.mean(per_sample(z, Y)), rel=1e-12)


@pytest.mark.parametrize("loss", BOUNDED)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_hidden_preactivations_in_the_thousands_stay_finite(activation, loss, rng):
    """Every activation x loss with |z| ~ 1000 in the hidden and output layers:
    finite loss, gradients and predictions, and not one overflow warning."""
    net = bpnet.MLP([2, 4, 3], activation=activation, loss=loss, dtype="float32")
    W1 = np.array([[1000.0, -1000.0, 500.0, -3000.0], [-1000.0, 1000.0, 2000.0, 1.0]])
    W2 = np.array([[5.0, -5.0, 1.0], [-3.0, 2.0, 4.0], [1.0, 1.0, -1.0], [-2.0, 3.0, 2.0]])
    net.set_params([(W1, np.zeros(4)), (W2, np.zeros(3))])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])
    Y = make_targets(loss, 4, 3, rng)
    assert_finite_without_warnings(net, X, Y)

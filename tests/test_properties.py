"""Property-based tests: any architecture, activation, loss, batch size and dtype."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bpnet
from bpnet.activations import ACTIVATIONS
from bpnet.losses import LOSSES

from .helpers import make_targets

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

KINKED = ("relu", "leaky_relu")


def near_kink(net, X, eps=1e-4):
    """Whether a hidden pre-activation sits within eps of ReLU's kink, where the
    derivative is undefined and central differences rightly disagree."""
    a = np.asarray(X, dtype=np.float64)
    for W, b in net.params[:-1]:
        z = a @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
        if np.any(np.abs(z) < eps):
            return True
        a = net.hidden[0].f(z, np)
    return False


architectures = st.lists(st.integers(1, 6), min_size=2, max_size=5)


@SETTINGS
@given(
    sizes=architectures,
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    loss=st.sampled_from(sorted(LOSSES)),
    n=st.integers(1, 9),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_backprop_matches_finite_differences(sizes, activation, loss, n, dtype, seed):
    rng = np.random.default_rng(seed)
    if loss == "cross_entropy" and sizes[-1] < 2:
        sizes = [*sizes[:-1], 2]
    net = bpnet.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=seed)
    X = rng.standard_normal((n, sizes[0]))
    Y = make_targets(loss, n, sizes[-1], rng)
    assume(activation not in KINKED or not near_kink(net, X))
    report = bpnet.gradcheck(net, X, Y, tol=1e-6)
    assert report.passed, str(report)
    _, grads = net.loss_and_grad(X, Y)
    for (dW, db), (W, b) in zip(grads, net.params):
        assert dW.shape == W.shape and db.shape == b.shape
        assert dW.dtype == W.dtype == np.dtype(dtype)


@SETTINGS
@given(
    sizes=architectures,
    n=st.integers(1, 5),
    bad_features=st.integers(1, 8),
    extra_dims=st.integers(0, 2),
)
def test_wrong_shapes_raise_bpnet_errors(sizes, n, bad_features, extra_dims):
    net = bpnet.MLP(sizes, loss="mse", dtype="float64")
    if bad_features == sizes[0]:
        bad_features += 1
    with pytest.raises(ValueError, match="features"):
        net.predict(np.ones((n, bad_features)))
    with pytest.raises(ValueError, match="2-D"):
        net.predict(np.ones((n,) * (1 if extra_dims == 0 else 3)))
    with pytest.raises(ValueError, match="one row per sample"):
        net.loss_and_grad(np.ones((n, sizes[0])), np.ones((n + 1, sizes[-1])))
    k = sizes[-1]
    with pytest.raises(ValueError, match="columns"):
        net.loss_and_grad(np.ones((n, sizes[0])), np.ones((n, k + 1)))


@SETTINGS
@given(
    sizes=architectures,
    which=st.integers(0, 10),
    delta=st.sampled_from([-1, 1]),
)
def test_set_params_with_wrong_shape_keeps_params(sizes, which, delta):
    net = bpnet.MLP(sizes, dtype="float64")
    before = [(W.copy(), b.copy()) for W, b in net.params]
    layer = which % len(before)
    bad = [(W.copy(), b.copy()) for W, b in before]
    W, b = bad[layer]
    bad[layer] = (np.ones((W.shape[0], max(W.shape[1] + delta, 0) or 2)), b)
    if bad[layer][0].shape == W.shape:
        bad[layer] = (np.ones((W.shape[0] + 1, W.shape[1])), b)
    with pytest.raises(ValueError, match="shape"):
        net.set_params(bad)
    for (W1, b1), (W0, b0) in zip(net.params, before):
        np.testing.assert_array_equal(W1, W0)
        np.testing.assert_array_equal(b1, b0)

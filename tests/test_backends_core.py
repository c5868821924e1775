"""The same kernels on NumPy and on array-api-strict (default device and device1)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, make_targets

import bpnet
from bpnet._namespace import device_of

LOSSES = ["mse", "logistic", "cross_entropy", "binary_cross_entropy"]


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_grads_predictions_match_numpy_float64(backend, dtype, loss, rng):
    X = rng.standard_normal((32, 5))
    Y = make_targets(loss, 32, 3, rng)
    ref = bpnet.MLP([5, 8, 6, 3], activation="tanh", loss=loss, dtype="float64", seed=7)
    net = bpnet.MLP([5, 8, 6, 3], activation="tanh", loss=loss, backend=backend.name,
                    device=backend.device, dtype=dtype, seed=7)
    l_ref, g_ref = ref.loss_and_grad(X, Y)
    value, grads = net.loss_and_grad(X, Y)
    assert isinstance(value, float)
    assert value == pytest.approx(l_ref, rel=1e-12 if dtype == "float64" else 1e-5)
    expected_device = backend.device if backend.device is not None else net.device
    for (dW, db), (rW, rb) in zip(grads, g_ref):
        for g, r in ((dW, rW), (db, rb)):
            assert device_of(g) == expected_device
            assert bpnet.to_numpy(g).dtype == np.dtype(dtype)
            assert_close(g, r, dtype)
    p = net.predict(X)
    assert device_of(p) == expected_device
    assert_close(p, ref.predict(X), dtype)


def test_same_seed_same_weights_everywhere(backend):
    a = bpnet.MLP([4, 9, 3], seed=42, dtype="float64")
    b = bpnet.MLP([4, 9, 3], seed=42, dtype="float64", backend=backend.name, device=backend.device)
    c = bpnet.MLP([4, 9, 3], seed=43, dtype="float64")
    for (W, bias), (W2, bias2), (W3, _) in zip(a.params, b.params, c.params):
        np.testing.assert_array_equal(bpnet.to_numpy(W2), W)
        np.testing.assert_array_equal(bpnet.to_numpy(bias2), bias)
        assert not np.array_equal(W3, W)


def test_params_live_on_the_asked_device(backend, dtype):
    net = bpnet.MLP([3, 4, 2], backend=backend.name, device=backend.device, dtype=dtype)
    for W, b in net.params:
        assert device_of(W) == net.device and device_of(b) == net.device
        assert W.shape[0] in (3, 4) and b.ndim == 1
    net.set_params([(np.ones((3, 4)), np.zeros(4)), (np.ones((4, 2)), np.zeros(2))])
    assert all(device_of(W) == net.device for W, _ in net.params)


def test_backend_arrays_are_accepted_as_input(backend, rng):
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64")
    X = rng.standard_normal((6, 3))
    labels = np.array([0, 1, 1, 0, 1, 0])
    xp = net.xp
    Xb = xp.asarray(X, device=net.device)
    yb = xp.asarray(labels, device=net.device)
    assert net.loss_and_grad(Xb, yb)[0] == pytest.approx(net.loss_and_grad(X, labels)[0])


def test_strict_2024_12_api_version(rng):
    strict = pytest.importorskip("array_api_strict")
    with strict.ArrayAPIStrictFlags(api_version="2024.12"):
        net = bpnet.MLP([4, 6, 3], activation="softplus", loss="cross_entropy",
                        backend="array_api_strict", device=strict.Device("device1"),
                        dtype="float64")
        X = rng.standard_normal((10, 4))
        Y = rng.integers(0, 3, size=10)
        assert bpnet.gradcheck(net, X, Y).passed
        history = net.fit(X, Y, lr=0.5, epochs=5, batch_size=4)
        assert history.epochs == 5
        assert device_of(net.params[0][0]) == strict.Device("device1")


def test_gradcheck_on_device1():
    strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    net = bpnet.MLP([2, 3, 1], activation="sigmoid", loss="binary_cross_entropy",
                    backend="array_api_strict", device=strict.Device("device1"), dtype="float32")
    report = bpnet.gradcheck(net, rng.standard_normal((7, 2)), rng.integers(0, 2, (7, 1)))
    assert report.passed and report.dtype == "float64"

"""Parameters on every backend and device; array-api-strict specifics.

Losses, gradients, predictions and fits against NumPy float64 are in
test_backends.py."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.backend import device_of


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

"""Every backend against NumPy float64: the same kernels, the same numbers.

The ``backend`` fixture (conftest.py) runs each test on NumPy, array-api-strict
(default device and ``device1``), PyTorch, JAX, Dask (threads, and a two-worker
``LocalCluster``) and CuPy when a CUDA device answers.  Every result must come
back as an array of the network's backend, on its device, in its dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.backend import array_library, device_of
from bpnet.backend.lazy import materialize
from bpnet.gradcheck import relative_error

from .helpers import ALL_BACKENDS, assert_close, backend_params, make_targets

#: (loss, hidden activation): every loss, and every hidden derivative
#: (ReLU's is the one CuPy fuses).
CASES = [
    ("mse", "relu"),
    ("cross_entropy", "tanh"),
    ("binary_cross_entropy", "sigmoid"),
    ("logistic", "leaky_relu"),
    ("cross_entropy", "softplus"),
]


def _pair(backend, dtype, sizes, loss, activation, seed=7):
    """(reference NumPy float64 net, the same net on ``backend`` in ``dtype``)."""
    ref = bpnet.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=seed)
    net = bpnet.MLP(sizes, activation=activation, loss=loss, backend=backend.name,
                    device=backend.device, dtype=dtype, seed=seed)
    return ref, net


#: Backends for the tests whose point is numerics, not scheduling: the
#: two-worker cluster adds only its per-compute overhead there.
LOCAL_BACKENDS = backend_params([b for b in ALL_BACKENDS if not b.cluster])
CLUSTER_BACKENDS = backend_params([b for b in ALL_BACKENDS if b.cluster])


def _host(net, arrays) -> list[np.ndarray]:
    """Every array on the host, lazy ones computed together in one go."""
    return [bpnet.to_numpy(t) for t in materialize(net.xp, *arrays)]


def _assert_native(net, arrays, dtype: str) -> None:
    """Each array is of the net's backend, on its device, in ``dtype``."""
    for t in arrays:
        assert array_library(t) == net.backend, type(t)
        assert device_of(t) == net.device
        assert bpnet.to_numpy(t).dtype == np.dtype(dtype)


@pytest.mark.parametrize(("loss", "activation"), CASES)
@pytest.mark.parametrize("backend", LOCAL_BACKENDS, indirect=True)
def test_loss_gradients_predictions_match_numpy_float64(backend, dtype, loss, activation, rng):
    _check_loss_gradients_predictions(backend, dtype, loss, activation, rng)


@pytest.mark.parametrize(("loss", "activation"), CASES[:2])
@pytest.mark.parametrize("backend", CLUSTER_BACKENDS, indirect=True)
def test_loss_gradients_predictions_on_a_cluster(backend, dtype, loss, activation, rng):
    # The same numbers with the chunks spread over two workers; two cases
    # suffice, since the cluster changes where tasks run, not what they compute.
    _check_loss_gradients_predictions(backend, dtype, loss, activation, rng)


def _check_loss_gradients_predictions(backend, dtype, loss, activation, rng):
    X = rng.standard_normal((40, 5))
    Y = make_targets(loss, 40, 3, rng)
    ref, net = _pair(backend, dtype, [5, 8, 6, 3], loss, activation)
    if backend.device is not None:
        assert net.device == backend.device
    l_ref, g_ref = ref.loss_and_grad(X, Y, alpha=0.01)
    value, grads = net.loss_and_grad(X, Y, alpha=0.01)
    assert isinstance(value, float)
    assert value == pytest.approx(l_ref, rel=1e-12 if dtype == "float64" else 1e-5)
    flat = [t for pair in grads for t in pair]
    _assert_native(net, flat, dtype)
    for got, want in zip(flat, [t for pair in g_ref for t in pair], strict=True):
        assert_close(got, want, dtype, like=net)
    p = net.predict(X)
    _assert_native(net, [p], dtype)
    assert_close(p, ref.predict(X), dtype, like=net)
    assert net.compute_loss(X, Y) == pytest.approx(ref.compute_loss(X, Y),
                                                   rel=1e-12 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("backend", LOCAL_BACKENDS, indirect=True)
def test_numerical_grad_matches_backprop(backend, dtype, rng):
    # 2P = 78 forward passes; on JAX each perturbation is a one-hot add
    # (immutable arrays), on the others an item assignment on a copy.
    X = rng.standard_normal((24, 5))
    Y = make_targets("cross_entropy", 24, 3, rng)
    ref, net = _pair(backend, dtype, [5, 4, 3], "cross_entropy", "tanh")
    _, exact = ref.loss_and_grad(X, Y)
    numerical = net.numerical_grad(X, Y)
    flat = [t for pair in numerical for t in pair]
    _assert_native(net, flat, dtype)
    tol = 1e-7 if dtype == "float64" else 5e-3
    for got, want in zip(flat, [t for pair in exact for t in pair], strict=True):
        assert relative_error(bpnet.to_numpy(got), want) < tol
    for (W, b), (W0, b0) in zip(net.params, ref.params, strict=True):
        # finite differences perturb copies, never the network's own parameters
        assert_close(W, W0, dtype, like=net)
        assert_close(b, b0, dtype, like=net)


def test_full_batch_fit_matches_numpy(backend, dtype, rng):
    X = rng.standard_normal((40, 5))
    Y = make_targets("cross_entropy", 40, 3, rng)
    ref, net = _pair(backend, dtype, [5, 8, 3], "cross_entropy", "relu")
    h_ref = ref.fit(X, Y, optimizer="sgd", lr=0.5, epochs=2)
    history = net.fit(X, Y, optimizer="sgd", lr=0.5, epochs=2)
    assert history.loss[-1] < history.loss[0]
    # float32 rounding compounds over the steps: 10x the one-step tolerance
    np.testing.assert_allclose(history.loss, h_ref.loss,
                               rtol=1e-12 if dtype == "float64" else 1e-4)
    flat = [t for pair in net.params for t in pair]
    _assert_native(net, flat, dtype)
    for got, want in zip(_host(net, flat), [t for pair in ref.params for t in pair], strict=True):
        assert_close(got, want, dtype, scale=10.0)


@pytest.mark.parametrize("backend", LOCAL_BACKENDS, indirect=True)
def test_minibatch_fit_in_order_matches_numpy(backend, rng):
    X = rng.standard_normal((40, 5))
    Y = make_targets("mse", 40, 3, rng)
    ref, net = _pair(backend, "float64", [5, 8, 3], "mse", "tanh")
    h_ref = ref.fit(X, Y, lr=0.1, epochs=2, batch_size=16, shuffle=False)
    history = net.fit(X, Y, lr=0.1, epochs=2, batch_size=16, shuffle=False)
    np.testing.assert_allclose(history.loss, h_ref.loss, rtol=1e-12)
    flat = [t for pair in net.params for t in pair]
    for got, want in zip(_host(net, flat), [t for pair in ref.params for t in pair], strict=True):
        assert_close(got, want)


def test_backend_arrays_in_give_backend_arrays_out(backend, dtype, rng):
    X = rng.standard_normal((40, 5))
    labels = rng.integers(0, 3, 40)
    ref, net = _pair(backend, dtype, [5, 8, 3], "cross_entropy", "relu")
    xp = net.xp
    Xb = xp.asarray(np.asarray(X, dtype=dtype), device=net.device)
    yb = xp.asarray(labels, device=net.device)
    value, grads = net.loss_and_grad(Xb, yb)
    assert value == pytest.approx(ref.loss_and_grad(X, labels)[0],
                                  rel=1e-12 if dtype == "float64" else 1e-5)
    _assert_native(net, [grads[0][0], net.predict(Xb)], dtype)


def test_to_numpy_for_every_backend(backend, dtype):
    net = bpnet.MLP([2, 3], backend=backend.name, device=backend.device, dtype=dtype, seed=3)
    host = bpnet.MLP([2, 3], dtype=dtype, seed=3).params[0][0]
    W = bpnet.to_numpy(net.params[0][0])
    assert type(W) is np.ndarray and W.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(W, host)

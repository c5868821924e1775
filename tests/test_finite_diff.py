"""Finite differences: the naive loop, the batched variant, and partials at chosen
positions agree with each other and with backprop (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet import finite_diff
from bpnet.backend import device_of
from bpnet.params import Layout

from .helpers import Backend, make_targets

NUMPY = Backend("numpy", "numpy")

LOSSES_OUTPUTS = [
    ("mse", None),
    ("mse", "tanh"),
    ("logistic", None),
    ("cross_entropy", None),
    ("binary_cross_entropy", None),
]


def _setup(backend, sizes=(4, 6, 5, 3), activation="tanh", loss="cross_entropy", out=None,
           n=9, seed=0):
    rng = np.random.default_rng(seed)
    net = bpnet.MLP(list(sizes), activation=activation, loss=loss, output_activation=out,
                    backend=backend.name, device=backend.device, dtype="float64", seed=seed)
    X = rng.standard_normal((n, sizes[0]))
    Y = make_targets(loss, n, sizes[-1], rng)
    x, y = net._xy(X, Y)
    return net, X, Y, x, y


def _args(net, x, y):
    return net.params, x, y, net.arch


def _flat(grads) -> np.ndarray:
    return np.concatenate([bpnet.to_numpy(t).ravel() for pair in grads for t in pair])


def _assert_grad_close(actual, expected):
    a, e = _flat(actual), _flat(expected)
    scale = np.max(np.abs(e))
    np.testing.assert_allclose(a, e, rtol=0, atol=1e-8 * scale)


@pytest.mark.parametrize("loss,out", LOSSES_OUTPUTS)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus"])
def test_batched_matches_naive_and_backprop(activation, loss, out):
    net, X, Y, x, y = _setup(NUMPY, activation=activation, loss=loss, out=out)
    _, bp = net.loss_and_grad(X, Y, alpha=0.2)
    naive = finite_diff.numerical_grad(*_args(net, x, y), alpha=0.2, xp=net.xp)
    batched = finite_diff.numerical_grad_batched(*_args(net, x, y), alpha=0.2, xp=net.xp)
    _assert_grad_close(batched, bp)
    _assert_grad_close(naive, bp)
    _assert_grad_close(batched, naive)


def test_batched_on_every_core_backend_and_device(backend):
    net, X, Y, x, y = _setup(backend)
    _, bp = net.loss_and_grad(X, Y)
    batched = finite_diff.numerical_grad_batched(*_args(net, x, y), xp=net.xp)
    for (W, b), (gW, gb) in zip(net.params, batched):
        assert gW.shape == W.shape and gb.shape == b.shape
        assert gW.dtype == W.dtype
        assert device_of(gW) == device_of(W) and device_of(gb) == device_of(b)
    _assert_grad_close(batched, bp)


@pytest.mark.parametrize("max_elements", [1, 40, 10**9])
def test_chunking_does_not_change_the_result(max_elements):
    net, _, _, x, y = _setup(NUMPY, sizes=(3, 7, 4))
    ref = finite_diff.numerical_grad_batched(*_args(net, x, y), xp=net.xp)
    got = finite_diff.numerical_grad_batched(*_args(net, x, y), max_elements=max_elements,
                                           xp=net.xp)
    _assert_grad_close(got, ref)


@pytest.mark.parametrize("method", ["naive", "batched"])
def test_partials_at_chosen_positions_follow_ravel_order(method, backend):
    net, X, Y, x, y = _setup(backend)
    _, bp = net.loss_and_grad(X, Y)
    flat_bp = bpnet.to_numpy(Layout.of(bp).ravel(bp, xp=net.xp))
    indices = [57, 3, 0, 57, len(flat_bp) - 1, 31]  # unsorted, repeated, both ends
    fn = {"naive": finite_diff.numerical_partials,
          "batched": finite_diff.numerical_partials_batched}[method]
    got = bpnet.to_numpy(fn(*_args(net, x, y), indices, xp=net.xp))
    assert got.shape == (len(indices),)
    np.testing.assert_allclose(got, flat_bp[indices], rtol=0,
                               atol=1e-8 * np.max(np.abs(flat_bp)))


@pytest.mark.parametrize("fn", [finite_diff.numerical_partials,
                                finite_diff.numerical_partials_batched])
def test_partials_reject_positions_outside_the_network(fn):
    net, _, _, x, y = _setup(NUMPY, sizes=(2, 3, 1), loss="mse")
    with pytest.raises(IndexError, match=r"\[0, 13\)"):
        fn(*_args(net, x, y), [0, 13], xp=net.xp)
    assert fn(*_args(net, x, y), [], xp=net.xp).shape == (0,)


def test_naive_loop_leaves_the_parameters_untouched():
    net, _, _, x, y = _setup(NUMPY)
    before = [(np.array(W), np.array(b)) for W, b in net.params]
    finite_diff.numerical_grad(*_args(net, x, y), xp=net.xp)
    for (W, b), (W0, b0) in zip(net.params, before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_float32_batched_follows_float64_backprop():
    net64, X, Y, _, _ = _setup(NUMPY)
    net32 = net64.astype("float32")
    x, y = net32._xy(X, Y)
    _, bp = net64.loss_and_grad(X, Y)
    fd = finite_diff.numerical_grad_batched(*_args(net32, x, y), xp=net32.xp)
    assert all(g.dtype == np.float32 for pair in fd for g in pair)
    a, e = _flat(fd), _flat(bp)
    np.testing.assert_allclose(a, e, rtol=0, atol=1e-3 * np.max(np.abs(e)))

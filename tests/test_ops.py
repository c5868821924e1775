"""Each backend twin of bpnet.ops computes what the portable operation does,
and writes only where its contract allows."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.activations import ACTIVATIONS
from bpnet.backend import fast
from bpnet.backend.ufunc_ops import UfuncOps
from bpnet.losses import LOSSES, output_activation
from bpnet.ops import PORTABLE

from .helpers import make_targets

ACTS = list(ACTIVATIONS.values())


def _twins():
    yield pytest.param("numpy", id="numpy")
    yield pytest.param("torch", id="torch")
    yield pytest.param("cupy", id="cupy", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not bpnet.cuda_available(), reason="no CUDA device answers")])


def _setup(name):
    if name == "numpy":
        return UfuncOps(np), np, (lambda a: np.array(a)), (lambda t: np.array(t)), True
    if name == "cupy":
        import array_api_compat.cupy as xp
        import cupy

        from bpnet.backend.cupy_ops import CupyOps

        # fused kernels compute in the element type: equal to rounding, not bit for bit
        return (CupyOps(), xp, (lambda a: cupy.asarray(np.array(a))),
                (lambda t: cupy.asnumpy(t)), False)
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    from bpnet.backend.torch_ops import TorchOps

    return (TorchOps(), xp, (lambda a: torch.tensor(np.array(a))),
            (lambda t: t.detach().numpy().copy()), False)


def _same(got, want, exact):
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", list(_twins()))
def test_forward_and_backward_operations(name, rng):
    ops, xp, put, host, exact = _setup(name)
    a, W, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    delta = rng.standard_normal((6, 5))
    A, Wt, B, D = put(a), put(W), put(b), put(delta)
    _same(host(ops.affine(A, Wt, B, xp)), a @ W + b, exact)
    for act in ACTS:
        z = a @ W + b
        _same(host(ops.activate(put(z), act, xp)), act.f(z, np), exact)
        _same(host(ops.affine_activate(A, Wt, B, act, xp)), act.f(z, np), exact)
        if act.df is not None:
            out = act.f(z, np)
            _same(host(ops.times_df(put(delta), put(out), act, xp)),
                  PORTABLE.times_df(delta, out, act, np), exact)
    ones = ops.ones_row(D, xp)
    _same(host(ops.grad_w(A, D, None, xp)), a.T @ delta, exact)
    _same(host(ops.grad_b(ones, D, None, xp)), PORTABLE.grad_b(np.ones((1, 6)), delta, None, np),
          exact)
    buf = put(np.zeros(4 * 5 + 5))
    gw, gb = xp.reshape(buf[:20], (4, 5)), buf[20:]
    ops.grad_w(A, D, gw, xp)
    ops.grad_b(ones, D, gb, xp)
    _same(host(buf), np.concatenate([(a.T @ delta).ravel(), (np.ones((1, 6)) @ delta)[0]]),
          exact)
    # what must not change did not: the inputs of the products
    _same(host(A), a, True)
    _same(host(Wt), W, True)
    _same(host(B), b, True)
    _same(host(D), delta, True)


@pytest.mark.parametrize("name", list(_twins()))
def test_optimizer_operations_write_only_into_their_state(name, rng):
    ops, xp, put, host, exact = _setup(name)
    x, y = rng.standard_normal(7), rng.standard_normal(7)
    for a, b in ((1.0, -0.1), (0.9, -0.01), (1.0, 1.0), (0.5, 0.25)):
        Y = put(y)
        _same(host(ops.axpby(put(x), a, Y, b, xp)), PORTABLE.axpby(x, a, y, b, np), exact)
        _same(host(Y), y, True)  # y is never written
    m, v, g, p = rng.standard_normal(7), rng.random(7), rng.standard_normal(7), \
        rng.standard_normal(7)
    G = put(g)
    got = ops.adam_update(put(p), put(m), put(v), G, 0.9, 0.999, 0.01, 1e-8, xp)
    want = PORTABLE.adam_update(p, m, v, g, 0.9, 0.999, 0.01, 1e-8, np)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(host(a), b, rtol=0 if exact else 1e-13, atol=0)
    for nesterov in (False, True):
        got = ops.momentum_update(put(p), put(v), G, 0.9, 0.01, nesterov, xp)
        want = PORTABLE.momentum_update(p, v, g, 0.9, 0.01, nesterov, np)
        for a, b in zip(got, want, strict=True):
            _same(host(a), b, exact)
    _same(host(G), g, True)  # the gradient is never written
    W = rng.standard_normal((3, 4))
    _same(host(ops.sq_norm(put(W), xp)), PORTABLE.sq_norm(W, np), exact)
    rows = np.array([3, 0, 3])
    table = rng.standard_normal((5, 2))
    _same(host(ops.take_rows(put(table), put(rows), xp)), table[rows], True)
    values = [put(np.float64(v)) for v in (0.5, 0.25, 2.0)]
    _same(host(ops.epoch_total(values, [4, 4, 2], xp)), 0.5 * 4 + 0.25 * 4 + 2.0 * 2, exact)


@pytest.mark.parametrize("name", list(_twins()))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_losses(name, loss, rng):
    ops, xp, put, host, exact = _setup(name)
    L = LOSSES[loss]
    out = output_activation(L, None)
    z = rng.standard_normal((8, 3))
    y = make_targets(loss, 8, 3, rng)
    if loss == "cross_entropy":
        y = np.eye(3)[y]
    w = rng.random((8, 1))
    w /= w.sum()
    for weights in (None, w):
        want = L.value_and_delta(z.copy(), y, out, np, weights)
        got = ops.value_and_delta(L, put(z), put(y), out, xp,
                                  None if weights is None else put(weights))
        _same(host(got[0]), want[0], exact)
        _same(host(got[1]), want[1], exact)


def test_the_switch_picks_the_portable_operations(monkeypatch):
    assert isinstance(fast.ops(np), UfuncOps)
    monkeypatch.setenv("BPNET_PORTABLE", "1")
    assert fast.ops(np) is PORTABLE
    monkeypatch.delenv("BPNET_PORTABLE")
    strict = pytest.importorskip("array_api_strict")
    assert fast.ops(strict) is PORTABLE  # no out= in the standard

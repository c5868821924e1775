"""The training step is pure: (params, optimizer state, batch) -> new ones."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.optim import SGD, Adam
from bpnet.train import make_step, step

from .helpers import blobs


def _frozen(tree):
    out = []
    for W, b in tree:
        W, b = np.array(W), np.array(b)
        W.flags.writeable = b.flags.writeable = False
        out.append((W, b))
    return out


def _leaves(state):
    """Every array of an optimizer state (flat or tree structured)."""
    for field in state[1:]:
        if field is None:
            continue
        yield from ([field] if isinstance(field, np.ndarray) else
                    [t for pair in field for t in pair])


@pytest.mark.parametrize("opt", [SGD(), SGD(momentum=0.9, nesterov=True), Adam()])
@pytest.mark.parametrize("flat", [False, True])
def test_the_step_never_writes_into_its_inputs(rng, opt, flat, monkeypatch):
    monkeypatch.setenv("BPNET_PORTABLE", "0" if flat else "1")
    net = bpnet.MLP([4, 6, 3], activation="tanh", loss="cross_entropy", dtype="float64")
    X, labels = blobs(rng, n=12)
    x, y = np.asarray(X), np.eye(3)[labels]
    x.flags.writeable = y.flags.writeable = False
    s = make_step(net.arch, opt, bpnet.params.Layout.of(net.params), alpha=0.1, xp=np)
    assert s.flat is (flat and opt.has_state)
    packed = s.pack(_frozen(net.params))
    state = s.init(packed)
    for a in [*_leaves((None, packed)), *_leaves(state)]:
        a.flags.writeable = False
    p1, st1, loss1 = s(packed, state, x, y, 0.1)  # read-only inputs: a write would raise
    p2, _, _ = s(packed, state, x, y, 0.1)
    for a, b in zip(s.unpack(p1), s.unpack(p2), strict=True):
        np.testing.assert_array_equal(a[0], b[0])  # the same inputs give the same step
    assert st1.step == 1 and float(loss1) == pytest.approx(net.compute_loss(X, labels, alpha=0.1))


def test_the_step_is_one_function_of_its_arguments(rng):
    # What fit runs for one batch equals the plain function on the tree.
    net = bpnet.MLP([4, 6, 3], loss="cross_entropy", dtype="float64", seed=3)
    X, labels = blobs(rng, n=10)
    y = np.eye(3)[labels]
    opt = Adam()
    params, _, _ = step(net.params, opt.init(net.params, np), X, y, 0.01, arch=net.arch,
                            opt=opt, xp=np)
    net.fit(X, labels, optimizer="adam", lr=0.01, epochs=1, shuffle=False)
    for (W, b), (W0, b0) in zip(net.params, params, strict=True):
        np.testing.assert_allclose(W, W0, rtol=1e-13)
        np.testing.assert_allclose(b, b0, rtol=1e-13)


@pytest.mark.parametrize("opt", [SGD(momentum=0.9), Adam()])
def test_jax_compiles_the_whole_step(rng, opt, jax_x64):
    # The point of purity: a compiler can take the step as it is.
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    net = bpnet.MLP([4, 6, 3], activation="relu", loss="cross_entropy", backend="jax",
                    dtype="float64", seed=1)
    X, labels = blobs(rng, n=10)
    x, y = jnp.asarray(X), jnp.asarray(np.eye(3)[labels])
    state = opt.init(net.params, jnp)

    def whole(params, slots, x, y):
        # the step count is the one host-side value (it sets Adam's step size)
        new, st, loss = step(params, type(state)(0, *slots), x, y, 0.01, arch=net.arch,
                             opt=opt, xp=jnp)
        return new, tuple(st[1:]), loss

    compiled = jax.jit(whole)(net.params, tuple(state[1:]), x, y)
    eager = whole(net.params, tuple(state[1:]), x, y)
    for a, b in zip(jax.tree_util.tree_leaves(compiled), jax.tree_util.tree_leaves(eager),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)

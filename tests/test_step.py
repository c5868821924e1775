"""The training step: pure in its portable form; its in-place and compiled
twins do the same arithmetic on buffers they own."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import bpnet
from bpnet.backend import fast
from bpnet.optim import SGD, Adam
from bpnet.params import Layout
from bpnet.train import make_step, step
from bpnet.train.step import CompiledStep, InplaceStep, Step

from .helpers import blobs

OPTIMIZERS = [SGD(), SGD(momentum=0.9), SGD(momentum=0.5, nesterov=True), Adam()]


def _frozen(tree):
    out = []
    for W, b in tree:
        W, b = np.array(W), np.array(b)
        W.flags.writeable = b.flags.writeable = False
        out.append((W, b))
    return out


def _leaves(structure):
    """Every array of a parameter structure or optimizer state (flat or tree)."""
    items = structure[1:] if isinstance(structure, tuple) and isinstance(structure[0], int) \
        else [structure]
    for field in items:
        if field is None:
            continue
        yield from ([field] if isinstance(field, np.ndarray) else
                    [t for pair in field for t in pair])


def _problem(rng, n=12):
    net = bpnet.MLP([4, 6, 3], activation="tanh", loss="cross_entropy", dtype="float64")
    X, labels = blobs(rng, n=n)
    x, y = np.asarray(X), np.eye(3)[labels]
    return net, X, labels, x, y


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("flat", [False, True])
def test_the_portable_step_never_writes_into_its_inputs(rng, opt, flat):
    net, X, labels, x, y = _problem(rng)
    x.flags.writeable = y.flags.writeable = False
    s = Step(net.arch, opt, 0.1, np, Layout.of(net.params), flat, bpnet.kernels.loss_and_grad)
    packed = s.pack(_frozen(net.params))
    state = s.init(packed)
    for a in [*_leaves(packed), *_leaves(state)]:
        a.flags.writeable = False  # a write would raise
    p1, st1, loss1 = s(packed, state, (x, y), 0.1)
    p2, _, _ = s(packed, state, (x, y), 0.1)
    for a, b in zip(s.unpack(p1), s.unpack(p2), strict=True):
        np.testing.assert_array_equal(a[0], b[0])  # the same inputs give the same step
    assert st1.step == 1 and float(loss1) == pytest.approx(net.compute_loss(X, labels, alpha=0.1))


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_the_in_place_step_is_the_portable_step_bit_for_bit_on_numpy(rng, opt):
    net, _, _, x, y = _problem(rng, n=16)
    layout = Layout.of(net.params)
    quick = make_step(net.arch, opt, layout, alpha=0.05, xp=np)
    assert isinstance(quick, InplaceStep) and quick.donates
    plain = Step(net.arch, opt, 0.05, np, layout, False, bpnet.kernels.loss_and_grad)
    held = net.params
    before = [t.copy() for pair in held for t in pair]
    p, s = quick.pack(held), None
    s = quick.init(p)
    q, r = plain.pack(held), plain.init(plain.pack(held))
    for i in range(4):
        batch = (x[4 * i:4 * i + 4], y[4 * i:4 * i + 4])
        p, s, v1 = quick(p, s, batch, 0.05)
        q, r, v2 = plain(q, r, batch, 0.05)
        assert float(v1) == float(v2)
    for (W, b), (W0, b0) in zip(quick.unpack(p), plain.unpack(q), strict=True):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    for t, c in zip([t for pair in held for t in pair], before, strict=True):
        np.testing.assert_array_equal(t, c)  # the caller's arrays were copied, not donated


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_the_torch_step_matches_the_portable_one(rng, opt, monkeypatch):
    pytest.importorskip("torch")
    torch_net = bpnet.MLP([4, 6, 3], activation="relu", loss="cross_entropy", backend="torch",
                          dtype="float64", seed=4)
    X, labels = blobs(rng, n=20)
    kw = {"optimizer": opt.name, "epochs": 3, "batch_size": 8, "lr": 0.05, "alpha": 0.01}
    if opt.name == "sgd":
        kw.update(momentum=opt.momentum, nesterov=opt.nesterov)
    losses = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("BPNET_PORTABLE", mode)
        net = bpnet.MLP([4, 6, 3], activation="relu", loss="cross_entropy", backend="torch",
                        dtype="float64", seed=4)
        assert (type(fast.ops(net.xp)).__name__ == "TorchOps") is (mode == "0")
        losses[mode] = (net.fit(X, labels, **kw).loss, [bpnet.to_numpy(t) for p in net.params
                                                          for t in p])
    np.testing.assert_allclose(losses["0"][0], losses["1"][0], rtol=1e-12)
    for a, b in zip(losses["0"][1], losses["1"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    del torch_net


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


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("opt", [SGD(momentum=0.9), Adam()])
def test_jax_compiles_the_whole_step_once_and_pads_the_last_batch(rng, opt, shuffle, jax_x64,
                                                                   monkeypatch):
    pytest.importorskip("jax")
    # the module (bpnet.train.step, the attribute, is the function of that name)
    step_module = importlib.import_module("bpnet.train.step")

    X, labels = blobs(rng, n=30)  # batches of 8: three full ones and one of 6
    kw = {"optimizer": opt.name, "epochs": 3, "batch_size": 8, "lr": 0.05, "alpha": 0.01,
          "shuffle": shuffle}
    nets = {b: bpnet.MLP([4, 6, 3], activation="relu", loss="cross_entropy", backend=b,
                         dtype="float64", seed=1) for b in ("numpy", "jax")}
    held = nets["jax"].params
    assert isinstance(make_step(nets["jax"].arch, opt, Layout.of(held), xp=nets["jax"].xp,
                                batch_size=8), CompiledStep)
    step_module._compiled.cache_clear()
    traced = []
    real = step_module.step
    monkeypatch.setattr(step_module, "step", lambda *a, **k: traced.append(1) or real(*a, **k))
    h = {b: net.fit(X, labels, **kw) for b, net in nets.items()}
    assert len(traced) == 1  # 12 steps, the short ones too, from one trace
    np.testing.assert_allclose(h["jax"].loss, h["numpy"].loss, rtol=1e-12)
    for a, b in zip(nets["jax"].params, nets["numpy"].params, strict=True):
        np.testing.assert_allclose(np.asarray(a[0]), b[0], rtol=1e-11, atol=1e-14)
    extra = {"optimizer": "sgd", "momentum": 0.9} if opt.name == "sgd" else {}
    nets["jax"].partial_fit(X, labels, batch_size=8, lr=0.05, alpha=0.01, shuffle=shuffle,
                            **extra)
    assert len(traced) == 1  # partial_fit reuses what fit compiled
    np.asarray(held[0][0])  # what the caller held is still there (nothing donated)

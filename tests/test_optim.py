"""Optimizers: pure updates checked against scikit-learn's, schedules, L-BFGS."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import bpnet
from bpnet import optim
from bpnet.backend import device_of
from bpnet.optim import SGD


def _tree(rng, shapes=((3, 4), (4, 2))):
    return [(rng.standard_normal(s), rng.standard_normal(s[1])) for s in shapes]


def _flat(tree):
    return [t for pair in tree for t in pair]


def _frozen(tree):
    """Read-only copies: an update that writes into its inputs fails on them."""
    out = []
    for W, b in tree:
        W, b = W.copy(), b.copy()
        W.flags.writeable = False
        b.flags.writeable = False
        out.append((W, b))
    return out


def test_plain_sgd_is_p_minus_lr_g(rng):
    params, grads = _tree(rng), _tree(rng)
    state = optim.sgd_init(params, momentum=0.0, xp=np)
    new, state = optim.sgd_update(_frozen(params), _frozen(grads), state, lr=0.3, xp=np)
    assert state.step == 1 and state.velocity is None
    for p, g, q in zip(_flat(params), _flat(grads), _flat(new)):
        np.testing.assert_allclose(q, p - 0.3 * g, rtol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_scikit_learn(rng, nesterov):
    sk = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    params = _tree(rng)
    grad_steps = [_tree(rng) for _ in range(4)]
    ref = [t.copy() for t in _flat(params)]
    sk_opt = sk.SGDOptimizer(ref, learning_rate_init=0.05, lr_schedule="constant",
                             momentum=0.8, nesterov=nesterov)
    state = optim.sgd_init(params, momentum=0.8, xp=np)
    for grads in grad_steps:
        sk_opt.update_params(ref, _flat(grads))
        params, state = optim.sgd_update(_frozen(params), _frozen(grads), state, lr=0.05,
                                         momentum=0.8, nesterov=nesterov, xp=np)
    assert state.step == 4
    for ours, theirs in zip(_flat(params), ref):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_adam_matches_scikit_learn(rng):
    sk = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    params = _tree(rng)
    ref = [t.copy() for t in _flat(params)]
    sk_opt = sk.AdamOptimizer(ref, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99,
                              epsilon=1e-7)
    state = optim.adam_init(params, xp=np)
    for _ in range(5):
        grads = _tree(rng)
        sk_opt.update_params(ref, _flat(grads))
        params, state = optim.adam_update(_frozen(params), _frozen(grads), state, lr=0.01,
                                          beta1=0.8, beta2=0.99, epsilon=1e-7, xp=np)
    assert state.step == 5
    for ours, theirs in zip(_flat(params), ref):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_first_adam_step_moves_every_weight_by_lr(rng):
    # With bias correction, m/sqrt(v) = g/|g| on the first step: a step of lr.
    params, grads = _tree(rng), _tree(rng)
    new, _ = optim.adam_update(params, grads, optim.adam_init(params, xp=np), lr=0.01,
                               epsilon=1e-12, xp=np)
    for p, g, q in zip(_flat(params), _flat(grads), _flat(new)):
        np.testing.assert_allclose(q - p, -0.01 * np.sign(g), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_updates_stay_on_the_device(backend, name):
    net = bpnet.MLP([3, 4, 2], backend=backend.name, device=backend.device, dtype="float32")
    xp = net.xp
    opt = optim.make_optimizer(name, momentum=0.9, nesterov=True)
    params = net.params
    grads = [(xp.ones_like(W), xp.ones_like(b)) for W, b in params]
    state = opt.init(params, xp)
    for _ in range(2):
        params, state = opt.update(params, grads, state, 0.1, xp)
    for W, b in params:
        assert device_of(W) == net.device and device_of(b) == net.device
        assert bpnet.to_numpy(W).dtype == np.float32
    assert state.step == 2


def test_optimizer_key_reflects_state_shaping_settings():
    a = optim.make_optimizer("adam", beta1=0.9)
    assert a.key == optim.make_optimizer("adam", beta1=0.9).key
    assert a.key != optim.make_optimizer("adam", beta1=0.8).key
    assert a.key != optim.make_optimizer("sgd").key
    with pytest.raises(ValueError, match="unknown"):
        optim.make_optimizer("rmsprop")


# --- schedules -------------------------------------------------------------------------


def test_schedules_follow_their_formulas():
    def lr_at(schedule, epoch, **kw):
        return optim.scheduled_lr(schedule, 0.1, epoch=epoch, epochs=10, **kw)

    assert [lr_at("constant", e) for e in range(3)] == [0.1] * 3
    assert lr_at("invscaling", 0, samples_seen=0) == 0.1
    assert lr_at("invscaling", 2, samples_seen=99, power_t=0.5) == pytest.approx(0.01)
    steps = [lr_at("step", e, step_size=3, gamma=0.5) for e in range(7)]
    assert steps == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])
    cosine = [lr_at("cosine", e) for e in range(10)]
    assert cosine[0] == 0.1 and all(a > b for a, b in itertools.pairwise(cosine))
    assert cosine[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    assert lr_at(lambda e: 0.5 / (e + 1), 3) == 0.125


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "fast", None])
def test_a_callable_schedule_must_return_a_positive_rate(bad):
    with pytest.raises(ValueError, match="lr_schedule"):
        optim.scheduled_lr(lambda e: bad, 0.1, epoch=0, epochs=1)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="cosine"):
        optim.scheduled_lr("exponential", 0.1, epoch=0, epochs=1)


# --- L-BFGS ------------------------------------------------------------------------------


def _rosenbrock(theta):
    x, y = theta
    value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return value, grad


def test_lbfgs_finds_the_rosenbrock_minimum():
    pytest.importorskip("scipy")
    res = optim.lbfgs(_rosenbrock, np.array([-1.2, 1.0]), maxiter=500, tol=1e-12)
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-5)
    assert res.nit <= 500


def test_lbfgs_maxiter_and_callback_stop():
    pytest.importorskip("scipy")
    assert optim.lbfgs(_rosenbrock, np.array([-1.2, 1.0]), maxiter=3).nit == 3
    seen = []

    def stop_at_five(theta, value):
        seen.append(value)
        return len(seen) == 5

    res = optim.lbfgs(_rosenbrock, np.array([-1.2, 1.0]), maxiter=500, callback=stop_at_five)
    assert len(seen) == 5 and res.fun == pytest.approx(seen[-1])


def test_sgd_update_is_exactly_w_minus_lr_grad():
    # the plain SGD the bpnet contender runs: W - lr * dW to the last bit
    rng = np.random.default_rng(3)
    params = [(rng.standard_normal((300, 256)).astype(np.float32), rng.standard_normal(256))]
    grads = [(rng.standard_normal((300, 256)).astype(np.float32), rng.standard_normal(256))]
    opt = SGD()
    ((W, b),), state = opt.update(params, grads, opt.init(params, np), 0.03, np)
    assert state.step == 1 and state.velocity is None
    np.testing.assert_array_equal(W, params[0][0] - 0.03 * grads[0][0])
    np.testing.assert_array_equal(b, params[0][1] - 0.03 * grads[0][1])
    assert W.dtype == np.float32

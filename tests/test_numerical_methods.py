"""The four numerical methods of :mod:`bpnet.finite_diff` agree with backprop
on every activation and loss, to the accuracy their theory promises, on more
than one backend; their costs are the textbook's; the complex extensions of the
activations and losses are the analytic ones."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

import bpnet
from bpnet import finite_diff, kernels
from bpnet.activations import ACTIVATIONS, get_activation
from bpnet.backend import device_of
from bpnet.backend.select import complex_dtype
from bpnet.losses import LOSSES, get_loss, output_activation

from .helpers import make_targets

LOSSES_OUTPUTS = [
    ("mse", None), ("mse", "sigmoid"), ("mse", "tanh"), ("logistic", None),
    ("cross_entropy", None), ("binary_cross_entropy", None),
]
EXACT = ("complex_step", "forward_mode")


def _net(activation="tanh", loss="cross_entropy", out=None, sizes=(4, 6, 5, 3), backend="numpy",
         device=None, dtype="float64", seed=0, n=9, biases=True):
    """A network away from ReLU kinks (small random biases) and data for it."""
    rng = np.random.default_rng(seed)
    net = bpnet.MLP(list(sizes), activation=activation, loss=loss, output_activation=out,
                    backend=backend, device=device, dtype=dtype, seed=seed)
    if biases:
        net.set_params([(bpnet.to_numpy(W), rng.normal(0.0, 0.1, tuple(b.shape)))
                        for W, b in net.params])
    X = rng.standard_normal((n, sizes[0]))
    Y = make_targets(loss, n, sizes[-1], rng)
    return net, X, Y


def _flat(grads) -> np.ndarray:
    return np.concatenate([bpnet.to_numpy(t).astype(np.float64).ravel()
                           for pair in grads for t in pair])


def _rel(a, b) -> float:
    """max|a - b| / max|b| over the whole gradient."""
    a, b = _flat(a), _flat(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("loss,out", LOSSES_OUTPUTS)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_method_agrees_with_backprop_on_every_pair(activation, loss, out):
    net, X, Y = _net(activation, loss, out)
    _, bp = net.loss_and_grad(X, Y, alpha=0.2)
    err = {m: _rel(net.numerical_grad(X, Y, method=m, alpha=0.2), bp)
           for m in finite_diff.METHODS}
    assert err["complex_step"] < 1e-13 and err["forward_mode"] < 1e-13, err
    assert err["central"] < 1e-8, err  # O(eps^2) + rounding / eps at eps ~ 6e-6
    assert err["forward"] < 1e-5, err  # O(eps) at eps ~ 1.5e-8: ~1e-7 here
    assert err["forward"] > err["central"]  # one order of the step fewer


@pytest.mark.parametrize("method", finite_diff.METHODS)
def test_every_method_on_every_backend(method, backend):
    net, X, Y = _net("relu", "cross_entropy", sizes=(3, 4, 3, 2), backend=backend.name,
                     device=backend.device)
    ref = net.to(backend="numpy")
    _, bp = ref.loss_and_grad(X, Y)
    got = net.numerical_grad(X, Y, method=method)
    for (W, b), (gW, gb) in zip(net.params, got, strict=True):
        assert gW.shape == W.shape and gb.shape == b.shape and gW.dtype == W.dtype
        assert device_of(gW) == device_of(W) and device_of(gb) == device_of(b)
    bound = {"central": 1e-8, "forward": 1e-5}.get(method, 1e-13)
    assert _rel(got, bp) < bound


@pytest.mark.parametrize("method", finite_diff.METHODS)
def test_batched_variants_match_the_naive_ones(method, backend):
    net, X, Y = _net("softplus", "binary_cross_entropy", sizes=(3, 4, 3, 2),
                     backend=backend.name, device=backend.device)
    x, y = net._xy(X, Y)
    args = (net.params, x, y, net.arch)
    naive = finite_diff.numerical_grad(*args, method=method, alpha=0.3, xp=net.xp)
    batched = finite_diff.numerical_grad_batched(*args, method=method, alpha=0.3,
                                                 max_elements=50, xp=net.xp)
    for (gW, gb), (W, b) in zip(batched, net.params, strict=True):
        assert gW.dtype == W.dtype and device_of(gW) == device_of(W)
        assert gb.shape == b.shape and device_of(gb) == device_of(b)
    # Batched differences perturb z instead of theta: the same quotient up to
    # the rounding of the step (the naive loop divides by the step it took).
    bound = {"central": 1e-8, "forward": 1e-6}.get(method, 1e-13)
    assert _rel(batched, naive) < bound


def test_errors_fall_with_the_step_at_the_order_the_theory_says():
    # in the range where truncation dominates, a step 10x smaller makes forward
    # differences 10x and central differences 100x more accurate
    net, X, Y = _net("tanh", "mse")
    _, bp = net.loss_and_grad(X, Y)

    def err(method, eps):
        return _rel(net.numerical_grad(X, Y, eps=eps, method=method), bp)

    assert 7 < err("forward", 1e-3) / err("forward", 1e-4) < 13
    assert 70 < err("central", 1e-2) / err("central", 1e-3) < 130
    assert 70 < err("complex_step", 1e-2) / err("complex_step", 1e-3) < 130
    # ... and the complex step never loses it to cancellation
    assert err("complex_step", 1e-30) < 1e-14 < err("central", 1e-12)


@pytest.mark.parametrize("method,passes", [("central", "2P"), ("forward", "P+1"),
                                           ("complex_step", "P"), ("forward_mode", "P")])
def test_each_method_is_naive_one_parameter_at_a_time(method, passes, monkeypatch):
    net, X, Y = _net("tanh", "mse", sizes=(3, 4, 2))
    x, y = net._xy(X, Y)
    calls = []
    real_value = kernels.loss_value
    monkeypatch.setattr(kernels, "loss_value",
                        lambda *a, **k: calls.append("real") or real_value(*a, **k))
    loss = net.arch.loss

    def counting(name, fn):
        def wrapped(*a):
            calls.append(name)
            return fn(*a)
        return wrapped

    arch = dataclasses.replace(net.arch, loss=dataclasses.replace(
        loss, value_complex=counting("complex", loss.value_complex),
        value_and_delta=counting("dual", loss.value_and_delta)))
    finite_diff.numerical_grad(net.params, x, y, arch, method=method, xp=net.xp)
    P = net.n_params
    expected = {"2P": ["real"] * 2 * P, "P+1": ["real"] * (P + 1)}.get(
        passes, ["complex" if method == "complex_step" else "dual"] * P)
    assert calls == expected
    assert finite_diff.n_passes(method, P) == len(expected)


def test_default_steps_follow_the_theory_and_the_parameter_size():
    eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
    assert finite_diff.default_eps(np, np.float64) == pytest.approx(eps64 ** (1 / 3))
    assert finite_diff.default_eps(np, np.float32, "central") == pytest.approx(eps32 ** (1 / 3))
    assert finite_diff.default_eps(np, np.float64, "forward") == pytest.approx(eps64 ** 0.5)
    assert finite_diff.default_eps(np, np.float32, "forward") == pytest.approx(eps32 ** 0.5)
    assert finite_diff.default_eps(np, np.float32, "complex_step") == 1e-20
    with pytest.raises(ValueError, match="takes no step"):
        finite_diff.default_eps(np, np.float64, "forward_mode")
    params = [(np.array([[3.0, -0.5]]), np.array([-20.0, 0.0]))]
    h = finite_diff.step_sizes(params, range(4), method="forward", xp=np)
    np.testing.assert_allclose(h, eps64 ** 0.5 * np.array([3.0, 1.0, 20.0, 1.0]))
    given = finite_diff.step_sizes(params, range(4), method="central", eps=1e-4, xp=np)
    np.testing.assert_array_equal(given, 1e-4)  # a given eps is every parameter's step


def test_forward_differences_divide_by_the_step_taken():
    # theta + h rounds: dividing by (theta + h) - theta, not h, makes the
    # quotient of a linear function exact in float32 even for an awkward step
    net = bpnet.MLP([1, 1], loss="mse", dtype="float32", seed=0)
    net.set_params([(np.array([[1.37]]), np.array([0.1]))])
    X, Y = np.array([[1.0]]), np.array([[0.0]])
    _, bp = net.astype("float64").loss_and_grad(X, Y)
    for method in ("forward", "central"):
        fd = net.numerical_grad(X, Y, eps=3e-3, method=method)
        # C = (w + b)^2 / 2 is quadratic: central is exact, forward errs by h/2
        tol = 2e-3 if method == "forward" else 1e-4
        assert _rel(fd, bp) < tol


def test_bad_methods_and_steps_are_refused():
    net, X, Y = _net()
    with pytest.raises(ValueError, match=r"unknown method 'backward'.*central, forward"):
        net.numerical_grad(X, Y, method="backward")
    with pytest.raises(ValueError, match="takes no step"):
        net.numerical_grad(X, Y, eps=1e-6, method="forward_mode")
    with pytest.raises(ValueError, match="eps"):
        net.numerical_grad(X, Y, eps=-1.0, method="forward")


def _numpy_without_complex():
    stub = types.ModuleType("numpy_without_complex")  # a module, as namespaces are
    for name in dir(np):
        if not name.startswith(("_", "complex")):
            setattr(stub, name, getattr(np, name))
    return stub


def test_complex_step_on_a_backend_without_complex_dtypes_is_a_clear_error():
    assert complex_dtype(np, np.float32) is np.complex64
    assert complex_dtype(np, np.float64) is np.complex128
    stub = _numpy_without_complex()
    with pytest.raises(TypeError, match=r"no complex128 dtype.*forward_mode"):
        complex_dtype(stub, np.float64)
    net, X, Y = _net()
    x, y = net._xy(X, Y)
    for fn in (finite_diff.numerical_grad, finite_diff.numerical_grad_batched):
        with pytest.raises(TypeError, match="complex step"):
            fn(net.params, x, y, net.arch, method="complex_step", xp=stub)
    # the other methods need nothing complex
    finite_diff.numerical_grad(net.params, x, y, net.arch, method="forward_mode", xp=stub)


def test_complex_step_refuses_an_activation_without_a_complex_extension():
    net, X, Y = _net()
    x, y = net._xy(X, Y)
    plain = dataclasses.replace(get_activation("tanh"), name="mytanh", f_complex=None)
    arch = dataclasses.replace(net.arch, hidden=(plain, plain))
    with pytest.raises(ValueError, match="'mytanh' has no complex extension"):
        finite_diff.numerical_grad(net.params, x, y, arch, method="complex_step", xp=net.xp)


def test_exact_methods_take_backprops_side_of_an_exact_kink():
    # zero biases and a sample whose first ReLU layer is all zero: the second
    # layer's pre-activations are exactly 0, on the kink
    net = bpnet.MLP([2, 3, 3, 1], activation="relu", loss="mse", dtype="float64", seed=0)
    W1 = np.array([[1.0, 2.0, 0.5], [0.5, 1.0, 1.0]])
    net.set_params([(W1, np.zeros(3)), (bpnet.to_numpy(net.params[1][0]), np.zeros(3)),
                    (bpnet.to_numpy(net.params[2][0]), np.zeros(1))])
    X = np.array([[-1.0, -1.0], [1.0, 0.5], [0.3, 1.0]])  # row 0: z_1 < 0 everywhere
    Y = np.array([0.3, -0.2, 1.0])
    x, _ = net._xy(X, Y)
    _, bp = net.loss_and_grad(X, Y)
    for method in EXACT:
        assert _rel(net.numerical_grad(X, Y, method=method), bp) < 1e-13
    crossed = finite_diff.kink_crossings(net.params, x, net.arch, xp=net.xp)
    assert crossed[18:21].all()  # b_2 moves z_2 of row 0 off 0 in either direction
    assert not finite_diff.kink_crossings(net.params, x, net.arch, method="complex_step",
                                          xp=net.xp).any()


def test_kink_crossings_need_a_kink():
    net, X, Y = _net("tanh", biases=False)
    x, _ = net._xy(X, Y)
    assert not finite_diff.kink_crossings(net.params, x, net.arch, xp=net.xp).any()
    relu, X, Y = _net("relu", biases=False)
    x, _ = relu._xy(X, Y)
    big = finite_diff.kink_crossings(relu.params, x, relu.arch, eps=10.0, xp=relu.xp)
    assert big.shape == (relu.n_params,) and big.sum() > relu.n_params // 2
    assert not big[-relu.layer_sizes[-1]:].any()  # output biases move no hidden unit


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_complex_extensions_of_the_activations_are_analytic(name):
    act = ACTIVATIONS[name]
    z = np.concatenate([np.linspace(-30, -0.1, 40), np.linspace(0.1, 30, 40)])
    h = 1e-20
    a = act.f(z, np)
    out = act.f_complex(z + 1j * h, np)
    # absolute tolerances: 1 - a and 1 - a^2 in the derivatives-from-the-output
    # (and NumPy's complex log1p in the real part) lose digits where a -> 1
    np.testing.assert_allclose(out.real, a, rtol=1e-14, atol=1e-15)
    slope = np.ones_like(a) if act.df is None else act.df(a, np)
    np.testing.assert_allclose(out.imag / h, slope, rtol=1e-12, atol=1e-15)
    # real arrays keep every existing result: f is untouched
    np.testing.assert_array_equal(act.f(z, np), a)


@pytest.mark.parametrize("loss,out", [*LOSSES_OUTPUTS, ("poisson", None)])
def test_complex_extensions_of_the_losses_are_analytic(loss, out):
    rng = np.random.default_rng(3)
    L = get_loss(loss)
    act = output_activation(L, out)
    z = 3 * rng.standard_normal((7, 3))
    y = make_targets(loss, 7, 3, rng).astype(float)
    if loss == "cross_entropy":
        y = np.eye(3)[y.astype(int)]
    value, delta = L.value_and_delta(z, y, act, np)
    h = 1e-20
    assert L.value_complex(z + 0j, y + 0j, act, np).real == pytest.approx(value, rel=1e-14)
    for i, j in [(0, 0), (3, 1), (6, 2)]:
        e = np.zeros_like(z)
        e[i, j] = 1.0
        d = L.value_complex(z + 1j * h * e, y + 0j, act, np).imag / h
        assert d == pytest.approx(delta[i, j], rel=1e-12, abs=1e-300)
    assert set(LOSSES) == {"mse", "logistic", "cross_entropy", "binary_cross_entropy", "poisson"}


def test_float32_networks_use_complex64_and_follow_float64_backprop():
    net, X, Y = _net("tanh", "cross_entropy", dtype="float32")
    _, bp = net.astype("float64").loss_and_grad(X, Y)
    for method in EXACT:
        got = net.numerical_grad(X, Y, method=method)
        assert all(g.dtype == np.float32 for pair in got for g in pair)
        assert _rel(got, bp) < 1e-5

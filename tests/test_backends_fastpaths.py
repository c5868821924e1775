"""Backend fast paths agree with their portable twins, and are chosen only where
their capability check says so.  GPU-only checks are marked ``gpu`` and skip
unless a CUDA device answers; the CuPy dispatch is checked without one."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet import kernels
from bpnet.backend import device_description, fast, from_host, synchronize, to_numpy
from bpnet.backend.lazy import materialize

from .helpers import TOLERANCE, assert_close, make_targets

needs_gpu = pytest.mark.skipif(not bpnet.cuda_available(), reason="no CUDA device answers")


def _step_inputs(net, rng, n=32):
    X = rng.standard_normal((n, net.n_features))
    Y = make_targets(net.loss, n, net.n_outputs, rng)
    return net._xy(X, Y)


def _both(net, x, y, monkeypatch, alpha=0.01):
    """(fast path's result, portable kernels' result) on the same inputs."""
    quick = fast.loss_and_grad_fn(net.xp)(net.params, x, y, net.arch, alpha=alpha, xp=net.xp)
    with monkeypatch.context() as m:
        m.setenv("BPNET_PORTABLE", "1")
        portable = kernels.loss_and_grad(net.params, x, y, net.arch, alpha=alpha, xp=net.xp)
    return quick, portable


def test_portable_switch_turns_every_fast_path_off(monkeypatch):
    assert fast.loss_and_grad_fn(np) is kernels.loss_and_grad
    assert fast.flat_updates(np)
    monkeypatch.setenv("BPNET_PORTABLE", "0")
    assert fast.fast_paths_enabled()
    monkeypatch.setenv("BPNET_PORTABLE", "1")
    assert not fast.fast_paths_enabled()
    assert not fast.flat_updates(np)
    jnp = pytest.importorskip("jax.numpy")
    assert fast.loss_and_grad_fn(jnp) is kernels.loss_and_grad
    monkeypatch.delenv("BPNET_PORTABLE")
    assert fast.loss_and_grad_fn(jnp) is not kernels.loss_and_grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jax_jit_matches_the_portable_kernels(dtype, request, rng, monkeypatch):
    pytest.importorskip("jax")
    if dtype == "float64":
        request.getfixturevalue("jax_x64")
    # the configuration and shapes of test_backends.py's mse/relu case: JAX then
    # reuses what it compiled there when the suites run together
    net = bpnet.MLP([5, 8, 6, 3], activation="relu", loss="mse", backend="jax", dtype=dtype)
    x, y = _step_inputs(net, rng, n=40)
    (v_fast, g_fast), (v_port, g_port) = _both(net, x, y, monkeypatch)
    assert str(v_fast.dtype) == dtype
    rtol, _ = TOLERANCE[dtype]
    assert float(v_fast) == pytest.approx(float(v_port), rel=rtol)
    for quick, portable in zip(g_fast, g_port, strict=True):
        for a, b in zip(quick, portable, strict=True):
            assert_close(a, to_numpy(b), dtype, like=net)


def test_jax_jit_compiles_once_per_configuration_and_shape(rng):
    pytest.importorskip("jax")
    net = bpnet.MLP([4, 6, 2], activation="tanh", backend="jax")
    x, y = _step_inputs(net, rng, n=16)
    f = fast._jax_jitted(net.arch, 0.0)
    if not hasattr(f, "_cache_size"):
        pytest.skip("this JAX does not report its jit cache size")
    before = f._cache_size()
    for _ in range(3):
        net.loss_and_grad(bpnet.to_numpy(x), bpnet.to_numpy(y))
    assert f._cache_size() == before + 1
    net.loss_and_grad(bpnet.to_numpy(x)[:8], bpnet.to_numpy(y)[:8])  # a new batch shape
    assert f._cache_size() == before + 2


def test_cupy_gets_its_fused_kernels_and_only_with_fast_paths(monkeypatch):
    cupy = pytest.importorskip("cupy")
    import array_api_compat.cupy as cpx  # importable without a device

    from bpnet.backend import cupy_ops
    from bpnet.ops import PORTABLE

    assert isinstance(fast.ops(cpx), cupy_ops.CupyOps)
    monkeypatch.setenv("BPNET_PORTABLE", "1")
    assert fast.ops(cpx) is PORTABLE
    # constructing the kernels needs CuPy but no device (they compile on first call)
    for name in cupy_ops._FORWARD:
        assert isinstance(cupy_ops._elementwise("forward", name), cupy.ElementwiseKernel)
    for name in cupy_ops._BACKWARD:
        assert isinstance(cupy_ops._elementwise("backward", name), cupy.ElementwiseKernel)
    assert isinstance(cupy_ops._adam(), cupy.ElementwiseKernel)
    assert isinstance(cupy_ops._momentum(True), cupy.ElementwiseKernel)


def test_synchronize_and_device_description_on_cpu_backends():
    a = np.ones(3)
    synchronize(a)  # eager: nothing to wait for
    assert "cpu" in device_description(a)
    jnp = pytest.importorskip("jax.numpy")
    b = jnp.ones(3) * 2
    synchronize(b)
    assert "Cpu" in device_description(b) or "cpu" in device_description(b).lower()


# --- on a GPU ----------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.gpu
@needs_gpu
def test_cupy_fused_training_matches_the_portable_one(activation, rng, monkeypatch):
    X = rng.standard_normal((64, 5))
    y = rng.integers(0, 3, 64)
    kw = {"optimizer": "adam", "epochs": 3, "batch_size": 16, "lr": 0.01, "alpha": 0.01}
    runs = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("BPNET_PORTABLE", mode)
        net = bpnet.MLP([5, 16, 16, 3], activation=activation, loss="cross_entropy",
                        backend="cupy", dtype="float64", seed=2)
        runs[mode] = (net.fit(X, y, **kw).loss, [to_numpy(t) for p in net.params for t in p])
    np.testing.assert_allclose(runs["0"][0], runs["1"][0], rtol=1e-12)
    for a, b in zip(runs["0"][1], runs["1"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.gpu
@needs_gpu
def test_cupy_host_copy_lands_before_the_host_buffer_changes():
    import array_api_compat.cupy as cpx

    host = np.arange(1 << 22, dtype=np.float32)  # 16 MiB: a copy that takes a while
    on_device = from_host(cpx, host, None)
    host[:] = -1  # reuse the buffer at once, as a data loader would
    np.testing.assert_array_equal(to_numpy(on_device), np.arange(1 << 22, dtype=np.float32))


@pytest.mark.gpu
@needs_gpu
def test_cupy_synchronize_and_device_description():
    import array_api_compat.cupy as cpx

    a = cpx.ones((256, 256), dtype=cpx.float32)
    b = a @ a
    synchronize(b)
    assert "GiB" in device_description(b)
    assert materialize(cpx, b)[0] is b


@pytest.mark.parametrize("name", ["numpy", "torch"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_lbfgs_in_place_objective_matches_the_portable_one(name, loss, rng, monkeypatch):
    """L-BFGS's objective writes the gradient into one buffer behind the loss on
    backends whose ops write in place; it gives what the portable one gives, and
    each evaluation returns its own array (the buffer is reused)."""
    if name == "torch":
        pytest.importorskip("torch")
    from bpnet.train.lbfgs import objective

    net = bpnet.MLP([5, 7, 3], activation="relu", loss=loss, backend=name, dtype="float64",
                    seed=2)
    x, y = _step_inputs(net, rng)
    sw = rng.uniform(0.5, 2.0, size=(x.shape[0], 1))
    w, n = kernels.sample_weights(from_host(net.xp, sw / sw.sum(), net.device), float(sw.sum()))
    theta = np.asarray(to_numpy(net._layout.ravel(net.params, xp=net.xp)), dtype=np.float64)
    got = {}
    for portable in (False, True):
        with monkeypatch.context() as m:
            if portable:
                m.setenv("BPNET_PORTABLE", "1")
            for weights in ((None, None), (w, n)):
                seen: dict = {}
                f = objective(net._layout, x, y, net.arch, alpha=0.01, xp=net.xp,
                              put=net._to_backend, seen=seen, w=weights[0], n=weights[1])
                first = f(theta)
                second = f(theta * 0.5)
                got[portable, weights[0] is None] = (first, second, seen.get("correct"))
    assert fast.ops(net.xp).inplace  # the in-place objective really ran
    for unweighted in (True, False):
        (v1, g1), (v2, g2), right = got[False, unweighted]
        (p1, h1), (p2, h2), p_right = got[True, unweighted]
        assert v1 == pytest.approx(p1, rel=1e-12) and v2 == pytest.approx(p2, rel=1e-12)
        np.testing.assert_allclose(g1, h1, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g2, h2, rtol=1e-10, atol=1e-14)
        assert not np.shares_memory(g1, g2)  # the first result survives the second call
        assert right == p_right

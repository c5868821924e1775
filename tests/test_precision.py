"""The TF32 switch sets each library's own flag for a block and puts it back."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from bpnet.backend.precision import matmul_precision


def test_torch_flag_is_set_for_the_block_and_restored():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    flags = torch.backends.cuda.matmul
    before = flags.allow_tf32
    for wanted in (True, False):
        with matmul_precision(xp, wanted):
            assert flags.allow_tf32 is wanted
        assert flags.allow_tf32 == before


def test_jax_precision_is_set_for_the_block():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with matmul_precision(jnp, False):
        assert jax.config.jax_default_matmul_precision == "float32"
    with matmul_precision(jnp, True):
        assert jax.config.jax_default_matmul_precision == "tensorfloat32"


def test_cupy_compute_type_is_set_and_restored(monkeypatch):
    pytest.importorskip("cupy")
    import array_api_compat.cupy as cpx

    state = {np.float32: 1, np.complex64: 1}
    fake = types.SimpleNamespace(
        COMPUTE_TYPE_TF32=7, COMPUTE_TYPE_DEFAULT=1,
        get_compute_type=lambda d: state[d],
        set_compute_type=lambda d, v: state.__setitem__(d, v))
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", fake)
    monkeypatch.setattr("cupy._core._routines_linalg", fake, raising=False)
    with matmul_precision(cpx, True):
        assert state == {np.float32: 7, np.complex64: 7}
    assert state == {np.float32: 1, np.complex64: 1}


def test_cpu_backends_are_left_alone():
    with matmul_precision(np, True):
        assert np.ones((2, 2)) @ np.ones(2) @ np.ones(2) == 4.0


# -- the network's setting: MLP(tf32=...), the estimators' tf32, the CLI's --tf32 ----------

def _data(n=16, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def test_tf32_is_checked_kept_and_saved(tmp_path):
    import bpnet

    with pytest.raises(TypeError, match=r"tf32 must be True, False or None.*'yes'"):
        bpnet.MLP([3, 4, 2], tf32="yes")
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", tf32=False)
    assert net.tf32 is False and net.get_config()["tf32"] is False
    with pytest.raises(TypeError, match="tf32 must be"):
        net.tf32 = 1
    assert net.tf32 is False  # refused before anything changed
    net.tf32 = np.bool_(True)
    assert net.tf32 is True
    net.save(tmp_path / "m.npz")
    assert bpnet.MLP.load(tmp_path / "m.npz").tf32 is True
    assert bpnet.MLP([3, 4, 2]).tf32 is None


def test_old_pickles_and_files_leave_tf32_alone(tmp_path):
    import pickle

    import bpnet
    from bpnet import serialization

    old_file = bpnet.MLP([3, 4, 2], tf32=True)
    config = old_file.get_config()
    del config["tf32"]  # as written before the setting existed
    serialization.write(tmp_path / "old.npz", config, old_file._host_params())
    assert bpnet.MLP.load(tmp_path / "old.npz").tf32 is None

    net = bpnet.MLP([3, 4, 2], tf32=True)
    state = net.__getstate__()
    del state["_tf32"]  # as pickled before the setting existed
    old = bpnet.MLP.__new__(bpnet.MLP)
    old.__setstate__(state)
    assert old.tf32 is None
    assert pickle.loads(pickle.dumps(net)).tf32 is True


class _MatmulFlags:
    """The torch TF32 flag as every matrix product of a block saw it."""

    def __init__(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        seen = self.seen = set()

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.__name__.split(".")[0] in ("mm", "addmm", "bmm", "matmul"):
                    seen.add(torch.backends.cuda.matmul.allow_tf32)
                return func(*args, **(kwargs or {}))

        self.mode = Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


@pytest.mark.parametrize("tf32", [True, False, None])
def test_torch_products_run_under_the_networks_setting(tf32):
    torch = pytest.importorskip("torch")
    import bpnet

    flags = torch.backends.cuda.matmul
    before = flags.allow_tf32
    X, y = _data()
    net = bpnet.MLP([3, 8, 2], loss="cross_entropy", backend="torch", dtype="float32",
                    tf32=tf32)
    try:
        flags.allow_tf32 = not tf32 if tf32 is not None else True
        outside = flags.allow_tf32
        with _MatmulFlags() as fit_seen:
            net.fit(X, y, epochs=2, batch_size=8)
        with _MatmulFlags() as predict_seen:
            net.predict(X)
        assert flags.allow_tf32 == outside  # put back after each call
    finally:
        flags.allow_tf32 = before
    wanted = {outside if tf32 is None else tf32}
    assert fit_seen.seen == wanted and predict_seen.seen == wanted


def test_jax_steps_are_traced_under_the_networks_setting():
    jax = pytest.importorskip("jax")
    import bpnet
    from bpnet.activations import ACTIVATIONS

    seen = []

    def spy(z, xp):  # called while jax traces the step: records the precision then
        seen.append(jax.config.jax_default_matmul_precision)
        return xp.tanh(z)

    saved = dict(ACTIVATIONS)
    try:
        bpnet.register_activation("tanh_spy", spy, lambda a, xp: 1.0 - a * a)
        X, y = _data()
        for tf32, wanted in ((False, "float32"), (True, "tensorfloat32")):
            seen.clear()
            net = bpnet.MLP([3, 8, 2], activation="tanh_spy", loss="cross_entropy",
                            backend="jax", tf32=tf32)
            net.fit(X, y, epochs=2, batch_size=8)
            assert seen and set(seen) == {wanted}  # a second trace, not the first's cache
        assert jax.config.jax_default_matmul_precision is None
    finally:
        ACTIVATIONS.clear()
        ACTIVATIONS.update(saved)


def test_cpu_backends_train_identically_whatever_tf32_says(backend):
    import bpnet

    X, y = _data()
    weights = []
    for tf32 in (None, True, False):
        net = bpnet.MLP([3, 8, 2], loss="cross_entropy", backend=backend.name,
                        device=backend.device, dtype="float64", tf32=tf32)
        net.fit(X, y, epochs=3, batch_size=8)
        weights.append(np.concatenate([np.ravel(bpnet.backend.to_numpy(W))
                                       for W, _ in net.params]))
    if backend.name in ("numpy", "array_api_strict", "dask"):
        np.testing.assert_array_equal(weights[0], weights[1])
        np.testing.assert_array_equal(weights[0], weights[2])
    else:  # torch and JAX on a CPU: float64 products have no TF32 form either
        np.testing.assert_allclose(weights[0], weights[1], rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_take_tf32_checked_before_anything_changes():
    pytest.importorskip("sklearn")
    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X, y = _data(n=40)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, tf32=False).fit(X, y)
    assert clf.get_params()["tf32"] is False and clf._net.tf32 is False
    weights = [w.copy() for w in clf.coefs_]
    clf.set_params(tf32="on")
    with pytest.raises(ValueError, match="tf32"):
        clf.fit(X, y)
    for a, b in zip(clf.coefs_, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert MLPRegressor(tf32=True).get_params()["tf32"] is True


def test_cli_takes_tf32_and_no_tf32():
    from bpnet.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["train", "--dataset", "xor"]).tf32 is None
    assert parse(["train", "--dataset", "xor", "--tf32"]).tf32 is True
    assert parse(["train", "--dataset", "xor", "--no-tf32"]).tf32 is False


def _cuda_backends() -> list:
    """(backend, device) of every CUDA library that answers here."""
    import bpnet

    found = [("cupy", None)] if bpnet.cuda_available() else []
    try:
        import torch

        if torch.cuda.is_available():
            found.append(("torch", "cuda"))
    except ImportError:
        pass
    return found


@pytest.mark.gpu
@pytest.mark.parametrize("tf32", [True, False])
def test_tf32_gradients_hold_their_documented_tolerance_on_a_gpu(tf32):
    """With TF32 a float32 gradient agrees with float64 to ~1e-3 relative (inputs
    rounded to 10 mantissa bits); without it, to float32's ~1e-6."""
    import bpnet

    found = _cuda_backends()
    if not found:
        pytest.skip("no CUDA device answers")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((512, 256)), rng.integers(0, 10, size=512)
    ref = bpnet.MLP([256, 512, 512, 10], loss="cross_entropy", dtype="float64", seed=3)
    _, g_ref = ref.loss_and_grad(X, y)
    want = np.concatenate([np.ravel(bpnet.to_numpy(t)) for pair in g_ref for t in pair])
    for name, device in found:
        net = bpnet.MLP([256, 512, 512, 10], loss="cross_entropy", backend=name,
                        device=device, dtype="float32", seed=3, tf32=tf32)
        _, g = net.loss_and_grad(X, y)
        got = np.concatenate([np.ravel(bpnet.to_numpy(t)) for pair in g for t in pair])
        error = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert error < (2e-2 if tf32 else 1e-4), (name, error)

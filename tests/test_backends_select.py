"""Choosing a backend: names, modules, devices, ``"auto"``, and the errors a user
sees when a backend cannot run (package missing, no CUDA device, JAX float64
without 64-bit mode)."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import bpnet
from bpnet.backend import array_library, resolve_backend

OPTIONAL = ("array_api_strict", "cupy", "dask", "distributed", "jax", "torch")


def test_importing_and_using_bpnet_on_numpy_imports_no_optional_backend():
    code = (
        "import sys, bpnet\n"
        "net = bpnet.MLP([2, 3, 1])\n"
        "net.fit([[0.0, 1.0], [1.0, 0.0]], [1.0, 0.0], epochs=2)\n"
        f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("backend", "package", "extra"), [
    ("torch", "torch", "bpnet[torch]"),
    ("jax", "jax", "bpnet[jax]"),
    ("dask", "dask.array", "bpnet[dask]"),
    ("cupy", "cupy", "bpnet[cuda12]"),
    ("array_api_strict", "array_api_strict", "bpnet[strict]"),
])
def test_a_missing_backend_names_the_extra_to_install(monkeypatch, backend, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    hint = rf"backend '{backend}'.*pip install '{re.escape(extra)}'"
    with pytest.raises(ImportError, match=hint):
        bpnet.MLP([2, 1], backend=backend)


def _fake_cupy(answer):
    fake = types.ModuleType("cupy")

    def is_available():
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake.is_available = is_available
    return fake


def test_auto_is_numpy_when_cupy_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert bpnet.cuda_available() is False
    assert resolve_backend("auto") == "numpy"
    assert bpnet.MLP([2, 1], backend="auto").backend == "numpy"


@pytest.mark.parametrize("answer", [False, RuntimeError("CUDA driver version is insufficient")])
def test_auto_is_numpy_when_no_cuda_device_answers(monkeypatch, answer):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(answer))
    assert bpnet.cuda_available() is False
    assert bpnet.MLP([2, 1], backend="auto").backend == "numpy"


def test_auto_is_cupy_when_a_cuda_device_answers(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(True))
    assert bpnet.cuda_available() is True
    assert resolve_backend("auto") == "cupy"
    assert resolve_backend("torch") == "torch"


def test_cupy_installed_without_a_device_is_a_clear_error():
    pytest.importorskip("cupy")
    if bpnet.cuda_available():
        pytest.skip("a CUDA device answers")
    with pytest.raises(RuntimeError, match=r"needs a CUDA device.*backend='auto'"):
        bpnet.MLP([2, 1], backend="cupy")
    assert bpnet.MLP([2, 1], backend="auto").backend == "numpy"


@pytest.mark.parametrize(("module", "name"), [
    ("numpy", "numpy"),
    ("array_api_strict", "array_api_strict"),
    ("torch", "torch"),
    ("array_api_compat.torch", "torch"),
    ("jax.numpy", "jax"),
    ("dask.array", "dask"),
])
def test_a_namespace_module_selects_its_backend(module, name):
    mod = pytest.importorskip(module)
    net = bpnet.MLP([2, 1], backend=mod, dtype="float32")
    assert net.backend == name
    assert array_library(net.params[0][0]) == name


def test_an_unknown_module_is_refused():
    import math

    with pytest.raises(ValueError, match="unsupported array namespace 'math'"):
        bpnet.MLP([2, 1], backend=math)


def test_torch_device_is_passed_through():
    torch = pytest.importorskip("torch")
    net = bpnet.MLP([2, 1], backend="torch", device="cpu")
    assert net.device == torch.device("cpu")
    assert net.params[0][0].device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available on backend 'torch'"):
            bpnet.MLP([2, 1], backend="torch", device="cuda")


def test_jax_device_is_passed_through():
    jax = pytest.importorskip("jax")
    cpu = jax.devices("cpu")[0]
    net = bpnet.MLP([2, 1], backend="jax", device=cpu)
    assert net.params[0][0].devices() == {cpu}


def test_jax_float64_without_x64_is_an_error_never_float32(rng):
    jax = pytest.importorskip("jax")
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match=r"jax_enable_x64.*dtype='float32'"):
            bpnet.MLP([2, 1], backend="jax", dtype="float64")
        net = bpnet.MLP([3, 4, 2], backend="jax", dtype="float32", loss="cross_entropy")
        with pytest.raises(ValueError, match="jax_enable_x64"):
            net.astype("float64")
        # gradcheck wants float64: it falls back to NumPy rather than check in float32
        report = bpnet.gradcheck(net, rng.standard_normal((6, 3)), rng.integers(0, 2, 6))
        assert report.passed and report.dtype == "float64"
    finally:
        jax.config.update("jax_enable_x64", old)


def test_jax_float64_with_x64_is_float64_to_1e_12(jax_x64, rng):
    X, Y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    net = bpnet.MLP([3, 5, 2], activation="tanh", backend="jax", dtype="float64")
    ref = bpnet.MLP([3, 5, 2], activation="tanh", dtype="float64")
    assert str(net.params[0][0].dtype) == "float64"
    value, grads = net.loss_and_grad(X, Y)
    value_ref, grads_ref = ref.loss_and_grad(X, Y)
    assert value == pytest.approx(value_ref, rel=1e-12)
    assert str(grads[0][0].dtype) == "float64"
    np.testing.assert_allclose(bpnet.to_numpy(grads[0][0]), grads_ref[0][0], rtol=1e-12,
                               atol=1e-14)


def test_to_numpy_of_torch_tensors_that_require_grad():
    torch = pytest.importorskip("torch")
    leaf = torch.ones((2, 3), dtype=torch.float64, requires_grad=True)
    for t in (leaf, leaf * 2):  # a leaf, and a result carrying a grad_fn
        a = bpnet.to_numpy(t)
        assert type(a) is np.ndarray and a.dtype == np.float64 and a.shape == (2, 3)
    np.testing.assert_array_equal(bpnet.to_numpy(leaf * 2), np.full((2, 3), 2.0))


def test_torch_inputs_that_require_grad_give_plain_results(rng):
    torch = pytest.importorskip("torch")
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    net = bpnet.MLP([3, 4, 2], backend="torch", dtype="float64")
    Xt = torch.tensor(X, requires_grad=True)
    value, grads = net.loss_and_grad(Xt, torch.tensor(Y))
    assert not any(g.requires_grad for pair in grads for g in pair)
    assert not net.predict(Xt).requires_grad
    assert value == pytest.approx(net.loss_and_grad(X, Y)[0], rel=1e-12)

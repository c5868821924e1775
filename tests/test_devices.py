"""A CuPy network computes on its own GPU: every array it creates, in every
public method, is made with the network's device current.

CuPy puts new arrays on the *current* device, whatever ``device=`` says
(array-api-compat's creation functions drop it; so do ``zeros_like`` and
``concat``).  Without a GPU, a fake ``cupy`` stands in: its ``cuda.Device``
keeps a current device as CuPy does, and its namespace is NumPy's with every
function recording the device current when it was called.  A method that
computed outside ``with cupy.cuda.Device(k):`` records the wrong device.  With
two GPUs, :func:`test_device_1_holds_every_array` checks the real thing.
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import ClassVar

import numpy as np
import pytest

import bpnet
from bpnet import kernels

from .helpers import blobs


class _Device:
    """``cupy.cuda.Device``: entering makes it current, leaving restores the one
    before (each instance keeps its own stack, as CuPy's does)."""

    current = 0
    count = 2
    log: ClassVar[list[tuple[str, int]]] = []

    def __init__(self, device=None):
        self.id = _Device.current if device is None else int(getattr(device, "id", device))
        self._stack: list[int] = []

    def __enter__(self):
        self._stack.append(_Device.current)
        _Device.current = self.id
        _Device.log.append(("enter", self.id))
        return self

    def __exit__(self, *exc):
        _Device.current = self._stack.pop()
        _Device.log.append(("exit", self.id))

    def __int__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Recorder:
    """The devices current at each call into the fake CuPy."""

    def __init__(self):
        self.devices: list[int] = []

    def wrap(self, f):
        def recorded(*args, **kwargs):
            self.devices.append(_Device.current)
            return f(*args, **kwargs)
        return recorded

    def take(self) -> set[int]:
        seen, self.devices = set(self.devices), []
        return seen


@pytest.fixture
def fake_cupy(monkeypatch):
    """``cupy`` and ``array_api_compat.cupy`` replaced by recording fakes over
    NumPy; the portable operations (CuPy's fused kernels need a GPU)."""
    rec = _Recorder()
    cupy = types.ModuleType("cupy")
    cupy.is_available = lambda: True
    cupy.ndarray = type("ndarray", (), {})  # no array is a CuPy array: they are NumPy's
    cupy.asarray = rec.wrap(lambda a, blocking=True: np.array(a, copy=True))
    cupy.cuda = types.SimpleNamespace(
        Device=_Device,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: _Device.count,
                                      getDevice=lambda: _Device.current))
    namespace = types.ModuleType("array_api_compat.cupy")

    def attribute(name):
        value = getattr(np, name)
        return rec.wrap(value) if callable(value) and not isinstance(value, type) else value

    namespace.__getattr__ = attribute
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", namespace)
    monkeypatch.setenv("BPNET_PORTABLE", "1")
    monkeypatch.setattr(_Device, "current", 0)
    monkeypatch.setattr(_Device, "log", [])
    return rec


def _balanced() -> bool:
    depth = 0
    for what, _ in _Device.log:
        depth += 1 if what == "enter" else -1
        if depth < 0:
            return False
    return depth == 0 and _Device.current == 0


def test_the_fake_sees_a_computation_outside_the_device(fake_cupy, rng):
    # The control: a kernel called directly, outside any method, runs on the
    # current device (0), not the network's; the tests below would see that.
    net = bpnet.MLP([4, 6, 3], backend="cupy", device=1, loss="cross_entropy")
    fake_cupy.take()
    kernels.predict(net.params, rng.standard_normal((5, 4)), net.arch, xp=net.xp)
    assert fake_cupy.take() == {0}


def test_every_method_computes_on_the_networks_device(fake_cupy, tmp_path, rng):
    X, y = blobs(rng, n=40)
    net = bpnet.MLP([4, 6, 3], backend="cupy", device=1, loss="cross_entropy", dtype="float64")
    assert net.device == _Device(1)
    assert fake_cupy.take() == {1}  # the initial weights' upload
    calls = {
        "fit adam": lambda: net.fit(X, y, epochs=2, batch_size=16, validation_data=(X, y)),
        "fit sgd": lambda: net.fit(X, y, epochs=2, optimizer="sgd", batch_size=16),
        "fit lbfgs": lambda: net.fit(X, y, epochs=3, optimizer="lbfgs"),
        "partial_fit": lambda: net.partial_fit(X, y, batch_size=16),
        "loss_and_grad": lambda: net.loss_and_grad(X, y, alpha=0.1),
        "compute_loss": lambda: net.compute_loss(X, y),
        "numerical_grad": lambda: net.numerical_grad(X[:4], y[:4]),
        "predict": lambda: net.predict(X),
        "evaluate": lambda: net.evaluate(X, y, batch_size=16),
        "set_params": lambda: net.set_params([(W * 0.5, b) for W, b in net.params]),
        "to": lambda: net.to(dtype="float32"),
        "save": lambda: net.save(tmp_path / "net.npz"),
        "load": lambda: bpnet.MLP.load(tmp_path / "net.npz", device=1),
    }
    for name, call in calls.items():
        _Device.log.clear()
        call()
        seen = fake_cupy.take()
        assert seen <= {1}, f"{name} computed on another device"
        assert seen or name == "save", name  # save only reads (CuPy's .get())
        assert ("enter", 1) in _Device.log, name
    assert _balanced()
    assert net.to(device=0).device == _Device(0) and fake_cupy.take() == {0}


def test_a_device_given_as_a_cupy_device(fake_cupy):
    net = bpnet.MLP([2, 3, 1], backend="cupy", device=_Device(1))
    assert net.device == _Device(1) and fake_cupy.take() == {1}
    assert bpnet.MLP([2, 1], backend="cupy").device == _Device(0)  # None: the current one


@pytest.mark.parametrize(("device", "message"), [
    (2, r"device 2 does not exist on backend 'cupy': CuPy sees 2 CUDA devices \(ids 0 to 1\)"),
    (-1, "device -1 does not exist"),
    ("cuda:1", "is not a CuPy device: pass a GPU id"),
    (True, "is not a CuPy device"),
])
def test_a_device_that_does_not_exist_is_refused(fake_cupy, device, message):
    with pytest.raises(ValueError, match=message):
        bpnet.MLP([2, 1], backend="cupy", device=device)
    assert fake_cupy.take() == set()  # refused before anything was made


def test_the_estimators_compute_on_their_device(fake_cupy, rng):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X, y = blobs(rng, n=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver in ("adam", "sgd", "lbfgs"):
            clf = MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                                early_stopping=solver != "lbfgs", random_state=0,
                                backend="cupy", device=1).fit(X, y)
            assert fake_cupy.take() == {1}, solver
            assert clf.net_.device == _Device(1)
            clf.predict_proba(X)
            clf.score(X, y)
            assert fake_cupy.take() == {1}, solver
        binary = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, backend="cupy", device=1)
        binary.partial_fit(X, y > 0, classes=[False, True])
        binary.predict_log_proba(X)
        reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, backend="cupy", device=1)
        reg.fit(X, X[:, 0]).score(X, X[:, 0])
    assert fake_cupy.take() == {1}
    assert _balanced()


def _gpus() -> int:
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


@pytest.mark.gpu
@pytest.mark.skipif(_gpus() < 2, reason="needs two CUDA devices")
def test_device_1_holds_every_array(rng):
    import cupy

    X, y = blobs(rng, n=300)
    with cupy.cuda.Device(0):  # the current device is another one
        net = bpnet.MLP([4, 16, 3], backend="cupy", device=1, loss="cross_entropy")
        net.fit(X, y, epochs=2, batch_size=64)
        net.partial_fit(X, y, batch_size=64)
        _, grads = net.loss_and_grad(X, y, alpha=0.1)
        state = net._optimizer_state.opt_state  # the Adam moments the next call continues
        arrays = [t for pair in (*net.params, *grads) for t in pair]
        arrays += [t for t in state if isinstance(t, cupy.ndarray)]
        arrays += [net.predict(X), net.predict(cupy.asarray(X))]
        assert len(arrays) > 2 * len(net.params) + 2
        assert {a.device.id for a in arrays} == {1}
        assert cupy.cuda.runtime.getDevice() == 0

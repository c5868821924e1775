"""What the tests share: the backends they run on, valid targets for each loss,
and :func:`assert_close`, which compares values *and* where they live.

The tests are a package, so a test module imports these with
``from .helpers import ...``; the fixtures built on them are in ``conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import bpnet
from bpnet.backend import array_library, backend_name, device_of, dtype_name


@dataclass(frozen=True)
class Backend:
    """One way of running bpnet.

    Attributes
    ----------
    id : str
        Test id.
    name : str
        ``MLP(backend=...)``.
    device_factory : callable or None
        Makes the ``device=`` to pass; ``None`` for the backend's default.
    module : str or None
        Module that must import for this backend to run (else the test skips).
    cluster : bool
        Run under a two-worker ``dask.distributed.LocalCluster``.
    """

    id: str
    name: str
    device_factory: Any = None
    module: str | None = None
    cluster: bool = False

    @property
    def device(self) -> Any:
        return None if self.device_factory is None else self.device_factory()


def _strict_device1():
    import array_api_strict

    return array_api_strict.Device("device1")


CORE_BACKENDS = [
    Backend("numpy", "numpy"),
    Backend("strict", "array_api_strict", module="array_api_strict"),
    Backend("strict-device1", "array_api_strict", _strict_device1, module="array_api_strict"),
]

ALL_BACKENDS = [
    *CORE_BACKENDS,
    Backend("torch", "torch", module="torch"),
    Backend("jax", "jax", module="jax"),
    Backend("dask", "dask", module="dask.array"),
    Backend("dask-cluster", "dask", module="distributed", cluster=True),
    Backend("cupy", "cupy", module="cupy"),
]

#: (rtol, atol) for comparing a dtype's results with NumPy float64.
TOLERANCE = {"float64": (1e-12, 1e-12), "float32": (2e-4, 2e-5)}

#: Dask chunk size in the tests: small enough that every test data set spans
#: several row chunks, so gradients really are sums over chunks.
DASK_TEST_CHUNK = "512B"


def backend_params(backends: list[Backend]) -> list[Any]:
    """``pytest.param`` for each backend; CuPy is marked ``gpu`` and skipped
    unless a CUDA device answers."""
    params = []
    for b in backends:
        marks = []
        if b.name == "cupy":
            marks = [
                pytest.mark.gpu,
                pytest.mark.skipif(not bpnet.cuda_available(), reason="no CUDA device answers"),
            ]
        params.append(pytest.param(b, id=b.id, marks=marks))
    return params


def make_targets(loss: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Valid random targets for ``loss`` with ``k`` outputs."""
    if loss == "mse":
        return rng.standard_normal((n, k))
    if loss == "logistic":
        return rng.choice([-1.0, 1.0], size=(n, k))
    if loss == "cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(n, k)).astype(float)
    if loss == "poisson":
        return rng.poisson(1.5, size=(n, k)).astype(float)
    raise ValueError(loss)


def assert_close(actual: Any, expected: Any, dtype: str = "float64", scale: float = 1.0, *,
                 like: Any = None) -> None:
    """``actual`` is an array of the expected kind, and equals ``expected`` within
    ``dtype``'s tolerance times ``scale``.

    Parameters
    ----------
    actual : array
        What is tested.  An array of the backend of ``like`` (a network) on its
        device and in its dtype when ``like`` is given, else a NumPy array.  Its
        dtype must be ``dtype`` and its shape that of ``expected``.
    expected : array-like
        The reference values (usually NumPy's, from a reference network).
    dtype : {"float64", "float32"}
        Selects the tolerance from :data:`TOLERANCE`.
    scale : float
        Multiplies the tolerance.
    like : MLP, optional
        The network ``actual`` belongs to.
    """
    if like is None:
        assert array_library(actual) == "numpy", (
            f"expected a NumPy array, got {type(actual).__name__}; pass like=net to compare "
            "a backend array")
        assert str(actual.dtype) == dtype, f"dtype {actual.dtype}, expected {dtype}"
    else:
        assert array_library(actual) == backend_name(like.xp), (
            f"a {array_library(actual)} array, expected one of {backend_name(like.xp)}")
        assert device_of(actual) == like.device, (
            f"on device {device_of(actual)!r}, expected {like.device!r}")
        assert dtype_name(like.xp, actual.dtype) == like.dtype_name, (
            f"dtype {actual.dtype}, expected {like.dtype_name}")
    expected = np.asarray(bpnet.to_numpy(expected))
    assert tuple(actual.shape) == expected.shape, (
        f"shape {tuple(actual.shape)}, expected {expected.shape}")
    rtol, atol = TOLERANCE[dtype]
    np.testing.assert_allclose(bpnet.to_numpy(actual), expected, rtol=rtol * scale,
                               atol=atol * scale)


def blobs(rng: np.random.Generator, n: int = 60, k: int = 3, d: int = 4):
    """Separable classes: class c sits around 3 * e_c; returns (X (n, d), labels (n,))."""
    y = rng.integers(0, k, n)
    X = rng.standard_normal((n, d)) + 3.0 * np.eye(k, d)[y]
    return X, y


def weights(net: Any) -> list[np.ndarray]:
    """Host copies of every parameter of ``net``, in flat order."""
    return [bpnet.to_numpy(t).copy() for pair in net.params for t in pair]


def assert_same_weights(net: Any, expected: list[np.ndarray]) -> None:
    """``net``'s parameters equal ``expected`` (from :func:`weights`) bit for bit."""
    for got, want in zip(weights(net), expected, strict=True):
        np.testing.assert_array_equal(got, want)

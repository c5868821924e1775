"""Shared fixtures: backends x devices x dtypes, with a tolerance table.

``backend`` runs a test once per way of running bpnet: NumPy; array-api-strict
on its default device and on ``device1`` (the CPU stand-in for a GPU: an array
left on the wrong device fails loudly); PyTorch; JAX; Dask with the threaded
scheduler and with a two-worker ``dask.distributed`` cluster; CuPy when a CUDA
device answers (marked ``gpu``).  Backends that are not installed skip.

JAX computes in float32 unless its 64-bit mode is on, so the ``backend``
fixture turns ``jax_enable_x64`` on for JAX tests, except those that ask for
float32 through the ``dtype`` fixture: those run in JAX's default mode, the one
float32 users have.
"""

from __future__ import annotations

import os

# scikit-learn's estimator checks test Array API inputs only when SciPy was
# imported with this set; it must come before anything imports SciPy.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import bpnet


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


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """One two-worker in-process cluster for the whole run (started on first use)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def jax_x64() -> Iterator[None]:
    """JAX's 64-bit mode on for one test, restored afterwards."""
    jax = pytest.importorskip("jax")
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


@pytest.fixture(params=backend_params(ALL_BACKENDS))
def backend(request) -> Iterator[Backend]:
    b: Backend = request.param
    if b.module is not None:
        pytest.importorskip(b.module)
    if b.name == "jax":
        float32 = "dtype" in request.fixturenames and request.getfixturevalue("dtype") == "float32"
        if not float32:
            request.getfixturevalue("jax_x64")
    if b.name != "dask":
        yield b
        return
    import dask

    with dask.config.set({"array.chunk-size": DASK_TEST_CHUNK}):
        if b.cluster:
            with request.getfixturevalue("dask_client").as_current():
                yield b
        else:
            with dask.config.set(scheduler="threads"):
                yield b


@pytest.fixture(params=["float64", "float32"])
def dtype(request) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


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
    raise ValueError(loss)


def assert_close(actual, expected, dtype: str = "float64", scale: float = 1.0) -> None:
    """``actual`` (any backend) equals ``expected`` within ``dtype``'s tolerance
    times ``scale``."""
    rtol, atol = TOLERANCE[dtype]
    np.testing.assert_allclose(
        bpnet.to_numpy(actual), bpnet.to_numpy(expected), rtol=rtol * scale, atol=atol * scale
    )

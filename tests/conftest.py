"""Shared fixtures: backends x devices x dtypes (the helpers they use are in
``tests/helpers.py``).

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
from typing import Any

import numpy as np
import pytest

import bpnet

from .helpers import ALL_BACKENDS, DASK_TEST_CHUNK, Backend, backend_params, blobs


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """One two-worker in-process cluster for the whole run (started on first use)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            # its HTTP server on a free port: the default one may be taken by another run
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
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


@pytest.fixture
def clf(rng):
    """A 4-8-3 float64 cross-entropy network and separable data for it."""
    X, y = blobs(rng)
    net = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype="float64", seed=0)
    return net, X, y

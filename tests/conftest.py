"""Shared fixtures: backends x devices x dtypes, with a tolerance table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import bpnet


@dataclass(frozen=True)
class Backend:
    """One way of running bpnet: a backend name and a device (None: default)."""

    id: str
    name: str
    device_factory: Any = None

    @property
    def device(self) -> Any:
        return None if self.device_factory is None else self.device_factory()


def _strict_device1():
    import array_api_strict

    return array_api_strict.Device("device1")


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


CORE_BACKENDS = [
    Backend("numpy", "numpy"),
    Backend("strict", "array_api_strict"),
    Backend("strict-device1", "array_api_strict", _strict_device1),
]

#: (rtol, atol) for comparing a dtype's results with NumPy float64.
TOLERANCE = {"float64": (1e-12, 1e-12), "float32": (2e-4, 2e-5)}


def backend_params(backends):
    marks = []
    for b in backends:
        needs = {"array_api_strict": "array_api_strict"}.get(b.name)
        skip = needs is not None and not _has(needs)
        marks.append(
            pytest.param(b, id=b.id, marks=pytest.mark.skipif(skip, reason=f"{needs} missing"))
        )
    return marks


@pytest.fixture(params=backend_params(CORE_BACKENDS))
def backend(request) -> Backend:
    return request.param


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


def assert_close(actual, expected, dtype: str = "float64") -> None:
    rtol, atol = TOLERANCE[dtype]
    np.testing.assert_allclose(bpnet.to_numpy(actual), expected, rtol=rtol, atol=atol)

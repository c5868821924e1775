"""The one module that knows which array library stands behind ``xp``.

Everything else in bpnet is written against the Python Array API standard and
receives its namespace as an ``xp`` argument.  This module turns user-facing
names (``"numpy"``, ``"array_api_strict"``, ...) into namespaces, resolves
devices and dtypes, moves arrays between the host and a backend, and
materializes lazy results.  No optional backend is imported until it is asked
for.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "DTYPES",
    "backend_name",
    "default_device",
    "device_of",
    "get_namespace",
    "materialize",
    "resolve_dtype",
    "to_numpy",
]

#: Backend names accepted by ``MLP(backend=...)``.  ``"auto"`` picks CuPy when a
#: CUDA device answers, else NumPy.
BACKENDS: tuple[str, ...] = ("auto", "numpy", "array_api_strict", "cupy", "torch", "jax", "dask")

#: Floating dtypes bpnet trains in.
DTYPES: tuple[str, ...] = ("float32", "float64")

# name -> (module to import, pip extra that provides it)
_MODULES: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", ""),
    "array_api_strict": ("array_api_strict", "strict"),
    "cupy": ("cupy", "cuda12"),
    "torch": ("torch", "torch"),
    "jax": ("jax.numpy", "jax"),
    "dask": ("dask.array", "dask"),
}


def cuda_available() -> bool:
    """Whether CuPy is installed and a CUDA device answers.

    Never raises: a missing CuPy, a missing driver or a broken CUDA install all
    mean "no".
    """
    try:
        cupy = importlib.import_module("cupy")
    except Exception:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:
        return False


def _import_backend(name: str) -> ModuleType:
    module, extra = _MODULES[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'bpnet[{extra}]'" if extra else "pip install numpy"
        raise ImportError(
            f"backend {name!r} needs the {module.split('.')[0]!r} package, which is not "
            f"installed; install it with: {hint}"
        ) from exc


def _numpy_namespace() -> ModuleType:
    # NumPy >= 2 implements the standard in its main namespace; using it directly
    # skips array-api-compat's thin wrappers, which matter on tiny layers.
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np
    return array_api_compat.array_namespace(np.empty(0))


def get_namespace(backend: str | ModuleType) -> ModuleType:
    """Return the Array API namespace for a backend name or module.

    Parameters
    ----------
    backend : str or module
        One of :data:`BACKENDS`, or an array module (``numpy``, ``cupy``,
        ``torch``, ``array_api_strict``, an ``array_api_compat`` namespace...).

    Returns
    -------
    module
        A namespace that follows the Array API standard.

    Raises
    ------
    ValueError
        For an unknown backend name.
    ImportError
        When the backend's package is not installed (names the extra to install).
    """
    if isinstance(backend, ModuleType):
        name = backend_name(backend)
        return get_namespace(name)
    if not isinstance(backend, str):
        raise TypeError(
            f"backend must be a name (one of {', '.join(BACKENDS)}) or an array "
            f"namespace module, got {type(backend).__name__}"
        )
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "cupy" if cuda_available() else "numpy"
    if backend == "numpy":
        return _numpy_namespace()
    mod = _import_backend(backend)
    if backend == "array_api_strict":
        return mod
    # Wrap the library so that it follows the standard (torch, cupy, jax, dask).
    return array_api_compat.array_namespace(_probe_array(backend, mod))


def _probe_array(name: str, mod: ModuleType) -> Any:
    if name == "dask":
        return mod.zeros(0, chunks=1)
    return mod.zeros(0) if name != "jax" else mod.zeros((0,))


def backend_name(xp: ModuleType) -> str:
    """The bpnet name (``"numpy"``, ``"torch"``...) of a namespace or array module."""
    if xp is np or array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    checks = (
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("jax", array_api_compat.is_jax_namespace),
        ("dask", array_api_compat.is_dask_namespace),
    )
    for name, check in checks:
        if check(xp):
            return name
    raise ValueError(
        f"unsupported array namespace {getattr(xp, '__name__', xp)!r}; expected one of "
        f"numpy, array_api_strict, cupy, torch, jax, dask"
    )


def array_backend(x: Any) -> str | None:
    """The backend name of an array, or ``None`` for anything that is not an array
    of a supported library (lists, scalars, ...)."""
    if isinstance(x, np.ndarray):
        return "numpy"
    if not array_api_compat.is_array_api_obj(x):
        return None
    try:
        return backend_name(array_api_compat.array_namespace(x))
    except (TypeError, ValueError):
        return None


def resolve_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Turn ``"float32"``/``"float64"`` (or a dtype object) into ``xp``'s dtype.

    Raises
    ------
    ValueError
        For anything but a real floating dtype of 32 or 64 bits.
    """
    name = _dtype_name(dtype)
    if name not in DTYPES:
        raise ValueError(
            f"dtype must be one of {', '.join(DTYPES)} (a floating type), got {dtype!r}"
        )
    return getattr(xp, name)


def _dtype_name(dtype: Any) -> str | None:
    if isinstance(dtype, str):
        return dtype
    for name in DTYPES:
        if dtype is getattr(np, name, None):
            return name
    text = str(dtype)
    for name in DTYPES:
        if text.endswith(name) or text.endswith(f"{name}'>"):
            return name
    return text


def dtype_name(xp: ModuleType, dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` for a floating dtype of ``xp``."""
    for name in DTYPES:
        if dtype == getattr(xp, name):
            return name
    return str(dtype)


def default_device(xp: ModuleType) -> Any:
    """The device that ``xp`` puts new arrays on when none is asked for."""
    return array_api_compat.device(xp.empty((0,)))


def device_of(x: Any) -> Any:
    """The device of an array (standard ``x.device``, through array-api-compat)."""
    return array_api_compat.device(x)


def to_device(x: Any, device: Any) -> Any:
    """Move ``x`` to ``device`` (a no-op when it is already there)."""
    if device is None or device_of(x) == device:
        return x
    return array_api_compat.to_device(x, device)


def to_numpy(x: Any) -> np.ndarray:
    """Copy any supported backend array to a :class:`numpy.ndarray` on the host.

    Lazy arrays (Dask) are computed; device arrays (CuPy, CUDA tensors,
    array-api-strict's non-default devices) are copied to the host.

    Parameters
    ----------
    x : array
        An array of NumPy, CuPy, PyTorch, JAX, Dask or array-api-strict, or
        anything :func:`numpy.asarray` accepts.

    Returns
    -------
    numpy.ndarray
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_dask_array(x):
        return np.asarray(x.compute())
    if array_api_compat.is_array_api_obj(x) and type(x).__module__.startswith("array_api_strict"):
        import array_api_strict

        x = x.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.asarray(x)
    return np.asarray(x)


def materialize(xp: ModuleType, *arrays: Any) -> tuple[Any, ...]:
    """Compute lazy arrays in one go; eager arrays pass through unchanged.

    Dask builds a graph for the whole step; computing the loss and every
    gradient in a single :func:`dask.compute` lets the scheduler share the
    forward pass between them.
    """
    if array_api_compat.is_dask_namespace(xp):
        import dask

        return tuple(dask.compute(*arrays))
    return arrays

"""Backend names and modules to Array API namespaces; dtypes and devices.

User-facing names (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``, ``"dask"``,
``"array_api_strict"``, ``"auto"``) or modules become namespaces here, importing
an optional backend only when it is asked for and saying which extra to install
when it is missing.  Dtypes are resolved against the namespace (refusing
float64 on JAX without its 64-bit mode rather than computing in float32), and
devices are checked by making an array on them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "DTYPES",
    "array_library",
    "backend_name",
    "check_device",
    "complex_dtype",
    "cuda_available",
    "default_device",
    "device_from_state",
    "device_state",
    "dtype_name",
    "get_namespace",
    "is_host_array",
    "is_writeable",
    "resolve_backend",
    "resolve_dtype",
]

#: Backend names accepted by ``MLP(backend=...)``.  ``"auto"`` picks CuPy when a
#: CUDA device answers, else NumPy.
BACKENDS: tuple[str, ...] = ("auto", "numpy", "array_api_strict", "cupy", "torch", "jax", "dask")

#: Floating dtypes bpnet trains in.
DTYPES: tuple[str, ...] = ("float32", "float64")


@dataclass(frozen=True)
class _Spec:
    package: str  # imported first: a missing package must fail here, not in a cached wrapper
    namespace: str  # the module that follows the Array API standard
    install: str  # what to tell a user who lacks the package


_SPECS: dict[str, _Spec] = {
    "array_api_strict": _Spec("array_api_strict", "array_api_strict",
                              "pip install 'bpnet[strict]'"),
    "cupy": _Spec("cupy", "array_api_compat.cupy",
                  "pip install 'bpnet[cuda12]' (CUDA 12) or 'bpnet[cuda13]' (CUDA 13)"),
    "torch": _Spec("torch", "array_api_compat.torch", "pip install 'bpnet[torch]'"),
    # jax.numpy implements the standard itself (JAX >= 0.4.32); array-api-compat hands
    # back this very module for JAX arrays.
    "jax": _Spec("jax", "jax.numpy", "pip install 'bpnet[jax]'"),
    "dask": _Spec("dask.array", "array_api_compat.dask.array", "pip install 'bpnet[dask]'"),
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


def resolve_backend(backend: str) -> str:
    """The concrete backend name behind ``backend``: ``"auto"`` becomes ``"cupy"``
    when :func:`cuda_available`, else ``"numpy"``; other names pass through."""
    if backend == "auto":
        return "cupy" if cuda_available() else "numpy"
    return backend


def _import_backend(name: str) -> ModuleType:
    spec = _SPECS[name]
    try:
        importlib.import_module(spec.package)
        return importlib.import_module(spec.namespace)
    except ImportError as exc:
        top = spec.package.split(".")[0]
        raise ImportError(
            f"backend {name!r} needs the {top!r} package, which is not installed (or "
            f"failed to import: {exc}); install it with: {spec.install}"
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
        ``torch``, ``jax.numpy``, ``dask.array``, ``array_api_strict``, an
        ``array_api_compat`` namespace...).

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
    RuntimeError
        For ``"cupy"`` when CuPy is installed but no CUDA device answers.
    """
    if isinstance(backend, ModuleType):
        return get_namespace(backend_name(backend))
    if not isinstance(backend, str):
        raise TypeError(
            f"backend must be a name (one of {', '.join(BACKENDS)}) or an array "
            f"namespace module, got {type(backend).__name__}"
        )
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    backend = resolve_backend(backend)
    if backend == "numpy":
        return _numpy_namespace()
    xp = _import_backend(backend)
    if backend == "cupy" and not cuda_available():
        # CuPy imports without a driver; fail here, not at the first allocation
        # with a cudaErrorInsufficientDriver deep inside the constructor.
        raise RuntimeError(
            "backend 'cupy' needs a CUDA device, and none answers (cupy.is_available() "
            "is False): check the NVIDIA driver and that the cupy-cuda1Nx wheel matches "
            "its CUDA version, or use backend='auto' to fall back to NumPy"
        )
    return xp


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


def array_library(x: Any) -> str | None:
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


def is_host_array(x: Any) -> bool:
    """True for host data that mixes with any backend: NumPy arrays, and anything
    that is not an array of a supported library (lists, scalars, pandas...)."""
    return array_library(x) in (None, "numpy")


def is_writeable(x: Any) -> bool:
    """Whether item assignment into ``x`` works (False for JAX's immutable arrays)."""
    return bool(array_api_compat.is_writeable_array(x))


def resolve_dtype(xp: ModuleType, dtype: Any) -> Any:
    """Turn ``"float32"``/``"float64"`` (or a dtype object) into ``xp``'s dtype.

    Raises
    ------
    ValueError
        For anything but a real floating dtype of 32 or 64 bits, and for
        float64 on JAX while its 64-bit mode is off (JAX would silently hand
        back float32 arrays).
    """
    name = _dtype_name(dtype)
    if name not in DTYPES:
        raise ValueError(
            f"dtype must be one of {', '.join(DTYPES)} (a floating type), got {dtype!r}"
        )
    if name == "float64" and array_api_compat.is_jax_namespace(xp) and not _jax_x64():
        raise ValueError(
            "dtype 'float64' on backend 'jax' needs JAX's 64-bit mode, which is off, "
            "so JAX would silently compute in float32; turn it on before creating any "
            "array with jax.config.update('jax_enable_x64', True) (or the environment "
            "variable JAX_ENABLE_X64=1), or use dtype='float32'"
        )
    return getattr(xp, name)


def _jax_x64() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))


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


def complex_dtype(xp: ModuleType, dtype: Any) -> Any:
    """The complex dtype of ``xp`` with the precision of the real ``dtype``
    (``complex64`` for float32, ``complex128`` for float64), which complex step
    differentiation computes in.

    Raises
    ------
    TypeError
        When ``xp`` has no such dtype (a backend without complex support).
    """
    real = dtype_name(xp, dtype)
    name = {"float32": "complex64", "float64": "complex128"}.get(real)
    found = getattr(xp, name, None) if name is not None else None
    if found is None:
        label = getattr(xp, "__name__", repr(xp))
        raise TypeError(
            f"array namespace {label!r} has no {name or 'complex'} dtype matching {real}, "
            f"which the complex step needs; use method='forward_mode' (exact, real "
            f"arithmetic only) or a backend with complex dtypes"
        )
    return found


def default_device(xp: ModuleType) -> Any:
    """The device that ``xp`` puts new arrays on when none is asked for."""
    return array_api_compat.device(xp.empty((0,)))


def check_device(xp: ModuleType, device: Any) -> Any:
    """``device`` as ``xp`` reports it (its default for None), checked by making
    an array there.

    Raises
    ------
    ValueError
        When ``xp`` cannot make arrays on ``device``.
    """
    if device is None:
        return default_device(xp)
    try:
        probe = xp.empty((0,), device=device)
    except Exception as exc:
        raise ValueError(
            f"device {device!r} is not available on backend {backend_name(xp)!r}: {exc}"
        ) from None
    return array_api_compat.device(probe)


def device_state(xp: ModuleType, device: Any) -> Any:
    """A picklable stand-in for ``device`` (JAX's devices do not pickle); see
    :func:`device_from_state`."""
    if array_api_compat.is_jax_namespace(xp):
        return ("jax", device.platform, device.id)
    return device


def device_from_state(xp: ModuleType, state: Any) -> Any:
    """The device :func:`device_state` stood in for, in this process."""
    if array_api_compat.is_jax_namespace(xp):
        import jax

        _, platform_name, index = state
        return next(d for d in jax.devices(platform_name) if d.id == index)
    return state

"""Backend names and modules to Array API namespaces; dtypes and devices.

User-facing names (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``, ``"dask"``,
``"array_api_strict"``, ``"auto"``) or modules become namespaces here, importing
an optional backend only when it is asked for and saying which extra to install
when it is missing.  Any other namespace that follows the Array API standard
(a module, or what an array's ``__array_namespace__`` returns) is accepted as
it is, as backend ``"generic"``: bpnet then uses only the standard's functions
on it, and moves its arrays to the host only through DLPack
(:func:`bpnet.backend.transfer.to_numpy`).

Dtypes are resolved against the namespace (refusing float64 on JAX without
its 64-bit mode rather than computing in float32).  Devices are checked by
making an array on them; a CuPy device's id is checked against the number of
GPUs, and :func:`on_device` makes it the current one, because CuPy's creation
functions put new arrays on the current device whatever ``device=`` says.  A
Dask array's device is the library of its chunks (:class:`~bpnet.backend.lazy.Chunks`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import array_api_compat
import numpy as np

from . import lazy
from .precision import matmul_precision

__all__ = [
    "BACKENDS",
    "DTYPES",
    "array_library",
    "backend_name",
    "check_device",
    "complex_dtype",
    "count_dtype",
    "cuda_available",
    "default_device",
    "device_from_state",
    "device_state",
    "dtype_name",
    "get_namespace",
    "is_host_array",
    "is_writeable",
    "namespace_of",
    "on_device",
    "on_its_device",
    "resolve_backend",
    "resolve_dtype",
]

#: Backend names accepted by ``MLP(backend=...)``.  ``"auto"`` picks CuPy when a
#: CUDA device answers, else NumPy.  A namespace of any other library that
#: follows the standard is accepted as a module or object (backend ``"generic"``).
BACKENDS: tuple[str, ...] = ("auto", "numpy", "array_api_strict", "cupy", "torch", "jax", "dask")

#: The name of a backend that is a namespace bpnet does not know by name.
GENERIC = "generic"

#: What bpnet calls on a namespace: one that lacks any of these is no array library.
_REQUIRED = ("asarray", "astype", "concat", "exp", "log", "matmul", "reshape", "stack", "sum",
             "take", "zeros_like", "float32", "float64", "isdtype")

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
    # array-api-compat's, behind bpnet's wrapper whose creation functions honour
    # ``device=`` as the chunk type (see bpnet.backend.lazy.namespace)
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
        xp = importlib.import_module(spec.namespace)
    except ImportError as exc:
        top = spec.package.split(".")[0]
        raise ImportError(
            f"backend {name!r} needs the {top!r} package, which is not installed (or "
            f"failed to import: {exc}); install it with: {spec.install}"
        ) from exc
    return lazy.namespace() if name == "dask" else xp


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
    backend : str, module or namespace
        One of :data:`BACKENDS`, an array module (``numpy``, ``cupy``,
        ``torch``, ``jax.numpy``, ``dask.array``, ``array_api_strict``, an
        ``array_api_compat`` namespace...), or the namespace of any other
        library that follows the standard (returned as it is).

    Returns
    -------
    module
        A namespace that follows the Array API standard.

    Raises
    ------
    ValueError
        For an unknown backend name, or a module that is no array namespace.
    ImportError
        When the backend's package is not installed (names the extra to install).
    RuntimeError
        For ``"cupy"`` when CuPy is installed but no CUDA device answers.
    """
    if not isinstance(backend, str):
        if not isinstance(backend, ModuleType) and not _looks_like_namespace(backend):
            raise TypeError(
                f"backend must be a name (one of {', '.join(BACKENDS)}) or an array "
                f"namespace module, got {type(backend).__name__}"
            )
        name = backend_name(backend)
        return backend if name == GENERIC else get_namespace(name)
    if backend == GENERIC:
        raise ValueError(
            "backend 'generic' names no library: pass the namespace itself "
            "(MLP(backend=xp), e.g. xp = array_api_compat.array_namespace(X))"
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
    """The bpnet name (``"numpy"``, ``"torch"``...) of a namespace or array module;
    :data:`GENERIC` for a namespace of another library that follows the standard.

    Raises
    ------
    ValueError
        For a module or object that lacks the standard's functions.
    """
    if xp is np or array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if lazy.is_lazy(xp):
        return "dask"
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
    missing = [f for f in _REQUIRED if not hasattr(xp, f)]
    if missing:
        raise ValueError(
            f"unsupported array namespace {getattr(xp, '__name__', xp)!r}: it lacks "
            f"{', '.join(missing)} of the Array API standard; expected numpy, "
            "array_api_strict, cupy, torch, jax, dask, or another library's namespace "
            "that follows the standard"
        )
    return GENERIC


def _looks_like_namespace(obj: Any) -> bool:
    # A namespace need not be a module (array-api-compat accepts any object
    # that __array_namespace__ returns).
    return hasattr(obj, "__array_api_version__") or all(hasattr(obj, f) for f in _REQUIRED)


def namespace_of(*arrays: Any) -> ModuleType:
    """bpnet's namespace for arrays of one library (see :func:`get_namespace`):
    array-api-compat's, but bpnet's own Dask wrapper, whose creation functions
    honour a chunk type given as ``device=``."""
    return get_namespace(array_api_compat.array_namespace(*arrays))


def array_library(x: Any) -> str | None:
    """The backend name of an array (:data:`GENERIC` for an array of another
    library that follows the standard), or ``None`` for anything that is not an
    array (lists, scalars, pandas objects...)."""
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


def count_dtype(xp: ModuleType) -> Any:
    """The integer dtype to count samples in: int64, or int32 on JAX without its
    64-bit mode (where int64 would warn and be truncated anyway).  Counting in a
    float32 would be exact only up to 2^24 samples."""
    if array_api_compat.is_jax_namespace(xp) and not _jax_x64():
        return xp.int32
    return xp.int64


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

    On CuPy, ``device`` is an id or a ``cupy.cuda.Device`` (None: the current
    device), returned as a ``cupy.cuda.Device``; on Dask, the library of the
    chunks (see :class:`bpnet.backend.lazy.Chunks`).

    Raises
    ------
    ValueError
        When ``xp`` cannot make arrays on ``device``, or a CuPy device id is not
        that of a GPU CuPy sees.
    """
    if array_api_compat.is_cupy_namespace(xp):
        return _cupy_device(device)
    if lazy.is_lazy(xp):
        return _dask_device(xp, device)
    if device is None:
        return default_device(xp)
    try:
        probe = xp.empty((0,), device=device)
    except Exception as exc:
        raise ValueError(
            f"device {device!r} is not available on backend {backend_name(xp)!r}: {exc}"
        ) from None
    return array_api_compat.device(probe)


def _dask_device(xp: ModuleType, device: Any) -> Any:
    """A Dask network's device: the library of its chunks.  None, ``"cpu"`` and
    NumPy mean NumPy chunks (``"cpu"``); a :class:`~bpnet.backend.lazy.Chunks`,
    a backend name (``"cupy"``) or a namespace (``cupy``, any library's that
    follows the standard) mean chunks of that library."""
    if device is None or (isinstance(device, str) and device in ("cpu", "numpy")):
        return "cpu"
    fail = (f"device {device!r} is not available on backend 'dask': a Dask network's "
            "device is the library of its chunks, given as a name ('cupy'), a namespace, "
            "or bpnet.backend.device_of(X) of a Dask array X")
    if isinstance(device, lazy.Chunks):
        cxp = device.xp
    else:
        if device in ("auto", "dask") or (isinstance(device, ModuleType) and lazy.is_lazy(device)):
            raise ValueError(f"{fail}; Dask chunks cannot be Dask arrays")
        try:
            cxp = get_namespace(device)
        except (TypeError, ValueError, ImportError, RuntimeError) as exc:
            raise ValueError(f"{fail}: {exc}") from None
    if cxp is np:
        return "cpu"
    if not hasattr(cxp.empty((0,)), "__array_function__"):
        raise ValueError(f"{fail}: Dask computes on chunks through NumPy's dispatch protocol "
                         f"(__array_function__), which arrays of {backend_name(cxp)!r} lack")
    chunks = lazy.Chunks(cxp)
    xp.empty((0,), device=chunks)  # the chunk library can make Dask's metas
    return chunks


def _cupy_device(device: Any) -> Any:
    import cupy

    if device is None:
        return cupy.cuda.Device()  # the current one
    index = getattr(device, "id", device)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(
            f"device {device!r} is not a CuPy device: pass a GPU id (an int) or a "
            "cupy.cuda.Device")
    count = cupy.cuda.runtime.getDeviceCount()
    if not 0 <= index < count:
        raise ValueError(
            f"device {int(index)} does not exist on backend 'cupy': CuPy sees {count} CUDA "
            f"device{'s' * (count != 1)} (ids 0 to {count - 1})")
    return cupy.cuda.Device(int(index))


#: What :func:`on_device` gives where there is no current device to set: one
#: reusable, reentrant context that does nothing.
_NOWHERE = contextlib.nullcontext()


def on_device(xp: ModuleType, device: Any) -> contextlib.AbstractContextManager:
    """A context in which ``xp`` creates arrays on ``device``.

    CuPy puts every new array on the *current* device: array-api-compat's
    creation functions drop ``device=``, and so do ``zeros_like``, ``concat``
    and CuPy's own kernels.  On CuPy this is ``with cupy.cuda.Device(k):``; on
    every other backend, which honours ``device=``, a context that does nothing
    (and costs a few hundred nanoseconds).
    """
    if xp is np or device is None or not array_api_compat.is_cupy_namespace(xp):
        return _NOWHERE
    import cupy

    # a fresh Device: each keeps its own stack of the devices it replaced
    return cupy.cuda.Device(device.id)


def device_state(xp: ModuleType, device: Any) -> Any:
    """A picklable stand-in for ``device`` (JAX's devices do not pickle, nor do
    the namespaces in a Dask chunk type); see :func:`device_from_state`."""
    if array_api_compat.is_jax_namespace(xp):
        return ("jax", device.platform, device.id)
    if array_api_compat.is_cupy_namespace(xp):
        return ("cupy", device.id)
    if isinstance(device, lazy.Chunks) and backend_name(device.xp) != GENERIC:
        return ("chunks", backend_name(device.xp))
    return device


def device_from_state(xp: ModuleType, state: Any) -> Any:
    """The device :func:`device_state` stood in for, in this process."""
    if array_api_compat.is_jax_namespace(xp):
        import jax

        _, platform_name, index = state
        return next(d for d in jax.devices(platform_name) if d.id == index)
    if isinstance(state, tuple) and state and state[0] in ("cupy", "chunks"):
        return check_device(xp, state[1] if state[0] == "cupy" else get_namespace(state[1]))
    return state


class _OnADevice(Protocol):
    xp: ModuleType
    device: Any


_Self = TypeVar("_Self", bound=_OnADevice)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def on_its_device(
    method: Callable[Concatenate[_Self, _P], _R],
) -> Callable[Concatenate[_Self, _P], _R]:
    """Decorator: ``method`` of an object with ``xp`` and ``device`` attributes (a
    network) run with that device current (:func:`on_device`): on CuPy every
    array a kernel or an optimizer creates lands on the current GPU.  When the
    object's ``tf32`` is True or False, its float32 matrix products run in
    TensorFloat-32 or full float32 meanwhile (:func:`~bpnet.backend.precision.matmul_precision`);
    ``None`` leaves the library's own setting alone."""

    @functools.wraps(method)
    def on_the_device(self: _Self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with on_device(self.xp, self.device), precision(self.xp, getattr(self, "tf32", None)):
            return method(self, *args, **kwargs)

    return on_the_device


def precision(xp: ModuleType, tf32: bool | None) -> contextlib.AbstractContextManager:
    """:func:`~bpnet.backend.precision.matmul_precision` for ``tf32`` True or False; for None, or
    a library without a TensorFloat-32 switch (NumPy, Dask and array-api-strict
    compute on CPUs, where it would mean nothing), a context that does nothing."""
    if tf32 is None or xp is np or not (array_api_compat.is_cupy_namespace(xp)
                                        or array_api_compat.is_torch_namespace(xp)
                                        or array_api_compat.is_jax_namespace(xp)):
        return _NOWHERE
    return matmul_precision(xp, tf32)

"""The one module that knows which array library stands behind ``xp``.

Everything else in bpnet is written against the Python Array API standard and
receives its namespace as an ``xp`` argument.  This module:

- turns user-facing names (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
  ``"dask"``, ``"array_api_strict"``, ``"auto"``) or modules into namespaces,
  importing an optional backend only when it is asked for, and says which
  extra to install when it is missing;
- resolves devices and dtypes (refusing float64 on JAX without its 64-bit
  mode rather than computing in float32);
- moves arrays between the host and a backend: once per fit, blocking on CuPy
  so a reused host buffer can never race the copy;
- lays data out for Dask: whole rows per chunk, persisted, so each step's
  graph refers to computed chunks and the gradient is a sum over chunks;
- materializes lazy results, one ``dask.compute`` per step, and waits for
  asynchronous devices before anyone reads a clock.

Backend-specific fast paths live in :mod:`bpnet._backends`.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import platform
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "DTYPES",
    "as_rows",
    "backend_name",
    "cuda_available",
    "default_device",
    "detach",
    "device_description",
    "device_from_state",
    "device_of",
    "device_state",
    "from_host",
    "get_namespace",
    "known_rows",
    "match_rows",
    "materialize",
    "materialize_step",
    "resolve_backend",
    "resolve_dtype",
    "rewrap",
    "synchronize",
    "to_numpy",
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


def default_device(xp: ModuleType) -> Any:
    """The device that ``xp`` puts new arrays on when none is asked for."""
    return array_api_compat.device(xp.empty((0,)))


def device_of(x: Any) -> Any:
    """The device of an array (standard ``x.device``, through array-api-compat)."""
    return array_api_compat.device(x)


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


def to_device(x: Any, device: Any) -> Any:
    """Move ``x`` to ``device`` (a no-op when it is already there)."""
    if device is None or device_of(x) == device:
        return x
    return array_api_compat.to_device(x, device)


def to_numpy(x: Any) -> np.ndarray:
    """Copy any supported backend array to a :class:`numpy.ndarray` on the host.

    Lazy arrays (Dask) are computed; device arrays (CuPy, CUDA tensors,
    array-api-strict's non-default devices) are copied to the host; tensors
    that require grad are detached first.

    Parameters
    ----------
    x : array
        An array of NumPy, CuPy, PyTorch, JAX, Dask or array-api-strict, or
        anything :func:`numpy.asarray` accepts.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_dask_array(x):
        # the chunks may be CuPy arrays: convert whatever the compute gives
        return to_numpy(x.compute())
    if array_api_compat.is_array_api_obj(x) and type(x).__module__.startswith("array_api_strict"):
        import array_api_strict

        x = x.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.asarray(x)
    return np.asarray(x)


def from_host(xp: ModuleType, host: np.ndarray, device: Any) -> Any:
    """Move a host array to ``xp`` on ``device``, as one small object.

    Used for parameters and other arrays that every task needs whole: on Dask
    the result is a single chunk.  Data sets go through :func:`as_rows` instead.

    Parameters
    ----------
    xp : namespace
    host : numpy.ndarray
        Already in the wanted dtype.
    device : device of ``xp`` or None

    Returns
    -------
    array of ``xp``, same shape and dtype as ``host``
    """
    if array_api_compat.is_cupy_namespace(xp):
        return _cupy_from_host(host, device)
    if array_api_compat.is_dask_namespace(xp):
        import dask.array as da

        return da.from_array(host, chunks=-1)
    return xp.asarray(host, device=device)


def _cupy_from_host(host: np.ndarray, device: Any) -> Any:
    import cupy

    # CuPy 14 copies host -> device asynchronously by default: the host buffer
    # (often a temporary from ascontiguousarray) may be freed or reused before the
    # copy lands.  A blocking copy costs nothing here: it happens once per fit.
    with device if device is not None else contextlib.nullcontext():
        try:
            return cupy.asarray(host, blocking=True)
        except TypeError:  # CuPy < 14: no `blocking`, and such copies block anyway
            return cupy.asarray(host)


def as_rows(xp: ModuleType, x: Any, dtype: Any) -> Any:
    """A data set (N, ...) as a Dask array of whole rows, persisted.

    Row chunks are what make a gradient the sum over chunks of ``a.T @ delta``.
    A host array is cut into chunks of about ``dask.config["array.chunk-size"]``
    bytes (128 MiB unless configured); a Dask array keeps its row chunks and has
    its column chunks merged.  Persisting computes the chunks once (on the
    cluster's workers under ``dask.distributed``) so that every training step's
    graph refers to them instead of carrying the data.

    Parameters
    ----------
    xp : namespace
        Dask's; any other namespace returns ``x`` unchanged.
    x : numpy.ndarray or dask array
    dtype : dtype of ``xp``

    Returns
    -------
    dask array
        Same shape, ``dtype``, chunked only along axis 0.
    """
    if not array_api_compat.is_dask_namespace(xp):
        return x
    import dask.array as da

    whole = (-1,) * (x.ndim - 1)
    if isinstance(x, np.ndarray):
        x = da.from_array(np.ascontiguousarray(x, dtype=np.dtype(dtype)), chunks=("auto", *whole))
    else:
        x = x.rechunk((x.chunks[0], *whole))
        if x.dtype != dtype:
            x = x.astype(dtype)
    return x.persist()


def known_rows(x: Any) -> Any:
    """A Dask array with its chunk sizes known (persisted first, so the data that
    decides them is computed once); other arrays pass through.

    Boolean indexing and similar operations leave Dask arrays with unknown
    (``nan``) chunk sizes, which no shape check could read.
    """
    if not array_api_compat.is_dask_array(x):
        return x
    x = x.persist()
    if any(math.isnan(s) for s in x.shape):
        x.compute_chunk_sizes()
    return x


def match_rows(xp: ModuleType, y: Any, like: Any) -> Any:
    """``y`` rechunked along axis 0 like ``like`` (Dask), so that each sample's
    targets sit in the same chunk as its inputs; other backends pass through."""
    if not array_api_compat.is_dask_namespace(xp) or y.chunks[0] == like.chunks[0]:
        return y
    return y.rechunk((like.chunks[0], *y.chunks[1:])).persist()


def detach(x: Any) -> Any:
    """A torch tensor without its autograd history; anything else unchanged.

    bpnet computes its own gradients: recording an autograd graph for inputs
    that require grad would only cost memory.
    """
    if array_api_compat.is_torch_array(x) and x.requires_grad:
        return x.detach()
    return x


def materialize(xp: ModuleType, *arrays: Any) -> tuple[Any, ...]:
    """Compute lazy arrays in one go; eager arrays pass through unchanged.

    Dask builds a graph for the whole step; computing the loss and every
    gradient in a single :func:`dask.compute` lets the scheduler share the
    forward pass between them.  Dask results come back as concrete chunk arrays
    (NumPy, or CuPy for CuPy chunks); :func:`rewrap` turns them back into Dask
    arrays.
    """
    if array_api_compat.is_dask_namespace(xp):
        import dask

        return tuple(dask.compute(*arrays))
    return arrays


def rewrap(xp: ModuleType, computed: Any, like: Any) -> Any:
    """A computed result as an array of ``xp`` again: on Dask, a Dask array over
    the computed values with the chunks of ``like`` (the lazy array it came
    from); elsewhere ``computed`` itself."""
    if not array_api_compat.is_dask_namespace(xp):
        return computed
    import dask.array as da

    if isinstance(computed, np.generic):  # 0-d results compute to NumPy scalars
        computed = np.asarray(computed)
    # name=False: a random key instead of hashing the data, which nobody reuses
    return da.from_array(computed, chunks=like.chunks, name=False)


def materialize_step(
    xp: ModuleType, value: Any, params: list[tuple[Any, Any]]
) -> tuple[Any, list[tuple[Any, Any]]]:
    """End a training step: the loss and the new parameters in one compute.

    On Dask, without this, each step's weights would be a graph over the
    previous step's, and every compute would redo all the steps before it.
    The same serves any (value, tree) result: a loss and its gradients.

    Parameters
    ----------
    xp : namespace
    value : 0-d array or None
        The step's loss (None when there is only a tree to compute).
    params : list of (W, b)
        The updated parameters, or gradients (lazy on Dask).

    Returns
    -------
    value : 0-d array or None
        Concrete (a NumPy scalar array on Dask), ready for ``float(to_numpy(...))``.
    params : list of (W, b)
        Arrays of ``xp``; on Dask, single-chunk arrays over the computed values.
    """
    if not array_api_compat.is_dask_namespace(xp):
        return value, params
    lazy = [t for pair in params for t in pair]
    head = [] if value is None else [value]
    done = materialize(xp, *head, *lazy)
    value = done[0] if head else None
    flat = [rewrap(xp, t, like) for t, like in zip(done[len(head):], lazy, strict=True)]
    return value, [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def synchronize(*arrays: Any) -> None:
    """Wait until the device has finished computing ``arrays``.

    Needed before reading a clock: CuPy, CUDA tensors and JAX return before
    their kernels have run.  NumPy, array-api-strict and CPU tensors are eager
    and need nothing; Dask results are concrete once computed.
    """
    for x in arrays:
        if array_api_compat.is_jax_array(x):
            x.block_until_ready()
        elif array_api_compat.is_cupy_array(x):
            with x.device:
                import cupy

                cupy.cuda.get_current_stream().synchronize()
        elif array_api_compat.is_torch_array(x) and x.device.type == "cuda":
            import torch

            torch.cuda.synchronize(x.device)


def device_description(x: Any) -> str:
    """A short human-readable name of the device holding ``x``, with its memory
    for GPUs (``"NVIDIA H100 80GB HBM3, 79.1 GiB (78.5 free)"``)."""
    if array_api_compat.is_cupy_array(x):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(x.device.id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        with x.device:
            free, total = cupy.cuda.runtime.memGetInfo()
        return f"{name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free)"
    if array_api_compat.is_torch_array(x) and x.device.type == "cuda":
        import torch

        free, total = torch.cuda.mem_get_info(x.device)
        name = torch.cuda.get_device_name(x.device)
        return f"{name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free)"
    if array_api_compat.is_jax_array(x):
        return ", ".join(str(d) for d in x.devices())
    return f"{device_of(x)} ({platform.processor() or platform.machine()})"

"""Moving arrays between the host and a backend's device, and waiting for it.

Parameters and data sets cross to the device once (per network, per fit);
results cross back once per epoch, several scalars in one transfer.  On CuPy
the host-to-device copy blocks, so a reused host buffer can never race it.

Every move to the host is explicit: ``.get()`` on CuPy, ``.cpu()`` on torch,
and, for an array of a library bpnet does not know by name (backend
``"generic"``), DLPack, the standard's interchange: ``numpy.from_dlpack(x,
device="cpu")``, which asks the library for a host copy when the data lives
elsewhere (DLPack 1.0).  Nothing here calls :func:`numpy.asarray` on a device
array, which CuPy refuses and which would otherwise hide a copy.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from . import lazy

__all__ = [
    "detach",
    "device_description",
    "device_of",
    "from_host",
    "host_scalars",
    "synchronize",
    "to_backend",
    "to_device",
    "to_numpy",
]


def device_of(x: Any) -> Any:
    """The device of an array (standard ``x.device``, through array-api-compat);
    for a Dask array, the library of its chunks (:func:`bpnet.backend.lazy.device_of`)."""
    if isinstance(x, np.ndarray):
        return "cpu"
    if array_api_compat.is_dask_array(x):
        return lazy.device_of(x)
    return array_api_compat.device(x)


def to_device(x: Any, device: Any) -> Any:
    """Move ``x`` to ``device`` (a no-op when it is already there); a Dask array
    has its chunks uploaded to ``device``'s library (:func:`bpnet.backend.lazy.to_chunks`)."""
    if device is None or device_of(x) == device:
        return x
    if array_api_compat.is_dask_array(x):
        return lazy.to_chunks(x, device)
    return array_api_compat.to_device(x, device)


def to_numpy(x: Any) -> np.ndarray:
    """Copy any supported backend array to a :class:`numpy.ndarray` on the host.

    Lazy arrays (Dask) are computed; device arrays (CuPy, CUDA tensors,
    array-api-strict's non-default devices) are copied to the host; tensors
    that require grad are detached first.

    Parameters
    ----------
    x : array
        An array of NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict or any
        other library that exports DLPack, or host data :func:`numpy.asarray`
        accepts (lists, scalars, pandas objects).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``; it may share memory with ``x`` where
        ``x`` is on the host already (NumPy, CPU tensors, DLPack from the host).

    Raises
    ------
    TypeError
        For an array of an unknown library that DLPack cannot bring to the host.
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_dask_array(x):
        # the chunks may be CuPy (or any) arrays: convert whatever the compute gives
        return to_numpy(x.compute())
    if array_api_compat.is_array_api_obj(x) and type(x).__module__.startswith("array_api_strict"):
        import array_api_strict

        x = x.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.asarray(x)
    if (array_api_compat.is_array_api_obj(x) and not array_api_compat.is_jax_array(x)
            and not isinstance(x, np.generic)):
        return _from_dlpack(x)
    return np.asarray(x)  # host data, and JAX (whose __array__ copies on purpose)


def _from_dlpack(x: Any) -> np.ndarray:
    """A host copy (or view, for host data) of an array of another library,
    through DLPack: never ``np.asarray``, which a device array refuses or
    which would hide a copy."""
    try:
        # DLPack 1.0: the producer copies to the host when its data is elsewhere
        return np.from_dlpack(x, device="cpu")
    except (TypeError, BufferError, ValueError, RuntimeError) as exc:
        first = exc
    try:
        return np.from_dlpack(x)  # producers older than DLPack 1.0: on the host already
    except Exception:
        raise TypeError(
            f"cannot copy a {type(x).__module__}.{type(x).__name__} array to the host: "
            f"bpnet moves arrays of libraries it does not know only through DLPack "
            f"(numpy.from_dlpack(x, device='cpu')), which failed: {first}"
        ) from None


def from_host(xp: ModuleType, host: np.ndarray, device: Any) -> Any:
    """Move a host array to ``xp`` on ``device``, as one small object.

    Used for parameters and other arrays that every task needs whole: on Dask
    the result is a single chunk.  Data sets go through :func:`to_backend`
    with ``rows=True`` instead.

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
    if lazy.is_lazy(xp):
        return lazy.from_host(host, device)
    return xp.asarray(host, device=device)


def _cupy_from_host(host: np.ndarray, device: Any) -> Any:
    import cupy

    # CuPy 14 copies host -> device asynchronously by default: the host buffer
    # (often a temporary from ascontiguousarray) may be freed or reused before the
    # copy lands.  A blocking copy costs nothing here: it happens once per fit.
    # a fresh Device: the network's own may be entered on another thread
    with cupy.cuda.Device(device.id) if device is not None else contextlib.nullcontext():
        try:
            return cupy.asarray(host, blocking=True)
        except TypeError:  # CuPy < 14: no `blocking`, and such copies block anyway
            return cupy.asarray(host)


def to_backend(x: Any, xp: ModuleType, device: Any, dtype: Any, dtype_str: str, *,
               rows: bool = False) -> Any:
    """``x`` (a host NumPy array, or an array of ``xp`` already checked) as an
    array of ``xp`` on ``device`` in ``dtype``.

    ``rows=True`` marks a data set (samples along axis 0): on Dask it is
    chunked by rows, its chunks made arrays of ``device``'s library, and
    persisted (see :func:`bpnet.backend.lazy.as_rows`).  ``dtype_str`` is
    ``dtype``'s name, for the host-side cast.
    """
    if rows and lazy.is_lazy(xp):
        return lazy.as_rows(xp, x, dtype, device)
    if isinstance(x, np.ndarray) and xp is not np:
        return from_host(xp, np.ascontiguousarray(x, dtype=dtype_str), device)
    if x.dtype != dtype:
        x = xp.astype(x, dtype)
    return to_device(x, device)


def detach(x: Any) -> Any:
    """A torch tensor without its autograd history; anything else unchanged.

    bpnet computes its own gradients: recording an autograd graph for inputs
    that require grad would only cost memory.
    """
    if array_api_compat.is_torch_array(x) and x.requires_grad:
        return x.detach()
    return x


def host_scalars(xp: ModuleType, values: Sequence[Any]) -> list[float]:
    """Several 0-d arrays as Python floats, in one transfer per dtype among them
    (a loss and an integer count: two), one compute on Dask."""
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(values):
        groups.setdefault(t.dtype, []).append(i)
    packed = [xp.stack([xp.reshape(values[i], ()) for i in idx]) for idx in groups.values()]
    out: list[float] = [0.0] * len(values)
    for idx, host in zip(groups.values(), lazy.materialize(xp, *packed), strict=True):
        for i, s in zip(idx, to_numpy(host), strict=True):
            out[i] = float(s)
    return out


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

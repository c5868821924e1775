"""A CPU stand-in for a GPU array: NumPy data that refuses to leave its "device".

:class:`Guarded` wraps a NumPy array and takes part in NumPy's dispatch
protocols (``__array_ufunc__``, ``__array_function__``), so ``np.mean(g)``,
``g + 1`` and ``g == h`` compute and give Guarded results, as CuPy does; it
has CuPy's array methods (``g.reshape``, ``g.astype``, ``g.sum``...) and item
assignment, which is what lets Dask use it as a chunk type.  Like CuPy, it
refuses what would silently copy device data to the host:

* ``np.asarray(g)`` (``__array__``), and anything built on it;
* mixing with bare NumPy arrays in an operation (``g + np.ones(3)``), an
  assignment (``g[0] = np.ones(3)``) or an index (``g[np.array([0])]``; CuPy
  uploads such an index, and Guarded lets Dask's own code do that, see
  :func:`_from_dask`);
* the host-only methods ``tolist`` and ``tobytes``, and the buffer protocol.

:func:`register_with_dask` tells Dask what it is told about CuPy's arrays
(its per-chunk-type dispatch tables), so that Dask treats Guarded chunks as it
treats CuPy's.

A 0-d Guarded converts explicitly (``float(g)``); :meth:`Guarded.get` copies to
the host on purpose, as ``cupy.ndarray.get`` does; and DLPack exports it the
way it exports a CUDA array: ``np.from_dlpack(g)`` is refused (the data is not
on the host), ``np.from_dlpack(g, device="cpu")`` copies.  Its Array API
namespace (``g.__array_namespace__()``, which ``array_api_compat.array_namespace``
returns) runs array-api-compat's NumPy functions on the wrapped data, refusing
NumPy arrays except in ``asarray`` (an explicit upload).

:data:`LOG` records, while a test sets it to a list, every conversion to the
host (``"get"``, ``"dlpack"``, ``"scalar"``), so a test can count them.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat.numpy as cnp
import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__all__ = ["DEVICE", "LOG", "Guarded", "HostTransferError", "Namespace", "namespace",
           "register_with_dask"]

#: The one device Guarded arrays live on.
DEVICE = "guarded:0"

#: DLPack's device type for "a device of an extension": not the host.
_DL_EXT_DEV = 12
_DL_CPU = (1, 0)

#: Set to a list to record every explicit move to the host (see the module docstring).
LOG: list[str] | None = None


class HostTransferError(TypeError):
    """An implicit move of guarded data to the host, or a mix with host arrays."""


def _log(what: str) -> None:
    if LOG is not None:
        LOG.append(what)


def _refuse_host(values: Any) -> None:
    for v in values:
        if isinstance(v, np.ndarray):
            raise HostTransferError(
                "a Guarded array does not mix with a bare NumPy array (as CuPy refuses "
                "host arrays); move it with namespace.asarray first")
        if isinstance(v, (list, tuple)):
            _refuse_host(v)
        elif isinstance(v, dict):
            _refuse_host(tuple(v.values()))


def _from_dask(frame: Any) -> bool:
    """Whether Dask's own code is indexing.  CuPy uploads a NumPy index array
    (``a[np.array([0, 2])]`` works there), which Dask relies on: its ``argmax``
    combines chunks with ``np.ogrid`` indices.  Guarded allows Dask that much,
    and refuses NumPy indices from anyone else, bpnet above all: an index
    uploaded on every step is a hidden transfer."""
    return frame.f_globals.get("__name__", "").startswith("dask.")


def _unwrap(v: Any) -> Any:
    if isinstance(v, Guarded):
        return v._data
    if isinstance(v, (list, tuple)):
        return type(v)(_unwrap(t) for t in v)
    if isinstance(v, dict):
        return {k: _unwrap(t) for k, t in v.items()}
    return v


def _wrap(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return Guarded(v)
    if isinstance(v, np.generic):  # a NumPy scalar result stays on the device
        return Guarded(np.asarray(v))
    if isinstance(v, tuple):
        return type(v)(_wrap(t) for t in v) if not hasattr(v, "_fields") else type(v)(
            *(_wrap(t) for t in v))
    if isinstance(v, list):
        return [_wrap(t) for t in v]
    return v


#: ``cupy.ndarray`` methods that compute on the device (Dask calls several on
#: its chunks and metas: ``reshape``, ``astype``, ``sum``, ``squeeze``...).
_METHODS = frozenset({
    "all", "any", "argmax", "argmin", "astype", "clip", "copy", "cumprod", "cumsum",
    "diagonal", "dot", "fill", "flatten", "max", "mean", "min", "nonzero", "prod", "ravel",
    "repeat", "reshape", "round", "squeeze", "std", "sum", "swapaxes", "take", "transpose",
    "var", "view",
})
#: Attributes that describe the data without moving it.
_ATTRIBUTES = frozenset({"itemsize", "nbytes", "strides", "flags"})


class Guarded(NDArrayOperatorsMixin):
    """A NumPy array on a pretend device; see the module docstring."""

    __slots__ = ("_data",)

    def __init__(self, data: np.ndarray) -> None:
        if not isinstance(data, np.ndarray):
            raise TypeError(f"Guarded wraps a numpy.ndarray, got {type(data).__name__}")
        self._data = data

    # -- what an array tells about itself -------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    device = property(lambda self: DEVICE)
    T = property(lambda self: Guarded(self._data.T))
    mT = property(lambda self: Guarded(np.swapaxes(self._data, -1, -2)))

    def __repr__(self) -> str:
        return f"Guarded(shape={self.shape}, dtype={self.dtype})"

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name in _ATTRIBUTES:
            return getattr(self._data, name)
        if name not in _METHODS:
            raise AttributeError(f"'Guarded' object has no attribute {name!r}")
        method = getattr(self._data, name)

        def on_device(*args: Any, **kwargs: Any) -> Any:
            _refuse_host(args)
            _refuse_host(tuple(kwargs.values()))
            return _wrap(method(*_unwrap(args), **_unwrap(kwargs)))

        return on_device

    # -- the refusals -------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise HostTransferError(
            "implicit conversion of a Guarded array to a NumPy array (np.asarray) is "
            "refused, as CuPy refuses it; call .get() to copy it to the host on purpose")

    def tolist(self) -> Any:
        raise HostTransferError("Guarded.tolist would copy the data to the host; use .get()")

    def tobytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise HostTransferError("Guarded.tobytes would copy the data to the host; use .get()")

    def get(self) -> np.ndarray:
        """An explicit host copy (``cupy.ndarray.get``)."""
        _log("get")
        return self._data.copy()

    def to_device(self, device: Any, /, *, stream: Any = None) -> Guarded:
        if device != DEVICE:
            raise HostTransferError(f"Guarded arrays live on {DEVICE!r} only, not {device!r}")
        return self

    # -- DLPack: exported as a device array is ------------------------------------------
    def __dlpack_device__(self) -> tuple[int, int]:
        return (_DL_EXT_DEV, 0)

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: bool | None = None) -> Any:
        """A host copy when the consumer asks for one (``dl_device`` the CPU), as
        CuPy exports to the host; refused otherwise: the data is not there."""
        if dl_device is None or tuple(dl_device) != _DL_CPU:
            raise BufferError(
                "a Guarded array is not on the host; ask for a copy there: "
                "np.from_dlpack(x, device='cpu')")
        if copy is False:
            raise BufferError("a Guarded array reaches the host only as a copy (copy=False)")
        _log("dlpack")
        return self._data.copy().__dlpack__(max_version=max_version)

    # -- explicit scalar conversion of 0-d arrays (a sync, as on a GPU) ------------------
    def _scalar(self) -> Any:
        if self._data.ndim != 0:
            raise TypeError("only 0-d Guarded arrays convert to Python scalars")
        _log("scalar")
        return self._data.item()

    def item(self) -> Any:
        return self._scalar()

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def __bool__(self) -> bool:
        return bool(self._scalar())

    def __index__(self) -> int:
        return int(self._scalar())

    # -- indexing -----------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Guarded:
        if not _from_dask(sys._getframe(1)):
            _refuse_host(key if isinstance(key, tuple) else (key,))
        return Guarded(np.asarray(self._data[_unwrap(key)]))

    def __setitem__(self, key: Any, value: Any) -> None:
        _refuse_host(key if isinstance(key, tuple) else (key,))
        _refuse_host((value,))
        self._data[_unwrap(key)] = _unwrap(value)

    # -- NumPy's dispatch protocols ----------------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _refuse_host(inputs)
        _refuse_host(kwargs.get("out", ()))
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        return _wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _refuse_host(args)
        _refuse_host(tuple(kwargs.values()))
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    def __array_namespace__(self, *, api_version: str | None = None) -> Namespace:
        return namespace


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Guarded:
    """An explicit upload: host data (NumPy, lists, scalars) becomes Guarded."""
    if device not in (None, DEVICE):
        raise HostTransferError(f"Guarded arrays live on {DEVICE!r} only, not {device!r}")
    if isinstance(obj, Guarded):
        data = obj._data if dtype is None else obj._data.astype(dtype)
        return Guarded(data.copy() if copy else data)
    if isinstance(obj, (list, tuple)):
        _refuse_host(obj)  # a list of Guarded arrays would go through the host
        if any(isinstance(t, Guarded) for t in obj):
            raise HostTransferError("asarray of a list of Guarded arrays; use stack")
    return Guarded(np.array(obj, dtype=dtype, copy=True))


def _lift(name: str) -> Any:
    f = getattr(cnp, name)

    def lifted(*args: Any, **kwargs: Any) -> Any:
        _refuse_host(args)
        _refuse_host(tuple(kwargs.values()))
        device = kwargs.pop("device", None)  # one device: creation functions take it
        if device not in (None, DEVICE):
            raise HostTransferError(f"Guarded arrays live on {DEVICE!r} only, not {device!r}")
        return _wrap(f(*_unwrap(args), **_unwrap(kwargs)))

    lifted.__name__ = name
    return lifted


_NAMES = [n for n in dir(cnp) if not n.startswith("_") and callable(getattr(cnp, n))
          and not isinstance(getattr(cnp, n), type)]


class Namespace:
    """The Array API namespace of Guarded arrays (an object, hashable, as
    array-api-compat needs: it collects namespaces in a set)."""

    __name__ = "tests.guarded"
    __array_api_version__ = cnp.__array_api_version__

    def __repr__(self) -> str:
        return "<namespace of tests.guarded.Guarded>"

    def __reduce__(self) -> str:
        return "namespace"  # pickled by reference: the module's one instance


namespace = Namespace()
for _name in _NAMES:
    setattr(namespace, _name, _lift(_name))
namespace.asarray = _asarray
for _dtype in ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64"):
    setattr(namespace, _dtype, getattr(cnp, _dtype))
namespace.isdtype = cnp.isdtype
for _const in ("e", "inf", "nan", "pi", "newaxis"):
    setattr(namespace, _const, getattr(cnp, _const))


def register_with_dask() -> None:
    """Register Guarded in Dask's per-chunk-type dispatch tables exactly as Dask
    registers ``cupy.ndarray`` (``dask/array/backends.py::register_cupy``), so
    that Dask computes on Guarded chunks as it does on CuPy's: counts as arrays
    of the chunk type (not NumPy), concatenation, take, tensordot, empty."""
    from dask.array import backends
    from dask.array.dispatch import (
        concatenate_lookup,
        empty_lookup,
        nannumel_lookup,
        numel_lookup,
        take_lookup,
        tensordot_lookup,
        to_numpy_dispatch,
    )

    concatenate_lookup.register(Guarded, namespace.concat)
    take_lookup.register(Guarded, np.take)  # dispatched to Guarded by __array_function__
    tensordot_lookup.register(Guarded, namespace.tensordot)
    numel_lookup.register(Guarded, backends._numel_arraylike)
    nannumel_lookup.register(Guarded, backends._nannumel)
    empty_lookup.register(Guarded, namespace.empty)
    to_numpy_dispatch.register(Guarded, lambda data, **kwargs: data.get())

"""A CPU stand-in for a GPU array: NumPy data that refuses to leave its "device".

:class:`Guarded` wraps a NumPy array and takes part in NumPy's dispatch
protocols (``__array_ufunc__``, ``__array_function__``), so ``np.mean(g)``,
``g + 1`` and ``g == h`` compute and give Guarded results, as CuPy does.  Like
CuPy, it refuses what would silently copy device data to the host:

* ``np.asarray(g)`` (``__array__``), and anything built on it;
* mixing with bare NumPy arrays in an operation (``g + np.ones(3)``);
* indexing with a NumPy array.

A 0-d Guarded converts explicitly (``float(g)``), and :meth:`Guarded.get`
copies to the host on purpose, as ``cupy.ndarray.get`` does.  Its Array API
namespace (``g.__array_namespace__()``, which ``array_api_compat.array_namespace``
returns) runs array-api-compat's NumPy functions on the wrapped data, refusing
NumPy arrays except in ``asarray`` (an explicit upload).
"""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as cnp
import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__all__ = ["DEVICE", "Guarded", "HostTransferError", "Namespace", "namespace"]

#: The one device Guarded arrays live on.
DEVICE = "guarded:0"


class HostTransferError(TypeError):
    """An implicit move of guarded data to the host, or a mix with host arrays."""


def _refuse_host(values: Any) -> None:
    for v in values:
        if isinstance(v, np.ndarray):
            raise HostTransferError(
                "a Guarded array does not mix with a bare NumPy array (as CuPy refuses "
                "host arrays); move it with namespace.asarray first")
        if isinstance(v, (list, tuple)):
            _refuse_host(v)


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

    # -- the refusals -------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise HostTransferError(
            "implicit conversion of a Guarded array to a NumPy array (np.asarray) is "
            "refused, as CuPy refuses it; call .get() to copy it to the host on purpose")

    def get(self) -> np.ndarray:
        """An explicit host copy (``cupy.ndarray.get``)."""
        return self._data.copy()

    def to_device(self, device: Any, /, *, stream: Any = None) -> Guarded:
        if device != DEVICE:
            raise HostTransferError(f"Guarded arrays live on {DEVICE!r} only, not {device!r}")
        return self

    # -- explicit scalar conversion of 0-d arrays (a sync, as on a GPU) ------------------
    def _scalar(self) -> Any:
        if self._data.ndim != 0:
            raise TypeError("only 0-d Guarded arrays convert to Python scalars")
        return self._data.item()

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
        _refuse_host(key if isinstance(key, tuple) else (key,))
        return Guarded(np.asarray(self._data[_unwrap(key)]))

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
    return Guarded(np.array(obj, dtype=dtype, copy=True))


def _lift(name: str) -> Any:
    f = getattr(cnp, name)

    def lifted(*args: Any, **kwargs: Any) -> Any:
        _refuse_host(args)
        _refuse_host(tuple(kwargs.values()))
        kwargs.pop("device", None)  # one device: creation functions take it and drop it
        return _wrap(f(*_unwrap(args), **_unwrap(kwargs)))

    lifted.__name__ = name
    return lifted


_NAMES = [n for n in dir(cnp) if not n.startswith("_") and callable(getattr(cnp, n))
          and not isinstance(getattr(cnp, n), type)]


class Namespace:
    """The Array API namespace of Guarded arrays (an object, hashable, as
    array-api-compat needs: it collects namespaces in a set)."""

    __name__ = "tests.guarded"


namespace = Namespace()
for _name in _NAMES:
    setattr(namespace, _name, _lift(_name))
namespace.asarray = _asarray
for _dtype in ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64"):
    setattr(namespace, _dtype, getattr(cnp, _dtype))
namespace.isdtype = cnp.isdtype
for _const in ("e", "inf", "nan", "pi", "newaxis"):
    setattr(namespace, _const, getattr(cnp, _const))

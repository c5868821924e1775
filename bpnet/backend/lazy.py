"""Dask: data sets as row chunks, persisted; one compute per step; any chunk type.

A Dask network's gradient is the sum over row chunks of ``a.T @ delta``, so
data sets are laid out in whole rows per chunk and persisted (computed once,
kept in the workers' memory) so that each step's graph refers to computed
chunks instead of carrying the data.  A step's loss and every gradient (or
updated parameter) are computed in one :func:`dask.compute`, which lets the
scheduler share the forward pass between them and keeps each step's graph from
growing over all the steps before it.

Every function here passes non-Dask arrays through unchanged, so callers need
not ask which backend they hold.

The chunks need not be NumPy arrays: Dask computes on any array library that
takes part in NumPy's dispatch protocols (``__array_function__``), CuPy's
among them (one worker per GPU under ``dask_cuda.LocalCUDACluster``).  bpnet
calls the library of a Dask array's chunks its *device* (:class:`Chunks`;
``"cpu"`` for NumPy chunks, as array-api-compat says), and the Dask namespace
bpnet computes with (:func:`namespace`) is array-api-compat's with creation
functions that honour it: ``xp.ones(shape, device=device_of(x))`` makes chunks
of ``x``'s library, so weights, optimizer state, index vectors and every other
array bpnet creates follow the data's chunk type.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "Chunks",
    "as_rows",
    "chunk_namespace",
    "device_of",
    "from_host",
    "is_lazy",
    "known_rows",
    "match_rows",
    "materialize",
    "materialize_step",
    "namespace",
    "persist",
    "rewrap",
    "to_chunks",
]


@dataclass(frozen=True)
class Chunks:
    """The device of a Dask array whose chunks are not NumPy arrays: the Array API
    namespace of its chunks (``array_api_compat.cupy`` for CuPy chunks).

    Attributes
    ----------
    xp : namespace
        What ``array_api_compat.array_namespace`` gives for a chunk.
    """

    xp: Any

    def __repr__(self) -> str:
        return f"Chunks({getattr(self.xp, '__name__', self.xp)})"


def chunk_namespace(device: Any) -> Any:
    """The namespace of the chunks that ``device`` (None, ``"cpu"`` or a
    :class:`Chunks`) stands for: NumPy for None and ``"cpu"``."""
    return device.xp if isinstance(device, Chunks) else np


def device_of(x: Any) -> Any:
    """The device of a Dask array: ``"cpu"`` for NumPy chunks (array-api-compat's
    answer), else the :class:`Chunks` of its chunks' library, read off its meta."""
    meta = x._meta
    if isinstance(meta, np.ndarray):
        return "cpu"
    try:
        return Chunks(array_api_compat.array_namespace(meta))
    except TypeError:  # a chunk type outside the standard
        return array_api_compat.device(x)


def is_lazy(xp: ModuleType) -> bool:
    """Whether ``xp`` builds graphs that must be computed (Dask)."""
    return xp is _NAMESPACE.get("xp") or bool(array_api_compat.is_dask_namespace(xp))


#: bpnet's Dask namespace, made on first use (importing Dask is slow).
_NAMESPACE: dict[str, ModuleType] = {}

#: Creation functions that take a shape and build each chunk from the meta.
_FROM_META = ("empty", "ones", "zeros", "full")
#: Creation functions whose result follows an array's chunks.
_LIKE = ("empty_like", "ones_like", "zeros_like", "full_like")


def namespace() -> ModuleType:
    """The Dask namespace bpnet computes with: array-api-compat's, whose creation
    functions (``asarray``, ``arange``, ``zeros``, ``ones_like``...) make chunks of
    the library a :class:`Chunks` given as ``device=`` stands for (NumPy chunks
    for None and ``"cpu"``, exactly array-api-compat's functions then)."""
    if "xp" not in _NAMESPACE:
        import array_api_compat.dask.array as compat

        xp = ModuleType("bpnet.backend.lazy.dask", "array-api-compat's Dask namespace, with "
                        "creation functions that honour a chunk type given as device=")
        for name, value in vars(compat).items():
            if not name.startswith("__") or name in ("__array_api_version__",
                                                      "__array_namespace_info__"):
                setattr(xp, name, value)
        for name in (*_FROM_META, *_LIKE, "arange", "eye", "linspace"):
            setattr(xp, name, _creation(name, getattr(compat, name)))
        xp.asarray = functools.partial(_asarray, compat)  # type: ignore[attr-defined]
        _NAMESPACE["xp"] = xp
    return _NAMESPACE["xp"]


def _creation(name: str, f: Any) -> Any:
    def create(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        if not isinstance(device, Chunks):
            return f(*args, device=device, **kwargs)
        made = f(*args, **kwargs)  # NumPy chunks: a graph, nothing computed
        if name in _LIKE or name not in (*_FROM_META, "arange"):
            return to_chunks(made, device)
        import dask.array as da

        meta = _meta(device.xp, made.ndim, made.dtype)
        rest = {k: v for k, v in kwargs.items() if k != "dtype"}
        if name == "arange":
            return da.arange(*args, **rest, dtype=made.dtype, like=meta)
        return getattr(da, name)(*args, **rest, dtype=made.dtype, meta=meta)

    create.__name__ = name
    create.__doc__ = f.__doc__
    return create


def _asarray(compat: ModuleType, obj: Any, /, *, dtype: Any = None, device: Any = None,
             copy: bool | None = None) -> Any:
    """array-api-compat's ``asarray``; with a :class:`Chunks` device, host data
    is uploaded into one chunk of that library, and Dask arrays of NumPy chunks
    have their chunks uploaded."""
    if not isinstance(device, Chunks):
        return compat.asarray(obj, dtype=dtype, device=device, copy=copy)
    if array_api_compat.is_dask_array(obj):
        return to_chunks(compat.asarray(obj, dtype=dtype, copy=copy), device)
    import dask.array as da

    cxp = device.xp
    chunk = cxp.asarray(obj, dtype=dtype, copy=copy)  # the upload (a no-op for its own)
    return da.from_array(chunk, chunks=-1, name=False)


def _meta(cxp: Any, ndim: int, dtype: Any) -> Any:
    """An empty array of ``cxp`` (Dask's meta: the type and dtype of the chunks)."""
    return cxp.empty((0,) * ndim, dtype=dtype)


def to_chunks(x: Any, device: Any) -> Any:
    """The Dask array ``x`` with chunks of the library ``device`` stands for.

    NumPy chunks are uploaded chunk by chunk on the workers (NumPy data mixes
    with any library, as host data does everywhere in bpnet); chunks of
    another library are refused rather than copied through the host.

    Raises
    ------
    ValueError
        For chunks of a library other than NumPy and ``device``'s.
    """
    have = device_of(x)
    if have == device or (device is None and have == "cpu"):
        return x
    if have != "cpu":
        raise ValueError(
            f"a Dask array with chunks of {have!r} cannot become one with chunks of "
            f"{device!r} without a trip through the host; create the network on the "
            "data's chunk type (device=bpnet.backend.device_of(X)) or convert the chunks "
            "yourself")
    cxp = chunk_namespace(device)
    return x.map_blocks(cxp.asarray, dtype=x.dtype, meta=_meta(cxp, x.ndim, x.dtype))


def from_host(host: np.ndarray, device: Any) -> Any:
    """A host array as a single-chunk Dask array on ``device`` (chunks of its
    library: the upload happens here, once)."""
    import dask.array as da

    if not isinstance(device, Chunks):
        return da.from_array(host, chunks=-1)
    # name=False: hashing a device chunk to name it would read it back
    return da.from_array(device.xp.asarray(host), chunks=-1, name=False)


def as_rows(xp: ModuleType, x: Any, dtype: Any, device: Any = None) -> Any:
    """A data set (N, ...) as a Dask array of whole rows on ``device``, persisted.

    A host array is cut into chunks of about ``dask.config["array.chunk-size"]``
    bytes (128 MiB unless configured); a Dask array keeps its row chunks and has
    its column chunks merged.  Chunks become arrays of ``device``'s library
    (:func:`to_chunks`: each NumPy chunk is uploaded by the worker that holds
    it).  Persisting computes the chunks once (on the cluster's workers under
    ``dask.distributed``).

    Parameters
    ----------
    xp : namespace
        Dask's; any other namespace returns ``x`` unchanged.
    x : numpy.ndarray or dask array
    dtype : dtype of ``xp``
    device : None, "cpu" or Chunks

    Returns
    -------
    dask array
        Same shape, ``dtype``, chunked only along axis 0.

    Raises
    ------
    ValueError
        For a Dask array whose chunks are of another library than NumPy and
        ``device``'s.
    """
    if not is_lazy(xp):
        return x
    import dask.array as da

    whole = (-1,) * (x.ndim - 1)
    if isinstance(x, np.ndarray):
        x = da.from_array(np.ascontiguousarray(x, dtype=np.dtype(dtype)), chunks=("auto", *whole))
    else:
        x = x.rechunk((x.chunks[0], *whole))
        if x.dtype != dtype:
            x = x.astype(dtype)
    return to_chunks(x, device).persist()


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
    if not is_lazy(xp) or y.chunks[0] == like.chunks[0]:
        return y
    return y.rechunk((like.chunks[0], *y.chunks[1:])).persist()


def persist(xp: ModuleType, tree: Any) -> Any:
    """``tree`` (any nesting of arrays) with its Dask arrays persisted, so that
    later graphs start from computed values instead of growing over a whole run."""
    if not is_lazy(xp):
        return tree
    import dask

    return dask.persist(tree)[0]


def materialize(xp: ModuleType, *arrays: Any) -> tuple[Any, ...]:
    """Compute lazy arrays in one go; eager arrays pass through unchanged.

    Dask results come back as concrete chunk arrays (NumPy, or CuPy for CuPy
    chunks); :func:`rewrap` turns them back into Dask arrays.
    """
    if is_lazy(xp):
        import dask

        return tuple(dask.compute(*arrays))
    return arrays


def rewrap(xp: ModuleType, computed: Any, like: Any) -> Any:
    """A computed result as an array of ``xp`` again: on Dask, a Dask array over
    the computed values with the chunks of ``like`` (the lazy array it came
    from); elsewhere ``computed`` itself."""
    if not is_lazy(xp):
        return computed
    import dask.array as da

    if isinstance(computed, np.generic):  # 0-d results compute to NumPy scalars
        computed = np.asarray(computed)
    # name=False: a random key instead of hashing the data, which nobody reuses
    return da.from_array(computed, chunks=like.chunks, name=False)


def materialize_step(
    xp: ModuleType, value: Any, params: list[tuple[Any, Any]]
) -> tuple[Any, list[tuple[Any, Any]]]:
    """End a step: a loss and a parameter tree (new weights, or gradients) in one
    compute.

    Parameters
    ----------
    xp : namespace
    value : 0-d array or None
        The step's loss (None when there is only a tree to compute).
    params : list of (W, b)
        Lazy on Dask.

    Returns
    -------
    value : 0-d array or None
        Concrete (a NumPy scalar array on Dask).
    params : list of (W, b)
        Arrays of ``xp``; on Dask, single-chunk arrays over the computed values.
    """
    if not is_lazy(xp):
        return value, params
    lazy = [t for pair in params for t in pair]
    head = [] if value is None else [value]
    done = materialize(xp, *head, *lazy)
    value = done[0] if head else None
    flat = [rewrap(xp, t, like) for t, like in zip(done[len(head):], lazy, strict=True)]
    return value, [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

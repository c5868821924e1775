"""Dask: data sets as row chunks, persisted; one compute per step.

A Dask network's gradient is the sum over row chunks of ``a.T @ delta``, so
data sets are laid out in whole rows per chunk and persisted (computed once,
kept in the workers' memory) so that each step's graph refers to computed
chunks instead of carrying the data.  A step's loss and every gradient (or
updated parameter) are computed in one :func:`dask.compute`, which lets the
scheduler share the forward pass between them and keeps each step's graph from
growing over all the steps before it.

Every function here passes non-Dask arrays through unchanged, so callers need
not ask which backend they hold.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "as_rows",
    "is_lazy",
    "known_rows",
    "match_rows",
    "materialize",
    "materialize_step",
    "persist",
    "rewrap",
]


def is_lazy(xp: ModuleType) -> bool:
    """Whether ``xp`` builds graphs that must be computed (Dask)."""
    return bool(array_api_compat.is_dask_namespace(xp))


def as_rows(xp: ModuleType, x: Any, dtype: Any) -> Any:
    """A data set (N, ...) as a Dask array of whole rows, persisted.

    A host array is cut into chunks of about ``dask.config["array.chunk-size"]``
    bytes (128 MiB unless configured); a Dask array keeps its row chunks and has
    its column chunks merged.  Persisting computes the chunks once (on the
    cluster's workers under ``dask.distributed``).

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

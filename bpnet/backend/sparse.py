"""scipy.sparse inputs on the NumPy backend: the one place bpnet names scipy.sparse.

The Array API standard has no sparse arrays, so a sparse ``X`` never reaches
the portable kernels' dense code as such.  It reaches them only as the input
``a_0`` of the first layer, where the two products that touch it are written
with ``@`` (``a_0 @ W_1`` forward, ``a_0.T @ delta_1`` for BP4), which
scipy.sparse implements as sparse-times-dense products returning dense NumPy
arrays; every later layer is dense.  This module gives the rest the few things
the standard cannot: whether an array is sparse, its CSR form in a dtype,
and a gather of its rows (a mini-batch; slices ``x[lo:hi, ...]`` work as
they are), never the whole matrix densified.

Only the NumPy backend takes sparse inputs (scikit-learn's estimators are
NumPy-only too): CuPy, PyTorch, JAX, Dask and array-api-strict refuse them
with an error that says so (:func:`refuse`); densifying is left to the caller
(``X.toarray()``), who knows whether it fits in memory.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "as_csr", "is_sparse", "refuse", "stored", "take_rows"]

#: The backends that accept scipy.sparse inputs.
BACKENDS = ("numpy",)


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array (``csr_matrix``,
    ``csr_array``, ...); never imports scipy (an array of it implies it is
    loaded)."""
    if isinstance(x, np.ndarray):  # the common case, without a lookup
        return False
    mod = sys.modules.get("scipy.sparse")
    return mod is not None and mod.issparse(x)


def refuse(name: str, backend: str) -> TypeError:
    """The error for a sparse input on a backend that takes none."""
    return TypeError(
        f"{name} is a scipy.sparse matrix, which only the {', '.join(BACKENDS)} backend "
        f"accepts; this network runs on {backend}. Pass {name}.toarray() (if the dense "
        "array fits in memory) or use a NumPy network"
    )


def as_csr(x: Any, dtype: Any) -> Any:
    """``x`` in CSR format with ``dtype`` values and sorted, deduplicated indices
    (a copy only when the format or dtype changes); CSC converts sparse to
    sparse, nothing is densified.  CSR rows make mini-batches cheap to slice."""
    csr = x.tocsr()
    if csr.dtype != dtype:
        csr = csr.astype(dtype)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


def stored(x: Any) -> np.ndarray:
    """The stored values of a sparse ``x`` (for finiteness checks)."""
    return np.asarray(x.data)


def take_rows(x: Any, index: Any) -> Any:
    """The rows ``index`` (non-negative integers, a NumPy array) of a CSR ``x``,
    still sparse: one mini-batch gathered."""
    return x[np.asarray(index)]

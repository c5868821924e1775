"""Checks and conversion at the boundary: every public entry point's inputs.

Each function either returns the input converted to what the kernels expect
(an array of the network's backend, device and dtype, through
:mod:`bpnet.backend`), or raises a ``ValueError``/``TypeError`` that says what
was wrong and what was expected.  Nothing here changes any state, so a failed
call leaves the user's model exactly as it was.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ._typing import Array
from .backend import (
    array_library,
    backend_name,
    detach,
    device_of,
    dtype_name,
    lazy,
    sparse,
    to_device,
    to_numpy,
)
from .backend.select import GENERIC, namespace_of
from .backend.transfer import to_backend


def check_layer_sizes(layer_sizes: Any) -> tuple[int, ...]:
    """``layer_sizes`` as a tuple of at least two positive ints (input ... output)."""
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        if not (isinstance(layer_sizes, np.ndarray) and layer_sizes.ndim == 1):
            raise TypeError(
                "layer_sizes must be a sequence of ints such as [64, 128, 10] "
                f"(input, hidden..., output), got {type(layer_sizes).__name__}"
            )
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            "layer_sizes needs at least two entries (input and output sizes), "
            f"got {len(sizes)}: {sizes!r}"
        )
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"layer_sizes[{i}] must be an int, got {s!r}")
        if s < 1:
            raise ValueError(f"layer_sizes[{i}] must be a positive int, got {s}")
    return tuple(int(s) for s in sizes)


def check_positive(name: str, value: Any, *, integer: bool = False,
                   allow_none: bool = False) -> Any:  # int, float or None, as asked
    """``value`` as a positive number (an int when ``integer``)."""
    if value is None and allow_none:
        return None
    kind = "an int" if integer else "a number"
    ok_type = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise TypeError(f"{name} must be {kind} > 0, got {value!r}")
    if not np.isfinite(value) or value <= 0:  # type: ignore[call-overload]
        raise ValueError(f"{name} must be {kind} > 0, got {value!r}")
    return int(value) if integer else float(value)  # type: ignore[call-overload]


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    if not np.isfinite(value) or value < 0:  # type: ignore[call-overload]
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    return int(seed)


def check_tf32(tf32: Any) -> bool | None:
    if tf32 is None or isinstance(tf32, (bool, np.bool_)):
        return None if tf32 is None else bool(tf32)
    raise TypeError(f"tf32 must be True, False or None (leave the library's setting "
                    f"alone), got {tf32!r}")


def check_same_source(**arrays: Any) -> None:
    """Refuse arrays of two different libraries, or of one library on two devices.

    NumPy arrays (and lists) are host data and mix with anything.
    """
    seen: dict[str, tuple[str, Any]] = {}
    for name, x in arrays.items():
        backend = array_library(x)
        if backend in (None, "numpy"):
            continue
        dev = device_of(x)
        for other, (b, d) in seen.items():
            if b != backend:
                raise TypeError(
                    f"{other} is a {b} array but {name} is a {backend} array; pass arrays "
                    "of one library in one call (NumPy arrays are accepted with any)"
                )
            if d != dev:
                raise ValueError(
                    f"{other} is on device {d!r} but {name} is on device {dev!r}; "
                    "move them to one device first"
                )
        seen[name] = (backend, dev)


def _ragged(x: Any, name: str) -> str | None:
    """What makes a nested sequence ragged, or None when that is not the problem."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence) or not x:
        return None
    lengths = [len(row) if isinstance(row, Sequence) and not isinstance(row, (str, bytes))
               else None for row in x]
    for i, n in enumerate(lengths):
        if n != lengths[0]:
            def show(m: int | None) -> str:
                return "a single value" if m is None else f"{m} value{'s' * (m != 1)}"
            return (f"{name} is a ragged nested sequence: row 0 holds {show(lengths[0])} but row "
                    f"{i} holds {show(n)}; every row must have the same number of values")
    return None


def _nullable_as_float(x: Any) -> np.ndarray | None:
    """Tables of pandas' nullable dtypes (``Float64``, ``Int64``, ``boolean``),
    which NumPy sees as objects, as float64 with missing values as NaN (what
    scikit-learn's ``check_array`` does); None for anything else."""
    to_numpy = getattr(x, "to_numpy", None)
    dtypes = getattr(x, "dtypes", None)
    dtypes = list(dtypes) if hasattr(dtypes, "tolist") else [getattr(x, "dtype", None)]  # type: ignore[arg-type]
    if to_numpy is None or not all(getattr(d, "kind", "O") in ("b", "i", "u", "f") for d in dtypes):
        return None
    try:
        return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError):
        return None


def _numeric_host(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        ragged = _ragged(x, name)
        if ragged is not None:
            raise ValueError(ragged) from None
        raise TypeError(f"{name} must be a numeric array, could not convert it: {exc}") from None
    if arr.dtype == object:
        converted = _nullable_as_float(x)
        arr = arr if converted is None else converted
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    return arr


def _source(x: Any, name: str, backend: str, xp: ModuleType,
            device: Any) -> tuple[Any, ModuleType]:
    """(array, namespace to check it with): backend arrays are moved to ``device``
    (where the checks then run: a CuPy kernel runs on the current device, the
    network's, and may not read another GPU's memory), everything else becomes
    a host NumPy array.

    A Dask array is persisted and its chunk sizes made known here, so that the
    checks and the training step that follow read computed chunks instead of
    each recomputing the user's graph.
    """
    kind = array_library(x)
    if kind is not None and kind != "numpy":
        if kind != backend or (kind == GENERIC and namespace_of(x) is not xp):
            what = kind if kind != GENERIC else _library(namespace_of(x))
            runs = _library(xp)
            raise TypeError(
                f"{name} is a {what} array but this network runs on {runs}; pass a "
                f"NumPy array or a {runs} array"
            )
        if not xp.isdtype(x.dtype, ("real floating", "integral", "bool")):
            raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
        return lazy.known_rows(to_device(detach(x), device)), xp
    return _numeric_host(x, name), np


def _library(xp: ModuleType) -> str:
    """A namespace's name for messages (``generic`` ones have no bpnet name)."""
    name = backend_name(xp)
    return name if name != GENERIC else f"{getattr(xp, '__name__', repr(xp))} (generic)"


def _all(ns: ModuleType, cond: Array) -> bool:
    # NumPy's own method: half the cost of np.all, which matters on small batches.
    return bool(cond.all()) if ns is np else bool(to_numpy(ns.all(cond)))


def _floating(ns: ModuleType, dtype: Any) -> bool:
    # dtype.kind costs a tenth of np.isdtype (~1 us), paid on every call.
    return dtype.kind == "f" if ns is np else ns.isdtype(dtype, "real floating")


_ITEMSIZE = {"float32": 4, "float64": 8}


def _largest(ns: ModuleType, x: Array) -> float:
    return float(to_numpy(ns.max(ns.abs(x))))


def _cast_finite(x: Array, ns: ModuleType, dtype: Any, dtype_str: str, name: str,
                 what: str) -> Array:
    """``x`` (checked with ``ns``) cast to ``dtype``, refused when the cast result
    holds NaN or infinity: the source did (``what`` names its entries), or a
    finite value overflowed the dtype (1e39 in float32).

    Integers and booleans cannot overflow float32 or float64: only floating
    sources are checked, once, after the cast (the order that catches both).
    """
    floating = _floating(ns, x.dtype)
    if ns is np:
        if floating and x.dtype.itemsize < _ITEMSIZE[dtype_str]:  # widening cannot overflow:
            if _all(np, np.isfinite(x)):                          # check the smaller array
                return np.asarray(x, dtype=dtype_str)
        else:
            cast = x
            if x.dtype.name != dtype_str:
                with np.errstate(over="ignore"):  # an overflow is reported below, as an error
                    cast = np.asarray(x, dtype=dtype_str)
            if not floating or _all(np, np.isfinite(cast)):
                return cast
    else:
        # Other libraries may cast lazily (Dask) or on other threads, where NumPy's
        # overflow warnings cannot be silenced: check the source against the
        # value that rounds to infinity, so the cast never overflows.
        narrower = floating and ns.finfo(x.dtype).bits > ns.finfo(dtype).bits
        if not floating or _all(ns, ns.abs(x) < _overflow_bound(dtype_str) if narrower
                                else ns.isfinite(x)):
            return x if x.dtype == dtype else ns.astype(x, dtype)
    if not _all(ns, ns.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values; all {what} must be finite")
    raise ValueError(
        f"{name} holds values too large for {dtype_str} (magnitudes up to "
        f"{_largest(ns, x):.3g}; {dtype_str} holds at most {np.finfo(dtype_str).max:.3g}): "
        f"scale the {what}, or use dtype='float64'"
    )


def _overflow_bound(dtype: str) -> float:
    """The smallest magnitude that rounds to infinity in ``dtype`` (2**128 - 2**103
    for float32): halfway above the largest finite value, whose odd mantissa
    rounds up."""
    info = np.finfo(dtype)
    return float(info.max) + 2.0 ** (info.maxexp - info.nmant - 2)


def overflow_message(where: str, dtype: str, **arrays: Any) -> str:
    """Why training on finite data of ``dtype`` overflowed although the
    weights did not: the data is too large (an mse loss squares the errors),
    not the learning rate too high.  ``arrays`` (``X=..., Y=...``) are named with their largest
    magnitudes."""
    sizes = []
    for name, t in arrays.items():
        try:
            big = _largest(np, _numeric_host(to_numpy(t), name))
            sizes.append(f"{name} up to {big:.3g} in magnitude")
        except (TypeError, ValueError):
            pass
    return (f"{where} failed: the loss overflows {dtype} on this data at the current weights "
            f"and at freshly initialised ones ({', '.join(sizes)}): the data is too large for "
            f"{dtype}, not the learning rate too high. Scale the data (e.g. "
            "bpnet.data.standardize) or use dtype='float64'; the network is left as it was.")


def _check_input_shape(shape: tuple[int, ...], n_features: int, name: str) -> None:
    """Refuse an input of any shape but (N >= 1, n_features), saying which."""
    if len(shape) != 2:
        hint = ""
        if len(shape) == 1 and n_features == 1:
            hint = f" (use {name}.reshape(-1, 1) for samples of a single feature)"
        elif len(shape) == 1 and shape[0] == n_features:
            hint = f" (use {name}.reshape(1, -1) for a single sample of {n_features} features)"
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features={n_features}), got shape {shape}{hint}"
        )
    if shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples; expected at least one row")
    if shape[1] != n_features:
        raise ValueError(
            f"{name} has {shape[1]} features but the network's input layer expects "
            f"{n_features}; X must have shape (n_samples, {n_features})"
        )


def as_input(
    X: Any, *, n_features: int, backend: str, xp: ModuleType, device: Any, dtype: Any,
    name: str = "X",
) -> Array:
    """Check ``X`` and return it as a (N, n_features) array of the network's
    backend, device and dtype.

    Raises
    ------
    TypeError
        Not numeric, or an array of another library.
    ValueError
        Not 2-D, empty, wrong number of features, or holding NaN/inf.
    """
    if sparse.is_sparse(X):
        return _sparse_input(X, n_features=n_features, backend=backend, xp=xp, dtype=dtype,
                             name=name)
    x, ns = _source(X, name, backend, xp, device)
    _check_input_shape(tuple(x.shape), n_features, name)
    dtype_str = dtype_name(xp, dtype)
    x = _cast_finite(x, ns, dtype, dtype_str, name, "inputs")
    return to_backend(x, xp, device, dtype, dtype_str, rows=True)


def _sparse_input(X: Any, *, n_features: int, backend: str, xp: ModuleType, dtype: Any,
                  name: str) -> Any:
    """A scipy.sparse ``X`` (NumPy backend only) as CSR of the network's dtype,
    checked like a dense one on its stored values alone: never densified."""
    if backend not in sparse.BACKENDS:
        raise sparse.refuse(name, backend)
    _check_input_shape(tuple(X.shape), n_features, name)
    values = sparse.stored(X)
    if not (np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.bool_)) \
            or np.issubdtype(values.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {values.dtype}")
    x = sparse.as_csr(X, dtype_name(xp, dtype))
    if not np.all(np.isfinite(x.data)):
        raise ValueError(f"{name} contains NaN or infinite values (or values too large for "
                         f"{dtype_name(xp, dtype)}); all inputs must be finite")
    return x


def as_sample_weight(sample_weight: Any, n_samples: int,
                     name: str = "sample_weight") -> np.ndarray | None:
    """Check per-sample weights and return them as host float64 (n_samples,), or
    None when there are none: ``None``, or every weight 1 (the plain mean, so
    the unweighted code runs, bit for bit).

    Raises
    ------
    TypeError
        Not numeric.
    ValueError
        Not 1-D of length ``n_samples``, not finite, negative, or all zero.
    """
    if sample_weight is None:
        return None
    if sparse.is_sparse(sample_weight):
        raise TypeError(f"{name} must be a dense 1-D array, got a scipy.sparse matrix")
    kind = array_library(sample_weight)
    host = to_numpy(detach(sample_weight)) if kind is not None and kind != "numpy" \
        else sample_weight
    w = _numeric_host(host, name)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must be 1-D with one weight per sample ({n_samples}), got "
                         f"shape {tuple(w.shape)}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or infinite values; weights must be finite")
    if np.any(w < 0):
        raise ValueError(f"{name} contains negative values; weights must be >= 0")
    if not np.any(w > 0):
        raise ValueError(f"{name} is all zero; at least one sample must have a positive "
                         "weight")
    return None if np.all(w == 1) else w


def _to_backend(
    x: Array, ns: ModuleType, xp: ModuleType, device: Any, dtype: Any, *, rows: bool = False
) -> Array:
    """``x`` (from :func:`_source`, checked with ``ns``) as an array of ``xp`` on
    ``device`` in ``dtype``; ``rows=True`` marks a data set (see
    :func:`bpnet.backend.transfer.to_backend`)."""
    return to_backend(x, xp, device, dtype, dtype_name(xp, dtype), rows=rows)


def as_targets(
    Y: Any, *, loss: Any, n_outputs: int, n_samples: int, backend: str, xp: ModuleType,
    device: Any, dtype: Any, name: str = "Y",
) -> Array:
    """Check ``Y`` against what ``loss`` expects and return it as (N, k) floats of
    the network's backend, device and dtype (one-hot for cross-entropy labels).

    Raises
    ------
    TypeError
        Not numeric, or an array of another library.
    ValueError
        Wrong length or shape, NaN/inf, or values the loss cannot take (labels
        outside [0, k), logistic targets not in {-1, +1}, BCE targets outside [0, 1]).
    """
    y, ns = _source(Y, name, backend, xp, device)
    k = n_outputs
    if y.ndim not in (1, 2) or y.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have one row per sample of X ({n_samples}), got shape "
            f"{tuple(y.shape)}"
        )
    floating = _floating(ns, y.dtype)
    kind = loss.targets
    if kind not in ("real", "nonnegative") and floating and not _all(ns, ns.isfinite(y)):
        # "real" and "nonnegative": checked after the cast
        raise ValueError(f"{name} contains NaN or infinite values; all targets must be finite")
    if kind == "labels" and y.ndim == 1:
        if floating and not _all(ns, y == ns.round(y)):
            raise ValueError(
                f"{name} must hold integer class labels in [0, {k}) for loss "
                f"'cross_entropy', got non-integer values"
            )
        if not _all(ns, (y >= 0) & (y < k)):
            raise ValueError(
                f"{name} holds class labels outside [0, {k}); the output layer has {k} "
                f"units, so labels must be integers from 0 to {k - 1}"
            )
        y_int = ns.astype(y, ns.int64 if ns is np else _int_dtype(ns))
        classes = ns.arange(k, dtype=y_int.dtype, device=device_of(y_int))
        y = ns.astype(ns.reshape(y_int, (-1, 1)) == classes, ns.float64 if ns is np else dtype)
    else:
        if y.ndim == 1:
            if k != 1:
                expected = (
                    f"(n_samples,) integer labels or (n_samples, {k})"
                    if kind == "labels" else f"(n_samples, {k})"
                )
                raise ValueError(
                    f"{name} has shape {tuple(y.shape)} but the network has {k} outputs; "
                    f"expected {expected}"
                )
            y = ns.reshape(y, (-1, 1))
        if y.shape[1] != k:
            raise ValueError(
                f"{name} has {y.shape[1]} columns but the network has {k} outputs; "
                f"expected shape (n_samples, {k})"
            )
        _check_values(y, ns, kind, loss.name, name, k)
        if kind in ("real", "nonnegative"):
            y = _cast_finite(y, ns, dtype, dtype_name(xp, dtype), name, "targets")
    return _to_backend(y, ns, xp, device, dtype, rows=True)


def _int_dtype(ns: ModuleType) -> Any:
    # Labels are < k, so int32 always holds them, and every backend has it
    # (JAX's int64 needs its 64-bit mode and would warn and truncate).
    return ns.int32


def _check_values(y: Array, ns: ModuleType, kind: str, loss_name: str, name: str,
                  k: int) -> None:
    if kind == "sign" and not _all(ns, (y == 1) | (y == -1)):
        raise ValueError(f"{name} must hold labels in {{-1, +1}} for loss {loss_name!r}")
    if kind == "nonnegative" and not _all(ns, y >= 0):
        raise ValueError(f"{name} must hold targets >= 0 (counts or rates) for loss "
                         f"{loss_name!r}")
    if kind == "binary" and not _all(ns, (y >= 0) & (y <= 1)):
        raise ValueError(f"{name} must hold targets in [0, 1] for loss {loss_name!r}")
    if kind == "labels":
        yf = ns.astype(y, ns.float64) if ns is np else y
        ok = _all(ns, (yf >= 0) & (yf <= 1)) and _all(
            ns, ns.abs(ns.sum(yf, axis=1) - 1) <= 1e-4
        )
        if not ok:
            raise ValueError(
                f"{name} of shape (n_samples, {k}) must be one-hot (or probability) rows "
                f"in [0, 1] summing to 1 for loss 'cross_entropy'; for class indices pass "
                "a 1-D array of integers"
            )


def check_params(
    params: Any, expected: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]
) -> list[tuple[Any, Any]]:
    """Check a parameter tree against the network's shapes; returns a list of pairs."""
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise TypeError(
            f"params must be a list of (W, b) pairs, got {type(params).__name__}"
        )
    if len(params) != len(expected):
        raise ValueError(
            f"params has {len(params)} layers but the network has {len(expected)}; expected "
            f"{len(expected)} (W, b) pairs with shapes {[tuple(e) for e in expected]}"
        )
    checked = []
    for l, (pair, (w_shape, b_shape)) in enumerate(zip(params, expected, strict=True), start=1):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"params[{l - 1}] must be a (W, b) pair")
        W, b = pair
        for tname, t, shape in ((f"W{l}", W, w_shape), (f"b{l}", b, b_shape)):
            s = tuple(t.shape) if hasattr(t, "shape") else _host_shape(t, tname)
            if tuple(s) != tuple(shape):
                raise ValueError(
                    f"{tname} has shape {tuple(s)} but the network expects {tuple(shape)}"
                )
        checked.append((W, b))
    return checked


def _host_shape(t: Any, name: str) -> tuple[int, ...]:
    try:
        return np.shape(t)
    except ValueError:
        ragged = _ragged(t, name)
        if ragged is None:
            raise
        raise ValueError(ragged) from None


def as_param(t: Any, name: str, *, xp: ModuleType, device: Any, dtype: Any) -> Array:
    """One parameter tensor (already shape-checked by :func:`check_params`) as a
    new array of ``xp`` on ``device`` in ``dtype``: never the caller's array (a
    NumPy array is copied, a torch tensor detached and copied), so that changing
    it later, or its autograd flag, cannot reach the network.

    Raises
    ------
    TypeError
        Not real numbers.
    ValueError
        NaN or infinite values, or values too large for ``dtype``.
    """
    arr = t
    kind = array_library(t)
    own = kind not in (None, "numpy") and kind == backend_name(xp) and (
        kind != GENERIC or namespace_of(t) is xp)
    if kind not in (None, "numpy") and not own:
        arr = to_numpy(t)  # another library's array: through the host, once
    dtype_str = dtype_name(xp, dtype)
    if own:
        arr = detach(arr)
        if not xp.isdtype(arr.dtype, ("real floating", "integral")):
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        cast = _cast_finite(arr, xp, dtype, dtype_str, name, "weights")
        return to_device(xp.astype(cast, dtype, copy=True) if cast is arr else cast, device)
    source = _numeric_host(arr, name)
    host = _cast_finite(source, np, dtype, dtype_str, name, "weights")
    if host is source or np.may_share_memory(host, source) or not host.flags.c_contiguous:
        host = np.array(host, order="C", copy=True)  # never the caller's memory
    return _to_backend(host, np, xp, device, dtype)


def check_output_units(loss: str, n_outputs: int) -> None:
    """Refuse a loss that cannot learn with ``n_outputs`` units."""
    if loss == "cross_entropy" and n_outputs < 2:
        raise ValueError(
            "loss 'cross_entropy' needs at least 2 output units: a softmax over one unit is "
            "always 1, so its loss and gradient would always be 0. For two classes with one "
            "output unit use loss='binary_cross_entropy' (targets 0/1) or loss='logistic' "
            "(targets -1/+1); or give the output layer one unit per class"
        )


# --- scalar options --------------------------------------------------------------------


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; refuses anything but ``True``/``False`` (and NumPy bools)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` as one of the strings in ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of: {', '.join(choices)}; got {value!r}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(choices)}")
    return value


def check_fraction(name: str, value: Any, *, low_open: bool = False,
                   high_open: bool = True) -> float:
    """``value`` as a float in [0, 1) (``low_open`` excludes 0, ``high_open`` 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    lo = "(0" if low_open else "[0"
    hi = "1)" if high_open else "1]"
    bad_lo = v <= 0 if low_open else v < 0
    bad_hi = v >= 1 if high_open else v > 1
    if not np.isfinite(v) or bad_lo or bad_hi:
        raise ValueError(f"{name} must be in {lo}, {hi}, got {value!r}")
    return v


def check_xy_pair(name: str, value: Any) -> tuple[Any, Any]:
    """``value`` as an ``(X, Y)`` pair (a tuple or list of two)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (X, Y), got {type(value).__name__}")
    return value[0], value[1]

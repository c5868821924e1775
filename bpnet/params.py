"""Parameter trees: initialisation, and flat vectors for optimizers that want one.

Parameters are a list of ``(W, b)`` pairs, ``W`` (fan_in, fan_out) and ``b``
(fan_out,).  Initial values are drawn on the host with a seeded
:class:`numpy.random.Generator` and transferred once, so the same seed gives the
same network on every backend and device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["init_params_host", "n_params", "ravel", "shapes", "unravel", "unraveler"]

Array = Any


def init_params_host(
    layer_sizes: Sequence[int], inits: Sequence[str], seed: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Draw initial weights on the host, in float64.

    Parameters
    ----------
    layer_sizes : sequence of int, length L + 1
    inits : sequence of {"he", "glorot"}, length L
        Scheme for each layer, chosen by the activation that follows it:
        He (normal, variance 2/fan_in) for the ReLU family, Glorot (uniform,
        limit sqrt(6/(fan_in+fan_out))) otherwise.  Biases start at zero.
    seed : int or None

    Returns
    -------
    list of (W, b) numpy arrays
    """
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out, scheme in zip(layer_sizes[:-1], layer_sizes[1:], inits, strict=True):
        if scheme == "he":
            W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        params.append((W, np.zeros(fan_out)))
    return params


def shapes(params: Sequence[tuple[Array, Array]]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Shapes of every ``(W, b)``."""
    return [(tuple(W.shape), tuple(b.shape)) for W, b in params]


def n_params(params: Sequence[tuple[Array, Array]]) -> int:
    """Total number of scalars in the tree."""
    total = 0
    for W, b in params:
        total += int(np.prod(W.shape)) + int(np.prod(b.shape))
    return total


def ravel(params: Sequence[tuple[Array, Array]], *, xp: ModuleType) -> Array:
    """Concatenate every ``W`` (row-major) and ``b`` into one flat vector (P,)."""
    parts = []
    for W, b in params:
        parts.append(xp.reshape(W, (-1,)))
        parts.append(b)
    return xp.concat(parts)


def unraveler(
    layer_shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]], *, xp: ModuleType,
) -> Callable[[Array], list[tuple[Array, Array]]]:
    """:func:`unravel` for one layout, with the slice bounds worked out once.

    L-BFGS and the flat-buffer optimizers unravel at every evaluation or step,
    where recomputing the bounds cost as much as a tiny network's backprop.

    Returns
    -------
    callable ``flat (P,) -> list of (W, b)``
    """
    layout, start = [], 0
    for w_shape, b_shape in layer_shapes:
        mid = start + int(np.prod(w_shape))
        end = mid + int(np.prod(b_shape))
        layout.append((start, mid, end, tuple(w_shape)))
        start = end

    def unravel_flat(flat: Array) -> list[tuple[Array, Array]]:
        return [(xp.reshape(flat[lo:mid], shape), flat[mid:hi]) for lo, mid, hi, shape in layout]

    return unravel_flat


def unravel(
    flat: Array, layer_shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]],
    *, xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """Inverse of :func:`ravel`: slice a flat vector (P,) back into ``(W, b)`` pairs."""
    return unraveler(layer_shapes, xp=xp)(flat)

"""Parameter trees: seeded initialisation, and one layout for flat vectors.

Parameters are a list of ``(W, b)`` pairs, ``W`` (fan_in, fan_out) and ``b``
(fan_out,).  Initial values are drawn on the host with a seeded
:class:`numpy.random.Generator` and transferred once, so the same seed gives the
same network on every backend and device.

:class:`Layout` is the one description of where each tensor lies in the flat
vector that L-BFGS, the flat optimizer updates and the finite differences work
on: ``W_1`` row-major, then ``b_1``, ``W_2``, ``b_2``...
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType

import numpy as np

from ._typing import Array, Params, Shapes

__all__ = ["Layout", "Slot", "init_params_host"]


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


@dataclass(frozen=True)
class Slot:
    """Where one tensor lies in the flat parameter vector.

    Attributes
    ----------
    layer : int
        Index of the layer, from 0.
    which : int
        0 for ``W``, 1 for ``b``.
    start, size : int
        Its entries are ``flat[start:start + size]``.
    shape : tuple of int
    """

    layer: int
    which: int
    start: int
    size: int
    shape: tuple[int, ...]

    @property
    def name(self) -> str:
        """``"W1"``, ``"b1"``, ``"W2"``..."""
        return f"{'Wb'[self.which]}{self.layer + 1}"

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Layout:
    """The shapes of a parameter tree and its flat order.

    Build one with :meth:`of` (from arrays) or :meth:`from_sizes` (from layer
    sizes); the slice bounds are worked out once, because L-BFGS and the flat
    optimizer updates unravel at every evaluation or step, where recomputing
    them cost as much as a tiny network's backprop.
    """

    shapes: Shapes

    @classmethod
    def of(cls, params: Sequence[tuple[Array, Array]]) -> Layout:
        """The layout of an existing tree."""
        return cls(tuple((tuple(W.shape), tuple(b.shape)) for W, b in params))

    @classmethod
    def from_sizes(cls, layer_sizes: Sequence[int]) -> Layout:
        """The layout of a network with these layer sizes (input first)."""
        return cls(tuple(((a, b), (b,)) for a, b in itertools.pairwise(layer_sizes)))

    @cached_property
    def slots(self) -> tuple[Slot, ...]:
        """Every tensor in flat order."""
        slots, start = [], 0
        for l, pair in enumerate(self.shapes):
            for which, shape in enumerate(pair):
                size = math.prod(shape)
                slots.append(Slot(l, which, start, size, tuple(shape)))
                start += size
        return tuple(slots)

    @property
    def n_params(self) -> int:
        """Total number of scalars."""
        last = self.slots[-1]
        return last.stop

    def ravel(self, params: Sequence[tuple[Array, Array]], *, xp: ModuleType) -> Array:
        """Concatenate every ``W`` (row-major) and ``b`` into one flat vector (P,)."""
        return xp.concat([xp.reshape(t, (-1,)) for pair in params for t in pair])

    def unravel(self, flat: Array, *, xp: ModuleType) -> Params:
        """Inverse of :meth:`ravel`: views of ``flat`` (P,) shaped as the tree."""
        return [
            (xp.reshape(flat[w.start:w.stop], w.shape), flat[b.start:b.stop])
            for w, b in self._pairs
        ]

    @cached_property
    def _pairs(self) -> tuple[tuple[Slot, Slot], ...]:
        s = self.slots
        return tuple((s[i], s[i + 1]) for i in range(0, len(s), 2))

"""Type aliases shared by the whole package.

bpnet never names an array library outside :mod:`bpnet.backend`, so an array
is typed only by what it is: an object of some library that follows the Python
Array API standard.  ``Arch`` bundles what the kernels need to know about a
network besides its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .activations import Activation
    from .losses import Loss

__all__ = ["Arch", "Array", "Namespace", "Params", "Shapes"]

#: An array of any library that follows the Array API standard (NumPy, CuPy,
#: torch, JAX, Dask, array-api-strict).
Array: TypeAlias = Any

#: The Array API namespace of a backend (``xp``).
Namespace: TypeAlias = ModuleType

#: Parameters (or gradients) of a network: ``[(W_1, b_1), ..., (W_L, b_L)]``,
#: ``W_l`` of shape (n_{l-1}, n_l) and ``b_l`` of shape (n_l,).
Params: TypeAlias = list[tuple[Array, Array]]

#: Shapes of a parameter tree: ``[((n_0, n_1), (n_1,)), ...]``.
Shapes: TypeAlias = tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]


@dataclass(frozen=True)
class Arch:
    """What the kernels need to know about a network besides its parameters.

    Hashable, so that a backend can compile one step per architecture.

    Attributes
    ----------
    hidden : tuple of Activation, length L - 1
        Activation of each hidden layer.
    out : Activation
        Output activation, fused with ``loss`` (identity for softmax, whose
        formulas the cross-entropy applies itself).
    loss : Loss
    """

    hidden: tuple[Activation, ...]
    out: Activation
    loss: Loss

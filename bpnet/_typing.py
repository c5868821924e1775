"""Types shared by the whole package and its public signatures.

bpnet never names an array library outside :mod:`bpnet.backend`, so an array
is typed only by what it is: an object of some library that follows the Python
Array API standard.  ``Arch`` bundles what the kernels need to know about a
network besides its parameters.

Why ``Array`` is ``Any`` and not a Protocol
-------------------------------------------
The standard has no published array Protocol yet (data-apis/array-api#589);
array-api-compat types its own ``Array`` as ``Incomplete`` (an ``Any``) and
SciPy as ``Any`` for the same reason.  A Protocol naming the operators the
kernels use (``@``, ``+``, ``*``, ``.T``, ``shape``) rejects the libraries'
own stubs: NumPy's operators are overloads over NumPy's array-likes, torch's
``shape`` is a ``torch.Size``, Dask and CuPy ship no stubs, so every real
array would need a cast.  ``Array`` therefore documents intent and checks
nothing; what *is* checked statically is everything around it: namespaces,
parameter trees, option names (``Literal``), callbacks, and what a public
function accepts as input (:data:`ArrayLike`, which is not ``Any``).  The
values themselves are checked at run time, once, at the boundary
(:mod:`bpnet.inputs`), never in kernels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from .activations import Activation
    from .losses import Loss
    from .train.loop import History

__all__ = [
    "Arch", "Array", "ArrayLike", "BackendLike", "BatchSize", "Callback", "DTypeLike",
    "Device", "DiffMethod", "Namespace", "NestedSequence", "OptimizerName", "Params",
    "PathLike", "Schedule", "ScheduleName", "Shapes",
]

_T_co = TypeVar("_T_co", covariant=True)

#: An array of any library that follows the Array API standard (NumPy, CuPy,
#: torch, JAX, Dask, array-api-strict).  ``Any`` on purpose: see the module
#: docstring.
Array: TypeAlias = Any

#: The Array API namespace of a backend (``xp``).
Namespace: TypeAlias = ModuleType

#: A device of a backend: its own object (``torch.device``, ``Device("device1")``),
#: or a name such as ``"cpu"`` or ``"cuda:0"``.  Each library has its own type.
Device: TypeAlias = Any

#: A floating dtype: ``"float32"``/``"float64"`` or a dtype object of a backend.
DTypeLike: TypeAlias = str | Any

#: How a backend is named: ``"numpy"``, ``"torch"``, ..., ``"auto"``, or an
#: Array API namespace itself.
BackendLike: TypeAlias = str | ModuleType


class NestedSequence(Protocol[_T_co]):
    """A (nested) sequence such as ``[[0.0, 1.0], [1.0, 0.0]]`` (the standard's
    ``NestedSequence``)."""

    def __getitem__(self, key: int, /) -> _T_co | NestedSequence[_T_co]: ...
    def __len__(self, /) -> int: ...


class _SupportsArray(Protocol):
    """NumPy arrays, torch tensors, JAX arrays, pandas frames and series, Dask arrays."""

    def __array__(self) -> Any: ...


class _SupportsDLPack(Protocol):
    """Arrays that export themselves by DLPack (array-api-strict, CuPy, torch on a GPU)."""

    def __dlpack__(self) -> Any: ...


#: What a public function converts to an array of the network's backend: an
#: array of any library (``__array__`` or ``__dlpack__``), a pandas object, or
#: nested sequences of numbers (labels may be strings for the scikit-learn
#: estimators).  Shapes and dtypes are checked at run time by :mod:`bpnet.inputs`.
ArrayLike: TypeAlias = (
    _SupportsArray | _SupportsDLPack | NestedSequence[float] | NestedSequence[str] | float
)

#: Parameters (or gradients) of a network: ``[(W_1, b_1), ..., (W_L, b_L)]``,
#: ``W_l`` of shape (n_{l-1}, n_l) and ``b_l`` of shape (n_l,).
Params: TypeAlias = list[tuple[Array, Array]]

#: Shapes of a parameter tree: ``[((n_0, n_1), (n_1,)), ...]``.
Shapes: TypeAlias = tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]

#: A file name.
PathLike: TypeAlias = str | os.PathLike[str]

#: The optimizers (:data:`bpnet.optim.OPTIMIZERS`; a test keeps them equal).
OptimizerName: TypeAlias = Literal["sgd", "adam", "lbfgs"]

#: The named learning-rate schedules (:data:`bpnet.optim.SCHEDULES`).
ScheduleName: TypeAlias = Literal["constant", "invscaling", "step", "cosine"]

#: A learning-rate schedule: a name, or ``epoch -> learning rate``.
Schedule: TypeAlias = ScheduleName | Callable[[int], float]

#: The numerical differentiation methods (:data:`bpnet.finite_diff.METHODS`).
DiffMethod: TypeAlias = Literal["central", "forward", "complex_step", "forward_mode"]

#: A batch size: a number of rows, ``"auto"`` (``min(200, n)``) or None (full batch).
BatchSize: TypeAlias = int | Literal["auto"] | None

#: ``callback(epoch, history)``, called after every epoch; True stops training.
Callback: TypeAlias = "Callable[[int, History], bool | None]"


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

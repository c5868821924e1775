"""Activation functions, each written beside its derivative.

Every derivative is expressed through the activation's *output* ``a = f(z)``
(sigmoid' = a(1 - a), tanh' = 1 - a², ReLU' = [a > 0], ...), so the forward pass
stores only the activations and never the pre-activations ``z``.

All functions take the array namespace as ``xp`` and follow the Python Array API
standard: no in-place updates, no host syncs, no arrays created (constants are
Python scalars, which take the dtype and device of the array they meet).

Complex step differentiation (:mod:`bpnet.finite_diff`) runs the forward pass on
complex numbers, so each activation also carries ``f_complex``, its analytic
extension to complex ``z`` (used nowhere else: the real forward pass never
touches it).  ``tanh`` and ``identity`` are holomorphic as they stand.  The
sigmoid and softplus extensions are the same holomorphic functions, written with
the stable branch chosen by the sign of ``Re z`` (both branches are the same
function, so the choice changes rounding, not the value).  ReLU and leaky ReLU
are not holomorphic at all (``max`` is not); they are extended through the real
part, ``z * [Re z > 0]`` and ``z * (0.01 + 0.99 [Re z > 0])``: linear, hence
exact, on each side of the kink, and at ``Re z = 0`` exactly they take the slope
of the side backprop's derivative takes (``[a > 0]``: 0 for ReLU, 0.01 for
leaky ReLU).  ``kinks`` lists the points where ``f`` is not differentiable, so
that a gradient check can tell when a finite-difference step crossed one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from ._typing import Array

__all__ = ["ACTIVATIONS", "BUILTIN_ACTIVATIONS", "Activation", "get_activation",
           "get_activations", "sigmoid", "sigmoid_complex", "softplus", "softplus_complex"]

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``a = f(z)`` and its derivative ``f'(z)`` written
    as a function of ``a``.

    Attributes
    ----------
    name : str
        Public name (``"relu"``...).
    f : callable ``(z, xp) -> a``
        The activation; same shape as ``z``.
    df : callable ``(a, xp) -> f'(z)`` or None
        The derivative evaluated from the activation's output; ``None`` means
        ``f'(z) = 1`` (identity), letting the backward pass skip a product.
    init : {"glorot", "he"}
        The weight initialisation that suits this activation.
    f_complex : callable ``(z, xp) -> a`` or None
        ``f`` extended to complex ``z`` for complex step differentiation (see
        the module docstring); ``None`` when there is none, and then the
        complex step refuses the network.
    kinks : tuple of float
        Points where ``f`` is not differentiable (``(0.0,)`` for ReLU and leaky
        ReLU): a difference quotient whose step moves a pre-activation across
        one averages two slopes.
    """

    name: str
    f: Callable[[Array, ModuleType], Array]
    df: Callable[[Array, ModuleType], Array] | None
    init: str
    f_complex: Callable[[Array, ModuleType], Array] | None = None
    kinks: tuple[float, ...] = ()


def sigmoid(z: Array, xp: ModuleType) -> Array:
    """Logistic function ``1 / (1 + exp(-z))`` that never overflows.

    Written as ``exp(min(z, 0)) / (1 + exp(-|z|))``: both exponents are <= 0, and
    it is ``1 / (1 + exp(-z))`` for z >= 0 and ``exp(z) / (1 + exp(z))`` below,
    each exact to rounding.  No ``where``: on NumPy a select on a mask that
    changes sign from element to element was the slowest call of the three forms
    tried, and this one is the fastest from 4 to 65,536 elements.
    """
    return xp.exp(xp.minimum(z, 0.0)) / (1.0 + xp.exp(-xp.abs(z)))


def softplus(z: Array, xp: ModuleType) -> Array:
    """``log(1 + exp(z))`` computed as ``max(z, 0) + log1p(exp(-|z|))``."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


def _identity(z: Array, xp: ModuleType) -> Array:
    return z


def _relu(z: Array, xp: ModuleType) -> Array:
    # A Python scalar, not a 0-d array: the standard (2024.12) allows it, and it
    # saves building a zero on the right device at every call of a tiny layer.
    return xp.maximum(z, 0.0)


def _relu_df(a: Array, xp: ModuleType) -> Array:
    # a > 0 exactly where z > 0.  astype, not where: measured 10-18x faster on
    # NumPy than xp.where with a changing mask.
    return xp.astype(a > 0, a.dtype)


def _leaky_relu(z: Array, xp: ModuleType) -> Array:
    return xp.maximum(z, z * LEAKY_SLOPE)


def _leaky_relu_df(a: Array, xp: ModuleType) -> Array:
    return LEAKY_SLOPE + (1.0 - LEAKY_SLOPE) * xp.astype(a > 0, a.dtype)


def _sigmoid_df(a: Array, xp: ModuleType) -> Array:
    return a * (1.0 - a)


def _tanh(z: Array, xp: ModuleType) -> Array:
    return xp.tanh(z)


def _tanh_df(a: Array, xp: ModuleType) -> Array:
    return 1.0 - a * a


def _softplus_df(a: Array, xp: ModuleType) -> Array:
    # softplus'(z) = sigmoid(z) = 1 - exp(-a); -expm1 keeps it accurate when a -> 0.
    return -xp.expm1(-a)


# --- analytic extensions to complex z (complex step only) ----------------------
def _re_positive(z: Array, xp: ModuleType) -> Array:
    """``[Re z > 0]`` in ``z``'s (complex) dtype."""
    return xp.astype(xp.real(z) > 0, z.dtype)


def _toward_left(z: Array, m: Array) -> Array:
    """``-z`` where ``m`` is 1 and ``z`` where it is 0: ``Re`` of the result is
    ``-|Re z|``, so its exponential never overflows (``1 - 2m`` is exactly +-1)."""
    return z * (1.0 - 2.0 * m)


def sigmoid_complex(z: Array, xp: ModuleType) -> Array:
    """The logistic function of complex ``z``: ``1 / (1 + e^-z)`` for Re z > 0,
    ``e^z / (1 + e^z)`` otherwise (the same function; the branch keeps the
    exponent's real part <= 0)."""
    m = _re_positive(z, xp)
    e = xp.exp(_toward_left(z, m))
    return (m + (1.0 - m) * e) / (1.0 + e)


def softplus_complex(z: Array, xp: ModuleType) -> Array:
    """``log(1 + e^z)`` of complex ``z``: ``z + log(1 + e^-z)`` for Re z > 0,
    ``log(1 + e^z)`` otherwise."""
    m = _re_positive(z, xp)
    return m * z + xp.log1p(xp.exp(_toward_left(z, m)))


def _relu_complex(z: Array, xp: ModuleType) -> Array:
    return z * _re_positive(z, xp)


def _leaky_relu_complex(z: Array, xp: ModuleType) -> Array:
    return z * (LEAKY_SLOPE + (1.0 - LEAKY_SLOPE) * _re_positive(z, xp))


#: Every activation by name, the built-in ones and those registered.
ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation("identity", _identity, None, "glorot", _identity),
        Activation("sigmoid", sigmoid, _sigmoid_df, "glorot", sigmoid_complex),
        Activation("tanh", _tanh, _tanh_df, "glorot", _tanh),
        Activation("relu", _relu, _relu_df, "he", _relu_complex, (0.0,)),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_df, "he", _leaky_relu_complex, (0.0,)),
        Activation("softplus", softplus, _softplus_df, "he", softplus_complex),
    )
}

# scikit-learn's name for the sigmoid
_ALIASES = {"logistic": "sigmoid", "linear": "identity"}

#: The names bpnet defines (aliases and the output-only ``softmax`` and ``exp`` included);
#: :func:`bpnet.register_activation` adds others to :data:`ACTIVATIONS`.
BUILTIN_ACTIVATIONS: frozenset[str] = frozenset([*ACTIVATIONS, *_ALIASES, "softmax", "exp"])


def get_activation(name: str) -> Activation:
    """Look up an activation by name (``"logistic"`` is accepted for ``"sigmoid"``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]


def get_activations(spec: str | Sequence[str], n_hidden: int) -> tuple[Activation, ...]:
    """The activation of each of ``n_hidden`` hidden layers: one name for all of
    them, or a sequence of one name per layer (``["relu", "tanh"]``).

    Raises
    ------
    TypeError
        When ``spec`` is neither a name nor a sequence of names.
    ValueError
        For an unknown name, or a sequence whose length is not ``n_hidden``.
    """
    if isinstance(spec, str):
        act = get_activation(spec)
        return (act,) * n_hidden
    if not isinstance(spec, (list, tuple)):
        raise TypeError("activation must be a name or a list of one name per hidden layer, "
                        f"got {type(spec).__name__}")
    if len(spec) != n_hidden:
        raise ValueError(f"activation lists {len(spec)} names but the network has {n_hidden} "
                         f"hidden layer{'s' if n_hidden != 1 else ''}; give one name per "
                         "hidden layer, or a single name for all")
    return tuple(get_activation(name) for name in spec)

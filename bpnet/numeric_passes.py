"""The forward passes numerical differentiation runs besides the real one:
complex (for the complex step) and dual (values and tangents, for forward mode),
over the whole network or from one layer on.

Pure functions in the style of :mod:`bpnet.kernels`: the namespace comes as
``xp``, nothing is written in place, nothing is synchronised.
:mod:`bpnet.finite_diff` drives them one parameter at a time, or many at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._typing import Arch, Array
from .activations import Activation
from .backend.select import complex_dtype

__all__ = ["check_complex", "complex_cost", "dual_cost", "tail_loss", "tail_tangent",
           "to_complex"]

Params = Sequence[tuple[Array, Array]]


# --- complex step: the forward pass on complex numbers ------------------------------
def check_complex(arch: Arch, xp: ModuleType, dtype: Any) -> Any:
    """The complex dtype the complex step computes in.

    Raises
    ------
    TypeError
        When the backend has no complex dtype of ``dtype``'s precision.
    ValueError
        When an activation or the loss has no analytic extension.
    """
    cdt = complex_dtype(xp, dtype)
    for act in (*arch.hidden, arch.out):
        if act.f_complex is None:
            raise ValueError(f"activation {act.name!r} has no complex extension (f_complex), "
                             "so the complex step cannot run; use method='forward_mode'")
    if arch.loss.value_complex is None:
        raise ValueError(f"loss {arch.loss.name!r} has no complex extension (value_complex), "
                         "so the complex step cannot run; use method='forward_mode'")
    return cdt


def to_complex(params: Params, x: Array, y: Array, cdt: Any, xp: ModuleType
               ) -> tuple[list[tuple[Array, Array]], Array, Array]:
    """Parameters, inputs and targets cast to the complex dtype ``cdt`` (matrix
    products of real and complex arrays are not defined on every backend)."""
    tree = [(xp.astype(W, cdt), xp.astype(b, cdt)) for W, b in params]
    return tree, xp.astype(x, cdt), xp.astype(y, cdt)


def complex_cost(tree: Params, x: Array, y: Array, arch: Arch, alpha: float,
                 xp: ModuleType) -> Array:
    """The mean loss of complex parameters ``tree`` on complex ``x`` (N, n_0)
    and ``y`` (N, n_L): a complex 0-d array."""
    a = x
    for (W, b), act in zip(tree[:-1], arch.hidden, strict=True):
        a = act.f_complex(a @ W + b, xp)  # type: ignore[misc]
    W_L, b_L = tree[-1]
    value = arch.loss.value_complex(a @ W_L + b_L, y, arch.out, xp)  # type: ignore[misc]
    if alpha:  # sum(W * W), not vecdot, which conjugates: |W|^2 is not holomorphic
        value = value + (0.5 * alpha / x.shape[0]) * sum(xp.sum(W * W) for W, _ in tree)
    return value


# --- forward mode: values and tangents together ----------------------------------------
def dual_cost(params: Params, seed: tuple[int, int, Array], x: Array, y: Array, arch: Arch,
              alpha: float, xp: ModuleType) -> Array:
    """The directional derivative of the mean loss along one tensor's tangent.

    Parameters
    ----------
    params, x, y, arch, alpha, xp
        As for :func:`bpnet.kernels.loss_and_grad`.
    seed : (layer, which, dt)
        The tangent ``dt`` of ``params[layer][which]`` (0 for W, 1 for b), of
        its shape; every other parameter's tangent is zero.

    Returns
    -------
    0-d array
        ``dC = <grad C, tangent>``.

    Notes
    -----
    ``dz_l = da_{l-1} @ W_l + a_{l-1} @ dW_l + db_l`` and
    ``da_l = f_l'(z_l) * dz_l`` (from the output, as backprop has it), and at the
    output ``dC = sum(delta_L * dz_L)`` with the loss's fused ``delta_L``.  A
    tangent known to be zero is ``None`` and skipped, not multiplied out.
    """
    layer, which, dt = seed
    a, da = x, None
    last = len(params) - 1
    for l, (W, b) in enumerate(params):
        z = a @ W + b
        dz = None if da is None else da @ W
        if l == layer:
            own = a @ dt if which == 0 else dt  # (N, n_l), or (n_l,) broadcast over rows
            dz = own if dz is None else dz + own
        if l == last:
            break
        act: Activation = arch.hidden[l]
        a = act.f(z, xp)
        if dz is not None:
            da = dz if act.df is None else act.df(a, xp) * dz
    _, delta = arch.loss.value_and_delta(z, y, arch.out, xp)
    d_cost = xp.sum(delta * dz)  # the loss's tangent: <dC/dz_L, dz_L> (BP1's delta)
    if alpha and which == 0:
        d_cost = d_cost + (alpha / x.shape[0]) * xp.sum(params[layer][0] * dt)
    return d_cost


# --- from layer l on, for many perturbations at once --------------------------------------
def tail_loss(z: Array, l: int, params: Params, y: Array, arch: Arch, xp: ModuleType,
              complex_: bool = False) -> Array:
    """Loss of a stack of pre-activations ``z`` (K, N, n_l) of layer ``l`` pushed
    through the layers after it: one value per stacked network, (K,).  With
    ``complex_``, through the complex extensions (``params`` complex too)."""
    hidden: Sequence[Activation] = arch.hidden
    for i in range(l + 1, len(params)):
        W, b = params[i]
        f = hidden[i - 1].f_complex if complex_ else hidden[i - 1].f
        z = f(z, xp) @ W + b  # type: ignore[misc]  # matmul broadcasts over the K networks
    value = arch.loss.value_complex if complex_ else arch.loss.value
    return value(z, y, arch.out, xp)  # type: ignore[misc]


def tail_tangent(dz: Array, l: int, a: Sequence[Array], params: Params, delta: Array,
                 arch: Arch, xp: ModuleType) -> Array:
    """Forward mode from layer ``l``: tangents ``dz`` (K, N, n_l) of its
    pre-activation pushed to the loss, one directional derivative each, (K,).
    ``a`` are the activations of :func:`bpnet.kernels.forward` and ``delta``
    the loss's ``delta_L`` at ``theta``."""
    for i in range(l + 1, len(params)):
        act = arch.hidden[i - 1]
        da = dz if act.df is None else act.df(a[i], xp) * dz
        dz = da @ params[i][0]
    return xp.sum(delta * dz, axis=(-2, -1))

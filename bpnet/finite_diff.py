"""Numerical differentiation: the baselines that backpropagation beats.

:func:`numerical_grad` perturbs one parameter at a time and runs two full forward
passes for each (central differences), so a gradient costs 2P forward passes for
P parameters.  It is deliberately naive, but not needlessly slow: on backends
whose arrays can be written to, each tensor is copied once and a perturbation is
one item assignment on that private copy (undone after its two passes), and the
2P loss values stay on the device until one final transfer.

:func:`numerical_grad_batched` is the strongest numerical baseline: it evaluates
many perturbed networks in one batched forward pass, starting from the perturbed
layer (see its notes).  It does the same arithmetic as the naive loop, minus the
layers a perturbation cannot change, in P/K Python-level calls instead of 2P.

Both compute the central difference of the loss for every parameter; the
``*_partials`` variants do it for chosen flat positions only (the order of
:func:`bpnet.params.ravel`), which is how benchmarks time a sample of a large
network and extrapolate.

:func:`bpnet.gradcheck.gradcheck` compares backprop with the naive version.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from . import kernels
from ._typing import Arch, Array
from .activations import Activation
from .backend import device_of, is_writeable
from .params import Layout, Slot

__all__ = [
    "default_eps",
    "numerical_grad",
    "numerical_grad_batched",
    "numerical_partials",
    "numerical_partials_batched",
]

Params = Sequence[tuple[Array, Array]]

#: Default bound on the elements of one stacked activation in
#: :func:`numerical_partials_batched` (16 MiB in float64).
MAX_ELEMENTS = 2**21


def default_eps(xp: ModuleType, dtype: Any) -> float:
    """Step that balances truncation and rounding error for central differences:
    the cube root of the dtype's machine epsilon (6e-6 in float64, 5e-3 in float32)."""
    return float(xp.finfo(dtype).eps) ** (1.0 / 3.0)


def _check_indices(indices: Sequence[int], total: int) -> list[int]:
    ks = [int(k) for k in indices]
    if ks and not 0 <= min(ks) <= max(ks) < total:
        raise IndexError(f"parameter indices must lie in [0, {total}), got {min(ks)}..{max(ks)}")
    return ks


def _replace(params: Params, slot: Slot, t: Array) -> list[tuple[Array, Array]]:
    """``params`` with the tensor at ``slot`` replaced by ``t`` (nothing copied)."""
    tree = [tuple(p) for p in params]
    pair = list(tree[slot.layer])
    pair[slot.which] = t
    tree[slot.layer] = tuple(pair)
    return tree


def numerical_partials(
    params: Params, x: Array, y: Array, arch: Arch, indices: Sequence[int], *,
    alpha: float = 0.0, eps: float | None = None, xp: ModuleType,
) -> Array:
    """Central differences for the parameters at flat positions ``indices``, one
    at a time: two full forward passes each.

    Parameters
    ----------
    params, x, y, arch, alpha
        As for :func:`bpnet.kernels.loss_and_grad`.
    indices : sequence of int
        Positions in the flat parameter vector (the order of
        :class:`bpnet.params.Layout`: ``W_1`` row-major, ``b_1``, ``W_2``...).
    eps : float, optional
        Step; defaults to :func:`default_eps` for the parameters' dtype.
    xp : namespace

    Returns
    -------
    array (len(indices),)
        ``(C(theta + eps e_k) - C(theta - eps e_k)) / (2 eps)`` for each ``k``,
        in the parameters' dtype, on their device.
    """
    params = [tuple(p) for p in params]
    layout = Layout.of(params)
    slots = layout.slots
    starts = [s.start for s in slots]
    ks = _check_indices(indices, layout.n_params)
    dtype = params[0][0].dtype
    h = default_eps(xp, dtype) if eps is None else float(eps)
    writable = is_writeable(params[0][0])

    def cost(tree):  # looked up at call time, so tests can count the passes
        return kernels.loss_value(tree, x, y, arch, alpha=alpha, xp=xp)

    plus: list[Array] = []  # loss values stay on the device
    minus: list[Array] = []
    copies: dict[int, tuple[list, Array]] = {}  # slot -> (tree holding the copy, copy)
    for k in ks:
        i = bisect.bisect_right(starts, k) - 1
        slot = slots[i]
        t = params[slot.layer][slot.which]
        local = k - slot.start
        if writable:
            if i not in copies:
                c = xp.asarray(t, copy=True)
                copies[i] = (_replace(params, slot, c), c)
            tree, c = copies[i]
            idx = divmod(local, slot.shape[1]) if len(slot.shape) == 2 else (local,)
            c[idx] = t[idx] + h
            plus.append(cost(tree))
            c[idx] = t[idx] - h
            minus.append(cost(tree))
            c[idx] = t[idx]  # undone exactly: the copy is reused for the next entry
        else:
            # Immutable arrays (JAX): add a one-hot step, O(size) work per entry.
            hot = xp.astype(xp.arange(slot.size, device=device_of(t)) == local, t.dtype)
            hot = xp.reshape(hot, t.shape)
            plus.append(cost(_replace(params, slot, t + h * hot)))
            minus.append(cost(_replace(params, slot, t - h * hot)))
    if not ks:
        return xp.zeros((0,), dtype=dtype, device=device_of(params[0][0]))
    return xp.astype((xp.stack(plus) - xp.stack(minus)) / (2.0 * h), dtype)


def numerical_grad(
    params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0,
    eps: float | None = None, xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """Central finite differences, one parameter at a time.

    ``g_k = (C(theta + eps e_k) - C(theta - eps e_k)) / (2 eps)`` for every one of
    the P parameters: 2P forward passes.

    Parameters
    ----------
    params, x, y, arch, alpha
        As for :func:`bpnet.kernels.loss_and_grad`.
    eps : float, optional
        Step; defaults to :func:`default_eps` for the parameters' dtype.
    xp : namespace

    Returns
    -------
    list of (dW, db)
        Same shapes, dtype and device as ``params``.
    """
    layout = Layout.of(params)
    flat = numerical_partials(params, x, y, arch, range(layout.n_params), alpha=alpha, eps=eps,
                              xp=xp)
    return layout.unravel(flat, xp=xp)


def _one_hot(positions: np.ndarray, width: int, dtype: Any, device: Any,
             xp: ModuleType) -> Array:
    """(K, width) rows with a one at each of the K host-side ``positions``."""
    pos = xp.asarray(positions.tolist(), device=device)
    return xp.astype(pos[:, None] == xp.arange(width, device=device)[None, :], dtype)


def _tail_loss(z: Array, l: int, params: Params, y: Array, arch: Arch, xp: ModuleType) -> Array:
    """Loss of a stack of pre-activations ``z`` (K, N, n_l) of layer ``l`` pushed
    through the layers after it: one value per stacked network, (K,)."""
    hidden: Sequence[Activation] = arch.hidden
    for i in range(l + 1, len(params)):
        W, b = params[i]
        z = hidden[i - 1].f(z, xp) @ W + b  # matmul broadcasts over the K networks
    return arch.loss.value(z, y, arch.out, xp)


def numerical_partials_batched(
    params: Params, x: Array, y: Array, arch: Arch, indices: Sequence[int], *,
    alpha: float = 0.0, eps: float | None = None, max_elements: int = MAX_ELEMENTS,
    xp: ModuleType,
) -> Array:
    """Central differences for the parameters at ``indices``, many perturbations
    per batched forward pass.

    Parameters
    ----------
    params, x, y, arch, indices, alpha, eps, xp
        As for :func:`numerical_partials`.
    max_elements : int
        Bound on K * N * width for the stacked activations of one chunk of K
        perturbations; memory use is a few times this many elements.

    Returns
    -------
    array (len(indices),)

    Notes
    -----
    Perturbing a parameter of layer ``l`` leaves every layer before it alone, so
    its input ``a_{l-1}`` is computed once.  Moving ``W_l[i, j]`` by ``h`` moves
    the pre-activation by ``h a_{l-1}[:, i]`` in column ``j`` only, and moving
    ``b_l[j]`` moves column ``j`` by ``h``: a chunk of K perturbed networks is
    the stack ``z_l + h dZ`` (K, N, n_l), built by broadcasting.  The layers
    after ``l`` then run once on the whole stack and the loss returns K values.
    Every loss is still evaluated at ``theta +- h e_k``; only the work that the
    perturbation cannot change is shared.
    """
    params = [tuple(p) for p in params]
    layout = Layout.of(params)
    ks = _check_indices(indices, layout.n_params)
    W0 = params[0][0]
    dtype, dev = W0.dtype, device_of(W0)
    h = default_eps(xp, dtype) if eps is None else float(eps)
    if not ks:
        return xp.zeros((0,), dtype=dtype, device=dev)
    n = x.shape[0]
    a, z_out = kernels.forward(params, x, arch.hidden, xp=xp)
    penalty = 0.5 * alpha / n
    l2 = kernels.l2_penalty(params, alpha, n, xp) if alpha else 0.0  # the penalty at theta

    order = np.argsort(np.asarray(ks), kind="stable")  # group by tensor
    sorted_ks = np.asarray(ks)[order]
    parts = []
    for slot in layout.slots:
        lo, hi = np.searchsorted(sorted_ks, [slot.start, slot.start + slot.size])
        if lo == hi:
            continue
        l = slot.layer
        W, b = params[l]
        n_out = W.shape[1]
        z_l = z_out if l == len(params) - 1 else a[l] @ W + b
        widest = max(p[0].shape[1] for p in params[l:])
        chunk = max(1, max_elements // (n * widest))
        local = sorted_ks[lo:hi] - slot.start
        for c0 in range(0, local.shape[0], chunk):
            part = local[c0:c0 + chunk]
            if slot.which == 0:  # W_l[i, j]: column j moves by h * a_{l-1}[:, i]
                rows = _one_hot(part // n_out, W.shape[0], dtype, dev, xp)  # (K, n_in)
                cols = _one_hot(part % n_out, n_out, dtype, dev, xp)  # (K, n_out)
                # a_{l-1}[:, i] of each perturbation, picked out by a one-hot
                # matmul (exact) rather than take(), which dask gets wrong for
                # index arrays of length 1.
                a_rows = rows @ a[l].T  # (K, N)
                dz = a_rows[:, :, None] * cols[:, None, :]
            else:  # b_l[j]: column j moves by h
                dz = _one_hot(part, n_out, dtype, dev, xp)[:, None, :]
            c_plus = _tail_loss(z_l + h * dz, l, params, y, arch, xp)
            c_minus = _tail_loss(z_l - h * dz, l, params, y, arch, xp)
            if alpha and slot.which == 0:  # the L2 term at the perturbed weights
                w = xp.sum((rows @ W) * cols, axis=1)  # W[i_k, j_k], (K,)
                c_plus = c_plus + (l2 + penalty * ((w + h) ** 2 - w * w))
                c_minus = c_minus + (l2 + penalty * ((w - h) ** 2 - w * w))
            parts.append(c_plus - c_minus)
    flat = xp.astype(xp.concat(parts) / (2.0 * h), dtype)
    if np.any(order != np.arange(order.shape[0])):  # back to the caller's order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.shape[0])
        flat = xp.take(flat, xp.asarray(inverse.tolist(), device=dev))
    return flat


def numerical_grad_batched(
    params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0,
    eps: float | None = None, max_elements: int = MAX_ELEMENTS, xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """Central finite differences for every parameter, evaluated in batched
    forward passes (see :func:`numerical_partials_batched`).

    Same arguments and result as :func:`numerical_grad`, plus ``max_elements``,
    the memory bound of one chunk of perturbations.
    """
    layout = Layout.of(params)
    flat = numerical_partials_batched(params, x, y, arch, range(layout.n_params), alpha=alpha,
                                      eps=eps, max_elements=max_elements, xp=xp)
    return layout.unravel(flat, xp=xp)

"""Numerical differentiation: every way to differentiate the loss beside backprop.

Four methods (:data:`METHODS`), each naive on purpose: one parameter at a time,
a whole forward pass per evaluation, as the textbooks describe them.

================  ==================  ==========================  ==============
method            passes (P params)   error                       exact?
================  ==================  ==========================  ==============
``central``       2P                  O(h^2) + O(eps_mach / h)    no
``forward``       P + 1               O(h) + O(eps_mach / h)      no
``complex_step``  P (complex)         O(h^2), no cancellation     to rounding
``forward_mode``  P (dual numbers)    none                        to rounding
================  ==================  ==========================  ==============

- **central** ``(C(theta + h e_k) - C(theta - h e_k)) / 2h``: truncation error
  ``h^2 C''' / 6`` falls with ``h`` while the rounding error ``eps_mach |C| / h``
  of the subtraction grows; their sum is smallest near ``h ~ eps_mach^(1/3)``.
- **forward** ``(C(theta + h e_k) - C(theta)) / h``: truncation ``h C'' / 2``,
  balanced near ``h ~ eps_mach^(1/2)``; one shared pass at ``theta``.
- **complex step** ``Im C(theta + i h e_k) / h``: the forward pass runs in
  complex arithmetic (:attr:`bpnet.activations.Activation.f_complex`,
  :attr:`bpnet.losses.Loss.value_complex`); no difference is taken, so nothing
  cancels and ``h = 1e-20`` gives the derivative to rounding.  ReLU and leaky
  ReLU are not holomorphic: they are extended through the real part and take
  backprop's one-sided slope at an exact kink (see :mod:`bpnet.activations`).
- **forward mode** pushes a tangent (the dual part of a dual number) through the
  network beside the values: ``dz_l = da_{l-1} @ W_l + a_{l-1} @ dW_l + db_l``,
  ``da_l = f_l'(z_l) * dz_l`` with the same derivative-from-the-output
  functions backprop uses, and ``dC = sum(delta_L * dz_L)`` with backprop's
  fused ``delta_L`` (BP1).  Tangents known to be zero are skipped, as forward-
  mode automatic differentiation does with symbolic zeros.  It shares the
  derivative formulas with backprop, so it checks how backprop chains them
  (BP2-BP4: the transposes, the sums over samples), not the formulas; the
  complex step checks those as well.

Steps (:func:`default_eps`, :func:`step_sizes`).  Unless ``eps`` is given, the
step of parameter ``k`` is ``eps_mach^(1/3) * max(1, |theta_k|)`` for central
and ``eps_mach^(1/2) * max(1, |theta_k|)`` for forward differences (6.1e-6 and
1.5e-8 in float64, 4.9e-3 and 3.5e-4 in float32, for parameters up to 1 in
size), and ``1e-20`` for the complex step, where any ``h`` with ``h^2 <<
eps_mach`` would do.  A given ``eps`` is the step of every parameter, unscaled.
Differences are divided by the step actually taken, ``(theta + h) - theta`` in
the parameters' dtype (which removes the representation error of ``theta + h``);
a step below the spacing of the floats at ``theta`` changes nothing, and the
quotient is then 0.

Cost.  On backends whose arrays can be written to, each tensor is copied once
and a perturbation is one item assignment on that private copy (undone after
its passes); loss values stay on the device until one final transfer.

:func:`numerical_partials_batched` is the strongest numerical baseline of each
method: many perturbations per batched forward pass, starting from the
perturbed layer (see its notes).  The ``*_partials`` variants work on chosen
flat positions (the order of :class:`bpnet.params.Layout`), which is how the
benchmarks time a sample of a large network and extrapolate.
:func:`kink_crossings` says which central or forward differences straddled a
ReLU kink, for :func:`bpnet.gradcheck.gradcheck`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from . import kernels
from ._typing import Arch, Array, DiffMethod
from .backend import device_of, is_writeable, lazy, to_numpy
from .numeric_passes import (
    check_complex,
    complex_cost,
    dual_cost,
    tail_loss,
    tail_tangent,
    to_complex,
)
from .params import Layout, Slot

__all__ = [
    "COMPLEX_STEP",
    "METHODS",
    "check_method",
    "default_eps",
    "kink_crossings",
    "n_passes",
    "numerical_grad",
    "numerical_grad_batched",
    "numerical_partials",
    "numerical_partials_batched",
    "step_sizes",
]

Params = Sequence[tuple[Array, Array]]

#: The numerical methods, in the order of the table above.
METHODS: tuple[str, ...] = ("central", "forward", "complex_step", "forward_mode")

#: Default complex step: far below sqrt(eps_mach) in float32 and float64 alike,
#: far above the smallest normal numbers (Squire & Trapp 1998 used 1e-20).
COMPLEX_STEP = 1e-20

#: Default bound on the elements of one stacked activation in
#: :func:`numerical_partials_batched` (16 MiB in float64).
MAX_ELEMENTS = 2**21

_ROOT = {"central": 1.0 / 3.0, "forward": 0.5}


def check_method(method: Any) -> DiffMethod:
    """``method`` if it is one of :data:`METHODS`.

    Raises
    ------
    ValueError
        Naming the valid methods.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of: {', '.join(METHODS)}")
    return method  # type: ignore[return-value]  # one of METHODS, checked above


def n_passes(method: str, n_params: int) -> int:
    """Forward passes one gradient of ``n_params`` parameters costs: 2P
    (central), P + 1 (forward), P complex (complex step), P dual (forward mode)."""
    check_method(method)
    return {"central": 2 * n_params, "forward": n_params + 1}.get(method, n_params)


def default_eps(xp: ModuleType, dtype: Any, method: str = "central") -> float:
    """The step's base size for ``method`` in ``dtype``, before it is scaled by
    each parameter's magnitude (see :func:`step_sizes`).

    ``eps_mach^(1/3)`` for central differences (6.1e-6 in float64, 4.9e-3 in
    float32), ``eps_mach^(1/2)`` for forward differences (1.5e-8, 3.5e-4): the
    steps that balance truncation and rounding error.  :data:`COMPLEX_STEP`
    (1e-20) for the complex step, which has no rounding term to balance.

    Raises
    ------
    ValueError
        For ``forward_mode``, which takes no step.
    """
    check_method(method)
    if method == "forward_mode":
        raise ValueError("method 'forward_mode' is exact and takes no step (eps)")
    if method == "complex_step":
        return COMPLEX_STEP
    return float(xp.finfo(dtype).eps) ** _ROOT[method]


def _check_indices(indices: Sequence[int], total: int) -> list[int]:
    ks = [int(k) for k in indices]
    if ks and not 0 <= min(ks) <= max(ks) < total:
        raise IndexError(f"parameter indices must lie in [0, {total}), got {min(ks)}..{max(ks)}")
    return ks


def step_sizes(
    params: Params, indices: Sequence[int], *, method: str = "central",
    eps: float | None = None, xp: ModuleType,
) -> np.ndarray:
    """The step of each parameter at ``indices`` (host float64 array).

    ``eps`` for every parameter when it is given; otherwise
    ``default_eps * max(1, |theta_k|)`` for central and forward differences
    (one transfer of the parameters to the host) and :data:`COMPLEX_STEP` for
    the complex step.
    """
    check_method(method)
    if method == "forward_mode":
        if eps is not None:
            raise ValueError("method 'forward_mode' is exact and takes no step: leave eps=None")
        return np.zeros(len(indices))
    ks = np.asarray(indices, dtype=np.int64)
    if eps is not None:
        return np.full(ks.shape, float(eps))
    base = default_eps(xp, params[0][0].dtype, method)
    if method == "complex_step":
        return np.full(ks.shape, base)
    theta = _host_theta(params, xp)[ks].astype(np.float64)
    return base * np.maximum(1.0, np.abs(theta))


def _host_theta(params: Params, xp: ModuleType) -> np.ndarray:
    return to_numpy(Layout.of(params).ravel(params, xp=xp))


def _taken(theta: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(theta_k + h_k) - theta_k`` in the parameters' dtype (``theta`` is their
    host copy at the perturbed positions): the step the perturbed pass really
    took, since ``theta + h`` rounds."""
    return (theta + h.astype(theta.dtype)) - theta


def _replace(params: Params, slot: Slot, t: Array) -> list[tuple[Array, Array]]:
    """``params`` with the tensor at ``slot`` replaced by ``t`` (nothing copied)."""
    tree = [tuple(p) for p in params]
    pair = list(tree[slot.layer])
    pair[slot.which] = t
    tree[slot.layer] = tuple(pair)
    return tree


def _locate(params: Params, slots: Sequence[Slot], starts: list[int],
            k: int) -> tuple[int, Slot, Array, int]:
    """Flat position ``k``: (slot number, slot, its tensor, position in the tensor)."""
    i = bisect.bisect_right(starts, k) - 1
    slot = slots[i]
    return i, slot, params[slot.layer][slot.which], k - slot.start


def _entry(slot: Slot, local: int) -> tuple[int, ...]:
    """The index of a tensor's ``local``-th entry (row-major)."""
    return divmod(local, slot.shape[1]) if len(slot.shape) == 2 else (local,)


def _unit(slot: Slot, local: int, t: Array, xp: ModuleType) -> Array:
    """A tensor shaped like ``t``, 1 at its ``local``-th entry and 0 elsewhere, for
    immutable arrays, which cannot be written in place (one entry, compared with
    a Python int: no host transfer, unlike the batched rows of :func:`_one_hot`)."""
    hot = xp.astype(xp.arange(slot.size, device=device_of(t)) == local, t.dtype)
    return xp.reshape(hot, t.shape)


def _passes(params: Params, ks: list[int], shifts: Sequence[Sequence[Any]],
            cost: Callable[[list], Array], xp: ModuleType) -> list[list[Array]]:
    """``cost`` of the network with ``theta_k`` moved by each shift, one
    parameter at a time: ``out[j][i] = cost(theta + shifts[j][i] e_{ks[i]})``.

    Shifts are Python scalars (real, or complex for the complex step).  On
    writable arrays each tensor is copied once and the entry is written and
    restored; JAX's immutable arrays get a one-hot step instead (O(size) work).
    """
    slots = Layout.of(params).slots
    starts = [s.start for s in slots]
    out: list[list[Array]] = [[] for _ in shifts]
    writable = is_writeable(params[0][0])
    copies: dict[int, tuple[list, Array]] = {}  # slot -> (tree holding the copy, copy)
    for pos, k in enumerate(ks):
        i, slot, t, local = _locate(params, slots, starts, k)
        if writable:
            if i not in copies:
                c = xp.asarray(t, copy=True)
                copies[i] = (_replace(params, slot, c), c)
            tree, c = copies[i]
            idx = _entry(slot, local)
            for j, shift in enumerate(shifts):
                c[idx] = t[idx] + shift[pos]
                out[j].append(cost(tree))
            c[idx] = t[idx]  # undone exactly: the copy is reused for the next entry
        else:
            hot = _unit(slot, local, t, xp)
            for j, shift in enumerate(shifts):
                out[j].append(cost(_replace(params, slot, t + shift[pos] * hot)))
    return out


def _on_device(values: np.ndarray, like: Array, xp: ModuleType) -> Array:
    return xp.asarray(values.tolist(), dtype=like.dtype, device=device_of(like))


def _safe(taken: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """The step taken, or the nominal one where the step vanished (the quotient
    is then 0 / nominal = 0: no step, no information)."""
    return np.where(taken == 0, nominal.astype(taken.dtype), taken)


def _forward_mode(params: Params, x: Array, y: Array, arch: Arch, ks: list[int],
                  alpha: float, xp: ModuleType) -> list[Array]:
    """One dual pass per parameter, its tangent seeded with a one-hot tensor."""
    slots = Layout.of(params).slots
    starts = [s.start for s in slots]
    writable = is_writeable(params[0][0])
    zeros: dict[int, Array] = {}
    out = []
    for k in ks:
        i, slot, t, local = _locate(params, slots, starts, k)
        if writable:
            if i not in zeros:
                zeros[i] = xp.zeros(t.shape, dtype=t.dtype, device=device_of(t))
            dt = zeros[i]
            idx = _entry(slot, local)
            dt[idx] = 1.0
            out.append(dual_cost(params, (slot.layer, slot.which, dt), x, y, arch, alpha, xp))
            dt[idx] = 0.0
        else:
            seed = (slot.layer, slot.which, _unit(slot, local, t, xp))
            out.append(dual_cost(params, seed, x, y, arch, alpha, xp))
    return out


# --- the naive loops ---------------------------------------------------------------------
def numerical_partials(
    params: Params, x: Array, y: Array, arch: Arch, indices: Sequence[int], *,
    method: str = "central", alpha: float = 0.0, eps: float | None = None, xp: ModuleType,
) -> Array:
    """The partial derivatives of the loss at flat positions ``indices``, one
    parameter at a time, by ``method`` (see the module docstring).

    Parameters
    ----------
    params, x, y, arch, alpha
        As for :func:`bpnet.kernels.loss_and_grad`.
    indices : sequence of int
        Positions in the flat parameter vector (the order of
        :class:`bpnet.params.Layout`: ``W_1`` row-major, ``b_1``, ``W_2``...).
    method : {"central", "forward", "complex_step", "forward_mode"}
    eps : float, optional
        Step of every parameter; by default each its own (:func:`step_sizes`).
        Must be None for ``forward_mode``.
    xp : namespace

    Returns
    -------
    array (len(indices),)
        In the parameters' dtype, on their device.

    Raises
    ------
    ValueError
        For an unknown method, an ``eps`` for ``forward_mode``, or a complex step
        through an activation or loss without a complex extension.
    TypeError
        For the complex step on a backend without complex dtypes.
    """
    check_method(method)
    params = [tuple(p) for p in params]
    ks = _check_indices(indices, Layout.of(params).n_params)
    dtype = params[0][0].dtype
    if method == "complex_step":
        check_complex(arch, xp, dtype)
    h = step_sizes(params, ks, method=method, eps=eps, xp=xp)
    if not ks:
        return xp.zeros((0,), dtype=dtype, device=device_of(params[0][0]))
    # Dask: computed once here; views of an unpersisted result computed one
    # by one trip dask.distributed's key checks (dask/dask#9888).
    return lazy.persist(xp, _naive(params, x, y, arch, ks, h, method, alpha, xp))


def _naive(params: Params, x: Array, y: Array, arch: Arch, ks: list[int], h: np.ndarray,
           method: str, alpha: float, xp: ModuleType) -> Array:
    """The loops of :func:`numerical_partials`, for checked arguments."""
    like = params[0][0]
    dtype = like.dtype
    if method == "forward_mode":
        return xp.astype(xp.stack(_forward_mode(params, x, y, arch, ks, alpha, xp)), dtype)
    if method == "complex_step":
        tree, xc, yc = to_complex(params, x, y, check_complex(arch, xp, dtype), xp)
        (values,) = _passes(tree, ks, [(1j * h).tolist()], lambda t: complex_cost(
            t, xc, yc, arch, alpha, xp), xp)
        # the imaginary part of theta + i h is h itself, rounded to the dtype
        return xp.astype(xp.imag(xp.stack(values)) / _on_device(h, like, xp), dtype)

    def cost(tree: Params) -> Array:  # looked up at call time, so tests can count the passes
        return kernels.loss_value(tree, x, y, arch, alpha=alpha, xp=xp)

    theta = _host_theta(params, xp)[ks]
    if method == "central":
        plus, minus = _passes(params, ks, [h.tolist(), (-h).tolist()], cost, xp)
        taken = _taken(theta, h) - _taken(theta, -h)
        diff = xp.stack(plus) - xp.stack(minus)
        return xp.astype(diff / _on_device(_safe(taken, 2 * h), like, xp), dtype)
    base = cost(params)  # forward differences: the one shared pass at theta
    (plus,) = _passes(params, ks, [h.tolist()], cost, xp)
    taken = _taken(theta, h)
    return xp.astype((xp.stack(plus) - base) / _on_device(_safe(taken, h), like, xp), dtype)


def numerical_grad(
    params: Params, x: Array, y: Array, arch: Arch, *, method: str = "central",
    alpha: float = 0.0, eps: float | None = None, xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """The gradient of the loss by ``method``, one parameter at a time.

    ``central`` (the default) costs 2P forward passes, ``forward`` P + 1,
    ``complex_step`` P complex passes and ``forward_mode`` P dual passes.

    Parameters
    ----------
    params, x, y, arch, alpha
        As for :func:`bpnet.kernels.loss_and_grad`.
    method, eps, xp
        As for :func:`numerical_partials`.

    Returns
    -------
    list of (dW, db)
        Same shapes, dtype and device as ``params``.
    """
    layout = Layout.of(params)
    flat = numerical_partials(params, x, y, arch, range(layout.n_params), method=method,
                              alpha=alpha, eps=eps, xp=xp)
    return layout.unravel(flat, xp=xp)


# --- which differences straddled a kink ---------------------------------------------------
def kink_crossings(
    params: Params, x: Array, arch: Arch, indices: Sequence[int] | None = None, *,
    method: str = "central", eps: float | None = None, xp: ModuleType,
) -> np.ndarray:
    """Which parameters' difference quotient moved a pre-activation across a
    point where its activation is not differentiable (a ReLU kink).

    For each parameter the perturbed passes of ``method`` are repeated exactly
    (same steps, same arithmetic), and the side of every kink each hidden
    pre-activation lies on, ``z > c``, is compared with its side at ``theta``.
    A quotient that crossed averages two slopes, and disagrees with backprop's
    one-sided derivative without either being wrong.  The complex step (whose
    real part stays at ``theta``) and forward mode never cross.

    Parameters
    ----------
    params, x, arch, xp
        As for :func:`numerical_partials`; the targets play no part.
    indices : sequence of int, optional
        Flat positions (all parameters by default).
    method, eps
        Those of the differences to be judged.

    Returns
    -------
    numpy.ndarray of bool (len(indices),)
    """
    check_method(method)
    params = [tuple(p) for p in params]
    total = Layout.of(params).n_params
    ks = _check_indices(range(total) if indices is None else indices, total)
    kinked = [bool(act.kinks) for act in arch.hidden]
    if method not in ("central", "forward") or not any(kinked) or not ks:
        return np.zeros(len(ks), dtype=bool)

    def sides(tree: Params) -> list[Array]:
        a, out = x, []
        for l, ((W, b), act) in enumerate(zip(tree[:-1], arch.hidden, strict=True)):
            z = a @ W + b  # as kernels.forward computes it, bit for bit
            out += [z > c for c in act.kinks] if kinked[l] else []
            a = act.f(z, xp)
        return out

    at_theta = sides(params)

    def crossed(tree: Params) -> Array:
        moved = [xp.any(s != s0) for s, s0 in zip(sides(tree), at_theta, strict=True)]
        return xp.any(xp.stack(moved))

    h = step_sizes(params, ks, method=method, eps=eps, xp=xp)
    shifts = [h.tolist(), (-h).tolist()] if method == "central" else [h.tolist()]
    flags = _passes(params, ks, shifts, crossed, xp)
    return np.logical_or.reduce([to_numpy(xp.stack(f)) for f in flags], axis=0)


# --- the batched variants -------------------------------------------------------------------
def _one_hot(positions: np.ndarray, width: int, dtype: Any, device: Any,
             xp: ModuleType) -> Array:
    """(K, width) rows with a one at each of the K host-side ``positions``."""
    pos = xp.asarray(positions.tolist(), device=device)
    return xp.astype(pos[:, None] == xp.arange(width, device=device)[None, :], dtype)


def numerical_partials_batched(
    params: Params, x: Array, y: Array, arch: Arch, indices: Sequence[int], *,
    method: str = "central", alpha: float = 0.0, eps: float | None = None,
    max_elements: int = MAX_ELEMENTS, xp: ModuleType,
) -> Array:
    """The partials at ``indices`` by ``method``, many perturbations per batched
    forward pass.

    Parameters
    ----------
    params, x, y, arch, indices, method, alpha, eps, xp
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
    The complex step stacks ``z_l + i h dZ`` and runs the rest in complex
    arithmetic; forward mode pushes the tangents ``dZ`` alone.  Every loss is
    still evaluated at ``theta +- h e_k`` (``theta + i h e_k``); only the work
    that the perturbation cannot change is shared.  The steps are the nominal
    ones (the perturbation is applied to ``z``, not to ``theta``).
    """
    check_method(method)
    params = [tuple(p) for p in params]
    layout = Layout.of(params)
    ks = _check_indices(indices, layout.n_params)
    W0 = params[0][0]
    dtype, dev = W0.dtype, device_of(W0)
    cdt = check_complex(arch, xp, dtype) if method == "complex_step" else None
    if method == "forward_mode" and eps is not None:
        raise ValueError("method 'forward_mode' is exact and takes no step: leave eps=None")
    # Steps on the device, from the perturbed entries themselves: a Python
    # scalar when every step is the same (a given eps, the complex step).
    fixed = None if method == "forward_mode" else (
        float(eps) if eps is not None else default_eps(xp, dtype, method))
    scaled = eps is None and method in ("central", "forward")
    if not ks:
        return xp.zeros((0,), dtype=dtype, device=dev)
    n = x.shape[0]
    a, z_out = kernels.forward(params, x, arch.hidden, xp=xp)
    penalty = 0.5 * alpha / n
    l2 = kernels.l2_penalty(params, alpha, n, xp) if alpha else 0.0  # the penalty at theta
    if method == "forward":
        base = arch.loss.value(z_out, y, arch.out, xp) + l2
    if method == "forward_mode":
        _, delta = arch.loss.value_and_delta(z_out, y, arch.out, xp)
    if cdt is not None:
        ctree, _, yc = to_complex(params, x, y, cdt, xp)

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
                w = xp.sum((rows @ W) * cols, axis=1)  # W[i_k, j_k], (K,)
                theta_k = w
                if not alpha:
                    w = None
            else:  # b_l[j]: column j moves by h
                hot = _one_hot(part, n_out, dtype, dev, xp)
                dz = hot[:, None, :]
                w, theta_k = None, hot @ b
            hs, H = fixed, fixed
            if scaled:  # default_eps * max(1, |theta_k|), as step_sizes has it
                hs = fixed * xp.maximum(xp.abs(theta_k), 1.0)
                H = xp.reshape(hs, (-1, 1, 1))
            if method == "central":
                c_plus = tail_loss(z_l + H * dz, l, params, y, arch, xp)
                c_minus = tail_loss(z_l - H * dz, l, params, y, arch, xp)
                if w is not None:  # the L2 term at the perturbed weights
                    c_plus = c_plus + (l2 + penalty * ((w + hs) ** 2 - w * w))
                    c_minus = c_minus + (l2 + penalty * ((w - hs) ** 2 - w * w))
                parts.append((c_plus - c_minus) / (2.0 * hs))  # type: ignore[operator]
            elif method == "forward":
                c_plus = tail_loss(z_l + H * dz, l, params, y, arch, xp)
                if w is not None:
                    c_plus = c_plus + (l2 + penalty * ((w + hs) ** 2 - w * w))
                elif alpha:
                    c_plus = c_plus + l2
                parts.append((c_plus - base) / hs)
            elif method == "complex_step":
                zc = xp.astype(z_l, cdt) + (H * 1j) * xp.astype(dz, cdt)  # type: ignore[operator]
                c = tail_loss(zc, l, ctree, yc, arch, xp, complex_=True)
                im = xp.imag(c)
                if w is not None:  # Im of the L2 term at w + i h: 2 w h
                    im = im + penalty * 2.0 * w * hs
                parts.append(im / hs)
            else:
                d = tail_tangent(dz, l, a, params, delta, arch, xp)
                parts.append(d + (alpha / n) * w if w is not None else d)
    flat = xp.astype(xp.concat(parts), dtype)
    if np.any(order != np.arange(order.shape[0])):  # back to the caller's order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.shape[0])
        flat = xp.take(flat, xp.asarray(inverse.tolist(), device=dev))
    # Dask: computed once here; views of an unpersisted result computed one
    # by one trip dask.distributed's key checks (dask/dask#9888).
    return lazy.persist(xp, flat)


def numerical_grad_batched(
    params: Params, x: Array, y: Array, arch: Arch, *, method: str = "central",
    alpha: float = 0.0, eps: float | None = None, max_elements: int = MAX_ELEMENTS,
    xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """The gradient by ``method``, evaluated in batched forward passes (see
    :func:`numerical_partials_batched`).

    Same arguments and result as :func:`numerical_grad`, plus ``max_elements``,
    the memory bound of one chunk of perturbations.
    """
    layout = Layout.of(params)
    flat = numerical_partials_batched(params, x, y, arch, range(layout.n_params),
                                      method=method, alpha=alpha, eps=eps,
                                      max_elements=max_elements, xp=xp)
    return layout.unravel(flat, xp=xp)

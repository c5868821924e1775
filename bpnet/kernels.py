"""Forward and backward passes of a multilayer perceptron, batched, written once.

Rows are samples.  With ``a_0 = x`` (N, n_0) and layer ``l = 1..L`` holding
``W_l`` (n_{l-1}, n_l) and ``b_l`` (n_l,)::

    forward   z_l = a_{l-1} @ W_l + b_l,    a_l = f_l(z_l)
    BP1       delta_L = dC/dz_L                     (fused with the loss, see losses.py)
    BP2       delta_l = (delta_{l+1} @ W_{l+1}.T) * f_l'(z_l)
    BP3       dC/db_l = sum over samples of delta_l   (= 1^T @ delta_l)
    BP4       dC/dW_l = a_{l-1}.T @ delta_l

``C`` is the mean loss over the N samples; the 1/N is folded into ``delta_L``.

Every function here takes the array namespace as ``xp``: no backend imports, no
host synchronisation.  The composite operations (``a @ W + b``, the Hadamard
product of BP2, the gradient products) go through an :class:`~bpnet.ops.Ops`,
:data:`~bpnet.ops.PORTABLE` by default: then every function is pure and the
same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict.  A
backend's twin (:mod:`bpnet.backend.fast`) may fuse those operations or write
into arrays the kernel created itself, never into the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._typing import Arch, Array
from .activations import Activation
from .backend.select import count_dtype
from .ops import PORTABLE, Ops

__all__ = ["backward", "forward", "l2_penalty", "loss_and_grad", "loss_value", "metrics",
           "predict", "sample_weights"]

Params = Sequence[tuple[Array, Array]]


def forward(
    params: Params, x: Array, hidden: Sequence[Activation], *, xp: ModuleType,
    ops: Ops = PORTABLE,
) -> tuple[list[Array], Array]:
    """Run the network and keep what the backward pass needs.

    Parameters
    ----------
    params : sequence of (W, b)
        ``W_l`` (n_{l-1}, n_l), ``b_l`` (n_l,), for l = 1..L.
    x : array (N, n_0)
    hidden : sequence of Activation, length L - 1
        Activations of the hidden layers.
    xp : namespace
    ops : Ops
        The composite operations (see :mod:`bpnet.ops`).

    Returns
    -------
    a : list of arrays
        ``[a_0 = x, a_1, ..., a_{L-1}]``: the input and every hidden activation,
        ``a_l`` of shape (N, n_l).
    z_L : array (N, n_L)
        Pre-activation of the output layer; the loss applies the output activation.
    """
    a = [x]
    for (W, b), act in zip(params[:-1], hidden, strict=True):
        a.append(ops.affine_activate(a[-1], W, b, act, xp))
    W_L, b_L = params[-1]
    return a, ops.affine(a[-1], W_L, b_L, xp)


def backward(
    params: Params, a: Sequence[Array], delta: Array, hidden: Sequence[Activation],
    *, xp: ModuleType, ops: Ops = PORTABLE, out: Params | None = None,
) -> list[tuple[Array, Array]]:
    """Back-propagate ``delta_L`` and return the gradient of every layer.

    Parameters
    ----------
    params : sequence of (W, b), length L
    a : sequence of arrays, length L
        ``[a_0, ..., a_{L-1}]`` from :func:`forward`.
    delta : array (N, n_L)
        ``delta_L = dC/dz_L`` from the loss (BP1).
    hidden : sequence of Activation, length L - 1
    xp : namespace
    ops : Ops
    out : sequence of (dW, db) buffers, optional
        Where ``ops`` writes the gradients when it can (``ops.writes_out``).

    Returns
    -------
    list of (dW, db)
        Same shapes as ``params``.
    """
    # One row of ones serves BP3 of every layer (see Ops.grad_b).
    ones = ops.ones_row(delta, xp)
    grads = []
    for l in range(len(params) - 1, -1, -1):
        gW, gb = (None, None) if out is None else out[l]
        grads.append((ops.grad_w(a[l], delta, gW, xp), ops.grad_b(ones, delta, gb, xp)))
        if l > 0:  # the input layer needs no delta
            delta = delta @ params[l][0].T  # BP2: back through W_l ...
            if hidden[l - 1].df is not None:  # ... then times f'(z_{l-1}), read off a_{l-1}
                delta = ops.times_df(delta, a[l], hidden[l - 1], xp)
    grads.reverse()
    return grads


def l2_penalty(params: Params, alpha: float, n: Any, xp: ModuleType,
               ops: Ops = PORTABLE) -> Array:
    """``alpha / (2n) * sum ||W||^2`` over the weights (not the biases), a 0-d array."""
    return (0.5 * alpha / n) * sum(ops.sq_norm(W, xp) for W, _ in params)


def loss_and_grad(
    params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0, xp: ModuleType,
    w: Array | None = None, n: Any = None, ops: Ops = PORTABLE, out: Params | None = None,
    keep_output: bool = False,
) -> tuple[Array, list[tuple[Array, Array]]] | tuple[Array, list[tuple[Array, Array]], Array]:
    """Mean loss over the batch and its gradient with respect to every parameter.

    Parameters
    ----------
    params : sequence of (W, b)
    x : array (N, n_0)
    y : array (N, n_L)
        Targets, already in the form ``arch.loss`` expects (one-hot for
        cross-entropy).
    arch : Arch
        Hidden activations, output activation and loss.
    alpha : float, default 0
        L2 penalty ``alpha / (2N) * sum ||W||^2`` on the weights (not the biases),
        scikit-learn's convention.
    xp : namespace
    w : array (N, 1), optional
        Weight of each sample in the mean, summing to 1 (see
        :mod:`bpnet.losses`); None for the plain mean, 1/N each.
    n : int or 0-d array, optional
        The N of the penalty when ``w`` is given (the number of real samples of
        a padded batch); ``x.shape[0]`` by default.
    ops : Ops
        The composite operations (see :mod:`bpnet.ops`).
    out : sequence of (dW, db) buffers, optional
        Where ``ops`` writes the gradients when it can.
    keep_output : bool, default False
        Also return the output pre-activation ``z_L`` (N, n_L) of the forward
        pass, safe from what the loss's twin may overwrite
        (:meth:`~bpnet.ops.Ops.keep_output`): a training step counts its right
        predictions from it without a second forward pass.

    Returns
    -------
    loss : 0-d array
    grads : list of (dW, db)
        Same shapes as ``params``.
    z_L : array (N, n_L)
        Only with ``keep_output``.
    """
    a, z = forward(params, x, arch.hidden, xp=xp, ops=ops)
    kept = ops.keep_output(arch.loss, z, xp) if keep_output else None
    value, delta = ops.value_and_delta(arch.loss, z, y, arch.out, xp, w)
    grads = backward(params, a, delta, arch.hidden, xp=xp, ops=ops, out=out)
    if alpha:
        n = x.shape[0] if n is None else n
        value = value + l2_penalty(params, alpha, n, xp, ops)
        c = alpha / n
        grads = [(ops.axpby(dW, 1.0, W, c, xp), db)
                 for (dW, db), (W, _) in zip(grads, params, strict=True)]
    return (value, grads, kept) if keep_output else (value, grads)


def loss_value(
    params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0, xp: ModuleType,
    w: Array | None = None, n: Any = None,
) -> Array:
    """The mean loss alone (one forward pass), as a 0-d array; ``w`` and ``n`` as
    for :func:`loss_and_grad`."""
    _, z = forward(params, x, arch.hidden, xp=xp)
    value = arch.loss.value(z, y, arch.out, xp, w)
    if alpha:
        value = value + l2_penalty(params, alpha, x.shape[0] if n is None else n, xp)
    return value


def sample_weights(sw: Array, total: float) -> tuple[Array, float]:
    """Per-sample weights ``sw`` (N, 1) of a batch as :func:`loss_and_grad` takes
    them: ``(sw / total, total)``, scikit-learn's normalisation (the weighted
    mean ``sum_i sw_i l_i / sum_i sw_i``, the penalty ``alpha / (2 sum_i sw_i)
    * sum ||W||^2``).  ``total`` is ``sum_i sw_i`` (a Python float, summed on the
    host).  A batch of total weight 0 weighs nothing and adds no penalty: its
    gradient is 0 (scikit-learn divides by zero there)."""
    if total > 0:
        return sw * (1.0 / total), total
    return sw * 0.0, math.inf


def predict(params: Params, x: Array, arch: Arch, *, xp: ModuleType) -> Array:
    """Network output (N, n_L): probabilities for the two cross-entropies."""
    _, z = forward(params, x, arch.hidden, xp=xp)
    return arch.loss.predict(z, arch.out, xp)


def metrics(
    params: Params, x: Array, y: Array, arch: Arch, *, batch_size: int | None = None,
    xp: ModuleType, sw: Array | None = None, total: float | None = None,
) -> tuple[Array, Array | None]:
    """Mean loss and number of correctly classified samples on (x, y).

    Parameters
    ----------
    params, x, y, arch, xp
        As for :func:`loss_and_grad`.
    batch_size : int or None
        Rows per forward pass (all at once for None), to bound memory.
    sw : array (N, 1), optional
        Per-sample weights; then the mean and the count are weighted.
    total : float, optional
        ``sum(sw)``, summed on the host (with ``sw``).

    Returns
    -------
    loss : 0-d array
        Mean loss over the samples (no L2 penalty), weighted by ``sw`` when given.
    correct : 0-d array or None
        Samples whose prediction is right (see :attr:`bpnet.losses.Loss.correct`),
        counted in an integer dtype (:func:`bpnet.backend.count_dtype`: exact
        where a float32 count stops at 2^24), or with ``sw`` the sum of their
        weights (floating); None for a regression loss.  Dividing by the sample
        count (the total weight) is left to the host.
    """
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    loss_sum, right = None, None
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        xb, yb = x[lo:hi, ...], y[lo:hi, ...]
        _, z = forward(params, xb, arch.hidden, xp=xp)
        if sw is None:
            part = arch.loss.value(z, yb, arch.out, xp) * (hi - lo)
        else:  # each part a share of the whole weighted mean
            part = arch.loss.value(z, yb, arch.out, xp,
                                   sw[lo:hi, ...] * (1.0 / total))  # type: ignore[operator]
        loss_sum = part if loss_sum is None else loss_sum + part
        if arch.loss.correct is not None:
            hit = arch.loss.correct(z, yb, xp)
            if sw is None:
                c = xp.sum(xp.astype(hit, count_dtype(xp)))
            else:
                c = xp.sum(xp.astype(hit, sw.dtype) * sw[lo:hi, 0])
            right = c if right is None else right + c
    return (loss_sum / n if sw is None else loss_sum), right

"""Naive numerical differentiation: the baseline that backpropagation beats.

:func:`numerical_grad` perturbs one parameter at a time and runs two full forward
passes for each (central differences), so a gradient costs 2P forward passes for
P parameters.  It is deliberately naive, but not needlessly slow: on backends
whose arrays can be written to, the perturbation is one item assignment on a
private copy, and the 2P loss values stay on the device until one final transfer.

:func:`gradcheck` compares backprop with it in float64 and reports the largest
relative error of each tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

from . import kernels
from ._namespace import device_of, to_numpy
from .activations import Activation
from .losses import Loss

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["GradcheckReport", "default_eps", "gradcheck", "numerical_grad"]

Array = Any

#: Fraction of the largest gradient entry below which a tensor's scale is not
#: used to judge its error (see :func:`gradcheck`).
FLOOR = 1e-3


def default_eps(xp: ModuleType, dtype: Any) -> float:
    """Step that balances truncation and rounding error for central differences:
    the cube root of the dtype's machine epsilon (6e-6 in float64, 5e-3 in float32)."""
    return float(xp.finfo(dtype).eps) ** (1.0 / 3.0)


def _perturbed(t: Array, k: int, step: float, writable: bool, xp: ModuleType) -> Array:
    """A copy of ``t`` with its k-th element (row-major) moved by ``step``."""
    if writable:
        c = xp.asarray(t, copy=True)
        idx = tuple(int(i) for i in np.unravel_index(k, t.shape))
        c[idx] = c[idx] + step
        return c
    # Immutable arrays (JAX): add a one-hot step; O(size) extra work per entry.
    size = int(np.prod(t.shape))
    hot = xp.astype(xp.arange(size, device=device_of(t)) == k, t.dtype)
    return t + step * xp.reshape(hot, t.shape)


def numerical_grad(
    params: Sequence[tuple[Array, Array]], x: Array, y: Array, hidden: Sequence[Activation],
    out: Activation, loss: Loss, *, alpha: float = 0.0, eps: float | None = None,
    xp: ModuleType,
) -> list[tuple[Array, Array]]:
    """Central finite differences, one parameter at a time.

    ``g_k = (C(theta + eps e_k) - C(theta - eps e_k)) / (2 eps)`` for every one of
    the P parameters: 2P forward passes.

    Parameters
    ----------
    params, x, y, hidden, out, loss, alpha
        As for :func:`bpnet.kernels.loss_and_grad`.
    eps : float, optional
        Step; defaults to :func:`default_eps` for the parameters' dtype.
    xp : namespace

    Returns
    -------
    list of (dW, db)
        Same shapes, dtype and device as ``params``.
    """
    params = [tuple(p) for p in params]
    dtype = params[0][0].dtype
    h = default_eps(xp, dtype) if eps is None else float(eps)
    writable = array_api_compat.is_writeable_array(params[0][0])

    def cost(tree):
        return kernels.loss_value(tree, x, y, hidden, out, loss, alpha=alpha, xp=xp)

    diffs: list[Array] = []  # C(+) - C(-) per parameter, kept on the device
    for l, layer in enumerate(params):
        for j, t in enumerate(layer):
            for k in range(int(np.prod(t.shape))):
                values = []
                for step in (h, -h):
                    tree = list(params)
                    pair = list(layer)
                    pair[j] = _perturbed(t, k, step, writable, xp)
                    tree[l] = tuple(pair)
                    values.append(cost(tree))
                diffs.append(values[0] - values[1])
    flat = xp.stack(diffs) / (2.0 * h)
    grads = []
    start = 0
    for W, b in params:
        gW = xp.reshape(flat[start:start + int(np.prod(W.shape))], W.shape)
        start += int(np.prod(W.shape))
        gb = flat[start:start + b.shape[0]]
        start += b.shape[0]
        grads.append((xp.astype(gW, dtype), xp.astype(gb, dtype)))
    return grads


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    """``max|a - b| / max(max|a|, max|b|, floor)``: the largest difference,
    relative to the tensor's scale (0 when both are zero).

    ``floor`` keeps a tensor whose gradient is tiny next to the others from being
    judged on rounding noise alone.
    """
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    scale = max(scale, floor)
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b))) / scale


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`.

    Attributes
    ----------
    errors : dict of str to float
        Largest relative error of each tensor, keyed ``"W1"``, ``"b1"``, ...
    tol : float
        Threshold each error is held to.
    eps : float
        Finite-difference step used.
    n_params : int
    dtype : str
        Dtype the check ran in (float64 unless the backend lacks it).
    """

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6
    eps: float = 0.0
    n_params: int = 0
    dtype: str = "float64"

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tol

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        lines = [f"gradient check ({self.n_params} parameters, {self.dtype}, eps={self.eps:.1e})"]
        for name, err in self.errors.items():
            mark = "ok" if err <= self.tol else "FAIL"
            lines.append(f"  {name:>4}  max relative error {err:.2e}  {mark}")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"  {verdict}: max relative error {self.max_error:.2e} (tolerance {self.tol:.0e})"
        )
        return "\n".join(lines)


def gradcheck(
    net: MLP, X: Any, Y: Any, *, eps: float | None = None, tol: float = 1e-6
) -> GradcheckReport:
    """Compare the backprop gradient of ``net`` on (X, Y) with central differences.

    The check runs on a float64 copy of the network, on its backend when that
    backend has float64 and on NumPy otherwise, so a float32 network is checked
    without float32 rounding drowning the comparison.  ``net`` is not changed.

    Parameters
    ----------
    net : MLP
    X : array (N, n_0)
    Y : array
        Targets as accepted by ``net.loss_and_grad``.
    eps : float, optional
        Finite-difference step (default: cube root of float64 epsilon).
    tol : float, default 1e-6
        Largest relative error that passes.

    Notes
    -----
    Each tensor's error is ``max|g_bp - g_fd|`` divided by the tensor's largest
    entry, or by 1e-3 of the largest entry of the whole gradient when that is
    bigger, so rounding noise on a tensor with tiny gradients is not reported as
    a mismatch.

    Returns
    -------
    GradcheckReport
        Truthy when the check passed; ``str()`` gives a readable table.
    """
    try:
        twin = net.astype("float64")
    except (TypeError, ValueError):
        twin = net.astype("float64", backend="numpy")
    _, bp = twin.loss_and_grad(X, Y)
    fd = twin.numerical_grad(X, Y, eps=eps)
    report = GradcheckReport(
        tol=tol,
        eps=default_eps(twin.xp, twin.dtype) if eps is None else float(eps),
        n_params=twin.n_params,
        dtype="float64",
    )
    bp_host = [to_numpy(g) for pair in bp for g in pair]
    fd_host = [to_numpy(g) for pair in fd for g in pair]
    # Tensors are judged against their own scale, but never against less than
    # 1e-3 of the largest gradient entry: central differences carry an absolute
    # error of about eps_machine * |C| / eps that says nothing about backprop.
    floor = FLOOR * max(float(np.max(np.abs(g), initial=0.0)) for g in bp_host)
    for i, (g, f) in enumerate(zip(bp_host, fd_host, strict=True)):
        name = f"{'Wb'[i % 2]}{i // 2 + 1}"
        report.errors[name] = relative_error(g, f, floor)
    return report

"""Gradient checking: backpropagation against naive central differences, with a
readable report.

:func:`gradcheck` runs both on a float64 copy of a network and reports the
largest relative error of each tensor, judged against the tensor's own scale
(see :func:`relative_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import to_numpy
from .finite_diff import default_eps

__all__ = ["FLOOR", "GradcheckReport", "gradcheck", "relative_error"]

#: Fraction of the largest gradient entry below which a tensor's scale is not
#: used to judge its error (see :func:`gradcheck`).
FLOOR = 1e-3


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
    net: Any, X: Any, Y: Any, *, eps: float | None = None, tol: float = 1e-6
) -> GradcheckReport:
    """Compare the backprop gradient of ``net`` on (X, Y) with central differences.

    The check runs on a float64 copy of the network, on its backend when that
    backend has float64 and on NumPy otherwise, so a float32 network is checked
    without float32 rounding drowning the comparison.  ``net`` is not changed.

    Parameters
    ----------
    net : MLP
        Used through its public methods (``astype``, ``loss_and_grad``,
        ``numerical_grad``) only.
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

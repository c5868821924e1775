"""Gradient checking: backpropagation against numerical differentiation, with a
readable report; and the error-against-step picture.

:func:`gradcheck` runs backprop and one numerical method
(:mod:`bpnet.finite_diff`) on a float64 copy of a network and reports the
largest relative error of each tensor, judged against the tensor's own scale
(see :func:`relative_error`).  It never cries wolf on a correct ReLU network:
a central or forward difference whose step moved a pre-activation across a
kink averages the slopes on the two sides, so such parameters are found
(:func:`bpnet.finite_diff.kink_crossings`), counted and left out of the
verdict rather than reported as backprop's mistakes.

:func:`eps_sweep` measures how the error of forward, central and complex step
differences against backprop changes with the step, in float32 and float64:
the V-shaped curves of truncation error falling and rounding error rising
(:func:`bpnet.plot.eps_sweep` draws them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import finite_diff
from . import inputs as v
from ._typing import ArrayLike, DiffMethod
from .backend import to_numpy

if TYPE_CHECKING:
    from .model import MLP

__all__ = [
    "DEFAULT_TOL",
    "FLOOR",
    "SWEEP_EPS",
    "EpsSweep",
    "GradcheckReport",
    "eps_sweep",
    "gradcheck",
    "relative_error",
]

#: Fraction of the largest gradient entry below which a tensor's scale is not
#: used to judge its error (see :func:`gradcheck`).
FLOOR = 1e-3

#: Largest relative error that passes, per method, in float64: central
#: differences err by ~1e-10 (O(eps^2) + rounding / eps), forward differences by
#: ~1e-7 (O(eps)), the complex step and forward mode by rounding alone.
DEFAULT_TOL: dict[str, float] = {
    "central": 1e-6, "forward": 1e-4, "complex_step": 1e-11, "forward_mode": 1e-11,
}

#: The steps of :func:`eps_sweep`: 1e-1, 10^-1.5, 1e-2, ..., 1e-16 (half decades).
SWEEP_EPS: tuple[float, ...] = tuple(10.0 ** (-k / 2) for k in range(2, 33))

_LABELS = {"central": "central differences", "forward": "forward differences",
           "complex_step": "complex step", "forward_mode": "forward mode"}


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
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`.

    Attributes
    ----------
    errors : dict of str to float
        Largest relative error of each tensor, keyed ``"W1"``, ``"b1"``, ...,
        over the parameters compared; NaN for a tensor none of whose
        parameters could be compared (every one crossed a kink).
    tol : float
        Threshold each error is held to.
    eps : float or None
        Base step (each parameter's is scaled by ``max(1, |theta|)`` unless
        ``eps`` was given); None for forward mode.
    n_params : int
    dtype : str
        Dtype the check ran in (float64 unless the backend lacks it).
    method : str
        The numerical method (see :data:`bpnet.finite_diff.METHODS`).
    crossed : dict of str to int
        Parameters of each tensor whose difference quotient moved a
        pre-activation across a kink of ``kinked``: not compared.
    kinked : tuple of str
        Names of the hidden activations with kinks (ReLU...).
    scaled : bool
        Whether each parameter's step was scaled by its magnitude.
    sizes : dict of str to int
        Parameters in each tensor.
    """

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6
    eps: float | None = 0.0
    n_params: int = 0
    dtype: str = "float64"
    method: str = "central"
    crossed: dict[str, int] = field(default_factory=dict)
    kinked: tuple[str, ...] = ()
    scaled: bool = False
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def n_crossed(self) -> int:
        """Parameters left out because their difference crossed a kink."""
        return sum(self.crossed.values())

    @property
    def max_error(self) -> float:
        """Largest error over the compared tensors."""
        return max((e for e in self.errors.values() if not math.isnan(e)), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tol

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.eps is None:
            step = "no step"
        else:
            step = f"eps={self.eps:.1e}" + (" x max(1, |theta|)" if self.scaled else "")
        lines = [f"gradient check ({self.n_params} parameters, {self.dtype}, "
                 f"{_LABELS.get(self.method, self.method)}, {step})"]
        for name, err in self.errors.items():
            crossed = self.crossed.get(name, 0)
            if math.isnan(err):
                lines.append(f"  {name:>4}  not compared: all {crossed} parameters crossed a kink")
                continue
            mark = "ok" if err <= self.tol else "FAIL"
            note = f"  ({crossed} of {self.sizes.get(name, '?')} crossed a kink)" if crossed else ""
            lines.append(f"  {name:>4}  max relative error {err:.2e}  {mark}{note}")
        if self.n_crossed:
            many = self.n_crossed != 1
            lines.append(
                f"  {self.n_crossed} parameter{'s' if many else ''} crossed a "
                f"{'/'.join(self.kinked)} kink within +-eps and {'were' if many else 'was'} "
                f"not compared: a difference quotient across a kink averages the slopes on "
                f"its two sides (method='complex_step' checks them too)")
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"  {verdict}: max relative error {self.max_error:.2e} (tolerance {self.tol:.0e})"
        )
        return "\n".join(lines)


def _float64_twin(net: MLP) -> MLP:
    """A float64 copy of ``net`` on its backend, or on NumPy when that backend
    has no float64 (JAX without its 64-bit mode)."""
    try:
        return net.astype("float64")
    except (TypeError, ValueError):
        return net.astype("float64", backend="numpy")


def gradcheck(
    net: MLP, X: ArrayLike, Y: ArrayLike, *, method: DiffMethod = "central",
    eps: float | None = None,
    tol: float | None = None, exclude_kinks: bool = True,
) -> GradcheckReport:
    """Compare the backprop gradient of ``net`` on (X, Y) with ``method``.

    The check runs on a float64 copy of the network, on its backend when that
    backend has float64 and on NumPy otherwise, so a float32 network is checked
    without float32 rounding drowning the comparison.  ``net`` is not changed.

    Parameters
    ----------
    net : MLP
        Used through its public methods and attributes only.
    X : array (N, n_0)
    Y : array
        Targets as accepted by ``net.loss_and_grad``.
    method : {"central", "forward", "complex_step", "forward_mode"}
        The numerical method (see :mod:`bpnet.finite_diff`).
    eps : float, optional
        Step of every parameter (default: each its own, see
        :func:`bpnet.finite_diff.step_sizes`); None for forward mode.
    tol : float, optional
        Largest relative error that passes (default: :data:`DEFAULT_TOL` of
        the method: 1e-6 for central differences).
    exclude_kinks : bool, default True
        Leave out, and count, the parameters whose central or forward
        difference moved a pre-activation across a ReLU kink.

    Notes
    -----
    Each tensor's error is ``max|g_bp - g_num|`` divided by the tensor's largest
    entry, or by 1e-3 of the largest entry of the whole gradient when that is
    bigger, so rounding noise on a tensor with tiny gradients is not reported as
    a mismatch.

    Returns
    -------
    GradcheckReport
        Truthy when the check passed; ``str()`` gives a readable table.

    Examples
    --------
    >>> net = bpnet.MLP([3, 5, 2], activation="tanh", loss="cross_entropy", seed=0)
    >>> X, y = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0, 1, 1, 0])
    >>> report = bpnet.gradcheck(net, X, y)
    >>> report.passed, report.n_params, report.max_error < 1e-8
    (True, 32, True)
    >>> print(report)  # doctest: +ELLIPSIS
    gradient check (32 parameters, float64, central differences, eps=...)
        W1  max relative error ...  ok
    ...
      PASSED: max relative error ... (tolerance 1e-06)
    """
    method = finite_diff.check_method(method)
    if tol is None:
        tol = DEFAULT_TOL[method]
    twin = _float64_twin(net)
    _, bp = twin.loss_and_grad(X, Y)
    num = twin.numerical_grad(X, Y, eps=eps, method=method)
    crossed = np.zeros(twin.n_params, dtype=bool)
    kinked = tuple(dict.fromkeys(act.name for act in twin.arch.hidden if act.kinks))
    if exclude_kinks and kinked:
        x = v.as_input(X, n_features=twin.n_features, backend=twin.backend, xp=twin.xp,
                       device=twin.device, dtype=twin.dtype)
        crossed = finite_diff.kink_crossings(twin.params, x, twin.arch, method=method,
                                             eps=eps, xp=twin.xp)
    base = None
    if method != "forward_mode":
        base = finite_diff.default_eps(twin.xp, twin.dtype, method) if eps is None else eps
    report = GradcheckReport(
        tol=float(tol), eps=None if base is None else float(base), n_params=twin.n_params,
        dtype="float64", method=method, kinked=kinked,
        scaled=eps is None and method in ("central", "forward"),
    )
    bp_host = [to_numpy(g) for pair in bp for g in pair]
    num_host = [to_numpy(g) for pair in num for g in pair]
    # Tensors are judged against their own scale, but never against less than
    # 1e-3 of the largest gradient entry: central differences carry an absolute
    # error of about eps_machine * |C| / eps that says nothing about backprop.
    floor = FLOOR * max(float(np.max(np.abs(g), initial=0.0)) for g in bp_host)
    start = 0
    for i, (g, f) in enumerate(zip(bp_host, num_host, strict=True)):
        name = f"{'Wb'[i % 2]}{i // 2 + 1}"
        keep = ~crossed[start:start + g.size]
        start += g.size
        report.sizes[name] = g.size
        if not keep.all():
            report.crossed[name] = int(g.size - keep.sum())
        if g.size and not keep.any():
            report.errors[name] = math.nan
        else:
            report.errors[name] = relative_error(g.ravel()[keep], f.ravel()[keep], floor)
    return report


# --- error against step ------------------------------------------------------------------
@dataclass
class EpsSweep:
    """Result of :func:`eps_sweep`.

    Attributes
    ----------
    eps : numpy.ndarray (E,)
        The steps, every parameter the same (unscaled).
    errors : dict of (method, dtype) to numpy.ndarray (E,)
        ``max_k |g_num,k - g_bp,k| / max_k |g_bp,k|`` at each step, against
        float64 backprop at the very same parameters and data.
    theory : dict of (method, dtype) to float
        The step the theory balances truncation and rounding at
        (:func:`bpnet.finite_diff.default_eps`): ``eps_mach^(1/3)`` for
        central, ``eps_mach^(1/2)`` for forward differences.
    title : str
        What was differentiated, e.g. ``"3-8-2 tanh, cross_entropy, 32 samples"``.
    """

    eps: np.ndarray
    errors: dict[tuple[str, str], np.ndarray]
    theory: dict[tuple[str, str], float]
    title: str = ""

    def best(self, method: str, dtype: str) -> float:
        """The step of smallest error for ``method`` in ``dtype``."""
        return float(self.eps[int(np.nanargmin(self.errors[method, dtype]))])

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values, e.g. for ``json.dump``."""
        return {"eps": self.eps.tolist(), "title": self.title,
                "errors": {f"{m} {d}": e.tolist() for (m, d), e in self.errors.items()},
                "theory": {f"{m} {d}": t for (m, d), t in self.theory.items()}}

    def __str__(self) -> str:
        keys = list(self.errors)
        head = f"{'eps':>8}" + "".join(f"  {_short(m)} {d[5:]:>2}".rjust(13) for m, d in keys)
        lines = [f"relative error against backprop ({self.title})", head]
        for i, e in enumerate(self.eps):
            lines.append(f"{e:>8.1e}" + "".join(f"{self.errors[k][i]:>13.1e}" for k in keys))
        for key in keys:
            if key in self.theory:
                lines.append(f"  {_LABELS[key[0]]}, {key[1]}: smallest error at eps = "
                             f"{self.best(*key):.1e} (theory {self.theory[key]:.1e})")
        return "\n".join(lines)


def _short(method: str) -> str:
    return {"central": "central", "forward": "forward", "complex_step": "complex"}.get(
        method, method)


def _rounded(a: Any, dtype: str) -> Any:
    """Host copy of floating data rounded to ``dtype`` (labels unchanged)."""
    host = np.asarray(to_numpy(a))
    if np.issubdtype(host.dtype, np.floating):
        return host.astype(dtype).astype(np.float64)
    return host


def eps_sweep(
    net: MLP, X: ArrayLike, Y: ArrayLike, *,
    methods: Sequence[DiffMethod] = ("forward", "central", "complex_step"),
    dtypes: Sequence[str] = ("float32", "float64"), eps: Sequence[float] = SWEEP_EPS,
) -> EpsSweep:
    """The error of each method against backprop as the step shrinks.

    For each dtype, the network's parameters and the data are rounded to it;
    the numerical gradient is computed in that dtype (complex64/complex128 for
    the complex step) by the naive method at every step, and compared with
    float64 backprop at the same rounded parameters and data, so what is
    measured is the method's error, not the rounding of its inputs.

    Parameters
    ----------
    net : MLP
    X, Y : arrays
        As for ``net.loss_and_grad``.
    methods : sequence of {"forward", "central", "complex_step"}
    dtypes : sequence of {"float32", "float64"}
    eps : sequence of float
        Steps (default :data:`SWEEP_EPS`: 1e-1 ... 1e-16 in half decades), used
        unscaled for every parameter.

    Returns
    -------
    EpsSweep
    """
    methods = [finite_diff.check_method(m) for m in methods]
    if "forward_mode" in methods:
        raise ValueError("forward_mode takes no step: nothing to sweep")
    steps = np.asarray([v.check_positive("eps", e) for e in eps], dtype=np.float64)
    errors: dict[tuple[str, str], np.ndarray] = {}
    theory: dict[tuple[str, str], float] = {}
    for dtype in dtypes:
        try:
            twin = net.astype(dtype)
        except (TypeError, ValueError):
            twin = net.astype(dtype, backend="numpy")
        ref = _float64_twin(twin)  # the same rounded parameters, in float64
        Xd, Yd = _rounded(X, dtype), _rounded(Y, dtype)
        _, bp = ref.loss_and_grad(Xd, Yd)
        g = np.concatenate([to_numpy(t).ravel() for pair in bp for t in pair])
        scale = float(np.max(np.abs(g)))
        for method in methods:
            if method != "complex_step":
                theory[method, dtype] = finite_diff.default_eps(twin.xp, twin.dtype, method)
            row = []
            for h in steps:
                num = twin.numerical_grad(Xd, Yd, eps=float(h), method=method)
                f = np.concatenate([to_numpy(t).astype(np.float64).ravel()
                                    for pair in num for t in pair])
                row.append(float(np.max(np.abs(f - g))) / scale if scale else 0.0)
            errors[method, dtype] = np.asarray(row)
    sizes = "-".join(map(str, net.layer_sizes))
    title = f"{sizes} {net.activation}, {net.loss}, {np.shape(to_numpy(X))[0]} samples"
    return EpsSweep(steps, errors, theory, title)

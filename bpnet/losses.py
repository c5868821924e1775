"""Losses, each fused with its output activation.

A loss sees the output layer's pre-activation ``z`` (N, k) and the targets ``y``
(N, k), already validated and converted to the net's dtype and device.  It
returns the mean over the N samples of the per-sample cost and ``delta_L``, the
gradient of that mean with respect to ``z`` (BP1).  Given weights ``w`` (N, 1)
that sum to 1, the mean is the weighted one, ``sum_n w_n c_n``, and ``delta_L``
its gradient (rows of weight 0 contribute nothing: that is how a padded batch
is masked); without, every sample weighs 1/N.  Fusing the output activation
with its loss gives the short, stable forms:

==========================  ==============  ===================================
loss                        output          delta_L (times N)
==========================  ==============  ===================================
``mse``                     identity        ``a - y``
``mse``                     sigmoid / tanh  ``(a - y) * f'(z)``
``logistic``                identity        ``-y * sigmoid(-y * a)``
``cross_entropy``           softmax         ``softmax(z) - y``
``binary_cross_entropy``    sigmoid         ``sigmoid(z) - y``
``poisson``                 exp             ``exp(z) - y``
==========================  ==============  ===================================

``poisson`` is the half Poisson deviance with its log link, scikit-learn's
``MLPRegressor(loss="poisson")``: with the mean ``mu = exp(z)``, the cost
``y log(y / mu) - y + mu = exp(z) - y z + (y log y - y)``, computed from ``z``
(no exp-then-log round trip); the constant makes a perfect fit cost 0, as in
scikit-learn's reported loss.  Targets must be >= 0.  For large ``z``,
``exp(z)`` overflows to inf: the loss is then inf (never NaN), which the
training loop's finiteness checks turn into a clear error.

Every ``value`` also accepts ``z`` with leading dimensions, (..., N, k) against
``y`` (N, k), and then returns one loss per leading index: the batched finite
differences in :mod:`bpnet.finite_diff` evaluate many perturbed networks at once
that way.  Reductions therefore run over the last two axes, never over all.

``value_complex`` is each loss extended analytically to complex ``z`` (and
complex targets holding real values), for complex step differentiation: the
same formulas with the output activation's ``f_complex``, ``r * r`` rather than
``|r|^2`` (which is not holomorphic), and the cross-entropy's log-sum-exp
shifted by the row maximum of ``Re z``, a real constant, so the shift is exact
(``max`` itself has no complex extension).  Every loss is holomorphic in ``z``;
only the ReLU family among the hidden activations is not (see
:mod:`bpnet.activations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ._typing import Array
from .activations import Activation, get_activation, sigmoid, softplus, softplus_complex

__all__ = ["BUILTIN_LOSSES", "LOSSES", "TARGETS", "Loss", "custom_loss", "get_loss",
           "log_softmax", "output_activation", "softmax"]


def log_softmax(z: Array, xp: ModuleType) -> Array:
    """Row-wise ``log(softmax(z))`` with the row maximum subtracted (log-sum-exp)."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax(z: Array, xp: ModuleType) -> Array:
    """Row-wise softmax of ``z`` (N, k); never overflows."""
    return xp.exp(log_softmax(z, xp))


def _sum(t: Array, xp: ModuleType) -> Array:
    """Sum over samples and outputs (the last two axes), keeping any leading ones."""
    return xp.sum(t, axis=(-2, -1))


def _mean(t: Array, w: Array | None, xp: ModuleType) -> Array:
    """The (weighted) mean over samples of the per-sample sums over outputs of ``t``."""
    return _sum(t, xp) / _n(t) if w is None else _sum(t * w, xp)


def _per_sample(delta: Array, w: Array | None) -> Array:
    """``delta`` of the summed costs as the gradient of their (weighted) mean."""
    return delta / _n(delta) if w is None else delta * w


@dataclass(frozen=True)
class Loss:
    """A mean-over-samples loss fused with its output activation.

    Attributes
    ----------
    name : str
    default_output : str
        Output activation used when the user gives none.
    outputs : tuple of str
        Output activations this loss accepts.
    targets : {"real", "sign", "labels", "binary", "nonnegative"}
        What the targets must be (checked at the public boundary).
    value_and_delta : callable ``(z, y, out, xp, w=None) -> (loss, delta)``
        ``loss`` is a 0-d array, ``delta`` is dLoss/dz of shape (N, k); ``w``
        (N, 1) weighs the samples (see above).
    value : callable ``(z, y, out, xp, w=None) -> loss``
        The loss alone (forward only).
    predict : callable ``(z, out, xp) -> a``
        The network output: probabilities for the cross-entropies.
    correct : callable ``(z, y, xp) -> bool array (N,)`` or None
        Which samples the network classifies right, from the output
        pre-activation; None for regression losses.  A sample with several
        outputs counts only when every output is right (subset accuracy).
    value_complex : callable ``(z, y, out, xp) -> loss`` or None
        ``value`` extended analytically to complex ``z`` (complex step only);
        None when the loss has no such extension.
    """

    name: str
    default_output: str
    outputs: tuple[str, ...]
    targets: str
    value_and_delta: Callable[..., tuple[Array, Array]]
    value: Callable[..., Array]
    predict: Callable[[Array, Activation, ModuleType], Array]
    correct: Callable[[Array, Array, ModuleType], Array] | None = None
    value_complex: Callable[[Array, Array, Activation, ModuleType], Array] | None = None


def _n(z: Array) -> int:
    return z.shape[-2]


# --- mse: (1/N) sum_n 1/2 ||a_n - y_n||^2 ------------------------------------
def _mse_value(z: Array, y: Array, out: Activation, xp: ModuleType,
               w: Array | None = None) -> Array:
    r = out.f(z, xp) - y
    return _sum(r * r, xp) * (0.5 / _n(z)) if w is None else 0.5 * _mean(r * r, w, xp)


def _mse_value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                         w: Array | None = None) -> tuple[Array, Array]:
    a = out.f(z, xp)
    r = a - y
    loss = _sum(r * r, xp) * (0.5 / _n(z)) if w is None else 0.5 * _mean(r * r, w, xp)
    delta = r if out.df is None else r * out.df(a, xp)
    return loss, _per_sample(delta, w)


# --- logistic: (1/N) sum_n sum_k log(1 + exp(-y a)), y in {-1, +1} ------------
def _logistic_value(z: Array, y: Array, out: Activation, xp: ModuleType,
                    w: Array | None = None) -> Array:
    return _mean(softplus(-y * z, xp), w, xp)


def _logistic_value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                              w: Array | None = None) -> tuple[Array, Array]:
    u = -y * z
    loss = _mean(softplus(u, xp), w, xp)
    return loss, _per_sample(-y * sigmoid(u, xp), w)


# --- cross_entropy: (1/N) sum_n -log softmax(z_n)[label_n] ---------------------
def _ce_value(z: Array, y: Array, out: Activation, xp: ModuleType,
              w: Array | None = None) -> Array:
    t = y * log_softmax(z, xp)
    return _sum(t, xp) * (-1.0 / _n(z)) if w is None else -_mean(t, w, xp)


def _ce_value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    e = xp.exp(shifted)
    s = xp.sum(e, axis=-1, keepdims=True)
    t = y * (shifted - xp.log(s))  # log-sum-exp
    loss = _sum(t, xp) * (-1.0 / _n(z)) if w is None else -_mean(t, w, xp)
    return loss, _per_sample(e / s - y, w)  # softmax from the same exponentials


# --- binary_cross_entropy: (1/N) sum_n sum_k -[y log s + (1-y) log(1-s)] -------
# -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z, stable for any z.
def _bce_value(z: Array, y: Array, out: Activation, xp: ModuleType,
               w: Array | None = None) -> Array:
    return _mean(softplus(z, xp) - y * z, w, xp)


def _bce_value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                         w: Array | None = None) -> tuple[Array, Array]:
    # softplus and sigmoid written out to share log(1 + exp(-|z|)): on tiny
    # layers every elementwise call saved is ~1 us of a ~20 us step.
    log1p_e = xp.log1p(xp.exp(-xp.abs(z)))  # exp(-|z|) lies in (0, 1]
    loss = _mean(xp.maximum(z, 0.0) + log1p_e - y * z, w, xp)  # softplus(z) - y z
    s = xp.exp(xp.minimum(z, 0.0) - log1p_e)  # sigmoid(z) = exp(min(z, 0)) / (1 + exp(-|z|))
    return loss, _per_sample(s - y, w)


# --- poisson: (1/N) sum_n sum_k exp(z) - y z + (y log y - y), y >= 0 ---------------
def _xlogy_minus_y(y: Array, xp: ModuleType) -> Array:
    """``y log y - y`` with ``0 log 0 = 0``: the deviance's constant."""
    positive = y > 0
    return xp.where(positive, y * xp.log(xp.where(positive, y, xp.ones_like(y))),
                    xp.zeros_like(y)) - y


def _poisson_value(z: Array, y: Array, out: Activation, xp: ModuleType,
                   w: Array | None = None) -> Array:
    return _mean(xp.exp(z) - y * z + _xlogy_minus_y(y, xp), w, xp)


def _poisson_value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                             w: Array | None = None) -> tuple[Array, Array]:
    mu = xp.exp(z)
    loss = _mean(mu - y * z + _xlogy_minus_y(y, xp), w, xp)
    return loss, _per_sample(mu - y, w)


def _predict_exp(z: Array, out: Activation, xp: ModuleType) -> Array:
    return xp.exp(z)


# --- analytic extensions to complex z (complex step only) ------------------------
def _mse_value_complex(z: Array, y: Array, out: Activation, xp: ModuleType) -> Array:
    r = out.f_complex(z, xp) - y  # type: ignore[misc]
    return _sum(r * r, xp) * (0.5 / _n(z))  # r * r, not |r|^2: holomorphic


def _logistic_value_complex(z: Array, y: Array, out: Activation, xp: ModuleType) -> Array:
    return _sum(softplus_complex(-y * z, xp), xp) / _n(z)


def _ce_value_complex(z: Array, y: Array, out: Activation, xp: ModuleType) -> Array:
    # log-sum-exp shifted by a real constant per row (any constant is exact)
    shifted = z - xp.max(xp.real(z), axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return _sum(y * log_p, xp) * (-1.0 / _n(z))


def _bce_value_complex(z: Array, y: Array, out: Activation, xp: ModuleType) -> Array:
    return _sum(softplus_complex(z, xp) - y * z, xp) / _n(z)


def _poisson_value_complex(z: Array, y: Array, out: Activation, xp: ModuleType) -> Array:
    # exp is holomorphic; the constant is real (y holds real values)
    return _sum(xp.exp(z) - y * z + _xlogy_minus_y(xp.real(y), xp), xp) / _n(z)


def _correct_label(z: Array, y: Array, xp: ModuleType) -> Array:
    return xp.argmax(z, axis=1) == xp.argmax(y, axis=1)


def _correct_binary(z: Array, y: Array, xp: ModuleType) -> Array:
    return xp.all((z > 0) == (y > 0.5), axis=1)


def _correct_sign(z: Array, y: Array, xp: ModuleType) -> Array:
    return xp.all(z * y > 0, axis=1)


def _predict_out(z: Array, out: Activation, xp: ModuleType) -> Array:
    return out.f(z, xp)


def _predict_softmax(z: Array, out: Activation, xp: ModuleType) -> Array:
    return softmax(z, xp)


#: Every loss by name, the built-in ones and those registered.
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("mse", "identity", ("identity", "sigmoid", "tanh"), "real",
             _mse_value_and_delta, _mse_value, _predict_out, None, _mse_value_complex),
        Loss("logistic", "identity", ("identity",), "sign",
             _logistic_value_and_delta, _logistic_value, _predict_out, _correct_sign,
             _logistic_value_complex),
        Loss("cross_entropy", "softmax", ("softmax",), "labels",
             _ce_value_and_delta, _ce_value, _predict_softmax, _correct_label,
             _ce_value_complex),
        Loss("binary_cross_entropy", "sigmoid", ("sigmoid",), "binary",
             _bce_value_and_delta, _bce_value, _predict_out, _correct_binary,
             _bce_value_complex),
        Loss("poisson", "exp", ("exp",), "nonnegative",
             _poisson_value_and_delta, _poisson_value, _predict_exp, None,
             _poisson_value_complex),
    )
}


#: The losses bpnet defines; :func:`bpnet.register_loss` adds others to :data:`LOSSES`.
BUILTIN_LOSSES: frozenset[str] = frozenset(LOSSES)

#: The kinds of targets a loss can take (see :attr:`Loss.targets`).
TARGETS: tuple[str, ...] = ("real", "sign", "labels", "binary", "nonnegative")


def custom_loss(
    name: str, cost: Callable[[Array, Array, ModuleType], Array],
    dcost: Callable[[Array, Array, ModuleType], Array], *, outputs: tuple[str, ...],
    targets: str, correct: Callable[[Array, Array, ModuleType], Array] | None,
) -> Loss:
    """A :class:`Loss` from a per-sample cost and its derivative with respect to the
    output, fused with each output activation by the chain rule written from the
    output, as the built-in losses are: ``delta_L = dcost(a, y) * f'(a)`` with
    ``a = f(z)`` (``f'`` read off ``a``; skipped for identity).

    Parameters
    ----------
    name : str
    cost : callable ``(a, y, xp) -> array``
        Per-sample, per-output cost, elementwise in ``a`` (..., N, k) and ``y``
        (N, k); bpnet sums it over outputs and averages it over samples.
    dcost : callable ``(a, y, xp) -> array``
        ``d cost / d a``, same shape as ``a``.
    outputs : tuple of str
        Output activations it may be fused with; the first is the default.
    targets : {"real", "sign", "labels", "binary"}
        What the targets are (checked and converted as for the built-in losses:
        ``labels`` arrive one-hot).
    correct : callable ``(z, y, xp) -> bool array (N,)`` or None
        Which samples are classified right (for accuracy); None: a regression loss.
    """

    def value(z: Array, y: Array, out: Activation, xp: ModuleType,
              w: Array | None = None) -> Array:
        return _mean(cost(out.f(z, xp), y, xp), w, xp)

    def value_and_delta(z: Array, y: Array, out: Activation, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
        a = out.f(z, xp)
        d = dcost(a, y, xp)
        delta = d if out.df is None else d * out.df(a, xp)
        return _mean(cost(a, y, xp), w, xp), _per_sample(delta, w)

    return Loss(name, outputs[0], tuple(outputs), targets, value_and_delta, value, _predict_out,
                correct)


def get_loss(name: str) -> Loss:
    """Look up a loss by name.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"loss must be a string, got {type(name).__name__}")
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of: {', '.join(LOSSES)}")
    return LOSSES[name]


def output_activation(loss: Loss, name: str | None) -> Activation:
    """The output activation for ``loss``: ``name`` if allowed, else its default.

    Softmax is not an elementwise :class:`Activation`; the cross-entropy's fused
    formulas apply it, so it maps to ``identity`` here; so does ``exp``, which
    the Poisson loss's formulas and prediction apply to ``z`` themselves.

    Raises
    ------
    ValueError
        When ``name`` is not an output this loss can be fused with.
    """
    chosen = loss.default_output if name is None else name
    if chosen == "logistic":
        chosen = "sigmoid"
    if chosen not in loss.outputs:
        raise ValueError(
            f"output_activation {name!r} cannot be used with loss {loss.name!r}; "
            f"expected one of: {', '.join(loss.outputs)} (or None for {loss.default_output!r})"
        )
    return get_activation("identity" if chosen in ("softmax", "exp") else chosen)

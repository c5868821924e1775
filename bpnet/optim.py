"""Optimizers, each written once: pure ``init`` and ``update`` functions; schedules;
L-BFGS through SciPy.

A first-order optimizer works on a parameter *structure*: either a tree, a list
of ``(W, b)`` pairs (see :mod:`bpnet.params`), or one flat vector of all the
parameters (see :class:`bpnet.params.Layout`).  Its state holds arrays of the
same structure beside a Python step count, in the style of
``jax.example_libraries.optimizers``::

    opt = SGD(momentum=0.9)
    state = opt.init(params, xp)
    params, state = opt.update(params, grads, state, 0.1, xp)

Each update rule is written once, as elementwise expressions of one array, and
mapped over the structure's arrays: over the 2L tensors of a tree, or over the
single flat vector, where a step is a dozen array operations instead of a dozen
per tensor (which structure a backend gets is decided in
:func:`bpnet.backend.fast.flat_updates`).  Nothing is updated in place and
nothing reads an array back to the host, so the same rule runs on every
backend, and under a compiler.

:func:`sgd_init`, :func:`sgd_update`, :func:`adam_init` and :func:`adam_update`
are the same rules as plain functions with the hyperparameters as keywords.

L-BFGS works on one flat float64 vector on the host: :func:`lbfgs` hands
SciPy's ``L-BFGS-B`` a function that returns the loss and its flat gradient,
as ``fmin_l_bfgs_b`` is used to fit small networks in the classic tutorials.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ._typing import Array
from .ops import PORTABLE, Ops

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamState",
    "Optimizer",
    "SGDState",
    "adam_init",
    "adam_update",
    "clip_by_global_norm",
    "lbfgs",
    "make_optimizer",
    "scheduled_lr",
    "sgd_init",
    "sgd_update",
]

#: Optimizer names accepted by :meth:`bpnet.MLP.fit`.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "lbfgs")

#: Learning-rate schedules accepted by :func:`scheduled_lr` (or pass a callable).
SCHEDULES: tuple[str, ...] = ("constant", "invscaling", "step", "cosine")

#: Learning rate used when none is given.
DEFAULT_LR: dict[str, float] = {"sgd": 0.1, "adam": 1e-3, "lbfgs": 1.0}

#: A parameter structure: a list of (W, b) pairs, or one flat array.
Structure = Any


def _map(f: Callable[..., Array], *structures: Structure) -> Structure:
    """``f`` applied to corresponding arrays of structures of one shape: every
    tensor of trees, or the arrays themselves when the structures are flat."""
    if not isinstance(structures[0], list):
        return f(*structures)
    # Written out for (W, b) pairs: on a tiny net a generic nested zip cost as
    # much as a tenth of the whole step.
    return [(f(*[p[0] for p in pairs]), f(*[p[1] for p in pairs]))
            for pairs in zip(*structures, strict=True)]


def _part(structure: Structure, i: int) -> Structure:
    """Field ``i`` of the tuples a :func:`_map` of a multi-output update gave."""
    if not isinstance(structure, list):
        return structure[i]
    return [(W[i], b[i]) for W, b in structure]


# --- SGD with (Nesterov) momentum ---------------------------------------------------


class SGDState(NamedTuple):
    """State of :class:`SGD`.

    Attributes
    ----------
    step : int
        Updates applied so far.
    velocity : structure of arrays, or None
        Shaped like the parameters; ``None`` for plain gradient descent.
    """

    step: int
    velocity: Structure | None


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with classical or Nesterov momentum.

    The velocity carries the learning rate, as in scikit-learn and Sutskever et
    al. (2013)::

        v <- mu v - lr g
        p <- p + v                  (classical momentum)
        p <- p + mu v - lr g        (Nesterov, with the new v)

    Attributes
    ----------
    momentum : float in [0, 1)
        ``mu``; 0 is plain gradient descent (no velocity is kept).
    nesterov : bool
    """

    momentum: float = 0.0
    nesterov: bool = False
    name: ClassVar[str] = "sgd"

    @property
    def key(self) -> tuple:
        """Name and the settings that shape the state: two optimizers with equal
        keys can continue each other's state."""
        return (self.name, (("momentum", self.momentum), ("nesterov", self.nesterov)))

    @property
    def has_state(self) -> bool:
        """Whether the update keeps arrays between steps (the velocity)."""
        return bool(self.momentum)

    def init(self, params: Structure, xp: ModuleType) -> SGDState:
        """Zero velocity shaped like ``params`` (none at all without momentum)."""
        return SGDState(0, _map(xp.zeros_like, params) if self.momentum else None)

    def update(self, params: Structure, grads: Structure, state: SGDState, lr: float,
               xp: ModuleType, ops: Ops = PORTABLE) -> tuple[Structure, SGDState]:
        """One step; returns the new parameters and state.  With :data:`PORTABLE`
        ops the inputs are not modified; an in-place twin updates the parameters
        and the velocity in place and may use the gradients as scratch."""
        if state.velocity is None:
            new = _map(lambda p, g: ops.axpby(p, 1.0, g, -lr, xp), params, grads)
            return new, SGDState(state.step + 1, None)
        mu, nesterov = self.momentum, self.nesterov
        pv = _map(lambda p, v, g: ops.momentum_update(p, v, g, mu, lr, nesterov, xp),
                  params, state.velocity, grads)
        return _part(pv, 0), SGDState(state.step + 1, _part(pv, 1))


# --- Adam -------------------------------------------------------------------------


class AdamState(NamedTuple):
    """State of :class:`Adam`.

    Attributes
    ----------
    step : int
        Updates applied so far (``t`` of the bias correction).
    m, v : structures of arrays
        Moving averages of the gradient and of its square, shaped like the
        parameters.
    """

    step: int
    m: Structure
    v: Structure


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015), with the bias correction folded into the step
    size, as in their section 2 and in scikit-learn::

        m <- b1 m + (1 - b1) g
        v <- b2 v + (1 - b2) g^2
        p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    The step size is a Python float computed from the step count ``t``, so the
    update never reads an array value back.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    name: ClassVar[str] = "adam"

    @property
    def key(self) -> tuple:
        """Name and the settings that shape the state (see :attr:`SGD.key`)."""
        return (self.name, (("beta1", self.beta1), ("beta2", self.beta2),
                            ("epsilon", self.epsilon)))

    @property
    def has_state(self) -> bool:
        """Whether the update keeps arrays between steps (the moments)."""
        return True

    def init(self, params: Structure, xp: ModuleType) -> AdamState:
        """Zero moments shaped like ``params``."""
        return AdamState(0, _map(xp.zeros_like, params), _map(xp.zeros_like, params))

    def update(self, params: Structure, grads: Structure, state: AdamState, lr: float,
               xp: ModuleType, ops: Ops = PORTABLE) -> tuple[Structure, AdamState]:
        """One step; returns the new parameters and state (see :meth:`SGD.update`
        for what an in-place twin of the ops modifies)."""
        t = state.step + 1
        b1, b2, eps = self.beta1, self.beta2, self.epsilon
        # t is a host int, except under a compiler, which traces the count too
        root = math.sqrt if isinstance(t, int) else xp.sqrt
        step_size = lr * root(1.0 - b2**t) / (1.0 - b1**t)
        pmv = _map(lambda p, m, v, g: ops.adam_update(p, m, v, g, b1, b2, step_size, eps, xp),
                   params, state.m, state.v, grads)
        return _part(pmv, 0), AdamState(t, _part(pmv, 1), _part(pmv, 2))


#: A first-order optimizer: :class:`SGD` or :class:`Adam`.
Optimizer = SGD | Adam


def make_optimizer(
    name: str, *, momentum: float = 0.9, nesterov: bool = False, beta1: float = 0.9,
    beta2: float = 0.999, epsilon: float = 1e-8,
) -> Optimizer:
    """The optimizer ``name`` with its hyperparameters (already validated) bound.

    Parameters
    ----------
    name : {"sgd", "adam"}
    momentum, nesterov
        For ``sgd``.
    beta1, beta2, epsilon
        For ``adam``.
    """
    if name == "sgd":
        return SGD(momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return Adam(beta1=beta1, beta2=beta2, epsilon=epsilon)
    raise ValueError(f"unknown first-order optimizer {name!r}; expected one of: sgd, adam")


# --- gradient clipping ----------------------------------------------------------------


def clip_by_global_norm(grads: Structure, max_norm: float, xp: ModuleType,
                        ops: Ops = PORTABLE) -> Structure:
    """``grads`` scaled by ``min(1, max_norm / (||grads|| + 1e-6))``, where
    ``||grads||`` is the L2 norm of all their entries together (the rule of
    ``torch.nn.utils.clip_grad_norm_``).

    The norm and the factor stay 0-d arrays on the device: clipping adds no
    host sync to a step.  With an in-place twin of the ops, the gradients are
    scaled in place (they belong to the step).

    Parameters
    ----------
    grads : list of (dW, db), or array (P,)
    max_norm : float
        Largest norm the gradient keeps.
    xp : namespace
    ops : Ops

    Returns
    -------
    Same structure as ``grads``.
    """
    leaves = [t for pair in grads for t in pair] if isinstance(grads, list) else [grads]
    sq = None
    for t in leaves:
        part = ops.sq_norm(t, xp)
        sq = part if sq is None else sq + part
    c = ops.clip_factor(sq, max_norm, xp)
    return _map(lambda g: ops.scale(g, c, xp), grads)


# --- the same rules as functions -------------------------------------------------------


def sgd_init(params: Structure, *, momentum: float = 0.0, xp: ModuleType) -> SGDState:
    """:meth:`SGD.init`."""
    return SGD(momentum=momentum).init(params, xp)


def sgd_update(params: Structure, grads: Structure, state: SGDState, *, lr: float,
               momentum: float = 0.0, nesterov: bool = False,
               xp: ModuleType) -> tuple[Structure, SGDState]:
    """:meth:`SGD.update`: one step of stochastic gradient descent.

    Parameters
    ----------
    params, grads : list of (W, b), or flat arrays
        Same shapes; arrays of one backend and device.
    state : SGDState
    lr : float
        Learning rate.
    momentum : float in [0, 1)
    nesterov : bool
    xp : namespace

    Returns
    -------
    params : same structure
    state : SGDState
    """
    return SGD(momentum=momentum, nesterov=nesterov).update(params, grads, state, lr, xp)


def adam_init(params: Structure, *, xp: ModuleType) -> AdamState:
    """:meth:`Adam.init`."""
    return Adam().init(params, xp)


def adam_update(params: Structure, grads: Structure, state: AdamState, *, lr: float,
                beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                xp: ModuleType) -> tuple[Structure, AdamState]:
    """:meth:`Adam.update`: one Adam step.

    Returns
    -------
    params : same structure as ``params``
    state : AdamState
    """
    return Adam(beta1=beta1, beta2=beta2, epsilon=epsilon).update(params, grads, state, lr, xp)


# --- learning-rate schedules ----------------------------------------------------------


def scheduled_lr(
    schedule: str | Callable[[int], float], lr: float, *, epoch: int, epochs: int,
    samples_seen: int = 0, power_t: float = 0.5, step_size: int = 10, gamma: float = 0.1,
) -> float:
    """The learning rate for one epoch.

    Parameters
    ----------
    schedule : str or callable
        ``"constant"``: ``lr``.
        ``"invscaling"``: ``lr / (samples_seen + 1) ** power_t``, where
        ``samples_seen`` counts the samples of all earlier epochs
        (scikit-learn's ``invscaling``).
        ``"step"``: ``lr * gamma ** (epoch // step_size)``.
        ``"cosine"``: ``lr * (1 + cos(pi * epoch / epochs)) / 2``, annealing
        towards 0 over the run.
        A callable ``f(epoch) -> float`` returns the rate itself.
    lr : float
        Initial learning rate.
    epoch : int
        Index of the epoch, from 0.
    epochs : int
        Epochs in the run.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When a callable schedule returns something that is not a positive,
        finite number.
    """
    if callable(schedule):
        value = schedule(epoch)
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value <= 0):
            raise ValueError(
                f"lr_schedule({epoch}) returned {value!r}; a schedule must return a "
                "learning rate > 0"
            )
        return float(value)
    if schedule == "constant":
        return lr
    if schedule == "invscaling":
        return lr / (samples_seen + 1) ** power_t
    if schedule == "step":
        return lr * gamma ** (epoch // step_size)
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"unknown lr_schedule {schedule!r}; expected one of: {', '.join(SCHEDULES)}")


# --- L-BFGS -----------------------------------------------------------------------------


def lbfgs(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, *,
    maxiter: int, tol: float | None = None, maxfun: int | None = None,
    callback: Callable[[np.ndarray, float], bool | None] | None = None,
    ftol: float | None = None, gtol: float | None = None,
) -> Any:
    """Minimise a function of one flat float64 vector with SciPy's L-BFGS-B.

    Parameters
    ----------
    value_and_grad : callable ``(theta (P,) float64) -> (float, (P,) float64)``
        The loss and its gradient; one call per evaluation.
    x0 : ndarray (P,)
        Starting point.
    maxiter : int
        Largest number of iterations.
    tol : float or None
        Both ``ftol`` (relative reduction of the loss) and ``gtol`` (largest
        gradient entry) of L-BFGS-B; ``None`` keeps SciPy's defaults
        (``ftol`` about 2.2e-9, ``gtol`` 1e-5).  ``0`` runs until ``maxiter``
        or until the line search can make no progress.
    maxfun : int or None
        Largest number of evaluations; defaults to ``20 * maxiter``, so that
        ``maxiter`` is what bounds the run.
    callback : callable ``(theta, loss) -> bool | None``
        Called after each iteration with the new point and its loss; returning
        True stops the run.
    ftol, gtol : float or None
        Set one criterion alone, over ``tol``: scikit-learn's estimators pass
        their ``tol`` as ``gtol`` only and leave ``ftol`` at SciPy's default.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``nit``, ``nfev``, ``message``, ``success``...

    Raises
    ------
    ImportError
        When SciPy is not installed.
    """
    try:
        from scipy.optimize import minimize
    except ImportError as exc:  # pragma: no cover - scipy is in the train extra
        raise ImportError(
            "optimizer 'lbfgs' needs SciPy, which is not installed; install it with: "
            "pip install 'bpnet[train]'"
        ) from exc
    options: dict[str, Any] = {"maxiter": int(maxiter),
                               "maxfun": int(maxfun if maxfun is not None else 20 * maxiter)}
    for name, value in (("ftol", tol if ftol is None else ftol),
                        ("gtol", tol if gtol is None else gtol)):
        if value is not None:
            options[name] = float(value)

    scipy_callback = None
    if callback is not None:
        def scipy_callback(intermediate_result: Any) -> None:
            if callback(intermediate_result.x, float(intermediate_result.fun)):
                raise StopIteration  # SciPy ends the run and returns the current point

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(theta)
        return float(value), np.asarray(grad, dtype=np.float64)

    return minimize(fun, np.asarray(x0, dtype=np.float64), jac=True, method="L-BFGS-B",
                    options=options, callback=scipy_callback)

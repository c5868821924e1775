"""The fit loop: minibatches indexed on the device, one host sync per epoch.

:func:`fit` moves the dataset to the network's backend and device once.  Each
epoch draws a permutation on the host with a seeded :class:`numpy.random.Generator`,
moves that one index vector to the device, reorders the data there with
``xp.take`` and walks over it in contiguous slices.  The loss of every batch
stays on the device and is summed there; the epoch ends with a single transfer
of a few scalars (training loss, a finiteness check of the weights, and the
validation loss and accuracy when there is validation data).

Optimizers are the pure updates of :mod:`bpnet.optim`; ``lbfgs`` hands the
flattened parameters to SciPy instead, with ``epochs`` bounding its iterations.

Stopping:

* ``tol`` (without ``early_stopping``): stop once ``patience`` consecutive epochs
  have failed to lower the best training loss by more than ``tol``.
* ``early_stopping=True`` with ``validation_data``: the same rule on the
  validation loss (``tol`` defaults to 0), and the weights of the best
  validation epoch are put back at the end.
* ``callback(epoch, history)`` returning True.
* A non-finite loss (or weights) raises :class:`FloatingPointError` naming the
  epoch; the network keeps the weights it had at the start of the last epoch
  whose loss was finite.
* ``KeyboardInterrupt``: the network keeps the weights of the last completed
  step, and the exception is re-raised with ``exc.history`` holding the epochs
  completed so far.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

from . import _validate as v
from . import kernels
from ._backends import loss_and_grad_fn
from ._namespace import materialize, to_numpy
from ._threads import blas_thread_policy
from .optim import (
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULES,
    Optimizer,
    lbfgs,
    make_optimizer,
    scheduled_lr,
    supports_inplace_views,
)
from .params import ravel, shapes, unraveler

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["History", "check_fit_options", "evaluate", "fit", "lbfgs_objective", "partial_fit"]

Array = Any
Tree = list[tuple[Array, Array]]

#: Losses whose outputs are class predictions, so an accuracy is reported.
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy", "logistic")


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch: the average over its batches, each
        weighted by its size, L2 penalty included.  For ``lbfgs``, the
        full-batch loss after each iteration.
    val_loss, val_accuracy : list of float
        Loss and accuracy on ``validation_data`` after each epoch (empty without
        validation data; accuracy only for classification losses).
    time : list of float
        Seconds since the start of the fit at the end of each epoch.
    lr : list of float
        Learning rate used in each epoch.
    optimizer : str
    n_samples : int
        Training samples per epoch.
    stopped_early : bool
        True when ``tol``, ``early_stopping`` or the callback ended the run
        before ``epochs``.
    stop_reason : str
        ``"epochs"``, ``"tol"``, ``"early_stopping"``, ``"callback"``, or for
        ``lbfgs`` SciPy's message.
    best_epoch : int or None
        Number (from 1) of the epoch with the lowest monitored loss: the
        validation loss when there is validation data, else the training loss.
        ``history.loss[history.best_epoch - 1]``.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    optimizer: str = ""
    n_samples: int = 0
    stopped_early: bool = False
    stop_reason: str = ""
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Epochs (L-BFGS iterations) completed."""
        return len(self.loss)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the whole run (0 before the first epoch)."""
        if not self.time or self.time[-1] <= 0:
            return 0.0
        return self.n_samples * self.epochs / self.time[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values, e.g. for ``json.dump``."""
        out = asdict(self)
        out["epochs"] = self.epochs
        return out


# --- options -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    optimizer: str
    lr: float
    epochs: int
    batch_size: int | None
    shuffle: bool
    seed: int | None
    alpha: float
    momentum: float
    nesterov: bool
    beta1: float
    beta2: float
    epsilon: float
    lr_schedule: str | Callable[[int], float]
    power_t: float
    lr_step_size: int
    lr_gamma: float
    early_stopping: bool
    patience: int
    tol: float | None
    progress: bool
    callback: Callable[[int, History], bool | None] | None

    def make_optimizer(self) -> Optimizer:
        return make_optimizer(self.optimizer, momentum=self.momentum, nesterov=self.nesterov,
                              beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)


def _check_options(
    *, optimizer, lr, epochs, batch_size, shuffle, seed, alpha, momentum, nesterov, beta1, beta2,
    epsilon, lr_schedule, power_t, lr_step_size, lr_gamma, early_stopping, patience, tol,
    progress, callback,
) -> _Options:
    optimizer = v.check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = DEFAULT_LR[optimizer] if lr is None else v.check_positive("lr", lr)
    if not callable(lr_schedule):
        lr_schedule = v.check_choice("lr_schedule", lr_schedule, SCHEDULES)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(epoch, history) or None, got {callback!r}")
    if tol is not None:
        tol = v.check_nonnegative("tol", tol)
    opts = _Options(
        optimizer=optimizer,
        lr=lr,
        epochs=v.check_positive("epochs", epochs, integer=True),
        batch_size=v.check_positive("batch_size", batch_size, integer=True, allow_none=True),
        shuffle=v.check_bool("shuffle", shuffle),
        seed=v.check_seed(seed),
        alpha=v.check_nonnegative("alpha", alpha),
        momentum=v.check_fraction("momentum", momentum),
        nesterov=v.check_bool("nesterov", nesterov),
        beta1=v.check_fraction("beta1", beta1),
        beta2=v.check_fraction("beta2", beta2),
        epsilon=v.check_positive("epsilon", epsilon),
        lr_schedule=lr_schedule,
        power_t=v.check_nonnegative("power_t", power_t),
        lr_step_size=v.check_positive("lr_step_size", lr_step_size, integer=True),
        lr_gamma=v.check_fraction("lr_gamma", lr_gamma, low_open=True, high_open=False),
        early_stopping=v.check_bool("early_stopping", early_stopping),
        patience=v.check_positive("patience", patience, integer=True),
        tol=tol,
        progress=v.check_bool("progress", progress),
        callback=callback,
    )
    if opts.nesterov and opts.optimizer == "sgd" and opts.momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    if opts.optimizer == "lbfgs":
        if opts.batch_size is not None:
            raise ValueError(
                "optimizer 'lbfgs' works on the full batch; leave batch_size=None "
                f"(got {opts.batch_size})"
            )
        if opts.early_stopping:
            raise ValueError("early_stopping is not available with optimizer 'lbfgs'; use tol")
    return opts


# --- device-side pieces ------------------------------------------------------------------


def _accuracy_sum(z: Array, y: Array, loss: str, xp: ModuleType) -> Array | None:
    """Number of correctly classified samples (0-d array, net dtype), or None
    for a regression loss.  A sample with several outputs counts as correct
    only when every output is (subset accuracy)."""
    if loss == "cross_entropy":
        right = xp.argmax(z, axis=1) == xp.argmax(y, axis=1)
    elif loss == "binary_cross_entropy":
        right = xp.all((z > 0) == (y > 0.5), axis=1)
    elif loss == "logistic":
        right = xp.all(z * y > 0, axis=1)
    else:
        return None
    return xp.sum(xp.astype(right, z.dtype))


def _metrics(net: MLP, params: Tree, x: Array, y: Array,
             batch_size: int | None = None) -> tuple[Array, Array | None]:
    """Mean loss and number of correct samples (None for regression) of
    ``params`` on (x, y), as 0-d device arrays, computed in chunks of
    ``batch_size`` rows (all at once for None).  The count is divided on the
    host, where float32 rounding cannot blur it."""
    xp = net.xp
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    loss_sum, right = None, None
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        xb, yb = x[lo:hi, ...], y[lo:hi, ...]
        _, z = kernels.forward(params, xb, net.hidden, xp=xp)
        part = net._loss.value(z, yb, net._out_act, xp) * (hi - lo)
        acc = _accuracy_sum(z, yb, net.loss, xp)
        loss_sum = part if loss_sum is None else loss_sum + part
        if acc is not None:
            right = acc if right is None else right + acc
    return loss_sum / n, right


def _nonfinite_probe(params: Tree, xp: ModuleType) -> Array:
    """A 0-d array that is 0 when every weight is finite and NaN otherwise
    (``0 * inf`` and ``0 * nan`` are NaN), so the check rides along with the
    epoch's one transfer instead of costing its own."""
    total = None
    for W, b in params:
        s = xp.sum(W) + xp.sum(b)
        total = s if total is None else total + s
    return total * 0.0


def _persist(xp: ModuleType, tree: Any) -> Any:
    # Lazy backends (Dask) would otherwise grow one graph over the whole run.
    if not array_api_compat.is_dask_namespace(xp):
        return tree
    import dask

    return dask.persist(tree)[0]


def _host_scalars(xp: ModuleType, values: list[Array]) -> list[float]:
    """Move several 0-d arrays to the host in one transfer."""
    packed = xp.stack([xp.reshape(t, ()) for t in values])
    return [float(s) for s in to_numpy(materialize(xp, packed)[0])]


# --- the minibatch loop ------------------------------------------------------------------


def _shuffler(opts: _Options, net: MLP) -> np.random.Generator:
    # No seed: the network's own, so that MLP(seed=s).fit(...) repeats exactly.
    return np.random.default_rng(opts.seed if opts.seed is not None else net.seed)


#: Use the in-place flat-buffer updates where the backend supports them (tests
#: switch it off to compare the two paths).
FAST_PATH = True


def _copy_state(state: Any, xp: ModuleType) -> Any:
    """A copy of a flat optimizer state whose buffers the caller may not mutate."""
    return type(state)(*(xp.asarray(f, copy=True) if hasattr(f, "shape") else f
                         for f in state))


class _Loop:
    """Parameters and optimizer state of a run, advanced one epoch at a time.

    Two ways of stepping, with the same results:

    * pure: ``params`` (a tree) and ``state`` are rebound after every step;
    * flat (``FAST_PATH`` and :func:`bpnet.optim.supports_inplace_views`): all
      parameters live in one buffer ``theta`` that the optimizer updates in
      place, and ``params`` are views into it; the gradient tree is flattened
      with one concatenation per step.

    Either way, whatever interrupts the loop finds the weights of the last
    completed step.  :meth:`snapshot` and :meth:`weights` return copies that
    later steps cannot change.
    """

    def __init__(self, net: MLP, opt: Optimizer, state: Any, x: Array, y: Array,
                 batch_size: int | None, alpha: float, *, flat: bool) -> None:
        self.net = net
        self.xp = xp = net.xp
        self.opt = opt
        self.flat = flat
        self.unravel = unraveler(shapes(net._params), xp=xp)
        if flat:
            self.theta = ravel(net._params, xp=xp)  # a new buffer: the net's arrays stay put
            self.params: Tree = self.unravel(self.theta)
        else:
            self.params = list(net._params)
        self.state = state
        self.x, self.y = x, y
        n = x.shape[0]
        bs = n if batch_size is None else min(batch_size, n)
        # Stops clipped to n: the standard leaves out-of-bounds slice stops undefined.
        self.bounds = [(lo, min(lo + bs, n)) for lo in range(0, n, bs)]
        self.alpha = alpha
        self.n = n

    def epoch(self, lr: float, rng: np.random.Generator | None) -> Array:
        """One pass over the data; returns the summed batch losses (0-d, on the device)."""
        xp, net = self.xp, self.net
        x, y = self.x, self.y
        if rng is not None and len(self.bounds) > 1:
            order = xp.asarray(rng.permutation(self.n), device=net.device)
            x, y = xp.take(x, order, axis=0), xp.take(y, order, axis=0)
        hidden, out, loss, alpha = net.hidden, net._out_act, net._loss, self.alpha
        loss_and_grad = loss_and_grad_fn(xp)  # jax.jit of the same kernels on JAX
        total = None
        for lo, hi in self.bounds:
            value, grads = loss_and_grad(
                self.params, x[lo:hi, ...], y[lo:hi, ...], hidden, out, loss, alpha=alpha, xp=xp
            )
            if self.flat:  # in place: self.params are views of theta
                self.state = self.opt.update_flat(self.theta, ravel(grads, xp=xp), self.state,
                                                  lr, xp)
            else:
                self.params, self.state = self.opt.update(self.params, grads, self.state, lr, xp)
            part = value * (hi - lo)
            total = part if total is None else total + part
        return total

    def persist(self) -> None:
        if not self.flat:
            self.params, self.state = _persist(self.xp, (self.params, self.state))

    def weights(self) -> Tree:
        """The current weights, safe from later steps."""
        if self.flat:
            return self.unravel(self.xp.asarray(self.theta, copy=True))
        return list(self.params)

    def snapshot(self) -> tuple[Tree, Any]:
        """(weights, optimizer state) as they are now, safe from later steps."""
        if self.flat:
            return self.weights(), _copy_state(self.state, self.xp)
        return list(self.params), self.state

    def restore(self, snap: tuple[Tree, Any]) -> None:
        params, state = snap
        if self.flat:
            self.theta = ravel(params, xp=self.xp)
            self.params = self.unravel(self.theta)
        else:
            self.params = list(params)
        self.state = state


def _flat_mode(net: MLP) -> bool:
    return FAST_PATH and supports_inplace_views(net.xp, net._params[0][0])


def _fresh_state(opt: Optimizer, net: MLP, flat: bool) -> Any:
    """A new optimizer state for ``net``'s weights, flat buffers or a tree."""
    if flat:
        return opt.init_flat(ravel(net._params, xp=net.xp), net.xp)
    return opt.init(net._params, net.xp)


class _Monitor:
    """Tracks the best monitored loss and decides when to stop on ``tol``/``patience``."""

    def __init__(self, tol: float | None, patience: int, active: bool) -> None:
        self.tol = 0.0 if tol is None else tol
        self.patience = patience
        self.active = active
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_params: Tree | None = None
        self.stale = 0

    def update(self, epoch: int, value: float, params: Tree) -> bool:
        """Record epoch ``epoch`` (from 1); True when training should stop."""
        improved = value <= self.best - self.tol  # scikit-learn counts "> best - tol" as stale
        if value < self.best:
            self.best, self.best_epoch, self.best_params = value, epoch, params
        self.stale = 0 if improved else self.stale + 1
        return self.active and self.stale >= self.patience


class _Bar:
    """tqdm when it is installed, else a line on stderr every tenth of the run."""

    def __init__(self, total: int, enabled: bool, unit: str = "epoch") -> None:
        self.enabled = enabled
        self.total = total
        self.bar = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, epoch: int, history: History) -> None:
        if not self.enabled:
            return
        info = {"loss": f"{history.loss[-1]:.4g}"}
        if history.val_loss:
            info["val_loss"] = f"{history.val_loss[-1]:.4g}"
        if history.val_accuracy:
            info["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
        info["samples/s"] = f"{history.samples_per_second:,.0f}"
        if self.bar is not None:
            self.bar.set_postfix(info, refresh=False)
            self.bar.update(1)
        elif epoch == self.total or epoch % max(1, self.total // 10) == 0:
            text = "  ".join(f"{k} {val}" for k, val in info.items())
            print(f"epoch {epoch}/{self.total}  {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- public entry points -----------------------------------------------------------------


def fit(
    net: MLP, X: Any, Y: Any, *, optimizer: str = "adam", lr: float | None = None,
    epochs: int = 200, batch_size: int | None = None, shuffle: bool = True,
    seed: int | None = None, alpha: float = 0.0, momentum: float = 0.9, nesterov: bool = False,
    beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
    lr_schedule: str | Callable[[int], float] = "constant", power_t: float = 0.5,
    lr_step_size: int = 10, lr_gamma: float = 0.1, validation_data: Any = None,
    early_stopping: bool = False, patience: int = 10, tol: float | None = None,
    progress: bool = False, callback: Callable[[int, History], bool | None] | None = None,
) -> History:
    """Train ``net`` on (X, Y) and return the per-epoch history.

    Parameters
    ----------
    net : MLP
        Trained in place, starting from its current weights with a fresh
        optimizer state (which is kept afterwards for :func:`partial_fit`).
    X : array (N, n_features)
    Y : array
        Targets as :meth:`MLP.loss_and_grad` takes them: (N, k), (N,) when
        k = 1, integer labels (N,) for ``cross_entropy``.
    optimizer : {"adam", "sgd", "lbfgs"}
    lr : float, optional
        Learning rate; default 1e-3 for ``adam``, 0.1 for ``sgd`` (unused by
        ``lbfgs``).
    epochs : int, default 200
        Passes over the data; for ``lbfgs``, the largest number of iterations.
    batch_size : int or None
        Samples per step; ``None`` is the full batch (the only choice for ``lbfgs``).
    shuffle : bool, default True
        Draw a new order of the samples every epoch.
    seed : int or None
        Seed of the host generator that draws the orders; ``None`` uses the
        network's ``seed``, so a run repeats exactly.
    alpha : float, default 0
        L2 penalty ``alpha / (2 n_batch) * sum ||W||^2`` (scikit-learn's).
    momentum : float in [0, 1), default 0.9
        ``sgd`` only; 0 is plain gradient descent.
    nesterov : bool, default False
        ``sgd`` only: Nesterov's momentum.
    beta1, beta2, epsilon : float
        ``adam`` only.
    lr_schedule : {"constant", "invscaling", "step", "cosine"} or callable
        How the learning rate changes from epoch to epoch; see
        :func:`bpnet.optim.scheduled_lr`.  A callable ``f(epoch) -> lr`` is
        called with the epoch index from 0.
    power_t : float, default 0.5
        Exponent of ``invscaling``.
    lr_step_size, lr_gamma : int, float
        ``step``: multiply the rate by ``lr_gamma`` every ``lr_step_size`` epochs.
    validation_data : (X_val, Y_val), optional
        Evaluated after every epoch (loss, and accuracy for classification).
    early_stopping : bool, default False
        Stop when the validation loss has not improved by more than ``tol``
        (default 0) for ``patience`` epochs, and restore the best weights.
        Needs ``validation_data``.
    patience : int, default 10
    tol : float or None
        Without ``early_stopping``: stop once ``patience`` consecutive epochs
        have ended above ``best loss - tol``.  ``None`` never stops early on the
        training loss.  This is scikit-learn's rule, except that its
        ``n_iter_no_change=k`` stops after k + 1 such epochs: pass
        ``patience=k + 1`` to match it.  For ``lbfgs``, L-BFGS-B's ``ftol`` and
        ``gtol``.
    progress : bool, default False
        Show a progress bar (tqdm) with the loss and samples per second.
    callback : callable ``(epoch, history) -> bool | None``, optional
        Called after every epoch (``epoch`` counts from 1) with the network
        already holding that epoch's weights; returning True stops.

    Returns
    -------
    History

    Raises
    ------
    ValueError, TypeError
        For bad options or data, before anything changes.
    FloatingPointError
        When the loss or the weights stop being finite; the network keeps the
        weights it had at the start of the last epoch whose loss was finite
        (``exc.history`` holds the epochs before the failing one).
    KeyboardInterrupt
        Re-raised with ``exc.history``; the network keeps the weights of the
        last completed step.
    """
    opts = _check_options(
        optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
        seed=seed, alpha=alpha, momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2,
        epsilon=epsilon, lr_schedule=lr_schedule, power_t=power_t, lr_step_size=lr_step_size,
        lr_gamma=lr_gamma, early_stopping=early_stopping, patience=patience, tol=tol,
        progress=progress, callback=callback,
    )
    x, y = net._xy(X, Y)
    val = None
    if validation_data is not None:
        val = net._xy(*v.check_xy_pair("validation_data", validation_data), prefix="validation ")
    if opts.early_stopping and val is None:
        raise ValueError("early_stopping=True needs validation_data=(X_val, Y_val)")
    history = History(optimizer=opts.optimizer, n_samples=x.shape[0])
    batch = x.shape[0] if opts.batch_size is None else min(opts.batch_size, x.shape[0])
    with blas_policy(net, batch):
        if opts.optimizer == "lbfgs":
            return _fit_lbfgs(net, x, y, val, opts, history)
        return _fit_first_order(net, x, y, val, opts, history)


def blas_policy(net: MLP, batch_size: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for small layers on NumPy (see :mod:`bpnet._threads`), for
    a whole fit: entering costs about a millisecond, too much to pay per step.
    Other backends manage their own threads."""
    if net.backend != "numpy":
        return contextlib.nullcontext()
    return blas_thread_policy(net.layer_sizes, batch_size)


def _fit_defaults() -> dict[str, Any]:
    """:func:`fit`'s keyword options (but ``validation_data``) and their defaults."""
    return {
        name: p.default for name, p in inspect.signature(fit).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "validation_data"
    }


def check_fit_options(**options: Any) -> None:
    """Check :func:`fit`'s options (all but the data) without training.

    Raises the same ``ValueError``/``TypeError`` that :func:`fit` would, so a
    caller (the ``bpnet`` command) can refuse bad settings before any work.
    """
    defaults = _fit_defaults()
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"unknown fit option(s): {', '.join(unknown)}")
    _check_options(**{**defaults, **options})


def _fit_first_order(net: MLP, x: Array, y: Array, val: tuple[Array, Array] | None,
                     opts: _Options, history: History) -> History:
    xp = net.xp
    opt = opts.make_optimizer()
    flat = _flat_mode(net)
    loop = _Loop(net, opt, _fresh_state(opt, net, flat), x, y, opts.batch_size, opts.alpha,
                 flat=flat)
    rng = _shuffler(opts, net) if opts.shuffle else None
    monitor = _Monitor(opts.tol, opts.patience,
                       active=opts.early_stopping or opts.tol is not None)
    bar = _Bar(opts.epochs, opts.progress)
    start = time.perf_counter()
    samples_seen = 0
    last_good = (1, loop.snapshot())  # start of the last epoch with a finite loss
    try:
        for e in range(opts.epochs):
            lr = scheduled_lr(opts.lr_schedule, opts.lr, epoch=e, epochs=opts.epochs,
                              samples_seen=samples_seen, power_t=opts.power_t,
                              step_size=opts.lr_step_size, gamma=opts.lr_gamma)
            start_of_epoch = loop.snapshot()
            total = loop.epoch(lr, rng)
            loop.persist()
            samples_seen += loop.n
            scalars = [total / loop.n, _nonfinite_probe(loop.params, xp)]
            if val is not None:
                v_loss, v_acc = _metrics(net, loop.params, *val)
                scalars += [v_loss] + ([] if v_acc is None else [v_acc])
            host = _host_scalars(xp, scalars)  # the epoch's one transfer
            if not all(math.isfinite(s) for s in host):
                # A non-finite epoch loss condemns the weights this epoch started
                # from too (their first batch already overflowed), so go back to
                # the start of the last epoch whose loss was finite.
                kept, snap = (e + 1, start_of_epoch) if math.isfinite(host[0]) else last_good
                loop.restore(snap)
                what = ("loss" if not math.isfinite(host[0]) else
                        "weights" if not math.isfinite(host[1]) else "validation loss")
                raise FloatingPointError(
                    f"training diverged in epoch {e + 1}: the {what} became non-finite "
                    f"(lr={lr:g}); the network keeps the weights it had at the start of "
                    f"epoch {kept}. Try a smaller lr."
                )
            last_good = (e + 1, start_of_epoch)
            history.loss.append(host[0])
            if val is not None:
                history.val_loss.append(host[2])
                if len(host) > 3:
                    history.val_accuracy.append(host[3] / val[0].shape[0])
            history.lr.append(lr)
            history.time.append(time.perf_counter() - start)
            epoch = e + 1
            net._params = loop.weights()  # callbacks may use the network
            monitored = history.val_loss[-1] if val is not None else history.loss[-1]
            stop = monitor.update(epoch, monitored, net._params)
            bar.update(epoch, history)
            if stop:
                history.stop_reason = "early_stopping" if opts.early_stopping else "tol"
            elif opts.callback is not None and opts.callback(epoch, history) is True:
                stop, history.stop_reason = True, "callback"
            if stop:
                history.stopped_early = epoch < opts.epochs
                break
        else:
            history.stop_reason = "epochs"
    except BaseException as exc:
        net._params = loop.weights()
        net._optimizer_state = _SavedState((opt.key, flat), loop.state, rng)
        exc.history = history
        raise
    finally:
        bar.close()
    history.best_epoch = monitor.best_epoch
    best = monitor.best_params if opts.early_stopping else None
    net._params = best if best is not None else loop.weights()
    net._optimizer_state = _SavedState((opt.key, flat), loop.state, rng)
    return history


def _flat_objective(net: MLP, x: Array, y: Array, alpha: float,
                    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    xp = net.xp
    unravel_fast = unraveler(shapes(net._params), xp=xp)
    hidden, out, loss = net.hidden, net._out_act, net._loss

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        tree = unravel_fast(net._to_backend(theta))  # one transfer in
        value, grads = kernels.loss_and_grad(tree, x, y, hidden, out, loss, alpha=alpha, xp=xp)
        packed = xp.concat([xp.reshape(value, (1,)), ravel(grads, xp=xp)])
        host = np.asarray(to_numpy(materialize(xp, packed)[0]), dtype=np.float64)  # one out
        return float(host[0]), host[1:]

    return value_and_grad


def lbfgs_objective(
    net: MLP, X: Any, Y: Any, *, alpha: float = 0.0,
) -> tuple[Callable[[np.ndarray], tuple[float, np.ndarray]], np.ndarray]:
    """The function that ``fit(optimizer="lbfgs")`` hands to SciPy.

    The dataset moves to the network's device once, here.  Each call moves the
    flat parameter vector there (one transfer), runs backprop, and brings the
    loss and the flat gradient back in one float64 vector (one transfer).

    Parameters
    ----------
    net : MLP
    X, Y : arrays
        As for :func:`fit`.
    alpha : float
        L2 penalty.

    Returns
    -------
    value_and_grad : callable ``(theta (P,) float64) -> (float, (P,) float64)``
    theta0 : ndarray (P,) float64
        The network's current weights, flattened as :func:`bpnet.params.ravel` does.
    """
    alpha = v.check_nonnegative("alpha", alpha)
    x, y = net._xy(X, Y)
    return _flat_objective(net, x, y, alpha), _theta(net)


def _theta(net: MLP) -> np.ndarray:
    """The network's weights as the flat float64 host vector SciPy works on."""
    return np.asarray(to_numpy(ravel(net._params, xp=net.xp)), dtype=np.float64)


def _fit_lbfgs(net: MLP, x: Array, y: Array, val: tuple[Array, Array] | None,
               opts: _Options, history: History) -> History:
    xp = net.xp
    unravel_fast = unraveler(shapes(net._params), xp=xp)
    value_and_grad = _flat_objective(net, x, y, opts.alpha)
    x0 = _theta(net)
    f0, _ = value_and_grad(x0)
    if not math.isfinite(f0):
        raise FloatingPointError("the loss is not finite at the starting weights")
    accepted = {"theta": x0}
    monitor = _Monitor(None, opts.patience, active=False)
    bar = _Bar(opts.epochs, opts.progress, unit="iter")
    start = time.perf_counter()

    def on_iteration(theta: np.ndarray, value: float) -> bool:
        accepted["theta"] = np.array(theta, copy=True)
        history.loss.append(value)
        history.lr.append(float("nan"))  # the line search picks each step
        monitored = value
        if val is not None:
            tree = unravel_fast(net._to_backend(theta))
            v_loss, v_acc = _metrics(net, tree, *val)
            host = _host_scalars(xp, [v_loss] + ([] if v_acc is None else [v_acc]))
            history.val_loss.append(host[0])
            if len(host) > 1:
                history.val_accuracy.append(host[1] / val[0].shape[0])
            monitored = host[0]
        history.time.append(time.perf_counter() - start)
        epoch = history.epochs
        monitor.update(epoch, monitored, [])
        if opts.callback is not None:  # callbacks may use the network
            net._params = unravel_fast(net._to_backend(theta))
        bar.update(epoch, history)
        if opts.callback is not None and opts.callback(epoch, history) is True:
            history.stopped_early, history.stop_reason = True, "callback"
            return True
        return False

    try:
        result = lbfgs(value_and_grad, x0, maxiter=opts.epochs, tol=opts.tol,
                       callback=on_iteration)
    except BaseException as exc:
        net._params = unravel_fast(net._to_backend(accepted["theta"]))
        exc.history = history
        raise
    finally:
        bar.close()
    theta = np.asarray(result.x, dtype=np.float64)
    if not (math.isfinite(float(result.fun)) and np.all(np.isfinite(theta))):
        theta = accepted["theta"]
    net._params = unravel_fast(net._to_backend(theta))
    if not history.stop_reason:
        history.stop_reason = str(result.message)
    history.best_epoch = monitor.best_epoch
    return history


# --- partial_fit -----------------------------------------------------------------------------


@dataclass
class _SavedState:
    """Optimizer state kept on a network between calls (see :func:`partial_fit`)."""

    key: tuple
    state: Any
    rng: np.random.Generator | None


_PARTIAL_OPTIONS = ("momentum", "nesterov", "beta1", "beta2", "epsilon")


def partial_fit(
    net: MLP, X: Any, Y: Any, *, optimizer: str = "adam", lr: float | None = None,
    batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
    alpha: float = 0.0, **optimizer_options: Any,
) -> float:
    """One epoch over (X, Y), continuing the optimizer state of earlier calls.

    The state (Adam's moments, SGD's velocity, the step count) is kept on the
    network while ``optimizer`` and its ``optimizer_options`` stay the same;
    changing either starts a fresh state, as does :meth:`MLP.reset_optimizer`.
    ``lr``, ``alpha`` and ``batch_size`` may change between calls (a caller can
    run its own schedule).  :func:`fit` leaves its final state behind, so
    ``partial_fit`` can continue a fit with the same settings.

    Parameters
    ----------
    net : MLP
    X, Y : arrays
        As for :func:`fit`.
    optimizer : {"adam", "sgd"}
    lr, batch_size, shuffle, alpha
        As for :func:`fit`.
    seed : int or None
        Seed of this call's shuffling; ``None`` continues a generator kept with
        the optimizer state (seeded from the network's seed).
    **optimizer_options
        ``momentum``, ``nesterov`` (sgd), ``beta1``, ``beta2``, ``epsilon`` (adam).

    Returns
    -------
    float
        Mean training loss over the epoch's batches.

    Raises
    ------
    ValueError, TypeError
        For bad options or data, before anything changes.
    FloatingPointError
        When the loss or the weights become non-finite; the network and the
        optimizer state are left as they were before the call.
    """
    unknown = sorted(set(optimizer_options) - set(_PARTIAL_OPTIONS))
    if unknown:
        raise TypeError(
            f"partial_fit got unexpected option(s) {', '.join(unknown)}; optimizer options "
            f"are: {', '.join(_PARTIAL_OPTIONS)}"
        )
    if optimizer == "lbfgs":
        raise ValueError("partial_fit takes 'adam' or 'sgd'; 'lbfgs' needs fit()")
    defaults = {name: value for name, value in _fit_defaults().items()
                if name in _PARTIAL_OPTIONS}
    opts = _check_options(
        optimizer=optimizer, lr=lr, epochs=1, batch_size=batch_size, shuffle=shuffle, seed=seed,
        alpha=alpha, lr_schedule="constant", power_t=0.5, lr_step_size=1, lr_gamma=1.0,
        early_stopping=False, patience=1, tol=None, progress=False, callback=None,
        **{**defaults, **optimizer_options},
    )
    x, y = net._xy(X, Y)
    xp = net.xp
    opt = opts.make_optimizer()
    flat = _flat_mode(net)
    key = (opt.key, flat)
    saved = getattr(net, "_optimizer_state", None)
    if saved is None or saved.key != key:
        saved = _SavedState(key, _fresh_state(opt, net, flat), np.random.default_rng(net.seed))
    # The flat path updates its state in place: work on a copy, so that a failed
    # call leaves the saved state as it was.
    state = _copy_state(saved.state, xp) if flat else saved.state
    rng = None
    if opts.shuffle and opts.seed is not None:
        rng = np.random.default_rng(opts.seed)
    elif opts.shuffle:
        if saved.rng is None:  # fit(shuffle=False) left no generator behind
            saved.rng = np.random.default_rng(net.seed)
        rng = saved.rng
    loop = _Loop(net, opt, state, x, y, opts.batch_size, opts.alpha, flat=flat)
    try:
        total = loop.epoch(opts.lr, rng)
        loop.persist()
    except BaseException:
        net._params = loop.weights()
        net._optimizer_state = _SavedState(key, loop.state, saved.rng)
        raise
    value, probe = _host_scalars(xp, [total / loop.n, _nonfinite_probe(loop.params, xp)])
    if not (math.isfinite(value) and math.isfinite(probe)):
        raise FloatingPointError(
            f"partial_fit diverged: the {'loss' if not math.isfinite(value) else 'weights'} "
            f"became non-finite (lr={opts.lr:g}); the network is left as it was. "
            "Try a smaller lr."
        )
    net._params = loop.weights()
    net._optimizer_state = _SavedState(key, loop.state, saved.rng)
    return value


# --- evaluate --------------------------------------------------------------------------------


def evaluate(net: MLP, X: Any, Y: Any, *, batch_size: int | None = None) -> dict[str, float]:
    """Mean loss on (X, Y), and accuracy for classification losses.

    Parameters
    ----------
    net : MLP
    X, Y : arrays
        As for :func:`fit`.
    batch_size : int or None
        Rows per forward pass (all at once for None), to bound memory.

    Returns
    -------
    dict
        ``{"loss": float}``, plus ``"accuracy"`` (fraction of samples whose
        predicted class is right) for ``cross_entropy``,
        ``binary_cross_entropy`` and ``logistic``.
    """
    batch_size = v.check_positive("batch_size", batch_size, integer=True, allow_none=True)
    x, y = net._xy(X, Y)
    loss, acc = _metrics(net, list(net._params), x, y, batch_size)
    host = _host_scalars(net.xp, [loss] + ([] if acc is None else [acc]))
    out = {"loss": host[0]}
    if acc is not None:
        out["accuracy"] = host[1] / x.shape[0]
    return out

"""The epoch loop: minibatches indexed on the device, one host sync per epoch.

The loop works on a :class:`Run` (packed parameters, optimizer state, shuffling
generator) and a :class:`~bpnet.train.step.Step`; it never sees a network.
Each epoch draws a permutation on the host with the run's seeded
:class:`numpy.random.Generator`; the step moves that one index vector to the
device and gathers each batch there (:meth:`Step.batches`).  The loss of every
batch stays on the device and is summed there; the epoch ends with a single
transfer of a few scalars (training loss, a finiteness check of the weights,
and the validation loss and accuracy when there is validation data).

Stopping:

* ``tol`` (without ``early_stopping``): stop once ``patience`` consecutive epochs
  have failed to lower the best training loss by more than ``tol``.
* ``early_stopping=True`` with validation data: the same rule on the validation
  loss (``tol`` defaults to 0), and the weights of the best validation epoch
  are put back at the end.
* ``callback(epoch, history)`` returning True.
* A non-finite loss (or weights) raises :class:`FloatingPointError` naming the
  epoch; the run holds the weights it had at the start of the last epoch whose
  loss was finite.
* ``KeyboardInterrupt`` (or any other exception): the run holds the weights of
  the last completed step, and the exception is re-raised with ``exc.history``
  holding the epochs completed so far.

A step that donates its inputs (:attr:`Step.donates`) overwrites them, so what
the loop keeps (the start of an epoch, the best epoch, what a callback sees) is
a :meth:`Step.copy`; for the portable, pure step a copy is the reference itself.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import kernels
from .._typing import Array, Params
from ..backend import host_scalars, lazy, to_numpy
from ..optim import scheduled_lr
from .options import FitOptions
from .step import Step

__all__ = [
    "History",
    "Kept",
    "Run",
    "batches",
    "epoch",
    "finite_loss",
    "fit_epochs",
    "nonfinite_probe",
    "one_epoch",
    "state_key",
    "val_metrics",
]


@dataclass(repr=False)
class History:
    """What happened during a fit.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch: the average over its batches, each
        weighted by its size, L2 penalty included.  For ``lbfgs``, the
        full-batch loss after each iteration.
    accuracy : list of float
        Training accuracy of each epoch, for classification losses (empty for
        regression): the fraction of training samples that the steps' own
        forward passes classified right, each batch at the weights its step
        started from (as ``loss`` is measured, and as Keras reports it; counted
        on the device and read back with the epoch's one transfer, so it costs
        no second pass).  :meth:`MLP.evaluate` gives the accuracy at the final
        weights.  For ``lbfgs``, the full-batch accuracy after each iteration.
    val_loss, val_accuracy : list of float
        Loss and accuracy on ``validation_data`` after each epoch (empty without
        validation data; accuracy only for classification losses).
    time : list of float
        Seconds each epoch took.
    elapsed : list of float
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
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    optimizer: str = ""
    n_samples: int = 0
    stopped_early: bool = False
    stop_reason: str = ""
    best_epoch: int | None = None

    #: The per-epoch columns, in the order :meth:`to_dict` gives them.
    COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "elapsed")

    @property
    def epochs(self) -> int:
        """Epochs (L-BFGS iterations) completed."""
        return len(self.loss)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the whole run (0 before the first epoch)."""
        if not self.elapsed or self.elapsed[-1] <= 0:
            return 0.0
        return self.n_samples * self.epochs / self.elapsed[-1]

    def record(self, *, loss: float, lr: float, started: float, accuracy: float | None = None,
               val_loss: float | None = None, val_accuracy: float | None = None) -> None:
        """Append one epoch; ``started`` is the fit's :func:`time.perf_counter` start."""
        now = time.perf_counter() - started
        self.loss.append(loss)
        for name, value in (("accuracy", accuracy), ("val_loss", val_loss),
                            ("val_accuracy", val_accuracy)):
            if value is not None:
                getattr(self, name).append(value)
        self.lr.append(lr)
        self.time.append(now - (self.elapsed[-1] if self.elapsed else 0.0))
        self.elapsed.append(now)

    def to_dict(self) -> dict[str, list[Any]]:
        """The per-epoch values as columns of equal length: ``epoch`` (from 1), then
        each of :attr:`COLUMNS` that was recorded (``accuracy`` only for
        classification, ``val_*`` only with validation data).

        ``pandas.DataFrame(history.to_dict())`` is a table of one row per epoch;
        the values are plain Python numbers (``json.dump`` takes them).  The run's
        own facts (``optimizer``, ``stop_reason``, ``best_epoch``...) are
        attributes.
        """
        out: dict[str, list] = {"epoch": list(range(1, self.epochs + 1))}
        for name in self.COLUMNS:
            values = getattr(self, name)
            if values and len(values) == self.epochs:
                out[name] = list(values)
        return out

    def __repr__(self) -> str:
        parts = [self.optimizer or "no optimizer", f"{self.epochs} epochs"]
        if self.loss:
            parts.append(f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}")
        for name in ("accuracy", "val_loss", "val_accuracy"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name} {values[-1]:.4g}")
        if self.elapsed:
            parts.append(f"{self.elapsed[-1]:.3g} s")
        if self.stop_reason:
            parts.append(f"stop_reason={self.stop_reason!r}")
        if self.best_epoch is not None:
            parts.append(f"best_epoch={self.best_epoch}")
        return f"History({', '.join(parts)})"


@dataclass
class Run:
    """What a run trains, kept current after every completed step.

    Attributes
    ----------
    params : packed parameters (see :meth:`Step.pack`)
    opt_state : optimizer state
    rng : numpy.random.Generator or None
        Draws each epoch's order; None for no shuffling.
    """

    params: Any
    opt_state: Any
    rng: np.random.Generator | None


@dataclass
class Kept:
    """Training state kept on a network between calls (see :meth:`MLP.partial_fit`
    and ``fit(warm_start=True)``), and saved with it.

    ``key`` (:func:`state_key`) is what the state is valid for: it continues only
    under the same optimizer settings and parameter structure.  ``epoch`` and
    ``samples_seen`` are the schedule's clock: epochs run, and samples seen in
    them (``invscaling``).
    """

    key: tuple
    opt_state: Any
    rng: np.random.Generator | None
    epoch: int = 0
    samples_seen: int = 0


def state_key(opt: Any, step: Step) -> tuple:
    """What an optimizer state is valid for: the optimizer's settings and the
    structure of its arrays (one flat vector, or a tree)."""
    return (opt.key, step.flat)


def finite_loss(params: Params, x: Array, y: Array, arch: Any, alpha: float,
                xp: Any) -> bool:
    """Whether the loss at ``params`` is finite (a host read).  Used after a failure
    only: when it is not, even at freshly initialised weights, the data
    overflowed the dtype, not a step."""
    with np.errstate(all="ignore"):  # a probe: its overflow is the answer, not news
        value = kernels.loss_value(params, x, y, arch, alpha=alpha, xp=xp)
        return bool(np.isfinite(float(to_numpy(lazy.materialize(xp, value)[0]))))


class Monitor:
    """Tracks the best monitored loss and decides when to stop on ``tol``/``patience``."""

    def __init__(self, tol: float | None, patience: int, active: bool) -> None:
        self.tol = 0.0 if tol is None else tol
        self.patience = patience
        self.active = active
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_params: Any = None
        self.stale = 0

    def update(self, epoch: int, value: float, params: Callable[[], Any]) -> bool:
        """Record epoch ``epoch`` (from 1), whose parameters ``params()`` gives (called
        only when it is the best so far); True when training should stop."""
        improved = value <= self.best - self.tol  # scikit-learn counts "> best - tol" as stale
        if value < self.best:
            self.best, self.best_epoch, self.best_params = value, epoch, params()
        self.stale = 0 if improved else self.stale + 1
        return self.active and self.stale >= self.patience


class Bar:
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
        if history.accuracy:
            info["acc"] = f"{history.accuracy[-1]:.3f}"
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


def batches(n: int, batch_size: int | None) -> list[tuple[int, int]]:
    """``(lo, hi)`` row bounds of the batches of an epoch over ``n`` samples
    (one batch for None).  Stops are clipped to ``n``: the standard leaves
    out-of-bounds slice stops undefined."""
    bs = n if batch_size is None else min(batch_size, n)
    return [(lo, min(lo + bs, n)) for lo in range(0, n, bs)]


def val_metrics(params: Params, val: tuple[Array, ...], arch: Any,
                xp: Any) -> tuple[Array, Array | None, float]:
    """Loss and right predictions on validation data ``(x, y)``, or ``(x, y, w,
    total)`` with per-sample weights (N, 1) and their total (weighted mean and
    weighted count, :func:`bpnet.kernels.metrics`), and what the count is out
    of (samples, or the total weight)."""
    if len(val) == 2:
        return (*kernels.metrics(params, val[0], val[1], arch, xp=xp), val[0].shape[0])
    x, y, w, total = val
    return (*kernels.metrics(params, x, y, arch, xp=xp, sw=w, total=total), total)


def nonfinite_probe(step: Step, packed: Any) -> Array:
    """A 0-d array that is 0 when every weight is finite and NaN otherwise, so the
    check rides along with the epoch's one transfer (see :meth:`Step.probe`)."""
    return step.probe(packed)


def epoch(step: Step, run: Run, data: Any, n: int, bounds: list[tuple[int, int]],
          lr: float, *, correct: bool = False) -> Array | tuple[Array, Array]:
    """One pass over the data (:meth:`Step.data` of ``n`` samples); returns the
    summed batch losses (0-d, on the device), and with ``correct`` the count of
    right predictions too (see :meth:`Step.epoch`)."""
    xp = step.xp
    order = run.rng.permutation(n) if run.rng is not None and len(bounds) > 1 else None
    sums = step.epoch(run, data, order, bounds, lr, correct=correct)
    # Lazy backends would otherwise grow one graph over the whole run.
    run.params, run.opt_state = lazy.persist(xp, (run.params, run.opt_state))
    return sums


def one_epoch(step: Step, run: Run, data: Any, n: int, batch_size: int | None,
              lr: float) -> float:
    """One epoch (:meth:`MLP.partial_fit`) over the data (:meth:`Step.data` of
    ``n`` samples); returns its mean training loss.

    Raises
    ------
    FloatingPointError
        When the loss or the weights became non-finite (the run then holds
        them: the caller decides what to keep).
    """
    total = epoch(step, run, data, n, batches(n, batch_size), lr)
    value, probe = host_scalars(step.xp, [total / n, nonfinite_probe(step, run.params)])  # type: ignore[operator]
    if not (math.isfinite(value) and math.isfinite(probe)):
        raise FloatingPointError(
            f"partial_fit diverged: the {'loss' if not math.isfinite(value) else 'weights'} "
            f"became non-finite (lr={lr:g}); the network is left as it was. "
            "Try a smaller lr."
        )
    return value


def fit_epochs(
    step: Step, run: Run, data: Any, n: int, val: tuple[Array, ...] | None,
    opts: FitOptions, history: History, *, publish: Callable[[Params], None],
    clock: tuple[int, int] = (0, 0), checkpoint: Callable[[int], None] | None = None,
) -> History:
    """Train for ``opts.epochs`` epochs (or until a stopping rule fires).

    Parameters
    ----------
    step : Step
    run : Run
        Advanced in place; see the module docstring for what it holds when an
        exception ends the loop.
    data : object
        The training data, :meth:`Step.data` of the arrays on the device.
    n : int
        Training samples.
    val : (x_val, y_val), (x_val, y_val, w_val, total) or None
        Validation data, with weights (N_val, 1) and their total when weighted
        (:func:`val_metrics`).
    opts : FitOptions
    history : History
        Filled in epoch by epoch.
    publish : callable ``(params) -> None``
        Called with each epoch's weights (a tree, safe from later steps) before
        the callback runs, so that the callback sees them on the network.
    clock : (int, int)
        Epochs and samples of the run this fit continues (``warm_start``): the
        schedule counts on from them.
    checkpoint : callable ``(epochs) -> None``, optional
        Called after every ``opts.checkpoint_every`` epochs (counted in this fit)
        while ``run`` holds that epoch's end, to write a checkpoint.

    Returns
    -------
    History
    """
    xp = step.xp
    bounds = batches(n, opts.batch_for(n))
    monitor = Monitor(opts.tol, opts.patience, active=opts.early_stopping or opts.tol is not None)
    bar = Bar(opts.epochs, opts.progress)
    start = time.perf_counter()
    first, samples_seen = clock
    counts = step.arch.loss.correct is not None
    last_good: tuple[int, Any] | None = None  # start of the last epoch with a finite loss
    try:
        for e in range(opts.epochs):
            lr = scheduled_lr(opts.lr_schedule, opts.resolved_lr, epoch=first + e,
                              epochs=first + opts.epochs, samples_seen=samples_seen,
                              power_t=opts.power_t, step_size=opts.lr_step_size,
                              gamma=opts.lr_gamma)
            start_of_epoch = step.copy(run.params, run.opt_state)
            sums = epoch(step, run, data, n, bounds, lr, correct=counts)
            total, right = sums if counts else (sums, None)
            samples_seen += n
            scalars = [total / n, nonfinite_probe(step, run.params)]  # type: ignore[operator]
            if counts:
                scalars.append(right)
            if val is not None:
                v_loss, v_acc, v_total = val_metrics(step.unpack(run.params), val, step.arch, xp)
                scalars += [v_loss] + ([] if v_acc is None else [v_acc])
            host = host_scalars(xp, scalars)  # the epoch's one transfer
            if not all(math.isfinite(s) for s in host):
                # A non-finite epoch loss condemns the weights this epoch started
                # from too (their first batch already overflowed), so go back to
                # the start of the last epoch whose loss was finite.
                kept, snap = ((e + 1, start_of_epoch) if math.isfinite(host[0]) or last_good is None
                              else last_good)
                run.params, run.opt_state = snap
                what = ("loss" if not math.isfinite(host[0]) else
                        "weights" if not math.isfinite(host[1]) else "validation loss")
                raise FloatingPointError(
                    f"training diverged in epoch {e + 1}: the {what} became non-finite "
                    f"(lr={lr:g}); the network keeps the weights it had at the start of "
                    f"epoch {kept}. Try a smaller lr."
                )
            last_good = (e + 1, start_of_epoch)
            rest = host[3:] if counts else host[2:]
            history.record(
                loss=host[0], lr=lr, started=start,
                accuracy=host[2] / n if counts else None,
                val_loss=rest[0] if val is not None else None,
                val_accuracy=rest[1] / v_total if len(rest) > 1 else None)
            number = e + 1
            if checkpoint is not None and number % opts.checkpoint_every == 0:
                checkpoint(number)
            if opts.callback is not None:  # callbacks may use the network
                publish(step.export(run.params))
            monitored = history.val_loss[-1] if val is not None else history.loss[-1]
            stop = monitor.update(number, monitored,
                                  lambda: step.copy(run.params, None)[0])
            bar.update(number, history)
            if stop:
                history.stop_reason = "early_stopping" if opts.early_stopping else "tol"
            elif opts.callback is not None and opts.callback(number, history) is True:
                stop, history.stop_reason = True, "callback"
            if stop:
                history.stopped_early = number < opts.epochs
                break
        else:
            history.stop_reason = "epochs"
    except BaseException as exc:
        exc.history = history  # type: ignore[attr-defined]
        raise
    finally:
        bar.close()
    history.best_epoch = monitor.best_epoch
    if opts.early_stopping and monitor.best_params is not None:
        run.params = monitor.best_params
    return history

"""Full-batch training with SciPy's L-BFGS-B (:func:`bpnet.optim.lbfgs`).

SciPy works on one flat float64 vector on the host.  The data set stays on the
network's device; each evaluation moves the flat parameters there (one
transfer), runs backprop, and brings the loss and the flat gradient back in one
float64 vector (one transfer).  ``epochs`` bounds the iterations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np

from .. import kernels
from .._typing import Arch, Array, Params
from ..backend import host_scalars, lazy, to_numpy
from ..optim import lbfgs
from ..params import Layout
from .loop import Bar, History, Monitor, Run
from .options import FitOptions

__all__ = ["fit_lbfgs", "objective"]

#: Host float64 vector -> the same values as a flat array of the backend.
Put = Callable[[np.ndarray], Array]


def objective(
    layout: Layout, x: Array, y: Array, arch: Arch, *, alpha: float, xp: ModuleType, put: Put,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The function SciPy minimises: ``theta (P,) float64 -> (loss, gradient (P,))``.

    Parameters
    ----------
    layout : Layout
        How ``theta`` unravels into the parameter tree.
    x, y : arrays
        The data on the device, targets in the loss's form.
    arch : Arch
    alpha : float
        L2 penalty.
    xp : namespace
    put : callable
        Moves a host vector to the device in the network's dtype.
    """

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        tree = layout.unravel(put(theta), xp=xp)  # one transfer in
        value, grads = kernels.loss_and_grad(tree, x, y, arch, alpha=alpha, xp=xp)
        packed = xp.concat([xp.reshape(value, (1,)), layout.ravel(grads, xp=xp)])
        host = np.asarray(to_numpy(lazy.materialize(xp, packed)[0]), dtype=np.float64)  # one out
        return float(host[0]), host[1:]

    return value_and_grad


def fit_lbfgs(
    layout: Layout, run: Run, x: Array, y: Array, val: tuple[Array, Array] | None,
    opts: FitOptions, history: History, *, arch: Arch, xp: ModuleType, put: Put,
    publish: Callable[[Params], None],
) -> History:
    """Minimise the full-batch loss from ``run.params`` (a host float64 vector).

    ``run.params`` holds the last accepted point throughout (also when an
    exception ends the run), and the final one at the end.

    Raises
    ------
    FloatingPointError
        When the loss is not finite at the starting weights.
    """
    value_and_grad = objective(layout, x, y, arch, alpha=opts.alpha, xp=xp, put=put)
    x0 = run.params
    f0, _ = value_and_grad(x0)
    if not math.isfinite(f0):
        raise FloatingPointError("the loss is not finite at the starting weights")
    monitor = Monitor(None, opts.patience, active=False)
    bar = Bar(opts.epochs, opts.progress, unit="iter")
    start = time.perf_counter()

    def on_iteration(theta: np.ndarray, value: float) -> bool:
        run.params = np.array(theta, copy=True)
        history.loss.append(value)
        history.lr.append(float("nan"))  # the line search picks each step
        monitored = value
        if val is not None:
            tree = layout.unravel(put(theta), xp=xp)
            v_loss, v_acc = kernels.metrics(tree, *val, arch, xp=xp)
            host = host_scalars(xp, [v_loss] + ([] if v_acc is None else [v_acc]))
            history.val_loss.append(host[0])
            if len(host) > 1:
                history.val_accuracy.append(host[1] / val[0].shape[0])
            monitored = host[0]
        history.time.append(time.perf_counter() - start)
        number = history.epochs
        monitor.update(number, monitored, lambda: None)
        if opts.callback is not None:  # callbacks may use the network
            publish(layout.unravel(put(theta), xp=xp))
        bar.update(number, history)
        if opts.callback is not None and opts.callback(number, history) is True:
            history.stopped_early, history.stop_reason = True, "callback"
            return True
        return False

    try:
        result = lbfgs(value_and_grad, x0, maxiter=opts.epochs, tol=opts.tol,
                       callback=on_iteration)
    except BaseException as exc:
        exc.history = history
        raise
    finally:
        bar.close()
    theta = np.asarray(result.x, dtype=np.float64)
    if math.isfinite(float(result.fun)) and np.all(np.isfinite(theta)):
        run.params = theta
    if not history.stop_reason:
        history.stop_reason = str(result.message)
    history.best_epoch = monitor.best_epoch
    return history

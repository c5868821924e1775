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
from typing import Any

import numpy as np

from .. import kernels
from .._typing import Arch, Array, Params
from ..backend import device_of, fast, host_scalars, lazy, to_numpy
from ..optim import lbfgs
from ..params import Layout
from .loop import Bar, History, Monitor, Run, finite_loss, val_metrics
from .options import FitOptions
from .step import correct_count

__all__ = ["fit_lbfgs", "objective"]

#: Host float64 vector -> the same values as a flat array of the backend.
Put = Callable[[np.ndarray], Array]


def objective(
    layout: Layout, x: Array, y: Array, arch: Arch, *, alpha: float, xp: ModuleType, put: Put,
    seen: dict[str, Any] | None = None, w: Array | None = None, n: Any = None,
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
    seen : dict, optional
        For a classification loss, each evaluation records there its point
        (``"theta"``) and how many samples it classifies right (``"correct"``),
        read back in the evaluation's one transfer: the training accuracy of
        each iteration without a second forward pass.
    w, n : optional
        Sample weights (N, 1) summing to 1 and their total, the penalty's
        sample count (:func:`bpnet.kernels.sample_weights`).
    """
    counts = seen is not None and arch.loss.correct is not None
    ops = fast.ops(xp)
    if ops.inplace:
        return _in_place(layout, x, y, arch, alpha=alpha, xp=xp, put=put, ops=ops,
                         seen=seen if counts else None, w=w, n=n)

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        tree = layout.unravel(put(theta), xp=xp)  # one transfer in
        if counts:
            value, grads, z = kernels.loss_and_grad(tree, x, y, arch, alpha=alpha, xp=xp,  # type: ignore[misc]
                                                    w=w, n=n, keep_output=True)
            right = xp.astype(correct_count(arch.loss, z, y, xp), value.dtype)
            head = [xp.reshape(value, (1,)), xp.reshape(right, (1,))]
        else:
            value, grads = kernels.loss_and_grad(tree, x, y, arch, alpha=alpha, xp=xp,  # type: ignore[misc]
                                                 w=w, n=n)
            head = [xp.reshape(value, (1,))]
        packed = xp.concat([*head, layout.ravel(grads, xp=xp)])
        host = np.asarray(to_numpy(lazy.materialize(xp, packed)[0]), dtype=np.float64)  # one out
        if counts:
            seen["theta"], seen["correct"] = np.array(theta, copy=True), float(host[1])  # type: ignore[index]
        return float(host[0]), host[len(head):]

    return value_and_grad


def _in_place(
    layout: Layout, x: Array, y: Array, arch: Arch, *, alpha: float, xp: ModuleType, put: Put,
    ops: Any, seen: dict[str, Any] | None, w: Array | None, n: Any,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """:func:`objective` on a backend whose ops write in place (NumPy, CuPy,
    PyTorch): backprop writes the gradient straight into one buffer that also
    holds the loss (and the count of right answers) ahead of it, so each
    evaluation still brings back one vector, with no concatenation."""
    head = 2 if seen is not None else 1
    made: list[Any] = []  # (buffer, its gradient views), made on the first evaluation

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        flat = put(theta)  # one transfer in
        tree = layout.unravel(flat, xp=xp)
        if not made:  # in the parameters' own dtype and device
            buffer = xp.zeros((head + layout.n_params,), dtype=flat.dtype,
                              device=device_of(flat))
            made.extend((buffer, layout.unravel(buffer[head:], xp=xp)))
        buffer, gtree = made
        out = kernels.loss_and_grad(tree, x, y, arch, alpha=alpha, xp=xp, w=w, n=n, ops=ops,
                                    out=gtree, keep_output=seen is not None)
        buffer[0] = out[0]
        if seen is not None:
            buffer[1] = xp.astype(correct_count(arch.loss, out[2], y, xp), buffer.dtype)  # type: ignore[misc]
        # one transfer out, copied: the buffer is written again by the next evaluation
        host = np.array(to_numpy(buffer), dtype=np.float64, copy=True)
        if seen is not None:
            seen["theta"], seen["correct"] = np.array(theta, copy=True), float(host[1])
        return float(host[0]), host[head:]

    return value_and_grad


def fit_lbfgs(
    layout: Layout, run: Run, x: Array, y: Array, val: tuple[Array, ...] | None,
    opts: FitOptions, history: History, *, arch: Arch, xp: ModuleType, put: Put,
    publish: Callable[[Params], None], weights: tuple[Array, float] | None = None,
) -> History:
    """Minimise the full-batch loss from ``run.params`` (a host float64 vector).

    ``weights`` are the samples' weights (N, 1) and their total (the weighted
    mean, :func:`bpnet.kernels.sample_weights`); ``val`` is ``(x, y)`` or, with
    weights of its own, ``(x, y, w, total)`` (:func:`~bpnet.train.loop.val_metrics`).

    ``run.params`` holds the last accepted point throughout (also when an
    exception ends the run), and the final one at the end.

    Raises
    ------
    FloatingPointError
        When the loss is not finite at the starting weights.
    """
    seen: dict[str, Any] = {}
    w, n = (None, None) if weights is None else kernels.sample_weights(*weights)
    value_and_grad = objective(layout, x, y, arch, alpha=opts.alpha, xp=xp, put=put, seen=seen,
                               w=w, n=n)
    counts = arch.loss.correct is not None
    x0 = run.params
    f0, _ = value_and_grad(x0)
    if not math.isfinite(f0):
        raise FloatingPointError("the loss is not finite at the starting weights")
    if val is not None and not finite_loss(layout.unravel(put(x0), xp=xp), val[0], val[1],
                                           arch, opts.alpha, xp):
        raise FloatingPointError("the validation loss is not finite at the starting weights")
    monitor = Monitor(None, opts.patience, active=False)
    bar = Bar(opts.epochs, opts.progress, unit="iter")
    start = time.perf_counter()

    def on_iteration(theta: np.ndarray, value: float) -> bool:
        run.params = np.array(theta, copy=True)
        accuracy = val_loss = val_accuracy = None
        if counts:
            if "theta" in seen and np.array_equal(seen["theta"], theta):
                right = seen["correct"]  # the iterate is the last point evaluated
            else:  # not seen: count with a forward pass of its own
                _, c = kernels.metrics(layout.unravel(put(theta), xp=xp), x, y, arch, xp=xp)
                right = host_scalars(xp, [c])[0]
            accuracy = right / x.shape[0]
        monitored = value
        if val is not None:
            tree = layout.unravel(put(theta), xp=xp)
            v_loss, v_acc, total = val_metrics(tree, val, arch, xp)
            host = host_scalars(xp, [v_loss] + ([] if v_acc is None else [v_acc]))
            val_loss = monitored = host[0]
            if len(host) > 1:
                val_accuracy = host[1] / total
        # the line search picks each step: no learning rate
        history.record(loss=value, lr=float("nan"), started=start, accuracy=accuracy,
                       val_loss=val_loss, val_accuracy=val_accuracy)
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
        exc.history = history  # type: ignore[attr-defined]
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

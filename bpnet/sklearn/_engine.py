"""What the estimators train with: bpnet's step, epoch and L-BFGS objective, on
data checked and moved to the network's device once per ``fit``.

``MLP.partial_fit`` checks and uploads its data on every call, which the
estimators would pay once per epoch, and ``MLP.fit`` owns its stopping rules,
which are not scikit-learn's.  This module is the estimators' one way below
the public :class:`bpnet.MLP`: it reads only a network's public attributes
(``arch``, ``layer_sizes``, ``xp``, ``device``, ``dtype``, ``params``) and
drives the same pieces ``MLP`` does (:func:`bpnet.train.step.make_step` and its
:meth:`~bpnet.train.step.Step.epoch`, :func:`bpnet.train.lbfgs.objective`,
:func:`bpnet.optim.lbfgs`).  Nothing here changes a network: the caller
commits the weights it gets back with ``MLP.set_params``.

What would let this module go, as public ``MLP`` API: ``net.dataset(X, Y)``
(checked and moved once, with ``.take(rows)``), ``net.trainer(optimizer, *,
alpha, ..., state=None)`` whose ``epoch(dataset, lr=, batch_size=, order=,
score=)`` runs one epoch without checks and without touching the network,
reading back loss, finiteness, the epoch's penalty sum and a validation score
in one transfer, and exposes ``params`` and a picklable ``state``; and
``net.minimize_lbfgs(dataset, max_iter=, gtol=, ftol=, max_fun=, callback=)``
returning the point instead of committing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import inputs as v
from .. import kernels
from .._typing import Array, Params
from ..backend import device_of, from_host, host_scalars, lazy, sparse, to_numpy
from ..model import MLP
from ..optim import lbfgs, make_optimizer
from ..params import Layout
from ..train import loop
from ..train.lbfgs import objective
from ..train.loop import Run
from ..train.step import make_step

__all__ = ["Kept", "Stochastic", "minimize_lbfgs", "take_rows", "to_device", "upload"]


def to_device(net: MLP, X: Any, Y: Any) -> tuple[Array, Array]:
    """(X, Y) checked and converted to ``net``'s backend, device and dtype: the
    one transfer of a fit.  ``Y`` is (N, n_outputs) in the loss's form."""
    x = v.as_input(X, n_features=net.n_features, backend=net.backend, xp=net.xp,
                   device=net.device, dtype=net.dtype)
    y = v.as_targets(Y, loss=net.arch.loss, n_outputs=net.n_outputs, n_samples=x.shape[0],
                     backend=net.backend, xp=net.xp, device=net.device, dtype=net.dtype)
    return x, lazy.match_rows(net.xp, y, x)  # Dask: a sample's x and y in one chunk


def take_rows(net: MLP, rows: np.ndarray, *arrays: Array) -> list[Array]:
    """``arrays`` restricted to ``rows`` (a host index vector), on their device:
    one small index transfer, no trip of the data through the host (a sparse
    ``X`` keeps its CSR rows)."""
    xp = net.xp
    index = xp.asarray(rows, device=device_of(arrays[-1]))
    return [sparse.take_rows(a, rows) if sparse.is_sparse(a) else xp.take(a, index, axis=0)
            for a in arrays]


def weights(net: MLP, host: np.ndarray, x: Array) -> tuple[Array, np.ndarray]:
    """Per-sample weights (host float64 (N,)) as the step reads them: (N, 1) on
    ``net``'s device in its dtype (rows chunked like ``x``), and the host copy."""
    column = np.ascontiguousarray(host.reshape(-1, 1), dtype=net.dtype_name)
    return lazy.match_rows(net.xp, from_host(net.xp, column, net.device), x), host


def upload(net: MLP, host: list[tuple[np.ndarray, np.ndarray]]) -> Params:
    """Host weights as arrays of ``net``'s backend, device and dtype."""
    dtype = net.dtype_name
    return [(from_host(net.xp, np.ascontiguousarray(W, dtype=dtype), net.device),
             from_host(net.xp, np.ascontiguousarray(b, dtype=dtype), net.device))
            for W, b in host]


@dataclass
class Kept:
    """Optimizer state carried from one call to the next (``partial_fit``).

    ``key`` names the optimizer and its settings: a state continues only under
    the same ones.  ``lr`` is the learning rate the schedule has reached.
    """

    key: tuple
    opt_state: Any
    lr: float


@dataclass(frozen=True)
class Epoch:
    """What one epoch reports, read back in one transfer."""

    loss: float
    finite: bool  # every weight finite after the epoch
    score: float | None  # validation score, when there is a validation set


def output_mean_loss(total: Any, penalty: Any, n_outputs: int) -> Any:
    """scikit-learn's squared-error loss from bpnet's: bpnet sums ½(y - p)² over
    the outputs (the loss its gradient is of, scikit-learn's gradient too),
    scikit-learn reports the mean over outputs, and adds the penalty unscaled."""
    return (total - penalty) / n_outputs + penalty


class Stochastic:
    """SGD or Adam epochs over device data, one host transfer per epoch.

    Parameters
    ----------
    net : MLP
        Gives the architecture, backend and device; never modified.
    solver : {"sgd", "adam"}
    alpha : float
        L2 penalty, scikit-learn's ``alpha / (2 n_batch) * sum ||W||^2``.
    momentum, nesterov, beta_1, beta_2, epsilon
        The optimizer's settings.  Nesterov with zero momentum is plain SGD.
    outputs : int
        Report the loss averaged over this many outputs, scikit-learn's
        squared error (:func:`output_mean_loss`); 1 reports bpnet's loss.
    """

    def __init__(self, net: MLP, *, solver: str, alpha: float, momentum: float,
                 nesterov: bool, beta_1: float, beta_2: float, epsilon: float,
                 outputs: int = 1) -> None:
        opt = make_optimizer(solver, momentum=momentum, nesterov=nesterov and momentum > 0,
                             beta1=beta_1, beta2=beta_2, epsilon=epsilon)
        self.net = net
        self.xp = net.xp
        self.opt = opt
        self.layout = Layout.from_sizes(net.layer_sizes)
        self.alpha = alpha
        self.outputs = outputs
        self._steps: dict[int | None, Any] = {}
        self._data: tuple[Any, Any] | None = None  # (key, data) of the last data set read
        self.step = self._step(None)
        self.key = (opt.key, self.step.flat)

    def _step(self, batch_size: int | None) -> Any:
        """The step for batches of ``batch_size`` (a backend may compile one per
        size); every one packs parameters alike."""
        if batch_size not in self._steps:
            self._steps[batch_size] = make_step(self.net.arch, self.opt, self.layout,
                                                alpha=self.alpha, xp=self.xp,
                                                batch_size=batch_size)
        return self._steps[batch_size]

    def start(self, params: Params, kept: Kept | None) -> Run:
        """A run from ``params``, continuing ``kept``'s optimizer state when its key
        matches (a fresh state otherwise)."""
        packed = self.step.pack(params)
        state = kept.opt_state if kept is not None and kept.key == self.key else None
        # A step may update its state in place: the kept one must survive a failure.
        return Run(packed, self.step.init(packed) if state is None else
                   self.step.copy_state(state), None)

    def params(self, run: Run) -> Params:
        return self.step.unpack(run.params)

    def snapshot(self, run: Run) -> Any:
        """``run``'s packed parameters as they are now, safe from later steps (a
        step may update its parameters in place)."""
        return self.step.copy(run.params, None)[0]

    def epoch(self, run: Run, x: Array, y: Array, *, order: np.ndarray | None, batch_size: int,
              lr: float, score: Callable[[Params], Array] | None = None,
              weights: tuple[Array, np.ndarray] | None = None) -> Epoch:
        """One pass over (x, y) in ``order`` (host indices; None keeps the rows'
        order), ``run`` advanced step by step.  ``score`` maps the epoch's weights
        to a 0-d validation score on the device; ``weights`` (:func:`weights`)
        weigh the samples."""
        n = x.shape[0]
        batch = min(batch_size, n)
        bounds = loop.batches(n, batch)
        if len(bounds) == 1:  # one batch: the order changes nothing
            order = None
        tally = self.outputs > 1 and bool(self.alpha)
        # Tallying the penalty reads the weights before every step: an eager step.
        step = self._step(None if tally else batch)
        data = self._read(step, x, y, batch, weights)
        if tally:
            total, penalty = self._tallied(step, run, data, order, bounds, lr)
            total = output_mean_loss(total, penalty, self.outputs)
        else:
            total = step.epoch(run, data, order, bounds, lr) / self.outputs
        run.params, run.opt_state = lazy.persist(self.xp, (run.params, run.opt_state))
        scalars = [total / n, loop.nonfinite_probe(step, run.params)]
        if score is not None:
            scalars.append(score(self.params(run)))
        host = host_scalars(self.xp, scalars)  # the epoch's one transfer
        return Epoch(host[0], bool(np.isfinite(host[1])),
                     host[2] if score is not None else None)

    def _read(self, step: Any, x: Array, y: Array, batch: int,
              weights: tuple[Array, np.ndarray] | None = None) -> Any:
        """``step.data`` of (x, y), made once for the arrays a fit passes every epoch
        (a compiling backend pads them to whole batches)."""
        key = (id(step), id(x), id(y), batch, None if weights is None else id(weights[0]))
        if self._data is None or self._data[0] != key:
            self._data = (key, step.data(x, y, batch, weights))
        return self._data[1]

    def _tallied(self, step: Any, run: Run, data: Any, order: np.ndarray | None,
                 bounds: list[tuple[int, int]], lr: float) -> tuple[Array, Array]:
        """:meth:`Step.epoch`, adding up beside it the L2 penalty each batch starts
        from times its size, ``alpha / 2 * ||W||^2``: the penalty part of the
        epoch's summed loss (for :attr:`outputs`)."""
        values, sizes, penalty = [], [], None
        for batch, size in step.batches(data, order, bounds):
            # a weighted batch's penalty is alpha / (2 sum w) ||W||^2, counted size times
            part = (kernels.l2_penalty(step.unpack(run.params), self.alpha, 1, self.xp)
                    if len(batch) == 2 else
                    kernels.l2_penalty(step.unpack(run.params), self.alpha, batch[3], self.xp)
                    * size)
            penalty = part if penalty is None else penalty + part
            run.params, run.opt_state, value = step(run.params, run.opt_state, batch, lr)
            values.append(value)
            sizes.append(size)
        return step.ops.epoch_total(values, sizes, self.xp), penalty


def validation_output(net: MLP, params: Params, x_val: Array) -> Array:
    """The network's output on ``x_val`` under ``params`` (probabilities for the
    classifiers), on the device."""
    return kernels.predict(params, x_val, net.arch, xp=net.xp)


def minimize_lbfgs(net: MLP, params: Params, x: Array, y: Array, *, alpha: float,
                   max_iter: int, max_fun: int, gtol: float, outputs: int = 1,
                   callback: Callable[[float], None] | None = None,
                   weights: tuple[Array, np.ndarray] | None = None,
                   ) -> tuple[Params, Any, float]:
    """Minimise the full-batch loss with L-BFGS-B from ``params``, scikit-learn's
    way: ``tol`` is the projected-gradient tolerance alone (``ftol`` stays at
    SciPy's default), ``max_fun`` bounds the evaluations.

    The function minimised is bpnet's loss with its exact gradient;
    ``callback`` and the returned loss see it averaged over ``outputs`` outputs
    as scikit-learn reports it (:func:`output_mean_loss`).

    Returns
    -------
    params : list of (W, b)
        The final point, on the device.
    result : scipy.optimize.OptimizeResult
    loss : float
        The final loss, as reported.
    """
    xp = net.xp
    layout = Layout.from_sizes(net.layer_sizes)
    dtype = net.dtype_name

    def put(theta: np.ndarray) -> Array:
        return from_host(xp, np.ascontiguousarray(theta, dtype=dtype), net.device)

    n = x.shape[0]
    w = None
    if weights is not None:  # scikit-learn's weighted mean and penalty alpha / (2 sum w)
        w, n = kernels.sample_weights(weights[0], float(weights[1].sum()))
    value_and_grad = objective(layout, x, y, net.arch, alpha=alpha, xp=xp, put=put, w=w,
                               n=None if w is None else n)
    theta0 = np.asarray(to_numpy(layout.ravel(params, xp=xp)), dtype=np.float64)

    def reported(theta: np.ndarray, loss: float) -> float:
        if outputs == 1:
            return float(loss)
        penalty = float(kernels.l2_penalty(layout.unravel(theta, xp=np), alpha, n, np))
        return float(output_mean_loss(loss, penalty, outputs))

    on_iteration = None if callback is None else (
        lambda theta, loss: callback(reported(theta, loss)))
    result = lbfgs(value_and_grad, theta0, maxiter=max_iter, gtol=gtol, maxfun=max_fun,
                   callback=on_iteration)
    theta = np.asarray(result.x, dtype=np.float64)
    return layout.unravel(put(theta), xp=xp), result, reported(theta, result.fun)

"""The fit loop: minibatches indexed on the device, one host sync per epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as v
from . import kernels
from ._namespace import materialize, to_numpy

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["History", "fit"]


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch (the average over its batches).
    time : list of float
        Seconds since the start of the fit at the end of each epoch.
    """

    loss: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)


def fit(
    net: MLP, X: Any, Y: Any, *, optimizer: str = "sgd", lr: float = 0.1, epochs: int = 100,
    batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
) -> History:
    """Minibatch gradient descent on (X, Y).

    Parameters
    ----------
    net : MLP
    X : array (N, n_features)
    Y : array
        Targets as :meth:`MLP.loss_and_grad` takes them.
    optimizer : {"sgd"}
    lr : float
        Learning rate, > 0.
    epochs : int
        Passes over the data, > 0.
    batch_size : int or None
        Samples per step; ``None`` is the full batch.
    shuffle : bool
        Reorder the samples every epoch (on the device).
    seed : int or None
        Seed for the shuffling.

    Returns
    -------
    History
    """
    if optimizer != "sgd":
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of: sgd")
    lr = v.check_positive("lr", lr)
    epochs = v.check_positive("epochs", epochs, integer=True)
    batch_size = v.check_positive("batch_size", batch_size, integer=True, allow_none=True)
    x, y = net._xy(X, Y)
    xp = net.xp
    n = x.shape[0]
    bs = n if batch_size is None else min(batch_size, n)
    rng = np.random.default_rng(seed)
    params = net.params
    history = History()
    start = time.perf_counter()
    for _ in range(epochs):
        if shuffle and bs < n:
            order = xp.asarray(rng.permutation(n), device=net.device)
            xe, ye = xp.take(x, order, axis=0), xp.take(y, order, axis=0)
        else:
            xe, ye = x, y
        total = None
        for lo in range(0, n, bs):
            hi = min(lo + bs, n)  # the standard leaves out-of-bounds slice stops undefined
            xb, yb = xe[lo:hi, ...], ye[lo:hi, ...]
            value, grads = kernels.loss_and_grad(
                params, xb, yb, net.hidden, net._out_act, net._loss, xp=xp
            )
            params = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]
            weighted = value * xb.shape[0]
            total = weighted if total is None else total + weighted
        (total,) = materialize(xp, total)
        history.loss.append(float(to_numpy(total)) / n)
        history.time.append(time.perf_counter() - start)
        net._params = params
    return history

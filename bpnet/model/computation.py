"""What an :class:`~bpnet.model.MLP` computes on data without training: its
inputs checked and moved (``X``, ``Y``, ``sample_weight``), the loss and its
gradient, numerical gradients, predictions and evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _typing as t
from .. import inputs as v
from .. import kernels
from .._typing import Array, ArrayLike
from ..backend import fast, from_host, host_scalars, lazy, on_its_device, to_numpy
from ..finite_diff import check_method, numerical_grad

if TYPE_CHECKING:
    from .._typing import Arch, Device, Namespace, Params

__all__ = ["Computation"]


class Computation:
    """The part of :class:`~bpnet.model.MLP` that evaluates it on data."""

    if TYPE_CHECKING:  # what the MLP mixing this in holds (bpnet.model.mlp, training)
        xp: Namespace
        device: Device
        dtype: Any
        backend: str
        _arch: Arch
        _params: Params

        @property
        def arch(self) -> Arch: ...
        @property
        def n_features(self) -> int: ...
        @property
        def n_outputs(self) -> int: ...
        @property
        def dtype_name(self) -> str: ...
        def _finite(self, where: str, value: float, x: Array, y: Array,
                    alpha: float) -> float: ...

    # -- data ----------------------------------------------------------------------
    def _x(self, X: ArrayLike, name: str = "X") -> Array:
        return v.as_input(
            X, n_features=self.n_features, backend=self.backend, xp=self.xp,
            device=self.device, dtype=self.dtype, name=name,
        )

    def _xy(self, X: ArrayLike, Y: ArrayLike, prefix: str = "") -> tuple[Array, Array]:
        """(X, Y) checked and moved to the network's backend, device and dtype;
        ``prefix`` names them in errors (``"validation "``)."""
        v.check_same_source(**{f"{prefix}X": X, f"{prefix}Y": Y})
        x = self._x(X, name=f"{prefix}X")
        y = v.as_targets(
            Y, loss=self._arch.loss, n_outputs=self.n_outputs, n_samples=x.shape[0],
            backend=self.backend, xp=self.xp, device=self.device, dtype=self.dtype,
            name=f"{prefix}Y",
        )
        return x, lazy.match_rows(self.xp, y, x)  # Dask: a sample's x and y in one chunk

    def _weights(self, sample_weight: ArrayLike | None, x: Array,
                 name: str = "sample_weight") -> tuple[Array, np.ndarray] | None:
        """Checked per-sample weights as (N, 1) on the device (rows chunked like
        ``x``) and (N,) float64 on the host; None without weights (or all 1)."""
        host = v.as_sample_weight(sample_weight, x.shape[0], name=name)
        if host is None:
            return None
        column = np.ascontiguousarray(host.reshape(-1, 1), dtype=self.dtype_name)
        w = lazy.match_rows(self.xp, from_host(self.xp, column, self.device), x)
        return w, host

    # -- computation -----------------------------------------------------------------
    @on_its_device
    def loss_and_grad(
        self, X: ArrayLike, Y: ArrayLike, *, alpha: float = 0.0,
        sample_weight: ArrayLike | None = None,
    ) -> tuple[float, list[tuple[Array, Array]]]:
        """Mean loss on (X, Y) and its gradient by backpropagation.

        Parameters
        ----------
        X : array (N, n_features)
            Dense, or scipy.sparse (CSR/CSC) on the NumPy backend.
        Y : array
            (N, k) targets; (N,) when k = 1; (N,) integer labels or (N, k)
            one-hot for ``cross_entropy``.
        alpha : float, default 0
            L2 penalty, ``alpha / (2N) * sum ||W||^2``; ``N`` is the total
            weight with ``sample_weight``.
        sample_weight : array (N,), optional
            Non-negative weights: the loss is ``sum_i w_i l_i / sum_i w_i``
            (scikit-learn's), so integer weights act as repeated rows.

        Returns
        -------
        loss : float
        grads : list of (dW, db)
            Same structure, shapes, backend, device and dtype as :attr:`params`.
        """
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        weights = self._weights(sample_weight, x)
        w, n = (None, None) if weights is None else kernels.sample_weights(
            weights[0], float(weights[1].sum()))
        value, grads = fast.loss_and_grad_fn(self.xp)(self._params, x, y, self.arch,
                                                      alpha=alpha, xp=self.xp, w=w, n=n)
        value, grads = lazy.materialize_step(self.xp, value, grads)  # Dask: one compute
        return float(to_numpy(value)), grads

    @on_its_device
    def compute_loss(self, X: ArrayLike, Y: ArrayLike, *, alpha: float = 0.0,
                     sample_weight: ArrayLike | None = None) -> float:
        """Mean loss on (X, Y), one forward pass (weighted as for
        :meth:`loss_and_grad`); a FloatingPointError naming the data or the
        weights as the cause when it overflows the network's dtype."""
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        weights = self._weights(sample_weight, x)
        w, n = (None, None) if weights is None else kernels.sample_weights(
            weights[0], float(weights[1].sum()))
        value = kernels.loss_value(self._params, x, y, self.arch, alpha=alpha, xp=self.xp,
                                   w=w, n=n)
        value = float(to_numpy(lazy.materialize(self.xp, value)[0]))
        return self._finite("compute_loss", value, x, y, alpha)

    @on_its_device
    def numerical_grad(
        self, X: ArrayLike, Y: ArrayLike, eps: float | None = None, *,
        method: t.DiffMethod = "central", alpha: float = 0.0,
    ) -> list[tuple[Array, Array]]:
        """Gradient by numerical differentiation, one parameter at a time (slow
        on purpose; see :mod:`bpnet.finite_diff` for the methods and steps).

        ``method`` is ``"central"`` (2P forward passes, error O(eps^2)),
        ``"forward"`` (P + 1, O(eps)), ``"complex_step"`` (P complex passes) or
        ``"forward_mode"`` (P dual passes; both exact to rounding).  ``eps`` is
        every parameter's step; by default each gets its own, from the theory
        and its magnitude (none for forward mode).  Returns ``[(dW, db), ...]``
        like :attr:`params`; a ValueError for an unknown method, a TypeError
        for the complex step on a backend without complex dtypes.
        """
        method = check_method(method)
        if eps is not None:
            eps = v.check_positive("eps", eps)
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        grads = numerical_grad(self._params, x, y, self.arch, method=method, alpha=alpha,
                               eps=eps, xp=self.xp)
        return lazy.materialize_step(self.xp, None, grads)[1]

    @on_its_device
    def predict(self, X: ArrayLike) -> Array:
        """Network output (N, k): probabilities for ``cross_entropy`` (softmax) and
        ``binary_cross_entropy`` (sigmoid), ``exp(z)`` for ``poisson``, the output
        activation otherwise.

        An array of the network's backend on its device; on Dask a lazy array
        chunked by rows like ``X``.  ``X`` may be scipy.sparse on NumPy."""
        x = self._x(X)
        # Dask: left lazy, one row chunk per chunk of X, to compute, persist or
        # store as the caller likes (the dask-ml convention).
        return kernels.predict(self._params, x, self.arch, xp=self.xp)

    @on_its_device
    def evaluate(self, X: ArrayLike, Y: ArrayLike, *, batch_size: int | None = None,
                 sample_weight: ArrayLike | None = None) -> dict[str, float]:
        """Mean loss on (X, Y), and ``accuracy`` for classification losses.

        Parameters
        ----------
        X : array (N, n_features)
        Y : array
            Targets as for :meth:`fit`.
        batch_size : int or None
            Rows per forward pass; ``None`` evaluates all rows at once.
        sample_weight : array (N,), optional
            Weights of the samples: a weighted mean loss (as
            :meth:`compute_loss`, without penalty) and a weighted accuracy
            (the right samples' share of the total weight).

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}`` (accuracy, the fraction of
            samples whose predicted class is right, only for ``cross_entropy``,
            ``binary_cross_entropy`` and ``logistic``).

        Raises
        ------
        FloatingPointError
            When the loss overflows the dtype, naming the data or the weights.
        """
        batch_size = v.check_positive("batch_size", batch_size, integer=True, allow_none=True)
        x, y = self._xy(X, Y)
        weights = self._weights(sample_weight, x)
        sw, total = (None, None) if weights is None else (weights[0], float(weights[1].sum()))
        loss, right = kernels.metrics(self._params, x, y, self.arch, batch_size=batch_size,
                                      xp=self.xp, sw=sw, total=total)
        host = host_scalars(self.xp, [loss] + ([] if right is None else [right]))
        out = {"loss": self._finite("evaluate", host[0], x, y, 0.0)}
        if right is not None:
            out["accuracy"] = host[1] / (x.shape[0] if total is None else total)
        return out

"""The :class:`MLP`: the thin object users hold.

It keeps the configuration and the parameters, checks and converts what users
pass in, and calls the pure kernels in :mod:`bpnet.kernels`.  Arrays go to the
network's backend, device and dtype once, at this boundary.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _validate as v
from . import kernels
from . import train as _train
from ._backends import loss_and_grad_fn, specialize_hidden
from ._namespace import (
    backend_name,
    default_device,
    device_from_state,
    device_state,
    dtype_name,
    from_host,
    get_namespace,
    match_rows,
    materialize,
    materialize_step,
    resolve_dtype,
    to_numpy,
)
from .activations import get_activation
from .losses import get_loss, output_activation
from .numerical import numerical_grad
from .params import init_params_host, n_params, shapes

if TYPE_CHECKING:
    from .train import History

__all__ = ["MLP"]

Array = Any


class MLP:
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first and output last: ``[64, 128, 10]`` is 64
        inputs, one hidden layer of 128 and 10 outputs.
    activation : str, default "relu"
        Hidden-layer activation: ``identity``, ``sigmoid`` (alias ``logistic``),
        ``tanh``, ``relu``, ``leaky_relu`` or ``softplus``.
    loss : str, default "mse"
        ``mse``, ``logistic``, ``cross_entropy`` or ``binary_cross_entropy``.
    output_activation : str or None
        Output activation; ``None`` picks the loss's own (identity for ``mse``
        and ``logistic``, softmax for ``cross_entropy``, sigmoid for
        ``binary_cross_entropy``).  ``mse`` also takes ``sigmoid`` or ``tanh``.
    backend : str or module, default "numpy"
        ``numpy``, ``array_api_strict``, ``cupy``, ``torch``, ``jax``, ``dask``,
        ``auto`` (CuPy when a CUDA device answers, else NumPy), or a namespace.
    device : optional
        Device of the backend (``"cuda"`` for torch,
        ``array_api_strict.Device("device1")``...); ``None`` for its default.
    dtype : {"float32", "float64"}, default "float32"
    seed : int or None, default 0
        Seed of the host generator that draws the initial weights; the same seed
        gives the same weights on every backend.

    Attributes
    ----------
    params : list of (W, b)
        ``W`` (fan_in, fan_out), ``b`` (fan_out,), arrays of the backend.
    xp : module
        The Array API namespace of the backend.
    """

    def __init__(
        self,
        layer_sizes: Any,
        activation: str = "relu",
        loss: str = "mse",
        output_activation: str | None = None,
        backend: str | ModuleType = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: int | None = 0,
    ) -> None:
        sizes = v.check_layer_sizes(layer_sizes)
        self._hidden_act = get_activation(activation)
        self._loss = get_loss(loss)
        self._out_act = _output(self._loss, output_activation)
        self.seed = v.check_seed(seed)
        xp = get_namespace(backend)
        self.dtype = resolve_dtype(xp, dtype)
        self.device = _check_device(xp, device)
        self.xp = xp
        self.backend = backend_name(xp)
        self.layer_sizes = sizes
        self.activation = self._hidden_act.name
        self.loss = self._loss.name
        self.output_activation = output_activation or self._loss.default_output
        inits = [self._hidden_act.init] * (len(sizes) - 2) + ["glorot"]
        host = init_params_host(sizes, inits, self.seed)
        self._params = [(self._to_backend(W), self._to_backend(b)) for W, b in host]
        self._optimizer_state = None  # kept by fit/partial_fit, see bpnet.train

    # -- configuration ---------------------------------------------------------
    @property
    def hidden(self) -> list:
        """The hidden layers' :class:`~bpnet.activations.Activation` objects (with
        the backend's fused derivatives where it has them, see :mod:`bpnet._backends`)."""
        return specialize_hidden(self.xp, [self._hidden_act] * (len(self.layer_sizes) - 2))

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return n_params(self._params)

    @property
    def n_features(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.xp, self.dtype)

    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this network, as plain Python values."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "activation": self.activation,
            "loss": self.loss,
            "output_activation": self.output_activation,
            "backend": self.backend,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in self.layer_sizes)
        return (
            f"MLP({sizes}, activation={self.activation!r}, loss={self.loss!r}, "
            f"output={self.output_activation!r}, backend={self.backend!r}, "
            f"device={self.device!r}, dtype={self.dtype_name!r}, params={self.n_params})"
        )

    # -- parameters --------------------------------------------------------------
    @property
    def params(self) -> list[tuple[Array, Array]]:
        """``[(W_1, b_1), ..., (W_L, b_L)]`` as arrays of the backend, on its device."""
        return list(self._params)

    def set_params(self, params: Any) -> None:
        """Replace every parameter.

        Parameters
        ----------
        params : sequence of (W, b)
            Array-likes (NumPy arrays, lists, arrays of this backend) with the
            network's shapes; converted to its backend, device and dtype.

        Raises
        ------
        ValueError, TypeError
            Wrong number of layers, wrong shapes, non-numeric or non-finite
            values.  The old parameters are kept.
        """
        pairs = v.check_params(params, shapes(self._params))
        new = []
        for l, (W, b) in enumerate(pairs, start=1):
            new.append((self._as_param(W, f"W{l}"), self._as_param(b, f"b{l}")))
        self._params = new

    def _as_param(self, t: Any, name: str) -> Array:
        arr = t
        if v.array_backend(t) not in (None, "numpy", self.backend):
            arr = to_numpy(t)  # another library's array: through the host, once
        if v.array_backend(arr) == self.backend and self.backend != "numpy":
            ok = self.xp.isdtype(arr.dtype, ("real floating", "integral"))
            if not ok:
                raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
            if not bool(to_numpy(self.xp.all(self.xp.isfinite(arr)))):
                raise ValueError(f"{name} contains NaN or infinite values")
            return v._to_backend(arr, self.xp, self.xp, self.device, self.dtype)
        host = v._numeric_host(arr, name)
        if not np.all(np.isfinite(host)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return self._to_backend(host)

    def _to_backend(self, host: np.ndarray) -> Array:
        return from_host(self.xp, np.ascontiguousarray(host, dtype=self.dtype_name),
                         self.device)

    def to(self, backend: Any = None, device: Any = None, dtype: Any = None) -> MLP:
        """A copy of this network on another backend, device or dtype.

        Unspecified settings keep their current value (the device resets to the
        new backend's default when the backend changes).
        """
        same_backend = backend is None or backend == self.backend
        twin = MLP(
            self.layer_sizes,
            activation=self.activation,
            loss=self.loss,
            output_activation=self.output_activation,
            backend=self.backend if backend is None else backend,
            device=(self.device if same_backend else None) if device is None else device,
            dtype=self.dtype_name if dtype is None else dtype,
            seed=self.seed,
        )
        twin.set_params([(to_numpy(W), to_numpy(b)) for W, b in self._params])
        return twin

    def astype(self, dtype: Any, backend: Any = None) -> MLP:
        """A copy of this network in another dtype (optionally on another backend)."""
        return self.to(backend=backend, dtype=dtype)

    # -- data ----------------------------------------------------------------------
    def _x(self, X: Any, name: str = "X") -> Array:
        return v.as_input(
            X, n_features=self.n_features, backend=self.backend, xp=self.xp,
            device=self.device, dtype=self.dtype, name=name,
        )

    def _xy(self, X: Any, Y: Any, prefix: str = "") -> tuple[Array, Array]:
        """(X, Y) checked and moved to the network's backend, device and dtype;
        ``prefix`` names them in errors (``"validation "``)."""
        v.check_same_source(**{f"{prefix}X": X, f"{prefix}Y": Y})
        x = self._x(X, name=f"{prefix}X")
        y = v.as_targets(
            Y, loss=self._loss, n_outputs=self.n_outputs, n_samples=x.shape[0],
            backend=self.backend, xp=self.xp, device=self.device, dtype=self.dtype,
            name=f"{prefix}Y",
        )
        return x, match_rows(self.xp, y, x)  # Dask: a sample's x and y in one chunk

    # -- computation -----------------------------------------------------------------
    def loss_and_grad(
        self, X: Any, Y: Any, *, alpha: float = 0.0
    ) -> tuple[float, list[tuple[Array, Array]]]:
        """Mean loss on (X, Y) and its gradient by backpropagation.

        Parameters
        ----------
        X : array (N, n_features)
        Y : array
            (N, k) targets; (N,) when k = 1; (N,) integer labels or (N, k)
            one-hot for ``cross_entropy``.
        alpha : float, default 0
            L2 penalty, ``alpha / (2N) * sum ||W||^2``.

        Returns
        -------
        loss : float
        grads : list of (dW, db)
            Same structure, shapes, backend, device and dtype as :attr:`params`.
        """
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        value, grads = loss_and_grad_fn(self.xp)(
            self._params, x, y, self.hidden, self._out_act, self._loss, alpha=alpha, xp=self.xp
        )
        value, grads = materialize_step(self.xp, value, grads)  # Dask: one compute for all
        return float(to_numpy(value)), grads

    def compute_loss(self, X: Any, Y: Any, *, alpha: float = 0.0) -> float:
        """Mean loss on (X, Y), one forward pass."""
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        value = kernels.loss_value(
            self._params, x, y, self.hidden, self._out_act, self._loss, alpha=alpha, xp=self.xp
        )
        return float(to_numpy(materialize(self.xp, value)[0]))

    def numerical_grad(
        self, X: Any, Y: Any, eps: float | None = None, *, alpha: float = 0.0
    ) -> list[tuple[Array, Array]]:
        """Gradient by naive central finite differences: one parameter at a time,
        two full forward passes each (2P passes).  Slow on purpose; see
        :mod:`bpnet.numerical`.

        Returns
        -------
        list of (dW, db)
            Same structure as :attr:`params`.
        """
        if eps is not None:
            eps = v.check_positive("eps", eps)
        alpha = v.check_nonnegative("alpha", alpha)
        x, y = self._xy(X, Y)
        grads = numerical_grad(
            self._params, x, y, self.hidden, self._out_act, self._loss,
            alpha=alpha, eps=eps, xp=self.xp,
        )
        return materialize_step(self.xp, None, grads)[1]

    def predict(self, X: Any) -> Array:
        """Network output (N, k): probabilities for ``cross_entropy`` (softmax) and
        ``binary_cross_entropy`` (sigmoid), the output activation otherwise.

        An array of the network's backend on its device; on Dask a lazy array
        chunked by rows like ``X``."""
        x = self._x(X)
        # Dask: left lazy, one row chunk per chunk of X, to compute, persist or
        # store as the caller likes (the dask-ml convention).
        return kernels.predict(self._params, x, self.hidden, self._out_act, self._loss, xp=self.xp)

    # -- training ----------------------------------------------------------------------
    def fit(self, X: Any, Y: Any, **kwargs: Any) -> History:
        """Train on (X, Y); see :func:`bpnet.train.fit` for the options.

        Returns
        -------
        History
            Per-epoch training loss, validation loss and accuracy, times.
        """
        return _train.fit(self, X, Y, **kwargs)

    def partial_fit(
        self, X: Any, Y: Any, *, optimizer: str = "adam", lr: float | None = None,
        batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
        alpha: float = 0.0, **optimizer_options: Any,
    ) -> float:
        """One epoch over (X, Y), continuing the optimizer state of earlier calls.

        See :func:`bpnet.train.partial_fit`.

        Returns
        -------
        float
            The epoch's mean training loss.
        """
        return _train.partial_fit(
            self, X, Y, optimizer=optimizer, lr=lr, batch_size=batch_size, shuffle=shuffle,
            seed=seed, alpha=alpha, **optimizer_options,
        )

    def reset_optimizer(self) -> None:
        """Forget the optimizer state kept by :meth:`fit` and :meth:`partial_fit`."""
        self._optimizer_state = None

    def evaluate(self, X: Any, Y: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss on (X, Y), and ``accuracy`` for classification losses.

        Parameters
        ----------
        X : array (N, n_features)
        Y : array
            Targets as for :meth:`fit`.
        batch_size : int or None
            Rows per forward pass; ``None`` evaluates all rows at once.

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}`` (accuracy only for
            ``cross_entropy``, ``binary_cross_entropy`` and ``logistic``).
        """
        return _train.evaluate(self, X, Y, batch_size=batch_size)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write configuration and weights to an ``.npz`` file, atomically.

        See :func:`bpnet.serialization.save`.
        """
        from .serialization import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, backend: Any = None, device: Any = None,
             dtype: Any = None) -> MLP:
        """Read a network written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        backend, device, dtype : optional
            Override the saved backend (e.g. ``"numpy"`` for a model trained on a
            GPU), device and dtype.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            When the file is not a bpnet model (truncated, foreign, newer format).
        """
        from .serialization import load

        return load(path, backend=backend, device=device, dtype=dtype)

    # -- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Namespaces are modules, which do not pickle: keep the backend's name and
        # host copies of the weights, and rebuild the rest on unpickling.
        state = self.__dict__.copy()
        state["xp"] = self.backend
        state["_params"] = [(to_numpy(W), to_numpy(b)) for W, b in self._params]
        state["dtype"] = self.dtype_name
        state["device"] = device_state(self.xp, self.device)
        # Optimizer moments may be device arrays; a restored net starts them afresh.
        state["_optimizer_state"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.xp = get_namespace(state["xp"])
        self.dtype = resolve_dtype(self.xp, state["dtype"])
        self.device = device_from_state(self.xp, state["device"])
        self._params = [(self._to_backend(W), self._to_backend(b)) for W, b in state["_params"]]


def _output(loss, name):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"output_activation must be a string or None, got {name!r}")
    return output_activation(loss, name)


def _check_device(xp: ModuleType, device: Any) -> Any:
    if device is None:
        return default_device(xp)
    try:
        probe = xp.empty((0,), device=device)
    except Exception as exc:
        raise ValueError(
            f"device {device!r} is not available on backend {backend_name(xp)!r}: {exc}"
        ) from None
    from ._namespace import device_of

    return device_of(probe)

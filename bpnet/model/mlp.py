"""The :class:`MLP`: the object users hold.

It keeps the configuration, the parameters and the training state between
calls; it checks and converts what users pass in (:mod:`bpnet.inputs`), then
hands explicit arguments to the pure pieces: the kernels
(:mod:`bpnet.kernels`), the training step and loop (:mod:`bpnet.train`), the
finite differences (:mod:`bpnet.finite_diff`) and the file format
(:mod:`bpnet.serialization`, through :mod:`~bpnet.model.persistence`).  With
the other modules of :mod:`bpnet.model` it is the only code that touches an
MLP's private state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _typing as t
from .. import inputs as v
from .._typing import Arch, Array, ArrayLike, Params
from ..activations import Activation, get_activations
from ..backend import (
    backend_name,
    check_device,
    dtype_name,
    from_host,
    get_namespace,
    on_its_device,
    resolve_dtype,
    threads,
    to_numpy,
)
from ..losses import get_loss, output_activation
from ..params import Layout, init_params_host
from ..train import loop
from ..train.loop import History, Kept, Run, finite_loss, state_key
from ..train.options import PARTIAL_FIT_OPTIONS, FitOptions, fit_options, numpydoc
from ..train.step import make_step
from .computation import Computation
from .persistence import Persistence
from .summary import Summary, summary
from .training import Training

__all__ = ["MLP"]


def _given(scope: dict[str, Any]) -> dict[str, Any]:
    """The fit options among a method's arguments (its ``locals()``)."""
    return {name: scope[name] for name in FitOptions.__dataclass_fields__ if name in scope}


class MLP(Computation, Training, Persistence):
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first and output last: ``[64, 128, 10]`` is 64
        inputs, one hidden layer of 128 and 10 outputs.
    activation : str or sequence of str, default "relu"
        Hidden-layer activation: ``identity``, ``sigmoid`` (alias ``logistic``),
        ``tanh``, ``relu``, ``leaky_relu``, ``softplus`` or one registered with
        :func:`bpnet.register_activation`; a list gives one per hidden layer
        (``["relu", "tanh"]``).
    loss : str, default "mse"
        ``mse``, ``logistic``, ``cross_entropy``, ``binary_cross_entropy`` or one
        registered with :func:`bpnet.register_loss`.
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
    tf32 : bool or None, default None
        float32 matrix products on NVIDIA tensor cores in TensorFloat-32 (CuPy,
        torch on CUDA, JAX on a GPU): ``True`` for this network's calls (3-5x
        faster products, agreeing with float64 to ~1e-3 instead of ~1e-6),
        ``False`` for full float32, ``None`` to leave the library's own setting
        alone (off in torch and CuPy unless ``CUPY_TF32=1``; JAX's GPU default
        is TF32-class).  CPU backends and float64 ignore it.

    Attributes
    ----------
    params : list of (W, b)
        ``W`` (fan_in, fan_out), ``b`` (fan_out,), arrays of the backend.
    xp : module
        The Array API namespace of the backend.

    Examples
    --------
    >>> net = bpnet.MLP([4, 16, 3], loss="cross_entropy", dtype="float64", seed=0)
    >>> X, y = np.random.default_rng(0).standard_normal((30, 4)), np.arange(30) % 3
    >>> history = net.fit(X, y, epochs=20)
    >>> net.predict(X[:2]).shape, sorted(net.evaluate(X, y))  # softmax probabilities
    ((2, 3), ['accuracy', 'loss'])
    >>> fd = net.numerical_grad(X, y, method="complex_step")  # [(dW, db), ...], no backprop
    >>> bool(np.allclose(fd[0][0], net.loss_and_grad(X, y)[1][0][0], rtol=1e-10, atol=0))
    True
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str | list[str] = "relu",
        loss: str = "mse",
        output_activation: str | None = None,
        backend: t.BackendLike = "numpy",
        device: t.Device = None,
        dtype: t.DTypeLike = "float32",
        seed: int | None = 0,
        tf32: bool | None = None,
    ) -> None:
        sizes = v.check_layer_sizes(layer_sizes)
        hidden = get_activations(activation, len(sizes) - 2)
        loss_obj = get_loss(loss)
        _output(loss_obj, output_activation)
        v.check_output_units(loss_obj.name, sizes[-1])
        self.seed = v.check_seed(seed)
        self.tf32 = tf32
        xp = get_namespace(backend)
        self.dtype = resolve_dtype(xp, dtype)
        self.device = check_device(xp, device)
        self.xp = xp
        self.backend = backend_name(xp)
        self.layer_sizes = sizes
        # one name for every layer, as given, or a list of one name per layer
        self.activation = ([a.name for a in hidden] if not isinstance(activation, str) else
                           get_activations(activation, 1)[0].name)
        self.loss = loss_obj.name
        self.output_activation = output_activation or loss_obj.default_output
        self._arch = self._build_arch()
        self._layout = Layout.from_sizes(sizes)
        self._params = self._initial_params()
        self._optimizer_state: Kept | None = None

    def _build_arch(self) -> Arch:
        """The kernels' view of the configuration, looked up by name."""
        loss = get_loss(self.loss)
        return Arch(get_activations(self.activation, len(self.layer_sizes) - 2),
                    _output(loss, self.output_activation), loss)

    @on_its_device
    def _initial_params(self) -> Params:
        """The seeded initial weights, on the backend."""
        inits = [act.init for act in self._arch.hidden] + ["glorot"]
        host = init_params_host(self.layer_sizes, inits, self.seed)
        return [(self._to_backend(W), self._to_backend(b)) for W, b in host]

    # -- configuration ---------------------------------------------------------
    @property
    def arch(self) -> Arch:
        """What the kernels need besides the parameters: hidden activations, output
        activation and loss."""
        return self._arch

    @property
    def hidden(self) -> list[Activation]:
        """The hidden layers' :class:`~bpnet.activations.Activation` objects (see
        :attr:`arch`)."""
        return list(self.arch.hidden)

    @property
    def activations(self) -> tuple[str, ...]:
        """The activation of each hidden layer, by name."""
        return tuple(act.name for act in self.arch.hidden)

    @property
    def training_state(self) -> dict[str, Any] | None:
        """What the kept training state is (see :meth:`save` and ``fit``'s
        ``warm_start``): ``{"optimizer", "settings", "step", "epoch",
        "samples_seen"}``, or None when the network keeps none."""
        kept = self._optimizer_state
        if kept is None:
            return None
        (name, settings), _ = kept.key
        return {"optimizer": name, "settings": dict(settings), "step": int(kept.opt_state.step),
                "epoch": kept.epoch, "samples_seen": kept.samples_seen}

    def summary(self) -> Summary:
        """A table of the layers: activation, output shape, ``W`` and ``b`` shapes
        and parameter count, then the total (and its memory), loss, backend and
        the kept training state.

        Returns
        -------
        Summary
            A ``str``; ``print(net.summary())`` prints the table (a REPL shows it
            as is).
        """
        return summary(self)

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return self._layout.n_params

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
            "activation": (self.activation if isinstance(self.activation, str)
                           else list(self.activation)),
            "loss": self.loss,
            "output_activation": self.output_activation,
            "backend": self.backend,
            "dtype": self.dtype_name,
            "seed": self.seed,
            "tf32": self.tf32,
        }

    @property
    def tf32(self) -> bool | None:
        """TensorFloat-32 on GPUs: True, False or None (see the class parameters)."""
        return self._tf32

    @tf32.setter
    def tf32(self, value: bool | None) -> None:
        self._tf32 = v.check_tf32(value)

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in self.layer_sizes)
        return (
            f"MLP({sizes}, activation={self.activation!r}, loss={self.loss!r}, "
            f"output={self.output_activation!r}, backend={self.backend!r}, "
            f"device={self.device!r}, dtype={self.dtype_name!r}, params={self.n_params})"
        )

    # -- parameters --------------------------------------------------------------
    @property
    def params(self) -> Params:
        """``[(W_1, b_1), ..., (W_L, b_L)]`` as arrays of the backend, on its device."""
        return list(self._params)

    @on_its_device
    def set_params(self, params: Sequence[tuple[ArrayLike, ArrayLike]]) -> None:
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
            values, or values that overflow the network's dtype (1e39 in a
            float32 network).  The old parameters are kept.

        Notes
        -----
        The network keeps copies: changing the arrays afterwards does not change
        it, and torch tensors are detached (no autograd graph is recorded).
        """
        pairs = v.check_params(params, self._layout.shapes)
        kw = {"xp": self.xp, "device": self.device, "dtype": self.dtype}
        self._params = [(v.as_param(W, f"W{l}", **kw), v.as_param(b, f"b{l}", **kw))
                        for l, (W, b) in enumerate(pairs, start=1)]

    def _to_backend(self, host: np.ndarray) -> Array:
        return from_host(self.xp, np.ascontiguousarray(host, dtype=self.dtype_name),
                         self.device)

    @on_its_device
    def to(self, backend: t.BackendLike | None = None, device: t.Device = None,
           dtype: t.DTypeLike | None = None) -> MLP:
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
            backend=self.xp if backend is None else backend,  # a generic namespace has no name
            device=(self.device if same_backend else None) if device is None else device,
            dtype=self.dtype_name if dtype is None else dtype,
            seed=self.seed,
        )
        twin.set_params(self._host_params())
        return twin

    def astype(self, dtype: t.DTypeLike, backend: t.BackendLike | None = None) -> MLP:
        """A copy of this network in another dtype (optionally on another backend)."""
        return self.to(backend=backend, dtype=dtype)

    def _host_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(to_numpy(W), to_numpy(b)) for W, b in self._params]

    # -- training ----------------------------------------------------------------------
    @on_its_device
    def fit(
        self, X: ArrayLike, Y: ArrayLike, *, sample_weight: ArrayLike | None = None,
        validation_data: tuple[ArrayLike, ...] | None = None,
        optimizer: t.OptimizerName = "adam", lr: float | None = None, epochs: int = 200,
        batch_size: t.BatchSize = "auto",
        shuffle: bool = True, seed: int | None = None, alpha: float = 0.0,
        momentum: float = 0.9, nesterov: bool = False, beta1: float = 0.9, beta2: float = 0.999,
        epsilon: float = 1e-8, clip_norm: float | None = None, lr_schedule: t.Schedule = "constant",
        power_t: float = 0.5, lr_step_size: int = 10, lr_gamma: float = 0.1,
        early_stopping: bool = False, patience: int = 10, tol: float | None = None,
        progress: bool = False, callback: t.Callback | None = None, warm_start: bool = False,
        checkpoint: t.PathLike | None = None, checkpoint_every: int = 1,
    ) -> History:
        """Train on (X, Y), starting from the current weights with a fresh optimizer
        state (or, with ``warm_start=True``, the kept one), which is kept
        afterwards for :meth:`partial_fit`, :meth:`save` and later warm starts.

        Parameters
        ----------
        X : array (N, n_features)
            Dense, or scipy.sparse (CSR/CSC) on the NumPy backend.
        Y : array
            Targets as :meth:`loss_and_grad` takes them: (N, k), (N,) when
            k = 1, integer labels (N,) for ``cross_entropy``.
        sample_weight : array (N,), optional
            Non-negative weights of the samples, not all zero: each batch's loss
            is ``sum_i w_i l_i / sum_i w_i`` over its rows and its penalty
            ``alpha / (2 sum_i w_i) * sum ||W||^2`` (scikit-learn's
            normalisation, so integer weights act as repeated rows).  The
            weights are shuffled and batched with the rows.
        validation_data : (X_val, Y_val) or (X_val, Y_val, w_val), optional
            Evaluated after every epoch (loss, and accuracy for classification),
            weighted by ``w_val`` when given (also for ``early_stopping``).
        {options}

        Returns
        -------
        History
            Per-epoch training loss and accuracy, validation loss and accuracy,
            learning rate and times.

        Raises
        ------
        ValueError, TypeError
            For bad options or data, before anything changes.
        FloatingPointError
            When the loss or the weights stop being finite; the network keeps
            the weights it had at the start of the last epoch whose loss was
            finite (``exc.history`` holds the epochs before the failing one).
        KeyboardInterrupt
            Re-raised with ``exc.history``; the network keeps the weights of the
            last completed step.

        Examples
        --------
        >>> X, y = bpnet.data.xor()
        >>> net = bpnet.MLP([2, 8, 1], activation="tanh", seed=0)
        >>> history = net.fit(X, y, lr=0.05, epochs=300)
        >>> history.epochs, np.round(bpnet.to_numpy(net.predict(X))[:, 0]).tolist()
        (300, [0.0, 1.0, 1.0, 0.0])
        """
        opts = fit_options(**_given(locals()))
        x, y = self._xy(X, Y)
        weights = self._weights(sample_weight, x)
        val = None
        if validation_data is not None:
            val = self._validation(validation_data)
        if opts.early_stopping and val is None:
            raise ValueError("early_stopping=True needs validation_data=(X_val, Y_val)")
        history = History(optimizer=opts.optimizer, n_samples=x.shape[0])
        with threads.policy(self.xp, self.layer_sizes, opts.batch_for(x.shape[0])):
            return self._fit(x, y, val, opts, history, weights)

    def _validation(self, data: Any) -> tuple[Array, ...]:
        """``validation_data`` checked: ``(x, y)``, or ``(x, y, w, total)`` weighted."""
        triple = (isinstance(data, (tuple, list)) and len(data) == 3)
        X_val, Y_val = v.check_xy_pair("validation_data", data[:2] if triple else data)
        x, y = self._xy(X_val, Y_val, prefix="validation ")
        weights = self._weights(data[2], x, name="validation sample weights") if triple \
            else None
        return (x, y) if weights is None else (x, y, weights[0], float(weights[1].sum()))

    @on_its_device
    def partial_fit(
        self, X: ArrayLike, Y: ArrayLike, *, optimizer: t.OptimizerName = "adam",
        lr: float | None = None, batch_size: t.BatchSize = "auto", shuffle: bool = True,
        seed: int | None = None, alpha: float = 0.0, momentum: float = 0.9, nesterov: bool = False,
        beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
        clip_norm: float | None = None, sample_weight: ArrayLike | None = None,
    ) -> float:
        """One epoch over (X, Y), continuing the optimizer state of earlier calls.

        The state (Adam's moments, SGD's velocity, the step count) is kept on the
        network while ``optimizer`` and its settings (``momentum``, ``nesterov``,
        ``beta1``, ``beta2``, ``epsilon``) stay the same; changing any of them
        starts a fresh state, as does :meth:`reset_optimizer`.  ``lr``, ``alpha``
        and ``batch_size`` may change between calls (a caller can run its own
        schedule).  :meth:`fit` leaves its final state behind, so ``partial_fit``
        can continue a fit with the same settings.

        Parameters
        ----------
        X, Y : arrays
            As for :meth:`fit`.
        {options}
        sample_weight : array (N,), optional
            Weights of the samples, as for :meth:`fit`.

        Returns
        -------
        float
            The epoch's mean training loss.

        Raises
        ------
        ValueError, TypeError
            For bad options or data, before anything changes.
        FloatingPointError
            When the loss or the weights become non-finite; the network, its
            optimizer state and its shuffling generator are left as they were
            before the call (as after any other error but KeyboardInterrupt,
            which keeps the last completed step).
        """
        if optimizer == "lbfgs":
            raise ValueError("partial_fit takes 'adam' or 'sgd'; 'lbfgs' needs fit()")
        opts = fit_options(PARTIAL_FIT_OPTIONS, **_given(locals()))
        x, y = self._xy(X, Y)
        weights = self._weights(sample_weight, x)
        opt = opts.make_optimizer()
        n = x.shape[0]
        batch = opts.batch_for(n)
        step = make_step(self._arch, opt, self._layout, alpha=opts.alpha, xp=self.xp,
                         batch_size=batch, clip_norm=opts.clip_norm)
        key = state_key(opt, step)
        kept = self._optimizer_state
        packed = step.pack(self._params)
        if kept is None or kept.key != key:
            kept = Kept(key, step.init(packed), None)
        # The kept generator continues unless this call has a seed of its own; a
        # failed call puts its state back.
        kept_rng = kept.rng if kept.rng is not None else np.random.default_rng(self.seed)
        rng = None
        if opts.shuffle:
            rng = np.random.default_rng(opts.seed) if opts.seed is not None else kept_rng
        rng_state = kept_rng.bit_generator.state
        continues = opts.shuffle and opts.seed is None
        # A step that donates would overwrite the kept state, which a failed call
        # must leave as it was.
        run = Run(packed, step.copy_state(kept.opt_state), rng)

        def commit() -> None:
            self._params = step.unpack(run.params)
            self._optimizer_state = Kept(key, run.opt_state, run.rng if continues else kept_rng,
                                         kept.epoch + 1, kept.samples_seen + n)

        try:
            value = loop.one_epoch(step, run, step.data(x, y, batch, weights), n, batch,
                                   opts.resolved_lr)
        except KeyboardInterrupt:
            commit()  # an interrupt keeps the last completed step; other errors keep nothing
            raise
        except BaseException as exc:
            kept_rng.bit_generator.state = rng_state
            # Nothing was committed; say whether the data, not the step size, is to blame.
            if isinstance(exc, FloatingPointError) and all(
                    not finite_loss(p, x, y, self.arch, opts.alpha, self.xp)
                    for p in (self._params, self._initial_params())):
                raise FloatingPointError(v.overflow_message("partial_fit", self.dtype_name,
                                                             X=X, Y=Y)) from None
            raise
        commit()
        return value

    def reset_optimizer(self) -> None:
        """Forget the optimizer state kept by :meth:`fit` and :meth:`partial_fit`."""
        self._optimizer_state = None


MLP.fit.__doc__ = (MLP.fit.__doc__ or "").replace("{options}", numpydoc().lstrip())
MLP.partial_fit.__doc__ = (MLP.partial_fit.__doc__ or "").replace(
    "{options}", numpydoc(PARTIAL_FIT_OPTIONS).lstrip())


def _output(loss: Any, name: str | None) -> Activation:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"output_activation must be a string or None, got {name!r}")
    return output_activation(loss, name)

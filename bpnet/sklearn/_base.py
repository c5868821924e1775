"""What the two estimators share: parameters, the fit (scikit-learn's rules, step
for step), the fitted attributes, and the Array API plumbing.

A fit computes everything into locals (validated data, a new or a continued
network, the weights, the counters) and commits it to the estimator only when
it succeeds: a refused or failed fit leaves a fitted estimator exactly as it
was.  The random stream is scikit-learn's: one ``RandomState`` from
``random_state`` per call, drawn first for the initial weights, then for the
early-stopping split, then for each epoch's order, so that equal settings
start from equal weights and see the samples in equal order.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..activations import get_activation
from ..backend import array_library, device_of, from_host, is_host_array, sparse, threads, to_numpy
from ..backend.select import namespace_of, on_device, precision
from ..inputs import as_sample_weight
from ..model import MLP
from . import _engine as engine
from ._validation import InvalidParameterError, Settings, check_params

NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
             "values and need to be preprocessed.")


def _stochastic(estimator: Any) -> bool:
    return estimator.solver in ("sgd", "adam")


def glorot_uniform(layer_sizes: list[int], activation: str,
                   rs: np.random.RandomState) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's initialisation, draw for draw: per layer the weights, then the
    biases, uniform in +-sqrt(f / (fan_in + fan_out)), f = 2 for the logistic
    activation and 6 otherwise (float64; the caller casts)."""
    factor = 2.0 if activation == "logistic" else 6.0
    params = []
    for fan_in, fan_out in itertools.pairwise(layer_sizes):
        bound = np.sqrt(factor / (fan_in + fan_out))
        params.append((rs.uniform(-bound, bound, (fan_in, fan_out)),
                       rs.uniform(-bound, bound, fan_out)))
    return params


@dataclass
class Inputs:
    """What a fit learns about ``X``: committed with the weights."""

    n_features: int
    feature_names: Any  # ndarray of str, or None
    backend: str | None  # the library of X when it is not host data
    device: Any


@dataclass
class Progress:
    """scikit-learn's training counters, on a copy until the fit succeeds."""

    n_iter_: int = 0
    t_: int = 0
    loss_: float | None = None
    loss_curve_: list[float] = field(default_factory=list)
    best_loss_: float | None = np.inf
    validation_scores_: list[float] | None = None
    best_validation_score_: float | None = None
    no_improvement: int = 0

    @classmethod
    def fresh(cls, early_stopping: bool) -> Progress:
        if early_stopping:
            return cls(best_loss_=None, validation_scores_=[], best_validation_score_=-np.inf)
        return cls()

    @classmethod
    def of(cls, est: Any) -> Progress:
        """The estimator's counters (copied lists) for a warm start or partial_fit."""
        scores = getattr(est, "validation_scores_", None)
        return cls(
            n_iter_=0, t_=est.t_, loss_=getattr(est, "loss_", None),
            loss_curve_=list(getattr(est, "loss_curve_", [])),
            best_loss_=getattr(est, "best_loss_", np.inf),
            validation_scores_=None if scores is None else list(scores),
            best_validation_score_=getattr(est, "best_validation_score_", None),
            no_improvement=getattr(est, "_no_improvement_count", 0),
        )


_STOCHASTIC_ATTRIBUTES = ("best_loss_", "validation_scores_", "best_validation_score_",
                          "_no_improvement_count", "_solver_state")


class BaseMLP(BaseEstimator):
    """Shared fitting logic of the two estimators (not public)."""

    _is_classifier: bool

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="numpy",
        device=None,
        dtype=None,
        tf32=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.tf32 = tf32

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        # scipy.sparse X: the NumPy backend's (others refuse it, saying so)
        tags.input_tags.sparse = self.backend in sparse.BACKENDS
        return tags

    # -- subclass hooks -----------------------------------------------------------
    def _check_own_params(self) -> None:
        """Parameters of one estimator only (the regressor's ``loss``)."""

    def _encode(self, y: Any, *, first: bool, incremental: bool, warm_start: bool,
                binarizer: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        """``(Y (N, k) float64, fitted target attributes to commit)``."""
        raise NotImplementedError

    def _loss_and_output(self, targets: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def _val_score(self, net: MLP, params: Any, x_val: Any, y_val: Any,
                   targets: dict[str, Any], w_val: Any = None) -> Any:
        raise NotImplementedError

    def _reported_outputs(self, net: MLP) -> int:
        """Outputs scikit-learn averages its reported loss over (see
        :func:`._engine.output_mean_loss`): 1, but the regressor's."""
        return 1

    # -- data -----------------------------------------------------------------------
    def _validate_X_y(self, X: Any, y: Any, *, reset: bool) -> tuple[Any, Any, Inputs]:
        """Validated ``X`` (and ``y``), and what they tell about the input, without
        changing ``self``.  NumPy-convertible data goes through scikit-learn's
        ``validate_data``; arrays of another Array API library stay where they are
        (bpnet checks them when it moves them)."""
        if not is_host_array(X) and not sparse.is_sparse(X):
            if X.ndim != 2:
                raise ValueError(f"Expected a 2D array, got shape {tuple(X.shape)}")
            if not reset and X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            inputs = Inputs(int(X.shape[1]), None, array_library(X), device_of(X))
            return X, (None if y is None else to_numpy(y)), inputs
        # validate_data records n_features_in_ and feature_names_in_ on the
        # estimator it is given when reset: give it a shallow twin (not
        # copy.copy, which would pickle the optimizer state through the host).
        probe = self
        if reset:
            probe = type(self).__new__(type(self))
            probe.__dict__.update(self.__dict__)
        dtype = (np.float64, np.float32)
        # scipy.sparse stays sparse (CSR or CSC; bpnet trains on CSR rows)
        given = dict(reset=reset, dtype=dtype, accept_sparse=["csr", "csc"])
        if y is None:
            X = validate_data(probe, X, **given)
        else:
            X, y = validate_data(probe, X, y, **given, multi_output=True,
                                 y_numeric=not self._is_classifier)
        inputs = Inputs(probe.n_features_in_, getattr(probe, "feature_names_in_", None),
                        None, None)
        return X, y, inputs

    def _check_same_namespace(self, X: Any, method: str) -> None:
        """scikit-learn's rule under ``array_api_dispatch``: inputs of a method in
        the namespace and on the device of fit's (NumPy data mixes with anything
        otherwise, as everywhere in bpnet)."""
        if not get_config()["array_api_dispatch"]:
            return
        fit_lib = self._input_backend or "numpy"
        lib = array_library(X) or "numpy"
        dev = None if is_host_array(X) else device_of(X)
        if lib == fit_lib and (lib == "numpy" or dev == self._input_device):
            return
        what = (f"Array namespaces used during fit ({fit_lib}) and {method} ({lib}) differ."
                if lib != fit_lib else
                f"Devices used during fit ({self._input_device}) and {method} ({dev}) differ.")
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace "
            f"and the same device as those passed to fit(). {what}"
        )

    def _net_settings(self, X: Any, inputs: Inputs, s: Settings) -> tuple[Any, Any, str]:
        if inputs.backend is not None:
            xp = namespace_of(X)  # the namespace: a generic one has no name to pass
            return xp, inputs.device, s.dtype or (
                "float32" if X.dtype == xp.float32 else "float64")
        return self.backend, self.device, s.dtype or (
            "float32" if X.dtype == np.float32 else "float64")

    # -- fitting --------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, *, incremental: bool, binarizer: Any = None,
             sample_weight: Any = None) -> BaseMLP:
        s = check_params(self)
        self._check_own_params()
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} estimator requires y to be passed, but the "
                "target y is None."
            )
        if incremental and s.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        rs = check_random_state(self.random_state)
        first = not hasattr(self, "_net") or (not s.warm_start and not incremental)
        X, y, inputs = self._validate_X_y(X, y, reset=first)
        sw = as_sample_weight(sample_weight, X.shape[0])  # None: no weights (or all 1)
        Y, targets = self._encode(y, first=first, incremental=incremental,
                                  warm_start=s.warm_start, binarizer=binarizer)
        n_outputs = Y.shape[1]
        if first:
            backend, device, dtype = self._net_settings(X, inputs, s)
            loss, _ = self._loss_and_output(targets)
            sizes = [inputs.n_features, *s.hidden, n_outputs]
            # seed=0: bpnet's own initial draw is replaced by scikit-learn's below
            net = MLP(sizes, activation=s.activation, loss=loss, backend=backend,
                      device=device, dtype=dtype, seed=0, tf32=s.tf32)
            params = engine.upload(net, glorot_uniform(sizes, s.activation, rs))
            progress = Progress.fresh(s.early_stopping) if s.stochastic else Progress()
            kept = None
        else:
            net = self._continued_net(s, n_outputs)
            params = net.params
            progress = Progress.of(self)
            kept = getattr(self, "_solver_state", None) if incremental else None
        n = Y.shape[0]
        split = self._split(Y, s, rs) if s.early_stopping and s.stochastic else None
        batch = n if not s.stochastic else min(200 if s.batch_size is None else s.batch_size, n)
        with (threads.policy(net.xp, net.layer_sizes, batch), on_device(net.xp, net.device),
              precision(net.xp, s.tf32)):
            x, y_dev = engine.to_device(net, X, Y)  # the fit's one transfer
            if s.solver == "lbfgs":
                params, progress = self._fit_lbfgs(net, params, x, y_dev, s, progress, sw)
                kept = None
            else:
                params, progress, kept = self._fit_stochastic(
                    net, params, x, y_dev, s, progress, kept, rs, incremental, targets, split,
                    sw)
        net.set_params(params)
        net.tf32 = s.tf32  # predict and score follow the estimator's setting too
        self._commit(net, inputs, targets, progress, kept, s, first)
        return self

    def _split(self, Y: np.ndarray, s: Settings,
               rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows for early stopping, drawn as scikit-learn
        draws them (which stratifies binary targets only: one output column)."""
        stratify = Y.astype(bool) if self._is_classifier and Y.shape[1] == 1 else None
        train, val = train_test_split(np.arange(Y.shape[0]), random_state=rs,
                                      test_size=s.validation_fraction, stratify=stratify)
        if val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        return train, val

    def _continued_net(self, s: Settings, n_outputs: int) -> MLP:
        net = self._net
        hidden = tuple(net.layer_sizes[1:-1])
        if hidden != s.hidden:
            raise ValueError(
                f"hidden_layer_sizes changed from {hidden} to {s.hidden}; refit with "
                "warm_start=False to change the architecture"
            )
        if net.n_outputs != n_outputs:
            raise ValueError(
                f"y has {n_outputs} outputs but the model was fitted with {net.n_outputs}"
            )
        if get_activation(s.activation).name != net.activation:
            # scikit-learn continues with the new activation: so does a new network
            # holding the old weights (the fitted one stays until the fit succeeds)
            twin = MLP(net.layer_sizes, activation=s.activation, loss=net.loss,
                       backend=net.xp, device=net.device, dtype=net.dtype_name, seed=0,
                       tf32=s.tf32)
            twin.set_params(net.params)
            return twin
        return net

    def _commit(self, net: MLP, inputs: Inputs, targets: dict[str, Any], progress: Progress,
                kept: engine.Kept | None, s: Settings, first: bool) -> None:
        self._net = net
        self.n_features_in_ = inputs.n_features
        if inputs.feature_names is not None:
            self.feature_names_in_ = inputs.feature_names
        elif first and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if first:
            self._input_backend, self._input_device = inputs.backend, inputs.device
        for name, value in targets.items():
            setattr(self, name, value)
        self.n_outputs_ = net.n_outputs
        self.n_layers_ = len(net.layer_sizes)
        self.out_activation_ = self._loss_and_output(targets)[1]
        self.n_iter_, self.t_, self.loss_ = progress.n_iter_, progress.t_, progress.loss_
        self.loss_curve_ = progress.loss_curve_
        if s.stochastic:
            self.best_loss_ = progress.best_loss_
            self.validation_scores_ = progress.validation_scores_
            self.best_validation_score_ = progress.best_validation_score_
            self._no_improvement_count = progress.no_improvement
            self._solver_state = kept
        elif first:
            for name in _STOCHASTIC_ATTRIBUTES:
                if hasattr(self, name):
                    delattr(self, name)

    def _fit_lbfgs(self, net: MLP, params: Any, x: Any, y: Any, s: Settings,
                   progress: Progress, sw: np.ndarray | None = None) -> tuple[Any, Progress]:
        curve: list[float] = []

        def on_iteration(loss: float) -> None:
            curve.append(loss)
            if s.verbose:
                print(f"Iteration {len(curve)}, loss = {loss:.8f}")

        params, result, loss = engine.minimize_lbfgs(
            net, params, x, y, alpha=s.alpha, max_iter=s.max_iter, max_fun=s.max_fun,
            gtol=s.tol, outputs=self._reported_outputs(net), callback=on_iteration,
            weights=None if sw is None else engine.weights(net, sw, x))
        progress.n_iter_ = min(int(result.nit), s.max_iter)
        if not np.isfinite(result.fun) or not np.all(np.isfinite(result.x)):
            raise ValueError(NONFINITE)
        progress.loss_ = loss
        progress.loss_curve_ = curve
        if result.status != 0:
            message = (f"lbfgs failed to converge after {progress.n_iter_} iteration(s) "
                       f"(status={result.status}):\n{result.message}\n")
            if progress.n_iter_ == s.max_iter:
                message += ("\nIncrease the number of iterations to improve the convergence "
                            f"(max_iter={s.max_iter}).")
            message += ("\nYou might also want to scale the data as shown in:\n"
                        "    https://scikit-learn.org/stable/modules/preprocessing.html")
            warnings.warn(message, ConvergenceWarning, stacklevel=4)
        return params, progress

    def _batch_size(self, s: Settings, n: int) -> int:
        if s.batch_size is None:
            return min(200, n)
        if s.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", UserWarning, stacklevel=4)
        return min(s.batch_size, n)

    def _fit_stochastic(self, net: MLP, params: Any, x: Any, y: Any, s: Settings,
                        p: Progress, kept: engine.Kept | None, rs: np.random.RandomState,
                        incremental: bool, targets: dict[str, Any],
                        split: tuple[np.ndarray, np.ndarray] | None,
                        sw: np.ndarray | None = None):
        """scikit-learn's epoch loop and stopping rules over bpnet's steps; ``sw``
        weighs the samples (host float64, or None), the validation score too."""
        trainer = engine.Stochastic(net, solver=s.solver, alpha=s.alpha, momentum=s.momentum,
                                    nesterov=s.nesterovs_momentum, beta_1=s.beta_1,
                                    beta_2=s.beta_2, epsilon=s.epsilon,
                                    outputs=self._reported_outputs(net))
        run = trainer.start(params, kept)
        lr = kept.lr if kept is not None and kept.key == trainer.key else s.learning_rate_init
        score = None
        early = s.early_stopping
        if early:
            train_rows, val_rows = split  # type: ignore[misc]
            (x_val, y_val), (x, y) = (engine.take_rows(net, val_rows, x, y),
                                      engine.take_rows(net, train_rows, x, y))
            w_val = None if sw is None else engine.weights(net, sw[val_rows], x_val)[0][:, 0]
            sw = None if sw is None else sw[train_rows]

            def score(tree):
                return self._val_score(net, tree, x_val, y_val, targets, w_val)

            if p.validation_scores_ is None:  # a warm start that turns early stopping on
                p.validation_scores_, p.best_validation_score_ = [], -np.inf
            best = trainer.snapshot(run)
        elif p.best_loss_ is None:  # a warm start that turns early stopping off
            p.best_loss_ = np.inf
        n = x.shape[0]
        batch = self._batch_size(s, n)
        order = np.arange(n)
        weights = None if sw is None else engine.weights(net, sw, x)
        try:
            for _ in range(s.max_iter):
                if s.shuffle:
                    order = order[rs.permutation(n)]
                out = trainer.epoch(run, x, y, order=order if s.shuffle else None,
                                    batch_size=batch, lr=lr, score=score, weights=weights)
                p.n_iter_ += 1
                p.t_ += n
                p.loss_ = out.loss
                p.loss_curve_.append(out.loss)
                if s.verbose:
                    print(f"Iteration {p.n_iter_}, loss = {out.loss:.8f}")
                if early:
                    p.validation_scores_.append(out.score)  # type: ignore[arg-type, union-attr]
                    if s.verbose:
                        print(f"Validation score: {out.score:f}")
                    stalled = out.score < p.best_validation_score_ + s.tol  # type: ignore[operator]
                    if out.score > p.best_validation_score_:  # type: ignore[operator]
                        p.best_validation_score_, best = out.score, trainer.snapshot(run)
                else:
                    stalled = p.loss_curve_[-1] > p.best_loss_ - s.tol  # type: ignore[operator]
                    p.best_loss_ = min(p.best_loss_, p.loss_curve_[-1])  # type: ignore[type-var]
                p.no_improvement = p.no_improvement + 1 if stalled else 0
                if not out.finite:
                    # NaN and inf stay in the weights for good: stop here
                    if not early:
                        raise ValueError(NONFINITE)
                    warnings.warn(
                        f"Training diverged in iteration {p.n_iter_}: the weights became "
                        "non-finite. The weights of the best validation score are kept; "
                        "lower learning_rate_init or scale the data.",
                        ConvergenceWarning, stacklevel=4)
                    break
                if s.learning_rate == "invscaling" and s.solver == "sgd":
                    lr = s.learning_rate_init / (p.t_ + 1) ** s.power_t
                if p.no_improvement > s.n_iter_no_change:
                    what = "Validation score" if early else "Training loss"
                    msg = (f"{what} did not improve more than tol={s.tol:f} for "
                           f"{s.n_iter_no_change} consecutive epochs.")
                    adaptive = s.solver == "sgd" and s.learning_rate == "adaptive"
                    if adaptive and lr > 1e-6:
                        lr /= 5.0
                        p.no_improvement = 0
                        if s.verbose:
                            print(f"{msg} Setting learning rate to {lr:f}")
                    else:
                        if s.verbose:
                            print(f"{msg}{' Learning rate too small.' if adaptive else ''}"
                                  " Stopping.")
                        break
                if incremental:
                    break
                if p.n_iter_ == s.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({s.max_iter}) reached and "
                        "the optimization hasn't converged yet.", ConvergenceWarning,
                        stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if early:
            run.params = best
        return trainer.params(run), p, engine.Kept(trainer.key, run.opt_state, lr)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy-convertible data, a scipy.sparse CSR/CSC matrix (NumPy backend:
            sparse products in the first layer, never densified), or an array
            of an Array API library (the estimator then trains on that library
            and device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default None
            Non-negative weights, not all zero: each batch's loss is
            ``sum_i w_i l_i / sum_i w_i`` and its penalty ``alpha / (2 sum_i w_i)
            ||W||^2``, scikit-learn's; the early-stopping validation score is
            weighted by the held-out rows' weights.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    # -- fitted attributes ------------------------------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` of shape (n_units[i], n_units[i + 1]):
        host copies of the network's weights (assign a list to replace them)."""
        check_is_fitted(self, "_net")
        return [to_numpy(W) for W, _ in self._net.params]

    @coefs_.setter
    def coefs_(self, value: list[Any]) -> None:
        check_is_fitted(self, "_net")
        self._net.set_params(list(zip(value, self.intercepts_, strict=True)))

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` of shape (n_units[i + 1],): host copies
        (assign a list to replace them)."""
        check_is_fitted(self, "_net")
        return [to_numpy(b) for _, b in self._net.params]

    @intercepts_.setter
    def intercepts_(self, value: list[Any]) -> None:
        check_is_fitted(self, "_net")
        self._net.set_params(list(zip(self.coefs_, value, strict=True)))

    @property
    def net_(self) -> MLP:
        """The underlying :class:`bpnet.MLP`."""
        check_is_fitted(self, "_net")
        return self._net

    def _raw_output(self, X: Any, method: str) -> Any:
        check_is_fitted(self, "_net")
        X, _, _ = self._validate_X_y(X, None, reset=False)
        self._check_same_namespace(X, method)
        return self._net.predict(X)

    def _host_or_input(self, out: Any, X: Any) -> Any:
        """Backend output as NumPy for host input, as the input's library otherwise."""
        return to_numpy(out) if is_host_array(X) else out

    def _device_score(self, y_pred: Any, y: Any, sample_weight: Any, metric: Any) -> float:
        """``metric`` (see :mod:`._metrics`) computed where ``y_pred`` lives; ``y``
        and ``sample_weight`` of another library or device are moved there
        explicitly, never through an implicit conversion."""
        xp = namespace_of(y_pred)  # bpnet's: its Dask namespace makes chunks like y_pred's
        device = device_of(y_pred)

        def there(a: Any) -> Any:
            if a is None:
                return None
            if (array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray)
                    and namespace_of(a) is xp and device_of(a) == device):
                return a
            return xp.asarray(to_numpy(a), device=device)  # explicit: host -> device

        with on_device(xp, device):  # CuPy: the metric's arrays on the predictions' GPU
            y_true, w = there(y), there(sample_weight)
            if w is not None:
                w = xp.astype(w, xp.float64)
            if y_true.dtype != y_pred.dtype:
                y_true = xp.astype(y_true, y_pred.dtype)
            if y_true.ndim == 2 and y_true.shape[1] == 1 and y_pred.ndim == 1:
                y_true = xp.reshape(y_true, (-1,))
            return float(metric(y_true, y_pred, w, xp=xp))

    # -- pickling: the optimizer state travels as host arrays -----------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object's is __dict__ itself
        kept = state.get("_solver_state")
        if kept is not None:
            state["_solver_state"] = engine.Kept(kept.key, _tree_map(to_numpy, kept.opt_state),
                                                 kept.lr)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        kept = state.get("_solver_state")
        if kept is not None:
            net = self._net
            self._solver_state = engine.Kept(
                kept.key, _tree_map(lambda a: from_host(net.xp, a, net.device), kept.opt_state),
                kept.lr)


def _tree_map(f: Any, tree: Any) -> Any:
    """``f`` applied to every array of a nest of tuples, named tuples and lists."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_tree_map(f, t) for t in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(f, t) for t in tree)
    if tree is None or isinstance(tree, (int, float)):
        return tree
    return f(tree)


__all__ = ["NONFINITE", "BaseMLP", "InvalidParameterError", "glorot_uniform"]

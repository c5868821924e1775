""":class:`MLPRegressor`: identity output, half the mean squared error."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from ..backend import is_host_array, to_numpy
from ..model import MLP
from . import _engine as engine
from . import _metrics
from ._base import BaseMLP, _stochastic
from ._validation import InvalidParameterError

__all__ = ["MLPRegressor"]

#: scikit-learn's loss names -> (bpnet's loss, scikit-learn's ``out_activation_``).
LOSSES = {"squared_error": ("mse", "identity"), "poisson": ("poisson", "exp")}


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by bpnet.

    Squared error (½ mean over samples, scikit-learn's convention) with an
    identity output, or the half Poisson deviance with its log link (an ``exp``
    output, targets >= 0); single- and multi-output targets.  Parameters,
    fitted attributes and behaviour follow
    :class:`sklearn.neural_network.MLPRegressor`, plus ``backend``, ``device``,
    ``dtype`` and ``tf32`` as in :class:`MLPClassifier`.  ``score`` is R² for
    either loss, as in scikit-learn.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
    """

    _is_classifier = False

    def __init__(
        self,
        loss="squared_error",
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
        self.loss = loss
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            backend=backend, device=device, dtype=dtype, tf32=tf32,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = False
        return tags

    def _check_own_params(self) -> None:
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise InvalidParameterError(
                f"The 'loss' parameter of {type(self).__name__} must be a str among "
                f"{{{', '.join(repr(k) for k in LOSSES)}}}; got {self.loss!r}."
            )

    def _encode(self, y: Any, *, first: bool, incremental: bool, warm_start: bool,
                binarizer: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.asarray(y, dtype=np.float64)
        return (Y.reshape(-1, 1) if Y.ndim == 1 else Y), {}

    def _loss_and_output(self, targets: dict[str, Any]) -> tuple[str, str]:
        # the half squared error, or the half Poisson deviance with its log link
        return LOSSES[self.loss]

    def _reported_outputs(self, net: MLP) -> int:
        # scikit-learn's loss_ averages the squared error (and the Poisson
        # deviance) over outputs; its gradient (and bpnet's) is that of the sum
        return net.n_outputs

    def _val_score(self, net: MLP, params: Any, x_val: Any, y_val: Any,
                   targets: dict[str, Any], w_val: Any = None) -> Any:
        # R^2 averaged over outputs (for every loss), as RegressorMixin.score and
        # scikit-learn's own MLPRegressor score their validation set
        pred = engine.validation_output(net, params, x_val)
        return _metrics.r2(y_val, pred, w_val, xp=net.xp)

    def predict(self, X):
        """Predicted values, (n_samples,) for one output, else (n_samples, n_outputs)."""
        out = self._raw_output(X, "predict")
        if self.n_outputs_ == 1:
            out = out[:, 0]
        return self._host_or_input(out, X)

    def score(self, X, y, sample_weight=None):
        """R² of the predictions on (X, y), averaged over outputs.

        For arrays of a device library (CuPy, CUDA torch...) it is computed there:
        no implicit copy to NumPy, which those libraries refuse.
        """
        y_pred = self.predict(X)
        if isinstance(y_pred, np.ndarray):  # host predictions: scikit-learn's own metric
            return float(r2_score(to_numpy(y) if not is_host_array(y) else y, y_pred,
                                  sample_weight=sample_weight))
        return self._device_score(y_pred, y, sample_weight, _metrics.r2)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the stochastic solver over (X, y), weighted by
        ``sample_weight`` (see :meth:`fit`).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

""":class:`MLPClassifier`: softmax for several classes, one sigmoid per label or for
two classes, scikit-learn's label handling."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from ..backend import is_host_array, on_device, to_numpy
from ..model import MLP
from . import _engine as engine
from . import _metrics
from ._base import BaseMLP, _stochastic

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained by bpnet.

    Multi-class targets use a softmax output with cross-entropy, binary targets a
    single sigmoid unit with binary cross-entropy, and multi-label indicator
    targets one sigmoid unit per label.  Parameters, fitted attributes and
    behaviour follow :class:`sklearn.neural_network.MLPClassifier` (same
    initial weights and sample order for the same ``random_state``); in
    addition:

    Parameters
    ----------
    backend : str, default "numpy"
        bpnet backend (``numpy``, ``cupy``, ``torch``, ``jax``, ``dask``,
        ``array_api_strict``, ``auto``).  Ignored when ``X`` is an array of an
        Array API library: the estimator then trains on that library.
    device : optional
        Device for the backend.
    dtype : {"float32", "float64"} or None
        Training dtype; ``None`` follows ``X`` (float32 stays float32, anything
        else trains in float64).
    tf32 : bool or None, default None
        TensorFloat-32 float32 products on NVIDIA GPUs (see :class:`bpnet.MLP`);
        ``None`` leaves the library's own setting alone.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    coefs_, intercepts_ : lists of ndarray
        Host copies of the weights (``net_`` holds them on the backend).
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_
    n_iter_, t_, n_layers_, n_outputs_, out_activation_, n_features_in_
    net_ : bpnet.MLP
    """

    _is_classifier = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _encode(self, y: Any, *, first: bool, incremental: bool, warm_start: bool,
                binarizer: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        if np.ndim(y) == 2 and np.shape(y)[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if binarizer is None and first:
            binarizer = LabelBinarizer().fit(y)
        else:
            # classes known, from an earlier fit or from partial_fit's `classes`
            binarizer = binarizer if binarizer is not None else self._label_binarizer
            known, labels = binarizer.classes_, unique_labels(y)
            if warm_start:
                if set(labels) != set(known):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {known}, `y` has {labels}"
                    )
            elif len(np.setdiff1d(labels, known, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. "
                    f"'y' has {labels}."
                )
        Y = binarizer.transform(y).astype(np.float64)
        return Y, {"_label_binarizer": binarizer, "classes_": binarizer.classes_}

    @staticmethod
    def _multiclass(targets: dict[str, Any]) -> bool:
        return targets["_label_binarizer"].y_type_ == "multiclass"

    def _loss_and_output(self, targets: dict[str, Any]) -> tuple[str, str]:
        if self._multiclass(targets):
            return "cross_entropy", "softmax"
        return "binary_cross_entropy", "logistic"

    def _val_score(self, net: MLP, params: Any, x_val: Any, y_val: Any,
                   targets: dict[str, Any], w_val: Any = None) -> Any:
        proba = engine.validation_output(net, params, x_val)
        return _metrics.proba_accuracy(proba, y_val, w_val,
                                       multiclass=self._multiclass(targets), xp=net.xp)

    def _proba(self, X: Any, method: str) -> Any:
        out = self._raw_output(X, method)
        if self._label_binarizer.y_type_ == "binary":
            xp = self._net.xp
            with on_device(xp, self._net.device):  # CuPy: on the network's GPU
                out = xp.concat([1.0 - out, out], axis=1)
        return self._host_or_input(out, X)

    def predict_proba(self, X):
        """Probability estimates, (n_samples, n_classes); (n_samples, n_labels) for
        multi-label targets."""
        return self._proba(X, "predict_proba")

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        proba = self._proba(X, "predict_log_proba")
        if is_host_array(proba):
            return np.log(proba)
        with on_device(self._net.xp, self._net.device):
            return self._net.xp.log(proba)

    def predict(self, X):
        """Predicted classes, (n_samples,); an indicator matrix for multi-label targets."""
        out = to_numpy(self._raw_output(X, "predict"))
        if self._label_binarizer.y_type_ == "multiclass":
            labels = self.classes_[np.argmax(out, axis=1)]
        else:
            labels = self._label_binarizer.inverse_transform(out)
        if is_host_array(X) or labels.dtype.kind not in "biuf":
            return labels
        xp = self._net.xp
        return xp.asarray(labels, device=self._net.device)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on (X, y) (subset accuracy for multi-label targets).

        For arrays of a device library (CuPy, CUDA torch...) the accuracy is
        computed there: no implicit copy to NumPy, which those libraries refuse.
        """
        y_pred = self.predict(X)
        if isinstance(y_pred, np.ndarray):  # host predictions: scikit-learn's own metric
            return float(accuracy_score(to_numpy(y) if not is_host_array(y) else y, y_pred,
                                        sample_weight=sample_weight))
        return self._device_score(y_pred, y, sample_weight, _metrics.accuracy)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch of the stochastic solver over (X, y).

        Parameters
        ----------
        X : array-like or scipy.sparse (CSR/CSC) (n_samples, n_features)
        y : array-like (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like (n_samples,), optional
            Weights of the samples (see :meth:`fit`).
        classes : array-like, optional
            All classes that can appear; required on the first call, and equal to
            the first call's when given again.

        Returns
        -------
        self
        """
        binarizer = None
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            y_seen = to_numpy(y) if not is_host_array(y) else y
            binarizer = LabelBinarizer().fit(
                y_seen if type_of_target(y_seen).startswith("multilabel") else classes)
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                f"was: {self.classes_!r}"
            )
        return self._fit(X, y, incremental=True, binarizer=binarizer,
                         sample_weight=sample_weight)

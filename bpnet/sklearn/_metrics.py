"""scikit-learn's ``accuracy_score`` and ``r2_score`` in any Array API namespace.

scikit-learn's metrics call :func:`numpy.asarray` on their inputs, which CuPy
arrays and CUDA tensors refuse; these compute the same numbers where the
predictions are, without an implicit transfer, and give a 0-d array (one
scalar to read back).  Every function takes ``xp`` and creates nothing
without a ``device=``, as the kernels do.

A score is NaN when a prediction is not finite (``0 * inf`` is NaN), as
scikit-learn's MLP reports it for a diverged validation set.
"""

from __future__ import annotations

from types import ModuleType

from .._typing import Array

__all__ = ["accuracy", "finite_or_nan", "proba_accuracy", "r2"]


def finite_or_nan(score: Array, pred: Array, xp: ModuleType) -> Array:
    """``score``, or NaN when any entry of ``pred`` is NaN or infinite."""
    # x * 0 is 0 for every finite x and NaN for NaN and inf; multiplying before
    # summing keeps huge finite values from overflowing into a false NaN.
    return score + xp.astype(xp.sum(pred * 0.0), score.dtype)


def _weighted_mean(v: Array, w: Array | None, xp: ModuleType) -> Array:
    if w is None:
        return xp.mean(v)
    return xp.sum(v * w) / xp.sum(w)


def accuracy(y_true: Array, y_pred: Array, sample_weight: Array | None = None, *,
             xp: ModuleType) -> Array:
    """Fraction of rows predicted exactly (subset accuracy for 2-D labels).

    Parameters
    ----------
    y_true, y_pred : array (N,) or (N, k)
        Labels of one shape, in one namespace and on one device.
    sample_weight : array (N,), optional
        Floating weights, same namespace and device.
    """
    same = y_true == y_pred
    if same.ndim == 2:
        same = xp.all(same, axis=1)
    dtype = xp.float64 if sample_weight is None else sample_weight.dtype
    return _weighted_mean(xp.astype(same, dtype), sample_weight, xp)


def proba_accuracy(proba: Array, Y: Array, sample_weight: Array | None = None, *,
                   multiclass: bool, xp: ModuleType) -> Array:
    """Accuracy of the labels ``predict`` would give, from the network output.

    Parameters
    ----------
    proba : array (N, k)
        Softmax probabilities (``multiclass``) or sigmoid outputs.
    Y : array (N, k)
        The binarised targets (one-hot, or 0/1 indicators), same dtype.
    sample_weight : array (N,), optional
        Weights of the rows (a weighted accuracy).
    multiclass : bool
        Argmax against argmax; otherwise every output thresholded at 0.5, as
        scikit-learn's ``LabelBinarizer.inverse_transform`` does.
    """
    if multiclass:
        same = xp.argmax(proba, axis=1) == xp.argmax(Y, axis=1)
    else:
        same = xp.all((proba > 0.5) == (Y > 0.5), axis=1)
    return finite_or_nan(_weighted_mean(xp.astype(same, proba.dtype), sample_weight, xp),
                         proba, xp)


def r2(y_true: Array, y_pred: Array, sample_weight: Array | None = None, *,
       xp: ModuleType) -> Array:
    """Coefficient of determination, averaged uniformly over outputs.

    scikit-learn's conventions (``force_finite=True``): an output whose true
    values are constant scores 1 when predicted exactly and 0 otherwise.

    Parameters
    ----------
    y_true, y_pred : array (N,) or (N, k), floating
    sample_weight : array (N,), optional
    """
    if y_true.ndim == 1:
        y_true, y_pred = xp.reshape(y_true, (-1, 1)), xp.reshape(y_pred, (-1, 1))
    w = None if sample_weight is None else xp.reshape(sample_weight, (-1, 1))
    if w is None:
        mean = xp.mean(y_true, axis=0)
        num = xp.sum((y_true - y_pred) ** 2, axis=0)
        den = xp.sum((y_true - mean) ** 2, axis=0)
    else:
        mean = xp.sum(w * y_true, axis=0) / xp.sum(w)
        num = xp.sum(w * (y_true - y_pred) ** 2, axis=0)
        den = xp.sum(w * (y_true - mean) ** 2, axis=0)
    nonzero = den != 0
    safe = xp.where(nonzero, den, xp.ones_like(den))
    exact = xp.astype(num == 0, den.dtype)
    per_output = xp.where(nonzero, 1.0 - num / safe, exact)
    return finite_or_nan(xp.mean(per_output), y_pred, xp)

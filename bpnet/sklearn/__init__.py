"""scikit-learn estimators backed by bpnet: :class:`MLPClassifier`, :class:`MLPRegressor`.

Drop-in replacements for :mod:`sklearn.neural_network`'s: the same parameters,
fitted attributes, random draws and stopping rules (scikit-learn's own test
file for them runs against these in bpnet's test suite), so that they fit into
pipelines, cross-validation and grid searches.  Training runs on bpnet's
kernels, so the extra ``backend``, ``device`` and ``dtype`` parameters move the
work to CuPy, PyTorch, JAX...  When ``X`` is itself an array of such a library
(a torch tensor, a CuPy array), the estimator trains there and returns arrays
of that library, in the spirit of scikit-learn's Array API support.

The modules: ``_validation`` (hyper-parameters), ``_base`` (the fit, shared),
``_classifier``, ``_regressor``, ``_engine`` (bpnet's training pieces on device
data, below the public MLP) and ``_metrics`` (scores in any namespace).

scikit-learn is an optional dependency: ``pip install 'bpnet[sklearn]'``.
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "bpnet.sklearn needs scikit-learn; install it with: pip install 'bpnet[sklearn]'"
    ) from exc

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

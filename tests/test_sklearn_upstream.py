"""scikit-learn's own tests of its MLP, run against bpnet's estimators.

At collection, ``sklearn/neural_network/tests/test_mlp.py`` is copied from the
installed scikit-learn into a temporary directory with one line changed, its
import of the estimators, which then come from :mod:`bpnet.sklearn`; its test
functions run here as this module's, under this suite's settings (every
warning an error).  One list says which tests do not run as they are:
:data:`PRIVATE`, the tests that reach into scikit-learn's private internals,
each with what it reads; they are skipped, and ``tests/test_sklearn.py`` checks
the public behaviour behind them.  No test is expected to fail: every public
behaviour the file tests (``sample_weight``, the Poisson loss and sparse ``X``
included) is bpnet's too.

Every other test of the file must pass; a test missing from the file (renamed
upstream) fails :func:`test_the_lists_name_real_tests`.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

UPSTREAM = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
SWAPPED = "from bpnet.sklearn import MLPClassifier, MLPRegressor"
MODULE = "bpnet_upstream_test_mlp"

#: Tests that exercise scikit-learn's private internals only: {name: reason}.
PRIVATE = {
    "test_gradient": "calls the private _loss_grad_lbfgs with scikit-learn's packed "
                     "activations/deltas buffers (bpnet's gradients are checked against "
                     "finite differences in tests/test_gradients.py)",
    "test_fit": "builds a fitted state by hand from private attributes (_coef_velocity, "
                "_intercept_velocity, _coef_grads, _no_improvement_count...) and in-place "
                "edits of the coefs_ list (bpnet's weights live in net_; coefs_ is a host "
                "copy); the same worked SGD step runs through the public API in "
                "tests/test_sklearn.py",
    "test_learning_rate_warmstart": "reads the private _optimizer.learning_rate; the "
                                    "invscaling schedule over warm starts is compared "
                                    "with scikit-learn's weights in tests/test_sklearn.py",
    "test_adaptive_learning_rate": "reads the private _optimizer.learning_rate; the "
                                   "adaptive schedule is compared with scikit-learn's "
                                   "weights in tests/test_sklearn.py",
}

def _load_upstream():
    spec = importlib.util.find_spec("sklearn")
    source = Path(spec.origin).parent / "neural_network" / "tests" / "test_mlp.py"
    if not source.is_file():  # pragma: no cover - a scikit-learn packaged without tests
        pytest.skip(f"scikit-learn's tests are not installed ({source} is missing)",
                    allow_module_level=True)
    text = source.read_text(encoding="utf-8")
    assert text.count(UPSTREAM) == 1, f"{source} no longer imports the estimators as expected"
    # kept until the run ends, so that tracebacks can show the copied source
    tmp = tempfile.mkdtemp(prefix="bpnet-upstream-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    (Path(tmp) / f"{MODULE}.py").write_text(text.replace(UPSTREAM, SWAPPED), encoding="utf-8")
    pytest.register_assert_rewrite(MODULE)  # pytest's assertion messages there too
    sys.path.insert(0, tmp)
    try:
        sys.modules.pop(MODULE, None)
        module = importlib.import_module(MODULE)
    finally:
        sys.path.remove(tmp)
    return module, source


_upstream, SOURCE = _load_upstream()
assert _upstream.MLPClassifier.__module__.startswith("bpnet.sklearn")

UPSTREAM_TESTS = sorted(name for name in vars(_upstream) if name.startswith("test_"))

for _name in UPSTREAM_TESTS:
    _test = getattr(_upstream, _name)
    if _name in PRIVATE:
        _test = pytest.mark.skip(reason=f"private internals: {PRIVATE[_name]}")(_test)
    globals()[_name] = _test


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture (its conftest), at its default seed."""
    return 42


def test_the_lists_name_real_tests():
    listed = set(PRIVATE)
    assert listed <= set(UPSTREAM_TESTS), sorted(listed - set(UPSTREAM_TESTS))
    assert len(UPSTREAM_TESTS) - len(listed) >= 30, (SOURCE, UPSTREAM_TESTS)

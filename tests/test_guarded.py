"""Any Array API library, end to end, with no hidden trip to the host.

bpnet accepts the namespace of any library that follows the standard (backend
``"generic"``) and moves its arrays to the host only through DLPack.
:mod:`tests.guarded` is such a library, and a strict one: its arrays refuse
``np.asarray`` and mixing with NumPy arrays, as CuPy's do, so a hidden host
round trip anywhere in fit, predict, evaluate, score, save or load fails here
as it would crash on a GPU.  Results are compared with NumPy's, and the
explicit transfers are counted: one per epoch and dtype, however many steps.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import bpnet
from bpnet.backend import GENERIC, array_library, backend_name, device_of, get_namespace

from . import guarded
from .guarded import DEVICE, Guarded, HostTransferError, namespace
from .helpers import blobs

ATOL = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture
def transfers():
    """The explicit moves to the host (``guarded.LOG``) while a test runs."""
    guarded.LOG = []
    yield guarded.LOG
    guarded.LOG = None


def _host(t):
    return np.from_dlpack(t, device="cpu")


def _pair(rng, loss="cross_entropy"):
    X, y = blobs(rng, n=48)
    if loss == "mse":
        y = np.stack([X[:, 0] - X[:, 1], X[:, 2]], axis=1)
    kw = dict(loss=loss, dtype="float64", seed=3)
    k = 2 if loss == "mse" else 3
    return X, y, bpnet.MLP([4, 6, k], backend=namespace, **kw), bpnet.MLP([4, 6, k], **kw)


# -- the guarded array itself ------------------------------------------------------------
def test_guarded_refuses_what_cupy_refuses():
    g = Guarded(np.arange(6.0).reshape(2, 3))
    for leak in (lambda: np.asarray(g), lambda: g + np.ones(3), lambda: g[np.array([0])],
                 lambda: g.tolist(), lambda: g.tobytes(), lambda: namespace.sum(np.ones(2)),
                 lambda: g.reshape(np.array([3, 2])), lambda: g.__setitem__(0, np.ones(3)),
                 lambda: namespace.asarray([g, g])):
        with pytest.raises(HostTransferError):
            leak()
    with pytest.raises(BufferError, match="not on the host"):
        np.from_dlpack(g)  # a zero-copy view would be host memory: there is none
    with pytest.raises(AttributeError):
        g.tofile  # noqa: B018 (a host-only method CuPy lacks too)


def test_guarded_moves_to_the_host_explicitly(transfers):
    g = Guarded(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.from_dlpack(g, device="cpu"), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(g.get(), g._data)
    assert float(namespace.sum(g)) == 15.0
    g[0, 1] = 7.0  # item assignment on the device, as CuPy's arrays allow
    assert isinstance(g.reshape(3, 2).sum(axis=0), Guarded) and g.device == DEVICE
    assert transfers == ["dlpack", "get", "scalar"]


def test_a_standard_namespace_is_a_generic_backend():
    assert backend_name(namespace) == GENERIC
    assert get_namespace(namespace) is namespace
    assert array_library(Guarded(np.ones(2))) == GENERIC
    net = bpnet.MLP([2, 3, 1], backend=namespace)
    assert net.backend == GENERIC and net.device == DEVICE
    assert {type(t) for pair in net.params for t in pair} == {Guarded}
    with pytest.raises(ValueError, match="'generic' names no library: pass the namespace"):
        bpnet.MLP([2, 1], backend="generic")
    with pytest.raises(TypeError, match="backend must be a name"):
        bpnet.MLP([2, 1], backend=object())


def test_arrays_of_another_library_are_refused(rng):
    X, y, net, ref = _pair(rng)
    with pytest.raises(TypeError, match=r"X is a tests.guarded \(generic\) array but this "
                                        "network runs on numpy"):
        ref.fit(Guarded(X), y)
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"array_api_strict array but this network runs on "
                                        r"tests.guarded \(generic\)"):
        net.predict(strict.asarray(X))


# -- end to end: the same numbers as NumPy, transfers only where they are explicit --------
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_fit_equals_numpys(rng, transfers, optimizer):
    X, y, net, ref = _pair(rng)
    batch = None if optimizer == "lbfgs" else 16
    kw = dict(epochs=3, batch_size=batch, optimizer=optimizer)
    got = net.fit(Guarded(X), Guarded(y), validation_data=(Guarded(X), y), **kw)
    want = ref.fit(X, y, validation_data=(X, y), **kw)
    np.testing.assert_allclose(got.loss, want.loss, **ATOL)
    np.testing.assert_allclose(got.val_accuracy, want.val_accuracy, **ATOL)
    for (W, b), (W0, b0) in zip(net.params, ref.params, strict=True):
        assert type(W) is Guarded and type(b) is Guarded
        np.testing.assert_allclose(_host(W), W0, **ATOL)
        np.testing.assert_allclose(_host(b), b0, **ATOL)
    assert transfers and set(transfers) <= {"dlpack", "scalar"}


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_every_method_equals_numpys(rng, tmp_path, loss):
    X, y, net, ref = _pair(rng, loss)
    Xg, yg = Guarded(X), Guarded(y)
    assert net.partial_fit(Xg, yg, batch_size=16) == pytest.approx(
        ref.partial_fit(X, y, batch_size=16), rel=1e-12)
    assert net.partial_fit(Xg, y, batch_size=16) == pytest.approx(  # host targets: uploaded
        ref.partial_fit(X, y, batch_size=16), rel=1e-12)
    value, grads = net.loss_and_grad(Xg, yg, alpha=0.1)
    value0, grads0 = ref.loss_and_grad(X, y, alpha=0.1)
    assert value == pytest.approx(value0, rel=1e-12)
    for g, g0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(_host(g[0]), g0[0], **ATOL)
    num = net.numerical_grad(Xg[:6], yg[:6])
    np.testing.assert_allclose(_host(num[0][0]), ref.numerical_grad(X[:6], y[:6])[0][0],
                               rtol=1e-9, atol=1e-9)
    assert net.compute_loss(Xg, yg) == pytest.approx(ref.compute_loss(X, y), rel=1e-12)
    assert net.evaluate(Xg, yg, batch_size=10) == pytest.approx(ref.evaluate(X, y), rel=1e-12)
    pred = net.predict(Xg)
    assert type(pred) is Guarded
    np.testing.assert_allclose(_host(pred), ref.predict(X), **ATOL)
    np.testing.assert_allclose(_host(net.predict(X)), ref.predict(X), **ATOL)  # host X
    # set_params, to, save, load: the weights cross to the host once, explicitly
    net.set_params(ref.params)  # NumPy weights: uploaded
    net.set_params(net.params)  # its own: copied on the device
    twin = net.to(dtype="float32")
    assert twin.backend == GENERIC and type(twin.params[0][0]) is Guarded
    net.save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="backend 'generic' names no library"):
        bpnet.MLP.load(tmp_path / "net.npz")
    back = bpnet.MLP.load(tmp_path / "net.npz", backend=namespace)
    np.testing.assert_allclose(_host(back.predict(Xg)), ref.predict(X), **ATOL)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_no_host_read_per_step(rng, transfers, optimizer):
    """The explicit transfers of an epoch do not grow with its number of steps:
    the batch losses stay on the device and cross once per epoch (one transfer
    per dtype: the loss and the weights' finiteness; the accuracy count)."""
    X, y, net, _ = _pair(rng)
    Xg, yg = Guarded(X), Guarded(y)
    counts = {}
    for batch in (48, 4):  # one step per epoch, and twelve
        for epochs in (1, 3):
            transfers.clear()
            net.fit(Xg, yg, epochs=epochs, batch_size=batch, optimizer=optimizer,
                    validation_data=(Xg, yg))
            counts[batch, epochs] = len(transfers)
    per_epoch = (counts[48, 3] - counts[48, 1]) / 2
    assert per_epoch == (counts[4, 3] - counts[4, 1]) / 2 == 2
    transfers.clear()
    net.partial_fit(Xg, yg, batch_size=4)
    assert transfers == ["dlpack"] * len(transfers) and len(transfers) <= counts[4, 1]


def test_a_generic_network_pickles_only_by_its_namespace(rng):
    # its namespace has no name to rebuild it from; the error says what to do
    net = bpnet.MLP([2, 3, 1], backend=namespace)
    with pytest.raises(ValueError, match="pass the namespace itself"):
        pickle.loads(pickle.dumps(net))


# -- the scikit-learn estimators -----------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_the_estimators_on_guarded_arrays(rng, solver):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X, y = blobs(rng, n=60)
    r = X @ np.array([1.0, -1.0, 0.5, 2.0])
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=6, random_state=0,
                  early_stopping=solver != "lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for Estimator, target in ((MLPClassifier, y), (MLPRegressor, r)):
            ours = Estimator(**params).fit(Guarded(X), Guarded(target))
            ref = Estimator(**params).fit(X, target)
            assert ours.net_.backend == GENERIC
            assert ours.score(Guarded(X), Guarded(target)) == pytest.approx(
                ref.score(X, target), rel=1e-9, abs=1e-12)
            pred = ours.predict(Guarded(X))
            assert type(pred) is Guarded and device_of(pred) == DEVICE
            np.testing.assert_allclose(_host(pred), ref.predict(X), rtol=1e-9, atol=1e-12)
        clf = MLPClassifier(**params).fit(Guarded(X), Guarded(y))
        proba = clf.predict_proba(Guarded(X))
        assert type(proba) is Guarded and type(clf.predict_log_proba(Guarded(X))) is Guarded
        if solver != "lbfgs":
            inc = MLPClassifier(**{**params, "early_stopping": False})
            inc.partial_fit(Guarded(X), Guarded(y > 0), classes=[False, True])
            inc.partial_fit(Guarded(X), Guarded(y > 0))
            assert type(inc.predict_proba(Guarded(X))) is Guarded

"""Dask networks follow the chunk type of their data: with CuPy chunks (one
``dask_cuda`` worker per GPU) every weight, optimizer moment and index vector
bpnet creates is a CuPy chunk.

:mod:`tests.guarded` stands in for CuPy as the chunk type, on the threaded
scheduler and on a two-worker ``LocalCluster``: a chunk that bpnet made with
NumPy, or a trip of a chunk through ``np.asarray``, mixes a NumPy array into a
Guarded computation, which fails.  A Dask array's device is the library of its
chunks (``bpnet.backend.Chunks``; ``"cpu"`` for NumPy chunks).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import bpnet  # noqa: E402
from bpnet.backend import Chunks, device_of, get_namespace  # noqa: E402

from .guarded import Guarded, namespace, register_with_dask  # noqa: E402
from .helpers import DASK_TEST_CHUNK, blobs  # noqa: E402

register_with_dask()  # Dask treats Guarded chunks as it treats CuPy's

GUARDED = Chunks(namespace)
TOL = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(params=["threads", "cluster"])
def scheduler(request):
    with dask.config.set({"array.chunk-size": DASK_TEST_CHUNK}):
        if request.param == "cluster":
            with request.getfixturevalue("dask_client").as_current():
                yield request.param
        else:
            with dask.config.set(scheduler="threads"):
                yield request.param


def guarded_rows(a: np.ndarray, rows: int = 16):
    """``a`` as a Dask array of Guarded row chunks."""
    meta = Guarded(np.empty((0,) * a.ndim, dtype=a.dtype))
    return da.from_array(a, chunks=(rows, *a.shape[1:])).map_blocks(namespace.asarray, meta=meta)


def chunk_types(x) -> set[type]:
    """The types of the computed chunks of a Dask array."""
    return {type(c) for c in dask.compute(*x.to_delayed().ravel())}


def guarded_everywhere(net) -> None:
    for pair in net.params:
        for t in pair:
            assert device_of(t) == GUARDED and chunk_types(t) == {Guarded}


def _host(x):
    return bpnet.to_numpy(x)


# -- the Dask namespace: creation functions honour the chunk type ------------------------
@pytest.mark.parametrize("device", ["cpu", GUARDED], ids=["numpy", "guarded"])
def test_every_creation_function_makes_chunks_of_the_device(device):
    xp = get_namespace("dask")
    chunk = np.ndarray if device == "cpu" else Guarded
    f64 = xp.float64
    x = xp.asarray(np.arange(6.0), device=device)
    made = {
        "asarray host": (x, np.arange(6.0)),
        "asarray list": (xp.asarray([1.0, 2.0], device=device), np.array([1.0, 2.0])),
        "asarray dask": (xp.asarray(da.ones(3, chunks=2), device=device), np.ones(3)),
        "zeros": (xp.zeros((2, 3), dtype=f64, device=device), np.zeros((2, 3))),
        "ones": (xp.ones((1, 4), dtype=xp.float32, device=device), np.ones((1, 4), "float32")),
        "full": (xp.full((3,), 2.5, device=device), np.full(3, 2.5)),
        "empty": (xp.empty((2,), dtype=f64, device=device), None),
        "arange": (xp.arange(5, dtype=xp.int64, device=device), np.arange(5)),
        "arange stop": (xp.arange(1, stop=4, device=device), np.arange(1, 4)),
        "eye": (xp.eye(3, device=device), np.eye(3)),
        "linspace": (xp.linspace(0.0, 1.0, 5, device=device), np.linspace(0.0, 1.0, 5)),
        "zeros_like": (xp.zeros_like(x), np.zeros(6)),
        "ones_like": (xp.ones_like(da.ones(2), device=device), np.ones(2)),
        "full_like": (xp.full_like(x, 3.0, device=device), np.full(6, 3.0)),
    }
    for name, (got, want) in made.items():
        assert device_of(got) == device, name
        assert chunk_types(got) == {chunk}, name
        if want is not None:
            host = _host(got)
            assert host.dtype == want.dtype, name
            np.testing.assert_array_equal(host, want, err_msg=name)


def test_the_device_of_a_dask_array_is_its_chunk_library():
    assert device_of(da.ones(3)) == "cpu"
    assert device_of(guarded_rows(np.ones((4, 2)))) == GUARDED
    xp = get_namespace("dask")
    for device in (namespace, GUARDED):
        assert bpnet.MLP([2, 1], backend="dask", device=device).device == GUARDED
    for device in (None, "cpu", "numpy", np):
        assert bpnet.MLP([2, 1], backend="dask", device=device).device == "cpu"
    for bad, why in (("cuda", "library of its chunks"), ("dask", "cannot be Dask arrays"),
                     (xp, "cannot be Dask arrays")):
        with pytest.raises(ValueError, match=why):
            bpnet.MLP([2, 1], backend="dask", device=bad)


def test_chunks_of_a_library_outside_numpys_protocols_are_refused():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"__array_function__.*'torch'"):
        bpnet.MLP([2, 1], backend="dask", device="torch")


# -- training on Guarded chunks ----------------------------------------------------------------
def _nets(loss="cross_entropy", **kw):
    k = 2 if loss == "mse" else 3
    args = dict(loss=loss, dtype="float64", seed=5)
    return (bpnet.MLP([4, 6, k], backend="dask", device=GUARDED, **args, **kw),
            bpnet.MLP([4, 6, k], **args, **kw))


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_fit_on_guarded_chunks_equals_numpy(scheduler, rng, optimizer):
    X, y = blobs(rng, n=48)
    net, ref = _nets()
    guarded_everywhere(net)
    batch = None if optimizer == "lbfgs" else 16
    kw = dict(epochs=3, batch_size=batch, optimizer=optimizer)
    Xd, yd = guarded_rows(X), guarded_rows(y)
    got = net.fit(Xd, yd, validation_data=(Xd, yd), **kw)
    want = ref.fit(X, y, validation_data=(X, y), **kw)
    np.testing.assert_allclose(got.loss, want.loss, **TOL)
    np.testing.assert_allclose(got.val_loss, want.val_loss, **TOL)
    guarded_everywhere(net)
    for (W, b), (W0, b0) in zip(net.params, ref.params, strict=True):
        np.testing.assert_allclose(_host(W), W0, **TOL)
        np.testing.assert_allclose(_host(b), b0, **TOL)
    if optimizer != "lbfgs":  # the moments partial_fit continues: Guarded chunks too
        state = [t for t in net._optimizer_state.opt_state if hasattr(t, "dask")]
        state += [t for part in net._optimizer_state.opt_state if isinstance(part, list)
                  for pair in part for t in pair]
        assert state and all(chunk_types(t) == {Guarded} for t in state)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_every_method_on_guarded_chunks(scheduler, rng, tmp_path, loss):
    X, y = blobs(rng, n=48)
    if loss == "mse":
        y = np.stack([X[:, 0] - X[:, 1], X[:, 2]], axis=1)
    net, ref = _nets(loss)
    Xd, yd = guarded_rows(X), guarded_rows(y)
    assert net.partial_fit(Xd, yd, batch_size=16) == pytest.approx(
        ref.partial_fit(X, y, batch_size=16), rel=1e-12)
    value, grads = net.loss_and_grad(Xd, yd, alpha=0.1)
    value0, grads0 = ref.loss_and_grad(X, y, alpha=0.1)
    assert value == pytest.approx(value0, rel=1e-12)
    assert chunk_types(grads[0][0]) == {Guarded}
    np.testing.assert_allclose(_host(grads[0][0]), grads0[0][0], **TOL)
    assert net.compute_loss(Xd, yd) == pytest.approx(ref.compute_loss(X, y), rel=1e-12)
    assert net.evaluate(Xd, yd, batch_size=20) == pytest.approx(ref.evaluate(X, y), rel=1e-12)
    pred = net.predict(Xd)
    assert pred.chunks[0] == Xd.chunks[0] and chunk_types(pred) == {Guarded}
    np.testing.assert_allclose(_host(pred), ref.predict(X), **TOL)
    net.save(tmp_path / "net.npz")
    back = bpnet.MLP.load(tmp_path / "net.npz", device=namespace)
    guarded_everywhere(back)
    np.testing.assert_allclose(_host(back.predict(Xd)), ref.predict(X), **TOL)
    twin = pickle.loads(pickle.dumps(net))
    assert twin.device == GUARDED
    guarded_everywhere(twin)


def test_host_and_numpy_chunked_data_are_uploaded_chunk_by_chunk(scheduler, rng):
    X, y = blobs(rng, n=48)
    net, ref = _nets()
    for data in ((X, y), (da.from_array(X, chunks=(16, 4)), da.from_array(y, chunks=16))):
        got = net.fit(*data, epochs=2, batch_size=16)
        want = ref.fit(X, y, epochs=2, batch_size=16)
        np.testing.assert_allclose(got.loss, want.loss, **TOL)
        guarded_everywhere(net)
        assert chunk_types(net.predict(data[0])) == {Guarded}


def test_guarded_chunks_are_not_copied_to_a_numpy_network(rng):
    X, y = blobs(rng, n=48)
    net = bpnet.MLP([4, 6, 3], backend="dask", loss="cross_entropy")
    before = [_host(t).copy() for pair in net.params for t in pair]
    with pytest.raises(ValueError, match=r"chunks of Chunks\(tests.guarded\) cannot become one "
                                         r"with chunks of 'cpu'.*device=bpnet.backend.device_of"):
        net.fit(guarded_rows(X), y, epochs=1)
    for got, want in zip((t for pair in net.params for t in pair), before, strict=True):
        np.testing.assert_array_equal(_host(got), want)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_estimators_follow_the_chunks_of_X(scheduler, rng, solver):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from bpnet.sklearn import MLPClassifier, MLPRegressor

    X, y = blobs(rng, n=60)
    r = X @ np.array([1.0, -1.0, 0.5, 2.0])
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=4, random_state=0,
                  early_stopping=solver == "adam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for Estimator, target in ((MLPClassifier, y), (MLPRegressor, r)):
            Xd, td = guarded_rows(X), guarded_rows(target)
            ours = Estimator(**params).fit(Xd, td)
            ref = Estimator(**params).fit(X, target)
            assert ours.net_.device == GUARDED
            guarded_everywhere(ours.net_)
            assert ours.score(Xd, td) == pytest.approx(ref.score(X, target), rel=1e-9,
                                                       abs=1e-12)
            pred = ours.predict(Xd)
            assert chunk_types(pred) == {Guarded}
            np.testing.assert_allclose(_host(pred), ref.predict(X), rtol=1e-9, atol=1e-12)

"""Dask: data chunked by rows and persisted, one compute per step, gradients
that are sums over chunks, unknown chunk sizes, and a two-worker cluster.

Numbers against NumPy on every backend are in test_backends.py; this file
checks how the work is laid out.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bpnet

from .helpers import assert_close, make_targets

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")


@pytest.fixture
def threads():
    """The threaded scheduler, with chunks small enough that test data spans several."""
    with dask.config.set({"scheduler": "threads", "array.chunk-size": "1KiB"}):
        yield


@pytest.fixture
def data(rng):
    X = rng.standard_normal((100, 8))
    return X, make_targets("cross_entropy", 100, 3, rng)


def _nets(dtype="float64"):
    kw = dict(activation="tanh", loss="cross_entropy", dtype=dtype, seed=5)
    return bpnet.MLP([8, 6, 3], **kw), bpnet.MLP([8, 6, 3], backend="dask", **kw)


def test_host_data_is_chunked_by_rows_and_persisted(threads, data):
    _, net = _nets()
    x, y = net._xy(*data)
    assert x.numblocks[0] > 1 and x.numblocks[1:] == (1,)  # whole rows per chunk
    assert y.chunks[0] == x.chunks[0] and y.numblocks[1] == 1  # a sample's x and y together
    for arr in (x, y):
        # persisted: the graph holds the computed chunks and nothing to recompute
        graph = dict(arr.__dask_graph__())
        assert len(graph) == arr.npartitions
        assert all(isinstance(v, np.ndarray) for v in graph.values())
    assert x.dtype == np.float64 and y.dtype == np.float64


def test_chunk_size_follows_dask_config(data):
    _, net = _nets()
    with dask.config.set({"scheduler": "threads", "array.chunk-size": "2KiB"}):
        small = net._xy(*data)[0].numblocks[0]
    with dask.config.set({"scheduler": "threads", "array.chunk-size": "128MiB"}):
        default = net._xy(*data)[0].numblocks[0]
    assert small > 1 and default == 1


def test_one_compute_for_the_loss_and_every_gradient(threads, data, monkeypatch):
    _, net = _nets()
    real = dask.base.compute
    calls = []

    def counting(*args, **kwargs):
        calls.append(len(args))
        return real(*args, **kwargs)

    monkeypatch.setattr(dask.base, "compute", counting)
    monkeypatch.setattr(dask, "compute", counting)
    value, grads = net.loss_and_grad(*data)
    assert calls == [1 + 2 * len(grads)]  # the loss and each dW, db, together
    assert isinstance(value, float)
    # the gradients come back as Dask arrays over the computed values
    assert all(isinstance(g, da.Array) for pair in grads for g in pair)


def test_gradient_is_the_sum_over_chunks(threads, data):
    ref, net = _nets()
    X, Y = data
    x, _ = net._xy(X, Y)
    _, grads = net.loss_and_grad(X, Y)
    total = None
    start = 0
    for rows in x.chunks[0]:  # each chunk's share: its mean gradient times its weight
        _, g = ref.loss_and_grad(X[start:start + rows], Y[start:start + rows])
        part = [t * (rows / X.shape[0]) for pair in g for t in pair]
        total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
        start += rows
    for got, want in zip([t for pair in grads for t in pair], total, strict=True):
        assert_close(got, want, like=net)


def test_unknown_chunk_sizes_are_computed(threads, data):
    ref, net = _nets()
    X, Y = data
    keep = X[:, 0] > 0
    Xd = da.from_array(X, chunks=(16, 8))
    mask = Xd[:, 0] > 0
    Xm, Ym = Xd[mask], da.from_array(Y, chunks=16)[mask]
    assert math.isnan(Xm.shape[0])
    value, grads = net.loss_and_grad(Xm, Ym)
    value_ref, grads_ref = ref.loss_and_grad(X[keep], Y[keep])
    assert value == pytest.approx(value_ref, rel=1e-12)
    assert_close(grads[0][0], grads_ref[0][0], like=net)
    history = net.fit(Xm, Ym, lr=0.5, epochs=2)
    assert history.loss == pytest.approx(ref.fit(X[keep], Y[keep], lr=0.5, epochs=2).loss,
                                         rel=1e-12)


def test_column_chunks_are_merged_and_targets_follow_the_rows(threads, data):
    ref, net = _nets()
    X, Y = data
    Xd = da.from_array(X, chunks=(30, 3))  # split along features too
    Yd = da.from_array(Y, chunks=17)  # rows cut elsewhere than X's
    x, y = net._xy(Xd, Yd)
    assert x.chunks[0] == Xd.chunks[0] and x.numblocks[1] == 1
    assert y.chunks[0] == x.chunks[0]
    assert net.loss_and_grad(Xd, Yd)[0] == pytest.approx(ref.loss_and_grad(X, Y)[0], rel=1e-12)


def test_predict_is_lazy_and_chunked_like_the_rows_of_X(threads, data):
    ref, net = _nets("float32")
    X, _ = data
    p = net.predict(X)
    assert isinstance(p, da.Array) and p.dtype == np.float32
    assert p.chunks[0] == net._x(X).chunks[0] and p.numblocks[1] == 1
    assert_close(p, ref.predict(X), "float32", like=net)


def test_numerical_grad_on_dask_is_one_compute(threads, rng, monkeypatch):
    X, Y = rng.standard_normal((20, 2)), rng.standard_normal((20, 1))
    net = bpnet.MLP([2, 2, 1], activation="sigmoid", backend="dask", dtype="float64")
    ref = bpnet.MLP([2, 2, 1], activation="sigmoid", dtype="float64")
    real, calls = dask.base.compute, []
    monkeypatch.setattr(dask, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    numerical = net.numerical_grad(X, Y)
    assert len(calls) == 1  # all 2P forward passes in one graph
    for got, want in zip(numerical, ref.numerical_grad(X, Y), strict=True):
        # the same differences, summed in another order
        assert_close(got[0], want[0], scale=1e3, like=net)


def test_a_cluster_keeps_the_data_on_its_workers_and_fits(dask_client, data):
    distributed = pytest.importorskip("distributed")
    ref, net = _nets()
    X, Y = data
    with dask_client.as_current(), dask.config.set({"array.chunk-size": "1KiB"}):
        assert len(dask_client.scheduler_info()["workers"]) == 2
        x, _ = net._xy(X, Y)
        graph = dict(x.__dask_graph__())
        # each step's graph names the chunks by key; their bytes stay on the workers
        assert len(graph) == x.npartitions > 1
        assert all(isinstance(v, distributed.Future) for v in graph.values())
        history = net.fit(X, Y, optimizer="sgd", lr=0.5, epochs=2)
    expected = ref.fit(X, Y, optimizer="sgd", lr=0.5, epochs=2).loss
    assert history.loss == pytest.approx(expected, rel=1e-12)


def test_materialize_step_keeps_each_step_graph_from_growing(threads, data, monkeypatch):
    from bpnet import kernels
    from bpnet.backend.lazy import materialize_step

    ref, net = _nets()
    x, y = net._xy(*data)
    params = net.params
    real, calls = dask.base.compute, []
    monkeypatch.setattr(dask, "compute", lambda *a, **k: calls.append(len(a)) or real(*a, **k))
    for _ in range(3):
        value, grads = kernels.loss_and_grad(params, x, y, net.arch, xp=net.xp)
        new = [(W - 0.5 * dW, b - 0.5 * db) for (W, b), (dW, db) in zip(params, grads)]
        value, params = materialize_step(net.xp, value, new)
        # the new weights are data again, not a graph over the previous steps
        assert all(len(t.__dask_graph__()) == 1 for pair in params for t in pair)
    assert calls == [1 + 2 * len(params)] * 3  # one compute per step: loss and weights
    ref.fit(*data, optimizer="sgd", momentum=0.0, lr=0.5, epochs=3)
    for (W, b), (W0, b0) in zip(params, ref.params, strict=True):
        assert_close(W, W0, like=net)
        assert_close(b, b0, like=net)
    unchanged = [(np.ones(2), np.zeros(1))]
    assert materialize_step(np, np.float64(1.0), unchanged)[1] is unchanged


def test_lbfgs_over_the_public_api_on_dask_data(threads, data):
    # What an L-BFGS fit does (scipy on the host, one loss-and-gradient per
    # evaluation): the Dask net follows the NumPy one step for step.
    optimize = pytest.importorskip("scipy.optimize")
    from bpnet.params import Layout

    X, Y = data
    results = []
    for net in _nets():
        layout = Layout.of(net.params)

        def f(theta, net=net, layout=layout):
            net.set_params(layout.unravel(theta, xp=np))
            value, grads = net.loss_and_grad(X, Y)
            host = [(bpnet.to_numpy(dW), bpnet.to_numpy(db)) for dW, db in grads]
            return value, layout.ravel(host, xp=np)

        theta0 = layout.ravel([(bpnet.to_numpy(W), bpnet.to_numpy(b)) for W, b in net.params],
                              xp=np)
        res = optimize.minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 5})
        assert res.fun < f(theta0)[0]
        results.append(res.x)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-9, atol=1e-12)

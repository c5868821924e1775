"""The MLP object: configuration, parameters, predictions, minimal training."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet


def test_public_api_shapes_and_types(rng):
    net = bpnet.MLP([64, 128, 10], activation="relu", loss="cross_entropy",
                    output_activation=None, backend="numpy", device=None, dtype="float32", seed=0)
    assert [(W.shape, b.shape) for W, b in net.params] == [((64, 128), (128,)), ((128, 10), (10,))]
    assert all(W.dtype == np.float32 for W, _ in net.params)
    assert net.n_params == 64 * 128 + 128 + 128 * 10 + 10
    assert net.output_activation == "softmax"
    X = rng.standard_normal((5, 64))
    p = net.predict(X)
    assert p.shape == (5, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    value, grads = net.loss_and_grad(X, rng.integers(0, 10, 5))
    assert isinstance(value, float) and value > 0
    assert [(g.shape, h.shape) for g, h in grads] == [(W.shape, b.shape) for W, b in net.params]
    assert "64-128-10" in repr(net)


def test_init_scale_follows_activation():
    he = bpnet.MLP([400, 300, 1], activation="relu", dtype="float64", seed=0).params[0][0]
    gl = bpnet.MLP([400, 300, 1], activation="tanh", dtype="float64", seed=0).params[0][0]
    assert np.std(he) == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.std(gl) == pytest.approx(np.sqrt(6 / 700) / np.sqrt(3), rel=0.02)


def test_set_params_converts_and_params_is_a_copy():
    net = bpnet.MLP([2, 3, 1], dtype="float32")
    new = [([[1, 2, 3], [4, 5, 6]], [0, 0, 0]), (np.ones((3, 1)), np.zeros(1))]
    net.set_params(new)
    W, _ = net.params[0]
    assert W.dtype == np.float32 and W[1, 2] == 6
    snapshot = net.params
    snapshot.pop()
    assert len(net.params) == 2


def test_to_moves_between_dtypes_and_backends():
    pytest.importorskip("array_api_strict")
    net = bpnet.MLP([3, 4, 2], seed=9, dtype="float32")
    twin = net.to(backend="array_api_strict", dtype="float64")
    assert twin.backend == "array_api_strict" and twin.dtype_name == "float64"
    for (W, _), (W2, _) in zip(net.params, twin.params):
        np.testing.assert_allclose(bpnet.to_numpy(W2), W, rtol=1e-7)


def test_xor_is_learned_by_sgd():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    Y = np.array([0, 1, 1, 0], dtype=float)
    net = bpnet.MLP([2, 4, 1], activation="tanh", loss="mse", dtype="float64", seed=1)
    history = net.fit(X, Y, optimizer="sgd", momentum=0.0, lr=0.5, epochs=2000)
    assert history.loss[-1] < 0.01 < history.loss[0]
    np.testing.assert_array_equal(np.round(net.predict(X)[:, 0]), Y)


def test_minibatch_fit_lowers_the_loss(rng):
    X = rng.standard_normal((200, 3))
    Y = (X[:, 0] * X[:, 1] > 0).astype(int)
    net = bpnet.MLP([3, 16, 2], loss="cross_entropy", dtype="float64", seed=0)
    before = net.compute_loss(X, Y)
    history = net.fit(X, Y, optimizer="sgd", momentum=0.0, lr=0.2, epochs=50, batch_size=16,
                      seed=0)
    assert history.epochs == 50
    assert net.compute_loss(X, Y) < 0.5 * before


def test_cuda_detection_never_raises():
    assert bpnet.cuda_available() in (True, False)
    net = bpnet.MLP([2, 1], backend="auto")
    assert net.backend == ("cupy" if bpnet.cuda_available() else "numpy")


def test_pickle_round_trip_on_every_backend(backend, rng):
    import pickle

    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=4)
    again = pickle.loads(pickle.dumps(net))
    assert again.backend == net.backend and again.device == net.device
    assert again.xp is bpnet.get_namespace(net.backend)
    X = rng.standard_normal((5, 3))
    for (W, _), (W0, _) in zip(again.params, net.params):
        np.testing.assert_array_equal(bpnet.to_numpy(W), bpnet.to_numpy(W0))
    np.testing.assert_array_equal(bpnet.to_numpy(again.predict(X)), bpnet.to_numpy(net.predict(X)))

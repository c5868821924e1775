"""Per-layer activations, custom activations and losses (registered, checked by
gradcheck, saved by name), and gradient clipping by global norm."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.activations import ACTIVATIONS
from bpnet.losses import LOSSES

from .helpers import assert_close, blobs, weights


@pytest.fixture(autouse=True)
def registries():
    """Every test leaves the registries as it found them."""
    acts, losses = dict(ACTIVATIONS), dict(LOSSES)
    yield
    ACTIVATIONS.clear()
    ACTIVATIONS.update(acts)
    LOSSES.clear()
    LOSSES.update(losses)


def _softsign(z, xp):
    return z / (1.0 + xp.abs(z))


def _softsign_df(a, xp):  # f'(z) = 1 / (1 + |z|)^2 = (1 - |a|)^2
    d = 1.0 - xp.abs(a)
    return d * d


def _elu(z, xp):
    return xp.where(z > 0, z, xp.expm1(xp.minimum(z, 0.0)))


def _elu_df(a, xp):  # 1 above 0, exp(z) = a + 1 below
    return xp.where(a > 0, 1.0, a + 1.0)


# --- per-layer activations ------------------------------------------------------------------


def test_each_hidden_layer_takes_its_own_activation(backend, rng):
    X, y = blobs(rng, n=30)
    kw = dict(activation=["relu", "tanh"], loss="cross_entropy", dtype="float64", seed=3)
    ref = bpnet.MLP([4, 6, 5, 3], **kw)
    net = bpnet.MLP([4, 6, 5, 3], backend=backend.name, device=backend.device, **kw)
    assert net.activations == ("relu", "tanh") and net.activation == ["relu", "tanh"]
    # by hand: relu, then tanh, then the output
    (W1, b1), (W2, b2), (W3, b3) = ref.params
    z = np.tanh(np.maximum(X @ W1 + b1, 0) @ W2 + b2) @ W3 + b3
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ref.predict(X), p / p.sum(axis=1, keepdims=True), rtol=1e-12)
    assert_close(net.predict(X), ref.predict(X), like=net)
    h, h_ref = (m.fit(X, y, epochs=3, batch_size=8) for m in (net, ref))
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    assert bpnet.gradcheck(net, X, y).passed


def test_per_layer_initialisation_follows_each_activation():
    net = bpnet.MLP([200, 300, 300, 2], activation=["relu", "tanh"], seed=0)
    (W1, _), (W2, _), _ = net.params
    assert np.std(W1) == pytest.approx(np.sqrt(2 / 200), rel=0.05)  # He
    assert np.max(np.abs(W2)) <= np.sqrt(6 / 600)  # Glorot uniform


def test_per_layer_activations_are_checked():
    with pytest.raises(ValueError, match="lists 1 names but the network has 2 hidden layers"):
        bpnet.MLP([4, 6, 5, 3], activation=["relu"])
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        bpnet.MLP([4, 6, 5, 3], activation=["relu", "rleu"])
    with pytest.raises(TypeError, match="activation must be a name or a list"):
        bpnet.MLP([4, 6, 3], activation=3)


def test_per_layer_activations_survive_save_load_pickle_and_to(tmp_path):
    import pickle

    net = bpnet.MLP([3, 4, 4, 2], activation=["tanh", "sigmoid"], seed=1)
    net.save(tmp_path / "m.npz")
    for twin in (bpnet.MLP.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(net)),
                 net.to(dtype="float64")):
        assert twin.activation == ["tanh", "sigmoid"]
        X = np.ones((2, 3))
        np.testing.assert_allclose(bpnet.to_numpy(twin.predict(X)), net.predict(X), rtol=1e-6)


def test_the_command_takes_per_layer_activations_and_clipping(capsys):
    from bpnet.cli import main

    assert main(["train", "--dataset", "xor", "--hidden", "6,6", "--activation", "tanh,relu",
                 "--clip-norm", "1", "--batch-size", "auto", "--epochs", "3",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "network   2-6-6-2 tanh,relu, cross_entropy" in out and "batch auto (4)" in out
    assert main(["train", "--dataset", "xor", "--hidden", "6,6", "--activation", "tanh"]) == 0
    assert main(["train", "--dataset", "xor", "--hidden", "6,6", "--activation", "tanh,rleu",
                 "--no-progress"]) == 2
    assert "unknown activation 'rleu'" in capsys.readouterr().err


# --- custom activations ------------------------------------------------------------------


def test_a_registered_activation_trains_on_every_backend(backend, rng):
    bpnet.register_activation("softsign", _softsign, _softsign_df)
    assert "softsign" in bpnet.ACTIVATIONS
    X, y = blobs(rng, n=30)
    kw = dict(activation=["softsign", "relu"], loss="cross_entropy", dtype="float64", seed=2)
    ref = bpnet.MLP([4, 6, 5, 3], **kw)
    net = bpnet.MLP([4, 6, 5, 3], backend=backend.name, device=backend.device, **kw)
    (W1, b1), (W2, b2), (W3, b3) = ref.params
    z1 = X @ W1 + b1
    z = np.maximum((z1 / (1 + np.abs(z1))) @ W2 + b2, 0) @ W3 + b3  # softsign, then relu
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ref.predict(X), p / p.sum(axis=1, keepdims=True), rtol=1e-12)
    h, h_ref = (m.fit(X, y, epochs=3, batch_size=8) for m in (net, ref))
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    for got, want in zip(weights(net), weights(ref)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    assert bpnet.gradcheck(net, X, y).passed


def test_a_wrong_derivative_is_refused_at_registration():
    with pytest.raises(ValueError, match=r"register_activation\('bad'\).*disagrees with central "
                                         r"differences"):
        bpnet.register_activation("bad", _softsign, lambda a, xp: 1.0 - xp.abs(a))
    assert "bad" not in bpnet.ACTIVATIONS  # nothing registered
    with pytest.raises(ValueError, match="unknown activation 'bad'"):
        bpnet.MLP([2, 3, 1], activation="bad")


def test_registration_refuses_bad_names_shapes_and_failing_functions():
    with pytest.raises(ValueError, match="bpnet's own"):
        bpnet.register_activation("relu", _softsign, _softsign_df)
    with pytest.raises(ValueError, match="name must be"):
        bpnet.register_activation("soft sign", _softsign, _softsign_df)
    with pytest.raises(TypeError, match="df must be callable"):
        bpnet.register_activation("s", _softsign, None)
    with pytest.raises(ValueError, match="init must be"):
        bpnet.register_activation("s", _softsign, _softsign_df, init="lecun")
    with pytest.raises(ValueError, match="must return an array of its input's shape"):
        bpnet.register_activation("s", lambda z, xp: xp.sum(z, axis=1), _softsign_df)
    with pytest.raises(ValueError, match="calling it on a float64 NumPy array failed"):
        bpnet.register_activation("s", lambda z, xp: xp.nosuchfunction(z), _softsign_df)
    bpnet.register_activation("elu", _elu, _elu_df, init="he")
    with pytest.raises(ValueError, match="already registered"):
        bpnet.register_activation("elu", _elu, _elu_df)
    bpnet.register_activation("elu", _elu, _elu_df, replace=True)
    assert bpnet.ACTIVATIONS["elu"].init == "glorot"


def test_a_saved_custom_activation_must_be_registered_to_load(tmp_path, rng):
    bpnet.register_activation("elu", _elu, _elu_df, init="he")
    net = bpnet.MLP([3, 5, 2], activation="elu", loss="cross_entropy", seed=0)
    X = rng.standard_normal((4, 3))
    net.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(bpnet.MLP.load(tmp_path / "m.npz").predict(X), net.predict(X))
    del ACTIVATIONS["elu"]  # a fresh process that has not registered it
    with pytest.raises(ValueError, match=r"uses the custom activation 'elu', which is not "
                                         r"registered.*bpnet\.register_activation\('elu'"):
        bpnet.MLP.load(tmp_path / "m.npz")


# --- custom losses -------------------------------------------------------------------------


def _huber(a, y, xp):
    r = xp.abs(a - y)
    return xp.where(r <= 1.0, 0.5 * r * r, r - 0.5)


def _huber_da(a, y, xp):
    return xp.clip(a - y, -1.0, 1.0)


def test_a_registered_loss_is_fused_with_each_output(backend, rng):
    bpnet.register_loss("huber", _huber, _huber_da, outputs=("identity", "tanh"))
    X = rng.standard_normal((30, 3))
    Y = 2.0 * X[:, :2]
    for out in ("identity", "tanh"):
        kw = dict(loss="huber", output_activation=out, dtype="float64", seed=0)
        ref = bpnet.MLP([3, 6, 2], **kw)
        a = ref.predict(X)
        want = np.mean(np.sum(np.where(np.abs(a - Y) <= 1, 0.5 * (a - Y) ** 2,
                                       np.abs(a - Y) - 0.5), axis=1))
        assert ref.compute_loss(X, Y) == pytest.approx(want, rel=1e-12)
        net = bpnet.MLP([3, 6, 2], backend=backend.name, device=backend.device, **kw)
        assert bpnet.gradcheck(net, X, Y).passed
        h, h_ref = (m.fit(X, Y, epochs=3, batch_size=8) for m in (net, ref))
        np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    assert h.accuracy == []  # a regression loss


def test_a_classification_loss_with_labels_reports_accuracy(rng, tmp_path):
    def cost(a, y, xp):  # squared error on softmax-free scores against one-hot labels
        return 0.5 * (a - y) ** 2

    def correct(z, y, xp):
        return xp.argmax(z, axis=1) == xp.argmax(y, axis=1)

    bpnet.register_loss("label_mse", cost, lambda a, y, xp: a - y, outputs="sigmoid",
                        targets="labels", correct=correct)
    X, y = blobs(rng, n=40)
    net = bpnet.MLP([4, 8, 3], loss="label_mse", seed=0)
    assert net.output_activation == "sigmoid"
    h = net.fit(X, y, epochs=30, lr=0.05)
    assert h.accuracy[-1] > 0.9 and net.evaluate(X, y)["accuracy"] > 0.9
    net.save(tmp_path / "m.npz")
    del LOSSES["label_mse"]
    with pytest.raises(ValueError, match="custom loss 'label_mse'"):
        bpnet.MLP.load(tmp_path / "m.npz")


def test_a_wrong_loss_derivative_is_refused():
    with pytest.raises(ValueError, match=r"register_loss\('bad'\) with output 'identity'.*"
                                         "disagrees"):
        bpnet.register_loss("bad", _huber, lambda a, y, xp: a - y)
    assert "bad" not in bpnet.LOSSES
    with pytest.raises(ValueError, match="targets must be"):
        bpnet.register_loss("h", _huber, _huber_da, targets="integers")
    with pytest.raises(ValueError, match="softmax"):
        bpnet.register_loss("h", _huber, _huber_da, outputs="softmax")
    with pytest.raises(ValueError, match="bpnet's own"):
        bpnet.register_loss("mse", _huber, _huber_da)


# --- gradient clipping ---------------------------------------------------------------------


def test_clipping_bounds_each_step_to_lr_times_clip_norm(backend, rng):
    X, y = blobs(rng, n=20)
    net = bpnet.MLP([4, 6, 3], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=0)
    w0 = np.concatenate([w.ravel() for w in weights(net)])
    _, grads = net.loss_and_grad(X, y)
    norm = np.sqrt(sum(np.sum(bpnet.to_numpy(g) ** 2) for pair in grads for g in pair))
    assert norm > 0.05
    net.fit(X, y, epochs=1, batch_size=None, optimizer="sgd", momentum=0.0, lr=0.5,
            clip_norm=0.05)
    moved = np.concatenate([w.ravel() for w in weights(net)]) - w0
    # the gradient scaled to clip_norm (torch's rule adds 1e-6 to the norm)
    assert np.linalg.norm(moved) == pytest.approx(0.5 * 0.05 * norm / (norm + 1e-6), rel=1e-9)


def test_a_large_clip_norm_changes_nothing(clf):
    net, X, y = clf
    w0 = net.params
    runs = []
    for clip in (None, 1e6):
        net.set_params(w0)
        net.fit(X, y, epochs=3, batch_size=16, clip_norm=clip)
        runs.append(weights(net))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_clipping_fast_paths_match_the_portable_code(clf, monkeypatch, optimizer):
    net, X, y = clf
    w0 = net.params
    runs = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("BPNET_PORTABLE", mode)
        net.set_params(w0)
        h = net.fit(X, y, epochs=4, batch_size=16, optimizer=optimizer, lr=0.05, clip_norm=0.1)
        loss = net.partial_fit(X, y, batch_size=16, optimizer=optimizer, lr=0.05, clip_norm=0.1)
        runs[mode] = ([*h.loss, loss], weights(net))
    np.testing.assert_allclose(runs["0"][0], runs["1"][0], rtol=1e-12)
    for a, b in zip(runs["0"][1], runs["1"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_clip_norm_is_checked():
    net = bpnet.MLP([2, 1])
    X = np.zeros((3, 2))
    for bad, exc in ((0.0, ValueError), (-1.0, ValueError), ("big", TypeError)):
        with pytest.raises(exc, match="clip_norm"):
            net.fit(X, X[:, 0], clip_norm=bad)
    with pytest.raises(ValueError, match="clip_norm is not available with optimizer 'lbfgs'"):
        net.fit(X, X[:, 0], optimizer="lbfgs", clip_norm=1.0)


def test_clipping_on_torch_makes_no_host_transfer(rng):
    torch = pytest.importorskip("torch")
    from .test_torch_launches import HOST_READS, VIEWS, _per_step

    X = torch.tensor(rng.standard_normal((64, 5)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 3, 64))
    net = bpnet.MLP([5, 8, 3], loss="cross_entropy", backend="torch")
    ops, made = _per_step(net, X, y, 4, 16, optimizer="adam", lr=1e-3, clip_norm=1.0)
    assert made == 0  # no Python number became a tensor (a host-to-device copy on CUDA)
    assert not {k: v for k, v in ops.items() if k in HOST_READS}
    plain, _ = _per_step(net, X, y, 4, 16, optimizer="adam", lr=1e-3)
    extra = sum(v for k, v in ops.items() if k not in VIEWS) - sum(
        v for k, v in plain.items() if k not in VIEWS)
    # the norm (vdot, sqrt), the factor (add, reciprocal, mul, clamp_) and the scaling
    assert extra <= 7

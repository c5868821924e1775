"""Checkpoints keep the optimizer: save/load carry the training state, a warm
start continues it, and train -> save -> load -> continue ends with the weights
of one run straight through, bit for bit."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import bpnet

from .helpers import assert_same_weights, blobs, weights

OPTIMIZERS = [dict(optimizer="adam", lr=0.01),
              dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
              dict(optimizer="sgd", lr=0.05, momentum=0.0)]


def _net(backend, **kw):
    return bpnet.MLP([4, 6, 3], loss="cross_entropy", backend=backend.name,
                     device=backend.device, dtype="float64", seed=1, **kw)


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=["adam", "nesterov", "sgd"])
def test_save_load_continue_is_one_run_bit_for_bit(backend, rng, tmp_path, opt):
    X, y = blobs(rng, n=45)  # batches of 8: five full ones and one of 5
    kw = dict(batch_size=8, **opt)
    straight = _net(backend)
    h = straight.fit(X, y, epochs=6, **kw)
    first = _net(backend)
    h1 = first.fit(X, y, epochs=3, **kw)
    first.save(tmp_path / "half.npz")
    second = bpnet.MLP.load(tmp_path / "half.npz", backend=backend.name, device=backend.device)
    assert second.training_state["epoch"] == 3
    h2 = second.fit(X, y, epochs=3, warm_start=True, **kw)
    assert_same_weights(second, weights(straight))
    assert h1.loss + h2.loss == h.loss and h1.accuracy + h2.accuracy == h.accuracy
    assert second.training_state == straight.training_state


@pytest.mark.parametrize("schedule", ["step", "invscaling", "constant"])
def test_a_warm_start_continues_the_schedule(clf, schedule):
    net, X, y = clf
    w0 = net.params
    kw = dict(batch_size=16, optimizer="sgd", lr=0.1, lr_schedule=schedule, lr_step_size=2,
              power_t=0.5)
    h = net.fit(X, y, epochs=5, **kw)
    done = weights(net)
    net.set_params(w0)
    h1 = net.fit(X, y, epochs=2, **kw)
    h2 = net.fit(X, y, epochs=3, warm_start=True, **kw)
    assert h1.lr + h2.lr == h.lr
    assert_same_weights(net, done)


def test_checkpoints_are_written_every_k_epochs_and_continue(clf, tmp_path):
    net, X, y = clf
    w0 = net.params
    path = tmp_path / "ckpt.npz"
    seen = []

    def look(epoch, history):
        if path.exists():
            seen.append((epoch, bpnet.MLP.load(path).training_state["epoch"]))

    net.fit(X, y, epochs=7, batch_size=16, checkpoint=path, checkpoint_every=3, callback=look)
    assert seen == [(3, 3), (4, 3), (5, 3), (6, 6), (7, 6)]  # then the end of the fit
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # atomic: no temporary files left
    end = weights(net)
    assert_same_weights(bpnet.MLP.load(path), end)
    # a run that stopped after epoch 6 continues from its checkpoint
    net.set_params(w0)
    net.fit(X, y, epochs=6, batch_size=16, checkpoint=path, checkpoint_every=3)
    resumed = bpnet.MLP.load(path)
    resumed.fit(X, y, epochs=1, batch_size=16, warm_start=True)
    assert_same_weights(resumed, end)


def test_an_interrupted_fit_leaves_the_last_checkpoint(clf, tmp_path):
    net, X, y = clf
    path = tmp_path / "ckpt.npz"

    def interrupt(epoch, history):
        if epoch == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=10, batch_size=16, checkpoint=path, checkpoint_every=2,
                callback=interrupt)
    assert bpnet.MLP.load(path).training_state["epoch"] == 4


def test_checkpoint_options_are_checked_before_training(clf, tmp_path):
    net, X, y = clf
    w = weights(net)
    with pytest.raises(ValueError, match="does not exist"):
        net.fit(X, y, checkpoint=tmp_path / "no" / "c.npz")
    with pytest.raises(ValueError, match="is a directory"):
        net.fit(X, y, checkpoint=tmp_path)
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        net.fit(X, y, checkpoint=3)
    with pytest.raises(ValueError, match="checkpoint_every"):
        net.fit(X, y, checkpoint=tmp_path / "c.npz", checkpoint_every=0)
    with pytest.raises(ValueError, match="checkpoint is not available with optimizer 'lbfgs'"):
        net.fit(X, y, optimizer="lbfgs", checkpoint=tmp_path / "c.npz")
    assert_same_weights(net, w)
    assert os.listdir(tmp_path) == []


def test_warm_start_without_a_state_or_with_other_settings_starts_afresh(clf):
    net, X, y = clf
    w0 = net.params
    fresh = net.fit(X, y, epochs=2, batch_size=16).loss
    net.set_params(w0)
    net.reset_optimizer()
    assert net.fit(X, y, epochs=2, batch_size=16, warm_start=True).loss == fresh
    net.set_params(w0)
    net.fit(X, y, epochs=2, batch_size=16, beta1=0.5)  # a state of other settings
    net.set_params(w0)
    assert net.fit(X, y, epochs=2, batch_size=16, warm_start=True).loss == fresh


def test_partial_fit_continues_a_loaded_state(clf, tmp_path):
    net, X, y = clf
    twin = bpnet.MLP.load
    net.fit(X, y, epochs=2, batch_size=16)
    net.save(tmp_path / "m.npz")
    loaded = twin(tmp_path / "m.npz")
    for n in (net, loaded):
        n.partial_fit(X, y, batch_size=16)
    assert_same_weights(loaded, weights(net))


def test_a_state_moves_across_backends_and_dtypes(clf, tmp_path):
    pytest.importorskip("array_api_strict")
    net, X, y = clf
    net.fit(X, y, epochs=2, batch_size=16)
    net.save(tmp_path / "m.npz")
    moved = bpnet.MLP.load(tmp_path / "m.npz", backend="array_api_strict", dtype="float32")
    assert moved.training_state == net.training_state
    for n in (net, moved):
        n.fit(X, y, epochs=2, batch_size=16, warm_start=True)
    for a, b in zip(weights(moved), weights(net)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_pickling_keeps_the_training_state(clf):
    net, X, y = clf
    net.fit(X, y, epochs=2, batch_size=16)
    twin = pickle.loads(pickle.dumps(net))
    assert twin.training_state == net.training_state
    for n in (net, twin):
        n.fit(X, y, epochs=2, batch_size=16, warm_start=True)
    assert_same_weights(twin, weights(net))


def _rewrite(path, out, **meta_changes):
    """A copy of model file ``path`` whose training metadata has ``meta_changes``."""
    with zipfile.ZipFile(path) as zf:
        members = {name: np.load(zf.open(name)) for name in zf.namelist()}
    meta = json.loads(str(members["extra.npy"][()]))
    meta["training"].update(meta_changes)
    members["extra.npy"] = np.array(json.dumps(meta))
    np.savez(out, **{name[:-4]: value for name, value in members.items()})
    return out


@pytest.mark.parametrize("changes,match", [
    (dict(optimizer="rmsprop"), "optimizer 'rmsprop'"),
    (dict(settings={"beta1": 2.0, "beta2": 0.999, "epsilon": 1e-8}), "beta1"),
    (dict(settings={"beta1": True, "beta2": 0.999, "epsilon": 1e-8}), "wrong type"),
    (dict(step=-1), "step"),
    (dict(arrays=["m"]), "lists arrays"),
    (dict(n_params=3), "shape"),
    (dict(rng={"bit_generator": "MT19937"}), "PCG64"),
    (dict(format=9), "format 9"),
])
def test_a_damaged_training_state_is_one_clear_error(clf, tmp_path, changes, match):
    net, X, y = clf
    net.fit(X, y, epochs=1, batch_size=16)
    net.save(tmp_path / "m.npz")
    bad = _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", **changes)
    with pytest.raises(ValueError, match=match):
        bpnet.MLP.load(bad)


def test_files_without_a_state_load_as_before(clf, tmp_path):
    net, _, _ = clf
    net.save(tmp_path / "m.npz")  # never trained: no state
    assert bpnet.MLP.load(tmp_path / "m.npz").training_state is None
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        assert "extra.npy" not in zf.namelist()


def _train(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "bpnet", "train", "--dataset", "moons",
                           "--no-progress", "--epochs", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_bpnet_train_resumes_from_its_checkpoint(tmp_path):
    # straight through, and the same run stopped after 4 of 10 epochs and run again
    straight = _train(tmp_path, "10", "--save", "straight.npz")
    first = _train(tmp_path, "4", "--checkpoint", "ckpt.npz")
    again = _train(tmp_path, "10", "--checkpoint", "ckpt.npz", "--save", "resumed.npz")
    for run in (straight, first, again):
        assert run.returncode == 0, run.stderr
    assert "resumed   from ckpt.npz after 4 epochs" in again.stdout
    a, b = (bpnet.MLP.load(tmp_path / name) for name in ("straight.npz", "resumed.npz"))
    assert_same_weights(b, weights(a))
    assert bpnet.MLP.load(tmp_path / "ckpt.npz").training_state["epoch"] == 10
    other = _train(tmp_path, "10", "--hidden", "7", "--checkpoint", "ckpt.npz")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "holds a 2-32-1 relu network (logistic, adam), not the 2-7-1" in other.stderr
    lbfgs = _train(tmp_path, "5", "--optimizer", "lbfgs", "--checkpoint", "l.npz")
    assert lbfgs.returncode == 2 and "lbfgs" in lbfgs.stderr

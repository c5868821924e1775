"""Model files: save and load round trips, atomic writes, refused files."""

from __future__ import annotations

import os

import numpy as np
import pytest

import bpnet
from bpnet.backend import device_of


def test_save_load_round_trip(clf, tmp_path):
    net, X, y = clf
    net.fit(X, y, epochs=3)
    path = tmp_path / "model.npz"
    net.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind
    twin = bpnet.MLP.load(path)
    assert twin.get_config() == net.get_config()
    np.testing.assert_array_equal(twin.predict(X), net.predict(X))
    assert twin.evaluate(X, y) == net.evaluate(X, y)


def test_load_onto_another_backend_and_dtype(tmp_path, rng):
    strict = pytest.importorskip("array_api_strict")
    net = bpnet.MLP([3, 5, 2], activation="tanh", loss="cross_entropy", dtype="float64", seed=2)
    net.save(str(tmp_path / "m.npz"))
    dev = strict.Device("device1")
    twin = bpnet.MLP.load(tmp_path / "m.npz", backend="array_api_strict", device=dev,
                          dtype="float32")
    assert twin.backend == "array_api_strict" and twin.dtype_name == "float32"
    assert device_of(twin.params[0][0]) == dev
    X = rng.standard_normal((4, 3))
    np.testing.assert_allclose(bpnet.to_numpy(twin.predict(X)), net.predict(X), rtol=1e-5)


def test_save_replaces_atomically_and_cleans_up_on_failure(clf, tmp_path, monkeypatch):
    net, X, y = clf
    path = tmp_path / "model.npz"
    net.save(path)
    original = path.read_bytes()
    net.fit(X, y, epochs=2)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_load_refuses_what_is_not_a_model(clf, tmp_path):
    net, _, _ = clf
    with pytest.raises(FileNotFoundError, match="no bpnet model"):
        bpnet.MLP.load(tmp_path / "missing.npz")
    good = tmp_path / "good.npz"
    net.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for path in (truncated, foreign, single, text):
        with pytest.raises(ValueError, match="not a bpnet model"):
            bpnet.MLP.load(path)


def test_load_refuses_a_newer_format(clf, tmp_path):
    import json

    net, _, _ = clf
    path = tmp_path / "future.npz"
    np.savez(path, bpnet_format=np.array(99), config=np.array(json.dumps(net.get_config())))
    with pytest.raises(ValueError, match=r"format 99.*upgrade"):
        bpnet.MLP.load(path)


def test_save_into_a_missing_directory(clf, tmp_path):
    net, _, _ = clf
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "nowhere" / "m.npz")
    with pytest.raises(TypeError, match="path"):
        net.save(3)



"""Looking at a model and a run: ``MLP.summary()``, ``History``'s repr, columns,
training accuracy and times."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import bpnet

from .helpers import blobs


def test_summary_is_a_per_layer_table(capsys):
    net = bpnet.MLP([64, 128, 32, 10], activation=["relu", "tanh"], loss="cross_entropy")
    text = net.summary()
    assert isinstance(text, str) and repr(text) == str(text)  # a REPL shows the table
    lines = text.splitlines()
    assert lines[0] == "MLP 64-128-32-10"
    rows = {line.split()[0] + (line.split()[1] if line.startswith("hidden") else ""): line
            for line in lines if line.startswith(("input", "hidden", "output"))}
    assert rows["input"].split()[-1] == "0" and "(N, 64)" in rows["input"]
    assert rows["hidden1"].split()[2] == "relu" and "(64, 128)" in rows["hidden1"]
    assert rows["hidden1"].split()[-1] == "8,320"  # 64*128 + 128
    assert rows["hidden2"].split()[2] == "tanh" and rows["hidden2"].split()[-1] == "4,128"
    assert "softmax" in rows["output"] and rows["output"].split()[-1] == "330"
    assert f"parameters: {net.n_params:,}" in text and "KiB of float32" in text
    assert "training state" not in text
    print(text)
    assert capsys.readouterr().out.strip() == text


def test_summary_shows_the_kept_training_state(clf):
    net, X, y = clf
    net.fit(X, y, epochs=3, batch_size=20)
    assert "training state: adam, 9 steps, 3 epochs" in net.summary()


def test_history_repr_is_one_short_line(clf, rng):
    net, X, y = clf
    h = net.fit(X, y, epochs=150, validation_data=blobs(rng, n=20))
    text = repr(h)
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith("History(adam, 150 epochs, loss ")
    for part in ("accuracy", "val_loss", "val_accuracy", "stop_reason='epochs'"):
        assert part in text
    assert repr(bpnet.History()) == "History(no optimizer, 0 epochs)"


@pytest.mark.parametrize("validation", [False, True])
def test_to_dict_is_a_table_of_equal_columns(clf, rng, validation):
    pd = pytest.importorskip("pandas")
    net, X, y = clf
    val = blobs(rng, n=20) if validation else None
    h = net.fit(X, y, epochs=4, batch_size=16, validation_data=val)
    table = pd.DataFrame(h.to_dict())
    expected = ["epoch", "loss", "accuracy", "lr", "time", "elapsed"]
    if validation:
        expected[3:3] = ["val_loss", "val_accuracy"]
    assert list(table.columns) == expected and len(table) == 4
    assert list(table["epoch"]) == [1, 2, 3, 4]
    json.dumps(h.to_dict())  # plain values


def test_regression_history_has_no_accuracy(rng):
    X = rng.standard_normal((30, 2))
    net = bpnet.MLP([2, 4, 1], loss="mse", seed=0)
    h = net.fit(X, X[:, 0], epochs=3)
    assert h.accuracy == [] and "accuracy" not in h.to_dict()
    assert "accuracy" not in repr(h)


def test_time_is_per_epoch_and_elapsed_is_cumulative(clf):
    net, X, y = clf
    h = net.fit(X, y, epochs=5)
    assert len(h.time) == len(h.elapsed) == 5 and all(t > 0 for t in h.time)
    np.testing.assert_allclose(np.cumsum(h.time), h.elapsed, rtol=1e-9)
    assert h.samples_per_second == pytest.approx(60 * 5 / h.elapsed[-1])


def _replayed_accuracy(net0, X, y, *, batch, lr, epochs):
    """Plain SGD by hand: each batch's right predictions at the weights its step
    starts from, summed over the epoch (the definition History.accuracy follows)."""
    ref = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype="float64", seed=0)
    ref.set_params(net0)
    out = []
    for _ in range(epochs):
        right = 0
        for lo in range(0, len(X), batch):
            xb, yb = X[lo:lo + batch], y[lo:lo + batch]
            right += int(np.sum(np.argmax(ref.predict(xb), axis=1) == yb))
            _, grads = ref.loss_and_grad(xb, yb)
            ref.set_params([(W - lr * dW, b - lr * db)
                            for (W, b), (dW, db) in zip(ref.params, grads)])
        out.append(right / len(X))
    return out


def test_training_accuracy_comes_from_the_steps_forward_passes(backend, rng):
    X, y = blobs(rng, n=50)
    ref = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype="float64", seed=0)
    expected = _replayed_accuracy(ref.params, X, y, batch=8, lr=0.3, epochs=4)
    net = bpnet.MLP([4, 8, 3], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=0)
    h = net.fit(X, y, epochs=4, batch_size=8, shuffle=False, optimizer="sgd", momentum=0.0,
                lr=0.3)
    assert h.accuracy == expected
    assert len(set(expected)) > 1  # the weights moved between epochs


def test_training_accuracy_counts_past_the_fold(rng, monkeypatch):
    # More batches than the step keeps outputs for: counted in several parts.
    monkeypatch.setattr(importlib.import_module("bpnet.train.step"), "COUNT_EVERY", 3)
    X, y = blobs(rng, n=50)
    ref = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype="float64", seed=0)
    expected = _replayed_accuracy(ref.params, X, y, batch=4, lr=0.3, epochs=2)
    h = ref.fit(X, y, epochs=2, batch_size=4, shuffle=False, optimizer="sgd", momentum=0.0,
                lr=0.3)
    assert h.accuracy == expected


@pytest.mark.parametrize("loss,targets", [("logistic", (-1.0, 1.0)),
                                          ("binary_cross_entropy", (0.0, 1.0))])
def test_full_batch_accuracy_is_evaluates_at_the_starting_weights(rng, loss, targets):
    X = rng.standard_normal((40, 2))
    Y = np.where(X[:, :1] > 0, targets[1], targets[0])
    net = bpnet.MLP([2, 4, 1], loss=loss, dtype="float64", seed=0)
    before = net.evaluate(X, Y)["accuracy"]
    h = net.fit(X, Y, epochs=2, batch_size=None)
    assert h.accuracy[0] == before


def test_lbfgs_records_the_accuracy_of_each_iterate(clf):
    pytest.importorskip("scipy")
    net, X, y = clf
    accuracies = []
    h = net.fit(X, y, optimizer="lbfgs", epochs=6, tol=0.0,
                callback=lambda e, hist: accuracies.append(net.evaluate(X, y)["accuracy"]))
    assert h.accuracy == accuracies and len(h.time) == h.epochs

"""The fit loop, partial_fit, evaluate, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bpnet

from .helpers import assert_close, assert_same_weights, blobs, weights

# --- the loop ------------------------------------------------------------------------------


def test_history_records_every_epoch(clf):
    net, X, y = clf
    h = net.fit(X, y, epochs=30, batch_size=16, lr=0.01)
    assert h.epochs == 30 == len(h.loss) == len(h.time) == len(h.lr)
    assert h.optimizer == "adam" and h.lr == [0.01] * 30 and h.n_samples == 60
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert all(t > 0 for t in h.time)  # per epoch
    np.testing.assert_allclose(np.cumsum(h.time), h.elapsed, rtol=1e-9)  # since the start
    assert h.stop_reason == "epochs" and not h.stopped_early
    assert h.best_epoch == int(np.argmin(h.loss)) + 1
    assert h.samples_per_second == pytest.approx(60 * 30 / h.elapsed[-1])
    assert h.to_dict()["epoch"] == list(range(1, 31))


def test_default_learning_rates(clf):
    net, X, y = clf
    assert net.fit(X, y, epochs=1).lr == [1e-3]
    assert net.fit(X, y, epochs=1, optimizer="sgd").lr == [0.1]


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_full_batch_epoch_loss_is_the_loss_before_the_step(clf, alpha):
    net, X, y = clf
    before = net.compute_loss(X, y, alpha=alpha)
    h = net.fit(X, y, epochs=2, optimizer="sgd", alpha=alpha)
    assert h.loss[0] == pytest.approx(before, rel=1e-12)
    assert h.loss[1] == pytest.approx(net.compute_loss(X, y, alpha=alpha), rel=0.5)


def test_minibatch_epoch_loss_is_the_size_weighted_mean_of_its_batches(clf):
    # n = 60, batches of 25: 25, 25 and a last one of 10 whose stop is clipped to n.
    net, X, y = clf
    w0 = net.params
    h = net.fit(X, y, epochs=1, batch_size=25, shuffle=False, optimizer="sgd", momentum=0.0,
                lr=0.05)
    ref = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype="float64", seed=0)
    ref.set_params(w0)
    total = 0.0
    for lo, hi in ((0, 25), (25, 50), (50, 60)):
        value, grads = ref.loss_and_grad(X[lo:hi], y[lo:hi])
        total += value * (hi - lo)
        ref.set_params([(W - 0.05 * dW, b - 0.05 * db)
                        for (W, b), (dW, db) in zip(ref.params, grads)])
    assert h.loss[0] == pytest.approx(total / 60, rel=1e-12)
    for got, want in zip(weights(net), weights(ref)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_same_seed_repeats_a_run_and_another_seed_does_not(clf):
    net, X, y = clf
    w0 = net.params
    runs = []
    for seed in (5, 5, 6):
        net.set_params(w0)
        runs.append(net.fit(X, y, epochs=3, batch_size=8, seed=seed).loss)
    assert runs[0] == runs[1] != runs[2]


def test_without_a_seed_the_networks_seed_is_used(rng):
    X, y = blobs(rng)
    runs = [bpnet.MLP([4, 8, 3], loss="cross_entropy", seed=3).fit(X, y, epochs=2, batch_size=8)
            .loss for _ in range(2)]
    assert runs[0] == runs[1]


def test_shuffle_false_ignores_the_seed(clf):
    net, X, y = clf
    w0 = net.params
    losses = []
    for seed in (1, 2):
        net.set_params(w0)
        losses.append(net.fit(X, y, epochs=2, batch_size=8, shuffle=False, seed=seed).loss)
    assert losses[0] == losses[1]


def test_batch_larger_than_the_data_is_the_full_batch(clf):
    net, X, y = clf
    w0 = net.params
    a = net.fit(X, y, epochs=2, batch_size=1000).loss
    net.set_params(w0)
    assert net.fit(X, y, epochs=2).loss == a


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_every_backend_trains_like_numpy(backend, optimizer, rng):
    # The permutation is drawn on the host, so every backend sees the same batches.
    X, y = blobs(rng, n=30)
    batch = None if optimizer == "lbfgs" else 7  # uneven: the last batch has 2 samples
    ref = bpnet.MLP([4, 5, 3], loss="cross_entropy", dtype="float64", seed=1)
    net = bpnet.MLP([4, 5, 3], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=1)
    kwargs = dict(optimizer=optimizer, epochs=3, batch_size=batch, seed=0, lr=0.05,
                  validation_data=(X, y))
    h_ref, h = ref.fit(X, y, **kwargs), net.fit(X, y, **kwargs)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    np.testing.assert_allclose(h.val_loss, h_ref.val_loss, rtol=1e-10)
    assert h.val_accuracy == h_ref.val_accuracy
    for (W, b), (W0, b0) in zip(net.params, ref.params):
        assert_close(W, W0, like=net)
        assert_close(b, b0, like=net)


def test_float32_training_follows_float64(rng):
    X, y = blobs(rng)
    runs = {}
    for dtype in ("float32", "float64"):
        net = bpnet.MLP([4, 8, 3], loss="cross_entropy", dtype=dtype, seed=0)
        runs[dtype] = net.fit(X, y, epochs=5, batch_size=16, lr=0.01).loss
    np.testing.assert_allclose(runs["float32"], runs["float64"], rtol=1e-4)


@pytest.mark.parametrize("name", ["torch", pytest.param("jax", marks=pytest.mark.slow), "dask"])
def test_optional_backends_train(name, rng):
    pytest.importorskip({"dask": "dask.array", "jax": "jax"}.get(name, name))
    X, y = blobs(rng, n=20)
    net = bpnet.MLP([4, 6, 3], loss="cross_entropy", backend=name, seed=0)
    h = net.fit(X, y, epochs=3, batch_size=8, validation_data=(X, y), lr=0.01)
    ref = bpnet.MLP([4, 6, 3], loss="cross_entropy", seed=0)
    h_ref = ref.fit(X, y, epochs=3, batch_size=8, validation_data=(X, y), lr=0.01)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-4)
    assert net.partial_fit(X, y) == pytest.approx(ref.partial_fit(X, y), rel=1e-4)
    assert net.evaluate(X, y)["accuracy"] == ref.evaluate(X, y)["accuracy"]


# --- schedules, validation, stopping --------------------------------------------------------


def test_lr_schedule_is_applied_per_epoch(clf):
    net, X, y = clf
    h = net.fit(X, y, epochs=4, optimizer="sgd", lr=0.1, lr_schedule="step", lr_step_size=2,
                lr_gamma=0.5)
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05])
    h = net.fit(X, y, epochs=3, optimizer="sgd", lr=0.1, lr_schedule="invscaling", power_t=1)
    assert h.lr == pytest.approx([0.1, 0.1 / 61, 0.1 / 121])
    h = net.fit(X, y, epochs=2, lr_schedule=lambda e: 0.01 * (e + 1))
    assert h.lr == pytest.approx([0.01, 0.02])


def test_validation_metrics_match_evaluate(clf, rng):
    net, X, y = clf
    Xv, yv = blobs(rng, n=25)
    h = net.fit(X, y, epochs=5, batch_size=16, validation_data=(Xv, yv))
    assert len(h.val_loss) == len(h.val_accuracy) == 5
    final = net.evaluate(Xv, yv)
    assert h.val_loss[-1] == pytest.approx(final["loss"], rel=1e-12)
    assert h.val_accuracy[-1] == final["accuracy"]


def test_regression_has_no_accuracy(rng):
    X = rng.standard_normal((20, 2))
    net = bpnet.MLP([2, 4, 1], loss="mse", seed=0)
    h = net.fit(X, X[:, 0], epochs=2, validation_data=(X, X[:, 0]))
    assert len(h.val_loss) == 2 and h.val_accuracy == []
    assert set(net.evaluate(X, X[:, 0])) == {"loss"}


def test_early_stopping_restores_the_bestweights(clf):
    # Validation labels are the training labels shifted by one class: the better
    # the fit, the worse the validation loss, so it peaks early.
    net, X, y = clf
    yv = (y + 1) % 3
    h = net.fit(X, y, epochs=100, lr=0.05, validation_data=(X, yv), early_stopping=True,
                patience=3)
    assert h.stopped_early and h.stop_reason == "early_stopping"
    assert h.epochs == h.best_epoch + 3
    assert net.evaluate(X, yv)["loss"] == pytest.approx(h.val_loss[h.best_epoch - 1], rel=1e-12)


def test_tol_stops_on_a_stalled_training_loss(clf):
    net, X, y = clf
    h = net.fit(X, y, epochs=100, tol=10.0, patience=4)
    assert h.epochs == 5 and h.stopped_early and h.stop_reason == "tol"
    h = net.fit(X, y, epochs=6, tol=0.0, patience=50)
    assert h.epochs == 6 and not h.stopped_early


def test_callback_sees_each_epoch_and_can_stop(clf):
    net, X, y = clf
    calls = []

    def cb(epoch, history):
        calls.append((epoch, history.epochs))
        return epoch == 3

    h = net.fit(X, y, epochs=10, callback=cb)
    assert calls == [(1, 1), (2, 2), (3, 3)]
    assert h.epochs == 3 and h.stopped_early and h.stop_reason == "callback"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_raises_and_keeps_the_last_finiteweights(rng):
    X = rng.standard_normal((40, 3))
    Y = 1e3 * X[:, :1] ** 3
    net = bpnet.MLP([3, 8, 1], activation="identity", loss="mse", dtype="float64", seed=0)
    starts = [weights(net)]  # weights at the start of each epoch
    with pytest.raises(FloatingPointError, match=r"diverged in epoch \d+") as info:
        net.fit(X, Y, optimizer="sgd", lr=1.0, epochs=50,
                callback=lambda e, h: starts.append(weights(net)))
    history = info.value.history
    assert 1 < history.epochs < 50 and all(math.isfinite(v) for v in history.loss)
    # Full batch: an epoch's loss is the loss of the weights it starts from, so the
    # weights kept are those of the last epoch with a finite loss.
    assert_same_weights(net, starts[history.epochs - 1])
    assert net.compute_loss(X, Y) == pytest.approx(history.loss[-1], rel=1e-12)


def test_keyboard_interrupt_keeps_the_last_step_and_the_history(clf):
    net, X, y = clf
    w0 = net.params

    def interrupt_before_third(epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return 0.01

    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, epochs=10, batch_size=16, seed=4, lr_schedule=interrupt_before_third)
    assert info.value.history.epochs == 2
    interrupted = weights(net)
    net.set_params(w0)
    net.fit(X, y, epochs=2, batch_size=16, seed=4, lr=0.01)
    for got, want in zip(interrupted, weights(net)):
        np.testing.assert_array_equal(got, want)


# --- lbfgs --------------------------------------------------------------------------------


def test_lbfgs_epochs_bound_the_iterations(rng):
    X = rng.uniform(-1, 1, (50, 2))
    Y = X[:, 0] * X[:, 1]
    net = bpnet.MLP([2, 6, 1], activation="tanh", loss="mse", dtype="float64", seed=0)
    before = net.compute_loss(X, Y)
    h = net.fit(X, Y, optimizer="lbfgs", epochs=15, tol=0.0, validation_data=(X, Y))
    assert h.epochs == 15 and h.optimizer == "lbfgs"
    assert h.loss[-1] == pytest.approx(net.compute_loss(X, Y), rel=1e-12)
    assert h.val_loss == pytest.approx(h.loss, rel=1e-12)
    assert h.loss[-1] < 0.5 * before
    assert "ITERATIONS" in h.stop_reason.upper()


def test_lbfgs_interrupt_keeps_the_last_iterate(rng):
    X = rng.uniform(-1, 1, (30, 2))
    net = bpnet.MLP([2, 4, 1], activation="tanh", loss="mse", dtype="float64", seed=0)
    losses = []

    def interrupt(epoch, history):
        losses.append(history.loss[-1])
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, X[:, 0], optimizer="lbfgs", epochs=100, callback=interrupt)
    assert info.value.history.epochs == 4
    assert net.compute_loss(X, X[:, 0]) == pytest.approx(losses[-1], rel=1e-12)


# --- partial_fit ---------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_partial_fit_continues_the_optimizer_state(clf, optimizer):
    net, X, y = clf
    w0 = net.params
    net.fit(X, y, optimizer=optimizer, epochs=3, batch_size=16, shuffle=False, lr=0.01)
    three = weights(net)
    net.set_params(w0)
    net.reset_optimizer()
    losses = [net.partial_fit(X, y, optimizer=optimizer, batch_size=16, shuffle=False, lr=0.01)
              for _ in range(3)]
    for got, want in zip(weights(net), three):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert all(isinstance(v, float) for v in losses) and losses[-1] < losses[0]


def test_partial_fit_continues_a_fit(clf):
    net, X, y = clf
    w0 = net.params
    net.fit(X, y, epochs=2, batch_size=16, shuffle=False)
    net.partial_fit(X, y, batch_size=16, shuffle=False)
    continued = weights(net)
    net.set_params(w0)
    net.fit(X, y, epochs=3, batch_size=16, shuffle=False)
    for got, want in zip(continued, weights(net)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_changing_the_optimizer_or_resetting_starts_afresh(clf):
    net, X, y = clf
    w0 = net.params

    def second_step(**kw):
        net.set_params(w0)
        net.reset_optimizer()
        net.partial_fit(X, y, shuffle=False, lr=0.01)
        net.set_params(w0)
        net.partial_fit(X, y, shuffle=False, lr=0.01, **kw)
        return weights(net)

    continued = second_step()
    fresh = second_step(beta1=0.5)
    net.set_params(w0)
    net.reset_optimizer()
    net.partial_fit(X, y, shuffle=False, lr=0.01, beta1=0.5)
    for got, want in zip(fresh, weights(net)):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(continued, fresh))


def test_partial_fit_refuses_bad_options_and_leaves_the_state(clf):
    net, X, y = clf
    net.partial_fit(X, y)
    state, w = net._optimizer_state, weights(net)
    with pytest.raises(TypeError, match="momentun"):
        net.partial_fit(X, y, momentun=0.5)
    with pytest.raises(ValueError, match="lbfgs"):
        net.partial_fit(X, y, optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        net.partial_fit(X, y, lr=-1)
    with pytest.raises(ValueError, match="features"):
        net.partial_fit(X[:, :2], y)
    assert net._optimizer_state is state
    assert_same_weights(net, w)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_partial_fit_divergence_leaves_the_network_as_it_was(rng):
    X = rng.standard_normal((40, 3))
    net = bpnet.MLP([3, 8, 1], activation="identity", loss="mse", dtype="float64", seed=0)
    w = weights(net)
    with pytest.raises(FloatingPointError, match="non-finite"):
        for _ in range(50):
            w = weights(net)
            net.partial_fit(X, 1e3 * X[:, :1] ** 3, optimizer="sgd", lr=1.0)
    assert_same_weights(net, w)


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_cross_entropy(clf):
    net, X, y = clf
    out = net.evaluate(X, y)
    assert out["loss"] == pytest.approx(net.compute_loss(X, y), rel=1e-12)
    assert out["accuracy"] == np.mean(np.argmax(net.predict(X), axis=1) == y)
    assert net.evaluate(X, y, batch_size=7) == pytest.approx(out, rel=1e-12)


@pytest.mark.parametrize("loss,targets", [("logistic", [-1.0, 1.0]),
                                          ("binary_cross_entropy", [0.0, 1.0])])
def test_evaluate_binary_accuracy(rng, loss, targets):
    X = rng.standard_normal((40, 2))
    Y = np.where(X[:, :1] > 0, targets[1], targets[0])
    net = bpnet.MLP([2, 4, 1], loss=loss, dtype="float64", seed=0)
    out = net.predict(X)[:, 0]
    predicted = np.where(out > (0.5 if loss == "binary_cross_entropy" else 0.0),
                         targets[1], targets[0])
    assert net.evaluate(X, Y)["accuracy"] == np.mean(predicted == Y[:, 0])


# --- progress -------------------------------------------------------------------------------


def test_progress_bar_shows_loss_and_throughput(clf, capsys):
    pytest.importorskip("tqdm")
    net, X, y = clf
    net.fit(X, y, epochs=3, progress=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "samples/s" in err


def test_progress_without_tqdm_prints_lines(clf, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    net, X, y = clf
    net.fit(X, y, epochs=20, progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("epoch 20/20") and "samples/s" in lines[-1]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"optimizer": "rmsprop"}, ValueError, "rmsprop.*adam"),
        ({"optimizer": 3}, TypeError, "optimizer"),
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"momentum": -0.1}, ValueError, "momentum"),
        ({"beta1": 1.0}, ValueError, "beta1"),
        ({"beta2": "high"}, TypeError, "beta2"),
        ({"epsilon": 0}, ValueError, "epsilon"),
        ({"nesterov": "yes"}, TypeError, "nesterov"),
        ({"optimizer": "sgd", "nesterov": True, "momentum": 0.0}, ValueError, "momentum"),
        ({"shuffle": 1}, TypeError, "shuffle"),
        ({"seed": -2}, ValueError, "seed"),
        ({"alpha": -1}, ValueError, "alpha"),
        ({"lr_schedule": "exponential"}, ValueError, "cosine"),
        ({"lr_step_size": 0}, ValueError, "lr_step_size"),
        ({"lr_gamma": 0}, ValueError, "lr_gamma"),
        ({"power_t": -1}, ValueError, "power_t"),
        ({"patience": 0}, ValueError, "patience"),
        ({"tol": -1e-3}, ValueError, "tol"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"callback": 3}, TypeError, "callback"),
        ({"early_stopping": True}, ValueError, "validation_data"),
        ({"validation_data": np.ones((3, 4))}, TypeError, "pair"),
        ({"validation_data": (np.ones((3, 2)), [0, 1, 2])}, ValueError, "validation X"),
        ({"validation_data": (np.ones((3, 4)), [0, 1, 7])}, ValueError, "validation Y"),
        ({"optimizer": "lbfgs", "batch_size": 8}, ValueError, "full batch"),
        ({"optimizer": "lbfgs", "early_stopping": True, "validation_data": (np.ones((2, 4)),
                                                                              [0, 1])},
         ValueError, "early_stopping"),
    ],
)
def test_bad_fit_options_leave_the_model_alone(clf, kwargs, exc, match):
    net, X, y = clf
    net.partial_fit(X, y)
    state, w = net._optimizer_state, weights(net)
    with pytest.raises(exc, match=match):
        net.fit(X, y, **kwargs)
    assert_same_weights(net, w)
    assert net._optimizer_state is state


# --- the flat-vector fast path ------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(optimizer="adam"),
                                    dict(optimizer="sgd", momentum=0.9),
                                    dict(optimizer="sgd", momentum=0.9, nesterov=True),
                                    dict(optimizer="sgd", momentum=0.0)])
def test_flat_updates_match_the_per_tensor_updates(clf, monkeypatch, kwargs):
    net, X, y = clf
    w0 = net.params
    runs = {}
    for fast in (True, False):
        monkeypatch.setenv("BPNET_PORTABLE", "0" if fast else "1")
        net.set_params(w0)
        net.reset_optimizer()
        h = net.fit(X, y, epochs=4, batch_size=16, lr=0.01, **kwargs)
        loss = net.partial_fit(X, y, batch_size=16, lr=0.01, **kwargs)
        runs[fast] = ([*h.loss, loss], weights(net))
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-12)
    for a, b in zip(runs[True][1], runs[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_which_backends_take_the_flat_path():
    from bpnet.backend.fast import flat_updates

    assert flat_updates(np)
    for name, flat in (("array_api_strict", True), ("torch", True), ("jax", False),
                       ("dask", False)):  # compiled, and lazy, backends keep per-tensor updates
        pytest.importorskip(name)
        assert flat_updates(bpnet.MLP([2, 1], backend=name).xp) is flat


def test_training_never_writes_into_arrays_handed_out(clf):
    net, X, y = clf
    held = net.params
    copies = [bpnet.to_numpy(t).copy() for pair in held for t in pair]
    seen = []
    net.fit(X, y, epochs=3, batch_size=16, callback=lambda e, h: seen.append(net.params))
    net.partial_fit(X, y, batch_size=16)
    for t, c in zip([t for pair in held for t in pair], copies):
        np.testing.assert_array_equal(t, c)
    first, last = seen[0][0][0], seen[-1][0][0]
    assert not np.array_equal(first, last)  # epoch 1's weights were not overwritten


def test_tol_rule_is_scikit_learns_with_patience_one_more():
    # scikit-learn: an epoch is stale when loss > best - tol; it stops when more
    # than n_iter_no_change epochs in a row are stale.  Replay its rule beside ours.
    from bpnet.train.loop import Monitor

    losses = [1.0, 0.9, 0.95, 0.9, 0.85, 0.849, 0.86, 0.8499, 0.7, 0.71, 0.72, 0.73]
    for tol, n_iter_no_change in ((0.0, 1), (0.01, 2), (0.001, 1)):
        best, count, sk_stop = math.inf, 0, None
        for epoch, loss in enumerate(losses, start=1):
            count = count + 1 if loss > best - tol else 0
            best = min(best, loss)
            if count > n_iter_no_change:
                sk_stop = epoch
                break
        monitor = Monitor(tol, n_iter_no_change + 1, active=True)
        ours = next((e for e, loss in enumerate(losses, start=1)
                     if monitor.update(e, loss, lambda: None)), None)
        assert ours == sk_stop is not None, (tol, n_iter_no_change)


def test_partial_fit_and_evaluate_on_every_backend(backend, rng):
    """Call after call, partial_fit (with its optimizer state kept on the net)
    and evaluate give on every backend and device what they give on NumPy."""
    X, y = blobs(rng, n=30)
    ref = bpnet.MLP([4, 5, 3], loss="cross_entropy", dtype="float64", seed=2)
    net = bpnet.MLP([4, 5, 3], loss="cross_entropy", backend=backend.name,
                    device=backend.device, dtype="float64", seed=2)
    for _ in range(3):  # Adam's moments and step count carry over between calls
        got = net.partial_fit(X, y, batch_size=7, seed=0, lr=0.05)
        want = ref.partial_fit(X, y, batch_size=7, seed=0, lr=0.05)
        assert got == pytest.approx(want, rel=1e-10)
    for (W, b), (W0, b0) in zip(net.params, ref.params):
        assert_close(W, W0, like=net)
        assert_close(b, b0, like=net)
    got, want = net.evaluate(X, y, batch_size=8), ref.evaluate(X, y)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-10)
    assert got["accuracy"] == want["accuracy"]

"""Robustness at every public entry point: values that do not fit the network's
dtype, inputs that are fine but looked odd, arrays the user still owns,
configurations that cannot learn, and state kept on every error path.

A case passes when the user gets a correct result, or bpnet's own clear error
(what was wrong, what was expected) raised before anything changed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpnet
from bpnet.backend import from_host, is_writeable

from .helpers import assert_same_weights, weights

BIG = 1e39  # finite in float64, beyond float32's 3.4e38


def _net(backend, loss="mse", k=1, dtype="float32", sizes=(3, 5)):
    return bpnet.MLP([*sizes, k], activation="tanh", loss=loss, backend=backend.name,
                     device=backend.device, dtype=dtype, seed=0)


def _on(net, host):
    """``host`` as an array of the network's backend (float64: the user's data)."""
    return from_host(net.xp, np.asarray(host, dtype=np.float64), net.device)


# --- values that do not fit the network's dtype ------------------------------------------------


ENTRY_POINTS = {
    "predict": lambda net, X, y: net.predict(X),
    "evaluate": lambda net, X, y: net.evaluate(X, y),
    "compute_loss": lambda net, X, y: net.compute_loss(X, y),
    "loss_and_grad": lambda net, X, y: net.loss_and_grad(X, y),
    "fit": lambda net, X, y: net.fit(X, y, epochs=2),
    "partial_fit": lambda net, X, y: net.partial_fit(X, y),
    "validation": lambda net, X, y: net.fit(np.ones((4, 3)), np.ones(4), epochs=1,
                                            validation_data=(X, y)),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_inputs_too_large_for_float32_are_named_and_change_nothing(backend, entry):
    net = _net(backend)
    before = weights(net)
    X = np.ones((4, 3))
    X[2, 1] = -BIG
    for as_backend in (False, True):
        with pytest.raises(ValueError, match=r"X holds values too large for float32 "
                                             r"\(magnitudes up to 1e\+39"):
            ENTRY_POINTS[entry](net, _on(net, X) if as_backend else X, np.ones(4))
    assert_same_weights(net, before)


@pytest.mark.parametrize("entry", sorted(set(ENTRY_POINTS) - {"predict"}))
def test_targets_too_large_for_float32_are_named(backend, entry):
    net = _net(backend)
    before = weights(net)
    with pytest.raises(ValueError, match="Y holds values too large for float32"):
        ENTRY_POINTS[entry](net, np.ones((4, 3)), np.array([0.0, BIG, 1.0, 2.0]))
    assert_same_weights(net, before)


def test_the_same_values_are_fine_in_float64(backend):
    net = _net(backend, dtype="float64")
    X = np.full((2, 3), 1e-3)
    X[0, 0] = BIG
    out = bpnet.to_numpy(net.predict(X))
    assert np.all(np.isfinite(out))  # tanh of a huge finite pre-activation is +-1


def test_nan_and_inf_keep_their_own_message(backend):
    net = _net(backend)
    for bad in (np.nan, np.inf):
        X = np.ones((2, 3))
        X[1, 1] = bad
        with pytest.raises(ValueError, match="X contains NaN or infinite values"):
            net.predict(_on(net, X))


@pytest.mark.parametrize("value,match", [
    (BIG, "W2 holds values too large for float32"),
    (np.nan, "W2 contains NaN or infinite values"),
    (-np.inf, "W2 contains NaN or infinite values"),
])
def test_set_params_refuses_what_float32_cannot_hold_and_keeps_the_old(backend, value, match):
    net = _net(backend)
    before = weights(net)
    W2 = np.ones((5, 1))
    W2[3, 0] = value
    for as_backend in (False, True):
        params = [(np.ones((3, 5)), np.zeros(5)), (_on(net, W2) if as_backend else W2,
                                                   np.zeros(1))]
        with pytest.raises(ValueError, match=match):
            net.set_params(params)
        assert_same_weights(net, before)


def test_partial_fit_names_data_that_overflows_the_loss(rng):
    # 1e30 fits float32, but an mse loss squares it: that is the data, not the lr.
    net, ref = (bpnet.MLP([3, 5, 1], activation="identity", loss="mse", seed=0) for _ in "ab")
    X, y = rng.standard_normal((16, 3)), rng.standard_normal(16)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=4)
    huge = X * 1e30
    with np.errstate(all="ignore"), pytest.raises(  # NumPy's overflow warnings: expected
            FloatingPointError, match=r"the loss overflows float32 on this data .*X up to "
                                      r".*e\+30 in magnitude.*not the learning rate too high"):
        net.partial_fit(huge, y, batch_size=4)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=4)  # optimizer state and shuffling as they were
    assert_same_weights(net, weights(ref))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_fit_names_data_that_overflows_the_loss(rng, optimizer):
    net = bpnet.MLP([3, 5, 1], activation="identity", loss="mse", seed=0)
    X, y = rng.standard_normal((16, 3)), rng.standard_normal(16)
    before = weights(net)
    batch = {} if optimizer == "lbfgs" else {"batch_size": 4}
    with np.errstate(all="ignore"), pytest.raises(
            FloatingPointError, match=r"fit failed: the loss overflows float32 on this data .*"
                                      r"\(X up to .*e\+30 in magnitude.*not the learning rate"):
        net.fit(X * 1e30, y, optimizer=optimizer, epochs=3, **batch)
    assert_same_weights(net, before)
    with np.errstate(all="ignore"), pytest.raises(
            FloatingPointError, match=r"overflows float32 on this data .*\(validation X up to"):
        net.fit(X, y, optimizer=optimizer, epochs=3, validation_data=(X * 1e30, y), **batch)
    assert_same_weights(net, before)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, also in Dask's workers
def test_evaluate_and_compute_loss_refuse_a_loss_that_overflowed(rng, backend):
    net = bpnet.MLP([3, 5, 1], activation="identity", loss="mse", backend=backend.name,
                    device=backend.device, seed=0)
    X, y = rng.standard_normal((16, 3)), rng.standard_normal(16)
    with np.errstate(all="ignore"):
        for method in (net.evaluate, net.compute_loss):
            with pytest.raises(FloatingPointError, match=rf"{method.__name__} failed: the loss "
                               r"overflows float32 on this data .*X up to .*e\+30"):
                method(X * 1e30, y)
        # finite data, weights too large for it: the weights are named, not the data
        sane = net.params
        net.set_params([(W * 1e17, b) for W, b in sane])
        for method in (net.evaluate, net.compute_loss):
            with pytest.raises(FloatingPointError, match=r"overflows float32 at this network's "
                               r"weights \(up to .*e\+1\d in magnitude\).*too high a learning"):
                method(X * 1e4, y)
    net.set_params(sane)
    assert np.isfinite(net.evaluate(X, y)["loss"])


def test_a_high_learning_rate_is_still_blamed_on_the_learning_rate(rng):
    X = rng.standard_normal((40, 3))
    net = bpnet.MLP([3, 8, 1], activation="identity", loss="mse", dtype="float64", seed=0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="Try a smaller lr"):
        for _ in range(50):
            net.partial_fit(X, 1e3 * X[:, :1] ** 3, optimizer="sgd", lr=1.0)


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([3.4e38, 3.5e38, -1e39, 1e308, 5e-324, -0.0]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=FLOATS, dtype=st.sampled_from(["float32", "float64"]))
def test_any_value_either_fits_exactly_or_is_refused(value, dtype):
    """set_params, predict and partial_fit: the value as the dtype holds it, or a
    ValueError before anything changed."""
    net = bpnet.MLP([2, 3, 1], activation="tanh", loss="mse", dtype=dtype, seed=0)
    with np.errstate(over="ignore"):  # what the cast makes of it: the definition of "fits"
        fits = bool(np.isfinite(value) and np.isfinite(np.asarray(value).astype(dtype)))
    before = weights(net)
    W1 = np.zeros((2, 3))
    W1[1, 2] = value
    X = np.array([[value, 0.5]])
    if not fits:
        with pytest.raises(ValueError, match=r"W1 .*(too large|NaN)"):
            net.set_params([(W1, np.zeros(3)), (np.ones((3, 1)), np.zeros(1))])
        with pytest.raises(ValueError, match=r"X .*(too large|NaN)"):
            net.predict(X)
        with pytest.raises(ValueError, match=r"Y .*(too large|NaN)"):
            net.partial_fit(np.ones((1, 2)), [value])
        assert_same_weights(net, before)
        return
    net.set_params([(W1, np.zeros(3)), (np.ones((3, 1)), np.zeros(1))])
    assert bpnet.to_numpy(net.params[0][0])[1, 2] == np.asarray(value).astype(dtype)
    cast = X.astype(dtype)
    with np.errstate(all="ignore"):  # a huge input may overflow the product: both alike
        np.testing.assert_array_equal(net.predict(X), net.predict(cast))


# --- inputs that are fine, and inputs that say precisely what is wrong --------------------------


def test_pandas_nullable_dtypes_without_missing_values_are_numbers():
    pd = pytest.importorskip("pandas")
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy", dtype="float64", seed=0)
    frame = pd.DataFrame({"a": pd.array([1.5, 2.0, -1.0], dtype="Float64"),
                          "b": pd.array([1, 2, 3], dtype="Int64"),
                          "c": pd.array([True, False, True], dtype="boolean")})
    plain = np.array([[1.5, 1, 1], [2.0, 2, 0], [-1.0, 3, 1]])
    np.testing.assert_array_equal(net.predict(frame), net.predict(plain))
    labels = pd.Series([0, 1, 1], dtype="Int64")
    assert net.evaluate(frame, labels) == net.evaluate(plain, [0, 1, 1])
    net.fit(frame, labels, epochs=2)
    regressor = bpnet.MLP([3, 1], loss="mse", dtype="float64")
    target = pd.DataFrame({"y": pd.array([0.5, 1.0, 2.0], dtype="Float64")})
    assert regressor.compute_loss(frame, target) == regressor.compute_loss(plain,
                                                                            [0.5, 1.0, 2.0])


def test_pandas_missing_values_and_strings_are_refused_clearly():
    pd = pytest.importorskip("pandas")
    net = bpnet.MLP([2, 1], dtype="float64")
    missing = pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64"),
                            "b": pd.array([1, 2], dtype="Int64")})
    with pytest.raises(ValueError, match="X contains NaN"):
        net.predict(missing)
    with pytest.raises(TypeError, match="X must hold real numbers, got dtype object"):
        net.predict(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}))


@pytest.mark.parametrize("call", ["predict", "fit", "set_params"])
def test_ragged_nested_lists_say_which_row(call):
    net = bpnet.MLP([2, 1], loss="mse", dtype="float64")
    ragged = [[1.0, 2.0], [3.0, 4.0], [5.0]]
    with pytest.raises(ValueError, match=r"(X|Y|W1) is a ragged nested sequence: row 0 holds "
                                         r"\d values? but row \d holds \d values?; every row"):
        if call == "predict":
            net.predict(ragged)
        elif call == "fit":
            net.fit([[1.0, 2.0]] * 3, [[1.0], [2.0, 3.0], [4.0]], epochs=1)
        else:
            net.set_params([(ragged, [0.0])])


@pytest.mark.parametrize("n_features,shape,hint", [
    (5, (5,), r"X.reshape\(1, -1\) for a single sample of 5 features"),
    (1, (7,), r"X.reshape\(-1, 1\) for samples of a single feature"),
])
def test_a_1d_input_gets_the_reshape_it_needs(n_features, shape, hint):
    net = bpnet.MLP([n_features, 1], dtype="float64")
    with pytest.raises(ValueError, match=hint):
        net.predict(np.ones(shape))


def test_a_1d_input_that_fits_neither_reading_gets_no_wrong_hint():
    net = bpnet.MLP([5, 1], dtype="float64")
    with pytest.raises(ValueError, match=r"got shape \(7,\)$"):
        net.predict(np.ones(7))


def test_label_range_message_reads_well():
    net = bpnet.MLP([2, 3], loss="cross_entropy", dtype="float64")
    with pytest.raises(ValueError, match=r"has 3 units, so labels must be integers from 0 to 2$"):
        net.compute_loss(np.ones((2, 2)), [0, 3])


# --- arrays the user still owns -------------------------------------------------------------


def test_set_params_copies_numpy_arrays():
    net = bpnet.MLP([2, 3, 1], dtype="float64")
    W1, b1 = np.ones((2, 3)), np.zeros(3)
    W2, b2 = np.ones((3, 1)), np.zeros(1)
    net.set_params([(W1, b1), (W2, b2)])
    for theirs in (W1, b1, W2, b2):
        theirs += 7.0
    assert all(np.all(np.asarray(t) <= 1.0) for pair in net.params for t in pair)
    assert not any(np.shares_memory(t, mine) for t in (W1, b1, W2, b2)
                   for pair in net.params for mine in pair)


def test_set_params_copies_the_backends_own_arrays(backend):
    net = _net(backend, dtype="float64")
    source = [(_on(net, np.ones((3, 5))), _on(net, np.zeros(5))),
              (_on(net, np.ones((5, 1))), _on(net, np.zeros(1)))]
    net.set_params(source)
    W = source[0][0]
    if not is_writeable(W) or backend.name == "dask":
        pytest.skip("immutable or lazy arrays cannot be changed behind the network's back")
    W[0, 0] = 99.0
    assert bpnet.to_numpy(net.params[0][0])[0, 0] == 1.0


def test_set_params_detaches_and_copies_tensors_that_require_grad():
    torch = pytest.importorskip("torch")
    net = bpnet.MLP([3, 4, 1], activation="tanh", loss="mse", backend="torch", dtype="float32")
    mine = [(torch.ones((3, 4), requires_grad=True), torch.zeros(4, requires_grad=True)),
            (torch.ones((4, 1), requires_grad=True), torch.zeros(1, requires_grad=True))]
    net.set_params(mine)
    for pair, theirs in zip(net.params, mine):
        for t, u in zip(pair, theirs):
            assert not t.requires_grad and t.grad_fn is None
            assert t.data_ptr() != u.data_ptr()
            assert u.requires_grad  # the caller's tensors are left as they were
    X, y = torch.randn(16, 3), torch.randn(16)
    net.fit(X, y, epochs=3)
    assert all(not t.requires_grad and t.grad_fn is None for pair in net.params for t in pair)
    with torch.no_grad():
        mine[0][0].add_(5.0)
    assert float(net.params[0][0].max()) < 5.0


def test_a_numpy_net_takes_tensors_that_require_grad():
    torch = pytest.importorskip("torch")
    net = bpnet.MLP([2, 1], dtype="float32")
    W = torch.ones((2, 1), requires_grad=True)
    net.set_params([(W, torch.zeros(1, requires_grad=True))])
    with torch.no_grad():
        W.add_(1.0)
    np.testing.assert_array_equal(net.params[0][0], np.ones((2, 1), np.float32))


# --- configurations that cannot learn -------------------------------------------------------


@pytest.mark.parametrize("sizes", [[3, 1], [3, 8, 1]])
def test_cross_entropy_on_one_output_unit_is_refused_with_the_alternatives(sizes):
    with pytest.raises(ValueError, match=r"needs at least 2 output units.*always be 0.*"
                                         r"'binary_cross_entropy' \(targets 0/1\).*"
                                         r"'logistic' \(targets -1/\+1\)"):
        bpnet.MLP(sizes, loss="cross_entropy")
    bpnet.MLP(sizes, loss="binary_cross_entropy")  # the alternatives work
    bpnet.MLP(sizes, loss="logistic")


# --- state kept on every error path -------------------------------------------------------------


def _pair(rng):
    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    return X, y, [bpnet.MLP([3, 8, 1], activation="identity", loss="mse", dtype="float64",
                            seed=1) for _ in range(2)]


def test_a_diverging_partial_fit_leaves_the_generator_as_it_was(rng):
    X, y, (net, ref) = _pair(rng)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="smaller lr"):
        net.partial_fit(X, y, batch_size=8, lr=1e200)  # Adam's steps are about lr long
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)  # same shuffling, same optimizer state
    assert_same_weights(net, weights(ref))


def test_an_error_mid_epoch_keeps_nothing_and_an_interrupt_keeps_the_last_step(rng, monkeypatch):
    from bpnet.train import loop

    X, y, (net, ref) = _pair(rng)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)
    real = loop.one_epoch

    def fails_after_a_step(error):
        def run(step, run, data, n, batch_size, lr):
            run.rng.permutation(4)  # the generator moves, as a real epoch's would
            batch, _ = next(step.batches(data, None, [(0, 8)]))
            run.params, run.opt_state, _ = step(run.params, run.opt_state, batch, lr)
            raise error
        return run

    monkeypatch.setattr("bpnet.train.loop.one_epoch", fails_after_a_step(RuntimeError("lost")))
    with pytest.raises(RuntimeError, match="lost"):
        net.partial_fit(X, y, batch_size=8)
    monkeypatch.setattr("bpnet.train.loop.one_epoch", real)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)
    assert_same_weights(net, weights(ref))  # as if the failed call never happened

    monkeypatch.setattr("bpnet.train.loop.one_epoch", fails_after_a_step(KeyboardInterrupt()))
    before = weights(net)
    with pytest.raises(KeyboardInterrupt):
        net.partial_fit(X, y, batch_size=8)
    changed = [not np.array_equal(a, b) for a, b in zip(weights(net), before)]
    assert any(changed)  # the completed step was kept


def test_refused_calls_change_nothing(rng):
    X, y, (net, ref) = _pair(rng)
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)
    bad_calls = [
        lambda: net.partial_fit(X, y, lr=-1.0),
        lambda: net.partial_fit(X[:, :2], y),
        lambda: net.partial_fit(X, np.full(64, np.inf), optimizer="sgd"),
        lambda: net.set_params([(np.ones((3, 8)), np.ones(8)), (np.ones((8, 1)), [np.nan])]),
        lambda: net.fit(X, y, epochs=0),
    ]
    for call in bad_calls:
        with pytest.raises((ValueError, TypeError)):
            call()
    for n in (net, ref):
        n.partial_fit(X, y, batch_size=8)
    assert_same_weights(net, weights(ref))

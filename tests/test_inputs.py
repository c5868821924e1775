"""Bad input gets a clear error from bpnet, raised before any state changes."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet


@pytest.fixture
def net():
    return bpnet.MLP([3, 4, 2], loss="cross_entropy", dtype="float64", seed=0)


@pytest.mark.parametrize(
    "sizes,exc,match",
    [
        ([], ValueError, "at least two"),
        ([5], ValueError, "at least two"),
        ([3, 0, 2], ValueError, "positive"),
        ([3, -4, 2], ValueError, "positive"),
        ([3, 2.5, 2], TypeError, "int"),
        ("3,4", TypeError, "sequence"),
        (None, TypeError, "sequence"),
    ],
)
def test_bad_layer_sizes(sizes, exc, match):
    with pytest.raises(exc, match=match):
        bpnet.MLP(sizes)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"activation": "relux"}, "unknown activation 'relux'.*relu"),
        ({"loss": "hinge"}, "unknown loss 'hinge'.*cross_entropy"),
        ({"backend": "tensorflow"}, "unknown backend 'tensorflow'.*numpy"),
        ({"dtype": "int32"}, "float32, float64"),
        ({"dtype": "float16"}, "float32, float64"),
        ({"loss": "cross_entropy", "output_activation": "tanh"}, "cannot be used with loss"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bpnet.MLP([3, 2], **kwargs)


@pytest.mark.parametrize(
    "X,exc,match",
    [
        (np.ones(3), ValueError, "2-D"),
        (np.ones((4, 5)), ValueError, "5 features.*expects 3"),
        (np.ones((0, 3)), ValueError, "empty"),
        (np.array([["a", "b", "c"]]), TypeError, "real numbers"),
        (np.array([[1.0, np.nan, 0.0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf, 0.0]]), ValueError, "infinite"),
        ([[1, 2], [3]], ValueError, "ragged nested sequence: row 0 holds 2 values but row 1 "
         "holds 1 value"),
        ([[1, 2], 3], ValueError, "row 1 holds a single value"),
        ([{"a": 1}], TypeError, "real numbers"),
    ],
)
def test_bad_X(net, X, exc, match):
    with pytest.raises(exc, match=match):
        net.predict(X)


@pytest.mark.parametrize(
    "loss,Y,match",
    [
        ("cross_entropy", [0, 1, 2], "outside \\[0, 2\\)"),
        ("cross_entropy", [0, -1, 1], "outside"),
        ("cross_entropy", [0.5, 1, 0], "integer"),
        ("cross_entropy", [0, 1], "one row per sample"),
        ("cross_entropy", np.ones((3, 2)), "one-hot"),
        ("logistic", [1, 0, -1], "-1, \\+1"),
        ("binary_cross_entropy", [0, 1, 2], "\\[0, 1\\]"),
        ("mse", np.ones((3, 3)), "3 columns.*2 outputs"),
        ("mse", [[1.0, 0], [np.nan, 0], [2.0, 0]], "NaN"),
    ],
)
def test_bad_targets(loss, Y, match):
    k = 1 if loss in ("logistic", "binary_cross_entropy") else 2
    net = bpnet.MLP([3, k if loss != "cross_entropy" else 2], loss=loss, dtype="float64")
    with pytest.raises(ValueError, match=match):
        net.loss_and_grad(np.ones((3, 3)), Y)


def test_set_params_wrong_structure_keeps_old_params(net):
    before = [(W.copy(), b.copy()) for W, b in net.params]
    bad = [
        [(np.ones((3, 4)), np.ones(4))],
        [(np.ones((3, 4)), np.ones(4)), (np.ones((4, 3)), np.ones(2))],
        [(np.ones((3, 4)), np.ones(4)), (np.ones((4, 2)), np.ones(3))],
        [(np.ones((3, 4)), np.ones(4)), (np.full((4, 2), np.nan), np.ones(2))],
        [(np.ones((3, 4)), np.ones(4)), (np.array([["x"] * 2] * 4), np.ones(2))],
        "weights",
    ]
    for params in bad:
        with pytest.raises((ValueError, TypeError)):
            net.set_params(params)
        for (W, b), (W0, b0) in zip(net.params, before):
            np.testing.assert_array_equal(W, W0)
            np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": 0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
    ],
)
def test_bad_fit_settings_leave_model_alone(net, kwargs, match):
    before = [W.copy() for W, _ in net.params]
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(np.ones((4, 3)), [0, 1, 0, 1], **kwargs)
    for (W, _), W0 in zip(net.params, before):
        np.testing.assert_array_equal(W, W0)


def test_arrays_from_another_backend_are_refused(net):
    strict = pytest.importorskip("array_api_strict")
    X = strict.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match="array_api_strict array but this network runs on numpy"):
        net.predict(X)


def test_arrays_on_two_devices_are_refused():
    strict = pytest.importorskip("array_api_strict")
    net = bpnet.MLP([3, 2], loss="cross_entropy", backend="array_api_strict")
    X = strict.asarray(np.ones((2, 3)), device=strict.Device("device1"))
    y = strict.asarray(np.array([0, 1]))
    with pytest.raises(ValueError, match="device"):
        net.loss_and_grad(X, y)


def test_bad_device_is_clear():
    with pytest.raises(ValueError, match="not available on backend 'numpy'"):
        bpnet.MLP([2, 1], device="cuda:7")

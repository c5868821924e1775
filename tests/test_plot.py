"""``bpnet.plot``: figures of a run, of a model on 2-D data and of the step
sweep, built without pyplot (no display); and ``bpnet train --plot``, which
uses them and writes the format its extension names."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib

matplotlib.use("Agg")  # nothing here needs a display; bpnet.plot never asks for one

from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import bpnet
import bpnet.plot as bplot
from bpnet import data
from bpnet.cli import main
from bpnet.gradcheck import eps_sweep

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


def _trained(validation=True, epochs=5):
    X, y = data.xor()
    net = bpnet.MLP([2, 6, 2], activation="tanh", loss="cross_entropy", dtype="float64",
                    seed=0)
    labels = y.astype(int)
    history = net.fit(X, labels, epochs=epochs, lr=0.05,
                      validation_data=(X, labels) if validation else None)
    return net, X, labels, history


def test_learning_curves_with_validation_has_loss_and_accuracy_panels():
    _, _, _, history = _trained()
    fig = bplot.learning_curves(history, title="xor")
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert acc_ax.get_ylabel() == "accuracy (%)"
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "validation"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), history.loss)
    assert [line.get_label() for line in acc_ax.get_lines()] == ["train", "validation"]
    np.testing.assert_allclose(acc_ax.get_lines()[0].get_ydata(),
                               100 * np.asarray(history.accuracy))
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_ydata(),
                               100 * np.asarray(history.val_accuracy))
    assert loss_ax.get_yscale() == "log" and fig.get_suptitle() == "xor"


def test_learning_curves_without_validation_and_into_given_axes():
    _, _, _, history = _trained(validation=False)
    fig = bplot.learning_curves(history)
    assert [[line.get_label() for line in ax.get_lines()] for ax in fig.axes] == [["train"]] * 2
    own = Figure()
    axes = [own.add_subplot(1, 2, 1), own.add_subplot(1, 2, 2)]
    assert bplot.learning_curves(history, axes=axes) is own
    assert len(axes[0].get_lines()) == 1 and len(axes[1].get_lines()) == 1
    X, y = data.times_table()
    regression = bpnet.MLP([X.shape[1], 4, 1], loss="mse", seed=0).fit(X, y, epochs=2)
    (ax,) = bplot.learning_curves(regression).axes  # no accuracy, no second panel
    assert [line.get_label() for line in ax.get_lines()] == ["train"]
    empty = bpnet.History()
    with pytest.raises(ValueError, match="no epochs"):
        bplot.learning_curves(empty)


def test_decision_regions_of_a_classifier(backend):
    X, y = data.xor()
    net = bpnet.MLP([2, 6, 2], activation="tanh", loss="cross_entropy",
                    backend=backend.name, device=backend.device, seed=0)
    fig = bplot.decision_regions(net, X, y.astype(int))
    (ax,) = fig.axes
    scatter = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatter) == 1 and scatter[0].get_offsets().shape == (4, 2)
    assert len(ax.collections) > 1  # the filled regions and their boundary
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"
    assert "2-6-2 tanh, cross_entropy" in ax.get_title()


@pytest.mark.parametrize("loss", ["logistic", "binary_cross_entropy", "mse"])
def test_decision_regions_of_a_one_output_network(loss):
    X, y = data.moons(60, seed=0)
    if loss == "binary_cross_entropy":
        y = (y > 0).astype(float)
    net = bpnet.MLP([2, 8, 1], activation="relu", loss=loss, dtype="float64", seed=1)
    net.fit(X, y, epochs=20, lr=0.05)
    fig = bplot.decision_regions(net, X, y, title="moons", resolution=50)
    ax, colorbar = fig.axes
    assert ax.get_title() == "moons" and colorbar.get_ylabel() in ("P(class 1)", "network output")
    assert any(isinstance(c, PathCollection) for c in ax.collections)


def test_decision_regions_refuses_what_it_cannot_draw():
    net = bpnet.MLP([3, 4, 2], loss="cross_entropy")
    with pytest.raises(ValueError, match="2 inputs; this one has 3"):
        bplot.decision_regions(net, np.zeros((4, 3)))
    net2 = bpnet.MLP([2, 4, 2], loss="cross_entropy")
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        bplot.decision_regions(net2, np.zeros(4))
    with pytest.raises(ValueError, match="resolution"):
        bplot.decision_regions(net2, np.zeros((4, 2)), resolution=1)


def test_eps_sweep_draws_one_curve_per_method_and_dtype():
    rng = np.random.default_rng(0)
    net = bpnet.MLP([3, 5, 2], activation="tanh", loss="cross_entropy", dtype="float64")
    X, Y = rng.standard_normal((12, 3)), rng.integers(0, 2, 12)
    sweep = eps_sweep(net, X, Y, eps=[1e-2, 1e-5, 1e-9])
    fig = bplot.eps_sweep(sweep)
    (ax,) = fig.axes
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
    assert len(curves) == 6
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step eps" and ax.get_ylabel() == "relative error against backprop"
    labels = {line.get_label() for line in curves}
    assert "complex step, O(eps²), no cancellation, float32" in labels
    vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert len(vertical) == 4  # the theory's steps: forward and central, two dtypes
    # a network and its data are swept on the way
    direct = bplot.eps_sweep(net, X, Y, methods=["central"], dtypes=["float64"], eps=[1e-4])
    labels = [line.get_label() for line in direct.axes[0].get_lines()]
    assert len([label for label in labels if label.startswith("central")]) == 1
    with pytest.raises(TypeError):
        bplot.eps_sweep(net)
    with pytest.raises(TypeError):
        bplot.eps_sweep(sweep, methods=["central"])


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_figures_save_in_the_format_named(fmt, tmp_path):
    _, _, _, history = _trained()
    path = tmp_path / f"curves.{fmt}"
    bplot.learning_curves(history).savefig(path)
    assert path.read_bytes().lstrip()[:len(MAGIC[fmt])] == MAGIC[fmt]


def test_plot_module_uses_no_pyplot_and_needs_matplotlib():
    code = "import sys, bpnet.plot; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
    code = "import sys; sys.modules['matplotlib'] = None; import bpnet.plot"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install 'bpnet[plot]'" in proc.stderr


# --- bpnet train --plot -----------------------------------------------------------------------
def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_train_plot_writes_the_format_its_extension_names(fmt, tmp_path, capsys):
    path = tmp_path / f"run.{fmt}"
    code, out, err = run(["train", "--dataset", "xor", "--hidden", "4", "--epochs", "3",
                          "--no-progress", "--plot", str(path)], capsys)
    assert code == 0, err
    assert path.read_bytes().lstrip()[:len(MAGIC[fmt])] == MAGIC[fmt]
    assert f"plot      {path}" in out
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


@pytest.mark.parametrize("dataset,regions", [("moons", True), ("spirals", True),
                                             ("xor", True), ("times-table", False)])
def test_train_plot_draws_decision_regions_of_2d_data(dataset, regions, tmp_path, capsys,
                                                      monkeypatch):
    calls = []
    real_curves, real_regions = bplot.learning_curves, bplot.decision_regions
    monkeypatch.setattr(bplot, "learning_curves",
                        lambda *a, **k: calls.append("curves") or real_curves(*a, **k))
    monkeypatch.setattr(bplot, "decision_regions",
                        lambda *a, **k: calls.append("regions") or real_regions(*a, **k))
    code, _, err = run(["train", "--dataset", dataset, "--hidden", "4", "--epochs", "2",
                        "--no-progress", "--plot", str(tmp_path / "p.png")], capsys)
    assert code == 0, err
    assert calls == (["curves", "regions"] if regions else ["curves"])


@pytest.mark.parametrize("name,match", [("p.bmp", "unknown image format '.bmp'"),
                                        ("p", "no file extension")])
def test_train_plot_with_an_unknown_extension_fails_before_training(name, match, tmp_path,
                                                                    capsys):
    code, out, err = run(["train", "--dataset", "xor", "--plot", str(tmp_path / name)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and match in err and ".png, .pdf or .svg" in err

"""The ``bpnet`` command: train, gradcheck, bench dispatch, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import bpnet
from bpnet import data
from bpnet.cli import main

from .test_data import write_mnist

ROOT = Path(__file__).resolve().parent.parent


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_xor_reports_the_summary(capsys):
    code, out, err = run(["train", "--dataset", "xor", "--hidden", "8", "--activation", "tanh",
                          "--epochs", "300", "--lr", "0.05", "--batch-size", "full",
                          "--backend", "numpy", "--no-progress"], capsys)
    assert code == 0, err
    assert "2-8-2 tanh, cross_entropy" in out and "numpy on cpu, float32" in out
    assert "full batch, 300 epochs" in out and "samples/s" in out
    assert "train     loss" in out and "accuracy 100.00%" in out


def test_train_digits_saves_and_plots(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    model, png = tmp_path / "model.npz", tmp_path / "curves.png"
    code, out, err = run(["train", "--dataset", "digits", "--hidden", "32,16", "--epochs", "3",
                          "--batch-size", "64", "--dtype", "float64", "--save", str(model),
                          "--plot", str(png), "--no-progress"], capsys)
    assert code == 0, err
    assert "64-32-16-10 relu" in out and "test      loss" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net = bpnet.MLP.load(model)
    assert net.layer_sizes == (64, 32, 16, 10) and net.dtype_name == "float64"
    accuracy = float(out.split("test      loss")[1].split("accuracy")[1].split("%")[0])
    s = data.digits()
    assert net.evaluate(s.X_test, s.y_test)["accuracy"] == pytest.approx(accuracy / 100,
                                                                         abs=1e-4)


def test_train_shows_progress(capsys):
    pytest.importorskip("tqdm")
    code, _, err = run(["train", "--dataset", "moons", "--hidden", "8", "--epochs", "2"], capsys)
    assert code == 0 and "samples/s" in err


def test_train_on_idx_files(tmp_path, capsys):
    write_mnist(tmp_path, "train", n=40, side=3)
    write_mnist(tmp_path, "t10k", n=10, side=3)
    code, out, err = run(["train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                          "--hidden", "4", "--epochs", "2", "--no-progress"], capsys)
    assert code == 0, err
    assert "40 training / 10 test samples, 9 features" in out


def test_train_lbfgs_with_early_stopping_options(capsys):
    code, out, err = run(["train", "--dataset", "times-table", "--hidden", "4",
                          "--activation", "sigmoid", "--optimizer", "lbfgs", "--epochs", "50",
                          "--dtype", "float64", "--no-progress"], capsys)
    assert code == 0, err
    assert "lbfgs (line search), full batch, 50 iterations" in out
    code, out, err = run(["train", "--dataset", "spirals", "--hidden", "16", "--epochs", "200",
                          "--early-stopping", "--patience", "2", "--tol", "0.5",
                          "--no-progress"], capsys)
    assert code == 0, err
    assert "360 training" not in out and "stopped early (early_stopping)" in out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["train", "--dataset", "mnist"], "--data-dir"),
        (["train", "--dataset", "mnist", "--data-dir", "/no/such/dir"], "does not exist"),
        (["train", "--lr", "-1"], "lr must be a number > 0"),
        (["train", "--epochs", "0"], "epochs"),
        (["train", "--batch-size", "many"], "positive integer, 'auto' or 'full'"),
        (["train", "--hidden", "0"], "positive integers"),
        (["train", "--activation", "relux"], "unknown activation 'relux'"),
        (["train", "--backend", "tensorflow"], "unknown backend"),
        (["train", "--optimizer", "lbfgs", "--batch-size", "8"], "full batch"),
        (["train", "--save", "/no/such/dir/m.npz"], "does not exist"),
        (["train", "--plot", "/no/such/dir/c.png"], "does not exist"),
        (["train", "--validation-fraction", "1.5"], "validation-fraction"),
        (["train", "--test-size", "2"], "--test-size must be a fraction in (0, 1)"),
        (["gradcheck", "--layers", "5"], "at least an input and an output"),
        (["gradcheck", "--loss", "hinge"], "unknown loss"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, match, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""  # refused before any work
    assert len(err.strip().splitlines()) == 1 and match in err, err
    assert "Traceback" not in err and "bpnet" in err and "error:" in err


def test_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(["train", "--plot", str(tmp_path / "c.png")], capsys)
    assert code == 2 and "bpnet[plot]" in err and out == ""


def test_gradcheck_passes_and_reports(capsys):
    code, out, _ = run(["gradcheck", "--layers", "3,5,2", "--activation", "softplus",
                        "--loss", "binary_cross_entropy", "--samples", "6"], capsys)
    assert code == 0 and "3-5-2 softplus" in out and "PASSED" in out


def test_gradcheck_failure_exits_1(capsys):
    code, out, _ = run(["gradcheck", "--tol", "1e-30"], capsys)
    assert code == 1 and "FAILED" in out


def test_bench_dispatches_to_bpnet_bench(monkeypatch, capsys):
    calls = {}
    fake = types.ModuleType("bpnet.bench")

    def configure_parser(parser):
        parser.add_argument("--rounds", type=int, default=1)

    def run_bench(args):
        calls["rounds"] = args.rounds
        return 7

    fake.configure_parser, fake.run = configure_parser, run_bench
    monkeypatch.setitem(sys.modules, "bpnet.bench", fake)
    assert main(["bench", "--rounds", "3"]) == 7 and calls == {"rounds": 3}


def test_bench_unavailable_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bpnet.bench", None)
    for argv in (["bench"], ["bench", "--help"], ["bench", "--anything", "1"]):
        code, _, err = run(argv, capsys)
        assert code == 2 and err.strip().count("\n") == 0
        assert "bpnet bench is not available" in err


def test_other_commands_do_not_import_bench(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bpnet.bench", None)  # importing it would fail
    code, _, _ = run(["gradcheck", "--layers", "2,2"], capsys)
    assert code == 0


def test_help_and_version(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "train" in out and "gradcheck" in out and "bench" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and bpnet.__version__ in out


def test_the_module_runs_as_a_program_without_tracebacks():
    proc = subprocess.run(
        [sys.executable, "-m", "bpnet.cli", "train", "--dataset", "nope"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        exc = KeyboardInterrupt()
        exc.history = types.SimpleNamespace(epochs=3)
        raise exc

    monkeypatch.setattr(bpnet.MLP, "fit", interrupted)
    code, _, err = run(["train", "--dataset", "xor", "--no-progress"], capsys)
    assert code == 130 and "interrupted after 3 epochs" in err


def test_divergence_exits_1(capsys):
    code, _, err = run(["train", "--dataset", "times-table", "--optimizer", "sgd", "--lr", "10",
                        "--momentum", "0", "--activation", "identity", "--epochs", "50",
                        "--no-progress"], capsys)
    assert code == 1 and "diverged" in err and err.count("\n") == 1

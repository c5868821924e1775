"""``bpnet train`` as a user runs it: the real entry point (``python -m bpnet``)
in a subprocess.  Defaults that solve each bundled data set, one-line mistakes
found before any training, Ctrl-C that keeps the work, absurd results that
exit 1."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bpnet
from bpnet import data

from .test_data import write_idx, write_mnist

ROOT = Path(__file__).resolve().parent.parent


def bpnet_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # cwd=ROOT: `-m` puts it first on sys.path, so this checkout's bpnet runs.
    return subprocess.run([sys.executable, "-m", "bpnet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def metric(out: str, label: str, name: str) -> float:
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    if name == "loss":
        return float(re.search(r"loss (\S+)", line).group(1))
    return float(re.search(r"accuracy ([\d.]+)%", line).group(1)) / 100


# --- defaults that solve each data set ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dataset,label,name,bound", [
    ("xor", "train", "accuracy", 1.0),
    ("moons", "test", "accuracy", 0.97),
    ("spirals", "test", "accuracy", 0.95),
    ("digits", "test", "accuracy", 0.96),
    ("times-table", "train", "loss", 0.05),
])
def test_the_defaults_solve_each_bundled_data_set(dataset, label, name, bound):
    if dataset == "digits":
        pytest.importorskip("sklearn")
    if dataset == "times-table":
        pytest.importorskip("scipy")  # L-BFGS
    proc = bpnet_cli("train", "--dataset", dataset, "--backend", "numpy", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    value = metric(proc.stdout, label, name)
    assert (value <= bound) if name == "loss" else (value >= bound), proc.stdout
    held_out = data.info(dataset).held_out
    assert ("  test " in proc.stdout) == held_out, proc.stdout  # no "test" for training data
    if not held_out:
        assert "training samples (no held-out split)" in proc.stdout


def test_help_lists_the_defaults_of_every_data_set():
    proc = bpnet_cli("train", "--help")
    assert proc.returncode == 0
    rows = {}
    for line in proc.stdout.splitlines():  # the table first, then the descriptions
        if line.startswith("  ") and line.split() and line.split()[0] in data.DATASETS:
            rows.setdefault(line.split()[0], line.split())
    assert rows["xor"][:7] == ["xor", "8", "tanh", "adam", "0.05", "300", "full"]
    assert rows["times-table"][:7] == ["times-table", "32", "tanh", "lbfgs", "-", "1000", "full"]
    assert rows["digits"][:7] == ["digits", "128", "relu", "adam", "0.001", "40", "32"]
    assert set(data.DATASETS) <= set(rows)
    flowing = " ".join(proc.stdout.split()).lower()  # --help wraps its lines
    assert flowing.count("default: per dataset") == len(("hidden", "activation", "optimizer",
                                                          "lr", "epochs", "batch size"))


def test_every_default_can_be_overridden():
    proc = bpnet_cli("train", "--dataset", "xor", "--hidden", "3", "--activation", "relu",
                     "--epochs", "5", "--lr", "0.2", "--batch-size", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "2-3-2 relu" in proc.stdout and "adam (lr 0.2), batch 2, 5 epochs" in proc.stdout
    # Another optimizer takes its own lr and batch defaults, not the recipe's.
    proc = bpnet_cli("train", "--dataset", "times_table", "--optimizer", "adam", "--epochs", "3",
                     "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "2-32-1 tanh" in proc.stdout and "adam (lr 0.001), full batch, 3 epochs" in proc.stdout


def test_dataset_names_are_the_apis():
    for name in ("two_spirals", "two-spirals", "times_table"):
        proc = bpnet_cli("train", "--dataset", name, "--epochs", "1", "--no-progress")
        assert proc.returncode == 0, proc.stderr
        canonical = data.dataset_name(name)
        s = data.load(canonical)
        assert proc.stdout.startswith(f"bpnet train: {canonical}, {s.X_train.shape[0]} training")


# --- mistakes: one line on stderr, exit 2, before any training ----------------------------------


def _broken_mnist(directory: Path) -> Path:
    write_mnist(directory, "train", n=8)
    write_mnist(directory, "t10k", n=4)
    target = directory / "train-images-idx3-ubyte.gz"
    raw = target.read_bytes()
    target.write_bytes(raw[:10] + bytes(b ^ 0x55 for b in raw[10:40]) + raw[40:])
    return directory


def _oversized_mnist(directory: Path) -> Path:
    write_mnist(directory, "t10k", n=4, compress=False)
    write_idx(directory / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    header = bytes([0, 0, 0x08, 3]) + np.array([2**31, 2**31, 4], dtype=">u4").tobytes()
    (directory / "train-images-idx3-ubyte").write_bytes(header)
    return directory


MISTAKES = {
    "test size negative": (["--test-size", "-0.1"], r"--test-size must be a fraction in \(0, 1\)"),
    "test size one": (["--dataset", "moons", "--test-size", "1"], "fraction in"),
    "test size without split": (["--dataset", "xor", "--test-size", "0.3"],
                                "--test-size does not apply to --dataset xor"),
    "unknown dataset": (["--dataset", "spiral"], "invalid choice: 'spiral'"),
    "cross entropy on one unit": (["--dataset", "moons", "--loss", "cross_entropy"],
                                  "needs at least 2 output units"),
    "zero epochs": (["--epochs", "0"], "epochs"),
    "device of another backend": (["--backend", "numpy", "--device", "cuda:3"], "device"),
    "save into a directory": (["--save", "{tmp}"], "is a directory; give a file name"),
    "save under a file": (["--save", "{tmp}/file.txt/m.npz"], "does not exist"),
    "corrupt gzip IDX": (["--dataset", "mnist", "--data-dir", "{mnist}"],
                         "not a readable gzip-compressed IDX file"),
    "IDX dimensions overflow": (["--dataset", "mnist", "--data-dir", "{huge}"],
                                "header announces shape"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_are_one_line_exit_2_before_training(tmp_path, case):
    argv, match = MISTAKES[case]
    (tmp_path / "file.txt").write_text("x")
    places = {"tmp": str(tmp_path)}
    if "IDX" in case:
        for d in ("mnist", "huge"):
            (tmp_path / d).mkdir()
        places.update(mnist=str(_broken_mnist(tmp_path / "mnist")),
                      huge=str(_oversized_mnist(tmp_path / "huge")))
    argv = [a.format(**places) for a in argv]
    proc = bpnet_cli("train", *argv, "--no-progress")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""  # nothing ran
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert re.search(match, proc.stderr), proc.stderr


def test_a_backend_without_its_device_is_a_usage_error():
    if bpnet.cuda_available():
        pytest.skip("a CUDA device answers here")
    proc = bpnet_cli("train", "--backend", "cupy", "--no-progress")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "cupy" in proc.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_output_directory_that_refuses_files_is_found_before_training():
    proc = bpnet_cli("train", "--save", "/proc/bpnet-model.npz", "--no-progress")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "cannot create files in '/proc'" in proc.stderr


# --- results that are not results, and interrupted runs ---------------------------------------


def test_an_absurd_final_loss_exits_1_and_saves_nothing(tmp_path):
    pytest.importorskip("sklearn")
    model = tmp_path / "m.npz"
    proc = bpnet_cli("train", "--dataset", "digits", "--lr", "1e6", "--backend", "numpy",
                     "--save", str(model), "--no-progress")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert re.match(r"bpnet: training diverged: the final (train|test) loss is \S+, against "
                    r"\S+ before training", proc.stderr) and "nothing saved" in proc.stderr
    assert "-0.0000" not in proc.stdout and not model.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.parametrize("save", [True, False])
def test_ctrl_c_saves_the_last_completed_step(tmp_path, save):
    model = tmp_path / "m.npz"
    argv = [sys.executable, "-m", "bpnet", "train", "--dataset", "moons", "--epochs", "10000000",
            "--backend", "numpy", "--no-progress"] + (["--save", str(model)] if save else [])
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # printed just before training
        assert lines[-1].startswith("  backend"), lines
        proc.stdout.close()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1
    if not save:
        assert re.fullmatch(r"bpnet: interrupted after \d+ epochs; nothing saved \(no --save\)\n",
                            err), err
        return
    assert re.fullmatch(rf"bpnet: interrupted after \d+ epochs; saved the last completed step "
                        rf"to {re.escape(str(model))}\n", err), err
    net = bpnet.MLP.load(model)
    fresh = bpnet.MLP([2, 32, 1], activation="relu", loss="logistic", seed=0)
    assert net.layer_sizes == fresh.layer_sizes
    assert not np.array_equal(net.params[0][0], fresh.params[0][0])  # trained, then kept
    X, _, y, _ = data.load("moons")
    assert net.evaluate(X, y)["accuracy"] > 0.9


def test_python_dash_m_bpnet_is_the_bpnet_command():
    proc = bpnet_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"bpnet {bpnet.__version__}"
    proc = bpnet_cli("train", "--dataset", "nope")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1

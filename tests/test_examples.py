"""The seed workloads in examples/ reach their learning outcomes (never timings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bpnet_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xor_is_solved_from_almost_every_seed():
    solved = load("xor").run(range(10))
    assert sum(solved.values()) >= 9, solved


@pytest.mark.slow  # a few thousand L-BFGS iterations: about a second, more on a busy machine
def test_times_table_beats_seed_000s_cost():
    pytest.importorskip("scipy")
    example = load("times_table")
    result = example.run()
    assert result["cost"] < example.SEED_COST == pytest.approx(1.0022, abs=1e-4)
    net = result["net"]
    assert net.layer_sizes == (2, 4, 1) and net.activation == "sigmoid"
    assert abs(float(net.predict([[7.0, 8.0]])[0, 0]) - 56) < 1.0


def test_digits_reach_97_percent_test_accuracy():
    pytest.importorskip("sklearn")
    accuracies = load("digits").run(range(5))
    assert sum(accuracies) / len(accuracies) >= 0.97, accuracies
    assert min(accuracies) >= 0.96, accuracies


def test_relu_with_logistic_loss_separates_the_spirals():
    result = load("logistic_relu").run()
    assert result["train"]["accuracy"] >= 0.97
    assert result["test"]["accuracy"] >= 0.95
    assert result["history"].loss[-1] < 0.1 * result["history"].loss[0]


def test_demo_runs_the_main_job(capsys):
    pytest.importorskip("sklearn")
    assert load("demo").main(["--epochs", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "bpnet train: digits" in out and "test      loss" in out

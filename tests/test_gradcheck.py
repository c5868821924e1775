"""``bpnet.gradcheck`` and ``bpnet gradcheck`` never cry wolf on correct ReLU
networks (parameters whose difference quotient crosses a kink are counted and
left out), still catch real bugs, take every method, and sweep the step."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpnet
from bpnet import finite_diff, kernels
from bpnet.activations import ACTIVATIONS
from bpnet.cli import main
from bpnet.gradcheck import DEFAULT_TOL, eps_sweep

from .helpers import make_targets

ROOT = Path(__file__).resolve().parent.parent
LOSSES_OUTPUTS = [
    ("mse", None), ("mse", "sigmoid"), ("mse", "tanh"), ("logistic", None),
    ("cross_entropy", None), ("binary_cross_entropy", None),
]


def _problem(seed, activation="relu", loss="mse", out=None, sizes=(3, 5, 5, 2), n=16,
             backend="numpy", device=None):
    """What ``bpnet gradcheck --layers 3,5,5,2`` checks: the initial network
    (zero biases) on standard normal inputs."""
    rng = np.random.default_rng(seed)
    net = bpnet.MLP(list(sizes), activation=activation, loss=loss, output_activation=out,
                    backend=backend, device=device, dtype="float64", seed=seed)
    X = rng.standard_normal((n, sizes[0]))
    return net, X, make_targets(loss, n, sizes[-1], rng)


@pytest.mark.parametrize("loss,out", LOSSES_OUTPUTS)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_no_false_failures_over_seeds(activation, loss, out):
    crossed = 0
    for seed in range(40):
        net, X, Y = _problem(seed, activation, loss, out)
        report = bpnet.gradcheck(net, X, Y)
        assert report.passed, f"seed {seed}\n{report}"
        crossed += report.n_crossed
        if seed % 4 == 0:  # forward differences too, on every fourth seed
            forward = bpnet.gradcheck(net, X, Y, method="forward")
            assert forward.passed, f"seed {seed}\n{forward}"
    if not ACTIVATIONS[activation].kinks:
        assert crossed == 0  # nothing is left out of a smooth network


def test_the_kinks_were_what_failed():
    # seed 0 of `bpnet gradcheck --layers 3,5,5,2 --activation relu --loss mse`
    # failed before: a sample's first hidden layer is all zero, so with zero
    # biases the second layer's pre-activations are exactly 0, on the kink
    net, X, Y = _problem(0)
    raw = bpnet.gradcheck(net, X, Y, exclude_kinks=False)
    assert not raw.passed and raw.errors["b2"] > 1e-3 and raw.n_crossed == 0
    report = bpnet.gradcheck(net, X, Y)
    assert report.passed and report.crossed == {"b2": 5} and report.kinked == ("relu",)
    assert math.isnan(report.errors["b2"])
    text = str(report)
    assert "b2  not compared: all 5 parameters crossed a kink" in text
    assert "5 parameters crossed a relu kink within +-eps" in text and "PASSED" in text
    # the exact methods take backprop's side of the kink and check b2 too
    for method in ("complex_step", "forward_mode"):
        exact = bpnet.gradcheck(net, X, Y, method=method)
        assert exact.passed and exact.n_crossed == 0 and exact.max_error < 1e-13, str(exact)


def test_crossings_are_those_that_change_the_quotient():
    # a parameter counted as crossed is one whose central difference really
    # differs from the exact derivative; the others agree to 1e-8
    net, X, Y = _problem(0, "relu")
    x, _ = net._xy(X, Y)
    crossed = finite_diff.kink_crossings(net.params, x, net.arch, xp=net.xp)
    fd = np.concatenate([np.ravel(t) for pair in net.numerical_grad(X, Y) for t in pair])
    exact = np.concatenate([np.ravel(t) for pair in net.numerical_grad(
        X, Y, method="forward_mode") for t in pair])
    diff = np.abs(fd - exact) / np.max(np.abs(exact))
    assert crossed.any() and diff[crossed].min() > 1e-6 and diff[~crossed].max() < 1e-8


def _broken(monkeypatch, scale_W1=1.0, relu_mask=True):
    """Backprop with a deliberate bug: dW_1 scaled, or ReLU's derivative
    without its mask (f' = 1)."""
    true = kernels.loss_and_grad

    def broken(params, x, y, arch, **kw):
        if not relu_mask:
            arch = dataclasses.replace(arch, hidden=tuple(
                dataclasses.replace(a, df=None) for a in arch.hidden))
        value, grads = true(params, x, y, arch, **kw)
        (dW, db), *rest = grads
        return value, [(dW * scale_W1, db), *rest]

    monkeypatch.setattr(kernels, "loss_and_grad", broken)  # looked up at call time


@pytest.mark.parametrize("bug", ["scaled", "mask"])
@pytest.mark.parametrize("method", finite_diff.METHODS)
def test_real_bugs_are_still_caught(bug, method, monkeypatch):
    _broken(monkeypatch, scale_W1=1.01 if bug == "scaled" else 1.0, relu_mask=bug != "mask")
    caught = 0
    for seed in range(5):
        net, X, Y = _problem(seed, "relu", "cross_entropy")
        report = bpnet.gradcheck(net, X, Y, method=method)
        caught += not report.passed
        assert report.n_crossed < net.n_params // 4  # most parameters were compared
    assert caught == 5


def test_gradcheck_takes_every_method_and_reports_it():
    net, X, Y = _problem(1, "tanh", "cross_entropy")
    for method in finite_diff.METHODS:
        report = bpnet.gradcheck(net, X, Y, method=method)
        assert report.passed and report.method == method and report.tol == DEFAULT_TOL[method]
        assert report.max_error < {"central": 1e-8, "forward": 1e-5}.get(method, 1e-13)
    assert "forward differences, eps=1.5e-08 x max(1, |theta|)" in str(
        bpnet.gradcheck(net, X, Y, method="forward"))
    assert "forward mode, no step" in str(bpnet.gradcheck(net, X, Y, method="forward_mode"))
    assert "eps=1.0e-04)" in str(bpnet.gradcheck(net, X, Y, eps=1e-4))
    with pytest.raises(ValueError, match="unknown method"):
        bpnet.gradcheck(net, X, Y, method="symbolic")


def test_gradcheck_on_other_backends_finds_the_same_crossings(backend):
    net, X, Y = _problem(0, sizes=(3, 4, 4, 2), n=12)
    twin, _, _ = _problem(0, sizes=(3, 4, 4, 2), n=12, backend=backend.name,
                          device=backend.device)
    ref = bpnet.gradcheck(net, X, Y)
    report = bpnet.gradcheck(twin, X, Y)
    assert report.passed, str(report)
    assert report.crossed == ref.crossed


def test_sweep_minimum_lies_near_the_theoretical_step():
    net, X, Y = _problem(2, "tanh", "cross_entropy", sizes=(3, 8, 2), n=32)
    sweep = eps_sweep(net, X, Y)
    assert sweep.eps[0] == 1e-1 and sweep.eps[-1] == 1e-16 and len(sweep.eps) == 31
    for dtype in ("float64", "float32"):
        best = sweep.best("central", dtype)
        theory = sweep.theory["central", dtype]  # eps_mach^(1/3)
        assert theory == pytest.approx(np.finfo(dtype).eps ** (1 / 3))
        assert abs(math.log10(best) - math.log10(theory)) <= 1.0, (dtype, best, theory)
        assert abs(math.log10(sweep.best("forward", dtype))
                   - math.log10(sweep.theory["forward", dtype])) <= 1.0
        central = sweep.errors["central", dtype]
        assert central[0] > 30 * central.min() < central[-1] / 30  # the V
    # the complex step never cancels: flat at rounding level once h^2 is negligible
    small = sweep.eps <= 1e-7
    assert np.all(sweep.errors["complex_step", "float64"][small] < 1e-13)
    assert np.all(sweep.errors["complex_step", "float32"][sweep.eps <= 1e-5] < 1e-5)
    assert ("complex_step", "float64") not in sweep.theory
    assert "smallest error at eps" in str(sweep)
    assert set(sweep.to_dict()["errors"]) == {f"{m} {d}" for m in ("forward", "central",
                                              "complex_step") for d in ("float32", "float64")}


def test_sweep_refuses_forward_mode_and_bad_steps():
    net, X, Y = _problem(0, "tanh")
    with pytest.raises(ValueError, match="forward_mode takes no step"):
        eps_sweep(net, X, Y, methods=["forward_mode"])
    with pytest.raises(ValueError, match="eps"):
        eps_sweep(net, X, Y, eps=[1e-3, 0.0])


# --- the command ----------------------------------------------------------------------------
def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_command_never_cries_wolf(activation, capsys):
    for loss in ("mse", "logistic", "cross_entropy", "binary_cross_entropy"):
        for seed in range(40):
            for extra in ([], ["--zero-biases"]):
                code, out, _ = run(["gradcheck", "--layers", "3,5,5,2", "--activation",
                                    activation, "--loss", loss, "--seed", str(seed), *extra],
                                   capsys)
                assert code == 0, out


def test_command_catches_a_broken_gradient(monkeypatch, capsys):
    _broken(monkeypatch, relu_mask=False)
    code, out, _ = run(["gradcheck", "--layers", "3,5,5,2", "--activation", "relu"], capsys)
    assert code == 1 and "FAILED" in out and "FAIL" in out


@pytest.mark.parametrize("method", finite_diff.METHODS)
def test_command_takes_a_method(method, capsys):
    code, out, _ = run(["gradcheck", "--method", method, "--layers", "3,4,2"], capsys)
    assert code == 0 and "PASSED" in out
    label = {"central": "central differences", "forward": "forward differences",
             "complex_step": "complex step", "forward_mode": "forward mode"}[method]
    assert f"float64, {label}" in out


def test_command_sweeps_the_step_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    svg = tmp_path / "v.svg"
    code, out, err = run(["gradcheck", "--sweep-eps", "--plot", str(svg), "--layers", "3,6,2",
                          "--samples", "32"], capsys)
    assert code == 0, err
    assert "1e-16" in out and "complex 64" in out and "central differences, float64: " in out
    assert svg.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in svg.read_bytes()
    code, out, _ = run(["gradcheck", "--sweep-eps", "--method", "central", "--layers", "3,4,2"],
                       capsys)
    assert code == 0 and "central 64" in out and "forward 64" not in out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--plot", "v.png"], "needs --sweep-eps"),
        (["--sweep-eps", "--plot", "v.bmp"], "unknown image format '.bmp'"),
        (["--sweep-eps", "--plot", "/no/such/dir/v.png"], "does not exist"),
        (["--sweep-eps", "--method", "forward_mode"], "forward_mode takes none"),
        (["--method", "forward_mode", "--eps", "1e-6"], "takes no --eps"),
        (["--method", "backprop"], "invalid choice: 'backprop'"),
        (["--eps", "0"], "--eps must be > 0"),
        (["--tol", "-1"], "--tol must be > 0"),
    ],
)
def test_command_mistakes_are_one_line_and_exit_2(argv, match, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    argv = [str(tmp_path / a) if a in ("v.png", "v.bmp") else a for a in argv]
    code, out, err = run(["gradcheck", *argv], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and match in err, err


def _entry_point() -> list[str]:
    """The installed ``bpnet`` script beside this Python, else ``python -m bpnet.cli``."""
    script = Path(sys.executable).with_name("bpnet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bpnet.cli"]


def test_through_the_real_entry_point():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    argv = ["gradcheck", "--layers", "3,5,5,2", "--activation", "relu", "--loss", "mse"]
    for extra, needle in (([], "PASSED"), (["--zero-biases"], "crossed a relu kink")):
        proc = subprocess.run([*_entry_point(), *argv, *extra], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert needle in proc.stdout and "PASSED" in proc.stdout and proc.stderr == ""
    proc = subprocess.run([*_entry_point(), *argv, "--tol", "1e-30"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "FAILED" in proc.stdout

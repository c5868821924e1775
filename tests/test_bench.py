"""``bpnet bench`` on a tiny configuration: the JSON it writes, the agreement it
checks, the plot; and the contenders it times compute the same step (the one
``MLP.fit`` runs).

No test here looks at a timing: timings belong in ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import bpnet
from bpnet import bench, finite_diff
from bpnet.bench import interleaved, limit_threads, machine_info, peers
from bpnet.params import Layout


@pytest.fixture(scope="module", autouse=True)
def _leave_bpnet_bench_unimported():
    """``bpnet.bench`` is imported only for ``bpnet bench``; once these tests are
    done, forget it again, so that later tests which stand a replacement (or
    None) in ``sys.modules`` see the replacement, not this module bound as an
    attribute of the ``bpnet`` package."""
    yield
    for name in [m for m in sys.modules if m == "bpnet.bench" or m.startswith("bpnet.bench.")]:
        del sys.modules[name]
    if "bench" in vars(bpnet):
        delattr(bpnet, "bench")


def test_import_bpnet_loads_no_benchmark_code():
    code = ("import sys, bpnet; "
            "print(sorted(m for m in sys.modules if m.startswith('bpnet.bench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_each_bench_module_imports_on_its_own():
    # an import circle shows up when the module inside it is imported first
    code = """
import importlib, pkgutil, sys
import bpnet.bench
names = [m.name for m in pkgutil.iter_modules(bpnet.bench.__path__, "bpnet.bench.")]
assert len(names) >= 7, names
for name in names:
    for m in [m for m in sys.modules if m.startswith("bpnet.bench")]:
        del sys.modules[m]
    importlib.import_module(name)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="bpnet bench")
    bench.configure_parser(parser)
    return parser.parse_args(argv)


TINY = ["--quick", "--configs", "tiny", "--peers", "lean,gemm,compat", "--fd-max-params",
        "900", "--fd-cap", "0.02", "--repeats", "2", "--pause", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench.run(_parse([*TINY, "--out", str(out)]))
    return code, out, json.loads((out / "bench.json").read_text())


def test_run_writes_the_raw_figures(tiny_run):
    code, _, report = tiny_run
    assert code == 0
    assert report["options"]["threads"] == 1 and report["threads"]["threads"] == 1
    machine = report["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and isinstance(machine["blas"], list)
    assert machine["gpu"] is None or "GiB" in machine["gpu"]  # bpnet.backend's description
    assert [r["n_params"] for r in report["gradient"]] == [123, 874]
    for row in report["gradient"]:
        for key in ("forward", "backprop"):
            assert row[key]["median_s"] > 0 and len(row[key]["times_s"]) == 2
        for method in ("naive", "batched"):
            fd = row[method]
            assert fd["seconds"] > 0 and fd["grads_per_s"] == pytest.approx(1 / fd["seconds"])
            assert 0 < fd["measured_params"] <= row["n_params"]
            assert fd["extrapolated"] == (fd["measured_params"] < row["n_params"])
        assert row["ratio_naive"] == pytest.approx(row["naive"]["seconds"]
                                                   / row["backprop"]["median_s"])
        assert row["ratio_theory"] == pytest.approx(
            2 * row["n_params"] * row["forward"]["median_s"] / row["backprop"]["median_s"])


def test_run_checks_that_finite_differences_agree_with_backprop(tiny_run):
    _, _, report = tiny_run
    for row in report["gradient"]:
        for method in ("naive", "batched"):
            assert row[method]["agrees"], row
            assert row[method]["max_rel_error"] < 1e-6


def test_a_capped_row_is_sampled_and_labelled(tiny_run):
    # a 0.02 s cap cannot hold 2 * 874 forward passes: that row is extrapolated
    _, _, report = tiny_run
    naive = report["gradient"][1]["naive"]
    assert naive["extrapolated"] and naive["measured_params"] < 874


def test_step_table_compares_the_same_step(tiny_run):
    _, _, report = tiny_run
    (row,) = report["steps"]
    assert row["config"]["sizes"] == [2, 5, 1] and row["config"]["batch"] == 4
    assert set(row["methods"]) == {"bpnet", "lean", "gemm", "compat"}
    for m in row["methods"].values():
        assert m["median_s"] > 0 and m["samples_per_s"] == pytest.approx(4 / m["median_s"])
    assert row["methods"]["lean"]["vs_lean"] == 1.0
    assert row["methods"]["lean"]["vs_lean_paired"] == 1.0
    assert row["methods"]["bpnet"]["vs_gemm_paired"] > 0
    assert row["methods"]["gemm"]["vs_gemm"] == 1.0
    # same weights, same batch: the first losses of bpnet and the lean step agree
    assert row["loss_agreement"]["bpnet"] < 1e-12
    assert row["loss_agreement"]["compat"] < 1e-12


def test_plot_written_when_matplotlib_is_installed(tiny_run):
    _, out, report = tiny_run
    if importlib.util.find_spec("matplotlib") is None:
        assert report["plot"] is None and any("matplotlib" in n for n in report["notes"])
    else:
        png = out / "bench.png"
        assert report["plot"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_skipped_with_a_note_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert "matplotlib" in bench.plot([], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_missing_peer_is_skipped_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "peer_missing",
                        lambda name: "torch not importable" if name == "torch" else None)
    args = _parse([*TINY, "--peers", "lean,torch", "--fd-max-params", "0", "--no-plot",
                   "--out", str(tmp_path)])
    assert bench.run(args) == 0
    (row,) = json.loads((tmp_path / "bench.json").read_text())["steps"]
    assert row["skipped"] == {"torch": "torch not importable"}
    assert set(row["methods"]) == {"bpnet", "lean"}


@pytest.mark.parametrize("option", [["--configs", "huge"], ["--peers", "tensorflow"]])
def test_bad_options_return_2(option, tmp_path, capsys):
    assert bench.run(_parse(["--out", str(tmp_path), *option])) == 2
    assert "unknown" in capsys.readouterr().err


def test_run_returns_1_when_finite_differences_disagree(tmp_path, monkeypatch):
    real = finite_diff.numerical_partials

    def off(*args, **kwargs):
        return real(*args, **kwargs) * 1.01

    monkeypatch.setattr(finite_diff, "numerical_partials", off)
    args = _parse([*TINY, "--configs", "none", "--fd-max-params", "200", "--no-plot",
                   "--out", str(tmp_path)])
    assert bench.run(args) == 1
    (row,) = json.loads((tmp_path / "bench.json").read_text())["gradient"]
    assert not row["naive"]["agrees"] and row["batched"]["agrees"]


PEER_MODULES = {"torch": "torch", "jax": "jax", "sklearn": "sklearn", "compat": "array_api_compat"}


@pytest.mark.parametrize("config", ["tiny", "digits"])
@pytest.mark.parametrize("peer", ["lean", "compat", "torch", "jax", "sklearn"])
def test_every_contender_takes_the_same_first_step(peer, config):
    if peer in PEER_MODULES:
        pytest.importorskip(PEER_MODULES[peer])
    cfg = bench.STEP_CONFIGS[config]
    ctx = bench.jax_x64() if peer == "jax" else contextlib.nullcontext()
    with ctx, limit_threads(1):
        mine = bench.contender("bpnet", cfg)
        theirs = bench.contender(peer, cfg)
        for _ in range(3):  # and they keep taking the same steps
            mine.fn()
            theirs.fn()
        if theirs.sync:
            theirs.sync()
        ours, peer_weights = mine.weights(), theirs.weights()
    assert theirs.first_loss == pytest.approx(mine.first_loss, rel=1e-9)
    for (W, b), (W_peer, b_peer) in zip(ours, peer_weights, strict=True):
        np.testing.assert_allclose(W_peer, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b_peer, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("config", ["tiny", "digits"])
def test_bpnet_contender_is_the_step_fit_runs(config):
    # three steps of the contender land where MLP.fit lands after three
    # full-batch epochs of plain SGD from the same seed
    cfg = bench.STEP_CONFIGS[config]
    prob = bench.step_problem(cfg)
    mine = bench.contender("bpnet", cfg)
    for _ in range(3):
        mine.fn()
    net = bpnet.MLP(list(cfg.sizes), activation=cfg.activation, loss=cfg.loss, dtype=cfg.dtype,
                    seed=bench.SEED)
    targets = prob.labels if cfg.loss == "cross_entropy" else prob.y
    history = net.fit(prob.x, targets, optimizer="sgd", lr=bench.LR, momentum=0.0, epochs=3,
                      shuffle=False)
    assert history.loss[0] == pytest.approx(mine.first_loss, rel=1e-12)
    for (W, b), (W_fit, b_fit) in zip(mine.weights(), net.params, strict=True):
        np.testing.assert_allclose(bpnet.to_numpy(W_fit), W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(bpnet.to_numpy(b_fit), b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", ["dask", "jax", "torch", "array_api_strict"])
def test_bpnet_contender_on_other_backends_takes_the_numpy_step(backend):
    module = {"dask": "dask.array", "array_api_strict": "array_api_strict"}.get(backend, backend)
    pytest.importorskip(module)
    cfg = bench.STEP_CONFIGS["digits"]
    host = bench.contender("bpnet", cfg)
    ctx = bench.jax_x64() if backend == "jax" else contextlib.nullcontext()
    with ctx:
        other = bench.contender("bpnet", cfg, backend=backend)
        for _ in range(2):
            host.fn()
            other.fn()
        assert other.sync is not None  # not NumPy: the timer must be able to wait for it
        other.sync()
        weights = other.weights()
    assert other.info["backend"] == backend
    assert other.first_loss == pytest.approx(host.first_loss, rel=1e-12)
    for (W, b), (W_other, b_other) in zip(host.weights(), weights, strict=True):
        np.testing.assert_allclose(W_other, W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(b_other, b, rtol=1e-10, atol=1e-13)


def test_gemm_floor_runs_the_step_matrix_products():
    step = bench.contender("gemm", bench.STEP_CONFIGS["tiny"])
    assert step.first_loss is None and step.weights is None
    step.fn()


def test_interleaved_timer_rounds_and_contexts():
    calls = {"a": 0, "b": 0}
    entered = []

    @contextlib.contextmanager
    def ctx():
        entered.append(1)
        yield

    def bump(k):
        calls[k] += 1

    t = interleaved({"a": lambda: bump("a"), "b": lambda: bump("b")}, repeats=3, pause=0,
                    number={"a": 5, "b": 2}, contexts={"b": ctx})
    assert [len(t[k].times) for k in "ab"] == [3, 3]
    assert calls == {"a": 15, "b": 6}
    assert len(entered) == 3  # once per block of b, no calibration (number given)
    assert t["a"].median > 0 and t["a"].number == 5


def test_machine_info_names_the_blas_kernel():
    info = machine_info()
    blas = [p for p in info["blas"] if p.get("user_api") == "blas"]
    if importlib.util.find_spec("threadpoolctl") is not None:
        assert blas and all("architecture" in p and "num_threads" in p for p in blas)


def test_limit_threads_restores_the_pools():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    with limit_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before


def test_step_config_labels_and_sizes():
    assert bench.STEP_CONFIGS["mnist"].label == "784-256-256-10 b256 f32"
    assert bench.STEP_CONFIGS["digits"].n_params == 9610
    assert np.all(np.diff([Layout.from_sizes(s).n_params for s in bench.FD_SIZES]) > 0)

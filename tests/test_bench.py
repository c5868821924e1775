"""``bpnet bench`` on a tiny configuration: the JSON it writes, the agreement it
checks, the plot; and the contenders it times compute the same step.

No test here looks at a timing: timings belong in ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys

import numpy as np
import pytest

from bpnet import bench
from bpnet._timing import interleaved, limit_threads, machine_info
from bpnet.optim import SGDState, sgd_update


@pytest.fixture(scope="module", autouse=True)
def _leave_bpnet_bench_unimported():
    """``bpnet.bench`` is imported only for ``bpnet bench``; once these tests are
    done, forget it again, so that later tests which stand a replacement (or
    None) in ``sys.modules`` see the replacement, not this module bound as an
    attribute of the ``bpnet`` package."""
    yield
    import bpnet

    sys.modules.pop("bpnet.bench", None)
    if "bench" in vars(bpnet):
        delattr(bpnet, "bench")


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
    monkeypatch.setattr(bench, "peer_missing",
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
    real = bench.numerical_partials

    def off(*args, **kwargs):
        return real(*args, **kwargs) * 1.01

    monkeypatch.setattr(bench, "numerical_partials", off)
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
        mine = bench.make_step("bpnet", cfg)
        theirs = bench.make_step(peer, cfg)
        theirs.fn()  # and it keeps stepping
    assert theirs.first_loss == pytest.approx(mine.first_loss, rel=1e-9)


def test_gemm_floor_runs_the_step_matrix_products():
    step = bench.make_step("gemm", bench.STEP_CONFIGS["tiny"])
    assert step.first_loss is None
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
    assert np.all(np.diff([bench._count(s) for s in bench.FD_SIZES]) > 0)


def test_thread_policy_one_thread_for_small_layers_only():
    from bpnet._threads import ONE_THREAD_BELOW, blas_threads, largest_product

    assert largest_product([784, 256, 256, 10], 256) == 256 * 784 * 256
    assert blas_threads([2, 5, 1], 4, max_threads=2) == 1
    assert blas_threads([1024, 1024, 1024, 10], 1024, max_threads=2) == 2
    n = int(np.sqrt(ONE_THREAD_BELOW)) + 1  # just above the threshold with batch 1
    assert blas_threads([n, n], 1, max_threads=4) == 4
    assert blas_threads([n - 2, n - 2], 1, max_threads=4) == 1


def test_thread_policy_limits_blas_inside_the_block_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bpnet._threads import blas_thread_policy

    def blas_threads_now():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"]

    before = blas_threads_now()
    with blas_thread_policy([2, 5, 1], 4) as n:
        assert n == 1 and all(t == 1 for t in blas_threads_now())
    assert blas_threads_now() == before


def test_sgd_update_is_exactly_w_minus_lr_grad():
    rng = np.random.default_rng(3)
    params = [(rng.standard_normal((300, 256)).astype(np.float32), rng.standard_normal(256))]
    grads = [(rng.standard_normal((300, 256)).astype(np.float32), rng.standard_normal(256))]
    ((W, b),), _ = sgd_update(params, grads, SGDState(0, None), lr=0.03, xp=np)
    np.testing.assert_array_equal(W, params[0][0] - 0.03 * grads[0][0])
    np.testing.assert_array_equal(b, params[0][1] - 0.03 * grads[0][1])
    assert W.dtype == np.float32

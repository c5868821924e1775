"""``bpnet bench``'s gradient table with every numerical method: the JSON keeps
its old keys and gains one entry per method (passes, floor, accuracy), the
table and the plot show them, and a method that disagrees with backprop fails
the run.  No test here looks at a timing."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys

import pytest

import bpnet
from bpnet import finite_diff


@pytest.fixture(scope="module", autouse=True)
def _leave_bpnet_bench_unimported():
    """As in ``test_bench.py``: forget ``bpnet.bench`` once these tests are done."""
    yield
    for name in [m for m in sys.modules if m == "bpnet.bench" or m.startswith("bpnet.bench.")]:
        del sys.modules[name]
    if "bench" in vars(bpnet):
        delattr(bpnet, "bench")


def _parse(argv):
    from bpnet import bench

    parser = argparse.ArgumentParser(prog="bpnet bench")
    bench.configure_parser(parser)
    return parser.parse_args(argv)


TINY = ["--quick", "--configs", "none", "--peers", "none", "--fd-max-params", "900",
        "--fd-cap", "0.02", "--repeats", "2", "--pause", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    from bpnet import bench

    out = tmp_path_factory.mktemp("bench-methods")
    code = bench.run(_parse([*TINY, "--out", str(out)]))
    return code, out, json.loads((out / "bench.json").read_text())


def test_every_method_has_its_passes_floor_and_accuracy(methods_run):
    code, _, report = methods_run
    assert code == 0
    assert report["options"]["fd_methods"] == list(finite_diff.METHODS)
    for row in report["gradient"]:
        P = row["n_params"]
        t_f = row["forward"]["median_s"]
        assert row["forward_complex"]["median_s"] > 0 and row["forward_dual"]["median_s"] > 0
        assert list(row["methods"]) == list(finite_diff.METHODS)
        passes = {"central": 2 * P, "forward": P + 1, "complex_step": P, "forward_mode": P}
        for name, m in row["methods"].items():
            assert m["passes"] == passes[name]
            assert m["floor_s"] == pytest.approx(passes[name] * t_f)
            assert m["pass_kind"] == {"complex_step": "complex", "forward_mode": "dual"}.get(
                name, "forward")
            for variant in ("naive", "batched"):
                assert m[variant]["agrees"], (name, variant, m[variant])
                assert m[variant]["seconds"] > 0
            bound = {"central": 1e-6, "forward": 1e-4}.get(name, 1e-11)
            assert m["naive"]["max_rel_error"] < bound and m["batched"]["max_rel_error"] < bound
            assert m["naive_over_floor"] == pytest.approx(m["naive"]["seconds"] / m["floor_s"])


def test_the_keys_of_earlier_versions_stay(methods_run):
    _, _, report = methods_run
    for row in report["gradient"]:
        central = row["methods"]["central"]
        assert row["naive"] == central["naive"] and row["batched"] == central["batched"]
        for key in ("ratio_naive", "ratio_batched", "naive_over_floor"):
            assert row[key] == pytest.approx(central[key])
        assert row["ratio_theory"] == pytest.approx(
            2 * row["n_params"] * row["forward"]["median_s"] / row["backprop"]["median_s"])


def test_the_table_and_plot_show_every_method(methods_run, capsys, tmp_path):
    from bpnet.bench import report

    _, out, payload = methods_run
    table = report.format_methods_table(payload["gradient"])
    for label in ("central", "forward", "complex step", "forward mode"):
        assert f"  {label} " in table
    assert "floor: passes x one real forward pass" in table
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # a bench.json of an earlier version (central differences only) still plots
        old = [{k: v for k, v in row.items() if k != "methods"} for row in payload["gradient"]]
        assert report.plot(old, tmp_path / "old.png") is None
        assert "central" not in report.format_methods_table(old).split("\n", 2)[2]


def test_a_method_that_disagrees_fails_the_run(tmp_path, monkeypatch, capsys):
    from bpnet import bench

    real = finite_diff.numerical_partials_batched

    def off(*args, method="central", **kwargs):
        value = real(*args, method=method, **kwargs)
        return value * 1.01 if method == "complex_step" else value

    monkeypatch.setattr(finite_diff, "numerical_partials_batched", off)
    args = _parse([*TINY, "--fd-max-params", "200", "--no-plot", "--out", str(tmp_path)])
    assert bench.run(args) == 1
    assert "complex_step at P = 123" in capsys.readouterr().err
    (row,) = json.loads((tmp_path / "bench.json").read_text())["gradient"]
    assert not row["methods"]["complex_step"]["batched"]["agrees"]
    assert row["methods"]["complex_step"]["naive"]["agrees"] and row["batched"]["agrees"]


def test_methods_can_be_chosen(tmp_path, capsys):
    from bpnet import bench

    args = _parse([*TINY, "--fd-max-params", "200", "--fd-methods", "forward_mode",
                   "--no-plot", "--out", str(tmp_path)])
    assert bench.run(args) == 0
    (row,) = json.loads((tmp_path / "bench.json").read_text())["gradient"]
    assert list(row["methods"]) == ["forward_mode"] and "naive" not in row
    out = capsys.readouterr().out
    assert "forward mode" in out and "naive FD" not in out
    assert bench.run(_parse([*TINY, "--fd-methods", "symbolic", "--out", str(tmp_path)])) == 2
    assert "unknown method symbolic" in capsys.readouterr().err

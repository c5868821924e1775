"""Gradient cost against the number of parameters P: backprop against naive and
batched central differences (float64, tanh, softmax cross-entropy, batch 64).

Two kinds of test:

* ``test_backprop``, ``test_forward``, ``test_fd``: pytest-benchmark timings of
  one call each.  The finite-difference ones time a fixed random sample of
  parameters (all of them on small networks) and file the extrapolated seconds
  per full gradient in ``extra_info``.
* ``test_fd_vs_backprop``: the interleaved comparison of :func:`bpnet.bench.gradient_row`
  (measured ratio beside ``2P t_forward / t_backprop``), checking that finite
  differences agree with backprop; rows go to ``bench-results/bench_gradient.json``.

    python -m pytest benchmarks/bench_gradient.py -s

Nothing asserts a time.  ``--benchmark-disable`` runs each once on the two
smallest networks.
"""

from __future__ import annotations

import numpy as np
import pytest

from bpnet import bench, kernels
from bpnet.finite_diff import numerical_partials, numerical_partials_batched
from bpnet.gradcheck import FLOOR, relative_error
from bpnet.params import Layout

from .helpers import save_results

SIZES = [pytest.param(s, id="-".join(map(str, s))) for s in bench.FD_SIZES]
SAMPLE = {"naive": 400, "batched": 8192}  # parameters timed per call, at most
_ROWS: list[dict] = []


@pytest.fixture(params=SIZES)
def sizes(request, quick, threads):
    if quick and Layout.from_sizes(request.param).n_params > 1000:
        pytest.skip("--benchmark-disable: the two smallest networks only")
    return request.param


@pytest.fixture
def net(sizes) -> bench.GradientProblem:
    return bench.gradient_problem(sizes)


def _flat_grad(net: bench.GradientProblem) -> np.ndarray:
    _, grads = kernels.loss_and_grad(net.params, net.x, net.y, net.arch, xp=np)
    return Layout.of(grads).ravel(grads, xp=np)


def test_backprop(benchmark, net):
    value, _ = benchmark(kernels.loss_and_grad, *net, xp=np)
    benchmark.extra_info["n_params"] = Layout.of(net.params).n_params
    assert np.isfinite(value)


def test_forward(benchmark, net):
    value = benchmark(kernels.loss_value, *net, xp=np)
    benchmark.extra_info["n_params"] = Layout.of(net.params).n_params
    expected, _ = kernels.loss_and_grad(*net, xp=np)
    assert value == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("method", ["naive", "batched"])
def test_fd(benchmark, net, method):
    P = Layout.of(net.params).n_params
    m = min(P, SAMPLE[method])
    idx = np.sort(np.random.default_rng(0).choice(P, size=m, replace=False)).tolist()
    fn = numerical_partials if method == "naive" else numerical_partials_batched
    fd = benchmark.pedantic(fn, args=(*net, idx), kwargs={"xp": np}, rounds=3, iterations=1)
    bp = _flat_grad(net)
    err = relative_error(fd, bp[idx], FLOOR * float(np.max(np.abs(bp))))
    benchmark.extra_info.update({"n_params": P, "measured_params": m, "extrapolated": m < P,
                                 "max_rel_error": err})
    if benchmark.stats is not None:  # None under --benchmark-disable
        median = benchmark.stats.stats.median
        benchmark.extra_info["seconds_per_gradient"] = median * P / m
    assert err < 1e-6


def test_fd_vs_backprop(sizes, quick):
    if quick:
        row = bench.gradient_row(sizes, cap=0.05, repeats=1, min_block_s=0.001, pause=0.0)
    else:
        row = bench.gradient_row(sizes, cap=10.0, repeats=9, min_block_s=0.02, pause=0.2)
    assert row["naive"]["agrees"] and row["batched"]["agrees"], row
    assert row["n_params"] == Layout.from_sizes(sizes).n_params
    if not quick:
        _ROWS.append(row)
        path = save_results("bench_gradient", {"rows": _ROWS})
        print(f"\n{bench.format_gradient_table(_ROWS)}\n({path})")

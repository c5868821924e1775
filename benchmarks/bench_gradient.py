"""Gradient cost against the number of parameters P: backprop against naive and
batched central differences (float64, tanh, softmax cross-entropy, batch 64).

Two kinds of test:

* ``test_backprop``, ``test_forward``, ``test_naive_fd``, ``test_batched_fd``:
  pytest-benchmark timings of one call each.  The finite-difference ones time a
  fixed random sample of parameters (all of them on small networks) and file
  the extrapolated seconds per full gradient in ``extra_info``.
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
from conftest import save_results

from bpnet import bench, kernels
from bpnet.numerical import (
    FLOOR,
    numerical_partials,
    numerical_partials_batched,
    relative_error,
)
from bpnet.params import n_params, ravel

SIZES = [pytest.param(s, id="-".join(map(str, s))) for s in bench.FD_SIZES]
SAMPLE = {"naive": 400, "batched": 8192}  # parameters timed per call, at most
_ROWS: list[dict] = []


@pytest.fixture(params=SIZES)
def net(request, quick, threads):
    sizes = request.param
    if quick and bench._count(sizes) > 1000:
        pytest.skip("--benchmark-disable: the two smallest networks only")
    return bench._fd_net(sizes, np, None)


def _grads(net):
    params, x, y, hidden, out, loss = net
    return kernels.loss_and_grad(params, x, y, hidden, out, loss, xp=np)


def test_backprop(benchmark, net):
    params, x, y, hidden, out, loss = net
    value, _ = benchmark(kernels.loss_and_grad, params, x, y, hidden, out, loss, xp=np)
    benchmark.extra_info["n_params"] = n_params(params)
    assert np.isfinite(value)


def test_forward(benchmark, net):
    params, x, y, hidden, out, loss = net
    value = benchmark(kernels.loss_value, params, x, y, hidden, out, loss, xp=np)
    benchmark.extra_info["n_params"] = n_params(params)
    assert value == pytest.approx(float(_grads(net)[0]), rel=1e-12)


@pytest.mark.parametrize("method", ["naive", "batched"])
def test_fd(benchmark, net, method):
    params, x, y, hidden, out, loss = net
    P = n_params(params)
    m = min(P, SAMPLE[method])
    idx = np.sort(np.random.default_rng(0).choice(P, size=m, replace=False)).tolist()
    fn = numerical_partials if method == "naive" else numerical_partials_batched
    fd = benchmark.pedantic(fn, args=(params, x, y, hidden, out, loss, idx),
                            kwargs={"xp": np}, rounds=3, iterations=1)
    bp = ravel(_grads(net)[1], xp=np)
    err = relative_error(fd, bp[idx], FLOOR * float(np.max(np.abs(bp))))
    benchmark.extra_info.update({"n_params": P, "measured_params": m, "extrapolated": m < P,
                                 "max_rel_error": err})
    if benchmark.stats is not None:  # None under --benchmark-disable
        median = benchmark.stats.stats.median
        benchmark.extra_info["seconds_per_gradient"] = median * P / m
    assert err < 1e-6


def test_fd_vs_backprop(net, quick):
    params = net[0]
    sizes = [params[0][0].shape[0]] + [W.shape[1] for W, _ in params]
    if quick:
        row = bench.gradient_row(sizes, cap=0.05, repeats=1, min_block_s=0.001, pause=0.0)
    else:
        row = bench.gradient_row(sizes, cap=10.0, repeats=9, min_block_s=0.02, pause=0.2)
    assert row["naive"]["agrees"] and row["batched"]["agrees"], row
    assert row["n_params"] == n_params(params)
    if not quick:
        _ROWS.append(row)
        path = save_results("bench_gradient", {"rows": _ROWS})
        print(f"\n{bench.format_gradient_table(_ROWS)}\n({path})")

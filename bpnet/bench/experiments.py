"""The experiments of ``bpnet bench``, each returning the rows of one table.

- :func:`step_rows`: one training step of bpnet and of every peer, interleaved,
  with ratios to the lean NumPy step, to the GEMM floor and to bpnet;
- :func:`gradient_row`: one backprop gradient against one forward pass and
  against naive and batched central differences, checked for agreement;
- :func:`thread_rows`: bpnet's and the lean step's time at several BLAS thread
  counts.

Rows are plain dicts of numbers and strings: what ``bench.json`` holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from types import ModuleType
from typing import Any

import numpy as np

from .. import finite_diff, kernels
from .._typing import Array
from ..backend import backend_name, get_namespace, lazy, synchronize, to_numpy
from ..gradcheck import FLOOR, relative_error
from ..params import Layout
from . import peers
from .peers import PEER_LABELS, Contender, bpnet_step, jax_x64, lean_step
from .problems import FD_BATCH, SEED, StepConfig, gradient_problem, step_problem
from .timing import interleaved, paired_ratio, time_once

__all__ = ["gradient_row", "step_rows", "thread_rows"]


# --- training steps ------------------------------------------------------------------------
def step_rows(
    cfg: StepConfig, names: Sequence[str], *, backend: str = "numpy", device: Any = None,
    repeats: int = 7, min_block_s: float = 0.01, pause: float = 0.2,
) -> dict[str, Any]:
    """Time bpnet's step and every available peer in ``names`` side by side on ``cfg``.

    Returns
    -------
    dict
        ``config`` (the configuration), ``methods`` (name -> median, IQR,
        samples/s, ratios of medians to the lean step, to the GEMM floor and
        to bpnet, medians of the per-round ratios ``vs_*_paired``, first-step
        loss), ``loss_agreement`` (largest relative difference of
        the first-step losses from the lean step's), ``skipped`` (name ->
        reason).
    """
    prob = step_problem(cfg)
    steps: dict[str, Contender] = {}
    skipped: dict[str, str] = {}
    uses_jax = backend == "jax" or ("jax" in names and peers.peer_missing("jax") is None)
    with contextlib.ExitStack() as stack:
        if cfg.dtype == "float64" and uses_jax:
            stack.enter_context(jax_x64(True))
        steps["bpnet"] = bpnet_step(prob, backend, device)
        for name in names:
            reason = peers.peer_missing(name)
            if reason:
                skipped[name] = reason
                continue
            steps[name] = peers.build_peer(name, prob)
        timings = interleaved(
            {k: s.fn for k, s in steps.items()},
            syncs={k: s.sync for k, s in steps.items() if s.sync},
            repeats=repeats, min_block_s=min_block_s, pause=pause,
        )
    lean = timings["lean"].median if "lean" in timings else None
    gemm = timings["gemm"].median if "gemm" in timings else None
    mine = timings["bpnet"].median
    methods = {}
    for name, t in timings.items():
        methods[name] = {
            **t.as_dict(),
            "label": PEER_LABELS[name],
            "samples_per_s": cfg.batch / t.median,
            "vs_lean": t.median / lean if lean else None,
            "vs_gemm": t.median / gemm if gemm else None,
            "vs_bpnet": t.median / mine,
            "vs_lean_paired": paired_ratio(t, timings["lean"]) if lean else None,
            "vs_gemm_paired": paired_ratio(t, timings["gemm"]) if gemm else None,
            "first_loss": steps[name].first_loss,
            "info": steps[name].info,
        }
    ref = steps["lean"].first_loss if "lean" in steps else steps["bpnet"].first_loss
    diffs = {
        k: abs(s.first_loss - ref) / max(abs(ref), 1e-30)
        for k, s in steps.items() if s.first_loss is not None
    }
    return {
        "config": {**asdict(cfg), "label": cfg.label, "n_params": cfg.n_params},
        "methods": methods,
        "loss_agreement": diffs,
        "skipped": skipped,
    }


# --- gradient cost against P -----------------------------------------------------------------
def _fd_timed(
    fn: Callable[..., Array], args: tuple, P: int, cap: float, xp: ModuleType,
    pilot: int, rng: np.random.Generator,
) -> tuple[float, np.ndarray, np.ndarray, bool]:
    """Time ``fn`` over all P parameters, or over a sample when a pilot says the
    whole would take longer than ``cap`` seconds.

    The clock includes the one transfer of the result to the host, which also
    waits for any device or lazy work.

    Returns (seconds for all P, measured or extrapolated; indices measured;
    their partials on the host; extrapolated?).
    """
    def timed(indices: np.ndarray) -> tuple[float, np.ndarray]:
        holder: list[np.ndarray] = []
        t = time_once(lambda: holder.append(to_numpy(fn(*args, indices.tolist(), xp=xp))))
        return t, holder[0]

    m = min(P, pilot)
    sample = np.sort(rng.choice(P, size=m, replace=False))
    t_pilot, _ = timed(sample)
    if t_pilot * P / m <= cap or m == P:
        indices = np.arange(P)
        t, partials = timed(indices)
        return t, indices, partials, False
    m = int(min(P, max(m, cap / 2 / (t_pilot / m))))
    indices = np.sort(rng.choice(P, size=m, replace=False))
    t, partials = timed(indices)
    if m == P:
        return t, indices, partials, False
    return t * P / m, indices, partials, True


def _leaves(tree: Any) -> list[Array]:
    """Every array of a loss, a gradient tree or a (loss, gradients) pair."""
    if isinstance(tree, (list, tuple)):
        return [t for item in tree for t in _leaves(item)]
    return [] if tree is None else [tree]


def gradient_row(
    sizes: Sequence[int], *, backend: str = "numpy", device: Any = None, cap: float = 5.0,
    repeats: int = 7, min_block_s: float = 0.01, pause: float = 0.2, seed: int = SEED,
) -> dict[str, Any]:
    """One row of the gradient-cost table: backprop, one forward pass, naive and
    batched central differences (:mod:`bpnet.finite_diff`) on the network
    ``sizes`` (float64, tanh, cross-entropy, batch 64).

    Returns
    -------
    dict
        ``n_params``, ``sizes``, ``forward`` and ``backprop`` (interleaved
        timings), ``naive`` and ``batched`` (seconds per gradient, gradients/s,
        measured or extrapolated, parameters measured, largest relative error
        against backprop, agreement), ``ratio_naive``, ``ratio_batched``
        (measured), ``ratio_theory`` (``2P t_forward / t_backprop``, with
        ``ratio_theory_paired`` the median of the per-round ratios) and
        ``naive_over_floor`` (naive time over 2P forward passes).
    """
    xp = get_namespace(backend)
    is_lazy = lazy.is_lazy(xp)
    layout = Layout.from_sizes(sizes)
    P = layout.n_params
    last: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if backend_name(xp) == "jax":
            stack.enter_context(jax_x64(True))
        params, x, y, arch = gradient_problem(sizes, xp, device)

        def forward() -> None:
            last["forward"] = kernels.loss_value(params, x, y, arch, xp=xp)
            if is_lazy:  # a lazy backend would otherwise only build a graph
                lazy.materialize(xp, last["forward"])

        def backprop() -> None:
            last["backprop"] = kernels.loss_and_grad(params, x, y, arch, xp=xp)
            if is_lazy:
                lazy.materialize(xp, *_leaves(last["backprop"]))

        t = interleaved({"forward": forward, "backprop": backprop}, repeats=repeats,
                        min_block_s=min_block_s, pause=pause,
                        syncs={"forward": lambda: synchronize(*_leaves(last.get("forward"))),
                               "backprop": lambda: synchronize(*_leaves(last.get("backprop")))})
        _, grads = last["backprop"]
        bp = to_numpy(layout.ravel(grads, xp=xp))
        scale = float(np.max(np.abs(bp)))
        rng = np.random.default_rng(seed)
        args = (params, x, y, arch)
        row: dict[str, Any] = {
            "sizes": list(sizes), "batch": FD_BATCH, "dtype": "float64", "n_params": P,
            "forward": t["forward"].as_dict(), "backprop": t["backprop"].as_dict(),
        }
        # looked up at call time, so that a test can stand a wrong one in
        for method, fn, pilot in (("naive", finite_diff.numerical_partials, 24),
                                  ("batched", finite_diff.numerical_partials_batched, 2048)):
            secs, idx, fd, extrapolated = _fd_timed(fn, args, P, cap, xp, pilot, rng)
            err = relative_error(fd, bp[idx], FLOOR * scale)
            row[method] = {
                "seconds": secs, "grads_per_s": 1.0 / secs, "extrapolated": extrapolated,
                "measured_params": int(idx.shape[0]), "max_rel_error": err,
                "agrees": bool(err <= 1e-6),
            }
    t_f, t_b = t["forward"].median, t["backprop"].median
    row["ratio_naive"] = row["naive"]["seconds"] / t_b
    row["ratio_batched"] = row["batched"]["seconds"] / t_b
    row["ratio_theory"] = 2 * P * t_f / t_b
    row["ratio_theory_paired"] = 2 * P * paired_ratio(t["forward"], t["backprop"])
    row["naive_over_floor"] = row["naive"]["seconds"] / (2 * P * t_f)
    return row


# --- thread sweep -----------------------------------------------------------------------------
def thread_rows(
    cfg: StepConfig, threads: Sequence[int], *, repeats: int = 7, min_block_s: float = 0.01,
    pause: float = 0.2,
) -> dict[str, Any]:
    """bpnet's and the lean step's median at each BLAS thread count, interleaved
    (the thread count switches between blocks).

    Returns
    -------
    dict
        ``config`` (the label) and ``medians_s`` (``"bpnet@1"``... -> seconds).
    """
    from threadpoolctl import threadpool_limits

    prob = step_problem(cfg)
    fns, contexts = {}, {}
    for n in threads:
        for name, step in (("bpnet", bpnet_step(prob)), ("lean", lean_step(prob))):
            fns[f"{name}@{n}"] = step.fn
            contexts[f"{name}@{n}"] = (lambda n=n: threadpool_limits(limits=n, user_api="blas"))
    t = interleaved(fns, contexts=contexts, repeats=repeats, min_block_s=min_block_s,
                    pause=pause)
    return {"config": cfg.label, "medians_s": {k: v.median for k, v in t.items()}}

"""The experiments of ``bpnet bench``, each returning the rows of one table.

- :func:`step_rows`: one training step of bpnet and of every peer, interleaved,
  with ratios to the lean NumPy step, to the GEMM floor and to bpnet;
- :func:`gradient_row`: one backprop gradient against one forward pass (real,
  complex and dual) and against every numerical method of
  :mod:`bpnet.finite_diff`, naive and batched, each checked for agreement;
- :func:`thread_rows`: bpnet's and the lean step's time at several BLAS thread
  counts.

Rows are plain dicts of numbers and strings: what ``bench.json`` holds.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict
from types import ModuleType
from typing import Any

import numpy as np

from .. import finite_diff, kernels, numeric_passes
from .._typing import Array
from ..backend import backend_name, device_of, get_namespace, lazy, synchronize, to_numpy
from ..backend.select import complex_dtype
from ..gradcheck import DEFAULT_TOL, FLOOR, relative_error
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
        k: abs(s.first_loss - ref) / max(abs(ref), 1e-30)  # type: ignore[arg-type, operator]
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


#: The pass each method repeats: ``forward`` (real), ``complex`` or ``dual``.
PASS_KIND = {"central": "forward", "forward": "forward", "complex_step": "complex",
             "forward_mode": "dual"}


def gradient_row(
    sizes: Sequence[int], *, backend: str = "numpy", device: Any = None, cap: float = 5.0,
    repeats: int = 7, min_block_s: float = 0.01, pause: float = 0.2, seed: int = SEED,
    methods: Sequence[str] = finite_diff.METHODS,
) -> dict[str, Any]:
    """One row of the gradient-cost table: backprop, one forward pass of each
    kind (real, complex, dual), and every numerical method in ``methods``,
    naive and batched (:mod:`bpnet.finite_diff`), on the network ``sizes``
    (float64, tanh, cross-entropy, batch 64).

    Returns
    -------
    dict
        ``n_params``, ``sizes``, ``forward`` and ``backprop`` (interleaved
        timings), ``forward_complex`` and ``forward_dual`` (one complex pass, one
        dual pass seeded at the first layer); ``methods``: for each method,
        ``passes``, ``pass_s`` (one pass of its kind), ``floor_s`` (passes x
        t_forward), ``floor_own_s`` (passes x pass_s), ``naive`` and ``batched``
        (seconds per gradient, gradients/s, measured or extrapolated,
        parameters measured, largest relative error against backprop,
        agreement within the method's tolerance), ``ratio_naive``,
        ``ratio_batched`` (over backprop), ``naive_over_floor``.  The keys of
        earlier versions stay, for central differences: ``naive``, ``batched``,
        ``ratio_naive``, ``ratio_batched``, ``ratio_theory`` (``2P t_forward /
        t_backprop``, with ``ratio_theory_paired`` the median of the per-round
        ratios) and ``naive_over_floor``.
    """
    methods = [finite_diff.check_method(m) for m in methods]
    xp = get_namespace(backend)
    is_lazy = lazy.is_lazy(xp)
    layout = Layout.from_sizes(sizes)
    P = layout.n_params
    last: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if backend_name(xp) == "jax":
            stack.enter_context(jax_x64(True))
        params, x, y, arch = gradient_problem(sizes, xp, device)  # type: ignore[arg-type]
        cdt = complex_dtype(xp, params[0][0].dtype)
        ctree, xc, yc = numeric_passes.to_complex(params, x, y, cdt, xp)
        W1 = params[0][0]
        hot = xp.reshape(xp.astype(xp.arange(W1.shape[0] * W1.shape[1], device=device_of(W1))
                                   == 0, W1.dtype), W1.shape)

        def timed(name: str, fn: Callable[[], Any]) -> Callable[[], None]:
            def run() -> None:
                last[name] = fn()
                if is_lazy:  # a lazy backend would otherwise only build a graph
                    lazy.materialize(xp, *_leaves(last[name]))
            return run

        fns = {
            "forward": timed("forward", lambda: kernels.loss_value(params, x, y, arch, xp=xp)),
            "backprop": timed("backprop",
                              lambda: kernels.loss_and_grad(params, x, y, arch, xp=xp)),
            "forward_complex": timed("forward_complex", lambda: numeric_passes.complex_cost(
                ctree, xc, yc, arch, 0.0, xp)),
            "forward_dual": timed("forward_dual", lambda: numeric_passes.dual_cost(
                params, (0, 0, hot), x, y, arch, 0.0, xp)),
        }
        t = interleaved(fns, repeats=repeats, min_block_s=min_block_s, pause=pause,
                        syncs={k: (lambda k=k: synchronize(*_leaves(last.get(k)))) for k in fns})  # type: ignore[misc]
        _, grads = last["backprop"]
        bp = to_numpy(layout.ravel(grads, xp=xp))
        scale = float(np.max(np.abs(bp)))
        rng = np.random.default_rng(seed)
        args = (params, x, y, arch)
        row: dict[str, Any] = {
            "sizes": list(sizes), "batch": FD_BATCH, "dtype": "float64", "n_params": P,
            **{k: v.as_dict() for k, v in t.items()}, "methods": {},
        }
        for method in methods:
            entry: dict[str, Any] = {}
            # looked up at call time, so that a test can stand a wrong one in
            for variant, fn, pilot in (("naive", finite_diff.numerical_partials, 24),
                                       ("batched", finite_diff.numerical_partials_batched, 2048)):
                secs, idx, fd, extrapolated = _fd_timed(
                    functools.partial(fn, method=method), args, P, cap, xp, pilot, rng)
                err = relative_error(fd, bp[idx], FLOOR * scale)
                entry[variant] = {
                    "seconds": secs, "grads_per_s": 1.0 / secs, "extrapolated": extrapolated,
                    "measured_params": int(idx.shape[0]), "max_rel_error": err,
                    "agrees": bool(err <= DEFAULT_TOL[method]),
                }
            row["methods"][method] = entry
    t_f, t_b = t["forward"].median, t["backprop"].median
    pass_s = {"forward": t_f, "complex": t["forward_complex"].median,
              "dual": t["forward_dual"].median}
    for method, entry in row["methods"].items():
        passes = finite_diff.n_passes(method, P)
        entry.update({
            "passes": passes, "pass_kind": PASS_KIND[method],
            "pass_s": pass_s[PASS_KIND[method]], "floor_s": passes * t_f,
            "floor_own_s": passes * pass_s[PASS_KIND[method]],
            "ratio_naive": entry["naive"]["seconds"] / t_b,
            "ratio_batched": entry["batched"]["seconds"] / t_b,
            "naive_over_floor": entry["naive"]["seconds"] / (passes * t_f),
        })
    if "central" in row["methods"]:  # the keys of earlier versions
        central = row["methods"]["central"]
        row["naive"], row["batched"] = central["naive"], central["batched"]
        row["ratio_naive"] = central["ratio_naive"]
        row["ratio_batched"] = central["ratio_batched"]
        row["naive_over_floor"] = central["naive_over_floor"]
    row["ratio_theory"] = 2 * P * t_f / t_b
    row["ratio_theory_paired"] = 2 * P * paired_ratio(t["forward"], t["backprop"])
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

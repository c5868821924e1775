"""What ``bpnet bench`` shows and keeps: the tables, the JSON file, the plot.

Each function takes the rows of :mod:`bpnet.bench.experiments` as they are
stored in ``bench.json``, so a saved report can be printed or plotted again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .peers import PEER_LABELS

__all__ = [
    "fmt_time",
    "format_gradient_table",
    "format_methods_table",
    "format_step_table",
    "format_thread_sweep",
    "plot",
    "write_json",
]


def fmt_time(s: float) -> str:
    """Seconds with a unit that keeps three or four digits: ``"24.9 us"``."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def format_gradient_table(rows: Sequence[dict[str, Any]]) -> str:
    """The gradient-cost table, one line per row of :func:`~bpnet.bench.gradient_row`."""
    head = (f"{'P':>8}  {'layers':<12} {'backprop':>10} {'grads/s':>9} {'naive FD':>11} "
            f"{'ratio':>8} {'theory':>8} {'naive/2P·fwd':>12} {'batched FD':>11} {'ratio':>7} "
            f"{'agree':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        nv, bt = r["naive"], r["batched"]
        star_n = "*" if nv["extrapolated"] else " "
        star_b = "*" if bt["extrapolated"] else " "
        agree = "yes" if nv["agrees"] and bt["agrees"] else "NO"
        lines.append(
            f"{r['n_params']:>8}  {'-'.join(map(str, r['sizes'])):<12} "
            f"{fmt_time(r['backprop']['median_s']):>10} {1 / r['backprop']['median_s']:>9.0f} "
            f"{fmt_time(nv['seconds']):>10}{star_n} {r['ratio_naive']:>8.0f} "
            f"{r['ratio_theory']:>8.0f} {r['naive_over_floor']:>12.2f} "
            f"{fmt_time(bt['seconds']):>10}{star_b} {r['ratio_batched']:>7.0f} {agree:>5}"
        )
    if any(r["naive"]["extrapolated"] or r["batched"]["extrapolated"] for r in rows):
        lines.append("* extrapolated from a random sample of parameters (time cap)")
    return "\n".join(lines)


_METHOD_LABELS = {"central": "central", "forward": "forward", "complex_step": "complex step",
                  "forward_mode": "forward mode"}


def format_methods_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every numerical method against backprop, one line per method of each
    row of :func:`~bpnet.bench.gradient_row`: its passes, time per gradient
    (naive and batched) over backprop's, its floor (passes x one real forward
    pass), the cost of one of its passes over a real one, and its accuracy."""
    head = (f"{'P':>8}  {'method':<13} {'passes':>7} {'naive':>11} {'/bp':>7} "
            f"{'floor':>10} {'/floor':>6} {'pass/fwd':>8} {'batched':>11} {'/bp':>6} "
            f"{'max rel err':>11} {'ok':>3}")
    lines = [head, "-" * len(head)]
    for r in rows:
        for name, m in r.get("methods", {}).items():
            nv, bt = m["naive"], m["batched"]
            ok = "yes" if nv["agrees"] and bt["agrees"] else "NO"
            err = max(nv["max_rel_error"], bt["max_rel_error"])
            lines.append(
                f"{r['n_params']:>8}  {_METHOD_LABELS.get(name, name):<13} {m['passes']:>7} "
                f"{fmt_time(nv['seconds']):>10}{'*' if nv['extrapolated'] else ' '} "
                f"{m['ratio_naive']:>7.0f} {fmt_time(m['floor_s']):>10} "
                f"{m['naive_over_floor']:>6.2f} {m['pass_s'] / r['forward']['median_s']:>8.2f} "
                f"{fmt_time(bt['seconds']):>10}{'*' if bt['extrapolated'] else ' '} "
                f"{m['ratio_batched']:>6.0f} {err:>11.1e} {ok:>3}")
    lines.append("floor: passes x one real forward pass; pass/fwd: one pass of the method's "
                 "kind (complex, dual) over a real one; * extrapolated from a sample")
    return "\n".join(lines)


def _ratio(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "-"


def format_step_table(rows: Sequence[dict[str, Any]]) -> str:
    """The training-step table, one line per contender of each
    :func:`~bpnet.bench.step_rows` row, skipped peers with their reason."""
    head = (f"{'configuration':<27} {'method':<27} {'median':>10} {'samples/s':>11} "
            f"{'vs lean':>8} {'paired':>7} {'vs GEMM':>8} {'vs bpnet':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        for m in r["methods"].values():
            lines.append(
                f"{r['config']['label']:<27} {m['label']:<27} {fmt_time(m['median_s']):>10} "
                f"{m['samples_per_s']:>11.0f} {_ratio(m['vs_lean']):>8} "
                f"{_ratio(m['vs_lean_paired']):>7} {_ratio(m['vs_gemm']):>8} "
                f"{_ratio(m['vs_bpnet']):>8}"
            )
        for name, why in r["skipped"].items():
            lines.append(f"{r['config']['label']:<27} {PEER_LABELS[name]:<27} skipped: {why}")
    lines.append("vs lean, vs GEMM: ratios of medians; paired: median over rounds of the "
                 "ratio to the lean block of the same round")
    return "\n".join(lines)


def format_thread_sweep(rows: Sequence[dict[str, Any]]) -> str:
    """One line per :func:`~bpnet.bench.thread_rows` row: each contender's median
    at each thread count."""
    lines = []
    for r in rows:
        cells = "  ".join(f"{k}={fmt_time(v)}" for k, v in r["medians_s"].items())
        lines.append(f"  {r['config']:<26} {cells}")
    return "\n".join(lines)


_COLORS = {"central": "C1", "forward": "C2", "complex_step": "C3", "forward_mode": "C4"}


def _methods(r: dict[str, Any]) -> dict[str, Any]:
    """A row's methods; rows of earlier versions hold central differences only."""
    floor = 2 * r["n_params"] * r["forward"]["median_s"]
    return r.get("methods") or {"central": {"naive": r["naive"], "batched": r["batched"],
                                            "floor_s": floor}}


def plot(rows: Sequence[dict[str, Any]], path: Path) -> str | None:
    """Log-log time per gradient against P: backprop and every numerical method
    with its floor (passes x one forward pass), naive on the left, batched on
    the right.  Returns a note instead of writing when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: no plot (pip install 'bpnet[plot]')"
    P = [r["n_params"] for r in rows]
    fig = Figure(figsize=(11.5, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    names = list(dict.fromkeys(m for r in rows for m in _methods(r)))
    for ax, variant in zip(axes, ("naive", "batched"), strict=True):
        ax.loglog(P, [r["backprop"]["median_s"] for r in rows], "o-", color="C0",
                  label="backprop")
        for name in names:
            have = [(r["n_params"], _methods(r)[name]) for r in rows if name in _methods(r)]
            xs = [p for p, _ in have]
            label = f"{_METHOD_LABELS.get(name, name)}" + (" (batched)" if variant == "batched"
                                                          else "")
            ax.loglog(xs, [m[variant]["seconds"] for _, m in have], "s-",
                      color=_COLORS.get(name, "C5"), markersize=4, label=label)
            ext = [(p, m[variant]["seconds"]) for p, m in have if m[variant]["extrapolated"]]
            if ext:
                ax.loglog(*zip(*ext), "s", mfc="white", color=_COLORS.get(name, "C5"))
        if variant == "naive":  # the floors: so many forward passes
            t_f = [r["forward"]["median_s"] for r in rows]
            ax.loglog(P, [2 * p * t for p, t in zip(P, t_f, strict=True)], ":", color="grey",
                      label="floor 2P forward passes (central)")
            if any(n != "central" for n in names):
                ax.loglog(P, [p * t for p, t in zip(P, t_f, strict=True)], "-.", color="grey",
                          label="floor P forward passes (the others)")
        ax.set_xlabel("number of parameters P")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5)
    axes[0].set_ylabel("seconds per gradient")
    axes[0].set_title("one parameter at a time (open: extrapolated)", fontsize=10)
    axes[1].set_title("batched perturbations (the strongest baselines)", fontsize=10)
    fig.suptitle("One gradient: backprop vs numerical differentiation (float64, tanh, "
                 "softmax cross-entropy, batch 64)", fontsize=11)
    fig.savefig(path, dpi=120)
    return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` to ``path`` as indented JSON (NumPy scalars as numbers,
    anything else unknown as its ``str``); returns ``path``."""
    path = Path(path)
    path.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    return path

"""``bpnet bench``'s options and the run that prints the tables and writes the files.

:func:`configure_parser` adds the options to the ``bench`` subcommand of
:mod:`bpnet.cli` (or to any parser); :func:`run` runs both experiments with
every library on the same thread count, prints the tables, and writes
``bench.json`` and ``bench.png``; :func:`main` is ``python -m bpnet.bench``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..backend import get_namespace
from ..finite_diff import METHODS
from ..params import Layout
from . import peers
from .experiments import gradient_row, step_rows, thread_rows
from .machine import blas_summary, limit_threads, machine_info
from .problems import FD_SIZES, STEP_CONFIGS
from .report import (
    format_gradient_table,
    format_methods_table,
    format_step_table,
    format_thread_sweep,
    plot,
    write_json,
)

__all__ = ["configure_parser", "main", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``bpnet bench``'s options to ``parser``."""
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, networks up to P~1e4, a 0.5 s finite-difference cap")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), metavar="DIR",
                        help="where bench.json and bench.png go (default: ./bench-results)")
    parser.add_argument("--backend", default="numpy",
                        help="backend of bpnet's contenders (numpy, torch, jax, cupy, "
                             "array_api_strict...); peers always run on their own library")
    parser.add_argument("--device", default=None,
                        help="device for --backend (e.g. cuda for torch)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (default: one per core)")
    parser.add_argument("--configs", default=",".join(STEP_CONFIGS),
                        help=f"step configurations, comma-separated, or 'none' "
                             f"(default: {','.join(STEP_CONFIGS)})")
    parser.add_argument("--peers", default=",".join(peers.PEERS),
                        help=f"peers, comma-separated, or 'none' "
                             f"(default: {','.join(peers.PEERS)})")
    parser.add_argument("--fd-max-params", type=int, default=None,
                        help="largest network of the gradient table (default 110000; quick 10000)")
    parser.add_argument("--fd-methods", default=",".join(METHODS),
                        help=f"numerical methods of the gradient table, comma-separated "
                             f"(default: {','.join(METHODS)})")
    parser.add_argument("--fd-cap", type=float, default=None,
                        help="seconds per finite-difference gradient before sampling "
                             "(default 5; quick 0.5)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed blocks per contender (default 9; quick 3)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds slept before each block, so BLAS threads left spinning "
                             "by the previous contender settle (default 0.2)")
    parser.add_argument("--sweep-threads", action="store_true",
                        help="also time bpnet and the lean step at 1 thread and at --threads")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")


def _names(text: str, allowed: Sequence[str], what: str) -> list[str]:
    if text.strip().lower() in ("", "none"):
        return []
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {', '.join(bad)}; expected some of: {', '.join(allowed)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (from :func:`configure_parser`);
    print the tables, write ``bench.json`` (and ``bench.png``) under ``args.out``.

    Returns
    -------
    int
        0 on success, 1 when a gradient check failed, 2 for bad options.
    """
    try:
        configs = [STEP_CONFIGS[n] for n in _names(args.configs, list(STEP_CONFIGS), "config")]
        names = _names(args.peers, peers.PEERS, "peer")
        fd_methods = _names(args.fd_methods, METHODS, "method")
        get_namespace(args.backend)
    except (ValueError, ImportError) as exc:
        print(f"bpnet bench: {exc}", file=sys.stderr)
        return 2
    quick = args.quick
    threads = args.threads or os.cpu_count() or 1
    repeats = args.repeats or (3 if quick else 9)
    pause = args.pause if args.pause is not None else 0.2  # OpenBLAS threads spin ~0.1 s
    block = 0.005 if quick else 0.02
    cap = args.fd_cap if args.fd_cap is not None else (0.5 if quick else 5.0)
    max_p = args.fd_max_params if args.fd_max_params is not None else (10_000 if quick else 110_000)
    fd_sizes = [s for s in FD_SIZES if Layout.from_sizes(s).n_params <= max_p]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    for name in names:  # import before limiting threads, so torch's pool is limited too
        if peers.peer_missing(name) is None and name in ("torch", "jax", "sklearn"):
            __import__(name)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "bpnet": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "options": {"quick": quick, "backend": args.backend, "device": args.device,
                    "threads": threads, "repeats": repeats, "pause_s": pause,
                    "min_block_s": block, "fd_cap_s": cap, "fd_max_params": max_p,
                    "configs": [c.name for c in configs], "peers": names,
                    "fd_methods": fd_methods},
        "notes": [],
    }
    with limit_threads(threads) as limited:
        report["threads"] = limited
        report["machine"] = machine = machine_info()
        print(f"bpnet bench: {machine['cpu']}, {machine['cores']} cores, "
              f"{threads} thread(s), {blas_summary(machine)}")
        if machine.get("loadavg"):
            print(f"load average {machine['loadavg'][0]:.2f}: other jobs on this machine skew "
                  f"absolute times; compare ratios")
        if machine["gpu"]:
            print(f"GPU: {machine['gpu']}")

        grad_rows = [gradient_row(sizes, backend=args.backend, device=args.device, cap=cap,
                                  repeats=repeats, min_block_s=block, pause=pause,
                                  methods=fd_methods)
                     for sizes in fd_sizes] if fd_methods else []
        report["gradient"] = grad_rows
        if grad_rows:
            print("\nGradient cost against the number of parameters (float64, tanh, "
                  "cross-entropy, batch 64)")
            if "central" in fd_methods:
                print(format_gradient_table(grad_rows))
            print("\nEvery numerical method against backprop")
            print(format_methods_table(grad_rows))

        steps = [step_rows(cfg, names, backend=args.backend, device=args.device,
                           repeats=repeats, min_block_s=block, pause=pause)
                 for cfg in configs]
        report["steps"] = steps
        if steps:
            print(f"\nTraining step (forward + backward + SGD), medians of {repeats} "
                  f"interleaved blocks, {threads} thread(s)")
            print(format_step_table(steps))
        if args.sweep_threads:
            counts = sorted({1, threads})
            report["thread_sweep"] = [
                thread_rows(cfg, counts, repeats=repeats, min_block_s=block, pause=pause)
                for cfg in configs
            ]
            print("\nThreads: median step time at", counts, "BLAS thread(s)")
            print(format_thread_sweep(report["thread_sweep"]))

    if "jax" in names and peers.peer_missing("jax") is None:
        report["notes"].append("jax: XLA uses its own CPU thread pool; threadpoolctl does "
                               "not limit it")
    png = out_dir / "bench.png"
    if args.no_plot or not grad_rows:
        report["plot"] = None
    else:
        note = plot(grad_rows, png)
        report["plot"] = None if note else str(png)
        if note:
            report["notes"].append(note)
            print(f"\nnote: {note}")
    report["elapsed_s"] = time.perf_counter() - started
    path = write_json(out_dir / "bench.json", report)
    print(f"\nwrote {path}" + (f" and {png}" if report["plot"] else ""))
    failed = [f"{name} at P = {r['n_params']}" for r in grad_rows
              for name, m in r["methods"].items()
              if not (m["naive"]["agrees"] and m["batched"]["agrees"])]
    if failed:
        print(f"bpnet bench: numerical differentiation disagrees with backprop: "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bpnet.bench [options]``: the same as ``bpnet bench``."""
    parser = argparse.ArgumentParser(
        prog="bpnet bench",
        description="How much faster backpropagation is than finite differences, and how "
                    "close bpnet's training step runs to what the machine allows.")
    configure_parser(parser)
    return run(parser.parse_args(argv))

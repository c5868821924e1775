"""``bpnet gradcheck``: backprop against numerical differentiation on random data."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._common import EXIT_FAILED, EXIT_OK, UsageError, _check_plot_path, _int_list

__all__ = ["add_gradcheck"]


def add_gradcheck(sub: Any) -> None:
    from ..finite_diff import METHODS

    p = sub.add_parser("gradcheck", help="check backprop against numerical differentiation",
                       description="Compare backpropagation with numerical differentiation "
                       "(in float64) for a network on random data.  Parameters whose central "
                       "or forward difference crosses a ReLU kink are counted and left out. "
                       "With --sweep-eps, show how the error of forward, central and complex "
                       "step differences changes with the step, in float32 and float64.")
    p.add_argument("--layers", type=_int_list, default=[5, 8, 3],
                   help="layer sizes, input to output (default: 5,8,3)")
    p.add_argument("--activation", default="tanh", help="hidden activation (default: tanh)")
    p.add_argument("--loss", default="cross_entropy", help="loss (default: cross_entropy)")
    p.add_argument("--samples", type=int, default=16, help="random samples (default: 16)")
    p.add_argument("--backend", default="numpy", help="backend (default: numpy)")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", default=None, choices=METHODS,
                   help="numerical method: central (default; 2P passes, error O(eps^2)), "
                   "forward (P+1 passes, O(eps)), complex_step (P complex passes, exact to "
                   "rounding) or forward_mode (P dual-number passes, exact to rounding); "
                   "with --sweep-eps, sweep that method only")
    p.add_argument("--eps", type=float, default=None,
                   help="step of every parameter (default: from the theory, scaled by each "
                   "parameter's magnitude)")
    p.add_argument("--tol", type=float, default=None,
                   help="largest relative error that passes (default: 1e-6 central, 1e-4 "
                   "forward, 1e-11 complex_step and forward_mode)")
    p.add_argument("--zero-biases", action="store_true",
                   help="check at the initial zero biases instead of small random ones (ReLU "
                   "pre-activations then sit exactly on the kink more often)")
    p.add_argument("--sweep-eps", action="store_true",
                   help="relative error against backprop for eps = 1e-1 ... 1e-16, forward, "
                   "central and complex step, float32 and float64")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="with --sweep-eps: draw the curves on one log-log plot (.png, .pdf, "
                   ".svg...; needs matplotlib)")
    p.set_defaults(func=_run_gradcheck)


def _run_gradcheck(args: argparse.Namespace) -> int:
    from .. import MLP, gradcheck
    from ..backend import to_numpy
    from ..gradcheck import eps_sweep

    if len(args.layers) < 2:
        raise UsageError("--layers needs at least an input and an output size, e.g. 5,8,3")
    if args.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {args.samples}")
    for option, value in (("--tol", args.tol), ("--eps", args.eps)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{option} must be > 0, got {value}")
    if args.eps is not None and args.method == "forward_mode":
        raise UsageError("--method forward_mode is exact and takes no --eps")
    if args.plot is not None and not args.sweep_eps:
        raise UsageError("--plot draws the sweep: it needs --sweep-eps")
    if args.sweep_eps and args.method == "forward_mode":
        raise UsageError("--sweep-eps sweeps the step, and forward_mode takes none; use "
                          "--method forward, central or complex_step")
    _check_plot_path("--plot", args.plot)
    net = MLP(args.layers, activation=args.activation, loss=args.loss, backend=args.backend,
              device=args.device, dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    k = args.layers[-1]
    X = rng.standard_normal((args.samples, args.layers[0]))
    Y = {
        "cross_entropy": lambda: rng.integers(0, k, args.samples),
        "logistic": lambda: rng.choice([-1.0, 1.0], (args.samples, k)),
        "binary_cross_entropy": lambda: rng.integers(0, 2, (args.samples, k)).astype(float),
        "poisson": lambda: rng.poisson(1.0, (args.samples, k)).astype(float),
    }.get(net.loss, lambda: rng.standard_normal((args.samples, k)))()
    if not args.zero_biases:
        # Zero biases put every pre-activation of a layer after an all-zero ReLU
        # layer exactly on the kink; small random ones check the same code at a
        # point where that does not happen.
        net.set_params([(to_numpy(W), rng.normal(0.0, 0.1, tuple(b.shape)))
                        for W, b in net.params])
    start = time.perf_counter()
    print(f"bpnet gradcheck: {'-'.join(map(str, net.layer_sizes))} {net.activation}, {net.loss}, "
          f"{args.samples} samples, backend {net.backend}"
          + ("" if args.zero_biases else ", biases ~ N(0, 0.1^2)"))
    if args.sweep_eps:
        methods = (args.method,) if args.method else ("forward", "central", "complex_step")
        sweep = eps_sweep(net, X, Y, methods=methods)  # type: ignore[arg-type]
        print(sweep)
        if args.plot is not None:
            from .. import plot

            plot.save(plot.eps_sweep(sweep), args.plot)
            print(f"  plot      {args.plot}")
        print(f"  ({time.perf_counter() - start:.2f} s)")
        return EXIT_OK
    report = gradcheck(net, X, Y, method=args.method or "central", eps=args.eps, tol=args.tol)
    print(report)
    print(f"  ({time.perf_counter() - start:.2f} s)")
    return EXIT_OK if report.passed else EXIT_FAILED


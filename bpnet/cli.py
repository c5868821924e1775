"""The ``bpnet`` command: ``train``, ``gradcheck`` and ``bench``.

::

    bpnet train --dataset digits --hidden 128 --activation relu --optimizer adam \\
        --epochs 40 --batch-size 32 --backend auto --dtype float32 \\
        --save model.npz --plot curves.png
    bpnet gradcheck --layers 4,8,3 --activation tanh --loss cross_entropy
    bpnet bench ...            (see bpnet.bench)

Every error (unknown dataset, missing file, bad option) is one line on stderr
and exit status 2; a training run that diverges exits with 1; Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .optim import OPTIMIZERS, SCHEDULES

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    """A command-line mistake, reported as one line."""

    def __init__(self, message: str, prog: str = "bpnet") -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; one line is kinder.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


# --- parsing -------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers such as 128 or 128,64, got {text!r}"
        ) from None
    if not values or any(n < 1 for n in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _batch_size(text: str) -> int:
    """A positive int, or 0 for the full batch (None stays "not given")."""
    if text.lower() in ("full", "none", "0"):
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}")
    return value


#: The fit options ``bpnet train`` takes, and how each is parsed: a type, choices,
#: or ``bool`` for a flag.
_FIT_FLAGS: dict[str, Any] = {
    "optimizer": OPTIMIZERS,
    "lr": float,
    "epochs": int,
    "batch_size": _batch_size,
    "alpha": float,
    "momentum": float,
    "nesterov": bool,
    "lr_schedule": SCHEDULES,
    "early_stopping": bool,
    "patience": int,
    "tol": float,
}


def _plain(rst: str) -> str:
    """reStructuredText from a docstring as plain text for ``--help``."""
    return re.sub(r":\w+:`([^`]*)`", r"\1", rst).replace("``", "")


def _add_train(sub: Any) -> None:
    from .data import DATASETS
    from .train import options

    p = sub.add_parser("train", help="train a network on a dataset and report the result",
                       description="Train a multilayer perceptron on a dataset, then report "
                       "train/test loss and accuracy, time, backend and device.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="digits", choices=DATASETS,
                      help="dataset (default: digits)")
    data.add_argument("--data-dir", type=Path, default=None,
                      help="directory of the IDX files for --dataset mnist")
    data.add_argument("--test-size", type=float, default=0.25,
                      help="test fraction for digits, moons and spirals (default: 0.25)")
    data.add_argument("--validation-fraction", type=float, default=0.0,
                      help="fraction of the training set held out for validation "
                      "(default: 0, or 0.1 with --early-stopping)")
    net = p.add_argument_group("network")
    net.add_argument("--hidden", type=_int_list, nargs="+", default=[[128]],
                     help="hidden layer sizes, e.g. 128 or 128,64 (default: 128)")
    net.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
    net.add_argument("--loss", default=None, help="loss (default: the dataset's)")
    net.add_argument("--backend", default="auto",
                     help="numpy, cupy, torch, jax, dask, array_api_strict or auto (default)")
    net.add_argument("--device", default=None, help="device of the backend, e.g. cuda:0")
    net.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    net.add_argument("--seed", type=int, default=0,
                     help="seed of the initial weights and the shuffling (default: 0)")
    opt = p.add_argument_group("optimization (see help(bpnet.MLP.fit))")
    # What each option means comes from the one fit-options schema; only the
    # command's own defaults (40 epochs, batches of 32) are set here.
    cli_defaults = {"epochs": 40}
    for name, kind in _FIT_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        default = cli_defaults.get(name, options.defaults([name])[name])
        text = _plain(options.doc(name))
        if name == "batch_size":
            text += "  'full' is the full batch; default: 32 (full for lbfgs)."
        elif default is not None and kind is not bool:
            text += f"  Default: {default}."
        if kind is bool:
            opt.add_argument(flag, action="store_true", help=text)
        elif isinstance(kind, tuple):
            opt.add_argument(flag, default=default, choices=kind, help=text)
        else:
            opt.add_argument(flag, type=kind, default=None if name == "batch_size" else default,
                             help=text)
    out = p.add_argument_group("output")
    out.add_argument("--save", type=Path, default=None, metavar="PATH",
                     help="write the trained model (.npz)")
    out.add_argument("--plot", type=Path, default=None, metavar="FILE",
                     help="write the learning curves, and the decision regions of 2-D data "
                     "sets (xor, moons, spirals), in the format the extension names: .png, "
                     ".pdf, .svg... (needs matplotlib)")
    out.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar")
    p.set_defaults(func=_run_train)


def _add_gradcheck(sub: Any) -> None:
    from .finite_diff import METHODS

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


def _add_bench(sub: Any, load: bool) -> None:
    """``bpnet bench`` belongs to :mod:`bpnet.bench`, imported only when asked for."""
    p = sub.add_parser("bench", help="run the benchmarks (see bpnet bench --help)",
                       add_help=load)
    if load:
        bench = importlib.import_module("bpnet.bench")
        bench.configure_parser(p)
        p.set_defaults(func=bench.run)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``bpnet`` argument parser (``bench`` is configured only when ``argv``
    asks for it, so the other commands never import the benchmarks)."""
    parser = _Parser(prog="bpnet", description="Multilayer perceptrons trained by "
                     "backpropagation on NumPy, CuPy, PyTorch, JAX, Dask or array-api-strict.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"bpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_gradcheck(sub)
    _add_bench(sub, load="bench" in argv[:1])
    return parser


# --- datasets ----------------------------------------------------------------------------


@dataclass
class _Task:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    loss: str
    n_outputs: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def _task(args: argparse.Namespace) -> _Task:
    from . import data

    name = args.dataset
    if name == "digits":
        s = data.digits(test_size=args.test_size)
        return _Task(name, s.X_train, s.y_train, s.X_test, s.y_test, "cross_entropy", 10)
    if name == "mnist":
        if args.data_dir is None:
            raise _UsageError("--dataset mnist needs --data-dir DIR holding the IDX files "
                              "(train-images-idx3-ubyte[.gz] ...)")
        X_train, y_train = data.mnist(args.data_dir, "train")
        X_test, y_test = data.mnist(args.data_dir, "t10k")
        k = int(max(y_train.max(), y_test.max())) + 1
        return _Task(name, X_train, y_train, X_test, y_test, "cross_entropy", k)
    if name == "xor":
        X, y = data.xor()
        y = y.astype(np.int64)
        return _Task(name, X, y, X, y, "cross_entropy", 2)
    if name == "times-table":
        X, y = data.times_table()
        return _Task(name, X, y, X, y, "mse", 1)
    make = data.moons if name == "moons" else data.two_spirals
    n_test = max(2, round(400 * args.test_size))
    X, y = make(400 - n_test, seed=0)
    X_test, y_test = make(n_test, seed=1)
    return _Task(name, X, y, X_test, y_test, "logistic", 1)


def _holdout(task: _Task, fraction: float, seed: int):
    """Split a validation set off the training set."""
    from .data import train_test_split

    s = train_test_split(task.X_train, task.y_train, test_size=fraction, seed=seed,
                         stratify=task.loss == "cross_entropy")
    return s.X_train, s.y_train, (s.X_test, s.y_test)


# --- commands -------------------------------------------------------------------------------


def _check_output_path(option: str, path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise _UsageError(f"{option} {str(path)!r}: directory {str(path.parent)!r} does not exist")


def _run_train(args: argparse.Namespace) -> int:
    from . import MLP
    from .train.options import fit_options

    _check_output_path("--save", args.save)
    _check_plot_path("--plot", args.plot)
    if not 0 <= args.validation_fraction < 1:
        raise _UsageError(
            f"--validation-fraction must be in [0, 1), got {args.validation_fraction}"
        )
    task = _task(args)
    hidden = [n for group in args.hidden for n in group]
    net = MLP([task.n_features, *hidden, task.n_outputs], activation=args.activation,
              loss=args.loss or task.loss, backend=args.backend, device=args.device,
              dtype=args.dtype, seed=args.seed)
    batch_size = args.batch_size or None  # 0: --batch-size full
    if args.batch_size is None and args.optimizer != "lbfgs":
        batch_size = 32
    options = dict(
        optimizer=args.optimizer, lr=args.lr, epochs=args.epochs, batch_size=batch_size,
        seed=args.seed, alpha=args.alpha, momentum=args.momentum, nesterov=args.nesterov,
        lr_schedule=args.lr_schedule, early_stopping=args.early_stopping,
        patience=args.patience, tol=args.tol, progress=args.progress,
    )
    fit_options(**options)  # bad settings fail here, before any output
    X_train, y_train, validation = task.X_train, task.y_train, None
    fraction = args.validation_fraction or (0.1 if args.early_stopping else 0.0)
    if fraction:
        X_train, y_train, validation = _holdout(task, fraction, args.seed)
    elif args.plot is not None:
        validation = (task.X_test, task.y_test)  # curves only: nothing is decided on it
    print(f"bpnet train: {task.name}, {X_train.shape[0]} training / {task.X_test.shape[0]} "
          f"test samples, {task.n_features} features")
    print(f"  network   {'-'.join(map(str, net.layer_sizes))} {net.activation}, {net.loss}, "
          f"{net.n_params:,} parameters")
    print(f"  backend   {net.backend} on {net.device}, {net.dtype_name}", flush=True)
    with warnings.catch_warnings():
        # Overflow warnings from the array library would only precede the one
        # clear line that a diverging run ends with.
        warnings.simplefilter("ignore", RuntimeWarning)
        history = net.fit(X_train, y_train, validation_data=validation, **options)
    train = net.evaluate(X_train, y_train)
    test = net.evaluate(task.X_test, task.y_test)
    seconds = history.time[-1] if history.time else 0.0
    rate = history.samples_per_second
    lr = "line search" if args.optimizer == "lbfgs" else f"lr {history.lr[0]:g}"
    batch = "full batch" if batch_size is None else f"batch {batch_size}"
    unit = "iterations" if args.optimizer == "lbfgs" else "epochs"
    print(f"  optimizer {args.optimizer} ({lr}), {batch}, {history.epochs} {unit} in "
          f"{seconds:.2f} s ({rate:,.0f} samples/s)"
          + (f", stopped early ({history.stop_reason})" if history.stopped_early else ""))
    for label, metrics in (("train", train), ("test", test)):
        acc = f"  accuracy {100 * metrics['accuracy']:.2f}%" if "accuracy" in metrics else ""
        print(f"  {label:<9} loss {metrics['loss']:.4f}{acc}")
    if args.save is not None:
        net.save(args.save)
        print(f"  saved     {args.save}")
    if args.plot is not None:
        _plot(history, args.plot, task, net, has_validation=fraction > 0)
        print(f"  plot      {args.plot}")
    return EXIT_OK


def _check_plot_path(option: str, path: Path | None) -> None:
    """Refuse, before any work, a plot that could not be written: a missing
    directory, no matplotlib, or an extension that names no format it writes."""
    if path is None:
        return
    _check_output_path(option, path)
    try:
        import matplotlib  # noqa: F401  (first: a submodule may be loaded already)
        from matplotlib.figure import Figure

        from . import plot  # noqa: F401
    except ImportError:
        raise _UsageError(f"{option} needs matplotlib: pip install 'bpnet[plot]'") from None
    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        others = ", ".join(sorted(set(formats) - {"png", "pdf", "svg"}))
        raise _UsageError(
            f"{option} {str(path)!r}: "
            + (f"unknown image format '.{suffix}'" if suffix else "no file extension")
            + f"; expected .png, .pdf or .svg (or {others})")


def _save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` in the format ``path``'s extension names, atomically."""
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.stem}.tmp{suffix}")
    try:
        fig.savefig(tmp, format=suffix.lstrip("."), dpi=110)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _plot(history: Any, path: Path, task: _Task, net: Any, has_validation: bool) -> None:
    """Learning curves, and the decision regions of a data set with two features."""
    from matplotlib.figure import Figure

    from . import plot

    curves = 2 if history.val_accuracy or getattr(history, "accuracy", None) else 1
    regions = task.n_features == 2 and task.loss != "mse"  # xor, moons, spirals
    panels = curves + regions
    fig = Figure(figsize=(5.0 * panels, 4.2), layout="constrained")
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    plot.learning_curves(history, axes=axes[:curves],
                         validation_label="validation" if has_validation else "test")
    if regions:
        plot.decision_regions(net, task.X_train, task.y_train, ax=axes[-1],
                              title="decision regions (training data)")
    fig.suptitle(f"bpnet: {task.name}")
    _save_figure(fig, path)


def _run_gradcheck(args: argparse.Namespace) -> int:
    from . import MLP, gradcheck
    from .backend import to_numpy
    from .gradcheck import eps_sweep

    if len(args.layers) < 2:
        raise _UsageError("--layers needs at least an input and an output size, e.g. 5,8,3")
    if args.samples < 1:
        raise _UsageError(f"--samples must be >= 1, got {args.samples}")
    for option, value in (("--tol", args.tol), ("--eps", args.eps)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise _UsageError(f"{option} must be > 0, got {value}")
    if args.eps is not None and args.method == "forward_mode":
        raise _UsageError("--method forward_mode is exact and takes no --eps")
    if args.plot is not None and not args.sweep_eps:
        raise _UsageError("--plot draws the sweep: it needs --sweep-eps")
    if args.sweep_eps and args.method == "forward_mode":
        raise _UsageError("--sweep-eps sweeps the step, and forward_mode takes none; use "
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
        sweep = eps_sweep(net, X, Y, methods=methods)
        print(sweep)
        if args.plot is not None:
            from . import plot

            _save_figure(plot.eps_sweep(sweep), args.plot)
            print(f"  plot      {args.plot}")
        print(f"  ({time.perf_counter() - start:.2f} s)")
        return EXIT_OK
    report = gradcheck(net, X, Y, method=args.method or "central", eps=args.eps, tol=args.tol)
    print(report)
    print(f"  ({time.perf_counter() - start:.2f} s)")
    return EXIT_OK if report.passed else EXIT_FAILED


def _import_bench() -> None:
    try:
        importlib.import_module("bpnet.bench")
    except ImportError as exc:
        raise _UsageError(f"bpnet bench is not available: {exc}") from None


# --- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bpnet`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 1 when a gradient check fails or training diverges, 2 for
        a usage or input error (one line on stderr), 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:
            _import_bench()
        args = build_parser(argv).parse_args(argv)
        return int(args.func(args))
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except _UsageError as exc:
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as exc:
        print(f"bpnet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError, ImportError, OSError) as exc:
        print(f"bpnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        done = getattr(exc, "history", None)
        where = f" after {done.epochs} epochs" if done is not None else ""
        print(f"bpnet: interrupted{where}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

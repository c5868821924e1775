"""``bpnet train``: a network on a bundled data set, with its own defaults."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..optim import DEFAULT_LR, OPTIMIZERS, SCHEDULES
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    _activations,
    _batch_size,
    _check_output_path,
    _check_plot_path,
    _int_list,
    _plain,
)

__all__ = ["RECIPES", "add_train"]

_FIT_FLAGS: dict[str, Any] = {
    "optimizer": OPTIMIZERS,
    "lr": float,
    "epochs": int,
    "batch_size": _batch_size,
    "alpha": float,
    "momentum": float,
    "nesterov": bool,
    "clip_norm": float,
    "lr_schedule": SCHEDULES,
    "early_stopping": bool,
    "patience": int,
    "tol": float,
    "checkpoint_every": int,
}


@dataclass(frozen=True)
class Recipe:
    """The settings that solve one bundled data set: ``bpnet train``'s defaults
    for it (``lr`` None: the optimizer's default; ``batch_size`` None: the full
    batch)."""

    hidden: tuple[int, ...]
    activation: str
    optimizer: str
    lr: float | None
    epochs: int
    batch_size: int | None


RECIPES: dict[str, Recipe] = {
    "digits": Recipe((128,), "relu", "adam", None, 40, 32),
    "xor": Recipe((8,), "tanh", "adam", 0.05, 300, None),
    "times-table": Recipe((32,), "tanh", "lbfgs", None, 1000, None),
    "moons": Recipe((32,), "relu", "adam", 0.01, 100, 32),
    "spirals": Recipe((64,), "relu", "adam", 0.01, 300, 32),
    "mnist": Recipe((128,), "relu", "adam", None, 10, 64),
}


_RECIPE_FLAGS = ("hidden", "activation", "optimizer", "lr", "epochs", "batch_size")


def _recipes_table() -> str:
    from ..data import DATASETS

    rows = [("dataset", "hidden", "activation", "optimizer", "lr", "epochs", "batch")]
    for name, r in RECIPES.items():
        lr = "-" if r.optimizer == "lbfgs" else f"{r.lr or DEFAULT_LR[r.optimizer]:g}"
        rows.append((name, ",".join(map(str, r.hidden)), r.activation, r.optimizer, lr,
                     str(r.epochs), "full" if r.batch_size is None else str(r.batch_size)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    names = [f"  {name:<12} {d.description}" for name, d in DATASETS.items()]
    return ("defaults per dataset (what is given on the command line wins; when --optimizer\n"
            "changes the optimizer, lr and batch size take that optimizer's defaults):\n"
            + "\n".join(table) + "\n\ndatasets (bpnet.data.load(name) gives the same arrays):\n"
            + "\n".join(names))


def add_train(sub: Any) -> None:
    from ..data import DATASETS, dataset_name
    from ..train import options

    def dataset(text: str) -> str:
        try:
            return dataset_name(text)
        except (TypeError, ValueError):
            return text  # argparse's choices check names it

    p = sub.add_parser("train", help="train a network on a dataset and report the result",
                       description="Train a multilayer perceptron on a dataset, then report "
                       "train (and held-out test) loss and accuracy, time, backend and device.",
                       epilog=_recipes_table(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="digits", type=dataset, choices=DATASETS,
                      help="dataset (default: digits); '_' works for '-'")
    data.add_argument("--data-dir", type=Path, default=None,
                      help="directory of the IDX files for --dataset mnist")
    data.add_argument("--test-size", type=float, default=None,
                      help="held-out test fraction in (0, 1) for digits, moons and spirals "
                      "(default: 0.25)")
    data.add_argument("--validation-fraction", type=float, default=0.0,
                      help="fraction of the training set held out for validation "
                      "(default: 0, or 0.1 with --early-stopping)")
    net = p.add_argument_group("network")
    net.add_argument("--hidden", type=_int_list, nargs="+", default=None,
                     help="hidden layer sizes, e.g. 128 or 128,64 (default: per dataset)")
    net.add_argument("--activation", type=_activations, default=None,
                     help="hidden activation, or one per hidden layer: relu,tanh "
                     "(default: per dataset)")
    net.add_argument("--loss", default=None, help="loss (default: the dataset's)")
    net.add_argument("--backend", default="auto",
                     help="numpy, cupy, torch, jax, dask, array_api_strict or auto (default)")
    net.add_argument("--device", default=None, help="device of the backend, e.g. cuda:0")
    net.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    net.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None,
                     help="float32 products in TensorFloat-32 on NVIDIA GPUs (--tf32) or "
                     "full float32 (--no-tf32); default: the library's own setting")
    net.add_argument("--seed", type=int, default=0,
                     help="seed of the initial weights and the shuffling (default: 0)")
    opt = p.add_argument_group("optimization (see help(bpnet.MLP.fit))")
    # What each option means comes from the one fit-options schema; the defaults
    # of the options a recipe sets are the dataset's (the table below).
    for name, kind in _FIT_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        default = None if name in _RECIPE_FLAGS else options.defaults([name])[name]
        text = _plain(options.doc(name))
        if name == "batch_size":
            text += "  'full' is the full batch."
        if name == "checkpoint_every":
            text += "  (With --checkpoint.)"
        if name in _RECIPE_FLAGS:
            text += "  Default: per dataset (below)."
        elif default is not None and kind is not bool:
            text += f"  Default: {default}."
        if kind is bool:
            opt.add_argument(flag, action="store_true", help=text)
        elif isinstance(kind, tuple):
            opt.add_argument(flag, default=default, choices=kind, help=text)
        else:
            opt.add_argument(flag, type=kind, default=default, help=text)
    out = p.add_argument_group("output")
    out.add_argument("--save", type=Path, default=None, metavar="PATH",
                     help="write the trained model (.npz); on Ctrl-C, the last completed step")
    out.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                     help="save the model with its optimizer state and shuffling generator "
                     "(atomically) every --checkpoint-every epochs and at the end; when PATH "
                     "exists, resume from it: the run continues to --epochs in all and ends "
                     "with the weights the uninterrupted run would have")
    out.add_argument("--plot", type=Path, default=None, metavar="FILE",
                     help="write the learning curves, and the decision regions of 2-D data "
                     "sets (xor, moons, spirals), in the format the extension names: .png, "
                     ".pdf, .svg... (needs matplotlib)")
    out.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar")
    p.set_defaults(func=_run_train)


@dataclass
class _Task:
    """A data set as ``train`` runs it (``X_test`` None: no held-out split)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    loss: str
    n_outputs: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def _task(args: argparse.Namespace) -> _Task:
    from .. import data

    about = data.info(args.dataset)
    if about.name == "mnist" and args.data_dir is None:
        raise UsageError("--dataset mnist needs --data-dir DIR holding the IDX files "
                          "(train-images-idx3-ubyte[.gz] ...)")
    s = data.load(about.name, test_size=args.test_size, data_dir=args.data_dir)
    k = 1
    if about.targets == "labels":
        k = int(max(s.y_train.max(), -1 if s.y_test is None else s.y_test.max())) + 1
    return _Task(about.name, s.X_train, s.y_train, s.X_test, s.y_test, about.loss, k)


def _holdout(task: _Task, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """Split a validation set off the training set."""
    from ..data import train_test_split

    s = train_test_split(task.X_train, task.y_train, test_size=fraction, seed=seed,
                         stratify=task.loss == "cross_entropy")
    return s.X_train, s.y_train, (s.X_test, s.y_test)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The dataset's recipe under what the command line gave."""
    recipe = RECIPES[args.dataset]
    optimizer = args.optimizer or recipe.optimizer
    lr = args.lr
    if lr is None and optimizer == recipe.optimizer:
        lr = recipe.lr
    if args.batch_size is not None:
        batch_size = args.batch_size or None  # 0: --batch-size full
    else:
        batch_size = None if optimizer == "lbfgs" else recipe.batch_size
    hidden = recipe.hidden if args.hidden is None else [n for g in args.hidden for n in g]
    return dict(hidden=list(hidden), activation=args.activation or recipe.activation,
                optimizer=optimizer, lr=lr,
                epochs=recipe.epochs if args.epochs is None else args.epochs,
                batch_size=batch_size)


def _check_train_args(args: argparse.Namespace) -> None:
    """The mistakes that need no data: found before anything is loaded."""
    from ..activations import get_activation
    from ..backend import check_device, get_namespace
    from ..data import info
    from ..losses import get_loss

    if args.test_size is not None:
        if not 0 < args.test_size < 1:
            raise UsageError(f"--test-size must be a fraction in (0, 1), got {args.test_size:g}")
        if not info(args.dataset).held_out or args.dataset == "mnist":
            why = "its own t10k test set" if args.dataset == "mnist" else "no held-out split"
            raise UsageError(f"--test-size does not apply to --dataset {args.dataset} ({why})")
    if not 0 <= args.validation_fraction < 1:
        raise UsageError(
            f"--validation-fraction must be in [0, 1), got {args.validation_fraction}"
        )
    given = args.activation or RECIPES[args.dataset].activation
    for name in [given] if isinstance(given, str) else given:
        get_activation(name)
    if args.loss is not None:
        get_loss(args.loss)
    try:
        check_device(get_namespace(args.backend), args.device)
    except RuntimeError as exc:  # e.g. cupy without a CUDA device: the user's setting
        raise UsageError(str(exc)) from None


def _fit_options(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    from ..train.options import fit_options

    options = dict(
        optimizer=settings["optimizer"], lr=settings["lr"], epochs=settings["epochs"],
        batch_size=settings["batch_size"], seed=args.seed, alpha=args.alpha,
        momentum=args.momentum, nesterov=args.nesterov, lr_schedule=args.lr_schedule,
        early_stopping=args.early_stopping, patience=args.patience, tol=args.tol,
        progress=args.progress, clip_norm=args.clip_norm,
    )
    if args.checkpoint is not None:
        options.update(checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every)
    fit_options(**options)  # bad settings fail here, before any output
    return options


def _acts(net: Any) -> str:
    return net.activation if isinstance(net.activation, str) else ",".join(net.activation)


def _about(net: Any, optimizer: str) -> str:
    return f"{'-'.join(map(str, net.layer_sizes))} {_acts(net)} network ({net.loss}, {optimizer})"


def _resume(args: argparse.Namespace, net: Any, optimizer: str) -> tuple[Any, int]:
    """The network a ``--checkpoint`` file holds, refused unless it is the network
    and optimizer this run trains; and the epochs it has run."""
    saved = type(net).load(args.checkpoint, backend=args.backend, device=args.device,
                           dtype=args.dtype)
    saved.tf32 = args.tf32  # a speed setting of this run, not of the file
    state = saved.training_state
    theirs = "no optimizer state" if state is None else "a " + _about(saved, state["optimizer"])
    if theirs != "a " + _about(net, optimizer):
        raise UsageError(f"--checkpoint {str(args.checkpoint)!r} holds {theirs}, not the "
                          f"{_about(net, optimizer)} this run trains: give another path")
    return saved, state["epoch"]


def _loss_text(loss: float) -> str:
    # Every bpnet loss is >= 0; rounding can leave -0.0 or -1e-9 ("-0.0000").
    return f"{max(loss, 0.0) + 0.0:.4f}" if abs(loss) < 1e6 else f"{loss:.4g}"


def _run_train(args: argparse.Namespace) -> int:
    from .. import MLP, History
    from ..train.options import AUTO_BATCH

    _check_train_args(args)
    settings = _settings(args)
    options = _fit_options(args, settings)
    _check_output_path("--save", args.save)
    _check_plot_path("--plot", args.plot)
    _check_output_path("--checkpoint", args.checkpoint)
    task = _task(args)
    held_out = task.X_test is not None
    net = MLP([task.n_features, *settings["hidden"], task.n_outputs],
              activation=settings["activation"], loss=args.loss or task.loss,
              backend=args.backend, device=args.device, dtype=args.dtype, seed=args.seed,
              tf32=args.tf32)
    X_train, y_train, validation = task.X_train, task.y_train, None
    fraction = args.validation_fraction or (0.1 if args.early_stopping else 0.0)
    if fraction:
        X_train, y_train, validation = _holdout(task, fraction, args.seed)
    elif args.plot is not None and held_out:
        validation = (task.X_test, task.y_test)  # curves only: nothing is decided on it
    resumed = 0
    if args.checkpoint is not None and args.checkpoint.exists():
        net, resumed = _resume(args, net, options["optimizer"])
        # the run goes on to --epochs in all; its generator continues, unseeded
        options.update(epochs=max(options["epochs"] - resumed, 0), warm_start=True, seed=None)
    with warnings.catch_warnings():
        # Overflow warnings from the array library would only precede the one
        # clear line that a diverging run ends with.
        warnings.simplefilter("ignore", RuntimeWarning)
        start = net.evaluate(X_train, y_train)["loss"]  # also checks the targets fit the loss
        samples = (f"{X_train.shape[0]} training / {task.X_test.shape[0]} test samples"  # type: ignore[union-attr]
                   if held_out else f"{X_train.shape[0]} training samples (no held-out split)")
        print(f"bpnet train: {task.name}, {samples}, {task.n_features} features")
        print(f"  network   {'-'.join(map(str, net.layer_sizes))} {_acts(net)}, "
              f"{net.loss}, {net.n_params:,} parameters")
        print(f"  backend   {net.backend} on {net.device}, {net.dtype_name}", flush=True)
        if resumed:
            print(f"  resumed   from {args.checkpoint} after {resumed} epochs", flush=True)
        try:
            history = (net.fit(X_train, y_train, validation_data=validation, **options)
                       if options["epochs"] else History(optimizer=options["optimizer"]))
        except KeyboardInterrupt as exc:
            return _interrupted(net, args.save, getattr(exc, "history", None), args.checkpoint)
        results = [("train", net.evaluate(X_train, y_train))]
        if held_out:
            results.append(("test", net.evaluate(task.X_test, task.y_test)))  # type: ignore[arg-type]
    seconds = history.elapsed[-1] if history.elapsed else 0.0
    rate = history.samples_per_second
    optimizer, batch_size = options["optimizer"], options["batch_size"]
    lr = ("line search" if optimizer == "lbfgs" else
          f"lr {history.lr[0] if history.lr else options['lr']:g}")
    batch = ("full batch" if batch_size is None else f"batch {batch_size}" if batch_size != "auto"
             else f"batch auto ({min(AUTO_BATCH, X_train.shape[0])})")
    unit = "iterations" if optimizer == "lbfgs" else "epochs"
    print(f"  optimizer {optimizer} ({lr}), {batch}, {history.epochs} {unit} in "
          f"{seconds:.2f} s ({rate:,.0f} samples/s)"
          + (f", stopped early ({history.stop_reason})" if history.stopped_early else ""))
    for label, metrics in results:
        acc = f"  accuracy {100 * metrics['accuracy']:.2f}%" if "accuracy" in metrics else ""
        print(f"  {label:<9} loss {_loss_text(metrics['loss'])}{acc}", flush=True)
    # A run can "finish" with weights that overflow: refuse to call that a result.
    limit = 1e3 * max(start, 1.0)
    for label, metrics in results:
        if not math.isfinite(metrics["loss"]) or metrics["loss"] > limit:
            saved = "; nothing saved" if args.save is not None else ""
            print(f"bpnet: training diverged: the final {label} loss is {metrics['loss']:.4g}, "
                  f"against {start:.4g} before training ({lr}){saved}. Try a smaller --lr.",
                  file=sys.stderr)
            return EXIT_FAILED
    if args.save is not None:
        net.save(args.save)
        print(f"  saved     {args.save}")
    if args.plot is not None:
        _plot(history, args.plot, task, net, has_validation=fraction > 0)
        print(f"  plot      {args.plot}")
    return EXIT_OK


def _interrupted(net: Any, save: Path | None, history: Any,
                 checkpoint: Path | None = None) -> int:
    """Ctrl-C during training: keep the last completed step if asked to."""
    where = f" after {history.epochs} epochs" if history is not None else ""
    if save is None:
        print(f"bpnet: interrupted{where}; nothing saved (no --save)", file=sys.stderr)
    else:
        net.save(save)  # the network holds the last completed step
        print(f"bpnet: interrupted{where}; saved the last completed step to {save}",
              file=sys.stderr)
    if checkpoint is not None and checkpoint.exists():
        print(f"bpnet: {checkpoint} holds the last checkpoint; the same command resumes it",
              file=sys.stderr)
    return EXIT_INTERRUPTED


def _plot(history: Any, path: Path, task: _Task, net: Any, has_validation: bool) -> None:
    """Learning curves, and the decision regions of a data set with two features."""
    from matplotlib.figure import Figure

    from .. import plot

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
    plot.save(fig, path)


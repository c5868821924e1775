"""The ``bpnet`` command: ``train``, ``gradcheck`` and ``bench``.

::

    bpnet train --dataset digits --hidden 128 --activation relu --optimizer adam \\
        --epochs 40 --batch-size 32 --backend auto --dtype float32 \\
        --save model.npz --plot curves.png
    bpnet gradcheck --layers 4,8,3 --activation tanh --loss cross_entropy
    bpnet bench ...            (see bpnet.bench)

Every mistake (unknown dataset, missing or corrupt file, bad option, a backend
without its device, an output path that cannot be written) is one line on
stderr and exit status 2, found before any training; a training run that
diverges, or ends with a non-finite or absurd loss, exits with 1; Ctrl-C with
130, after saving the last completed step when ``--save`` was given.  Each
bundled data set has its own defaults (``bpnet train --help`` lists them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from ._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Parser, UsageError
from .gradcheck import add_gradcheck
from .train import add_train

__all__ = ["build_parser", "main"]


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
    parser = Parser(prog="bpnet", description="Multilayer perceptrons trained by "
                     "backpropagation on NumPy, CuPy, PyTorch, JAX, Dask or array-api-strict.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"bpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train(sub)
    add_gradcheck(sub)
    _add_bench(sub, load="bench" in argv[:1])
    return parser


def _import_bench() -> None:
    try:
        importlib.import_module("bpnet.bench")
    except ImportError as exc:
        raise UsageError(f"bpnet bench is not available: {exc}") from None


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
    except UsageError as exc:
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


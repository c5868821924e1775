"""What the ``bpnet`` subcommands share: exit statuses, the one-line usage error,
argument types, and the checks of output paths made before any work."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Parser", "UsageError"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A command-line mistake, reported as one line."""

    def __init__(self, message: str, prog: str = "bpnet") -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    # argparse prints the whole usage block and exits; one line is kinder.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


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


def _batch_size(text: str) -> int | str:
    """A positive int, ``"auto"``, or 0 for the full batch (None stays "not given")."""
    if text.lower() in ("full", "none", "0", "auto"):
        return "auto" if text.lower() == "auto" else 0
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, 'auto' or 'full', got {text!r}")
    return value


def _activations(text: str) -> str | list[str]:
    """One activation for every hidden layer, or ``relu,tanh``: one per layer."""
    names = [part.strip() for part in text.split(",")]
    return names[0] if len(names) == 1 else names


def _plain(rst: str) -> str:
    """reStructuredText from a docstring as plain text for ``--help``."""
    return re.sub(r":\w+:`([^`]*)`", r"\1", rst).replace("``", "")


def _check_output_path(option: str, path: Path | None) -> None:
    """Refuse, before any training, an output path that cannot be written: a
    missing directory, a directory where the file should be, a directory where
    no file can be created (checked by creating and removing one)."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {str(path)!r}: directory {str(path.parent)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r}: cannot create files in "
                          f"{str(path.parent)!r} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _check_plot_path(option: str, path: Path | None) -> None:
    """Refuse, before any work, a plot that could not be written: a missing
    directory, no matplotlib, or an extension that names no format it writes."""
    if path is None:
        return
    _check_output_path(option, path)
    try:
        import matplotlib  # noqa: F401  (first: bpnet.plot may be loaded already)

        from .. import plot
    except ImportError:
        raise UsageError(f"{option} needs matplotlib: pip install 'bpnet[plot]'") from None
    try:
        plot.check_format(path)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}") from None


"""Figures of a training run, of a model on 2-D data and of the error of
numerical differentiation against its step (matplotlib: ``pip install
'bpnet[plot]'``).

- :func:`learning_curves`: loss (and accuracy) per epoch from a
  :class:`bpnet.History`;
- :func:`decision_regions`: what a network with two inputs predicts over the
  plane, with the data on top;
- :func:`eps_sweep`: the V-shaped curves of :func:`bpnet.gradcheck.eps_sweep`.

Each returns a :class:`matplotlib.figure.Figure` built without ``pyplot``: no
display and no global figure list are involved, so it works the same in a
script, on a server and in a notebook (where the figure shows itself).  Save it
with ``fig.savefig("curves.pdf")``: the extension names the format.  Each also
takes ``ax=`` (or ``axes=``) to draw into axes of a figure of your own.

``import bpnet`` does not import this module (nor matplotlib); ``import
bpnet.plot`` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - exercised without matplotlib only
    raise ImportError("bpnet.plot needs matplotlib, which is not installed: "
                      "pip install 'bpnet[plot]'") from exc

from ._typing import ArrayLike
from .backend import to_numpy
from .gradcheck import EpsSweep
from .gradcheck import eps_sweep as _sweep

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .model import MLP
    from .train import History

__all__ = ["check_format", "decision_regions", "eps_sweep", "learning_curves", "save"]

#: Colours of the methods in :func:`eps_sweep` and of the classes in
#: :func:`decision_regions` (matplotlib's default cycle).
_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
_METHOD_COLORS = {"forward": "C1", "central": "C0", "complex_step": "C2"}
_METHOD_LABELS = {"forward": "forward differences, O(eps)",
                  "central": "central differences, O(eps²)",
                  "complex_step": "complex step, O(eps²), no cancellation"}


def _new_axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def learning_curves(
    history: History, *, axes: Sequence[Axes] | None = None, validation_label: str = "validation",
    title: str | None = None,
) -> Figure:
    """Loss per epoch (training and validation), and accuracy per epoch when
    the history has any.

    Parameters
    ----------
    history : History
        From :meth:`bpnet.MLP.fit` (anything with ``loss``, ``val_loss`` and
        ``val_accuracy`` lists works).
    axes : sequence of matplotlib Axes, optional
        Where to draw: the loss on the first, the accuracy on the second (if
        given).  By default a new figure with one panel, or two when there is
        an accuracy to show.
    validation_label : str, default "validation"
        Legend of the held-out curves (the CLI says "test" when it tracks the
        test set).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When the history has no epoch.
    """
    loss = np.asarray(history.loss, dtype=float)
    if loss.size == 0:
        raise ValueError("the history has no epochs to plot (was the network trained?)")
    val_loss = np.asarray(getattr(history, "val_loss", []) or [], dtype=float)
    accuracies = [(label, np.asarray(values, dtype=float))
                  for label, values in (("train", getattr(history, "accuracy", None)),
                                        (validation_label, getattr(history, "val_accuracy", None)))
                  if values is not None and len(values)]
    if axes is None:
        panels = 2 if accuracies else 1
        fig = Figure(figsize=(5.0 * panels, 4.0), layout="constrained")
        axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    unit = "iteration" if getattr(history, "optimizer", "") == "lbfgs" else "epoch"
    epochs = np.arange(1, loss.size + 1)
    ax = axes[0]
    ax.plot(epochs, loss, label="train")
    if val_loss.size:
        ax.plot(np.arange(1, val_loss.size + 1), val_loss, label=validation_label)
    ax.set_xlabel(unit)
    ax.set_ylabel("loss")
    if np.all(loss > 0) and np.all(val_loss > 0):
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if accuracies and len(axes) > 1:
        ax = axes[1]
        for i, (label, values) in enumerate(accuracies):
            ax.plot(np.arange(1, values.size + 1), 100 * values, label=label, color=f"C{i}")
        ax.set_xlabel(unit)
        ax.set_ylabel("accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig = axes[0].figure  # type: ignore[assignment]
    if title:
        fig.suptitle(title)
    return fig


def _class_of(y: np.ndarray) -> np.ndarray:
    """Class indices of labels (N,), signs +-1 (N,) or (N, 1), or one-hot (N, k)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    y = y.reshape(-1)
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isin(y, (-1.0, 1.0))) and np.any(y < 0):
        return (y > 0).astype(int)
    return np.rint(y).astype(int)


def decision_regions(
    net: MLP, X: ArrayLike, y: ArrayLike | None = None, *, ax: Axes | None = None,
    resolution: int = 200,
    title: str | None = None,
) -> Figure:
    """What ``net`` predicts over the plane of its two inputs, with the samples
    ``X`` on top (coloured by ``y`` when given).

    Classifiers (``cross_entropy``: regions of the most probable class;
    ``binary_cross_entropy`` and ``logistic`` with one output: the score, with
    the decision boundary drawn where the probability is 1/2 or the output 0)
    and one-output regression (the predicted value) are drawn.

    Parameters
    ----------
    net : MLP
        With two input features.
    X : array (N, 2)
    y : array, optional
        Labels (N,), signs +-1, 0/1 targets or one-hot (N, k).
    ax : matplotlib Axes, optional
    resolution : int, default 200
        Grid points along each axis.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When the network does not take two inputs, or ``X`` is not (N, 2).
    """
    if net.n_features != 2:
        raise ValueError(f"decision_regions needs a network with 2 inputs; this one has "
                         f"{net.n_features}")
    points = np.asarray(to_numpy(X), dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"X must have shape (n_samples, 2), got {points.shape}")
    if not (isinstance(resolution, int) and resolution >= 2):
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    G0, G1 = np.meshgrid(g0, g1)
    grid = np.column_stack([G0.ravel(), G1.ravel()])
    out = np.asarray(to_numpy(net.predict(grid)), dtype=float)
    ax = _new_axes(ax, (5.5, 4.5))
    k = out.shape[1]
    if net.loss == "cross_entropy" and k > 1:
        cls = np.argmax(out, axis=1).reshape(G0.shape)
        cmap = ListedColormap([_COLORS[c % len(_COLORS)] for c in range(k)])
        ax.contourf(G0, G1, cls, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.3)
        ax.contour(G0, G1, cls, levels=np.arange(k) + 0.5, colors="k", linewidths=0.6)
    else:
        score = out[:, 0].reshape(G0.shape)
        filled = ax.contourf(G0, G1, score, levels=20, cmap="RdBu_r", alpha=0.55)
        ax.figure.colorbar(filled, ax=ax, label={"binary_cross_entropy": "P(class 1)"}.get(
            net.loss, "network output"))
        boundary = {"binary_cross_entropy": 0.5, "logistic": 0.0}.get(net.loss)
        if boundary is not None and score.min() < boundary < score.max():
            ax.contour(G0, G1, score, levels=[boundary], colors="k", linewidths=1.2)
    if y is not None:
        target = np.asarray(to_numpy(y))
        if net.loss == "mse" and np.issubdtype(target.dtype, np.floating) and not np.all(
                np.isin(target, (-1.0, 0.0, 1.0))):
            ax.scatter(points[:, 0], points[:, 1], c=target.reshape(points.shape[0], -1)[:, 0],
                       cmap="RdBu_r", edgecolors="k", linewidths=0.5, s=18)
        else:
            cls = _class_of(target)
            colors = [_COLORS[c % len(_COLORS)] for c in cls]
            ax.scatter(points[:, 0], points[:, 1], c=colors, edgecolors="k", linewidths=0.5,
                       s=18 if points.shape[0] > 50 else 40)
    else:
        ax.scatter(points[:, 0], points[:, 1], c="k", s=10)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title or f"{'-'.join(map(str, net.layer_sizes))} {net.activation}, {net.loss}")
    return ax.figure  # type: ignore[return-value]


def eps_sweep(
    sweep: EpsSweep | MLP, X: ArrayLike | None = None, Y: ArrayLike | None = None, *,
    ax: Axes | None = None, **options: Any,
) -> Figure:
    """Relative error of numerical differentiation against backprop as the step
    shrinks, log-log: one curve per method and dtype.

    Truncation error falls with the step (slope 1 for forward, 2 for central
    differences and the complex step) until rounding error, ``eps_mach / eps``
    from subtracting nearly equal losses, takes over and rises: the V.  The
    complex step subtracts nothing and stays flat at rounding level.  Dotted
    lines mark the theory's best steps, ``eps_mach^(1/2)`` (forward) and
    ``eps_mach^(1/3)`` (central).

    Parameters
    ----------
    sweep : EpsSweep or MLP
        A result of :func:`bpnet.gradcheck.eps_sweep`, or a network, which is
        then swept on ``X``, ``Y`` with ``options`` (``methods``, ``dtypes``,
        ``eps``).
    X, Y : arrays, optional
        The data, when ``sweep`` is a network.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(sweep, EpsSweep):
        if X is None or Y is None:
            raise TypeError("eps_sweep takes an EpsSweep, or a network with X and Y")
        sweep = _sweep(sweep, X, Y, **options)
    elif options or X is not None or Y is not None:
        raise TypeError("X, Y and sweep options go with a network, not with an EpsSweep")
    ax = _new_axes(ax, (7.0, 5.0))
    tiny = 1e-17  # an error of exactly 0 still needs a place on a log axis
    for (method, dtype), err in sweep.errors.items():
        color = _METHOD_COLORS.get(method, "C4")
        style = "-" if dtype == "float64" else "--"
        ax.loglog(sweep.eps, np.maximum(err, tiny), style, marker="o" if dtype == "float64"
                  else "s", markersize=3.5, color=color,
                  label=f"{_METHOD_LABELS.get(method, method)}, {dtype}")
        if (method, dtype) in sweep.theory:
            ax.axvline(sweep.theory[method, dtype], color=color, linestyle=":", linewidth=1,
                       alpha=0.7)
    ax.set_xlabel("step eps")
    ax.set_ylabel("relative error against backprop")
    ax.set_title(f"Error against step: {sweep.title}\n"
                 "(dotted: theory's best step, eps_mach^(1/2) forward, eps_mach^(1/3) central)",
                 fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    return ax.figure  # type: ignore[return-value]


def check_format(path: str | os.PathLike) -> None:
    """Refuse a file name whose extension names no format matplotlib writes.

    Raises
    ------
    ValueError
        Naming the file and the formats there are.
    """
    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        others = ", ".join(sorted(set(formats) - {"png", "pdf", "svg"}))
        raise ValueError(
            f"{str(path)!r}: "
            + (f"unknown image format '.{suffix}'" if suffix else "no file extension")
            + f"; expected .png, .pdf or .svg (or {others})")


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """Write ``fig`` in the format ``path``'s extension names, atomically (a
    temporary file beside it, then a rename)."""
    path = Path(path)
    check_format(path)
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.stem}.tmp{suffix}")
    try:
        fig.savefig(tmp, format=suffix.lstrip("."), dpi=dpi)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

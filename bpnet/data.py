"""Datasets and preprocessing, as NumPy arrays on the host.

The networks move what they are given to their backend once, so everything
here stays plain NumPy:

* :func:`xor` (the smallest problem a network without a hidden layer cannot
  solve) and :func:`times_table` (a smooth regression small enough for L-BFGS);
* :func:`digits`: scikit-learn's bundled 8x8 handwritten digits (no download),
  split into train and test sets, standardized or PCA-whitened;
* :func:`moons` and :func:`two_spirals`: 2-D points with labels in {-1, +1}
  for the logistic loss, which no linear classifier separates;
* :func:`load_idx` and :func:`mnist`: IDX files such as MNIST or Fashion-MNIST
  that a user downloaded, plain or gzipped;
* :func:`one_hot`, :func:`standardize`, :func:`pca_whiten`, :func:`train_test_split`;
* :func:`load`: any of them by name (``"digits"``, ``"xor"``, ``"times-table"``,
  ``"moons"``, ``"spirals"``, ``"mnist"``), split as ``bpnet train`` uses it;
  :func:`info` says what each is.  Names are the command line's, and ``_`` works
  for ``-`` (``times_table``), as do the functions' names (``two_spirals``).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._typing import ArrayLike
from .idx import load_idx

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "Split",
    "dataset_name",
    "digits",
    "info",
    "load",
    "load_idx",
    "mnist",
    "moons",
    "one_hot",
    "pca_whiten",
    "standardize",
    "times_table",
    "train_test_split",
    "two_spirals",
    "xor",
]

class Split(NamedTuple):
    """A train/test split; unpacks in scikit-learn's order
    ``X_train, X_test, y_train, y_test``.  From :func:`load`, ``X_test`` and
    ``y_test`` are None for a data set with no held-out split."""

    X_train: np.ndarray
    X_test: np.ndarray | None
    y_train: np.ndarray
    y_test: np.ndarray | None


class DatasetInfo(NamedTuple):
    """What one data set of :func:`load` is: its ``name`` (as :func:`load` and
    ``bpnet train --dataset`` take it), a ``description``, its ``targets``
    (``"labels"``: integer classes, ``"sign"``: -1/+1, ``"real"``), the ``loss``
    they call for, whether it has a ``held_out`` test set (else ``X_test`` is
    None), and other names it answers to (``aliases``; ``_`` works for ``-``)."""

    name: str
    description: str
    targets: str
    loss: str
    held_out: bool
    aliases: tuple[str, ...] = ()


_INFO = (
    DatasetInfo("digits", "scikit-learn's 8x8 handwritten digits, 1,797 images, 10 classes, "
                "standardized", "labels", "cross_entropy", True),
    DatasetInfo("xor", "the four points of XOR, labels 0/1", "labels", "cross_entropy", False),
    DatasetInfo("times-table", "i * j for i, j in 0..10 (121 rows), seed 000's regression",
                "real", "mse", False),
    DatasetInfo("moons", "400 points on two interleaving half circles, labels -1/+1", "sign",
                "logistic", True),
    DatasetInfo("spirals", "400 points on two interleaved spirals, labels -1/+1 (seed 004)",
                "sign", "logistic", True, ("two-spirals",)),
    DatasetInfo("mnist", "MNIST-style IDX files you downloaded (train and t10k), 784 pixels "
                "in [0, 1]", "labels", "cross_entropy", True),
)

#: The built-in data sets by name, in the order ``bpnet train --help`` lists them.
DATASETS: dict[str, DatasetInfo] = {d.name: d for d in _INFO}
_ALIASES = {alias: d.name for d in _INFO for alias in d.aliases}

#: Points in the moons and spirals data sets (train and test together).
_POINTS = 400


def dataset_name(name: str) -> str:
    """The canonical name of a data set (``"times_table"`` -> ``"times-table"``,
    ``"two_spirals"`` -> ``"spirals"``); a ``ValueError`` lists the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return key


def info(name: str) -> DatasetInfo:
    """What data set ``name`` is (see :class:`DatasetInfo`)."""
    return DATASETS[dataset_name(name)]


def load(name: str, *, test_size: float | None = None, seed: int | None = 0,
         data_dir: str | os.PathLike | None = None) -> Split:
    """A built-in data set by name, as ``bpnet train --dataset NAME`` trains on it.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (or an alias: see :func:`dataset_name`).
    test_size : float in (0, 1), optional
        The held-out fraction for ``digits`` (stratified), ``moons`` and
        ``spirals`` (fresh points from another seed); default 0.25.  ``xor`` and
        ``times-table`` have no held-out split and ``mnist`` its own (``t10k``),
        so they refuse it.
    seed : int or None, default 0
        Seed of the split (digits) or of the points (moons, spirals: the test
        points use ``seed + 1``).
    data_dir : path, optional
        The directory of the IDX files, for ``mnist`` only.

    Returns
    -------
    Split
        ``X_train, X_test, y_train, y_test``; the test arrays are None where
        :attr:`DatasetInfo.held_out` is False.  Targets are as
        :attr:`DatasetInfo.targets` says: int64 labels, float64 ±1, or float64.
    """
    key = dataset_name(name)
    if test_size is not None and key in ("xor", "times-table", "mnist"):
        why = "its own t10k test set" if key == "mnist" else "no held-out split"
        raise ValueError(f"dataset {key!r} has {why}; test_size does not apply to it")
    fraction = 0.25 if test_size is None else _check_fraction(test_size)
    if data_dir is not None and key != "mnist":
        raise ValueError(f"data_dir is for 'mnist' only, not {key!r}")
    if key == "digits":
        return digits(test_size=fraction, seed=seed)
    if key == "mnist":
        if data_dir is None:
            raise ValueError("dataset 'mnist' reads IDX files you downloaded: pass data_dir="
                             "the directory holding train-images-idx3-ubyte[.gz] and the rest")
        X_train, y_train = mnist(data_dir, "train")
        X_test, y_test = mnist(data_dir, "t10k")
        return Split(X_train, X_test, y_train, y_test)
    if key == "xor":
        X, y = xor()
        return Split(X, None, y.astype(np.int64), None)
    if key == "times-table":
        X, y = times_table()
        return Split(X, None, y, None)
    make = moons if key == "moons" else two_spirals
    n_test = max(2, round(_POINTS * fraction))
    X, y = make(_POINTS - n_test, seed=seed)
    X_test, y_test = make(n_test, seed=None if seed is None else seed + 1)
    return Split(X, X_test, y, y_test)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int | None:
    if seed is not None:
        _check_int("seed", seed, 0)
    return seed


def _check_fraction(test_size: Any) -> float:
    if (isinstance(test_size, bool) or not isinstance(test_size, numbers.Real)
            or not 0 < test_size < 1):  # type: ignore[operator]
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    return float(test_size)


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:  # type: ignore[operator]
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    return float(noise)


# --- toy problems -------------------------------------------------------------------


def xor(*, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The four points of XOR.

    Parameters
    ----------
    signed : bool, default False
        ``False``: inputs and targets in {0, 1}.  ``True``: inputs and targets
        in {-1, +1}, which suits a tanh output (its range is (-1, 1)).

    Returns
    -------
    X : ndarray (4, 2) float64
    y : ndarray (4,) float64
        1 where exactly one input is "on".
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.float64)
    if signed:
        return 2 * X - 1, 2 * y - 1
    return X, y


def times_table(n: int = 10, *, repeat: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The times table: inputs ``(i, j)`` for i, j in 0..n, target ``i * j``.

    Parameters
    ----------
    n : int, default 10
        Largest factor.
    repeat : int, default 1
        How many copies of every row (a mean loss does not change with it;
        repeated rows only make an epoch longer).

    Returns
    -------
    X : ndarray ((n+1)^2 * repeat, 2) float64
        Rows ``(i, j)``, i slowest.
    y : ndarray ((n+1)^2 * repeat,) float64
    """
    n = _check_int("n", n, 1)
    repeat = _check_int("repeat", repeat, 1)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    X = np.stack([i.ravel(), j.ravel()], axis=1).astype(np.float64)
    X = np.repeat(X, repeat, axis=0)
    return X, X[:, 0] * X[:, 1]


def moons(n_samples: int = 200, *, noise: float = 0.1,
          seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles with labels in {-1, +1}.

    Returns
    -------
    X : ndarray (n_samples, 2) float64
    y : ndarray (n_samples,) float64 in {-1, +1}
    """
    n_samples = _check_int("n_samples", n_samples, 2)
    noise = _check_noise(noise)
    rng = np.random.default_rng(_check_seed(seed))
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.concatenate([
        np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
        np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1),
    ])
    y = np.concatenate([np.ones(n_out), -np.ones(n_in)])
    X = X + noise * rng.standard_normal(X.shape)
    order = rng.permutation(n_samples)
    return X[order], y[order]


def two_spirals(n_samples: int = 400, *, turns: float = 1.5, noise: float = 0.05,
                seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane, labels in {-1, +1}.

    Each spiral winds ``turns`` times around the origin; the second is the
    first turned by 180 degrees.  Points lie within radius about 1.

    Returns
    -------
    X : ndarray (n_samples, 2) float64
    y : ndarray (n_samples,) float64 in {-1, +1}
    """
    n_samples = _check_int("n_samples", n_samples, 2)
    noise = _check_noise(noise)
    if isinstance(turns, bool) or not isinstance(turns, numbers.Real) or not turns > 0:
        raise ValueError(f"turns must be a number > 0, got {turns!r}")
    rng = np.random.default_rng(_check_seed(seed))
    n_a = n_samples // 2
    n_b = n_samples - n_a
    parts, labels = [], []
    for count, sign in ((n_a, 1.0), (n_b, -1.0)):
        r = np.sqrt(rng.uniform(0.0, 1.0, count)) * 0.95 + 0.05  # uniform along the arc
        theta = 2 * np.pi * turns * r
        pts = sign * np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
        parts.append(pts + noise * rng.standard_normal(pts.shape))
        labels.append(np.full(count, sign))
    X, y = np.concatenate(parts), np.concatenate(labels)
    order = rng.permutation(n_samples)
    return X[order], y[order]


# --- preprocessing ----------------------------------------------------------------------


def _as_2d(name: str, X: Any) -> np.ndarray:
    arr = np.asarray(X)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features) with samples, got "
                         f"shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def one_hot(labels: ArrayLike, k: int | None = None, negative: float = 0.0) -> np.ndarray:
    """Integer labels as rows of a (N, k) indicator matrix.

    Parameters
    ----------
    labels : array-like (N,) of ints in [0, k)
    k : int, optional
        Number of classes; ``max(labels) + 1`` by default.
    negative : float, default 0
        Value of the off entries: ``-1`` gives a ±1 coding, for tanh outputs.

    Returns
    -------
    ndarray (N, k) float64
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
            raise ValueError("labels must be integers")
    y = y.astype(np.int64)
    if k is None:
        k = int(y.max()) + 1 if y.size else 0
    k = _check_int("k", k, 1)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got values from {y.min()} to {y.max()}")
    out = np.full((y.shape[0], k), float(negative))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def standardize(X: ArrayLike, *, mean: ArrayLike | None = None,
                std: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature.

    Fit on the training set, then apply its ``mean`` and ``std`` to the test
    set.  Constant features (std 0) are only centred.

    Parameters
    ----------
    X : array-like (N, d)
    mean, std : array-like (d,), optional
        Statistics to use instead of those of ``X``.

    Returns
    -------
    Z : ndarray (N, d) float64
    mean : ndarray (d,)
    std : ndarray (d,)
        With zeros replaced by ones.
    """
    X = _as_2d("X", X)
    mean = X.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
    std = X.std(axis=0) if std is None else np.asarray(std, dtype=np.float64)
    if mean.shape != (X.shape[1],) or std.shape != (X.shape[1],):
        raise ValueError(f"mean and std must have shape ({X.shape[1]},), got {mean.shape} "
                         f"and {std.shape}")
    std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, mean, std


_standardize = standardize  # digits() has an argument of the same name


def pca_whiten(X_train: ArrayLike, *others: ArrayLike,
               n_components: int | None = None) -> tuple[np.ndarray, ...]:
    """Project onto principal components and scale each to unit variance
    (PCA whitening: decorrelated inputs of equal scale, which speeds up plain
    gradient descent).

    The components are fitted on ``X_train`` only, then applied to ``others``.

    Parameters
    ----------
    X_train : array-like (N, d)
    *others : array-like (M, d)
    n_components : int, optional
        Components to keep; default: every component with non-negligible
        variance.

    Returns
    -------
    tuple of ndarray
        ``(Z_train, *Z_others)``, each (rows, n_components).
    """
    X = _as_2d("X_train", X_train)
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s**2 / max(X.shape[0] - 1, 1)
    keep = int(np.sum(var > var[0] * 1e-10)) if var.size and var[0] > 0 else 0
    if n_components is not None:
        n_components = _check_int("n_components", n_components, 1)
        if n_components > keep:
            raise ValueError(f"n_components={n_components} but X_train has only {keep} "
                             "components with non-zero variance")
        keep = n_components
    if keep == 0:
        raise ValueError("X_train has no variance to whiten")
    scale = vt[:keep].T / np.sqrt(var[:keep])
    out = [(X - mean) @ scale]
    for i, other in enumerate(others):
        Z = _as_2d(f"others[{i}]", other)
        if Z.shape[1] != X.shape[1]:
            raise ValueError(f"others[{i}] has {Z.shape[1]} features, X_train {X.shape[1]}")
        out.append((Z - mean) @ scale)
    return tuple(out)


def train_test_split(X: ArrayLike, y: ArrayLike, *, test_size: float = 0.25, seed: int | None = 0,
                     stratify: bool = True) -> Split:
    """Split (X, y) into train and test sets with a seeded permutation.

    Parameters
    ----------
    X : array-like (N, ...)
    y : array-like (N, ...)
    test_size : float in (0, 1)
        Fraction of the samples in the test set.
    seed : int or None
    stratify : bool, default True
        Keep each class's share in both sets (``y`` must then be labels (N,)).

    Returns
    -------
    Split
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
    test_size = _check_fraction(test_size)
    rng = np.random.default_rng(_check_seed(seed))
    n = X.shape[0]
    if stratify and y.ndim == 1:
        test = []
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            test.append(idx[: round(test_size * idx.size)])
        test_idx = np.sort(np.concatenate(test))
    else:
        test_idx = np.sort(rng.permutation(n)[: round(test_size * n)])
    if test_idx.size == 0 or test_idx.size == n:
        raise ValueError(f"test_size={test_size} leaves an empty train or test set for "
                         f"{n} samples")
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~mask))
    test_idx = rng.permutation(test_idx)
    return Split(X[train_idx], X[test_idx], y[train_idx], y[test_idx])


def digits(*, test_size: float = 0.25, standardize: bool = True, whiten: bool = False,
           n_components: int | None = None, seed: int | None = 0) -> Split:
    """scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels, 10
    classes), split into train and test sets.

    Parameters
    ----------
    test_size : float in (0, 1), default 0.25
        Stratified by class.
    standardize : bool, default True
        Scale every pixel to zero mean and unit variance (statistics of the
        training set).
    whiten : bool, default False
        PCA-whiten instead, keeping ``n_components`` components (default all
        with non-zero variance).
    n_components : int, optional
        With ``whiten``.
    seed : int or None, default 0
        Seed of the split.

    Returns
    -------
    Split
        ``X_*`` float64 (n, 64) (or (n, n_components)), ``y_*`` int64 labels 0..9.

    Raises
    ------
    ImportError
        When scikit-learn (which ships the data) is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "digits() reads the data set bundled with scikit-learn, which is not installed; "
            "install it with: pip install 'bpnet[train]'"
        ) from exc
    if n_components is not None and not whiten:
        raise ValueError("n_components only applies with whiten=True")
    data = load_digits()
    split = train_test_split(data.data.astype(np.float64), data.target.astype(np.int64),
                             test_size=test_size, seed=seed)
    X_train, X_test = split.X_train, split.X_test
    if whiten:
        X_train, X_test = pca_whiten(X_train, X_test, n_components=n_components)  # type: ignore[arg-type]
    elif standardize:
        X_train, mean, std = _standardize(X_train)
        X_test, _, _ = _standardize(X_test, mean=mean, std=std)  # type: ignore[arg-type]
    return Split(X_train, X_test, split.y_train, split.y_test)


# --- MNIST and friends (IDX files: bpnet.idx) ----------------------------------------


def _find(directory: Path, stem: str) -> Path:
    # Mirrors differ: "train-images-idx3-ubyte", "train-images.idx3-ubyte", either gzipped.
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no {stem}[.gz] in {str(directory)!r}; download the IDX files (MNIST, "
        "Fashion-MNIST...) there first"
    )


def mnist(directory: str | os.PathLike, kind: str = "train", *,
          normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from MNIST-style IDX files in ``directory``.

    Reads ``{kind}-images-idx3-ubyte`` and ``{kind}-labels-idx1-ubyte``
    (optionally ``.gz``, or with ``.idx`` instead of ``-idx``), which is how
    MNIST, Fashion-MNIST and KMNIST are distributed.

    Parameters
    ----------
    directory : str or path-like
    kind : {"train", "t10k"}
    normalize : bool, default True
        Scale the pixels to [0, 1] as float32; else keep uint8.

    Returns
    -------
    X : ndarray (N, rows * cols)
        One flattened image per row.
    y : ndarray (N,) int64
    """
    if kind not in ("train", "t10k"):
        raise ValueError(f"kind must be 'train' or 't10k', got {kind!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory {str(directory)!r} does not exist")
    images = load_idx(_find(directory, f"{kind}-images-idx3-ubyte"))
    labels = load_idx(_find(directory, f"{kind}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"expected images of 3 dimensions and labels of 1, got shapes "
                         f"{images.shape} and {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels in "
                         f"{str(directory)!r}")
    X = images.reshape(images.shape[0], -1)
    if normalize:
        X = X.astype(np.float32) / 255.0
    return X, labels.astype(np.int64)

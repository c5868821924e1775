"""The configurations the benchmarks run, and the data every contender shares.

- :class:`StepConfig` and :data:`STEP_CONFIGS`: the networks and batches of the
  training-step table;
- :data:`FD_SIZES` and :data:`FD_BATCH`: the networks of the gradient-cost
  table;
- :func:`step_problem` and :func:`gradient_problem`: initial weights and one
  batch, drawn on the host from fixed seeds, so that every contender (bpnet on
  any backend, and each peer) starts from the very same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._typing import Arch, Array, Params
from ..activations import get_activation
from ..backend import from_host, get_namespace
from ..losses import get_loss, output_activation
from ..params import Layout, init_params_host

__all__ = [
    "FD_BATCH",
    "FD_SIZES",
    "LR",
    "SEED",
    "STEP_CONFIGS",
    "GradientProblem",
    "StepConfig",
    "StepProblem",
    "gradient_problem",
    "step_problem",
]

LR = 0.01  # small enough that every peer stays finite over thousands of steps
SEED = 0


@dataclass(frozen=True)
class StepConfig:
    """One training-step configuration of the throughput table.

    Attributes
    ----------
    name : str
        Key in :data:`STEP_CONFIGS` (``--configs``).
    sizes : tuple of int
        Units per layer, input first.
    batch : int
        Samples per step.
    dtype : {"float32", "float64"}
    loss : {"cross_entropy", "binary_cross_entropy"}
        Binary cross-entropy needs one output.
    activation : str
        Of the hidden layers.
    """

    name: str
    sizes: tuple[int, ...]
    batch: int
    dtype: str
    loss: str = "cross_entropy"
    activation: str = "relu"

    @property
    def label(self) -> str:
        """``"784-256-256-10 b256 f32"``."""
        return f"{'-'.join(map(str, self.sizes))} b{self.batch} f{self.dtype[5:]}"

    @property
    def n_params(self) -> int:
        return Layout.from_sizes(self.sizes).n_params

    @property
    def arch(self) -> Arch:
        """What bpnet's kernels need to know about this network."""
        return _arch(self.sizes, self.activation, self.loss)


def _arch(sizes: Sequence[int], activation: str, loss: str) -> Arch:
    loss_obj = get_loss(loss)
    hidden = (get_activation(activation),) * (len(sizes) - 2)
    return Arch(hidden, output_activation(loss_obj, None), loss_obj)


#: The four rows: digits-sized, MNIST-sized, GEMM-bound, and a tiny net where the
#: per-step overhead is all there is.
STEP_CONFIGS: dict[str, StepConfig] = {
    c.name: c
    for c in (
        StepConfig("digits", (64, 128, 10), 64, "float64"),
        StepConfig("mnist", (784, 256, 256, 10), 256, "float32"),
        StepConfig("gemm", (1024, 1024, 1024, 10), 1024, "float32"),
        StepConfig("tiny", (2, 5, 1), 4, "float64", loss="binary_cross_entropy"),
    )
}

#: Networks of the gradient-cost experiment, P from 123 to 102,538.
FD_SIZES: tuple[tuple[int, ...], ...] = (
    (8, 10, 3),
    (16, 32, 10),
    (32, 64, 10),
    (64, 128, 10),
    (128, 256, 10),
    (256, 384, 10),
)
FD_BATCH = 64


@dataclass
class StepProblem:
    """Initial weights and one batch, on the host, identical for all contenders.

    Attributes
    ----------
    cfg : StepConfig
    params : list of (W, b) numpy arrays in ``cfg.dtype``
        ``W_l`` (n_{l-1}, n_l), ``b_l`` (n_l,); He initialisation for the ReLU
        layers, Glorot for the output, from :data:`SEED` (as ``MLP(seed=0)``).
    x : numpy.ndarray (N, n_0)
    labels : numpy.ndarray (N,)
        Integer classes (0/1 for binary cross-entropy).
    y : numpy.ndarray (N, n_L)
        What bpnet's loss takes: one-hot, or 0/1 for binary cross-entropy.
    """

    cfg: StepConfig
    params: list[tuple[np.ndarray, np.ndarray]]
    x: np.ndarray
    labels: np.ndarray
    y: np.ndarray


def step_problem(cfg: StepConfig, seed: int = SEED) -> StepProblem:
    """The weights and batch of ``cfg`` (see :class:`StepProblem`).

    Raises
    ------
    ValueError
        For a loss other than cross-entropy or one-output binary cross-entropy.
    """
    inits = [get_activation(cfg.activation).init] * (len(cfg.sizes) - 2) + ["glorot"]
    dt = np.dtype(cfg.dtype)
    params = [(W.astype(dt), b.astype(dt)) for W, b in init_params_host(cfg.sizes, inits, seed)]
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((cfg.batch, cfg.sizes[0])).astype(dt)
    k = cfg.sizes[-1]
    if cfg.loss == "cross_entropy":
        labels = rng.integers(0, k, size=cfg.batch)
        y = np.eye(k, dtype=dt)[labels]
    elif cfg.loss == "binary_cross_entropy" and k == 1:
        labels = rng.integers(0, 2, size=cfg.batch)
        y = labels.astype(dt)[:, None]
    else:
        raise ValueError(f"step benchmarks take cross_entropy or 1-output binary_cross_entropy, "
                         f"got {cfg.loss!r} with {k} outputs")
    return StepProblem(cfg, params, x, labels, y)


class GradientProblem(NamedTuple):
    """A network and a batch of the gradient-cost table, on a backend.

    Attributes
    ----------
    params : list of (W, b)
        Float64, Glorot initialisation (tanh hidden layers), from :data:`SEED`.
    x : array (FD_BATCH, n_0)
    y : array (FD_BATCH, n_L)
        One-hot classes.
    arch : Arch
        Tanh hidden layers (smooth: ReLU kinks make central differences
        disagree on a few entries), softmax cross-entropy.
    """

    params: Params
    x: Array
    y: Array
    arch: Arch


def gradient_problem(sizes: Sequence[int], backend: str = "numpy", device: Any = None,
                     batch: int = FD_BATCH) -> GradientProblem:
    """The network ``sizes`` and its batch on ``backend`` (see :class:`GradientProblem`).

    On JAX, float64 needs the 64-bit mode (:func:`bpnet.bench.jax_x64`) around
    this call and every use of its result.
    """
    xp = get_namespace(backend)
    inits = ["glorot"] * (len(sizes) - 1)  # tanh hidden layers

    def put(a: np.ndarray) -> Array:
        return from_host(xp, a, device)

    params = [(put(W), put(b)) for W, b in init_params_host(sizes, inits, SEED)]
    rng = np.random.default_rng(SEED + 1)
    x = put(rng.standard_normal((batch, sizes[0])))
    y = put(np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)])
    return GradientProblem(params, x, y, _arch(sizes, "tanh", "cross_entropy"))

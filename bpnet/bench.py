"""``bpnet bench``: how much faster backpropagation is than finite differences,
and how close bpnet's training step runs to what the machine allows.

Two experiments, both measured with the interleaved median timer of
:mod:`bpnet._timing` (contenders side by side in one process, ratios of medians):

1. **Gradient cost against the number of parameters P.**  One backprop gradient
   (:func:`bpnet.kernels.loss_and_grad`) against bpnet's naive central
   differences (2P forward passes, :func:`bpnet.numerical.numerical_grad`) and
   against the batched variant (:func:`bpnet.numerical.numerical_grad_batched`),
   with the theoretical ratio ``2P * t_forward / t_backprop`` beside the
   measured one.  Finite differences that would run past a time cap are timed
   on a random sample of parameters and extrapolated (and say so).  Every row
   checks that the finite differences agree with backprop.  Float64, tanh
   hidden layers (smooth: ReLU kinks make central differences disagree on a
   few entries), softmax cross-entropy, batch 64.
2. **Training-step throughput.**  One step (forward, backward, SGD update) of
   bpnet (``loss_and_grad`` plus a pure SGD update over the (W, b) list) against
   a lean hand-written NumPy step (the practical ceiling for a NumPy backend),
   the step's matrix products alone (the GEMM floor), PyTorch eager autograd,
   ``jax.jit`` of a whole step and scikit-learn's ``MLPClassifier.partial_fit``,
   all from the same initial weights and data, all limited to the same number
   of threads.  Peers that are not installed are skipped with a note.

The command prints both tables, writes the raw figures as JSON and, when
matplotlib is installed, a log-log plot of time per gradient against P.

Entry points: :func:`configure_parser` and :func:`run` (the ``bpnet bench``
subcommand), :func:`main` (``python -m bpnet.bench``).  The step builders and
the experiments are public so that ``benchmarks/`` reuses them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import __version__, kernels
from ._namespace import backend_name, get_namespace, materialize, to_numpy
from ._timing import (
    blas_summary,
    cuda_device_info,
    interleaved,
    limit_threads,
    machine_info,
    paired_ratio,
    time_once,
)
from .activations import get_activation
from .losses import get_loss, output_activation
from .numerical import FLOOR, numerical_partials, numerical_partials_batched, relative_error
from .optim import SGDState, sgd_update
from .params import init_params_host, n_params, ravel

__all__ = [
    "FD_SIZES",
    "PEERS",
    "STEP_CONFIGS",
    "Step",
    "StepConfig",
    "configure_parser",
    "gradient_row",
    "jax_x64",
    "main",
    "make_step",
    "run",
    "step_rows",
]

Array = Any

LR = 0.01  # small enough that every peer stays finite over thousands of steps
_PLAIN_SGD = SGDState(0, None)  # no momentum: the state carries nothing between steps
SEED = 0


# --- configurations ----------------------------------------------------------------
@dataclass(frozen=True)
class StepConfig:
    """One training-step configuration of the throughput table."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    dtype: str
    loss: str = "cross_entropy"
    activation: str = "relu"

    @property
    def label(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} b{self.batch} f{self.dtype[5:]}"

    @property
    def n_params(self) -> int:
        return _count(self.sizes)


def _count(sizes: Sequence[int]) -> int:
    """Parameters of a network with these layer sizes."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


#: The four rows of issue 4: digits-sized, MNIST-sized, GEMM-bound, per-call overhead.
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

#: Contenders of the step table besides bpnet itself, in table order.
PEERS: tuple[str, ...] = ("lean", "gemm", "compat", "torch", "jax", "sklearn")

_PEER_LABELS = {
    "bpnet": "bpnet",
    "lean": "lean NumPy",
    "gemm": "GEMM floor",
    "compat": "bpnet via array-api-compat",
    "torch": "PyTorch eager",
    "jax": "jax.jit step",
    "sklearn": "sklearn partial_fit",
}


# --- data shared by every contender ----------------------------------------------------
@dataclass
class _Problem:
    """Initial weights and one batch, on the host, identical for all contenders."""

    cfg: StepConfig
    params: list[tuple[np.ndarray, np.ndarray]]
    x: np.ndarray  # (N, n_0)
    labels: np.ndarray  # (N,) integer classes
    y: np.ndarray  # (N, k) what bpnet's loss takes: one-hot, or 0/1 for BCE


def _problem(cfg: StepConfig, seed: int = SEED) -> _Problem:
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
    return _Problem(cfg, params, x, labels, y)


@dataclass
class Step:
    """A ready-to-time training step.

    Attributes
    ----------
    fn : callable ``() -> None``
        One training step; the contender keeps its parameters in a closure.
    first_loss : float or None
        Loss of the first step, from the common initial weights (None for
        contenders that compute no loss, or start from other weights).
    sync : callable or None
        Waits for queued device work (GPU stream, JAX dispatch).
    """

    fn: Callable[[], Any]
    first_loss: float | None = None
    sync: Callable[[], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


# --- contenders ------------------------------------------------------------------------
def _device_sync(xp: ModuleType, device: Any) -> Callable[[], Any] | None:
    """A callable that waits for the device's queued work, or None on the host."""
    name = backend_name(xp)
    if name == "cupy":
        import cupy

        return lambda: cupy.cuda.get_current_stream().synchronize()
    if name == "torch" and "cuda" in str(device):
        import torch

        return torch.cuda.synchronize
    return None


def _waiter(xp: ModuleType, device: Any) -> Callable[[Any], Any]:
    """``wait(results)`` returns once ``results`` (an array or nested
    lists/tuples of arrays) are computed: JAX blocks, Dask computes, CuPy and
    CUDA torch synchronize the device; eager host backends do nothing."""
    name = backend_name(xp)
    if name == "jax":
        import jax

        return jax.block_until_ready
    if name == "dask":
        def compute(tree: Any) -> Any:
            leaves = tree if isinstance(tree, (list, tuple)) else [tree]
            flat = [t for leaf in leaves for t in (leaf if isinstance(leaf, tuple) else (leaf,))]
            return materialize(xp, *flat)
        return compute
    sync = _device_sync(xp, device)
    return (lambda tree: sync()) if sync else (lambda tree: None)


def bpnet_step(prob: _Problem, backend: str | ModuleType = "numpy", device: Any = None,
               lr: float = LR) -> Step:
    """bpnet's step: :func:`bpnet.kernels.loss_and_grad`, then the pure SGD
    update :func:`bpnet.optim.sgd_update` of every tensor (no momentum)."""
    xp = backend if isinstance(backend, ModuleType) else get_namespace(backend)
    cfg = prob.cfg

    def put(a: np.ndarray) -> Array:
        return xp.asarray(a, device=device) if device is not None else xp.asarray(a)

    state: dict[str, Any] = {"params": [(put(W), put(b)) for W, b in prob.params]}
    x, y = put(prob.x), put(prob.y)
    hidden = [get_activation(cfg.activation)] * (len(cfg.sizes) - 2)
    loss = get_loss(cfg.loss)
    out = output_activation(loss, None)
    lazy = backend_name(xp) == "dask"

    def step() -> None:
        value, grads = kernels.loss_and_grad(state["params"], x, y, hidden, out, loss, xp=xp)
        params, _ = sgd_update(state["params"], grads, _PLAIN_SGD, lr=lr, xp=xp)
        if lazy:  # a lazy backend would otherwise only build a graph
            value, *flat = materialize(xp, value, *[t for p in params for t in p])
            params = list(zip(flat[::2], flat[1::2]))
        state["params"], state["value"] = params, value

    step()
    first = float(to_numpy(state["value"]))
    state["params"] = [(put(W), put(b)) for W, b in prob.params]
    wait = _waiter(xp, device)

    def sync() -> None:  # each step's weights depend on the last: waiting on them is enough
        wait(state["params"])

    return Step(step, first, sync, {"backend": backend_name(xp), "device": str(device)})


def lean_step(prob: _Problem, lr: float = LR) -> Step:
    """A lean hand-written NumPy step: in-place where NumPy allows it, labels
    indexed directly, no abstraction.  The practical ceiling for NumPy."""
    cfg = prob.cfg
    dt = np.dtype(cfg.dtype)
    params = [(W.copy(), b.copy()) for W, b in prob.params]
    x, labels, y = prob.x, prob.labels, prob.y
    n = x.shape[0]
    rows = np.arange(n)
    inv_n, lr_ = dt.type(1.0 / n), dt.type(lr)
    softmax = cfg.loss == "cross_entropy"

    def step() -> float:
        acts = [x]
        h = x
        for W, b in params[:-1]:
            h = h @ W
            h += b
            np.maximum(h, 0, out=h)
            acts.append(h)
        W, b = params[-1]
        z = h @ W
        z += b
        if softmax:
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            value = float(np.mean(np.log(s[:, 0]) - z[rows, labels]))
            delta = e / s
            delta[rows, labels] -= 1
        else:
            value = float(np.mean(np.logaddexp(0, z) - y * z))
            delta = 1 / (1 + np.exp(-z))
            delta -= y
        delta *= inv_n
        for l in range(len(params) - 1, -1, -1):
            W, b = params[l]
            dW = acts[l].T @ delta
            db = delta.sum(axis=0)
            if l:
                delta = delta @ W.T
                delta *= acts[l] > 0
            dW *= lr_
            W -= dW
            db *= lr_
            b -= db
        return value

    first = step()
    params[:] = [(W.copy(), b.copy()) for W, b in prob.params]
    return Step(step, first)


def gemm_floor(prob: _Problem) -> Step:
    """The step's matrix products alone, on arrays of the same shapes: L forward,
    L weight gradients, L - 1 deltas (none for the input)."""
    rng = np.random.default_rng(SEED)
    dt = np.dtype(prob.cfg.dtype)
    Ws = [W.copy() for W, _ in prob.params]
    acts = [rng.standard_normal((prob.cfg.batch, s)).astype(dt) for s in prob.cfg.sizes]

    def step() -> None:
        for l, W in enumerate(Ws):
            acts[l] @ W
        for l in range(len(Ws) - 1, -1, -1):
            acts[l].T @ acts[l + 1]
            if l:
                acts[l + 1] @ Ws[l].T

    return Step(step)


def compat_step(prob: _Problem, lr: float = LR) -> Step:
    """bpnet's step through array-api-compat's NumPy namespace instead of NumPy
    itself: what the compatibility wrappers cost."""
    import array_api_compat.numpy as compat_np

    return bpnet_step(prob, compat_np, lr=lr)


def torch_step(prob: _Problem, lr: float = LR) -> Step:
    """PyTorch eager on the CPU: ``nn.Sequential`` of ``Linear``/``ReLU``, the
    fused loss, ``loss.backward()``, ``optim.SGD``."""
    import torch

    cfg = prob.cfg
    dt = getattr(torch, cfg.dtype)
    layers: list[Any] = []
    for l, (W, b) in enumerate(prob.params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if l < len(prob.params) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    x = torch.from_numpy(prob.x)
    if cfg.loss == "cross_entropy":
        crit, t = torch.nn.CrossEntropyLoss(), torch.from_numpy(prob.labels)
    else:
        crit, t = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(prob.y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        value = crit(model(x), t)
        value.backward()
        opt.step()
        return value

    first = float(step().detach())
    return Step(step, first, info={"torch": torch.__version__,
                                   "threads": torch.get_num_threads()})


@contextlib.contextmanager
def jax_x64(enable: bool = True) -> Iterator[None]:
    """Turn JAX's 64-bit mode on for a block and back: a float64 jax step must
    be built and timed inside it (switching per call would cost more than a
    tiny step)."""
    import jax

    before = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", enable)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def jax_step(prob: _Problem, lr: float = LR) -> Step:
    """``jax.jit`` of a whole step: ``value_and_grad`` of the loss and the SGD
    update, compiled once (outside the timing: the timer's warm-up call).

    Must be built and run inside :func:`jax_x64` for float64 configurations."""
    import jax
    import jax.numpy as jnp

    cfg = prob.cfg
    softmax = cfg.loss == "cross_entropy"

    def loss_fn(params, x, y):
        h = x
        for W, b in params[:-1]:
            h = jax.nn.relu(h @ W + b)
        W, b = params[-1]
        z = h @ W + b
        if softmax:
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z), axis=1))
        return jnp.mean(jnp.sum(jax.nn.softplus(z) - y * z, axis=1))

    @jax.jit
    def update(params, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        new = [(W - lr * gW, b - lr * gb) for (W, b), (gW, gb) in zip(params, grads)]
        return new, value

    x, y = jnp.asarray(prob.x), jnp.asarray(prob.y)
    state: dict[str, Any] = {"params": [(jnp.asarray(W), jnp.asarray(b)) for W, b in prob.params]}

    def step() -> None:
        state["params"], state["value"] = update(state["params"], x, y)

    step()
    first = float(state["value"])
    state["params"] = [(jnp.asarray(W), jnp.asarray(b)) for W, b in prob.params]

    def sync() -> None:
        state["value"].block_until_ready()

    return Step(step, first, sync, {"jax": jax.__version__,
                                    "threads": "XLA's own pool (not limited by threadpoolctl)"})


def sklearn_step(prob: _Problem, lr: float = LR) -> Step:
    """scikit-learn's ``MLPClassifier.partial_fit`` on the batch: plain SGD (no
    momentum, no L2), one minibatch per call, from bpnet's initial weights."""
    import warnings

    import sklearn
    from sklearn.neural_network import MLPClassifier

    cfg = prob.cfg
    k = cfg.sizes[-1]
    clf = MLPClassifier(
        hidden_layer_sizes=cfg.sizes[1:-1], activation=cfg.activation, solver="sgd",
        learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
        batch_size=cfg.batch, shuffle=False, random_state=SEED,
    )
    classes = np.arange(max(k, 2))

    def reset() -> None:
        clf.coefs_ = [W.copy() for W, _ in prob.params]
        clf.intercepts_ = [b.copy() for _, b in prob.params]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(prob.x, prob.labels, classes=classes)  # builds the layers
    reset()

    def step() -> None:
        clf.partial_fit(prob.x, prob.labels)

    step()
    first = float(clf.loss_)
    reset()
    return Step(step, first, info={"sklearn": sklearn.__version__})


_BUILDERS: dict[str, Callable[[_Problem], Step]] = {
    "lean": lean_step,
    "gemm": gemm_floor,
    "compat": compat_step,
    "torch": torch_step,
    "jax": jax_step,
    "sklearn": sklearn_step,
}

_REQUIRES = {"compat": "array_api_compat", "torch": "torch", "jax": "jax",
             "sklearn": "sklearn"}


def peer_missing(name: str) -> str | None:
    """Why peer ``name`` cannot run here (the missing package), or None."""
    module = _REQUIRES.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as exc:  # a broken install is as good as none
        return f"{module} not importable ({type(exc).__name__})"
    return None


def make_step(name: str, cfg: StepConfig, *, backend: str = "numpy", device: Any = None) -> Step:
    """Build contender ``name`` ("bpnet" or one of :data:`PEERS`) for ``cfg``.

    Raises
    ------
    ImportError
        When the peer's library is not installed.
    """
    prob = _problem(cfg)
    if name == "bpnet":
        return bpnet_step(prob, backend, device)
    reason = peer_missing(name)
    if reason:
        raise ImportError(reason)
    return _BUILDERS[name](prob)


# --- experiment 2: training steps --------------------------------------------------------
def step_rows(
    cfg: StepConfig, peers: Sequence[str], *, backend: str = "numpy", device: Any = None,
    repeats: int = 7, min_block_s: float = 0.01, pause: float = 0.2,
) -> dict[str, Any]:
    """Time bpnet's step and every available peer side by side on ``cfg``.

    Returns
    -------
    dict
        ``config`` (the configuration), ``methods`` (name -> median, IQR,
        samples/s, ratios of medians to the lean step, to the GEMM floor and
        to bpnet, medians of the per-round ratios ``vs_*_paired``, first-step
        loss), ``loss_agreement`` (largest relative difference of
        the first-step losses from the lean step's), ``skipped`` (name ->
        reason).
    """
    prob = _problem(cfg)
    steps: dict[str, Step] = {}
    skipped: dict[str, str] = {}
    uses_jax = backend == "jax" or ("jax" in peers and peer_missing("jax") is None)
    need_x64 = cfg.dtype == "float64" and uses_jax
    with contextlib.ExitStack() as stack:
        if need_x64:
            stack.enter_context(jax_x64(True))
        steps["bpnet"] = bpnet_step(prob, backend, device)
        for name in peers:
            reason = peer_missing(name)
            if reason:
                skipped[name] = reason
                continue
            steps[name] = _BUILDERS[name](prob)
        timings = interleaved(
            {k: s.fn for k, s in steps.items()},
            syncs={k: s.sync for k, s in steps.items() if s.sync},
            repeats=repeats, min_block_s=min_block_s, pause=pause,
        )
    lean = timings["lean"].median if "lean" in timings else None
    gemm = timings["gemm"].median if "gemm" in timings else None
    mine = timings["bpnet"].median
    methods = {}
    for name, t in timings.items():
        methods[name] = {
            **t.as_dict(),
            "label": _PEER_LABELS[name],
            "samples_per_s": cfg.batch / t.median,
            "vs_lean": t.median / lean if lean else None,
            "vs_gemm": t.median / gemm if gemm else None,
            "vs_bpnet": t.median / mine,
            "vs_lean_paired": paired_ratio(t, timings["lean"]) if lean else None,
            "vs_gemm_paired": paired_ratio(t, timings["gemm"]) if gemm else None,
            "first_loss": steps[name].first_loss,
            "info": steps[name].info,
        }
    ref = steps["lean"].first_loss if "lean" in steps else steps["bpnet"].first_loss
    diffs = {
        k: abs(s.first_loss - ref) / max(abs(ref), 1e-30)
        for k, s in steps.items() if s.first_loss is not None
    }
    return {
        "config": {**asdict(cfg), "label": cfg.label, "n_params": cfg.n_params},
        "methods": methods,
        "loss_agreement": diffs,
        "skipped": skipped,
    }


# --- experiment 1: gradient cost against P ------------------------------------------------
def _fd_net(sizes: Sequence[int], xp: ModuleType, device: Any, batch: int = FD_BATCH):
    inits = ["glorot"] * (len(sizes) - 1)  # tanh hidden layers
    put = (lambda a: xp.asarray(a, device=device)) if device is not None else xp.asarray
    params = [(put(W), put(b)) for W, b in init_params_host(sizes, inits, SEED)]
    rng = np.random.default_rng(SEED + 1)
    x = put(rng.standard_normal((batch, sizes[0])))
    y = put(np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)])
    hidden = [get_activation("tanh")] * (len(sizes) - 2)
    loss = get_loss("cross_entropy")
    return params, x, y, hidden, output_activation(loss, None), loss


def _fd_timed(
    fn: Callable[..., Array], args: tuple, P: int, cap: float, xp: ModuleType,
    pilot: int, rng: np.random.Generator,
) -> tuple[float, np.ndarray, np.ndarray, bool]:
    """Time ``fn`` over all P parameters, or over a sample when a pilot says the
    whole would take longer than ``cap`` seconds.

    The clock includes the one transfer of the result to the host, which also
    waits for any device or lazy work.

    Returns (seconds for all P, measured or extrapolated; indices measured;
    their partials on the host; extrapolated?).
    """
    def timed(indices: np.ndarray) -> tuple[float, np.ndarray]:
        holder: list[np.ndarray] = []
        t = time_once(lambda: holder.append(to_numpy(fn(*args, indices.tolist(), xp=xp))))
        return t, holder[0]

    m = min(P, pilot)
    sample = np.sort(rng.choice(P, size=m, replace=False))
    t_pilot, _ = timed(sample)
    if t_pilot * P / m <= cap or m == P:
        indices = np.arange(P)
        t, partials = timed(indices)
        return t, indices, partials, False
    m = int(min(P, max(m, cap / 2 / (t_pilot / m))))
    indices = np.sort(rng.choice(P, size=m, replace=False))
    t, partials = timed(indices)
    if m == P:
        return t, indices, partials, False
    return t * P / m, indices, partials, True


def gradient_row(
    sizes: Sequence[int], *, backend: str = "numpy", device: Any = None, cap: float = 5.0,
    repeats: int = 7, min_block_s: float = 0.01, pause: float = 0.2, seed: int = SEED,
) -> dict[str, Any]:
    """One row of the gradient-cost table: backprop, one forward pass, naive and
    batched central differences on the network ``sizes`` (float64, tanh,
    cross-entropy, batch 64).

    Returns
    -------
    dict
        ``n_params``, ``sizes``, ``forward`` and ``backprop`` (interleaved
        timings), ``naive`` and ``batched`` (seconds per gradient, gradients/s,
        measured or extrapolated, parameters measured, largest relative error
        against backprop, agreement), ``ratio_naive``, ``ratio_batched``
        (measured), ``ratio_theory`` (``2P t_forward / t_backprop``, with
        ``ratio_theory_paired`` the median of the per-round ratios) and
        ``naive_over_floor`` (naive time over 2P forward passes).
    """
    xp = get_namespace(backend)
    wait = _waiter(xp, device)
    lazy = backend_name(xp) == "dask"
    last: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if backend_name(xp) == "jax":
            stack.enter_context(jax_x64(True))
        params, x, y, hidden, out, loss = _fd_net(sizes, xp, device)
        P = n_params(params)

        def forward() -> None:
            last["forward"] = kernels.loss_value(params, x, y, hidden, out, loss, xp=xp)
            if lazy:
                wait(last["forward"])

        def backprop() -> None:
            last["backprop"] = kernels.loss_and_grad(params, x, y, hidden, out, loss, xp=xp)
            if lazy:
                wait(last["backprop"][1])

        t = interleaved({"forward": forward, "backprop": backprop}, repeats=repeats,
                        min_block_s=min_block_s, pause=pause,
                        syncs={"forward": lambda: wait(last.get("forward")),
                               "backprop": lambda: wait(last.get("backprop"))})
        _, grads = last["backprop"]
        bp = to_numpy(ravel(grads, xp=xp))
        scale = float(np.max(np.abs(bp)))
        rng = np.random.default_rng(seed)
        args = (params, x, y, hidden, out, loss)
        row: dict[str, Any] = {
            "sizes": list(sizes), "batch": FD_BATCH, "dtype": "float64", "n_params": P,
            "forward": t["forward"].as_dict(), "backprop": t["backprop"].as_dict(),
        }
        for method, fn, pilot in (("naive", numerical_partials, 24),
                                  ("batched", numerical_partials_batched, 2048)):
            secs, idx, fd, extrapolated = _fd_timed(fn, args, P, cap, xp, pilot, rng)
            err = relative_error(fd, bp[idx], FLOOR * scale)
            row[method] = {
                "seconds": secs, "grads_per_s": 1.0 / secs, "extrapolated": extrapolated,
                "measured_params": int(idx.shape[0]), "max_rel_error": err,
                "agrees": bool(err <= 1e-6),
            }
    t_f, t_b = t["forward"].median, t["backprop"].median
    row["ratio_naive"] = row["naive"]["seconds"] / t_b
    row["ratio_batched"] = row["batched"]["seconds"] / t_b
    row["ratio_theory"] = 2 * P * t_f / t_b
    row["ratio_theory_paired"] = 2 * P * paired_ratio(t["forward"], t["backprop"])
    row["naive_over_floor"] = row["naive"]["seconds"] / (2 * P * t_f)
    return row


# --- thread sweep -----------------------------------------------------------------------
def thread_rows(
    cfg: StepConfig, threads: Sequence[int], *, repeats: int = 7, min_block_s: float = 0.01,
    pause: float = 0.2,
) -> dict[str, Any]:
    """bpnet's and the lean step's median at each BLAS thread count, interleaved
    (the thread count switches between blocks)."""
    from threadpoolctl import threadpool_limits

    prob = _problem(cfg)
    fns, contexts = {}, {}
    for n in threads:
        for name, step in (("bpnet", bpnet_step(prob)), ("lean", lean_step(prob))):
            fns[f"{name}@{n}"] = step.fn
            contexts[f"{name}@{n}"] = (lambda n=n: threadpool_limits(limits=n, user_api="blas"))
    t = interleaved(fns, contexts=contexts, repeats=repeats, min_block_s=min_block_s,
                    pause=pause)
    return {"config": cfg.label, "medians_s": {k: v.median for k, v in t.items()}}


# --- report -------------------------------------------------------------------------------
def _fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def format_gradient_table(rows: Sequence[dict[str, Any]]) -> str:
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
            f"{_fmt_time(r['backprop']['median_s']):>10} {1 / r['backprop']['median_s']:>9.0f} "
            f"{_fmt_time(nv['seconds']):>10}{star_n} {r['ratio_naive']:>8.0f} "
            f"{r['ratio_theory']:>8.0f} {r['naive_over_floor']:>12.2f} "
            f"{_fmt_time(bt['seconds']):>10}{star_b} {r['ratio_batched']:>7.0f} {agree:>5}"
        )
    if any(r["naive"]["extrapolated"] or r["batched"]["extrapolated"] for r in rows):
        lines.append("* extrapolated from a random sample of parameters (time cap)")
    return "\n".join(lines)


def _ratio(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "-"


def format_step_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (f"{'configuration':<27} {'method':<27} {'median':>10} {'samples/s':>11} "
            f"{'vs lean':>8} {'paired':>7} {'vs GEMM':>8} {'vs bpnet':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        for m in r["methods"].values():
            lines.append(
                f"{r['config']['label']:<27} {m['label']:<27} {_fmt_time(m['median_s']):>10} "
                f"{m['samples_per_s']:>11.0f} {_ratio(m['vs_lean']):>8} "
                f"{_ratio(m['vs_lean_paired']):>7} {_ratio(m['vs_gemm']):>8} "
                f"{_ratio(m['vs_bpnet']):>8}"
            )
        for name, why in r["skipped"].items():
            lines.append(f"{r['config']['label']:<27} {_PEER_LABELS[name]:<27} skipped: {why}")
    lines.append("vs lean, vs GEMM: ratios of medians; paired: median over rounds of the "
                 "ratio to the lean block of the same round")
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path) -> str | None:
    """Log-log time per gradient against P for every method.  Returns a note
    instead of writing when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install 'bpnet[plot]')"
    P = [r["n_params"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.loglog(P, [r["backprop"]["median_s"] for r in rows], "o-", label="backprop")
    ax.loglog(P, [2 * r["n_params"] * r["forward"]["median_s"] for r in rows], ":",
              color="grey", label="2P forward passes (FD floor)")
    for method, marker in (("naive", "s"), ("batched", "^")):
        line, = ax.loglog(P, [r[method]["seconds"] for r in rows], marker + "-",
                          label=f"{method} central differences")
        ext = [(r["n_params"], r[method]["seconds"]) for r in rows if r[method]["extrapolated"]]
        if ext:
            ax.loglog(*zip(*ext), marker, mfc="white", color=line.get_color(),
                      label=f"{method}: extrapolated from a sample")
    ax.set_xlabel("number of parameters P")
    ax.set_ylabel("seconds per gradient")
    ax.set_title("One gradient: backprop vs finite differences (float64, batch 64)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# --- command line ------------------------------------------------------------------------
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
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"peers, comma-separated, or 'none' (default: {','.join(PEERS)})")
    parser.add_argument("--fd-max-params", type=int, default=None,
                        help="largest network of the gradient table (default 110000; quick 10000)")
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
        peers = _names(args.peers, PEERS, "peer")
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
    fd_sizes = [s for s in FD_SIZES if _count(s) <= max_p]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    for name in peers:  # import before limiting threads, so torch's pool is limited too
        if peer_missing(name) is None and name in ("torch", "jax", "sklearn"):
            __import__(name)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "bpnet": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "options": {"quick": quick, "backend": args.backend, "device": args.device,
                    "threads": threads, "repeats": repeats, "pause_s": pause,
                    "min_block_s": block, "fd_cap_s": cap, "fd_max_params": max_p,
                    "configs": [c.name for c in configs], "peers": peers},
        "notes": [],
    }
    with limit_threads(threads) as limited:
        report["threads"] = limited
        report["machine"] = machine_info()
        machine = report["machine"]
        print(f"bpnet bench: {machine['cpu']}, {machine['cores']} cores, "
              f"{threads} thread(s), {blas_summary(machine)}")
        if machine.get("loadavg"):
            print(f"load average {machine['loadavg'][0]:.2f}: other jobs on this machine skew "
                  f"absolute times; compare ratios")
        gpu = cuda_device_info()
        if gpu:
            print(f"GPU: {gpu['name']}, {gpu['memory_total_bytes'] / 2**30:.1f} GiB")

        grad_rows = []
        for sizes in fd_sizes:
            grad_rows.append(gradient_row(sizes, backend=args.backend, device=args.device,
                                          cap=cap, repeats=repeats, min_block_s=block,
                                          pause=pause))
        report["gradient"] = grad_rows
        if grad_rows:
            print("\nGradient cost against the number of parameters (float64, tanh, "
                  "cross-entropy, batch 64)")
            print(format_gradient_table(grad_rows))

        steps = []
        for cfg in configs:
            steps.append(step_rows(cfg, peers, backend=args.backend, device=args.device,
                                   repeats=repeats, min_block_s=block, pause=pause))
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
            for r in report["thread_sweep"]:
                cells = "  ".join(f"{k}={_fmt_time(v)}" for k, v in r["medians_s"].items())
                print(f"  {r['config']:<26} {cells}")

    if "jax" in peers and peer_missing("jax") is None:
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
    path = out_dir / "bench.json"
    path.write_text(json.dumps(report, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    print(f"\nwrote {path}" + (f" and {png}" if report["plot"] else ""))
    failed = [r["n_params"] for r in grad_rows
              if not (r["naive"]["agrees"] and r["batched"]["agrees"])]
    if failed:
        print(f"bpnet bench: finite differences disagree with backprop at P = {failed}",
              file=sys.stderr)
        return 1
    return 0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bpnet.bench [options]``: the same as ``bpnet bench``."""
    parser = argparse.ArgumentParser(prog="bpnet bench", description=__doc__.split("\n\n")[0])
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

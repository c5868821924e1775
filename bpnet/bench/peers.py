"""The contenders of the training-step table, each a ready-to-time step.

- :func:`bpnet_step`: bpnet's own training step, the one :meth:`bpnet.MLP.fit`
  runs (:func:`bpnet.train.make_step` with plain SGD, on packed parameters);
- :func:`lean_step`: a lean hand-written NumPy step, the practical ceiling for
  a NumPy backend;
- :func:`gemm_floor`: the step's matrix products alone;
- :func:`compat_step`: bpnet's step through array-api-compat's NumPy wrappers;
- :func:`torch_step`, :func:`jax_step`, :func:`sklearn_step`: PyTorch eager
  autograd, ``jax.jit`` of a whole step, scikit-learn's ``partial_fit``.

All start from the same :class:`~bpnet.bench.problems.StepProblem` and take
plain SGD steps of the same learning rate, so their first losses agree and
their weights stay equal step after step (:attr:`Contender.weights`).  This is
the one module of bpnet that imports torch, jax and scikit-learn by name:
running them is its job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._typing import Array
from ..backend import (
    backend_name,
    from_host,
    get_namespace,
    is_host_array,
    lazy,
    synchronize,
    to_numpy,
)
from ..optim import SGD
from ..params import Layout
from ..train import make_step
from ..train.loop import Run
from .problems import LR, SEED, StepConfig, StepProblem, step_problem

__all__ = [
    "PEERS",
    "PEER_LABELS",
    "Contender",
    "bpnet_step",
    "build_peer",
    "compat_step",
    "contender",
    "gemm_floor",
    "jax_step",
    "jax_x64",
    "lean_step",
    "peer_missing",
    "sklearn_step",
    "torch_step",
]

#: Host weights of a contender: ``[(W, b), ...]`` as numpy arrays, ``W`` (fan_in, fan_out).
HostParams = list[tuple[np.ndarray, np.ndarray]]

#: Contenders of the step table besides bpnet itself, in table order.
PEERS: tuple[str, ...] = ("lean", "gemm", "compat", "torch", "jax", "sklearn")

#: How the tables name each contender.
PEER_LABELS: dict[str, str] = {
    "bpnet": "bpnet",
    "lean": "lean NumPy",
    "gemm": "GEMM floor",
    "compat": "bpnet via array-api-compat",
    "torch": "PyTorch eager",
    "jax": "jax.jit step",
    "sklearn": "sklearn partial_fit",
}


@dataclass
class Contender:
    """A ready-to-time training step.

    Attributes
    ----------
    fn : callable ``() -> None``
        One training step; the contender keeps its parameters in a closure.
    first_loss : float or None
        Loss of the first step, from the common initial weights (None for
        contenders that compute no loss, or start from other weights).
    sync : callable or None
        Waits for queued device work (GPU stream, JAX dispatch); None when
        the contender computes eagerly on the host.
    info : dict
        Versions, backend, device: filed with the figures.
    weights : callable ``() -> list of (W, b)`` or None
        The contender's current weights on the host, ``W`` (fan_in, fan_out),
        to check that contenders train alike (None for the GEMM floor).
    """

    fn: Callable[[], Any]
    first_loss: float | None = None
    sync: Callable[[], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    weights: Callable[[], HostParams] | None = None


def _host(params: Any) -> HostParams:
    return [(to_numpy(W), to_numpy(b)) for W, b in params]


# --- bpnet --------------------------------------------------------------------------
def bpnet_step(prob: StepProblem, backend: str | ModuleType = "numpy", device: Any = None,
               lr: float = LR) -> Contender:
    """bpnet's training step as :meth:`bpnet.MLP.fit` runs it: the pure step of
    :func:`bpnet.train.make_step` with plain SGD (no momentum), on the packed
    parameters (one flat vector on eager backends), the batch already on the
    device.  On a lazy backend (Dask) each step ends with one compute of the
    loss and the new weights, as otherwise it would only build a graph.

    Parameters
    ----------
    prob : StepProblem
    backend : str or namespace
        A name for :func:`bpnet.get_namespace`, or a namespace module used as
        it is (array-api-compat's NumPy wrappers, say).
    device : device of the backend, optional
    lr : float
    """
    xp = backend if isinstance(backend, ModuleType) else get_namespace(backend)
    start = [(from_host(xp, W, device), from_host(xp, b, device)) for W, b in prob.params]
    x, y = from_host(xp, prob.x, device), from_host(xp, prob.y, device)
    n = prob.cfg.batch
    step = make_step(prob.cfg.arch, SGD(), Layout.of(prob.params), xp=xp, batch_size=n)
    data = step.data(x, y, n)  # the same batch every step, as fit reads it
    is_lazy = lazy.is_lazy(xp)
    state: dict[str, Any] = {}

    def reset() -> None:
        packed = step.pack(start)
        state["run"] = Run(packed, step.init(packed), None)

    def run() -> None:
        r = state["run"]
        value = step.epoch(r, data, None, [(0, n)], lr) / n  # type: ignore[operator]
        if is_lazy:  # one compute of the loss and every new weight
            value, tree = lazy.materialize_step(xp, value, step.unpack(r.params))
            r.params = step.pack(tree)
        state["value"] = value

    def leaves() -> list[Array]:
        return step.leaves(state["run"].params)

    reset()
    run()
    first = float(to_numpy(state["value"]))
    reset()
    # Each step's weights depend on the last: waiting for them waits for all.
    sync = None if is_host_array(x) else (lambda: synchronize(*leaves()))
    return Contender(run, first, sync, {"backend": backend_name(xp), "device": str(device)},
                     weights=lambda: _host(step.unpack(state["run"].params)))


def compat_step(prob: StepProblem, lr: float = LR) -> Contender:
    """bpnet's step through array-api-compat's NumPy namespace instead of NumPy
    itself: what the compatibility wrappers cost."""
    import array_api_compat.numpy as compat_np

    return bpnet_step(prob, compat_np, lr=lr)


# --- NumPy by hand ---------------------------------------------------------------------
def lean_step(prob: StepProblem, lr: float = LR) -> Contender:
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
    return Contender(step, first, weights=lambda: [(W.copy(), b.copy()) for W, b in params])


def gemm_floor(prob: StepProblem) -> Contender:
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

    return Contender(step)


# --- other libraries ---------------------------------------------------------------------
def torch_step(prob: StepProblem, lr: float = LR) -> Contender:
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
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    x = torch.from_numpy(prob.x)
    if cfg.loss == "cross_entropy":
        crit, t = torch.nn.CrossEntropyLoss(), torch.from_numpy(prob.labels)
    else:
        crit, t = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(prob.y)  # type: ignore[assignment]
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        value = crit(model(x), t)
        value.backward()
        opt.step()
        return value

    def weights() -> HostParams:  # torch stores W transposed, (fan_out, fan_in)
        return [(lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy())
                for lin in linears]

    first = float(step().detach())
    with torch.no_grad():  # back to the common start, as every other contender
        for lin, (W, b) in zip(linears, prob.params, strict=True):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
    return Contender(step, first, info={"torch": torch.__version__,
                                        "threads": torch.get_num_threads()}, weights=weights)


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


def jax_step(prob: StepProblem, lr: float = LR) -> Contender:
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

    return Contender(step, first, sync,
                     {"jax": jax.__version__,
                      "threads": "XLA's own pool (not limited by threadpoolctl)"},
                     weights=lambda: _host(state["params"]))


def sklearn_step(prob: StepProblem, lr: float = LR) -> Contender:
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
    return Contender(step, first, info={"sklearn": sklearn.__version__},
                     weights=lambda: [(W.copy(), b.copy())
                                      for W, b in zip(clf.coefs_, clf.intercepts_, strict=True)])


# --- by name --------------------------------------------------------------------------------
_BUILDERS: dict[str, Callable[[StepProblem], Contender]] = {
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


def build_peer(name: str, prob: StepProblem) -> Contender:
    """Peer ``name`` (one of :data:`PEERS`) on ``prob``; its library must be
    importable (see :func:`peer_missing`)."""
    return _BUILDERS[name](prob)


def contender(name: str, cfg: StepConfig, *, backend: str = "numpy",
              device: Any = None) -> Contender:
    """Build contender ``name`` ("bpnet" or one of :data:`PEERS`) for ``cfg``;
    ``backend`` and ``device`` are bpnet's (peers run on their own library).

    Raises
    ------
    ImportError
        When the peer's library is not installed.
    """
    prob = step_problem(cfg)
    if name == "bpnet":
        return bpnet_step(prob, backend, device)
    reason = peer_missing(name)
    if reason:
        raise ImportError(reason)
    return build_peer(name, prob)

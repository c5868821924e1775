"""Write once, lose nothing: bpnet's public ``fit`` against the best hand-written
training step in each backend's own library.

For each configuration (:data:`PARITY_CONFIGS`) and optimizer (plain SGD, SGD
with momentum, Adam), one call of every contender runs the same :data:`STEPS`
minibatch steps over the same data, in order:

- ``bpnet-<library>``: ``MLP.fit(X, Y, epochs=1, batch_size=B, shuffle=False)``
  on data already on the backend, so the call is what a user's loop pays
  (option and data checks, the epoch's one host transfer);
- ``lean-numpy``: hand-written NumPy, in place wherever NumPy allows it, labels
  indexed directly, run under the same BLAS thread policy as bpnet;
- ``lean-torch``: the same backprop hand-written with torch's own calls
  (``addmm``, in-place ``relu_``, ``addcdiv_``...), no autograd;
- ``autograd-torch``: an ``nn.Linear`` stack, ``loss.backward()`` and
  ``torch.optim``;
- ``jit-jax``: ``jax.jit`` of a whole step (``value_and_grad`` and the update),
  donated buffers, the batches sliced beforehand.

Every contender's weights after its steps equal bpnet's (see the tests), so the
work is the same.  :func:`parity_rows` times them interleaved in one process
and reports, per row, bpnet's time over each peer's (lower is better).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import threads
from .peers import jax_x64, peer_missing
from .timing import Timing, interleaved, paired_ratio

__all__ = [
    "LIBRARIES",
    "OPTIMIZERS",
    "PARITY_CONFIGS",
    "STEPS",
    "ParityConfig",
    "Runner",
    "format_parity_table",
    "parity_rows",
    "runner",
]

#: Minibatch steps per timed call.
STEPS = 32

#: Hyperparameters of each optimizer row (bpnet's ``fit`` options).
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.0},
    "momentum": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9},
    "adam": {"optimizer": "adam", "lr": 1e-3},
}

#: Libraries with a bpnet contender and their peers, in table order.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "numpy": ("lean-numpy",),
    "torch": ("lean-torch", "autograd-torch"),
    "jax": ("jit-jax",),
}

_MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax"}


@dataclass(frozen=True)
class ParityConfig:
    """One network and batch size of the parity table."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    dtype: str
    activation: str
    loss: str

    @property
    def label(self) -> str:
        return f"{self.name} {'-'.join(map(str, self.sizes))} b{self.batch} f{self.dtype[5:]}"


PARITY_CONFIGS: dict[str, ParityConfig] = {
    c.name: c for c in (
        ParityConfig("C1", (64, 128, 10), 64, "float64", "relu", "cross_entropy"),
        ParityConfig("C2", (784, 256, 256, 10), 256, "float32", "relu", "cross_entropy"),
        ParityConfig("C3", (1024, 1024, 1024, 10), 1024, "float32", "relu", "cross_entropy"),
        ParityConfig("C4", (2, 5, 1), 4, "float64", "tanh", "mse"),
    )
}


@dataclass
class Runner:
    """One contender: ``fn()`` runs :data:`STEPS` steps.

    ``weights()`` returns its current weights as host arrays, ``W`` (fan_in,
    fan_out); ``sync`` waits for queued device work (None on eager hosts).
    """

    fn: Callable[[], Any]
    weights: Callable[[], list[tuple[np.ndarray, np.ndarray]]]
    sync: Callable[[], Any] | None = None


@dataclass
class _Data:
    x: np.ndarray  # (STEPS * B, n_0)
    labels: np.ndarray  # (STEPS * B,) for cross-entropy
    y: np.ndarray  # (STEPS * B, n_L): one-hot, or real targets for mse
    params: list[tuple[np.ndarray, np.ndarray]]

    @property
    def targets(self) -> np.ndarray:
        """What ``fit`` is given: labels for cross-entropy, the targets otherwise."""
        return self.y if self.labels is None else self.labels


def _data(cfg: ParityConfig, steps: int, seed: int = 0) -> _Data:
    import bpnet

    dt = np.dtype(cfg.dtype)
    rng = np.random.default_rng(seed + 1)
    n, k = cfg.batch * steps, cfg.sizes[-1]
    x = rng.standard_normal((n, cfg.sizes[0])).astype(dt)
    if cfg.loss == "cross_entropy":
        labels = rng.integers(0, k, n)
        y = np.eye(k, dtype=dt)[labels]
    else:
        labels, y = None, rng.standard_normal((n, k)).astype(dt)
    net = bpnet.MLP(list(cfg.sizes), activation=cfg.activation, loss=cfg.loss, dtype=cfg.dtype,
                    seed=seed)
    return _Data(x, labels, y, [(np.array(W), np.array(b)) for W, b in net.params])  # type: ignore[arg-type]


def _batches(cfg: ParityConfig, data: _Data, steps: int) -> list[tuple[int, int]]:
    return [(i * cfg.batch, (i + 1) * cfg.batch) for i in range(steps)]


# --- bpnet -------------------------------------------------------------------------------
def _bpnet(cfg: ParityConfig, opt: str, library: str, data: _Data, steps: int) -> Runner:
    import bpnet
    from bpnet.backend import from_host, synchronize

    net = bpnet.MLP(list(cfg.sizes), activation=cfg.activation, loss=cfg.loss, backend=library,
                    dtype=cfg.dtype, seed=0)
    xp, dev = net.xp, net.device
    X = from_host(xp, data.x, dev)
    Y = from_host(xp, data.targets, dev)
    kw = {**OPTIMIZERS[opt], "epochs": 1, "batch_size": cfg.batch, "shuffle": False}

    def run() -> None:
        net.fit(X, Y, **kw)

    def weights() -> list[tuple[np.ndarray, np.ndarray]]:
        return [(bpnet.to_numpy(W), bpnet.to_numpy(b)) for W, b in net.params]

    return Runner(run, weights, lambda: synchronize(net.params[0][0]))


# --- hand-written NumPy --------------------------------------------------------------------
def _lean_numpy(cfg: ParityConfig, opt: str, data: _Data, steps: int) -> Runner:
    dt = np.dtype(cfg.dtype)
    params = [(W.astype(dt), b.astype(dt)) for W, b in data.params]
    leaves = [t for pair in params for t in pair]
    hp = OPTIMIZERS[opt]
    lr, mu = dt.type(hp["lr"]), dt.type(hp.get("momentum", 0.0))
    b1, b2, eps = 0.9, 0.999, 1e-8
    slots = [[np.zeros_like(t) for t in leaves] for _ in range(2 if opt == "adam" else 1)]
    t_step = [0]
    n = cfg.batch
    rows, inv_n = np.arange(n), dt.type(1.0 / n)
    relu = cfg.activation == "relu"
    ce = cfg.loss == "cross_entropy"
    bounds = _batches(cfg, data, steps)

    def update(p: np.ndarray, g: np.ndarray, i: int) -> None:
        if opt == "sgd":
            g *= lr
            p -= g
        elif opt == "momentum":
            v = slots[0][i]
            v *= mu
            g *= lr
            v -= g
            p += v
        else:
            m, v = slots[0][i], slots[1][i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            g *= g
            g *= 1 - b2
            v += g
            step = lr * math.sqrt(1 - b2 ** t_step[0]) / (1 - b1 ** t_step[0])
            d = np.sqrt(v)
            d += eps
            np.divide(m, d, out=d)
            d *= step
            p -= d

    def one(x: np.ndarray, labels: np.ndarray | None, y: np.ndarray) -> Any:
        acts = [x]
        h = x
        for W, b in params[:-1]:
            h = h @ W
            h += b
            if relu:
                np.maximum(h, 0, out=h)
            else:
                np.tanh(h, out=h)
            acts.append(h)
        W, b = params[-1]
        z = h @ W
        z += b
        if ce:
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            value = np.mean(np.log(s[:, 0]) - z[rows, labels])
            delta = e
            delta /= s
            delta[rows, labels] -= 1
        else:
            delta = z - y
            value = 0.5 * np.mean(np.einsum("ij,ij->i", delta, delta))
        delta *= inv_n
        t_step[0] += 1
        for l in range(len(params) - 1, -1, -1):
            W, b = params[l]
            dW = acts[l].T @ delta
            db = delta.sum(axis=0)
            if l:
                delta = delta @ W.T
                if relu:
                    delta *= acts[l] > 0
                else:
                    a = acts[l]
                    delta *= 1 - a * a
            update(W, dW, 2 * l)
            update(b, db, 2 * l + 1)
        return value

    def run() -> None:
        # bpnet's own BLAS thread choice, so that the ratio measures the code alone
        with threads.blas_thread_policy(cfg.sizes, cfg.batch):
            total = 0.0
            for lo, hi in bounds:
                lab = None if data.labels is None else data.labels[lo:hi]
                total += one(data.x[lo:hi], lab, data.y[lo:hi])

    return Runner(run, lambda: [(W.copy(), b.copy()) for W, b in params])


# --- hand-written torch, and torch's autograd ------------------------------------------
def _lean_torch(cfg: ParityConfig, opt: str, data: _Data, steps: int) -> Runner:
    import torch

    dt = getattr(torch, cfg.dtype)
    params = [(torch.tensor(W, dtype=dt), torch.tensor(b, dtype=dt)) for W, b in data.params]
    leaves = [t for pair in params for t in pair]
    hp = OPTIMIZERS[opt]
    lr, mu = hp["lr"], hp.get("momentum", 0.0)
    b1, b2, eps = 0.9, 0.999, 1e-8
    slots = [[torch.zeros_like(t) for t in leaves] for _ in range(2 if opt == "adam" else 1)]
    t_step = [0]
    relu = cfg.activation == "relu"
    ce = cfg.loss == "cross_entropy"
    x_all = torch.from_numpy(data.x)
    y_all = torch.from_numpy(data.y)
    batches = [(x_all[lo:hi], y_all[lo:hi]) for lo, hi in _batches(cfg, data, steps)]
    inv_n = 1.0 / cfg.batch

    def update(p: Any, g: Any, i: int) -> None:
        if opt == "sgd":
            p.add_(g, alpha=-lr)
        elif opt == "momentum":
            v = slots[0][i]
            v.mul_(mu).add_(g, alpha=-lr)
            p.add_(v)
        else:
            m, v = slots[0][i], slots[1][i]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step = lr * math.sqrt(1 - b2 ** t_step[0]) / (1 - b1 ** t_step[0])
            p.addcdiv_(m, v.sqrt().add_(eps), value=-step)

    def one(x: Any, y: Any) -> Any:
        acts = [x]
        h = x
        for W, b in params[:-1]:
            h = torch.addmm(b, h, W)
            h = h.relu_() if relu else h.tanh_()
            acts.append(h)
        W, b = params[-1]
        z = torch.addmm(b, h, W)
        if ce:
            z = z - z.max(dim=1, keepdim=True).values
            e = z.exp()
            s = e.sum(dim=1, keepdim=True)
            value = (s.log() - (y * z).sum(dim=1, keepdim=True)).mean()
            delta = e.div_(s).sub_(y)
        else:
            delta = z - y
            value = 0.5 * (delta * delta).sum(dim=1).mean()
        delta.mul_(inv_n)
        t_step[0] += 1
        for l in range(len(params) - 1, -1, -1):
            W, b = params[l]
            dW = acts[l].T @ delta
            db = delta.sum(dim=0)
            if l:
                delta = delta @ W.T
                a = acts[l]
                delta.mul_(a > 0) if relu else delta.mul_(1 - a * a)
            update(W, dW, 2 * l)
            update(b, db, 2 * l + 1)
        return value

    def run() -> None:
        total = None
        for x, y in batches:
            v = one(x, y)
            total = v if total is None else total + v

    return Runner(run, lambda: [(W.numpy().copy(), b.numpy().copy()) for W, b in params])


def _autograd_torch(cfg: ParityConfig, opt: str, data: _Data, steps: int) -> Runner:
    import torch

    dt = getattr(torch, cfg.dtype)
    layers: list[Any] = []
    linears = []
    for l, (W, b) in enumerate(data.params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        linears.append(lin)
        if l < len(data.params) - 1:
            layers.append(torch.nn.ReLU() if cfg.activation == "relu" else torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    hp = OPTIMIZERS[opt]
    if opt == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], betas=(0.9, 0.999),
                                     eps=1e-8)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"])  # type: ignore[assignment]
    x_all = torch.from_numpy(data.x)
    if cfg.loss == "cross_entropy":
        t_all = torch.from_numpy(data.labels)

        def loss_fn(out: Any, t: Any) -> Any:
            return torch.nn.functional.cross_entropy(out, t)
    else:
        t_all = torch.from_numpy(data.y)

        def loss_fn(out: Any, t: Any) -> Any:
            return 0.5 * ((out - t) ** 2).sum(dim=1).mean()
    batches = [(x_all[lo:hi], t_all[lo:hi]) for lo, hi in _batches(cfg, data, steps)]

    def run() -> None:
        total = None
        for x, t in batches:
            optimizer.zero_grad(set_to_none=True)
            value = loss_fn(model(x), t)
            value.backward()
            optimizer.step()
            total = value.detach() if total is None else total + value.detach()

    def weights() -> list[tuple[np.ndarray, np.ndarray]]:
        return [(lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy())
                for lin in linears]

    return Runner(run, weights)


# --- jax.jit of a whole step ------------------------------------------------------------
def _jit_jax(cfg: ParityConfig, opt: str, data: _Data, steps: int) -> Runner:
    import jax
    import jax.numpy as jnp

    hp = OPTIMIZERS[opt]
    lr, mu = hp["lr"], hp.get("momentum", 0.0)
    b1, b2, eps = 0.9, 0.999, 1e-8
    act = jax.nn.relu if cfg.activation == "relu" else jnp.tanh
    ce = cfg.loss == "cross_entropy"

    def loss_fn(params, x, y):
        h = x
        for W, b in params[:-1]:
            h = act(h @ W + b)
        W, b = params[-1]
        z = h @ W + b
        if ce:
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z), axis=1))
        r = z - y
        return 0.5 * jnp.mean(jnp.sum(r * r, axis=1))

    tmap = jax.tree_util.tree_map

    def step(params, state, x, y):
        value, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if opt == "sgd":
            return tmap(lambda p, g: p - lr * g, params, grads), state, value
        if opt == "momentum":
            v = tmap(lambda v, g: mu * v - lr * g, state, grads)
            return tmap(lambda p, v: p + v, params, v), v, value
        t, m, v = state
        t = t + 1
        m = tmap(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = tmap(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        size = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        new = tmap(lambda p, m, v: p - size * m / (jnp.sqrt(v) + eps), params, m, v)
        return new, (t, m, v), value

    compiled = jax.jit(step, donate_argnums=(0, 1))
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in data.params]
    zeros = tmap(jnp.zeros_like, params)
    if opt == "sgd":
        state: Any = ()
    elif opt == "momentum":
        state = zeros
    else:
        state = (jnp.zeros((), dtype=params[0][0].dtype), zeros, tmap(jnp.zeros_like, params))
    batches = [(jnp.asarray(data.x[lo:hi]), jnp.asarray(data.y[lo:hi]))
               for lo, hi in _batches(cfg, data, steps)]
    box = {"params": params, "state": state, "value": None}

    def run() -> None:
        p, s = box["params"], box["state"]
        for x, y in batches:
            p, s, box["value"] = compiled(p, s, x, y)
        box["params"], box["state"] = p, s

    def weights() -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.asarray(W), np.asarray(b)) for W, b in box["params"]]

    return Runner(run, weights, lambda: jax.block_until_ready(box["params"]))


_PEERS: dict[str, Callable[..., Runner]] = {
    "lean-numpy": _lean_numpy,
    "lean-torch": _lean_torch,
    "autograd-torch": _autograd_torch,
    "jit-jax": _jit_jax,
}


def missing(library: str) -> str | None:
    """Why ``library``'s contenders cannot run here, or None."""
    return None if library == "numpy" else peer_missing(library)


def runner(name: str, cfg: ParityConfig, opt: str, *, steps: int = STEPS) -> Runner:
    """Contender ``name`` (``"bpnet-numpy"``, ``"lean-torch"``...) for ``cfg`` and
    optimizer ``opt``, from the shared initial weights and data.

    JAX contenders of float64 configurations must be built and run inside
    :func:`bpnet.bench.jax_x64`.
    """
    data = _data(cfg, steps)
    if name.startswith("bpnet-"):
        return _bpnet(cfg, opt, name.removeprefix("bpnet-"), data, steps)
    return _PEERS[name](cfg, opt, data, steps)


@contextlib.contextmanager
def _x64(cfg: ParityConfig, libraries: Sequence[str]) -> Iterator[None]:
    if "jax" in libraries and cfg.dtype == "float64":
        with jax_x64():
            yield
    else:
        yield


def parity_rows(
    configs: Sequence[str] = tuple(PARITY_CONFIGS), optimizers: Sequence[str] = tuple(OPTIMIZERS),
    libraries: Sequence[str] = tuple(LIBRARIES), *, steps: int = STEPS, repeats: int = 7,
    min_block_s: float = 0.05, pause: float = 0.2,
) -> list[dict[str, Any]]:
    """Time every contender of each (configuration, optimizer) row interleaved.

    Returns
    -------
    list of dict
        Per row: ``config``, ``optimizer``, ``median_s`` (per step) and, for each
        peer, ``ratio[peer]`` (bpnet's median over the peer's) and
        ``paired[peer]`` (median over rounds of the per-round ratio); libraries
        that are not installed are listed under ``skipped``.
    """
    libs = [lib for lib in libraries if missing(lib) is None]
    rows = []
    for config in configs:
        cfg = PARITY_CONFIGS[config]
        for opt in optimizers:
            with _x64(cfg, libs):
                fns, syncs = {}, {}
                for lib in libs:
                    for name in (f"bpnet-{lib}", *LIBRARIES[lib]):
                        r = runner(name, cfg, opt, steps=steps)
                        fns[name] = r.fn
                        if r.sync is not None:
                            syncs[name] = r.sync
                timings = interleaved(fns, repeats=repeats, min_block_s=min_block_s,
                                      pause=pause, syncs=syncs)
            rows.append(_row(cfg, opt, libs, timings, steps,
                             skipped=[lib for lib in libraries if lib not in libs]))
    return rows


def _row(cfg: ParityConfig, opt: str, libs: Sequence[str], timings: dict[str, Timing],
         steps: int, skipped: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"config": cfg.label, "optimizer": opt, "steps_per_call": steps,
                           "median_s": {k: t.median / steps for k, t in timings.items()},
                           "ratio": {}, "paired": {}, "skipped": skipped}
    for lib in libs:
        ours = timings[f"bpnet-{lib}"]
        for peer in LIBRARIES[lib]:
            row["ratio"][peer] = ours.median / timings[peer].median
            row["paired"][peer] = paired_ratio(ours, timings[peer])
    return row


_COLUMNS = {"lean-numpy": "numpy: bpnet / lean NumPy",
            "lean-torch": "torch: bpnet / lean torch",
            "autograd-torch": "torch: bpnet / torch autograd",
            "jit-jax": "jax: bpnet / jax.jit step"}


def format_parity_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of bpnet's ``fit`` step over each peer's (lower is better):
    ratio of medians, with the paired median ratio in brackets, and bpnet's own
    time per step."""
    peers = [p for p in _COLUMNS if any(p in r["ratio"] for r in rows)]
    head = ["config", "optimizer", *[_COLUMNS[p] for p in peers], "bpnet numpy step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(peers) + 1)]
    for r in rows:
        cells = [r["config"], r["optimizer"]]
        for p in peers:
            cells.append(f"{r['ratio'][p]:.2f} ({r['paired'][p]:.2f})" if p in r["ratio"]
                         else "-")
        t = r["median_s"].get("bpnet-numpy")
        cells.append("-" if t is None else (f"{t * 1e6:.1f} us" if t < 1e-3
                                            else f"{t * 1e3:.2f} ms"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

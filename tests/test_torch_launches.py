"""The GPU's cost model, counted on the CPU: operations launched and host
transfers per training step on torch, with ``TorchDispatchMode``.

On CUDA every ATen operation is at least one kernel launch, a host read
(``.item()``, ``float()``, ``bool()``) is a synchronisation, and a Python number
turned into a tensor is a blocking host-to-device copy; at batch sizes up to a
few thousand a step is bound by these, not by the GPU's arithmetic.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import bpnet

torch = pytest.importorskip("torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

#: Operations that only describe other memory (no kernel on a GPU).
VIEWS = {"aten.view", "aten.t", "aten.transpose", "aten.slice", "aten.select",
         "aten.unsqueeze", "aten.squeeze", "aten.expand", "aten.alias", "aten.as_strided",
         "aten._reshape_alias", "aten.reshape", "aten.detach", "aten.permute"}
#: Reads of a tensor's value back to the host.
HOST_READS = {"aten._local_scalar_dense", "aten.item"}


class Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def _per_step(net, X, y, steps, batch, **kw):
    """(ops per step by name, Python numbers turned into tensors per step): the
    difference between an epoch of ``steps`` batches and one of one batch."""
    kw = {"epochs": 1, "batch_size": batch, **kw}
    net.fit(X, y, **kw)  # warm: caches, first-call allocations
    made = []
    real = torch.asarray

    def spy(obj, *a, **k):
        if isinstance(obj, (bool, int, float)):
            made.append(obj)
        return real(obj, *a, **k)

    counts = []
    for rows in (steps * batch, batch):
        made.clear()
        c = Count()
        torch.asarray = spy
        try:
            with c:
                net.fit(X[:rows], y[:rows], **kw)
        finally:
            torch.asarray = real
        counts.append((c.ops, len(made)))
    (many, made_many), (one, made_one) = counts
    diff = collections.Counter(many)
    diff.subtract(one)
    return ({k: v / (steps - 1) for k, v in diff.items() if v},
            (made_many - made_one) / (steps - 1))


def _mnist_like(rng, steps, batch):
    X = torch.tensor(rng.standard_normal((steps * batch, 784)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 10, steps * batch))
    return X, y


def test_an_adam_step_of_an_mnist_sized_net_is_at_most_25_operations(rng):
    X, y = _mnist_like(rng, 8, 256)
    net = bpnet.MLP([784, 256, 256, 10], loss="cross_entropy", backend="torch",
                    dtype="float32")
    ops, _ = _per_step(net, X, y, 8, 256, optimizer="adam", lr=1e-3, shuffle=False)
    compute = {k: v for k, v in ops.items() if k not in VIEWS}
    assert sum(compute.values()) <= 25, compute
    # a shuffled epoch gathers each batch from the permutation, x's rows and y's:
    # two more per step, so that memory holds the data set and one batch
    shuffled, _ = _per_step(net, X, y, 8, 256, optimizer="adam", lr=1e-3, shuffle=True)
    extra = {k: v for k, v in shuffled.items() if k not in VIEWS and v != ops.get(k)}
    per_epoch = {"aten.lift_fresh", "aten._to_copy"}  # the order's one transfer an epoch
    assert set(extra) <= {"aten.index_select", *per_epoch}, extra
    # (the one-batch epoch it is measured against draws no order: all 8 steps'
    # gathers fall on the 7 steps of the difference)
    assert shuffled["aten.index_select"] * 7 == 2 * 8
    assert all(extra[k] <= 1 / 7 for k in per_epoch & set(extra))


def test_the_portable_code_is_what_the_fast_path_halves(rng, monkeypatch):
    monkeypatch.setenv("BPNET_PORTABLE", "1")
    X, y = _mnist_like(rng, 4, 64)
    net = bpnet.MLP([784, 256, 256, 10], loss="cross_entropy", backend="torch",
                    dtype="float32")
    ops, _ = _per_step(net, X, y, 4, 64, optimizer="adam", lr=1e-3, shuffle=False)
    assert sum(v for k, v in ops.items() if k not in VIEWS) > 50


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "softplus"])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "logistic", "mse"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_no_host_transfer_in_a_step(rng, activation, loss, optimizer):
    n, k = 4 * 16, 3
    X = torch.tensor(rng.standard_normal((n, 5)), dtype=torch.float32)
    from .helpers import make_targets

    y = torch.tensor(make_targets(loss, n, k, rng))
    net = bpnet.MLP([5, 8, k], activation=activation, loss=loss, backend="torch",
                    dtype="float32")
    kw = {"optimizer": optimizer, "lr": 1e-3, "shuffle": True, "alpha": 1e-3}
    if optimizer == "sgd":
        kw["momentum"] = 0.9
    ops, made = _per_step(net, X, y, 4, 16, **kw)
    assert made == 0  # no Python number became a tensor (a host-to-device copy on CUDA)
    assert not {k: v for k, v in ops.items() if k in HOST_READS}  # no .item(), float(), bool()
    assert np.isfinite(net.evaluate(X, y)["loss"])

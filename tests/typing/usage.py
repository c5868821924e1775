"""The public API as a user types it; checked by mypy (``make typecheck``), never run.

Each ``assert_type`` fails the type check if a public signature loses its type
(turns into ``Any`` or changes); each ``type: ignore[...]`` marks a call that
must stay a type error: with ``warn_unused_ignores`` an ignore that is no longer
needed fails the check too.
"""

from __future__ import annotations

from types import ModuleType
from typing import assert_type

import numpy as np

import bpnet
from bpnet import MLP, GradcheckReport, History
from bpnet._typing import Array, Params
from bpnet.data import Split

X = np.zeros((8, 2))
y = np.zeros(8, dtype=np.int64)

net = MLP([2, 4, 2], activation=["tanh"], loss="cross_entropy", backend="numpy", seed=0)
assert_type(net.xp, ModuleType)
assert_type(net.params, Params)
assert_type(net.fit(X, y, epochs=2, batch_size="auto", optimizer="sgd",
                    lr_schedule=lambda epoch: 0.1 / (1 + epoch),
                    callback=lambda epoch, history: epoch > 5), History)
assert_type(net.fit([[0.0, 1.0], [1.0, 0.0]], [0, 1], validation_data=(X, y)), History)
assert_type(net.partial_fit(X, y, optimizer="adam"), float)
assert_type(net.evaluate(X, y), dict[str, float])
assert_type(net.compute_loss(X, y), float)
assert_type(net.predict(X), Array)
assert_type(net.to("numpy", dtype="float64"), MLP)
assert_type(MLP.load("model.npz", backend="numpy"), MLP)
assert_type(bpnet.gradcheck(net, X, y, method="complex_step"), GradcheckReport)
assert_type(bpnet.get_namespace("numpy"), ModuleType)
assert_type(bpnet.to_numpy(net.predict(X)), np.ndarray)
assert_type(bpnet.data.train_test_split(X, y, test_size=0.5), Split)

# Fixed option sets are Literals: a typo is a type error, not only a run-time one.
net.fit(X, y, optimizer="adamw")  # type: ignore[arg-type]
net.fit(X, y, lr_schedule="linear")  # type: ignore[arg-type]
net.fit(X, y, batch_size="full")  # type: ignore[arg-type]
bpnet.gradcheck(net, X, y, method="backward")  # type: ignore[arg-type]
# A callback takes (epoch, history).
net.fit(X, y, callback=lambda: None)  # type: ignore[arg-type, misc]
# Inputs are array-likes: a dict or None is not data.
net.fit({"x": 1.0}, y)  # type: ignore[arg-type]
net.predict(None)  # type: ignore[arg-type]

"""Twins of :mod:`bpnet.ops` for libraries with NumPy's ufunc interface.

The same values as :data:`bpnet.ops.PORTABLE`, in the same order of
floating-point operations, so results are bit for bit the portable ones; only
where they land differs: into the arrays the step created (a fresh product, a
delta, the gradient buffer, the optimizer's own state) instead of new ones.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._typing import Array
from ..ops import Ops

__all__ = ["UfuncOps"]


def _one(c: Any) -> bool:
    return isinstance(c, (int, float)) and c == 1


class UfuncOps(Ops):
    """In-place and ``out=`` twins of :mod:`bpnet.ops` for libraries with NumPy's
    ufunc interface (NumPy itself, CuPy).

    Every method computes the same values as :data:`~bpnet.ops.PORTABLE`, in the
    same order of floating-point operations, so results are bit for bit the
    portable ones; only where they land differs.
    """

    inplace = True
    writes_out = True

    def __init__(self, mod: ModuleType) -> None:
        self.mod = mod

    def affine(self, a: Array, W: Array, b: Array, xp: ModuleType) -> Array:
        z = a @ W
        z += b  # into the fresh product: one allocation fewer
        return z

    def activate(self, z: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu":
            return self.mod.maximum(z, 0, out=z)
        if act.name == "tanh":
            return self.mod.tanh(z, out=z)
        if act.name == "identity":
            return z
        return act.f(z, xp)

    def value_and_delta(self, loss: Any, z: Array, y: Array, out: Any, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
        if loss.name != "cross_entropy" or w is not None:
            return loss.value_and_delta(z, y, out, xp, w)
        # The portable formulas, operation for operation, in the arrays they create
        # (z is the fresh output pre-activation)
        n = z.shape[0]
        z -= z.max(axis=-1, keepdims=True)  # shifted
        e = self.mod.exp(z)
        s = e.sum(axis=-1, keepdims=True)
        z -= self.mod.log(s)  # log-softmax
        z *= y
        value = self.mod.sum(z, axis=(-2, -1)) * (-1.0 / n)
        e /= s
        e -= y
        e /= n
        return value, e

    def keep_output(self, loss: Any, z: Array, xp: ModuleType) -> Array:
        # value_and_delta's cross-entropy twin computes in z's memory
        return z.copy() if loss.name == "cross_entropy" else z

    def times_df(self, delta: Array, a: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu":
            # delta * (a > 0) without the cast to floats: the product with a
            # boolean is the same, sign of zero included
            return self.mod.multiply(delta, a > 0, out=delta)
        if act.name == "tanh":
            d = a * a
            self.mod.subtract(1.0, d, out=d)
            return self.mod.multiply(delta, d, out=delta)
        return self.mod.multiply(delta, act.df(a, xp), out=delta)

    def grad_w(self, a: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return a.T @ delta
        if not isinstance(a, self.mod.ndarray):
            # a scipy.sparse input (backend/sparse.py): its own sparse product,
            # which has no out=; copied into the buffer
            out[...] = a.T @ delta
            return out
        return self.mod.matmul(a.T, delta, out=out)

    def grad_b(self, ones: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return self.mod.reshape(ones @ delta, (-1,))
        self.mod.matmul(ones, delta, out=self.mod.reshape(out, (1, -1)))
        return out

    def axpby(self, x: Array, a: float, y: Array, b: float, xp: ModuleType) -> Array:
        if not _one(a):
            x *= a
        if _one(b):
            x += y
        else:
            x += b * y
        return x

    def scale(self, g: Array, c: Array, xp: ModuleType) -> Array:
        g *= c
        return g

    def adam_step(self, p: Array, m: Array, v: Array, size: float, eps: float,
                  xp: ModuleType) -> Array:
        d = self.mod.sqrt(v)
        d += eps
        t = size * m
        t /= d
        p -= t
        return p

"""Twins of :mod:`bpnet.ops` on CuPy: NumPy's ufunc twins, and fused kernels.

Each fused kernel does in one launch what the portable operations do in
several, on arrays the step owns:

- a hidden layer's bias and activation after its product (``z + b`` then ``f``:
  3 launches become the GEMM and 1);
- BP2's Hadamard product with ``f'`` read off the activation (2-3 become 1);
- softmax cross-entropy's value and ``delta_L`` (about 10 become 2: one thread
  per row computes the row's maximum, log-sum-exp, cost and delta; a sum adds
  the costs);
- the whole Adam update, and SGD with momentum, over the flat parameter vector
  (8 and 3 become 1);
- ``||W||^2`` as cuBLAS's dot, without the copy array-api-compat's ``vecdot``
  makes.

None of this has run on a GPU: no device was available when it was written.
The GPU tests (``pytest -m gpu``, ``make gpu-check``) compare every kernel with
the portable operations; on the CPU the shared code is tested through
:class:`~bpnet.backend.ufunc_ops.UfuncOps` on NumPy.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from .._typing import Array
from ..activations import LEAKY_SLOPE
from .ufunc_ops import UfuncOps

__all__ = ["CupyOps"]

#: The activation of ``v = z + b`` in CUDA C, ``T`` the element type; the
#: sigmoid is the portable one's, exp(min(v, 0)) / (1 + exp(-|v|)).
_FORWARD = {
    "identity": "out = v",
    "relu": "out = v > (T)0 ? v : (T)0",
    "tanh": "out = tanh(v)",
    "sigmoid": "out = exp(min(v, (T)0)) / ((T)1 + exp(-fabs(v)))",
    "leaky_relu": f"out = v > (T)0 ? v : v * (T){LEAKY_SLOPE!r}",
}

#: ``delta * f'`` from the activation ``a``; ``d * 0`` keeps the sign of zero
#: that the portable product with a 0/1 mask gives.
_BACKWARD = {
    "relu": "out = a > (T)0 ? d : d * (T)0",
    "tanh": "out = d * ((T)1 - a * a)",
    "sigmoid": "out = d * (a * ((T)1 - a))",
    "leaky_relu": f"out = a > (T)0 ? d : d * (T){LEAKY_SLOPE!r}",
}

_SOFTMAX_CE = r"""
template <typename T>
__global__ void bpnet_softmax_ce(const T* z, const T* y, T* delta, T* cost,
                                 const long long n, const long long k, const T inv_n) {
    const long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    const T* zi = z + i * k;
    const T* yi = y + i * k;
    T* di = delta + i * k;
    T m = zi[0];
    for (long long j = 1; j < k; ++j) m = max(m, zi[j]);
    T s = 0;
    for (long long j = 0; j < k; ++j) s += exp(zi[j] - m);
    const T log_s = log(s);
    T c = 0;
    for (long long j = 0; j < k; ++j) {
        const T shifted = zi[j] - m;
        c -= yi[j] * (shifted - log_s);
        di[j] = (exp(shifted) / s - yi[j]) * inv_n;
    }
    cost[i] = c;
}
"""


@functools.cache
def _elementwise(kind: str, name: str) -> Any:
    import cupy

    if kind == "forward":
        return cupy.ElementwiseKernel("T z, T b", "T out", f"T v = z + b; {_FORWARD[name]}",
                                      f"bpnet_bias_{name}")
    return cupy.ElementwiseKernel("T d, T a", "T out", _BACKWARD[name], f"bpnet_times_df_{name}")


@functools.cache
def _adam() -> Any:
    import cupy

    return cupy.ElementwiseKernel(
        "T g, T b1, T b2, T size, T eps", "T p, T m, T v",
        "m = b1 * m + ((T)1 - b1) * g; v = b2 * v + ((T)1 - b2) * (g * g); "
        "p = p - size * m / (sqrt(v) + eps)",
        "bpnet_adam")


@functools.cache
def _momentum(nesterov: bool) -> Any:
    import cupy

    last = "p = p + (mu * v - lr * g)" if nesterov else "p = p + v"
    return cupy.ElementwiseKernel("T g, T mu, T lr", "T p, T v",
                                  f"v = mu * v - lr * g; {last}", f"bpnet_momentum_{nesterov}")


@functools.cache
def _softmax_ce(dtype_name: str) -> Any:
    import cupy

    t = {"float32": "float", "float64": "double"}[dtype_name]
    module = cupy.RawModule(code=_SOFTMAX_CE, options=("-std=c++11",),
                            name_expressions=(f"bpnet_softmax_ce<{t}>",))
    return module.get_function(f"bpnet_softmax_ce<{t}>")


class CupyOps(UfuncOps):
    """:class:`~bpnet.backend.ufunc_ops.UfuncOps` on CuPy, with fused kernels where
    one launch does the work of several (see the module docstring)."""

    def __init__(self) -> None:
        import cupy

        super().__init__(cupy)
        self.cupy = cupy

    def affine_activate(self, a: Array, W: Array, b: Array, act: Any, xp: ModuleType) -> Array:
        if act.name not in _FORWARD:
            return super().affine_activate(a, W, b, act, xp)
        z = a @ W
        return _elementwise("forward", act.name)(z, b, z)

    def times_df(self, delta: Array, a: Array, act: Any, xp: ModuleType) -> Array:
        if act.name not in _BACKWARD:
            return super().times_df(delta, a, act, xp)
        return _elementwise("backward", act.name)(delta, a, delta)

    def value_and_delta(self, loss: Any, z: Array, y: Array, out: Any, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
        if loss.name != "cross_entropy" or w is not None or z.dtype.name not in ("float32",
                                                                                 "float64"):
            return super().value_and_delta(loss, z, y, out, xp, w)
        cupy = self.cupy
        z, y = cupy.ascontiguousarray(z), cupy.ascontiguousarray(y)
        n, k = z.shape
        delta = cupy.empty_like(z)
        cost = cupy.empty((n,), dtype=z.dtype)
        threads = 128
        _softmax_ce(z.dtype.name)(((n + threads - 1) // threads,), (threads,),
                                  (z, y, delta, cost, cupy.int64(n), cupy.int64(k),
                                   z.dtype.type(1.0 / n)))
        return cost.sum() * (1.0 / n), delta

    def keep_output(self, loss: Any, z: Array, xp: ModuleType) -> Array:
        # the fused cross-entropy kernel reads z and writes delta: no copy needed
        if loss.name == "cross_entropy" and z.dtype.name in ("float32", "float64"):
            return z
        return super().keep_output(loss, z, xp)

    def momentum_update(self, p: Array, v: Array, g: Array, mu: float, lr: float,
                        nesterov: bool, xp: ModuleType) -> tuple[Array, Array]:
        t = p.dtype.type
        _momentum(bool(nesterov))(g, t(mu), t(lr), p, v)
        return p, v

    def adam_update(self, p: Array, m: Array, v: Array, g: Array, b1: float, b2: float,
                    size: float, eps: float, xp: ModuleType) -> tuple[Array, Array, Array]:
        t = p.dtype.type
        _adam()(g, t(b1), t(b2), t(size), t(eps), p, m, v)
        return p, m, v

    def sq_norm(self, W: Array, xp: ModuleType) -> Array:
        w = W.reshape(-1)
        return self.cupy.vdot(w, w)

"""Backend-specific fast paths, each behind one switch, each with a portable twin.

The kernels in :mod:`bpnet.kernels` and the update rules in :mod:`bpnet.optim`
are the only forward, backward and optimizer code; nothing here rewrites them.
A fast path either hands the *same* code to a backend's compiler, swaps one
elementwise derivative for a fused equivalent, or lays the parameters out so
that fewer array operations do the same arithmetic:

- JAX: :func:`loss_and_grad_fn` returns ``jax.jit`` of
  :func:`bpnet.kernels.loss_and_grad` (XLA fuses the elementwise work and drops
  the per-operation dispatch; measured 9x faster than eager JAX on a 5-8-3 net
  at batch 64 on CPU).
- CuPy: :func:`specialize` gives ReLU a derivative computed by one
  ``ElementwiseKernel`` (compare and cast in one pass, no boolean temporary)
  instead of ``astype(a > 0)``'s two kernels.  Not measured: no GPU was
  available when it was written; the GPU tests check that it agrees with the
  portable derivative.
- Eager backends (NumPy, CuPy, PyTorch, array-api-strict): :func:`flat_updates`
  says to update all parameters as one flat vector, so an optimizer step is a
  dozen array operations instead of a dozen per tensor (measured on the
  64-128-10 digits network, float32, 2 vCPUs: Adam's update 23 us instead of
  51 us, 27 us with flattening the gradient).  JAX (whose compiler fuses the
  per-tensor updates) and Dask (whose scheduler runs them) keep one update per
  tensor.
- NumPy, CuPy and PyTorch: :func:`ops` gives twins of :mod:`bpnet.ops` that write
  where the portable versions allocate (the bias added into the fresh product,
  ReLU applied in place, gradients written straight into the flat gradient
  buffer, optimizer updates in place on the flat parameter vector) and, on
  PyTorch, call torch's own fused operations (``addmm``, ``threshold_backward``,
  ``add_(alpha=)``, ``addcdiv_``) instead of array-api-compat's wrappers.
- JAX: :func:`compile_step` compiles a whole epoch of training steps (forward,
  backward, update, loss of every batch, in a :func:`fori_loop`) once: one
  dispatch per epoch, and XLA updates the loop's parameters and optimizer
  state in place.

Setting the environment variable ``BPNET_PORTABLE=1`` turns every fast path
off, which is how the tests and benchmarks compare each one with its twin.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat

from .. import kernels
from .._typing import Arch, Array, Params
from ..ops import PORTABLE, Ops

__all__ = [
    "compile_step",
    "compiles",
    "fast_paths_enabled",
    "flat_updates",
    "fori_loop",
    "loss_and_grad_fn",
    "ops",
    "specialize",
]

LossAndGrad = Callable[..., tuple[Array, Params]]


def fast_paths_enabled() -> bool:
    """False when the environment variable ``BPNET_PORTABLE`` is set to anything
    but ``""`` or ``"0"``: then every backend runs the portable code alone."""
    return os.environ.get("BPNET_PORTABLE", "") in ("", "0")


# --- JAX: jit the whole loss-and-gradient -----------------------------------------
@functools.lru_cache(maxsize=64)
def _jax_jitted(arch: Arch, alpha: float) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    def loss_and_grad(params, x, y):
        return kernels.loss_and_grad(params, x, y, arch, alpha=alpha, xp=jnp)

    # The architecture is static (closed over); params, x and y are traced, so
    # one compilation serves every batch of the same shape.
    return jax.jit(loss_and_grad)


def _jax_loss_and_grad(params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0,
                       xp: ModuleType) -> tuple[Array, Params]:
    f = _jax_jitted(arch, float(alpha))
    value, grads = f([tuple(p) for p in params], x, y)
    return value, [tuple(g) for g in grads]


def loss_and_grad_fn(xp: ModuleType) -> LossAndGrad:
    """The fastest correct ``loss_and_grad`` for ``xp``.

    Returns
    -------
    callable
        Same signature and results as :func:`bpnet.kernels.loss_and_grad`:
        ``jax.jit`` of it on JAX, the function itself everywhere else (and
        whenever :func:`fast_paths_enabled` is false).
    """
    if fast_paths_enabled() and array_api_compat.is_jax_namespace(xp):
        return _jax_loss_and_grad
    return kernels.loss_and_grad


# --- CuPy: ReLU' in one elementwise kernel ----------------------------------------
@functools.cache
def _cupy_relu_df_kernel() -> Any:
    import cupy

    # Built lazily: constructing it needs CuPy but no device; compiling (on the
    # first call) needs a device.
    return cupy.ElementwiseKernel("T a", "T d", "d = a > (T)0 ? (T)1 : (T)0", "bpnet_relu_df")


def _cupy_relu_df(a: Array, xp: ModuleType) -> Array:
    return _cupy_relu_df_kernel()(a)


def specialize(arch: Arch, xp: ModuleType) -> Arch:
    """``arch`` with the backend's fused derivatives where ``xp`` has them.

    Equal in value to ``arch``; on CuPy (with fast paths enabled) ReLU's ``df``
    is a single fused kernel.  Forward functions are never replaced.
    """
    if not (fast_paths_enabled() and array_api_compat.is_cupy_namespace(xp)):
        return arch
    hidden = tuple(dataclasses.replace(act, df=_cupy_relu_df) if act.name == "relu" else act
                   for act in arch.hidden)
    return dataclasses.replace(arch, hidden=hidden)


# --- one flat vector of parameters on eager backends --------------------------------
def flat_updates(xp: ModuleType) -> bool:
    """Whether optimizers should update all parameters as one flat vector on ``xp``
    (eager backends, fast paths enabled) rather than one tensor at a time."""
    if not fast_paths_enabled():
        return False
    return not (array_api_compat.is_jax_namespace(xp) or array_api_compat.is_dask_namespace(xp))


# --- twins of bpnet.ops: in place, into buffers, fused ------------------------------
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

    def adam_step(self, p: Array, m: Array, v: Array, size: float, eps: float,
                  xp: ModuleType) -> Array:
        d = self.mod.sqrt(v)
        d += eps
        t = size * m
        t /= d
        p -= t
        return p


class CupyOps(UfuncOps):
    """:class:`UfuncOps` on CuPy, with ReLU's derivative as one fused kernel."""

    def times_df(self, delta: Array, a: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu":
            return _cupy_relu_times_kernel()(delta, a, delta)
        return super().times_df(delta, a, act, xp)


@functools.cache
def _cupy_relu_times_kernel() -> Any:
    import cupy

    return cupy.ElementwiseKernel("T d, T a", "T out", "out = a > (T)0 ? d : d * (T)0",
                                  "bpnet_relu_times")


class TorchOps(Ops):
    """Twins of :mod:`bpnet.ops` in torch's own calls: one fused kernel where the
    portable version takes several (``addmm``, ``threshold_backward``,
    ``add_(alpha=)``, ``addcdiv_``), in place where the portable version
    allocates, and without array-api-compat's per-call wrappers.  Results equal
    the portable ones to rounding (torch may fuse a multiply-add)."""

    inplace = True
    writes_out = True

    def __init__(self) -> None:
        import torch

        self.torch = torch
        # addmm and ReLU in one op where this torch has it (a private name, so
        # looked up, not assumed; the two calls are the fallback)
        self._addmm_relu = getattr(torch, "_addmm_activation", None)
        self._zeros: dict[Any, Any] = {}
        aten = torch.ops.aten
        self._backward = {
            "relu": lambda d, a: aten.threshold_backward(d, a, 0),
            "tanh": aten.tanh_backward,
            "sigmoid": aten.sigmoid_backward,
        }

    def affine(self, a: Array, W: Array, b: Array, xp: ModuleType) -> Array:
        return self.torch.addmm(b, a, W)

    def affine_activate(self, a: Array, W: Array, b: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu" and self._addmm_relu is not None:
            return self._addmm_relu(b, a, W)  # one kernel (cuBLASLt's epilogue on CUDA)
        return self.activate(self.affine(a, W, b, xp), act, xp)

    def take_rows(self, x: Array, rows: Array, xp: ModuleType) -> Array:
        return x.index_select(0, rows)  # without take's wrap-around of negative indices

    def value_and_delta(self, loss: Any, z: Array, y: Array, out: Any, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
        if loss.name != "cross_entropy":
            return loss.value_and_delta(z, y, out, xp, w)
        # log_softmax is one fused, stable kernel; the delta reuses its output
        torch = self.torch
        logp = torch.log_softmax(z, dim=1)
        if w is None:
            n = z.shape[0]
            # -sum(y * logp) / n as one product with its scale (beta=0 ignores the
            # 1x1 input)
            value = torch.addmm(self._zero(logp), y.reshape(1, -1), logp.reshape(-1, 1),
                                beta=0, alpha=-1.0 / n).reshape(())
            return value, logp.exp_().sub_(y).mul_(1.0 / n)
        value = -torch.sum((y * logp).sum(dim=1, keepdim=True) * w)
        return value, logp.exp_().sub_(y).mul_(w)

    def ones_row(self, delta: Array, xp: ModuleType) -> Array | None:
        return None  # grad_b sums directly

    def _zero(self, like: Array) -> Array:
        key = (like.dtype, like.device)
        zero = self._zeros.get(key)
        if zero is None:
            zero = self._zeros[key] = self.torch.zeros((1, 1), dtype=like.dtype,
                                                       device=like.device)
        return zero

    def activate(self, z: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu":
            return z.relu_()
        if act.name == "tanh":
            return z.tanh_()
        if act.name == "identity":
            return z
        return act.f(z, xp)

    def times_df(self, delta: Array, a: Array, act: Any, xp: ModuleType) -> Array:
        fused = self._backward.get(act.name)
        if fused is not None:
            return fused(delta, a)
        return delta.mul_(act.df(a, xp))

    def grad_w(self, a: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return a.T @ delta
        return self.torch.mm(a.T, delta, out=out)

    def grad_b(self, ones: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return self.torch.sum(delta, dim=0)
        return self.torch.sum(delta, dim=0, out=out)

    def axpby(self, x: Array, a: float, y: Array, b: float, xp: ModuleType) -> Array:
        if not _one(a):
            x.mul_(a)
        return x.add_(y) if _one(b) else x.add_(y, alpha=b)

    def adam_moments(self, m: Array, v: Array, g: Array, b1: float, b2: float,
                     xp: ModuleType) -> tuple[Array, Array]:
        return m.lerp_(g, 1.0 - b1), v.mul_(b2).addcmul_(g, g, value=1.0 - b2)

    def adam_step(self, p: Array, m: Array, v: Array, size: float, eps: float,
                  xp: ModuleType) -> Array:
        return p.addcdiv_(m, v.sqrt().add_(eps), value=-size)

    def epoch_total(self, values: list[Array], sizes: list[int], xp: ModuleType) -> Array:
        # one product at the end of the epoch instead of two operations per step
        torch = self.torch
        stacked = torch.stack(values)
        return torch.dot(stacked, torch.tensor(sizes, dtype=stacked.dtype,
                                               device=stacked.device))


def _one(c: Any) -> bool:
    return isinstance(c, (int, float)) and c == 1


@functools.cache
def _ops_for(name: str) -> Ops:
    if name == "numpy":
        import numpy

        return UfuncOps(numpy)
    if name == "cupy":
        import cupy

        return CupyOps(cupy)
    if name == "torch":
        return TorchOps()
    return PORTABLE


def ops(xp: ModuleType) -> Ops:
    """The fastest correct :class:`~bpnet.ops.Ops` for ``xp``: an in-place twin on
    NumPy, CuPy and PyTorch (fast paths enabled), :data:`~bpnet.ops.PORTABLE`
    elsewhere."""
    if not fast_paths_enabled():
        return PORTABLE
    if array_api_compat.is_numpy_namespace(xp):
        return _ops_for("numpy")
    if array_api_compat.is_cupy_namespace(xp):
        return _ops_for("cupy")
    if array_api_compat.is_torch_namespace(xp):
        return _ops_for("torch")
    return PORTABLE


# --- JAX: the whole step compiled ---------------------------------------------------
def compiles(xp: ModuleType) -> bool:
    """Whether :func:`compile_step` compiles on ``xp`` (JAX, fast paths enabled)."""
    return fast_paths_enabled() and array_api_compat.is_jax_namespace(xp)


def fori_loop(xp: ModuleType) -> Callable[..., Any]:
    """``jax.lax.fori_loop`` (``(lower, upper, body, init) -> carry``): a loop that
    compiled code runs itself, one dispatch for all its iterations."""
    import jax

    return jax.lax.fori_loop


def compile_step(xp: ModuleType, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """``jax.jit`` of ``fn`` (a whole epoch of training steps), or None where ``xp``
    has no compiler (or fast paths are off)."""
    if not compiles(xp):
        return None
    import jax

    return jax.jit(fn)

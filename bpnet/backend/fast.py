"""Every backend-specific fast path, behind one switch, each with a portable twin.

The kernels in :mod:`bpnet.kernels` and the update rules in :mod:`bpnet.optim`
are the only forward, backward and optimizer code; nothing here rewrites them.
A fast path either hands the *same* code to a backend's compiler, swaps one of
the composite operations of :mod:`bpnet.ops` for a twin that computes the same
values with fewer or cheaper calls, or lays the parameters out so that fewer
array operations do the same arithmetic:

- NumPy (:mod:`~bpnet.backend.ufunc_ops`), CuPy (:mod:`~bpnet.backend.cupy_ops`)
  and PyTorch (:mod:`~bpnet.backend.torch_ops`): :func:`ops` gives twins that
  write where the portable operations allocate (the bias added into the fresh
  product, ReLU applied in place, gradients written straight into the flat
  gradient buffer, optimizer updates in place on the flat parameter vector),
  with CuPy's fused elementwise kernels and PyTorch's own fused calls
  (``addmm``, ``threshold_backward``, ``addcdiv_``) in place of several
  operations, and without array-api-compat's per-call wrappers.
- JAX: :func:`compile_step` compiles a whole epoch of training steps (forward,
  backward, update, loss of every batch, in a :func:`fori_loop`) once: one
  dispatch per epoch, and XLA updates the loop's parameters and optimizer
  state in place.  :func:`loss_and_grad_fn` is ``jax.jit`` of
  :func:`bpnet.kernels.loss_and_grad` for single gradients (measured 9x faster
  than eager JAX on a 5-8-3 net at batch 64 on CPU).
- Other eager backends (array-api-strict): :func:`flat_updates` says to update
  all parameters as one flat vector, so an optimizer step is a dozen array
  operations instead of a dozen per tensor.  Dask, whose scheduler runs the
  operations, keeps one update per tensor.

Setting the environment variable ``BPNET_PORTABLE=1`` turns every fast path
off, which is how the tests and benchmarks compare each one with its twin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat

from .. import kernels
from .._typing import Arch, Array, Params
from ..ops import PORTABLE, Ops
from . import lazy

__all__ = [
    "compile_step",
    "compiles",
    "dynamic_rows",
    "fast_paths_enabled",
    "flat_updates",
    "fori_loop",
    "loss_and_grad_fn",
    "ops",
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

    def loss_and_grad(params: Params, x: Array, y: Array, w: Array | None,
                      n: Array | None) -> tuple[Array, Params]:
        return kernels.loss_and_grad(params, x, y, arch, alpha=alpha, xp=jnp,  # type: ignore[return-value]
                                     w=w, n=n)

    # The architecture is static (closed over); params, x, y and the weights
    # (w, and n as a 0-d array) are traced, so one compilation serves every
    # batch of the same shape, weighted (one more) or not.
    return jax.jit(loss_and_grad)


def _jax_loss_and_grad(params: Params, x: Array, y: Array, arch: Arch, *, alpha: float = 0.0,
                       xp: ModuleType, w: Array | None = None,
                       n: Any = None) -> tuple[Array, Params]:
    f = _jax_jitted(arch, float(alpha))
    if n is not None:  # a traced 0-d array, not a Python float: no retrace per batch
        n = xp.asarray(n, dtype=x.dtype)
    value, grads = f([tuple(p) for p in params], x, y, w, n)
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
    return kernels.loss_and_grad  # type: ignore[return-value]


# --- one flat vector of parameters on eager backends --------------------------------
def flat_updates(xp: ModuleType) -> bool:
    """Whether optimizers should update all parameters as one flat vector on ``xp``
    (eager backends, fast paths enabled) rather than one tensor at a time."""
    if not fast_paths_enabled():
        return False
    return not (array_api_compat.is_jax_namespace(xp) or lazy.is_lazy(xp))


@functools.cache
def _ops_for(name: str) -> Ops:
    # Imported here: each twin names its library, which only its backend loads.
    if name == "numpy":
        import numpy

        from .ufunc_ops import UfuncOps

        return UfuncOps(numpy)
    if name == "cupy":
        from .cupy_ops import CupyOps

        return CupyOps()
    if name == "torch":
        from .torch_ops import TorchOps

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


def dynamic_rows(xp: ModuleType) -> Callable[[Array, Any, int], Array]:
    """``rows(x, lo, size)``: ``x[lo:lo + size]`` for a ``lo`` traced by the compiler
    (``jax.lax.dynamic_slice_in_dim``; the standard's slices need static bounds)."""
    import jax

    return lambda x, lo, size: jax.lax.dynamic_slice_in_dim(x, lo, size, axis=0)


def compile_step(xp: ModuleType, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """``jax.jit`` of ``fn`` (a whole epoch of training steps), or None where ``xp``
    has no compiler (or fast paths are off)."""
    if not compiles(xp):
        return None
    import jax

    return jax.jit(fn)

"""Backend-specific fast paths, each behind a capability check with the portable
code as its twin.

The kernels in :mod:`bpnet.kernels` are the only forward/backward code; nothing
here rewrites them.  A fast path either hands the *same* kernel to a backend's
compiler or swaps one elementwise derivative for a fused equivalent:

- JAX: :func:`loss_and_grad_fn` returns ``jax.jit`` of
  :func:`bpnet.kernels.loss_and_grad` (XLA fuses the elementwise work and drops
  the per-operation dispatch; measured 9x faster than eager JAX on a 5-8-3 net
  at batch 64 on CPU).
- CuPy: :func:`specialize_hidden` gives ReLU a derivative computed by one
  ``ElementwiseKernel`` (compare and cast in one pass, no boolean temporary)
  instead of ``astype(a > 0)``'s two kernels.  Not measured: no GPU was
  available when it was written; ``tests/test_backends.py`` checks on a GPU that
  it agrees with the portable derivative.

Setting the environment variable ``BPNET_PORTABLE=1`` turns every fast path
off, which is how the tests and benchmarks compare each one with its twin.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import array_api_compat

from . import kernels
from .activations import Activation
from .losses import Loss

__all__ = ["fast_paths_enabled", "loss_and_grad_fn", "specialize_hidden"]

Array = Any
LossAndGrad = Callable[..., tuple[Array, list[tuple[Array, Array]]]]


def fast_paths_enabled() -> bool:
    """False when the environment variable ``BPNET_PORTABLE`` is set to anything
    but ``""`` or ``"0"``: then every backend runs the portable kernels alone."""
    return os.environ.get("BPNET_PORTABLE", "") in ("", "0")


# --- JAX: jit the whole loss-and-gradient -----------------------------------------
@functools.lru_cache(maxsize=64)
def _jax_jitted(
    hidden: tuple[Activation, ...], out: Activation, loss: Loss, alpha: float
) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    def step(params, x, y):
        return kernels.loss_and_grad(params, x, y, hidden, out, loss, alpha=alpha, xp=jnp)

    # The configuration is static (closed over); params, x and y are traced, so
    # one compilation serves every batch of the same shape.
    return jax.jit(step)


def _jax_loss_and_grad(
    params: Sequence[tuple[Array, Array]], x: Array, y: Array, hidden: Sequence[Activation],
    out: Activation, loss: Loss, *, alpha: float = 0.0, xp: ModuleType,
) -> tuple[Array, list[tuple[Array, Array]]]:
    f = _jax_jitted(tuple(hidden), out, loss, float(alpha))
    value, grads = f([tuple(p) for p in params], x, y)
    return value, [tuple(g) for g in grads]


def loss_and_grad_fn(xp: ModuleType) -> LossAndGrad:
    """The fastest correct ``loss_and_grad`` for ``xp``.

    Parameters
    ----------
    xp : namespace

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


def specialize_hidden(xp: ModuleType, hidden: Sequence[Activation]) -> list[Activation]:
    """The hidden activations with backend-fused derivatives where ``xp`` has one.

    Parameters
    ----------
    xp : namespace
    hidden : sequence of Activation

    Returns
    -------
    list of Activation
        Equal in value to ``hidden``; on CuPy (with fast paths enabled) ReLU's
        ``df`` is a single fused kernel.  Forward functions are never replaced.
    """
    if not (fast_paths_enabled() and array_api_compat.is_cupy_namespace(xp)):
        return list(hidden)
    return [
        dataclasses.replace(act, df=_cupy_relu_df) if act.name == "relu" else act
        for act in hidden
    ]

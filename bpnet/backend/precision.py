"""TensorFloat-32: float32 matrix products at reduced precision, by choice.

On NVIDIA GPUs from Ampere on, cuBLAS can compute float32 matrix products on
tensor cores in TF32: each input rounded to a 10-bit mantissa (about 3 decimal
digits, relative error ~5e-4 per product term), products accumulated in
float32.  That is 3-5x faster on H100-class GPUs, and a float32 network trains
as well with it in practice; but a float32 result then agrees with float64 to
about 1e-3 instead of 1e-6, which is why bpnet never turns it on silently.

:func:`matmul_precision` sets it for a block and restores what was there:

- CuPy: the compute type of float32 products (what the ``CUPY_TF32``
  environment variable sets at start-up);
- PyTorch: ``torch.backends.cuda.matmul.allow_tf32``;
- JAX: ``jax.default_matmul_precision`` (``"tensorfloat32"`` or ``"float32"``).
  JAX's own default on GPUs *is* TF32-class; ``tf32=False`` asks for full
  float32.  A compiled step takes the precision it was traced under, so it is
  part of what selects a compiled step.

Other backends compute on CPUs, where the setting means nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import array_api_compat

__all__ = ["matmul_precision"]


@contextlib.contextmanager
def matmul_precision(xp: ModuleType, tf32: bool) -> Iterator[None]:
    """float32 matrix products of ``xp`` in TensorFloat-32 (``tf32=True``) or full
    float32 (False) inside the block; the previous setting is restored."""
    if array_api_compat.is_cupy_namespace(xp):
        with _cupy(tf32):
            yield
    elif array_api_compat.is_torch_namespace(xp):
        with _torch(tf32):
            yield
    elif array_api_compat.is_jax_namespace(xp):
        import jax

        with jax.default_matmul_precision("tensorfloat32" if tf32 else "float32"):
            yield
    else:
        yield


@contextlib.contextmanager
def _torch(tf32: bool) -> Iterator[None]:
    import torch

    flags = torch.backends.cuda.matmul
    before = flags.allow_tf32
    flags.allow_tf32 = bool(tf32)
    try:
        yield
    finally:
        flags.allow_tf32 = before


@contextlib.contextmanager
def _cupy(tf32: bool) -> Iterator[None]:
    import numpy as np

    try:  # CuPy keeps the compute type per dtype here; no public setter exists
        from cupy._core import _routines_linalg as linalg
    except ImportError:  # another CuPy layout: leave its default (CUPY_TF32) alone
        yield
        return
    wanted = linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT
    dtypes = (np.float32, np.complex64)
    before = [linalg.get_compute_type(d) for d in dtypes]
    try:
        for d in dtypes:
            linalg.set_compute_type(d, wanted)
    except ValueError:  # a GPU without TF32 (before Ampere) computes in full float32
        pass
    try:
        yield
    finally:
        for d, b in zip(dtypes, before, strict=True):  # type: ignore[assignment]
            linalg.set_compute_type(d, b)

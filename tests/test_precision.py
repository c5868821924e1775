"""The TF32 switch sets each library's own flag for a block and puts it back."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from bpnet.backend.precision import matmul_precision


def test_torch_flag_is_set_for_the_block_and_restored():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    flags = torch.backends.cuda.matmul
    before = flags.allow_tf32
    for wanted in (True, False):
        with matmul_precision(xp, wanted):
            assert flags.allow_tf32 is wanted
        assert flags.allow_tf32 == before


def test_jax_precision_is_set_for_the_block():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with matmul_precision(jnp, False):
        assert jax.config.jax_default_matmul_precision == "float32"
    with matmul_precision(jnp, True):
        assert jax.config.jax_default_matmul_precision == "tensorfloat32"


def test_cupy_compute_type_is_set_and_restored(monkeypatch):
    pytest.importorskip("cupy")
    import array_api_compat.cupy as cpx

    state = {np.float32: 1, np.complex64: 1}
    fake = types.SimpleNamespace(
        COMPUTE_TYPE_TF32=7, COMPUTE_TYPE_DEFAULT=1,
        get_compute_type=lambda d: state[d],
        set_compute_type=lambda d, v: state.__setitem__(d, v))
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", fake)
    monkeypatch.setattr("cupy._core._routines_linalg", fake, raising=False)
    with matmul_precision(cpx, True):
        assert state == {np.float32: 7, np.complex64: 7}
    assert state == {np.float32: 1, np.complex64: 1}


def test_cpu_backends_are_left_alone():
    with matmul_precision(np, True):
        assert np.ones((2, 2)) @ np.ones(2) @ np.ones(2) == 4.0

"""The parity benchmark compares like with like: every hand-written peer takes
the same steps as bpnet's fit, from the same weights, on the same batches."""

from __future__ import annotations

import numpy as np
import pytest

from bpnet.bench import jax_x64, parity


def _relative(got, want) -> float:
    return max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-300))
               for pa, pb in zip(got, want, strict=True) for a, b in zip(pa, pb, strict=True))


@pytest.mark.parametrize("optimizer", list(parity.OPTIMIZERS))
@pytest.mark.parametrize("config", ["C4", "C1"])
@pytest.mark.parametrize("name", ["lean-numpy", "bpnet-torch", "lean-torch", "autograd-torch",
                                  "bpnet-jax", "jit-jax"])
def test_every_contender_takes_bpnets_steps(name, config, optimizer):
    lib = name.rsplit("-", 1)[-1]
    if parity.missing(lib):
        pytest.skip(parity.missing(lib))
    cfg = parity.PARITY_CONFIGS[config]
    ref = parity.runner("bpnet-numpy", cfg, optimizer, steps=4)
    ref.fn()
    with jax_x64():
        r = parity.runner(name, cfg, optimizer, steps=4)
        r.fn()
        got = r.weights()
    # torch.optim.Adam adds eps to the bias-corrected root, bpnet (and the
    # paper's section 2, and scikit-learn) to the uncorrected one
    tol = 1e-2 if (name, optimizer) == ("autograd-torch", "adam") else 1e-12
    assert _relative(got, ref.weights()) < tol
    assert _relative(got, [(W, b) for W, b in parity._data(cfg, 4).params]) > 1e-6  # they moved


def test_the_table_reports_each_library_against_its_own_peers():
    rows = parity.parity_rows(["C4"], ["sgd"], ["numpy"], steps=2, repeats=1, min_block_s=0.0,
                              pause=0.0)
    (row,) = rows
    assert set(row["ratio"]) == {"lean-numpy"} and row["ratio"]["lean-numpy"] > 0
    text = parity.format_parity_table(rows)
    assert "numpy: bpnet / lean NumPy" in text and "C4 2-5-1 b4 f64" in text

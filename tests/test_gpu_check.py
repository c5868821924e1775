"""``make gpu-check`` runs where there is no GPU too: it says so and exits 0;
its table reads the report it writes."""

from __future__ import annotations

import importlib

import pytest

import bpnet


def test_without_a_cuda_device_it_says_so_and_exits_0(capsys, monkeypatch):
    gpu_check = importlib.import_module("benchmarks.gpu_check")
    if bpnet.cuda_available():
        pytest.skip("a CUDA device answers: make gpu-check runs for real")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device answers: make gpu-check runs for real")
    assert gpu_check.main([]) == 0
    assert "no CUDA device answers" in capsys.readouterr().out


def test_the_table_shows_gpu_and_cpu_time_and_the_sweep():
    gpu_check = importlib.import_module("benchmarks.gpu_check")
    step = {"cpu_s_per_step": 1e-4, "gpu_s_per_step": 2e-4}
    report = {
        "gpu_tests": {"summary": "12 passed", "returncode": 0},
        "torch_sync_debug": {"synchronisations_in_an_epoch": []},
        "steps": [{"net": "784-256-256-10", "batch": 256, "bpnet-cupy": step,
                   "torch-compile": {"error": "RuntimeError: no triton"}},
                  {"net": "1024-1024-1024-10", "batch": 1024, "bpnet-cupy": step,
                   "bpnet-cupy-tf32": step, "torch-compile": step}],
        "sweep": [{"batch": 64, "numpy": {"cpu_s_per_step": 1e-3, "gpu_s_per_step": 0.0},
                   "bpnet-cupy": step}],
    }
    text = gpu_check.format_table(report)
    assert "12 passed" in text and "no synchronisation inside an epoch" in text
    assert "0.200 / 0.100" in text and "RuntimeError" in text
    assert "bpnet-cupy-tf32 GPU / CPU" in text  # a column only some rows have
    assert "| 784-256-256-10 | 256 | 0.200 / 0.100 | RuntimeError: no triton | – |" in text
    assert "| 64 | 64,000 | 320,000 |" in text  # a step costs the longer of GPU and CPU time

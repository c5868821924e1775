"""``make gpu-check``: everything a GPU can tell us, in one short run (< 5 min).

1. The GPU tests (``pytest -m gpu``): CuPy's fused kernels and device handling
   against the portable code, on the device.
2. ``torch.cuda.set_sync_debug_mode("error")`` over a whole ``fit`` on CUDA
   torch: any hidden synchronisation inside an epoch raises.
3. A fit step of 784-256-256-10 at batch 256, 4,096 and 65,536 and of
   1024-1024-1024-10 at batch 1,024 and 16,384, on CuPy and CUDA torch (bpnet's
   public ``fit``, Adam, float32), against torch eager (``nn.Linear`` stack,
   ``torch.optim.Adam``) and ``torch.compile`` of that step where it compiles:
   CPU and GPU time per step, from CUDA events around a pipelined epoch (no
   synchronisation between steps).  bpnet runs in full float32 (``tf32=False``),
   as torch eager does by default, and on the 1024-wide net also with
   ``tf32=True``.
4. Samples per second against the batch size, GPU against the host's NumPy:
   where the GPU starts to pay.

Writes ``bench-results/gpu_check.json`` and prints one table.  On a machine
without a CUDA device it says so and exits 0.

    python -m benchmarks.gpu_check [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 8  # steps per timed epoch
NETS = {"mnist": (784, 256, 256, 10), "gemm": (1024, 1024, 1024, 10)}
CASES = [("mnist", 256), ("mnist", 4096), ("mnist", 65536), ("gemm", 1024), ("gemm", 16384)]
SWEEP = [64, 256, 1024, 4096, 16384, 65536]


def _data(sizes: tuple[int, ...], batch: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch * steps, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch * steps)
    return x, y


def _cuda_timer(lib: str):
    """(start, stop) -> (cpu_s, gpu_s) around a callable, with CUDA events."""
    if lib == "cupy":
        import cupy

        def timed(fn):
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            cupy.cuda.get_current_stream().synchronize()
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            cpu = time.perf_counter() - t0
            end.synchronize()
            return cpu, cupy.cuda.get_elapsed_time(start, end) / 1e3
        return timed
    import torch

    def timed(fn):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        start.record()
        fn()
        end.record()
        cpu = time.perf_counter() - t0
        end.synchronize()
        return cpu, start.elapsed_time(end) / 1e3
    return timed


def _bpnet(lib: str, sizes, batch: int, steps: int, tf32: bool | None = None):
    """A callable running one epoch of ``steps`` Adam steps through ``MLP.fit``."""
    import bpnet
    from bpnet.backend import from_host

    device = "cuda" if lib == "torch" else None
    net = bpnet.MLP(list(sizes), loss="cross_entropy", backend=lib, device=device,
                    dtype="float32", tf32=tf32)
    x, y = _data(sizes, batch, steps)
    X, Y = from_host(net.xp, x, net.device), from_host(net.xp, y, net.device)

    def epoch():
        net.fit(X, Y, epochs=1, batch_size=batch, shuffle=True, optimizer="adam", lr=1e-3)
    return epoch


def _torch_eager(sizes, batch: int, steps: int, compiled: bool = False):
    import torch

    layers: list[Any] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _data(sizes, batch, steps)
    X, Y = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    if compiled:
        step = torch.compile(step)

    def epoch():
        order = torch.randperm(X.shape[0], device=X.device)
        total = None
        for i in range(steps):
            rows = order[i * batch:(i + 1) * batch]
            v = step(X.index_select(0, rows), Y.index_select(0, rows))
            total = v if total is None else total + v
        return total
    return epoch


def _time(timed, fn, repeats: int) -> dict[str, float]:
    fn()  # warm-up: compilation, allocation, cuBLAS heuristics
    runs = [timed(fn) for _ in range(repeats)]
    cpu = float(np.median([r[0] for r in runs])) / STEPS
    gpu = float(np.median([r[1] for r in runs])) / STEPS
    return {"cpu_s_per_step": cpu, "gpu_s_per_step": gpu}


def run_gpu_tests(root: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests",
                           "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return {"returncode": proc.returncode, "summary": tail}


def sync_debug_fit() -> dict[str, Any]:
    """The steps of an epoch under ``set_sync_debug_mode("error")``: any
    synchronisation between them raises.  (The epoch's one read-back of its
    loss, and the transfer of a shuffled order, come before and after, by
    design.)"""
    import torch

    import bpnet
    from bpnet.optim import Adam
    from bpnet.params import Layout
    from bpnet.train import loop, make_step
    from bpnet.train.loop import Run

    sizes, batch = NETS["mnist"], 256
    net = bpnet.MLP(list(sizes), loss="mse", backend="torch", device="cuda", dtype="float32")
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((STEPS * batch, sizes[0]), dtype=np.float32)).cuda()
    y = torch.tensor(rng.standard_normal((STEPS * batch, sizes[-1]), dtype=np.float32)).cuda()
    found: list[str] = []
    for opt in (Adam(), bpnet.optim.SGD(momentum=0.9)):
        step = make_step(net.arch, opt, Layout.of(net.params), xp=net.xp, batch_size=batch)
        packed = step.pack(net.params)
        run = Run(packed, step.init(packed), None)
        data = step.data(x, y, batch)
        bounds = loop.batches(x.shape[0], batch)
        step.epoch(run, data, None, bounds, 1e-3)  # warm: first calls may set up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            step.epoch(run, data, None, bounds, 1e-3)
        except RuntimeError as exc:
            found.append(f"{opt.name}: {str(exc).splitlines()[0]}")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return {"synchronisations_in_an_epoch": found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent /
                   "bench-results")
    args = p.parse_args(argv)
    import bpnet

    root = Path(__file__).resolve().parent.parent
    libs = []
    if bpnet.cuda_available():
        libs.append("cupy")
    try:
        import torch

        if torch.cuda.is_available():
            libs.append("torch")
    except ImportError:
        pass
    if not libs:
        print("gpu-check: no CUDA device answers (cupy.is_available() and "
              "torch.cuda.is_available() are both false); nothing to check here")
        return 0
    repeats = 3 if args.quick else 5
    report: dict[str, Any] = {"machine": bpnet.bench.machine_info(), "libraries": libs}
    report["gpu_tests"] = run_gpu_tests(root)
    if "torch" in libs:
        report["torch_sync_debug"] = sync_debug_fit()
    rows = []
    for net_name, batch in CASES:
        sizes = NETS[net_name]
        row: dict[str, Any] = {"net": "-".join(map(str, sizes)), "batch": batch}
        for lib in libs:
            timed = _cuda_timer(lib)
            row[f"bpnet-{lib}"] = _time(timed, _bpnet(lib, sizes, batch, STEPS, False),
                                        repeats)
            if net_name == "gemm":  # where the matrix products, and so TF32, dominate
                row[f"bpnet-{lib}-tf32"] = _time(timed, _bpnet(lib, sizes, batch, STEPS, True),
                                                 repeats)
        if "torch" in libs:
            timed = _cuda_timer("torch")
            row["torch-eager"] = _time(timed, _torch_eager(sizes, batch, STEPS), repeats)
            try:
                row["torch-compile"] = _time(timed, _torch_eager(sizes, batch, STEPS, True),
                                             repeats)
            except Exception as exc:  # no Triton, an unsupported GPU...
                row["torch-compile"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        rows.append(row)
    report["steps"] = rows
    sweep = []
    for batch in SWEEP:
        entry: dict[str, Any] = {"batch": batch}
        entry["numpy"] = _time(lambda fn: (_host_time(fn), 0.0),
                               _bpnet("numpy", NETS["mnist"], batch, STEPS), 3)
        for lib in libs:
            entry[f"bpnet-{lib}"] = _time(_cuda_timer(lib),
                                          _bpnet(lib, NETS["mnist"], batch, STEPS), 3)
        sweep.append(entry)
    report["sweep"] = sweep
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    print(format_table(report))
    print(f"\n(raw figures: {path})")
    return 0 if report["gpu_tests"]["returncode"] == 0 else 1


def _host_time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def format_table(report: dict[str, Any]) -> str:
    lines = [f"GPU tests: {report['gpu_tests']['summary']}"]
    if "torch_sync_debug" in report:
        found = report["torch_sync_debug"]["synchronisations_in_an_epoch"]
        lines.append("torch sync debug: " + ("no synchronisation inside an epoch" if not found
                                             else f"SYNCS: {found}"))
    names = list(dict.fromkeys(k for row in report["steps"] for k in row
                               if k not in ("net", "batch")))
    lines.append("")
    lines.append("| net | batch | " + " | ".join(f"{n} GPU / CPU ms per step" for n in names)
                 + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for row in report["steps"]:
        cells = []
        for n in names:
            r = row.get(n, {"error": "–"})
            cells.append(r["error"][:30] if "error" in r else
                         f"{r['gpu_s_per_step'] * 1e3:.3f} / {r['cpu_s_per_step'] * 1e3:.3f}")
        lines.append(f"| {row['net']} | {row['batch']} | " + " | ".join(cells) + " |")
    lines.append("")
    libs = [k for k in report["sweep"][0] if k != "batch"]
    lines.append("| batch | " + " | ".join(f"{lib} samples/s" for lib in libs) + " |")
    lines.append("|---:|" + "---:|" * len(libs))
    for entry in report["sweep"]:
        cells = []
        for lib in libs:
            t = entry[lib]
            per = t["gpu_s_per_step"] if lib != "numpy" else t["cpu_s_per_step"]
            per = max(per, t["cpu_s_per_step"])  # a step costs the longer of the two
            cells.append(f"{entry['batch'] / per:,.0f}")
        lines.append(f"| {entry['batch']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

"""What the suites share: where results go, the one results writer, the pause.

Import with ``from .helpers import ...``.  Fixtures and hooks are in
``conftest.py``; the measurement core (timer, contenders, machine info) is
:mod:`bpnet.bench`, shared with ``bpnet bench``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bpnet import bench

#: Where every suite files its figures (beside ``bpnet bench``'s default).
RESULTS = Path(__file__).resolve().parent.parent / "bench-results"

#: Seconds between the two sides of a round: OpenBLAS's worker threads spin for
#: ~0.1 s after a call and would slow whichever side runs next.
PAUSE_S = 0.2


def save_results(name: str, payload: dict[str, Any], *, entry: str | None = None) -> Path:
    """Write ``payload`` to ``bench-results/<name>.json``; with ``entry``, file it
    under that key of the file's existing entries instead (the others are kept).

    Returns
    -------
    Path
        The file written.
    """
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    if entry is not None:
        everything = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        everything[entry] = payload
        payload = everything
    return bench.write_json(path, payload)


def report(name: str, benchmark: Any, figures: dict[str, Any],
           file: str = "bench_training") -> None:
    """Attach ``figures`` (and the machine they were taken on) to ``benchmark``,
    print them, and, unless benchmarks are disabled, file them under ``name`` in
    ``bench-results/<file>.json``."""
    machine = bench.machine_info()  # CPU, BLAS pools and kernel, thread counts, load
    figures = {**figures, "environment": machine}
    benchmark.extra_info.update(figures)
    shown = {k: v for k, v in figures.items() if k != "environment"}
    print(f"\n{name}: " + json.dumps(shown, indent=1))
    print("BLAS: " + bench.blas_summary(machine))
    if not benchmark.disabled:
        save_results(file, figures, entry=name)

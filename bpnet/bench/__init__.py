"""``bpnet bench``: how much faster backpropagation is than finite differences,
and how close bpnet's training step runs to what the machine allows.

Two experiments, both measured with the interleaved median timer of
:mod:`bpnet.bench.timing` (contenders side by side in one process, ratios of
medians):

1. **Gradient cost against the number of parameters P.**  One backprop gradient
   (:func:`bpnet.kernels.loss_and_grad`) against bpnet's naive central
   differences (2P forward passes, :func:`bpnet.finite_diff.numerical_partials`)
   and against the batched variant
   (:func:`bpnet.finite_diff.numerical_partials_batched`), with the theoretical
   ratio ``2P * t_forward / t_backprop`` beside the measured one.  Finite
   differences that would run past a time cap are timed on a random sample of
   parameters and extrapolated (and say so).  Every row checks that the finite
   differences agree with backprop.  Float64, tanh hidden layers (smooth: ReLU
   kinks make central differences disagree on a few entries), softmax
   cross-entropy, batch 64.
2. **Training-step throughput.**  One step (forward, backward, SGD update) of
   bpnet (the pure step :meth:`bpnet.MLP.fit` runs, from
   :func:`bpnet.train.make_step`) against a lean hand-written NumPy step (the
   practical ceiling for a NumPy backend), the step's matrix products alone
   (the GEMM floor), PyTorch eager autograd, ``jax.jit`` of a whole step and
   scikit-learn's ``MLPClassifier.partial_fit``, all from the same initial
   weights and data, all limited to the same number of threads.  Peers that
   are not installed are skipped with a note.

The command prints both tables, writes the raw figures as JSON and, when
matplotlib is installed, a log-log plot of time per gradient against P.

Modules, each with one job:

- :mod:`~bpnet.bench.timing`: the interleaved median timer, paired ratios;
- :mod:`~bpnet.bench.machine`: thread limits; CPU, BLAS kernel and GPU info;
- :mod:`~bpnet.bench.problems`: the configurations and the shared data;
- :mod:`~bpnet.bench.peers`: bpnet's step and every peer, ready to time;
- :mod:`~bpnet.bench.experiments`: the rows of each table;
- :mod:`~bpnet.bench.report`: tables, JSON, plot;
- :mod:`~bpnet.bench.cli`: the options and the run (``python -m bpnet.bench``).

``import bpnet`` loads none of this: only ``bpnet bench`` and ``benchmarks/``
import it.  Everything ``benchmarks/`` needs is re-exported here.
"""

from .cli import configure_parser, main, run
from .experiments import gradient_row, step_rows, thread_rows
from .machine import (
    blas_info,
    blas_summary,
    cpu_model,
    gpu_description,
    limit_threads,
    machine_info,
)
from .peers import (
    PEER_LABELS,
    PEERS,
    Contender,
    bpnet_step,
    build_peer,
    compat_step,
    contender,
    gemm_floor,
    jax_step,
    jax_x64,
    lean_step,
    peer_missing,
    sklearn_step,
    torch_step,
)
from .problems import (
    FD_BATCH,
    FD_SIZES,
    LR,
    SEED,
    STEP_CONFIGS,
    GradientProblem,
    StepConfig,
    StepProblem,
    gradient_problem,
    step_problem,
)
from .report import (
    fmt_time,
    format_gradient_table,
    format_step_table,
    format_thread_sweep,
    plot,
    write_json,
)
from .timing import Timing, calibrate, interleaved, paired_ratio, time_once

__all__ = [
    "FD_BATCH",
    "FD_SIZES",
    "LR",
    "PEERS",
    "PEER_LABELS",
    "SEED",
    "STEP_CONFIGS",
    "Contender",
    "GradientProblem",
    "StepConfig",
    "StepProblem",
    "Timing",
    "blas_info",
    "blas_summary",
    "bpnet_step",
    "build_peer",
    "calibrate",
    "compat_step",
    "configure_parser",
    "contender",
    "cpu_model",
    "fmt_time",
    "format_gradient_table",
    "format_step_table",
    "format_thread_sweep",
    "gemm_floor",
    "gpu_description",
    "gradient_problem",
    "gradient_row",
    "interleaved",
    "jax_step",
    "jax_x64",
    "lean_step",
    "limit_threads",
    "machine_info",
    "main",
    "paired_ratio",
    "peer_missing",
    "plot",
    "run",
    "sklearn_step",
    "step_problem",
    "step_rows",
    "thread_rows",
    "time_once",
    "torch_step",
    "write_json",
]

"""Training: the options schema, the pure step, the epoch loop and L-BFGS.

- :mod:`~bpnet.train.options`: :class:`FitOptions`, the one list of fit options;
- :mod:`~bpnet.train.step`: the pure training step;
- :mod:`~bpnet.train.loop`: batches, stopping rules, history and progress;
- :mod:`~bpnet.train.lbfgs`: full-batch training with SciPy's L-BFGS-B;
- :mod:`~bpnet.train.state`: the training state as host values, for checkpoints.

None of them sees a network: :class:`bpnet.MLP` hands them its parameters,
architecture and data, and keeps what they return.
"""

from .loop import History, Run
from .options import PARTIAL_FIT_OPTIONS, FitOptions, fit_options
from .step import Step, make_step, step

__all__ = [
    "PARTIAL_FIT_OPTIONS",
    "FitOptions",
    "History",
    "Run",
    "Step",
    "fit_options",
    "make_step",
    "step",
]

"""The model: :class:`MLP`, the object users hold.

The modules of this package together are "the model": the only code that
touches an MLP's private state.  :mod:`~bpnet.model.mlp` holds the class and
its public methods; the others hold what it delegates, each one job.
"""

from .mlp import MLP

__all__ = ["MLP"]

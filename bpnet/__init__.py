"""bpnet: multilayer perceptrons trained by backpropagation, written once against
the Python Array API standard so the same kernels run on NumPy, CuPy, PyTorch,
JAX, Dask and array-api-strict."""

from . import data, optim
from .activations import ACTIVATIONS
from .backend import BACKENDS, cuda_available, get_namespace, to_numpy
from .gradcheck import GradcheckReport, gradcheck
from .losses import LOSSES
from .model import MLP
from .registry import register_activation, register_loss
from .train import History

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "LOSSES",
    "MLP",
    "GradcheckReport",
    "History",
    "cuda_available",
    "data",
    "get_namespace",
    "gradcheck",
    "optim",
    "register_activation",
    "register_loss",
    "to_numpy",
]

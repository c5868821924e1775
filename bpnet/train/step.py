"""The training step: a pure function of (parameters, optimizer state, batch).

::

    params, opt_state, loss = step(params, opt_state, x, y, lr)

:func:`step` is the whole of it: backprop's loss and gradient
(:func:`bpnet.kernels.loss_and_grad`), then the optimizer's update rule
(:mod:`bpnet.optim`).  Nothing is modified in place and nothing is read back to
the host, so the loop may keep the arrays it was given (a snapshot is a
reference, not a copy) and a backend may compile the step whole.

:func:`make_step` binds the architecture, optimizer and penalty once and picks
the structure the step works on (:func:`bpnet.backend.fast.flat_updates`): one
flat vector of all parameters on eager backends for optimizers with state,
where an update is then a dozen array operations instead of a dozen per
tensor, or the tree of ``(W, b)`` pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .. import kernels
from .._typing import Arch, Array, Params
from ..backend import fast
from ..optim import Optimizer
from ..params import Layout

__all__ = ["Step", "make_step", "step"]


def step(
    params: Any, opt_state: Any, x: Array, y: Array, lr: float, *, arch: Arch,
    opt: Optimizer, alpha: float = 0.0, xp: ModuleType, layout: Layout | None = None,
    loss_and_grad: Any = None,
) -> tuple[Any, Any, Array]:
    """One training step on the batch (x, y).

    Parameters
    ----------
    params : list of (W, b), or array (P,)
        The tree, or (with ``layout``) the flat vector of every parameter.
    opt_state : state of ``opt``
        Of the same structure as ``params``.
    x : array (N, n_0)
    y : array (N, n_L)
        Targets in the form ``arch.loss`` expects.
    lr : float
        Learning rate of this step.
    arch : Arch
    opt : Optimizer
    alpha : float
        L2 penalty (see :func:`bpnet.kernels.loss_and_grad`).
    xp : namespace
    layout : Layout, optional
        Given when ``params`` is flat: how it unravels into the tree.
    loss_and_grad : callable, optional
        A backend's compiled twin of :func:`bpnet.kernels.loss_and_grad`.

    Returns
    -------
    params : same structure
        New arrays; the inputs are unchanged.
    opt_state : new state of ``opt``
    loss : 0-d array
        The batch's loss at the parameters the step started from.
    """
    tree = params if layout is None else layout.unravel(params, xp=xp)
    value, grads = (loss_and_grad or kernels.loss_and_grad)(tree, x, y, arch, alpha=alpha, xp=xp)
    if layout is not None:
        grads = layout.ravel(grads, xp=xp)
    params, opt_state = opt.update(params, grads, opt_state, lr, xp)
    return params, opt_state, value


@dataclass(frozen=True)
class Step:
    """:func:`step` bound to one network and optimizer, on the parameter
    structure that suits the backend.

    The loop holds parameters *packed* (:meth:`pack`): a flat vector (P,) when
    :attr:`flat`, else the tree itself.  :meth:`unpack` gives the tree back;
    for a flat vector its tensors are views of it, which is safe because no
    step ever writes into an array it was given.

    Attributes
    ----------
    arch : Arch
        With the backend's fused derivatives (:func:`bpnet.backend.fast.specialize`).
    opt : Optimizer
    alpha : float
    xp : namespace
    layout : Layout
    flat : bool
    """

    arch: Arch
    opt: Optimizer
    alpha: float
    xp: ModuleType
    layout: Layout
    flat: bool
    loss_and_grad: Any

    def pack(self, params: Params) -> Any:
        """``params`` in the structure the step works on (a new flat vector, or the
        tree)."""
        return self.layout.ravel(params, xp=self.xp) if self.flat else list(params)

    def unpack(self, packed: Any) -> Params:
        """The tree of ``(W, b)`` pairs of packed parameters."""
        return self.layout.unravel(packed, xp=self.xp) if self.flat else list(packed)

    def init(self, packed: Any) -> Any:
        """A fresh optimizer state for packed parameters."""
        return self.opt.init(packed, self.xp)

    def __call__(self, packed: Any, opt_state: Any, x: Array, y: Array,
                 lr: float) -> tuple[Any, Any, Array]:
        """One step on packed parameters; see :func:`step`."""
        return step(packed, opt_state, x, y, lr, arch=self.arch, opt=self.opt, alpha=self.alpha,
                    xp=self.xp, layout=self.layout if self.flat else None,
                    loss_and_grad=self.loss_and_grad)


def make_step(arch: Arch, opt: Optimizer, layout: Layout, *, alpha: float = 0.0,
              xp: ModuleType) -> Step:
    """The fastest correct :class:`Step` for ``xp`` (see :mod:`bpnet.backend.fast`).

    The flat structure pays one concatenation of the gradients per step, which
    only an optimizer with state wins back (measured on a 2-5-1 net: plain SGD
    ~6 us slower per step flat than per tensor, Adam faster).
    """
    flat = fast.flat_updates(xp) and opt.has_state
    return Step(fast.specialize(arch, xp), opt, float(alpha), xp, layout, flat,
                fast.loss_and_grad_fn(xp))

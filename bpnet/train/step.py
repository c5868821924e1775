"""The training step: a function of (parameters, optimizer state, batch) that
returns new ones.

::

    params, opt_state, loss = step(params, opt_state, x, y, lr)

:func:`step` is the whole of it: backprop's loss and gradient
(:func:`bpnet.kernels.loss_and_grad`), then the optimizer's update rule
(:mod:`bpnet.optim`).  With the portable operations nothing is modified in
place and nothing is read back to the host, so a backend can compile the step
whole.

:func:`make_step` binds the architecture, optimizer and penalty once and picks
the fastest correct way to run that function on a backend
(:mod:`bpnet.backend.fast`):

- :class:`Step`, the portable twin: pure, on the tree of ``(W, b)`` pairs, or on
  one flat vector of all parameters for optimizers with state on eager
  backends (an update is then a dozen array operations instead of a dozen per
  tensor);
- :class:`InplaceStep` (NumPy, CuPy, PyTorch): the same arithmetic on buffers the
  step owns: the parameters in one flat vector whose ``(W, b)`` are views, the
  gradients written straight into a second one, the update applied in place;
- :class:`CompiledStep` (JAX): whole epochs of the step compiled once per
  architecture, optimizer and batch size, every batch read from the data on
  the device inside the compiled code, and the last short batch padded and
  masked so that it needs no second compilation.

:class:`InplaceStep` *donates* the arrays it is given, as ``jax.jit`` does with
``donate_argnums``: a caller that keeps an earlier state (the start of an
epoch, the best epoch) takes :meth:`Step.copy` of it first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from .. import kernels
from .._typing import Arch, Array, Params
from ..backend import device_of, fast, lazy, sparse
from ..backend.select import count_dtype
from ..ops import PORTABLE, Ops
from ..optim import Optimizer, clip_by_global_norm
from ..params import Layout

__all__ = ["CompiledStep", "InplaceStep", "Step", "Weighted", "correct_count", "make_step",
           "step"]

#: One batch as a step reads it, and its number of samples.
Batch = tuple[Any, int]

#: Batches whose outputs an epoch keeps before counting their right predictions:
#: one count (a few operations) per this many steps bounds the memory kept to
#: this many batches' outputs.
COUNT_EVERY = 32


class Weighted(NamedTuple):
    """A data set with per-sample weights, as :meth:`Step.data` keeps it: ``x``
    and ``y`` on the device, the weights ``w`` (N, 1) beside them and on the
    host (``host``, float64 (N,)), where each batch's total weight is summed
    without a device read."""

    x: Any
    y: Any
    w: Array
    host: np.ndarray


def _batch_totals(host: np.ndarray, order: np.ndarray | None,
                  bounds: Sequence[tuple[int, int]]) -> list[float]:
    """Each batch's total weight (host floats): its penalty's sample count."""
    w = host if order is None else host[order]
    return [float(t) for t in np.add.reduceat(w, [lo for lo, _ in bounds])]


def correct_count(loss: Any, z: Array, y: Array, xp: ModuleType,
                  w: Array | None = None) -> Array:
    """How many samples the output pre-activation ``z`` (N, k) classifies right
    against ``y`` (:attr:`bpnet.losses.Loss.correct`), a 0-d integer array on the
    device; rows of weight 0 in ``w`` (N, 1) (a padded batch) do not count."""
    right = xp.astype(loss.correct(z, y, xp), count_dtype(xp))
    if w is not None:
        right = right * xp.astype(w[:, 0] > 0, right.dtype)
    return xp.sum(right)


def step(
    params: Any, opt_state: Any, x: Array, y: Array, lr: float, *, arch: Arch,
    opt: Optimizer, alpha: float = 0.0, xp: ModuleType, layout: Layout | None = None,
    loss_and_grad: Any = None, w: Array | None = None, n: Any = None,
    clip_norm: float | None = None, keep_output: bool = False,
) -> tuple[Any, Any, Array] | tuple[Any, Any, Array, Array]:
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
    w, n : optional
        Sample weights (N, 1) summing to 1, and the penalty's sample count (see
        :func:`bpnet.kernels.loss_and_grad`): how a padded batch is masked.
    clip_norm : float, optional
        Clip the gradient to this global norm (:func:`bpnet.optim.clip_by_global_norm`)
        before the update.
    keep_output : bool, default False
        Also return the output pre-activation of the forward pass (for counting
        right predictions without a second pass).

    Returns
    -------
    params : same structure
        New arrays; the inputs are unchanged.
    opt_state : new state of ``opt``
    loss : 0-d array
        The batch's loss at the parameters the step started from.
    z_L : array (N, n_L)
        Only with ``keep_output``: the output pre-activation at those parameters.
    """
    tree = params if layout is None else layout.unravel(params, xp=xp)
    f = loss_and_grad or kernels.loss_and_grad
    if keep_output:
        value, grads, z = f(tree, x, y, arch, alpha=alpha, xp=xp, w=w, n=n, keep_output=True)  # type: ignore[misc]
    else:
        value, grads = f(tree, x, y, arch, alpha=alpha, xp=xp, w=w, n=n)  # type: ignore[misc]
    if layout is not None:
        grads = layout.ravel(grads, xp=xp)
    if clip_norm is not None:
        grads = clip_by_global_norm(grads, clip_norm, xp)
    params, opt_state = opt.update(params, grads, opt_state, lr, xp)
    return (params, opt_state, value, z) if keep_output else (params, opt_state, value)


@dataclass(frozen=True)
class Step:
    """:func:`step` bound to one network and optimizer: the portable twin.

    The loop holds parameters *packed* (:meth:`pack`): a flat vector (P,) when
    :attr:`flat`, else the tree itself.  :meth:`unpack` gives the tree back.
    Each epoch, :meth:`batches` yields the batches in the form :meth:`__call__`
    reads them.

    Attributes
    ----------
    arch : Arch
    opt : Optimizer
    alpha : float
    xp : namespace
    layout : Layout
    flat : bool
    loss_and_grad : callable
        :func:`bpnet.kernels.loss_and_grad` or a backend's compiled twin.
    clip_norm : float or None
        Global norm the gradient is clipped to (None: no clipping).
    """

    arch: Arch
    opt: Optimizer
    alpha: float
    xp: ModuleType
    layout: Layout
    flat: bool
    loss_and_grad: Any
    clip_norm: float | None = None

    #: Whether calls take over (and may overwrite) the arrays they are given.
    donates = False
    #: The composite operations (:mod:`bpnet.ops`).
    ops: Ops = PORTABLE

    def pack(self, params: Params) -> Any:
        """``params`` in the structure the step works on (a new flat vector, or the
        tree)."""
        return self.layout.ravel(params, xp=self.xp) if self.flat else list(params)

    def unpack(self, packed: Any) -> Params:
        """The tree of ``(W, b)`` pairs of packed parameters (views of them)."""
        return self.layout.unravel(packed, xp=self.xp) if self.flat else list(packed)

    def export(self, packed: Any) -> Params:
        """The tree of packed parameters, safe from later steps."""
        return self.unpack(packed)

    def leaves(self, packed: Any) -> list[Array]:
        """Every array of packed parameters."""
        return [packed] if self.flat else [t for pair in packed for t in pair]

    def init(self, packed: Any) -> Any:
        """A fresh optimizer state for packed parameters."""
        return self.opt.init(packed, self.xp)

    def probe(self, packed: Any) -> Array:
        """A 0-d array that is 0 when every parameter is finite and NaN otherwise
        (``0 * inf`` and ``0 * nan`` are NaN)."""
        return _probe(self.leaves(packed), self.xp)

    def copy(self, packed: Any, opt_state: Any) -> tuple[Any, Any]:
        """(parameters, state) that later steps leave alone: themselves, since this
        step never writes into its inputs."""
        return packed, opt_state

    def copy_state(self, opt_state: Any) -> Any:
        """An optimizer state that later steps leave alone (see :meth:`copy`)."""
        return opt_state

    def data(self, x: Array, y: Array, batch_size: int,
             weights: tuple[Array, np.ndarray] | None = None) -> Any:
        """The data set in the form :meth:`batches` reads it (once per fit);
        ``weights`` are the per-sample weights, (N, 1) on the device and (N,)
        float64 on the host."""
        return (x, y) if weights is None else Weighted(x, y, *weights)

    def batches(self, data: Any, order: np.ndarray | None,
                bounds: Sequence[tuple[int, int]]) -> Iterator[Batch]:
        """The epoch's batches: rows ``lo:hi`` of the data for each of ``bounds``,
        in the host-side ``order`` (a permutation of the rows) when given.

        Each batch is gathered on the device from the permutation, so memory
        holds the data set plus one batch, not a permuted copy of it (on Dask,
        which plans the whole epoch as one graph, the permuted copy is lazy).
        A sparse ``x`` (NumPy) gives sparse batches of its CSR rows.

        A batch is ``(x, y)``, or for :class:`Weighted` data ``(x, y, w, n)``:
        the weights normalised to sum to 1 and the batch's total weight
        (:func:`bpnet.kernels.sample_weights`).
        """
        weighted = isinstance(data, Weighted)
        x, y = data[0], data[1]
        w = data.w if weighted else None
        totals = _batch_totals(data.host, order, bounds) if weighted else None
        gathered = self._gathered(x, y, w, order, bounds)
        for i, ((xb, yb, wb), size) in enumerate(gathered):
            if weighted:
                yield (xb, yb, *kernels.sample_weights(wb, totals[i])), size  # type: ignore[index]
            else:
                yield (xb, yb), size

    def _gathered(self, x: Array, y: Array, w: Array | None, order: np.ndarray | None,
                  bounds: Sequence[tuple[int, int]]) -> Iterator[Any]:
        """``((x, y, w) rows, size)`` of each batch (``w`` None when unweighted)."""
        xp = self.xp
        if order is not None:
            idx = xp.asarray(order, device=device_of(y))  # the epoch's one transfer in
            if lazy.is_lazy(xp):
                x, y = xp.take(x, idx, axis=0), xp.take(y, idx, axis=0)
                w = None if w is None else xp.take(w, idx, axis=0)
            else:
                take = self.ops.take_rows
                take_x = ((lambda a, rows, _: sparse.take_rows(a, rows))
                          if sparse.is_sparse(x) else take)
                for lo, hi in bounds:
                    rows = idx[lo:hi]
                    yield (take_x(x, rows, xp), take(y, rows, xp),
                           None if w is None else take(w, rows, xp)), hi - lo
                return
        for lo, hi in bounds:
            yield (x[lo:hi, ...], y[lo:hi, ...],
                   None if w is None else w[lo:hi, ...]), hi - lo

    def __call__(self, packed: Any, opt_state: Any, batch: Any, lr: float, *,
                 keep_output: bool = False) -> tuple[Any, ...]:
        """One step on packed parameters; see :func:`step`."""
        x, y, w, n = _unbatch(batch)
        # a backend's compiled twin returns no output: the kernel itself does
        f = kernels.loss_and_grad if keep_output else self.loss_and_grad
        return step(packed, opt_state, x, y, lr, arch=self.arch, opt=self.opt, alpha=self.alpha,
                    xp=self.xp, layout=self.layout if self.flat else None, loss_and_grad=f,
                    w=w, n=n, clip_norm=self.clip_norm, keep_output=keep_output)

    def epoch(self, run: Any, data: Any, order: np.ndarray | None,
              bounds: Sequence[tuple[int, int]], lr: float, *,
              correct: bool = False) -> Array | tuple[Array, Array]:
        """One pass over the data (:meth:`data`), the batches :meth:`batches` gives;
        ``run`` (a :class:`~bpnet.train.loop.Run`) holds the parameters and state
        after every step, so an interruption finds the last completed one.

        Returns the summed batch losses, each times its batch's size (0-d, on the
        device); with ``correct``, also the number of samples the steps' own
        forward passes classified right (0-d integer, on the device): each step
        keeps its output, and every :data:`COUNT_EVERY` steps the kept outputs
        are counted together, so the count costs no second forward pass and a
        few operations per :data:`COUNT_EVERY` steps.
        """
        values, sizes = [], []
        outputs: list[Array] = []
        targets: list[Array] = []
        right = None
        for batch, size in self.batches(data, order, bounds):
            if correct:
                run.params, run.opt_state, value, z = self(run.params, run.opt_state, batch, lr,
                                                           keep_output=True)
                outputs.append(z)
                targets.append(batch[1])
                if len(outputs) == COUNT_EVERY:
                    right = self._count(right, outputs, targets)
            else:
                run.params, run.opt_state, value = self(run.params, run.opt_state, batch, lr)
            values.append(value)
            sizes.append(size)
        total = self.ops.epoch_total(values, sizes, self.xp)
        if not correct:
            return total
        if outputs:
            right = self._count(right, outputs, targets)
        return total, right

    def _count(self, right: Array | None, outputs: list[Array], targets: list[Array]) -> Array:
        """``right`` plus the right predictions among the kept outputs, which are
        then forgotten."""
        xp = self.xp
        z = outputs[0] if len(outputs) == 1 else xp.concat(outputs)
        y = targets[0] if len(targets) == 1 else xp.concat(targets)
        outputs.clear()
        targets.clear()
        count = correct_count(self.arch.loss, z, y, xp)
        return count if right is None else right + count


def _unbatch(batch: tuple[Any, ...]) -> tuple[Any, Any, Any, Any]:
    """``(x, y, w, n)`` of a batch (:meth:`Step.batches`); ``w, n`` None unweighted."""
    return batch if len(batch) == 4 else (batch[0], batch[1], None, None)


class Flat(NamedTuple):
    """Packed parameters of an :class:`InplaceStep`: the flat vector (P,), its
    tree of views, and the gradient buffer (P,) with its tree of views."""

    theta: Array
    tree: Params
    g: Array
    gtree: Params


@dataclass(frozen=True)
class InplaceStep(Step):
    """:func:`step`'s arithmetic on buffers the step owns (NumPy, CuPy, PyTorch).

    The parameters live in one flat vector whose ``(W, b)`` are views of it, the
    gradients are written straight into a second flat vector (no concatenation),
    and the optimizer updates the vector and its own state in place, with the
    backend's twins of :mod:`bpnet.ops`.  Calls donate what they are given.
    """

    donates = True

    def pack(self, params: Params) -> Flat:
        xp, layout = self.xp, self.layout
        theta = layout.ravel(params, xp=xp)  # a new buffer: the caller's arrays stay put
        g = xp.zeros_like(theta)
        return Flat(theta, layout.unravel(theta, xp=xp), g, layout.unravel(g, xp=xp))

    def unpack(self, packed: Flat) -> Params:
        return list(packed.tree)

    def export(self, packed: Flat) -> Params:
        return self.unpack(self.copy(packed, None)[0])

    def leaves(self, packed: Flat) -> list[Array]:
        return [packed.theta]

    def init(self, packed: Flat) -> Any:
        return self.opt.init(packed.theta, self.xp)

    def copy(self, packed: Flat, opt_state: Any) -> tuple[Flat, Any]:
        theta = self.xp.asarray(packed.theta, copy=True)
        xp, layout = self.xp, self.layout
        copied = Flat(theta, layout.unravel(theta, xp=xp), packed.g, packed.gtree)
        return copied, _copy_state(opt_state, xp)

    def copy_state(self, opt_state: Any) -> Any:
        return _copy_state(opt_state, self.xp)

    def __call__(self, packed: Flat, opt_state: Any, batch: Any, lr: float, *,
                 keep_output: bool = False) -> tuple[Any, ...]:
        x, y, w, n = _unbatch(batch)
        xp, ops = self.xp, self.ops
        out = kernels.loss_and_grad(packed.tree, x, y, self.arch, alpha=self.alpha, xp=xp,
                                    w=w, n=n, ops=ops, out=packed.gtree,
                                    keep_output=keep_output)
        if self.clip_norm is not None:  # in the gradient buffer, which the step owns
            clip_by_global_norm(packed.g, self.clip_norm, xp, ops)
        _, opt_state = self.opt.update(packed.theta, packed.g, opt_state, lr, xp, ops)
        return (packed, opt_state, out[0], out[2]) if keep_output else (packed, opt_state, out[0])  # type: ignore[misc]


def _probe(leaves: Sequence[Array], xp: ModuleType) -> Array:
    total = None
    for t in leaves:
        s = xp.sum(t)
        total = s if total is None else total + s
    return total * 0.0  # type: ignore[operator]


def _copy_state(state: Any, xp: ModuleType) -> Any:
    """A copy of an optimizer state's arrays (flat vectors or trees)."""
    if state is None:
        return None

    def copy(field: Any) -> Any:
        if isinstance(field, list):
            return [tuple(xp.asarray(t, copy=True) for t in pair) for pair in field]
        return field if isinstance(field, int) or field is None else xp.asarray(field, copy=True)

    return type(state)(*(copy(f) for f in state))


@dataclass(frozen=True)
class CompiledStep(Step):
    """Whole epochs of :func:`step` compiled once (JAX), batches read inside.

    :meth:`data` pads the data set to a whole number of batches once per fit.
    :meth:`epoch` runs every batch of an epoch in one compiled call (a loop the
    compiled code runs itself): each step gathers its batch from the
    device-side order with ``take`` and weighs the samples of a short last
    batch so that its padding counts for nothing, so one compiled shape serves
    every batch and every epoch.  One dispatch per epoch instead of one per
    step: on a tiny network the dispatch of a compiled call costs more than its
    arithmetic.

    Inside the compiled loop XLA updates the parameters and the optimizer state
    in place (a loop's carry reuses its buffers).  Between epochs nothing is
    donated: the step stays pure, so the loop's snapshots (the start of an
    epoch, the best epoch) are references; donating would save one allocation
    per epoch and cost a copy of every snapshot instead.
    """

    batch_size: int = 0
    compiled: Any = None

    def init(self, packed: Any) -> Any:
        # one compiled call instead of one dispatch per array
        return _compiled_helpers(self.opt, self.xp)[0](packed)

    def probe(self, packed: Any) -> Array:
        return _compiled_helpers(self.opt, self.xp)[1](packed)

    def data(self, x: Array, y: Array, batch_size: int,
             weights: tuple[Array, np.ndarray] | None = None) -> Any:
        xp, n = self.xp, x.shape[0]
        pad = -n % self.batch_size
        w = None if weights is None else weights[0]
        if pad:
            def padded(a: Array) -> Array:
                zeros = xp.zeros((pad, *a.shape[1:]), dtype=a.dtype, device=device_of(a))
                return xp.concat([a, zeros])

            # padding weighs 0 in a weighted data set too
            x, y, w = padded(x), padded(y), None if w is None else padded(w)
        # the rows in order, for epochs that do not shuffle: on the device once
        in_order = xp.arange(x.shape[0], device=device_of(x))
        return x, y, n, in_order, w

    def epoch(self, run: Any, data: Any, order: np.ndarray | None,
              bounds: Sequence[tuple[int, int]], lr: float, *,
              correct: bool = False) -> Array | tuple[Array, Array]:
        x, y, n, idx, w = data
        compiled = self.compiled
        shuffled = order is not None
        if shuffled:
            rows = np.concatenate([order, np.zeros(x.shape[0] - n,
                                                   dtype=order.dtype)])  # type: ignore[union-attr]
            idx = self.xp.asarray(rows, device=device_of(x))  # the epoch's one transfer in
        if shuffled or w is not None:
            compiled = _compiled(self.arch, self.opt, self.alpha, self.xp, self.batch_size,
                                 self.clip_norm, shuffled=shuffled, weighted=w is not None)
        run.params, run.opt_state, total, right = compiled(run.params, run.opt_state, x, y, idx,
                                                           n, lr, len(bounds), w)
        return (total, right) if correct else total

    def __call__(self, packed: Any, opt_state: Any, batch: Any, lr: float, *,
                 keep_output: bool = False) -> tuple[Any, ...]:
        if keep_output or len(batch) == 4:  # the compiled loop counts (epoch) and weighs
            return super().__call__(packed, opt_state, batch, lr, keep_output=keep_output)
        x, y = batch
        n = x.shape[0]
        idx = self.xp.arange(n)
        packed, opt_state, total, _ = self.compiled(packed, opt_state, x, y, idx, n, lr, 1, None)
        return packed, opt_state, total / n


@functools.lru_cache(maxsize=32)
def _compiled_helpers(opt: Optimizer, xp: ModuleType) -> tuple[Any, Any]:
    """Compiled ``opt.init`` and finiteness probe: each one dispatch."""
    return (fast.compile_step(xp, lambda packed: opt.init(packed, xp)),
            fast.compile_step(xp, lambda packed: _probe(
                [t for pair in packed for t in pair], xp)))


@functools.lru_cache(maxsize=32)
def _compiled(arch: Arch, opt: Optimizer, alpha: float, xp: ModuleType, batch_size: int,
              clip_norm: float | None = None, shuffled: bool = False,
              weighted: bool = False) -> Any:
    """The compiled epoch of one architecture, optimizer, batch size and clipping,
    kept across fits so that a ``partial_fit`` per epoch compiles once (per
    data-set shape).

    ``epoch(params, opt_state, x, y, idx, n, lr, n_batches, w)`` runs batches
    ``0..n_batches-1``, batch ``i`` being rows ``idx[i B:(i + 1) B]`` of the
    padded data (``shuffled``; else rows ``i B:(i + 1) B``, sliced: no gather),
    of which those before sample ``n`` are real, and returns the new parameters
    and state with the sum of the batch losses times their sizes and, for a
    classification loss, the number of real samples the steps' forward passes
    classified right (0 otherwise).  ``weighted``: ``w`` (N, 1) weighs the
    samples (each batch normalised by its total weight, computed inside the
    compiled loop: one trace serves every batch); else ``w`` is None.
    """
    loop = fast.fori_loop(xp)
    rows_at = fast.dynamic_rows(xp)
    counts = arch.loss.correct is not None

    def epoch(params: Params, opt_state: Any, x: Array, y: Array, idx: Array, n: Any,
              lr: Any, n_batches: Any, sw: Any) -> tuple[Params, Any, Array, Array]:
        arange = xp.arange(batch_size)

        def one(i: Any, carry: Any) -> Any:
            params, opt_state, total, right = carry
            lo = i * batch_size
            if shuffled:
                rows = xp.take(idx, lo + arange)
                xb, yb = xp.take(x, rows, axis=0), xp.take(y, rows, axis=0)
                wb = None if sw is None else xp.take(sw, rows, axis=0)
            else:  # measured 80 against 104 us a step on a 64-128-10 net at batch 64
                xb, yb = rows_at(x, lo, batch_size), rows_at(y, lo, batch_size)
                wb = None if sw is None else rows_at(sw, lo, batch_size)
            real = xp.minimum(n - lo, batch_size)
            mask = xp.astype(arange < real, x.dtype)[:, None]  # padding weighs nothing
            if weighted:  # a shuffled batch's padding gathers row 0: mask it
                wb = wb * mask
                s = xp.sum(wb)
                some = s > 0  # a weightless batch: no gradient, no penalty
                w = wb / xp.where(some, s, xp.ones_like(s))
                pen_n = xp.where(some, s, xp.full_like(s, math.inf))
            else:
                w, pen_n = mask / real, real
            out = step(params, opt_state, xb, yb, lr, arch=arch, opt=opt, alpha=alpha, xp=xp,
                       w=w, n=pen_n, clip_norm=clip_norm, keep_output=counts)
            if counts:
                right = right + correct_count(arch.loss, out[3], yb, xp, mask)  # type: ignore[misc]
            return out[0], out[1], total + out[2] * real, right

        zero = xp.zeros((), dtype=x.dtype, device=device_of(x))
        none = xp.zeros((), dtype=count_dtype(xp), device=device_of(x))
        return loop(0, n_batches, one, (params, opt_state, zero, none))

    return fast.compile_step(xp, epoch)


def make_step(arch: Arch, opt: Optimizer, layout: Layout, *, alpha: float = 0.0,
              xp: ModuleType, batch_size: int | None = None,
              clip_norm: float | None = None) -> Step:
    """The fastest correct :class:`Step` for ``xp`` (see :mod:`bpnet.backend.fast`).

    ``batch_size`` (the largest batch the step will see) lets JAX compile the
    step for one batch shape; ``clip_norm`` clips every gradient to that global
    norm (:func:`bpnet.optim.clip_by_global_norm`).
    """
    alpha = float(alpha)
    clip_norm = None if clip_norm is None else float(clip_norm)
    ops = fast.ops(xp)
    if ops.inplace:
        return InplaceStep(arch, opt, alpha, xp, layout, True, kernels.loss_and_grad, clip_norm,
                           ops=ops)
    if batch_size is not None and fast.compiles(xp):
        return CompiledStep(arch, opt, alpha, xp, layout, False, kernels.loss_and_grad,
                            clip_norm, batch_size=batch_size,
                            compiled=_compiled(arch, opt, alpha, xp, batch_size, clip_norm))
    # The flat structure pays one concatenation of the gradients per step, which
    # only an optimizer with state wins back (measured on a 2-5-1 net: plain SGD
    # ~6 us slower per step flat than per tensor, Adam faster).
    flat = fast.flat_updates(xp) and opt.has_state
    return Step(arch, opt, alpha, xp, layout, flat, fast.loss_and_grad_fn(xp), clip_norm)

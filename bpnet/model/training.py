"""How :class:`~bpnet.model.MLP` runs ``fit``: the first-order run (fresh or
warm-started, with checkpoints) and the L-BFGS run, each handing the pure
loop of :mod:`bpnet.train` its explicit arguments and keeping what it returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import inputs as v
from .._typing import Arch, Array, Namespace, Params, PathLike
from ..backend import to_numpy
from ..train import loop
from ..train.lbfgs import fit_lbfgs
from ..train.loop import History, Kept, Run, state_key
from ..train.options import FitOptions
from ..train.step import Step, make_step

if TYPE_CHECKING:
    from ..params import Layout

__all__ = ["Training"]


class Training:
    """The part of :class:`~bpnet.model.MLP` that runs ``fit``."""

    if TYPE_CHECKING:  # what the MLP mixing this in holds (bpnet.model.mlp, persistence)
        xp: Namespace
        seed: int | None
        _arch: Arch
        _layout: Layout
        _params: Params
        _optimizer_state: Kept | None

        @property
        def arch(self) -> Arch: ...
        @property
        def dtype_name(self) -> str: ...
        def _initial_params(self) -> Params: ...
        def _to_backend(self, host: np.ndarray) -> Array: ...
        def save(self, path: PathLike) -> None: ...
        def _checkpointer(self, path: Any, step: Step, run: Any, key: tuple[Any, ...],
                          clock: tuple[int, int], n: int) -> Callable[[int], None]: ...

    def _publish(self, params: Params) -> None:
        self._params = params

    def _fit(self, x: Array, y: Array, val: Any, opts: FitOptions, history: History,
             weights: Any = None) -> History:
        start = self._params
        try:
            if opts.optimizer == "lbfgs":
                return self._fit_lbfgs(x, y, val, opts, history, weights)
            return self._fit_first_order(x, y, val, opts, history, weights)
        except FloatingPointError as exc:
            # Checked after a failure only (one more forward pass): a loss that
            # overflows at the weights the fit started from is the data's doing,
            # not the learning rate's, and the message says so.
            blamed = self._overflowing(start, x, y, val, opts.alpha)
            if blamed is None:
                raise
            error = FloatingPointError(v.overflow_message("fit", self.dtype_name, **blamed))
            if hasattr(exc, "history"):
                error.history = exc.history  # type: ignore[attr-defined]
            raise error from None

    def _finite(self, where: str, value: float, x: Array, y: Array, alpha: float) -> float:
        """``value``, the loss on finite data at finite weights, unless it overflowed
        the dtype: then an error saying whether the data or the weights are to blame."""
        if math.isfinite(value):
            return value
        if self._overflowing(self._params, x, y, None, alpha) is not None:
            raise FloatingPointError(v.overflow_message(where, self.dtype_name, X=x, Y=y))
        big = max(float(np.max(np.abs(to_numpy(t)))) for W, b in self._params for t in (W, b))
        raise FloatingPointError(
            f"{where} failed: the loss overflows {self.dtype_name} at this network's weights "
            f"(up to {big:.3g} in magnitude), though not at freshly initialised ones: the "
            "weights are too large for this data (trained with too high a learning rate?).")

    def _overflowing(self, params: Params, x: Array, y: Array, val: Any,
                     alpha: float) -> dict[str, Array] | None:
        """The data (training or validation) whose loss at ``params`` and at
        freshly initialised weights is not finite; None when there is none."""
        sets = {"": (x, y)} if val is None else {"": (x, y), "validation ": val[:2]}
        fresh = self._initial_params()
        for prefix, (xs, ys) in sets.items():
            if all(not loop.finite_loss(p, xs, ys, self.arch, alpha, self.xp)
                   for p in (params, fresh)):
                return {f"{prefix}X": xs, f"{prefix}Y": ys}
        return None

    def _fit_first_order(self, x: Array, y: Array, val: Any, opts: FitOptions,
                         history: History, weights: Any = None) -> History:
        opt = opts.make_optimizer()
        n = x.shape[0]
        batch = opts.batch_for(n)
        step = make_step(self._arch, opt, self._layout, alpha=opts.alpha, xp=self.xp,
                         batch_size=batch, clip_norm=opts.clip_norm)
        key = state_key(opt, step)
        packed = step.pack(self._params)
        kept = self._optimizer_state if opts.warm_start else None
        if kept is not None and kept.key != key:
            kept = None  # a state of other settings cannot continue
        # No seed: the network's own, so that MLP(seed=s).fit(...) repeats exactly.
        rng = (np.random.default_rng(opts.seed if opts.seed is not None else self.seed)
               if opts.shuffle else None)
        if kept is not None and kept.rng is not None and opts.shuffle and opts.seed is None:
            rng = kept.rng
        state = step.init(packed) if kept is None else step.copy_state(kept.opt_state)
        clock = (0, 0) if kept is None else (kept.epoch, kept.samples_seen)
        run = Run(packed, state, rng)
        write = (None if opts.checkpoint is None else
                 self._checkpointer(opts.checkpoint, step, run, key, clock, n))
        try:
            loop.fit_epochs(step, run, step.data(x, y, batch, weights), n, val, opts, history,
                            publish=self._publish, clock=clock, checkpoint=write)
        finally:  # also after an exception: the run holds what the loop kept
            self._params = step.unpack(run.params)
            self._optimizer_state = Kept(key, run.opt_state, run.rng,
                                         clock[0] + history.epochs,
                                         clock[1] + n * history.epochs)
        if opts.checkpoint is not None:
            self.save(opts.checkpoint)
        return history

    def _fit_lbfgs(self, x: Array, y: Array, val: Any, opts: FitOptions,
                   history: History, weights: Any = None) -> History:
        xp = self.xp
        theta = np.asarray(to_numpy(self._layout.ravel(self._params, xp=xp)), dtype=np.float64)
        run = Run(theta, None, None)
        try:
            return fit_lbfgs(self._layout, run, x, y, val, opts, history, arch=self.arch, xp=xp,
                             put=self._to_backend, publish=self._publish,
                             weights=None if weights is None else (weights[0],
                                                                   float(weights[1].sum())))
        finally:
            self._params = self._layout.unravel(self._to_backend(run.params), xp=xp)
            # L-BFGS keeps no state; a first-order one from before belongs to old weights
            self._optimizer_state = None

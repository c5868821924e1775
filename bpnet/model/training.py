"""How :class:`~bpnet.model.MLP` runs ``fit``: the first-order run (fresh or
warm-started, with checkpoints) and the L-BFGS run, each handing the pure
loop of :mod:`bpnet.train` its explicit arguments and keeping what it returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import Array, Params
from ..backend import to_numpy
from ..train import loop
from ..train.lbfgs import fit_lbfgs
from ..train.loop import History, Kept, Run, state_key
from ..train.options import FitOptions
from ..train.step import make_step

__all__ = ["Training"]


class Training:
    """The part of :class:`~bpnet.model.MLP` that runs ``fit``."""

    def _publish(self, params: Params) -> None:
        self._params = params

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

"""What :class:`~bpnet.model.MLP` writes and reads: files, checkpoints, pickles.

A model file (:mod:`bpnet.serialization`) holds the configuration, the weights
and, when the network keeps one, its training state (:mod:`bpnet.train.state`:
the optimizer's moments or velocity and step count, the schedule's clock, the
shuffling generator), so that a run saved, loaded and continued with
``fit(..., warm_start=True)`` ends with the weights of the same run straight
through.  Custom activations and losses (:func:`bpnet.register_activation`,
:func:`bpnet.register_loss`) are saved by name, and the file lists which names
are custom, so that loading one in a process that has not registered them says
so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from .. import _typing as t
from .. import serialization
from ..activations import ACTIVATIONS, BUILTIN_ACTIVATIONS
from ..backend import (
    device_from_state,
    device_state,
    get_namespace,
    on_its_device,
    resolve_dtype,
    to_numpy,
)
from ..losses import BUILTIN_LOSSES, LOSSES
from ..serialization import Extra
from ..train import state as training_state
from ..train.loop import Kept
from ..train.step import Step, make_step

if TYPE_CHECKING:
    from .._typing import Arch, Array, Device, Namespace, Params
    from ..params import Layout

__all__ = ["Persistence", "check_registered"]


def check_registered(config: dict[str, Any], path: Any) -> None:
    """Take the list of custom names out of a file's ``config`` and refuse, with a
    clear error, a file whose custom activation or loss is not registered here.

    Raises
    ------
    ValueError
        When a custom name is not registered, or the list is malformed.
    """
    custom = config.pop("custom", None)
    if custom is None:
        return
    kinds: dict[str, Mapping[str, object]] = {"activation": ACTIVATIONS, "loss": LOSSES}
    if not (isinstance(custom, dict) and set(custom) <= set(kinds) and all(
            isinstance(names, list) and all(isinstance(n, str) for n in names)
            for names in custom.values())):
        raise ValueError(f"{str(path)!r} is not a bpnet model file: its list of custom "
                         "activations and losses is malformed")
    for kind, names in custom.items():
        for name in names:
            if name not in kinds[kind]:
                raise ValueError(
                    f"{str(path)!r} uses the custom {kind} {name[:64]!r}, which is not "
                    f"registered in this process: call bpnet.register_{kind}({name[:64]!r}, "
                    "...) with the same functions before loading it"
                )


class Persistence:
    """The part of :class:`~bpnet.model.MLP` that saves, checkpoints and pickles."""

    if TYPE_CHECKING:  # what the MLP mixing this in holds (bpnet.model.mlp, training)
        xp: Namespace
        device: Device
        dtype: Any
        backend: str
        loss: str
        output_activation: str
        _arch: Arch
        _layout: Layout
        _params: Params
        _optimizer_state: Kept | None

        @property
        def activations(self) -> tuple[str, ...]: ...
        @property
        def dtype_name(self) -> str: ...
        def get_config(self) -> dict[str, Any]: ...
        def _build_arch(self) -> Arch: ...
        def _to_backend(self, host: np.ndarray) -> Array: ...
        def _host_params(self) -> list[tuple[np.ndarray, np.ndarray]]: ...
        def set_params(self, params: Any) -> None: ...

    @classmethod
    def load(cls, path: t.PathLike, *, backend: t.BackendLike | None = None,
             device: t.Device = None, dtype: t.DTypeLike | None = None) -> Self:
        """Read a network written by :meth:`save`, with its training state when the
        file holds one (``fit(..., warm_start=True)`` and :meth:`partial_fit`
        continue it, also on another backend, device or dtype).

        Parameters
        ----------
        path : str or path-like
        backend, device, dtype : optional
            Override the saved backend (e.g. ``"numpy"`` for a model trained on a
            GPU), device and dtype.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            When the file is not a bpnet model (truncated, corrupt, foreign, a
            newer format, a configuration, weights or training state bpnet cannot
            use), or uses a custom activation or loss not registered in this
            process; see
            :mod:`bpnet.serialization` for what is checked before anything is
            read, and how much memory a file can make this take.
        ImportError, RuntimeError
            When the file's backend (unless overridden) is not installed, or has
            no device here.
        """
        if backend is not None or dtype is not None:  # the caller's mistakes, named as such
            xp = get_namespace("numpy" if backend is None else backend)
            if dtype is not None:
                resolve_dtype(xp, dtype)
        stored = serialization.read(path, extra=training_state.expected_arrays)
        config = dict(stored.config)
        check_registered(config, path)
        if backend is not None:
            config["backend"] = backend
        if dtype is not None:
            config["dtype"] = dtype
        try:
            net = cls(**config, device=device)  # type: ignore[call-arg]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{str(path)!r} holds a configuration bpnet cannot build: "
                             f"{exc}") from None
        try:
            net.set_params(stored.params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{str(path)!r} holds weights bpnet cannot use: {exc}") from None
        net._restore_training(stored.extra, path)
        return net

    @on_its_device
    def save(self, path: str | os.PathLike) -> None:
        """Write configuration, weights and training state to an ``.npz`` file,
        atomically (a temporary file in the same directory, then a rename).  A
        replaced file keeps its permissions; a new one gets those the umask allows.

        The training state is what ``fit`` or ``partial_fit`` left on the network
        (the optimizer's state and step count, the schedule's epoch count and the
        shuffling generator): :meth:`load` restores it, and
        ``fit(..., warm_start=True)`` continues it.

        Raises
        ------
        TypeError
            When ``path`` is not a string or path-like.
        FileNotFoundError
            When the directory does not exist.

        Examples
        --------
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
        >>> net = bpnet.MLP([2, 3, 1], seed=0)
        >>> history = net.fit([[0.0, 1.0], [1.0, 0.0]], [1.0, 0.0], epochs=2)
        >>> net.save(path)
        >>> twin = bpnet.MLP.load(path)
        >>> twin.layer_sizes, twin.training_state["optimizer"]
        ((2, 3, 1), 'adam')
        >>> all(bool((bpnet.to_numpy(a) == bpnet.to_numpy(b)).all())
        ...     for pa, pb in zip(net.params, twin.params) for a, b in zip(pa, pb))
        True
        """
        self._write(path, self._host_params(), self._optimizer_state)

    def _write(self, path: Any, params: list[tuple[np.ndarray, np.ndarray]],
               kept: Kept | None) -> None:
        config = self.get_config()
        custom = {"activation": sorted({n for n in (*self.activations, self.output_activation)
                                        if n not in BUILTIN_ACTIVATIONS}),
                  "loss": [self.loss] if self.loss not in BUILTIN_LOSSES else []}
        custom = {kind: names for kind, names in custom.items() if names}
        if custom:
            config["custom"] = custom
        extra = None if kept is None else training_state.export(kept, self._layout, self.xp)
        serialization.write(path, config, params, extra=extra)

    def _checkpointer(self, path: Any, step: Step, run: Any, key: tuple[Any, ...],
                      clock: tuple[int, int], n: int) -> Callable[[int], None]:
        """What ``fit(checkpoint=path)`` calls after ``epochs`` epochs: writes the
        run's weights and state as they are (host copies; the network itself is
        left alone)."""

        def write(epochs: int) -> None:
            params = [(np.array(to_numpy(W)), np.array(to_numpy(b)))
                      for W, b in step.unpack(run.params)]
            kept = Kept(key, run.opt_state, run.rng, clock[0] + epochs, clock[1] + n * epochs)
            self._write(path, params, kept)

        return write

    @on_its_device  # the state's arrays are uploaded to the network's device
    def _restore_training(self, extra: Extra | None, path: Any) -> None:
        """Set the training state a file (or pickle) held, checked."""
        if extra is None or not training_state.holds_state(extra.meta):
            self._optimizer_state = None
            return

        def step_for(opt: Any) -> Step:
            return make_step(self._arch, opt, self._layout, xp=self.xp)

        try:
            self._optimizer_state = training_state.restore(extra, self._layout,
                                                           self._to_backend, step_for, self.xp)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{str(path)!r} holds a training state bpnet cannot use: "
                             f"{exc}") from None

    # -- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Namespaces are modules, which do not pickle: keep the backend's name, host
        # copies of the weights and of the training state, and the activations and
        # loss by name (as a file does), and rebuild the rest on unpickling.
        state = self.__dict__.copy()
        state["xp"] = self.backend
        state["_params"] = self._host_params()
        state["dtype"] = self.dtype_name
        state["device"] = device_state(self.xp, self.device)
        kept = self._optimizer_state
        state["_optimizer_state"] = (None if kept is None else
                                     training_state.export(kept, self._layout, self.xp))
        del state["_arch"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        kept = state.pop("_optimizer_state", None)
        state.setdefault("_tf32", None)  # pickled before networks had the setting
        self.__dict__.update(state)
        self.xp = get_namespace(state["xp"])
        self.dtype = resolve_dtype(self.xp, state["dtype"])
        self.device = device_from_state(self.xp, state["device"])
        self._arch = self._build_arch()
        self._params = [(self._to_backend(W), self._to_backend(b)) for W, b in state["_params"]]
        self._restore_training(kept if isinstance(kept, Extra) else None, "the pickle")

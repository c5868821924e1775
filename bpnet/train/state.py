"""Training state <-> host values: what a checkpoint holds beside the weights.

A :class:`~bpnet.train.loop.Kept` state lives on the device in the structure its
step works on (one flat vector, or a tree of ``(W, b)`` pairs).
:func:`export` turns it into plain JSON metadata (the optimizer and its
settings, the step count, the schedule's clock, the shuffling generator's
state) and flat host arrays (the optimizer's moments or velocity, in the flat
order of :class:`~bpnet.params.Layout`), the same on every backend;
:func:`restore` builds it back for any backend, device and dtype.  Model files
(:mod:`bpnet.serialization`'s :class:`~bpnet.serialization.Extra`) and pickles
carry these values, so that training continues exactly where it stopped.

Everything read is checked first (:func:`expected_arrays`, :func:`restore`):
a file may come from anyone.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..optim import AdamState, SGDState, make_optimizer
from ..params import Layout
from ..serialization import Extra
from .loop import Kept, state_key
from .options import check_option

__all__ = ["FORMAT", "expected_arrays", "export", "holds_state", "restore"]

#: Version of the training-state layout inside a file's extras.
FORMAT = 1

#: Each optimizer's state class, and the settings its key holds.
_STATES: dict[str, tuple[type, tuple[str, ...]]] = {
    "sgd": (SGDState, ("momentum", "nesterov")),
    "adam": (AdamState, ("beta1", "beta2", "epsilon")),
}
_FLOATS = ("float32", "float64")
_BIG = 1 << 128  # PCG64's state and increment are 128-bit integers


def export(kept: Kept, layout: Layout, xp: ModuleType) -> Extra:
    """``kept`` as host values (copies: later steps may update the state in place).

    Returns
    -------
    Extra
        ``meta["training"]``: JSON values; ``arrays``: each state array as a flat
        host vector (P,) in the network's dtype.
    """
    (name, settings), _ = kept.key
    state = kept.opt_state
    arrays = {}
    for field in state._fields[1:]:
        value = getattr(state, field)
        if value is not None:
            flat = layout.ravel(value, xp=xp) if isinstance(value, list) else value
            arrays[field] = np.array(to_numpy(flat), copy=True)
    dtype = next(iter(arrays.values())).dtype.name if arrays else None
    meta = {
        "format": FORMAT, "optimizer": name, "settings": dict(settings),
        "step": int(to_numpy(state.step)) if not isinstance(state.step, int) else state.step,
        "epoch": kept.epoch, "samples_seen": kept.samples_seen, "n_params": layout.n_params,
        "arrays": sorted(arrays), "dtype": dtype,
        "rng": None if kept.rng is None else kept.rng.bit_generator.state,
    }
    return Extra({"training": meta}, arrays)


def _count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62):
        raise ValueError(f"its training state's {key} {str(value)[:40]!r} is not a count")
    return value


def _training(meta: Any) -> dict[str, Any]:
    """The ``training`` metadata, its optimizer, settings and array names checked."""
    t = meta.get("training") if isinstance(meta, dict) else None
    if not isinstance(t, dict):
        raise ValueError("its extra metadata holds no training state")
    if t.get("format") != FORMAT:
        raise ValueError(f"its training state has format {str(t.get('format'))[:20]}; this "
                         f"bpnet reads format {FORMAT}")
    name = t.get("optimizer")
    if name not in _STATES:
        raise ValueError(f"its training state's optimizer {str(name)[:40]!r} is not one of: "
                         f"{', '.join(_STATES)}")
    _, keys = _STATES[name]
    settings = t.get("settings")
    if not isinstance(settings, dict) or set(settings) != set(keys):
        raise ValueError(f"its {name} settings are not {', '.join(keys)}")
    checked = {}
    for key in keys:
        value = settings[key]
        flag = key == "nesterov"
        if isinstance(value, bool) != flag or not isinstance(value, numbers.Real):
            raise ValueError(f"its {name} setting {key}={str(value)[:40]!r} has the wrong type")
        checked[key] = check_option(key, value)
    arrays = ["m", "v"] if name == "adam" else (["velocity"] if checked["momentum"] else [])
    if t.get("arrays") != arrays:
        raise ValueError(f"its {name} state lists arrays {str(t.get('arrays'))[:60]}; expected "
                         f"{arrays}")
    if arrays and t.get("dtype") not in _FLOATS:
        raise ValueError(f"its training state's dtype {str(t.get('dtype'))[:40]!r} is not one "
                         f"of {', '.join(_FLOATS)}")
    for key in ("step", "epoch", "samples_seen", "n_params"):
        _count(t, key)
    return {**t, "settings": checked}


def holds_state(meta: Any) -> bool:
    """Whether a file's extra metadata holds a training state (a file may carry
    other extras, which bpnet leaves alone)."""
    return isinstance(meta, dict) and "training" in meta


def expected_arrays(meta: Any) -> dict[str, tuple[tuple[int], str]]:
    """What the file's training state must hold, from its metadata:
    ``{name: ((n_params,), dtype)}`` (the ``extra=`` of
    :func:`bpnet.serialization.read`); nothing for other extras.

    Raises
    ------
    ValueError
        When the metadata is not a training state this bpnet wrote.
    """
    if not holds_state(meta):
        return {}
    t = _training(meta)
    return {name: ((t["n_params"],), t["dtype"]) for name in t["arrays"]}


def _generator(state: Any) -> np.random.Generator | None:
    """A generator in the saved PCG64 ``state`` (checked), or None."""
    if state is None:
        return None

    def u(value: Any, bound: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound

    inner = state.get("state") if isinstance(state, dict) else None
    if not (isinstance(state, dict)
            and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and state["bit_generator"] == "PCG64" and isinstance(inner, dict)
            and set(inner) == {"state", "inc"} and all(u(v, _BIG) for v in inner.values())
            and u(state["has_uint32"], 2) and u(state["uinteger"], 1 << 32)):
        raise ValueError("its shuffling generator's state is not a PCG64 state")
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


def restore(extra: Extra, layout: Layout, put: Callable[[np.ndarray], Any],
            make_step: Callable[[Any], Any], xp: ModuleType) -> Kept:
    """The :class:`Kept` state ``extra`` (from :func:`export`) describes, on the
    network whose layout, host-to-device transfer (``put``) and step maker
    (``make_step(optimizer) -> Step``) are given.

    Raises
    ------
    ValueError
        When the state is not one this network can continue (other sizes, a
        malformed generator state, an optimizer bpnet does not know).
    """
    t = _training(extra.meta)
    if t["n_params"] != layout.n_params:
        raise ValueError(f"its training state is for {t['n_params']:,} parameters; the "
                         f"network has {layout.n_params:,}")
    opt = make_optimizer(t["optimizer"], **t["settings"])
    step = make_step(opt)
    cls, _ = _STATES[t["optimizer"]]
    fields = []  # type: ignore[var-annotated]
    for field in cls._fields[1:]:  # type: ignore[attr-defined]
        host = extra.arrays.get(field)
        if host is None:
            fields.append(None)
            continue
        flat = put(np.array(host, copy=True))  # the step's own buffer: it may update in place
        fields.append(flat if step.flat else layout.unravel(flat, xp=xp))
    state = cls(t["step"], *fields)
    return Kept(state_key(opt, step), state, _generator(t["rng"]), t["epoch"], t["samples_seen"])

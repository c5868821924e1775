"""The fit options: one schema for ``MLP.fit``, ``MLP.partial_fit``, the ``bpnet``
command and the scikit-learn estimators.

:class:`FitOptions` lists every option once, each field with its default, its
type as a docstring states it, what it means (the text ``help(MLP.fit)`` and
``bpnet train --help`` show) and how it is checked.  :func:`fit_options` builds
a checked set from keywords, refusing unknown or bad ones before anything
changes.  ``MLP.fit`` spells the same options out in its signature, so that
``help()`` and IDEs show them; a test holds the two to the same names and
defaults.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import inputs as v
from ..optim import DEFAULT_LR, OPTIMIZERS, SCHEDULES, Optimizer, make_optimizer

__all__ = [
    "AUTO_BATCH",
    "PARTIAL_FIT_OPTIONS",
    "FitOptions",
    "check_option",
    "defaults",
    "doc",
    "fit_options",
    "numpydoc",
]


#: ``batch_size="auto"`` is ``min(AUTO_BATCH, n_samples)``, scikit-learn's default.
AUTO_BATCH = 200


def _option(default: Any, type_: str, doc: str, check: Callable[[str, Any], Any]) -> Any:
    return field(default=default, metadata={"type": type_, "doc": doc, "check": check})


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    return lambda name, value: v.check_choice(name, value, choices)


def _or_none(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _positive_int(name: str, value: Any) -> int:
    return v.check_positive(name, value, integer=True)


def _seed(name: str, value: Any) -> int | None:
    return v.check_seed(value)


def _schedule(name: str, value: Any) -> Any:
    return value if callable(value) else v.check_choice(name, value, SCHEDULES)


def _lr_gamma(name: str, value: Any) -> float:
    return v.check_fraction(name, value, low_open=True, high_open=False)


def _batch_size(name: str, value: Any) -> int | str | None:
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    if isinstance(value, str):
        raise ValueError(f"batch_size must be 'auto', a positive integer or None, got {value!r}")
    return v.check_positive(name, value, integer=True)


def _path(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike) or None, got "
                        f"{type(value).__name__}")
    directory = Path(value).parent
    if Path(value).is_dir():
        raise ValueError(f"{name} {str(value)!r} is a directory; give a file name")
    if not directory.is_dir():
        raise ValueError(f"{name} {str(value)!r}: directory {str(directory)!r} does not exist")
    return value


def _callback(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"callback must be callable(epoch, history) or None, got {value!r}")
    return value


@dataclass(frozen=True)
class FitOptions:
    """A checked set of fit options; the field list is the schema.

    Build one with :func:`fit_options`.  ``lr`` is resolved there: the
    optimizer's default when none was given.
    """

    optimizer: str = _option(
        "adam", '{"adam", "sgd", "lbfgs"}',
        "Adam, stochastic gradient descent (with momentum), or SciPy's L-BFGS-B on the "
        "full batch.", _choice(OPTIMIZERS))
    lr: float | None = _option(
        None, "float, optional",
        "Learning rate; default 1e-3 for ``adam``, 0.1 for ``sgd`` (unused by ``lbfgs``, "
        "whose line search picks each step).", _or_none(v.check_positive))
    epochs: int = _option(
        200, "int", "Passes over the data; for ``lbfgs``, the largest number of iterations.",
        _positive_int)
    batch_size: int | str | None = _option(
        "auto", '"auto", int or None',
        f"Samples per step; ``\"auto\"`` is ``min({AUTO_BATCH}, n_samples)`` (scikit-learn's "
        "default), ``None`` the full batch.  ``lbfgs`` always works on the full batch (it "
        "takes ``\"auto\"`` or ``None``).", _batch_size)
    shuffle: bool = _option(
        True, "bool", "Draw a new order of the samples every epoch.", v.check_bool)
    seed: int | None = _option(
        None, "int or None",
        "Seed of the host generator that draws the orders; ``None`` uses the network's "
        "``seed``, so a run repeats exactly.", _seed)
    alpha: float = _option(
        0.0, "float", "L2 penalty ``alpha / (2 n_batch) * sum ||W||^2`` (scikit-learn's).",
        v.check_nonnegative)
    momentum: float = _option(
        0.9, "float in [0, 1)", "``sgd`` only; 0 is plain gradient descent.",
        v.check_fraction)
    nesterov: bool = _option(
        False, "bool", "``sgd`` only: Nesterov's momentum.", v.check_bool)
    beta1: float = _option(
        0.9, "float in [0, 1)", "``adam`` only: decay of the gradient's moving average.",
        v.check_fraction)
    beta2: float = _option(
        0.999, "float in [0, 1)",
        "``adam`` only: decay of the squared gradient's moving average.", v.check_fraction)
    epsilon: float = _option(
        1e-8, "float", "``adam`` only: added to the root of the second moment.",
        v.check_positive)
    clip_norm: float | None = _option(
        None, "float or None",
        "Clip the gradient by its global norm: when the L2 norm of all the gradient's "
        "entries together (penalty included) exceeds ``clip_norm``, scale it down to "
        "``clip_norm`` before the update (``torch.nn.utils.clip_grad_norm_``'s rule).  The "
        "norm stays on the device: no host sync per step.  Not for ``lbfgs``.",
        _or_none(v.check_positive))
    lr_schedule: Any = _option(  # noqa: RUF009 (_option returns a dataclasses.field)
        "constant", '{"constant", "invscaling", "step", "cosine"} or callable',
        "How the learning rate changes from epoch to epoch; see "
        ":func:`bpnet.optim.scheduled_lr`.  A callable ``f(epoch) -> lr`` is called with "
        "the epoch index from 0.", _schedule)
    power_t: float = _option(
        0.5, "float", "Exponent of ``invscaling``.", v.check_nonnegative)
    lr_step_size: int = _option(
        10, "int", "``step``: multiply the rate by ``lr_gamma`` every ``lr_step_size`` "
        "epochs.", _positive_int)
    lr_gamma: float = _option(
        0.1, "float in (0, 1]", "``step``: the factor.", _lr_gamma)
    early_stopping: bool = _option(
        False, "bool",
        "Stop when the validation loss has not improved by more than ``tol`` (default 0) "
        "for ``patience`` epochs, and restore the best weights.  Needs "
        "``validation_data``.", v.check_bool)
    patience: int = _option(
        10, "int", "Epochs without enough improvement before stopping.", _positive_int)
    tol: float | None = _option(
        None, "float or None",
        "Without ``early_stopping``: stop once ``patience`` consecutive epochs have ended "
        "above ``best loss - tol``.  ``None`` never stops early on the training loss.  "
        "This is scikit-learn's rule, except that its ``n_iter_no_change=k`` stops after "
        "k + 1 such epochs: pass ``patience=k + 1`` to match it.  For ``lbfgs``, "
        "L-BFGS-B's ``ftol`` and ``gtol``.", _or_none(v.check_nonnegative))
    progress: bool = _option(
        False, "bool", "Show a progress bar (tqdm) with the loss and samples per second.",
        v.check_bool)
    callback: Any = _option(  # noqa: RUF009
        None, "callable ``(epoch, history) -> bool | None``, optional",
        "Called after every epoch (``epoch`` counts from 1) with the network already "
        "holding that epoch's weights; returning True stops.", _callback)
    warm_start: bool = _option(
        False, "bool",
        "Continue the optimizer state (Adam's moments, SGD's velocity, step count), the "
        "shuffling generator and the schedule's epoch count that the last ``fit`` or "
        "``partial_fit`` left on the network, or that :meth:`MLP.load` read from a "
        "checkpoint, instead of starting them afresh; a state of other optimizer settings "
        "starts afresh.  Train, save, load and continue gives bit for bit the weights of "
        "one run straight through (for every schedule but ``cosine``, whose horizon is the "
        "epochs of the run so far, which a first call cannot know).  ``seed`` restarts the "
        "generator.  For ``lbfgs``, which "
        "keeps no state, training always continues from the current weights.", v.check_bool)
    checkpoint: Any = _option(  # noqa: RUF009
        None, "str, path-like or None",
        "Save the network with its optimizer state and shuffling generator "
        "(:meth:`MLP.save`, atomically) to this file every ``checkpoint_every`` epochs and "
        "at the end; :meth:`MLP.load` and ``warm_start=True`` continue from it.  Not for "
        "``lbfgs``.", _path)
    checkpoint_every: int = _option(
        1, "int", "Epochs between checkpoints.", _positive_int)

    def make_optimizer(self) -> Optimizer:
        """The first-order optimizer these options describe (not for ``lbfgs``)."""
        return make_optimizer(self.optimizer, momentum=self.momentum, nesterov=self.nesterov,
                              beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)

    def batch_for(self, n: int) -> int:
        """The batch size for ``n`` samples: ``batch_size`` resolved (``"auto"`` is
        ``min(200, n)``, None the full batch) and clipped to ``n``."""
        b = self.batch_size
        if b is None or self.optimizer == "lbfgs":
            return n
        return min(AUTO_BATCH if b == "auto" else b, n)  # type: ignore[return-value]

    @property
    def resolved_lr(self) -> float:
        """``lr``, or the optimizer's default learning rate."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


_FIELDS = {f.name: f for f in dataclasses.fields(FitOptions)}
_NAMES = tuple(_FIELDS)
_CHECKS = {name: (f.default, f.metadata["check"]) for name, f in _FIELDS.items()}

#: The options :meth:`MLP.partial_fit` takes (one epoch: no schedule, no stopping).
PARTIAL_FIT_OPTIONS: tuple[str, ...] = (
    "optimizer", "lr", "batch_size", "shuffle", "seed", "alpha", "momentum", "nesterov",
    "beta1", "beta2", "epsilon", "clip_norm",
)


def defaults(names: Iterable[str] | None = None) -> dict[str, Any]:
    """``{name: default}`` of ``names`` (every option by default)."""
    keep = _FIELDS if names is None else tuple(names)
    return {name: f.default for name, f in _FIELDS.items() if name in keep}


def fit_options(allowed: Iterable[str] | None = None, **given: Any) -> FitOptions:
    """Check ``given`` options and fill in the defaults.

    Parameters
    ----------
    allowed : iterable of str, optional
        The options the caller takes (all by default); others are refused.
    **given
        Option values.

    Returns
    -------
    FitOptions
        With ``lr`` resolved to the optimizer's default when not given.

    Raises
    ------
    TypeError
        For an unknown option, or a value of the wrong type.
    ValueError
        For a value out of range, or options that contradict each other.
    """
    names = _NAMES if allowed is None else tuple(allowed)
    if not given.keys() <= set(names):
        unknown = sorted(set(given) - set(names))
        raise TypeError(
            f"unknown fit option(s): {', '.join(unknown)}; the options are: {', '.join(names)}"
        )
    values = {}
    for name, (default, check) in _CHECKS.items():
        value = given.get(name, default)
        # A default is valid by construction; skipping its check keeps the cost of
        # a call (a partial_fit per epoch) low.  The type must match too: True == 1.
        same = value is default or (type(value) is type(default) and value == default)
        values[name] = value if same else check(name, value)
    if values["lr"] is None:
        values["lr"] = DEFAULT_LR[values["optimizer"]]
    opts = FitOptions(**values)
    if opts.nesterov and opts.optimizer == "sgd" and opts.momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    if opts.optimizer == "lbfgs":
        if opts.batch_size not in (None, "auto"):
            raise ValueError(
                "optimizer 'lbfgs' works on the full batch; leave batch_size at 'auto' or "
                f"None (got {opts.batch_size})"
            )
        if opts.early_stopping:
            raise ValueError("early_stopping is not available with optimizer 'lbfgs'; use tol")
        for name in ("clip_norm", "checkpoint"):
            if getattr(opts, name) is not None:
                raise ValueError(
                    f"{name} is not available with optimizer 'lbfgs' (its line search picks "
                    "each step and it keeps no state to continue); use 'adam' or 'sgd'"
                )
    return opts


def doc(name: str) -> str:
    """What option ``name`` means, as one paragraph."""
    return _FIELDS[name].metadata["doc"]


def numpydoc(names: Iterable[str] | None = None, indent: int = 8) -> str:
    """The numpydoc ``Parameters`` entries of ``names`` (every option by default),
    indented by ``indent`` spaces: what ``help(MLP.fit)`` shows."""
    keep = _FIELDS if names is None else tuple(names)
    pad = " " * indent
    lines = []
    for name, f in _FIELDS.items():
        if name not in keep:
            continue
        default = "" if f.default is None else f", default {f.default!r}"
        lines.append(f"{pad}{name} : {f.metadata['type']}{default}")
        lines.extend(textwrap.wrap(f.metadata["doc"], width=88 - indent - 4,
                                   initial_indent=pad + "    ", subsequent_indent=pad + "    "))
    return "\n".join(lines)


def check_option(option: str, value: Any, *, name: str | None = None) -> Any:
    """``value`` checked as fit option ``option``; errors call it ``name`` (the
    option's own name by default), so a caller with other names for the same
    settings (the scikit-learn estimators) can reuse the checks."""
    return _FIELDS[option].metadata["check"](name or option, value)

"""The estimators' hyper-parameters, checked all at once before a fit touches anything.

scikit-learn's names, ranges and error type: :class:`InvalidParameterError`
is both a ValueError and a TypeError, as scikit-learn's own is, so callers that
catch either keep working.  Values scikit-learn would accept but that no
training can use are refused here by name too: NaN anywhere, and infinite
learning rates, penalties, epsilons and powers (only ``n_iter_no_change`` and
``tol`` take ``inf``, where it means "never" and "always" as in scikit-learn).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["InvalidParameterError", "Settings", "check_params"]

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
SOLVERS = ("lbfgs", "sgd", "adam")
SCHEDULES = ("constant", "invscaling", "adaptive")
DTYPES = ("float32", "float64")


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter outside its range or of the wrong type."""


@dataclass(frozen=True)
class Settings:
    """Checked hyper-parameters of one fit (scikit-learn's names)."""

    hidden: tuple[int, ...]
    activation: str
    solver: str
    alpha: float
    batch_size: int | None  # None: "auto", min(200, n_samples)
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    tol: float
    verbose: int
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: float  # an int, or inf
    max_fun: int
    dtype: str | None
    tf32: bool | None

    @property
    def stochastic(self) -> bool:
        return self.solver in ("sgd", "adam")


def _fail(name: str, expected: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(f"The {name!r} parameter must be {expected}; got {value!r}.")


def _real(est: Any, name: str, *, low: float, high: float = math.inf, low_open: bool = False,
          high_open: bool = False, allow_inf: bool = False) -> float:
    value = getattr(est, name)
    lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
    bound = f"{'>' if low_open else '>='} {low:g}"
    expected = (f"a finite number in {lo}, {hi}" if math.isfinite(high)
                else f"a {'' if allow_inf else 'finite '}number {bound}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, expected, value)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise _fail(name, expected, value)
    if (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
        raise _fail(name, expected, value)
    return v


def _integer(est: Any, name: str, *, low: int = 1) -> int:
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _fail(name, f"an int >= {low}", value)
    return int(value)


def _boolean(est: Any, name: str) -> bool:
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(name, "True or False", value)
    return bool(value)


def _choice(est: Any, name: str, choices: tuple[str, ...]) -> str:
    value = getattr(est, name)
    if not isinstance(value, str) or value not in choices:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _hidden(value: Any) -> tuple[int, ...]:
    expected = "an int >= 1 or a sequence of ints >= 1"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)):
        raise _fail("hidden_layer_sizes", expected, value)
    try:
        sizes = tuple(value)
    except TypeError:
        raise _fail("hidden_layer_sizes", expected, value) from None
    if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in sizes):
        raise _fail("hidden_layer_sizes", expected, value)
    return tuple(int(h) for h in sizes)


def _verbose(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if not isinstance(value, numbers.Integral) or value < 0:
        raise _fail("verbose", "a bool or an int >= 0", value)
    return int(value)


def _patience(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail("n_iter_no_change", "an int >= 1 or numpy.inf", value)
    return int(value)


def _dtype(value: Any) -> str | None:
    if value is None:
        return None
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise _fail("dtype", "None, 'float32' or 'float64'", value)
    return name


def _tf32(value: Any) -> bool | None:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise _fail("tf32", "True, False or None", value)


def check_params(est: Any) -> Settings:
    """Every hyper-parameter of ``est`` checked, or :class:`InvalidParameterError`
    naming the first bad one; reads ``est`` and changes nothing."""
    batch = est.batch_size
    if not (isinstance(batch, str) and batch == "auto"):
        batch = _integer(est, "batch_size")
    else:
        batch = None
    return Settings(
        hidden=_hidden(est.hidden_layer_sizes),
        activation=_choice(est, "activation", ACTIVATIONS),
        solver=_choice(est, "solver", SOLVERS),
        alpha=_real(est, "alpha", low=0.0),
        batch_size=batch,
        learning_rate=_choice(est, "learning_rate", SCHEDULES),
        learning_rate_init=_real(est, "learning_rate_init", low=0.0, low_open=True),
        power_t=_real(est, "power_t", low=0.0),
        max_iter=_integer(est, "max_iter"),
        shuffle=_boolean(est, "shuffle"),
        tol=_real(est, "tol", low=0.0, allow_inf=True),
        verbose=_verbose(est.verbose),
        warm_start=_boolean(est, "warm_start"),
        momentum=_real(est, "momentum", low=0.0, high=1.0),
        nesterovs_momentum=_boolean(est, "nesterovs_momentum"),
        early_stopping=_boolean(est, "early_stopping"),
        validation_fraction=_real(est, "validation_fraction", low=0.0, high=1.0,
                                  high_open=True),
        beta_1=_real(est, "beta_1", low=0.0, high=1.0, high_open=True),
        beta_2=_real(est, "beta_2", low=0.0, high=1.0, high_open=True),
        epsilon=_real(est, "epsilon", low=0.0, low_open=True),
        n_iter_no_change=_patience(est.n_iter_no_change),
        max_fun=_integer(est, "max_fun"),
        dtype=_dtype(est.dtype),
        tf32=_tf32(est.tf32),
    )

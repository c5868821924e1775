"""Custom activations and losses: registered by name, checked by a gradient check.

::

    import bpnet

    # softsign: f(z) = z / (1 + |z|), and f'(z) = (1 - |a|)^2 written from a = f(z)
    bpnet.register_activation("softsign", lambda z, xp: z / (1.0 + xp.abs(z)),
                              lambda a, xp: (1.0 - xp.abs(a)) ** 2)
    net = bpnet.MLP([4, 16, 8, 3], activation=["softsign", "relu"], loss="cross_entropy")

Both keep bpnet's contract: the backward pass reads every derivative off what
the forward pass stored, the activations ``a`` (an activation's ``df`` is
``f'(z)`` as a function of ``a = f(z)``; a loss's ``dcost`` is ``d cost / d a``,
which bpnet multiplies by the output activation's ``f'`` read off ``a``).  The
functions take the array namespace as ``xp`` and use only Array API calls, so
they run on every backend.

Registration runs :func:`bpnet.gradcheck` on small float64 networks that use
the new function (random data, small random biases) and refuses it when
backprop and central differences disagree, or when the function fails or
returns the wrong shape: a wrong derivative is found at registration, not
after a day of training.  Nothing is registered when the check fails.

A network saves the names it uses (:meth:`MLP.save`); loading a file that
names a custom function in a process that has not registered it is a
``ValueError`` saying so.  Built-in names cannot be replaced; a custom name
can, with ``replace=True``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from ._typing import Array, Namespace
from .activations import ACTIVATIONS, BUILTIN_ACTIVATIONS, Activation, get_activation
from .gradcheck import gradcheck
from .losses import BUILTIN_LOSSES, LOSSES, TARGETS, custom_loss
from .model import MLP

__all__ = ["register_activation", "register_loss"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_INITS = ("glorot", "he")
_SAMPLES = 8


def _check_name(kind: str, name: Any, registry: dict[str, Any], builtin: frozenset[str],
                replace: bool) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a custom {kind}'s name must be 1-64 letters, digits or '_' (not "
                         f"starting with a digit), got {name!r}")
    if name in builtin:
        raise ValueError(f"{name!r} is one of bpnet's own {kind}s; give yours another name")
    if name in registry and not replace:
        raise ValueError(f"a custom {kind} {name!r} is already registered; pass replace=True "
                         "to replace it")
    return name


def _callable(what: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f"{what} must be callable, got {type(f).__name__}")


@contextlib.contextmanager
def _trial(registry: dict[str, Any], name: str, value: Any) -> Iterator[None]:
    """``registry[name] = value`` for the check, undone unless the block succeeds."""
    missing = object()
    old = registry.get(name, missing)
    registry[name] = value
    try:
        yield
    except BaseException:
        if old is missing:
            del registry[name]
        else:
            registry[name] = old
        raise


def _targets(kind: str, k: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "labels":
        return rng.integers(0, k, _SAMPLES)
    if kind == "sign":
        return rng.choice([-1.0, 1.0], (_SAMPLES, k))
    if kind == "binary":
        return rng.integers(0, 2, (_SAMPLES, k)).astype(np.float64)
    return rng.standard_normal((_SAMPLES, k))


def _check(what: str, make: Callable[[], MLP], targets: str) -> None:
    """Build the test network ``make()`` and hold its backprop gradient to central
    differences; a ValueError names ``what`` when they disagree or the functions
    fail."""
    rng = np.random.default_rng(0)
    try:
        net = make()
        # Small random biases: no pre-activation sits exactly on a kink.
        net.set_params([(W, rng.normal(0.0, 0.1, b.shape)) for W, b in net.params])
        X = rng.standard_normal((_SAMPLES, net.n_features))
        Y = _targets(targets, net.n_outputs, rng)
        value = net.evaluate(X, Y)["loss"]
        report = gradcheck(net, X, Y)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what}: a float64 test network could not use it: "
                         f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the user's function failed: say where
        raise ValueError(f"{what}: calling it on a float64 test network failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not np.isfinite(value):
        raise ValueError(f"{what}: the loss of a float64 test network is {value}")
    if not report.passed:
        raise ValueError(
            f"{what}: backprop through it disagrees with central differences (largest "
            f"relative error {report.max_error:.2e}, tolerance {report.tol:.0e}); the "
            "derivative must be written as a function of the output (see "
            f"bpnet.register_activation):\n{report}"
        )


def _probe_shape(what: str, f: Callable[..., Array], *args: Any) -> None:
    try:
        out = np.asarray(f(*args, np))
    except Exception as exc:
        raise ValueError(f"{what}: calling it on a float64 NumPy array failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    if out.shape != np.shape(args[0]):
        raise ValueError(f"{what} must return an array of its input's shape "
                         f"{np.shape(args[0])}, got shape {out.shape}")


def register_activation(name: str, f: Callable[[Array, Namespace], Array],
                        df: Callable[[Array, Namespace], Array], *,
                        init: Literal["glorot", "he"] = "glorot",
                        replace: bool = False) -> None:
    """Make ``name`` an activation every :class:`MLP` (and a saved model) can use.

    Parameters
    ----------
    name : str
        1-64 letters, digits or ``_``; not one of bpnet's own.
    f : callable ``(z, xp) -> a``
        The activation, elementwise, in Array API calls on ``xp``; same shape as
        ``z``.
    df : callable ``(a, xp) -> f'(z)``
        Its derivative written as a function of its *output* ``a = f(z)``
        (sigmoid: ``a * (1 - a)``, tanh: ``1 - a * a``): the backward pass keeps
        only the activations.  An activation whose derivative the output does
        not determine (swish, GELU: not one-to-one) cannot be written so.
    init : {"glorot", "he"}, default "glorot"
        Initialisation of the weights of the layers it follows: He for ReLU-like
        activations, Glorot otherwise.
    replace : bool, default False
        Replace a custom activation registered under ``name``.

    Raises
    ------
    ValueError
        For a bad or taken name, or when the gradient check of a small float64
        network using it fails (a wrong ``df``, a function that fails or returns
        the wrong shape); nothing is registered then.
    TypeError
        When ``f`` or ``df`` is not callable.
    """
    _check_name("activation", name, ACTIVATIONS, BUILTIN_ACTIVATIONS, replace)
    _callable("f", f)
    _callable("df", df)
    if init not in _INITS:
        raise ValueError(f"init must be one of {', '.join(_INITS)}, got {init!r}")
    what = f"register_activation({name!r})"
    z = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    _probe_shape(f"{what}: f", f, z)
    _probe_shape(f"{what}: df", df, np.asarray(f(z, np)))
    act = Activation(name, f, df, init)
    with _trial(ACTIVATIONS, name, act):
        _check(what, lambda: MLP([3, 5, 4, 2], activation=name, loss="mse", dtype="float64"),
               "real")


def register_loss(name: str, cost: Callable[[Array, Array, Namespace], Array],
                  dcost: Callable[[Array, Array, Namespace], Array], *,
                  outputs: str | Sequence[str] = ("identity",), targets: str = "real",
                  correct: Callable[[Array, Array, Namespace], Array] | None = None,
                  replace: bool = False) -> None:
    """Make ``name`` a loss every :class:`MLP` (and a saved model) can use.

    The loss of a batch is the mean over its samples of the per-sample cost
    summed over the outputs, as for the built-in losses; its ``delta_L`` is
    ``dcost(a, y) * f'(a)`` for the output activation ``f`` (``a = f(z)``).

    Parameters
    ----------
    name : str
        1-64 letters, digits or ``_``; not one of bpnet's own.
    cost : callable ``(a, y, xp) -> array``
        Cost of each sample and output, elementwise: ``a`` is the network's output
        (N, k) (or (..., N, k): keep it elementwise so that leading axes
        broadcast), ``y`` the targets (N, k).
    dcost : callable ``(a, y, xp) -> array``
        ``d cost / d a``, same shape as ``a``.
    outputs : str or sequence of str, default "identity"
        The output activations it may be used with (``identity``, ``sigmoid``,
        ``tanh``... or registered ones); the first is the default.
    targets : {"real", "sign", "labels", "binary"}, default "real"
        What the targets are, checked and converted as for the built-in losses:
        floats; -1/+1; class labels (passed to ``cost`` one-hot); values in [0, 1].
    correct : callable ``(z, y, xp) -> bool array (N,)``, optional
        Which samples the output pre-activation ``z`` classifies right: gives
        ``accuracy`` in ``evaluate`` and the history.  None for a regression loss.
    replace : bool, default False
        Replace a custom loss registered under ``name``.

    Raises
    ------
    ValueError
        For a bad or taken name, unknown outputs or targets, or when the gradient
        check of a small float64 network using it fails (for each output); nothing
        is registered then.
    TypeError
        When ``cost``, ``dcost`` or ``correct`` is not callable.
    """
    _check_name("loss", name, LOSSES, BUILTIN_LOSSES, replace)
    _callable("cost", cost)
    _callable("dcost", dcost)
    if correct is not None:
        _callable("correct", correct)
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    if not names or not all(isinstance(n, str) for n in names) or "softmax" in names:
        raise ValueError("outputs must name one or more elementwise output activations "
                         f"(softmax belongs to cross_entropy), got {outputs!r}")
    outs = tuple(dict.fromkeys(get_activation(n).name for n in names))
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}, got {targets!r}")
    loss = custom_loss(name, cost, dcost, outputs=outs, targets=targets, correct=correct)
    what = f"register_loss({name!r})"
    with _trial(LOSSES, name, loss):
        for out in outs:
            _check(f"{what} with output {out!r}",
                   lambda out=out: MLP([3, 5, 3], activation="tanh", loss=name,  # type: ignore[misc]
                                       output_activation=out, dtype="float64"), targets)

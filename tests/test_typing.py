"""The shipped types match what bpnet accepts at run time.

The static checks themselves (``mypy`` over the package and
``tests/typing/usage.py``) run in ``make typecheck``; these tests keep the
``Literal`` option sets equal to the run-time tuples they mirror and check that
the PEP 561 marker is in the package.
"""

from __future__ import annotations

import inspect
import typing
from importlib import resources

import pytest

import bpnet
from bpnet import _typing, finite_diff, optim


@pytest.mark.parametrize(("alias", "runtime"), [
    (_typing.OptimizerName, optim.OPTIMIZERS),
    (_typing.ScheduleName, optim.SCHEDULES),
    (_typing.DiffMethod, finite_diff.METHODS),
])
def test_literal_option_sets_equal_the_runtime_choices(alias, runtime):
    assert set(typing.get_args(alias)) == set(runtime)


def test_the_package_carries_its_py_typed_marker():
    assert resources.files("bpnet").joinpath("py.typed").is_file()


def test_decorated_methods_keep_their_signatures():
    # on_its_device wraps fit/predict/...; help() and type checkers see the real ones
    params = inspect.signature(bpnet.MLP.fit).parameters
    assert {"X", "Y", "optimizer", "lr_schedule", "callback", "checkpoint"} <= set(params)
    assert "kwargs" not in params

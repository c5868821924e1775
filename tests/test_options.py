"""The one fit-options schema: what MLP.fit, MLP.partial_fit, the command line
and the scikit-learn estimators read."""

from __future__ import annotations

import dataclasses
import inspect
import pydoc

import pytest

import bpnet
from bpnet.train import PARTIAL_FIT_OPTIONS, FitOptions, fit_options
from bpnet.train.options import check_option, defaults


def _keywords(fn):
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_fit_signature_is_the_schema():
    kw = _keywords(bpnet.MLP.fit)
    assert kw.pop("sample_weight") is None  # data, not an option
    assert kw.pop("validation_data") is None
    assert kw == defaults()
    assert list(kw) == [f.name for f in dataclasses.fields(FitOptions)]


def test_partial_fit_signature_is_the_schemas_subset():
    kw = _keywords(bpnet.MLP.partial_fit)
    assert kw.pop("sample_weight") is None  # data, not an option
    assert kw == defaults(PARTIAL_FIT_OPTIONS)
    assert tuple(kw) == PARTIAL_FIT_OPTIONS


def test_help_shows_every_option_with_its_default():
    text = pydoc.render_doc(bpnet.MLP.fit, renderer=pydoc.plaintext)
    for f in dataclasses.fields(FitOptions):
        assert f"{f.name} : {f.metadata['type']}" in text, f.name
    assert "epochs : int, default 200" in text
    assert "batch_size : \"auto\", int or None, default 'auto'" in text
    assert "min(200, n_samples)" in " ".join(text.split())
    for name in ("clip_norm", "warm_start", "checkpoint", "checkpoint_every"):
        assert f"{name} : " in text
    assert "Learning rate; default 1e-3" in text
    partial = pydoc.render_doc(bpnet.MLP.partial_fit, renderer=pydoc.plaintext)
    assert "beta2 : float in [0, 1), default 0.999" in partial and "epochs :" not in partial


def test_fit_options_refuses_what_fit_refuses():
    opts = fit_options(optimizer="sgd", lr=0.5, epochs=3)
    assert (opts.optimizer, opts.lr, opts.epochs) == ("sgd", 0.5, 3)
    assert fit_options(optimizer="sgd").lr == 0.1  # the optimizer's default
    assert fit_options().lr == 1e-3
    with pytest.raises(ValueError, match="epochs"):
        fit_options(epochs=0)
    with pytest.raises(TypeError, match="unknown fit option"):
        fit_options(learning_rate=0.1)
    with pytest.raises(TypeError, match=r"unknown fit option.*epochs"):
        fit_options(PARTIAL_FIT_OPTIONS, epochs=3)
    with pytest.raises(ValueError, match="nesterov"):
        fit_options(optimizer="sgd", momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="full batch"):
        fit_options(optimizer="lbfgs", batch_size=8)


def test_check_option_speaks_the_callers_name():
    assert check_option("beta1", 0.5) == 0.5
    with pytest.raises(ValueError, match=r"^beta_1 must be in \[0, 1\)"):
        check_option("beta1", 1.5, name="beta_1")


def test_the_command_line_takes_its_help_from_the_schema(capsys):
    from bpnet.cli import main

    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Nesterov's momentum" in out and "Default: per dataset" in out  # the recipes' epochs
    assert "``" not in out  # docstring markup is stripped


def test_batch_size_auto_is_scikit_learns_min_200_n(rng):
    for n, steps in ((500, 3), (200, 1), (60, 1)):
        net = bpnet.MLP([2, 3, 2], loss="cross_entropy")
        net.fit(rng.standard_normal((n, 2)), rng.integers(0, 2, n), epochs=1)
        assert net.training_state["step"] == steps, n
    assert fit_options(batch_size="auto").batch_for(1000) == 200
    assert fit_options(batch_size=None).batch_for(1000) == 1000
    assert fit_options(optimizer="lbfgs").batch_for(1000) == 1000
    with pytest.raises(ValueError, match="'auto', a positive integer or None"):
        fit_options(batch_size="full")


def test_fit_with_its_defaults_solves_digits_as_the_command_does():
    pytest.importorskip("sklearn")
    s = bpnet.data.load("digits")
    net = bpnet.MLP([64, 128, 10], activation="relu", loss="cross_entropy")
    net.fit(s.X_train, s.y_train)  # epochs=200, batch_size="auto": min(200, n)
    # bpnet train --dataset digits reaches 97.1% (README); fit's defaults as well
    assert net.evaluate(s.X_test, s.y_test)["accuracy"] >= 0.97

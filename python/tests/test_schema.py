"""The estimator's parameters are the core's schema: its signature, defaults, docstring, the docs table
and the names in error messages are derived from it (the Rust side, tests/schema.rs, checks the command
line, config.json and the README)."""

import inspect
import json
import os
import re

import numpy as np
import pytest

from fairbits import FairRepresentationClassifier, _native
from fairbits._schema import CONSTRUCTOR, PARAMS, PRESETS, python_default

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCHEMA = json.loads(_native.schema_json())


def test_the_signature_is_the_schema():
    sig = inspect.signature(FairRepresentationClassifier.__init__)
    names = [p for p in sig.parameters if p != "self"]
    assert names == [d["python"] for d in SCHEMA["params"] if d["python"]]
    for d in CONSTRUCTOR:
        p = sig.parameters[d["python"]]
        assert p.kind is p.KEYWORD_ONLY
        assert p.default == python_default(d), d["python"]
    # get_params (scikit-learn's) sees the same names and values.
    assert list(FairRepresentationClassifier().get_params()) == sorted(names)


def test_defaults_that_the_core_decides_are_none_and_the_rest_are_its_values():
    # The preset sets gamma, so gamma defaults to None (the core's 0, or the preset's 8).
    assert "gamma" in PRESETS["invariant"]
    assert python_default(PARAMS["gamma"]) is None
    # hidden depends on the data's kind (tables 64,32; images 64,12).
    assert PARAMS["hidden"]["default"] != PARAMS["hidden"]["default_images"]
    assert python_default(PARAMS["hidden"]) is None
    assert python_default(PARAMS["weight_decay"]) == float(PARAMS["weight_decay"]["default"])
    # The estimator is fair by default: its preset is the certified one, the command line's none.
    assert python_default(PARAMS["preset"]) == "certified" and PARAMS["preset"]["default"] == "none"
    assert python_default(PARAMS["probe_rows"]) == int(PARAMS["probe_rows"]["default"])


def test_the_docstring_documents_every_parameter_with_the_schemas_words():
    doc = FairRepresentationClassifier.__doc__
    for d in CONSTRUCTOR:
        assert re.search(rf"^    {d['python']} : ", doc, re.M), d["python"]
        assert d["meaning"] in doc, d["python"]
        if d["cli"]:
            assert f"``--{d['cli']}``" in doc


def test_the_docs_table_lists_every_constructor_parameter():
    with open(os.path.join(REPO, "docs", "python.md")) as f:
        text = f.read()
    block = text.split("<!-- params:python -->")[1].split("<!-- /params -->")[0]
    rows = [line.split("|")[1].strip().strip("`") for line in block.strip().splitlines()[2:]]
    assert rows == [d["python"] for d in CONSTRUCTOR]


def _fit(small, **params):
    X, y, s, *_ = small
    settings = dict(epochs=1, hidden=(8, 4), draws=1, forest_trees=3)
    settings.update(params)
    return FairRepresentationClassifier(**settings).fit(X, y, sensitive_features=s)


@pytest.mark.parametrize(
    "params, exc, fragment",
    [
        ({"gamma": -1.0}, ValueError, "invalid gamma = -1: must be a finite number >= 0"),
        ({"gamma": float("nan")}, ValueError, "invalid gamma = NaN"),
        ({"learning_rate": 0.0}, ValueError, "invalid learning_rate = 0: must be a finite number > 0"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a number"),
        ({"epochs": 2.5}, TypeError, "epochs must be an integer"),
        ({"draws": 0}, ValueError, "invalid draws = 0: must be >= 1"),
        ({"probe_rows": 0}, ValueError, "invalid probe_rows = 0: must be >= 10"),
        ({"penalty": "adversary"}, ValueError, "invalid penalty = adversary"),
        ({"gradient_estimator": "magic"}, ValueError, "invalid gradient_estimator = magic: must be one of"),
        ({"preset": "fast"}, ValueError, "invalid preset = fast"),
        ({"val_size": 1.5}, ValueError, "invalid val_size = 1.5"),
        ({"warmup_epochs": 5}, ValueError, "invalid warmup_epochs = 5"),
    ],
)
def test_errors_name_the_python_parameter_never_a_flag(small, params, exc, fragment):
    with pytest.raises(exc) as info:
        _fit(small, **params)
    message = str(info.value)
    assert fragment in message, message
    assert "--" not in message, message


def test_a_diverged_training_is_a_runtime_error_with_the_python_fix(small):
    with pytest.raises(RuntimeError) as info:
        _fit(small, learning_rate=1e38, epochs=3)
    message = str(info.value)
    assert "training diverged" in message and "learning_rate" in message and "gamma" in message, message
    assert "--" not in message, message


def test_a_missing_model_directory_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        FairRepresentationClassifier.load(str(tmp_path / "nowhere"))
    assert "--" not in str(info.value)


def test_code_width_is_the_cores_representation_width(small):
    # With two stochastic-capable layers and the first chosen, the representation is 16 wide, not 8.
    X, y, s, *_ = small
    clf = FairRepresentationClassifier(preset="none", epochs=1, hidden=(16, 8), stochastic=(0,), draws=1, forest_trees=3)
    clf.fit(X, y, sensitive_features=s)
    assert clf.code_width_ == 16
    assert clf.transform(X[:5]).shape == (5, 16)


def test_a_model_from_the_command_line_recovers_its_parameters(tmp_path, cli):
    from conftest import run

    run(cli, "train", "--dataset", "german", "--epochs", "2", "--gamma", "0.5", "--lr", "0.002", "--hidden", "8,4",
        "--draws", "2", "--forest-trees", "3", "--out", str(tmp_path / "m"))
    clf = FairRepresentationClassifier.load(str(tmp_path / "m"))
    assert (clf.gamma, clf.learning_rate, clf.hidden, clf.epochs, clf.draws) == (0.5, 0.002, (8, 4), 2, 2)
    assert np.isfinite(clf.predict_proba(_german_rows())).all()


def _german_rows():
    from fairbits.datasets import load_german

    return load_german().X_test[:10]


def test_the_docstring_example_runs():
    import doctest

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = doctest.DocTestFinder().find(FairRepresentationClassifier, "FairRepresentationClassifier", globs={})
    assert tests and any(t.examples for t in tests)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0

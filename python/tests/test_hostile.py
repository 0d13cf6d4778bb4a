"""Hostile input from Python: one row per case (what is done, the exception, a fragment of its message),
each run in a fresh directory with "nothing changed on disk" checked: files that were there keep their
bytes and nothing appears but what the call is meant to write. docs/reliability.md's Python table lists
the cases (checked below)."""

import hashlib
import os

import numpy as np
import pytest

from conftest import small_frame
from fairbits import FairRepresentationClassifier, InvalidParameterError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def frame():
    return small_frame(n=80)


def small(**kw):
    settings = dict(hidden=(4, 2), epochs=1, draws=1, forest_trees=2)
    settings.update(kw)
    return FairRepresentationClassifier(**settings)


@pytest.fixture(scope="module")
def fitted():
    X, y, s = frame()
    return small().fit(X, y, sensitive_features=s)


def fit_with(X=None, y=None, s=None, **kw):
    X0, y0, s0 = frame()
    return small(**kw).fit(X0 if X is None else X, y0 if y is None else y, sensitive_features=s0 if s is None else s)


def x_with(column, row, value):
    X, _, _ = frame()
    X = X.copy()
    X[column] = X[column].astype(object) if isinstance(value, str) else X[column]
    X.loc[row, column] = value
    return X


def y_with_nan_among_strings():
    _, y, _ = frame()
    labels = np.where(y == 1, "yes", "no").astype(object)
    labels[4] = float("nan")
    return labels


def write_thesis(d):
    os.makedirs(os.path.join(d, "thesis"))
    with open(os.path.join(d, "thesis", "thesis.txt"), "w") as f:
        f.write("years of work")


# (what, setup(dir), call(dir, fitted), exception, fragment, what the call may write)
CASES = [
    ("a cell of 1e308 whose mean overflows", None, lambda d, m: fit_with(X=x_with("age", slice(3, 12), 1e308)),
     ValueError, "value '1e308' is too large", []),
    ("NaN in X", None, lambda d, m: fit_with(X=x_with("age", 7, np.nan)), ValueError, "row 7", []),
    ("infinity in X", None, lambda d, m: fit_with(X=x_with("age", 5, np.inf)), ValueError, "'inf' is not finite", []),
    ("NaN among string labels in y", None, lambda d, m: fit_with(y=y_with_nan_among_strings()), ValueError,
     "y has a missing value (nan) at row 4", []),
    ("None in y", None, lambda d, m: fit_with(y=np.where(frame()[1] == 1, "yes", None)), ValueError,
     "y has a missing value (None)", []),
    ("gamma=NaN", None, lambda d, m: fit_with(gamma=float("nan")), ValueError, "invalid gamma = NaN", []),
    ("a number as a string (learning_rate='fast')", None, lambda d, m: fit_with(learning_rate="fast"),
     InvalidParameterError, "learning_rate must be a number", []),
    ("threshold=2 at predict time", None, lambda d, m: m.set_params(threshold=2.0).predict(frame()[0]), ValueError,
     "invalid threshold = 2.0", []),
    ("save over a saved model", lambda d: None, lambda d, m: [m.save(os.path.join(d, "m")), m.save(os.path.join(d, "m"))],
     FileExistsError, "holds a trained model, which would be replaced (to allow it: overwrite)", ["m"]),
    ("save into a directory holding someone's files", write_thesis, lambda d, m: m.save(os.path.join(d, "thesis")),
     FileExistsError, "holds files that are not a fairbits model's ('thesis.txt')", []),
    ("save to a path that is a file", lambda d: open(os.path.join(d, "f.txt"), "w").close(),
     lambda d, m: m.save(os.path.join(d, "f.txt"), overwrite=True), FileExistsError, "not a directory", []),
    ("load a directory that does not exist", None, lambda d, m: FairRepresentationClassifier.load(os.path.join(d, "no")),
     FileNotFoundError, "cannot read config.json", []),
    ("a feature column missing at predict time", None, lambda d, m: m.predict(frame()[0].drop(columns=["job"])),
     ValueError, "column 'job' not found", []),
    ("an image array for a table model", None, lambda d, m: m.model_.transform_array(np.zeros((2, 3, 28, 28), np.float32), "sample"),
     ValueError, "X: images, but the model reads table rows", []),
    ("a training that diverges (learning_rate=1e38)", None,
     lambda d, m: fit_with(preset="none", learning_rate=1e38, epochs=3, hidden=(8, 4)),
     RuntimeError, "(try a smaller learning_rate or gamma)", []),
]


def snapshot(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_case(case, fitted, tmp_path):
    what, setup, call, exc, fragment, writes = case
    d = str(tmp_path)
    if setup:
        setup(d)
    before = snapshot(d)
    with pytest.raises(exc) as info:
        call(d, fitted)
    message = str(info.value)
    assert fragment in message, message
    assert "--" not in message, f"a flag in a Python message: {message}"
    after = snapshot(d)
    allowed = lambda p: any(p == w or p.startswith(w + os.sep) for w in writes)  # noqa: E731
    for p, sha in before.items():
        assert after.get(p) == sha or allowed(p), f"{p} changed"
    assert not [p for p in after if p not in before and not allowed(p)], f"new files: {after.keys() - before.keys()}"
    assert not [p for p in after if p.endswith(".tmp")], "a temporary file was left"
    fitted.set_params(threshold=0.5)


def test_save_overwrite_replaces_a_model_and_loads_back(fitted, tmp_path):
    path = str(tmp_path / "m")
    fitted.save(path)
    fitted.save(path, overwrite=True)
    back = FairRepresentationClassifier.load(path)
    X, _, _ = frame()
    np.testing.assert_array_equal(back.transform(X, codes="prob"), fitted.transform(X, codes="prob"))


def test_the_docs_table_lists_every_case():
    with open(os.path.join(REPO, "docs", "reliability.md")) as f:
        text = f.read()
    block = text.split("## The Python package")[1].split("## ")[0]
    for what, *_ in CASES:
        assert what in block, f"docs/reliability.md lacks the Python case '{what}'"

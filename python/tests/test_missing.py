"""Issue 20 item 5: the missing-value policy from Python (``missing``: drop, error, impute), at fit and at
predict/transform, with the cells pandas, polars, pyarrow and numpy call missing."""

import json
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import run
from fairbits import FairRepresentationClassifier
from fairbits.datasets import load

FAST = dict(epochs=3, hidden=(8,), gamma=0.0, preset="none", random_state=0)


def _rows(n=300, seed=0):
    """A numeric and a text feature, with missing cells in both (rows 3, 10, 17, ... and 5, 40, 75, ...)."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    y = (rng.normal(size=n) + s > 0.5).astype(int)
    age = 40 + 10 * rng.normal(size=n) + 5 * y
    job = np.where(rng.random(n) < 0.5, "a", np.where(y == 1, "b", "c")).astype(object)
    X = pd.DataFrame({"age": age, "job": job})
    X.loc[3::7, "age"] = np.nan
    X.loc[5::35, "job"] = None
    return X, y, np.where(s == 1, "f", "m")


def test_drop_is_the_model_of_the_complete_rows_and_counts_them():
    X, y, s = _rows()
    w = np.linspace(0.5, 2.0, len(X))
    keep = X.notna().all(axis=1).to_numpy()
    with pytest.warns(UserWarning, match=f"{(~keep).sum()} of {len(X)} rows have a missing value and were dropped"):
        dropped = FairRepresentationClassifier(missing="drop", **FAST).fit(X, y, sensitive_features=s, sample_weight=w)
    complete = FairRepresentationClassifier(**FAST).fit(
        X[keep].reset_index(drop=True), y[keep], sensitive_features=s[keep], sample_weight=w[keep]
    )
    clean = X[keep].reset_index(drop=True)
    np.testing.assert_array_equal(dropped.predict_proba(clean), complete.predict_proba(clean))
    # At predict no row is dropped: a missing cell is an error naming its row and column, and the way out.
    with pytest.raises(ValueError, match=r"row 3.*'age'.*missing='impute'"):
        dropped.predict(X)
    with pytest.raises(ValueError, match=r"row 5.*'job'.*missing='impute'"):
        dropped.transform(X.fillna({"age": 40.0}))
    assert dropped.__sklearn_tags__().input_tags.allow_nan is False


def test_error_names_the_row_and_column():
    X, y, s = _rows()
    with pytest.raises(ValueError, match=r"row 3.*column 'age' has a missing value"):
        FairRepresentationClassifier(missing="error", **FAST).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="missing"):
        FairRepresentationClassifier(missing="sometimes", **FAST).fit(X, y, sensitive_features=s)


def test_impute_keeps_every_row_and_predicts_one_output_per_row():
    X, y, s = _rows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped, nothing to say
        clf = FairRepresentationClassifier(missing="impute", **FAST).fit(X, y, sensitive_features=s)
    assert clf.__sklearn_tags__().input_tags.allow_nan is True
    p = clf.predict_proba(X)
    assert p.shape == (len(X), 2) and np.isfinite(p).all()
    assert clf.transform(X).shape[0] == len(X) and clf.predict(X).shape == (len(X),)
    # The fill is the training rows' median: a row whose age is missing reads as that median with its
    # indicator on, whatever the row says elsewhere; the audits take the same rows.
    cert = clf.certificate(X, y, sensitive_features=s)
    assert sum(cert["n_per_group"]) == len(X)
    # The same cells from polars (null), pyarrow (null) and a numpy float array (NaN).
    pl = pytest.importorskip("polars")
    np.testing.assert_array_equal(clf.predict_proba(pl.from_pandas(X)), p)
    pa = pytest.importorskip("pyarrow")
    np.testing.assert_array_equal(clf.predict_proba(pa.Table.from_pandas(X)), p)
    numeric = FairRepresentationClassifier(missing="impute", **FAST).fit(
        X[["age"]].to_numpy(), y, sensitive_features=s
    )
    assert np.isfinite(numeric.predict_proba(X[["age"]].to_numpy())).all()
    with pytest.warns(UserWarning, match="were dropped"):
        dropping = FairRepresentationClassifier(missing="drop", **FAST).fit(X[["age"]].to_numpy(), y, sensitive_features=s)
    with pytest.raises(ValueError, match=r"row 3.*missing='impute'"):
        dropping.predict(X[["age"]].to_numpy())


def test_impute_from_python_is_the_command_lines_impute(cli, tmp_path):
    """Adult has missing cells ('?' in three text columns). The command line's run with --missing impute
    and Python's fit on the same training rows with missing='impute' are the same model: the same
    metrics, and each edge's predictions of rows with missing cells are the other's."""
    out = tmp_path / "cli"
    run(cli, "train", "--dataset", "adult", "--preset", "certified", "--epochs", "2", "--seed", "1",
        "--reproducible", "--missing", "impute", "--quiet", "--out", str(out))
    cli_metrics = json.loads((out / "metrics.json").read_text())
    d = load("adult", seed=1, missing="impute")
    assert (d.X_train == "?").to_numpy().any(), "the split keeps the rows with missing cells"
    clf = FairRepresentationClassifier(epochs=2, random_state=1, missing="impute").fit(
        d.X_train, d.y_train, sensitive_features=d.s_train
    )
    py = clf.evaluate(d.X_test, d.y_test, sensitive_features=d.s_test, probe_data=(d.X_train, d.y_train, d.s_train))
    assert py["n_train"] == cli_metrics["n_train"] and py["n_test"] == cli_metrics["n_test"]
    for k in ("task", "fairness", "probes", "information", "certificate"):
        assert py[k] == cli_metrics[k], k
    # The command line's predictions of Python's model on rows with missing cells, and the reverse.
    rows = d.X_test.iloc[:400]
    assert (rows == "?").to_numpy().any()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    clf.save(tmp_path / "py")
    for model, proba in [(tmp_path / "py", clf.predict_proba(rows)[:, 1]),
                         (out, FairRepresentationClassifier.load(out).predict_proba(rows)[:, 1])]:
        run(cli, "predict", "--model", str(model), "--input", str(tmp_path / "rows.csv"), "--output",
            str(tmp_path / "p.csv"), "--quiet")
        cli_p = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=1)
        assert len(cli_p) == len(rows)
        assert np.allclose(cli_p, proba, atol=1e-6)

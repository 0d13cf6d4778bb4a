"""Python and the command line read each other's models and give the same numbers."""

import json
import os
import pickle
import subprocess

import numpy as np
import pytest

from conftest import run
from fairbits import FairRepresentationClassifier, load
from fairbits.datasets import load_adult

TOP = ("task", "fairness", "probes", "information", "certificate")


def test_python_metrics_equal_the_cli_for_the_same_seed(cli, tmp_path):
    out = tmp_path / "cli"
    # Python's default is the certified preset: the same run on the command line names it.
    run(cli, "train", "--dataset", "adult", "--preset", "certified", "--epochs", "2", "--seed", "1", "--reproducible",
        "--quiet", "--out", str(out))
    cli_metrics = json.loads((out / "metrics.json").read_text())
    d = load_adult(seed=1)  # the command line's split of seed 1
    clf = FairRepresentationClassifier(epochs=2, random_state=1).fit(d.X_train, d.y_train, sensitive_features=d.s_train)
    py = clf.evaluate(d.X_test, d.y_test, sensitive_features=d.s_test, probe_data=(d.X_train, d.y_train, d.s_train))
    for k in TOP:
        assert py[k] == cli_metrics[k], k
    assert py["n_train"] == cli_metrics["n_train"] and py["n_test"] == cli_metrics["n_test"]


def test_a_python_model_is_evaluated_by_the_cli(small, cli, tmp_path):
    X, y, s, Xt, yt, st = small
    clf = FairRepresentationClassifier(hidden=(16, 8), epochs=2).fit(X, y, sensitive_features=s)
    clf.save(tmp_path / "m")
    frame = Xt.assign(income=yt, sex=st)
    frame.to_csv(tmp_path / "test.csv", index=False)
    r = run(cli, "eval", "--model", str(tmp_path / "m"), "--csv", str(tmp_path / "test.csv"), "--target", "income",
            "--sensitive", "sex", "--json", "--quiet")
    cli_metrics = json.loads(r.stdout)
    py = clf.evaluate(Xt, yt, sensitive_features=st)
    for k in TOP:
        assert py[k] == cli_metrics[k], k
    # Its training rows were never a file: the CLI says so instead of guessing.
    r = subprocess.run([cli, "eval", "--model", str(tmp_path / "m")], capture_output=True, text=True)
    assert r.returncode == 3 and "held in memory" in r.stderr, r.stderr
    # And the CLI's predictions are Python's.
    Xt.to_csv(tmp_path / "rows.csv", index=False)
    run(cli, "predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "rows.csv"), "--output",
        str(tmp_path / "p.csv"), "--quiet")
    cli_p = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=1)
    assert np.allclose(cli_p, clf.predict_proba(Xt)[:, 1], atol=1e-6)


def test_a_cli_model_is_loaded_in_python(adult, cli, tmp_path):
    out = tmp_path / "cli"
    run(cli, "train", "--dataset", "adult", "--epochs", "1", "--quiet", "--out", str(out))
    clf = load(out)
    assert list(clf.classes_) == ["<=50K", ">50K"]
    d = adult
    rows = d.X_test.iloc[:300]
    rows.to_csv(tmp_path / "rows.csv", index=False)
    run(cli, "predict", "--model", str(out), "--input", str(tmp_path / "rows.csv"), "--output",
        str(tmp_path / "p.csv"), "--quiet")
    cli_p = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=1)
    assert np.allclose(cli_p, clf.predict_proba(rows)[:, 1], atol=1e-6)


def test_save_load_and_pickle_round_trip(small, tmp_path):
    X, y, s, Xt, *_ = small
    clf = FairRepresentationClassifier(hidden=(8, 4), epochs=1).fit(X, y, sensitive_features=s)
    clf.save(tmp_path / "m")
    again = FairRepresentationClassifier.load(tmp_path / "m")
    assert again.get_params() == clf.get_params()
    assert np.array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
    un = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(un.predict_proba(Xt), clf.predict_proba(Xt))
    assert list(un.classes_) == list(clf.classes_)


def test_a_cli_image_model_takes_arrays_in_python(cli, tmp_path):
    out = tmp_path / "img"
    run(cli, "train", "--dataset", "biased-mnist", "--epochs", "1", "--train-size", "500", "--quiet", "--out", str(out))
    clf = load(out)
    x = np.random.default_rng(0).random((20, 3, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    run(cli, "predict", "--model", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "p.npy"),
        "--quiet")
    p = clf.predict_proba(x)
    assert p.shape == (20, 10)
    cli_p = np.load(tmp_path / "p.npy")  # 10 class probabilities, then the decision
    assert np.allclose(cli_p[:, :10], p, atol=1e-6)
    assert np.array_equal(cli_p[:, 10].astype(int), clf.predict(x))
    assert clf.transform(x).shape == (20, clf.code_width_)
    assert set(clf.predict(x)) <= set(range(10))


def test_read_table_reads_csv_and_what_the_cli_reads(tmp_path, small):
    from fairbits.datasets import read_table

    X = small[0].iloc[:50]
    X.to_csv(tmp_path / "x.csv", index=False)
    back = read_table(tmp_path / "x.csv")
    assert list(back.columns) == list(X.columns)
    assert np.allclose(back["age"].to_numpy(), X["age"].to_numpy())
    assert list(back["workclass"]) == list(X["workclass"])
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.parquet: not a readable Parquet file"):
        read_table(tmp_path / "bad.parquet")

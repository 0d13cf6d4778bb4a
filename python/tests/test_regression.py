"""A numeric target: FairRepresentationRegressor's fit, predict and score, its reported RMSE and R^2 against
scikit-learn's on the same predictions, and scikit-learn's conventions (clone, get_params, Pipeline)."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import fairbits
from fairbits import FairRepresentationClassifier, FairRepresentationRegressor


def prices(n, seed):
    rng = np.random.default_rng(seed)
    s = rng.choice(["f", "m"], n)
    X = pd.DataFrame({"a": rng.uniform(-1, 1, n), "b": rng.uniform(-1, 1, n), "colour": rng.choice(["red", "blue"], n)})
    y = 50 + 8 * X["a"] - 5 * X["b"] + 3 * (s == "m") + rng.normal(0, 1, n)
    return X, pd.Series(y, name="price"), s


@pytest.fixture(scope="module")
def fitted():
    X, y, s = prices(1200, 0)
    # Threshold codes: deterministic, so evaluate's numbers are those of predict's values.
    reg = FairRepresentationRegressor(hidden=(32, 16), epochs=40, inference="threshold", random_state=0)
    return reg.fit(X, y, sensitive_features=s)


def test_it_beats_the_mean_and_answers_in_the_targets_units(fitted):
    X, y, s = prices(400, 1)
    pred = fitted.predict(X)
    assert pred.shape == (400,) and pred.dtype == np.float64
    baseline = np.sqrt(np.mean((y - y.mean()) ** 2))
    rmse = np.sqrt(mean_squared_error(y, pred))
    assert rmse < 0.6 * baseline, (rmse, baseline)
    # score is R^2, scikit-learn's.
    assert fitted.score(X, y) == pytest.approx(r2_score(y, pred), abs=1e-12)
    assert fitted.score(X, y) > 0.6
    # Predictions are in the target's units (mean about 51.5), not standard ones.
    assert abs(pred.mean() - y.mean()) < 2.0


def test_reported_metrics_are_sklearns_on_the_same_predictions(fitted):
    X, y, s = prices(400, 2)
    pred = fitted.predict(X)
    m = fitted.evaluate(X, y, sensitive_features=s)
    assert "task" not in m and "fairness" not in m
    r = m["regression"]
    assert r["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-6)
    assert r["r2"] == pytest.approx(r2_score(y, pred), rel=1e-6)
    assert r["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-6)
    means = [pred[s == g].mean() for g in fitted.sensitive_groups_]
    assert r["mean_by_group"] == pytest.approx(means, rel=1e-6)
    assert r["mean_gap"] == pytest.approx(max(means) - min(means), rel=1e-6, abs=1e-9)
    # The certificate is about the codes: the same fields as a classifier's.
    assert 0.0 <= m["certificate"]["population"]["dp_gap_bound"] <= 1.0
    cert = fitted.certificate(X, y, sensitive_features=s)
    assert 0.0 <= cert["dp_gap_bound"] <= 1.0


def test_sklearn_conventions(fitted):
    assert is_regressor(fitted) and not is_classifier(fitted)
    params = fitted.get_params()
    # A classifier's label and threshold, and the certified-bound search, are not a regressor's.
    for name in ("pos_label", "threshold", "max_certified_dp"):
        assert name not in params
    assert params["preset"] == "invariant"
    b = clone(fitted)
    assert b.get_params() == params and not hasattr(b, "model_")
    assert not hasattr(fitted, "predict_proba") and not hasattr(fitted, "decision_function")
    assert not hasattr(fitted, "classes_")
    with pytest.raises(ValueError, match="Invalid parameter"):
        FairRepresentationRegressor().set_params(pos_label=1)
    with pytest.raises(fairbits.NotFittedError):
        FairRepresentationRegressor().predict(np.zeros((2, 2)))


def test_in_a_pipeline():
    X, y, s = prices(600, 3)
    num = X[["a", "b"]].to_numpy()
    pipe = Pipeline([("scale", StandardScaler()), ("fair", FairRepresentationRegressor(hidden=(16, 8), epochs=20))])
    pipe.fit(num, y, fair__sensitive_features=s)
    assert pipe.score(num, y) > 0.3
    assert fairbits.evaluate(pipe, num, y, sensitive_features=s)["regression"]["rmse"] > 0


def test_save_load_and_pickle(fitted, tmp_path):
    X, y, s = prices(50, 4)
    pred = fitted.predict(X)
    fitted.save(tmp_path / "m")
    for loaded in (fairbits.load(tmp_path / "m"), FairRepresentationRegressor.load(tmp_path / "m")):
        assert type(loaded) is FairRepresentationRegressor
        assert np.allclose(loaded.predict(X), pred)
    assert np.allclose(pickle.loads(pickle.dumps(fitted)).predict(X), pred)
    with pytest.raises(ValueError, match="FairRepresentationRegressor"):
        FairRepresentationClassifier.load(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoding"]["target"]["regression"]["std"] > 1.0


def test_the_target_must_be_numbers():
    X, y, s = prices(100, 5)
    with pytest.raises(ValueError, match="must be numbers"):
        FairRepresentationRegressor(epochs=1).fit(X, np.array(["a"] * 100, dtype=object), sensitive_features=s)
    with pytest.raises(ValueError, match="NaN"):
        FairRepresentationRegressor(epochs=1).fit(X, np.where(np.arange(100) == 7, np.nan, y), sensitive_features=s)
    # A classifier still refuses a continuous target (regression is asked for, never guessed).
    with pytest.raises(ValueError, match="continuous"):
        FairRepresentationClassifier(epochs=1).fit(X, y, sensitive_features=s)

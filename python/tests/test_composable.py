"""Issue 22: fair by default, honest about coverage, composable (constructor sensitive_features,
random_state like scikit-learn's, Pipelines reach the audit), dates refused."""

import warnings

import numpy as np
import pandas as pd
import pytest

import fairbits
from fairbits import FairRepresentationClassifier, UncertifiedOutputWarning

FAST = dict(epochs=3, hidden=(16,), gamma=0.0, preset="none", random_state=0)


def _framed(small):
    """The small Adult slice with the group as a column of X."""
    X, y, s, Xt, yt, st = small
    return X.assign(sex=s.to_numpy()), y, Xt.assign(sex=st.to_numpy()), yt


def test_constructor_sensitive_features_is_a_column_of_x_and_not_a_feature(small):
    X, y, Xt, yt = _framed(small)
    a = FairRepresentationClassifier(sensitive_features="sex", **FAST).fit(X, y)
    assert "sex" not in list(a.feature_names_in_)
    # The same as naming the column in the call.
    b = FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features="sex")
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    # The audit finds the groups the same way.
    assert a.certificate(Xt, yt)["dp_gap_bound"] == b.certificate(Xt, yt, sensitive_features="sex")["dp_gap_bound"]
    # include_sensitive keeps it as a feature too.
    c = FairRepresentationClassifier(sensitive_features="sex", include_sensitive=True, **FAST).fit(X, y)
    assert "sex" in list(c.feature_names_in_)


def test_without_any_sensitive_features_fit_says_where_to_give_them(small):
    X, y, *_ = small
    with pytest.raises(ValueError, match="constructor's sensitive_features"):
        FairRepresentationClassifier(**FAST).fit(X, y)


def test_wrappers_that_only_pass_x_and_y(small):
    """BaggingClassifier and fairlearn's ThresholdOptimizer(prefit=False) call fit(X, y) (and the latter
    predict on the same frame): the constructor's column name is how the groups reach the model."""
    ensemble = pytest.importorskip("sklearn.ensemble")
    X, y, Xt, yt = _framed(small)
    # Bagging turns the frame into an array: the group is named by its position there.
    numeric = X.select_dtypes("number")
    bag = ensemble.BaggingClassifier(
        FairRepresentationClassifier(sensitive_features=-1, **FAST), n_estimators=2, random_state=0
    ).fit(numeric, y)
    assert bag.score(Xt[numeric.columns], yt) > 0.7
    with pytest.raises(ValueError, match="give positions instead"):
        ensemble.BaggingClassifier(FairRepresentationClassifier(sensitive_features="sex", **FAST), n_estimators=2).fit(
            numeric, y
        )
    postprocessing = pytest.importorskip("fairlearn.postprocessing")
    to = postprocessing.ThresholdOptimizer(
        estimator=FairRepresentationClassifier(sensitive_features="sex", **FAST),
        constraints="demographic_parity",
        prefit=False,
        predict_method="predict_proba",
    )
    positive = np.unique(y)[1]  # fairlearn's postprocessing wants labels 0 and 1
    to.fit(X, (np.asarray(y) == positive).astype(int), sensitive_features=X["sex"])
    pred = to.predict(Xt, sensitive_features=Xt["sex"], random_state=0)
    assert pred.shape == (len(Xt),)
    assert (pred == (np.asarray(yt) == positive)).mean() > 0.7


@pytest.mark.parametrize("kind", ["none", "int", "RandomState", "Generator"])
def test_random_state_takes_what_scikit_learn_takes(small, kind):
    X, y, s, Xt, *_ = small
    state = {
        "none": None,
        "int": 7,
        "RandomState": np.random.RandomState(7),
        "Generator": np.random.default_rng(7),
    }[kind]
    clf = FairRepresentationClassifier(**{**FAST, "random_state": state}).fit(X, y, sensitive_features=s)
    assert isinstance(clf.random_state_, int)
    # The seed it used repeats the fit exactly.
    again = FairRepresentationClassifier(**{**FAST, "random_state": clf.random_state_}).fit(X, y, sensitive_features=s)
    np.testing.assert_array_equal(clf.predict_proba(Xt), again.predict_proba(Xt))
    assert clf.n_iter_ == len(clf.history_) <= FAST["epochs"]


def test_random_state_none_draws_a_new_seed_each_fit(small):
    X, y, s, *_ = small
    clf = FairRepresentationClassifier(**{**FAST, "random_state": None, "epochs": 1})
    seeds = {clf.fit(X, y, sensitive_features=s).random_state_ for _ in range(3)}
    assert len(seeds) == 3


@pytest.mark.parametrize("column", ["datetime", "timedelta"])
def test_dates_and_times_are_refused_not_one_hot_encoded(small, column):
    X, y, s, *_ = small
    start = pd.Timestamp("2020-01-01")
    values = pd.date_range(start, periods=len(X), freq="h")
    X = X.assign(when=values if column == "datetime" else values - start)
    with pytest.raises(ValueError, match="'when' holds dates or times"):
        FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s)


def test_pipeline_reaches_the_audit(small):
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    compose = pytest.importorskip("sklearn.compose")
    X, y, s, Xt, yt, st = small
    numeric = list(X.select_dtypes("number").columns)
    scale = compose.ColumnTransformer([("num", preprocessing.StandardScaler(), numeric)], remainder="passthrough")
    scale.set_output(transform="pandas")
    pipe = pipeline.make_pipeline(scale, FairRepresentationClassifier(**FAST)).fit(
        X, y, fairrepresentationclassifier__sensitive_features=s
    )
    clf = pipe[-1]
    by_hand = clf.certificate(pipe[:-1].transform(Xt), yt, sensitive_features=st)
    assert fairbits.certificate(pipe, Xt, yt, sensitive_features=st)["dp_gap_bound"] == by_hand["dp_gap_bound"]
    mi = fairbits.mutual_information(pipe, Xt, st)
    assert mi == clf.mutual_information(pipe[:-1].transform(Xt), st)
    ev = fairbits.evaluate(pipe, Xt, yt, sensitive_features=st)
    assert ev == clf.evaluate(pipe[:-1].transform(Xt), yt, sensitive_features=st)
    with pytest.raises(ValueError, match="no FairRepresentationClassifier"):
        fairbits.certificate(pipeline.make_pipeline(preprocessing.StandardScaler()), Xt, yt, sensitive_features=st)


def test_certificate_says_what_it_covers_and_prob_warns(small):
    X, y, s, Xt, yt, st = small
    clf = FairRepresentationClassifier(**{**FAST, "draws": 1}).fit(X, y, sensitive_features=s)
    cert = clf.certificate(Xt, yt, sensitive_features=st)
    assert cert["covers_predict"] is True and "ONE sampled code per row" in cert["covers"]
    clf.set_params(draws=10)
    assert clf.certificate(Xt, yt, sensitive_features=st)["covers_predict"] is False
    clf.set_params(inference="prob")
    fairbits._estimator._WARNED_UNCERTIFIED.clear()
    with pytest.warns(UncertifiedOutputWarning, match="does not cover"):
        assert clf.certificate(Xt, yt, sensitive_features=st)["covers_predict"] is False
    with pytest.warns(UncertifiedOutputWarning, match="predict_proba"):
        clf.predict_proba(Xt)
    with pytest.warns(UncertifiedOutputWarning, match="transform"):
        clf.transform(Xt)
    # Once per kind of output, not once per call.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncertifiedOutputWarning)
        clf.transform(Xt)


def test_the_default_constructor_is_fair_and_accurate(adult):
    """Fair by default: the default estimator (the certified preset) on Adult, certified on the test split it
    never saw. (A gamma-0 model has a DP gap near 0.18 here.)"""
    d = adult
    clf = FairRepresentationClassifier().fit(d.X_train, d.y_train, sensitive_features=d.s_train)
    cert = clf.certificate(d.X_test, d.y_test, sensitive_features=d.s_test)
    metrics = clf.evaluate(d.X_test, d.y_test, sensitive_features=d.s_test)
    assert cert["dp_gap_bound"] <= 0.10, cert
    assert metrics["task"]["accuracy"] >= 0.82, metrics["task"]

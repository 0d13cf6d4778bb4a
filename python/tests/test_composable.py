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
    def numeric(frame):  # the group as the last column
        return frame.select_dtypes("number").assign(sex=(frame["sex"] == "Female").astype(int))

    bag = ensemble.BaggingClassifier(
        FairRepresentationClassifier(sensitive_features=-1, **{**FAST, "epochs": 20}), n_estimators=2, random_state=0
    ).fit(numeric(X), y)
    assert bag.score(numeric(Xt), yt) > 0.7
    assert len(bag.estimators_[0].sensitive_groups_) == 2
    with pytest.raises(ValueError, match="give positions instead"):
        ensemble.BaggingClassifier(FairRepresentationClassifier(sensitive_features="sex", **FAST), n_estimators=2).fit(
            numeric(X), y
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


def test_equal_sample_weights_are_no_weights(small):
    X, y, s, Xt, *_ = small
    a = FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s)
    b = FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s, sample_weight=np.full(len(X), 2.0))
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))


def test_rows_of_weight_zero_are_not_trained_on(small):
    X, y, s, Xt, *_ = small
    positive = np.asarray(y) == np.unique(y)[1]
    params = {**FAST, "epochs": 60}
    clf = FairRepresentationClassifier(**params).fit(X, y, sensitive_features=s, sample_weight=np.where(positive, 0.0, 1.0))
    plain = FairRepresentationClassifier(**params).fit(X, y, sensitive_features=s)
    # Only negative rows were seen: the positive class is (almost) never predicted (unweighted: about 0.25).
    assert clf.predict_proba(Xt)[:, 1].mean() < 0.1 < plain.predict_proba(Xt)[:, 1].mean()


@pytest.mark.parametrize(
    "weights, message",
    [([1.0, -1.0], "row 2 holds -1"), ([1.0, float("nan")], "row 2 holds NaN"), ([0.0, 0.0], "every weight is 0")],
)
def test_bad_sample_weights_name_the_row(small, weights, message):
    X, y, s, *_ = small
    w = np.ones(len(X))
    w[: len(weights)] = weights
    if message.startswith("every"):
        w[:] = 0.0
    with pytest.raises(ValueError, match=message):
        FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight has 3 rows"):
        FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s, sample_weight=[1, 2, 3])


def test_integer_weights_act_as_duplicated_rows(adult):
    """Weight 4 on the positive rows of women against those rows written four times: the same weighted
    distribution, so the models' positive rates on the test rows of women agree (both far from the unweighted
    model's: about 0.20, 0.20 and 0.13)."""
    d = adult
    X, y, s = d.X_train.iloc[:6000].reset_index(drop=True), d.y_train[:6000], d.s_train.iloc[:6000].reset_index(drop=True)
    women = s.astype(str).to_numpy() == "Female"
    assert women.any()
    boost = (np.asarray(y) == np.unique(y)[1]) & women
    params = dict(epochs=15, hidden=(32,), gamma=0.0, preset="none", random_state=3)
    weighted = FairRepresentationClassifier(**params).fit(X, y, sensitive_features=s, sample_weight=np.where(boost, 4.0, 1.0))
    idx = np.concatenate([np.arange(len(X))] + [np.flatnonzero(boost)] * 3)
    dup = FairRepresentationClassifier(**params).fit(
        X.iloc[idx].reset_index(drop=True), np.asarray(y)[idx], sensitive_features=s.iloc[idx].reset_index(drop=True)
    )
    plain = FairRepresentationClassifier(**params).fit(X, y, sensitive_features=s)
    women_test = d.s_test.astype(str).to_numpy() == "Female"
    rate = lambda m: m.predict_proba(d.X_test)[women_test, 1].mean()  # noqa: E731
    assert abs(rate(weighted) - rate(dup)) < 0.02
    assert rate(weighted) - rate(plain) > 0.05


def test_exponentiated_gradient_wraps_the_estimator(small):
    """fairlearn's reduction calls fit(X, y, sample_weight=w): the groups come from the constructor."""
    reductions = pytest.importorskip("fairlearn.reductions")
    X, y, Xt, yt = _framed(small)
    positive = np.unique(y)[1]
    y01, yt01 = (np.asarray(y) == positive).astype(int), (np.asarray(yt) == positive).astype(int)
    eg = reductions.ExponentiatedGradient(
        FairRepresentationClassifier(sensitive_features="sex", **{**FAST, "epochs": 40}),
        constraints=reductions.DemographicParity(difference_bound=0.02),
        max_iter=8,
    )
    eg.fit(X, y01, sensitive_features=X["sex"])
    plain = FairRepresentationClassifier(sensitive_features="sex", **{**FAST, "epochs": 40}).fit(X, y01)
    women = Xt["sex"].to_numpy() == "Female"

    def dp(pred):
        return abs(pred[women].mean() - pred[~women].mean())

    pred = eg.predict(Xt, random_state=0)
    # The weighted fits move the mixture towards parity (measured: 0.022 against 0.185 at accuracy 0.81).
    assert (pred == yt01).mean() > 0.75
    assert dp(pred) < dp(plain.predict(Xt)) / 2


def test_a_numeric_group_column_is_refused_without_bins_and_cut_with_them(adult):
    """Age as the sensitive feature: 70-odd distinct numbers are not groups; sensitive_bins=4 cuts it at the
    training rows' quartiles, and held-out rows are cut at the same edges."""
    d = adult
    X, y, age = d.X_train.iloc[:3000], d.y_train[:3000], d.X_train["age"].iloc[:3000]
    with pytest.raises(ValueError, match=r"distinct numbers.*sensitive_bins=4"):
        FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=age)
    clf = FairRepresentationClassifier(sensitive_bins=4, **FAST).fit(X, y, sensitive_features=age)
    cert = clf.certificate(d.X_test, d.y_test, sensitive_features=d.X_test["age"])
    assert len(cert["n_per_group"]) == 4 and cert["dp_gap_bound"] < 1.0
    ev = clf.evaluate(d.X_test, d.y_test, sensitive_features=d.X_test["age"])
    assert len(ev["groups"]) == 4 and ev["groups"][0].startswith("1: < ")


def test_a_vacuous_certificate_warns(small):
    X, y, s, Xt, yt, st = small
    clf = FairRepresentationClassifier(**FAST).fit(X, y, sensitive_features=s)
    few = slice(0, 12)
    with pytest.warns(UserWarning, match="the certificate is vacuous"):
        clf.certificate(Xt[few], yt[few], sensitive_features=st[few])


def test_images_fitted_from_python_are_the_command_lines_model(cli, tmp_path):
    """The same digits, seed and epochs: the model fitted on arrays in Python predicts exactly as the one
    `fairbits train --dataset biased-mnist` trains."""
    from conftest import run

    d = fairbits.datasets.load_biased_mnist(rho=0.99, seed=2)
    assert d.X_train.shape == (4000, 3, 28, 28) and d.X_test.shape == (1000, 3, 28, 28)
    run(cli, "train", "--dataset", "biased-mnist", "--seed", "2", "--epochs", "1", "--forest-trees", "2",
        "--draws", "1", "--out", str(tmp_path / "m"), "--quiet")
    on_cli = fairbits.load(str(tmp_path / "m"))
    clf = FairRepresentationClassifier(epochs=1, draws=1, random_state=2).fit(d.X_train, d.y_train, sensitive_features=d.s_train)
    assert list(clf.classes_) == list(range(10)) and clf.sensitive_groups_ == [str(c) for c in range(10)]
    np.testing.assert_array_equal(clf.predict_proba(d.X_test[:200]), on_cli.predict_proba(d.X_test[:200]))
    with pytest.raises(ValueError, match="divide by 255"):
        few = slice(None, None, 80)  # the images are in class order
        FairRepresentationClassifier(epochs=1).fit(d.X_train[few] * 255, d.y_train[few], sensitive_features=d.s_train[few])


def test_weighted_certificate(small, tmp_path, cli):
    """``certificate(..., sample_weight=w)`` (docs/design.md, section 4e): equal weights give the unweighted
    certificate exactly; weights by cell (fairlearn's reweighting) a weighted plug-in and effective group
    sizes W^2 / sum w^2; the same numbers as ``certify --weights`` on the same rows; bad weights name the row;
    the pipeline form passes them on."""
    import subprocess

    X, y, Xt, yt = _framed(small)
    clf = FairRepresentationClassifier(sensitive_features="sex", **{**FAST, "gamma": 0.5}).fit(X, y)
    plain = clf.certificate(Xt, yt)
    ones = clf.certificate(Xt, yt, sample_weight=np.full(len(Xt), 2.0))
    assert ones.pop("effective_n_per_group") == [float(n) for n in plain["n_per_group"]]
    assert ones == plain
    # fairlearn's reweighting: w = P(s) P(y) / P(s, y), constant per cell (s, y).
    cells = pd.DataFrame({"s": Xt["sex"].to_numpy(), "y": np.asarray(yt)})
    p_s = cells["s"].map(cells["s"].value_counts(normalize=True))
    p_y = cells["y"].map(cells["y"].value_counts(normalize=True))
    p_sy = cells.groupby(["s", "y"])["y"].transform("size") / len(cells)
    w = (p_s * p_y / p_sy).to_numpy()
    weighted = clf.certificate(Xt, yt, sample_weight=w)
    for g, name in enumerate(sorted(cells["s"].unique())):
        wg = w[cells["s"].to_numpy() == name]
        assert weighted["effective_n_per_group"][g] == pytest.approx(wg.sum() ** 2 / (wg ** 2).sum(), rel=1e-6)
        assert weighted["effective_n_per_group"][g] < weighted["n_per_group"][g]
    assert weighted["tv_plugin"] != plain["tv_plugin"]
    assert weighted["tv_upper"] >= weighted["tv_plugin"]
    # Weights constant within each (s, y) cell: the equalised-odds strata are unweighted, so that bound stays.
    assert weighted["eo_gap_bound"] == plain["eo_gap_bound"]
    assert fairbits.certificate(clf, Xt, yt, sample_weight=w) == weighted
    # The command line on the same rows and weights (single precision on both sides) agrees.
    model = tmp_path / "model"
    clf.save(model)
    Xt.assign(income=np.asarray(yt), w=w.astype(np.float32)).to_csv(tmp_path / "audit.csv", index=False)
    r = subprocess.run(
        [cli, "certify", "--model", str(model), "--input", str(tmp_path / "audit.csv"), "--target", "income",
         "--sensitive", "sex", "--weights", "w", "--json"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    import json

    from_cli = json.loads(r.stdout)["population"]
    for key in ("tv_plugin", "tv_upper", "dp_gap_bound"):
        assert from_cli[key] == pytest.approx(weighted[key], abs=1e-9), key
    bad = np.ones(len(Xt))
    bad[4] = -2.0
    with pytest.raises(ValueError, match="row 5 holds -2"):
        clf.certificate(Xt, yt, sample_weight=bad)
    with pytest.raises(ValueError, match="every weight is 0"):
        clf.certificate(Xt, yt, sample_weight=np.zeros(len(Xt)))
    with pytest.raises(ValueError, match="row 1 holds NaN"):
        clf.certificate(Xt, yt, sample_weight=np.r_[np.nan, np.ones(len(Xt) - 1)])

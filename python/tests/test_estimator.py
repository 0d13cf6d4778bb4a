"""The estimator's behaviour, with its numbers checked against independent numpy computations."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from fairbits import FairRepresentationClassifier, NotFittedError


@pytest.fixture(scope="module")
def fitted(small):
    X, y, s, *_ = small
    return FairRepresentationClassifier(hidden=(16, 8), epochs=3, gamma=1.0).fit(X, y, sensitive_features=s)


def test_fit_sets_the_fitted_attributes(fitted, small):
    X = small[0]
    assert list(fitted.classes_) == ["<=50K", ">50K"]
    assert fitted.n_features_in_ == X.shape[1]
    assert list(fitted.feature_names_in_) == list(X.columns)
    assert fitted.sensitive_groups_ == ["Female", "Male"]
    assert fitted.code_width_ == 8
    assert len(fitted.history_) == 3 and all("loss" in h for h in fitted.history_)


def test_predictions_have_the_right_shapes_and_ranges(fitted, small):
    Xt = small[3]
    p = fitted.predict_proba(Xt)
    assert p.shape == (len(Xt), 2)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert set(np.unique(fitted.predict(Xt))) <= {"<=50K", ">50K"}
    d = fitted.decision_function(Xt)
    order = np.argsort(d)
    assert np.all(np.diff(p[order, 1]) >= -1e-6)
    assert 0.6 < fitted.score(Xt, small[4]) <= 1.0


def test_transform_modes(fitted, small):
    Xt = small[3]
    sample = fitted.transform(Xt, codes="sample")
    prob = fitted.transform(Xt, codes="prob")
    thr = fitted.transform(Xt, codes="threshold")
    assert sample.shape == prob.shape == thr.shape == (len(Xt), 8)
    assert set(np.unique(sample)) <= {0.0, 1.0}
    assert np.all((prob >= 0) & (prob <= 1))
    assert np.array_equal(thr, (prob >= 0.5).astype(np.float32))


def test_same_seed_same_model(small):
    X, y, s, Xt, *_ = small
    a = FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=3).fit(X, y, sensitive_features=s)
    b = FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=3).fit(X, y, sensitive_features=s)
    c = FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=4).fit(X, y, sensitive_features=s)
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    assert not np.array_equal(a.predict_proba(Xt), c.predict_proba(Xt))


def _mi_bits(joint):
    """I(A; B) in bits from a joint probability table."""
    pa = joint.sum(axis=1, keepdims=True)
    pb = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pa @ pb)[nz])).sum())


def test_mutual_information_equals_brute_force_enumeration(fitted, small):
    Xt, st = small[3], small[5]
    mi = fitted.mutual_information(Xt, st)
    p = fitted.transform(Xt, codes="prob").astype(np.float64)
    groups = sorted(set(st))
    g = np.array([groups.index(v) for v in st])
    prior = np.array([(g == k).mean() for k in range(len(groups))])
    per_neuron = 0.0
    for j in range(p.shape[1]):
        joint = np.array([[prior[k] * (1 - p[g == k, j].mean()), prior[k] * p[g == k, j].mean()] for k in range(2)])
        per_neuron += _mi_bits(joint)
    assert mi["mi_per_neuron_bits"] == pytest.approx(per_neuron, rel=1e-4, abs=1e-6)
    # The whole code: all 2^8 codes enumerated.
    codes = np.array(list(itertools.product([0, 1], repeat=8)))
    lik = np.exp(np.log(np.clip(p, 1e-12, 1)) @ codes.T + np.log(np.clip(1 - p, 1e-12, 1)) @ (1 - codes).T)
    joint = np.stack([prior[k] * lik[g == k].mean(axis=0) for k in range(2)])
    assert mi["mi_joint_method"] == "exact"
    assert mi["mi_joint_bits"] == pytest.approx(_mi_bits(joint), rel=1e-4, abs=1e-6)


def test_certificate_is_a_valid_bound_of_the_plug_in_gap(fitted, small):
    Xt, yt, st = small[3], small[4], small[5]
    c = fitted.certificate(Xt, yt, sensitive_features=st, confidence=0.9)
    assert c["confidence"] == 0.9
    assert 0 <= c["tv_plugin"] <= c["tv_upper"] <= 1
    assert c["dp_gap_bound"] == c["tv_upper"]
    assert c["eo_gap_bound"] is not None
    unlabelled = fitted.certificate(Xt, sensitive_features=st)
    assert unlabelled["eo_gap_bound"] is None
    # Any classifier of one sampled code has a gap at most the plug-in TV between the groups' codes.
    pred = fitted.predict(Xt) == ">50K"
    gap = abs(pred[st == "Male"].mean() - pred[st == "Female"].mean())
    assert gap <= c["dp_gap_bound"] + 1e-9


def test_sensitive_features_as_column_names_and_intersections(small):
    X, y, s, Xt, yt, st = small
    Xs = X.assign(sex=s)
    a = FairRepresentationClassifier(hidden=(8, 4), epochs=1).fit(Xs, y, sensitive_features="sex")
    b = FairRepresentationClassifier(hidden=(8, 4), epochs=1).fit(X, y, sensitive_features=s)
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    both = pd.DataFrame({"sex": s, "race": X["race"]})
    c = FairRepresentationClassifier(hidden=(8, 4), epochs=1).fit(X, y, sensitive_features=both)
    assert any(" & " in g for g in c.sensitive_groups_) and len(c.sensitive_groups_) > 2


def test_numpy_input_with_int_labels_keeps_the_label_type():
    from conftest import blobs

    x0, x1, _, y, s = blobs()
    X = np.column_stack([x0, x1])
    clf = FairRepresentationClassifier(hidden=(8, 4), epochs=30).fit(X, y, sensitive_features=s)
    assert clf.classes_.tolist() == [0, 1] and clf.predict(X).dtype.kind in "iu"
    assert not hasattr(clf, "feature_names_in_")
    assert clf.score(X, y) > 0.7


def test_evaluate_gives_the_command_line_metrics(fitted, small):
    Xt, yt, st = small[3], small[4], small[5]
    m = fitted.evaluate(Xt, yt, sensitive_features=st)
    for k in ("task", "fairness", "probes", "information", "certificate"):
        assert k in m
    assert m["sensitive"] == "sex" and m["groups"] == ["Female", "Male"]
    assert m["n_test"] == len(Xt)
    json.dumps(m)


def test_not_fitted(small):
    with pytest.raises(NotFittedError):
        FairRepresentationClassifier().predict(small[3])

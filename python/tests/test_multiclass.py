"""A target of three classes: fit, classes_, predict_proba, predict and score, against scikit-learn."""

import numpy as np
import pandas as pd
import pytest

from fairbits import FairRepresentationClassifier


def three_classes(n, seed):
    rng = np.random.default_rng(seed)
    s = rng.choice(["f", "m"], n)
    y = rng.choice(["cat", "dog", "emu"], n)
    a = np.select([y == "cat", y == "dog"], [0.0, 1.5], 3.0) + 0.5 * (s == "m") + rng.normal(0, 0.7, n)
    X = pd.DataFrame({"a": a, "b": rng.normal(0, 1, n) + (s == "m"), "colour": rng.choice(["red", "blue"], n)})
    return X, pd.Series(y, name="y"), s


@pytest.fixture(scope="module")
def fitted():
    X, y, s = three_classes(900, 0)
    clf = FairRepresentationClassifier(hidden=(16, 8), epochs=30, random_state=0)
    return clf.fit(X, y, sensitive_features=s)


def test_three_classes_predict_and_score_like_sklearn(fitted):
    from sklearn.metrics import accuracy_score

    X, y, s = three_classes(300, 1)
    assert list(fitted.classes_) == ["cat", "dog", "emu"]
    p = fitted.predict_proba(X)
    assert p.shape == (300, 3)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and (p >= 0).all()
    pred = fitted.predict(X)
    assert set(pred) <= {"cat", "dog", "emu"}
    # predict is the most probable class of predict_proba's columns, in the order of classes_.
    assert (pred == fitted.classes_[np.argmax(p, axis=1)]).all()
    acc = accuracy_score(y, pred)
    assert acc > 0.6  # the classes are separated by `a`; the largest class alone gets about 1/3
    assert fitted.score(X, y) == pytest.approx(acc)


def test_evaluate_reports_per_class_gaps(fitted):
    X, y, s = three_classes(300, 2)
    m = fitted.evaluate(X, y, sensitive_features=s)
    assert len(m["fairness"]["dp_gap_per_class"]) == 3
    assert m["fairness"]["dp_gap"] == pytest.approx(max(m["fairness"]["dp_gap_per_class"]), abs=0.05)
    assert 0.0 <= m["certificate"]["population"]["dp_gap_bound"] <= 1.0
    with pytest.raises(ValueError, match="not a class of the model"):
        fitted.evaluate(X, y.replace("emu", "yak"), sensitive_features=s)


def test_integer_classes_keep_their_order_and_save(tmp_path, fitted):
    X, y, s = three_classes(600, 3)
    codes = y.map({"cat": 10, "dog": 2, "emu": 7}).to_numpy()
    clf = FairRepresentationClassifier(hidden=(16, 8), epochs=20, random_state=0).fit(X, codes, sensitive_features=s)
    assert list(clf.classes_) == [2, 7, 10]
    again = FairRepresentationClassifier(hidden=(16, 8), epochs=20, random_state=0).fit(X, codes, sensitive_features=s)
    assert np.array_equal(clf.predict_proba(X), again.predict_proba(X))  # same seed, same result
    clf.save(tmp_path / "m")
    loaded = FairRepresentationClassifier.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(X), clf.predict(X))

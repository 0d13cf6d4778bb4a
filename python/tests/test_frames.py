"""Column names of data frames (pandas, polars, pyarrow) at fit and at predict time, by scikit-learn's rule:
a model fitted on named columns reads them by name (in any order), and refuses a frame whose columns are
missing or not seen at fit time instead of misaligning them silently."""

import numpy as np
import pandas as pd
import pytest

from fairbits import FairRepresentationClassifier


def _fit(X, y, s, **kw):
    return FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=1, **kw).fit(X, y, sensitive_features=s)


@pytest.fixture(scope="module")
def fitted(small):
    X, y, s, *_ = small
    return _fit(X, y, s)


def _codes(model, X):
    return model.transform(X, codes="prob")


def test_reordered_columns_are_matched_by_name(fitted, small):
    Xt = small[3]
    reordered = Xt[list(reversed(Xt.columns))]
    assert np.array_equal(_codes(fitted, reordered), _codes(fitted, Xt))
    assert np.array_equal(fitted.predict_proba(reordered), fitted.predict_proba(Xt))


def test_renamed_missing_or_extra_columns_are_refused_naming_them(fitted, small):
    Xt = small[3]
    first = Xt.columns[0]
    with pytest.raises(ValueError, match=f"column '{first}' not found; column 'renamed' not seen at fit time"):
        fitted.predict(Xt.rename(columns={first: "renamed"}))
    with pytest.raises(ValueError, match=f"column '{first}' not found"):
        fitted.predict_proba(Xt.drop(columns=[first]))
    with pytest.raises(ValueError, match="column 'extra' not seen at fit time"):
        fitted.transform(Xt.assign(extra=1.0))


def test_the_sensitive_column_left_in_x_is_ignored(small):
    X, y, s, Xt, _, st = small
    named = X.assign(group=s.to_numpy())
    model = _fit(named, y, "group")
    assert "group" not in list(model.feature_names_in_)
    with_group = Xt.assign(group=st.to_numpy())
    assert np.array_equal(_codes(model, with_group), _codes(model, Xt))


def test_a_frame_for_a_model_fitted_on_an_array_is_read_by_position_with_a_warning(small):
    X, y, s, Xt, *_ = small
    numeric = X.select_dtypes("number")
    model = _fit(numeric.to_numpy(), y, s)
    with pytest.warns(UserWarning, match="X has feature names, but FairRepresentationClassifier was fitted without"):
        got = _codes(model, numeric.iloc[:50].reset_index(drop=True))
    assert np.array_equal(got, _codes(model, numeric.iloc[:50].to_numpy()))


def _as(kind, X):
    if kind == "polars":
        pl = pytest.importorskip("polars")
        pytest.importorskip("pyarrow")  # polars' from_pandas reads through Arrow
        return pl.from_pandas(X)
    pa = pytest.importorskip("pyarrow")
    return pa.Table.from_pandas(X, preserve_index=False)


def _series(kind, s):
    if kind == "polars":
        pl = pytest.importorskip("polars")
        return pl.Series(s.name, s.astype(str).tolist())
    pa = pytest.importorskip("pyarrow")
    return pa.array(s.astype(str).tolist())


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_polars_and_arrow_frames_keep_their_names_and_fit_as_pandas(kind, fitted, small):
    X, y, s, Xt, yt, st = small
    frame, test = _as(kind, X), _as(kind, Xt)
    model = _fit(frame, y, _series(kind, s))
    assert list(model.feature_names_in_) == list(X.columns)
    # The same cells as the pandas frame: the same model, the same codes.
    assert np.array_equal(_codes(model, test), _codes(fitted, Xt))
    reordered = test.select(list(reversed(Xt.columns)))  # polars and pyarrow alike
    assert np.array_equal(_codes(model, reordered), _codes(model, test))
    first = Xt.columns[0]
    dropped = test.drop(first) if kind == "polars" else test.drop_columns([first])
    with pytest.raises(ValueError, match=f"column '{first}' not found"):
        model.predict(dropped)
    report = model.evaluate(test, yt, sensitive_features=_series(kind, st))
    assert 0.0 <= report["task"]["auc"] <= 1.0


def test_a_polars_series_as_sensitive_features(small):
    pl = pytest.importorskip("polars")
    X, y, s, Xt, yt, st = small
    model = _fit(X, y, pl.Series("sex", s.astype(str).tolist()))
    assert model.sensitive_groups_ == sorted(set(s.astype(str)))
    mi = model.mutual_information(Xt, pl.Series("sex", st.astype(str).tolist()))
    assert mi["code_width"] == 4


def test_an_identifier_column_is_refused_naming_it_before_it_is_encoded():
    n = 10_050
    X = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "a": np.arange(n) % 7 + 0.5})
    y = (np.arange(n) // 3) % 2
    s = np.arange(n) % 2
    with pytest.raises(ValueError, match="column 'id' has at least 10050 distinct text values in the training rows"):
        FairRepresentationClassifier(hidden=(4, 2), epochs=1).fit(X, y, sensitive_features=s)

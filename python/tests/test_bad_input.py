"""Bad input raises a Python exception naming the column, row or parameter; nothing crashes Python."""

import os
import signal
import threading

import numpy as np
import pandas as pd
import pytest

from conftest import small_frame
from fairbits import FairRepresentationClassifier, UnseenCategoryWarning


def clf(**kw):
    return FairRepresentationClassifier(hidden=(4, 2), epochs=1, **kw)


def test_nan_in_x_names_the_column_and_row():
    X, y, s = small_frame()
    X.loc[7, "age"] = np.nan
    with pytest.raises(ValueError, match=r"row 7.*'age'|'age'.*row 7"):
        clf().fit(X, y, sensitive_features=s)


def test_missing_text_names_the_column_and_row():
    X, y, s = small_frame()
    X.loc[3, "job"] = None
    with pytest.raises(ValueError, match=r"row 3.*'job'"):
        clf().fit(X, y, sensitive_features=s)


def test_infinity_is_refused():
    X, y, s = small_frame()
    X.loc[5, "age"] = np.inf
    with pytest.raises(ValueError, match=r"age"):
        clf().fit(X, y, sensitive_features=s)


def test_wrong_lengths():
    X, y, s = small_frame()
    with pytest.raises(ValueError, match="y has 59 rows but X has 60"):
        clf().fit(X, y[:-1], sensitive_features=s)
    with pytest.raises(ValueError, match="sensitive_features has 59 rows but X has 60"):
        clf().fit(X, y, sensitive_features=s[:-1])


def test_one_group_is_refused():
    X, y, _ = small_frame()
    with pytest.raises(ValueError, match="single group"):
        clf().fit(X, y, sensitive_features=np.full(len(y), "f"))


def test_continuous_or_single_class_y_and_a_multiclass_pos_label_are_refused():
    X, _, s = small_frame()
    with pytest.raises(ValueError, match="continuous"):
        clf().fit(X, np.arange(len(X)) / 7.0, sensitive_features=s)
    with pytest.raises(ValueError, match="1 class"):
        clf().fit(X, np.zeros(len(X)), sensitive_features=s)
    with pytest.raises(ValueError, match="binary y only"):
        clf(pos_label=2).fit(X, np.arange(len(X)) % 3, sensitive_features=s)


def test_missing_sensitive_features_is_refused():
    X, y, _ = small_frame()
    with pytest.raises(ValueError, match="sensitive_features is required"):
        clf().fit(X, y)


def test_bad_parameters_name_the_parameter():
    X, y, s = small_frame()
    for kw, name in [({"gamma": -1.0}, "gamma"), ({"activation": "sigmoidish"}, "activation"),
                     ({"penalty": "joint:oods"}, "penalty"), ({"hidden": (0,)}, "hidden"), ({"epochs": -2}, "epochs"),
                     ({"preset": "fast"}, "preset"), ({"learning_rate": "x"}, "learning_rate")]:
        with pytest.raises(ValueError, match=name):
            FairRepresentationClassifier(**kw).fit(X, y, sensitive_features=s)


def test_unseen_category_at_predict_time_warns_with_the_column():
    X, y, s = small_frame()
    model = clf().fit(X, y, sensitive_features=s)
    Xt = X.copy()
    Xt.loc[2, "job"] = "zebra"
    with pytest.warns(UnseenCategoryWarning, match=r"column 'job'.*'zebra' on row 2"):
        model.predict(Xt)


def test_missing_feature_column_at_predict_time():
    X, y, s = small_frame()
    model = clf().fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="column 'job' not found"):
        model.predict(X.drop(columns=["job"]))


def test_ctrl_c_interrupts_fit_between_batches():
    rng = np.random.default_rng(0)
    n = 20000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y, s = rng.integers(0, 2, n), rng.integers(0, 2, n)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            FairRepresentationClassifier(preset="none", hidden=(64, 16), epochs=100000, batch_size=8).fit(
                X, y, sensitive_features=s
            )
    finally:
        timer.cancel()


def test_text_holding_the_unit_separator_crosses_as_a_list_and_encodes_the_same():
    # Text columns cross to Rust joined by U+001F unless a cell holds it; both forms must encode alike.
    X, y, s = small_frame()
    with_sep, plain = X.copy(), X.copy()
    with_sep["job"] = with_sep["job"].replace({"a": "a\x1fz"})
    plain["job"] = plain["job"].replace({"a": "a~z"})  # sorts where "a\x1fz" does among "b" and "c"
    p1 = clf(random_state=3).fit(with_sep, y, sensitive_features=s).predict_proba(with_sep)
    p2 = clf(random_state=3).fit(plain, y, sensitive_features=s).predict_proba(plain)
    np.testing.assert_array_equal(p1, p2)

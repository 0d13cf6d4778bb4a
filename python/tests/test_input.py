"""How data reaches the core from Python: numeric columns cross as float64 arrays and are read as numbers
(never written as text and parsed back), with the model a file of their texts gives; scipy sparse matrices
are read as numeric columns x0, x1, ... with the predictions of the same dense array."""

import warnings

import numpy as np
import pandas as pd
import pytest

from fairbits import FairRepresentationClassifier, _columns, _native

sp = pytest.importorskip("scipy.sparse")


def _frame(n=400, seed=3):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tiny": rng.normal(size=n) * 1e-6,  # exponent form as text: 1e-7 and the like
            "huge": rng.normal(size=n) * 1e17,
            "int": rng.integers(-5, 5, size=n),
            "zero": np.where(rng.random(n) < 0.2, -0.0, rng.random(n)),  # -0 is its own text
            "f32": rng.integers(0, 3, size=n).astype(np.float32),
        }
    )
    s = rng.integers(0, 2, size=n)
    y = ((X["int"] > 0) ^ (rng.random(n) < 0.2)).astype(int)
    return X, y, s


@pytest.mark.parametrize("categorical", [[], ["int"]])
def test_numbers_give_the_model_their_texts_give(categorical):
    # The same values once as float64 arrays (read as numbers) and once as the texts a CSV would hold
    # (parsed by the core): the same encoders, so the same model, bit for bit.
    X, y, s = _frame()
    est = FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=0)
    params = est._model_params(0)
    labels = [("y", "\x1f".join(map(str, y))), ("s", "\x1f".join(map(str, s)))]
    numbers = [(c, np.ascontiguousarray(X[c].to_numpy(dtype=np.float64))) for c in X.columns]
    # The texts a CSV holding them has (whole numbers without ".0", so a category reads the same).
    write = lambda v: str(int(v)) if v == int(v) and str(v) != "-0.0" else repr(v)  # noqa: E731
    texts = [(c, [write(float(v)) for v in X[c].to_numpy(dtype=np.float64)]) for c in X.columns]
    assert any("e-" in t for t in texts[0][1]) and "-0.0" in texts[3][1] and "3" in texts[2][1]
    fit = lambda cols: _native.fit(params, cols + labels, "y", "1", "s", categorical, 0.0, "data", False)  # noqa: E731
    a, b = fit(numbers), fit(texts)
    assert a.config_json() == b.config_json()  # the encoders (means, stds, categories) and the network
    pa, _ = a.predict_proba(numbers, "prob", 1)
    pb, _ = b.predict_proba(texts, "prob", 1)
    assert np.array_equal(pa, pb)
    assert np.array_equal(a.predict_proba(texts, "prob", 1)[0], pa)  # a model reads either form alike


def test_an_infinity_or_a_missing_number_is_the_error_its_text_gives():
    X, y, s = _frame()
    est = FairRepresentationClassifier(hidden=(8, 4), epochs=1, random_state=0).fit(X, y, sensitive_features=s)
    bad = X.copy()
    bad.loc[7, "huge"] = np.inf
    with pytest.raises(ValueError, match=r"row 7, column 'huge'.*inf"):
        est.predict_proba(bad)
    bad.loc[7, "huge"] = np.nan
    with pytest.raises(ValueError, match=r"row 7.*column 'huge' has a missing value"):
        est.predict_proba(bad)


def _sparse_data(n=300, d=12, seed=5):
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n, d)) < 0.7, 0.0, rng.normal(size=(n, d)))
    s = rng.integers(0, 2, size=n)
    y = ((dense[:, 0] + dense[:, 1] > 0) ^ (rng.random(n) < 0.1)).astype(int)
    return dense, y, s


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_a_sparse_matrix_predicts_as_its_dense_array(fmt, monkeypatch):
    dense, y, s = _sparse_data()
    M = sp.csr_matrix(dense).asformat(fmt)
    # Blocks of 5 columns (not all at once): the block boundaries must not move a cell.
    monkeypatch.setattr(_columns, "_SPARSE_BLOCK_BYTES", 8 * dense.shape[0] * 5)
    kw = dict(hidden=(8, 4), epochs=2, random_state=0, inference="prob")
    on_sparse = FairRepresentationClassifier(**kw).fit(M, y, sensitive_features=s)
    on_dense = FairRepresentationClassifier(**kw).fit(dense, y, sensitive_features=s)
    assert on_sparse.n_features_in_ == dense.shape[1] and not hasattr(on_sparse, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = on_dense.predict_proba(dense)
        assert np.array_equal(on_sparse.predict_proba(M), p)
        assert np.array_equal(on_sparse.predict_proba(dense), p)
        assert np.array_equal(on_dense.predict_proba(sp.csr_array(dense)), p)
        assert np.array_equal(on_sparse.transform(M), on_dense.transform(dense))


def test_sparse_duplicates_and_integers_are_read_as_scipy_reads_them():
    # COO with a repeated coordinate sums it (toarray's rule); integer and boolean values become floats.
    coo = sp.coo_matrix((np.array([1, 2, 3]), (np.array([0, 0, 2]), np.array([1, 1, 0]))), shape=(3, 2))
    assert np.array_equal(_columns.from_sparse(coo), [[0.0, 3.0], [0.0, 0.0], [3.0, 0.0]])
    assert _columns.from_sparse(sp.csr_matrix(np.eye(2, dtype=bool))).dtype == np.float64


def test_a_sparse_matrix_too_large_for_memory_is_refused_naming_x():
    M = sp.csr_matrix((100_000, 50_000))
    with pytest.raises(MemoryError, match=r"X: a sparse matrix of 100000 x 50000 becomes 37.25 GiB"):
        _columns.from_sparse(M, available=2.0**30)
    with pytest.raises(ValueError, match="Complex data not supported"):
        _columns.from_sparse(sp.csr_matrix(np.ones((2, 2), dtype=complex)))


def test_one_hot_encoder_output_fits_in_a_pipeline():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = rng.choice(["a", "b", "c", "d"], size=(200, 3))
    s = rng.integers(0, 2, size=200)
    y = ((X[:, 0] == "a") | (rng.random(200) < 0.3)).astype(int)
    assert sp.issparse(OneHotEncoder().fit_transform(X))  # the encoder's default output is CSR
    pipe = make_pipeline(OneHotEncoder(), FairRepresentationClassifier(hidden=(8, 4), epochs=2, random_state=0))
    pipe.fit(X, y, fairrepresentationclassifier__sensitive_features=s)
    assert pipe.predict(X).shape == (200,)


class _Stream:
    """A table known only by the Arrow PyCapsule stream it exports (as duckdb's or nanoarrow's are)."""

    def __init__(self, table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


def test_an_arrow_stream_is_read_as_the_frame_it_holds():
    pa = pytest.importorskip("pyarrow")
    X, y, s = _frame()
    X = X.assign(city=np.where(X["int"] > 0, "north", "south"))
    stream = _Stream(pa.Table.from_pandas(X, preserve_index=False))
    kw = dict(hidden=(8, 4), epochs=2, random_state=0, inference="prob")
    on_stream = FairRepresentationClassifier(**kw).fit(stream, y, sensitive_features=s)
    on_pandas = FairRepresentationClassifier(**kw).fit(X, y, sensitive_features=s)
    assert list(on_stream.feature_names_in_) == list(X.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = on_pandas.predict_proba(X)
        assert np.array_equal(on_stream.predict_proba(stream), p)
        assert np.array_equal(on_stream.predict_proba(X[list(reversed(X.columns))]), p)  # matched by name

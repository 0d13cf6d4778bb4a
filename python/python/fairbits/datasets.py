"""The shipped datasets, split as the command line splits them (same rows, same order, same seed), so a
model fitted in Python on ``X_train`` is the model ``fairbits train --dataset NAME`` trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from . import _native

__all__ = ["ImageSplit", "Split", "load", "load_adult", "load_biased_mnist", "load_compas", "load_german", "read_table"]


@dataclass
class Split:
    """A dataset's training and test rows.

    ``X_*`` are data frames when pandas is installed (numeric columns as floats, the others as text),
    else object arrays with ``feature_names``; ``y_*`` the labels as text; ``s_*`` the sensitive
    attribute's groups; ``pos_label`` the positive class.
    """

    X_train: Any
    X_test: Any
    y_train: np.ndarray
    y_test: np.ndarray
    s_train: Any
    s_test: Any
    feature_names: List[str]
    categorical_features: List[str]
    target: str
    sensitive: str
    pos_label: Optional[str]


# The cells the command line reads as missing (data::MISSING_TOKENS); a numeric column's become NaN.
_MISSING = frozenset(["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL"])


def _frame(header: List[str], columns: List[List[str]], rows: List[int], numeric: List[bool]) -> Any:
    data = {}
    for name, col, num in zip(header, columns, numeric):
        vals = [col[i] for i in rows]
        if num:
            data[name] = np.asarray([np.nan if v in _MISSING else float(v) for v in vals], dtype=np.float64)
        else:
            data[name] = np.asarray(vals, dtype=object)
    try:
        import pandas as pd
    except ImportError:
        return np.column_stack([data[h] for h in header]).astype(object) if header else np.empty((len(rows), 0))
    return pd.DataFrame(data, columns=header)


def load(
    name: str, *, sensitive: Optional[str] = None, seed: int = 0, test_size: float = 0.3, missing: str = "drop"
) -> Split:
    """A shipped dataset (``adult``, ``compas``, ``german``) split by ``seed`` as the command line does.

    Rows with a missing value are dropped first, as in training (``missing="drop"``); with
    ``missing="impute"`` they are kept, as ``train --missing impute`` keeps them, their missing cells as the
    file has them (NaN in a numeric column); derived columns are included.
    """
    header, columns, roles_json, train, test = _native.builtin_rows(
        name, sensitive, int(seed), float(test_size), str(missing)
    )
    import json

    roles = json.loads(roles_json)
    col = dict(zip(header, columns))
    features = roles["features"]

    def is_num(c: str) -> bool:
        if c in roles["categorical"]:
            return False
        present = [v for v in col[c] if v not in _MISSING]
        try:
            [float(v) for v in present]
            return bool(present)
        except ValueError:
            return False

    numeric = [is_num(c) for c in features]
    fcols = [col[c] for c in features]

    def series(c: str, rows: List[int]) -> Any:
        vals = np.asarray([col[c][i] for i in rows], dtype=object)
        try:
            import pandas as pd

            return pd.Series(vals, name=c)
        except ImportError:
            return vals

    return Split(
        X_train=_frame(features, fcols, train, numeric),
        X_test=_frame(features, fcols, test, numeric),
        y_train=np.asarray([col[roles["target"]][i] for i in train], dtype=object),
        y_test=np.asarray([col[roles["target"]][i] for i in test], dtype=object),
        s_train=series(roles["sensitive"], train),
        s_test=series(roles["sensitive"], test),
        feature_names=features,
        categorical_features=[c for c, n in zip(features, numeric) if not n],
        target=roles["target"],
        sensitive=roles["sensitive"],
        pos_label=roles["positive"],
    )


def read_table(path: str, *, delimiter: Optional[str] = None) -> Any:
    """A table file as the command line reads it: CSV (``.csv``, ``.csv.gz``, any ``delimiter``), Parquet
    (``.parquet``) or Arrow IPC (``.arrow``, ``.feather``), by extension.

    Returns a data frame when pandas is installed (a column whose every non-missing cell is a number is
    float64, missing cells NaN; the others text, missing cells None), else a dict of numpy arrays.
    Errors name the file, the line (for columnar files, the row) and the column, as on the command line.
    """
    import os

    header, columns = _native.read_table(os.fspath(path), delimiter)
    missing = {"", "?", "NA", "N/A", "NaN", "nan", "null", "NULL"}
    data = {}
    for name, cells in zip(header, columns):
        present = [c for c in cells if c not in missing]
        try:
            [float(c) for c in present]
            data[name] = np.asarray([np.nan if c in missing else float(c) for c in cells], dtype=np.float64)
        except ValueError:
            data[name] = np.asarray([None if c in missing else c for c in cells], dtype=object)
    try:
        import pandas as pd
    except ImportError:
        return data
    return pd.DataFrame(data, columns=header)


@dataclass
class ImageSplit:
    """Images ``N x 3 x 28 x 28`` in [0, 1] with their classes ``y_*`` and background colours ``s_*`` (the
    sensitive attribute): the training images coloured with bias ``rho``, the test images uniformly."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    s_train: np.ndarray
    s_test: np.ndarray


def load_biased_mnist(*, rho: float = 0.99, seed: int = 0) -> ImageSplit:
    """The shipped 5,000 digits coloured as ``fairbits train --dataset biased-mnist --rho RHO --seed SEED``
    colours them (4,000 training, 1,000 test images, the same images in the same order)."""
    xtr, ytr, s_tr, xte, yte, s_te = _native.builtin_images("biased-mnist", float(rho), int(seed))
    labels = lambda v: np.frombuffer(bytes(v), dtype=np.uint8).astype(np.int64)  # noqa: E731 (u8 crosses as bytes)
    return ImageSplit(xtr, xte, labels(ytr), labels(yte), np.asarray(s_tr), np.asarray(s_te))


def load_adult(**kw: Any) -> Split:
    """UCI Adult (income above 50K; sensitive: ``sex``, or ``race``), 30% test."""
    return load("adult", **kw)


def load_compas(**kw: Any) -> Split:
    """ProPublica COMPAS (two-year recidivism; sensitive: ``race``)."""
    return load("compas", **kw)


def load_german(**kw: Any) -> Split:
    """Statlog German credit (good credit; sensitive: ``sex``)."""
    return load("german", **kw)

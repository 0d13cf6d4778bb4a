"""Data frames and arrays as the named columns the Rust core reads.

A numeric column crosses as a float64 array (NaN = missing), anything else as a list of strings ("" =
missing), so the command line's encoders see the same cells a CSV would give them: a text, boolean or
categorical column is one-hot encoded, a numeric one standardised.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

Column = Tuple[str, Any]


def _is_frame(x: Any) -> bool:
    return hasattr(x, "columns") and hasattr(x, "dtypes") and hasattr(x, "iloc")


def _is_series(x: Any) -> bool:
    return hasattr(x, "dtype") and hasattr(x, "name") and hasattr(x, "to_numpy") and not _is_frame(x)


def _all_str(values: np.ndarray) -> bool:
    """True when every cell of an object array is a ``str``: pandas' C type inference when pandas is already
    loaded (a data frame came in), else a Python loop."""
    pd = sys.modules.get("pandas")
    if pd is not None and values.ndim == 1 and len(values):
        return pd.api.types.infer_dtype(values, skipna=False) == "string"
    return all(isinstance(v, str) for v in values.tolist())


def _text(values: Any) -> List[str]:
    if isinstance(values, np.ndarray) and values.dtype == object and _all_str(values):
        return values.tolist()  # the common case: no cell to convert
    cells = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if all(type(v) is str for v in cells):
        return cells
    out = []
    for v in cells:
        if v is None or (isinstance(v, float) and v != v):
            out.append("")
        else:
            s = str(v)
            out.append("" if s in ("nan", "NaN", "<NA>", "NaT", "None") and not isinstance(v, str) else s)
    return out


_SEP = "\x1f"  # the unit separator, which text cells practically never hold


def wire(cells: List[str]) -> Any:
    """Text cells as they cross to the core: joined into one ``str`` by the unit separator (one crossing,
    not one per cell), or the list itself when a cell holds the separator or there are no cells."""
    if not cells:
        return cells
    joined = _SEP.join(cells)
    return joined if joined.count(_SEP) == len(cells) - 1 else cells


def _numeric_kind(dtype: Any) -> bool:
    kind = getattr(dtype, "kind", None)
    return kind in ("i", "u", "f")


def column_values(name: str, values: Any) -> Tuple[Any, bool]:
    """One column as (float64 array | text cells in their `wire` form, is_text)."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and _numeric_kind(dtype):
        arr = np.asarray(values, dtype=np.float64)
        return np.ascontiguousarray(arr), False
    if dtype is not None and hasattr(values, "to_numpy"):
        # pandas nullable numbers (Int64, Float64): numbers with <NA> as NaN.
        try:
            import pandas as pd  # noqa: F401

            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                return np.ascontiguousarray(values.to_numpy(dtype=np.float64, na_value=np.nan)), False
        except ImportError:  # pragma: no cover - a frame without pandas cannot happen
            pass
    obj = values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else np.asarray(values, dtype=object)
    if obj.ndim == 1 and len(obj) and _all_str(obj):
        return wire(obj.tolist()), True
    seq = list(obj)
    if seq and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in seq if v is not None
    ) and any(v is not None for v in seq):
        return np.asarray([np.nan if v is None else float(v) for v in seq], dtype=np.float64), False
    return wire(_text(seq)), True


def to_columns(X: Any, names: Optional[Sequence[str]] = None) -> Tuple[List[Column], List[str], List[str], bool]:
    """`X` (a data frame or a 2-D array-like) as named columns.

    Returns the columns, their names, the names of the text columns (one-hot encoded), and whether the
    names came from the data (a frame) rather than positions (``x0``, ``x1``, ...).
    """
    if _is_frame(X):
        cols = [str(c) for c in X.columns]
        if len(set(cols)) != len(cols):
            raise ValueError(f"X has duplicate column names: {cols}")
        out, text = [], []
        for i, name in enumerate(cols):
            values, is_text = column_values(name, X.iloc[:, i])
            out.append((name, values))
            if is_text:
                text.append(name)
        return out, cols, text, True
    arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if arr.ndim == 1:
        raise ValueError(
            "Expected 2D array, got 1D array instead. Reshape your data either using array.reshape(-1, 1) if "
            "your data has a single feature or array.reshape(1, -1) if it contains a single sample."
        )
    if arr.ndim != 2:
        raise ValueError(f"Expected a 2D array (rows x features), got an array of shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    cols = list(names) if names is not None else [f"x{i}" for i in range(arr.shape[1])]
    out, text = [], []
    for i, name in enumerate(cols):
        values, is_text = column_values(name, arr[:, i])
        out.append((name, values))
        if is_text:
            text.append(name)
    return out, cols, text, False


def as_data(X: Any) -> Any:
    """A data frame as it is, anything else as a numpy array (sparse matrices are refused before)."""
    return X if _is_frame(X) else np.asarray(X)


def n_rows(X: Any) -> int:
    if _is_frame(X):
        return len(X)
    shape = np.asarray(X).shape
    if len(shape) == 0:
        raise ValueError(f"Expected a 2D array, got a scalar ({X!r})")
    return int(shape[0])


def one_column(name: str, values: Any) -> Column:
    """A target or sensitive column: text always (their values are labels, not magnitudes)."""
    v = values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else np.asarray(values, dtype=object)
    if v.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {v.shape}")
    return name, wire(_text(v))

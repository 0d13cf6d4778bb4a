"""Data frames and arrays as the named columns the Rust core reads.

A numeric column crosses as a float64 array (NaN = missing), anything else as a list of strings ("" =
missing), so the command line's encoders see the same cells a CSV would give them: a text, boolean or
categorical column is one-hot encoded, a numeric one standardised.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

Column = Tuple[str, Any]


def _module(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _polars_values(s: Any) -> np.ndarray:
    """A polars Series as numpy: numbers as float64 (null = NaN), anything else as Python objects (null =
    None), the cells a pandas column of the same data would give."""
    if s.dtype.is_numeric():
        return np.asarray(s.cast(sys.modules["polars"].Float64).to_numpy(), dtype=np.float64)
    return _objects(s.to_list())


def _arrow_values(a: Any) -> np.ndarray:
    """A pyarrow Array or ChunkedArray as numpy, by the rule of `_polars_values`."""
    pa = sys.modules["pyarrow"]
    t = a.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        f = a.cast(pa.float64())
        arr = f.to_numpy() if isinstance(f, pa.ChunkedArray) else f.to_numpy(zero_copy_only=False)
        return np.asarray(arr, dtype=np.float64)
    return _objects(a.to_pylist())


def _objects(values: List[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values  # element by element: a cell holding a list stays one cell
    return out


class _Series:
    """One column of a polars or pyarrow frame (or a polars Series, a pyarrow array) as numpy, with the
    members of a pandas Series the estimator reads."""

    def __init__(self, name: Optional[str], values: np.ndarray) -> None:
        self.name = name
        self._values = values
        self.dtype = values.dtype

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        return self._values if dtype is None else self._values.astype(dtype)

    def __len__(self) -> int:
        return len(self._values)


class _Frame:
    """A polars DataFrame or a pyarrow Table / RecordBatch as named numpy columns, with the members of a
    pandas DataFrame the estimator reads (``columns``, ``dtypes``, ``iloc[:, i]``, ``frame[names]``,
    ``drop(columns=...)``, ``to_numpy``), so that their column names reach the core as a pandas frame's do
    (without them a frame would cross as a bare array and be matched by position)."""

    def __init__(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
        self.columns = [str(c) for c in names]
        self._arrays = list(arrays)
        self.dtypes = [a.dtype for a in self._arrays]
        self.iloc = self

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):  # iloc[:, i]
            rows, i = key
            return self._arrays[i][rows]
        if isinstance(key, str):
            return _Series(key, self._arrays[self.columns.index(key)])
        return _Frame(list(key), [self._arrays[self.columns.index(k)] for k in key])

    def __contains__(self, name: Any) -> bool:
        return name in self.columns

    def drop(self, columns: Sequence[str]) -> "_Frame":
        keep = [c for c in self.columns if c not in set(columns)]
        return self[keep]

    def __len__(self) -> int:
        return len(self._arrays[0]) if self._arrays else 0

    @property
    def shape(self) -> Tuple[int, int]:
        return (len(self), len(self.columns))

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=object if dtype is None else dtype)
        for i, a in enumerate(self._arrays):
            out[:, i] = a
        return out


def is_sparse(x: Any) -> bool:
    """A scipy sparse matrix or array (CSR, CSC, COO, ...: scikit-learn's OneHotEncoder gives CSR)."""
    return _module(x) == "scipy" and hasattr(x, "tocsc") and hasattr(x, "nnz") and hasattr(x, "shape")


def _available_memory() -> Optional[float]:
    """Bytes this machine can still give (``MemAvailable``), when known (Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# Dense bytes of one block of columns while a sparse matrix is written out (the temporary beside the result).
_SPARSE_BLOCK_BYTES = 64 << 20


def from_sparse(x: Any, available: Optional[float] = None) -> np.ndarray:
    """A scipy sparse matrix as the float64 columns the core reads (numeric features ``x0, x1, ...``, as a
    dense array's): written into one column-major array, a block of columns at a time, so that each column
    crosses without another copy and no second dense copy of the whole matrix is ever held. The core reads
    every cell of every column, so the dense columns are needed; when they would not fit in the memory
    available, a ``MemoryError`` naming X says so before anything is allocated."""
    n, d = (int(v) for v in x.shape)
    kind = np.dtype(x.dtype).kind
    if kind == "c":
        raise ValueError("Complex data not supported")
    if kind not in "biuf":
        raise ValueError(f"X: a sparse matrix of {x.dtype} values; numbers are needed")
    needed = 8.0 * n * d
    available = _available_memory() if available is None else available
    if available is not None and needed > available:
        raise MemoryError(
            f"X: a sparse matrix of {n} x {d} becomes {needed / 2**30:.2f} GiB of dense float64 columns (the "
            f"model reads every cell), but {available / 2**30:.2f} GiB of memory are available: select fewer "
            "columns or rows"
        )
    out = np.zeros((n, d), dtype=np.float64, order="F")
    csc = x.tocsc()  # column slices of CSC are cheap; duplicates are summed by toarray, as scipy does
    step = max(1, _SPARSE_BLOCK_BYTES // max(1, 8 * n))
    for j in range(0, d, step):
        out[:, j : j + step] = csc[:, j : j + step].toarray()
    return out


def adapt(x: Any) -> Any:
    """A polars or pyarrow frame as a `_Frame`, a polars Series or a pyarrow array as a `_Series`, a scipy
    sparse matrix as a dense column-major array (`from_sparse`); anything else as it is."""
    if is_sparse(x):
        return from_sparse(x)
    mod = _module(x)
    if mod == "polars":
        if hasattr(x, "get_column") and hasattr(x, "columns"):
            return _Frame(x.columns, [_polars_values(x.get_column(c)) for c in x.columns])
        if hasattr(x, "dtype") and hasattr(x, "to_list"):
            return _Series(x.name or None, _polars_values(x))
    if mod == "pyarrow":
        if hasattr(x, "column_names") and hasattr(x, "column"):
            return _Frame(x.column_names, [_arrow_values(x.column(i)) for i in range(x.num_columns)])
        if hasattr(x, "type") and hasattr(x, "to_pylist"):
            return _Series(None, _arrow_values(x))
    if hasattr(x, "__arrow_c_stream__") and mod not in ("pandas", "numpy"):
        # Any other table that exports the Arrow PyCapsule stream (duckdb, nanoarrow, ...): read by pyarrow
        # without copying its buffers, then by the pyarrow rule (numbers as float64). pandas keeps its own
        # path (its frames export the stream too). A stream that is not a table is left as it is.
        pa = _optional("pyarrow")
        if pa is not None:
            try:
                table = pa.table(x)
            except (TypeError, ValueError, pa.ArrowException):
                return x
            return _Frame(table.column_names, [_arrow_values(table.column(i)) for i in range(table.num_columns)])
    return x


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def match_names(
    cols: List[Column],
    framed: bool,
    fitted: Sequence[str],
    fitted_framed: bool,
    ignored: Sequence[str],
    estimator: str,
) -> List[Column]:
    """The columns of X at predict time in the order of fit, by scikit-learn's rule: a frame fitted with
    names is matched by name (any order; the target and sensitive columns are ignored), and a column missing
    or not seen at fit time is an error naming it, never a silent misalignment. A frame given to a model
    fitted on an array is read by position, with scikit-learn's warning."""
    if not framed:
        return cols
    got = [c for c, _ in cols]
    if not fitted_framed:
        warnings.warn(f"X has feature names, but {estimator} was fitted without feature names", UserWarning, stacklevel=4)
        if len(got) != len(fitted):
            raise ValueError(f"X has {len(got)} features, but {estimator} is expecting {len(fitted)} features as input")
        return [(name, v) for name, (_, v) in zip(fitted, cols)]
    missing = [c for c in fitted if c not in got]
    unexpected = [c for c in got if c not in fitted and c not in ignored]
    if missing or unexpected:
        def listed(names: List[str], what: str) -> str:
            return ("column " if len(names) == 1 else "columns ") + ", ".join(f"'{c}'" for c in names) + what

        parts = ([listed(missing, " not found")] if missing else []) + (
            [listed(unexpected, " not seen at fit time")] if unexpected else []
        )
        raise ValueError(
            f"X: {'; '.join(parts)}: the feature names should match those that were passed during fit "
            f"({', '.join(fitted)}; matched by name, in any order)"
        )
    by_name = dict(cols)
    return [(c, by_name[c]) for c in fitted]


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
    """A data frame as it is (polars and pyarrow ones as a `_Frame`), anything else as a numpy array (a scipy
    sparse matrix as its dense columns, `from_sparse`)."""
    X = adapt(X)
    return X if _is_frame(X) else np.asarray(X)


def n_rows(X: Any) -> int:
    if is_sparse(X):
        return int(X.shape[0])  # without writing it out
    X = adapt(X)
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

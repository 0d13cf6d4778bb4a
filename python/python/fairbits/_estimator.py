"""`FairRepresentationClassifier`: the scikit-learn face of a fairbits model."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from . import _schema
from ._columns import _is_frame, _is_series, adapt, as_data, is_sparse, match_names, n_rows, one_column, to_columns

try:  # scikit-learn is an optional extra: without it the estimator keeps the same conventions.
    from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
    from sklearn.exceptions import NotFittedError
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    from ._base import BaseEstimator, ClassifierMixin, NotFittedError, TransformerMixin  # type: ignore[assignment]

__all__ = ["FairRepresentationClassifier", "UnseenCategoryWarning", "UncertifiedOutputWarning", "NotFittedError"]

_PYTHON_META = "python.json"


class UnseenCategoryWarning(UserWarning):
    """A categorical feature holds a value not seen in training; it is encoded as all zeros."""


class UncertifiedOutputWarning(UserWarning):
    """An output that the population certificate does not cover (``p`` itself, with ``inference="prob"``)."""


_WARNED_UNCERTIFIED: set = set()


def _warn_uncertified(what: str) -> None:
    """Warns once per kind of output that it is not covered by the certificate."""
    if what not in _WARNED_UNCERTIFIED:
        _WARNED_UNCERTIFIED.add(what)
        warnings.warn(
            f"{what}, which the population certificate does not cover: p is a deterministic function of the row "
            "and can carry the sensitive attribute (the certificate covers one sampled code per row, "
            "inference='sample', or thresholded codes, inference='threshold')",
            UncertifiedOutputWarning,
            stacklevel=3,
        )


def _warn(messages: Sequence[str]) -> None:
    for m in messages:
        warnings.warn(m, UnseenCategoryWarning, stacklevel=3)


def _refuse_sparse(X: Any) -> None:
    if is_sparse(X):  # scipy's: read as numeric columns x0, x1, ... (_columns.from_sparse)
        return
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required. Use '.toarray()' to convert to a dense "
            "numpy array."
        )


def _refuse_datetimes(X: Any) -> None:
    """A date or time column would become one category per distinct instant: refused, with what to do."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return
    for name, dtype in dtypes.items():
        if getattr(dtype, "kind", None) in ("M", "m") or "datetime" in str(dtype).lower() or str(dtype).startswith("Date"):
            raise ValueError(
                f"column {name!r} holds dates or times ({dtype}): fairbits does not encode them (each instant "
                "would be a category of its own); convert it to numbers (a timestamp, or features such as the "
                "year or the weekday) or drop it"
            )


def _is_missing(v: Any) -> bool:
    """None, a float NaN, or pandas' NA / NaT."""
    return v is None or (isinstance(v, float) and v != v) or type(v).__name__ in ("NAType", "NaTType")


def _json_value(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


_DOC_HEAD = """A binary classifier whose hidden representation carries (almost) no information about a
    sensitive attribute; as a transformer, that representation.

    A layer of stochastic binary neurons makes the representation a random variable, so its mutual
    information with the sensitive attribute is computed exactly (or by Monte Carlo for wide layers) and
    penalised during training; the fitted model reports that information and a population certificate
    bounding the fairness gap of any classifier that reads one code per row. Training, encoding and
    evaluation run in the fairbits Rust core, with the command line's encoders: a text, boolean or
    categorical column is one-hot encoded, a numeric one standardised on the training rows.

    The parameters are the core's, with the command line's meaning and defaults (each entry names its
    flag); ``None`` takes the core's default, which may depend on the preset.

    Parameters
    ----------
"""

_DOC_TAIL = """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The classes: binary, negative then positive; more classes, sorted (``predict_proba``'s columns).
    n_features_in_ : int
        Number of feature columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` was a data frame.
    sensitive_groups_ : list of str
        The sensitive groups seen in ``fit``, in the order used by the reports.
    code_width_ : int
        Width of the representation (the last stochastic layer).
    history_ : list of dict
        One record per epoch: ``loss``, ``ce``, ``penalty_bits``, ``val_loss``.
    n_iter_ : int
        Epochs run (fewer than ``epochs`` when early stopping ended the training).
    random_state_ : int
        The seed this fit used (``random_state`` itself, or the one drawn for ``None`` or a generator):
        the same seed and data give the same model, here and on the command line.
    search_report_ : dict
        With ``max_certified_dp`` or ``max_certified_eo``: how the search found the model (every candidate,
        the rows it was selected and certified on, the final certificate, ``message``).

    Examples
    --------
    >>> from fairbits import FairRepresentationClassifier
    >>> from fairbits.datasets import load_adult
    >>> d = load_adult()
    >>> clf = FairRepresentationClassifier(preset="invariant", epochs=2, warmup_epochs=1)
    >>> clf.fit(d.X_train[:2000], d.y_train[:2000], sensitive_features=d.s_train[:2000]).code_width_
    12
"""


def _make_init(exclude: Sequence[str] = (), defaults_here: Optional[Dict[str, Any]] = None) -> Any:
    """``__init__`` with one keyword argument per constructor parameter of the schema (less ``exclude``;
    ``defaults_here`` replacing the schema's defaults), each stored as is (scikit-learn's convention),
    written the way ``dataclasses`` writes its ``__init__``."""
    entries = [d for d in _schema.CONSTRUCTOR if d["python"] not in exclude]
    names = [d["python"] for d in entries]
    defaults = {f"_d_{n}": _schema.python_default(d) for n, d in zip(names, entries)}
    defaults.update({f"_d_{n}": v for n, v in (defaults_here or {}).items()})
    args = ", ".join(f"{n}=_d_{n}" for n in names)
    body = "\n".join(f"    self.{n} = {n}" for n in names)
    namespace: Dict[str, Any] = {}
    exec(f"def __init__(self, *, {args}) -> None:\n{body}\n", dict(defaults), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__doc__ = "Stores the parameters (see the class docstring); nothing is checked until ``fit``."
    return init


class _FairRepresentation(TransformerMixin, BaseEstimator):
    """What the classifier and the regressor share: the parameters, the columns, the representation, the
    audit (information, certificate, metrics) and persistence; each adds its own fit and predictions."""

    __init__ = _make_init()

    # ----------------------------------------------------------------------------------------------
    # parameters

    def _seed(self) -> int:
        """The seed of this fit: ``random_state`` itself (an int), one drawn from it (a ``RandomState`` or
        ``Generator``), or one drawn afresh (``None``); kept in ``random_state_`` so the fit can be repeated."""
        rs = self.random_state
        if rs is None:
            return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2**31 - 1))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(0, 2**31 - 1))
        return rs

    def _model_params(self, seed: int) -> List[Tuple[str, str]]:
        """The model parameters set, as the core's ``(name, text)`` pairs (types checked here, ranges by
        the core)."""
        return _schema.model_texts({**self.get_params(deep=False), "random_state": seed})

    # ----------------------------------------------------------------------------------------------
    # data

    def _sensitive(self, X: Any, sensitive_features: Any, n: int) -> Tuple[Any, Any, List[str]]:
        """Splits the sensitive features from X: returns (X without them, the group values, the names).
        Without ``sensitive_features`` in the call, the constructor's (column names of X) serve: how a
        wrapper that calls ``fit(X, y, sample_weight=w)`` reaches them."""
        X, sensitive_features = adapt(X), adapt(sensitive_features)
        if sensitive_features is None and self.sensitive_features is not None:
            return self._constructor_sensitive(X)
        if sensitive_features is None:
            raise ValueError(
                "sensitive_features is required: an array or Series of group labels, or the name(s) of "
                "columns of X (in the call, or the constructor's sensitive_features)"
            )
        names = None
        if isinstance(sensitive_features, str):
            names = [sensitive_features]
        elif (
            isinstance(sensitive_features, (list, tuple))
            and sensitive_features
            and all(isinstance(c, str) for c in sensitive_features)
            and _is_frame(X)
            and all(c in X.columns for c in sensitive_features)
        ):
            names = list(sensitive_features)
        if names is not None:
            if not _is_frame(X):
                raise ValueError("sensitive_features given as column names needs X to be a data frame")
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise ValueError(f"sensitive_features: column(s) {missing} not in X; X has {list(X.columns)}")
            values = X[names]
            # The named columns are groups, not features, unless asked for (include_sensitive).
            return (X if self.include_sensitive else X.drop(columns=names)), values, names
        if _is_series(sensitive_features) or _is_frame(sensitive_features):
            v = sensitive_features
            label = [str(c) for c in v.columns] if _is_frame(v) else [str(v.name) if v.name is not None else "sensitive"]
            return X, v, label
        v = np.asarray(sensitive_features, dtype=object)
        if v.ndim not in (1, 2):
            raise ValueError(f"sensitive_features must be 1- or 2-dimensional, got shape {v.shape}")
        return X, v, ["sensitive"] if v.ndim == 1 else [f"sensitive{i}" for i in range(v.shape[1])]

    def _constructor_columns(self) -> List[Any]:
        """The constructor's ``sensitive_features`` as a list of column references (names of a frame's
        columns, or positions in an array's)."""
        given = self.sensitive_features
        refs = list(given) if isinstance(given, (list, tuple)) else [given]
        if not refs or not all(isinstance(r, (str, int, np.integer)) and not isinstance(r, bool) for r in refs):
            raise ValueError(
                f"invalid sensitive_features = {given!r}: the constructor takes column name(s) of X, or "
                "column position(s) when X is an array (group labels go to fit)"
            )
        return refs

    def _constructor_sensitive(self, X: Any) -> Tuple[Any, Any, List[str]]:
        """Splits the constructor's sensitive columns from X (names of a frame, positions of an array, which
        wrappers such as ``BaggingClassifier`` pass after converting a frame)."""
        refs = self._constructor_columns()
        if _is_frame(X) and all(isinstance(r, str) for r in refs):
            return self._sensitive(X, refs, n_rows(X))
        if _is_frame(X):
            X = X.to_numpy()
        A = np.asarray(X, dtype=object) if not hasattr(X, "dtype") else np.asarray(X)
        if A.ndim != 2 or not all(isinstance(r, (int, np.integer)) for r in refs):
            raise ValueError(
                f"sensitive_features = {self.sensitive_features!r} names columns, but X has no column names "
                "(a wrapper may have turned the frame into an array): give positions instead, e.g. "
                "sensitive_features=-1"
            )
        width = A.shape[1]
        bad = [r for r in refs if not -width <= int(r) < width]
        if bad:
            raise ValueError(f"sensitive_features: position(s) {bad} out of range for X with {width} columns")
        idx = sorted({int(r) % width for r in refs})
        values = A[:, idx]
        keep = A if self.include_sensitive else np.delete(A, idx, axis=1)
        return keep, values, [f"x{i}" for i in idx]

    def _without_constructor_sensitive(self, X: Any) -> Any:
        """At prediction, X as the model saw it in fit: the constructor's sensitive columns removed (when
        they were not features and X still holds them)."""
        if self.sensitive_features is None or self.include_sensitive:
            return X
        refs = self._constructor_columns()
        if _is_frame(X):
            present = [r for r in refs if isinstance(r, str) and r in X.columns]
            return X.drop(columns=present) if present else X
        if np.ndim(X) == 2 and np.shape(X)[1] == self.n_features_in_ + len(refs):
            A = np.asarray(X) if hasattr(X, "dtype") else np.asarray(X, dtype=object)
            return np.delete(A, sorted({int(r) % A.shape[1] for r in refs if not isinstance(r, str)}), axis=1)
        return X

    @staticmethod
    def _groups(values: Any, n: int) -> np.ndarray:
        """Group labels, one per row; several columns form intersectional groups ("a & b")."""
        if _is_frame(values):
            arr = values.to_numpy(dtype=object)
        elif hasattr(values, "to_numpy"):
            arr = values.to_numpy(dtype=object)
        else:
            arr = np.asarray(values, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 2:
            arr = np.array([" & ".join(str(v) for v in row) for row in arr], dtype=object)
        if len(arr) != n:
            raise ValueError(f"sensitive_features has {len(arr)} rows but X has {n}")
        return arr

    def _column_name(self, wanted: str, taken: Sequence[str]) -> str:
        name = wanted
        while name in taken:
            name += "_"
        return name

    def _x_columns(self, X: Any, for_fit: bool) -> List[Tuple[str, Any]]:
        _refuse_sparse(X)
        X = as_data(X)
        if not for_fit:
            X = self._without_constructor_sensitive(X)
        _refuse_datetimes(X)
        if not _is_frame(X) and not hasattr(X, "__array__") and not isinstance(X, (list, tuple)):
            raise ValueError(f"X must be a data frame or a 2-D array-like, got {type(X).__name__}")
        if not for_fit and not _is_frame(X):
            width = np.shape(X)[1] if np.ndim(X) == 2 else None
            if width is not None and width != self.n_features_in_:
                raise ValueError(
                    f"X has {width} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                    "features as input"
                )
        names = None if for_fit or _is_frame(X) else self._feature_names
        cols, got, text, framed = to_columns(X, names)
        if for_fit:
            self._fit_text = text
            self._fit_framed = framed
        else:
            ignored = self._sensitive_names + [self._target_name]
            fitted_framed = hasattr(self, "feature_names_in_")
            cols = match_names(cols, framed, self._feature_names, fitted_framed, ignored, type(self).__name__)
        return cols

    # ----------------------------------------------------------------------------------------------
    # fitting

    def fit(
        self, X: Any, y: Any, *, sensitive_features: Any = None, sample_weight: Any = None
    ) -> "FairRepresentationClassifier":
        """Trains the network on rows ``X`` with labels ``y`` and groups ``sensitive_features``.

        Parameters
        ----------
        X : data frame or array-like of shape (n_samples, n_features)
            Numeric and text/categorical columns. Missing cells (NaN or None in pandas, nulls in polars or
            pyarrow, NaN in a float array) follow ``missing``: ``"error"`` (the default) refuses the first,
            naming its row and column, ``"drop"`` drops their rows (with their weights) and warns with the
            count,
            ``"impute"`` fills them with the training rows' median (numbers) or most frequent value (text),
            saved with the encoders and with a missing-indicator input, so that predict and transform fill
            them the same way. At predict, transform and the audits no row is ever dropped (one output per
            row): a missing cell there is an error unless the model imputes.
        y : array-like of shape (n_samples,)
            Two classes, or up to 100 (a softmax head; with the default preset, ``certified``, which is
            binary, they train with ``invariant``).
        sensitive_features : array-like, Series, data frame, or column name(s) of X
            The groups; several columns form intersectional groups. Columns of X named here are not used
            as features. Absent: the constructor's ``sensitive_features`` (column names, or positions of an
            array's columns).
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row counts (finite, >= 0). Training draws each epoch's rows with probability
            proportional to the weights, so the cross-entropy and the penalty both see the weighted rows
            (docs/design.md section 3d); equal weights are the same as none. The validation split's loss
            and the certificate are unweighted (they are estimates on held-out rows, not training
            objectives; ``certificate(..., sample_weight=w)`` certifies a weighted population).

        Returns
        -------
        self
        """
        seed = self._seed()
        if not _is_frame(X) and len(getattr(X, "shape", ())) == 4:  # images N x 3 x H x W
            return self._fit_images(X, y, sensitive_features, seed)
        params = self._model_params(seed)
        X, n, y_arr, s_names, groups = self._table_rows(X, y, sensitive_features)
        if y_arr.dtype.kind == "f" and np.isnan(y_arr).any():
            raise ValueError(f"y has a missing value (NaN) at row {int(np.flatnonzero(np.isnan(y_arr))[0])}")
        if y_arr.dtype.kind == "f" and not np.all(np.isfinite(y_arr)):
            raise ValueError("Input y contains infinity")
        if y_arr.dtype.kind == "O":
            missing = [i for i, v in enumerate(y_arr) if _is_missing(v)]
            if missing:
                raise ValueError(f"y has a missing value ({y_arr[missing[0]]!r}) at row {missing[0]}")
        # np.unique's sort, on the distinct values only (an object array would be sorted cell by cell).
        classes = np.unique(np.asarray(list(dict.fromkeys(y_arr.tolist())), dtype=y_arr.dtype))
        if len(classes) < 2:
            raise ValueError(
                f"Classification needs at least two classes: y has {len(classes)} class(es)"
                + (f" ({', '.join(map(str, classes[:10]))})" if len(classes) else "")
            )
        if y_arr.dtype.kind == "f" and len(classes) > 2 and not np.all(y_arr == np.round(y_arr)):
            raise ValueError(f"Unknown label type: y is continuous ({len(classes)} values); binarise it first")
        if len(classes) > 2 and self.pos_label is not None:
            raise ValueError(f"pos_label={self.pos_label!r} applies to a binary y only; y has {len(classes)} classes")
        if len(classes) > 2 and self.preset == _schema.python_default(_schema.PARAMS["preset"]):
            # The default preset is binary (one bit); more classes are fair by default with the invariant one.
            params = _schema.model_texts({**self.get_params(deep=False), "random_state": seed, "preset": "invariant"})
        if self.pos_label is not None:
            if self.pos_label not in classes:
                raise ValueError(f"pos_label={self.pos_label!r} is not a class of y ({list(classes)})")
            classes = np.array([c for c in classes if c != self.pos_label] + [self.pos_label], dtype=classes.dtype)
        if len(classes) > 2:
            # The core sorts numbers numerically: the class indices as text keep the order of classes_.
            y_text = lambda _name: [str(i) for i in np.searchsorted(classes, y_arr)]  # noqa: E731
        else:
            y_text = lambda name: one_column(name, y_arr)[1]  # noqa: E731
        positive = str(classes[1]) if len(classes) == 2 else None
        model, feature_names, target_name = self._fit_native(
            params, X, n, y, y_text, positive, s_names, groups, sample_weight, {}
        )
        self._set_fitted(model, classes, feature_names, self._fit_framed, s_names, target_name)
        self.random_state_ = seed
        return self

    def _fit_images(self, X: Any, y: Any, sensitive_features: Any, seed: int) -> "FairRepresentationClassifier":
        """``fit`` on images ``N x 3 x H x W`` (values in [0, 1]): the command line's image network and
        defaults (the table preset the estimator defaults to does not apply to images; any other parameter
        set here does). Classes and groups are the sorted distinct values of ``y`` and the groups."""
        images = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        n = images.shape[0]
        if sensitive_features is None or isinstance(sensitive_features, str):
            raise ValueError("images need sensitive_features as an array of group labels, one per image")
        classes, y_idx = np.unique(np.asarray(y).ravel(), return_inverse=True)
        groups, s_idx = np.unique(np.asarray(sensitive_features).ravel(), return_inverse=True)
        if len(y_idx) != n or len(s_idx) != n:
            raise ValueError(f"X has {n} images but y has {len(y_idx)} labels and sensitive_features {len(s_idx)}")
        if not 2 <= len(classes) <= 255:
            raise ValueError(f"images need between 2 and 255 classes, y has {len(classes)}")
        values = {**self.get_params(deep=False), "random_state": seed}
        if values["preset"] == _schema.python_default(_schema.PARAMS["preset"]):
            values["preset"] = None
        model = _native.fit_images(
            _schema.model_texts(values),
            images,
            y_idx.astype(np.uint8).tolist(),
            s_idx.astype(np.uint32).tolist(),
            len(classes),
            [str(g) for g in groups],
            "images",
            bool(self.verbose),
        )
        self._set_fitted(model, classes, [], False, ["sensitive"], "y")
        self.sensitive_groups_ = [str(g) for g in groups]
        self.random_state_ = seed
        return self

    def _table_rows(self, X: Any, y: Any, sensitive_features: Any) -> Tuple[Any, int, np.ndarray, List[str], Any]:
        """The checks every table fit starts with: ``X`` as data (sparse refused), the groups taken out of it
        (or given), ``y`` as a one-dimensional array of one value per row. Returns ``X``, its rows, ``y``,
        the groups' names and the groups."""
        _refuse_sparse(X)
        X = as_data(X)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        n = n_rows(X)
        X, s_values, s_names = self._sensitive(X, sensitive_features, n)
        groups = self._groups(s_values, n)
        y_arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
                "(n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
            y_arr = y_arr.ravel()
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {y_arr.shape}")
        if len(y_arr) != n:
            raise ValueError(f"y has {len(y_arr)} rows but X has {n}")
        if n == 0:
            raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required.")
        return X, n, y_arr, s_names, groups

    def _fit_native(
        self,
        params: Any,
        X: Any,
        n: int,
        y: Any,
        y_text: Any,
        positive: Optional[str],
        s_names: List[str],
        groups: Any,
        sample_weight: Any,
        extra: Dict[str, Any],
    ) -> Tuple[Any, List[str], str]:
        """The columns of ``X`` with the target (``y_text(name)``: its cells) and the groups, handed to the
        core with the parameters; ``extra``: the core's keyword arguments of one kind of estimator. Returns
        the fitted model, the feature names and the target's column name."""
        cols = self._x_columns(X, for_fit=True)
        feature_names = [c for c, _ in cols]
        if not feature_names:
            raise ValueError(
                f"Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 is required (after the "
                "sensitive columns are taken out of X)."
            )
        target_name = self._column_name(str(getattr(y, "name", None) or "y"), feature_names)
        sensitive_name = self._column_name(", ".join(s_names), feature_names + [target_name])
        categorical = sorted(set(self._fit_text) | set(self.categorical_features or []))
        unknown = [c for c in (self.categorical_features or []) if c not in feature_names]
        if unknown:
            raise ValueError(f"categorical_features: {unknown} are not columns of X ({feature_names})")
        _, s_text = one_column(sensitive_name, groups)
        bins = None if self.sensitive_bins is None else int(_schema.to_text(_schema.PARAMS["sensitive_bins"], self.sensitive_bins))
        model = _native.fit(
            params,
            cols + [(target_name, y_text(target_name)), (sensitive_name, s_text)],
            target_name,
            positive,
            sensitive_name,
            categorical,
            float(_schema.to_text(_schema.PARAMS["val_size"], self.val_size)),
            "data",
            bool(self.verbose),
            self._weights(sample_weight, n),
            bins,
            missing=_schema.to_text(_schema.PARAMS["missing"], self.missing),
            **extra,
        )
        self._warn_dropped(model, n)
        return model, feature_names, target_name

    @staticmethod
    def _warn_dropped(model: Any, n: int) -> None:
        """The rows ``missing='drop'`` left out of a fit, said once (the command line counts them too)."""
        if model.rows_dropped:
            warnings.warn(
                f"{model.rows_dropped} of {n} rows have a missing value and were dropped (missing='drop'); "
                "missing='impute' keeps them, filling the cells as predict will",
                UserWarning,
                stacklevel=3,
            )

    @staticmethod
    def _weights(sample_weight: Any, n: int) -> Optional[List[float]]:
        """``sample_weight`` as a list of floats (the core checks the values and names the row)."""
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight.to_numpy() if hasattr(sample_weight, "to_numpy") else sample_weight)
        if w.ndim != 1 or w.dtype.kind not in "biuf":
            raise ValueError(f"sample_weight must be a 1-D array of numbers, got shape {w.shape} ({w.dtype})")
        if len(w) != n:
            raise ValueError(f"sample_weight has {len(w)} rows but X has {n}")
        return w.astype(np.float64).tolist()

    def _set_fitted(
        self,
        model: Any,
        classes: Optional[np.ndarray],
        feature_names: List[str],
        framed: bool,
        sensitive_names: List[str],
        target_name: str,
    ) -> None:
        config = json.loads(model.config_json())
        self.model_ = model
        if classes is not None:  # a regressor has none
            self.classes_ = classes
        self.n_features_in_ = len(feature_names)
        self._feature_names = feature_names
        self._sensitive_names = sensitive_names
        self._target_name = target_name
        if framed:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        enc = config.get("encoding") or {}
        self.sensitive_groups_ = list((enc.get("sensitive") or {}).get("groups", []))
        self.code_width_ = int(model.code_width())
        search = model.search_json()
        if search is not None:
            self.search_report_ = json.loads(search)
        elif hasattr(self, "search_report_"):
            del self.search_report_
        self.history_ = json.loads(model.history_json())
        self.n_iter_ = len(self.history_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        # Only an imputing model takes NaN at predict (a row is never dropped there).
        tags.input_tags.allow_nan = self.missing == "impute"
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.sparse = True  # scipy sparse X: numeric columns (_columns.from_sparse)
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = True
        tags.non_deterministic = False
        # Codes are float32 whatever the input's type.
        tags.transformer_tags.preserves_dtype = []
        return tags

    # ----------------------------------------------------------------------------------------------
    # prediction

    def _is_image(self) -> bool:
        return json.loads(self.model_.config_json())["kind"] == "image"

    def _image_array(self, X: Any) -> np.ndarray:
        # Shape and values are checked by the core against the model's images (naming X).
        return np.ascontiguousarray(np.asarray(X, dtype=np.float32))

    def transform(self, X: Any, codes: Optional[str] = None) -> np.ndarray:
        """The representation of each row.

        Parameters
        ----------
        X : data frame or array-like
        codes : {"sample", "prob", "threshold"}, default=None
            A fresh sample of the binary neurons, their firing probabilities, or those thresholded at 0.5
            (default: the ``inference`` parameter).

        Returns
        -------
        ndarray of shape (n_samples, code_width_)

        Notes
        -----
        Only ``"sample"`` codes (one fresh sample per row, as each call draws) and ``"threshold"`` codes are
        what the population certificate covers; ``"prob"`` returns ``p``, a deterministic function of the
        row that can carry the sensitive attribute freely, and warns once (``UncertifiedOutputWarning``).
        """
        self._check_fitted()
        mode = codes or self.inference
        if mode == "prob":
            _warn_uncertified("transform returns the firing probabilities p")
        if self._is_image():
            return self.model_.transform_array(self._image_array(X), mode)
        out, warns = self.model_.transform(self._x_columns(X, for_fit=False), mode)
        _warn(warns)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the representation's columns: ``code0``, ``code1``, ..."""
        self._check_fitted()
        return np.asarray([f"code{i}" for i in range(self.code_width_)], dtype=object)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (in ``"sample"`` mode the mean over
        ``draws`` sampled codes per row).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)

        Notes
        -----
        Why these scores rank better than :meth:`evaluate` says (Adult, the certified preset: AUC 0.875
        here against 0.857 there): the mean over ``draws`` codes of a row moves towards what ``p`` says, so
        it ranks rows better than any one code does; :meth:`evaluate` reports each metric per single draw
        (averaged over draws), the consumer of one code per row that the certificate covers. A prediction
        covered by the certificate reads one code: ``draws=1`` (or ``inference="threshold"``).
        """
        self._check_fitted()
        if self.inference == "prob":
            _warn_uncertified("predict_proba reads the firing probabilities p (inference='prob')")
        if self._is_image():
            return self.model_.predict_proba_array(self._image_array(X), self.inference, int(self.draws))
        p, warns = self.model_.predict_proba(self._x_columns(X, for_fit=False), self.inference, int(self.draws))
        _warn(warns)
        return p.astype(np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the positive class (monotone in ``predict_proba(X)[:, 1]``); more classes: the
        log-probability of each, shape ``(n_samples, n_classes)``."""
        proba = self.predict_proba(X)
        if proba.shape[1] > 2:
            return np.log(np.clip(proba, 1e-7, 1.0))
        p = np.clip(proba[:, 1], 1e-7, 1 - 1e-7)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: Any) -> np.ndarray:
        """The class of each row: positive when its probability reaches ``threshold``."""
        p = self.predict_proba(X)
        if p.shape[1] > 2:
            return self.classes_[np.argmax(p, axis=1)]
        threshold = float(_schema.to_text(_schema.PARAMS["threshold"], self.threshold))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"invalid threshold = {threshold}: must be in [0, 1]")
        return self.classes_[(p[:, 1] >= threshold).astype(int)]

    # ----------------------------------------------------------------------------------------------
    # audit

    def _labelled(self, X: Any, y: Any, sensitive_features: Any) -> Tuple[List[Tuple[str, Any]], str, str]:
        """Feature columns with a target and a sensitive column appended, and the latter two's names."""
        n = n_rows(X)
        X, s_values, s_names = self._sensitive(X, sensitive_features, n)
        groups = self._groups(s_values, n)
        cols = self._x_columns(X, for_fit=False)
        taken = [c for c, _ in cols]
        y_arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if len(y_arr) != n:
            raise ValueError(f"y has {len(y_arr)} rows but X has {n}")
        t = self._column_name(str(getattr(y, "name", None) or self._target_name), taken)
        s = self._column_name(", ".join(s_names), taken + [t])
        if len(getattr(self, "classes_", ())) > 2:
            # Label i is classes_[i]; the core knows it by its own text (fit: the index; the command line:
            # the value).
            texts = json.loads(self.model_.config_json())["encoding"]["target"]["classes"]
            index = {c: texts[i] for i, c in enumerate(self.classes_.tolist())}
            unknown = [v for v in y_arr.tolist() if v not in index]
            if unknown:
                raise ValueError(f"y has {unknown[0]!r}, not a class of the model ({list(self.classes_)})")
            return cols + [(t, [index[v] for v in y_arr.tolist()]), one_column(s, groups)], t, s
        return cols + [one_column(t, y_arr), one_column(s, groups)], t, s

    def evaluate(
        self,
        X: Any,
        y: Any,
        *,
        sensitive_features: Any = None,
        probe_data: Optional[Tuple[Any, Any, Any]] = None,
    ) -> Dict[str, Any]:
        """The command line's metrics on labelled rows: task AUC and accuracy, fairness gaps, probe AUCs
        for the sensitive attribute, mutual information and the certificate (as in ``metrics.json``).

        Parameters
        ----------
        X, y, sensitive_features
            Held-out rows.
        probe_data : (X, y, sensitive_features), default=None
            Rows the probes learn on (the command line uses the training rows). Default: the probes learn
            on a stratified half of the given rows and are scored on the other half.
        """
        self._check_fitted()
        cols, t, s = self._labelled(X, y, sensitive_features)
        probe = None
        if probe_data is not None:
            pcols, pt, ps = self._labelled(*probe_data[:2], sensitive_features=probe_data[2])
            probe = [(t if c == pt else s if c == ps else c, v) for c, v in pcols]
        return json.loads(self.model_.evaluate(cols, t, s, probe, bool(self.verbose)))

    def mutual_information(self, X: Any, sensitive_features: Any = None) -> Dict[str, Any]:
        """Mutual information (bits) between the representation of the rows and their groups.

        Returns
        -------
        dict
            ``mi_per_neuron_bits`` (the sum over neurons of each neuron's MI), ``mi_joint_bits`` (the
            whole code's MI: exact up to 20 neurons, else Monte Carlo with ``mi_joint_stderr``),
            ``mi_joint_method``, ``code_width``.
        """
        self._check_fitted()
        n = n_rows(X)
        X, s_values, _ = self._sensitive(X, sensitive_features, n)
        cols = self._x_columns(X, for_fit=False)
        s = self._column_name("__sensitive__", [c for c, _ in cols])
        return json.loads(self.model_.mutual_information(cols + [one_column(s, self._groups(s_values, n))], s))

    def certificate(
        self,
        X: Any,
        y: Any = None,
        *,
        sensitive_features: Any = None,
        confidence: float = 0.95,
        sample_weight: Any = None,
    ) -> Dict[str, Any]:
        """The population certificate from held-out rows (rows not used in ``fit``).

        With probability ``confidence`` over the draw of the rows, for the population they come from,
        any classifier or probe that reads one code per row has a demographic-parity gap of at most
        ``dp_gap_bound`` (``eo_gap_bound`` for equalised odds, computed when ``y`` is given), and any
        probe for the sensitive attribute an AUC of at most ``probe_auc_bound``.

        With ``sample_weight`` (one weight >= 0 per row of ``X``, not all 0), the population is the
        weighted one: each group's law is the weighted law of its rows (importance weights, fairlearn's
        reweighting). The plug-in is weighted and the confidence term grows with the weights' spread: each
        group counts as its effective number of rows ``W_g^2 / sum w_i^2`` (``effective_n_per_group``);
        equal weights give the unweighted certificate exactly. It holds with the weights fixed and the
        rows drawn independently given their group and weight (docs/design.md, section 4e).

        Returns
        -------
        dict
            ``dp_gap_bound``, ``eo_gap_bound``, ``probe_auc_bound``, ``adversary_balanced_accuracy_bound``,
            ``tv_upper``, ``tv_plugin``, ``n_per_group``, ``confidence``, ``codes``, ``method``; ``covers``
            (what the bounds hold for, in words) and ``covers_predict`` (whether this estimator's own
            ``predict``/``predict_proba`` read one code per row: with ``inference="prob"`` or ``draws`` > 1
            they do not, and a warning says so).
        """
        self._check_fitted()
        n = n_rows(X)
        if y is None:
            X, s_values, _ = self._sensitive(X, sensitive_features, n)
            cols = self._x_columns(X, for_fit=False)
            s = self._column_name("__sensitive__", [c for c, _ in cols])
            cols = cols + [one_column(s, self._groups(s_values, n))]
            result = json.loads(self.model_.certificate(cols, s, None, float(confidence), self._weights(sample_weight, n)))
        else:
            cols, t, s = self._labelled(X, y, sensitive_features)
            result = json.loads(self.model_.certificate(cols, s, t, float(confidence), self._weights(sample_weight, n)))
        codes = "thresholded codes 1[p >= 0.5]" if result.get("codes") == "threshold" else "ONE sampled code per row"
        result["covers"] = (
            f"any classifier or probe that reads {codes} (transform(X) with codes='{result.get('codes', 'sample')}'), "
            "for the population the rows come from; not p (codes='prob') and not averages of several samples"
        )
        result["covers_predict"] = self.inference == "threshold" or (self.inference == "sample" and int(self.draws) == 1)
        if self.inference == "prob":
            _warn_uncertified("this estimator predicts from the firing probabilities p (inference='prob')")
        if result.get("dp_gap_bound", 0.0) >= 0.999:
            warnings.warn(
                f"the certificate is vacuous (dp_gap_bound {result['dp_gap_bound']:.3f}): its smallest group has "
                f"{min(result.get('n_per_group') or [0])} rows; give more held-out rows, or fewer, larger groups "
                "(sensitive_bins for a numeric attribute)",
                UserWarning,
                stacklevel=2,
            )
        return result

    # ----------------------------------------------------------------------------------------------
    # persistence

    def save(self, path: Union[str, "os.PathLike[str]"], overwrite: bool = False) -> None:
        """Saves into a model directory of the command line's format (``config.json`` and
        ``model.safetensors``), plus ``python.json`` with the estimator's parameters and classes, so that
        :meth:`load` and the command line's ``predict``, ``encode``, and ``eval``/``certify`` with held-out
        rows (``--input FILE --target COL --sensitive COL``) read it.

        ``path`` must be a new or empty directory; one holding a fairbits model is replaced only with
        ``overwrite=True`` (``FileExistsError`` otherwise), and one holding other files never is."""
        self._check_fitted()
        path = os.fspath(path)
        self.model_.save(path, bool(overwrite))
        meta = {
            "params": {k: _json_value(v) for k, v in self.get_params().items()},
            "classes": [_json_value(c) for c in self.classes_] if hasattr(self, "classes_") else None,
            "feature_names": self._feature_names,
            "framed": hasattr(self, "feature_names_in_"),
            "sensitive_names": self._sensitive_names,
            "target_name": self._target_name,
        }
        tmp = os.path.join(path, _PYTHON_META + ".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
        os.replace(tmp, os.path.join(path, _PYTHON_META))

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "_FairRepresentation":
        """Reads a model directory written by :meth:`save` or by the command line (``fairbits train``)."""
        path = os.fspath(path)
        model = _native.load(path)
        if bool(model.is_regression()) != (getattr(cls, "_task", "classification") == "regression"):
            which = "FairRepresentationRegressor" if model.is_regression() else "FairRepresentationClassifier"
            raise ValueError(f"{path} holds a model for {which}: load it with {which}.load or fairbits.load")
        meta_path = os.path.join(path, _PYTHON_META)
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            est = cls(**{k: (tuple(v) if isinstance(v, list) and k in ("hidden", "stochastic") else v) for k, v in meta["params"].items()})
            est._set_fitted(
                model,
                None if meta["classes"] is None else np.asarray(meta["classes"]),
                meta["feature_names"],
                meta["framed"],
                meta["sensitive_names"],
                meta["target_name"],
            )
            return est
        return cls._from_cli(model)

    @classmethod
    def _from_cli(cls, model: Any) -> "_FairRepresentation":
        config = json.loads(model.config_json())
        m = config["model"]
        est = cls(full_precision=not m["stochastic"], **_schema.from_config(config))
        enc = config.get("encoding")
        if enc is None:  # an image model: classes are the class indices
            est._set_fitted(model, np.arange(max(2, m["n_outputs"])), [], False, ["colour"], "digit")
            return est
        names = [col["name"] for col in enc["columns"]]
        if "regression" in enc["target"]:  # numbers, no classes
            est._set_fitted(model, None, names, True, [enc["sensitive"]["column"]], enc["target"]["column"])
            return est
        classes = enc["target"].get("classes") or [enc["target"]["negative"], enc["target"]["positive"]]
        try:
            as_num = [float(c) for c in classes]
            classes_arr = np.asarray([int(v) if v.is_integer() else v for v in as_num])
        except ValueError:
            classes_arr = np.asarray(classes, dtype=object)
        names = [col["name"] for col in enc["columns"]]
        est._set_fitted(model, classes_arr, names, True, [enc["sensitive"]["column"]], enc["target"]["column"])
        return est

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:
            config, weights = model.to_bytes()
            state["_model_bytes"] = (config, bytes(weights))
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        blob = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        if blob is not None:
            self.model_ = _native.from_bytes(blob[0], blob[1])


class FairRepresentationClassifier(ClassifierMixin, _FairRepresentation):
    __init__ = _make_init()


try:
    from sklearn.exceptions import DataConversionWarning
except ImportError:  # pragma: no cover

    class DataConversionWarning(UserWarning):  # type: ignore[no-redef]
        """A column-vector y was passed where a 1-D array was expected."""


FairRepresentationClassifier.__doc__ = (
    _DOC_HEAD
    + "\n".join("    " + line if line else "" for e in _schema.CONSTRUCTOR for line in _schema.docstring_entry(e).split("\n"))
    + "\n"
    + _DOC_TAIL
)

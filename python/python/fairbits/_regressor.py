"""`FairRepresentationRegressor`: a numeric target fitted by squared error on the fair codes
(docs/design.md, section 5c). It shares everything but the target with the classifier: parameters,
columns, the representation (``transform``), the audit (``evaluate``, ``mutual_information``,
``certificate``) and persistence."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _schema
from ._estimator import (
    _DOC_HEAD,
    _FairRepresentation,
    _make_init,
    _warn,
    _warn_uncertified,
)

try:  # scikit-learn is an optional extra: without it the estimator keeps the same conventions.
    from sklearn.base import RegressorMixin
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    from ._base import RegressorMixin  # type: ignore[assignment]

__all__ = ["FairRepresentationRegressor"]

#: The classifier's parameters that mean nothing for a number: its positive label and decision threshold,
#: and the certified-bound search (which selects the most accurate classifier).
_CLASSIFIER_ONLY = ("pos_label", "threshold", "max_certified_dp", "max_certified_eo", "final_tries")


class FairRepresentationRegressor(RegressorMixin, _FairRepresentation):
    # The default preset `certified` trains a binary head by the exact estimator; the invariant one is the
    # fair default of any other head.
    __init__ = _make_init(exclude=_CLASSIFIER_ONLY, defaults_here={"preset": "invariant"})
    _task = "regression"

    def fit(
        self, X: Any, y: Any, *, sensitive_features: Any = None, sample_weight: Any = None
    ) -> "FairRepresentationRegressor":
        """Trains the network on rows ``X`` with numeric targets ``y`` and groups ``sensitive_features``.

        The target is standardised with the training rows' mean and standard deviation (kept with the model,
        so ``predict`` answers in ``y``'s units) and fitted by squared error through a linear output on the
        codes. ``X``, ``sensitive_features`` and ``sample_weight`` are as for
        :meth:`FairRepresentationClassifier.fit`.

        Returns
        -------
        self
        """
        seed = self._seed()
        if not hasattr(X, "columns") and len(getattr(X, "shape", ())) == 4:
            raise ValueError("a regressor takes table rows; images are classified (FairRepresentationClassifier)")
        params = self._model_params(seed)
        X, n, y_arr, s_names, groups = self._table_rows(X, y, sensitive_features)
        try:
            y_num = y_arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"a regression target must be numbers; y holds {y_arr.dtype} values") from None
        if np.isnan(y_num).any():
            raise ValueError(f"y has a missing value (NaN) at row {int(np.flatnonzero(np.isnan(y_num))[0])}")
        if not np.all(np.isfinite(y_num)):
            raise ValueError("Input y contains infinity")
        # Shortest round-tripping text: the core reads back exactly these numbers.
        model, feature_names, target_name = self._fit_native(
            params, X, n, y, lambda _name: [repr(v) for v in y_num.tolist()], None, s_names, groups,
            sample_weight, {"task": "regression"}
        )
        self._set_fitted(model, None, feature_names, self._fit_framed, s_names, target_name)
        self.random_state_ = seed
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The prediction of each row in ``y``'s units: in ``"sample"`` mode the mean over ``draws``
        sampled codes per row (as the classifier's probabilities are); one code per row (``draws=1``, or
        ``inference="threshold"``) is what the certificate covers.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        self._check_fitted()
        if self.inference == "prob":
            _warn_uncertified("predict reads the firing probabilities p (inference='prob')")
        v, warns = self.model_.predict_values(self._x_columns(X, for_fit=False), self.inference, int(self.draws))
        _warn(warns)
        return np.asarray(v, dtype=np.float64)

    # A regressor has no classes: these read as absent (hasattr is False), as scikit-learn's available_if does.
    @property
    def predict_proba(self) -> Any:  # type: ignore[override]
        raise AttributeError("a FairRepresentationRegressor predicts numbers; it has no predict_proba")

    @property
    def decision_function(self) -> Any:  # type: ignore[override]
        raise AttributeError("a FairRepresentationRegressor predicts numbers; it has no decision_function")

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags = None
        return tags


_DOC_REGRESSOR_HEAD = _DOC_HEAD.replace(
    "A binary classifier whose hidden representation", "A regressor whose hidden representation", 1
).replace("any classifier that reads one code per row", "any model that reads one code per row", 1)

_DOC_REGRESSOR_TAIL = """
    The target is standardised with the training rows' mean and standard deviation and fitted by squared
    error through a linear output on the codes; ``predict`` answers in the target's units and ``score`` is
    R^2. The default ``preset`` is ``"invariant"`` (``"certified"`` trains a binary head). ``evaluate`` reports RMSE, R^2, MAE and the gap in mean prediction between groups
    (``metrics["regression"]``); the certificate is about the codes, so it holds for any downstream model:
    an output in ``[a, b]`` has a gap in group means of at most ``(b - a)`` times the certified total
    variation (``dp_gap_bound``; docs/design.md, section 5c).

    Attributes
    ----------
    n_features_in_ : int
        Number of feature columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names, when ``X`` was a data frame.
    sensitive_groups_ : list of str
        The sensitive groups seen in ``fit``, in the order used by the reports.
    code_width_ : int
        Width of the representation (the last stochastic layer).
    history_ : list of dict
        One record per epoch: ``loss``, ``ce`` (here the squared error), ``penalty_bits``, ``val_loss``.
    n_iter_ : int
        Epochs run.
    random_state_ : int
        The seed this fit used.

    Examples
    --------
    >>> import numpy as np
    >>> from fairbits import FairRepresentationRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> s = rng.integers(0, 2, 400)
    >>> y = 2 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=400)
    >>> reg = FairRepresentationRegressor(epochs=5, warmup_epochs=1, random_state=0)
    >>> reg.fit(X, y, sensitive_features=s).predict(X[:3]).shape
    (3,)
"""

FairRepresentationRegressor.__doc__ = (
    _DOC_REGRESSOR_HEAD
    + "\n".join(
        "    " + line if line else ""
        for e in _schema.CONSTRUCTOR
        if e["python"] not in _CLASSIFIER_ONLY
        for line in _schema.docstring_entry(e).split("\n")
    )
    + "\n"
    + _DOC_REGRESSOR_TAIL
)

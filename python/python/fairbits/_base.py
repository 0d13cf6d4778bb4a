"""The few scikit-learn conventions the estimator relies on, for installs without scikit-learn (an
optional extra): parameters from ``__init__``, ``get_params``/``set_params``, accuracy (classifier) or R^2
(regressor) as ``score``."""

from __future__ import annotations

import inspect
from typing import Any, Dict


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit``."""


class BaseEstimator:
    """Parameters are the keyword arguments of ``__init__``, stored unchanged."""

    @classmethod
    def _param_names(cls) -> list:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> "BaseEstimator":
        valid = self._param_names()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"Invalid parameter {k!r} for estimator {type(self).__name__}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = {k: v for k, v in self.get_params().items() if defaults.get(k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


class ClassifierMixin:
    """``score`` is the accuracy."""

    def score(self, X: Any, y: Any) -> float:
        import numpy as np

        return float(np.mean(self.predict(X) == np.asarray(y)))  # type: ignore[attr-defined]


class RegressorMixin:
    """``score`` is the coefficient of determination R^2."""

    def score(self, X: Any, y: Any) -> float:
        import numpy as np

        y = np.asarray(y, dtype=np.float64)
        residual = float(np.sum((y - self.predict(X)) ** 2))  # type: ignore[attr-defined]
        total = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - residual / total if total > 0 else float("nan")


class TransformerMixin:
    """``fit_transform`` is ``fit`` then ``transform``."""

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, y, **fit_params).transform(X)  # type: ignore[attr-defined]

"""The audit of a fitted model wherever it sits: ``fairbits.certificate``, ``fairbits.mutual_information``
and ``fairbits.evaluate`` take a :class:`~fairbits.FairRepresentationClassifier` or a scikit-learn
``Pipeline`` holding one (the steps before it transform ``X`` first; steps after it are not involved, since
what is certified is the representation)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from ._estimator import FairRepresentationClassifier, _FairRepresentation


def _locate(estimator: Any, X: Any) -> Tuple[FairRepresentationClassifier, Any]:
    """The fairbits step of ``estimator`` and ``X`` transformed by the steps before it."""
    if isinstance(estimator, _FairRepresentation):
        return estimator, X
    steps = getattr(estimator, "steps", None)
    if steps is None:
        raise TypeError(
            f"estimator must be a FairRepresentationClassifier or a Pipeline holding one, got {type(estimator).__name__}"
        )
    for k, (_, step) in enumerate(steps):
        inner = getattr(step, "best_estimator_", step)  # a fitted search around it
        if isinstance(inner, _FairRepresentation):
            for _, before in steps[:k]:
                if before is not None and before != "passthrough":
                    X = before.transform(X)
            return inner, X
    raise ValueError("the pipeline has no FairRepresentationClassifier step")


def certificate(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    sensitive_features: Any = None,
    confidence: float = 0.95,
    sample_weight: Any = None,
) -> Dict[str, Any]:
    """The population certificate (:meth:`FairRepresentationClassifier.certificate`) of the fairbits step of
    ``estimator`` from held-out rows ``X`` (transformed by the steps before it); with ``sample_weight``, that
    of the weighted population (one weight per row of ``X``)."""
    clf, Xt = _locate(estimator, X)
    return clf.certificate(
        Xt, y, sensitive_features=sensitive_features, confidence=confidence, sample_weight=sample_weight
    )


def mutual_information(estimator: Any, X: Any, sensitive_features: Any = None) -> Dict[str, Any]:
    """:meth:`FairRepresentationClassifier.mutual_information` of the fairbits step of ``estimator``."""
    clf, Xt = _locate(estimator, X)
    return clf.mutual_information(Xt, sensitive_features)


def evaluate(estimator: Any, X: Any, y: Any, *, sensitive_features: Any = None) -> Dict[str, Any]:
    """:meth:`FairRepresentationClassifier.evaluate` of the fairbits step of ``estimator``."""
    clf, Xt = _locate(estimator, X)
    return clf.evaluate(Xt, y, sensitive_features=sensitive_features)

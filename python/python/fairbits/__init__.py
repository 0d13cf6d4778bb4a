"""fairbits: representations that carry (almost) no information about a sensitive attribute.

A hidden layer of stochastic binary neurons makes a network's representation a random variable, so its
mutual information with the sensitive attribute is computed (not bounded by an adversary) and penalised
in training, and a population certificate bounds the fairness gap of anything that reads the codes. The
work runs in the fairbits Rust core; this package is its scikit-learn face.

>>> from fairbits import FairRepresentationClassifier
>>> from fairbits.datasets import load_adult
"""

from ._estimator import FairRepresentationClassifier, NotFittedError, UncertifiedOutputWarning, UnseenCategoryWarning
from ._regressor import FairRepresentationRegressor
from ._pipeline import certificate, evaluate, mutual_information
from ._schema import InvalidParameterError
from ._native import __version__
from . import datasets, sweep

__all__ = [
    "FairRepresentationClassifier",
    "FairRepresentationRegressor",
    "InvalidParameterError",
    "NotFittedError",
    "UncertifiedOutputWarning",
    "UnseenCategoryWarning",
    "certificate",
    "datasets",
    "evaluate",
    "load",
    "mutual_information",
    "sweep",
    "__version__",
]


def load(path):  # type: ignore[no-untyped-def]
    """A saved model directory (from :meth:`FairRepresentationClassifier.save`,
    :meth:`FairRepresentationRegressor.save` or ``fairbits train``), as the estimator of its task."""
    from . import _native

    if _native.load(str(path)).is_regression():
        return FairRepresentationRegressor.load(path)
    return FairRepresentationClassifier.load(path)

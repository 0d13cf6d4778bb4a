"""The estimator inside scikit-learn's and fairlearn's wrappers, on Adult (the CLI's split, seed 0): accuracy
and DP gap on the test split, and the certificate where one applies. Prints a Markdown table.

    python python/benchmarks/wrappers.py
"""

import warnings

import numpy as np

from fairbits import FairRepresentationClassifier
from fairbits.datasets import load_adult

warnings.simplefilter("ignore")
d = load_adult()
positive = ">50K"
X = d.X_train.assign(sex=d.s_train.to_numpy())
Xt = d.X_test.assign(sex=d.s_test.to_numpy())
y01, yt01 = (d.y_train == positive).astype(int), (d.y_test == positive).astype(int)
women = d.s_test.astype(str).to_numpy() == "Female"


def row(name, pred, cert="-"):
    pred = np.asarray(pred).astype(int)
    gap = abs(pred[women].mean() - pred[~women].mean())
    print(f"| {name} | {(pred == yt01).mean():.3f} | {gap:.3f} | {cert} |")


print("| model | accuracy | DP gap (test) | certified DP (95%) |")
print("| --- | --- | --- | --- |")
plain = FairRepresentationClassifier(preset="none", random_state=0).fit(d.X_train, y01, sensitive_features=d.s_train)
row("`preset='none'` (gamma 0)", plain.predict(d.X_test), f"{plain.certificate(d.X_test, yt01, sensitive_features=d.s_test)['dp_gap_bound']:.3f}")
default = FairRepresentationClassifier(draws=1).fit(d.X_train, y01, sensitive_features=d.s_train)
row("`FairRepresentationClassifier(draws=1)` (defaults, one code per row)", default.predict(d.X_test),
    f"{default.certificate(d.X_test, yt01, sensitive_features=d.s_test)['dp_gap_bound']:.3f}")
try:
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient
except ImportError:  # pragma: no cover
    raise SystemExit("fairlearn is needed")
eg = ExponentiatedGradient(
    FairRepresentationClassifier(sensitive_features="sex", preset="none", epochs=20, random_state=0),
    constraints=DemographicParity(difference_bound=0.02),
)
eg.fit(X, y01, sensitive_features=X["sex"])
row("`ExponentiatedGradient(FRC(preset='none'), DemographicParity(0.02))`", eg.predict(Xt, random_state=0),
    "- (a mixture of models)")
to = ThresholdOptimizer(
    estimator=FairRepresentationClassifier(sensitive_features="sex", preset="none", random_state=0),
    constraints="demographic_parity", prefit=False, predict_method="predict_proba",
)
to.fit(X, y01, sensitive_features=X["sex"])
row("`ThresholdOptimizer(FRC(preset='none'), prefit=False)`", to.predict(Xt, sensitive_features=Xt["sex"], random_state=0),
    "- (reads s at prediction)")
from sklearn.ensemble import BaggingClassifier  # noqa: E402

def numeric(frame, is_woman):
    """The numeric columns with the group as the last one (Bagging passes arrays: the group by position)."""
    return frame.select_dtypes("number").assign(sex=is_woman.astype(int))


bag = BaggingClassifier(FairRepresentationClassifier(sensitive_features=-1), n_estimators=5, random_state=0)
bag.fit(numeric(X, d.s_train.astype(str).to_numpy() == "Female"), y01)
row("`BaggingClassifier(FRC(), 5)` (numeric columns)", bag.predict(numeric(Xt, women)), "- (averages several models' codes)")

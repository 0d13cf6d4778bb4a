"""The cost of handing a numeric data frame to fairbits: `fit` with one epoch (its fixed cost: the columns
crossing to the core, the encoders and the inputs, then the shortest training) and `predict_proba` (the
columns crossing and the inputs, then one pass of the network), on a seeded 1,000,000-row pandas frame of
float and integer columns; with `--sparse`, the same for a scipy CSR matrix of the same values.

    python benchmarks/bench_input.py [--rows N] [--save before.json] [--compare before.json]

`--save` keeps this run's seconds; `--compare` prints them beside an earlier run's with the ratio
(earlier / now), e.g. the same script before and after a change to the package.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

import fairbits

warnings.filterwarnings("ignore", category=UserWarning)  # inference="prob" is uncertified: timed, not audited


def frame(n: int) -> tuple:
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.normal(size=n) * (i + 1) for i in range(6)}
    cols.update({f"i{i}": rng.integers(0, 100, size=n) for i in range(2)})
    X = pd.DataFrame(cols)
    s = rng.integers(0, 2, size=n)
    y = (X["f0"] + s + rng.normal(size=n) > 0.5).astype(int)
    return X, y, s


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--save")
    ap.add_argument("--compare")
    ap.add_argument("--sparse", action="store_true")
    a = ap.parse_args()
    X, y, s = frame(a.rows)
    est = fairbits.FairRepresentationClassifier(epochs=1, batch_size=4096, inference="prob", random_state=0)
    seconds = {}
    seconds["fit (1 epoch), pandas"] = timed(lambda: est.fit(X, y, sensitive_features=s))
    seconds["predict_proba, pandas"] = timed(lambda: est.predict_proba(X))
    if a.sparse:
        import scipy.sparse as sp

        M = sp.csr_matrix(X.to_numpy(dtype=np.float64))
        seconds["fit (1 epoch), CSR"] = timed(lambda: est.fit(M, y, sensitive_features=s))
        seconds["predict_proba, CSR"] = timed(lambda: est.predict_proba(M))
    if a.save:
        with open(a.save, "w") as f:
            json.dump(seconds, f)
    before = json.load(open(a.compare)) if a.compare else {}
    print(f"{a.rows} rows x {X.shape[1]} numeric columns")
    print(f"{'step':28} {'earlier s':>10} {'now s':>8} {'ratio':>6}")
    for k, v in seconds.items():
        b = before.get(k)
        print(f"{k:28} {b if b is not None else float('nan'):10.2f} {v:8.2f} {(b / v if b else float('nan')):6.2f}")


if __name__ == "__main__":
    main()

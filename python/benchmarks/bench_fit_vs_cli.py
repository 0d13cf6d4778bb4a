"""Issue 20's Python line: `fit` on a 1,000,000-row pandas frame and on the same polars frame against the
command line on the same rows as Parquet (`fairbits train --epochs 1`, default flags, the whole command),
and whether the pandas and polars fits predict the same.

    python benchmarks/bench_fit_vs_cli.py PARQUET --cli target/release/fairbits [--rows 1000000]

PARQUET is a file of `scripts/parquet_bench.sh` (examples/make_parquet: numeric features, `s`, `y` and a
text column `kind`, dropped); its first ROWS rows are written to a temporary Parquet file for the command
line and read into pandas and polars for Python. Both sides use their defaults with one epoch and seed 0.
Note what each side does beyond training: the command line also evaluates on its 30% test split; `fit`
trains on every row it is given and certifies on the rows it holds out by default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pyarrow.parquet as pq

import fairbits

warnings.filterwarnings("ignore", category=UserWarning)


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    table = pq.read_table(a.parquet).slice(0, a.rows).drop(["kind"])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.parquet")
        pq.write_table(table, path)
        cmd = [a.cli, "train", "--input", path, "--target", "y", "--sensitive", "s", "--epochs", "1", "--seed", "0",
               "--quiet", "--out", os.path.join(tmp, "model")]
        cli_s, _ = timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
    frame = table.to_pandas()
    X, y, s = frame.drop(columns=["y", "s"]), frame["y"], frame["s"]
    pd_s, est_pd = timed(lambda: fairbits.FairRepresentationClassifier(epochs=1, random_state=0).fit(
        X, y, sensitive_features=s))
    import polars as pl

    pf = pl.from_arrow(table)
    Xp = pf.drop(["y", "s"])
    pl_s, est_pl = timed(lambda: fairbits.FairRepresentationClassifier(epochs=1, random_state=0).fit(
        Xp, pf["y"], sensitive_features=pf["s"]))
    same = np.array_equal(est_pd.predict_proba(X.head(100_000)), est_pl.predict_proba(Xp.head(100_000)))
    print(f"{a.rows:,} rows x {X.shape[1]} features, one epoch, seed 0")
    print("| what | seconds | / command line |")
    print("| --- | --- | --- |")
    print(f"| `fairbits train` (whole command, Parquet) | {cli_s:.2f} | 1.00 |")
    print(f"| `fit`, pandas | {pd_s:.2f} | {pd_s / cli_s:.2f} |")
    print(f"| `fit`, polars | {pl_s:.2f} | {pl_s / cli_s:.2f} |")
    print(f"pandas and polars fits predict the same probabilities on 100,000 rows: {same}")


if __name__ == "__main__":
    main()

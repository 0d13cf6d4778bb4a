#!/usr/bin/env bash
# Issue 20's first acceptance line: a synthetic Parquet table (examples/make_parquet: 49 numeric features,
# a binary s and y, and a text column, dropped) trained with default flags for one epoch, against pyarrow
# reading the same file into a float32 matrix plus the run's own training time. Prints each, the ratio
# (whole command / (pyarrow + training); the target is <= 3) and peak resident memory.
# Usage: scripts/parquet_bench.sh [DIR (default /tmp/fairbits-parquet)] [ROWS (default 2000000)].
# Needs python3 with pyarrow and numpy (e.g. target/venv after scripts/test.sh). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet
dir=${1:-/tmp/fairbits-parquet}; n=${2:-2000000}
py=${PYTHON:-target/venv/bin/python}
mkdir -p "$dir"
file=$dir/rows-$n.parquet
[[ -s $file ]] || target/release/examples/make_parquet "$n" 49 "$file"
pyarrow_s=$("$py" - "$file" <<'PY'
import sys, time
import numpy as np, pyarrow.parquet as pq
t = time.perf_counter()
table = pq.read_table(sys.argv[1], columns=[c for c in pq.read_schema(sys.argv[1]).names if c != "kind"])
x = np.empty((table.num_rows, table.num_columns), dtype=np.float32)  # filled column by column: no extra copy
for j, c in enumerate(table.columns):
    x[:, j] = c.to_numpy()
print(f"{time.perf_counter() - t:.2f}")
PY
)
out=$dir/model; rm -rf "$out"
/usr/bin/time -f "%e %M" -o "$dir/time.txt" target/release/fairbits train --input "$file" --target y --sensitive s \
  --drop kind --epochs 1 --quiet --json --out "$out" > "$dir/metrics.json"
read -r wall rss < "$dir/time.txt"
"$py" - "$dir/metrics.json" "$n" "$pyarrow_s" "$wall" "$rss" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
n, p, w, rss = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
t = m["timing"]["train_seconds"]
print("| rows | pyarrow read s | training s | whole command s | ratio | peak RSS GB |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| {n:,} | {p:.2f} | {t:.2f} | {w:.2f} | {w / (p + t):.2f} | {rss / 1048576:.2f} |")
PY

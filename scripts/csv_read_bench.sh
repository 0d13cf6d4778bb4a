#!/usr/bin/env bash
# Issue 20's CSV line: the rows of scripts/parquet_bench.sh's file written as CSV, read and prepared by
# `fairbits train` (from the start of the command to its "data ready" log line: reading, typing, the
# missing-value rule, the split and the encoding into the f32 inputs) against pyarrow's CSV reader into a
# float32 matrix (the issue's reference), and the other readers a user could pick for the same work: polars'
# `read_csv` and the arrow crates' CSV reader (`examples/arrow_csv_read.rs`), each into a float32 matrix.
# Prints each one's seconds and its ratio to pyarrow (fairbits' target <= 1.5); the fairbits run is stopped
# once its data are ready. Usage: scripts/csv_read_bench.sh [DIR (default /tmp/fairbits-csvread)] [ROWS
# (2000000)]. Needs python3 with pyarrow, polars and numpy (e.g. target/venv after scripts/test.sh). Not part
# of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet --example arrow_csv_read
dir=${1:-/tmp/fairbits-csvread}; n=${2:-2000000}
py=${PYTHON:-target/venv/bin/python}
mkdir -p "$dir"
pq=$dir/rows-$n.parquet; csv=$dir/rows-$n.csv
[[ -s $pq ]] || target/release/examples/make_parquet "$n" 49 "$pq"
[[ -s $csv ]] || "$py" -c "import sys, pyarrow.parquet as pq, pyarrow.csv as pc; pc.write_csv(pq.read_table(sys.argv[1]), sys.argv[2])" "$pq" "$csv"
"$py" - "$csv" target/release/fairbits target/release/examples/arrow_csv_read <<'PY'
import subprocess, sys, tempfile, time
import numpy as np, polars as pl, pyarrow.csv as pc
csv, cli, arrow_rs = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
table = pc.read_csv(csv)
table = table.drop(["kind"])
x = np.empty((table.num_rows, table.num_columns), dtype=np.float32)
for j, c in enumerate(table.columns):
    x[:, j] = c.to_numpy()
pyarrow_s = time.perf_counter() - t
t = time.perf_counter()
xp = pl.read_csv(csv).drop("kind").select(pl.all().cast(pl.Float32)).to_numpy()
polars_s = time.perf_counter() - t
assert xp.shape == x.shape and xp.dtype == np.float32
arrow_s = float(subprocess.run([arrow_rs, csv, "kind"], check=True, capture_output=True, text=True).stdout)
t = time.perf_counter()
p = subprocess.Popen([cli, "train", "--input", csv, "--target", "y", "--sensitive", "s", "--drop", "kind",
                      "--epochs", "1", "--out", tempfile.mkdtemp() + "/model"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     env={"NO_COLOR": "1", "RUST_LOG": "fairbits=info", "PATH": "/usr/bin:/bin"}, text=True)
ready = None
for line in p.stderr:
    if "data ready" in line:
        ready = time.perf_counter() - t
        break
p.kill(); p.wait()
if ready is None:
    sys.exit("fairbits stopped before its data were ready (run it by hand to see why)")
print(f"{table.num_rows:,} rows, {x.shape[1]} columns into a float32 matrix (fairbits: read and prepared)")
print("| reader | seconds | / pyarrow |")
print("| --- | --- | --- |")
for name, s in [("pyarrow read_csv", pyarrow_s), ("polars read_csv", polars_s), ("arrow-csv (Rust)", arrow_s),
                ("fairbits train, data ready (target <= 1.5)", ready)]:
    print(f"| {name} | {s:.2f} | {s / pyarrow_s:.2f} |")
PY

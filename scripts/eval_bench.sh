#!/usr/bin/env bash
# Evaluation-speed benchmark (issue 20, item 4): a synthetic Parquet table (examples/make_parquet: 48 float
# features x0..x47, a binary group s carried by x0, a binary target y; its text column is dropped), trained
# for one epoch with the default model (m = 32 stochastic bits, so the joint MI and the population
# certificate are Monte-Carlo) and evaluated on the default 30% test split. One run per size; prints the
# training epoch's seconds (metrics.json's train_seconds), the evaluation's "information and certificate"
# step (joint MI, empirical and population certificate; from the evaluation's debug log) and their ratio.
# Usage: scripts/eval_bench.sh [DIR (default /tmp/fairbits-evalbench)] [ROWS... (default 2000000)].
# Not part of CI (a few minutes on 2 cores; the 2,000,000-row table is about 0.8 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet
dir=${1:-/tmp/fairbits-evalbench}; shift || true
sizes=("${@:-2000000}")
mkdir -p "$dir"
printf '| rows | test rows | training epoch s | information and certificate s | ratio |\n|---|---|---|---|---|\n'
for n in ${sizes[*]}; do
  file=$dir/rows-$n.parquet
  [[ -s $file ]] || target/release/examples/make_parquet "$n" 49 "$file"
  out=$dir/model-$n; rm -rf "$out"
  NO_COLOR=1 RUST_LOG=fairbits::eval=debug target/release/fairbits train --csv "$file" --target y --sensitive s \
    --drop kind --epochs 1 --quiet --out "$out" > "$dir/log-$n.txt" 2> "$dir/debug-$n.txt"
  # The step's seconds: from its start ("information and certificate") to the next step ("done").
  step_s=$(awk '/evaluation step/ { match($0, /seconds=[0-9.e+-]+/); s = substr($0, RSTART + 8, RLENGTH - 8)
                 if ($0 ~ /information and certificate/) a = s; if ($0 ~ /what="done"/) b = s }
                 END { printf "%.3f", b - a }' "$dir/debug-$n.txt")
  python3 - "$out/metrics.json" "$n" "$step_s" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t, e = m["timing"]["train_seconds"], float(sys.argv[3])
print(f"| {int(sys.argv[2]):,} | {m['n_test']:,} | {t:.2f} | {e:.2f} | {e / t:.2f} |")
PY
done

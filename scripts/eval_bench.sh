#!/usr/bin/env bash
# Evaluation-speed benchmark (issue 20, item 4): a synthetic Parquet table (examples/make_parquet: 48 float
# features x0..x47, a binary group s carried by x0, a binary target y; its text column is dropped), trained
# for one epoch with the default model (m = 32 stochastic bits, so the joint MI and the population
# certificate are Monte-Carlo) and evaluated on the default 30% test split. One run per size; prints the
# training epoch's seconds (metrics.json's train_seconds), the evaluation's information (joint MI, empirical
# certificate) and population certificate (from the evaluation's debug log), and the certificate's seconds
# over those of a training epoch of as many rows as the test split (issue 20's target: at most 1).
# Usage: scripts/eval_bench.sh [DIR (default /tmp/fairbits-evalbench)] [ROWS... (default 2000000)]; env FLAGS:
# more flags for train (e.g. FLAGS="--mc-samples 1000").
# Not part of CI (a few minutes on 2 cores; the 2,000,000-row table is about 0.8 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet
dir=${1:-/tmp/fairbits-evalbench}; shift || true
sizes=("${@:-2000000}")
mkdir -p "$dir"
printf '| rows | test rows | flags | training epoch s | information s | certificate s | certificate / epoch of the test rows |\n|---|---|---|---|---|---|---|\n'
for n in ${sizes[*]}; do
  file=$dir/rows-$n.parquet
  [[ -s $file ]] || target/release/examples/make_parquet "$n" 49 "$file"
  out=$dir/model-$n; rm -rf "$out"
  NO_COLOR=1 RUST_LOG=fairbits::eval=debug target/release/fairbits train --csv "$file" --target y --sensitive s \
    --drop kind --epochs 1 --quiet ${FLAGS:-} --out "$out" > "$dir/log-$n.txt" 2> "$dir/debug-$n.txt"
  # The step's parts: from its start ("information and certificate") to "information done" (the joint MI
  # and the empirical certificate), then to the next step ("done": the population certificate).
  steps=$(awk '/evaluation/ { match($0, /seconds=[0-9.e+-]+/); s = substr($0, RSTART + 8, RLENGTH - 8)
                 if ($0 ~ /information and certificate/) a = s; if ($0 ~ /information done/) b = s
                 if ($0 ~ /what="done"/) c = s }
                 END { printf "%.3f %.3f", b - a, c - b }' "$dir/debug-$n.txt")
  python3 - "$out/metrics.json" "$n" $steps "${FLAGS:-}" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t, info, cert = m["timing"]["train_seconds"], float(sys.argv[3]), float(sys.argv[4])
n, n_test = int(sys.argv[2]), m["n_test"]
# The training epoch was over the training rows; scaled to the test rows' count (an epoch is linear in rows).
epoch_of_test = t * n_test / m["n_train"]
print(f"| {n:,} | {n_test:,} | {sys.argv[5] or 'defaults'} | {t:.2f} | {info:.2f} | {cert:.2f} | {cert / epoch_of_test:.2f} |")
PY
done

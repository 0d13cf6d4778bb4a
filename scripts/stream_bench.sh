#!/usr/bin/env bash
# Streaming benchmark (the scale-out issue): synthetic Parquet tables of 10^5, 10^6 and 10^7 rows x 50
# feature columns, `train --stream --epochs 1` with the per-neuron penalty (--hidden 64,32) and with the
# joint penalty (--hidden 64,12), 1% test rows (evaluation is not what is measured). Prints wall time,
# peak resident memory (/usr/bin/time -v), training seconds and training rows per second.
# Usage: scripts/stream_bench.sh [DIR (default /tmp/fairbits-stream)] [SIZES...]. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet
dir=${1:-/tmp/fairbits-stream}; shift || true
sizes=("${@:-100000 1000000 10000000}")
mkdir -p "$dir"
printf '| rows | penalty | wall s | peak RSS GB | training s | training rows/s |\n|---|---|---|---|---|---|\n'
for n in ${sizes[*]}; do
  file=$dir/rows-$n.parquet
  [[ -s $file ]] || target/release/examples/make_parquet "$n" 50 "$file"
  for pen in per-neuron joint; do
    hidden=64,32; [[ $pen == joint ]] && hidden=64,12
    out=$dir/model-$n-$pen; rm -rf "$out"
    /usr/bin/time -v target/release/fairbits train --csv "$file" --target y --sensitive s --stream --epochs 1 \
      --test-size 0.01 --penalty "$pen" --hidden "$hidden" --gamma 1 --quiet --out "$out" \
      > "$dir/log-$n-$pen.txt" 2> "$dir/time-$n-$pen.txt"
    wall=$(grep "Elapsed (wall clock)" "$dir/time-$n-$pen.txt" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$dir/time-$n-$pen.txt" | awk '{printf "%.2f", $NF/1048576}')
    python3 - "$out/metrics.json" "$n" "$pen" "$wall" "$rss" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = m["timing"]["train_seconds"]
print(f"| {int(sys.argv[2]):,} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {t:.1f} | {m['n_train'] / t:,.0f} |")
PY
  done
done

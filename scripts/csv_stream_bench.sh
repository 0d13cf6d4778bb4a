#!/usr/bin/env bash
# CSV out of core: a synthetic table (examples/make_parquet, written again as CSV by pyarrow) trained for
# one epoch read whole and streamed (`--stream`), 1% test rows (evaluation is not what is measured). Prints
# wall time and peak resident memory (/usr/bin/time -v) of each, and checks that the two runs' metrics agree.
# Usage: scripts/csv_stream_bench.sh [DIR (default /tmp/fairbits-csvstream)] [ROWS (default 2000000)].
# Needs python3 with pyarrow (e.g. target/venv after scripts/test.sh). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin fairbits --example make_parquet
dir=${1:-/tmp/fairbits-csvstream}; n=${2:-2000000}
py=${PYTHON:-target/venv/bin/python}
mkdir -p "$dir"
[[ -s $dir/rows.parquet ]] || target/release/examples/make_parquet "$n" 50 "$dir/rows.parquet"
[[ -s $dir/rows.csv ]] || "$py" -c "import pyarrow.parquet as pq, pyarrow.csv as pc, sys; \
pc.write_csv(pq.read_table(sys.argv[1]), sys.argv[2])" "$dir/rows.parquet" "$dir/rows.csv"
printf '| %s-row CSV (%s) | wall s | peak RSS GB | training s |\n|---|---|---|---|\n' "$n" "$(du -h "$dir/rows.csv" | cut -f1)"
for mode in whole stream; do
  flag=(); [[ $mode == stream ]] && flag=(--stream)
  out=$dir/model-$mode; rm -rf "$out"
  /usr/bin/time -v target/release/fairbits train --input "$dir/rows.csv" --target y --sensitive s "${flag[@]}" \
    --epochs 1 --test-size 0.01 --quiet --out "$out" > "$dir/log-$mode.txt" 2> "$dir/time-$mode.txt"
  wall=$(grep "Elapsed (wall clock)" "$dir/time-$mode.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$dir/time-$mode.txt" | awk '{printf "%.2f", $NF/1048576}')
  t=$("$py" -c "import json,sys; print(round(json.load(open(sys.argv[1]))['timing']['train_seconds'], 2))" "$out/metrics.json")
  echo "| $mode | $wall | $rss | $t |"
done
"$py" - "$dir/model-whole/metrics.json" "$dir/model-stream/metrics.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for d in (a, b):
    d.pop("timing", None)
print("metrics identical:", a == b)
PY

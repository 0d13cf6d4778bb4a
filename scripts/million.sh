#!/usr/bin/env bash
# The trust issue's scale check: `train --epochs 1` with the default evaluation on a 1,000,000-row CSV made
# of the Adult rows repeated (31 copies minus the surplus), timed and with its peak memory (GNU time).
# Writes the CSV to ${TMPDIR:-/tmp} (about 110 MB). Not part of CI (about a minute on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
csv="${TMPDIR:-/tmp}/adult-1m.csv"
if [[ ! -s $csv ]]; then
  { head -1 data/adult.csv; for _ in $(seq 31); do tail -n +2 data/adult.csv; done; } | head -1000001 > "$csv"
fi
wc -l "$csv"
/usr/bin/time -v target/release/fairbits train --csv "$csv" --target income-per-year --sensitive sex \
  --epochs 1 --quiet "$@" 2>&1 | grep -E "Maximum resident|Elapsed|  rows|AUC|dp_gap|population|forest probe"

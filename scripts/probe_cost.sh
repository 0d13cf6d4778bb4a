#!/usr/bin/env bash
# What the evaluation's speed choices cost in accuracy of the probe numbers (the trust issue, item 6):
# trained Adult models (gamma 0 and 1 at m = 32, the invariant preset at m = 12; seeds 0, 1, 2) evaluated
# with the probes on every row over 10 draws (the earlier protocol) and with the defaults (at most 5,000
# rows, 2 draws), and each choice alone. Prints the mean absolute difference of each probe AUC from the
# full evaluation, and the evaluation's wall time. Not part of CI (about 10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/fairbits
work=${TMPDIR:-/tmp}/fairbits-probe-cost
mkdir -p "$work"
for cfg in "g0=--gamma 0" "g1=--gamma 1" "preset=--preset invariant"; do
  name=${cfg%%=*}; flags=${cfg#*=}
  for seed in 0 1 2; do
    [[ -d $work/$name-$seed ]] || "$bin" train --dataset adult $flags --seed "$seed" --out "$work/$name-$seed" --quiet > /dev/null
    for setting in "full=100000 10" "default=5000 2" "rows-only=5000 10" "draws-only=100000 2"; do
      s=${setting%%=*}; set -- ${setting#*=}
      f=$work/$name-$seed-$s.json
      if [[ ! -s $f ]]; then
        start=$(date +%s.%N)
        "$bin" eval --model "$work/$name-$seed" --probe-rows "$1" --probe-draws "$2" --json --quiet > "$f"
        echo "$(date +%s.%N) - $start" | bc > "$f.seconds"
      fi
    done
  done
done
python3 - "$work" <<'PY'
import json, statistics, sys
w = sys.argv[1]
keys = [("forest", "sample"), ("logreg", "sample"), ("forest", "prob"), ("logreg", "prob")]
print("| setting | probe rows (train / test) | probe draws | mean abs. diff. from full: forest codes | logistic codes | forest p | logistic p | eval s (mean) |")
print("|---|---|---|---|---|---|---|---|")
for s in ["full", "rows-only", "draws-only", "default"]:
    diffs = {k: [] for k in keys}
    secs = []
    rows = None
    for name in ["g0", "g1", "preset"]:
        for seed in range(3):
            a = json.load(open(f"{w}/{name}-{seed}-full.json"))
            b = json.load(open(f"{w}/{name}-{seed}-{s}.json"))
            secs.append(float(open(f"{w}/{name}-{seed}-{s}.json.seconds").read()))
            rows = (b["probes"]["rows_train"], b["probes"]["rows_test"], b["probes"]["draws"])
            for k in keys:
                diffs[k].append(abs(a["probes"][k[0]][k[1]] - b["probes"][k[0]][k[1]]))
    cells = " | ".join(f"{statistics.mean(diffs[k]):.4f} (max {max(diffs[k]):.4f})" for k in keys)
    print(f"| {s} | {rows[0]} / {rows[1]} | {rows[2]} | {cells} | {statistics.mean(secs):.1f} |")
PY

#!/usr/bin/env bash
# Peak memory of training on a CSV of 1,000,000 rows x 100 columns (98 numeric features, s, y), one epoch,
# light evaluation. Writes the CSV to ${TMPDIR:-/tmp} (about 0.9 GB) and prints GNU time's report.
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
csv="${TMPDIR:-/tmp}/fairbits-1m.csv"
if [[ ! -s $csv ]]; then
  python3 - "$csv" <<'PY'
import random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    f.write(",".join(f"x{j}" for j in range(98)) + ",s,y\n")
    for i in range(1_000_000):
        s = random.random() < 0.4
        xs = [random.gauss(0.5 * s, 1.0) for _ in range(98)]
        y = random.random() < (0.7 if xs[0] + xs[1] > 0 else 0.3)
        f.write(",".join(f"{v:.4f}" for v in xs) + f",{int(s)},{int(y)}\n")
PY
fi
ls -la "$csv"
/usr/bin/time -v target/release/fairbits train --csv "$csv" --target y --sensitive s --epochs 1 \
  --draws 1 --forest-trees 10 --mc-samples 200 --quiet 2>&1 | grep -E "Maximum resident|Elapsed|task AUC|rows "

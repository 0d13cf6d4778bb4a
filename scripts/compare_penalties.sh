#!/usr/bin/env bash
# Per-neuron vs joint penalties (issue "Real invariance"): Adult, COMPAS, German; seeds 0, 1, 2; several
# gammas and widths; sampled inference. Writes results/penalties/*.json and prints the comparison table.
# Not part of CI (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/fairbits
out=results/penalties
mkdir -p "$out"
configs=(
  "per-neuron-m32-g1:--hidden 64,32 --penalty per-neuron --gamma 1"
  "per-neuron-m32-g5:--hidden 64,32 --penalty per-neuron --gamma 5"
  "per-neuron-m12-g1:--hidden 64,12 --penalty per-neuron --gamma 1"
  "per-neuron-m12-g5:--hidden 64,12 --penalty per-neuron --gamma 5"
  "joint-m12-g1:--hidden 64,12 --penalty joint --gamma 1"
  "joint-m12-g5:--hidden 64,12 --penalty joint --gamma 5"
  "joint-m8-g5:--hidden 64,8 --penalty joint --gamma 5"
  "pairwise-m32-g5:--hidden 64,32 --penalty pairwise --gamma 5"
)
for dataset in ${DATASETS:-adult compas german}; do
  for cfg in "${configs[@]}"; do
    name=${cfg%%:*}
    flags=${cfg#*:}
    for seed in 0 1 2; do
      f="$out/$dataset-$name-seed$seed.json"
      [[ -s $f ]] && continue # resume: finished runs are kept
      # shellcheck disable=SC2086
      "$bin" train --dataset "$dataset" $flags --seed "$seed" --json --quiet > "$f.tmp" && mv "$f.tmp" "$f"
    done
  done
  echo "### $dataset"
  python3 scripts/summarize.py --penalties "$out/$dataset"-*.json
done

#!/usr/bin/env bash
# The foundation issue's acceptance runs: seeds 0, 1, 2, 50 epochs, defaults otherwise.
# Writes one metrics JSON per run under results/acceptance/ and prints the summary table.
# Not part of CI (about 5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/fairbits
out=results/acceptance
mkdir -p "$out"
run() { # name, then flags
  local name=$1; shift
  for seed in 0 1 2; do
    "$bin" train "$@" --seed "$seed" --json --quiet > "$out/$name-seed$seed.json"
  done
}
run adult-g0-threshold --dataset adult --gamma 0 --inference threshold
run adult-g1-threshold --dataset adult --gamma 1 --inference threshold
run compas-g0-threshold --dataset compas --gamma 0 --inference threshold
run german-g0-threshold --dataset german --gamma 0 --inference threshold
run adult-g0-sample --dataset adult --gamma 0
run adult-g1-sample --dataset adult --gamma 1
python3 scripts/summarize.py "$out"/*.json

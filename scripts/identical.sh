#!/usr/bin/env bash
# Byte-identical results check (the one-pipeline issue): trains the reference configurations with
# --reproducible and writes each run's metrics.json under OUT/; with --check REF, compares them byte for
# byte with a reference directory made the same way (e.g. by an earlier commit) and exits 1 on a difference.
#   scripts/identical.sh OUT                 # make a set
#   scripts/identical.sh OUT --check REF     # make a set and compare
# About two minutes on 2 cores. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
ref=${3:-}
cargo build --release --quiet
bin=$PWD/target/release/fairbits
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/law_like.py "$work/law.csv" 4000
run() { # name, then flags
  local name=$1; shift
  rm -rf "$work/$name"
  (cd "$work" && "$bin" train "$@" --reproducible --quiet --out "$work/$name" > /dev/null)
  cp "$work/$name/metrics.json" "$out/$name.json"
  echo "  $name"
}
run adult-g0 --dataset adult
run adult-g1 --dataset adult --gamma 1
run adult-invariant --dataset adult --preset invariant
run compas --dataset compas
run german --dataset german
run law-race --csv law.csv --target pass_bar --sensitive race --drop id --epochs 20
run biased-mnist --dataset biased-mnist --rho 0.99 --epochs 3
if [[ -n $ref ]]; then
  if diff -r "$ref" "$out"; then
    echo "identical: every metrics.json matches $ref byte for byte"
  else
    echo "DIFFERENT from $ref" >&2
    exit 1
  fi
fi

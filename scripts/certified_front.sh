#!/usr/bin/env bash
# The certified front on Adult (the population-certificate issue): for each configuration, seeds 0, 1, 2,
# sampled inference, 95% confidence; one metrics JSON per run under results/certified/, then a table
# (accuracy, AUC, the certified population DP bound, the plug-in TV, the certified EO bound).
# Usage: scripts/certified_front.sh [NAME=FLAGS ...]   (default: the configurations below). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/fairbits
out=results/certified
mkdir -p "$out"
configs=("$@")
if [[ ${#configs[@]} -eq 0 ]]; then
  configs=(
    "joint-g5=--preset invariant --gamma 5"
    "joint-g8=--preset invariant"
    "joint-g10=--preset invariant --gamma 10"
    "joint-g20=--preset invariant --gamma 20"
    "joint-m8-g10=--preset invariant --hidden 64,8 --gamma 10"
    "tv-g1=--preset invariant --penalty tv --gamma 1"
    "tv-g3=--preset invariant --penalty tv --gamma 3"
    "tv-g10=--preset invariant --penalty tv --gamma 10"
    "tv-bank-g3=--preset invariant --penalty tv@bank --gamma 3"
    "joint-bank-g10=--preset invariant --penalty joint@bank --gamma 10"
    "joint-g10-tau3=--preset invariant --gamma 10 --temperature 3"
  )
fi
jobs=()
for c in "${configs[@]}"; do
  name=${c%%=*}; flags=${c#*=}
  for seed in 0 1 2; do
    [[ -s $out/$name-seed$seed.json ]] || jobs+=("$bin train --dataset adult $flags --seed $seed --json --quiet > $out/$name-seed$seed.json")
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-2}" -I{} bash -c "{}"
python3 - "$out" "${configs[@]}" <<'PY'
import json, statistics, sys
out, configs = sys.argv[1], sys.argv[2:]
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print("| config | flags | accuracy | AUC | certified DP (95%) | plug-in TV | certified EO | train s |")
print("|---|---|---|---|---|---|---|---|")
for c in configs:
    name, flags = c.split("=", 1)
    runs = [json.load(open(f"{out}/{name}-seed{s}.json")) for s in (0, 1, 2)]
    pop = [r["certificate"]["population"] for r in runs]
    print(f"| {name} | `{flags}` | {ms([r['task']['accuracy'] for r in runs])} | {ms([r['task']['auc'] for r in runs])} | "
          f"{ms([p['dp_gap_bound'] for p in pop])} | {ms([p['tv_plugin'] for p in pop])} | {ms([p['eo_gap_bound'] for p in pop])} | "
          f"{ms([r['timing']['train_seconds'] for r in runs])} |")
PY

#!/usr/bin/env bash
# fairbits against the PyTorch reference, in one run on one machine (not part of CI).
# Needs a Python with PyTorch: PYTHON=/path/to/python bash bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
cargo build --release --quiet
torch_json=$("$py" bench/pytorch_reference.py --epochs 5 --models 18 --json)
echo "PyTorch: $torch_json"
target/release/fairbits bench --repeats 9 | tee /tmp/fairbits-bench.txt
"$py" - "$torch_json" <<'PY'
import json, re, sys
t = json.loads(sys.argv[1])
rows = {}
for line in open("/tmp/fairbits-bench.txt"):
    m = re.match(r"(.+?)\s+([0-9.]+) (\S+)$", line.strip())
    if m:
        rows[m.group(1).strip()] = float(m.group(2))
fused = rows["Adult epoch, per-neuron penalty, m = 32, fused"]
candle = rows["Adult epoch, per-neuron penalty, m = 32, candle"]
sweep = rows[[k for k in rows if k.startswith("sweep throughput, 18")][0]]
torch_sweep = t["seconds_18_models_5_epochs_in_sequence"] / (18 * 5)  # seconds per model-epoch
print(f"one Adult epoch: PyTorch {t['seconds_per_epoch']:.4f} s, fairbits fused {fused:.4f} s "
      f"({t['seconds_per_epoch'] / fused:.2f}x), candle {candle:.4f} s ({t['seconds_per_epoch'] / candle:.2f}x)")
print(f"18-model sweep: PyTorch in sequence {1 / torch_sweep:.2f} model-epochs/s, fairbits {sweep:.2f} "
      f"model-epochs/s ({sweep * torch_sweep:.2f}x)")
PY

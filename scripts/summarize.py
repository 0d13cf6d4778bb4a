#!/usr/bin/env python3
"""Summarise fairbits metrics JSON files: mean +- sample std over seeds, one row per configuration
(file name without its -seedN suffix). Standard library only."""
import json, re, statistics, sys
from collections import defaultdict

COLS = [("task", "auc"), ("task", "accuracy"), ("fairness", "dp_gap"), ("fairness", "eo_gap"),
        ("information", "mi_per_neuron_bits"), ("information", "mi_joint_bits"),
        ("probes", "logreg", "sample"), ("probes", "forest", "sample"), ("probes", "forest", "prob"),
        ("certificate", "probe_auc_bound"), ("timing", "train_seconds")]

groups = defaultdict(list)
for path in sys.argv[1:]:
    name = re.sub(r"-seed\d+\.json$", "", path.split("/")[-1])
    groups[name].append(json.load(open(path)))

def get(m, keys):
    for k in keys:
        m = m[k]
    return m

head = ["config", "n"] + [".".join(c[1:]) for c in COLS]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for name, runs in sorted(groups.items()):
    cells = [name, str(len(runs))]
    for c in COLS:
        v = [get(r, c) for r in runs]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        cells.append(f"{statistics.mean(v):.3f} ± {sd:.3f}")
    print("| " + " | ".join(cells) + " |")

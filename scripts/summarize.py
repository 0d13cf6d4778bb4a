#!/usr/bin/env python3
"""Summarise fairbits metrics JSON files: mean +- sample std over seeds, one row per configuration
(file name without its -seedN suffix). Standard library only.

usage: summarize.py [--penalties] FILE.json...
  default      task, fairness, information and probe columns (foundation acceptance)
  --penalties  the per-neuron vs joint comparison columns, with a check that every run's probes on
               sampled codes stay under the certified bound"""
import json, math, re, statistics, sys
from collections import defaultdict

DEFAULT = [("task", "auc"), ("task", "accuracy"), ("fairness", "dp_gap"), ("fairness", "eo_gap"),
           ("information", "mi_per_neuron_bits"), ("information", "mi_joint_bits"),
           ("probes", "logreg", "sample"), ("probes", "forest", "sample"), ("probes", "forest", "prob"),
           ("certificate", "probe_auc_bound"), ("timing", "train_seconds")]
PENALTIES = [("task", "auc"), ("fairness", "dp_gap"), ("probes", "logreg", "sample"), ("probes", "logreg", "prob"),
             ("probes", "forest", "sample"), ("probes", "forest", "prob"), ("information", "mi_per_neuron_bits"),
             ("information", "mi_joint_bits"), ("certificate", "dp_gap_bound"), ("certificate", "probe_auc_bound"),
             ("certificate", "probe_auc_exact")]

args = sys.argv[1:]
penalties = "--penalties" in args
files = [a for a in args if not a.startswith("--")]
cols = PENALTIES if penalties else DEFAULT

groups = defaultdict(list)
for path in files:
    name = re.sub(r"-seed\d+\.json$", "", path.split("/")[-1])
    groups[name].append(json.load(open(path)))

def get(m, keys):
    for k in keys:
        m = m[k]
    return m

def fmt(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"

head = ["config", "n"] + [".".join(c[1:]) for c in cols]
if penalties:
    head.append("probes <= bound")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for name, runs in sorted(groups.items()):
    cells = [name, str(len(runs))] + [fmt([get(r, c) for r in runs]) for c in cols]
    if penalties:
        # Up to sampling noise: two standard deviations of the probe over draws.
        ok = sum(all(r["probes"][p]["sample"] <= r["certificate"]["probe_auc_bound"] + 2 * r["probes"][p]["sample_std"]
                     for p in ("logreg", "forest")) for r in runs)
        cells.append(f"{ok}/{len(runs)}")
    print("| " + " | ".join(cells) + " |")

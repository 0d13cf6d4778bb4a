#!/usr/bin/env python3
"""Tables of scripts/floor.sh's results (results/floor/): mean +- std over the given seeds.
Usage: python3 scripts/floor_table.py results/floor 3 4 5"""
import glob
import json
import os
import statistics
import sys

out, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]] or [3, 4, 5]


def ms(v, d=3):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    return f"{statistics.mean(v):.{d}f} ± {statistics.stdev(v):.{d}f}" if len(v) > 1 else f"{v[0]:.{d}f}"


def load(name):
    runs = []
    for s in seeds:
        f = os.path.join(out, f"{name}-seed{s}.json")
        if os.path.exists(f) and os.path.getsize(f) > 0:
            d = f.replace(".json", ".decomposition.json")
            runs.append((json.load(open(f)), json.load(open(d)) if os.path.exists(d) else None))
    return runs


names = sorted({os.path.basename(f).rsplit("-seed", 1)[0] for f in glob.glob(os.path.join(out, "*-seed*.json"))
                if "decomposition" not in f})
print(f"Seeds {', '.join(map(str, seeds))}; 95% confidence; sampled codes; certified on the test split.\n")
print("| config | accuracy | AUC | certified DP | plug-in TV | Jensen bias (est.) | population TV (est.) | eps | "
      "certified EO | train s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    if n.startswith("search-"):
        continue
    runs = load(n)
    if not runs:
        continue
    pop = [r["certificate"]["population"] for r, _ in runs]
    dec = [d["dp"] for _, d in runs if d]
    print(f"| {n} | {ms([r['task']['accuracy'] for r, _ in runs], 4)} | {ms([r['task']['auc'] for r, _ in runs])} | "
          f"{ms([p['dp_gap_bound'] for p in pop], 4)} | {ms([p['tv_plugin'] for p in pop], 4)} | "
          f"{ms([d['jensen_bias'] for d in dec], 4)} | {ms([d['tv_true'] for d in dec], 4)} | "
          f"{ms([d['eps'] for d in dec], 4)} | {ms([p['eo_gap_bound'] for p in pop])} | "
          f"{ms([r['timing']['train_seconds'] for r, _ in runs], 2)} |")
print("\nEqualised odds, per label (the certified EO bound is the larger of the two labels' bounds):\n")
print("| config | accuracy | certified EO | label 0: plug-in, Jensen bias, eps | label 1: plug-in, Jensen bias, eps |")
print("| --- | --- | --- | --- | --- |")
for n in names:
    runs = [(r, d) for r, d in load(n) if d and not n.startswith("search-")]
    if not runs or "adult" not in n:
        continue
    cell = lambda y: ", ".join(ms([d["eo_by_label"][y][k] for _, d in runs], 4) for k in ("tv_plugin", "jensen_bias", "eps"))
    print(f"| {n} | {ms([r['task']['accuracy'] for r, _ in runs], 4)} | "
          f"{ms([r['certificate']['population']['eo_gap_bound'] for r, _ in runs], 4)} | {cell(0)} | {cell(1)} |")
print("\nThe constraint search (examples/constraint_search; candidates trained on 80% of the training split, "
      "selected on the other 20%, the chosen gamma refit on both, certified once on the test split):\n")
print("| request | met | accuracy (test) | certified bound | plug-in TV | Jensen bias (est.) | chosen gamma | "
      "search training s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    if not n.startswith("search-"):
        continue
    runs = [r for r, _ in load(n)]
    if not runs:
        continue
    met = sum(r["search"]["met"] for r in runs)
    chosen = [r["gammas"][r["search"]["chosen"]] for r in runs]
    print(f"| {n.replace('search-', '')} | {met} of {len(runs)} | "
          f"{ms([r['metrics']['task']['accuracy'] for r in runs], 4)} | {ms([r['search']['bound'] for r in runs], 4)} | "
          f"{ms([r['decomposition']['tv_plugin'] for r in runs], 4) if 'dp' in n else '-'} | "
          f"{ms([r['decomposition']['jensen_bias'] for r in runs], 4) if 'dp' in n else '-'} | "
          f"{', '.join(map(str, chosen))} | "
          f"{ms([r['search']['train_seconds'] for r in runs], 2)} |")

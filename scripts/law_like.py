#!/usr/bin/env python3
"""Writes a synthetic law-school-like CSV (deterministic): LSAT, undergraduate GPA, sex and race (five
groups) -> passed the bar. Used by scripts/identical.sh and the docs as the generic --csv case with a
multi-valued sensitive attribute. Usage: law_like.py OUT.csv [ROWS]"""
import math
import random
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
rng = random.Random(20261129)
races = ["White", "Black", "Hispanic", "Asian", "Other"]
weights = [0.70, 0.10, 0.08, 0.08, 0.04]
with open(out, "w") as f:
    f.write("id,lsat,ugpa,fulltime,fam_inc,sex,race,pass_bar\n")
    for i in range(n):
        r = rng.choices(races, weights)[0]
        shift = {"White": 0.4, "Asian": 0.3, "Other": 0.0, "Hispanic": -0.3, "Black": -0.6}[r]
        lsat = round(36 + 5 * (rng.gauss(0, 1) + shift), 1)
        ugpa = round(min(4.0, max(1.5, 3.2 + 0.4 * rng.gauss(0, 1) + 0.1 * shift)), 2)
        fulltime = rng.choice(["yes", "yes", "yes", "no"])
        fam_inc = rng.randint(1, 5)
        sex = rng.choice(["female", "male"])
        z = 0.35 * (lsat - 36) + 1.2 * (ugpa - 3.2) + (0.3 if fulltime == "yes" else -0.2) + 1.8
        y = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
        f.write(f"{i},{lsat},{ugpa},{fulltime},{fam_inc},{sex},{r},{y}\n")

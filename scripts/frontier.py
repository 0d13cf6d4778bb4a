#!/usr/bin/env python3
"""The attribute-blind frontier on the project's Adult split: the reference line of the certified front
(issue 19; docs/design.md, section 4c).

What it computes, on exactly the rows `fairbits train --dataset adult --seed SEED` tests on (the shipped
data/adult.csv, rows with a missing cell dropped, 30% test split stratified on (y, s) with the CLI's seeded
shuffle, re-implemented here: ChaCha8 seeded as rand_core's seed_from_u64 on stream 1, rand 0.9's
shuffle), with attribute-blind classifiers (sex is not an input; the other columns are the CLI's features,
numeric columns standardised and text columns one-hot, fitted on the training split):

- LogisticRegression and HistGradientBoosting, unconstrained;
- fairlearn's ExponentiatedGradient with DemographicParity(difference_bound=b) for a few b, and with
  EqualizedOdds(difference_bound=b): the randomised classifier's EXPECTED accuracy and gaps on the test
  rows (from its per-row probabilities, `_pmf_predict`), not one random draw;
- the plug-in fair-Bayes rule 1[2 eta(x) - 1 - lambda ((1 - q(x)) / P(male) - q(x) / P(female)) > 0], eta =
  P(y = 1 | x) and q = P(female | x) by gradient boosting, lambda chosen on cross-fitted (5-fold
  out-of-fold) training scores so that the training DP gap is a target (0 for the fair rule; larger targets
  trace the rule's front); the test rows choose nothing;
- the certificate floor of a 1-bit code: a stochastic bit that fires with the classifier's probability on
  each row has a between-group TV equal to the classifier's expected DP gap on the rows, so its population
  certificate (design section 4b) is that gap plus the McDiarmid term eps (the EO floor: the largest
  within-label gap plus that label's eps at delta / 2).

Run (scikit-learn and fairlearn installed by name, like the test tools):

    python3 -m venv /tmp/frontier-venv
    /tmp/frontier-venv/bin/pip install scikit-learn fairlearn pandas numpy
    /tmp/frontier-venv/bin/python scripts/frontier.py                   # seed 0, table to results/frontier/
    /tmp/frontier-venv/bin/python scripts/frontier.py --check-cli target/release/fairbits
                                                                       # also prove the split is the CLI's

`--check-cli BIN` trains a 1-epoch model with BIN and asks `fairbits certify --csv` which rows of the
reconstructed test split (and training split) the model recognises as its training rows: none of the
test rows (except exact duplicates of a training row) and all of the training rows, or the script fails.
Output: results/frontier/adult-seed{SEED}.md and .json. Takes about a minute on two cores.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

MISSING = {"", "?", "NA", "N/A", "NaN", "nan", "null", "NULL"}
MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF


# --- The CLI's random stream: ChaCha8Rng::seed_from_u64(seed) with set_stream(stream) -----------------


def _pcg32_seed(state):
    """rand_core 0.9's seed_from_u64: PCG32 outputs, little-endian, into the 32-byte key."""
    words = []
    for _ in range(8):
        state = (state * 6364136223846793005 + 11634580027462260723) & MASK64
        xorshifted = (((state >> 18) ^ state) >> 27) & MASK32
        rot = state >> 59
        words.append(((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & MASK32)
    return words


class ChaCha8:
    """rand_chacha 0.9's ChaCha8Rng: the ChaCha keystream (8 rounds), 64-bit block counter in words 12-13,
    the stream number in words 14-15, read one u32 at a time."""

    def __init__(self, seed, stream):
        self.key = _pcg32_seed(seed)
        self.stream = stream
        self.block = 0
        self.buf = []

    @staticmethod
    def _rotl(v, c):
        return ((v << c) & MASK32) | (v >> (32 - c))

    def _refill(self):
        c = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
        st = c + self.key + [self.block & MASK32, self.block >> 32, self.stream & MASK32, self.stream >> 32]
        x = list(st)
        rotl = self._rotl

        def qr(a, b, cc, d):
            x[a] = (x[a] + x[b]) & MASK32
            x[d] = rotl(x[d] ^ x[a], 16)
            x[cc] = (x[cc] + x[d]) & MASK32
            x[b] = rotl(x[b] ^ x[cc], 12)
            x[a] = (x[a] + x[b]) & MASK32
            x[d] = rotl(x[d] ^ x[a], 8)
            x[cc] = (x[cc] + x[d]) & MASK32
            x[b] = rotl(x[b] ^ x[cc], 7)

        for _ in range(4):
            qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
            qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
        self.buf = [(a + b) & MASK32 for a, b in zip(x, st)]
        self.block += 1

    def next_u32(self):
        if not self.buf:
            self._refill()
        return self.buf.pop(0)

    def below(self, bound):
        """rand 0.9's random_range(..bound) for u32 (biased Canon's method, the crate's default)."""
        hi, lo = divmod(self.next_u32() * bound, 1 << 32)
        if lo > ((-bound) & MASK32):
            new_hi = (self.next_u32() * bound) >> 32
            if lo + new_hi > MASK32:
                hi += 1
        return hi


def shuffle(items, rng):
    """rand 0.9's SliceRandom::shuffle: Fisher-Yates forwards, indices from IncreasingUniform (several
    indices from one draw)."""
    if len(items) <= 1:
        return
    n, chunk, remaining = 0, 0, 1  # IncreasingUniform::new(rng, 0): the first index is always 0
    for i in range(len(items)):
        next_n = n + 1
        if remaining == 0:
            product, current = next_n, next_n + 1
            while product * current <= MASK32:
                product *= current
                current += 1
            chunk = rng.below(product)
            remaining = current - next_n
        remaining -= 1
        if remaining == 0:
            j = chunk
        else:
            j, chunk = chunk % next_n, chunk // next_n
        n = next_n
        items[i], items[j] = items[j], items[i]


def rust_round(v):
    return int(math.floor(v + 0.5))


# --- Adult as the CLI reads it ---------------------------------------------------------------------------


def load_adult(path):
    with open(path, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    header, rows = rows[0], rows[1:]
    rows = [r for r in rows if not any(c in MISSING for c in r)]
    target, sensitive = header.index("income-per-year"), header.index("sex")
    y = np.array([r[target] == ">50K" for r in rows], dtype=np.int64)
    groups = sorted({r[sensitive] for r in rows})
    s = np.array([groups.index(r[sensitive]) for r in rows], dtype=np.int64)
    feats = [i for i in range(len(header)) if i not in (target, sensitive)]
    return header, rows, y, s, groups, feats


def split(y, s, n_groups, seed, test_size=0.3):
    """docs/design.md section 6 / src/data/split.rs: per (y, s) cell a seeded shuffle, round(n * test_size)
    rows to the test split."""
    rng = ChaCha8(seed, 1)
    cells = [[] for _ in range(2 * n_groups)]
    for i in range(len(y)):
        cells[y[i] * n_groups + s[i]].append(i)
    train, test = [], []
    for cell in cells:
        shuffle(cell, rng)
        k = rust_round(len(cell) * test_size)
        test += cell[:k]
        train += cell[k:]
    return np.array(sorted(train)), np.array(sorted(test))


def encode(rows, feats, train_idx):
    """Numeric columns (more than half the cells numbers) standardised, text columns one-hot, on the
    training split's statistics."""

    def num(c):
        try:
            v = float(c)
            return math.isfinite(v)
        except ValueError:
            return False

    cols = []
    for f in feats:
        cells = [r[f] for r in rows]
        if sum(num(c) for c in cells) * 2 > len(cells):
            v = np.array([float(c) for c in cells])
            mu, sd = v[train_idx].mean(), v[train_idx].std()
            cols.append(((v - mu) / (sd if sd > 0 else 1.0))[:, None])
        else:
            cats = sorted({cells[i] for i in train_idx})
            index = {c: k for k, c in enumerate(cats)}
            m = np.zeros((len(cells), len(cats)))
            for i, c in enumerate(cells):
                if c in index:
                    m[i, index[c]] = 1.0
            cols.append(m)
    return np.hstack(cols)


# --- The CLI check of the split --------------------------------------------------------------------------


def check_cli(binary, header, rows, train_idx, test_idx, seed):
    feats_key = lambda r: tuple(c for k, c in enumerate(r) if header[k] not in ("sex", "income-per-year"))
    train_keys = {feats_key(rows[i]) for i in train_idx}
    dup_test = sum(feats_key(rows[i]) in train_keys for i in test_idx)
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m")
        subprocess.run([binary, "-q", "train", "--dataset", "adult", "--seed", str(seed), "--epochs", "1",
                        "--out", model, "--json"], check=True, stdout=subprocess.DEVNULL)
        out = {}
        # The training file carries the test rows too (a file of training rows alone is refused).
        for name, idx in [("test", test_idx), ("train", np.concatenate([train_idx, test_idx]))]:
            path = os.path.join(d, f"{name}.csv")
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(rows[i] for i in idx)
            res = subprocess.run([binary, "-q", "certify", "--model", model, "--csv", path, "--target",
                                  "income-per-year", "--sensitive", "sex", "--json"],
                                 check=True, capture_output=True, text=True)
            out[name] = json.loads(res.stdout)["rows_removed_as_training"]
    out["train"] -= dup_test
    ok = out["test"] == dup_test and out["train"] == len(train_idx)
    print(f"CLI check: of the reconstructed test rows the model recognises {out['test']} as training rows "
          f"(exact feature duplicates of a training row: {dup_test}); of the training rows {out['train']} of "
          f"{len(train_idx)}: {'the split is the CLI split' if ok else 'MISMATCH'}", file=sys.stderr)
    if not ok:
        sys.exit(1)
    return {"test_rows_recognised": out["test"], "test_duplicates_of_training": dup_test,
            "train_rows_recognised": out["train"], "train_rows": int(len(train_idx))}


# --- The frontier ----------------------------------------------------------------------------------------


def mcdiarmid(delta, a, b):
    return math.sqrt(math.log(1 / delta) * (1 / a + 1 / b) / 2)


def gaps(p1, y, s):
    """Expected DP and EO gaps of a randomised classifier with P(yhat = 1 | row) = p1 (groups 0 and 1)."""
    dp = abs(p1[s == 0].mean() - p1[s == 1].mean())
    eo_each = [abs(p1[(s == 0) & (y == v)].mean() - p1[(s == 1) & (y == v)].mean()) for v in (0, 1)]
    return dp, eo_each


def row(name, p1, y, s, delta):
    acc = float(np.mean(np.where(y == 1, p1, 1 - p1)))
    dp, eo_each = gaps(p1, y, s)
    n = [int((s == g).sum()) for g in (0, 1)]
    eps = mcdiarmid(delta, *n)
    eo_floor = max(eo_each[v] + mcdiarmid(delta / 2, int(((s == 0) & (y == v)).sum()),
                                          int(((s == 1) & (y == v)).sum())) for v in (0, 1))
    return {"classifier": name, "accuracy": acc, "dp": dp, "eo": max(eo_each), "eps": eps,
            "dp_floor": dp + eps, "eo_floor": eo_floor}


def fair_bayes_lambda(eta, q, s, pf, pm, target=0.0):
    """lambda >= 0 with the rule's DP gap (female minus male selection rate, on the given rows) at -target..
    The rule's female-minus-male selection gap increases with lambda; bisection."""

    def gap(lam):
        d = (2 * eta - 1 - lam * ((1 - q) / pm - q / pf)) > 0
        return d[s == 0].mean() - d[s == 1].mean()

    lo, hi = 0.0, 1.0
    while gap(hi) < -target:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) < -target else (lo, mid)
    return hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "adult.csv"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "results", "frontier"))
    ap.add_argument("--check-cli", metavar="BIN", help="prove the split equals the CLI's with this binary")
    args = ap.parse_args()
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    delta = 1 - args.confidence
    header, rows, y, s, groups, feats = load_adult(args.data)
    train_idx, test_idx = split(y, s, len(groups), args.seed)
    n_test = [int((s[test_idx] == g).sum()) for g in (0, 1)]
    print(f"rows {len(rows)}, train {len(train_idx)}, test {len(test_idx)} ({groups[0]} {n_test[0]}, "
          f"{groups[1]} {n_test[1]})", file=sys.stderr)
    check = check_cli(args.check_cli, header, rows, train_idx, test_idx, args.seed) if args.check_cli else None
    x = encode(rows, feats, train_idx)
    xtr, ytr, strn, xte, yte, ste = x[train_idx], y[train_idx], s[train_idx], x[test_idx], y[test_idx], s[test_idx]
    lr = lambda: LogisticRegression(max_iter=2000)
    hgb = lambda: HistGradientBoostingClassifier(random_state=args.seed)
    out = []
    for name, make in [("LogisticRegression", lr), ("HistGradientBoosting", hgb)]:
        m = make().fit(xtr, ytr)
        out.append(row(f"{name}, unconstrained", m.predict(xte).astype(float), yte, ste, delta))
        print(out[-1], file=sys.stderr)
    for name, make in [("LR", lr), ("HGB", hgb)]:
        for b in (0.005, 0.01, 0.02):
            eg = ExponentiatedGradient(make(), DemographicParity(difference_bound=b))
            eg.fit(xtr, ytr, sensitive_features=strn)
            out.append(row(f"ExponentiatedGradient({name}, DemographicParity({b}))",
                           eg._pmf_predict(xte)[:, 1], yte, ste, delta))
            print(out[-1], file=sys.stderr)
    for name, make in [("LR", lr), ("HGB", hgb)]:
        for b in (0.01, 0.02):
            eg = ExponentiatedGradient(make(), EqualizedOdds(difference_bound=b))
            eg.fit(xtr, ytr, sensitive_features=strn)
            out.append(row(f"ExponentiatedGradient({name}, EqualizedOdds({b}))",
                           eg._pmf_predict(xte)[:, 1], yte, ste, delta))
            print(out[-1], file=sys.stderr)
    # The plug-in fair-Bayes rule: eta and q cross-fitted on the training rows choose lambda.
    pf, pm = (strn == 0).mean(), (strn == 1).mean()
    eta_oof, q_oof = np.zeros(len(ytr)), np.zeros(len(ytr))
    cell = ytr * 2 + strn
    for fit_idx, held in StratifiedKFold(5, shuffle=True, random_state=args.seed).split(xtr, cell):
        eta_oof[held] = hgb().fit(xtr[fit_idx], ytr[fit_idx]).predict_proba(xtr[held])[:, 1]
        q_oof[held] = hgb().fit(xtr[fit_idx], (strn[fit_idx] == 0)).predict_proba(xtr[held])[:, 1]
    eta = hgb().fit(xtr, ytr).predict_proba(xte)[:, 1]
    q = hgb().fit(xtr, strn == 0).predict_proba(xte)[:, 1]
    for target in (0.0, 0.02, 0.04, 0.08):
        lam = fair_bayes_lambda(eta_oof, q_oof, strn, pf, pm, target)
        d = ((2 * eta - 1 - lam * ((1 - q) / pm - q / pf)) > 0).astype(float)
        out.append(row(f"plug-in fair Bayes, training DP {target} (lambda {lam:.3f})", d, yte, ste, delta))
        print(out[-1], file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"adult-seed{args.seed}")
    meta = {"dataset": "adult", "sensitive": "sex", "seed": args.seed, "confidence": args.confidence,
            "n_train": int(len(train_idx)), "n_test_per_group": n_test, "cli_check": check,
            "command": " ".join(["python", "scripts/frontier.py"] + sys.argv[1:])}
    with open(base + ".json", "w") as f:
        json.dump({"meta": meta, "rows": out}, f, indent=1)
    lines = [
        f"Attribute-blind frontier, Adult (sex), seed {args.seed}: {len(test_idx)} test rows "
        f"({groups[0]} {n_test[0]}, {groups[1]} {n_test[1]}), {args.confidence:.0%} confidence, eps = "
        f"{out[0]['eps']:.4f}. Expected accuracy and gaps of each (randomised) classifier on the test rows; "
        "floors: the certificate of a 1-bit code that fires with the classifier's probability "
        "(`python scripts/frontier.py`).",
        "",
        "| classifier | accuracy | test DP | test EO | certificate floor DP (DP + eps) | certificate floor EO |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in out:
        lines.append(f"| {r['classifier']} | {r['accuracy']:.4f} | {r['dp']:.4f} | {r['eo']:.4f} | "
                     f"{r['dp_floor']:.4f} | {r['eo_floor']:.4f} |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

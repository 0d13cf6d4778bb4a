"""fairbits' Python estimator beside fairlearn's mitigators on Adult (the project's split), one run.

    python python/benchmarks/bench_fairlearn.py [--epochs 50] [--seed 0] [--cli target/release/fairbits]

Prints a markdown table: fit seconds, test AUC, accuracy, demographic-parity gap, and for the
representations the random-forest probe's AUC for sex on the sampled codes (0.5 = nothing recovered).
With --cli it also times `fairbits train` on the same run (its training seconds, from metrics.json),
the comparison the Python overhead is judged by. fairlearn's AdversarialFairnessClassifier needs torch;
without it that row says so. Not a test: numbers depend on the machine.
"""

import argparse
import sys
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fairbits import FairRepresentationClassifier
from fairbits.datasets import load_adult


def dp_gap(pred, s):
    rates = [pred[s == g].mean() for g in np.unique(s)]
    return max(rates) - min(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cli", default=None, help="the fairbits binary, to time `fairbits train` on the same runs")
    ap.add_argument("--skip-adversarial", action="store_true")
    ap.add_argument("--only-adversarial", action="store_true", help="just fairbits at gamma 1 and the adversarial rows")
    ap.add_argument("--repeats", type=int, default=3, help="fairbits fits (and CLI runs) per setting; the best counts")
    args = ap.parse_args()
    d = load_adult(seed=args.seed)
    y_tr, y_te = (d.y_train == ">50K").astype(int), (d.y_test == ">50K").astype(int)
    s_tr, s_te = np.asarray(d.s_train), np.asarray(d.s_test)
    rows = []

    def record(method, setting, seconds, proba, s_auc=None, note="", pred=None):
        """`proba`: a score for AUC (a probability where `pred` is not given)."""
        pred = (proba >= 0.5).astype(int) if pred is None else np.asarray(pred).astype(int)
        rows.append(
            dict(method=method, setting=setting, seconds=seconds, auc=roc_auc_score(y_te, proba),
                 accuracy=accuracy_score(y_te, pred), dp_gap=dp_gap(pred, s_te), s_auc=s_auc, note=note)
        )
        print(f"  {method}, {setting}: {seconds:.2f} s", file=sys.stderr, flush=True)

    # fairbits, in Python (and the CLI's training time for the same run).
    settings = [
        ("gamma 0", dict(gamma=0.0), ["--gamma", "0"]),
        ("gamma 1", dict(gamma=1.0), ["--gamma", "1"]),
        ("invariant preset, gamma 8", dict(preset="invariant", epochs=None), ["--preset", "invariant"]),
    ]
    for setting, kw, cli_flags in settings[1:2] if args.only_adversarial else settings:
        kw = {"epochs": args.epochs, **kw}
        # Python fit and the CLI's training, interleaved, best of --repeats (the machine is shared).
        fits, loops, cli_train, cli_wall = [], [], [], []
        for _ in range(args.repeats):
            clf = FairRepresentationClassifier(random_state=args.seed, **kw)
            t = time.perf_counter()
            clf.fit(d.X_train, d.y_train, sensitive_features=d.s_train)
            fits.append(time.perf_counter() - t)
            loops.append(clf.model_.train_seconds())
            if args.cli:
                with tempfile.TemporaryDirectory() as tmp:
                    epochs = [] if kw.get("epochs") is None else ["--epochs", str(kw["epochs"])]
                    t = time.perf_counter()
                    subprocess.run([args.cli, "train", "--dataset", "adult", "--seed", str(args.seed), "--quiet",
                                    "--out", tmp, *cli_flags, *epochs], check=True, capture_output=True)
                    cli_wall.append(time.perf_counter() - t)
                    cli_train.append(json.load(open(os.path.join(tmp, "metrics.json")))["timing"]["train_seconds"])
        seconds = min(fits)
        m = clf.evaluate(d.X_test, d.y_test, sensitive_features=d.s_test, probe_data=(d.X_train, d.y_train, d.s_train))
        note = f"Python's training loop {min(loops):.2f} s"
        if cli_train:
            note += (f"; CLI training {min(cli_train):.2f} s (whole train command with its evaluation "
                     f"{min(cli_wall):.2f} s); Python fit / CLI training {seconds / min(cli_train):.3f}")
        proba = clf.predict_proba(d.X_test)[:, 1]
        record("fairbits (Python)", setting, seconds, proba, m["probes"]["forest"]["sample"], note)

    # The same inputs for fairlearn: one-hot text columns, standardised numbers.
    text = d.categorical_features
    num = [c for c in d.feature_names if c not in text]
    enc = ColumnTransformer([("num", StandardScaler(), num), ("cat", OneHotEncoder(handle_unknown="ignore"), text)],
                            sparse_threshold=0.0)
    X_tr, X_te = enc.fit_transform(d.X_train).astype(np.float32), enc.transform(d.X_test).astype(np.float32)

    from fairlearn.reductions import DemographicParity, ExponentiatedGradient

    for eps in () if args.only_adversarial else (0.01, 0.05, 0.1):
        eg = ExponentiatedGradient(LogisticRegression(max_iter=1000), DemographicParity(difference_bound=eps))
        t = time.perf_counter()
        eg.fit(X_tr, y_tr, sensitive_features=s_tr)
        seconds = time.perf_counter() - t
        record("ExponentiatedGradient(LogReg, DP)", f"eps {eps}", seconds, eg._pmf_predict(X_te)[:, 1])

    if not args.skip_adversarial:
        try:
            import torch  # noqa: F401
            from fairlearn.adversarial import AdversarialFairnessClassifier
        except ImportError:
            rows.append(dict(method="AdversarialFairnessClassifier", setting="-", seconds=float("nan"),
                             auc=float("nan"), accuracy=float("nan"), dp_gap=float("nan"), s_auc=None,
                             note="torch is not installed"))
        else:
            for alpha in (0.0, 1.0):  # the raw sigmoid output gives the AUC (the class has no predict_proba)
                adv = AdversarialFairnessClassifier(backend="torch", predictor_model=[64, "leaky_relu", 32, "leaky_relu"],
                                                    adversary_model=[3, "leaky_relu"], alpha=alpha, epochs=args.epochs,
                                                    batch_size=256, shuffle=True, random_state=args.seed,
                                                    progress_updates=None)
                t = time.perf_counter()
                adv.fit(X_tr, y_tr, sensitive_features=s_tr)
                seconds = time.perf_counter() - t
                record("AdversarialFairnessClassifier (torch)", f"alpha {alpha}", seconds,
                       np.asarray(adv._raw_predict(X_te)).ravel(), pred=adv.predict(X_te))

    print(f"Adult (seed {args.seed}; {len(y_tr)} training, {len(y_te)} test rows), {args.epochs} epochs where it applies\n")
    print("| method | setting | fit s | AUC | accuracy | dp_gap | forest s-AUC on codes | note |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        s_auc = "-" if r["s_auc"] is None else f"{r['s_auc']:.3f}"
        print(f"| {r['method']} | {r['setting']} | {r['seconds']:.2f} | {r['auc']:.3f} | {r['accuracy']:.3f} | "
              f"{r['dp_gap']:.3f} | {s_auc} | {r['note']} |")
    fb = [r for r in rows if r["method"].startswith("fairbits") and r["setting"] == "gamma 1"]
    adv = [r for r in rows if r["method"].startswith("Adversarial") and np.isfinite(r["seconds"])]
    if fb and adv:
        print(f"\nAdversarialFairnessClassifier fit / fairbits fit (same epochs): "
              f"{min(a['seconds'] for a in adv) / fb[0]['seconds']:.1f}x")


if __name__ == "__main__":
    main()

//! Regression targets of tables (docs/design.md, section 5c), end to end through the command line:
//! `train --task regression` fits a linear head by squared error and reports RMSE, R^2, MAE and the gap in
//! mean prediction; `eval` on held-out rows reports the same numbers `predict` gives (checked by an
//! independent computation); the target is standardised on the training rows and predictions come back in
//! its units; a regression is never chosen without being asked for.

mod common;

use common::{fairbits, stderr, stdout, words};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// `n` rows whose price is `50 + 8 a - 5 b` plus noise (std 1), shifted by 3 in group `m`; `colour` is
/// noise.
fn write_prices(path: &Path, n: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from("a,b,colour,s,price\n");
    for _ in 0..n {
        let s = ["f", "m"][rng.random_range(0..2)];
        let a: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let b: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let noise: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        let price = 50.0 + 8.0 * a - 5.0 * b + if s == "m" { 3.0 } else { 0.0 } + noise;
        let colour = ["red", "blue"][rng.random_range(0..2)];
        out += &format!("{a:.4},{b:.4},{colour},{s},{price:.4}\n");
    }
    std::fs::write(path, out).unwrap();
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A CSV's column by name, as numbers.
fn column(path: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(j).unwrap().parse().unwrap()).collect()
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_regression_beats_the_mean_and_eval_agrees_with_predict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_prices(&d.join("prices.csv"), 1200, 1);
    write_prices(&d.join("held.csv"), 400, 2);
    // Threshold codes: deterministic, so eval's numbers and predict's column are of the same predictions.
    let train = "train --input prices.csv --target price --sensitive s --task regression --epochs 40 \
                 --inference threshold --reproducible --json --out m";
    let o = fairbits(d, &words(train));
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = json(&stdout(&o));
    // Classification metrics are not printed for a regression model; its own are.
    assert!(metrics.get("task").is_none() && metrics.get("fairness").is_none(), "{metrics}");
    let r = &metrics["regression"];
    let (rmse, r2, baseline) = (num(&r["rmse"]), num(&r["r2"]), num(&r["rmse_of_training_mean"]));
    // The target's std is about 5.8 and its noise 1: the mean predictor's RMSE is far above the model's.
    assert!(rmse < 0.6 * baseline, "rmse {rmse}, the training mean's {baseline}");
    assert!(r2 > 0.6, "r2 {r2}");
    assert!(num(&r["mae"]) <= rmse + 1e-12, "MAE <= RMSE");
    assert!(num(&r["mean_gap"]) >= 0.0);
    // The certificate is the codes', whatever reads them.
    assert!((0.0..=1.0).contains(&num(&metrics["certificate"]["population"]["dp_gap_bound"])));

    // The target's scale is saved, so predictions come back in its units.
    let config = json(&std::fs::read_to_string(d.join("m/config.json")).unwrap());
    let scale = &config["encoding"]["target"]["regression"];
    assert!((num(&scale["mean"]) - 51.5).abs() < 1.0 && (num(&scale["std"]) - 5.8).abs() < 1.0, "{scale}");
    assert_eq!(config["model"]["regression"], serde_json::json!(true));
    assert_eq!(config["data"]["source"]["task"], serde_json::json!("regression"));

    let o = fairbits(d, &words("predict --model m --input held.csv --inference threshold --output pred.csv"));
    assert!(o.status.success(), "{}", stderr(&o));
    let header = std::fs::read_to_string(d.join("pred.csv")).unwrap();
    assert_eq!(header.lines().next(), Some("row,prediction"));
    let pred = column(&d.join("pred.csv"), "prediction");
    let truth = column(&d.join("held.csv"), "price");
    let groups: Vec<String> = std::fs::read_to_string(d.join("held.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().to_string())
        .collect();
    assert_eq!(pred.len(), truth.len());
    // RMSE, R^2, MAE and the group-mean gap computed here, independently of the library.
    let n = truth.len() as f64;
    let sse: f64 = pred.iter().zip(&truth).map(|(p, t)| (p - t) * (p - t)).sum();
    let mean = truth.iter().sum::<f64>() / n;
    let sst: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    let mae = pred.iter().zip(&truth).map(|(p, t)| (p - t).abs()).sum::<f64>() / n;
    let group_mean = |g: &str| {
        let v: Vec<f64> = pred.iter().zip(&groups).filter(|(_, s)| *s == g).map(|(p, _)| *p).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let gap = (group_mean("m") - group_mean("f")).abs();
    let (rmse_here, r2_here) = ((sse / n).sqrt(), 1.0 - sse / sst);
    assert!(r2_here > 0.6, "held-out r2 {r2_here}");
    // A number has no decision threshold.
    let o = fairbits(d, &words("predict --model m --input held.csv --threshold 0.3 --output t.csv"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--threshold"), "{}", stderr(&o));

    let o = fairbits(
        d,
        &words("eval --model m --input held.csv --target price --sensitive s --inference threshold --json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let held = json(&stdout(&o));
    let r = &held["regression"];
    // predict writes single-precision numbers: agreement to their precision.
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{what}: {a} vs {b}");
    close(num(&r["rmse"]), rmse_here, "rmse");
    close(num(&r["r2"]), r2_here, "r2");
    close(num(&r["mae"]), mae, "mae");
    close(num(&r["mean_gap"]), gap, "mean gap");
}

#[test]
fn regression_is_asked_for_and_refused_where_it_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_prices(&d.join("prices.csv"), 300, 3);
    // A numeric target of many values is not silently regressed on: classification refuses it.
    let o = fairbits(d, &words("train --input prices.csv --target price --sensitive s --epochs 1 --out c"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("distinct value"), "{}", stderr(&o));
    // A target that is not a number is named with its line.
    let o = fairbits(d, &words("train --input prices.csv --target colour --sensitive s --task regression --out c"));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("line 2") && e.contains("not a finite number"), "{e}");
    // A positive value, the binary preset and a certified-bound search are a classifier's.
    for (extra, flag) in [
        ("--positive 3", "--positive"),
        ("--preset certified", "--preset"),
        ("--max-certified-dp 0.2", "--max-certified-dp"),
    ] {
        let line = format!(
            "train --input prices.csv --target price --sensitive s --task regression --epochs 1 {extra} --out c"
        );
        let o = fairbits(d, &words(&line));
        assert!(!o.status.success(), "{extra} was accepted");
        assert!(stderr(&o).contains(flag), "{extra}: {}", stderr(&o));
    }
    // A shipped dataset's target is fixed.
    let o = fairbits(d, &words("train --dataset german --task regression --epochs 1 --out c"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--task"), "{}", stderr(&o));
    // Any other value of --task is named.
    let o = fairbits(d, &words("train --input prices.csv --target price --sensitive s --task ranking --out c"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("classification, regression"), "{}", stderr(&o));
}

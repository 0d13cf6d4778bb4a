//! Tables whose target has three classes, end to end through the command line: `train` fits a softmax
//! head and reports the multi-class metrics, `eval` on held-out rows reads the model's classes, `predict`
//! writes one probability per class and the class value, and a binary model's output is unchanged.

mod common;

use common::{fairbits, stderr, stdout};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// `n` rows whose class (`cat`, `dog`, `emu`) is readable from `a`; `s` shifts `a` and `b`.
fn write_three(path: &Path, n: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from("a,b,colour,s,y\n");
    for _ in 0..n {
        let s = ["f", "m"][rng.random_range(0..2)];
        let c = rng.random_range(0..3usize);
        let shift = if s == "m" { 0.5 } else { 0.0 };
        let a = 1.5 * c as f64 + shift + 0.7 * (rng.random::<f64>() - 0.5) * 3.0;
        let b = rng.random::<f64>() + shift;
        let colour = ["red", "blue"][rng.random_range(0..2)];
        out += &format!("{a:.4},{b:.4},{colour},{s},{}\n", ["cat", "dog", "emu"][c]);
    }
    std::fs::write(path, out).unwrap();
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn three_classes_train_eval_predict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_three(&d.join("three.csv"), 900, 3);
    write_three(&d.join("held.csv"), 300, 4);
    let train = "train --input three.csv --target y --sensitive s --epochs 30 --reproducible --json --out m";
    let o = fairbits(d, &common::words(train));
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = json(&stdout(&o));
    assert_eq!(metrics["classes"], serde_json::json!(["cat", "dog", "emu"]));
    let acc = metrics["task"]["accuracy"].as_f64().unwrap();
    let majority = metrics["task"]["majority_accuracy"].as_f64().unwrap();
    // The classes are well separated by `a`: far better than the largest class alone.
    assert!(acc > majority + 0.2, "accuracy {acc}, majority {majority}");
    let per_class: Vec<f64> =
        metrics["fairness"]["dp_gap_per_class"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(per_class.len(), 3);
    let dp = metrics["fairness"]["dp_gap"].as_f64().unwrap();
    assert!(per_class.iter().all(|g| (0.0..=1.0).contains(g)));
    // The gap is the largest class's (both averaged over the same draws, up to rounding).
    let top = per_class.iter().copied().fold(f64::NAN, f64::max);
    assert!((dp - top).abs() <= 0.05, "dp_gap {dp}, per class {per_class:?}");
    // The certificate covers any classifier of the codes, a three-class one included.
    let bound = metrics["certificate"]["population"]["dp_gap_bound"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&bound));
    let config = std::fs::read_to_string(d.join("m/config.json")).unwrap();
    let config = json(&config);
    assert_eq!(config["encoding"]["target"]["classes"], serde_json::json!(["cat", "dog", "emu"]));
    assert!(config["encoding"]["target"].get("positive").is_none());
    assert_eq!(config["model"]["n_outputs"], 3);

    // Same seed, same numbers.
    let again = fairbits(d, &common::words(&train.replace("--out m", "--out m2")));
    assert_eq!(json(&stdout(&again))["task"], metrics["task"]);

    let o = fairbits(d, &common::words("eval --model m --input held.csv --target y --sensitive s --json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let held = json(&stdout(&o));
    assert_eq!(held["n_test"], 300);
    assert!(held["task"]["accuracy"].as_f64().unwrap() > 0.5);

    let o = fairbits(d, &common::words("predict --model m --input held.csv --output p.csv --draws 1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("p.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,p_cat,p_dog,p_emu,class"));
    let truth: Vec<String> = std::fs::read_to_string(d.join("held.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    let mut hits = 0;
    for (line, want) in lines.zip(&truth) {
        let cells: Vec<&str> = line.split(',').collect();
        let p: Vec<f64> = cells[1..4].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{line}");
        let best = (0..3).fold(0, |b, c| if p[c] > p[b] { c } else { b });
        assert_eq!(cells[4], ["cat", "dog", "emu"][best], "{line}");
        hits += (cells[4] == want) as usize;
    }
    assert!(hits as f64 / truth.len() as f64 > 0.5, "{hits} of {}", truth.len());

    // The mi report reads the codes, whatever the head.
    let o = fairbits(d, &common::words("mi --model m"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("p is not covered"), "{}", stdout(&o));

    // The certified preset is a one-bit code for a binary head: refused, naming the parameter.
    let o = fairbits(d, &common::words("train --input three.csv --target y --sensitive s --preset certified --out c"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the preset is for binary targets"), "{}", stderr(&o));

    // A held-out class the model does not know is an error naming it, not a guess.
    std::fs::write(d.join("odd.csv"), "a,b,colour,s,y\n1,0.5,red,f,cat\n2,0.5,red,m,dog\n3,0.1,blue,f,yak\n").unwrap();
    let o = fairbits(d, &common::words("eval --model m --input odd.csv --target y --sensitive s"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("'yak', not one of the classes (cat, dog, emu)"), "{}", stderr(&o));
}

#[test]
fn binary_predictions_keep_their_columns() {
    let (dir, _) = common::workdir();
    let d = dir.path();
    let o = fairbits(d, &common::words("train --input data.csv --target y --sensitive s --epochs 3 --out m"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = fairbits(d, &common::words("predict --model m --input data.csv --output p.csv"));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("p.csv")).unwrap();
    assert_eq!(text.lines().next(), Some("row,probability,decision"));
    let config = std::fs::read_to_string(d.join("m/config.json")).unwrap();
    assert!(!config.contains("\"classes\""), "a binary config gains no classes: {config}");
}

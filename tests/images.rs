//! The image path end to end (images issue): training on the shipped digits and on IDX files, the image
//! metrics, saving, encoding, reproducibility, sweeps and clear errors.

mod common;

use common::{fairbits, stderr, stdout};
use std::path::Path;

/// Writes the four MNIST-format files of a tiny synthetic dataset (`n` training, `n / 2` test images of
/// 12 x 12, the class drawn as a bar whose row is the class).
fn write_idx_dir(dir: &Path, n: usize) {
    let write = |name: &str, dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        std::fs::write(dir.join(name), b).unwrap();
    };
    for (prefix, count) in [("train", n), ("t10k", n / 2)] {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..count {
            let y = (i % 10) as u8;
            labels.push(y);
            for r in 0..12 {
                for _ in 0..12 {
                    pixels.push(if r == y as usize + 1 { 255 } else { 0 });
                }
            }
        }
        write(&format!("{prefix}-images-idx3-ubyte"), &[count as u32, 12, 12], &pixels);
        write(&format!("{prefix}-labels-idx1-ubyte"), &[count as u32], &labels);
    }
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn train_on_shipped_digits_saves_and_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--dataset",
        "biased-mnist",
        "--rho",
        "0.95",
        "--train-size",
        "300",
        "--epochs",
        "1",
        "--gamma",
        "5",
        "--penalty",
        "per-neuron:odds",
        "--out",
        "model",
        "--reproducible",
    ];
    let o = fairbits(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("accuracy (unbiased test)"));
    let m = metrics(&dir.path().join("model"));
    assert_eq!(m["run"]["penalty"], "per-neuron:odds");
    assert_eq!(m["run"]["estimate"], "bank");
    assert_eq!(m["run"]["n_train"], 300);
    assert_eq!(m["run"]["m"], 12);
    for key in ["accuracy_unbiased", "accuracy_biased"] {
        let v = m["task"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    let joint = m["information"]["joint_mi"].as_f64().unwrap();
    assert!((0.0..=10f64.log2() + 1e-9).contains(&joint), "joint MI {joint}");
    assert!(m["information"]["joint_mi_conditional"].as_f64().is_some());
    assert!(m["probes"]["forest"]["auc"].as_f64().is_some());
    assert!(m["run"]["train_seconds"].is_null());
    // The same command again: a byte-identical metrics.json.
    let first = std::fs::read(dir.path().join("model/metrics.json")).unwrap();
    let o = fairbits(dir.path(), &[&args[..], &["--force"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(first, std::fs::read(dir.path().join("model/metrics.json")).unwrap());
    // encode: one sampled code per unbiased test image, with label and colour.
    let o = fairbits(dir.path(), &["encode", "--model", "model", "--output", "codes.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("codes.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1000);
    assert!(lines[0].starts_with("row,label,colour,t0,"));
    assert_eq!(lines[1].split(',').count(), 3 + 12);
    assert!(lines[1..].iter().all(|l| l.split(',').skip(3).all(|v| v == "0" || v == "1")));
    let o = fairbits(dir.path(), &["encode", "--model", "model", "--input", "x.csv", "--output", "c.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn idx_directory_trains_and_the_colour_bias_is_learned() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_dir(dir.path(), 400);
    let o = fairbits(
        dir.path(),
        &[
            "train",
            "--dataset",
            "biased-fashion-mnist",
            "--mnist-dir",
            ".",
            "--rho",
            "1",
            "--kernel",
            "3",
            "--epochs",
            "8",
            "--batch-size",
            "32",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(m["run"]["dataset"], "biased-fashion-mnist");
    assert_eq!(m["run"]["off_colour_train"], 0);
    // With rho 1 colour alone solves the training set: the biased test is easy, and the colour is
    // decodable from the codes far above chance (0.1).
    let biased = m["task"]["accuracy_biased"].as_f64().unwrap();
    assert!(biased > 0.6, "biased accuracy {biased}");
    let probe = m["probes"]["logistic"]["accuracy"].as_f64().unwrap();
    assert!(probe > 0.3, "colour probe accuracy {probe}");
}

#[test]
fn missing_or_malformed_image_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = fairbits(dir.path(), &["train", "--dataset", "biased-fashion-mnist", "--mnist-dir", "nowhere"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("dataset-fashion-mnist"), "{}", stderr(&o));
    write_idx_dir(dir.path(), 40);
    let path = dir.path().join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let o = fairbits(dir.path(), &["train", "--dataset", "biased-mnist", "--mnist-dir", "."]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("t10k-images-idx3-ubyte"), "{}", stderr(&o));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["train", "--dataset", "biased-mnist", "--rho", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--rho"), "{}", stderr(&o));
}

#[test]
fn image_sweep_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_dir(dir.path(), 100);
    let args = [
        "sweep",
        "--dataset",
        "biased-mnist",
        "--mnist-dir",
        ".",
        "--kernel",
        "3",
        "--rho",
        "0.9",
        "--penalties",
        "per-neuron:odds,joint-conditional",
        "--gammas",
        "0,1",
        "--seeds",
        "0,1,2",
        "--epochs",
        "1",
        "--out",
        "sw",
    ];
    let o = fairbits(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let results = std::fs::read_to_string(dir.path().join("sw/results.csv")).unwrap();
    assert_eq!(results.lines().count(), 1 + 3 * 3);
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let unique: std::collections::BTreeSet<&str> = header.iter().copied().collect();
    assert_eq!(unique.len(), header.len(), "repeated column names in {header:?}");
    // A second call finds every run done and changes nothing.
    let run = dir.path().join("sw/runs/rho0.9_none_g0_s0.json");
    let before = std::fs::read(&run).unwrap();
    let o = fairbits(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(before, std::fs::read(&run).unwrap());
    assert!(dir.path().join("sw/unbiased_accuracy_rho0.9.svg").exists());
    let o = fairbits(dir.path(), &["report", "--from", "sw", "--out", "RESULTS.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.path().join("RESULTS.md")).unwrap();
    assert!(md.contains("## biased-mnist"), "{md}");
    assert!(md.contains("| joint:odds | 1 | 3 |"), "{md}");
    assert!(md.contains("target"), "{md}");
}

//! `fairbits predict`: probabilities and decisions for every input row of a saved model, tables and
//! images, and clear errors for bad input.

mod common;
use common::*;

fn train_table(dir: &std::path::Path) {
    let o = fairbits(
        dir,
        &words(concat!(
            "train --csv data.csv --target y --sensitive s --hidden 16,8 --epochs 3 --draws 1 ",
            "--forest-trees 5 --out model",
        ))[..],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn predict_writes_a_probability_and_a_decision_per_row_with_its_index() {
    let (dir, _) = workdir();
    train_table(dir.path());
    // Rows with a missing feature are skipped; the `row` column keeps the input's numbering.
    let text = std::fs::read_to_string(dir.path().join("data.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<&str> = lines[3].split(',').collect();
    cells[0] = "";
    lines[3] = cells.join(",");
    std::fs::write(dir.path().join("new.csv"), lines.join("\n") + "\n").unwrap();
    let args = ["predict", "--model", "model", "--input", "new.csv", "--output", "p.csv", "--threshold", "0.3"];
    let o = fairbits(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).is_empty() || stderr(&o).contains("skipped"), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let rows: Vec<Vec<String>> = out.lines().map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(rows[0], vec!["row", "probability", "decision"]);
    assert_eq!(rows.len(), 1 + 599, "one row dropped for its missing value");
    assert_eq!(rows[2][0], "1");
    assert_eq!(rows[3][0], "3", "input row 2 (0-based) was skipped");
    for r in &rows[1..] {
        let (p, d): (f64, u8) = (r[1].parse().unwrap(), r[2].parse().unwrap());
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(d, (p >= 0.3) as u8, "the decision applies --threshold");
    }
    // Sampled predictions are an average of draws: one draw gives probabilities of one code, and the
    // same seed gives the same file.
    let again = fairbits(dir.path(), &args);
    assert!(again.status.success());
    assert_eq!(out, std::fs::read_to_string(dir.path().join("p.csv")).unwrap());
    let o = fairbits(
        dir.path(),
        &["predict", "--model", "model", "--input", "new.csv", "--output", "p.npy", "--inference", "threshold"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let index = std::fs::read_to_string(dir.path().join("p.index.csv")).unwrap();
    assert!(index.starts_with("row,columns\n0,probability;decision\n"), "{index}");
}

#[test]
fn predict_refuses_missing_feature_columns_and_the_wrong_kind_of_input() {
    let (dir, _) = workdir();
    train_table(dir.path());
    let text = std::fs::read_to_string(dir.path().join("data.csv")).unwrap();
    let no_x2: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}\n", f[0], f[2..].join(","))
        })
        .collect();
    std::fs::write(dir.path().join("no_x2.csv"), no_x2).unwrap();
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--input", "no_x2.csv", "--output", "p.csv"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("no_x2.csv: column 'x2' not found"), "{}", stderr(&o));
    assert!(!dir.path().join("p.csv").exists(), "no output on failure");
    // A table model takes a CSV, not an image set or an array.
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--split", "train", "--output", "p.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a table model reads the rows of a table file"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--input", "data.csv", "--output", "p.txt"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["predict", "--model", "nowhere", "--input", "data.csv", "--output", "p.csv"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

#[test]
fn predict_on_an_image_model_gives_class_probabilities_for_its_sets_and_for_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let o = fairbits(
        dir.path(),
        &words(
            "train --dataset biased-mnist --rho 0.9 --train-size 200 --epochs 1 --draws 1 --forest-trees 5 --out model",
        )[..],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--split", "test-biased", "--output", "p.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1000);
    assert!(lines[0].starts_with("row,label,colour,p0,p1,"), "{}", lines[0]);
    assert!(lines[0].ends_with(",p9,class"));
    let cells: Vec<f64> = lines[1].split(',').skip(3).map(|v| v.parse().unwrap()).collect();
    let total: f64 = cells[..10].iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "class probabilities sum to 1: {total}");
    let best = (0..10).max_by(|&a, &b| cells[a].total_cmp(&cells[b])).unwrap();
    assert_eq!(cells[10] as usize, best);
    // Arrays N x 3 x 28 x 28 from Python: two grey images.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 28, 28), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    for _ in 0..2 * 3 * 28 * 28 {
        npy.extend_from_slice(&0.5f32.to_le_bytes());
    }
    std::fs::write(dir.path().join("x.npy"), &npy).unwrap();
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--input", "x.npy", "--output", "q.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.path().join("q.csv")).unwrap().lines().count(), 3);
    // An image model does not read a CSV; a truncated array is named.
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--input", "data.csv", "--output", "q.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    std::fs::write(dir.path().join("bad.npy"), &npy[..npy.len() - 3]).unwrap();
    let o = fairbits(dir.path(), &["predict", "--model", "model", "--input", "bad.npy", "--output", "q.csv"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.npy"), "{}", stderr(&o));
}

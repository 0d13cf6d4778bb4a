//! Shared helpers of the integration tests: a small synthetic dataset and a way to run the binary.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Writes `n` rows: `x1` carries `s`, `x2` and `colour` carry `y`, `noise` carries nothing.
/// Columns: x1, x2, noise, colour, s, y.
pub fn write_synthetic(path: &Path, n: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from("x1,x2,noise,colour,s,y\n");
    for _ in 0..n {
        let s = rng.random_bool(0.4) as u8;
        let x1 = s as f64 * 1.5 + normal(&mut rng);
        let x2 = normal(&mut rng);
        let colour = ["red", "green", "blue"][rng.random_range(0..3)];
        let logit = 2.0 * x2 + 0.8 * x1 + if colour == "red" { 1.0 } else { -0.5 };
        let y = (rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp())) as u8;
        out += &format!("{x1:.4},{x2:.4},{:.4},{colour},{s},{y}\n", normal(&mut rng));
    }
    std::fs::write(path, out).unwrap();
}

fn normal<R: Rng>(rng: &mut R) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A command line written as one string (no argument here holds a space), so that tests read as the
/// commands a user types.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs the `fairbits` binary in `dir` with `args`.
pub fn fairbits(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(dir)
        .args(args)
        .arg("--quiet")
        .output()
        .expect("the binary runs")
}

/// A fresh temporary directory with `data.csv` (600 synthetic rows).
pub fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    write_synthetic(&csv, 600, 7);
    (dir, csv)
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// AUC by counting pairs (ties half): an implementation independent of the library's.
pub fn pair_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..scores.len() {
        for j in 0..scores.len() {
            if labels[i] && !labels[j] {
                den += 1.0;
                num += if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    num / den
}

/// The data spec of a CSV with target `y` and sensitive `s`, 30% test rows, no validation.
pub fn csv_spec(path: &Path, seed: u64) -> fairbits::data::DataSpec {
    fairbits::data::DataSpec::Table(fairbits::data::TableSpec {
        source: fairbits::data::Source::Csv {
            path: path.to_path_buf(),
            target: "y".into(),
            sensitive: "s".into(),
            sensitive_bins: None,
            positive: None,
            categorical: vec![],
            drop: vec![],
            delimiter: None,
            task: Default::default(),
        },
        test_size: 0.3,
        val_size: 0.0,
        seed,
        include_sensitive: false,
        certify_size: 0.0,
        stream: false,
        missing: Default::default(),
    })
}

/// Writes `n` law-school-like rows (as `scripts/law_like.py`): LSAT, GPA, full-time, family income, sex,
/// race (five groups of unequal size) -> passed the bar.
pub fn write_law_like(path: &Path, n: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let races = [
        ("White", 0.70, 0.4),
        ("Black", 0.10, -0.6),
        ("Hispanic", 0.08, -0.3),
        ("Asian", 0.08, 0.3),
        ("Other", 0.04, 0.0),
    ];
    let mut out = String::from("lsat,ugpa,fulltime,fam_inc,sex,race,pass_bar\n");
    for _ in 0..n {
        let mut u: f64 = rng.random();
        let (race, _, shift) = *races
            .iter()
            .find(|r| {
                u -= r.1;
                u < 0.0
            })
            .unwrap_or(&races[4]);
        let lsat = 36.0 + 5.0 * (normal(&mut rng) + shift);
        let ugpa = (3.2 + 0.4 * normal(&mut rng) + 0.1 * shift).clamp(1.5, 4.0);
        let fulltime = if rng.random_bool(0.75) { "yes" } else { "no" };
        let z = 0.35 * (lsat - 36.0) + 1.2 * (ugpa - 3.2) + if fulltime == "yes" { 0.3 } else { -0.2 } + 1.8;
        let y = (rng.random::<f64>() < 1.0 / (1.0 + (-z).exp())) as u8;
        let sex = if rng.random_bool(0.5) { "female" } else { "male" };
        out += &format!("{lsat:.1},{ugpa:.2},{fulltime},{},{sex},{race},{y}\n", rng.random_range(1..6));
    }
    std::fs::write(path, out).unwrap();
}

/// The text between `<!-- TAG -->` and the next `<!-- /...-->` in `file`, checked against `want`, or
/// rewritten with it when `FAIRBITS_BLESS` is set (docs tables generated from the code they describe).
pub fn check_doc_block(file: &Path, tag: &str, want: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let open = format!("<!-- {tag} -->\n");
    let start = text.find(&open).unwrap_or_else(|| panic!("{}: no {open}", file.display())) + open.len();
    let end = start + text[start..].find("<!-- /").expect("a closing marker");
    if std::env::var_os("FAIRBITS_BLESS").is_some() {
        std::fs::write(file, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        want,
        "{}: the {tag} block differs from the code; run FAIRBITS_BLESS=1 cargo test --release --test NAME",
        file.display()
    );
}

/// Removes the weights' checksum from a model's `config.json` (as a hand-made or older config has none), so
/// that a test can reach the checks of the weights file itself.
pub fn forget_weights_checksum(model: &Path) {
    let path = model.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("weights_sha256");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

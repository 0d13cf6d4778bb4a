//! Regression tests of the trust issue: wrong numbers, hangs, aborts, and what a newcomer met. Each test is
//! named after what it guards.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = words(concat!(
        "train --csv data.csv --target y --sensitive s --hidden 16,8 --epochs 3 --draws 2 ",
        "--forest-trees 5 --mc-samples 100",
    ));
    args.extend_from_slice(extra);
    fairbits(dir, &args)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// Item 1 and 8: `eval` on held-out rows reads the target, sensitive and positive columns it is told (a
/// renamed target, another sensitive attribute) and evaluates every row; never the saved ones silently.
#[test]
fn eval_on_held_out_rows_honours_its_columns_and_uses_every_row() {
    let (dir, _) = workdir();
    assert!(train(dir.path(), &["--out", "model"]).status.success());
    let held = dir.path().join("held.csv");
    write_synthetic(&held, 300, 99);
    // Rename y to label and add a third column of groups.
    let text =
        std::fs::read_to_string(&held).unwrap().replacen("x1,x2,noise,colour,s,y", "x1,x2,noise,colour,s,label", 1);
    std::fs::write(&held, text).unwrap();
    let ev = |extra: &[&str]| {
        let mut a =
            vec!["eval", "--model", "model", "--csv", "held.csv", "--json", "--draws", "1", "--forest-trees", "5"];
        a.extend_from_slice(extra);
        fairbits(dir.path(), &a)
    };
    let o = ev(&["--target", "label", "--sensitive", "colour"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = json(&o);
    assert_eq!(m["sensitive"], "colour");
    assert_eq!(m["groups"], serde_json::json!(["blue", "green", "red"]));
    assert_eq!(m["n_test"], 300, "every held-out row is evaluated");
    let by_s = json(&ev(&["--target", "label", "--sensitive", "s"]));
    assert_eq!(by_s["groups"], serde_json::json!(["0", "1"]));
    assert_ne!(by_s["fairness"]["dp_gap"], m["fairness"]["dp_gap"], "another attribute, other gaps");
    // The positive value flips the task: the AUC of the same scores for the other class.
    let flipped = json(&ev(&["--target", "label", "--sensitive", "s", "--positive", "0"]));
    let (a, b) = (by_s["task"]["auc"].as_f64().unwrap(), flipped["task"]["auc"].as_f64().unwrap());
    assert!((a + b - 1.0).abs() < 0.05, "{a} vs {b}");
    // A target that is not binary is an error, not another column's numbers.
    let o = ev(&["--target", "x1", "--sensitive", "s"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("target column 'x1'"), "{}", stderr(&o));
    // Encoder-fitting flags do not apply to a saved model: refused, not ignored.
    let o = ev(&["--target", "label", "--sensitive", "s", "--categorical", "x1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Item 2: a model with NaN weights is refused when loaded (it hung `eval` and gave all-zero codes).
#[test]
fn a_model_with_nan_weights_is_refused_instead_of_hanging() {
    let (dir, _) = workdir();
    assert!(train(dir.path(), &["--out", "model"]).status.success());
    let path = dir.path().join("model/model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    let head = tensors["head.bias"].clone();
    tensors.insert(
        "head.bias".into(),
        candle_core::Tensor::full(f32::NAN, head.shape(), &candle_core::Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &path).unwrap();
    // The checksum would already refuse the edited file; without it the weights themselves are checked.
    common::forget_weights_checksum(&dir.path().join("model"));
    for cmd in
        [&["eval", "--model", "model"][..], &["encode", "--model", "model", "--input", "data.csv", "--output", "c.csv"]]
    {
        let o = fairbits(dir.path(), cmd);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(stderr(&o).contains("non-finite weight"), "{}", stderr(&o));
    }
    assert!(!dir.path().join("c.csv").exists());
}

/// Item 3: a configuration too big for the machine fails with a clear message (it aborted with a failed
/// 80 GB allocation) and leaves no directory behind.
#[test]
fn a_configuration_too_big_for_memory_fails_cleanly_and_leaves_no_directory() {
    let (dir, _) = workdir();
    let o = train(dir.path(), &["--hidden", "100000", "--out", "big"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid --hidden") && stderr(&o).contains("needs about"), "{}", stderr(&o));
    assert!(!dir.path().join("big").exists());
    // Any other failure after the directory was made removes it too.
    let o = train(dir.path(), &["--penalty", "joint", "--hidden", "8,24", "--out", "big"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("big").exists());
}

/// Item 4: two identical sweeps on one directory share the work: every run is trained once, both finish,
/// and no temporary or claim file is left.
#[test]
fn two_sweeps_in_one_directory_train_each_run_once() {
    let (dir, _) = workdir();
    let args = words(concat!(
        "sweep --csv data.csv --target y --sensitive s --gammas 0,1 --seeds 0,1,2 ",
        "--methods sqnn,mlp --epochs 20 --hidden 16,8 --draws 1 --forest-trees 5 ",
        "--mc-samples 50 --jobs 1 --out sw --quiet",
    ));
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_fairbits"))
            .current_dir(dir.path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", stderr(&a), stderr(&b));
    let total = 2 * 3 + 3;
    let trained = |o: &std::process::Output| {
        let text = stdout(o);
        let nums: Vec<usize> = text.split(|c: char| !c.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
        assert_eq!(nums[0], total, "{text}");
        nums[0] - nums[1] - nums[2]
    };
    assert_eq!(trained(&a) + trained(&b), total, "{}\n{}", stdout(&a), stdout(&b));
    for e in std::fs::read_dir(dir.path().join("sw/runs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(name.ends_with(".json") && !name.starts_with('.'), "left behind: {name}");
    }
}

/// Item 5: settings that would be silently ignored or never take effect are refused.
#[test]
fn ignored_or_unreachable_settings_are_refused() {
    let (dir, _) = workdir();
    let refused = |o: std::process::Output, needle: &str| {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "missing '{needle}' in {}", stderr(&o));
    };
    let csv = ["train", "--csv", "data.csv", "--target", "y", "--sensitive", "s"];
    refused(fairbits(dir.path(), &[&csv[..], &["--epochs", "0"]].concat()), "invalid --epochs = 0");
    let o = fairbits(
        dir.path(),
        &[&csv[..], &["--preset", "invariant", "--epochs", "5", "--warmup-epochs", "20"]].concat(),
    );
    refused(o, "invalid --warmup-epochs = 20");
    let sweep = ["sweep", "--csv", "data.csv", "--target", "y", "--sensitive", "s", "--out", "sw"];
    // A sweep has no --seed (its seeds are --seeds): clap says so and points at --seeds.
    refused(fairbits(dir.path(), &[&sweep[..], &["--seed", "5"]].concat()), "'--seeds'");
    refused(fairbits(dir.path(), &[&sweep[..], &["--epochs", "0"]].concat()), "invalid --epochs = 0");
    assert!(fairbits(dir.path(), &[&csv[..], &["--out", "model", "--epochs", "2"]].concat()).status.success());
    let o = fairbits(dir.path(), &["train", "--resume", "model", "--epochs", "20", "--gamma", "3"]);
    refused(o, "invalid --gamma = 3: a resumed run keeps every option");
}

/// Item 9: `encode` carries an ID column to CSV and NPY (through a companion index) and says how many
/// rows it skipped.
#[test]
fn encode_carries_an_id_column_and_says_how_many_rows_were_dropped() {
    let (dir, csv) = workdir();
    assert!(train(dir.path(), &["--out", "model"]).status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> =
        text.lines().enumerate().map(|(i, l)| if i == 0 { format!("id,{l}") } else { format!("u{i},{l}") }).collect();
    let cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    lines[2] = format!("{},,{}", cells[0], cells[2..].join(","));
    std::fs::write(dir.path().join("ids.csv"), lines.join("\n") + "\n").unwrap();
    for out in ["c.csv", "c.npy"] {
        let o =
            fairbits(dir.path(), &["encode", "--model", "model", "--input", "ids.csv", "--id", "id", "--output", out]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("1 row(s) had a missing value"), "{}", stderr(&o));
    }
    let codes = std::fs::read_to_string(dir.path().join("c.csv")).unwrap();
    assert!(codes.starts_with("row,id,t0,"), "{}", &codes[..40]);
    assert!(codes.lines().nth(1).unwrap().starts_with("0,u1,"));
    assert!(codes.lines().nth(2).unwrap().starts_with("2,u3,"), "the dropped row keeps the others' ids");
    let index = std::fs::read_to_string(dir.path().join("c.index.csv")).unwrap();
    assert_eq!(index.lines().count(), 600);
    assert!(index.lines().nth(2).unwrap().starts_with("2,u3,"));
}

/// Item 10: an ID-like numeric column and the target used as the sensitive attribute are warned about.
#[test]
fn an_id_like_column_and_the_target_as_sensitive_attribute_are_warned_about() {
    let (dir, csv) = workdir();
    let text = std::fs::read_to_string(&csv).unwrap();
    let with_id: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { format!("rowid,{l}\n") } else { format!("{},{l}\n", 1000 + 7 * i) })
        .collect();
    std::fs::write(dir.path().join("data.csv"), with_id).unwrap();
    let o = train(dir.path(), &[]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("column 'rowid' holds a distinct whole number in every row"), "{}", stderr(&o));
    assert!(stderr(&o).contains("drop the column if it is an ID"), "{}", stderr(&o));
    let o = fairbits(
        dir.path(),
        &["train", "--csv", "data.csv", "--target", "y", "--sensitive", "y", "--epochs", "1", "--drop", "rowid"],
    );
    assert!(stderr(&o).contains("the target column 'y' is also the sensitive attribute"), "{}", stderr(&o));
}

/// Item 11: a model saved with a relative CSV path is evaluated from another directory; a changed file is
/// warned about and a moved one named.
#[test]
fn a_model_finds_its_training_csv_from_any_directory_and_notices_changes() {
    let (dir, csv) = workdir();
    assert!(train(dir.path(), &["--out", "model"]).status.success());
    let elsewhere = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let eval = || {
        fairbits(elsewhere.path(), &["eval", "--model", model.to_str().unwrap(), "--draws", "1", "--forest-trees", "5"])
    };
    let o = eval();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("changed"));
    std::fs::write(&csv, std::fs::read_to_string(&csv).unwrap() + "0.1,0.2,0.3,red,1,0\n").unwrap();
    let o = eval();
    assert!(stderr(&o).contains("the file changed since the model was trained"), "{}", stderr(&o));
    std::fs::remove_file(&csv).unwrap();
    let o = eval();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("which is no longer there"), "{}", stderr(&o));
}

/// Item 12: `;`- and tab-separated files get a hint naming the flag, read with `--delimiter`, and `.csv.gz`
/// files read directly.
#[test]
fn other_separators_get_a_hint_and_gzip_files_read() {
    let (dir, csv) = workdir();
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(dir.path().join("semi.csv"), text.replace(',', ";")).unwrap();
    let base = ["train", "--target", "y", "--sensitive", "s", "--epochs", "1", "--draws", "1", "--forest-trees", "2"];
    let o = fairbits(dir.path(), &[&base[..], &["--csv", "semi.csv"]].concat());
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("semi.csv: line 1") && stderr(&o).contains("(read it with --delimiter ';')"),
        "{}",
        stderr(&o)
    );
    let o = fairbits(dir.path(), &[&base[..], &["--csv", "semi.csv", "--delimiter", ";"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.path().join("tab.csv"), text.replace(',', "\t")).unwrap();
    let o = fairbits(dir.path(), &[&base[..], &["--csv", "tab.csv"]].concat());
    assert!(stderr(&o).contains("tab-separated"), "{}", stderr(&o));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("data.csv.gz"), gz.finish().unwrap()).unwrap();
    let o = fairbits(dir.path(), &[&base[..], &["--csv", "data.csv.gz", "--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["n_train"].as_u64().unwrap() + json(&o)["n_test"].as_u64().unwrap(), 600);
}

/// Item 13: no colour codes off a terminal; exit codes as documented; `null` reads `n/a` in the table;
/// model files readable like their siblings; `--help` has examples and no rustdoc link syntax.
#[test]
fn small_things_a_newcomer_met() {
    let (dir, _) = workdir();
    let o = train(dir.path(), &["--full-precision", "--out", "fp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\u{1b}'), "ANSI codes in piped logs");
    assert!(stdout(&o).contains("n/a") && !stdout(&o).contains("NaN"), "{}", stdout(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| std::fs::metadata(dir.path().join("fp").join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("model.safetensors"), mode("config.json"));
    let o = fairbits(dir.path(), &["train", "--csv", "data.csv"]);
    assert_eq!(o.status.code(), Some(2), "--csv without --target: {}", stderr(&o));
    std::fs::write(dir.path().join("empty_rows.csv"), "x1,x2,noise,colour\n,,,\n").unwrap();
    let o = fairbits(dir.path(), &["encode", "--model", "fp", "--input", "empty_rows.csv", "--output", "e.csv"]);
    assert_eq!(o.status.code(), Some(3), "encode with no usable rows: {}", stderr(&o));
    let help = stdout(&fairbits(dir.path(), &["--help"]));
    assert!(help.contains("Examples:"), "{help}");
    for sub in ["train", "eval", "predict", "sweep"] {
        let h = stdout(&fairbits(dir.path(), &[sub, "--help"]));
        assert!(!h.contains("[`"), "rustdoc link syntax in `{sub} --help`");
    }
}

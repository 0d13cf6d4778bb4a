//! Bad input, crash safety and reproducibility (docs/reliability.md lists every case and points here).
//! Each bad input must give a message naming the file, row, column or value, a documented non-zero exit
//! code, and leave no output behind.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Trains on `file` (written with `content`) with `--out never`; returns (exit code, stderr).
fn train_on(content: &[u8], extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), content).unwrap();
    let mut args = vec![
        "train",
        "--csv",
        "in.csv",
        "--target",
        "y",
        "--sensitive",
        "s",
        "--epochs",
        "2",
        "--hidden",
        "8,4",
        "--draws",
        "1",
        "--forest-trees",
        "5",
        "--mc-samples",
        "50",
        "--out",
        "never",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = fairbits(dir.path(), &args);
    if !o.status.success() {
        assert!(!dir.path().join("never").exists(), "a failed run left its output directory");
    }
    (o.status.code(), stderr(&o), stdout(&o))
}

/// `n` good rows `a,colour,s,y` for building cases.
fn rows(n: usize) -> String {
    (0..n).map(|i| format!("{}.5,{},{},{}\n", i % 7, ["red", "blue"][i % 2], (i / 2) % 2, (i / 3) % 2)).collect()
}

fn good(extra_rows: &str) -> Vec<u8> {
    format!("a,colour,s,y\n{}{extra_rows}", rows(40)).into_bytes()
}

fn assert_fails(case: (Option<i32>, String, String), code: i32, needles: &[&str]) {
    assert_eq!(case.0, Some(code), "exit code; stderr: {}", case.1);
    for n in needles {
        assert!(case.1.contains(n), "missing '{n}' in: {}", case.1);
    }
}

#[test]
fn empty_file() {
    assert_fails(train_on(b"", &[]), 3, &["in.csv: the file is empty"]);
}

#[test]
fn header_only() {
    assert_fails(train_on(b"a,colour,s,y\n", &[]), 3, &["in.csv: no data rows"]);
}

#[test]
fn ragged_rows() {
    assert_fails(
        train_on(&good("1.0,red,1\n"), &[]),
        3,
        &["in.csv: line 42: the row has 3 fields but the header has 4"],
    );
}

#[test]
fn non_utf8_bytes() {
    let mut bytes = good("");
    bytes.extend_from_slice(b"2.0,r\xffd,1,0\n");
    assert_fails(train_on(&bytes, &[]), 3, &["in.csv: line 42: field 2 is not valid UTF-8"]);
}

#[test]
fn byte_order_mark_is_accepted() {
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(good(""));
    let (code, err, out) = train_on(&bytes, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"n_dropped\": 0"));
}

#[test]
fn quoted_fields_with_commas_and_newlines() {
    // A category holding a comma and a newline is one value; line numbers after it stay right.
    let text = format!("a,colour,s,y\n{}\"1,5\",\"dark\nred\",1,0\n", rows(40));
    let (code, err, _) = train_on(text.as_bytes(), &[]);
    // "1,5" is text in the numeric column a, on line 42 (the record spans lines 42-43).
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("in.csv: line 42, column 'a': '1,5' is not a number"), "{err}");
    let text = format!("a,colour,s,y\n{}1.5,\"dark,\nred\",1,0\nx,red,0,1\n", rows(40));
    let (code, err, _) = train_on(text.as_bytes(), &[]);
    assert_eq!(code, Some(3));
    assert!(err.contains("line 44, column 'a': 'x'"), "{err}");
    let text = format!("a,colour,s,y\n{}1.5,\"dark,\nred\",1,0\n", rows(40));
    assert_eq!(train_on(text.as_bytes(), &[]).0, Some(0));
}

#[test]
fn nan_and_empty_cells_are_dropped_and_counted_inf_is_an_error() {
    let (code, err, out) = train_on(&good("NaN,red,1,0\n,blue,0,1\n"), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"n_dropped\": 2"), "{out}");
    assert_fails(train_on(&good("inf,red,1,0\n"), &[]), 3, &["in.csv: line 42, column 'a': value 'inf' is not finite"]);
}

/// Found by the fuzzer: a value finite as f64 but beyond f32's range once standardised became `inf`.
#[test]
fn regression_value_out_of_f32_range_after_standardisation() {
    let (code, err, _) = train_on(&good("77777777777777777777777777777777777777773,red,1,0\n"), &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("in.csv: line 42, column 'a': value '77777777777777777777777777777777777777773' is out of range"),
        "{err}"
    );
}

#[test]
fn numeric_column_with_text() {
    assert_fails(train_on(&good("abc,red,1,0\n"), &[]), 3, &["in.csv: line 42, column 'a': 'abc' is not a number"]);
}

#[test]
fn duplicate_column_names() {
    let text = format!("a,a,s,y\n{}", "1,2,0,1\n".repeat(5));
    assert_fails(train_on(text.as_bytes(), &[]), 3, &["in.csv: duplicate column name 'a'"]);
}

#[test]
fn target_or_sensitive_naming_a_missing_column() {
    // Given twice, the last value counts (here one that names no column).
    assert_fails(train_on(&good(""), &["--target", "nope"]), 3, &["column 'nope' not found"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), good("")).unwrap();
    let o = fairbits(dir.path(), &["train", "--csv", "in.csv", "--target", "nope", "--sensitive", "s"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("in.csv: column 'nope' not found; the columns are: a, colour, s, y"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["train", "--csv", "in.csv", "--target", "y", "--sensitive", "sex"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("column 'sex' not found"), "{}", stderr(&o));
}

#[test]
fn target_with_one_value_is_refused_and_three_values_are_three_classes() {
    let one = format!("a,colour,s,y\n{}", "1,red,0,1\n1,red,1,1\n".repeat(5));
    assert_fails(train_on(one.as_bytes(), &[]), 3, &["in.csv: target column 'y' has 1 distinct value(s) ('1')"]);
    // A third value is a third class (tests/multiclass.rs), not an error.
    let (code, err, _) = train_on(&good(&"1,red,0,7\n2.5,blue,1,7\n".repeat(10)), &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn sensitive_attribute_with_one_group() {
    let text = format!("a,colour,s,y\n{}", "1,red,0,1\n2,red,0,0\n".repeat(5));
    assert_fails(train_on(text.as_bytes(), &[]), 3, &["in.csv: sensitive column 's' has a single group ('0')"]);
}

#[test]
fn group_with_fewer_than_two_rows_in_a_split() {
    assert_fails(train_on(&good("1,red,9,1\n"), &[]), 3, &["in.csv: group '9' of sensitive column 's' has", "split"]);
}

/// Trains a small model in `dir` on `data.csv` (600 synthetic rows), saved in `dir/model`.
fn trained(dir: &Path) {
    let o = fairbits(
        dir,
        &[
            "train",
            "--csv",
            "data.csv",
            "--target",
            "y",
            "--sensitive",
            "s",
            "--epochs",
            "3",
            "--hidden",
            "8,4",
            "--draws",
            "1",
            "--forest-trees",
            "5",
            "--out",
            "model",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn unseen_categories_at_encode_time_encode_as_zeros_with_a_warning() {
    let (dir, _) = workdir();
    trained(dir.path());
    let text = std::fs::read_to_string(dir.path().join("data.csv")).unwrap().replacen(",red,", ",purple,", 1);
    std::fs::write(dir.path().join("new.csv"), text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(dir.path())
        .args(["encode", "--model", "model", "--input", "new.csv", "--output", "c.csv"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The warning names the column, the value and its line (trust issue, item 13).
    let expected = "new.csv: column 'colour': 1 cell(s) hold categories not seen in training (first: 'purple' on line";
    assert!(stderr(&o).contains(expected), "{}", stderr(&o));
}

#[test]
fn encode_input_with_columns_missing_extra_or_reordered() {
    let (dir, _) = workdir();
    trained(dir.path());
    let encode = |input: &str, output: &str| {
        fairbits(
            dir.path(),
            &["encode", "--model", "model", "--input", input, "--output", output, "--inference", "prob"],
        )
    };
    let original = std::fs::read_to_string(dir.path().join("data.csv")).unwrap();
    // Reordered columns and an extra one: same codes.
    let mut reordered = String::new();
    for line in original.lines() {
        let f: Vec<&str> = line.split(',').collect();
        reordered += &format!(
            "{},{},{},{},{},{},{}\n",
            f[5],
            f[3],
            if f[0] == "x1" { "extra" } else { "0" },
            f[2],
            f[1],
            f[0],
            f[4]
        );
    }
    std::fs::write(dir.path().join("reordered.csv"), reordered).unwrap();
    assert!(encode("data.csv", "a.csv").status.success());
    assert!(encode("reordered.csv", "b.csv").status.success());
    assert_eq!(std::fs::read(dir.path().join("a.csv")).unwrap(), std::fs::read(dir.path().join("b.csv")).unwrap());
    // A missing feature column: an error naming it, and no output file.
    let missing: String = original.lines().map(|l| l.split(',').skip(1).collect::<Vec<_>>().join(",") + "\n").collect();
    std::fs::write(dir.path().join("missing.csv"), missing).unwrap();
    let o = encode("missing.csv", "m.csv");
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("missing.csv: column 'x1' not found"), "{}", stderr(&o));
    assert!(!dir.path().join("m.csv").exists());
}

#[test]
fn model_directory_missing_files_corrupt_or_from_another_version() {
    let (dir, _) = workdir();
    trained(dir.path());
    let eval = || fairbits(dir.path(), &["eval", "--model", "model"]);
    let cfg = dir.path().join("model/config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("\"format_version\": 2", "\"format_version\": 999")).unwrap();
    let o = eval();
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("config.json has format_version Some(999)"), "{}", stderr(&o));
    std::fs::write(&cfg, "{ not json").unwrap();
    assert_eq!(eval().status.code(), Some(4));
    std::fs::remove_file(&cfg).unwrap();
    let o = eval();
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("cannot read config.json"), "{}", stderr(&o));
    std::fs::write(&cfg, text).unwrap();
    std::fs::remove_file(dir.path().join("model/model.safetensors")).unwrap();
    let o = eval();
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("model.safetensors is missing"), "{}", stderr(&o));
}

#[test]
fn flags_out_of_range() {
    let data = good("");
    assert_fails(train_on(&data, &["--gamma=-1"]), 2, &["invalid --gamma = -1: must be a finite number >= 0"]);
    assert_fails(train_on(&data, &["--temperature", "0"]), 2, &["invalid --temperature = 0: must be > 0"]);
    assert_fails(train_on(&data, &["--hidden", ""]), 2, &["--hidden"]);
    assert_fails(train_on(&data, &["--test-size", "1.5"]), 2, &["invalid --test-size = 1.5"]);
    assert_fails(train_on(&data, &["--lr", "0"]), 2, &["invalid --lr = 0: must be a finite number > 0"]);
    assert_fails(train_on(&data, &["--batch-size", "0"]), 2, &["invalid --batch-size = 0"]);
    assert_fails(train_on(&data, &["--stochastic", "5"]), 2, &["invalid --stochastic"]);
}

#[test]
fn same_data_seed_and_threads_give_a_byte_identical_metrics_json() {
    let (dir, _) = workdir();
    let run = |out: &str| {
        let o = fairbits(
            dir.path(),
            &[
                "train",
                "--csv",
                "data.csv",
                "--target",
                "y",
                "--sensitive",
                "s",
                "--epochs",
                "5",
                "--hidden",
                "16,8",
                "--draws",
                "2",
                "--forest-trees",
                "10",
                "--mc-samples",
                "200",
                "--reproducible",
                "--threads",
                "2",
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(dir.path().join(out).join("metrics.json")).unwrap()
    };
    let a = run("a");
    assert_eq!(a, run("b"));
    assert!(String::from_utf8_lossy(&a).contains("\"train_seconds\": null"));
}

/// kill -9 in the middle of training, then `train --resume`: the same metrics as an uninterrupted run.
#[test]
fn resume_after_kill_9_gives_the_metrics_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic(&dir.path().join("data.csv"), 4000, 11);
    let args = |out: &str| -> Vec<String> {
        [
            "train",
            "--csv",
            "data.csv",
            "--target",
            "y",
            "--sensitive",
            "s",
            "--epochs",
            "150",
            "--hidden",
            "32,8",
            "--batch-size",
            "64",
            "--gamma",
            "0.5",
            "--val-size",
            "0.2",
            "--patience",
            "1000",
            "--checkpoint-every",
            "3",
            "--draws",
            "2",
            "--forest-trees",
            "10",
            "--mc-samples",
            "200",
            "--reproducible",
            "--threads",
            "1",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(dir.path())
        .args(args("model"))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ckpt = dir.path().join("model/checkpoint/checkpoint.json");
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&ckpt) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if v["epoch"].as_u64().unwrap() >= 9 {
                break;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "training ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.path().join("model/metrics.json").exists(), "killed before the end");
    let resumed = fairbits(dir.path(), &["train", "--resume", "model"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let reference: Vec<String> = args("reference");
    let refs: Vec<&str> = reference.iter().map(|s| s.as_str()).collect();
    let full = fairbits(dir.path(), &refs);
    assert!(full.status.success(), "{}", stderr(&full));
    let a = std::fs::read_to_string(dir.path().join("model/metrics.json")).unwrap();
    let b = std::fs::read_to_string(dir.path().join("reference/metrics.json")).unwrap();
    assert_eq!(a, b);
    assert!(!dir.path().join("model/checkpoint").exists(), "the checkpoint is removed once the model is saved");
}

/// A non-finite loss stops training with a clear error, and the last good checkpoint stays.
#[test]
fn divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint() {
    use fairbits::model::{ModelConfig, Net};
    use fairbits::rng::{rng, Stream};
    use fairbits::train::{fit, Checkpointing, TrainConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.csv");
    write_synthetic(&path, 400, 3);
    let spec = csv_spec(&path, 0);
    let data = spec.prepare().unwrap();
    let cfg = ModelConfig { n_inputs: data.train.d, hidden: vec![8, 4], ..Default::default() };
    let ck = Checkpointing { dir: dir.path().join("checkpoint"), every: 1, resume: false };
    for backend in [fairbits::train::Backend::Auto, fairbits::train::Backend::Candle] {
        let net = Net::new(&cfg, &candle_core::Device::Cpu, &mut rng(0, Stream::Init)).unwrap();
        let two = TrainConfig { epochs: 2, backend, ..TrainConfig::default() };
        fit(&net, &data.train, None, &two, Some(&ck), &()).unwrap();
        // Poison a feature and continue from the checkpoint: the first step of epoch 3 is NaN.
        let mut poisoned = data.train.clone();
        let mut x = poisoned.x.into_vec();
        x[0] = f32::NAN;
        poisoned.x = x.into();
        let five = TrainConfig { epochs: 5, ..two };
        let resume = Checkpointing { resume: true, ..ck.clone() };
        let err = fit(&net, &poisoned, None, &five, Some(&resume), &()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("training diverged: the loss became NaN at epoch 3"), "{text}");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ck.dir.join("checkpoint.json")).unwrap()).unwrap();
        assert_eq!(state["epoch"], 2, "the last good checkpoint is kept");
    }
}

//! One schema for every parameter: each edge is derived from it or checked against it here. The command
//! line's flags (every subcommand's `--help`), a saved model's `config.json` and the README's parameter
//! tables; the Python estimator's signature, docstring and docs/python.md are checked by
//! python/tests/test_schema.py. A new parameter is one entry in `src/schema/mod.rs` plus its use; this test
//! then says where its name must appear (the docs tables: `FAIRBITS_BLESS=1 cargo test --release --test
//! schema` writes them).

mod common;

use common::{check_doc_block, fairbits, stdout, words, workdir};
use fairbits::schema::{Group, ParamDef};
use fairbits::store::ModelKind;
use fairbits::SCHEMA;
use std::collections::BTreeMap;
use std::path::Path;

const COMMANDS: &[&str] = &["train", "eval", "mi", "certify", "predict", "encode", "sweep", "report"];

#[test]
fn every_flag_of_the_schema_is_on_the_command_line_with_its_doc_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let helps: Vec<String> = COMMANDS.iter().map(|c| stdout(&fairbits(dir.path(), &[c, "--help"]))).collect();
    for d in SCHEMA.iter() {
        let Some(flag) = d.cli else { continue };
        let help = helps
            .iter()
            .find(|h| h.contains(&format!("--{flag} ")) || h.contains(&format!("--{flag}\n")))
            .unwrap_or_else(|| panic!("--{flag} ({}) is on no command", d.name));
        // clap wraps nothing here (the terminal width is unknown), so the doc reads whole on one line.
        assert!(help.contains(d.doc.trim()), "--{flag}: the help lacks the schema's doc '{}'", d.doc.trim());
        let default = d.default_words();
        if !default.is_empty() && !d.is_switch() {
            assert!(help.contains(&format!("[default: {default}]")), "--{flag}: no [default: {default}]");
        }
    }
}

#[test]
fn a_parameter_the_command_does_not_take_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    for line in ["sweep --seed 3 --dataset adult --out s", "predict --gamma 1 --model m --output o.csv"] {
        let o = fairbits(dir.path(), &words(line));
        assert_eq!(o.status.code(), Some(2), "{line}");
    }
}

/// A value for each parameter `config.json` records, other than its default, valid for a small table
/// model; the test fails for a recorded parameter without one, so a new parameter gets a row here.
fn sample(name: &str) -> Option<&'static str> {
    Some(match name {
        "hidden" => "12,6",
        "stochastic" => "0",
        "pre_activation" => "linear",
        "temperature" => "4",
        "estimator" => "sigmoid",
        "activation" => "relu",
        "gamma" => "0.5",
        "penalty" => "joint",
        "loss_form" => "convex",
        "epochs" => "3",
        "batch_size" => "64",
        "lr" => "0.002",
        "weight_decay" => "0.01",
        "warmup_epochs" => "1",
        "patience" => "4",
        "backend" => "candle",
        "seed" => "5",
        "inference" => "threshold",
        "draws" => "3",
        "mc_samples" => "500",
        "m_max" => "18",
        "forest_trees" => "7",
        "probe_rows" => "300",
        "probe_draws" => "1",
        "confidence" => "0.9",
        "test_size" => "0.25",
        "val_size" => "0.2",
        "include_sensitive" => "true",
        // Image models only: their convolutions are recorded under model.conv.
        "channels" | "kernel" => return None,
        _ => return None,
    })
}

fn at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// A JSON value in the parameter's text form (lists comma-separated).
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn config_json_records_every_parameter_under_its_schema_path() {
    let (dir, _) = workdir();
    let mut line = String::from("train --input data.csv --target y --sensitive s --out model");
    let table_params: Vec<&ParamDef> =
        SCHEMA.iter().filter(|d| d.config.is_some() && !d.config.unwrap().starts_with("model.conv")).collect();
    for d in &table_params {
        let value =
            sample(d.name).unwrap_or_else(|| panic!("no sample value for {} (recorded at {:?})", d.name, d.config));
        if d.is_switch() {
            line += &format!(" --{}", d.cli.unwrap());
        } else {
            line += &format!(" --{} {value}", d.cli.unwrap());
        }
    }
    let o = fairbits(dir.path(), &words(&line));
    assert!(o.status.success(), "{line}: {}", common::stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model/config.json")).unwrap()).unwrap();
    for d in &table_params {
        let path = d.config.unwrap();
        let saved = at(&config, path).unwrap_or_else(|| panic!("config.json has no {path}"));
        let want = d.normalise(sample(d.name).unwrap()).unwrap();
        assert_eq!(d.normalise(&text(saved)).unwrap(), want, "{} at {path}", d.name);
    }
}

/// The Markdown table of the parameters of `groups` that have a flag.
fn table(groups: &[Group]) -> String {
    let mut md = String::from("| flag | default | meaning |\n| --- | --- | --- |\n");
    for d in SCHEMA.iter().filter(|d| d.cli.is_some() && groups.contains(&d.group)) {
        let default = if d.is_switch() { "off".to_string() } else { d.default_words() };
        let meaning = d.meaning().replace('|', "\\|");
        md += &format!("| `--{}` | {} | {} |\n", d.cli.unwrap(), default.replace('|', "\\|"), meaning);
    }
    md
}

/// The Markdown table of the Python estimator's constructor parameters.
fn python_table() -> String {
    let mut md = String::from("| parameter | flag | default | meaning |\n| --- | --- | --- | --- |\n");
    for d in SCHEMA.iter().filter(|d| d.python.is_some()) {
        let flag = d.cli.map_or(String::new(), |f| format!("`--{f}`"));
        let default = match (d.default_text(ModelKind::Table), d.default_text(ModelKind::Image)) {
            _ if d.python_default.is_some() => {
                format!("{} (command line: {})", d.python_default.unwrap(), d.default_words())
            }
            (Some(t), Some(i)) if t != i => format!("{t} (images: {i})"),
            (Some(t), _) if t.is_empty() => "none".into(),
            (Some(t), _) => t,
            (None, _) => "none".into(),
        };
        let meaning = d.meaning().replace('|', "\\|");
        md += &format!("| `{}` | {flag} | {} | {meaning} |\n", d.python.unwrap(), default.replace('|', "\\|"));
    }
    md
}

#[test]
fn the_docs_tables_are_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    check_doc_block(&readme, "params:data", &table(&[Group::Data]));
    check_doc_block(&readme, "params:model", &table(&[Group::Model, Group::Train]));
    check_doc_block(&readme, "params:eval", &table(&[Group::Eval]));
    check_doc_block(&readme, "params:certify", &table(&[Group::Certify]));
    check_doc_block(&root.join("docs/python.md"), "params:python", &python_table());
}

#[test]
fn every_parameter_has_one_name_per_edge_and_a_doc() {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for d in SCHEMA.iter() {
        assert!(!d.doc.trim().is_empty(), "{} has no doc", d.name);
        assert!(!d.doc.contains("--"), "{}: the doc names a flag: {}", d.name, d.doc);
        for name in [Some(d.name), d.cli, d.python, d.python_arg].into_iter().flatten() {
            if let Some(other) = seen.insert(name, d.name) {
                assert_eq!(other, d.name, "the name {name} is used by two parameters");
            }
        }
        // The default is a valid value of the parameter.
        if let Some(t) = d.default_text(ModelKind::Table).filter(|t| !t.is_empty()) {
            assert!(d.normalise(&t).is_ok(), "{}: default {t} is out of its range", d.name);
        }
    }
}

/// The messages the review of the vocabulary found wrong, each with the right name and exit code.
#[test]
fn the_reviewed_messages_name_what_the_user_gave_with_the_right_exit_code() {
    let (dir, _) = workdir();
    let run = |line: &str| {
        let o = fairbits(dir.path(), &words(line));
        (o.status.code(), common::stderr(&o))
    };
    let train = "train --input data.csv --target y --sensitive s --hidden 8,4 --epochs 2 --draws 1 --forest-trees 3";
    assert_eq!(run(&format!("{train} --out model")).0, Some(0));
    // predict's threshold and draws are checked as everywhere else.
    for (flag, value) in [("threshold", "2"), ("threshold", "nan"), ("draws", "0")] {
        let (code, err) = run(&format!("predict --model model --input data.csv --output p.csv --{flag} {value}"));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(&format!("invalid --{flag} = ")), "{err}");
        assert!(!dir.path().join("p.csv").exists());
    }
    // A validation share that leaves no training rows blames itself, not the test share.
    let (code, err) = run(&format!("{train} --val-size 0.999"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid --val-size = 0.999") && !err.contains("--test-size"), "{err}");
    // A table with no feature column is a data error naming the file.
    std::fs::write(dir.path().join("bare.csv"), "s,y\n0,1\n1,0\n0,0\n1,1\n").unwrap();
    let (code, err) = run("train --input bare.csv --target y --sensitive s");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("bare.csv: no feature column"), "{err}");
    // Encoders that disagree with the weights: the model directory is refused at load (exit 4).
    let path = dir.path().join("model/config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let colour = config["encoding"]["columns"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == "colour")
        .expect("a categorical column");
    colour["categories"].as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let (code, err) = run("predict --model model --input data.csv --output p.csv");
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("model directory model") && err.contains("the encoders"), "{err}");
    // The penalty's help lists every kind (tv among them).
    let help = stdout(&fairbits(dir.path(), &["train", "--help"]));
    for kind in ["per-neuron", "joint", "pairwise", "adversarial", "tv"] {
        assert!(help.contains(kind), "--penalty help lacks {kind}");
    }
    assert!(help.contains("invariant: hidden 64,12, gamma 8, penalty joint, epochs 80, warmup_epochs 20"), "{help}");
}

/// An image array of the wrong shape, with a NaN, or in 0-255 names the file and what the model reads.
#[test]
fn image_arrays_are_checked_against_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let o = fairbits(
        dir.path(),
        &words("train --dataset biased-mnist --epochs 1 --train-size 200 --draws 1 --forest-trees 3 --out m"),
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let npy = |name: &str, shape: &[usize], value: f32| {
        let n: usize = shape.iter().product();
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let pad = (64 - (10 + header.len() + 1) % 64) % 64;
        let header = format!("{header}{}\n", " ".repeat(pad));
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for k in 0..n {
            bytes.extend((if k == 5 { value } else { 0.5f32 }).to_le_bytes());
        }
        std::fs::write(dir.path().join(name), bytes).unwrap();
    };
    npy("small.npy", &[2, 3, 32, 32], 0.5);
    npy("nan.npy", &[2, 3, 28, 28], f32::NAN);
    npy("bytes.npy", &[2, 3, 28, 28], 255.0);
    for (file, fragment) in [
        ("small.npy", "small.npy: an array of shape [2, 3, 32, 32], but the model reads an array N x 3 x 28 x 28"),
        ("nan.npy", "nan.npy: value NaN at flat index 5 (image 0) is not a number"),
        ("bytes.npy", "the model reads pixels in [0, 1]: divide by 255"),
    ] {
        let o = fairbits(dir.path(), &["predict", "--model", "m", "--input", file, "--output", "p.csv"]);
        assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
        assert!(common::stderr(&o).contains(fragment), "{}", common::stderr(&o));
    }
}

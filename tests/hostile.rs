//! Every hostile case is a test: one row per case (the input, the command, the exit code, a fragment of
//! the message) run in a fresh directory, with "nothing changed on disk" checked for every case: the
//! files that were there keep their bytes, no file appears but those the command is meant to write, no
//! temporary file is left in the directory or in TMPDIR. The table of cases is docs/reliability.md's
//! ("Hostile input", written by `FAIRBITS_BLESS=1 cargo test --release --test hostile`);
//! `bash scripts/hostile.sh` prints it with each case's result. The crash tests (kill -9 and Ctrl-C in
//! every long phase) follow the table.

mod common;

use arrow_array::{ArrayRef, Int64Array, ListArray, RecordBatch};
use common::{fairbits, stderr, write_synthetic};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What a case starts from, besides its files.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// `data.csv` (600 synthetic rows: x1, x2, noise, colour, s, y).
    Data,
    /// `data.csv` and `model/`, a small table model trained on it.
    Model,
    /// `image/`, a small image model.
    ImageModel,
}

/// One hostile case.
struct Case {
    /// The input, in words (the table's first column).
    what: &'static str,
    start: Start,
    /// Files written before the command (name, content).
    files: fn(&Path),
    /// The command line (split on whitespace).
    command: &'static str,
    exit: i32,
    /// A fragment of what it prints (stderr, or the table on stdout).
    says: &'static str,
    /// What the command may write (relative paths; a directory allows everything under it).
    writes: &'static [&'static str],
}

const TRAIN: &str =
    "train --input data.csv --target y --sensitive s --hidden 8,4 --epochs 2 --draws 1 --forest-trees 3";

fn none(_: &Path) {}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `n` rows `a,colour,s,y`.
fn rows(n: usize) -> String {
    (0..n).map(|i| format!("{}.5,{},{},{}\n", i % 7, ["red", "blue"][i % 2], (i / 2) % 2, (i / 3) % 2)).collect()
}

fn good_with(extra: &str) -> String {
    format!("a,colour,s,y\n{}{extra}", rows(40))
}

/// `data.csv` with the cell of data row `row` (0-based), column `col`, replaced by `value`.
fn set_cell(dir: &Path, row: usize, col: usize, value: &str) {
    let text = std::fs::read_to_string(dir.join("data.csv")).unwrap();
    let out: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i != row + 1 {
                return l.to_string();
            }
            let mut cells: Vec<&str> = l.split(',').collect();
            cells[col] = value;
            cells.join(",")
        })
        .collect();
    write(dir, "data.csv", &(out.join("\n") + "\n"));
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("model/config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn npy(dir: &Path, name: &str, shape: &[usize], value_at_5: f32) {
    let n: usize = shape.iter().product();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for k in 0..n {
        bytes.extend((if k == 5 { value_at_5 } else { 0.5f32 }).to_le_bytes());
    }
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn list_parquet(dir: &Path) {
    let n = 40;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(
        (0..n).map(|i| Some(vec![Some(i), Some(i + 1)])),
    ));
    let s: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 2)));
    let y: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i / 2) % 2)));
    let batch = RecordBatch::try_from_iter([("a", ids), ("tags", lists), ("s", s), ("y", y)]).unwrap();
    let file = std::fs::File::create(dir.join("nested.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// `ids.csv` and `ids.parquet`: 15,000 rows whose `id` column holds a distinct text value in every row (more
/// training rows than a text column may have values), next to an ordinary feature.
fn id_tables(dir: &Path) {
    let n = 15_000usize;
    let ids: Vec<String> = (0..n).map(|i| format!("u{i:06}")).collect();
    let csv: String = (0..n).map(|i| format!("{},{}.5,{},{}\n", ids[i], i % 7, i % 2, (i / 3) % 2)).collect();
    write(dir, "ids.csv", &format!("id,a,s,y\n{csv}"));
    let id: ArrayRef = Arc::new(arrow_array::StringArray::from(ids));
    let a: ArrayRef = Arc::new(arrow_array::Float64Array::from_iter_values((0..n).map(|i| (i % 7) as f64 + 0.5)));
    let s: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 2)));
    let y: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| (i / 3) % 2)));
    let batch = RecordBatch::try_from_iter([("id", id), ("a", a), ("s", s), ("y", y)]).unwrap();
    let file = std::fs::File::create(dir.join("ids.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

macro_rules! case {
    ($what:expr, $start:ident, $files:expr, $command:expr, $exit:expr, $says:expr $(, writes $writes:expr)?) => {
        Case {
            what: $what,
            start: Start::$start,
            files: $files,
            command: $command,
            exit: $exit,
            says: $says,
            writes: case!(@writes $($writes)?),
        }
    };
    (@writes) => { &[] };
    (@writes $w:expr) => { $w };
}

fn cases() -> Vec<Case> {
    vec![
        // The bad inputs of docs/reliability.md.
        case!("an empty file", Data, |d| write(d, "in.csv", ""), "train --input in.csv --target y --sensitive s", 3, "in.csv: the file is empty (no header row)"),
        case!("a header without rows", Data, |d| write(d, "in.csv", "a,colour,s,y\n"), "train --input in.csv --target y --sensitive s", 3, "in.csv: no data rows"),
        case!("a numeric sensitive column of many values (an age)", Data, |d| write(d, "in.csv", &format!("a,colour,s,y\n{}", (0..60).map(|i| format!("{}.5,red,{},{}\n", i % 7, 20 + i % 30, i % 2)).collect::<String>())), "train --input in.csv --target y --sensitive s", 3, "holds 30 distinct numbers: taken as groups, each would be small and every bound vacuous (cut it into quantile groups, e.g. --sensitive-bins 4)"),
        case!("a certified bound the data cannot reach", Data, |d| write(d, "in.csv", &good_with("")), "train --input in.csv --target y --sensitive s --max-certified-dp 0.01 --epochs 2 --out m", 2, "NOT met: the requested demographic-parity gap bound 0.01 was not reached"),
        case!("two certified bounds at once", Data, |d| write(d, "in.csv", &good_with("")), "train --input in.csv --target y --sensitive s --max-certified-dp 0.1 --max-certified-eo 0.1 --out m", 2, "invalid --max-certified-eo = 0.1: one certified bound at a time"),
        case!("a certified bound and a gamma", Data, |d| write(d, "in.csv", &good_with("")), "train --input in.csv --target y --sensitive s --max-certified-dp 0.1 --gamma 2 --out m", 2, "invalid --gamma = 2: the search for a certified bound chooses gamma itself"),
        case!("one quantile group", Data, |d| write(d, "in.csv", &good_with("")), "train --input in.csv --target y --sensitive a --sensitive-bins 1", 2, "invalid --sensitive-bins = 1: must be in 2..=20"),
        case!("a ragged row", Data, |d| write(d, "in.csv", &good_with("1,red,0\n")), "train --input in.csv --target y --sensitive s", 3, "in.csv: line 42:"),
        case!("bytes that are not UTF-8", Data, |d| std::fs::write(d.join("in.csv"), [good_with("").as_bytes(), b"1.5,r\xffd,0,1\n"].concat()).unwrap(), "train --input in.csv --target y --sensitive s", 3, "in.csv: line 42"),
        case!("a byte-order mark", Data, |d| write(d, "in.csv", &format!("\u{feff}{}", good_with(""))), "train --input in.csv --target y --sensitive s --hidden 4,2 --epochs 1 --draws 1 --forest-trees 2", 0, ""),
        case!("quoted cells holding commas and newlines", Data, |d| write(d, "in.csv", &good_with("1.5,\"re,d\nx\",0,1\n")), "train --input in.csv --target y --sensitive s --hidden 4,2 --epochs 1 --draws 1 --forest-trees 2", 0, ""),
        case!("a missing cell in a numeric column", Data, |d| write(d, "in.csv", &good_with("NA,red,0,1\n,blue,1,0\n")), "train --input in.csv --target y --sensitive s --hidden 4,2 --epochs 1 --draws 1 --forest-trees 2", 0, ""),
        case!("`inf` in a numeric column", Data, |d| write(d, "in.csv", &good_with("inf,red,0,1\n")), "train --input in.csv --target y --sensitive s", 3, "in.csv: line 42, column 'a': value 'inf' is not finite"),
        case!("text in a numeric column", Data, |d| write(d, "in.csv", &good_with("abc,red,0,1\n")), "train --input in.csv --target y --sensitive s", 3, "'abc' is not a number, but the column is numeric (most of its values are numbers): fix the cell, or encode the column as categories (declare it categorical with --categorical a)"),
        case!("two columns of one name", Data, |d| write(d, "in.csv", "a,a,s,y\n1,2,0,1\n"), "train --input in.csv --target y --sensitive s", 3, "in.csv: duplicate column name 'a'"),
        case!("a target naming no column", Data, none, "train --input data.csv --target nope --sensitive s", 3, "data.csv: column 'nope' not found; the columns are: x1, x2, noise, colour, s, y"),
        case!("a positive value for a three-class target", Data, |d| write(d, "in.csv", &good_with("1,red,0,7\n")), "train --input in.csv --target y --sensitive s --positive 7", 3, "a positive value ('7') was given, but target column 'y' has 3 classes"),
        case!("a sensitive attribute with one group", Data, |d| write(d, "in.csv", &format!("a,s,y\n{}", (0..40).map(|i| format!("{i},0,{}\n", i % 2)).collect::<String>())), "train --input in.csv --target y --sensitive s", 3, "sensitive column 's' has a single group ('0')"),
        case!("a group with one row", Data, |d| write(d, "in.csv", &good_with("1.5,red,9,1\n")), "train --input in.csv --target y --sensitive s", 3, "group '9' of sensitive column 's' has"),
        case!("a table without a feature column", Data, |d| write(d, "in.csv", "s,y\n0,1\n1,0\n0,0\n1,1\n"), "train --input in.csv --target y --sensitive s", 3, "in.csv: no feature column"),
        case!("a value whose standardised form leaves f32", Data, |d| write(d, "in.csv", &good_with("77777777777777777777777777777777777777773,red,1,0\n")), "train --input in.csv --target y --sensitive s", 3, "in.csv: line 42, column 'a': value '77777777777777777777777777777777777777773' is out of range"),
        case!("values whose mean overflows (1e308)", Data, |d| (3..12).for_each(|r| set_cell(d, r, 0, "1e308")), "train --input data.csv --target y --sensitive s --out m", 3, "value '1e308' is too large: the column's mean and spread overflow"),
        case!("a `;`-separated file read as `,`", Data, |d| write(d, "semi.csv", &good_with("").replace(',', ";")), "train --input semi.csv --target y --sensitive s", 3, "the file looks ';'-separated (read it with --delimiter ';')"),
        case!("a Parquet list column", Data, list_parquet, "train --input nested.parquet --target y --sensitive s", 3, "column 'tags' holds List"),
        case!("a text column with a value per row (an identifier)", Data, id_tables, "train --input ids.csv --target y --sensitive s", 3, "ids.csv: column 'id' has at least"),
        case!("the same, streamed", Data, id_tables, "train --input ids.parquet --target y --sensitive s --stream", 3, "more than the 10000 a text column may have (one-hot encoding makes an input of each): a value in nearly every row is an identifier or free text, not a feature (leave it out with --drop id)"),
        case!("a Parquet file that is not one", Data, |d| write(d, "broken.parquet", "not parquet"), "train --input broken.parquet --target y --sensitive s", 3, "broken.parquet: not a readable Parquet file"),
        case!("an input that is a directory", Data, |d| std::fs::create_dir(d.join("adir")).unwrap(), "train --input adir --target y --sensitive s", 1, "adir: a directory, not a table file"),
        case!("an input that does not exist", Data, none, "train --input nowhere.csv --target y --sensitive s", 1, "nowhere.csv"),
        // Flags out of range or that do not apply.
        case!("`--gamma -1`", Data, none, "train --input data.csv --target y --sensitive s --gamma -1", 2, "invalid --gamma = -1: must be a finite number >= 0"),
        case!("`--gamma nan`", Data, none, "train --input data.csv --target y --sensitive s --gamma nan", 2, "invalid --gamma = NaN"),
        case!("`--temperature 0`", Data, none, "train --input data.csv --target y --sensitive s --temperature 0", 2, "invalid --temperature = 0: must be > 0"),
        case!("`--hidden 8,0`", Data, none, "train --input data.csv --target y --sensitive s --hidden 8,0", 2, "invalid --hidden = 8,0: must be one or more widths, each >= 1"),
        case!("`--test-size 1.5`", Data, none, "train --input data.csv --target y --sensitive s --test-size 1.5", 2, "invalid --test-size = 1.5"),
        case!("`--val-size 0.999`: no training rows left", Data, none, TRAIN_VAL, 2, "invalid --val-size = 0.999: with"),
        case!("`--certify-size 0.95`", Data, none, "train --input data.csv --target y --sensitive s --certify-size 0.95", 2, "invalid --certify-size = 0.95"),
        case!("`--lr 0`", Data, none, "train --input data.csv --target y --sensitive s --lr 0", 2, "invalid --lr = 0: must be a finite number > 0"),
        case!("`--batch-size 0`", Data, none, "train --input data.csv --target y --sensitive s --batch-size 0", 2, "invalid --batch-size = 0"),
        case!("`--stochastic 5` for 2 layers", Data, none, "train --input data.csv --target y --sensitive s --stochastic 5", 2, "invalid --stochastic"),
        case!("`--epochs 0`", Data, none, "train --input data.csv --target y --sensitive s --epochs 0", 2, "invalid --epochs = 0"),
        case!("`--epochs 2.5`", Data, none, "train --input data.csv --target y --sensitive s --epochs 2.5", 2, "invalid --epochs = 2.5: must be a whole number"),
        case!("`--seed -1`", Data, none, "train --input data.csv --target y --sensitive s --seed -1", 2, "invalid --seed = -1"),
        case!("a warm-up beyond `--epochs 5`", Data, none, "train --input data.csv --target y --sensitive s --preset invariant --epochs 5 --warmup-epochs 20", 2, "invalid --warmup-epochs = 20"),
        case!("an unknown penalty", Data, none, "train --input data.csv --target y --sensitive s --penalty magic", 2, "invalid --penalty = magic"),
        case!("an unknown preset", Data, none, "train --input data.csv --target y --sensitive s --preset fast", 2, "invalid --preset = fast: must be one of: none, invariant"),
        case!("`--confidence 1`", Data, none, "train --input data.csv --target y --sensitive s --confidence 1", 2, "invalid --confidence = 1: must be in (0, 1)"),
        case!("`--m-max 30`", Data, none, "train --input data.csv --target y --sensitive s --m-max 30", 2, "invalid --m-max = 30: must be <= 24"),
        case!("the joint penalty on 24 neurons", Data, none, "train --input data.csv --target y --sensitive s --hidden 8,24 --penalty joint", 2, "m = 24"),
        case!("a configuration too big for memory", Data, none, "train --input data.csv --target y --sensitive s --hidden 100000,100000 --out m", 2, "needs about"),
        case!("`--missing maybe`", Data, none, "train --input data.csv --target y --sensitive s --missing maybe", 2, "invalid --missing = maybe: must be one of: drop, error, impute"),
        case!("`--missing error` and a missing cell", Data, |d| set_cell(d, 3, 1, ""), "train --input data.csv --target y --sensitive s --missing error", 3, "data.csv: line 5: column 'x2' has a missing value ('')"),
        case!("`--missing impute` streamed", Data, id_tables, "train --input ids.parquet --target y --sensitive s --drop id --stream --missing impute", 2, "invalid --missing = impute: not with streaming"),
        case!("`--threads 0`", Data, none, "train --input data.csv --target y --sensitive s --threads 0", 2, "invalid --threads = 0"),
        case!("`sweep --jobs 0`", Data, none, "sweep --input data.csv --target y --sensitive s --out sw --jobs 0", 2, "invalid --jobs = 0: must be >= 1"),
        case!("`sweep --shard 3/2`", Data, none, "sweep --input data.csv --target y --sensitive s --out sw --shard 3/2", 2, "invalid --shard = 3/2"),
        case!("`sweep --seed`", Data, none, "sweep --input data.csv --target y --sensitive s --out sw --seed 5", 2, "'--seeds'"),
        case!("a positive value the target does not hold", Data, none, "train --input data.csv --target y --sensitive s --positive maybe", 3, "the positive value 'maybe' is not a value of target column 'y' (values: 0, 1) (choose it with --positive)"),
        case!("`--drop` naming no column", Data, none, "train --input data.csv --target y --sensitive s --drop zzz", 3, "column 'zzz' not found"),
        case!("`--rho 1.5` for colour-biased digits", Data, none, "train --dataset biased-mnist --rho 1.5", 2, "invalid --rho = 1.5"),
        case!("`eval --input` without `--target`", Model, none, "eval --model model --input data.csv --sensitive s", 2, "invalid --target = missing"),
        // Outputs never clobber inputs, models, or other people's files.
        case!("`predict --output` equal to `--input`", Model, none, "predict --model model --input data.csv --output data.csv", 2, "data.csv: is an input of this command"),
        case!("`encode --output` equal to `--input` through another path", Model, none, "encode --model model --input ./data.csv --output data.csv", 2, "is an input of this command"),
        case!("`predict --output` over the model's config.json", Model, none, "predict --model model --input data.csv --output model/config.json", 2, "is an input of this command"),
        case!("`predict --output` without .csv or .npy", Model, none, "predict --model model --input data.csv --output p.txt", 2, "invalid --output = p.txt: the name must end in .csv or .npy"),
        case!("`predict --output` in a directory that does not exist", Model, none, "predict --model model --input data.csv --output nodir/p.csv", 1, "nodir/p.csv"),
        case!("`train --out` over a trained model", Model, none, "train --input data.csv --target y --sensitive s --out model", 2, "model: holds a trained model, which would be replaced (to allow it: --force)"),
        case!("`train --out` into a directory holding someone's files", Data, |d| { std::fs::create_dir(d.join("thesis")).unwrap(); write(&d.join("thesis"), "thesis.txt", "years of work"); }, "train --input data.csv --target y --sensitive s --out thesis", 2, "holds files that are not a fairbits model's ('thesis.txt')"),
        case!("`train --out` naming a file", Data, none, "train --input data.csv --target y --sensitive s --out data.csv", 2, "data.csv: not a directory"),
        case!("`train --out` over a model with `--force`", Model, none, "train --input data.csv --target y --sensitive s --hidden 4,2 --epochs 1 --draws 1 --forest-trees 2 --out model --force", 0, "", writes &["model"]),
        case!("`train --out` over an interrupted training", Model, |d| { std::fs::create_dir(d.join("model/checkpoint")).unwrap(); write(&d.join("model/checkpoint"), "run.json", "{}"); }, "train --input data.csv --target y --sensitive s --out model", 2, "model: holds an interrupted training (killed before its first checkpoint) (continue it with --resume model, or start again with --force (which discards it))"),
        case!("`train --resume` of a directory with nothing to resume", Model, none, "train --resume model", 4, "nothing to resume"),
        // predict / encode.
        case!("`predict --threshold 2`", Model, none, "predict --model model --input data.csv --output p.csv --threshold 2", 2, "invalid --threshold = 2: must be in [0, 1]"),
        case!("`predict --threshold nan`", Model, none, "predict --model model --input data.csv --output p.csv --threshold nan", 2, "invalid --threshold = nan: must be in [0, 1]"),
        case!("`predict --draws 0`", Model, none, "predict --model model --input data.csv --output p.csv --draws 0", 2, "invalid --draws = 0: must be >= 1"),
        case!("`predict --split` for a table model", Model, none, "predict --model model --split train --output p.csv", 2, "a table model reads the rows of a table file"),
        case!("`encode` input missing a feature column", Model, |d| write(d, "few.csv", "x1,s,y\n1,0,1\n"), "encode --model model --input few.csv --output codes.csv", 3, "few.csv: column 'x2' not found"),
        case!("`encode` rows with missing cells", Model, |d| set_cell(d, 3, 1, ""), "encode --model model --input data.csv --output codes.csv", 0, "had a missing value in a feature column and were skipped", writes &["codes.csv"]),
        case!("a category unseen in training", Model, |d| set_cell(d, 3, 3, "purple"), "encode --model model --input data.csv --output codes.csv", 0, "'purple'", writes &["codes.csv"]),
        case!("an image array of the wrong shape", ImageModel, |d| npy(d, "x.npy", &[2, 3, 32, 32], 0.5), "predict --model image --input x.npy --output p.csv", 3, "x.npy: an array of shape [2, 3, 32, 32], but the model reads an array N x 3 x 28 x 28"),
        case!("an image with a NaN pixel", ImageModel, |d| npy(d, "x.npy", &[2, 3, 28, 28], f32::NAN), "predict --model image --input x.npy --output p.csv", 3, "x.npy: value NaN at flat index 5 (image 0) is not a number"),
        case!("images in 0-255", ImageModel, |d| npy(d, "x.npy", &[2, 3, 28, 28], 255.0), "predict --model image --input x.npy --output p.csv", 3, "the model reads pixels in [0, 1]: divide by 255"),
        case!("`encode --input` of a table for an image model", ImageModel, none, "encode --model image --input data.csv --output c.csv", 2, "an image model reads a .npy array"),
        // Model directories.
        case!("a model directory that does not exist", Data, none, "eval --model nowhere", 4, "model directory nowhere: cannot read config.json"),
        case!("a model without its weights", Model, |d| std::fs::remove_file(d.join("model/model.safetensors")).unwrap(), "eval --model model", 4, "model.safetensors is missing"),
        case!("corrupt weights", Model, |d| write(&d.join("model"), "model.safetensors", "garbage"), "eval --model model", 4, "model.safetensors is not the file saved with config.json"),
        case!("a config.json of another format version", Model, |d| edit_config(d, |v| v["format_version"] = 999.into()), "eval --model model", 4, "format_version Some(999)"),
        case!("a config.json that is not JSON", Model, |d| write(&d.join("model"), "config.json", "{"), "eval --model model", 4, "config.json is not valid JSON"),
        case!("a hand-edited config.json (batch size 0)", Model, |d| edit_config(d, |v| v["train"]["batch_size"] = 0.into()), "eval --model model", 4, "invalid batch_size = 0"),
        case!("encoders that disagree with the weights", Model, |d| edit_config(d, |v| { v["encoding"]["columns"].as_array_mut().unwrap().pop(); }), "predict --model model --input data.csv --output p.csv", 4, "the encoders"),
        case!("weights from another model", Model, |d| { let w = d.join("model/model.safetensors"); let mut b = std::fs::read(&w).unwrap(); let n = b.len(); b[n - 1] ^= 1; std::fs::write(w, b).unwrap(); }, "eval --model model", 4, "model.safetensors is not the file saved with config.json"),
        case!("a model whose training file is gone", Model, |d| std::fs::rename(d.join("data.csv"), d.join("moved.csv")).unwrap(), "eval --model model", 3, "which is no longer there"),
        // One rule for held-out files.
        case!("`eval --input` holding training rows", Model, none, "eval --model model --input data.csv --target y --sensitive s --draws 1 --forest-trees 2", 0, "equal a row the model was trained on: left out"),
        case!("`mi --input` holding training rows", Model, none, "mi --model model --input data.csv --target y --sensitive s --draws 1 --forest-trees 2", 0, "equal a row the model was trained on: left out"),
        case!("`certify --input` holding training rows", Model, none, "certify --model model --input data.csv --target y --sensitive s", 0, "equal a row the model was trained on: left out"),
        case!("`certify --input` for a model of in-memory rows (which rows it saw is unknown)", Model, |d| edit_config(d, |v| v["data"]["source"] = serde_json::json!({"kind": "memory", "name": "data"})), "certify --model model --input data.csv --target y --sensitive s", 0, "cannot tell which rows the model was trained on"),
        // Training that goes wrong.
        case!("`--gamma 1e30`: no better than the majority class", Data, none, "train --dataset german --hidden 8,4 --draws 1 --forest-trees 2 --gamma 1e30", 0, "WARNING: accuracy 0.6233 is not above the 0.7000 of predicting the majority class"),
        case!("a training that diverges (`--lr 1e38`)", Data, none, "train --input data.csv --target y --sensitive s --hidden 8,4 --epochs 3 --lr 1e38 --out m", 5, "(try a smaller --lr or --gamma)", writes &["m"]),
        case!("a report of a directory that is no sweep", Data, |d| std::fs::create_dir(d.join("empty")).unwrap(), "report --from empty --out R.md", 2, "invalid --from = empty: not a sweep directory"),
        case!("a sweep directory holding another sweep", Data, |d| { std::fs::create_dir(d.join("sw")).unwrap(); write(&d.join("sw"), "sweep.json", "{\"other\": 1}"); }, "sweep --input data.csv --target y --sensitive s --out sw --epochs 1", 2, "the directory holds a sweep with other settings"),
    ]
}

const TRAIN_VAL: &str = "train --input data.csv --target y --sensitive s --val-size 0.999";

/// A directory with a trained table model and an image model, made once and copied into each case.
fn models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fairbits-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_synthetic(&dir.join("data.csv"), 600, 7);
        let o = fairbits(&dir, &common::words(&format!("{TRAIN} --out model")));
        assert!(o.status.success(), "{}", stderr(&o));
        let line = "train --dataset biased-mnist --epochs 1 --train-size 200 --draws 1 --forest-trees 2 --out image";
        let o = fairbits(&dir, &common::words(line));
        assert!(o.status.success(), "{}", stderr(&o));
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file under `dir` (relative path -> bytes' checksum).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), fairbits::files::sha256_hex(&bytes));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Runs one case; `Err` says what went wrong.
fn run(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    match case.start {
        Start::Data => write_synthetic(&d.join("data.csv"), 600, 7),
        Start::Model | Start::ImageModel => {
            std::fs::copy(models().join("data.csv"), d.join("data.csv")).unwrap();
            let (name, other) = if case.start == Start::Model { ("model", "image") } else { ("image", "model") };
            copy_dir(&models().join(name), &d.join(name));
            let _ = other;
            if case.start == Start::Model {
                // The model records its training file's absolute path: point it here.
                let path = d.join("model/config.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let abs = models().join("data.csv").display().to_string();
                std::fs::write(&path, text.replace(&abs, &d.join("data.csv").display().to_string())).unwrap();
            }
        }
    }
    (case.files)(d);
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let before = snapshot(d);
    let o = Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(d)
        .args(case.command.split_whitespace())
        .arg("--quiet")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    if o.status.code() != Some(case.exit) {
        return Err(format!("exit {:?}, not {}: {err}", o.status.code(), case.exit));
    }
    if !err.contains(case.says) {
        return Err(format!("the output lacks '{}': {err}", case.says));
    }
    let after = snapshot(d);
    let allowed = |p: &Path| case.writes.iter().any(|w| p.starts_with(w));
    for (p, sha) in &before {
        match after.get(p) {
            Some(now) if now == sha || allowed(p) => {}
            Some(_) => return Err(format!("{} changed", p.display())),
            None if allowed(p) => {}
            None => return Err(format!("{} disappeared", p.display())),
        }
    }
    if let Some(p) = after.keys().find(|p| !before.contains_key(*p) && !allowed(p)) {
        return Err(format!("{} appeared", p.display()));
    }
    if let Some(p) = after.keys().find(|p| p.file_name().is_some_and(|n| fairbits::files::is_tmp(&n.to_string_lossy())))
    {
        return Err(format!("a temporary file was left: {}", p.display()));
    }
    if std::fs::read_dir(&tmp).unwrap().next().is_some() {
        return Err("a file was left in TMPDIR".into());
    }
    Ok(())
}

/// The table of cases (docs/reliability.md's "Hostile input").
fn table(cases: &[Case]) -> String {
    let mut md = String::from("| input | command | exit | message (fragment) |\n| --- | --- | --- | --- |\n");
    for c in cases {
        let says = if c.says.is_empty() {
            "(succeeds)".to_string()
        } else {
            format!("`{}`", c.says.replace('|', "\\|").replace('`', "'"))
        };
        md += &format!("| {} | `fairbits {}` | {} | {says} |\n", c.what, c.command, c.exit);
    }
    md
}

#[test]
fn every_hostile_case_fails_cleanly_and_changes_nothing_on_disk() {
    let cases = cases();
    assert!(cases.len() >= 60, "the suite lost cases");
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| scope.spawn(move || chunk.iter().map(run).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut report = String::new();
    for (c, r) in cases.iter().zip(&results) {
        report += &format!("{} {}: fairbits {}\n", if r.is_ok() { "pass" } else { "FAIL" }, c.what, c.command);
        if let Err(e) = r {
            report += &format!("     {e}\n");
        }
    }
    println!("{report}");
    let _ = std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile.txt"), &report);
    let _ = std::fs::remove_dir_all(models());
    assert!(results.iter().all(|r| r.is_ok()), "{report}");
    common::check_doc_block(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md"),
        "hostile:cases",
        &table(&cases),
    );
}

/// A `fairbits` process stopped at a pause point, and its stderr.
struct Paused {
    child: std::process::Child,
    stderr: std::process::ChildStderr,
    said: String,
}

/// Starts `fairbits` with `args`, paused at `point` for `seconds` (the crash tests' hook), and waits until
/// it says so.
fn paused(dir: &Path, args: &[&str], point: &str, seconds: u64) -> Paused {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(dir)
        .args(args)
        .env("FAIRBITS_PAUSE_AT", point)
        .env("FAIRBITS_PAUSE_SECONDS", seconds.to_string())
        .env("TMPDIR", dir.join("tmp"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains(&format!("paused at {point}")) {
        use std::io::Read;
        let n = stderr.read(&mut buf).unwrap();
        let said = String::from_utf8_lossy(&seen);
        assert!(n > 0 && start.elapsed() < Duration::from_secs(120), "never paused at {point}: {said}");
        seen.extend_from_slice(&buf[..n]);
    }
    Paused { child, stderr, said: String::from_utf8_lossy(&seen).to_string() }
}

impl Paused {
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The exit code and everything it said, once it ends.
    fn finish(mut self) -> (Option<i32>, String) {
        use std::io::Read;
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap().code(), self.said + &rest)
    }
}

fn stray_files(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| p.file_name().is_some_and(|n| fairbits::files::is_tmp(&n.to_string_lossy())))
        .collect()
}

/// kill -9 in every long phase of `train --out` leaves the previous state (nothing, or the model that was
/// there) or a resumable one, never a stray file; resuming (or training again) then ends as an
/// uninterrupted run does.
#[test]
fn kill_9_in_every_phase_leaves_the_previous_state_or_a_resumable_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tmp")).unwrap();
    write_synthetic(&d.join("data.csv"), 600, 7);
    let train = |out: &str| -> Vec<String> {
        format!("{TRAIN} --epochs 4 --checkpoint-every 1 --reproducible --quiet --out {out}")
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let o = fairbits(d, &args(&train("whole")));
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = std::fs::read(d.join("whole/metrics.json")).unwrap();
    for point in ["reading", "encoding", "training", "evaluation", "writing"] {
        let out = format!("run-{point}");
        paused(d, &args(&train(&out)), point, 60).kill();
        assert!(stray_files(d).is_empty(), "{point}: stray files {:?}", stray_files(d));
        assert!(std::fs::read_dir(d.join("tmp")).unwrap().next().is_none(), "{point}: files left in TMPDIR");
        let target = d.join(&out);
        let resumable = target.join("checkpoint/run.json").exists();
        if !resumable {
            // The previous state: nothing was there, nothing is.
            assert!(!target.exists(), "{point}: a directory with nothing to resume was left");
            let o = fairbits(d, &args(&train(&out)));
            assert!(o.status.success(), "{point}: {}", stderr(&o));
        } else {
            // A plain re-run refuses to discard it and says how to continue.
            let o = fairbits(d, &args(&train(&out)));
            assert_eq!(o.status.code(), Some(2), "{point}: {}", stderr(&o));
            assert!(stderr(&o).contains(&format!("--resume {out}")), "{}", stderr(&o));
            let o = fairbits(d, &["train", "--resume", &out, "--quiet"]);
            assert!(o.status.success(), "{point}: {}", stderr(&o));
        }
        assert_eq!(
            std::fs::read(target.join("metrics.json")).unwrap(),
            reference,
            "{point}: not the uninterrupted run's metrics"
        );
        assert!(!target.join("checkpoint").exists(), "{point}: the checkpoint outlived the model");
    }
    // Replacing a model (--force) and killed while writing: the old model is not silently mixed with the
    // new one (load refuses the pair), and resuming finishes the new one.
    let o = fairbits(d, &args(&train("m")));
    assert!(o.status.success());
    let mut forced = train("m");
    forced.extend(["--force".to_string(), "--seed".to_string(), "3".to_string()]);
    paused(d, &args(&forced), "writing", 60).kill();
    let o = fairbits(d, &["eval", "--model", "m", "--quiet"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("not the file saved with config.json"), "{}", stderr(&o));
    let o = fairbits(d, &["train", "--resume", "m", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fairbits(d, &["eval", "--model", "m", "--quiet", "--draws", "1"]).status.success());
}

/// Two `train --out DIR` at once: the second fails naming the first, which finishes.
#[test]
fn a_second_writer_of_a_model_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tmp")).unwrap();
    write_synthetic(&d.join("data.csv"), 600, 7);
    let line = format!("{TRAIN} --out m --quiet");
    let words: Vec<&str> = line.split_whitespace().collect();
    let first = paused(d, &words, "training", 60);
    // The second reads its data first (the directory is claimed only then), then finds it locked.
    let o = fairbits(d, &words);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let pid = first.child.id();
    assert!(stderr(&o).contains(&format!("another fairbits process (process {pid}) is writing")), "{}", stderr(&o));
    first.kill();
}

/// Ctrl-C stops training between batches, says how to resume, and the resumed run ends as an
/// uninterrupted one.
#[test]
fn ctrl_c_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tmp")).unwrap();
    write_synthetic(&d.join("data.csv"), 600, 7);
    let line = format!("{TRAIN} --epochs 4 --checkpoint-every 1 --reproducible --out m");
    let words: Vec<&str> = line.split_whitespace().collect();
    // Paused after epoch 1 (and its checkpoint); SIGINT, as a terminal's Ctrl-C sends it, arrives during
    // the pause, and training stops at its next batch.
    let run = paused(d, &words, "training", 2);
    Command::new("kill").args(["-INT", &run.child.id().to_string()]).status().unwrap();
    let (code, err) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("interrupted during training")
            && err.contains("hint: the training state of epoch 1 is saved: continue with `fairbits train --resume m`"),
        "{err}"
    );
    let o = fairbits(d, &["train", "--resume", "m"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A streamed table's cache files have no name at any moment: while they are written, after kill -9 in the
/// middle of writing them, and after Ctrl-C twice (quit at once), TMPDIR holds nothing.
#[test]
fn a_killed_or_interrupted_cache_pass_leaves_nothing_in_tmpdir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    id_tables(d);
    let line = "train --input ids.parquet --target y --sensitive s --drop id --stream --hidden 4,2 --epochs 1 \
                --draws 1 --forest-trees 2 --quiet";
    let words: Vec<&str> = line.split_whitespace().collect();
    let empty = || std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    let run = paused(d, &words, "caching", 60);
    assert_eq!(empty(), Vec::<PathBuf>::new(), "cache files being written have names");
    run.kill();
    assert_eq!(empty(), Vec::<PathBuf>::new(), "kill -9 left files");
    let run = paused(d, &words, "caching", 3);
    let pid = run.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let (code, err) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(empty(), Vec::<PathBuf>::new(), "Ctrl-C left files");
    // Uninterrupted, the same run trains and leaves nothing either.
    let o =
        Command::new(env!("CARGO_BIN_EXE_fairbits")).current_dir(d).args(&words).env("TMPDIR", &tmp).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(empty(), Vec::<PathBuf>::new());
}

//! Per-row outputs (codes, predictions) as CSV or NPY bytes: leading identifier columns (the input row
//! index, a user's ID column, an image's label and colour) followed by the values. An `.npy` file holds the
//! values only; its rows follow the same order as the CSV's, and a companion index file carries the
//! identifiers.

use crate::error::{Error, Result};
use crate::estimator::{decide, FairModel};
use crate::files;
use crate::model::Inference;
use crate::schema::Param;
use crate::store::ModelKind;
use std::path::{Path, PathBuf};

/// A leading column: its name and one cell per row.
pub type Column = (String, Vec<String>);

/// Where the rows a saved model is applied to come from.
#[derive(Clone, Debug)]
pub enum Input {
    /// A CSV with a table model's feature columns (any order; others ignored), and an optional
    /// identifier column carried to the output.
    Csv {
        /// The file.
        path: PathBuf,
        /// Identifier column.
        id: Option<String>,
        /// Field separator (default `,`).
        delimiter: Option<char>,
    },
    /// A float32 or float64 `.npy` array `N x 3 x H x W` in [0, 1] for an image model.
    Npy(PathBuf),
    /// One of an image model's own sets: `train`, `test-unbiased`, `test-biased`.
    Split(String),
}

impl Input {
    /// `input` (a CSV, or a `.npy` array for an image model) or an image model's own `split` (not both;
    /// neither: the unbiased test set of an image model).
    pub fn new(input: Option<&Path>, split: Option<&str>, id: Option<&str>, delimiter: Option<char>) -> Result<Input> {
        match (input, split) {
            (Some(p), None) if p.extension().is_some_and(|e| e == "npy") => Ok(Input::Npy(p.to_path_buf())),
            (Some(p), None) => Ok(Input::Csv { path: p.to_path_buf(), id: id.map(String::from), delimiter }),
            (None, s) => Ok(Input::Split(s.unwrap_or("test-unbiased").to_string())),
            (Some(_), Some(_)) => {
                Err(Error::param(Param::Split, "given", "rows come from an input file or from a set, not both"))
            }
        }
    }
}

/// Rows ready for a model: inputs, identifier columns, and how many input rows were dropped.
pub struct Rows {
    /// Inputs, row-major.
    pub x: Vec<f32>,
    /// Identifier columns (`row` first).
    pub lead: Vec<Column>,
    /// Input rows skipped for a missing feature value.
    pub dropped: usize,
}

/// The inputs of `input` for `model`.
pub fn rows(model: &FairModel, input: &Input) -> Result<Rows> {
    let index = |n: usize| ("row".to_string(), (0..n).map(|i| i.to_string()).collect());
    match (model.kind(), input) {
        (ModelKind::Table, Input::Csv { path, id, delimiter }) => {
            let encoding = model.config().encoding.as_ref().expect("a table model has encoders");
            let rows = crate::data::encode_features(model.read_table(path, *delimiter)?, encoding, id.as_deref())?;
            if rows.rows.is_empty() {
                return Err(Error::NoRows {
                    path: path.display().to_string(),
                    detail: format!(": no row has all the model's feature columns filled ({} dropped)", rows.n_dropped),
                });
            }
            if rows.n_dropped > 0 {
                tracing::warn!(
                    "{}: {} row(s) had a missing value in a feature column and were skipped; the output's `row` \
                     column gives each written row's 0-based index in the input",
                    path.display(),
                    rows.n_dropped
                );
            }
            let mut lead = vec![("row".to_string(), rows.rows.iter().map(|r| r.to_string()).collect())];
            lead.extend(rows.ids);
            Ok(Rows { x: rows.x, lead, dropped: rows.n_dropped })
        }
        (ModelKind::Image, Input::Npy(path)) => {
            let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.clone(), source })?;
            let (shape, x) = read_npy(&bytes, &path.display().to_string())?;
            model.check_images(&shape, &x, &path.display().to_string())?;
            Ok(Rows { x, lead: vec![index(shape.first().copied().unwrap_or(0))], dropped: 0 })
        }
        (ModelKind::Image, Input::Split(split)) => {
            let d = model.config().data.prepare()?;
            let set = match split.as_str() {
                "train" => d.train,
                "test-unbiased" => d.test,
                "test-biased" => d.test_biased.expect("image data has a biased test set"),
                _ => {
                    return Err(Error::param(Param::Split, split, "must be one of: train, test-unbiased, test-biased"))
                }
            };
            let lead = vec![
                index(set.n),
                ("label".into(), set.y.iter().map(|c| c.to_string()).collect()),
                ("colour".into(), set.s.iter().map(|c| c.to_string()).collect()),
            ];
            Ok(Rows { x: set.x.into_vec(), lead, dropped: 0 })
        }
        (ModelKind::Table, _) => {
            Err(Error::param(Param::Input, "not a table", "a table model reads the rows of a table file"))
        }
        (ModelKind::Image, Input::Csv { .. }) => Err(Error::param(
            Param::Input,
            "a table",
            "an image model reads a .npy array N x 3 x H x W, or one of its own image sets",
        )),
    }
}

/// Refuses to write `output` (or its `.index.csv` companion, for `.npy`) over one of `inputs`: an output
/// never replaces what it was computed from.
pub fn check_output(output: &Path, inputs: &[&Path]) -> Result<()> {
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    };
    let mut written = vec![output.to_path_buf()];
    if output.extension().is_some_and(|e| e == "npy") {
        written.push(output.with_extension("index.csv"));
    }
    for w in &written {
        if let Some(input) = inputs.iter().find(|i| same(w, i)) {
            return Err(Error::Refused {
                path: w.clone(),
                reason: format!(
                    "is an input of this command ({}): an output never replaces its input",
                    input.display()
                ),
                allow: None,
            });
        }
    }
    Ok(())
}

/// What to compute for each row.
#[derive(Clone, Copy, Debug)]
pub enum Apply {
    /// The stochastic layer's output (`t0..`, or `p0..` for probabilities).
    Encode,
    /// Predictions: a binary task's positive-class probability and decision; a multi-class task's
    /// class probabilities and most probable class.
    Predict {
        /// Sampled predictions averaged over this many draws.
        draws: usize,
        /// Decision threshold (binary).
        threshold: f64,
    },
}

/// A per-row result table.
pub struct Table {
    /// Identifier columns.
    pub lead: Vec<Column>,
    /// Values, row-major.
    pub values: Vec<f32>,
    /// Values per row.
    pub width: usize,
    /// Their column names.
    pub names: Vec<String>,
    /// Written as 0/1.
    pub binary: bool,
    /// A table's classes (more than two): the last value column, a label, is written in a CSV as its
    /// class value (an `.npy` keeps the label); empty otherwise.
    pub classes: Vec<String>,
}

/// Applies `model` to `rows`.
pub fn apply(model: &FairModel, rows: Rows, what: Apply, inference: Inference, seed: u64) -> Result<Table> {
    let Rows { x, lead, .. } = rows;
    Ok(match what {
        Apply::Encode => {
            let m = model.code_width();
            Table {
                lead,
                values: model.encode(&x, inference, seed)?,
                width: m,
                names: code_names(m, inference),
                binary: inference != Inference::Prob,
                classes: Vec::new(),
            }
        }
        Apply::Predict { draws, .. } if model.regression().is_some() => {
            // A regression model's one column: the prediction in the target's units.
            let values = model.predict_values(&x, inference, draws, seed)?.iter().map(|&v| v as f32).collect();
            Table { lead, values, width: 1, names: vec!["prediction".into()], binary: false, classes: Vec::new() }
        }
        Apply::Predict { draws, threshold } => {
            let classes = model.net().config().n_classes();
            let probs = model.predict_proba(&x, inference, draws, seed)?;
            let decisions = decide(&probs, classes, threshold);
            let rows = probs.chunks(classes).zip(&decisions);
            // A table's classes name its columns (`p_<value>`, the class by its value); the images' are numbers.
            let labels = model.config().encoding.as_ref().map(|e| e.target.classes.clone()).unwrap_or_default();
            let (values, names): (Vec<f32>, Vec<String>) = if classes == 2 {
                (rows.flat_map(|(p, &d)| [p[1], d as f32]).collect(), vec!["probability".into(), "decision".into()])
            } else {
                (
                    rows.flat_map(|(p, &d)| p.iter().copied().chain([d as f32])).collect(),
                    (0..classes)
                        .map(|k| labels.get(k).map_or(format!("p{k}"), |c| format!("p_{c}")))
                        .chain(["class".into()])
                        .collect(),
                )
            };
            Table { lead, width: names.len(), values, names, binary: false, classes: labels }
        }
    })
}

/// Writes a result table to `path`: `.csv` (identifier columns, then the values), or `.npy` (the values
/// only) with a companion `.index.csv` holding the identifiers and the value columns' names.
pub fn write(path: &Path, table: &Table) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => {
            let bytes = csv(&table.lead, &table.values, table.width, &table.names, table.binary, &table.classes);
            files::write_atomic(path, &bytes)
        }
        Some("npy") => {
            let mut lead = table.lead.clone();
            let n = lead.first().map_or(0, |c| c.1.len());
            lead.push(("columns".into(), vec![table.names.join(";"); n]));
            files::write_atomic(&path.with_extension("index.csv"), &csv(&lead, &[], 0, &[], false, &[]))?;
            files::write_atomic(path, &npy(&table.values, table.width))
        }
        _ => Err(Error::param(Param::Output, path.display(), "the name must end in .csv or .npy")),
    }
}

/// CSV bytes: the leading columns, then `m` value columns per row named `{prefix}{j}` (or the names in
/// `names` when given). Binary values (codes) are written as `0`/`1`, others in full precision; with
/// `classes`, the last value column is a label written as its class.
pub fn csv(lead: &[Column], values: &[f32], m: usize, names: &[String], binary: bool, classes: &[String]) -> Vec<u8> {
    let n = lead.first().map(|c| c.1.len()).unwrap_or(values.len() / m.max(1));
    let mut out = String::new();
    let mut header: Vec<String> = lead.iter().map(|c| quote(&c.0)).collect();
    header.extend(names.iter().map(|n| quote(n)));
    out += &header.join(",");
    out.push('\n');
    for i in 0..n {
        let mut first = true;
        for (_, cells) in lead {
            if !first {
                out.push(',');
            }
            out += &quote(&cells[i]);
            first = false;
        }
        for (j, v) in values[i * m..(i + 1) * m].iter().enumerate() {
            if !first {
                out.push(',');
            }
            first = false;
            if !classes.is_empty() && j + 1 == m {
                out += &quote(classes.get(*v as usize).map_or("", String::as_str));
            } else if binary {
                out += if *v > 0.5 { "1" } else { "0" };
            } else {
                out += &v.to_string();
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The value columns of codes: `t0..` for binary codes, `p0..` for probabilities.
pub fn code_names(m: usize, inference: Inference) -> Vec<String> {
    let prefix = if inference == Inference::Prob { "p" } else { "t" };
    (0..m).map(|j| format!("{prefix}{j}")).collect()
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// NPY (version 1.0) bytes of a `float32` array `[n, m]`.
pub fn npy(values: &[f32], m: usize) -> Vec<u8> {
    let n = values.len() / m.max(1);
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {m}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads an NPY array of `float32` or `float64` in C order: its shape and values (as `f32`).
pub fn read_npy(bytes: &[u8], source: &str) -> crate::Result<(Vec<usize>, Vec<f32>)> {
    let bad = |reason: String| crate::Error::Idx { path: source.to_string(), reason };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an NPY file (no \\x93NUMPY magic)".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!("NPY version {v} is not supported"))),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len).ok_or_else(|| bad("truncated header".into()))?)
        .map_err(|_| bad("the header is not text".into()))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        Some(header[at + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr").ok_or_else(|| bad("no 'descr' in the header".into()))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad(format!(
            "dtype {}: only little-endian float32 and float64 are read",
            descr.split(',').next().unwrap_or(descr)
        )));
    };
    if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad("Fortran order is not supported: save a C-ordered array".into()));
    }
    let shape_text = field("shape").ok_or_else(|| bad("no 'shape' in the header".into()))?;
    let inner =
        shape_text.strip_prefix('(').and_then(|t| t.split(')').next()).ok_or_else(|| bad("unreadable shape".into()))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|_| bad(format!("unreadable shape '{inner}'"))))
        .collect::<crate::Result<_>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + len..];
    if data.len() != count * width {
        return Err(bad(format!("shape {shape:?} needs {} data bytes, the file has {}", count * width, data.len())));
    }
    let values = if width == 4 {
        data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    } else {
        data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
    };
    Ok((shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_and_csv_quotes_identifiers() {
        let v = [0.5f32, 1.0, -2.0, 3.25, 0.0, 1.0];
        let (shape, back) = read_npy(&npy(&v, 3), "x.npy").unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(back, v);
        assert!(read_npy(&npy(&v, 3)[..70], "x.npy").is_err());
        let lead = vec![
            ("row".to_string(), vec!["0".to_string(), "2".into()]),
            ("id".to_string(), vec!["a,b".to_string(), "c".into()]),
        ];
        let text = String::from_utf8(csv(&lead, &v, 3, &code_names(3, Inference::Sample), true, &[])).unwrap();
        assert_eq!(text, "row,id,t0,t1,t2\n0,\"a,b\",0,1,0\n2,c,1,0,1\n");
    }
}

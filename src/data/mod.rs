//! Data: from a CSV file (or a shipped dataset) to standardised, one-hot encoded tensors of features `x`,
//! a binary task label `y` and a sensitive group index `s` (DESIGN section 6).
//!
//! The path is: read ([`table`]) -> dataset-specific filters and derived columns ([`builtin`]) -> drop rows
//! with a missing used cell -> stratified split on `(y, s)` ([`split`]) -> fit the encoders on the training
//! split ([`encoding`]) -> transform every split.

pub mod builtin;
pub mod encoding;
pub mod images;
pub mod split;
pub mod table;

pub use builtin::Builtin;
pub use encoding::{ColumnEncoder, Encoding};
pub use table::{Duplicates, RawTable};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the rows come from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A shipped dataset; `sensitive` picks one of [`Builtin::sensitive_choices`].
    Builtin {
        /// Which dataset.
        name: Builtin,
        /// Which sensitive attribute (default: the dataset's first).
        sensitive: Option<String>,
    },
    /// Any CSV file with a header row.
    Csv {
        /// The file.
        path: PathBuf,
        /// Target column (two distinct values).
        target: String,
        /// Sensitive column (any number of values).
        sensitive: String,
        /// The target value that counts as positive (default: the larger of the two).
        positive: Option<String>,
        /// Columns to one-hot even though they hold numbers.
        categorical: Vec<String>,
        /// Columns to ignore.
        drop: Vec<String>,
    },
}

/// Everything that determines the rows and splits: stored in `config.json` so that `eval` can rebuild them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataSpec {
    /// Where the rows come from.
    pub source: Source,
    /// Fraction of rows held out for testing.
    pub test_size: f64,
    /// Fraction of the remaining rows held out for validation (early stopping); 0 = none.
    pub val_size: f64,
    /// Seed of the split.
    pub seed: u64,
    /// Use the sensitive attribute as an input feature too.
    pub include_sensitive: bool,
}

impl DataSpec {
    /// A short name for reports: the dataset's name or the CSV file's stem.
    pub fn name(&self) -> String {
        match &self.source {
            Source::Builtin { name, .. } => name.name().to_string(),
            Source::Csv { path, .. } => path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| path.display().to_string()),
        }
    }

    /// Checks the option ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.test_size > 0.0 && self.test_size < 1.0) {
            return Err(Error::option(
                "--test-size",
                self.test_size,
                "must be in (0, 1)",
            ));
        }
        if !(0.0..1.0).contains(&self.val_size) {
            return Err(Error::option(
                "--val-size",
                self.val_size,
                "must be in [0, 1)",
            ));
        }
        Ok(())
    }
}

/// Which columns play which role in a table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    /// Target column.
    pub target: String,
    /// Positive target value (`None`: the larger of the two).
    pub positive: Option<String>,
    /// Sensitive column.
    pub sensitive: String,
    /// Feature columns, in order.
    pub features: Vec<String>,
    /// Feature columns forced to be categorical.
    pub categorical: Vec<String>,
}

/// Reads the rows a spec names and says which column is which.
pub fn load_table(spec: &DataSpec) -> Result<(RawTable, TableSpec)> {
    let (table, mut tspec) = match &spec.source {
        Source::Builtin { name, sensitive } => name.load(sensitive.as_deref())?,
        Source::Csv {
            path,
            target,
            sensitive,
            positive,
            categorical,
            drop,
        } => {
            let t = RawTable::from_path(path, Duplicates::Reject)?;
            for c in [target, sensitive]
                .into_iter()
                .chain(drop)
                .chain(categorical)
            {
                t.col(c)?;
            }
            let features = t
                .header
                .iter()
                .filter(|h| *h != target && *h != sensitive && !drop.contains(h))
                .cloned()
                .collect();
            let tspec = TableSpec {
                target: target.clone(),
                positive: positive.clone(),
                sensitive: sensitive.clone(),
                features,
                categorical: categorical.clone(),
            };
            (t, tspec)
        }
    };
    if spec.include_sensitive {
        tspec.features.push(tspec.sensitive.clone());
    }
    Ok((table, tspec))
}

/// One split's model-ready arrays.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, row-major `n x d`.
    pub x: Vec<f32>,
    /// Rows.
    pub n: usize,
    /// Features per row.
    pub d: usize,
    /// Task labels in {0, 1}.
    pub y: Vec<u8>,
    /// Sensitive group index in `0..n_groups`.
    pub s: Vec<u32>,
    /// Number of sensitive groups.
    pub n_groups: usize,
}

impl Dataset {
    /// Rows per sensitive group.
    pub fn group_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.n_groups];
        for &s in &self.s {
            c[s as usize] += 1;
        }
        c
    }

    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            x.extend_from_slice(&self.x[i * self.d..(i + 1) * self.d]);
        }
        Dataset {
            x,
            n: idx.len(),
            d: self.d,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            s: idx.iter().map(|&i| self.s[i]).collect(),
            n_groups: self.n_groups,
        }
    }
}

/// The prepared splits, the fitted encoding and what was dropped.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Training split.
    pub train: Dataset,
    /// Validation split (empty when `val_size` is 0).
    pub val: Option<Dataset>,
    /// Test split.
    pub test: Dataset,
    /// The fitted encoders (from the training split) and label mappings.
    pub encoding: Encoding,
    /// Rows dropped for a missing value in a used column.
    pub n_dropped: usize,
}

/// Loads, filters, splits and encodes. With `encoding = Some(..)` (a saved model), the saved encoders and
/// label mappings are applied instead of fitted, so the model sees inputs exactly as in training.
pub fn prepare(spec: &DataSpec, encoding: Option<&Encoding>) -> Result<Prepared> {
    spec.validate()?;
    let (table, tspec) = load_table(spec)?;
    prepare_table(table, &tspec, spec, encoding)
}

/// [`prepare`] on a table already read (the split and options from `spec`, the roles from `tspec`).
pub fn prepare_table(
    mut table: RawTable,
    tspec: &TableSpec,
    spec: &DataSpec,
    encoding: Option<&Encoding>,
) -> Result<Prepared> {
    spec.validate()?;
    let tspec = tspec.clone();
    if table.n_rows() == 0 {
        return Err(Error::NoRows {
            path: table.source.clone(),
            detail: String::new(),
        });
    }
    let n_dropped = drop_missing(&mut table, &tspec)?;
    if table.n_rows() == 0 {
        return Err(Error::NoRows {
            path: table.source.clone(),
            detail: format!(" left: all {n_dropped} rows have a missing value in a used column"),
        });
    }
    let (target, sensitive) = match encoding {
        Some(e) => (e.target.clone(), e.sensitive.clone()),
        None => (
            encoding::TargetEncoding::fit(&table, &tspec)?,
            encoding::SensitiveEncoding::fit(&table, &tspec)?,
        ),
    };
    let y = target.apply(&table)?;
    let s = sensitive.apply(&table)?;
    let n_groups = sensitive.groups.len();
    let (train_idx, val_idx, test_idx) = split::stratified(&y, &s, n_groups, spec)?;
    for (split_name, idx) in [("training", &train_idx), ("test", &test_idx)] {
        let mut counts = vec![0usize; n_groups];
        for &i in idx {
            counts[s[i] as usize] += 1;
        }
        let present = |g: usize| s.iter().any(|&v| v as usize == g);
        if let Some(g) = (0..n_groups).find(|&g| present(g) && counts[g] < 2) {
            return Err(Error::SmallGroup {
                path: table.source.clone(),
                column: sensitive.column.clone(),
                group: sensitive.groups[g].clone(),
                split: split_name.into(),
                count: counts[g],
            });
        }
    }
    let encoding = match encoding {
        Some(e) => e.clone(),
        None => Encoding::fit(&table, &tspec, &train_idx, target, sensitive)?,
    };
    let x = encoding.transform(&table)?;
    // The text cells are no longer needed: free them before the splits are copied out.
    drop(table);
    let all = Dataset {
        n: y.len(),
        d: encoding.n_features(),
        x,
        y,
        s,
        n_groups,
    };
    Ok(Prepared {
        train: all.subset(&train_idx),
        val: (!val_idx.is_empty()).then(|| all.subset(&val_idx)),
        test: all.subset(&test_idx),
        encoding,
        n_dropped,
    })
}

/// Drops rows with a missing cell in a used column (features, target, sensitive); returns how many.
fn drop_missing(table: &mut RawTable, tspec: &TableSpec) -> Result<usize> {
    let mut used = vec![table.col(&tspec.target)?, table.col(&tspec.sensitive)?];
    for f in &tspec.features {
        used.push(table.col(f)?);
    }
    let keep: Vec<bool> = (0..table.n_rows())
        .map(|r| {
            used.iter()
                .all(|&c| !table::is_missing(table.columns[c].get(r)))
        })
        .collect();
    let dropped = keep.iter().filter(|k| !**k).count();
    table.retain_rows(&keep);
    Ok(dropped)
}

/// Rows of a new table encoded with a saved encoding, for `encode`: the features of the kept rows and the
/// 0-based data-row index of each kept row in the input.
#[derive(Clone, Debug)]
pub struct EncodedRows {
    /// Features, row-major `n x d`.
    pub x: Vec<f32>,
    /// Feature width.
    pub d: usize,
    /// 0-based index (among the input's data rows) of each kept row.
    pub rows: Vec<usize>,
    /// Rows dropped for a missing feature value.
    pub n_dropped: usize,
}

/// Encodes the feature columns of a new table (target and sensitive columns are not needed).
pub fn encode_features(mut table: RawTable, encoding: &Encoding) -> Result<EncodedRows> {
    let cols: Vec<usize> = encoding
        .columns
        .iter()
        .map(|c| table.col(c.name()))
        .collect::<Result<_>>()?;
    let keep: Vec<bool> = (0..table.n_rows())
        .map(|r| {
            cols.iter()
                .all(|&c| !table::is_missing(table.columns[c].get(r)))
        })
        .collect();
    let rows: Vec<usize> = (0..keep.len()).filter(|&r| keep[r]).collect();
    let n_dropped = keep.len() - rows.len();
    table.retain_rows(&keep);
    let x = encoding.transform(&table)?;
    Ok(EncodedRows {
        x,
        d: encoding.n_features(),
        rows,
        n_dropped,
    })
}

//! Tables: a shipped dataset or a CSV file -> dropped missing rows -> stratified split -> encoders fitted on
//! the training split -> [`Prepared`] (docs/design.md, section 6).

use super::builtin::Builtin;
use super::columnar;
use super::encoding::{self, Encoding};
use super::table::{Duplicates, RawTable};
use super::{split, Dataset, Prepared};
use crate::error::{Error, Result};
use crate::schema::Param;
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
    /// Rows handed over in memory (the Python package): they cannot be read again, so a model trained on
    /// them is evaluated on rows given again.
    Memory {
        /// What to call them in reports.
        name: String,
    },
    /// Any CSV file with a header row.
    Csv {
        /// The file.
        path: PathBuf,
        /// Target column (two distinct values).
        target: String,
        /// Sensitive column (any number of values), or several joined by commas (intersectional groups).
        sensitive: String,
        /// Cut a numeric sensitive column into this many quantile groups.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sensitive_bins: Option<usize>,
        /// The target value that counts as positive (default: the larger of the two).
        positive: Option<String>,
        /// Columns to one-hot even though they hold numbers.
        categorical: Vec<String>,
        /// Columns to ignore.
        drop: Vec<String>,
        /// Field separator (default `,`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delimiter: Option<char>,
        /// Classify the target's values or regress on its number.
        #[serde(default, skip_serializing_if = "Task::is_classification")]
        task: Task,
    },
}

/// What becomes of a row with a missing feature value (docs/design.md, section 6). A row missing its target
/// or group is dropped whatever the policy (labels are not imputed), except under `Error`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Dropped and counted.
    #[default]
    Drop,
    /// An error naming the first such cell's line and column.
    Error,
    /// Filled with the training rows' median (numbers) or most frequent value (text), with an indicator
    /// input for a column missing a value in the training rows.
    Impute,
}

named_choices!(Missing, Missing, { Drop => "drop", Error => "error", Impute => "impute" });

/// What a table's target is (docs/design.md, section 5c): labels to classify (two up to
/// [`super::MAX_CLASSES`] values) or a number to regress on, asked for explicitly: a numeric column of many
/// values is never taken for a regression target on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Binary or multi-class labels.
    #[default]
    Classification,
    /// A numeric target, standardised with the training rows' mean and std, fitted by squared error.
    Regression,
}

named_choices!(Task, Task, { Classification => "classification", Regression => "regression" });

impl Task {
    /// The default, left out of saved files so that a classifier's `config.json` reads as before.
    pub fn is_classification(&self) -> bool {
        *self == Task::Classification
    }
}

impl Missing {
    fn is_drop(&self) -> bool {
        *self == Missing::Drop
    }
}

/// Where a table comes from and how it is split: stored in `config.json` so that `eval` can rebuild it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableSpec {
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
    /// Fraction of rows held out, before training, for the population certificate (0: the test split
    /// serves).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub certify_size: f64,
    /// Read the file in passes and train from a memory-mapped cache ([`super::stream`]), whatever its size
    /// (without it, a file too big for memory streams anyway: [`prepare`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Rows with a missing feature value: dropped, refused, or imputed.
    #[serde(default, skip_serializing_if = "Missing::is_drop")]
    pub missing: Missing,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl TableSpec {
    /// A shipped dataset with its default sensitive attribute and the default split (30% test, no
    /// validation).
    pub fn builtin(name: Builtin, seed: u64) -> Self {
        TableSpec {
            source: Source::Builtin { name, sensitive: None },
            test_size: 0.3,
            val_size: 0.0,
            seed,
            include_sensitive: false,
            certify_size: 0.0,
            stream: false,
            missing: Missing::Drop,
        }
    }

    /// A short name for reports: the dataset's name or the CSV file's stem.
    pub fn name(&self) -> String {
        match &self.source {
            Source::Builtin { name, .. } => name.name().to_string(),
            Source::Memory { name } => name.clone(),
            Source::Csv { path, .. } => {
                path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string())
            }
        }
    }

    /// Checks the option ranges ([`crate::schema::check`]) and that the held-out shares leave rows to train on.
    pub fn validate(&self) -> Result<()> {
        use crate::schema::check;
        check::test_size(&self.test_size)?;
        check::certify_size(&self.certify_size)?;
        check::val_size(&self.val_size)?;
        if self.certify_size + self.test_size >= 1.0 {
            let why = format!("with the test fraction {} it leaves no rows to train on", self.test_size);
            return Err(Error::param(Param::CertifySize, self.certify_size, why));
        }
        Ok(())
    }
}

/// Which columns play which role in a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Roles {
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
    /// The edges the sensitive column was cut at, when it was binned ([`super::groups`]).
    pub bins: Option<Vec<f64>>,
    /// Classification or regression of the target.
    pub task: Task,
}

/// The error for rows that were handed over in memory and cannot be read again.
fn in_memory(name: &str) -> Error {
    Error::DataMoved {
        path: name.into(),
        // The way out (held-out rows with their target and sensitive columns) is the error's hint, named as
        // the caller names them.
        reason: "the model was trained on rows held in memory (Python), which cannot be read again".into(),
    }
}

/// Reads the rows a spec names and says which column is which.
pub fn load_table(spec: &TableSpec) -> Result<(RawTable, Roles)> {
    let table = match &spec.source {
        Source::Builtin { name, sensitive } => {
            let (table, roles) = name.load(sensitive.as_deref())?;
            let roles = finish_roles(&table, roles, spec)?;
            return Ok((table, roles));
        }
        Source::Memory { name } => return Err(in_memory(name)),
        Source::Csv { path, delimiter, .. } => RawTable::from_path_with(path, Duplicates::Reject, *delimiter)?,
    };
    let mut table = table;
    let bins = match &spec.source {
        Source::Csv { sensitive, sensitive_bins, .. } => {
            super::groups::derive(&mut table, sensitive, *sensitive_bins, None)?
        }
        _ => None,
    };
    let roles = Roles { bins, ..file_roles(&table, spec)? };
    Ok((table, roles))
}

/// The roles of a file's columns (`table` needs only its header): the named target and sensitive columns,
/// every other column a feature unless dropped. Names that are not columns are errors listing the columns.
pub fn file_roles(table: &RawTable, spec: &TableSpec) -> Result<Roles> {
    let Source::Csv { target, sensitive, positive, categorical, drop, task, .. } = &spec.source else {
        return Err(Error::param(Param::Input, spec.name(), "not a file"));
    };
    for c in [target, sensitive].into_iter().chain(drop).chain(categorical) {
        table.col(c)?;
    }
    let features =
        table.header.iter().filter(|h| *h != target && *h != sensitive && !drop.contains(h)).cloned().collect();
    let roles = Roles {
        target: target.clone(),
        positive: positive.clone(),
        sensitive: sensitive.clone(),
        features,
        categorical: categorical.clone(),
        bins: None,
        task: *task,
    };
    finish_roles(table, roles, spec)
}

fn finish_roles(table: &RawTable, mut roles: Roles, spec: &TableSpec) -> Result<Roles> {
    if spec.include_sensitive {
        roles.features.push(roles.sensitive.clone());
    }
    if roles.features.is_empty() {
        return Err(Error::NoFeatures { path: table.source.clone(), columns: table.header.join(", ") });
    }
    if roles.target == roles.sensitive {
        tracing::warn!(
            "{}: the target column '{}' is also the sensitive attribute: the task is to predict the group, so \
             every fairness number measures the task itself",
            table.source,
            roles.target
        );
    }
    Ok(roles)
}

/// Loads, filters, splits and encodes. With `encoding = Some(..)` (a saved model), the saved encoders and
/// label mappings are applied instead of fitted, so the model sees inputs exactly as in training.
pub fn prepare(spec: &TableSpec, encoding: Option<&Encoding>) -> Result<Prepared> {
    if let Source::Memory { name } = &spec.source {
        return Err(in_memory(name));
    }
    if spec.stream || too_big_for_memory(spec)? {
        return super::stream::prepare(spec, encoding);
    }
    spec.validate()?;
    crate::files::pause_point("reading");
    let (table, tspec) = load_table(spec)?;
    crate::files::pause_point("encoding");
    prepare_table(table, &tspec, spec, encoding)
}

/// Bytes of memory per byte of a CSV file read whole and prepared when its cells are long (text cells and
/// their offsets, the encoded inputs): measured as the peak resident memory of `train` on a 2,000,000-row
/// CSV file of 50 columns (2.49 GB for 0.9 GB of text, with text cells), rounded up. A gzipped file counts
/// four times its size in text.
const CSV_MEMORY_PER_BYTE: f64 = 3.0;

/// The memory a table file would take read whole and prepared, estimated before reading it. A CSV file is
/// costed both per byte ([`CSV_MEMORY_PER_BYTE`]) and per cell (the cells its first megabyte holds per
/// byte, times [`columnar::BYTES_PER_CELL_IN_MEMORY`]), whichever is larger: a file of short cells
/// (`0,1,0`) holds a number of 8 bytes and inputs of 4 bytes each for every 2 bytes of text (a 100 MB file
/// of 0s and 1s peaked at 0.74 GB, over twice the per-byte estimate).
fn in_memory_estimate(path: &std::path::Path, delimiter: Option<char>) -> Result<f64> {
    if let Some(format) = columnar::Format::of(path) {
        return columnar::in_memory_estimate(path, format);
    }
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len() as f64;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let text = if gz { 4.0 * size } else { size };
    // The first megabyte of text: its separators and line breaks, one per cell.
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::new();
    let reader: Box<dyn std::io::Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
    // A gzip stream that does not decode is reported by the reader, with its own message.
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(reader, 1 << 20), &mut head);
    let sep = delimiter.unwrap_or(',') as u32;
    let cells = head.iter().filter(|&&b| u32::from(b) == sep || b == b'\n').count() as f64;
    let per_cell =
        if head.is_empty() { 0.0 } else { text * cells / head.len() as f64 * columnar::BYTES_PER_CELL_IN_MEMORY };
    Ok((text * CSV_MEMORY_PER_BYTE).max(per_cell))
}

/// Whether a table file that was not asked to stream should: the in-memory estimate
/// ([`in_memory_estimate`]) exceeds half the memory available (the other half for training and
/// evaluation), and the options are ones streaming supports (no imputation, no binned sensitive column, no
/// regression target).
/// Streaming gives the same encoders, splits and metrics (`tests/columnar.rs`), so the choice changes only
/// the memory a run needs; it is logged.
fn too_big_for_memory(spec: &TableSpec) -> Result<bool> {
    let Source::Csv { path, sensitive_bins, task, delimiter, .. } = &spec.source else { return Ok(false) };
    if spec.missing == Missing::Impute || sensitive_bins.is_some() || *task == Task::Regression {
        return Ok(false);
    }
    let (Ok(estimate), Some(available)) = (in_memory_estimate(path, *delimiter), encoding::available_memory()) else {
        // An unreadable footer is reported by the reader, with its own message.
        return Ok(false);
    };
    let stream = streams_at(estimate, available);
    if stream {
        let gb = |b: f64| format!("{:.1} GB", b / 1e9);
        tracing::info!(
            "{}: read whole it would take about {}, and {} is available: it is read in passes and trained \
             from a cache on disk (out of core), with the same results",
            path.display(),
            gb(estimate),
            gb(available)
        );
    }
    Ok(stream)
}

/// The rule of [`too_big_for_memory`]: more than half of what is available.
fn streams_at(estimate: f64, available: f64) -> bool {
    estimate > 0.5 * available
}

/// [`prepare`] on a table already read (the split and options from `spec`, the roles from `tspec`).
pub fn prepare_table(
    mut table: RawTable,
    tspec: &Roles,
    spec: &TableSpec,
    encoding: Option<&Encoding>,
) -> Result<Prepared> {
    spec.validate()?;
    let tspec = tspec.clone();
    if table.n_rows() == 0 {
        return Err(Error::NoRows { path: table.source.clone(), detail: String::new() });
    }
    let n_dropped = apply_missing(&mut table, &tspec, spec.missing)?;
    if table.n_rows() == 0 {
        return Err(Error::NoRows {
            path: table.source.clone(),
            detail: format!(" left: all {n_dropped} rows have a missing value in a used column"),
        });
    }
    let (target, sensitive) = match encoding {
        Some(e) => (e.target.clone(), e.sensitive.clone()),
        None => (encoding::TargetEncoding::fit(&table, &tspec)?, encoding::SensitiveEncoding::fit(&table, &tspec)?),
    };
    let y = target.apply(&table)?;
    let s = sensitive.apply(&table)?;
    let n_groups = sensitive.groups.len();
    let split::Splits { train: train_idx, val: val_idx, test: test_idx, certify: certify_idx } =
        split::splits(&y, &s, n_groups, spec)?;
    check_group_sizes(&table.source, &sensitive, &s, &train_idx, &test_idx)?;
    let encoding = match encoding {
        Some(e) => e.clone(),
        None => {
            let target = target.scaled_on(&table, &train_idx)?;
            Encoding::fit(&table, &tspec, &train_idx, target, sensitive, spec.missing == Missing::Impute)?
        }
    };
    let t = encoding.target.values(&table)?;
    // The inputs of every row, then the splits copied out of them: two arrays of that size at once.
    encoding.check_size(&table.source, table.n_rows(), encoding::Place::Memory { copies: 2 })?;
    let x = encoding.transform(&table)?;
    // The text cells are no longer needed: free them before the splits are copied out.
    drop(table);
    let d = encoding.n_features();
    let n_classes = encoding.target.n_classes();
    let all = Dataset { n: y.len(), d, shape: vec![d], x: x.into(), y, s, n_groups, n_classes, w: None, t };
    let sets = [&train_idx, &val_idx, &test_idx, &certify_idx].map(|idx| all.subset(idx));
    Ok(Prepared::table(spec.name(), encoding, sets, n_dropped))
}

/// Every group present must have at least two rows in the training and the test split.
pub(crate) fn check_group_sizes(
    source: &str,
    sensitive: &encoding::SensitiveEncoding,
    s: &[u32],
    train_idx: &[usize],
    test_idx: &[usize],
) -> Result<()> {
    let n_groups = sensitive.groups.len();
    for (split_name, idx) in [("training", train_idx), ("test", test_idx)] {
        let mut counts = vec![0usize; n_groups];
        for &i in idx {
            counts[s[i] as usize] += 1;
        }
        let present = |g: usize| s.iter().any(|&v| v as usize == g);
        if let Some(g) = (0..n_groups).find(|&g| present(g) && counts[g] < 2) {
            return Err(Error::SmallGroup {
                path: source.to_string(),
                column: sensitive.column.clone(),
                group: sensitive.groups[g].clone(),
                split: split_name.into(),
                count: counts[g],
            });
        }
    }
    Ok(())
}

/// The missing-value policy on a table's rows: drops (and counts) the rows with a missing used cell, or
/// refuses the first such cell, or (imputing) drops only the rows missing their target or group.
fn apply_missing(table: &mut RawTable, roles: &Roles, policy: Missing) -> Result<usize> {
    match policy {
        Missing::Drop => drop_missing(table, roles),
        Missing::Error => {
            let mut used = vec![roles.target.as_str(), roles.sensitive.as_str()];
            used.extend(roles.features.iter().map(String::as_str));
            require_complete(table, &used)?;
            Ok(0)
        }
        // Labels are not imputed.
        Missing::Impute => drop_missing(table, &Roles { features: Vec::new(), ..roles.clone() }),
    }
}

/// Drops rows with a missing cell in a used column (features, target, sensitive); returns how many.
fn drop_missing(table: &mut RawTable, tspec: &Roles) -> Result<usize> {
    let mut used = vec![table.col(&tspec.target)?, table.col(&tspec.sensitive)?];
    for f in &tspec.features {
        used.push(table.col(f)?);
    }
    let keep = table.complete_rows(&used);
    let dropped = keep.iter().filter(|k| !**k).count();
    table.retain_rows(&keep);
    Ok(dropped)
}

/// Rows of a new table encoded with a saved encoding (for `encode` and `predict`): the features of the
/// kept rows, the 0-based data-row index of each kept row in the input, and the values of an identifier
/// column when asked for.
#[derive(Clone, Debug)]
pub struct EncodedRows {
    /// Features, row-major `n x d`.
    pub x: Vec<f32>,
    /// Feature width.
    pub d: usize,
    /// 0-based index (among the input's data rows) of each kept row.
    pub rows: Vec<usize>,
    /// The identifier column's cells of the kept rows (with its name), when asked for.
    pub ids: Option<(String, Vec<String>)>,
    /// Rows dropped for a missing feature value.
    pub n_dropped: usize,
}

/// Encodes the feature columns of a new table (target and sensitive columns are not needed); `id` names a
/// column carried through to the outputs.
pub fn encode_features(mut table: RawTable, encoding: &Encoding, id: Option<&str>) -> Result<EncodedRows> {
    let cols: Vec<usize> = encoding.columns.iter().map(|c| table.col(c.name())).collect::<Result<_>>()?;
    let id_col = id.map(|name| table.col(name)).transpose()?;
    // A missing cell drops its row unless the column's encoder imputes it.
    let checked: Vec<usize> = cols.iter().enumerate().filter(|(j, _)| !encoding.imputes(*j)).map(|(_, &c)| c).collect();
    let keep = table.complete_rows(&checked);
    let rows: Vec<usize> = (0..keep.len()).filter(|&r| keep[r]).collect();
    let n_dropped = keep.len() - rows.len();
    table.retain_rows(&keep);
    let ids = id_col.map(|c| (table.header[c].clone(), table.columns[c].iter().map(String::from).collect()));
    let x = encoding.transform(&table)?;
    Ok(EncodedRows { x, d: encoding.n_features(), rows, ids, n_dropped })
}

/// Held-out rows for a saved model: which columns hold the target and the groups in the new file.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOut {
    /// Target column.
    pub target: String,
    /// Sensitive column (its groups are read from the new rows, in sorted order).
    pub sensitive: String,
    /// Positive target value (default: the saved positive value when the column has it, else the larger).
    pub positive: Option<String>,
    /// Seed of the halves the probes learn and are scored on.
    pub seed: u64,
    /// Field separator of the file (default `,`).
    pub delimiter: Option<char>,
    /// A column of row weights: the rows carry them (`Dataset::w`) for a certificate of the weighted
    /// population (docs/design.md, section 4e).
    pub weights: Option<String>,
}

/// The weights of the rows of `table` in `column` (docs/design.md, section 4e): every cell a finite
/// number `>= 0`, not all 0; an error names the line (the row, for a frame) of the first that is not.
pub fn read_weights(table: &RawTable, column: &str) -> Result<Vec<f32>> {
    let col = table.column(column)?;
    let what = format!("{}: weights column '{column}'", table.source);
    let bad = |reason: String| Error::Values { what: what.clone(), reason };
    let mut w = Vec::with_capacity(table.n_rows());
    for r in 0..table.n_rows() {
        let line = table.lines[r];
        let v = if col.missing(r) { None } else { col.number(r) };
        match v {
            Some(v) if v.is_finite() && v >= 0.0 && v <= f32::MAX as f64 => w.push(v as f32),
            Some(v) => return Err(bad(format!("line {line} holds {v}: a weight is a finite number >= 0"))),
            None => {
                let cell = col.get(r);
                return Err(bad(format!("line {line} holds '{cell}': every row needs a weight, a finite number >= 0")));
            }
        }
    }
    if !w.iter().any(|v| *v > 0.0) {
        return Err(bad("every weight is 0: no row would count".into()));
    }
    Ok(w)
}

/// The rows of a labelled table through a saved model's encoders: features by the saved encoding, the
/// target by the named column (the saved positive value when the column has it), the groups read from the
/// named sensitive column (sorted). Rows with a missing used cell are dropped and counted. Returns the rows
/// and the encoding with the new target and groups.
pub fn labelled_rows(mut table: RawTable, encoding: &Encoding, held: &HeldOut) -> Result<(Dataset, Encoding, usize)> {
    // The model's own groups are cut at its edges; another attribute is read as it is.
    let own = (encoding.sensitive.column == held.sensitive).then_some(&encoding.sensitive);
    let bins = super::groups::derive(&mut table, &held.sensitive, None, own)?;
    let mut features: Vec<String> = encoding.columns.iter().map(|c| c.name().to_string()).collect();
    features.retain(|f| *f != held.target && *f != held.sensitive);
    let roles = Roles {
        target: held.target.clone(),
        positive: held.positive.clone(),
        sensitive: held.sensitive.clone(),
        features,
        categorical: vec![],
        bins,
        task: if encoding.target.regression.is_some() { Task::Regression } else { Task::Classification },
    };
    if table.n_rows() == 0 {
        return Err(Error::NoRows { path: table.source.clone(), detail: String::new() });
    }
    let mut roles_all = roles.clone();
    // The columns whose missing cells drop the row: those the encoders do not impute.
    let not_imputed = encoding.columns.iter().enumerate().filter(|(j, _)| !encoding.imputes(*j));
    roles_all.features = not_imputed.map(|(_, c)| c.name().to_string()).collect();
    let n_dropped = drop_missing(&mut table, &roles_all)?;
    if table.n_rows() == 0 {
        return Err(Error::NoRows {
            path: table.source.clone(),
            detail: format!(": all {n_dropped} rows have a missing value in a used column"),
        });
    }
    let target = if encoding.target.regression.is_some() {
        // The model's scale, whatever the column is called: its predictions are in the training units.
        if held.positive.is_some() {
            let why = "a positive value applies to a binary target; the model regresses on a number";
            return Err(Error::param(Param::Positive, held.positive.clone().unwrap_or_default(), why));
        }
        encoding::TargetEncoding { column: held.target.clone(), ..encoding.target.clone() }
    } else if encoding.target.classes.is_empty() {
        let mut target = encoding::TargetEncoding::fit(&table, &roles)?;
        if target.n_classes() != 2 {
            return Err(Error::TargetValues {
                path: table.source.clone(),
                column: held.target.clone(),
                count: target.n_classes(),
                values: target.classes.join(", "),
                need: "exactly two for a binary model".into(),
            });
        }
        if held.positive.is_none() && encoding.target.positive == target.negative {
            // Keep the model's own positive value when the new column has it (renamed columns, same values).
            std::mem::swap(&mut target.positive, &mut target.negative);
        }
        target
    } else {
        // The model's classes, whatever the column is called: its head has one output per class.
        if held.positive.is_some() {
            return Err(Error::PositiveMulticlass {
                path: table.source.clone(),
                column: held.target.clone(),
                value: held.positive.clone().unwrap_or_default(),
                count: encoding.target.n_classes(),
            });
        }
        encoding::TargetEncoding { column: held.target.clone(), ..encoding.target.clone() }
    };
    let sensitive = encoding::SensitiveEncoding::fit(&table, &roles)?;
    let y = target.apply(&table)?;
    let t = target.values(&table)?;
    let s = sensitive.apply(&table)?;
    let x = encoding.transform(&table)?;
    let d = encoding.n_features();
    let n_groups = sensitive.groups.len();
    let n_classes = target.n_classes();
    // Read after the rows with a missing feature are dropped, so that the weights are the kept rows'.
    let w = held.weights.as_deref().map(|c| read_weights(&table, c)).transpose()?;
    let rows = Dataset { n: y.len(), d, shape: vec![d], x: x.into(), y, s, n_groups, n_classes, w, t };
    Ok((rows, Encoding { target, sensitive, ..encoding.clone() }, n_dropped))
}

/// Every row of a held-out table through a saved model's encoders ([`labelled_rows`]): `test` holds all
/// of them (task metrics, fairness, information, certificate); the probes for `s` learn on one stratified
/// half (`train`) and are scored on the other (`probe_test`).
pub fn prepare_held_out(
    table: RawTable,
    encoding: &Encoding,
    held: &HeldOut,
    leave_out: impl FnOnce(Dataset) -> Result<(Dataset, usize)>,
) -> Result<Prepared> {
    let source = table.source.clone();
    let (all, encoding, n_dropped) = labelled_rows(table, encoding, held)?;
    let (all, removed) = leave_out(all)?;
    if all.n == 0 && removed > 0 {
        let detail = format!(": all {removed} usable rows are rows the model was trained on; held-out rows are needed");
        return Err(Error::NoRows { path: source, detail });
    }
    if all.n < 4 {
        return Err(Error::NoRows {
            path: source,
            detail: format!(": {} usable row(s); held-out evaluation needs at least 4", all.n),
        });
    }
    let mut prepared = prepare_held_out_rows(all, &encoding, held.seed)?;
    prepared.description.dataset =
        std::path::Path::new(&source).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or(source);
    prepared.n_dropped = n_dropped;
    prepared.n_left_out = removed;
    Ok(prepared)
}

/// Labelled rows ([`labelled_rows`]) ready to evaluate: `test` holds all of them; the probes learn on a
/// stratified half (seeded by `seed`) and are scored on the other.
pub fn prepare_held_out_rows(all: Dataset, encoding: &Encoding, seed: u64) -> Result<Prepared> {
    let halves = TableSpec { test_size: 0.5, ..TableSpec::builtin(Builtin::Adult, seed) };
    let (probe_idx, _, score_idx) = split::stratified(&all.y, &all.s, all.n_groups, &halves)?;
    let (probe, score) = (all.subset(&probe_idx), all.subset(&score_idx));
    let empty = all.subset(&[]);
    let mut prepared = Prepared::table(String::new(), encoding.clone(), [probe, empty.clone(), all, empty], 0);
    prepared.probe_test = Some(score);
    Ok(prepared)
}

/// An error naming the first missing cell of the columns `used` (row order, then column order): rows held
/// as someone's aligned arrays cannot be dropped without misaligning them.
pub fn require_complete(table: &RawTable, used: &[&str]) -> Result<()> {
    let cols: Vec<usize> = used.iter().map(|c| table.col(c)).collect::<Result<_>>()?;
    for r in 0..table.n_rows() {
        if let Some(&c) = cols.iter().find(|&&c| table.columns[c].missing(r)) {
            return Err(Error::Csv {
                path: table.source.clone(),
                line: table.lines[r],
                message: format!("column '{}' has a missing value ('{}')", table.header[c], table.columns[c].get(r)),
            });
        }
    }
    Ok(())
}

/// The rows of a table spec after the rows with a missing used cell are dropped, with its roles and its
/// splits (indices into those rows): exactly the rows and order `prepare` trains and tests on.
pub fn split_rows(spec: &TableSpec) -> Result<(RawTable, Roles, split::Splits)> {
    spec.validate()?;
    let (mut table, roles) = load_table(spec)?;
    apply_missing(&mut table, &roles, spec.missing)?;
    let target = encoding::TargetEncoding::fit(&table, &roles)?;
    let sensitive = encoding::SensitiveEncoding::fit(&table, &roles)?;
    let (y, s) = (target.apply(&table)?, sensitive.apply(&table)?);
    let splits = split::splits(&y, &s, sensitive.groups.len(), spec)?;
    Ok((table, roles, splits))
}

/// A table to fit on, whole: the encoders are fitted on every row (no test split is held out; a
/// validation split of `val_size`, stratified, when asked). The missing-value policy `missing` as for a
/// file (docs/design.md, section 6): `Drop` drops the rows with a missing used cell (and their weights)
/// and counts them, `Error` refuses the first such cell naming its row and column ([`require_complete`]),
/// `Impute` fills missing features with the training rows' median or most frequent value (saved with the
/// encoders, with a missing indicator) and drops only the rows missing their target or group.
#[allow(clippy::too_many_arguments)]
pub fn prepare_fit(
    table: RawTable,
    roles: &Roles,
    val_size: f64,
    seed: u64,
    name: &str,
    weights: Option<Vec<f32>>,
    sensitive_bins: Option<usize>,
    missing: Missing,
) -> Result<Prepared> {
    let (mut table, mut weights) = (table, weights);
    // The rows are someone's aligned arrays: a dropped row takes its weight with it.
    let n_dropped = match missing {
        Missing::Error => apply_missing(&mut table, roles, missing)?,
        Missing::Drop | Missing::Impute => {
            let mut used = vec![roles.target.as_str(), roles.sensitive.as_str()];
            if missing == Missing::Drop {
                used.extend(roles.features.iter().map(String::as_str));
            }
            let cols: Vec<usize> = used.iter().map(|c| table.col(c)).collect::<Result<_>>()?;
            let keep: Vec<bool> =
                (0..table.n_rows()).map(|r| cols.iter().all(|&c| !table.columns[c].missing(r))).collect();
            let dropped = keep.iter().filter(|k| !**k).count();
            if dropped > 0 {
                table.retain_rows(&keep);
                if let Some(w) = &mut weights {
                    let mut kept = keep.iter();
                    w.retain(|_| *kept.next().expect("one flag per row"));
                    if !w.iter().any(|v| *v > 0.0) {
                        let reason = format!("every row of weight > 0 has a missing value ({dropped} rows dropped)");
                        return Err(Error::Values { what: "sample weights".into(), reason });
                    }
                }
            }
            dropped
        }
    };
    if table.n_rows() == 0 {
        return Err(Error::NoRows {
            path: table.source.clone(),
            detail: format!(" left: all {n_dropped} rows have a missing value in a used column"),
        });
    }
    let roles =
        &Roles { bins: super::groups::derive(&mut table, &roles.sensitive, sensitive_bins, None)?, ..roles.clone() };
    let target = encoding::TargetEncoding::fit(&table, roles)?;
    let sensitive = encoding::SensitiveEncoding::fit(&table, roles)?;
    let (y, s) = (target.apply(&table)?, sensitive.apply(&table)?);
    let n_groups = sensitive.groups.len();
    let spec = TableSpec { test_size: val_size.max(1e-9), ..TableSpec::builtin(Builtin::Adult, seed) };
    let (train_idx, val_idx) = if val_size > 0.0 {
        let (tr, _, va) = split::stratified(&y, &s, n_groups, &spec)?;
        (tr, va)
    } else {
        ((0..y.len()).collect(), Vec::new())
    };
    let target = target.scaled_on(&table, &train_idx)?;
    let encoding = Encoding::fit(&table, roles, &train_idx, target, sensitive, missing == Missing::Impute)?;
    let x = encoding.transform(&table)?;
    let t = encoding.target.values(&table)?;
    let d = encoding.n_features();
    let n_classes = encoding.target.n_classes();
    let all = Dataset { n: y.len(), d, shape: vec![d], x: x.into(), y, s, n_groups, n_classes, w: weights, t };
    // Without a validation split the training set is every row in order: moved, not copied.
    let sets = if val_idx.is_empty() {
        let empty = all.subset(&[]);
        [all, empty.clone(), empty.clone(), empty]
    } else {
        [&train_idx[..], &val_idx, &[], &[]].map(|idx| all.subset(idx))
    };
    Ok(Prepared::table(name.to_string(), encoding, sets, n_dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Int32Array, RecordBatch};
    use std::sync::Arc;

    #[test]
    fn a_columnar_file_streams_when_its_estimate_exceeds_half_the_memory_available() {
        assert!(!streams_at(1.0e9, 4.0e9));
        assert!(!streams_at(2.0e9, 4.0e9));
        assert!(streams_at(2.1e9, 4.0e9));
    }

    #[test]
    fn a_csv_file_of_short_cells_is_costed_by_its_cells() {
        let dir = tempfile::tempdir().unwrap();
        let (short, long) = (dir.path().join("short.csv"), dir.path().join("long.tsv"));
        std::fs::write(&short, "a,b,c\n".to_string() + &"0,1,0\n".repeat(1000)).unwrap();
        let cell = "a long text cell, ".repeat(10);
        std::fs::write(&long, format!("a\tb\n{}", format!("{cell}\t{cell}\n").repeat(100))).unwrap();
        let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len() as f64;
        // Short cells: one cell per 2 bytes of text, each at the per-cell cost.
        let e = in_memory_estimate(&short, None).unwrap();
        assert_eq!(e, size(&short) * 3003.0 / 6006.0 * columnar::BYTES_PER_CELL_IN_MEMORY);
        assert!(e > size(&short) * CSV_MEMORY_PER_BYTE);
        // Long cells, with their separator: the per-byte cost.
        assert_eq!(in_memory_estimate(&long, Some('\t')).unwrap(), size(&long) * CSV_MEMORY_PER_BYTE);
    }

    #[test]
    fn the_in_memory_estimate_counts_a_parquet_files_cells_from_its_footer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.parquet");
        let n = 1234;
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(Float32Array::from((0..n).map(|i| i as f32).collect::<Vec<_>>())) as _),
            ("s", Arc::new(Int32Array::from((0..n).map(|i| i % 2).collect::<Vec<_>>())) as _),
            ("y", Arc::new(Int32Array::from((0..n).map(|i| i % 3 % 2).collect::<Vec<_>>())) as _),
        ])
        .unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let estimate = columnar::in_memory_estimate(&path, columnar::Format::Parquet).unwrap();
        assert_eq!(estimate, (n * 3) as f64 * columnar::BYTES_PER_CELL_IN_MEMORY);
        // A small file is read whole: nothing streams below half of any machine's memory.
        let spec = TableSpec {
            source: Source::Csv {
                path: path.clone(),
                target: "y".into(),
                sensitive: "s".into(),
                sensitive_bins: None,
                positive: None,
                categorical: vec![],
                drop: vec![],
                delimiter: None,
                task: Task::Classification,
            },
            ..TableSpec::builtin(Builtin::Adult, 0)
        };
        assert!(!too_big_for_memory(&spec).unwrap());
    }
}

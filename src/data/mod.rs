//! Data: from a CSV file, a shipped table or an image set to model-ready arrays of inputs `x`, a task
//! label `y` and a sensitive group `s` (docs/design.md, section 6).
//!
//! Tables ([`tabular`]): read ([`table`]) -> dataset-specific filters and derived columns ([`builtin`]) ->
//! drop rows with a missing used cell -> stratified split on `(y, s)` ([`split`]) -> fit the encoders on
//! the training split ([`encoding`]) -> transform every split. Images ([`images`]): the shipped digits or
//! IDX files -> class-stratified split -> coloured backgrounds that bias the training set.
//!
//! Both end as a [`Prepared`]: [`Dataset`]s that the model, the training loop and the evaluation read the
//! same way whatever the input kind.

pub(crate) mod builtin;
pub(crate) mod cache;
pub(crate) mod chunked;
pub(crate) mod columnar;
pub(crate) mod encoding;
pub(crate) mod groups;
pub(crate) mod images;
pub(crate) mod split;
pub(crate) mod stream;
pub(crate) mod table;
pub(crate) mod tabular;

/// The most distinct values a text column may hold in the training rows (docs/design.md, section 6): each
/// becomes an input, so a column past it (an identifier, free text: a value per row) would make the inputs
/// rows x rows wide. Such a column is refused, naming it, before anything of that width is allocated.
pub const MAX_CATEGORIES: usize = 10_000;

/// Most classes a table's target may have: labels are bytes, and a column with more distinct values is
/// more likely a number to regress than classes to tell apart.
pub const MAX_CLASSES: usize = 100;

pub use builtin::Builtin;
pub use cache::Floats;
pub use encoding::{ColumnEncoder, Encoding, Place, Scale, SensitiveEncoding, TargetEncoding};
pub use groups::{derive as derive_groups, MAX_NUMERIC_GROUPS};
pub use images::{parse_idx, prepare_memory as prepare_images_in_memory, ImageDataset, ImageSpec};
pub use split::stratified;
pub use table::{number_text, Column, Duplicates, RawTable};
pub use tabular::{
    encode_features, labelled_rows, load_table, prepare_fit, prepare_held_out, prepare_held_out_rows, prepare_table,
    require_complete, split_rows, EncodedRows, HeldOut, Missing, Roles, Source, TableSpec, Task,
};

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything that determines the rows and splits of a run, saved in `config.json` so that a saved model
/// can rebuild them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSpec {
    /// A table: a shipped dataset or a CSV file, with its split options.
    Table(TableSpec),
    /// Colour-biased images.
    Images(ImageSpec),
}

impl DataSpec {
    /// A short name for reports: the dataset's name or the CSV file's stem.
    pub fn name(&self) -> String {
        match self {
            DataSpec::Table(t) => t.name(),
            DataSpec::Images(i) => i.dataset.name().to_string(),
        }
    }

    /// The seed of split (and, for images, colouring).
    pub fn seed(&self) -> u64 {
        match self {
            DataSpec::Table(t) => t.seed,
            DataSpec::Images(i) => i.seed,
        }
    }

    /// The same data with another seed.
    pub fn with_seed(&self, seed: u64) -> DataSpec {
        let mut d = self.clone();
        match &mut d {
            DataSpec::Table(t) => t.seed = seed,
            DataSpec::Images(i) => i.seed = seed,
        }
        d
    }

    /// Loads, splits and encodes (tables: fitting the encoders on the training split).
    pub fn prepare(&self) -> Result<Prepared> {
        match self {
            DataSpec::Table(t) => tabular::prepare(t, None),
            DataSpec::Images(i) => images::prepare(i),
        }
    }
}

/// One split's model-ready arrays.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Inputs, row-major `n x d` (in memory, or mapped from a cache file for data larger than memory).
    pub x: cache::Floats,
    /// Rows.
    pub n: usize,
    /// Inputs per row (the product of `shape`).
    pub d: usize,
    /// The shape of one row's input: `[d]` for a table, `[3, height, width]` for an image.
    pub shape: Vec<usize>,
    /// Task labels in `0..n_classes`.
    pub y: Vec<u8>,
    /// Sensitive group index in `0..n_groups`.
    pub s: Vec<u32>,
    /// Number of sensitive groups.
    pub n_groups: usize,
    /// Number of task classes (2 for a binary task).
    pub n_classes: usize,
    /// Sample weights, one per row (absent: every row counts once). Training draws its batches with
    /// probability proportional to them (docs/design.md section 3d).
    pub w: Option<Vec<f32>>,
    /// A regression target's standardised values, one per row (docs/design.md, section 5c); `y` then holds
    /// the halves the median cuts. Absent for labels.
    pub t: Option<Vec<f32>>,
}

/// Sample weights checked and narrowed: finite, not negative, not all zero (an error names the first
/// row that is not).
pub fn check_weights(w: &[f64], n: usize) -> Result<Vec<f32>> {
    let bad = |reason: String| Error::Values { what: "sample weights".into(), reason };
    if w.len() != n {
        return Err(bad(format!("{} weights for {n} rows", w.len())));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0 || *v > f32::MAX as f64) {
        return Err(bad(format!("row {} holds {}: a weight is a finite number >= 0", i + 1, w[i])));
    }
    let narrowed: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    if !narrowed.iter().any(|v| *v > 0.0) {
        return Err(bad("every weight is 0 (in single precision): no row would be trained on".into()));
    }
    Ok(narrowed)
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
            x: x.into(),
            n: idx.len(),
            d: self.d,
            shape: self.shape.clone(),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            s: idx.iter().map(|&i| self.s[i]).collect(),
            n_groups: self.n_groups,
            n_classes: self.n_classes,
            w: self.w.as_ref().map(|w| idx.iter().map(|&i| w[i]).collect()),
            t: self.t.as_ref().map(|t| idx.iter().map(|&i| t[i]).collect()),
        }
    }

    /// The inputs of `rows` as a `[b, shape..]` tensor.
    pub fn batch(&self, rows: &[usize], device: &Device) -> Result<Tensor> {
        let mut v = Vec::with_capacity(rows.len() * self.d);
        for &r in rows {
            v.extend_from_slice(&self.x[r * self.d..(r + 1) * self.d]);
        }
        let mut dims = vec![rows.len()];
        dims.extend(&self.shape);
        Ok(Tensor::from_vec(v, dims, device)?)
    }

    /// Every input as a `[n, shape..]` tensor.
    pub fn inputs(&self, device: &Device) -> Result<Tensor> {
        let mut dims = vec![self.n];
        dims.extend(&self.shape);
        Ok(Tensor::from_slice(&self.x, dims, device)?)
    }
}

/// What the rows are, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// Dataset name.
    pub dataset: String,
    /// Sensitive column (`colour` for images).
    pub sensitive: String,
    /// Group values (index = `s`).
    pub groups: Vec<String>,
}

/// The prepared splits of a run.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Training split.
    pub train: Dataset,
    /// Validation split, when asked for.
    pub val: Option<Dataset>,
    /// Test split (images: uniform colours, the unbiased test).
    pub test: Dataset,
    /// Where the probes for `s` learn, when not on the training split (images: the training images
    /// recoloured uniformly; probes trained on biased images would learn the class).
    pub probe_train: Option<Dataset>,
    /// Held-out rows for the population certificate, carved before training (`certify_size`); absent: the
    /// test split serves.
    pub certify: Option<Dataset>,
    /// Where the probes are scored, when not on the test split (held-out evaluation: the half of the rows
    /// the probes did not learn on).
    pub probe_test: Option<Dataset>,
    /// A second test set drawn like the training set (images: coloured with the training bias).
    pub test_biased: Option<Dataset>,
    /// The fitted encoders of a table (absent for images).
    pub encoding: Option<Encoding>,
    /// Rows dropped for a missing value in a used column.
    pub n_dropped: usize,
    /// Rows of a held-out file left out because the model was trained on them.
    pub n_left_out: usize,
    /// Names for reports.
    pub description: Description,
}

impl Prepared {
    /// A table's splits (an empty validation or certification set counts as none), described by its
    /// encoding; the probes learn on the training split.
    pub fn table(
        dataset: String,
        encoding: Encoding,
        [train, val, test, certify]: [Dataset; 4],
        n_dropped: usize,
    ) -> Self {
        Prepared {
            train,
            val: (val.n > 0).then_some(val),
            test,
            probe_train: None,
            probe_test: None,
            certify: (certify.n > 0).then_some(certify),
            test_biased: None,
            description: Description {
                dataset,
                sensitive: encoding.sensitive.column.clone(),
                groups: encoding.sensitive.groups.clone(),
            },
            encoding: Some(encoding),
            n_dropped,
            n_left_out: 0,
        }
    }

    /// The set probes learn on.
    pub fn probe_train(&self) -> &Dataset {
        self.probe_train.as_ref().unwrap_or(&self.train)
    }
}

/// A training CSV's absolute path and checksum, saved with a model so that it can be found from any
/// directory and a changed file is noticed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// Absolute path.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

fn sha256_of(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The absolute path and checksum of a training file.
pub fn file_fingerprint(path: &Path) -> Result<DataFile> {
    Ok(DataFile { path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()), sha256: sha256_of(path)? })
}

/// Checks that a saved model's training file is still where it was and unchanged: a missing file is an
/// error that says what to do; a changed one a warning (its split and metrics will differ).
pub fn check_fingerprint(spec: &DataSpec, saved: Option<&DataFile>) -> Result<()> {
    let DataSpec::Table(TableSpec { source: Source::Csv { path, .. }, .. }) = spec else {
        return Ok(());
    };
    if !path.exists() {
        return Err(Error::DataMoved {
            path: path.clone(),
            reason: format!(
                "the model was trained on this file{}, which is no longer there: restore it to rebuild the \
                 model's own split",
                saved.map_or(String::new(), |f| format!(" (sha256 {})", &f.sha256[..12]))
            ),
        });
    }
    if let Some(f) = saved {
        let now = sha256_of(path)?;
        if now != f.sha256 {
            tracing::warn!(
                "{}: the file changed since the model was trained (sha256 {} then, {} now): its split, and \
                 the metrics, differ from training's",
                path.display(),
                &f.sha256[..12],
                &now[..12]
            );
        }
    }
    Ok(())
}

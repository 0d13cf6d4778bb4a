//! The library's one error type. Every variant names the file, row (1-based line of the file, the header
//! being line 1), column or value at fault, so a user can find and fix the input.

use std::path::PathBuf;

/// Errors of the fairbits library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CSV reader could not parse a record (ragged row, invalid UTF-8, bad quoting).
    #[error("{path}: line {line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line of the file.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// The file has no header row.
    #[error("{path}: the file is empty (no header row)")]
    EmptyFile {
        /// The file.
        path: String,
    },
    /// The file has a header and no data rows (or none left after filtering).
    #[error("{path}: no data rows{detail}")]
    NoRows {
        /// The file.
        path: String,
        /// Extra context, e.g. how many rows were dropped.
        detail: String,
    },
    /// Two columns share a name, so a column reference would be ambiguous.
    #[error("{path}: duplicate column name '{column}'")]
    DuplicateColumn {
        /// The file.
        path: String,
        /// The repeated name.
        column: String,
    },
    /// A column named by an option or by the model's configuration is absent.
    #[error("{path}: column '{column}' not found; the columns are: {available}")]
    MissingColumn {
        /// The file.
        path: String,
        /// The column asked for.
        column: String,
        /// The header, comma-separated.
        available: String,
    },
    /// A cell of a numeric column is not a number.
    #[error(
        "{path}: line {line}, column '{column}': '{value}' is not a number, but the column is numeric \
         (most of its values are numbers); fix the cell or pass --categorical {column}"
    )]
    NotNumeric {
        /// The file.
        path: String,
        /// 1-based line of the file.
        line: u64,
        /// The column.
        column: String,
        /// The offending cell.
        value: String,
    },
    /// A numeric cell is infinite.
    #[error("{path}: line {line}, column '{column}': value '{value}' is not finite")]
    NonFinite {
        /// The file.
        path: String,
        /// 1-based line of the file.
        line: u64,
        /// The column.
        column: String,
        /// The offending cell.
        value: String,
    },
    /// A numeric value so far from the training data that standardising it leaves the `f32` range.
    #[error(
        "{path}: line {line}, column '{column}': value '{value}' is out of range: standardised with the \
         training mean {mean} and standard deviation {std} it exceeds the largest 32-bit float"
    )]
    OutOfRange {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
        /// Training mean.
        mean: f64,
        /// Training standard deviation.
        std: f64,
    },
    /// The target column does not have exactly two distinct values.
    #[error(
        "{path}: target column '{column}' has {count} distinct value(s) ({values}); a binary target needs exactly two"
    )]
    TargetValues {
        /// The file.
        path: String,
        /// The target column.
        column: String,
        /// How many distinct values.
        count: usize,
        /// Some of them.
        values: String,
    },
    /// `--positive` names a value the target column does not have.
    #[error("{path}: --positive '{value}' is not a value of target column '{column}' (values: {values})")]
    PositiveNotFound {
        /// The file.
        path: String,
        /// The target column.
        column: String,
        /// The value asked for.
        value: String,
        /// The values present.
        values: String,
    },
    /// The sensitive attribute has a single group, so there is nothing to be invariant to.
    #[error("{path}: sensitive column '{column}' has a single group ('{value}'); at least two are needed")]
    OneGroup {
        /// The file.
        path: String,
        /// The sensitive column.
        column: String,
        /// The only value.
        value: String,
    },
    /// A group has fewer than two rows in the training or the test split: its rates and probes would be
    /// meaningless.
    #[error(
        "{path}: group '{group}' of sensitive column '{column}' has {count} row(s) in the {split} split; \
         each group needs at least 2 in both splits (more rows, another --test-size, or merge the group)"
    )]
    SmallGroup {
        /// The file.
        path: String,
        /// The sensitive column.
        column: String,
        /// The group's value.
        group: String,
        /// `training` or `test`.
        split: String,
        /// Its rows there.
        count: usize,
    },
    /// A sensitive value unseen when the model was trained.
    #[error("{path}: line {line}, column '{column}': group '{value}' was not seen when the model was trained (groups: {known})")]
    UnknownGroup {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The sensitive column.
        column: String,
        /// The value.
        value: String,
        /// The groups the model knows.
        known: String,
    },
    /// A parameter is out of range or inconsistent with the others or with the data. `param` is the
    /// library's name for it (`gamma`, `batch_size`, `hidden`, ...); the command line names the flag.
    #[error("invalid {param} = {value}: {reason}")]
    InvalidParam {
        /// The parameter.
        param: String,
        /// Its value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A saved model directory is incomplete or unreadable.
    #[error("model directory {dir}: {reason}")]
    ModelDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file a model was trained on is gone or changed, so its own split cannot be rebuilt.
    #[error("{path}: {reason}")]
    DataMoved {
        /// The file as recorded at training.
        path: PathBuf,
        /// What happened and what to do.
        reason: String,
    },
    /// Training produced a non-finite loss.
    #[error("training diverged: the loss became {value} at epoch {epoch}, step {step}; try a smaller --lr or --gamma")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss value.
        value: f64,
    },
    /// The caller asked training to stop ([`crate::progress::Observer::cancelled`]).
    #[error("training interrupted at epoch {epoch}, step {step}")]
    Interrupted {
        /// 1-based epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
    },
    /// A Parquet or Arrow IPC file cannot be read.
    #[error("{path}: not a readable {format} file: {reason}")]
    Columnar {
        /// The file.
        path: String,
        /// Parquet or Arrow IPC.
        format: &'static str,
        /// What the reader said.
        reason: String,
    },
    /// An IDX (MNIST-format) file is malformed or truncated.
    #[error("{path}: {reason}")]
    Idx {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Drawing a plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// An error of the tensor library.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// JSON (de)serialisation failed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The documented exit code of the command line for this error: 1 runtime (I/O, tensors, JSON,
    /// plots), 2 an invalid parameter, 3 bad input data, 4 a bad model directory, 5 training diverged.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::InvalidParam { .. } => 2,
            Error::ModelDir { .. } => 4,
            Error::Diverged { .. } => 5,
            Error::Interrupted { .. } => 130,
            Error::Io { .. } | Error::Candle(_) | Error::Json { .. } | Error::Plot(_) => 1,
            _ => 3,
        }
    }

    /// Shorthand for [`Error::InvalidParam`].
    pub fn param(param: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidParam { param: param.to_string(), value: value.to_string(), reason: reason.into() }
    }
}

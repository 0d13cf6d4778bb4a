//! The library's one error type. Every variant names the file, row (1-based line of the file, the header
//! being line 1), column or value at fault, so a user can find and fix the input. Parameters are named by
//! their typed identifier ([`Param`]): the command line and the Python package render each message with
//! their own names for them ([`Error::render`]), and say what to do from the [`Hint`].

use crate::schema::Param;
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
    /// A table read with one separator that looks written with another (its header is one column).
    #[error("{path}: line 1: the header reads as one column ('{header}'): the file looks {looks}-separated")]
    Separator {
        /// The file.
        path: String,
        /// The header as read.
        header: String,
        /// The separator it looks written with, in words.
        looks: &'static str,
        /// That separator.
        separator: char,
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
         (most of its values are numbers): fix the cell, or encode the column as categories"
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
    /// A value so large that a numeric column's mean or spread overflows.
    #[error(
        "{path}: line {line}, column '{column}': value '{value}' is too large: the column's mean and spread \
         overflow (a standardised input would be meaningless); fix the cell or rescale the column"
    )]
    Overflow {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        value: String,
    },
    /// The target column has fewer than two distinct values, or more than a classifier's classes.
    #[error("{path}: target column '{column}' has {count} distinct value(s) ({values}); a target needs {need}")]
    TargetValues {
        /// The file.
        path: String,
        /// The target column.
        column: String,
        /// How many distinct values.
        count: usize,
        /// Some of them.
        values: String,
        /// How many it needs.
        need: String,
    },
    /// A positive value was asked for a target of more than two classes.
    #[error(
        "{path}: a positive value ('{value}') was given, but target column '{column}' has {count} classes; a \
         positive value applies to a binary target only"
    )]
    PositiveMulticlass {
        /// The file.
        path: String,
        /// The target column.
        column: String,
        /// The value asked for.
        value: String,
        /// Classes of the target.
        count: usize,
    },
    /// The positive value asked for is not a value of the target column.
    #[error("{path}: the positive value '{value}' is not a value of target column '{column}' (values: {values})")]
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
    /// A numeric sensitive column with many distinct values: as groups, each would be small and every
    /// bound vacuous.
    #[error(
        "{path}: sensitive column '{column}' holds {count} distinct numbers: taken as groups, each would be \
         small and every bound vacuous"
    )]
    NumericGroups {
        /// The file.
        path: String,
        /// The sensitive column.
        column: String,
        /// Distinct values.
        count: usize,
    },
    /// A group has fewer than two rows in the training or the test split: its rates and probes would be
    /// meaningless.
    #[error(
        "{path}: group '{group}' of sensitive column '{column}' has {count} row(s) in the {split} split; \
         each group needs at least 2 in both splits (more rows, another test fraction, or merge the group)"
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
    /// A target or sensitive value a saved model does not know (in a file read in passes).
    #[error("{path}: column '{column}': '{value}' is not a value the model knows ({known})")]
    UnknownValue {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// The value.
        value: String,
        /// The values the model knows.
        known: String,
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
    /// A parameter is out of range or inconsistent with the others or with the data. The message names
    /// it by the library's name (`gamma`, `batch_size`); the command line names its flag, Python its
    /// parameter ([`Error::render`]).
    #[error("invalid {param} = {value}: {reason}")]
    InvalidParam {
        /// The parameter.
        param: Param,
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
    #[error("training diverged: the loss became {value} at epoch {epoch}, step {step}")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss value.
        value: f64,
    },
    /// The caller asked the work to stop ([`crate::progress::Observer::cancelled`]: Ctrl-C).
    #[error("interrupted during {during}")]
    Interrupted {
        /// Where: `training, epoch 3, step 12`, `evaluation`.
        during: String,
    },
    /// A table has no feature column left once the target, the sensitive and the dropped columns are out.
    #[error("{path}: no feature column (the columns are: {columns}); the model needs at least one input")]
    NoFeatures {
        /// The file.
        path: String,
        /// The header.
        columns: String,
    },
    /// An array of inputs has the wrong shape for the model.
    #[error("{what}: {got}, but the model reads {expected}")]
    Shape {
        /// The file or argument holding the array.
        what: String,
        /// What the model reads.
        expected: String,
        /// What was given.
        got: String,
    },
    /// Input values a model cannot read (a NaN pixel, images in 0-255 where [0, 1] is read).
    #[error("{what}: {reason}")]
    Values {
        /// The file or argument.
        what: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A value that must not be read: a file path given both as an input and as the output, a
    /// directory that holds someone else's files.
    #[error("{path}: {reason}")]
    Refused {
        /// The path.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
        /// The parameter that would allow it, when one does.
        allow: Option<Param>,
    },
    /// An output directory holds an interrupted training, which a new one would discard.
    #[error("{path}: holds an interrupted training ({state})")]
    Unfinished {
        /// The directory.
        path: PathBuf,
        /// Where it stopped.
        state: String,
    },
    /// A text column with so many distinct values that its one-hot inputs would be a column per row (an
    /// identifier, a free-text field): refused before anything of that width is allocated.
    #[error(
        "{path}: column '{column}' has at least {count} distinct text values in the training rows, more than the \
         {limit} a text column may have (one-hot encoding makes an input of each): a value in nearly every row is \
         an identifier or free text, not a feature"
    )]
    TooManyCategories {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// Distinct values counted (counting stops just past the limit).
        count: usize,
        /// The most a text column may hold ([`crate::data::MAX_CATEGORIES`]).
        limit: usize,
    },
    /// The encoded inputs would not fit where they are held (memory, or the disk of the cache files).
    #[error(
        "{path}: the encoded inputs need about {:.1} GB ({rows} rows of {width} inputs, {widest}) but {place} has \
         {:.1} GB available",
        needed / 1e9,
        available / 1e9
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Rows encoded.
        rows: usize,
        /// Inputs per row.
        width: usize,
        /// The widest column and its width, in words.
        widest: String,
        /// Bytes needed.
        needed: f64,
        /// Where they would be held, in words.
        place: String,
        /// Bytes available there.
        available: f64,
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

/// What kind of failure an error is: the command line maps each kind to its exit code, the Python
/// package to an exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input and output, the tensor library, plots.
    Runtime,
    /// A parameter out of range, or inconsistent with the others or with the data.
    Parameter,
    /// Bad input data (a file, a column, a cell, an array).
    Data,
    /// A model directory that is missing, incomplete, corrupt or from another format.
    Model,
    /// Training produced a non-finite loss.
    Diverged,
    /// The caller stopped the work.
    Interrupted,
}

/// What would fix an error, with the parameters it involves: `text` holds one `{}` per parameter, which
/// each edge fills with its own name for it (and the value, when there is one).
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    /// The advice, with a `{}` for each parameter.
    pub text: &'static str,
    /// The parameters, in the order of the `{}`s, each with the value to give it when known.
    pub params: Vec<(Param, Option<String>)>,
}

impl Hint {
    fn new(text: &'static str, params: &[Param]) -> Hint {
        Hint { text, params: params.iter().map(|&p| (p, None)).collect() }
    }

    fn with_value(text: &'static str, param: Param, value: impl ToString) -> Hint {
        Hint { text, params: vec![(param, Some(value.to_string()))] }
    }

    /// The advice with each parameter named by `name` (which returns `None` for a parameter the caller
    /// does not have: then there is no advice to give).
    pub fn render(&self, name: &dyn Fn(Param, Option<&str>) -> Option<String>) -> Option<String> {
        let mut out = String::new();
        let mut parts = self.text.split("{}");
        out += parts.next().unwrap_or_default();
        for ((param, value), rest) in self.params.iter().zip(parts) {
            out += &name(*param, value.as_deref())?;
            out += rest;
        }
        Some(out)
    }
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidParam { .. } => ErrorKind::Parameter,
            Error::ModelDir { .. } => ErrorKind::Model,
            Error::Diverged { .. } => ErrorKind::Diverged,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::Io { .. } | Error::Candle(_) | Error::Json { .. } | Error::Plot(_) => ErrorKind::Runtime,
            Error::Refused { .. } | Error::Unfinished { .. } => ErrorKind::Parameter,
            _ => ErrorKind::Data,
        }
    }

    /// What would fix it, when a parameter would.
    pub fn hint(&self) -> Option<Hint> {
        Some(match self {
            Error::NotNumeric { column, .. } => {
                Hint::with_value("declare it categorical with {}", Param::Categorical, column)
            }
            Error::TooManyCategories { column, .. } => Hint::with_value("leave it out with {}", Param::Drop, column),
            Error::SmallGroup { .. } => Hint::new("another split: {}", &[Param::TestSize]),
            Error::NumericGroups { .. } => {
                Hint::with_value("cut it into quantile groups, e.g. {}", Param::SensitiveBins, "4")
            }
            // Written as a shell would need it.
            Error::Separator { separator, .. } => Hint::with_value(
                "read it with {}",
                Param::Delimiter,
                if *separator == '\t' { "$'\\t'".to_string() } else { format!("'{separator}'") },
            ),
            Error::Diverged { .. } => Hint::new("try a smaller {} or {}", &[Param::Lr, Param::Gamma]),
            Error::PositiveNotFound { .. } => Hint::new("choose it with {}", &[Param::Positive]),
            Error::DataMoved { .. } => {
                Hint::new("or give held-out rows: {} with {} and {}", &[Param::Input, Param::Target, Param::Sensitive])
            }
            Error::Refused { allow: Some(p), .. } => Hint::new("to allow it: {}", &[*p]),
            Error::Unfinished { path, .. } => Hint {
                text: "continue it with {}, or start again with {} (which discards it)",
                params: vec![(Param::Resume, Some(path.display().to_string())), (Param::Force, None)],
            },
            Error::Idx { path, .. } if path == crate::data::images::FASHION_MNIST_DIR => {
                Hint::new("the directory is given with {}", &[Param::MnistDir])
            }
            _ => return None,
        })
    }

    /// The message with every parameter named by `name` (the edge's flag or argument, and its value),
    /// followed by the hint when there is one and every parameter it involves has a name there.
    pub fn render(&self, name: &dyn Fn(Param, Option<&str>) -> Option<String>) -> String {
        let mut text = match self {
            Error::InvalidParam { param, value, reason } => {
                let shown = name(*param, None).unwrap_or_else(|| param.name().to_string());
                format!("invalid {shown} = {value}: {reason}")
            }
            e => e.to_string(),
        };
        if let Some(hint) = self.hint().and_then(|h| h.render(name)) {
            text += &format!(" ({hint})");
        }
        text
    }

    /// Shorthand for [`Error::InvalidParam`].
    pub fn param(param: Param, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidParam { param, value: value.to_string(), reason: reason.into() }
    }
}

impl std::fmt::Display for Hint {
    /// The advice with the library's names for the parameters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let library =
            |p: Param, v: Option<&str>| Some(v.map_or(p.name().to_string(), |v| format!("{} = {v}", p.name())));
        f.write_str(&self.render(&library).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every variant (the match below fails to compile when a variant is added without one).
    fn every_variant() -> Vec<Error> {
        let s = || "x".to_string();
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let all = vec![
            Error::Io { path: "f".into(), source: std::io::Error::other("x") },
            Error::Csv { path: s(), line: 2, message: s() },
            Error::EmptyFile { path: s() },
            Error::Separator { path: s(), header: s(), looks: "tab", separator: '\t' },
            Error::NoRows { path: s(), detail: s() },
            Error::DuplicateColumn { path: s(), column: s() },
            Error::MissingColumn { path: s(), column: s(), available: s() },
            Error::NotNumeric { path: s(), line: 2, column: "age".into(), value: s() },
            Error::NonFinite { path: s(), line: 2, column: s(), value: s() },
            Error::OutOfRange { path: s(), line: 2, column: s(), value: s(), mean: 0.0, std: 1.0 },
            Error::Overflow { path: s(), line: 2, column: s(), value: s() },
            Error::TargetValues { path: s(), column: s(), count: 1, values: s(), need: s() },
            Error::PositiveMulticlass { path: s(), column: s(), value: s(), count: 3 },
            Error::PositiveNotFound { path: s(), column: s(), value: s(), values: s() },
            Error::OneGroup { path: s(), column: s(), value: s() },
            Error::NumericGroups { path: s(), column: s(), count: 71 },
            Error::SmallGroup { path: s(), column: s(), group: s(), split: s(), count: 1 },
            Error::UnknownValue { path: s(), column: s(), value: s(), known: s() },
            Error::UnknownGroup { path: s(), line: 2, column: s(), value: s(), known: s() },
            Error::param(Param::Gamma, -1, "must be >= 0"),
            Error::ModelDir { dir: "m".into(), reason: s() },
            Error::DataMoved { path: "f".into(), reason: s() },
            Error::Diverged { epoch: 1, step: 2, value: f64::NAN },
            Error::Interrupted { during: s() },
            Error::NoFeatures { path: s(), columns: s() },
            Error::Shape { what: s(), expected: s(), got: s() },
            Error::Values { what: s(), reason: s() },
            Error::Refused { path: "f".into(), reason: s(), allow: Some(Param::Force) },
            Error::Unfinished { path: "m".into(), state: s() },
            Error::Columnar { path: s(), format: "Parquet", reason: s() },
            Error::TooManyCategories { path: s(), column: "id".into(), count: 10_001, limit: 10_000 },
            Error::TooLarge { path: s(), rows: 1, width: 1, widest: s(), needed: 2.0, place: s(), available: 1.0 },
            Error::Idx { path: crate::data::images::FASHION_MNIST_DIR.into(), reason: s() },
            Error::Plot(s()),
            Error::Candle(candle_core::Error::Msg(s())),
            Error::Json { path: "f".into(), source: json },
        ];
        for e in &all {
            match e {
                Error::Io { .. }
                | Error::Csv { .. }
                | Error::EmptyFile { .. }
                | Error::Separator { .. }
                | Error::NoRows { .. }
                | Error::DuplicateColumn { .. }
                | Error::MissingColumn { .. }
                | Error::NotNumeric { .. }
                | Error::NonFinite { .. }
                | Error::OutOfRange { .. }
                | Error::Overflow { .. }
                | Error::TargetValues { .. }
                | Error::PositiveNotFound { .. }
                | Error::PositiveMulticlass { .. }
                | Error::OneGroup { .. }
                | Error::NumericGroups { .. }
                | Error::SmallGroup { .. }
                | Error::UnknownValue { .. }
                | Error::UnknownGroup { .. }
                | Error::InvalidParam { .. }
                | Error::ModelDir { .. }
                | Error::DataMoved { .. }
                | Error::Diverged { .. }
                | Error::Interrupted { .. }
                | Error::NoFeatures { .. }
                | Error::Shape { .. }
                | Error::Values { .. }
                | Error::Refused { .. }
                | Error::Unfinished { .. }
                | Error::Columnar { .. }
                | Error::TooManyCategories { .. }
                | Error::TooLarge { .. }
                | Error::Idx { .. }
                | Error::Plot(_)
                | Error::Candle(_)
                | Error::Json { .. } => {}
            }
        }
        all
    }

    #[test]
    fn no_library_message_names_a_flag_and_each_edge_names_its_own_parameters() {
        let flag = |p: Param, v: Option<&str>| {
            p.def().cli.map(|f| format!("--{f}{}", v.map_or(String::new(), |v| format!(" {v}"))))
        };
        let python = |p: Param, _: Option<&str>| p.def().python.or(p.def().python_arg).map(String::from);
        let mut hinted = 0;
        for e in every_variant() {
            let text = e.to_string();
            assert!(!text.contains("--"), "a library message names a flag: {text}");
            assert!(!e.render(&python).contains("--"), "{}", e.render(&python));
            if let Some(hint) = e.hint() {
                hinted += 1;
                // The command line names the parameter by its flag; Python by its name, or not at all.
                let cli = e.render(&flag);
                assert!(cli.contains("--"), "the command line's hint names no flag: {cli}");
                assert!(!hint.to_string().contains("--"), "{hint}");
            }
        }
        assert!(
            hinted >= 6,
            "the hints of NotNumeric, SmallGroup, Diverged, PositiveNotFound, DataMoved, Refused, Idx"
        );
        let e = Error::NotNumeric { path: "f.csv".into(), line: 3, column: "age".into(), value: "young".into() };
        let want = format!("(declare it categorical with {})", flag(Param::Categorical, Some("age")).unwrap());
        assert!(e.render(&flag).ends_with(&want), "{}", e.render(&flag));
    }
}

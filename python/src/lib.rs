//! `fairbits._native`: the Rust core as the Python package sees it. Deliberately thin: columns of a data
//! frame cross as numpy float arrays or lists of strings and become a `RawTable`, so the CLI's encoders,
//! training loop, evaluation and certificate run unchanged; results come back as numpy arrays or JSON
//! text. The scikit-learn conventions live in Python (`fairbits/_estimator.py`).

use fairbits::data::{self, DataSpec, Dataset, HeldOut, Prepared, RawTable, Roles, Source, TableSpec};
use fairbits::estimator::{FairModel, FairParams, Preset};
use fairbits::eval::EvalOptions;
use fairbits::experiments;
use fairbits::model::Inference;
use fairbits::progress::{Event, Observer};
use fairbits::rng::{rng, Stream};
use fairbits::schema::check;
use fairbits::store::ModelKind;
use fairbits::{Error, ErrorKind, Param, SCHEMA};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What rows handed over from Python are called in messages ("data: row 3, column 'age': ...").
const SOURCE: &str = "data";

/// The Python package's name for a parameter: the estimator's constructor parameter or the method's
/// argument (`learning_rate`, `sensitive_features`), with a value written as Python would.
fn python_name(p: Param, value: Option<&str>) -> Option<String> {
    let d = p.def();
    let name = d.python.or(d.python_arg)?;
    Some(match value {
        None => name.to_string(),
        Some(v) if d.type_name == "list of names" => format!("{name}=['{v}']"),
        Some(v) if matches!(d.type_name, "number" | "integer") => format!("{name}={v}"),
        Some(v) => format!("{name}='{v}'"),
    })
}

/// A library error as the Python exception a scikit-learn user expects, its parameters named as Python
/// names them: a missing file or model directory is `FileNotFoundError`, other files `OSError`, an
/// interrupt `KeyboardInterrupt`, a failure of the computation `RuntimeError`, bad values and data
/// `ValueError`. Messages about in-memory rows say "row" (0-based) where the command line says "line".
fn py_err(e: Error) -> PyErr {
    let msg = row_wording(e.render(&python_name));
    let missing = match &e {
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        Error::ModelDir { dir, .. } => !dir.exists(),
        _ => false,
    };
    match e.kind() {
        _ if missing => PyFileNotFoundError::new_err(msg),
        _ if matches!(e, Error::Refused { .. } | Error::Unfinished { .. }) => PyFileExistsError::new_err(msg),
        ErrorKind::Interrupted => PyKeyboardInterrupt::new_err(msg),
        ErrorKind::Runtime if matches!(e, Error::Io { .. }) => PyOSError::new_err(msg),
        ErrorKind::Runtime | ErrorKind::Diverged => PyRuntimeError::new_err(msg),
        ErrorKind::Parameter | ErrorKind::Data | ErrorKind::Model => PyValueError::new_err(msg),
    }
}

/// A message about in-memory rows with the command line's "line N" as "row N" (0-based positions).
fn row_wording(msg: String) -> String {
    if !msg.starts_with(SOURCE) {
        return msg;
    }
    msg.replace(": line ", ": row ").replace(", line ", ", row ").replace(" on line ", " on row ")
}

type PyResult2<T> = std::result::Result<T, PyErr>;

fn lib<T>(r: fairbits::Result<T>) -> PyResult2<T> {
    r.map_err(py_err)
}

/// One column from Python: numbers (NaN = missing), a list of `str` ("" = missing), or the cells joined
/// by the unit separator U+001F into one `str` (one crossing instead of one per cell; the Python side
/// joins only when no cell holds the separator).
#[derive(FromPyObject)]
enum Col<'py> {
    Num(PyReadonlyArray1<'py, f64>),
    Joined(String),
    Text(Vec<String>),
}

/// Named columns into a table. A column of numbers stays numbers, each reading as the shortest text that
/// parses back to the same value where read as text, so the encoders see exactly what a CSV holding it
/// would give them. Text cells go straight into the table's column buffers (no string per cell on the way),
/// as a dictionary of their values where they are few.
fn table(columns: Vec<(String, Col<'_>)>) -> PyResult2<RawTable> {
    let mut header = Vec::with_capacity(columns.len());
    let mut cells = Vec::with_capacity(columns.len());
    let too_big = || PyValueError::new_err("a column holds more than 4 GiB of text");
    let mut buf = String::new();
    for (name, col) in columns {
        let mut column = data::Column::default();
        match col {
            // Kept as numbers: the encoders read them directly; a cell is written as text
            // (`data::number_text`) only where one is read as text (a category, a message).
            Col::Num(a) => match data::Column::from_numbers(a.as_array().to_vec()) {
                Some(numbers) => column = numbers,
                None => {
                    for &v in a.as_array() {
                        data::number_text(v, &mut buf);
                        column.push_trimmed(&buf).then_some(()).ok_or_else(too_big)?;
                    }
                }
            },
            // Text as a dictionary of its values where they are few (`data::Column::from_texts`).
            Col::Joined(t) => {
                column = data::Column::from_texts(t.split('\u{1f}').map(str::trim)).ok_or_else(too_big)?
            }
            Col::Text(t) => column = data::Column::from_texts(t.iter().map(|c| c.trim())).ok_or_else(too_big)?,
        }
        header.push(name);
        cells.push(column);
    }
    lib(RawTable::from_columns(SOURCE, header, cells))
}

fn get<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> PyResult2<Option<T>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => serde_json::from_value(x.clone())
            .map(Some)
            .map_err(|e| PyValueError::new_err(format!("invalid {key} = {x}: {e}"))),
    }
}

/// The estimator's parameters: `(library name, text)` pairs of the values set (the Python package
/// writes each value in the text form the command line reads, so a value means the same at both edges).
fn params(pairs: &[(String, String)]) -> PyResult2<FairParams> {
    let mut f = FairParams::new();
    for (name, text) in pairs {
        let p = Param::from_name(name).ok_or_else(|| PyValueError::new_err(format!("unknown parameter {name}")))?;
        f = lib(f.set(p, text))?;
    }
    Ok(f)
}

/// Every parameter of the schema (JSON): the package builds its estimator's signature and docstring from it.
#[pyfunction]
fn schema_json() -> String {
    let presets: serde_json::Map<String, Value> = Preset::NAMES
        .iter()
        .filter_map(|name| name.parse::<Preset>().ok())
        .map(|p| {
            let values: serde_json::Map<String, Value> = p
                .values()
                .given()
                .into_iter()
                .map(|(param, text)| (param.name().to_string(), Value::String(text)))
                .collect();
            (p.name().to_string(), Value::Object(values))
        })
        .collect();
    let defs: Vec<Value> = SCHEMA
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "group": d.group.title(), "doc": d.doc.trim(), "meaning": d.meaning(),
                "range": d.range, "values": d.values(), "cli": d.cli, "python": d.python, "python_arg": d.python_arg,
                "python_default": d.python_default,
                "config": d.config, "type": d.type_name, "choices": d.choices(),
                "default": d.default_text(ModelKind::Table), "default_images": d.default_text(ModelKind::Image),
            })
        })
        .collect();
    serde_json::json!({ "params": defs, "presets": presets }).to_string()
}

/// Progress and Ctrl-C for work done without the interpreter's lock: epochs are written to Python's
/// `sys.stderr` when `verbose` (so they show in notebooks), and pending signals are checked at most every
/// 100 ms between batches; a `KeyboardInterrupt` stops training and is re-raised.
struct PyObserver {
    verbose: bool,
    last_check: Mutex<Instant>,
    interrupt: Mutex<Option<PyErr>>,
    stopped: AtomicBool,
}

impl PyObserver {
    fn new(verbose: bool) -> Self {
        PyObserver {
            verbose,
            last_check: Mutex::new(Instant::now()),
            interrupt: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    /// The pending `KeyboardInterrupt` in place of the library's `Interrupted` error.
    fn error(&self, e: Error) -> PyErr {
        match (e, self.interrupt.lock().unwrap().take()) {
            (Error::Interrupted { .. }, Some(err)) => err,
            (e, _) => py_err(e),
        }
    }
}

impl Observer for PyObserver {
    fn event(&self, event: Event<'_>) {
        if let (true, Event::Epoch { epoch, of, loss }) = (self.verbose, event) {
            Python::with_gil(|py| {
                let line = format!("fairbits: epoch {epoch}/{of}, loss {loss:.4}\n");
                if let Ok(err) = py.import("sys").and_then(|sys| sys.getattr("stderr")) {
                    let _ = err.call_method1("write", (line,));
                }
            });
        }
    }

    fn cancelled(&self) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return true;
        }
        let mut last = self.last_check.lock().unwrap();
        if last.elapsed() < Duration::from_millis(100) {
            return false;
        }
        *last = Instant::now();
        if let Err(e) = Python::with_gil(|py| py.check_signals()) {
            *self.interrupt.lock().unwrap() = Some(e);
            self.stopped.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// A fitted fairbits model (table or image).
#[pyclass(module = "fairbits._native", frozen)]
struct Model {
    inner: FairModel,
    /// Rows `fit` dropped for a missing value (the policy `drop`; 0 for a loaded model).
    #[pyo3(get)]
    rows_dropped: usize,
}

/// Trains a table model on named columns with a target and a sensitive column among them.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (params, columns, target, positive, sensitive, categorical, val_size, name, verbose, sample_weight=None, sensitive_bins=None, task=None, missing=None))]
fn fit(
    py: Python<'_>,
    params: Vec<(String, String)>,
    columns: Vec<(String, Col<'_>)>,
    target: String,
    positive: Option<String>,
    sensitive: String,
    categorical: Vec<String>,
    val_size: f64,
    name: String,
    verbose: bool,
    sample_weight: Option<Vec<f64>>,
    sensitive_bins: Option<usize>,
    task: Option<String>,
    missing: Option<String>,
) -> PyResult2<Model> {
    lib(check::sensitive_bins(&sensitive_bins))?;
    // The estimator's class says the task: a regressor passes "regression" (docs/design.md, section 5c).
    let task: data::Task = lib(task.as_deref().unwrap_or("classification").parse())?;
    let missing: data::Missing = match missing {
        Some(text) => lib(text.parse())?,
        None => Default::default(),
    };
    let valid = lib(self::params(&params)?.check())?;
    lib(check::val_size(&val_size))?;
    let seed = valid.seed();
    let table = table(columns)?;
    let weights = sample_weight.map(|w| data::check_weights(&w, table.n_rows())).transpose();
    let weights = lib(weights)?;
    let features = table.header.iter().filter(|h| **h != target && **h != sensitive).cloned().collect();
    let roles = Roles { target, positive, sensitive, features, categorical, bins: None, task };
    let observer = PyObserver::new(verbose);
    let model = py.allow_threads(|| -> fairbits::Result<(FairModel, usize)> {
        let data = data::prepare_fit(table, &roles, val_size, seed, &name, weights, sensitive_bins, missing)?;
        let source = Source::Memory { name: name.clone() };
        let spec = TableSpec {
            source,
            test_size: 0.0,
            val_size,
            seed,
            include_sensitive: false,
            certify_size: 0.0,
            stream: false,
            missing,
        };
        let spec = DataSpec::Table(spec);
        Ok((valid.fit_with(&data, &spec, None, &observer)?.0, data.n_dropped))
    });
    let (inner, rows_dropped) = model.map_err(|e| observer.error(e))?;
    Ok(Model { inner, rows_dropped })
}

/// Reads a saved model directory (the command line's format).
#[pyfunction]
fn load(dir: PathBuf) -> PyResult2<Model> {
    Ok(Model { inner: lib(FairModel::load(&dir))?, rows_dropped: 0 })
}

/// A model from the bytes of `to_bytes` (pickling): the directory is rebuilt in a temporary folder.
#[pyfunction]
fn from_bytes(config: &str, weights: &[u8]) -> PyResult2<Model> {
    let dir = tempdir()?;
    let result = (|| {
        std::fs::write(dir.join("config.json"), config)?;
        std::fs::write(dir.join("model.safetensors"), weights)?;
        Ok::<_, std::io::Error>(())
    })();
    let model = result.map_err(|e| PyOSError::new_err(e.to_string())).and_then(|_| load(dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    model
}

fn tempdir() -> PyResult2<PathBuf> {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let dir =
        std::env::temp_dir().join(format!("fairbits-py-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).map_err(|e| PyOSError::new_err(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// The rows and splits of a shipped dataset, as the command line trains and tests on them: `(header,
/// columns, roles JSON, train indices, test indices)`; every cell is text.
#[pyfunction]
#[pyo3(signature = (name, sensitive, seed, test_size, missing=None))]
#[allow(clippy::type_complexity)]
fn builtin_rows(
    name: &str,
    sensitive: Option<String>,
    seed: u64,
    test_size: f64,
    missing: Option<String>,
) -> PyResult2<(Vec<String>, Vec<Vec<String>>, String, Vec<usize>, Vec<usize>)> {
    let builtin: data::Builtin = lib(name.parse())?;
    let missing: data::Missing = match missing {
        Some(text) => lib(text.parse())?,
        None => Default::default(),
    };
    let spec = TableSpec {
        test_size,
        source: Source::Builtin { name: builtin, sensitive },
        missing,
        ..TableSpec::builtin(builtin, seed)
    };
    let (table, roles, splits) = lib(data::split_rows(&spec))?;
    let columns = table.columns.iter().map(|c| c.iter().map(String::from).collect()).collect();
    let roles = serde_json::json!({
        "target": roles.target, "positive": roles.positive, "sensitive": roles.sensitive,
        "features": roles.features, "categorical": roles.categorical,
    });
    Ok((table.header.clone(), columns, roles.to_string(), splits.train, splits.test))
}

impl Model {
    fn encoding(&self) -> PyResult2<&data::Encoding> {
        self.inner
            .config()
            .encoding
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("an image model takes arrays, not columns"))
    }

    /// The model's input rows from named columns (its features; other columns are ignored), with the
    /// unseen-category warnings.
    fn inputs(&self, columns: Vec<(String, Col<'_>)>) -> PyResult2<(Vec<f32>, Vec<String>)> {
        let enc = self.encoding()?;
        let t = table(columns)?;
        complete(enc, &t, &[])?;
        let (x, warnings) = lib(enc.transform_reporting(&t))?;
        Ok((x, warnings.into_iter().map(row_wording).collect()))
    }

    /// Labelled rows from named columns: features, target and groups (groups as in `groups` when given).
    fn labelled(
        &self,
        columns: Vec<(String, Col<'_>)>,
        target: &str,
        sensitive: &str,
    ) -> PyResult2<(Dataset, data::Encoding)> {
        let enc = self.encoding()?;
        let t = table(columns)?;
        complete(enc, &t, &[target, sensitive])?;
        let held = HeldOut {
            target: target.into(),
            sensitive: sensitive.into(),
            positive: None,
            seed: self.seed(),
            delimiter: None,
            weights: None,
        };
        let (rows, enc, _) = lib(data::labelled_rows(t, enc, &held))?;
        Ok((rows, enc))
    }

    /// An image array's values, checked against the model (shape, finite, in [0, 1]) with the argument
    /// named as Python names it.
    fn images(&self, x: PyReadonlyArrayDyn<'_, f32>) -> PyResult2<Vec<f32>> {
        let shape = x.shape().to_vec();
        let values = x.as_array().iter().copied().collect::<Vec<f32>>();
        lib(self.inner.check_images(&shape, &values, "X"))?;
        Ok(values)
    }

    fn seed(&self) -> u64 {
        self.inner.config().train.seed
    }

    fn opts(&self) -> EvalOptions {
        self.inner.config().eval.clone()
    }
}

#[pymethods]
impl Model {
    /// The saved configuration (`config.json`) as JSON text.
    fn config_json(&self) -> PyResult2<String> {
        serde_json::to_string(self.inner.config()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// The training history (one record per epoch) as JSON text; empty for a loaded model.
    fn history_json(&self) -> String {
        let h = self.inner.report().map(|r| r.history.clone()).unwrap_or_default();
        serde_json::to_string(&h).unwrap_or_else(|_| "[]".into())
    }

    /// Width of the representation (the last stochastic layer, or the last hidden layer of a
    /// full-precision network).
    fn code_width(&self) -> usize {
        self.inner.code_width()
    }

    /// How a search for a certified bound found this model (JSON), or `None`.
    fn search_json(&self) -> Option<String> {
        self.inner.search_report().and_then(|r| serde_json::to_string(r).ok())
    }

    /// Seconds the training loop took (NaN for a loaded model).
    fn train_seconds(&self) -> f64 {
        self.inner.report().map_or(f64::NAN, |r| r.train_seconds)
    }

    /// Saves into `dir` (the command line's model directory): a new or empty one, or with `overwrite` one
    /// that holds a model.
    #[pyo3(signature = (dir, overwrite=false))]
    fn save(&self, dir: PathBuf, overwrite: bool) -> PyResult2<()> {
        lib(self.inner.save_to(&dir, None, overwrite))
    }

    /// `(config JSON, safetensors bytes)`, for pickling.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult2<(String, Bound<'py, PyBytes>)> {
        let dir = tempdir()?;
        let result = lib(self.inner.save(&dir, None)).and_then(|_| {
            let c = std::fs::read_to_string(dir.join("config.json"));
            let w = std::fs::read(dir.join("model.safetensors"));
            c.and_then(|c| w.map(|w| (c, w))).map_err(|e| PyOSError::new_err(e.to_string()))
        });
        let _ = std::fs::remove_dir_all(&dir);
        let (c, w) = result?;
        Ok((c, PyBytes::new(py, &w)))
    }

    /// Codes `[n, m]` of table rows given as columns, and the unseen-category warnings.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<(String, Col<'py>)>,
        inference: &str,
    ) -> PyResult2<(Bound<'py, PyArray2<f32>>, Vec<String>)> {
        let (x, warnings) = self.inputs(columns)?;
        let codes = self.encode_x(py, &x, inference)?;
        Ok((codes, warnings))
    }

    /// Codes `[n, m]` of images `x` (`[n, 3, h, w]`, checked against the model's images).
    fn transform_array<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        inference: &str,
    ) -> PyResult2<Bound<'py, PyArray2<f32>>> {
        let x = self.images(x)?;
        self.encode_x(py, &x, inference)
    }

    /// Class probabilities `[n, classes]` of table rows given as columns, and the warnings.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<(String, Col<'py>)>,
        inference: &str,
        draws: usize,
    ) -> PyResult2<(Bound<'py, PyArray2<f32>>, Vec<String>)> {
        let (x, warnings) = self.inputs(columns)?;
        Ok((self.proba_x(py, &x, inference, draws)?, warnings))
    }

    /// A regression model's predictions `[n]` (in the target's units) of table rows given as columns,
    /// and the warnings.
    fn predict_values<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<(String, Col<'py>)>,
        inference: &str,
        draws: usize,
    ) -> PyResult2<(Bound<'py, PyArray1<f64>>, Vec<String>)> {
        let (x, warnings) = self.inputs(columns)?;
        let inference: Inference = lib(inference.parse())?;
        let seed = self.seed();
        let v = lib(py.allow_threads(|| self.inner.predict_values(&x, inference, draws, seed)))?;
        Ok((v.into_pyarray(py), warnings))
    }

    /// True for a regression model.
    fn is_regression(&self) -> bool {
        self.inner.regression().is_some()
    }

    /// Class probabilities of images `x` (`[n, 3, h, w]`, checked against the model's images).
    fn predict_proba_array<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        inference: &str,
        draws: usize,
    ) -> PyResult2<Bound<'py, PyArray2<f32>>> {
        let x = self.images(x)?;
        self.proba_x(py, &x, inference, draws)
    }

    /// The command line's metrics (JSON) on labelled rows; the probes learn on `probe` rows when given
    /// (as the command line's probes learn on the training split), else on a stratified half of them.
    #[pyo3(signature = (columns, target, sensitive, probe=None, verbose=false))]
    fn evaluate(
        &self,
        py: Python<'_>,
        columns: Vec<(String, Col<'_>)>,
        target: &str,
        sensitive: &str,
        probe: Option<Vec<(String, Col<'_>)>>,
        verbose: bool,
    ) -> PyResult2<String> {
        let (rows, enc) = self.labelled(columns, target, sensitive)?;
        let data = match probe {
            Some(cols) => {
                let t = table(cols)?;
                complete(&enc, &t, &[target, sensitive])?;
                let (x, y, s) = (lib(enc.transform(&t))?, lib(enc.target.apply(&t))?, lib(enc.sensitive.apply(&t))?);
                let targets = lib(enc.target.values(&t))?;
                let d = enc.n_features();
                let train = Dataset {
                    n: y.len(),
                    d,
                    shape: vec![d],
                    x: x.into(),
                    y,
                    s,
                    n_groups: rows.n_groups,
                    n_classes: rows.n_classes,
                    w: None,
                    t: targets,
                };
                let empty = rows.subset(&[]);
                Prepared::table(self.name(), enc, [train, empty.clone(), rows, empty], 0)
            }
            None => {
                let mut p = lib(data::prepare_held_out_rows(rows, &enc, self.seed()))?;
                p.description.dataset = self.name();
                p
            }
        };
        let info = self.inner.run_info(f64::NAN, self.inner.report().map_or(0, |r| r.history.len()));
        let opts = self.opts();
        let observer = PyObserver::new(verbose);
        let metrics =
            py.allow_threads(|| self.inner.evaluate(&data, &opts, &info, &observer)).map_err(|e| observer.error(e))?;
        serde_json::to_string(&metrics).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Per-neuron and joint mutual information between the codes of rows and their groups (JSON).
    fn mutual_information(
        &self,
        py: Python<'_>,
        columns: Vec<(String, Col<'_>)>,
        sensitive: &str,
    ) -> PyResult2<String> {
        let (rows, _) = self.unlabelled(columns, sensitive)?;
        let opts = self.opts();
        let info = py.allow_threads(|| -> fairbits::Result<_> {
            let mut r = rng(opts.seed, Stream::Eval);
            let p = self.inner.encode_set(&rows, Inference::Prob, opts.seed)?;
            let p: Vec<f64> = p.into_iter().map(f64::from).collect();
            fairbits::eval::information(&p, self.inner.code_width(), &rows, &opts, &mut r)
        });
        let (info, _) = lib(info)?;
        serde_json::to_string(&info).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// The population certificate (JSON) from held-out rows; without a target the equalised-odds bound
    /// is not computed (null). With `sample_weight` (one per row, in the rows' order: no row is dropped
    /// here, a missing cell is an error), the certificate of the weighted population (docs/design.md,
    /// section 4e).
    #[pyo3(signature = (columns, sensitive, target, confidence, sample_weight=None))]
    fn certificate(
        &self,
        py: Python<'_>,
        columns: Vec<(String, Col<'_>)>,
        sensitive: &str,
        target: Option<String>,
        confidence: f64,
        sample_weight: Option<Vec<f64>>,
    ) -> PyResult2<String> {
        if !self.inner.net().config().is_stochastic() {
            return Err(PyValueError::new_err("a full-precision model has no stochastic layer to certify"));
        }
        let (mut rows, labelled) = match &target {
            Some(t) => (self.labelled(columns, t, sensitive)?.0, true),
            None => (self.unlabelled(columns, sensitive)?.0, false),
        };
        let weighted = sample_weight.is_some();
        if let Some(w) = sample_weight {
            // The same check (and single precision) as fit's weights; the rows are the caller's, in order.
            rows.w = Some(lib(data::check_weights(&w, rows.n))?);
        }
        let opts = EvalOptions { confidence, ..self.opts() };
        lib(opts.validate())?;
        let pop = py.allow_threads(|| {
            let mut r = rng(opts.seed, Stream::Eval);
            if weighted {
                fairbits::eval::population_weighted(self.inner.net(), &rows, &opts, &mut r)
            } else {
                fairbits::eval::population(self.inner.net(), &rows, &opts, &mut r)
            }
        });
        let mut v = serde_json::to_value(lib(pop)?).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        if !labelled {
            v["eo_gap_bound"] = Value::Null;
        }
        Ok(v.to_string())
    }
}

impl Model {
    fn encode_x<'py>(&self, py: Python<'py>, x: &[f32], inference: &str) -> PyResult2<Bound<'py, PyArray2<f32>>> {
        let inference: Inference = lib(inference.parse())?;
        let (m, seed) = (self.inner.code_width(), self.seed());
        let codes = lib(py.allow_threads(|| self.inner.encode(x, inference, seed)))?;
        let n = codes.len() / m.max(1);
        codes.into_pyarray(py).reshape([n, m])
    }

    fn proba_x<'py>(
        &self,
        py: Python<'py>,
        x: &[f32],
        inference: &str,
        draws: usize,
    ) -> PyResult2<Bound<'py, PyArray2<f32>>> {
        let inference: Inference = lib(inference.parse())?;
        let seed = self.seed();
        let p = lib(py.allow_threads(|| self.inner.predict_proba(x, inference, draws, seed)))?;
        let classes = self.inner.net().config().n_outputs.max(2);
        let n = p.len() / classes;
        p.into_pyarray(py).reshape([n, classes])
    }

    fn name(&self) -> String {
        match &self.inner.config().data {
            DataSpec::Table(t) => t.name(),
            DataSpec::Images(_) => "images".into(),
        }
    }

    /// Rows with groups but no target (y = 0 for every row; only what does not read y may be computed).
    fn unlabelled(&self, columns: Vec<(String, Col<'_>)>, sensitive: &str) -> PyResult2<(Dataset, Vec<String>)> {
        let enc = self.encoding()?;
        let mut t = table(columns)?;
        complete(enc, &t, &[sensitive])?;
        // A model of binned groups reads the groups given here at its edges.
        let own = enc.sensitive.bins.is_some().then_some(&enc.sensitive);
        let bins = lib(data::derive_groups(&mut t, sensitive, None, own))?;
        let roles = Roles {
            target: sensitive.into(),
            positive: None,
            sensitive: sensitive.into(),
            features: vec![],
            categorical: vec![],
            bins,
            task: data::Task::Classification,
        };
        let groups = lib(data::SensitiveEncoding::fit(&t, &roles))?;
        let s = lib(groups.apply(&t))?;
        if groups.groups.len() < 2 {
            return Err(PyValueError::new_err(format!(
                "sensitive_features: a single group ('{}'); at least two are needed",
                groups.groups.join("")
            )));
        }
        let x = lib(enc.transform(&t))?;
        let d = enc.n_features();
        let n = s.len();
        Ok((
            Dataset {
                n,
                d,
                shape: vec![d],
                x: x.into(),
                y: vec![0; n],
                s,
                n_groups: groups.groups.len(),
                n_classes: enc.target.n_classes(),
                w: None,
                t: None,
            },
            groups.groups,
        ))
    }
}

/// Missing cells of rows given to predict, transform or audit: a feature whose encoder imputes (a model
/// fitted with `missing='impute'`) takes them; any other missing feature is an error naming the row and
/// column, because no row is dropped here (one output per input row; a dropped row would misalign every
/// output after it), with the way out. A missing label or group (`labels`) is an error too.
fn complete(enc: &data::Encoding, t: &RawTable, labels: &[&str]) -> PyResult2<()> {
    lib(data::require_complete(t, labels))?;
    let features: Vec<&str> =
        enc.columns.iter().enumerate().filter(|(j, _)| !enc.imputes(*j)).map(|(_, c)| c.name()).collect();
    match data::require_complete(t, &features) {
        Err(e @ Error::Csv { .. }) => Err(PyValueError::new_err(format!(
            "{}; no row is dropped here (one output per input row): fit with missing='impute' to fill missing \
             cells as the training rows were filled",
            row_wording(e.render(&python_name))
        ))),
        r => lib(r),
    }
}

/// A table file (CSV, `.csv.gz`, Parquet or Arrow IPC, by extension) read by the command line's reader:
/// `(header, columns of text cells)`.
#[pyfunction]
#[pyo3(signature = (path, delimiter=None))]
fn read_table(py: Python<'_>, path: PathBuf, delimiter: Option<char>) -> PyResult2<(Vec<String>, Vec<Vec<String>>)> {
    let t = lib(py.allow_threads(|| RawTable::from_path_with(&path, data::Duplicates::Reject, delimiter)))?;
    Ok((t.header.clone(), t.columns.iter().map(|c| c.iter().map(String::from).collect()).collect()))
}

/// A sweep's data, axes and parameters from the Python package's settings (JSON): `dataset` (shipped) or
/// `csv` (a table file, with `target`, `sensitive`, `positive`, `categorical`, `drop`), `methods`,
/// `penalties`, `rhos`, `gammas`, `seeds`, and `params` (the estimator's).
fn sweep_settings(settings: &str) -> PyResult2<(DataSpec, experiments::Axes, fairbits::estimator::ValidParams)> {
    let v: Value = serde_json::from_str(settings).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let seed = 0;
    let spec = match (get::<String>(&v, "dataset")?, get::<PathBuf>(&v, "csv")?) {
        (Some(name), None) => match name.parse::<data::ImageDataset>() {
            Ok(images) => DataSpec::Images(data::ImageSpec::new(images, 0.99, seed)),
            Err(_) => {
                let builtin: data::Builtin = lib(name.parse())?;
                let source = Source::Builtin { name: builtin, sensitive: get(&v, "sensitive")? };
                DataSpec::Table(TableSpec { source, ..TableSpec::builtin(builtin, seed) })
            }
        },
        (None, Some(path)) => {
            let need = |k: &str| get::<String>(&v, k)?.ok_or_else(|| PyValueError::new_err(format!("csv needs {k}")));
            let source = Source::Csv {
                path: std::path::absolute(&path).unwrap_or(path),
                target: need("target")?,
                sensitive: need("sensitive")?,
                sensitive_bins: get(&v, "sensitive_bins")?,
                positive: get(&v, "positive")?,
                categorical: get(&v, "categorical")?.unwrap_or_default(),
                drop: get(&v, "drop")?.unwrap_or_default(),
                delimiter: None,
                task: Default::default(),
            };
            DataSpec::Table(TableSpec { source, ..TableSpec::builtin(data::Builtin::Adult, seed) })
        }
        _ => return Err(PyValueError::new_err("give exactly one of dataset= and csv=")),
    };
    let names = |k: &str| -> PyResult2<Vec<String>> { Ok(get::<Vec<String>>(&v, k)?.unwrap_or_default()) };
    let axes = experiments::Axes {
        methods: names("methods")?.iter().map(|m| lib(m.parse())).collect::<PyResult2<_>>()?,
        penalties: names("penalties")?.iter().map(|m| lib(m.parse())).collect::<PyResult2<_>>()?,
        rhos: get(&v, "rhos")?.unwrap_or_default(),
        gammas: get(&v, "gammas")?,
        seeds: get(&v, "seeds")?.unwrap_or_else(|| vec![0, 1, 2]),
    };
    let pairs: Vec<(String, String)> = get(&v, "params")?.unwrap_or_default();
    let valid = lib(params(&pairs)?.check())?;
    Ok((spec, axes, valid))
}

/// The run identifiers of a sweep, in grid order.
#[pyfunction]
fn sweep_grid(settings: &str) -> PyResult2<Vec<String>> {
    let (spec, axes, valid) = sweep_settings(settings)?;
    lib(experiments::grid_ids(spec, axes, &valid))
}

/// Trains shard `index` of `count` of a sweep into `out` (without the interpreter's lock); returns the
/// number of runs this call trained.
#[pyfunction]
fn sweep_shard(py: Python<'_>, settings: &str, out: PathBuf, index: usize, count: usize) -> PyResult2<usize> {
    let (spec, axes, valid) = sweep_settings(settings)?;
    let shard = experiments::Shard { index, count };
    if index == 0 || index > count {
        return Err(PyValueError::new_err(format!("invalid shard {index}/{count}")));
    }
    let outcome = lib(py.allow_threads(|| experiments::sweep(spec, axes, &valid, &out, (1, shard), &())))?;
    Ok(outcome.total - outcome.skipped - outcome.by_others)
}

/// Trains an image model on arrays `n x 3 x h x w` (values in [0, 1]) with class and group indices.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (params, x, y, s, n_classes, groups, name, verbose))]
fn fit_images(
    py: Python<'_>,
    params: Vec<(String, String)>,
    x: PyReadonlyArrayDyn<'_, f32>,
    y: Vec<u8>,
    s: Vec<u32>,
    n_classes: usize,
    groups: Vec<String>,
    name: String,
    verbose: bool,
) -> PyResult2<Model> {
    let valid = lib(self::params(&params)?.check())?;
    let shape = x.shape().to_vec();
    if shape.len() != 4 {
        return Err(PyValueError::new_err(format!("X must be an array N x 3 x H x W, got shape {shape:?}")));
    }
    let values = x.as_array().iter().copied().collect::<Vec<f32>>();
    let seed = valid.seed();
    let observer = PyObserver::new(verbose);
    let model = py.allow_threads(|| -> fairbits::Result<FairModel> {
        let image = [shape[1], shape[2], shape[3]];
        let data = data::prepare_images_in_memory(values, image, y, s, n_classes, groups, &name)?;
        let spec = data::ImageSpec {
            in_memory: Some(name.clone()),
            ..data::ImageSpec::new(data::ImageDataset::BiasedMnist, 0.0, seed)
        };
        Ok(valid.fit_with(&data, &DataSpec::Images(spec), None, &observer)?.0)
    });
    Ok(Model { inner: model.map_err(|e| observer.error(e))?, rows_dropped: 0 })
}

/// A shipped image set prepared as the command line prepares it (`train --dataset NAME --rho R --seed S`):
/// `(x_train, y_train, s_train, x_test, y_test, s_test)`, images `n x 3 x h x w`, the test images coloured
/// uniformly.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn builtin_images<'py>(
    py: Python<'py>,
    name: &str,
    rho: f64,
    seed: u64,
) -> PyResult2<(Bound<'py, numpy::PyArray4<f32>>, Vec<u8>, Vec<u32>, Bound<'py, numpy::PyArray4<f32>>, Vec<u8>, Vec<u32>)>
{
    let dataset: data::ImageDataset = lib(name.parse())?;
    let spec = DataSpec::Images(data::ImageSpec::new(dataset, rho, seed));
    let data = lib(py.allow_threads(|| spec.prepare()))?;
    let array = |set: &Dataset| -> PyResult2<Bound<'py, numpy::PyArray4<f32>>> {
        let dims = (set.n, set.shape[0], set.shape[1], set.shape[2]);
        let a = numpy::ndarray::Array4::from_shape_vec(dims, set.x.to_vec())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    };
    let (tr, te) = (&data.train, &data.test);
    Ok((array(tr)?, tr.y.clone(), tr.s.clone(), array(te)?, te.y.clone(), te.s.clone()))
}

/// Writes `results.csv`, `summary.csv` and the plots of a sweep directory; returns its number of runs.
#[pyfunction]
fn sweep_finish(py: Python<'_>, out: PathBuf) -> PyResult2<usize> {
    lib(py.allow_threads(|| experiments::merge(std::slice::from_ref(&out), &out)))
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(fit_images, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_images, m)?)?;
    m.add_function(wrap_pyfunction!(schema_json, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_rows, m)?)?;
    m.add_function(wrap_pyfunction!(read_table, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_grid, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_shard, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_finish, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

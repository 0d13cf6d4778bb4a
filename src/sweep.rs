//! Sweeps: many trainings of several methods over gammas and seeds in one harness (same data, preprocessing
//! and metrics), run in parallel across cores, resumable: every finished run is one JSON file, written
//! atomically, and a restarted sweep skips the runs whose file exists.

use crate::data::{self, DataSpec, Prepared};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, SqNet};
use crate::report::{self, EvalOptions, Metrics, RunInfo};
use crate::store::{write_atomic, write_json};
use crate::train::{self, streams, Penalty, TrainConfig};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A method of the comparison (the experiments issue).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The paper: a stochastic layer with the per-neuron MI penalty.
    Sqnn,
    /// A 12-neuron stochastic layer (or the configured width, if smaller) with the exact joint MI penalty,
    /// gamma ramped over the first 10 epochs.
    SqnnJoint,
    /// The same architecture at full precision (tanh instead of the stochastic layer), no penalty; its
    /// probes read the same hidden layer. One run per seed whatever the gammas.
    Mlp,
    /// Full precision with adversarial debiasing through a gradient-reversal layer of weight gamma.
    Adversarial,
}

impl Method {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Method::Sqnn => "sqnn",
            Method::SqnnJoint => "sqnn-joint",
            Method::Mlp => "mlp",
            Method::Adversarial => "adversarial",
        }
    }

    /// The model and training configuration of this method at one gamma, from the sweep's base.
    pub fn configure(
        self,
        model: &ModelConfig,
        base: &TrainConfig,
        gamma: f64,
    ) -> (ModelConfig, TrainConfig) {
        let mut m = model.clone();
        let mut t = base.clone();
        t.gamma = gamma;
        match self {
            Method::Sqnn => t.penalty = Penalty::PerNeuron,
            Method::SqnnJoint => {
                let last = m.mi_layer();
                m.hidden[last] = m.hidden[last].min(12);
                t.penalty = Penalty::Joint;
                t.warmup_epochs = 10.min(t.epochs);
            }
            Method::Mlp => {
                m.stochastic.clear();
                t.gamma = 0.0;
            }
            Method::Adversarial => {
                m.stochastic.clear();
                t.penalty = Penalty::Adversarial;
            }
        }
        (m, t)
    }

    /// The gammas this method runs at: all of them, or just 0 for the unpenalised baseline.
    pub fn gammas(self, gammas: &[f64]) -> Vec<f64> {
        match self {
            Method::Mlp => vec![0.0],
            _ => gammas.to_vec(),
        }
    }
}

/// Everything a sweep runs; stored as `sweep.json` so a resumed sweep can check it is the same sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepConfig {
    /// The data (its seed is replaced by each run's seed).
    pub data: DataSpec,
    /// Methods.
    pub methods: Vec<Method>,
    /// Penalty weights.
    pub gammas: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Base architecture (`n_inputs` filled in from the data).
    pub model: ModelConfig,
    /// Base training options.
    pub train: TrainConfig,
    /// Evaluation options (their seed is each run's seed).
    pub eval: EvalOptions,
}

/// One finished run: `runs/<key>.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Method.
    pub method: Method,
    /// Penalty weight.
    pub gamma: f64,
    /// Seed.
    pub seed: u64,
    /// Hidden widths actually trained.
    pub hidden: Vec<usize>,
    /// The metrics.
    pub metrics: Metrics,
}

/// One run to do.
#[derive(Clone, Debug)]
struct RunKey {
    method: Method,
    gamma: f64,
    seed: u64,
}

impl RunKey {
    fn file_name(&self) -> String {
        format!("{}-g{}-s{}.json", self.method.name(), self.gamma, self.seed)
    }
}

/// What a sweep did.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    /// Runs in the sweep.
    pub total: usize,
    /// Runs found finished and skipped.
    pub skipped: usize,
    /// Every run's record.
    pub records: Vec<RunRecord>,
}

/// Runs (or resumes) a sweep into `out`: `runs/*.json`, then `results.csv`, `summary.csv` and the plots.
/// Records a sweep's settings in `out/name`, or checks that the settings already there are the same (a
/// resumed sweep must run the same grid; another sweep in the same directory is refused).
pub(crate) fn claim_directory<T>(out: &Path, name: &str, cfg: &T) -> Result<()>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq,
{
    let path = out.join(name);
    if !path.exists() {
        return write_json(&path, cfg);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let old: T = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    if old != *cfg {
        return Err(Error::option(
            "--out",
            out.display(),
            "the directory holds a sweep with other settings; use another directory to start a new sweep",
        ));
    }
    Ok(())
}

pub fn run_sweep(
    cfg: &SweepConfig,
    out: &Path,
    jobs: usize,
    progress: &ProgressBar,
) -> Result<SweepOutcome> {
    if cfg.gammas.iter().any(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(Error::option(
            "--gammas",
            format!("{:?}", cfg.gammas),
            "every gamma must be >= 0",
        ));
    }
    if cfg.methods.is_empty() || cfg.seeds.is_empty() || cfg.gammas.is_empty() {
        return Err(Error::option(
            "--methods/--seeds/--gammas",
            "",
            "none may be empty",
        ));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir).map_err(io(&runs_dir))?;
    claim_directory(out, "sweep.json", cfg)?;
    let mut keys = Vec::new();
    for &method in &cfg.methods {
        for gamma in method.gammas(&cfg.gammas) {
            for &seed in &cfg.seeds {
                keys.push(RunKey {
                    method,
                    gamma,
                    seed,
                });
            }
        }
    }
    let total = keys.len();
    let todo: Vec<RunKey> = keys
        .iter()
        .filter(|k| !runs_dir.join(k.file_name()).exists())
        .cloned()
        .collect();
    let skipped = total - todo.len();
    if skipped > 0 {
        tracing::info!(skipped, total, "resuming: finished runs are kept");
    }
    progress.set_length(total as u64);
    progress.set_position(skipped as u64);
    progress.reset_eta();
    // One preparation per seed, shared by the runs of that seed.
    let mut prepared: BTreeMap<u64, Arc<Prepared>> = BTreeMap::new();
    for &seed in &cfg.seeds {
        if todo.iter().any(|k| k.seed == seed) {
            let spec = DataSpec {
                seed,
                ..cfg.data.clone()
            };
            prepared.insert(seed, Arc::new(data::prepare(&spec, None)?));
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::option("--jobs", jobs, e.to_string()))?;
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    pool.install(|| {
        todo.par_iter().for_each(|key| {
            if first_error.lock().unwrap().is_some() {
                return;
            }
            let result = run_one(cfg, key, &prepared[&key.seed])
                .and_then(|rec| write_json(&runs_dir.join(key.file_name()), &rec));
            match result {
                Ok(()) => progress.inc(1),
                Err(e) => {
                    first_error.lock().unwrap().get_or_insert(e);
                }
            }
        })
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let records = keys
        .iter()
        .map(|k| read_record(&runs_dir.join(k.file_name())))
        .collect::<Result<Vec<_>>>()?;
    write_results(out, &records)?;
    crate::plots::plot_sweep(out, &records)?;
    Ok(SweepOutcome {
        total,
        skipped,
        records,
    })
}

fn run_one(cfg: &SweepConfig, key: &RunKey, data: &Prepared) -> Result<RunRecord> {
    let base_model = ModelConfig {
        n_inputs: data.train.d,
        ..cfg.model.clone()
    };
    let base_train = TrainConfig {
        seed: key.seed,
        ..cfg.train.clone()
    };
    let (model, tc) = key.method.configure(&base_model, &base_train, key.gamma);
    let device = crate::model::default_device()?;
    let net = SqNet::new(&model, &device, &mut train::rng(key.seed, streams::INIT))?;
    let rep = train::train(
        &net,
        &data.train,
        data.val.as_ref(),
        &tc,
        &ProgressBar::hidden(),
    )?;
    let info = RunInfo {
        dataset: cfg.data.name(),
        sensitive: data.encoding.sensitive.column.clone(),
        groups: data.encoding.sensitive.groups.clone(),
        n_dropped: data.n_dropped,
        seed: key.seed,
        gamma: key.gamma,
        penalty: tc.penalty_label(model.is_stochastic()),
        train_seconds: rep.train_seconds,
        epochs: rep.epochs,
    };
    let opts = EvalOptions {
        seed: key.seed,
        ..cfg.eval.clone()
    };
    let metrics = report::evaluate(&net, data, &opts, &info)?;
    Ok(RunRecord {
        method: key.method,
        gamma: key.gamma,
        seed: key.seed,
        hidden: model.hidden.clone(),
        metrics,
    })
}

/// Reads one run's record.
pub fn read_record(path: &Path) -> Result<RunRecord> {
    read_json(path)
}

/// Reads one JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The finished runs of a sweep directory (`dir/runs/*.json`), in file-name order.
pub(crate) fn read_runs<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    let runs = dir.join("runs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map_err(|source| Error::Io {
            path: runs.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_json(p)).collect()
}

/// Reads every run of a sweep directory.
pub fn read_sweep(dir: &Path) -> Result<Vec<RunRecord>> {
    let mut records: Vec<RunRecord> = read_runs(dir)?;
    records.sort_by(|a, b| {
        (a.method, a.seed)
            .cmp(&(b.method, b.seed))
            .then(a.gamma.total_cmp(&b.gamma))
    });
    Ok(records)
}

/// A record's metrics as flat `key -> value` pairs (`task.auc`, ...), text for strings, `NaN` for null.
pub fn flatten(record: &RunRecord) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            serde_json::Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect();
                out.insert(prefix.to_string(), parts.join(";"));
            }
            serde_json::Value::Null => {
                out.insert(prefix.to_string(), "NaN".into());
            }
            serde_json::Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        &serde_json::to_value(&record.metrics).unwrap_or_default(),
        &mut out,
    );
    out
}

/// Numeric metric columns of the summary.
pub const SUMMARY_COLUMNS: &[&str] = &[
    "task.auc",
    "task.accuracy",
    "fairness.dp_gap",
    "fairness.eo_gap",
    "fairness.di_ratio",
    "probes.logreg.sample",
    "probes.logreg.prob",
    "probes.forest.sample",
    "probes.forest.prob",
    "information.mi_per_neuron_bits",
    "information.mi_joint_bits",
    "certificate.dp_gap_bound",
    "certificate.probe_auc_bound",
    "timing.train_seconds",
];

/// Mean and sample standard deviation over seeds of one metric, per method and gamma.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Method.
    pub method: Method,
    /// Gamma.
    pub gamma: f64,
    /// Seeds averaged.
    pub n: usize,
    /// `(mean, std)` per column of [`SUMMARY_COLUMNS`] (`NaN` where undefined).
    pub values: Vec<(f64, f64)>,
}

/// Groups records by method and gamma and averages [`SUMMARY_COLUMNS`] over seeds.
pub fn summarize(records: &[RunRecord]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(Method, u64), Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for r in records {
        groups
            .entry((r.method, r.gamma.to_bits()))
            .or_default()
            .push(flatten(r));
    }
    let mut rows: Vec<SummaryRow> = groups
        .into_iter()
        .map(|((method, g), flats)| {
            let values = SUMMARY_COLUMNS
                .iter()
                .map(|c| {
                    let v: Vec<f64> = flats
                        .iter()
                        .filter_map(|f| f.get(*c)?.parse::<f64>().ok())
                        .collect();
                    if v.iter().any(|x| x.is_nan()) || v.is_empty() {
                        (f64::NAN, f64::NAN)
                    } else {
                        crate::metrics::mean_std(&v)
                    }
                })
                .collect();
            SummaryRow {
                method,
                gamma: f64::from_bits(g),
                n: flats.len(),
                values,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.method.cmp(&b.method).then(a.gamma.total_cmp(&b.gamma)));
    rows
}

/// Writes `results.csv` (one row per run, every metric flattened) and `summary.csv` (mean and std per
/// method and gamma).
pub fn write_results(out: &Path, records: &[RunRecord]) -> Result<()> {
    let flats: Vec<BTreeMap<String, String>> = records.iter().map(flatten).collect();
    let mut columns: Vec<String> = flats.iter().flat_map(|f| f.keys().cloned()).collect();
    columns.sort();
    columns.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Csv {
        path: out.join("results.csv").display().to_string(),
        line: 0,
        message: e.to_string(),
    };
    let mut header = vec![
        "method".to_string(),
        "gamma".into(),
        "seed".into(),
        "hidden".into(),
    ];
    header.extend(columns.iter().cloned());
    w.write_record(&header).map_err(csv_err)?;
    for (r, f) in records.iter().zip(&flats) {
        let mut row = vec![
            r.method.name().to_string(),
            r.gamma.to_string(),
            r.seed.to_string(),
            r.hidden
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(";"),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| f.get(c).cloned().unwrap_or_default()),
        );
        w.write_record(&row).map_err(csv_err)?;
    }
    write_atomic(
        &out.join("results.csv"),
        &w.into_inner().map_err(|e| csv_err(e.into_error().into()))?,
    )?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["method".to_string(), "gamma".into(), "n".into()];
    for c in SUMMARY_COLUMNS {
        header.push(format!("{c}.mean"));
        header.push(format!("{c}.std"));
    }
    w.write_record(&header).map_err(csv_err)?;
    for row in summarize(records) {
        let mut cells = vec![
            row.method.name().to_string(),
            row.gamma.to_string(),
            row.n.to_string(),
        ];
        for (m, s) in &row.values {
            cells.push(m.to_string());
            cells.push(s.to_string());
        }
        w.write_record(&cells).map_err(csv_err)?;
    }
    write_atomic(
        &out.join("summary.csv"),
        &w.into_inner().map_err(|e| csv_err(e.into_error().into()))?,
    )
}

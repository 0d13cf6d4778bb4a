//! The tabular grid (`fairbits sweep` on a table): methods x gammas x seeds in one harness (same data,
//! preprocessing and metrics), run by [`super::run_grid`]; its summary, plots and report section (the
//! answers to the paper's questions: Q1, can these networks learn fair classifiers that compare well with
//! the state of the art; Q2, are their representations more invariant than those of full-precision
//! networks at matched AUC).

use super::plots::{self, Chart, Series};
use super::{read_runs, run_grid, summarize, write_results, write_summary, GridOutcome, Key, Run};
use crate::data::{DataSpec, Prepared};
use crate::error::{Error, Result};
use crate::estimator::FairModel;
use crate::eval::{BinaryMetrics, EvalOptions, Metrics};
use crate::model::ModelConfig;
use crate::penalty::{PenaltyKind, PenaltySpec, Target};
use crate::progress::Observer;
use crate::schema::Param;
use crate::store::SavedConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A method of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
named_choices!(Method, Methods, {
    Sqnn => "sqnn",
    SqnnJoint => "sqnn-joint",
    Mlp => "mlp",
    Adversarial => "adversarial",
});

impl Method {
    /// The model and training configuration of this method at one gamma, from the sweep's base.
    pub fn configure(self, model: &ModelConfig, base: &TrainConfig, gamma: f64) -> (ModelConfig, TrainConfig) {
        let mut m = model.clone();
        let mut t = base.clone();
        t.gamma = gamma;
        match self {
            Method::Sqnn => t.penalty = PenaltySpec::new(PenaltyKind::PerNeuron, Target::Parity),
            Method::SqnnJoint => {
                let last = m.mi_layer();
                m.hidden[last] = m.hidden[last].min(12);
                t.penalty = PenaltySpec::new(PenaltyKind::Joint, Target::Parity);
                t.warmup_epochs = 10.min(t.epochs);
            }
            Method::Mlp => {
                m.stochastic.clear();
                t.gamma = 0.0;
            }
            Method::Adversarial => {
                m.stochastic.clear();
                t.penalty = PenaltySpec::new(PenaltyKind::Adversarial, Target::Parity);
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

/// Everything a tabular sweep runs; stored as `sweep.json` so a resumed sweep can check it is the same.
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

impl SweepConfig {
    /// A sweep of `methods` at `gammas` (default 0, 0.1, 0.5, 1, 2, 5) and `seeds` on `data`, the other
    /// settings from `params`.
    pub fn new(
        data: DataSpec,
        methods: Vec<Method>,
        gammas: Option<Vec<f64>>,
        seeds: Vec<u64>,
        params: &crate::estimator::ValidParams,
    ) -> Result<Self> {
        let (model, train, eval) = params.resolve_for(crate::store::ModelKind::Table, &[1], 2)?;
        Ok(SweepConfig {
            data,
            methods,
            gammas: gammas.unwrap_or(vec![0.0, 0.1, 0.5, 1.0, 2.0, 5.0]),
            seeds,
            model,
            train,
            eval,
        })
    }
}

/// One finished run: `runs/<method>-g<gamma>-s<seed>.json`.
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
    pub metrics: BinaryMetrics,
}

/// One run to do.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    method: Method,
    gamma: f64,
    seed: u64,
}

/// The runs of a sweep, in method, gamma, seed order.
pub fn runs(cfg: &SweepConfig) -> Vec<Run<Job>> {
    let mut out = Vec::new();
    for &method in &cfg.methods {
        for gamma in method.gammas(&cfg.gammas) {
            for &seed in &cfg.seeds {
                out.push(Run {
                    id: format!("{}-g{gamma}-s{seed}", method.name()),
                    data: cfg.data.with_seed(seed),
                    job: Job { method, gamma, seed },
                });
            }
        }
    }
    out
}

/// Runs (or resumes) a sweep, or its `shard`, into `out`: `runs/*.json`, then `results.csv`, `summary.csv`
/// and the plots (of every run finished in `out`).
pub fn run(
    cfg: &SweepConfig,
    out: &Path,
    shard: super::Shard,
    jobs: usize,
    observer: &dyn Observer,
) -> Result<(GridOutcome, Vec<RunRecord>)> {
    if let Some(g) = cfg.gammas.iter().find(|g| !(g.is_finite() && **g >= 0.0)) {
        return Err(Error::param(Param::Gammas, g, "every gamma must be a finite number >= 0"));
    }
    for (param, empty) in [(Param::Methods, cfg.methods.is_empty()), (Param::Seeds, cfg.seeds.is_empty())] {
        if empty {
            return Err(Error::param(param, "none", "a sweep needs at least one"));
        }
    }
    if cfg.gammas.is_empty() {
        return Err(Error::param(Param::Gammas, "none", "a sweep needs at least one"));
    }
    crate::files::create_dir(out)?;
    super::claim_directory(out, "sweep.json", cfg)?;
    let grid = shard.select(runs(cfg));
    let outcome = run_grid(out, &grid, jobs, observer, |job, data| run_one(cfg, job, data))?;
    Ok((outcome, finish(out)?))
}

/// `results.csv`, `summary.csv` and the plots of the runs finished in `out`; returns them.
pub fn finish(out: &Path) -> Result<Vec<RunRecord>> {
    let records = read_sweep(out)?;
    write_tables(out, &records)?;
    plot(out, &records)?;
    Ok(records)
}

fn run_one(cfg: &SweepConfig, job: &Job, data: &Prepared) -> Result<RunRecord> {
    let base_model = ModelConfig { n_inputs: data.train.d, ..cfg.model.clone() };
    let base_train = TrainConfig { seed: job.seed, ..cfg.train.clone() };
    let (model, train) = job.method.configure(&base_model, &base_train, job.gamma);
    let eval = EvalOptions { seed: job.seed, ..cfg.eval.clone() };
    let hidden = model.hidden.clone();
    let config = SavedConfig::new(model, train, cfg.data.with_seed(job.seed), data.encoding.clone(), eval.clone());
    let (fitted, report) = FairModel::train(config, data, None, &())?;
    let info = fitted.run_info(report.train_seconds, report.epochs);
    let metrics = match fitted.evaluate(data, &eval, &info, &())? {
        Metrics::Binary(m) => *m,
        Metrics::Multiclass(_) => {
            return Err(Error::param(Param::Dataset, cfg.data.name(), "a tabular sweep needs a binary task"))
        }
    };
    Ok(RunRecord { method: job.method, gamma: job.gamma, seed: job.seed, hidden, metrics })
}

/// Every run of a sweep directory, sorted by method, seed, gamma.
pub fn read_sweep(dir: &Path) -> Result<Vec<RunRecord>> {
    let mut records: Vec<RunRecord> = read_runs(dir)?;
    records.sort_by(|a, b| (a.method, a.seed).cmp(&(b.method, b.seed)).then(a.gamma.total_cmp(&b.gamma)));
    Ok(records)
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

/// One cell of the summary: a method at a gamma, mean and std over seeds of [`SUMMARY_COLUMNS`].
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Method.
    pub method: Method,
    /// Gamma.
    pub gamma: f64,
    /// Seeds averaged.
    pub n: usize,
    /// `(mean, std)` per column of [`SUMMARY_COLUMNS`].
    pub values: Vec<(f64, f64)>,
}

/// The summary of a sweep's records, by method and gamma.
pub fn cells(records: &[RunRecord]) -> Vec<Cell> {
    let flat: Vec<((Method, Key), BTreeMap<String, String>)> =
        records.iter().map(|r| ((r.method, Key(r.gamma)), super::flatten(&r.metrics, &[]))).collect();
    summarize(&flat, SUMMARY_COLUMNS)
        .into_iter()
        .map(|row| Cell { method: row.key.0, gamma: row.key.1 .0, n: row.n, values: row.values })
        .collect()
}

fn write_tables(out: &Path, records: &[RunRecord]) -> Result<()> {
    let runs: Vec<(Vec<String>, BTreeMap<String, String>)> = records
        .iter()
        .map(|r| {
            let hidden: Vec<String> = r.hidden.iter().map(|h| h.to_string()).collect();
            (
                vec![r.method.name().to_string(), r.gamma.to_string(), r.seed.to_string(), hidden.join(";")],
                super::flatten(&r.metrics, &[]),
            )
        })
        .collect();
    write_results(out, &["method", "gamma", "seed", "hidden"], &runs)?;
    let rows: Vec<super::SummaryLine> = cells(records)
        .into_iter()
        .map(|c| (vec![c.method.name().to_string(), c.gamma.to_string()], c.n, c.values))
        .collect();
    write_summary(out, &["method", "gamma"], SUMMARY_COLUMNS, &rows)
}

/// The index of `name` in [`SUMMARY_COLUMNS`].
pub fn col(name: &str) -> usize {
    SUMMARY_COLUMNS.iter().position(|c| *c == name).unwrap()
}

/// The method's colour in every plot.
fn colour(m: Method) -> plots::Rgb {
    match m {
        Method::Sqnn => (31, 119, 180),
        Method::SqnnJoint => (214, 39, 40),
        Method::Mlp => (44, 160, 44),
        Method::Adversarial => (255, 127, 14),
    }
}

/// The three plots: task AUC against dp_gap, against the forest's s-AUC on sampled codes, and against the
/// joint MI; one series per method, the Pareto front over all of them.
fn plot(out: &Path, records: &[RunRecord]) -> Result<()> {
    let rows = cells(records);
    let auc = col("task.auc");
    for (stem, title, x_label, x_column) in [
        (
            "auc_vs_dp_gap",
            "Task AUC vs demographic-parity gap",
            "dp_gap (|P(yhat=1|S=0) - P(yhat=1|S=1)|, test split)",
            "fairness.dp_gap",
        ),
        (
            "auc_vs_forest_s_auc",
            "Task AUC vs random-forest probe for s (sampled codes)",
            "forest probe AUC for s on one sampled code per row (0.5 = invariant)",
            "probes.forest.sample",
        ),
        (
            "auc_vs_joint_mi",
            "Task AUC vs joint MI of the stochastic layer",
            "I(T; S) in bits (test split)",
            "information.mi_joint_bits",
        ),
    ] {
        let xc = col(x_column);
        let mut series: Vec<Series> = Vec::new();
        for row in &rows {
            let (x, y) = (row.values[xc], row.values[auc]);
            if x.0.is_nan() || y.0.is_nan() {
                continue;
            }
            let point = plots::Point { x: x.0, x_std: x.1, y: y.0, y_std: y.1, gamma: row.gamma };
            match series.iter_mut().find(|s| s.label == row.method.name()) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    label: row.method.name().to_string(),
                    colour: colour(row.method),
                    points: vec![point],
                }),
            }
        }
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: "task ROC AUC (test split)".to_string(),
            ranges: None,
            pareto: true,
            series,
        };
        plots::write_svg_png(out, stem, &chart)?;
    }
    Ok(())
}

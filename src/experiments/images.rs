//! The image grid (`fairbits sweep` on colour-biased images): rho x penalty x gamma x seed (gamma 0 being
//! the shared baseline of each rho), run by [`super::run_grid`]; its summary, a plot per rho (unbiased
//! accuracy against colour-probe accuracy) and its section of the report, with a computed verdict per rho.

use super::plots::{self, Chart, Series};
use super::{read_runs, run_grid, summarize, write_results, write_summary, GridOutcome, Key, Run, SummaryRow};
use crate::data::{DataSpec, ImageSpec, Prepared};
use crate::error::{Error, Result};
use crate::estimator::FairModel;
use crate::eval::{EvalOptions, ImageMetrics, Metrics};
use crate::files;
use crate::model::ModelConfig;
use crate::penalty::PenaltySpec;
use crate::progress::Observer;
use crate::schema::Param;
use crate::store::SavedConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The grid; written to `image_sweep.json` so that a resumed sweep runs the same one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSweepConfig {
    /// The images (rho and seed replaced by each run's).
    pub data: ImageSpec,
    /// Colour biases.
    pub rhos: Vec<f64>,
    /// Penalties (each with every gamma > 0; gamma 0 is the shared baseline).
    pub penalties: Vec<PenaltySpec>,
    /// Penalty weights.
    pub gammas: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Architecture (the convolutions' and dense layers'; `n_inputs` from the images).
    pub model: ModelConfig,
    /// Training options (penalty, gamma and seed replaced by each run's).
    pub train: TrainConfig,
    /// Evaluation options (seed replaced by each run's).
    pub eval: EvalOptions,
}

impl ImageSweepConfig {
    /// A sweep of `penalties` at `gammas` (default 0, 1, 10, 30) over `rhos` and `seeds` on the images
    /// of `data`, the other settings from `params`.
    pub fn new(
        data: ImageSpec,
        rhos: Vec<f64>,
        penalties: Vec<PenaltySpec>,
        gammas: Option<Vec<f64>>,
        seeds: Vec<u64>,
        params: &crate::estimator::ValidParams,
    ) -> Result<Self> {
        let (model, train, eval) = params.resolve_for(crate::store::ModelKind::Image, &[3, 28, 28], 10)?;
        Ok(ImageSweepConfig {
            rhos: if rhos.is_empty() { vec![data.rho] } else { rhos },
            data,
            penalties,
            gammas: gammas.unwrap_or(vec![0.0, 1.0, 10.0, 30.0]),
            seeds,
            model,
            train,
            eval,
        })
    }

    /// A line describing the settings for the report.
    pub fn settings(&self) -> String {
        let conv = self.model.conv.as_ref();
        format!(
            "{} epochs, batch {}, lr {}, channels {:?}, kernel {}, hidden {:?}{}",
            self.train.epochs,
            self.train.batch_size,
            self.train.lr,
            conv.map(|c| c.channels.clone()).unwrap_or_default(),
            conv.map(|c| c.kernel).unwrap_or_default(),
            self.model.hidden,
            self.data.train_size.map(|n| format!(", training subsample {n}")).unwrap_or_default()
        )
    }
}

/// One run of the grid.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    rho: f64,
    penalty: Option<PenaltySpec>,
    gamma: f64,
    seed: u64,
}

/// The runs: per rho and seed, the unpenalised baseline, then every penalty at every gamma > 0.
pub fn runs(cfg: &ImageSweepConfig) -> Vec<Run<Job>> {
    let mut out = Vec::new();
    for &rho in &cfg.rhos {
        for &seed in &cfg.seeds {
            let data = DataSpec::Images(ImageSpec { rho, seed, ..cfg.data.clone() });
            let mut push = |penalty: Option<PenaltySpec>, gamma: f64| {
                let label = penalty.map_or("none".to_string(), |p| p.to_string());
                out.push(Run {
                    id: format!("rho{rho}_{label}_g{gamma}_s{seed}"),
                    data: data.clone(),
                    job: Job { rho, penalty, gamma, seed },
                });
            };
            push(None, 0.0);
            for &p in &cfg.penalties {
                for &gamma in cfg.gammas.iter().filter(|g| **g > 0.0) {
                    push(Some(p), gamma);
                }
            }
        }
    }
    out
}

/// Runs (or resumes) the sweep, or its `shard`, into `out`, then writes `results.csv`, `summary.csv` and
/// the plots (of every run finished in `out`).
pub fn run(
    cfg: &ImageSweepConfig,
    out: &Path,
    shard: super::Shard,
    jobs: usize,
    observer: &dyn Observer,
) -> Result<(GridOutcome, Vec<ImageMetrics>)> {
    if let Some(g) = cfg.gammas.iter().find(|g| !(g.is_finite() && **g >= 0.0)) {
        return Err(Error::param(Param::Gammas, g, "every gamma must be a finite number >= 0"));
    }
    if cfg.seeds.is_empty() {
        return Err(Error::param(Param::Seeds, "none", "a sweep needs at least one seed"));
    }
    files::create_dir(out)?;
    super::claim_directory(out, "image_sweep.json", cfg)?;
    let grid = shard.select(runs(cfg));
    let outcome = run_grid(out, &grid, jobs, observer, |job, data| run_one(cfg, job, data))?;
    Ok((outcome, finish(out)?))
}

/// `results.csv`, `summary.csv` and the plots of the runs finished in `out`; returns them.
pub fn finish(out: &Path) -> Result<Vec<ImageMetrics>> {
    let records = read(out)?;
    write_tables(out, &records)?;
    plot(out, &records)?;
    Ok(records)
}

fn run_one(cfg: &ImageSweepConfig, job: &Job, data: &Prepared) -> Result<ImageMetrics> {
    let mut train = TrainConfig { seed: job.seed, gamma: job.gamma, ..cfg.train.clone() };
    if let Some(p) = job.penalty {
        train.penalty = p;
    }
    let eval = EvalOptions { seed: job.seed, ..cfg.eval.clone() };
    let spec = DataSpec::Images(ImageSpec { rho: job.rho, seed: job.seed, ..cfg.data.clone() });
    let mut model = cfg.model.clone();
    if let Some(conv) = model.conv.as_mut() {
        // IDX images need not be 28 x 28.
        conv.image = (data.train.shape[1], data.train.shape[2]);
        model.n_inputs = conv.feature_width()?;
    }
    let config = SavedConfig::new(model, train, spec, None, eval.clone());
    let (fitted, report) = FairModel::train(config, data, None, &())?;
    let info = fitted.run_info(report.train_seconds, report.epochs);
    match fitted.evaluate(data, &eval, &info, &())? {
        Metrics::Multiclass(m) => Ok(*m),
        Metrics::Binary(_) => Err(Error::param(Param::Dataset, "a table", "an image sweep needs images")),
    }
}

/// The finished runs of a sweep directory, in name order.
pub fn read(dir: &Path) -> Result<Vec<ImageMetrics>> {
    read_runs(dir)
}

/// The summarised columns (flattened metric names).
pub const COLUMNS: &[&str] = &[
    "task.accuracy_unbiased",
    "task.accuracy_biased",
    "probes.logistic.accuracy",
    "probes.logistic.auc",
    "probes.forest.accuracy",
    "probes.forest.auc",
    "information.per_neuron_mi",
    "information.joint_mi",
    "information.per_neuron_mi_conditional",
    "information.joint_mi_conditional",
    "run.train_seconds",
];

/// A cell: rho, whether penalised (the baseline first), the penalty label, gamma.
type CellKey = (Key, bool, String, Key);

/// Mean and std over seeds of one (rho, penalty, gamma) cell.
pub type Summary = SummaryRow<CellKey>;

/// A cell's penalty label (`none` for the baseline).
pub fn label(s: &Summary) -> &str {
    &s.key.2
}

/// A cell's colour bias rho.
pub fn rho(s: &Summary) -> f64 {
    s.key.0 .0
}

/// A cell's gamma.
pub fn gamma(s: &Summary) -> f64 {
    s.key.3 .0
}

/// A cell's `(mean, std)` of the column `name` of [`COLUMNS`].
pub fn get(s: &Summary, name: &str) -> (f64, f64) {
    s.get(COLUMNS, name)
}

/// Groups runs by (rho, penalty, gamma).
pub fn summary(records: &[ImageMetrics]) -> Vec<Summary> {
    let flat: Vec<(CellKey, BTreeMap<String, String>)> = records
        .iter()
        .map(|r| {
            (
                (Key(r.run.rho), r.run.penalty != "none", r.run.penalty.clone(), Key(r.run.gamma)),
                super::flatten(r, &["history"]),
            )
        })
        .collect();
    summarize(&flat, COLUMNS)
}

fn write_tables(out: &Path, records: &[ImageMetrics]) -> Result<()> {
    let runs: Vec<(Vec<String>, BTreeMap<String, String>)> = records
        .iter()
        .map(|r| {
            (
                vec![
                    r.run.dataset.clone(),
                    r.run.rho.to_string(),
                    r.run.penalty.clone(),
                    r.run.gamma.to_string(),
                    r.run.seed.to_string(),
                ],
                super::flatten(r, &["history"]),
            )
        })
        .collect();
    write_results(out, &["dataset", "rho", "penalty", "gamma", "seed"], &runs)?;
    let rows: Vec<super::SummaryLine> = summary(records)
        .into_iter()
        .map(|s| (vec![rho(&s).to_string(), label(&s).to_string(), gamma(&s).to_string()], s.n, s.values))
        .collect();
    write_summary(out, &["rho", "penalty", "gamma"], COLUMNS, &rows)
}

const PALETTE: [plots::Rgb; 5] = [(0, 0, 0), (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14)];

/// One plot per rho: unbiased accuracy against the colour probe's accuracy, one series per penalty.
fn plot(out: &Path, records: &[ImageMetrics]) -> Result<()> {
    let rows = summary(records);
    let mut rhos: Vec<f64> = rows.iter().map(rho).collect();
    rhos.dedup();
    for r in rhos {
        let mut series: Vec<Series> = Vec::new();
        for s in rows.iter().filter(|s| rho(s) == r) {
            let (x, xs) = get(s, "probes.logistic.accuracy");
            let (y, ys) = get(s, "task.accuracy_unbiased");
            let point = plots::Point { x, x_std: xs, y, y_std: ys, gamma: gamma(s) };
            match series.iter_mut().find(|t| t.label == label(s)) {
                Some(t) => t.points.push(point),
                None => {
                    let colour = PALETTE[series.len() % PALETTE.len()];
                    series.push(Series { label: label(s).to_string(), colour, points: vec![point] })
                }
            }
        }
        let chart = Chart {
            title: format!("rho {r}: unbiased accuracy vs colour decodability"),
            x_label: "colour-probe accuracy on sampled codes (logistic; chance 0.1)".into(),
            y_label: "accuracy on the unbiased test set".into(),
            ranges: Some(((0.0, 1.05), (0.0, 1.0))),
            pareto: false,
            series,
        };
        plots::write_svg_png(out, &format!("unbiased_accuracy_rho{r}"), &chart)?;
    }
    Ok(())
}

//! Evaluation of a trained network on held-out data (docs/design.md, section 5): one entry point,
//! [`evaluate`], for every model. The data decide what the task metrics are: a table (binary or
//! multi-class head) gets AUC, accuracy and the fairness gaps of its decisions ([`binary`]), a regression
//! head RMSE, R^2, MAE and the gap in mean prediction instead ([`regression`]); the images
//! get accuracy on the unbiased and the biased test set ([`multiclass`]). Both measure the information the
//! representation carries about `s`, probe it, and certify it, with the tools of [`metrics`], [`probes`]
//! and [`certificate`]. Assessment never trains the model.

pub(crate) mod binary;
pub mod certificate;
pub mod metrics;
pub(crate) mod multiclass;
pub mod probes;
pub mod regression;

pub use binary::{
    information, mi_report, population, population_weighted, BinaryMetrics, Certificate, Fairness, Information,
    MiReport, ProbeResult, Probes, Task, Timing,
};
pub use multiclass::{ColourProbes, ImageInformation, ImageMetrics, ImageRun, ImageTask};
pub use regression::Regression;

use crate::data::Prepared;
use crate::error::Result;
use crate::model::{Inference, Net};
use crate::penalty::PenaltySpec;
use crate::progress::Observer;
use crate::train::EpochStats;
use serde::{Deserialize, Serialize};

/// `f64` fields that may be undefined: `NaN` is written as `null` and `null` read back as `NaN`.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `NaN` as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads `null` as `NaN`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Evaluation options.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalOptions {
    /// What the stochastic layers emit for the task and fairness metrics.
    pub inference: Inference,
    /// Independent draws of one code per row in `sample` mode (and for the probes on sampled codes).
    pub draws: usize,
    /// Monte-Carlo draws of the joint MI when the layer is too wide to enumerate.
    pub mc_samples: usize,
    /// Widest layer whose joint MI is enumerated exactly.
    pub m_max: usize,
    /// Trees of the forest probe.
    pub forest_trees: usize,
    /// Seed of the evaluation's samples and probes.
    pub seed: u64,
    /// The probes learn on a seeded subsample of at most this many rows and are scored on at most this
    /// many (their cost grows with the rows; the task metrics use every row).
    #[serde(default = "default_probe_rows")]
    pub probe_rows: usize,
    /// Draws of sampled codes the probes are fitted on (the task metrics use `draws`).
    #[serde(default = "default_probe_draws")]
    pub probe_draws: usize,
    /// Confidence `1 - delta` of the population certificate.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_probe_rows() -> usize {
    crate::schema::default::probe_rows(crate::store::ModelKind::Table)
}

fn default_probe_draws() -> usize {
    crate::schema::default::probe_draws(crate::store::ModelKind::Table)
}

fn default_confidence() -> f64 {
    crate::schema::default::confidence(crate::store::ModelKind::Table)
}

impl EvalOptions {
    /// Checks every value's range ([`crate::schema::check`]).
    pub fn validate(&self) -> Result<()> {
        use crate::schema::check;
        check::inference(&self.inference)?;
        check::draws(&self.draws)?;
        check::mc_samples(&self.mc_samples)?;
        check::m_max(&self.m_max)?;
        check::forest_trees(&self.forest_trees)?;
        check::probe_rows(&self.probe_rows)?;
        check::probe_draws(&self.probe_draws)?;
        check::confidence(&self.confidence)
    }
}

/// Facts about the run that the metrics record.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The run's seed.
    pub seed: u64,
    /// Penalty weight.
    pub gamma: f64,
    /// The penalty.
    pub penalty: PenaltySpec,
    /// Its name in reports (`none` when nothing was penalised).
    pub penalty_label: String,
    /// Training seconds (`NaN`: not recorded).
    pub train_seconds: f64,
    /// Epochs run.
    pub epochs: usize,
    /// Per-epoch statistics (recorded in image metrics).
    pub history: Vec<EpochStats>,
    /// Images: the colour bias of the training set.
    pub rho: Option<f64>,
}

/// The metrics of a run (`metrics.json`, `--json`): by the kind of head.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Metrics {
    /// A binary task.
    Binary(Box<BinaryMetrics>),
    /// A multi-class task with coloured inputs (the images).
    Multiclass(Box<ImageMetrics>),
}

impl Metrics {
    /// The binary metrics, when the task is binary.
    pub fn binary(&self) -> Option<&BinaryMetrics> {
        match self {
            Metrics::Binary(m) => Some(m),
            Metrics::Multiclass(_) => None,
        }
    }

    /// The image metrics, when the task is multi-class.
    pub fn multiclass(&self) -> Option<&ImageMetrics> {
        match self {
            Metrics::Binary(_) => None,
            Metrics::Multiclass(m) => Some(m),
        }
    }

    /// Leaves the wall-clock time out (`null`), so that the same run gives byte-identical metrics.
    pub fn forget_time(&mut self) {
        match self {
            Metrics::Binary(m) => m.timing.train_seconds = f64::NAN,
            Metrics::Multiclass(m) => m.run.train_seconds = f64::NAN,
        }
    }
}

/// Evaluates `net` on `data` (test split; probes learn on [`Prepared::probe_train`]).
pub fn evaluate(
    net: &Net,
    data: &Prepared,
    opts: &EvalOptions,
    run: &RunInfo,
    observer: &dyn Observer,
) -> Result<Metrics> {
    opts.validate()?;
    // A table's task is evaluated as one whatever its classes; the image evaluation is about colours.
    if net.config().n_outputs == 1 || data.encoding.is_some() {
        Ok(Metrics::Binary(Box::new(binary::evaluate(net, data, opts, run, observer)?)))
    } else {
        Ok(Metrics::Multiclass(Box::new(multiclass::evaluate(net, data, opts, run, observer)?)))
    }
}

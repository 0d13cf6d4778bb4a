//! Evaluation of a table's task (docs/design.md, section 5), binary or of `k >= 3` classes: task
//! metrics, fairness gaps, probes, information and certificate on the test split, the metrics JSON and a
//! readable table; and the `mi` report. A binary head scores `P(y = 1)`; a multi-class head (a softmax)
//! predicts its most probable class, and its gaps are the largest over classes (below).

use super::certificate::{self, CAVEAT};
use super::metrics::{self, mean_std};
use super::probes::{self, ProbeScore, Repr};
use super::regression::{self, Regression};
use super::{nullable, EvalOptions, RunInfo};
use crate::data::Scale;
use crate::data::{Dataset, Prepared};
use crate::error::Result;
use crate::model::{Inference, Mode, Net, Prefix};
use crate::penalty::mi;
use crate::progress::{Event, Observer};
use crate::rng::{rng, Stream};
use crate::schema::Param;
use candle_core::{DType, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Task metrics (mean over draws in `sample` mode, with their standard deviations).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Task {
    /// ROC AUC of the head's probability (more classes: the macro one-vs-rest AUC).
    #[serde(with = "nullable")]
    pub auc: f64,
    /// Accuracy at 0.5 (more classes: of the most probable class).
    #[serde(with = "nullable")]
    pub accuracy: f64,
    /// Std of `auc` over draws.
    #[serde(with = "nullable")]
    pub auc_std: f64,
    /// Std of `accuracy` over draws.
    #[serde(with = "nullable")]
    pub accuracy_std: f64,
    /// Accuracy of the constant prediction of the test rows' majority class: what a model must beat
    /// (`NaN` in metrics written before it was recorded).
    #[serde(with = "nullable", default = "undefined")]
    pub majority_accuracy: f64,
}

impl Task {
    /// No classification metrics (a regression model).
    pub fn undefined() -> Self {
        let nan = f64::NAN;
        Task { auc: nan, accuracy: nan, auc_std: nan, accuracy_std: nan, majority_accuracy: nan }
    }

    /// True for [`Task::undefined`]: a classifier's majority accuracy is always a number.
    pub fn is_undefined(&self) -> bool {
        self.auc.is_nan() && self.accuracy.is_nan() && self.majority_accuracy.is_nan()
    }
}

impl Fairness {
    /// No gaps of decisions (a regression model).
    pub fn undefined() -> Self {
        let nan = f64::NAN;
        Fairness {
            dp_gap: nan,
            eo_gap: nan,
            di_ratio: nan,
            dp_gap_std: nan,
            eo_gap_std: nan,
            di_ratio_std: nan,
            dp_gap_per_class: Vec::new(),
        }
    }

    /// True for [`Fairness::undefined`].
    pub fn is_undefined(&self) -> bool {
        [self.dp_gap, self.eo_gap, self.di_ratio, self.dp_gap_std, self.eo_gap_std, self.di_ratio_std]
            .iter()
            .all(|v| v.is_nan())
    }
}

/// Fairness metrics of the hard predictions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fairness {
    /// Demographic-parity gap (more classes: the largest over classes `c` of the selection-rate gap
    /// `max_g P(pred = c | g) - min_g P(pred = c | g)`).
    #[serde(with = "nullable")]
    pub dp_gap: f64,
    /// Equalised-odds gap (more classes: the largest over true classes `y` and predicted classes `c` of
    /// the gap of `P(pred = c | y, g)` between groups).
    #[serde(with = "nullable")]
    pub eo_gap: f64,
    /// Disparate-impact ratio (more classes: the smallest over classes).
    #[serde(with = "nullable")]
    pub di_ratio: f64,
    /// Std of `dp_gap` over draws.
    #[serde(with = "nullable")]
    pub dp_gap_std: f64,
    /// Std of `eo_gap` over draws.
    #[serde(with = "nullable")]
    pub eo_gap_std: f64,
    /// Std of `di_ratio` over draws.
    #[serde(with = "nullable")]
    pub di_ratio_std: f64,
    /// More classes: the selection-rate gap of each class (label order; mean over draws); empty for a
    /// binary task, whose gap is `dp_gap`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dp_gap_per_class: Vec<f64>,
}

/// One probe's AUC for `s` on sampled codes and on `p`, with accuracies.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    /// AUC on one sampled code per row (mean over draws).
    #[serde(with = "nullable")]
    pub sample: f64,
    /// AUC on `p`.
    #[serde(with = "nullable")]
    pub prob: f64,
    /// Std of `sample` over draws.
    #[serde(with = "nullable")]
    pub sample_std: f64,
    /// Accuracy on sampled codes.
    #[serde(with = "nullable")]
    pub sample_accuracy: f64,
    /// Accuracy on `p`.
    #[serde(with = "nullable")]
    pub prob_accuracy: f64,
}

/// Both probes and the accuracy of always guessing the largest group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Probes {
    /// Logistic regression.
    pub logreg: ProbeResult,
    /// Random forest.
    pub forest: ProbeResult,
    /// Share of the largest group among the rows the probes are scored on (a probe's accuracy baseline).
    #[serde(with = "nullable")]
    pub majority_rate: f64,
    /// Rows the probes learned on (a seeded subsample of at most `probe_rows`).
    pub rows_train: usize,
    /// Rows the probes were scored on.
    pub rows_test: usize,
    /// Draws of sampled codes the probes were fitted on.
    pub draws: usize,
}

/// Information in the MI layer about `s` on the test split.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Information {
    /// Width `m` of the layer.
    pub code_width: usize,
    /// `sum_j I(T_j; S)` (docs/design.md, section 2).
    #[serde(with = "nullable")]
    pub mi_per_neuron_bits: f64,
    /// `I(T; S)` (docs/design.md, section 3).
    #[serde(with = "nullable")]
    pub mi_joint_bits: f64,
    /// Its standard error (0 when exact).
    #[serde(with = "nullable")]
    pub mi_joint_stderr: f64,
    /// `exact` or `monte-carlo`.
    pub mi_joint_method: String,
}

/// The certificate (docs/design.md, section 4).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Certificate {
    /// The MI the bounds use: exact, or the Monte-Carlo mean plus two standard errors.
    #[serde(with = "nullable")]
    pub mi_bits_used: f64,
    /// Bound on the DP gap of any classifier of one sampled code.
    #[serde(with = "nullable")]
    pub dp_gap_bound: f64,
    /// Bound on the AUC of any probe for `s` on one sampled code.
    #[serde(with = "nullable")]
    pub probe_auc_bound: f64,
    /// Exact largest DP gap (total variation), when the layer can be enumerated.
    pub tv_exact: Option<f64>,
    /// Exact largest probe AUC (likelihood-ratio probe), when the layer can be enumerated.
    pub probe_auc_exact: Option<f64>,
    /// What the bounds cover: the numbers above are empirical (they describe the test rows).
    pub caveat: String,
    /// The population certificate with confidence (docs/design.md, section 4b); absent for a
    /// full-precision representation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<certificate::Population>,
}

/// Training time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    /// Seconds spent training.
    #[serde(with = "nullable")]
    pub train_seconds: f64,
    /// Epochs run.
    pub epochs: usize,
}

fn undefined() -> f64 {
    f64::NAN
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The metrics JSON of a binary task (`metrics.json`, `--json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BinaryMetrics {
    /// fairbits version that produced the numbers.
    pub fairbits_version: String,
    /// Dataset name.
    pub dataset: String,
    /// Sensitive column.
    pub sensitive: String,
    /// Group values (index = `s`).
    pub groups: Vec<String>,
    /// A target of more than two classes: its values (index = label); empty for a binary target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Training rows.
    pub n_train: usize,
    /// Test rows.
    pub n_test: usize,
    /// Rows dropped for a missing value.
    pub n_dropped: usize,
    /// Rows of a held-out file left out because the model was trained on them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_removed_as_training: usize,
    /// Seed.
    pub seed: u64,
    /// Penalty weight.
    #[serde(with = "nullable")]
    pub gamma: f64,
    /// Penalty.
    pub penalty: String,
    /// Inference mode of task and fairness metrics.
    pub inference: String,
    /// Draws averaged in sample mode.
    pub draws: usize,
    /// Task metrics (a classifier's; left out for a regression model).
    #[serde(default = "Task::undefined", skip_serializing_if = "Task::is_undefined")]
    pub task: Task,
    /// Fairness metrics (a classifier's; left out for a regression model).
    #[serde(default = "Fairness::undefined", skip_serializing_if = "Fairness::is_undefined")]
    pub fairness: Fairness,
    /// A regression model's task and fairness metrics (docs/design.md, section 5c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<Regression>,
    /// Probes for `s`.
    pub probes: Probes,
    /// Information.
    pub information: Information,
    /// Certificate.
    pub certificate: Certificate,
    /// Timing.
    pub timing: Timing,
}

/// A split's rows ready for inference passes: the MI layer's `p` computed once when the network allows
/// it ([`Net::prefix_of`]: the same numbers as a whole pass, computed once, in parallel blocks), the
/// dense-layer inputs otherwise.
enum Rows {
    Prefix(Prefix),
    Inputs(Tensor),
}

impl Rows {
    fn of(net: &Net, set: &Dataset) -> Result<Self> {
        Ok(match net.prefix_of(set)? {
            Some(pre) => Rows::Prefix(pre),
            None => Rows::Inputs(net.features_of(set)?),
        })
    }

    /// One pass: the head's scores (a binary head's `P(y = 1)` per row; a multi-class head's class
    /// probabilities, row-major; a regression head's standardised prediction per row) and, when asked,
    /// what the MI layer emitted (row-major).
    fn pass(
        &self,
        net: &Net,
        inference: Inference,
        rng: &mut ChaCha8Rng,
        with_code: bool,
    ) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let widen = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (logits, code) = match self {
            Rows::Prefix(pre) => {
                let out = net.forward_prefix(pre, inference, rng)?;
                (out.logits, with_code.then(|| widen(&out.code)))
            }
            Rows::Inputs(x) => {
                let out = net.forward_features(x, Mode::Infer(inference), rng)?;
                let code = if with_code { Some(flat(&out.code)?) } else { None };
                (out.logits, code)
            }
        };
        let scores = if net.config().regression {
            flat(&logits)?
        } else if logits.rank() == 1 {
            candle_nn::ops::sigmoid(&logits)?.to_dtype(DType::F64)?.to_vec1()?
        } else {
            flat(&candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?)?
        };
        Ok((scores, code))
    }

    /// The MI layer's `p` (row-major; a `prob` pass, which draws nothing from `rng`).
    fn probs(&self, net: &Net, rng: &mut ChaCha8Rng) -> Result<Vec<f64>> {
        match self {
            Rows::Prefix(pre) => Ok(pre.probs().iter().map(|&x| f64::from(x)).collect()),
            Rows::Inputs(x) => flat(&net.forward_features(x, Mode::Infer(Inference::Prob), rng)?.probs),
        }
    }
}

fn flat(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Task and fairness metrics of one set of head scores: AUC, accuracy, DP, EO and DI, then (more
/// classes) the selection-rate gap of each class.
fn task_and_fairness(scores: &[f64], test: &Dataset) -> Vec<f64> {
    if test.n_classes > 2 {
        return task_and_fairness_multiclass(scores, test);
    }
    let labels: Vec<bool> = test.y.iter().map(|&v| v == 1).collect();
    let pred: Vec<bool> = scores.iter().map(|&p| p >= 0.5).collect();
    let k = test.n_groups;
    [
        metrics::roc_auc(scores, &labels),
        metrics::accuracy(&pred, &labels),
        metrics::dp_gap(&pred, &test.s, k),
        metrics::eo_gap(&pred, &test.y, &test.s, k),
        metrics::di_ratio(&pred, &test.s, k),
    ]
    .to_vec()
}

/// [`task_and_fairness`] of `k >= 3` classes from the class probabilities (row-major): the prediction
/// is the most probable class (the first among equals), and each gap is the binary one of the
/// indicator `pred = c`, the largest (DI: the smallest) over classes.
fn task_and_fairness_multiclass(probs: &[f64], test: &Dataset) -> Vec<f64> {
    let (classes, groups) = (test.n_classes, test.n_groups);
    let pred: Vec<u8> = probs
        .chunks(classes)
        .map(|row| row.iter().enumerate().fold(0, |best, (c, &p)| if p > row[best] { c } else { best }) as u8)
        .collect();
    let columns: Vec<Vec<f64>> =
        (0..classes).map(|c| probs.iter().skip(c).step_by(classes).copied().collect()).collect();
    let labels: Vec<u32> = test.y.iter().map(|&v| v as u32).collect();
    let is = |c: usize| -> Vec<bool> { pred.iter().map(|&p| p as usize == c).collect() };
    let per_class: Vec<f64> = (0..classes).map(|c| metrics::dp_gap(&is(c), &test.s, groups)).collect();
    let eo = (0..classes)
        .flat_map(|c| {
            let chosen = is(c);
            (0..classes as u8).map(move |label| (chosen.clone(), label))
        })
        .map(|(chosen, label)| {
            let rates = metrics::positive_rate_by_group(&chosen, &test.s, groups, |i| test.y[i] == label);
            metrics::max_pairwise_gap(&rates)
        })
        .fold(f64::NAN, f64::max);
    let di = (0..classes).map(|c| metrics::di_ratio(&is(c), &test.s, groups)).fold(f64::NAN, f64::min);
    let mut row = vec![
        metrics::macro_auc(&columns, &labels),
        metrics::accuracy(&pred, &test.y),
        per_class.iter().copied().fold(f64::NAN, f64::max),
        eo,
        di,
    ];
    row.extend(per_class);
    row
}

/// Information and certificate of the MI layer from `p` on a split.
pub fn information(
    p: &[f64],
    m: usize,
    data: &Dataset,
    opts: &EvalOptions,
    rng: &mut ChaCha8Rng,
) -> Result<(Information, Certificate)> {
    let per_neuron = mi::per_neuron_mi_host(p, m, &data.s, data.n_groups, false).0;
    let shares: Vec<f64> = data.group_counts().iter().map(|&c| c as f64 / data.n as f64).collect();
    let (joint, stderr, method, used, exact) = if m <= opts.m_max {
        let (joint, dists, _) = mi::joint_mi_host_distributions(p, m, &data.s, data.n_groups);
        let exact = certificate::exact_worst_case(&dists, &shares);
        (joint, 0.0, "exact", joint, Some(exact))
    } else {
        let est = mi::joint_mi_monte_carlo(p, m, &data.s, data.n_groups, opts.mc_samples, rng)?;
        let used = (est.mean + 2.0 * est.stderr).max(0.0);
        (est.mean, est.stderr, "monte-carlo", used, None)
    };
    let bounds = certificate::bounds(used, &shares);
    Ok((
        Information {
            code_width: m,
            mi_per_neuron_bits: per_neuron,
            mi_joint_bits: joint,
            mi_joint_stderr: stderr,
            mi_joint_method: method.to_string(),
        },
        Certificate {
            mi_bits_used: used,
            dp_gap_bound: bounds.dp_gap_bound,
            probe_auc_bound: bounds.probe_auc_bound,
            tv_exact: exact.map(|e| e.0),
            probe_auc_exact: exact.map(|e| e.1),
            caveat: CAVEAT.to_string(),
            population: None,
        },
    ))
}

/// Information and certificate of a full-precision representation: undefined (`null` in JSON).
fn undefined_information(m: usize) -> (Information, Certificate) {
    (
        Information {
            code_width: m,
            mi_per_neuron_bits: f64::NAN,
            mi_joint_bits: f64::NAN,
            mi_joint_stderr: f64::NAN,
            mi_joint_method: "none".into(),
        },
        Certificate {
            mi_bits_used: f64::NAN,
            dp_gap_bound: f64::NAN,
            probe_auc_bound: f64::NAN,
            tv_exact: None,
            probe_auc_exact: None,
            caveat: "a full-precision representation has no sampled codes: nothing is certified".into(),
            population: None,
        },
    )
}

/// A seeded subsample of at most `cap` of `0..n` (all of them when `n <= cap`), sorted.
fn subsample(n: usize, cap: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    use rand::seq::index::sample;
    if n <= cap {
        return (0..n).collect();
    }
    let mut idx = sample(rng, n, cap).into_vec();
    idx.sort_unstable();
    idx
}

/// Evaluates `net` on `prepared.test`: task and fairness metrics over `draws` draws of sampled codes (one
/// stream); probes for `s` on a seeded subsample of at most `probe_rows` rows of the probe set and of the
/// scored rows, over `probe_draws` draws (another stream, so the task numbers do not depend on the
/// probes' settings); information, the empirical certificate and the population certificate.
pub(crate) fn evaluate(
    net: &Net,
    prepared: &Prepared,
    opts: &EvalOptions,
    info: &RunInfo,
    observer: &dyn Observer,
) -> Result<BinaryMetrics> {
    let test = &prepared.test;
    let m = net.config().code_width();
    let mut rng = rng(opts.seed, Stream::Eval);
    let mut probe_rng = crate::rng::rng(opts.seed, Stream::ProbeRows);
    // A full-precision representation is deterministic: one draw says everything.
    let stochastic = net.config().is_stochastic();
    let draws = if stochastic { opts.draws.max(1) } else { 1 };
    let started = Instant::now();
    // The probes' rows are drawn first, from their own stream.
    let probe_rows = ProbeRows::draw(net, prepared, opts, &mut probe_rng)?;
    let steps = draws + 2;
    let step = |done: usize, what: &str| -> Result<()> {
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), what, "evaluation step");
        observer.event(Event::Evaluation { done, of: steps, what });
        match observer.cancelled() {
            true => Err(crate::Error::Interrupted { during: format!("evaluation ({what})") }),
            false => Ok(()),
        }
    };
    let scale = prepared.encoding.as_ref().and_then(|e| e.target.regression);
    let (task, fairness, regression, p_test) =
        task_and_fairness_over_draws(net, test, scale.as_ref(), opts, draws, &mut rng, &step)?;
    step(draws, "probes")?;
    let probe_draws = if stochastic { opts.probe_draws.clamp(1, draws) } else { 1 };
    let probes = probe_rows.probes(net, m, opts, probe_draws, &mut probe_rng)?;
    step(draws + 1, "information and certificate")?;
    let (information, mut certificate) =
        if stochastic { information(&p_test, m, test, opts, &mut rng)? } else { undefined_information(m) };
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "evaluation: information done");
    if stochastic {
        certificate.population = Some(match prepared.certify.as_ref() {
            Some(rows) => population(net, rows, opts, &mut rng)?,
            // The test rows certify themselves: their `p` is at hand (a `prob` pass draws nothing from
            // `rng`, so reusing it changes no number), and a second pass over them is saved.
            None => population_of(p_test, m, test, None, opts, &mut rng),
        });
    }
    step(steps, "done")?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "evaluation");
    let about = &prepared.description;
    Ok(BinaryMetrics {
        fairbits_version: env!("CARGO_PKG_VERSION").to_string(),
        dataset: about.dataset.clone(),
        sensitive: about.sensitive.clone(),
        groups: about.groups.clone(),
        classes: prepared.encoding.as_ref().map(|e| e.target.classes.clone()).unwrap_or_default(),
        n_train: prepared.train.n,
        n_test: test.n,
        n_dropped: prepared.n_dropped,
        rows_removed_as_training: prepared.n_left_out,
        seed: info.seed,
        gamma: info.gamma,
        penalty: info.penalty_label.clone(),
        inference: opts.inference.name().to_string(),
        draws: if opts.inference == Inference::Sample { draws } else { 1 },
        task,
        fairness,
        regression,
        probes,
        information,
        certificate,
        timing: Timing { train_seconds: info.train_seconds, epochs: info.epochs },
    })
}

/// Task and fairness metrics on `test`, as mean and std over `draws` draws of sampled codes (or once in
/// `prob` / `threshold` mode), and the test rows' `p` (for the information). A regression model (`test`
/// has targets, `scale` maps the head back to their units) gets [`Regression`] metrics instead, the
/// classification ones undefined.
fn task_and_fairness_over_draws(
    net: &Net,
    test: &Dataset,
    scale: Option<&Scale>,
    opts: &EvalOptions,
    draws: usize,
    rng: &mut ChaCha8Rng,
    step: &dyn Fn(usize, &str) -> Result<()>,
) -> Result<(Task, Fairness, Option<Regression>, Vec<f64>)> {
    let rows_test = Rows::of(net, test)?;
    let prob_scores = match opts.inference {
        Inference::Prob => Some(rows_test.pass(net, Inference::Prob, rng, false)?.0),
        _ => None,
    };
    let regression = match (&test.t, scale) {
        (Some(t), Some(scale)) => {
            let truth: Vec<f64> = t.iter().map(|&z| scale.unscale(z as f64)).collect();
            Some((truth, *scale))
        }
        _ => None,
    };
    // One draw's metrics: a classifier's from its scores, a regression model's from its predictions.
    let task_and_fairness = |scores: &[f64], test: &Dataset| match &regression {
        Some((truth, scale)) => {
            let pred: Vec<f64> = scores.iter().map(|&z| scale.unscale(z)).collect();
            regression::scores(&pred, truth, &test.s, test.n_groups)
        }
        None => task_and_fairness(scores, test),
    };
    let mut rows: Vec<Vec<f64>> = Vec::new();
    match opts.inference {
        Inference::Sample => {
            for draw in 0..draws {
                step(draw, "sampled codes")?;
                let (scores, _) = rows_test.pass(net, Inference::Sample, rng, false)?;
                rows.push(task_and_fairness(&scores, test));
            }
        }
        Inference::Prob => rows.push(task_and_fairness(prob_scores.as_deref().unwrap_or_default(), test)),
        Inference::Threshold => {
            let (scores, _) = rows_test.pass(net, Inference::Threshold, rng, false)?;
            rows.push(task_and_fairness(&scores, test));
        }
    }
    // The test rows' `p` after the draws, not before: a `prob` pass draws nothing from `rng`, and on
    // millions of rows these `n x m` numbers would otherwise be held through every draw.
    let p_test = rows_test.probs(net, rng)?;
    if let Some((truth, scale)) = &regression {
        let r = regression::summarise(&rows, truth, scale);
        return Ok((Task::undefined(), Fairness::undefined(), Some(r), p_test));
    }
    let col = |c: usize| mean_std(&rows.iter().map(|r| r[c]).collect::<Vec<_>>());
    let ((auc, auc_std), (accuracy, accuracy_std)) = (col(0), col(1));
    let ((dp_gap, dp_gap_std), (eo_gap, eo_gap_std), (di_ratio, di_ratio_std)) = (col(2), col(3), col(4));
    let majority_accuracy = if test.n_classes > 2 {
        let mut counts = vec![0usize; test.n_classes];
        test.y.iter().for_each(|&y| counts[y as usize] += 1);
        *counts.iter().max().unwrap_or(&0) as f64 / test.n.max(1) as f64
    } else {
        let positives = test.y.iter().filter(|&&y| y == 1).count() as f64 / test.n.max(1) as f64;
        positives.max(1.0 - positives)
    };
    let task = Task { auc, accuracy, auc_std, accuracy_std, majority_accuracy };
    let dp_gap_per_class = (5..rows.first().map_or(5, Vec::len)).map(|c| col(c).0).collect();
    let fairness = Fairness { dp_gap, eo_gap, di_ratio, dp_gap_std, eo_gap_std, di_ratio_std, dp_gap_per_class };
    Ok((task, fairness, None, p_test))
}

/// The rows the probes learn on (a subsample of the probe set) and are scored on (a subsample of the
/// held-out rows they did not learn on: the other half of held-out rows, otherwise the test split), with
/// their inputs to the representation.
struct ProbeRows {
    train: Dataset,
    scored: Dataset,
    rows_train: Rows,
    rows_scored: Rows,
}

impl ProbeRows {
    fn draw(net: &Net, prepared: &Prepared, opts: &EvalOptions, rng: &mut ChaCha8Rng) -> Result<Self> {
        let (train, scored) = (prepared.probe_train(), prepared.probe_test.as_ref().unwrap_or(&prepared.test));
        let train = train.subset(&subsample(train.n, opts.probe_rows, rng));
        let scored = scored.subset(&subsample(scored.n, opts.probe_rows, rng));
        let (rows_train, rows_scored) = (Rows::of(net, &train)?, Rows::of(net, &scored)?);
        Ok(ProbeRows { train, scored, rows_train, rows_scored })
    }

    /// The logistic and forest probes on sampled codes (mean over `draws`) and on `p`.
    fn probes(&self, net: &Net, m: usize, opts: &EvalOptions, draws: usize, rng: &mut ChaCha8Rng) -> Result<Probes> {
        let k = self.scored.n_groups;
        let (lr_train, sc) = (&self.train, &self.scored);
        let (mut lr_rows, mut rf_rows) = (Vec::new(), Vec::new());
        let code = |rows: &Rows, rng: &mut ChaCha8Rng| -> Result<Vec<f64>> {
            Ok(rows.pass(net, Inference::Sample, rng, true)?.1.unwrap_or_default())
        };
        for draw in 0..draws {
            let code_train = code(&self.rows_train, rng)?;
            let code_scored = code(&self.rows_scored, rng)?;
            let tr = Repr { x: &code_train, d: m, s: &lr_train.s };
            let te = Repr { x: &code_scored, d: m, s: &sc.s };
            lr_rows.push(probes::logreg_probe(tr, te, k));
            rf_rows.push(probes::forest_probe(tr, te, k, opts.forest_trees, opts.seed.wrapping_add(draw as u64)));
        }
        let (p_train, p_scored) = (self.rows_train.probs(net, rng)?, self.rows_scored.probs(net, rng)?);
        let ptr = Repr { x: &p_train, d: m, s: &lr_train.s };
        let pte = Repr { x: &p_scored, d: m, s: &sc.s };
        let lr_prob = probes::logreg_probe(ptr, pte, k);
        let rf_prob = probes::forest_probe(ptr, pte, k, opts.forest_trees, opts.seed);
        let summarise = |rows: &[ProbeScore], prob: ProbeScore| {
            let (sample, sample_std) = mean_std(&rows.iter().map(|r| r.auc).collect::<Vec<_>>());
            let (sample_accuracy, _) = mean_std(&rows.iter().map(|r| r.accuracy).collect::<Vec<_>>());
            ProbeResult { sample, prob: prob.auc, sample_std, sample_accuracy, prob_accuracy: prob.accuracy }
        };
        let counts = sc.group_counts();
        Ok(Probes {
            logreg: summarise(&lr_rows, lr_prob),
            forest: summarise(&rf_rows, rf_prob),
            majority_rate: *counts.iter().max().unwrap_or(&0) as f64 / sc.n.max(1) as f64,
            rows_train: lr_train.n,
            rows_test: sc.n,
            draws,
        })
    }
}

/// The population certificate (docs/design.md, section 4b) from held-out `rows` (a split carved before
/// training, the test split, or an auditor's sample): of thresholded codes in `threshold` mode, of one
/// sampled code per row otherwise.
pub fn population(
    net: &Net,
    rows: &Dataset,
    opts: &EvalOptions,
    rng: &mut ChaCha8Rng,
) -> Result<certificate::Population> {
    let p = Rows::of(net, rows)?.probs(net, rng)?;
    Ok(population_of(p, net.config().code_width(), rows, None, opts, rng))
}

/// [`population`] for the target population weighted by the rows' weights `rows.w` (docs/design.md,
/// section 4e); rows without weights give [`population`]'s certificate.
pub fn population_weighted(
    net: &Net,
    rows: &Dataset,
    opts: &EvalOptions,
    rng: &mut ChaCha8Rng,
) -> Result<certificate::Population> {
    let w: Option<Vec<f64>> = rows.w.as_ref().map(|w| w.iter().map(|&v| f64::from(v)).collect());
    if let Some(w) = &w {
        certificate::check_weights(w, rows.n)?;
    }
    let p = Rows::of(net, rows)?.probs(net, rng)?;
    Ok(population_of(p, net.config().code_width(), rows, w.as_deref(), opts, rng))
}

/// [`population`] from the rows' code probabilities `p` (row-major, `m` per row).
fn population_of(
    mut p: Vec<f64>,
    m: usize,
    rows: &Dataset,
    w: Option<&[f64]>,
    opts: &EvalOptions,
    rng: &mut ChaCha8Rng,
) -> certificate::Population {
    let codes = if opts.inference == Inference::Threshold {
        p.iter_mut().for_each(|v| *v = (*v >= 0.5) as u8 as f64);
        "threshold"
    } else {
        "sample"
    };
    let method = certificate::TvMethod { m_max: opts.m_max, samples: opts.mc_samples, mc_share: 0.2 };
    let (s, y) = (&rows.s, &rows.y);
    certificate::population_weighted(&p, m, s, rows.n_groups, y, rows.n_classes, w, opts.confidence, method, codes, rng)
}

/// The `mi` subcommand's report: per-neuron and joint MI side by side (exact and Monte Carlo where the
/// layer can be enumerated), the certificate with the exact worst case, and the measured probes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MiReport {
    /// Dataset name.
    pub dataset: String,
    /// Test rows the numbers are measured on.
    pub n_test: usize,
    /// Rows of a held-out file left out because the model was trained on them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_removed_as_training: usize,
    /// Information (the joint MI exact where possible).
    pub information: Information,
    /// The Monte-Carlo estimate of the joint MI, always computed as a cross-check.
    #[serde(with = "nullable")]
    pub mi_joint_monte_carlo_bits: f64,
    /// Its standard error.
    #[serde(with = "nullable")]
    pub mi_joint_monte_carlo_stderr: f64,
    /// Certificate and exact worst case.
    pub certificate: Certificate,
    /// Measured probes (on sampled codes and on p).
    pub probes: Probes,
    /// True when every measured probe on sampled codes is at or below the certified bound (up to 2 std).
    pub certificate_holds: bool,
}

/// Builds the [`MiReport`] on the test split.
pub fn mi_report(
    net: &Net,
    prepared: &Prepared,
    opts: &EvalOptions,
    info: &RunInfo,
    observer: &dyn Observer,
) -> Result<MiReport> {
    if !net.config().is_stochastic() {
        return Err(crate::Error::param(
            Param::Model,
            "a full-precision network",
            "it has no stochastic layer, so its information about s is not computable",
        ));
    }
    // Tables of any classes are evaluated here; the images' evaluation is another one.
    if net.config().n_outputs != 1 && prepared.encoding.is_none() {
        return Err(crate::Error::param(
            Param::Model,
            "an image model",
            "the mi report covers tables; an image model's information is in its metrics",
        ));
    }
    let metrics = evaluate(net, prepared, opts, info, observer)?;
    let test = &prepared.test;
    let m = net.config().code_width();
    let mut r = rng(opts.seed, Stream::MonteCarloCheck);
    let p_test = Rows::of(net, test)?.probs(net, &mut r)?;
    let mc = mi::joint_mi_monte_carlo(&p_test, m, &test.s, test.n_groups, opts.mc_samples, &mut r)?;
    let bound = metrics.certificate.probe_auc_bound;
    let holds =
        [&metrics.probes.logreg, &metrics.probes.forest].iter().all(|p| p.sample <= bound + 2.0 * p.sample_std + 1e-9);
    Ok(MiReport {
        dataset: metrics.dataset,
        n_test: test.n,
        rows_removed_as_training: metrics.rows_removed_as_training,
        information: metrics.information,
        mi_joint_monte_carlo_bits: mc.mean,
        mi_joint_monte_carlo_stderr: mc.stderr,
        certificate: metrics.certificate,
        probes: metrics.probes,
        certificate_holds: holds,
    })
}

//! Training (docs/design.md, section 1): mini-batch Adam on `CE(head(t), y) + gamma * I_hat(T; S)` (or the
//! convex form `(1 - gamma) CE + gamma I_hat`), one loop for tables and images (binary or softmax
//! cross-entropy, chosen by the head's width), the penalty from a [`Regulariser`]. Optional validation
//! split with early stopping, checkpoints, and the [`fused`] CPU step as a separately tested fast path of
//! the same loop. Every random choice (batch order, binary samples) comes from a seeded stream, so the
//! same seed and thread count give the same model.

pub(crate) mod adam;
pub(crate) mod checkpoint;
// Public for the criterion benchmarks of the kernels (benches/kernels.rs) only: not part of the API.
#[doc(hidden)]
pub mod fused;
pub(crate) mod kernels;

use adam::Adam;
pub use checkpoint::Checkpointing;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{task_loss, Inference, Mode, Net};
use crate::penalty::{PenaltyKind, PenaltySpec, Regulariser};
use crate::progress::{Event, Observer};
use crate::rng::{rng, Stream};
use candle_core::Tensor;
use fused::FusedNet;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Instant;

/// Which implementation runs the training steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The fused CPU step ([`fused`]) when it implements the configuration, else candle.
    #[default]
    Auto,
    /// Always candle (the reference; any device, every penalty).
    Candle,
}
named_choices!(Backend, Backend, { Auto => "auto", Candle => "candle" });

/// How task loss and penalty combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossForm {
    /// `CE + gamma * I`.
    Sum,
    /// `(1 - gamma) * CE + gamma * I` (an older form of the authors' code; needs gamma <= 1).
    Convex,
}
named_choices!(LossForm, LossForm, { Sum => "sum", Convex => "convex" });

/// Training options (saved in `config.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Decoupled weight decay (0: plain Adam).
    pub weight_decay: f64,
    /// Weight of the penalty.
    pub gamma: f64,
    /// The penalty (in its textual form in `config.json`, e.g. `"joint:odds"`).
    #[serde(serialize_with = "as_text", deserialize_with = "from_text")]
    pub penalty: PenaltySpec,
    /// How CE and penalty combine.
    pub loss_form: LossForm,
    /// Early stopping: epochs without validation improvement before stopping (with a validation split).
    pub patience: usize,
    /// Epochs over which gamma ramps linearly from 0 to its value (0: no ramp).
    pub warmup_epochs: usize,
    /// Which implementation trains: the fused CPU step where it applies, or always candle.
    pub backend: Backend,
    /// Seed of initialisation, batch order and samples.
    pub seed: u64,
    /// Which start this is (0: the first; a restart after a collapsed code is 1, 2, ...): it selects the
    /// random streams ([`TrainConfig::stream_seed`]). Not saved: the same configuration restarts the same way.
    #[serde(skip)]
    pub attempt: u32,
}

fn as_text<S: Serializer>(p: &PenaltySpec, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

fn from_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<PenaltySpec, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

impl TrainConfig {
    /// Checks every value's range ([`crate::schema::check`]) and the combinations: what a saved or
    /// hand-written configuration must satisfy before it trains.
    pub fn validate(&self) -> Result<()> {
        use crate::schema::{check, Param};
        check::gamma(&self.gamma)?;
        check::epochs(&self.epochs)?;
        check::batch_size(&self.batch_size)?;
        check::lr(&self.lr)?;
        check::weight_decay(&self.weight_decay)?;
        check::patience(&self.patience)?;
        if self.loss_form == LossForm::Convex && self.gamma > 1.0 {
            return Err(Error::param(Param::Gamma, self.gamma, "must be <= 1 with the convex loss form"));
        }
        if self.warmup_epochs > self.epochs {
            let why = format!(
                "the ramp of gamma must end within the {} training epoch(s), or gamma {} is never reached",
                self.epochs, self.gamma
            );
            return Err(Error::param(Param::WarmupEpochs, self.warmup_epochs, why));
        }
        Ok(())
    }

    /// The penalty's name in reports: `none` when nothing is penalised (gamma 0, or a full-precision
    /// network without an adversary), else the spec (`joint`, `per-neuron:odds`, ...).
    pub fn penalty_label(&self, stochastic: bool) -> String {
        let adversary = self.penalty.kind == PenaltyKind::Adversarial;
        if self.gamma == 0.0 || (!stochastic && !adversary) {
            "none".to_string()
        } else {
            self.penalty.to_string()
        }
    }

    /// The seed of this start's streams (initialisation, batch order, samples): the run's seed on the
    /// first start, a seed derived from it and the attempt on a restart.
    pub fn stream_seed(&self) -> u64 {
        match self.attempt {
            0 => self.seed,
            a => crate::rng::derive(self.seed, a as u64),
        }
    }

    /// Gamma in a 1-based epoch: ramped linearly over the warm-up epochs, then constant.
    pub fn gamma_at(&self, epoch: usize) -> f64 {
        if self.warmup_epochs == 0 {
            self.gamma
        } else {
            self.gamma * (epoch as f64 / self.warmup_epochs as f64).min(1.0)
        }
    }

    fn combine(&self, ce: &Tensor, penalty: &Tensor, gamma: f64) -> Result<Tensor> {
        Ok(match self.loss_form {
            LossForm::Sum => (ce + (penalty * gamma)?)?,
            LossForm::Convex => ((ce * (1.0 - gamma))? + (penalty * gamma)?)?,
        })
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over batches.
    pub loss: f64,
    /// Mean task cross-entropy over batches (nats).
    pub ce: f64,
    /// Mean batch penalty (bits; the adversary's cross-entropy in nats).
    pub penalty_bits: f64,
    /// Validation objective, when there is a validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
}

/// How many times training starts again, on streams of their own, when it ends with a collapsed code (the
/// same on every row; docs/design.md, section 1c). A run that does not collapse never restarts.
pub const COLLAPSE_RESTARTS: u32 = 2;

/// The outcome of training.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainReport {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch whose weights were kept (the last, or the best on validation).
    pub best_epoch: usize,
    /// Wall-clock seconds of training.
    pub train_seconds: f64,
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
    /// Restarts after a collapsed code (section 1c of docs/design.md): 0 when the first start held.
    #[serde(default)]
    pub restarts: u32,
}

/// Trains `net` in place on `data`; with `val`, keeps the weights of the best validation epoch and stops
/// after `patience` epochs without improvement. With `ckpt`, saves the state every `ckpt.every` epochs
/// and, with `ckpt.resume`, continues from the saved state: the result is the same as an uninterrupted
/// run with the same seed. `observer` sees every epoch. `cfg` is a checked configuration (the parameters'
/// check, or a saved model's on load): it is not checked again here.
pub fn fit(
    net: &Net,
    data: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    ckpt: Option<&Checkpointing>,
    observer: &dyn Observer,
) -> Result<TrainReport> {
    let start = Instant::now();
    let mut run = Run::new(net, data, cfg)?;
    // A run killed before its first checkpoint resumes from the start.
    if let Some(c) = ckpt.filter(|c| c.resume && c.has_state()) {
        checkpoint::restore(c, &mut run)?;
    }
    let mut step = Step::new(net, data, cfg)?;
    for epoch in run.first_epoch..=cfg.epochs {
        if run.stopped_early() {
            break;
        }
        let stats = step.epoch(&mut run, epoch, observer)?;
        run.end_epoch(stats, val, observer)?;
        if let Some(c) = ckpt.filter(|c| c.every > 0 && epoch % c.every == 0) {
            checkpoint::save(c, &run, epoch, run.prior_seconds + start.elapsed().as_secs_f64())?;
        }
        crate::files::pause_point("training");
    }
    let best_epoch = run.keep_best()?;
    let (epochs, history) = (run.history.len(), run.history);
    let train_seconds = run.prior_seconds + start.elapsed().as_secs_f64();
    Ok(TrainReport { epochs, best_epoch, train_seconds, history, restarts: cfg.attempt })
}

/// The state of a training run that a checkpoint saves: the network, the optimiser, the batch order and
/// random streams, the history, the best validation snapshot.
pub(crate) struct Run<'a> {
    pub(crate) net: &'a Net,
    pub(crate) data: &'a Dataset,
    pub(crate) cfg: &'a TrainConfig,
    pub(crate) regulariser: Regulariser,
    pub(crate) opt: Adam,
    /// Every variable the optimiser updates (the network's, then the regulariser's).
    pub(crate) vars: Vec<candle_core::Var>,
    pub(crate) order_rng: rand_chacha::ChaCha8Rng,
    pub(crate) noise_rng: rand_chacha::ChaCha8Rng,
    pub(crate) order: Vec<u32>,
    /// With sample weights (not all equal), how an epoch's rows are drawn.
    sampler: Option<WeightedRows>,
    pub(crate) history: Vec<EpochStats>,
    /// The best validation objective, its epoch and the network's weights then.
    pub(crate) best: Option<(f64, usize, Vec<Tensor>)>,
    pub(crate) first_epoch: usize,
    /// Seconds trained before a resume.
    pub(crate) prior_seconds: f64,
}

impl<'a> Run<'a> {
    fn new(net: &'a Net, data: &'a Dataset, cfg: &'a TrainConfig) -> Result<Self> {
        let regulariser = Regulariser::new(&cfg.penalty, cfg.gamma, net, data, cfg.stream_seed())?;
        let mut vars = net.vars();
        vars.extend(regulariser.vars());
        let opt = Adam::new(vars, cfg.lr, cfg.weight_decay)?;
        let vars = opt.vars.clone();
        Ok(Run {
            net,
            data,
            cfg,
            regulariser,
            opt,
            vars,
            order_rng: rng(cfg.stream_seed(), Stream::Batches),
            noise_rng: rng(cfg.stream_seed(), Stream::Noise),
            order: (0..data.n as u32).collect(),
            sampler: data.w.as_deref().and_then(WeightedRows::new),
            history: Vec::with_capacity(cfg.epochs),
            best: None,
            first_epoch: 1,
            prior_seconds: 0.0,
        })
    }

    /// Early stopping: `patience` epochs since the best validation objective.
    fn stopped_early(&self) -> bool {
        matches!((self.history.last(), &self.best), (Some(h), Some((_, e, _))) if h.epoch - e >= self.cfg.patience)
    }

    /// Validation, progress, history and the best snapshot at the end of an epoch.
    fn end_epoch(&mut self, mut stats: EpochStats, val: Option<&Dataset>, observer: &dyn Observer) -> Result<()> {
        let epoch = stats.epoch;
        stats.val_loss = match val {
            Some(v) => Some(validation_loss(self.net, v, self.cfg)?),
            None => None,
        };
        tracing::debug!(epoch, loss = stats.loss, ce = stats.ce, penalty = stats.penalty_bits, val_loss = ?stats.val_loss, "epoch");
        observer.event(Event::Epoch { epoch, of: self.cfg.epochs, loss: stats.loss });
        let val_loss = stats.val_loss;
        self.history.push(stats);
        if let Some(vl) = val_loss {
            if self.best.as_ref().is_none_or(|(bl, _, _)| vl < *bl) {
                let snapshot =
                    self.net.vars().iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
                self.best = Some((vl, epoch, snapshot));
            } else if let (true, Some((_, best_epoch, _))) = (self.stopped_early(), &self.best) {
                tracing::info!(epoch, best_epoch, "early stop");
            }
        }
        Ok(())
    }

    /// Restores the best validation snapshot, if any; returns the epoch whose weights are kept.
    fn keep_best(&mut self) -> Result<usize> {
        match self.best.take() {
            Some((_, epoch, snapshot)) => {
                for (var, t) in self.net.vars().iter().zip(snapshot) {
                    var.set(&t)?;
                }
                Ok(epoch)
            }
            None => Ok(self.history.len()),
        }
    }
}

/// Sample weights as an epoch's rows: `n` rows drawn with replacement, row `i` with probability
/// `w_i / sum w` (docs/design.md section 3d). Every batch estimate (the cross-entropy, a penalty's group
/// histograms) is then an estimate for the weighted rows' distribution, so one mechanism weights every
/// term; integer weights give in expectation what duplicated rows give.
struct WeightedRows {
    /// Running sums of the weights: a uniform draw on `[0, total)` finds its row by bisection.
    cumulative: Vec<f64>,
}

impl WeightedRows {
    /// The sampler of `w`; none when every weight is the same (the rows' own order is then exact).
    fn new(w: &[f32]) -> Option<Self> {
        if w.windows(2).all(|p| p[0] == p[1]) {
            return None;
        }
        let cumulative = w
            .iter()
            .scan(0.0f64, |sum, &wi| {
                *sum += wi as f64;
                Some(*sum)
            })
            .collect();
        Some(WeightedRows { cumulative })
    }

    fn draw(&self, order: &mut [u32], rng: &mut rand_chacha::ChaCha8Rng) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let last = self.cumulative.len().saturating_sub(1);
        for slot in order {
            let u = rng.random::<f64>() * total;
            // The first row whose running sum passes u: rows of weight 0 are never drawn.
            *slot = self.cumulative.partition_point(|&c| c <= u).min(last) as u32;
        }
    }
}

/// How a batch is trained: the fused CPU step where it applies (with one-hot rows as their nonzeros), or
/// candle's.
struct Step {
    fused: Option<FusedNet>,
    /// Whether batches go to the fused step as their nonzeros (decided once, so every batch takes one path).
    sparse: bool,
    /// In memory, every row compressed once; a mapped file (larger than memory) row by row per batch.
    all_rows: Option<fused::SparseRows>,
    xs: fused::SparseRows,
    xb: Vec<f32>,
    yb: Vec<f32>,
}

/// Sums over an epoch's batches.
#[derive(Default)]
struct Sums {
    loss: f64,
    ce: f64,
    penalty: f64,
    batches: usize,
}

impl Step {
    fn new(net: &Net, data: &Dataset, cfg: &TrainConfig) -> Result<Self> {
        let fused = match cfg.backend {
            Backend::Auto if FusedNet::supports(cfg, net) => Some(FusedNet::from_net(net)?),
            _ => None,
        };
        let sparse = fused.is_some() && fused::SparseRows::pays_for(&data.x, data.d);
        let all_rows = (sparse && !data.x.is_mapped()).then(|| fused::SparseRows::from_dense(&data.x, data.d));
        let (xb, yb) = (Vec::with_capacity(cfg.batch_size * data.d), Vec::with_capacity(cfg.batch_size));
        Ok(Step { fused, sparse, all_rows, xs: fused::SparseRows::default(), xb, yb })
    }

    /// One pass over the training split in a fresh order.
    fn epoch(&mut self, run: &mut Run<'_>, epoch: usize, observer: &dyn Observer) -> Result<EpochStats> {
        match &run.sampler {
            Some(sampler) => sampler.draw(&mut run.order, &mut run.order_rng),
            None => run.order.shuffle(&mut run.order_rng),
        }
        let gamma = run.cfg.gamma_at(epoch);
        let mut sums = Sums::default();
        let order = std::mem::take(&mut run.order);
        for (step, chunk) in order.chunks(run.cfg.batch_size).enumerate() {
            if observer.cancelled() {
                return Err(Error::Interrupted { during: format!("training, epoch {epoch}, step {}", step + 1) });
            }
            let rows: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
            let loss = if self.fused.is_some() {
                self.fused_batch(run, &rows, gamma, &mut sums)?
            } else {
                candle_batch(run, &rows, gamma, &mut sums)?
            };
            if !loss.is_finite() {
                return Err(Error::Diverged { epoch, step: step + 1, value: loss });
            }
        }
        run.order = order;
        if let Some(f) = &self.fused {
            f.write_to(run.net)?;
        }
        let b = sums.batches.max(1) as f64;
        let (loss, ce, penalty_bits) = (sums.loss / b, sums.ce / b, sums.penalty / b);
        Ok(EpochStats { epoch, loss, ce, penalty_bits, val_loss: None })
    }

    /// A batch through the fused step; returns its loss.
    fn fused_batch(&mut self, run: &mut Run<'_>, rows: &[usize], gamma: f64, sums: &mut Sums) -> Result<f64> {
        let (data, d) = (run.data, run.data.d);
        self.xb.clear();
        self.xs.clear();
        self.yb.clear();
        for &i in rows {
            let row = &data.x[i * d..(i + 1) * d];
            match (&self.all_rows, self.sparse) {
                (Some(all), _) => self.xs.push_from(all, i),
                (None, true) => self.xs.push_row(row),
                (None, false) => self.xb.extend_from_slice(row),
            }
            self.yb.push(data.y[i] as f32);
        }
        let s: Vec<u32> = rows.iter().map(|&i| data.s[i]).collect();
        // The batch's rows gathered into one stretch: the step reads each twice, and scattered rows of the
        // whole set cost a cache miss each time (measured: 25% of the step).
        let x = if self.sparse { fused::Rows::Sparse(&self.xs) } else { fused::Rows::Dense(&self.xb) };
        let Some(f) = self.fused.as_mut() else { return Ok(0.0) };
        let out = f.step(x, &self.yb, &s, data.n_groups, run.cfg, gamma, &mut run.noise_rng)?;
        if out.loss.is_finite() {
            run.opt.step_host(&mut f.params, &f.grads);
            (sums.loss, sums.ce, sums.penalty) = (sums.loss + out.loss, sums.ce + out.ce, sums.penalty + out.penalty);
            sums.batches += 1;
        }
        Ok(out.loss)
    }
}

/// A batch through candle's reference step (any device, every penalty); returns its loss.
fn candle_batch(run: &mut Run<'_>, rows: &[usize], gamma: f64, sums: &mut Sums) -> Result<f64> {
    let (data, cfg, net) = (run.data, run.cfg, run.net);
    let s: Vec<u32> = rows.iter().map(|&i| data.s[i]).collect();
    let y: Vec<u8> = rows.iter().map(|&i| data.y[i]).collect();
    let t: Option<Vec<f32>> = data.t.as_ref().map(|t| rows.iter().map(|&i| t[i]).collect());
    let out = net.forward(&data.batch(rows, net.device())?, Mode::Train, &mut run.noise_rng)?;
    let ce = task_loss(&out.logits, &y, t.as_deref())?;
    let pen = run.regulariser.batch(&out, rows, &s, &y, data.n_groups, data.n_classes, gamma)?;
    let loss = if run.regulariser.is_adversary() {
        // The reversal layer carries gamma, so the adversary's loss enters with weight 1.
        (&ce + &pen.value)?
    } else if !net.config().is_stochastic() {
        ce.clone()
    } else {
        cfg.combine(&ce, &pen.value, gamma)?
    };
    let value = loss.to_scalar::<f32>()? as f64;
    if !value.is_finite() {
        return Ok(value);
    }
    run.opt.backward_step(&loss)?;
    run.regulariser.commit(pen.swap);
    sums.loss += value;
    sums.ce += ce.to_scalar::<f32>()? as f64;
    sums.penalty += pen.value.to_scalar::<f32>()? as f64;
    sums.batches += 1;
    Ok(value)
}

/// The training objective on the validation split with sampled codes from a fixed stream, so epochs are
/// compared on the same noise (the task loss alone for adversarial and full-precision training; the
/// penalty on the whole split, whatever the training estimate).
fn validation_loss(net: &Net, v: &Dataset, cfg: &TrainConfig) -> Result<f64> {
    let mut r = rng(cfg.stream_seed(), Stream::Validation);
    let out = net.forward_features(&net.features_of(v)?, Mode::Infer(Inference::Sample), &mut r)?;
    let ce = task_loss(&out.logits, &v.y, v.t.as_deref())?;
    if cfg.penalty.kind == PenaltyKind::Adversarial || !net.config().is_stochastic() {
        return Ok(ce.to_scalar::<f32>()? as f64);
    }
    let pen = cfg.penalty.batch_value(&out.probs, &v.s, &v.y, v.n_groups, v.n_classes)?;
    Ok(cfg.combine(&ce, &pen, cfg.gamma)?.to_scalar::<f32>()? as f64)
}

#[cfg(test)]
mod tests {
    use super::WeightedRows;
    use crate::rng::{rng, Stream};

    #[test]
    fn equal_weights_keep_the_unweighted_order() {
        assert!(WeightedRows::new(&[2.5; 7]).is_none());
        assert!(WeightedRows::new(&[1.0, 1.0, 2.0]).is_some());
    }

    #[test]
    fn rows_are_drawn_in_proportion_to_their_weights() {
        let w = [0.0, 1.0, 3.0, 0.0, 4.0];
        let sampler = WeightedRows::new(&w).unwrap();
        let mut order = vec![0u32; 80_000];
        sampler.draw(&mut order, &mut rng(1, Stream::Batches));
        let mut counts = [0usize; 5];
        order.iter().for_each(|&i| counts[i as usize] += 1);
        assert_eq!((counts[0], counts[3]), (0, 0), "a row of weight 0 is never drawn: {counts:?}");
        for (i, wi) in w.iter().enumerate().filter(|(_, wi)| **wi > 0.0) {
            let expected = f64::from(*wi) / 8.0;
            let share = counts[i] as f64 / order.len() as f64;
            // Four binomial standard deviations at 80,000 draws (at most 0.0071).
            assert!((share - expected).abs() < 4.0 * (expected * (1.0 - expected) / 80_000.0).sqrt(), "{i}: {share}");
        }
    }
}

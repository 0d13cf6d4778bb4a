//! Training (docs/design.md, section 1): mini-batch Adam on `CE(head(t), y) + gamma * I_hat(T; S)` (or the
//! convex form `(1 - gamma) CE + gamma I_hat`), one loop for tables and images (binary or softmax
//! cross-entropy, chosen by the head's width), the penalty from a [`Regulariser`]. Optional validation
//! split with early stopping, checkpoints, and the [`fused`] CPU step as a separately tested fast path of
//! the same loop. Every random choice (batch order, binary samples) comes from a seeded stream, so the
//! same seed and thread count give the same model.

pub mod adam;
pub mod checkpoint;
pub mod fused;
pub mod kernels;

pub use adam::Adam;
pub use checkpoint::Checkpointing;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{task_loss, Inference, Mode, Net};
use crate::penalty::{PenaltyKind, PenaltySpec, Regulariser};
use crate::progress::{Event, Observer};
use crate::rng::{rng, Stream};
use candle_core::{Device, Tensor};
use checkpoint::CheckpointState;
use fused::FusedNet;
use rand::seq::SliceRandom;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
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
named_choices!(Backend, "backend", { Auto => "auto", Candle => "candle" });

/// How task loss and penalty combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossForm {
    /// `CE + gamma * I`.
    Sum,
    /// `(1 - gamma) * CE + gamma * I` (an older form of the authors' code; needs gamma <= 1).
    Convex,
}
named_choices!(LossForm, "loss_form", { Sum => "sum", Convex => "convex" });

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
}

fn as_text<S: Serializer>(p: &PenaltySpec, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

fn from_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<PenaltySpec, D::Error> {
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 50,
            batch_size: 256,
            lr: 1e-3,
            weight_decay: 0.0,
            gamma: 0.0,
            penalty: PenaltySpec::default(),
            loss_form: LossForm::Sum,
            patience: 10,
            warmup_epochs: 0,
            backend: Backend::Auto,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(Error::param("gamma", self.gamma, "must be >= 0"));
        }
        if self.loss_form == LossForm::Convex && self.gamma > 1.0 {
            return Err(Error::param("gamma", self.gamma, "must be <= 1 with the convex loss form"));
        }
        if self.epochs == 0 {
            return Err(Error::param(
                "epochs",
                0,
                "must be >= 1: a model trained for no epoch is its random initialisation",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::param("batch_size", 0, "must be > 0"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::param("lr", self.lr, "must be > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::param("weight_decay", self.weight_decay, "must be >= 0"));
        }
        if self.warmup_epochs > self.epochs {
            return Err(Error::param(
                "warmup_epochs",
                self.warmup_epochs,
                format!(
                    "the ramp of gamma must end within the {} epoch(s) of training, or gamma {} is \
                     never reached",
                    self.epochs, self.gamma
                ),
            ));
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
}

fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?)
}

/// Trains `net` in place on `data`; with `val`, keeps the weights of the best validation epoch and stops
/// after `patience` epochs without improvement. With `ckpt`, saves the state every `ckpt.every` epochs
/// and, with `ckpt.resume`, continues from the saved state: the result is the same as an uninterrupted
/// run with the same seed. `observer` sees every epoch.
pub fn fit(
    net: &Net,
    data: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    ckpt: Option<&Checkpointing>,
    observer: &dyn Observer,
) -> Result<TrainReport> {
    cfg.validate()?;
    let start = Instant::now();
    let device = net.device().clone();
    let stochastic = net.config().is_stochastic();
    let mut regulariser = Regulariser::new(&cfg.penalty, cfg.gamma, net, data, cfg.seed)?;
    let mut vars = net.vars();
    vars.extend(regulariser.vars());
    let mut opt = Adam::new(vars, cfg.lr, cfg.weight_decay)?;
    let mut order_rng = rng(cfg.seed, Stream::Batches);
    let mut noise_rng = rng(cfg.seed, Stream::Noise);
    let mut order: Vec<u32> = (0..data.n as u32).collect();
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut first_epoch = 1;
    let mut prior_seconds = 0.0;
    let all_vars = opt.vars.clone();
    if let Some(c) = ckpt.filter(|c| c.resume) {
        let (state, tensors) = c.load()?;
        let get = |name: String| -> Result<Tensor> {
            tensors.get(&name).cloned().ok_or_else(|| c.error(format!("the checkpoint has no tensor '{name}'")))
        };
        let (mut m, mut v, mut snapshot) = (Vec::new(), Vec::new(), Vec::new());
        for (k, var) in all_vars.iter().enumerate() {
            let t = get(format!("var.{k}"))?;
            if t.dims() != var.dims() {
                return Err(c.error("the checkpoint's weights do not fit this model"));
            }
            var.set(&t.to_device(&device)?)?;
            m.push(host_vec(&get(format!("adam_m.{k}"))?)?);
            v.push(host_vec(&get(format!("adam_v.{k}"))?)?);
            if state.best.is_some() && k < net.vars().len() {
                snapshot.push(get(format!("best.{k}"))?.to_device(&device)?);
            }
        }
        opt.set_state(state.adam_t, m, v)?;
        let pos = |s: &str| s.parse::<u128>().map_err(|_| c.error("corrupt RNG position"));
        order_rng.set_word_pos(pos(&state.order_rng_word_pos)?);
        noise_rng.set_word_pos(pos(&state.noise_rng_word_pos)?);
        if state.order.len() != order.len() {
            return Err(c.error("the checkpoint was made on other data"));
        }
        order = state.order;
        history = state.history;
        best = state.best.map(|(l, e)| (l, e, snapshot));
        first_epoch = state.epoch + 1;
        prior_seconds = state.elapsed_seconds;
        tracing::info!(epoch = state.epoch, "resuming from the checkpoint");
        // The bank is rebuilt from the checkpoint's weights rather than restored with stale rows.
        if matches!(regulariser, Regulariser::Bank { .. }) {
            regulariser = Regulariser::new(&cfg.penalty, cfg.gamma, net, data, cfg.seed)?;
        }
    }
    let mut fused = match cfg.backend {
        Backend::Auto if FusedNet::supports(cfg, net) => Some(FusedNet::from_net(net)?),
        _ => None,
    };
    let d = data.d;
    // One-hot tables go to the fused step as their nonzeros (decided once, so every batch takes one path).
    let sparse = fused.is_some() && fused::SparseRows::pays_for(&data.x, d);
    // In memory, every row is compressed once; a mapped file (larger than memory) row by row per batch.
    let all_rows = (sparse && !data.x.is_mapped()).then(|| fused::SparseRows::from_dense(&data.x, d));
    let mut xs = fused::SparseRows::default();
    let mut xb: Vec<f32> = Vec::with_capacity(cfg.batch_size * d);
    let mut yb: Vec<f32> = Vec::with_capacity(cfg.batch_size);
    let stopped_early = |history: &[EpochStats], best: &Option<(f64, usize, Vec<Tensor>)>| matches!((history.last(), best), (Some(h), Some((_, e, _))) if h.epoch - e >= cfg.patience);
    for epoch in first_epoch..=cfg.epochs {
        if stopped_early(&history, &best) {
            break;
        }
        order.shuffle(&mut order_rng);
        let gamma = cfg.gamma_at(epoch);
        let (mut sum_loss, mut sum_ce, mut sum_pen, mut batches) = (0.0, 0.0, 0.0, 0usize);
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let rows: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
            let s: Vec<u32> = rows.iter().map(|&i| data.s[i]).collect();
            let diverged = |value: f64| Error::Diverged { epoch, step: step + 1, value };
            if observer.cancelled() {
                return Err(Error::Interrupted { epoch, step: step + 1 });
            }
            if let Some(f) = fused.as_mut() {
                xb.clear();
                xs.clear();
                yb.clear();
                for &i in &rows {
                    let row = &data.x[i * d..(i + 1) * d];
                    match (&all_rows, sparse) {
                        (Some(all), _) => xs.push_from(all, i),
                        (None, true) => xs.push_row(row),
                        (None, false) => xb.extend_from_slice(row),
                    }
                    yb.push(data.y[i] as f32);
                }
                // The batch's rows gathered into one stretch: the step reads each twice, and scattered
                // rows of the whole set cost a cache miss each time (measured: 25% of the step).
                let x = if sparse { fused::Rows::Sparse(&xs) } else { fused::Rows::Dense(&xb) };
                let out = f.step(x, &yb, &s, data.n_groups, cfg, gamma, &mut noise_rng)?;
                if !out.loss.is_finite() {
                    return Err(diverged(out.loss));
                }
                opt.step_host(&mut f.params, &f.grads);
                sum_loss += out.loss;
                sum_ce += out.ce;
                sum_pen += out.penalty;
                batches += 1;
                continue;
            }
            let y: Vec<u8> = rows.iter().map(|&i| data.y[i]).collect();
            let out = net.forward(&data.batch(&rows, &device)?, Mode::Train, &mut noise_rng)?;
            let ce = task_loss(&out.logits, &y)?;
            let pen = regulariser.batch(&out, &rows, &s, &y, data.n_groups, data.n_classes, gamma)?;
            let loss = if regulariser.is_adversary() {
                // The reversal layer carries gamma, so the adversary's loss enters with weight 1.
                (&ce + &pen.value)?
            } else if !stochastic {
                ce.clone()
            } else {
                cfg.combine(&ce, &pen.value, gamma)?
            };
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                return Err(diverged(loss_value));
            }
            opt.backward_step(&loss)?;
            regulariser.commit(pen.swap);
            sum_loss += loss_value;
            sum_ce += ce.to_scalar::<f32>()? as f64;
            sum_pen += pen.value.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        if let Some(f) = &fused {
            f.write_to(net)?;
        }
        let b = batches.max(1) as f64;
        let val_loss = match val {
            Some(v) => Some(validation_loss(net, v, cfg)?),
            None => None,
        };
        let stats = EpochStats { epoch, loss: sum_loss / b, ce: sum_ce / b, penalty_bits: sum_pen / b, val_loss };
        tracing::debug!(epoch, loss = stats.loss, ce = stats.ce, penalty = stats.penalty_bits, ?val_loss, "epoch");
        observer.event(Event::Epoch { epoch, of: cfg.epochs, loss: stats.loss });
        history.push(stats);
        if let Some(vl) = val_loss {
            if best.as_ref().is_none_or(|(bl, _, _)| vl < *bl) {
                let snapshot =
                    net.vars().iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>()?;
                best = Some((vl, epoch, snapshot));
            } else if stopped_early(&history, &best) {
                tracing::info!(epoch, best_epoch = best.as_ref().unwrap().1, "early stop");
            }
        }
        if let Some(c) = ckpt.filter(|c| c.every > 0 && epoch % c.every == 0) {
            let mut tensors = HashMap::new();
            let (t, m, v) = opt.state();
            for (k, var) in all_vars.iter().enumerate() {
                tensors.insert(format!("var.{k}"), var.as_tensor().to_device(&Device::Cpu)?);
                tensors.insert(format!("adam_m.{k}"), Tensor::from_slice(&m[k], m[k].len(), &Device::Cpu)?);
                tensors.insert(format!("adam_v.{k}"), Tensor::from_slice(&v[k], v[k].len(), &Device::Cpu)?);
            }
            if let Some((_, _, snap)) = &best {
                for (k, t) in snap.iter().enumerate() {
                    tensors.insert(format!("best.{k}"), t.to_device(&Device::Cpu)?);
                }
            }
            let state = CheckpointState {
                epoch,
                order: order.clone(),
                order_rng_word_pos: order_rng.get_word_pos().to_string(),
                noise_rng_word_pos: noise_rng.get_word_pos().to_string(),
                adam_t: t,
                history: history.clone(),
                best: best.as_ref().map(|(l, e, _)| (*l, *e)),
                elapsed_seconds: prior_seconds + start.elapsed().as_secs_f64(),
                tensors: format!("checkpoint-{epoch}.safetensors"),
            };
            c.save(&state, tensors)?;
        }
    }
    let epochs = history.len();
    let best_epoch = match best {
        Some((_, e, snapshot)) => {
            for (var, t) in net.vars().iter().zip(snapshot) {
                var.set(&t)?;
            }
            e
        }
        None => epochs,
    };
    Ok(TrainReport { epochs, best_epoch, train_seconds: prior_seconds + start.elapsed().as_secs_f64(), history })
}

/// The training objective on the validation split with sampled codes from a fixed stream, so epochs are
/// compared on the same noise (the task loss alone for adversarial and full-precision training; the
/// penalty on the whole split, whatever the training estimate).
fn validation_loss(net: &Net, v: &Dataset, cfg: &TrainConfig) -> Result<f64> {
    let mut r = rng(cfg.seed, Stream::Validation);
    let out = net.forward_features(&net.features_of(v)?, Mode::Infer(Inference::Sample), &mut r)?;
    let ce = task_loss(&out.logits, &v.y)?;
    if cfg.penalty.kind == PenaltyKind::Adversarial || !net.config().is_stochastic() {
        return Ok(ce.to_scalar::<f32>()? as f64);
    }
    let pen = cfg.penalty.batch_value(&out.probs, &v.s, &v.y, v.n_groups, v.n_classes)?;
    Ok(cfg.combine(&ce, &pen, cfg.gamma)?.to_scalar::<f32>()? as f64)
}

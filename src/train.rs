//! Training (DESIGN section 1): mini-batch Adam on `CE(head(t), y) + gamma * I_hat(T; S)` (or the convex
//! form `(1 - gamma) CE + gamma I_hat`), with the per-neuron MI of section 2 computed on each batch.
//! Optional validation split with early stopping. Every random choice (initialisation, batch order,
//! binary samples) comes from a seeded stream, so the same seed and thread count give the same model.

pub use crate::bank::Estimate;
use crate::bank::{CellBank, Form};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fused::FusedNet;
use crate::mi;
use crate::model::{bce_with_logits, Inference, Mode, SqNet};
use candle_core::{DType, Device, Tensor, Var};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// RNG streams derived from the run's seed (the split uses stream 1).
pub mod streams {
    /// Weight initialisation.
    pub const INIT: u64 = 2;
    /// Batch order.
    pub const BATCHES: u64 = 3;
    /// Binary samples during training.
    pub const NOISE: u64 = 4;
    /// Binary samples of the validation loss.
    pub const VALIDATION: u64 = 5;
    /// Binary samples and probes at evaluation.
    pub const EVAL: u64 = 6;
    /// Initialisation of an adversary.
    pub const ADVERSARY: u64 = 7;
}

/// A seeded generator on one of the [`streams`].
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Widest layer the exact joint penalty enumerates (`2^16` codes per batch).
pub const JOINT_PENALTY_M_MAX: usize = 16;

/// Which information penalty is added to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Penalty {
    /// The paper's `sum_j I(T_j; S)` (DESIGN section 2).
    PerNeuron,
    /// The exact joint `I(T; S)` of the whole layer by enumeration (DESIGN section 3; m <= 16).
    Joint,
    /// The pairwise-distance (KL) estimate of the joint `I(T; S)`, any width (Kolchinsky and Tracey 2017).
    Pairwise,
    /// Adversarial debiasing (Ganin et al. 2016; Xie et al. 2017): an adversary (one tanh layer of 32) predicts
    /// `s` from the representation through a gradient-reversal layer of weight gamma; the penalty is its
    /// cross-entropy (nats).
    Adversarial,
}

impl Penalty {
    /// The name used on the command line and in the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Penalty::PerNeuron => "per-neuron",
            Penalty::Joint => "joint",
            Penalty::Pairwise => "pairwise",
            Penalty::Adversarial => "adversarial",
        }
    }

    /// The penalty in bits on a batch (`f32` scalar, differentiable through `p`): `p` the MI layer's
    /// probabilities, `s` each row's group, `y` its label (`< n_labels`). With `conditional`, `I(T; S | Y)` instead of
    /// `I(T; S)`. The unconditional per-neuron penalty on CPU is the fused operation; the rest is the
    /// tensor form in `f64`.
    pub fn value(
        self,
        p: &Tensor,
        s: &[u32],
        y: &[u8],
        n_groups: usize,
        n_labels: usize,
        conditional: bool,
    ) -> Result<Tensor> {
        if !conditional && p.device().is_cpu() {
            match self {
                Penalty::PerNeuron => return mi::per_neuron_mi_fused(p, s, n_groups),
                Penalty::Joint => return mi::joint_mi_fused(p, s, n_groups),
                Penalty::Pairwise | Penalty::Adversarial => {}
            }
        }
        let groups = mi::group_onehot(s, n_groups, p.device())?;
        let p = p.to_dtype(DType::F64)?;
        let f = match self {
            Penalty::PerNeuron => mi::per_neuron_mi,
            Penalty::Joint => mi::joint_mi_exact,
            Penalty::Pairwise => mi::pairwise_kl_mi,
            Penalty::Adversarial => return Err(Error::option(
                "--penalty",
                "adversarial",
                "the adversarial penalty needs its adversary: it is computed in the training loop",
            )),
        };
        let value = if conditional {
            let labels: Vec<u32> = y.iter().map(|&v| v as u32).collect();
            mi::conditional(f, &p, &groups, &labels, n_labels)?
        } else {
            f(&p, &groups)?
        };
        Ok(value.to_dtype(DType::F32)?)
    }
}

/// Which implementation runs the training steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The fused CPU step ([`crate::fused`]) when it implements the configuration, else candle.
    #[default]
    Auto,
    /// Always candle (the reference; any device, every penalty).
    Candle,
}

/// How task loss and penalty combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossForm {
    /// `CE + gamma * I`.
    Sum,
    /// `(1 - gamma) * CE + gamma * I` (an older form of the authors' code; needs gamma <= 1).
    Convex,
}

/// Training options.
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
    /// Which penalty.
    pub penalty: Penalty,
    /// Penalise `I(T; S | Y)` (equalised odds) instead of `I(T; S)` (demographic parity).
    #[serde(default)]
    pub conditional: bool,
    /// How CE and penalty combine.
    pub loss_form: LossForm,
    /// Early stopping: epochs without validation improvement before stopping (with a validation split).
    pub patience: usize,
    /// Epochs over which gamma ramps linearly from 0 to its value (0: no ramp).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Which implementation trains: the fused CPU step where it applies, or always candle.
    #[serde(default)]
    pub backend: Backend,
    /// How the penalty is estimated: on each batch, or over the whole training set (a bank of every row's
    /// latest `p`, module `bank`; per-neuron and joint penalties, candle path).
    #[serde(default = "batch_estimate")]
    pub estimate: Estimate,
    /// Seed of initialisation, batch order and samples.
    pub seed: u64,
}

fn batch_estimate() -> Estimate {
    Estimate::Batch
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 50,
            batch_size: 256,
            lr: 1e-3,
            weight_decay: 0.0,
            gamma: 0.0,
            penalty: Penalty::PerNeuron,
            conditional: false,
            loss_form: LossForm::Sum,
            patience: 10,
            warmup_epochs: 0,
            backend: Backend::Auto,
            estimate: Estimate::Batch,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(Error::option("--gamma", self.gamma, "must be >= 0"));
        }
        if self.loss_form == LossForm::Convex && self.gamma > 1.0 {
            return Err(Error::option(
                "--gamma",
                self.gamma,
                "must be <= 1 with --loss-form convex",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::option("--batch-size", 0, "must be > 0"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::option("--lr", self.lr, "must be > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::option(
                "--weight-decay",
                self.weight_decay,
                "must be >= 0",
            ));
        }
        Ok(())
    }

    /// The penalty's name in reports: `joint`, `joint-conditional` for `I(T; S | Y)`, `none` for a
    /// full-precision network without an adversary.
    pub fn penalty_label(&self, stochastic: bool) -> String {
        if !stochastic && self.penalty != Penalty::Adversarial {
            "none".to_string()
        } else if self.conditional {
            format!("{}-conditional", self.penalty.name())
        } else {
            self.penalty.name().to_string()
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

const B1: f32 = 0.9;
const B2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// Adam (Kingma and Ba) with optional decoupled weight decay; betas (0.9, 0.999), eps 1e-8. The update
/// runs on host vectors: at these sizes one fused loop beats a dozen tensor operations per variable.
pub struct Adam {
    vars: Vec<Var>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
    lr: f64,
    weight_decay: f64,
}

impl Adam {
    /// Zero moments for each variable.
    pub fn new(vars: Vec<Var>, lr: f64, weight_decay: f64) -> Result<Self> {
        let m: Vec<Vec<f32>> = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        Ok(Adam {
            v: m.clone(),
            m,
            vars,
            t: 0,
            lr,
            weight_decay,
        })
    }

    /// The step count and moments, for checkpoints.
    pub fn state(&self) -> (i32, &[Vec<f32>], &[Vec<f32>]) {
        (self.t, &self.m, &self.v)
    }

    /// Restores the step count and moments of a checkpoint.
    pub fn set_state(&mut self, t: i32, m: Vec<Vec<f32>>, v: Vec<Vec<f32>>) -> Result<()> {
        let ok = m.len() == self.m.len()
            && v.len() == self.v.len()
            && m.iter().zip(&self.m).all(|(a, b)| a.len() == b.len())
            && v.iter().zip(&self.v).all(|(a, b)| a.len() == b.len());
        if !ok {
            return Err(Error::option(
                "--resume",
                "checkpoint",
                "its optimiser state does not fit this model",
            ));
        }
        (self.t, self.m, self.v) = (t, m, v);
        Ok(())
    }

    /// One update from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let c1 = 1.0 / (1.0 - (B1 as f64).powi(self.t)) as f32;
        let c2 = 1.0 / (1.0 - (B2 as f64).powi(self.t)) as f32;
        for (k, var) in self.vars.clone().iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            let mut theta: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            self.update(k, &mut theta, &g, c1, c2);
            var.set(&Tensor::from_vec(theta, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// One update of host parameters from host gradients (the fused path), in the variables' order.
    pub fn step_host(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
        self.t += 1;
        let c1 = 1.0 / (1.0 - (B1 as f64).powi(self.t)) as f32;
        let c2 = 1.0 / (1.0 - (B2 as f64).powi(self.t)) as f32;
        for (k, (theta, g)) in params.iter_mut().zip(grads).enumerate() {
            self.update(k, theta, g, c1, c2);
        }
    }

    fn update(&mut self, k: usize, theta: &mut [f32], g: &[f32], c1: f32, c2: f32) {
        let lr = self.lr as f32;
        let decay = 1.0 - (self.lr * self.weight_decay) as f32;
        let (m, v) = (&mut self.m[k], &mut self.v[k]);
        for i in 0..theta.len() {
            m[i] = B1 * m[i] + (1.0 - B1) * g[i];
            v[i] = B2 * v[i] + (1.0 - B2) * g[i] * g[i];
            let step = (m[i] * c1) / ((v[i] * c2).sqrt() + EPS);
            theta[i] = theta[i] * decay - lr * step;
        }
    }
}

/// The adversary of adversarial debiasing: `repr -> tanh(32) -> one logit per group`, Glorot-uniform.
struct Adversary {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
}

impl Adversary {
    const HIDDEN: usize = 32;

    fn new(m: usize, n_groups: usize, device: &Device, seed: u64) -> Result<Self> {
        use rand::Rng;
        let mut r = rng(seed, streams::ADVERSARY);
        let mut glorot = |fan_in: usize, fan_out: usize| -> Result<Var> {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            let v: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| r.random_range(-limit..limit))
                .collect();
            Ok(Var::from_tensor(&Tensor::from_vec(
                v,
                (fan_in, fan_out),
                device,
            )?)?)
        };
        Ok(Adversary {
            w1: glorot(m, Self::HIDDEN)?,
            b1: Var::zeros(Self::HIDDEN, DType::F32, device)?,
            w2: glorot(Self::HIDDEN, n_groups)?,
            b2: Var::zeros(n_groups, DType::F32, device)?,
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![
            self.w1.clone(),
            self.b1.clone(),
            self.w2.clone(),
            self.b2.clone(),
        ]
    }

    /// Cross-entropy of the adversary reading `repr` through a gradient-reversal layer of weight `lambda`:
    /// the forward value is `repr`, the gradient reaching the encoder is `-lambda` times the adversary's.
    fn loss(&self, repr: &Tensor, s: &[u32], lambda: f64) -> Result<Tensor> {
        let reversed = ((repr.detach() * (1.0 + lambda))? - (repr * lambda)?)?;
        let h = reversed
            .matmul(self.w1.as_tensor())?
            .broadcast_add(self.b1.as_tensor())?
            .tanh()?;
        let logits = h
            .matmul(self.w2.as_tensor())?
            .broadcast_add(self.b2.as_tensor())?;
        let targets = Tensor::from_slice(s, s.len(), repr.device())?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over batches.
    pub loss: f64,
    /// Mean cross-entropy over batches.
    pub ce: f64,
    /// Mean batch penalty (bits).
    pub penalty_bits: f64,
    /// Validation objective, when there is a validation split.
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

/// The split's tensors on the device, built once, and its labels and groups on the host.
struct DeviceData {
    x: Tensor,
    y: Tensor,
    labels: Vec<u8>,
    s: Vec<u32>,
    n_groups: usize,
}

impl DeviceData {
    fn new(d: &Dataset, device: &Device) -> Result<Self> {
        Ok(DeviceData {
            x: Tensor::from_slice(&d.x, (d.n, d.d), device)?,
            y: Tensor::from_vec(
                d.y.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                d.n,
                device,
            )?,
            labels: d.y.clone(),
            s: d.s.clone(),
            n_groups: d.n_groups,
        })
    }
}

/// Where and how often the training state is saved, and whether to continue from it.
#[derive(Clone, Debug)]
pub struct Checkpointing {
    /// Directory of `checkpoint.json` and its tensors.
    pub dir: PathBuf,
    /// Save after every `every` epochs (0: never).
    pub every: usize,
    /// Continue from the checkpoint in `dir`.
    pub resume: bool,
}

/// The training state at the end of an epoch: with the tensors in `tensors`, everything needed to
/// continue exactly as if never interrupted (weights, Adam moments, batch order, RNG positions, history).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    order: Vec<u32>,
    order_rng_word_pos: String,
    noise_rng_word_pos: String,
    adam_t: i32,
    history: Vec<EpochStats>,
    best: Option<(f64, usize)>,
    elapsed_seconds: f64,
    tensors: String,
}

impl Checkpointing {
    fn json(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    /// Saves the state: tensors under a per-epoch name first, then `checkpoint.json` (renamed into place,
    /// so a crash at any moment leaves the previous checkpoint valid), then the older tensors are removed.
    fn save(&self, state: &CheckpointState, tensors: HashMap<String, Tensor>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.dir.join(&state.tensors);
        let tmp = crate::store::tmp_path(&path);
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        crate::store::write_json(&self.json(), state)?;
        for entry in std::fs::read_dir(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })? {
            let p = entry
                .map_err(|source| Error::Io {
                    path: self.dir.clone(),
                    source,
                })?
                .path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if name.starts_with("checkpoint-")
                && name.ends_with(".safetensors")
                && name != state.tensors
            {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<(CheckpointState, HashMap<String, Tensor>)> {
        let bad = |reason: String| Error::ModelDir {
            dir: self.dir.clone(),
            reason,
        };
        let text = std::fs::read_to_string(self.json())
            .map_err(|e| bad(format!("no checkpoint to resume from: {e}")))?;
        let state: CheckpointState = serde_json::from_str(&text)
            .map_err(|e| bad(format!("checkpoint.json is unreadable: {e}")))?;
        let tensors = candle_core::safetensors::load(self.dir.join(&state.tensors), &Device::Cpu)
            .map_err(|e| bad(format!("{} cannot be read: {e}", state.tensors)))?;
        Ok((state, tensors))
    }
}

fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?)
}

/// Trains `net` in place on `data`; with `val`, keeps the weights of the best validation epoch and stops
/// after `patience` epochs without improvement.
pub fn train(
    net: &SqNet,
    data: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    progress: &ProgressBar,
) -> Result<TrainReport> {
    train_checkpointed(net, data, val, cfg, progress, None)
}

/// [`train`], saving the state every `ckpt.every` epochs and, with `ckpt.resume`, continuing from the saved
/// state: the result is the same as an uninterrupted run with the same seed.
pub fn train_checkpointed(
    net: &SqNet,
    data: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    progress: &ProgressBar,
    ckpt: Option<&Checkpointing>,
) -> Result<TrainReport> {
    cfg.validate()?;
    let m = net.config().code_width();
    if cfg.penalty == Penalty::Joint && m > JOINT_PENALTY_M_MAX {
        return Err(Error::option(
            "--penalty",
            "joint",
            format!(
                "the exact joint penalty enumerates 2^m codes and allows m <= {JOINT_PENALTY_M_MAX}; \
                 the stochastic layer has m = {m}: use --penalty pairwise or a narrower layer"
            ),
        ));
    }
    if !net.config().is_stochastic() && cfg.gamma > 0.0 && cfg.penalty != Penalty::Adversarial {
        return Err(Error::option(
            "--penalty",
            cfg.penalty.name(),
            "an information penalty needs a stochastic layer; this network has none",
        ));
    }
    let start = Instant::now();
    let device = net.device().clone();
    let all = DeviceData::new(data, &device)?;
    let val_data = val.map(|v| DeviceData::new(v, &device)).transpose()?;
    let adversary = match cfg.penalty {
        Penalty::Adversarial => Some(Adversary::new(m, data.n_groups, &device, cfg.seed)?),
        _ => None,
    };
    let mut vars = net.vars();
    if let Some(a) = &adversary {
        vars.extend(a.vars());
    }
    let mut opt = Adam::new(vars, cfg.lr, cfg.weight_decay)?;
    let mut order_rng = rng(cfg.seed, streams::BATCHES);
    let mut noise_rng = rng(cfg.seed, streams::NOISE);
    let mut order: Vec<u32> = (0..data.n as u32).collect();
    let mut history = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut first_epoch = 1;
    let mut prior_seconds = 0.0;
    let all_vars = opt.vars.clone();
    if let Some(c) = ckpt.filter(|c| c.resume) {
        let (state, tensors) = c.load()?;
        let get = |name: String| -> Result<Tensor> {
            tensors.get(&name).cloned().ok_or_else(|| Error::ModelDir {
                dir: c.dir.clone(),
                reason: format!("the checkpoint has no tensor '{name}'"),
            })
        };
        let (mut m, mut v, mut snapshot) = (Vec::new(), Vec::new(), Vec::new());
        for (k, var) in all_vars.iter().enumerate() {
            let t = get(format!("var.{k}"))?;
            if t.dims() != var.dims() {
                return Err(Error::ModelDir {
                    dir: c.dir.clone(),
                    reason: "the checkpoint's weights do not fit this model".into(),
                });
            }
            var.set(&t.to_device(&device)?)?;
            m.push(host_vec(&get(format!("adam_m.{k}"))?)?);
            v.push(host_vec(&get(format!("adam_v.{k}"))?)?);
            if state.best.is_some() && k < net.vars().len() {
                snapshot.push(get(format!("best.{k}"))?.to_device(&device)?);
            }
        }
        opt.set_state(state.adam_t, m, v)?;
        let pos = |s: &str| {
            s.parse::<u128>().map_err(|_| Error::ModelDir {
                dir: c.dir.clone(),
                reason: "corrupt RNG position".into(),
            })
        };
        order_rng.set_word_pos(pos(&state.order_rng_word_pos)?);
        noise_rng.set_word_pos(pos(&state.noise_rng_word_pos)?);
        if state.order.len() != order.len() {
            return Err(Error::ModelDir {
                dir: c.dir.clone(),
                reason: "the checkpoint was made on other data".into(),
            });
        }
        order = state.order;
        history = state.history;
        best = state.best.map(|(l, e)| (l, e, snapshot));
        first_epoch = state.epoch + 1;
        prior_seconds = state.elapsed_seconds;
        tracing::info!(epoch = state.epoch, "resuming from the checkpoint");
    }
    let mut fused = match cfg.backend {
        Backend::Auto if adversary.is_none() && FusedNet::supports(cfg, &device) => {
            Some(FusedNet::from_net(net)?)
        }
        _ => None,
    };
    // The whole-training-set estimate (module `bank`), built from the network as it is now (so a resumed
    // run rebuilds it from the checkpoint's weights rather than restoring the stale rows).
    let mut bank = if cfg.estimate == Estimate::Bank
        && cfg.gamma > 0.0
        && net.config().is_stochastic()
        && adversary.is_none()
    {
        let form = Form::of(cfg.penalty)?;
        let p = net
            .forward(
                &all.x,
                Mode::Infer(Inference::Prob),
                &mut rng(cfg.seed, streams::EVAL),
            )?
            .probs
            .flatten_all()?
            .to_vec1::<f32>()?;
        let labels: Vec<u32> = all.labels.iter().map(|&v| v as u32).collect();
        Some(CellBank::new(form, p, m, &labels, &all.s, 2, all.n_groups)?)
    } else {
        None
    };
    let d = data.d;
    let mut xb: Vec<f32> = Vec::with_capacity(cfg.batch_size * d);
    let mut yb: Vec<f32> = Vec::with_capacity(cfg.batch_size);
    progress.set_length(cfg.epochs as u64);
    progress.set_position(first_epoch as u64 - 1);
    let stopped_early = |history: &[EpochStats], best: &Option<(f64, usize, Vec<Tensor>)>| matches!((history.last(), best), (Some(h), Some((_, e, _))) if h.epoch - e >= cfg.patience);
    for epoch in first_epoch..=cfg.epochs {
        if stopped_early(&history, &best) {
            break;
        }
        order.shuffle(&mut order_rng);
        let (mut sum_loss, mut sum_ce, mut sum_pen, mut batches) = (0.0, 0.0, 0.0, 0usize);
        for (step, chunk) in order.chunks(cfg.batch_size).enumerate() {
            if let Some(f) = fused.as_mut() {
                xb.clear();
                yb.clear();
                for &i in chunk {
                    let i = i as usize;
                    xb.extend_from_slice(&data.x[i * d..(i + 1) * d]);
                    yb.push(data.y[i] as f32);
                }
                let s: Vec<u32> = chunk.iter().map(|&i| all.s[i as usize]).collect();
                let out = f.step(
                    &xb,
                    &yb,
                    &s,
                    all.n_groups,
                    cfg,
                    cfg.gamma_at(epoch),
                    &mut noise_rng,
                )?;
                if !out.loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step: step + 1,
                        value: out.loss,
                    });
                }
                opt.step_host(&mut f.params, &f.grads);
                sum_loss += out.loss;
                sum_ce += out.ce;
                sum_pen += out.penalty;
                batches += 1;
                continue;
            }
            let idx = Tensor::from_slice(chunk, chunk.len(), &device)?;
            let x = all.x.index_select(&idx, 0)?;
            let y = all.y.index_select(&idx, 0)?;
            let s: Vec<u32> = chunk.iter().map(|&i| all.s[i as usize]).collect();
            let labels: Vec<u8> = chunk.iter().map(|&i| all.labels[i as usize]).collect();
            let out = net.forward(&x, Mode::Train, &mut noise_rng)?;
            let ce = bce_with_logits(&out.logits, &y)?;
            let mut swap = None;
            let gamma = cfg.gamma_at(epoch);
            let (pen, loss) = match &adversary {
                // The reversal layer carries gamma, so the adversary's loss enters with weight 1.
                Some(a) => {
                    let pen = a.loss(&out.repr, &s, gamma)?;
                    let loss = (&ce + &pen)?;
                    (pen, loss)
                }
                None if !net.config().is_stochastic() => {
                    (Tensor::zeros((), DType::F32, &device)?, ce.clone())
                }
                None => {
                    // Without a penalty its value is still reported, computed outside the graph.
                    let p = if cfg.gamma > 0.0 {
                        out.probs.clone()
                    } else {
                        out.probs.detach()
                    };
                    let pen = match &bank {
                        Some(b) => {
                            let rows: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
                            let (pen, s) = b.penalty(&p, &rows, cfg.conditional)?;
                            swap = Some(s);
                            pen
                        }
                        None => {
                            cfg.penalty
                                .value(&p, &s, &labels, all.n_groups, 2, cfg.conditional)?
                        }
                    };
                    let loss = cfg.combine(&ce, &pen, gamma)?;
                    (pen, loss)
                }
            };
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: step + 1,
                    value: loss_value,
                });
            }
            opt.backward_step(&loss)?;
            if let (Some(b), Some(s)) = (bank.as_mut(), swap) {
                b.commit(s);
            }
            sum_loss += loss_value;
            sum_ce += ce.to_scalar::<f32>()? as f64;
            sum_pen += pen.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        if let Some(f) = &fused {
            f.write_to(net)?;
        }
        let b = batches.max(1) as f64;
        let val_loss = match &val_data {
            Some(v) => Some(validation_loss(net, v, cfg)?),
            None => None,
        };
        history.push(EpochStats {
            epoch,
            loss: sum_loss / b,
            ce: sum_ce / b,
            penalty_bits: sum_pen / b,
            val_loss,
        });
        tracing::debug!(
            epoch,
            loss = sum_loss / b,
            ce = sum_ce / b,
            penalty = sum_pen / b,
            ?val_loss,
            "epoch"
        );
        progress.set_message(format!("loss {:.4}", sum_loss / b));
        progress.inc(1);
        if let Some(vl) = val_loss {
            if best.as_ref().is_none_or(|(bl, _, _)| vl < *bl) {
                let snapshot = net
                    .vars()
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<candle_core::Result<Vec<_>>>()?;
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
                tensors.insert(
                    format!("adam_m.{k}"),
                    Tensor::from_slice(&m[k], m[k].len(), &Device::Cpu)?,
                );
                tensors.insert(
                    format!("adam_v.{k}"),
                    Tensor::from_slice(&v[k], v[k].len(), &Device::Cpu)?,
                );
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
    Ok(TrainReport {
        epochs,
        best_epoch,
        train_seconds: prior_seconds + start.elapsed().as_secs_f64(),
        history,
    })
}

/// The training objective on the validation split with sampled codes from a fixed stream, so epochs are
/// compared on the same noise (the task loss alone for adversarial and full-precision training).
fn validation_loss(net: &SqNet, v: &DeviceData, cfg: &TrainConfig) -> Result<f64> {
    let mut r = rng(cfg.seed, streams::VALIDATION);
    let out = net.forward(&v.x, Mode::Infer(Inference::Sample), &mut r)?;
    let ce = bce_with_logits(&out.logits, &v.y)?;
    if cfg.penalty == Penalty::Adversarial || !net.config().is_stochastic() {
        return Ok(ce.to_scalar::<f32>()? as f64);
    }
    let pen = cfg
        .penalty
        .value(&out.probs, &v.s, &v.labels, v.n_groups, 2, cfg.conditional)?;
    Ok(cfg.combine(&ce, &pen, cfg.gamma)?.to_scalar::<f32>()? as f64)
}

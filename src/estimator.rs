//! The library API, in the shape of linfa and scikit-learn: [`FairParams`] (unchecked parameters with
//! builder setters that state their defaults) -> [`FairParams::check`] -> [`ValidParams`] ->
//! [`ValidParams::fit`] on a [`Prepared`] dataset (a table or images) -> [`FairModel`], which encodes,
//! predicts, evaluates and saves itself. Defaults that depend on the kind of data (a table or images) are
//! resolved here, once.

use crate::data::{DataSpec, Dataset, Prepared};
use crate::error::{Error, Result};
use crate::eval::{self, EvalOptions, Metrics, RunInfo};
use crate::model::{
    default_device, Activation, ConvLayers, Estimator, Inference, Mode, ModelConfig, Net, PreActivation,
};
use crate::penalty::{PenaltyKind, PenaltySpec, Target};
use crate::progress::Observer;
use crate::rng::{rng, Stream};
use crate::store::{self, ModelKind, SavedConfig};
use crate::train::{self, Backend, Checkpointing, LossForm, TrainConfig, TrainReport};
use candle_core::{DType, Tensor};
use std::path::Path;

/// A named set of parameter values; values set explicitly override it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Strong invariance on tables: a 12-neuron stochastic layer trained with the exact joint MI penalty,
    /// gamma 5 reached by a linear ramp over 20 epochs, 80 epochs (`hidden [64, 12]`, `penalty joint`,
    /// `gamma 5`, `warmup_epochs 20`, `epochs 80`).
    Invariant,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "invariant" => Ok(Preset::Invariant),
            _ => Err(Error::param("preset", s, "must be: invariant")),
        }
    }
}

/// Unchecked parameters of a fairbits model. Every setter documents its default; `None` fields take the
/// default of the data's kind when fitting.
#[derive(Clone, Debug, PartialEq)]
pub struct FairParams {
    preset: Option<Preset>,
    hidden: Option<Vec<usize>>,
    stochastic: Option<Vec<usize>>,
    full_precision: bool,
    pre_activation: PreActivation,
    temperature: f64,
    estimator: Estimator,
    activation: Activation,
    channels: Vec<usize>,
    kernel: usize,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    lr: f64,
    weight_decay: f64,
    gamma: Option<f64>,
    penalty: Option<PenaltySpec>,
    loss_form: LossForm,
    patience: usize,
    warmup_epochs: Option<usize>,
    backend: Backend,
    seed: u64,
    eval: EvalOptions,
}

impl Default for FairParams {
    fn default() -> Self {
        FairParams {
            preset: None,
            hidden: None,
            stochastic: None,
            full_precision: false,
            pre_activation: PreActivation::Tanh,
            temperature: 6.0,
            estimator: Estimator::Identity,
            activation: Activation::Tanh,
            channels: vec![8, 16],
            kernel: 5,
            epochs: None,
            batch_size: None,
            lr: 1e-3,
            weight_decay: 0.0,
            gamma: None,
            penalty: None,
            loss_form: LossForm::Sum,
            patience: 10,
            warmup_epochs: None,
            backend: Backend::Auto,
            seed: 0,
            eval: EvalOptions::default(),
        }
    }
}

impl FairParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A preset; explicitly set values override it. Default: none.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.preset = Some(preset);
        self
    }

    /// Hidden layer widths. Default: `[64, 32]` for tables, `[64, 12]` for images.
    pub fn hidden(mut self, widths: Vec<usize>) -> Self {
        self.hidden = Some(widths);
        self
    }

    /// 0-based indices of the stochastic hidden layers; the MI is taken on the last. Default: the last
    /// hidden layer.
    pub fn stochastic(mut self, layers: Vec<usize>) -> Self {
        self.stochastic = Some(layers);
        self
    }

    /// No stochastic layer: the full-precision `mlp` baseline. Default: false.
    pub fn full_precision(mut self, on: bool) -> Self {
        self.full_precision = on;
        self
    }

    /// Pre-activation of stochastic neurons. Default: tanh.
    pub fn pre_activation(mut self, p: PreActivation) -> Self {
        self.pre_activation = p;
        self
    }

    /// Temperature `tau` of `p = sigmoid(tau a)`. Default: 6.
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }

    /// Straight-through estimator. Default: identity.
    pub fn estimator(mut self, e: Estimator) -> Self {
        self.estimator = e;
        self
    }

    /// Activation of full-precision layers. Default: tanh.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Images: output channels of each convolution. Default: `[8, 16]`.
    pub fn channels(mut self, c: Vec<usize>) -> Self {
        self.channels = c;
        self
    }

    /// Images: kernel size of the convolutions. Default: 5.
    pub fn kernel(mut self, k: usize) -> Self {
        self.kernel = k;
        self
    }

    /// Passes over the training split. Default: 50 for tables, 20 for images (80 in the invariant preset).
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = Some(n);
        self
    }

    /// Rows per batch. Default: 256 for tables, 128 for images.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Adam learning rate. Default: 1e-3.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Decoupled weight decay. Default: 0 (plain Adam).
    pub fn weight_decay(mut self, w: f64) -> Self {
        self.weight_decay = w;
        self
    }

    /// Weight of the penalty. Default: 0 (5 in the invariant preset).
    pub fn gamma(mut self, g: f64) -> Self {
        self.gamma = Some(g);
        self
    }

    /// The penalty. Default: `per-neuron` (parity) for tables, `per-neuron:odds` for images (where the
    /// colour is nearly the class, so parity would forbid learning the class); `joint` in the preset.
    pub fn penalty(mut self, p: PenaltySpec) -> Self {
        self.penalty = Some(p);
        self
    }

    /// How CE and penalty combine. Default: sum.
    pub fn loss_form(mut self, f: LossForm) -> Self {
        self.loss_form = f;
        self
    }

    /// Early-stopping patience in epochs (with a validation split). Default: 10.
    pub fn patience(mut self, n: usize) -> Self {
        self.patience = n;
        self
    }

    /// Epochs over which gamma ramps linearly from 0. Default: 0 (20 in the invariant preset).
    pub fn warmup_epochs(mut self, n: usize) -> Self {
        self.warmup_epochs = Some(n);
        self
    }

    /// The fused CPU step where it applies, or always candle. Default: auto.
    pub fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }

    /// Seed of initialisation, batch order, samples and evaluation. Default: 0.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Evaluation options (their seed is replaced by the model's seed). Default: [`EvalOptions::default`].
    pub fn eval(mut self, e: EvalOptions) -> Self {
        self.eval = e;
        self
    }

    /// The parameters with the preset's values filled in where none was set.
    fn with_preset(&self) -> FairParams {
        let mut p = self.clone();
        if let Some(Preset::Invariant) = p.preset {
            p.hidden.get_or_insert(vec![64, 12]);
            p.penalty.get_or_insert(PenaltySpec::new(PenaltyKind::Joint, Target::Parity));
            p.gamma.get_or_insert(5.0);
            p.warmup_epochs.get_or_insert(20);
            p.epochs.get_or_insert(80);
        }
        p
    }

    /// Checks every value that can be checked without the data; errors name the parameter.
    pub fn check(&self) -> Result<ValidParams> {
        let p = self.with_preset();
        let model = ModelConfig { n_inputs: 1, ..p.model_config(ModelKind::Table) };
        model.validate()?;
        if p.full_precision && p.stochastic.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::param(
                "stochastic",
                format!("{:?}", p.stochastic.unwrap()),
                "a full-precision network has no stochastic layer",
            ));
        }
        p.train_config(ModelKind::Table).validate()?;
        p.eval.validate()?;
        if let Some(spec) = &p.penalty {
            spec.check(model.code_width())?;
        }
        Ok(ValidParams(p))
    }

    fn model_config(&self, kind: ModelKind) -> ModelConfig {
        let hidden = self.hidden.clone().unwrap_or_else(|| match kind {
            ModelKind::Table => vec![64, 32],
            ModelKind::Image => vec![64, 12],
        });
        let stochastic = if self.full_precision {
            vec![]
        } else {
            match &self.stochastic {
                Some(s) if !s.is_empty() => s.clone(),
                _ => vec![hidden.len().saturating_sub(1)],
            }
        };
        ModelConfig {
            n_inputs: 0,
            hidden,
            stochastic,
            pre_activation: self.pre_activation,
            temperature: self.temperature,
            estimator: self.estimator,
            activation: self.activation,
            n_outputs: 1,
            conv: None,
        }
    }

    fn train_config(&self, kind: ModelKind) -> TrainConfig {
        let (epochs, batch_size, target) = match kind {
            ModelKind::Table => (50, 256, Target::Parity),
            ModelKind::Image => (20, 128, Target::Odds),
        };
        TrainConfig {
            epochs: self.epochs.unwrap_or(epochs),
            batch_size: self.batch_size.unwrap_or(batch_size),
            lr: self.lr,
            weight_decay: self.weight_decay,
            gamma: self.gamma.unwrap_or(0.0),
            penalty: self.penalty.unwrap_or(PenaltySpec::new(PenaltyKind::PerNeuron, target)),
            loss_form: self.loss_form,
            patience: self.patience,
            warmup_epochs: self.warmup_epochs.unwrap_or(0),
            backend: self.backend,
            seed: self.seed,
        }
    }
}

/// Checked parameters: [`ValidParams::fit`] trains a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidParams(FairParams);

impl ValidParams {
    /// The architecture, training and evaluation options for inputs of `shape` (one row: `[d]`, or
    /// `[3, h, w]` for images) and `n_classes` task classes. This is where every default is decided.
    pub fn resolve_for(
        &self,
        kind: ModelKind,
        shape: &[usize],
        n_classes: usize,
    ) -> Result<(ModelConfig, TrainConfig, EvalOptions)> {
        let p = &self.0;
        if kind == ModelKind::Image && p.preset.is_some() {
            return Err(Error::param(
                "preset",
                "invariant",
                "the invariant preset is for tables; images take the image defaults",
            ));
        }
        let mut model = p.model_config(kind);
        model.n_outputs = if n_classes == 2 { 1 } else { n_classes };
        model.n_inputs = shape.iter().product();
        if kind == ModelKind::Image {
            let conv = ConvLayers { image: (shape[1], shape[2]), channels: p.channels.clone(), kernel: p.kernel };
            model.n_inputs = conv.feature_width()?;
            model.conv = Some(conv);
        }
        model.validate()?;
        let train = p.train_config(kind);
        train.validate()?;
        train.penalty.check(model.code_width())?;
        let eval = EvalOptions { seed: p.seed, ..p.eval.clone() };
        Ok((model, train, eval))
    }

    /// The resolved configuration for `data` prepared from `spec`, checked against the memory the run
    /// would need.
    pub fn resolve(&self, data: &Prepared, spec: &DataSpec) -> Result<SavedConfig> {
        let kind = match spec {
            DataSpec::Table(_) => ModelKind::Table,
            DataSpec::Images(_) => ModelKind::Image,
        };
        let (model, train, eval) = self.resolve_for(kind, &data.train.shape, data.train.n_classes)?;
        check_memory(&model, &train, &eval, data)?;
        let mut config = SavedConfig::new(model, train, spec.clone(), data.encoding.clone(), eval);
        if let DataSpec::Table(crate::data::TableSpec { source: crate::data::Source::Csv { path, .. }, .. }) = spec {
            config.data_file = Some(crate::data::file_fingerprint(path)?);
        }
        Ok(config)
    }

    /// Trains on `data` (prepared from `spec`): returns the fitted model and the training report.
    pub fn fit(&self, data: &Prepared, spec: &DataSpec) -> Result<FairModel> {
        Ok(self.fit_with(data, spec, None, &())?.0)
    }

    /// [`ValidParams::fit`] with checkpoints and a progress observer.
    pub fn fit_with(
        &self,
        data: &Prepared,
        spec: &DataSpec,
        ckpt: Option<&Checkpointing>,
        observer: &dyn Observer,
    ) -> Result<(FairModel, TrainReport)> {
        FairModel::train(self.resolve(data, spec)?, data, ckpt, observer)
    }
}

/// A trained model: the network with its saved configuration (architecture, training options, data
/// spec, encoders).
pub struct FairModel {
    net: Net,
    config: SavedConfig,
    report: Option<TrainReport>,
}

impl FairModel {
    /// Trains a model of a resolved configuration on `data` (a resumed run: `ckpt.resume`).
    pub fn train(
        config: SavedConfig,
        data: &Prepared,
        ckpt: Option<&Checkpointing>,
        observer: &dyn Observer,
    ) -> Result<(FairModel, TrainReport)> {
        let device = default_device()?;
        let net = Net::new(&config.model, &device, &mut rng(config.train.seed, Stream::Init))?;
        let report = train::fit(&net, &data.train, data.val.as_ref(), &config.train, ckpt, observer)?;
        Ok((FairModel { net, config, report: Some(report.clone()) }, report))
    }

    /// A saved model directory.
    pub fn load(dir: &Path) -> Result<FairModel> {
        let (net, config) = store::load(dir, &default_device()?)?;
        Ok(FairModel { net, config, report: None })
    }

    /// Saves weights, `config.json` and (when given) `metrics.json` into `dir`.
    pub fn save(&self, dir: &Path, metrics: Option<&Metrics>) -> Result<()> {
        store::save(dir, &self.net, &self.config, metrics)
    }

    /// The network.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// The saved configuration.
    pub fn config(&self) -> &SavedConfig {
        &self.config
    }

    /// Mutable configuration (e.g. to record where the training file lives).
    pub fn config_mut(&mut self) -> &mut SavedConfig {
        &mut self.config
    }

    /// The training report, for a model trained in this process.
    pub fn report(&self) -> Option<&TrainReport> {
        self.report.as_ref()
    }

    /// Table or image.
    pub fn kind(&self) -> ModelKind {
        self.config.kind
    }

    /// Width `m` of the representation.
    pub fn code_width(&self) -> usize {
        self.net.config().code_width()
    }

    /// Facts of the run for the metrics: seed, gamma, penalty, training time (`NaN` unless given).
    pub fn run_info(&self, train_seconds: f64, epochs: usize) -> RunInfo {
        let t = &self.config.train;
        RunInfo {
            seed: t.seed,
            gamma: t.gamma,
            penalty: t.penalty,
            penalty_label: t.penalty_label(self.net.config().is_stochastic()),
            train_seconds,
            epochs,
            history: self.report.as_ref().map(|r| r.history.clone()).unwrap_or_default(),
            rho: match &self.config.data {
                DataSpec::Images(i) => Some(i.rho),
                DataSpec::Table(_) => None,
            },
        }
    }

    /// Evaluates on `data` (test split; probes learn on its probe set) with `opts`.
    pub fn evaluate(
        &self,
        data: &Prepared,
        opts: &EvalOptions,
        run: &RunInfo,
        observer: &dyn Observer,
    ) -> Result<Metrics> {
        eval::evaluate(&self.net, data, opts, run, observer)
    }

    /// The inputs `x` (row-major, each row of the model's input width) as a tensor.
    fn inputs(&self, x: &[f32]) -> Result<(Tensor, usize)> {
        let cfg = self.net.config();
        let mut shape = match &cfg.conv {
            Some(c) => vec![3, c.image.0, c.image.1],
            None => vec![cfg.n_inputs],
        };
        let width: usize = shape.iter().product();
        if x.len() % width != 0 {
            return Err(Error::param(
                "x",
                format!("{} values", x.len()),
                format!("rows of the model's input width {width} {shape:?}"),
            ));
        }
        let n = x.len() / width;
        shape.insert(0, n);
        Ok((Tensor::from_slice(x, shape, self.net.device())?, n))
    }

    /// The representation of the rows `x`: `[n, m]` row-major, one forward pass in the chosen mode
    /// (`sample`: one fresh code per row, the certified output; `prob`: `p`, not certified; `threshold`).
    pub fn encode(&self, x: &[f32], inference: Inference, seed: u64) -> Result<Vec<f32>> {
        let (x, _) = self.inputs(x)?;
        let mut r = rng(seed, Stream::Eval);
        let out = self.net.forward(&x, Mode::Infer(inference), &mut r)?;
        Ok(out.code.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The representation of every row of `set` (images: computed in chunks).
    pub fn encode_set(&self, set: &Dataset, inference: Inference, seed: u64) -> Result<Vec<f32>> {
        let features = self.net.features_of(set)?;
        let mut r = rng(seed, Stream::Eval);
        let out = self.net.forward_features(&features, Mode::Infer(inference), &mut r)?;
        Ok(out.code.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Class probabilities of the rows `x`: `[n, classes]` row-major (a binary task: `P(y = 0)`,
    /// `P(y = 1)`). In `sample` mode the mean over `draws` fresh codes per row (each draw alone is a
    /// consumer of one sampled code; their average is not covered by the certificate); `prob` and
    /// `threshold` are deterministic (one pass).
    pub fn predict_proba(&self, x: &[f32], inference: Inference, draws: usize, seed: u64) -> Result<Vec<f32>> {
        let (x, n) = self.inputs(x)?;
        let features = self.net.features(&x)?;
        let draws = if inference == Inference::Sample { draws.max(1) } else { 1 };
        let classes = self.net.config().n_classes();
        let mut acc = vec![0f64; n * classes];
        let mut r = rng(seed, Stream::Eval);
        for _ in 0..draws {
            let out = self.net.forward_features(&features, Mode::Infer(inference), &mut r)?;
            let probs: Vec<f32> = if classes == 2 && out.logits.rank() == 1 {
                let p1: Vec<f32> = candle_nn::ops::sigmoid(&out.logits)?.to_vec1()?;
                p1.iter().flat_map(|&p| [1.0 - p, p]).collect()
            } else {
                candle_nn::ops::softmax_last_dim(&out.logits.to_dtype(DType::F32)?)?.flatten_all()?.to_vec1()?
            };
            for (a, p) in acc.iter_mut().zip(probs) {
                *a += p as f64;
            }
        }
        Ok(acc.iter().map(|a| (a / draws as f64) as f32).collect())
    }

    /// Decisions for the rows `x`: a binary task: `P(y = 1) >= threshold`; a multi-class task: the most
    /// probable class (`threshold` unused). See [`FairModel::predict_proba`].
    pub fn predict(&self, x: &[f32], inference: Inference, draws: usize, seed: u64, threshold: f64) -> Result<Vec<u8>> {
        let probs = self.predict_proba(x, inference, draws, seed)?;
        Ok(decide(&probs, self.net.config().n_classes(), threshold))
    }
}

/// Decisions from class probabilities (`[n, classes]` row-major): binary: `P(1) >= threshold`; else argmax.
pub fn decide(probs: &[f32], classes: usize, threshold: f64) -> Vec<u8> {
    probs
        .chunks(classes)
        .map(|row| {
            if classes == 2 {
                (row[1] as f64 >= threshold) as u8
            } else {
                let mut best = 0;
                for (c, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = c;
                    }
                }
                best as u8
            }
        })
        .collect()
}

/// Memory this machine can still give (`MemAvailable` of `/proc/meminfo`), when known.
fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// The largest allocations of a run, in bytes, by what needs them (an estimate made before anything is
/// allocated, so that a configuration too big for the machine fails with a message instead of an abort).
pub fn memory_needed(
    model: &ModelConfig,
    train: &TrainConfig,
    eval: &EvalOptions,
    data: &Prepared,
) -> Vec<(&'static str, f64)> {
    let f = |v: usize| v as f64;
    let (n_train, n_test) = (f(data.train.n), f(data.test.n));
    let m = model.code_width();
    let widest = model.hidden.iter().copied().max().unwrap_or(0).max(model.n_inputs);
    let mut parts = vec![
        ("weights, gradients and Adam moments", f(model.n_weights()) * 4.0 * 4.0),
        ("activations of a training batch", f(train.batch_size * model.hidden.iter().sum::<usize>()) * 4.0 * 8.0),
        ("activations of an evaluation pass", (n_train + n_test) * f(widest) * 4.0 * 2.0),
        ("representations for the probes", (n_train + n_test) * f(m) * 8.0 * 3.0),
        ("the logistic probe's Newton system", f((m + 1) * (m + 1)) * 8.0 * f(data.test.n_groups.max(2))),
        ("the forest probe's binned features", n_train * f(m)),
    ];
    if m <= eval.m_max && model.is_stochastic() {
        let half = f(1usize << m.div_ceil(2));
        parts.push((
            "the exact joint MI's code tables",
            f(1usize << m) * 8.0 * f(data.test.n_groups + 1) + n_test * half * 8.0 * 2.0,
        ));
    }
    if train.gamma > 0.0 && train.penalty.estimate == crate::penalty::Estimate::Bank {
        let cells = f(data.train.n_classes * data.train.n_groups);
        let stat = if train.penalty.kind == PenaltyKind::Joint { f(1usize << m) } else { f(m) };
        parts.push(("the penalty's bank", n_train * f(m) * 4.0 + cells * stat * 8.0 * 3.0));
    }
    parts
}

/// Refuses a configuration whose estimated memory exceeds what the machine has available.
fn check_memory(model: &ModelConfig, train: &TrainConfig, eval: &EvalOptions, data: &Prepared) -> Result<()> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let parts = memory_needed(model, train, eval, data);
    let total: f64 = parts.iter().map(|p| p.1).sum();
    if total <= available {
        return Ok(());
    }
    let (what, largest) = parts.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let gb = |b: f64| format!("{:.1} GB", b / 1e9);
    Err(Error::param(
        "hidden",
        format!("{:?}", model.hidden),
        format!(
            "this configuration needs about {} ({} of it for {what}); this machine has {} available: \
             use narrower layers or fewer rows",
            gb(total),
            gb(largest),
            gb(available)
        ),
    ))
}

/// A training run as `train` starts it, saved to `DIR/checkpoint/run.json` so that `train --resume DIR`
/// continues it with every option unchanged.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunFile {
    /// The resolved configuration.
    pub config: SavedConfig,
    /// Save the training state every this many epochs (0: never).
    pub checkpoint_every: usize,
    /// Leave the wall-clock time out of the metrics.
    pub reproducible: bool,
}

impl RunFile {
    /// The run recorded in `dir/checkpoint/run.json`.
    pub fn load(dir: &Path) -> Result<RunFile> {
        crate::files::read_json(&dir.join("checkpoint").join("run.json"))
            .map_err(|e| Error::ModelDir { dir: dir.to_path_buf(), reason: format!("nothing to resume: {e}") })
    }

    /// Trains (or, with `resume`, continues from `out/checkpoint`), evaluates on `data`'s test split and,
    /// with `out`, saves the model there (checkpoints while training). A failed run leaves no directory it
    /// created.
    pub fn execute(
        &self,
        data: &Prepared,
        out: Option<&Path>,
        resume: bool,
        observer: &dyn Observer,
    ) -> Result<Metrics> {
        let d = &data.train;
        tracing::info!(dataset = %data.description.dataset, n_train = d.n, n_test = data.test.n, n_dropped = data.n_dropped, inputs = d.d, "data ready");
        let created = out.filter(|dir| !dir.exists()).map(Path::to_path_buf);
        let result = self.execute_in(data, out, resume, observer);
        if let (Err(_), Some(dir)) = (&result, created) {
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }

    fn execute_in(
        &self,
        data: &Prepared,
        out: Option<&Path>,
        resume: bool,
        observer: &dyn Observer,
    ) -> Result<Metrics> {
        let ckpt = out.map(|dir| Checkpointing { dir: dir.join("checkpoint"), every: self.checkpoint_every, resume });
        if let (Some(ck), false) = (&ckpt, resume) {
            crate::files::create_dir(&ck.dir)?;
            crate::files::write_json(&ck.dir.join("run.json"), self)?;
        }
        let (model, report) = FairModel::train(self.config.clone(), data, ckpt.as_ref(), observer)?;
        tracing::info!(seconds = format!("{:.2}", report.train_seconds), epochs = report.epochs, "trained; evaluating");
        // Wall-clock time is the one non-deterministic number; `reproducible` leaves it out.
        let seconds = if self.reproducible { f64::NAN } else { report.train_seconds };
        let info = model.run_info(seconds, report.epochs);
        let metrics = model.evaluate(data, &self.config.eval, &info, observer)?;
        if let Some(dir) = out {
            model.save(dir, Some(&metrics))?;
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            tracing::info!(dir = %dir.display(), "saved");
        }
        Ok(metrics)
    }
}

impl FairModel {
    /// Reads a CSV for this (table) model, adding the derived columns of the shipped dataset it was
    /// trained on.
    pub fn read_table(&self, path: &Path, delimiter: Option<char>) -> Result<crate::data::RawTable> {
        let mut table = crate::data::RawTable::from_path_with(path, crate::data::Duplicates::Reject, delimiter)?;
        if let DataSpec::Table(t) = &self.config.data {
            if let crate::data::Source::Builtin { name, .. } = &t.source {
                crate::data::builtin::derive_columns(*name, &mut table)?;
            }
        }
        Ok(table)
    }

    /// The data to evaluate on: the model's own data and split (its training file checked to be where
    /// and what it was), or every row of a held-out CSV.
    pub fn eval_data(&self, held_out: Option<(&Path, &crate::data::HeldOut)>) -> Result<Prepared> {
        match held_out {
            None => {
                crate::data::check_fingerprint(&self.config.data, self.config.data_file.as_ref())?;
                self.config.data.prepare()
            }
            Some((path, held)) => {
                let encoding = self.config.encoding.as_ref().ok_or_else(|| {
                    Error::param("csv", path.display(), "an image model is evaluated on its own images")
                })?;
                crate::data::prepare_held_out(self.read_table(path, held.delimiter)?, encoding, held)
            }
        }
    }

    /// The run facts recorded in a saved model's `metrics.json` (training time, epochs, history), so
    /// that evaluating it again reproduces the metrics of its training.
    pub fn saved_run_info(&self, dir: &Path) -> RunInfo {
        let saved: Option<Metrics> = crate::files::read_json(&dir.join("metrics.json")).ok();
        let mut info = self.run_info(f64::NAN, 0);
        match saved {
            Some(Metrics::Binary(m)) => (info.train_seconds, info.epochs) = (m.timing.train_seconds, m.timing.epochs),
            Some(Metrics::Multiclass(m)) => {
                (info.train_seconds, info.epochs, info.history) = (m.run.train_seconds, m.run.epochs, m.history)
            }
            None => {}
        }
        info
    }
}

/// `fairbits certify`: a saved encoder's population certificate from held-out rows.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Certification {
    /// Where the rows come from.
    pub dataset: String,
    /// Which rows: a held-out file, the model's certification split, or its test split.
    pub rows_from: String,
    /// Sensitive column and its groups.
    pub sensitive: String,
    /// Group values (index = `s`).
    pub groups: Vec<String>,
    /// Rows certified on.
    pub rows: usize,
    /// Rows of the file left out because the model was trained on them.
    pub rows_removed_as_training: usize,
    /// The certificate.
    pub population: crate::eval::certificate::Population,
    /// What it covers.
    pub note: String,
}

impl Certification {
    /// A readable form.
    pub fn table(&self) -> String {
        let p = &self.population;
        let mut s = format!(
            "population certificate of {} for {} ({}), from {} held-out rows ({}), {:.0}% confidence\n",
            self.dataset,
            self.sensitive,
            self.groups.join(", "),
            self.rows,
            self.rows_from,
            p.confidence * 100.0
        );
        if self.rows_removed_as_training > 0 {
            s += &format!(
                "  {} row(s) of the file were training rows and were left out\n",
                self.rows_removed_as_training
            );
        }
        for (k, v) in [
            ("dp_gap of any classifier of one code <=", p.dp_gap_bound),
            ("eo_gap of any classifier of one code <=", p.eo_gap_bound),
            ("AUC of any probe for the sensitive attribute <=", p.probe_auc_bound),
            ("balanced accuracy of any adversary <=", p.adversary_balanced_accuracy_bound),
            ("total variation between the groups' codes <=", p.tv_upper),
            ("  plug-in total variation on these rows", p.tv_plugin),
        ] {
            s += &format!("  {k:<50} {v:.4}\n");
        }
        s += &format!("  codes {}, per group {:?}, {}\n  note: {}\n", p.codes, p.n_per_group, p.method, self.note);
        s
    }
}

/// The guarantee in words.
pub const CERTIFY_NOTE: &str = "with the stated confidence, for the population the held-out rows were drawn \
from (independently of training): any classifier or probe that reads ONE code per row (a fresh sample, or the \
thresholded code in threshold mode) is within these bounds; p itself and averages of several samples are not \
covered, and rows the encoder was trained on void the guarantee";

impl FairModel {
    /// The population certificate from held-out rows: every row of a held-out CSV (rows the model was
    /// trained on, recognised by their encoded features, are left out), or the model's own certification
    /// split, or its test split.
    pub fn certify(
        &self,
        held_out: Option<(&Path, &crate::data::HeldOut)>,
        opts: &EvalOptions,
    ) -> Result<Certification> {
        if self.kind() != ModelKind::Table || !self.net.config().is_stochastic() {
            return Err(Error::param("model", "this model", "certify covers table models with a stochastic layer"));
        }
        let data = self.eval_data(held_out)?;
        let (rows, from, removed) = match held_out {
            None => match &data.certify {
                Some(c) => (c.clone(), "the model's certification split", 0),
                None => (data.test.clone(), "the model's test split", 0),
            },
            Some((path, _)) => {
                let (kept, removed) = self.without_training_rows(&data.test)?;
                if kept.n == 0 {
                    return Err(Error::NoRows {
                        path: path.display().to_string(),
                        detail: ": every row is one the model was trained on; the certificate needs held-out rows"
                            .into(),
                    });
                }
                (kept, "a held-out file", removed)
            }
        };
        let mut rng = rng(opts.seed, Stream::Eval);
        let population = crate::eval::binary::population(&self.net, &rows, opts, &mut rng)?;
        Ok(Certification {
            dataset: data.description.dataset.clone(),
            rows_from: from.into(),
            sensitive: data.description.sensitive.clone(),
            groups: data.description.groups.clone(),
            rows: rows.n,
            rows_removed_as_training: removed,
            population,
            note: CERTIFY_NOTE.into(),
        })
    }

    /// `rows` without those whose encoded features equal a training row's (when the model's own data can
    /// be rebuilt; otherwise a warning that it cannot tell).
    fn without_training_rows(&self, rows: &Dataset) -> Result<(Dataset, usize)> {
        let own = match self.config.data.prepare() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(
                    "cannot tell which rows the model was trained on ({e}): make sure the rows are held out"
                );
                return Ok((rows.clone(), 0));
            }
        };
        let key =
            |d: &Dataset, i: usize| -> Vec<u32> { d.x[i * d.d..(i + 1) * d.d].iter().map(|v| v.to_bits()).collect() };
        let mut seen = std::collections::HashSet::new();
        for d in std::iter::once(&own.train).chain(own.val.as_ref()) {
            for i in 0..d.n {
                seen.insert(key(d, i));
            }
        }
        let keep: Vec<usize> = (0..rows.n).filter(|&i| !seen.contains(&key(rows, i))).collect();
        let removed = rows.n - keep.len();
        if removed > 0 {
            tracing::warn!("{removed} row(s) equal a row the model was trained on: left out of the certificate");
        }
        Ok((rows.subset(&keep), removed))
    }
}

//! The library API, in the shape of linfa and scikit-learn: [`FairParams`] (unchecked parameters with
//! builder setters that state their defaults) -> [`FairParams::check`] -> [`ValidParams`] ->
//! [`ValidParams::fit`] on a [`Prepared`] dataset (a table or images) -> [`FairModel`], which encodes,
//! predicts, evaluates, certifies and saves itself. Defaults that depend on the kind of data (a table or
//! images) are resolved in [`params`], once; [`run`] is a whole training run as the command line makes it
//! (checkpoints, the output directory, the memory check); [`certify`] the population certificate of a
//! saved encoder.

pub(crate) mod certify;
pub mod constraint;
pub(crate) mod params;
pub(crate) mod run;

pub use certify::Certification;
pub use params::{FairParams, Preset, ValidParams};
pub use run::{memory_needed, RunFile};

use crate::data::{DataSpec, Dataset, Prepared};
use crate::error::{Error, Result};
use crate::eval::{self, EvalOptions, Metrics, RunInfo};
use crate::model::{default_device, Inference, Mode, Net};
use crate::progress::Observer;
use crate::rng::{rng, Stream};
use crate::store::{self, ModelKind, SavedConfig};
use crate::train::{self, Checkpointing, TrainReport};
use candle_core::{DType, Tensor};
use std::path::Path;

/// A trained model: the network with its saved configuration (architecture, training options, data
/// spec, encoders).
pub struct FairModel {
    net: Net,
    config: SavedConfig,
    report: Option<TrainReport>,
    search: Option<constraint::SearchReport>,
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
        // A resumed run continues the start its checkpoint belongs to.
        let first = match ckpt.filter(|c| c.resume) {
            Some(c) => c.saved_attempt()?,
            None => 0,
        };
        let mut train_cfg = config.train.clone();
        for attempt in first..=train::COLLAPSE_RESTARTS {
            train_cfg.attempt = attempt;
            let net = Net::new(&config.model, &device, &mut rng(train_cfg.stream_seed(), Stream::Init))?;
            let ckpt = ckpt.map(|c| Checkpointing { resume: c.resume && attempt == first, ..c.clone() });
            let report = train::fit(&net, &data.train, data.val.as_ref(), &train_cfg, ckpt.as_ref(), observer)?;
            let model = FairModel { net, config: config.clone(), report: Some(report.clone()), search: None };
            if !model.code_collapsed(&data.train)? {
                return Ok((model, report));
            }
            if attempt == train::COLLAPSE_RESTARTS {
                tracing::warn!(
                    restarts = attempt,
                    "the code is the same on every training row (collapsed) after every restart: it carries \
                     nothing, and predicts one class; the penalty's weight (gamma) is likely too large"
                );
                return Ok((model, report));
            }
            tracing::warn!(attempt, "the code collapsed to a constant: training again from a fresh start");
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Whether the code is the same on every row (every code neuron's `p` within
    /// [`constraint::CONSTANT_SPREAD`] on up to 20,000 rows spread evenly over `rows`; docs/design.md,
    /// section 1c). Models without a stochastic layer never collapse in this sense.
    fn code_collapsed(&self, rows: &Dataset) -> Result<bool> {
        if !self.config.model.is_stochastic() || rows.n == 0 {
            return Ok(false);
        }
        let step = rows.n.div_ceil(20_000);
        let some: Vec<usize> = (0..rows.n).step_by(step).collect();
        let x = rows.batch(&some, self.net.device())?;
        let out = self.net.forward_features(
            &self.net.features(&x)?,
            Mode::Infer(Inference::Prob),
            &mut rng(0, Stream::Eval),
        )?;
        let p: Vec<f64> = out.code.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
        Ok(constraint::is_constant_code(&p, self.code_width()))
    }

    /// A saved model directory.
    pub fn load(dir: &Path) -> Result<FairModel> {
        let (net, config) = store::load(dir, &default_device()?)?;
        Ok(FairModel { net, config, report: None, search: None })
    }

    /// Saves weights, `config.json` and (when given) `metrics.json` into `dir`, and for a model a search
    /// for a certified bound found, `search.json` (how it was found and certified).
    pub fn save(&self, dir: &Path, metrics: Option<&Metrics>) -> Result<()> {
        store::save(dir, &self.net, &self.config, metrics)?;
        match &self.search {
            Some(report) => crate::files::write_json(&dir.join("search.json"), report),
            None => Ok(()),
        }
    }

    /// Saves into a model directory claimed as training claims it ([`store::claim_model_dir`]): a new or
    /// empty directory, or, with `replace`, one holding a model; never one holding other files, or one
    /// another process is writing.
    pub fn save_to(&self, dir: &Path, metrics: Option<&Metrics>, replace: bool) -> Result<()> {
        let claim = store::claim_model_dir(dir, if replace { store::Reuse::Replace } else { store::Reuse::Fresh })?;
        self.save(claim.dir(), metrics)
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

    /// How the search for a certified bound found this model, for a model it returned.
    pub fn search_report(&self) -> Option<&constraint::SearchReport> {
        self.search.as_ref()
    }

    /// This model with the report of the search that found it.
    pub(crate) fn with_search(self, report: constraint::SearchReport) -> FairModel {
        FairModel { search: Some(report), ..self }
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
        if !x.len().is_multiple_of(width) {
            let expected = format!("rows of {width} values (one row: {shape:?})");
            return Err(Error::Shape { what: "the rows".into(), expected, got: format!("{} values", x.len()) });
        }
        let n = x.len() / width;
        shape.insert(0, n);
        Ok((Tensor::from_slice(x, shape, self.net.device())?, n))
    }

    /// Checks an array of images for this (image) model, before any work: the shape `[n, 3, h, w]` of
    /// the model's images, every value finite and in [0, 1] (the scale the model was trained on). `what`
    /// names the array in messages (a file, or the caller's argument).
    pub fn check_images(&self, shape: &[usize], x: &[f32], what: &str) -> Result<()> {
        let Some(conv) = &self.net.config().conv else {
            return Err(Error::Shape { what: what.into(), expected: "table rows".into(), got: "images".into() });
        };
        let (h, w) = conv.image;
        if shape.len() != 4 || shape[1..] != [3, h, w] {
            let expected = format!("an array N x 3 x {h} x {w}");
            return Err(Error::Shape { what: what.into(), expected, got: format!("an array of shape {shape:?}") });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            let reason = format!("value {} at flat index {i} (image {}) is not a number", x[i], i / (3 * h * w));
            return Err(Error::Values { what: what.into(), reason });
        }
        let (lo, hi) = x.iter().fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if lo < 0.0 || hi > 1.0 {
            let hint = if hi > 1.0 && hi <= 255.0 && lo >= 0.0 { ": divide by 255" } else { "" };
            let reason = format!("values range over [{lo}, {hi}]; the model reads pixels in [0, 1]{hint}");
            return Err(Error::Values { what: what.into(), reason });
        }
        Ok(())
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
        if self.regression().is_some() {
            let why = "a regression model predicts numbers, not class probabilities";
            return Err(Error::param(crate::schema::Param::Task, "regression", why));
        }
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

    /// A regression model's target scale (docs/design.md, section 5c); `None` for a classifier.
    pub fn regression(&self) -> Option<crate::data::Scale> {
        let scale = self.config().encoding.as_ref().and_then(|e| e.target.regression);
        scale.filter(|_| self.net.config().regression)
    }

    /// A regression model's predictions for the rows `x`, in the target's units: the head's output
    /// mapped back from standard units, in `sample` mode the mean over `draws` fresh codes per row (as
    /// [`FairModel::predict_proba`] averages probabilities); an error for a classifier.
    pub fn predict_values(&self, x: &[f32], inference: Inference, draws: usize, seed: u64) -> Result<Vec<f64>> {
        let Some(scale) = self.regression() else {
            let why = "a classifier predicts classes and their probabilities, not numbers";
            return Err(Error::param(crate::schema::Param::Task, "classification", why));
        };
        let (x, n) = self.inputs(x)?;
        let features = self.net.features(&x)?;
        let draws = if inference == Inference::Sample { draws.max(1) } else { 1 };
        let mut acc = vec![0f64; n];
        let mut r = rng(seed, Stream::Eval);
        for _ in 0..draws {
            let out = self.net.forward_features(&features, Mode::Infer(inference), &mut r)?;
            let z: Vec<f32> = out.logits.flatten_all()?.to_vec1()?;
            for (a, z) in acc.iter_mut().zip(z) {
                *a += z as f64;
            }
        }
        Ok(acc.iter().map(|a| scale.unscale(a / draws as f64)).collect())
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

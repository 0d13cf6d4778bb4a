//! Images (DESIGN section 6; the images issue): colour-biased digits and clothes, a convolutional encoder
//! in front of the stochastic layers, softmax training with a colour penalty, and the image metrics.
//!
//! Here `y` is the class (10 values) and `s` the background colour (10 values). In the biased training set
//! colour predicts the class with probability `rho`; a network that learns colour fails the unbiased test.
//! `I(T; S)` is nearly `I(T; Y)` on biased data, so penalising it stops learning altogether; the penalty
//! that targets the bias is the conditional `I(T; S | Y)`, estimated over the whole training set with a
//! [`CellBank`] so that the rare off-colour images count (module `bank`).

pub use crate::bank::Estimate;
use crate::bank::{CellBank, Form};
use crate::conv;
use crate::data::images::{self, Images};
use crate::error::{Error, Result};
use crate::metrics::accuracy;
use crate::mi;
use crate::model::{Forward, Inference, Mode, ModelConfig, SqNet};
use crate::probes::{self, ProbeScore, Repr};
use crate::report::{nullable, EvalOptions};
use crate::train::{self, streams, Adam, Penalty, TrainConfig};
use candle_core::{DType, Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where Debian's `dataset-fashion-mnist` package puts the Fashion-MNIST files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// RNG streams of the colourings (the split uses stream 1, training streams 2-7).
pub mod colour_streams {
    /// Biased colours of the training images.
    pub const TRAIN: u64 = 8;
    /// Uniform colours of the training images for the probes' training set.
    pub const PROBE: u64 = 9;
    /// Uniform colours of the unbiased test set.
    pub const UNBIASED: u64 = 10;
    /// Biased colours of the biased test set.
    pub const BIASED: u64 = 11;
    /// Subsampling with `--train-size`.
    pub const SUBSAMPLE: u64 = 12;
}

/// The image datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ImageDataset {
    /// Biased-MNIST: the shipped 5,000 digits (4,000 / 1,000), or full MNIST from `--mnist-dir`.
    BiasedMnist,
    /// Colour-biased Fashion-MNIST (70,000 images) from `--mnist-dir` or Debian's `dataset-fashion-mnist`.
    BiasedFashionMnist,
}

impl ImageDataset {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ImageDataset::BiasedMnist => "biased-mnist",
            ImageDataset::BiasedFashionMnist => "biased-fashion-mnist",
        }
    }
}

/// Which images and how they are coloured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// The dataset.
    pub dataset: ImageDataset,
    /// Probability that a training image carries its own class's colour (else uniform).
    pub rho: f64,
    /// Directory of the four IDX files (MNIST layout); default: the shipped digits, resp. Debian's
    /// Fashion-MNIST directory.
    pub mnist_dir: Option<PathBuf>,
    /// Use a class-stratified subsample of this many training images.
    pub train_size: Option<usize>,
    /// Seed of split, subsample and colours.
    pub seed: u64,
}

/// Coloured images: `n x 3 x rows x cols` in [0, 1], classes and colours.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Pixels, image after image, channels first.
    pub x: Vec<f32>,
    /// Class of each image.
    pub y: Vec<u8>,
    /// Background colour of each image.
    pub s: Vec<u32>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl ImageSet {
    fn new(images: &Images, colours: Vec<u8>) -> Self {
        ImageSet {
            x: images::colourise(images, &colours),
            y: images.labels.clone(),
            s: colours.into_iter().map(u32::from).collect(),
            rows: images.rows,
            cols: images.cols,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Images off their class's colour.
    pub fn off_colour(&self) -> usize {
        self.y
            .iter()
            .zip(&self.s)
            .filter(|(&y, &s)| y as u32 != s)
            .count()
    }

    /// The images `rows` as a `[b, 3, rows, cols]` tensor.
    pub fn batch(&self, rows: &[usize], device: &Device) -> Result<Tensor> {
        let size = 3 * self.rows * self.cols;
        let mut v = Vec::with_capacity(rows.len() * size);
        for &r in rows {
            v.extend_from_slice(&self.x[r * size..(r + 1) * size]);
        }
        Ok(Tensor::from_vec(
            v,
            (rows.len(), 3, self.rows, self.cols),
            device,
        )?)
    }
}

/// The four sets of an image experiment.
pub struct ImageData {
    /// Biased training set.
    pub train: ImageSet,
    /// The training images with uniform colours: where the colour probes learn.
    pub probe_train: ImageSet,
    /// Test images with uniform colours.
    pub test_unbiased: ImageSet,
    /// Test images coloured like the training set.
    pub test_biased: ImageSet,
}

fn subset(images: &Images, idx: &[usize]) -> Images {
    let size = images.rows * images.cols;
    let mut pixels = Vec::with_capacity(idx.len() * size);
    for &i in idx {
        pixels.extend_from_slice(&images.pixels[i * size..(i + 1) * size]);
    }
    Images {
        rows: images.rows,
        cols: images.cols,
        pixels,
        labels: idx.iter().map(|&i| images.labels[i]).collect(),
    }
}

/// A class-stratified sample: `take(class_size)` images of each class, in a seeded random order; the rest.
fn stratified<R: Rng>(
    labels: &[u8],
    take: impl Fn(usize) -> usize,
    rng: &mut R,
) -> (Vec<usize>, Vec<usize>) {
    let (mut chosen, mut rest) = (Vec::new(), Vec::new());
    for c in 0..=255u8 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        if idx.is_empty() {
            continue;
        }
        idx.shuffle(rng);
        let k = take(idx.len()).min(idx.len());
        chosen.extend_from_slice(&idx[..k]);
        rest.extend_from_slice(&idx[k..]);
    }
    chosen.sort_unstable();
    rest.sort_unstable();
    (chosen, rest)
}

/// Loads and colours the images of `spec` (DESIGN section 6).
pub fn load(spec: &ImageSpec) -> Result<ImageData> {
    if !(spec.rho.is_finite() && (0.0..=1.0).contains(&spec.rho)) {
        return Err(Error::option("--rho", spec.rho, "must be in [0, 1]"));
    }
    let (train, test) = match (spec.dataset, &spec.mnist_dir) {
        (_, Some(dir)) => images::read_mnist_dir(dir)?,
        (ImageDataset::BiasedMnist, None) => {
            let all = images::shipped_mnist_5k()?;
            let mut rng = train::rng(spec.seed, 1);
            let (test, train) = stratified(&all.labels, |n| n / 5, &mut rng);
            (subset(&all, &train), subset(&all, &test))
        }
        (ImageDataset::BiasedFashionMnist, None) => {
            let dir = Path::new(FASHION_MNIST_DIR);
            if !dir.exists() {
                return Err(Error::Idx {
                    path: FASHION_MNIST_DIR.into(),
                    reason: "Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist` (Debian) puts \
                             it here, or pass --mnist-dir DIR with train-images-idx3-ubyte[.gz] and friends \
                             (https://github.com/zalandoresearch/fashion-mnist)"
                        .into(),
                });
            }
            images::read_mnist_dir(dir)?
        }
    };
    for (set, what) in [(&train, "training"), (&test, "test")] {
        if let Some(&bad) = set.labels.iter().find(|&&l| l > 9) {
            return Err(Error::Idx {
                path: what.into(),
                reason: format!("label {bad}: the colouring needs classes 0-9"),
            });
        }
        if set.is_empty() {
            return Err(Error::Idx {
                path: what.into(),
                reason: "no images".into(),
            });
        }
    }
    let train = match spec.train_size {
        Some(n) if n < train.len() => {
            if n < 10 {
                return Err(Error::option("--train-size", n, "must be at least 10"));
            }
            let total = train.len();
            let mut rng = train::rng(spec.seed, colour_streams::SUBSAMPLE);
            let (idx, _) = stratified(&train.labels, |c| (c * n).div_ceil(total), &mut rng);
            subset(&train, &idx)
        }
        _ => train,
    };
    let rng = |stream| train::rng(spec.seed, stream);
    let train_colours =
        images::biased_colours(&train.labels, spec.rho, &mut rng(colour_streams::TRAIN))?;
    let probe_colours = images::unbiased_colours(train.len(), &mut rng(colour_streams::PROBE));
    let unbiased = images::unbiased_colours(test.len(), &mut rng(colour_streams::UNBIASED));
    let biased = images::biased_colours(&test.labels, spec.rho, &mut rng(colour_streams::BIASED))?;
    Ok(ImageData {
        probe_train: ImageSet::new(&train, probe_colours),
        train: ImageSet::new(&train, train_colours),
        test_unbiased: ImageSet::new(&test, unbiased),
        test_biased: ImageSet::new(&test, biased),
    })
}

/// The image network's architecture: convolutions (each: `k x k`, no padding, ReLU, 2 x 2 max pooling),
/// then the dense network of [`ModelConfig`] (hidden and stochastic layers, a 10-class head).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvConfig {
    /// Image height and width.
    pub image: (usize, usize),
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Kernel size.
    pub kernel: usize,
    /// The layers after the convolutions (`n_inputs` the flattened features, `n_outputs` 10).
    pub dense: ModelConfig,
}

impl ConvConfig {
    /// A configuration for `image`-sized inputs: `dense.n_inputs` and `n_outputs` are filled in.
    pub fn new(
        image: (usize, usize),
        channels: Vec<usize>,
        kernel: usize,
        dense: ModelConfig,
    ) -> Result<Self> {
        let mut cfg = ConvConfig {
            image,
            channels,
            kernel,
            dense,
        };
        let (c, h, w) = cfg.feature_shape()?;
        cfg.dense.n_inputs = c * h * w;
        cfg.dense.n_outputs = 10;
        cfg.validate()?;
        Ok(cfg)
    }

    /// `(channels, height, width)` after the convolutions.
    pub fn feature_shape(&self) -> Result<(usize, usize, usize)> {
        if self.channels.is_empty() || self.channels.contains(&0) || self.kernel == 0 {
            return Err(Error::option(
                "--channels",
                format!("{:?}", self.channels),
                "needs at least one convolution, all channel counts and the kernel size > 0",
            ));
        }
        let (mut h, mut w) = self.image;
        for _ in &self.channels {
            if h < self.kernel + 1 || w < self.kernel + 1 {
                return Err(Error::option(
                    "--kernel",
                    self.kernel,
                    format!(
                        "{} convolutions of this size and their pooling do not fit a {}x{} image",
                        self.channels.len(),
                        self.image.0,
                        self.image.1
                    ),
                ));
            }
            h = (h + 1 - self.kernel) / 2;
            w = (w + 1 - self.kernel) / 2;
        }
        Ok((*self.channels.last().unwrap(), h, w))
    }

    /// Checks the shapes.
    pub fn validate(&self) -> Result<()> {
        let (c, h, w) = self.feature_shape()?;
        if self.dense.n_inputs != c * h * w || self.dense.n_outputs != 10 {
            return Err(Error::option(
                "dense",
                format!("{} -> {}", self.dense.n_inputs, self.dense.n_outputs),
                format!("must read {} features and have 10 outputs", c * h * w),
            ));
        }
        self.dense.validate()
    }
}

/// Convolutions in front of an [`SqNet`].
pub struct ConvNet {
    cfg: ConvConfig,
    convs: Vec<(Var, Var)>,
    dense: SqNet,
}

impl ConvNet {
    /// A fresh network: Glorot-uniform kernels, zero biases.
    pub fn new<R: Rng>(cfg: &ConvConfig, device: &Device, rng: &mut R) -> Result<Self> {
        cfg.validate()?;
        let k = cfg.kernel;
        let mut convs = Vec::new();
        let mut c_in = 3;
        for &c_out in &cfg.channels {
            let limit = (6.0 / ((c_in + c_out) * k * k) as f64).sqrt() as f32;
            let w: Vec<f32> = (0..c_out * c_in * k * k)
                .map(|_| rng.random_range(-limit..limit))
                .collect();
            convs.push((
                Var::from_tensor(&Tensor::from_vec(w, (c_out, c_in, k, k), device)?)?,
                Var::zeros(c_out, DType::F32, device)?,
            ));
            c_in = c_out;
        }
        Ok(ConvNet {
            cfg: cfg.clone(),
            convs,
            dense: SqNet::new(&cfg.dense, device, rng)?,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ConvConfig {
        &self.cfg
    }

    /// The dense part (stochastic layers and head).
    pub fn dense(&self) -> &SqNet {
        &self.dense
    }

    /// Trainable variables in a fixed order.
    pub fn vars(&self) -> Vec<Var> {
        let mut v: Vec<Var> = self
            .convs
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect();
        v.extend(self.dense.vars());
        v
    }

    /// The weights by name (`conv.{i}.weight`, `conv.{i}.bias`, then the dense network's names).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut t = self.dense.tensors();
        for (i, (w, b)) in self.convs.iter().enumerate() {
            t.insert(format!("conv.{i}.weight"), w.as_tensor().clone());
            t.insert(format!("conv.{i}.bias"), b.as_tensor().clone());
        }
        t
    }

    /// Overwrites the weights from named tensors (shapes checked).
    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (i, (w, b)) in self.convs.iter().enumerate() {
            crate::model::set_var(w, tensors, &format!("conv.{i}.weight"), origin)?;
            crate::model::set_var(b, tensors, &format!("conv.{i}.bias"), origin)?;
        }
        self.dense.set_tensors(tensors, origin)
    }

    /// The convolutional features, `[b, n_inputs of the dense part]`.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (w, b) in &self.convs {
            let o = w.dim(0)?;
            h = conv::conv2d(&h, w.as_tensor())?
                .broadcast_add(&b.as_tensor().reshape((1, o, 1, 1))?)?
                .relu()?
                .max_pool2d(2)?;
        }
        Ok(h.flatten_from(1)?)
    }

    /// One forward pass (logits `[b, 10]`).
    pub fn forward<R: Rng>(&self, x: &Tensor, mode: Mode, rng: &mut R) -> Result<Forward> {
        self.dense.forward(&self.features(x)?, mode, rng)
    }
}

/// One epoch's averages.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss.
    pub loss: f64,
    /// Mean cross-entropy (nats).
    pub ce: f64,
    /// Mean penalty (bits).
    pub penalty_bits: f64,
}

/// Rows per inference batch.
const EVAL_BATCH: usize = 500;

/// Softmax cross-entropy, mean over rows (log-softmax: finite at any logit).
fn cross_entropy(logits: &Tensor, y: &[u8], device: &Device) -> Result<Tensor> {
    let y = Tensor::from_vec(
        y.iter().map(|&v| v as u32).collect::<Vec<_>>(),
        y.len(),
        device,
    )?;
    Ok(candle_nn::loss::cross_entropy(logits, &y)?)
}

/// `p` of the MI layer for every image of `set` (`n x m`, row-major).
pub fn layer_probs(net: &ConvNet, set: &ImageSet, device: &Device) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut rng = train::rng(0, streams::EVAL);
    for start in (0..set.len()).step_by(EVAL_BATCH) {
        let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(set.len())).collect();
        let f = net.forward(
            &set.batch(&rows, device)?,
            Mode::Infer(Inference::Prob),
            &mut rng,
        )?;
        out.extend(f.probs.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Trains `net` on the biased training set: Adam on `CE + gamma I` (or the convex form), the penalty on
/// the colour (`I(T; S)`, or `I(T; S | Y)` with `tc.conditional`), per-neuron or joint, estimated by
/// `tc.estimate`. Fixed epochs (no validation split: any held-out biased data would reward the bias).
/// `on_epoch` sees each epoch's averages.
pub fn train_images(
    net: &ConvNet,
    train: &ImageSet,
    tc: &TrainConfig,
    mut on_epoch: impl FnMut(&ImageEpoch),
) -> Result<Vec<ImageEpoch>> {
    tc.validate()?;
    let estimate = tc.estimate;
    let device = net.dense().device().clone();
    let dense = &net.config().dense;
    let penalised = tc.gamma > 0.0 && dense.is_stochastic();
    if tc.penalty == Penalty::Adversarial {
        return Err(Error::option(
            "--penalty",
            "adversarial",
            "images take the per-neuron, joint or pairwise (--estimate batch) penalty",
        ));
    }
    let mut bank = if penalised && estimate == Estimate::Bank {
        let y: Vec<u32> = train.y.iter().map(|&v| v as u32).collect();
        Some(CellBank::new(
            Form::of(tc.penalty)?,
            layer_probs(net, train, &device)?,
            dense.code_width(),
            &y,
            &train.s,
            10,
            10,
        )?)
    } else {
        None
    };
    let mut adam = Adam::new(net.vars(), tc.lr, tc.weight_decay)?;
    let mut order_rng = train::rng(tc.seed, streams::BATCHES);
    let mut noise = train::rng(tc.seed, streams::NOISE);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 1..=tc.epochs {
        let gamma = tc.gamma_at(epoch);
        order.shuffle(&mut order_rng);
        let (mut loss_sum, mut ce_sum, mut pen_sum, mut batches) = (0.0, 0.0, 0.0, 0usize);
        for (step, rows) in order.chunks(tc.batch_size).enumerate() {
            let x = train.batch(rows, &device)?;
            let f = net.forward(&x, Mode::Train, &mut noise)?;
            let y: Vec<u8> = rows.iter().map(|&r| train.y[r]).collect();
            let ce = cross_entropy(&f.logits, &y, &device)?;
            let mut swap = None;
            let pen = if penalised && gamma > 0.0 {
                match &bank {
                    Some(b) => {
                        let (pen, s) = b.penalty(&f.probs, rows, tc.conditional)?;
                        swap = Some(s);
                        pen
                    }
                    None => {
                        let s: Vec<u32> = rows.iter().map(|&r| train.s[r]).collect();
                        tc.penalty.value(&f.probs, &s, &y, 10, 10, tc.conditional)?
                    }
                }
            } else {
                Tensor::zeros((), DType::F32, &device)?
            };
            let loss = match tc.loss_form {
                train::LossForm::Sum => (&ce + (&pen * gamma)?)?,
                train::LossForm::Convex => ((&ce * (1.0 - gamma))? + (&pen * gamma)?)?,
            };
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step: step + 1,
                    value,
                });
            }
            adam.backward_step(&loss)?;
            if let (Some(b), Some(s)) = (bank.as_mut(), swap) {
                b.commit(s);
            }
            loss_sum += value;
            ce_sum += ce.to_scalar::<f32>()? as f64;
            pen_sum += pen.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        let stats = ImageEpoch {
            epoch,
            loss: loss_sum / batches as f64,
            ce: ce_sum / batches as f64,
            penalty_bits: pen_sum / batches as f64,
        };
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}

/// What an image run records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageRun {
    /// Dataset name.
    pub dataset: String,
    /// Colour bias of the training set.
    pub rho: f64,
    /// Penalty label (`none`, `per-neuron`, `joint-conditional`, ...).
    pub penalty: String,
    /// Estimate of the penalty (`bank` or `batch`).
    pub estimate: Estimate,
    /// Penalty weight.
    pub gamma: f64,
    /// Seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Width of the stochastic layer.
    pub m: usize,
    /// Training images.
    pub n_train: usize,
    /// Training images off their class's colour.
    pub off_colour_train: usize,
    /// Inference mode of the accuracies.
    pub inference: Inference,
    /// Wall-clock training seconds (null with `--reproducible`).
    #[serde(with = "nullable")]
    pub train_seconds: f64,
}

/// Accuracy on the two test sets (mean over draws in sample mode).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageTask {
    /// Test images with uniform colours: what a network that learned the shape gets right.
    pub accuracy_unbiased: f64,
    /// Test images coloured like the training set.
    pub accuracy_biased: f64,
}

/// Information about the colour in the layer, on the unbiased test set (bits).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageInformation {
    /// `sum_j I(T_j; colour)`.
    pub per_neuron_mi: f64,
    /// Joint `I(T; colour)`: exact up to `--m-max`, else Monte Carlo.
    #[serde(with = "nullable")]
    pub joint_mi: f64,
    /// Whether `joint_mi` is the exact value.
    pub joint_exact: bool,
    /// `sum_j I(T_j; colour | y)`.
    pub per_neuron_mi_conditional: f64,
    /// Joint `I(T; colour | y)` (exact; null above `--m-max`).
    #[serde(with = "nullable")]
    pub joint_mi_conditional: f64,
}

/// Colour probes on sampled codes: trained on the training images recoloured uniformly, scored on the
/// unbiased test set. Chance: AUC 0.5, accuracy 0.1.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColourProbes {
    /// Multinomial-by-one-vs-rest logistic regression: macro AUC and accuracy.
    pub logistic: ProbeScore,
    /// Random forest: macro AUC and accuracy.
    pub forest: ProbeScore,
}

/// `metrics.json` of an image model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageMetrics {
    /// The run.
    pub run: ImageRun,
    /// Accuracies.
    pub task: ImageTask,
    /// Information about the colour.
    pub information: ImageInformation,
    /// Colour probes.
    pub probes: ColourProbes,
    /// Per-epoch averages.
    pub history: Vec<ImageEpoch>,
}

/// Dense-layer inputs of a whole set, computed once (the convolutions are deterministic).
fn all_features(net: &ConvNet, set: &ImageSet, device: &Device) -> Result<Tensor> {
    let mut parts = Vec::new();
    for start in (0..set.len()).step_by(EVAL_BATCH) {
        let rows: Vec<usize> = (start..(start + EVAL_BATCH).min(set.len())).collect();
        parts.push(net.features(&set.batch(&rows, device)?)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Accuracy of `inference` (the mean over `draws` in sample mode) and one sampled code per row.
fn accuracy_and_codes<R: Rng>(
    net: &ConvNet,
    features: &Tensor,
    y: &[u8],
    inference: Inference,
    draws: usize,
    rng: &mut R,
) -> Result<(f64, Vec<f32>)> {
    let draws = if inference == Inference::Sample {
        draws
    } else {
        1
    };
    let mut acc = 0.0;
    for _ in 0..draws {
        let f = net.dense().forward(features, Mode::Infer(inference), rng)?;
        let pred: Vec<u8> = f
            .logits
            .argmax(1)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|v| v as u8)
            .collect();
        acc += accuracy(&pred, y);
    }
    Ok((acc / draws as f64, sampled_codes(net, features, rng)?))
}

/// One sampled code per row, row-major.
fn sampled_codes<R: Rng>(net: &ConvNet, features: &Tensor, rng: &mut R) -> Result<Vec<f32>> {
    Ok(net
        .dense()
        .forward(features, Mode::Infer(Inference::Sample), rng)?
        .code
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Evaluates a trained network: accuracies, information about the colour, colour probes.
pub fn evaluate(
    net: &ConvNet,
    data: &ImageData,
    opts: &EvalOptions,
    run: ImageRun,
    history: Vec<ImageEpoch>,
) -> Result<ImageMetrics> {
    let device = net.dense().device().clone();
    let mut rng = train::rng(opts.seed, streams::EVAL);
    let m = net.config().dense.code_width();
    let fu = all_features(net, &data.test_unbiased, &device)?;
    let fb = all_features(net, &data.test_biased, &device)?;
    let fp = all_features(net, &data.probe_train, &device)?;
    let (acc_u, codes_u) = accuracy_and_codes(
        net,
        &fu,
        &data.test_unbiased.y,
        opts.inference,
        opts.draws,
        &mut rng,
    )?;
    let (acc_b, _) = accuracy_and_codes(
        net,
        &fb,
        &data.test_biased.y,
        opts.inference,
        opts.draws,
        &mut rng,
    )?;
    // Only the probe set's codes are needed.
    let codes_p = sampled_codes(net, &fp, &mut rng)?;
    // Information on the unbiased test set, from p.
    let t = &data.test_unbiased;
    let p = net
        .dense()
        .forward(&fu, Mode::Infer(Inference::Prob), &mut rng)?
        .probs
        .to_dtype(DType::F64)?;
    let groups = mi::group_onehot(&t.s, 10, &device)?;
    let labels: Vec<u32> = t.y.iter().map(|&v| v as u32).collect();
    let scalar = |v: Tensor| -> Result<f64> { Ok(v.to_scalar::<f64>()?) };
    let exact = m <= opts.m_max;
    let (joint, joint_cond) = if exact {
        (
            scalar(mi::joint_mi_exact(&p, &groups)?)?,
            scalar(mi::conditional(
                mi::joint_mi_exact,
                &p,
                &groups,
                &labels,
                10,
            )?)?,
        )
    } else {
        let host: Vec<f64> = p.flatten_all()?.to_vec1()?;
        let est = mi::joint_mi_monte_carlo(&host, m, &t.s, 10, opts.mc_samples, &mut rng)?;
        (est.mean, f64::NAN)
    };
    let information = ImageInformation {
        per_neuron_mi: scalar(mi::per_neuron_mi(&p, &groups)?)?,
        joint_mi: joint,
        joint_exact: exact,
        per_neuron_mi_conditional: scalar(mi::conditional(
            mi::per_neuron_mi,
            &p,
            &groups,
            &labels,
            10,
        )?)?,
        joint_mi_conditional: joint_cond,
    };
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (xp, xu) = (to64(&codes_p), to64(&codes_u));
    let train_repr = Repr {
        x: &xp,
        d: m,
        s: &data.probe_train.s,
    };
    let test_repr = Repr {
        x: &xu,
        d: m,
        s: &t.s,
    };
    let probes = ColourProbes {
        logistic: probes::logreg_probe(train_repr, test_repr, 10),
        forest: probes::forest_probe(train_repr, test_repr, 10, opts.forest_trees, opts.seed),
    };
    Ok(ImageMetrics {
        run,
        task: ImageTask {
            accuracy_unbiased: acc_u,
            accuracy_biased: acc_b,
        },
        information,
        probes,
        history,
    })
}

/// Sampled codes (or `p`, or thresholded `p`) of the MI layer for every image of `set`, row-major.
pub fn encode(net: &ConvNet, set: &ImageSet, inference: Inference, seed: u64) -> Result<Vec<f32>> {
    let device = net.dense().device().clone();
    let features = all_features(net, set, &device)?;
    let mut rng = train::rng(seed, streams::EVAL);
    Ok(net
        .dense()
        .forward(&features, Mode::Infer(inference), &mut rng)?
        .code
        .flatten_all()?
        .to_vec1()?)
}

/// CSV of image codes: `row,label,colour,t0..` (`p0..` for probabilities).
pub fn codes_csv(codes: &[f32], m: usize, set: &ImageSet, inference: Inference) -> Vec<u8> {
    let prob = inference == Inference::Prob;
    let mut out = String::from("row,label,colour");
    for j in 0..m {
        out += &format!(",{}{j}", if prob { "p" } else { "t" });
    }
    out.push('\n');
    for i in 0..set.len() {
        out += &format!("{i},{},{}", set.y[i], set.s[i]);
        for v in &codes[i * m..(i + 1) * m] {
            if prob {
                out += &format!(",{v}");
            } else {
                out += if *v > 0.5 { ",1" } else { ",0" };
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Version of the image `config.json` layout.
pub const FORMAT_VERSION: u32 = 1;

/// `config.json` of an image model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageSavedConfig {
    /// Always `image`: tells image model directories from tabular ones.
    pub kind: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// fairbits version that wrote it.
    pub fairbits_version: String,
    /// Git commit of that build.
    pub git_commit: String,
    /// Architecture.
    pub model: ConvConfig,
    /// Training options (the penalty's estimate among them).
    pub train: TrainConfig,
    /// Images and colouring.
    pub data: ImageSpec,
    /// Evaluation options.
    pub eval: EvalOptions,
}

impl ImageSavedConfig {
    /// A config stamped with this build.
    pub fn new(model: ConvConfig, train: TrainConfig, data: ImageSpec, eval: EvalOptions) -> Self {
        ImageSavedConfig {
            kind: "image".into(),
            format_version: FORMAT_VERSION,
            fairbits_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: crate::store::GIT_COMMIT.into(),
            model,
            train,
            data,
            eval,
        }
    }
}

/// True when `dir/config.json` describes an image model.
pub fn is_image_model(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some("image"))
}

/// Saves weights, config and metrics into `dir` (each file written atomically).
pub fn save(
    dir: &Path,
    net: &ConvNet,
    config: &ImageSavedConfig,
    metrics: &ImageMetrics,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    crate::store::write_weights(dir, &net.tensors())?;
    crate::store::write_json(&dir.join("config.json"), config)?;
    crate::store::write_json(&dir.join("metrics.json"), metrics)
}

/// Loads an image model directory.
pub fn load_model(dir: &Path, device: &Device) -> Result<(ConvNet, ImageSavedConfig)> {
    let bad = |reason: String| Error::ModelDir {
        dir: dir.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(dir.join("config.json"))
        .map_err(|e| bad(format!("cannot read config.json: {e}")))?;
    let config: ImageSavedConfig = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "config.json does not describe a fairbits image model: {e}"
        ))
    })?;
    if config.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "config.json has format_version {}, this fairbits reads {FORMAT_VERSION}",
            config.format_version
        )));
    }
    config.model.validate()?;
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), device)
        .map_err(|e| bad(format!("model.safetensors cannot be read: {e}")))?;
    let net = ConvNet::new(&config.model, device, &mut train::rng(0, streams::INIT))?;
    net.set_tensors(&tensors, dir)?;
    Ok((net, config))
}

/// Everything of one image training run.
#[derive(Clone, Debug)]
pub struct ImageJob {
    /// Images.
    pub data: ImageSpec,
    /// Architecture (image size filled in from the data).
    pub channels: Vec<usize>,
    /// Kernel size.
    pub kernel: usize,
    /// Dense layers (`n_inputs`, `n_outputs` filled in).
    pub dense: ModelConfig,
    /// Training (the penalty's estimate among them).
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalOptions,
    /// Leave the wall-clock time out (null) for byte-identical metrics.
    pub reproducible: bool,
}

/// Loads the data, trains, evaluates; returns the network, its config and metrics.
pub fn run_job(
    job: &ImageJob,
    on_epoch: impl FnMut(&ImageEpoch),
) -> Result<(ConvNet, ImageSavedConfig, ImageMetrics)> {
    let data = load(&job.data)?;
    run_job_on(job, &data, on_epoch)
}

/// As [`run_job`] on already loaded data (sweeps load each colouring once).
pub fn run_job_on(
    job: &ImageJob,
    data: &ImageData,
    on_epoch: impl FnMut(&ImageEpoch),
) -> Result<(ConvNet, ImageSavedConfig, ImageMetrics)> {
    let device = crate::model::default_device()?;
    let cfg = ConvConfig::new(
        (data.train.rows, data.train.cols),
        job.channels.clone(),
        job.kernel,
        job.dense.clone(),
    )?;
    let net = ConvNet::new(
        &cfg,
        &device,
        &mut train::rng(job.train.seed, streams::INIT),
    )?;
    let start = Instant::now();
    let history = train_images(&net, &data.train, &job.train, on_epoch)?;
    let seconds = start.elapsed().as_secs_f64();
    let run = ImageRun {
        dataset: job.data.dataset.name().into(),
        rho: job.data.rho,
        penalty: job
            .train
            .penalty_label(cfg.dense.is_stochastic() && job.train.gamma > 0.0),
        estimate: job.train.estimate,
        gamma: job.train.gamma,
        seed: job.train.seed,
        epochs: job.train.epochs,
        m: cfg.dense.code_width(),
        n_train: data.train.len(),
        off_colour_train: data.train.off_colour(),
        inference: job.eval.inference,
        train_seconds: if job.reproducible { f64::NAN } else { seconds },
    };
    let metrics = evaluate(&net, data, &job.eval, run, history)?;
    let config = ImageSavedConfig::new(cfg, job.train.clone(), job.data.clone(), job.eval.clone());
    Ok((net, config, metrics))
}

/// A readable table of image metrics.
pub fn table(m: &ImageMetrics) -> String {
    let r = &m.run;
    let i = &m.information;
    let f = |v: f64| {
        if v.is_nan() {
            "n/a".to_string()
        } else {
            format!("{v:.4}")
        }
    };
    format!(
        "{} rho {} | penalty {} ({}) gamma {} | seed {} | m {} | {} training images, {} off their colour\n\
         accuracy (unbiased test)   {:.4}\n\
         accuracy (biased test)     {:.4}\n\
         I(T; colour)               per-neuron {}  joint {}{}\n\
         I(T; colour | y)           per-neuron {}  joint {}\n\
         colour probe, logistic     AUC {:.4}  accuracy {:.4} (chance 0.1)\n\
         colour probe, forest       AUC {:.4}  accuracy {:.4}\n\
         training                   {} epochs{}\n",
        r.dataset,
        r.rho,
        r.penalty,
        match r.estimate {
            Estimate::Bank => "bank",
            Estimate::Batch => "batch",
        },
        r.gamma,
        r.seed,
        r.m,
        r.n_train,
        r.off_colour_train,
        m.task.accuracy_unbiased,
        m.task.accuracy_biased,
        f(i.per_neuron_mi),
        f(i.joint_mi),
        if i.joint_exact { "" } else { " (Monte Carlo)" },
        f(i.per_neuron_mi_conditional),
        f(i.joint_mi_conditional),
        m.probes.logistic.auc,
        m.probes.logistic.accuracy,
        m.probes.forest.auc,
        m.probes.forest.accuracy,
        r.epochs,
        if r.train_seconds.is_nan() {
            String::new()
        } else {
            format!(", {:.1} s", r.train_seconds)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_split_is_stratified_and_colours_follow_rho() {
        let spec = ImageSpec {
            dataset: ImageDataset::BiasedMnist,
            rho: 0.95,
            mnist_dir: None,
            train_size: None,
            seed: 3,
        };
        let d = load(&spec).unwrap();
        assert_eq!((d.train.len(), d.test_unbiased.len()), (4000, 1000));
        for c in 0..10u8 {
            assert_eq!(d.train.y.iter().filter(|&&y| y == c).count(), 400);
            assert_eq!(d.test_biased.y.iter().filter(|&&y| y == c).count(), 100);
        }
        // Off-colour share: (1 - rho) * 9/10 = 4.5% in expectation (sd about 0.33% on 4,000 images).
        let off = d.train.off_colour() as f64 / 4000.0;
        assert!((off - 0.045).abs() < 0.015, "{off}");
        let off = d.test_unbiased.off_colour() as f64 / 1000.0;
        assert!((off - 0.9).abs() < 0.05, "{off}");
        // The probes' copy of the training images has the same pixels' shapes under other colours.
        assert_eq!(d.probe_train.y, d.train.y);
        let sub = load(&ImageSpec {
            train_size: Some(500),
            ..spec
        })
        .unwrap();
        assert_eq!(sub.train.len(), 500);
        assert!((0..10u8).all(|c| sub.train.y.iter().filter(|&&y| y == c).count() == 50));
    }

    #[test]
    fn conv_shapes_are_checked() {
        let dense = ModelConfig {
            hidden: vec![8, 4],
            ..ModelConfig::default()
        };
        let cfg = ConvConfig::new((28, 28), vec![8, 16], 5, dense.clone()).unwrap();
        assert_eq!(cfg.feature_shape().unwrap(), (16, 4, 4));
        assert_eq!((cfg.dense.n_inputs, cfg.dense.n_outputs), (256, 10));
        assert!(ConvConfig::new((12, 12), vec![8, 16], 5, dense.clone()).is_err());
        assert!(ConvConfig::new((28, 28), vec![], 5, dense).is_err());
        let net = ConvNet::new(&cfg, &Device::Cpu, &mut train::rng(0, 2)).unwrap();
        let x = Tensor::zeros((3, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let f = net
            .forward(&x, Mode::Infer(Inference::Sample), &mut train::rng(0, 6))
            .unwrap();
        assert_eq!(f.logits.dims(), &[3, 10]);
        assert_eq!(f.code.dims(), &[3, 4]);
    }
}

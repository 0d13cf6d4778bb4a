//! The network of docs/design.md, section 1: `x -> [convolutions] -> full-precision layers -> stochastic
//! binary layer T -> head -> y`.
//!
//! A stochastic neuron computes `a = tanh(z)` (or `a = z`), `p = sigmoid(tau * a)` and emits `t = 1[p > u]`
//! with `u ~ U[0, 1)`. Training back-propagates straight through: `out = a + stop_grad(t - a)` (identity
//! estimator, the authors') or `out = p + stop_grad(t - p)` (sigmoid estimator, `dt/da := tau p (1 - p)`).
//! At inference the layer emits a fresh sample, `p`, or `1[p >= 0.5]`.
//!
//! [`ModelConfig`] is the architecture (saved beside the weights), [`Net`] the network, [`conv`] the image
//! encoder's convolution, [`init`] the one weight initialiser.

pub(crate) mod conv;
pub(crate) mod init;
mod net;

pub use net::{Forward, Net, Prefix, PrefixPass};

use crate::error::{Error, Result};
use crate::schema::Param;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Pre-activation of a stochastic neuron.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreActivation {
    /// `a = tanh(z)`: keeps `p` inside `[sigmoid(-tau), sigmoid(tau)]`, so every code stays noisy.
    Tanh,
    /// `a = z`.
    Linear,
}
named_choices!(PreActivation, PreActivation, { Tanh => "tanh", Linear => "linear" });

/// Gradient estimator of the binary sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// `dt/da := 1`.
    Identity,
    /// `dt/da := tau p (1 - p)`.
    Sigmoid,
    /// No sample in training: the task loss is its exact expectation over the `2^m` codes,
    /// `sum_t pi_i(t) CE(head(t), y_i)`, whose gradient at `p` (and the penalty's) passes straight through
    /// to `a` (`dp/da := 1`; docs/design.md, section 1b). The code layer must be the only stochastic layer
    /// and the last hidden layer, `m <= EXACT_M_MAX`, with the binary head; implemented by the fused CPU
    /// step.
    Exact,
}
named_choices!(Estimator, Estimator, { Identity => "identity", Sigmoid => "sigmoid", Exact => "exact" });

/// Widest code layer the exact estimator enumerates (`2^m` head evaluations per row and step).
pub const EXACT_M_MAX: usize = 10;

/// Activation of full-precision hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear unit.
    Relu,
}
named_choices!(Activation, Activation, { Tanh => "tanh", Relu => "relu" });

/// What a stochastic layer emits at inference (docs/design.md, section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inference {
    /// A fresh binary sample per row: the certified mode.
    Sample,
    /// The probabilities `p`.
    Prob,
    /// The deterministic code `1[p >= 0.5]`.
    Threshold,
}
named_choices!(Inference, Inference, { Sample => "sample", Prob => "prob", Threshold => "threshold" });

/// Training (straight-through samples) or inference in a chosen mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Sampled codes with straight-through gradients.
    Train,
    /// Inference.
    Infer(Inference),
}

/// The convolutional encoder of an image model: each layer a `k x k` convolution (no padding), ReLU and
/// 2 x 2 max pooling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayers {
    /// Image height and width (3 colour channels).
    pub image: (usize, usize),
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Kernel size.
    pub kernel: usize,
}

impl ConvLayers {
    /// `(channels, height, width)` after the convolutions and poolings.
    pub fn feature_shape(&self) -> Result<(usize, usize, usize)> {
        crate::schema::check::channels(&self.channels)?;
        crate::schema::check::kernel(&self.kernel)?;
        let (mut h, mut w) = self.image;
        for _ in &self.channels {
            if h < self.kernel + 1 || w < self.kernel + 1 {
                return Err(Error::param(
                    Param::Kernel,
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

    /// Width of the flattened features the dense layers read.
    pub fn feature_width(&self) -> Result<usize> {
        let (c, h, w) = self.feature_shape()?;
        Ok(c * h * w)
    }
}

/// The architecture: everything needed to rebuild the network around saved weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    /// Input width of the dense layers (for an image model: the flattened convolutional features).
    pub n_inputs: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Indices (0-based, into `hidden`) of the stochastic layers; the MI is taken on the last one. Empty:
    /// a full-precision network (the `mlp` baseline), whose representation is its last hidden layer.
    pub stochastic: Vec<usize>,
    /// Pre-activation of stochastic neurons.
    pub pre_activation: PreActivation,
    /// Temperature `tau`.
    pub temperature: f64,
    /// Straight-through estimator.
    pub estimator: Estimator,
    /// Activation of full-precision layers.
    pub activation: Activation,
    /// Width of the head: 1 (a binary task: one logit, binary cross-entropy) or the number of classes
    /// (softmax cross-entropy).
    #[serde(default = "one")]
    pub n_outputs: usize,
    /// A regression head (docs/design.md, section 5c): the one output is a standardised number, fitted by
    /// squared error, not a logit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regression: bool,
    /// Convolutions in front of the dense layers (image models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvLayers>,
}

fn one() -> usize {
    1
}

impl ModelConfig {
    /// Checks widths, indices, temperature and (for an image model) that the convolutions fit.
    pub fn validate(&self) -> Result<()> {
        use crate::schema::check;
        check::hidden(&self.hidden)?;
        if self.stochastic.iter().any(|&i| i >= self.hidden.len()) {
            let why = format!("each index must be below the number of hidden layers ({})", self.hidden.len());
            return Err(Error::param(Param::Stochastic, format!("{:?}", self.stochastic), why));
        }
        check::temperature(&self.temperature)?;
        let shape =
            |expected: String, got: String| Error::Shape { what: "the model's configuration".into(), expected, got };
        if self.n_outputs == 0 {
            return Err(shape("a head with at least one output".into(), "none".into()));
        }
        if let Some(conv) = &self.conv {
            let width = conv.feature_width()?;
            if self.n_inputs != width {
                return Err(shape(
                    format!("{width} features from the convolutions"),
                    format!("{} inputs", self.n_inputs),
                ));
            }
        }
        if self.n_inputs == 0 {
            return Err(shape("at least one input".into(), "none".into()));
        }
        if self.estimator == Estimator::Exact {
            let last = self.hidden.len() - 1;
            if self.stochastic != [last] || self.n_outputs != 1 || self.conv.is_some() || self.regression {
                return Err(Error::param(
                    crate::schema::Param::Estimator,
                    "exact",
                    "the exact expected task loss needs one stochastic layer, the last hidden layer, feeding \
                     the binary head of a table model",
                ));
            }
            if self.hidden[last] > EXACT_M_MAX {
                return Err(Error::param(
                    crate::schema::Param::Estimator,
                    "exact",
                    format!(
                        "the exact expected task loss enumerates 2^m codes and allows m <= {EXACT_M_MAX}; the \
                         stochastic layer has m = {}",
                        self.hidden[last]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Index of the representation layer: the last stochastic layer (where the MI is taken), or the last
    /// hidden layer of a full-precision network.
    pub fn mi_layer(&self) -> usize {
        self.stochastic.iter().copied().max().unwrap_or(self.hidden.len() - 1)
    }

    /// True when the representation layer is stochastic (so its MI and certificate are defined).
    pub fn is_stochastic(&self) -> bool {
        !self.stochastic.is_empty()
    }

    /// Width `m` of the representation layer.
    pub fn code_width(&self) -> usize {
        self.hidden[self.mi_layer()]
    }

    /// The number of task classes the head predicts (2 for the binary head).
    pub fn n_classes(&self) -> usize {
        if self.n_outputs == 1 {
            2
        } else {
            self.n_outputs
        }
    }

    /// Number of weights and biases.
    pub fn n_weights(&self) -> usize {
        let mut total = 0;
        if let Some(conv) = &self.conv {
            let mut c_in = 3;
            for &c in &conv.channels {
                total += c * (c_in * conv.kernel * conv.kernel + 1);
                c_in = c;
            }
        }
        let mut dims = vec![self.n_inputs];
        dims.extend(&self.hidden);
        dims.push(self.n_outputs);
        total + dims.windows(2).map(|w| (w[0] + 1) * w[1]).sum::<usize>()
    }
}

/// The device networks run on: CPU, or the first CUDA GPU when built with `--features cuda` and one is
/// present.
pub fn default_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        return Ok(Device::cuda_if_available(0)?);
    }
    #[allow(unreachable_code)]
    Ok(Device::Cpu)
}

/// Numerically stable binary cross-entropy with logits, mean over rows:
/// `max(x, 0) - x y + log(1 + exp(-|x|))` (finite at any logit, unlike the naive form).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let pos = logits.relu()?;
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((pos - (logits * targets)?)? + soft)?.mean_all()?)
}

/// The task loss of a batch: binary cross-entropy for one logit per row, softmax cross-entropy (through
/// log-softmax: finite at any logit) for one logit per class; with regression targets `t` (standardised),
/// the mean squared error of the one output per row (docs/design.md, section 5c).
pub fn task_loss(logits: &Tensor, y: &[u8], t: Option<&[f32]>) -> Result<Tensor> {
    let device = logits.device();
    if let Some(t) = t {
        let t = Tensor::from_slice(t, t.len(), device)?.to_dtype(logits.dtype())?;
        return Ok((logits - t)?.sqr()?.mean_all()?);
    }
    if logits.rank() == 1 {
        let t: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        bce_with_logits(logits, &Tensor::from_vec(t, y.len(), device)?)
    } else {
        let t: Vec<u32> = y.iter().map(|&v| v as u32).collect();
        Ok(candle_nn::loss::cross_entropy(logits, &Tensor::from_vec(t, y.len(), device)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_is_stable_at_large_logits() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[100f32, -100., 100., -100., 0.], &dev).unwrap();
        let y = Tensor::new(&[1f32, 0., 0., 1., 1.], &dev).unwrap();
        let per_row = |i: usize| {
            bce_with_logits(&x.narrow(0, i, 1).unwrap(), &y.narrow(0, i, 1).unwrap())
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(per_row(0).abs() < 1e-6);
        assert!(per_row(1).abs() < 1e-6);
        assert!((per_row(2) - 100.0).abs() < 1e-4);
        assert!((per_row(3) - 100.0).abs() < 1e-4);
        assert!((per_row(4) - std::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn choices_parse_their_names_and_refuse_others() {
        for name in Inference::NAMES {
            assert_eq!(name.parse::<Inference>().unwrap().name(), *name);
        }
        let e = "median".parse::<Inference>().unwrap_err();
        assert!(matches!(&e, Error::InvalidParam { param: Param::Inference, .. }));
        assert!(e.to_string().contains("sample, prob, threshold"), "{e}");
    }

    #[test]
    fn conv_shapes_are_checked() {
        let conv = |image, channels: Vec<usize>, kernel| ConvLayers { image, channels, kernel };
        assert_eq!(conv((28, 28), vec![8, 16], 5).feature_shape().unwrap(), (16, 4, 4));
        assert!(conv((12, 12), vec![8, 16], 5).feature_shape().is_err());
        assert!(conv((28, 28), vec![], 5).feature_shape().is_err());
        let cfg = ModelConfig { n_inputs: 255, conv: Some(conv((28, 28), vec![8, 16], 5)), ..Default::default() };
        assert!(cfg.validate().is_err());
    }
}

//! The network of DESIGN section 1: `x -> full-precision layers -> stochastic binary layer T -> head -> y`.
//!
//! A stochastic neuron computes `a = tanh(z)` (or `a = z`), `p = sigmoid(tau * a)` and emits `t = 1[p > u]`
//! with `u ~ U[0, 1)`. Training back-propagates straight through: `out = a + stop_grad(t - a)` (identity
//! estimator, the authors') or `out = p + stop_grad(t - p)` (sigmoid estimator, `dt/da := tau p (1 - p)`).
//! At inference the layer emits a fresh sample, `p`, or `1[p >= 0.5]`.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Pre-activation of a stochastic neuron.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PreActivation {
    /// `a = tanh(z)`: keeps `p` inside `[sigmoid(-tau), sigmoid(tau)]`, so every code stays noisy.
    Tanh,
    /// `a = z`.
    Linear,
}

/// Gradient estimator of the binary sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// `dt/da := 1`.
    Identity,
    /// `dt/da := tau p (1 - p)`.
    Sigmoid,
}

/// Activation of full-precision hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear unit.
    Relu,
}

/// What a stochastic layer emits at inference (DESIGN section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Inference {
    /// A fresh binary sample per row: the certified mode.
    Sample,
    /// The probabilities `p`.
    Prob,
    /// The deterministic code `1[p >= 0.5]`.
    Threshold,
}

impl Inference {
    /// The name used on the command line and in the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Inference::Sample => "sample",
            Inference::Prob => "prob",
            Inference::Threshold => "threshold",
        }
    }
}

/// Training (straight-through samples) or inference in a chosen mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Sampled codes with straight-through gradients.
    Train,
    /// Inference.
    Infer(Inference),
}

/// The architecture: everything needed to rebuild the network around saved weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    /// Input width.
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
    /// (softmax cross-entropy; the image models).
    #[serde(default = "one")]
    pub n_outputs: usize,
}

fn one() -> usize {
    1
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            n_inputs: 0,
            hidden: vec![64, 32],
            stochastic: vec![1],
            pre_activation: PreActivation::Tanh,
            temperature: 6.0,
            estimator: Estimator::Identity,
            activation: Activation::Tanh,
            n_outputs: 1,
        }
    }
}

impl ModelConfig {
    /// Checks widths, indices and temperature.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::option(
                "--hidden",
                format!("{:?}", self.hidden),
                "needs at least one layer, all widths > 0",
            ));
        }
        if self.stochastic.iter().any(|&i| i >= self.hidden.len()) {
            return Err(Error::option(
                "--stochastic",
                format!("{:?}", self.stochastic),
                format!(
                    "each index must be below the number of hidden layers ({})",
                    self.hidden.len()
                ),
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::option(
                "--temperature",
                self.temperature,
                "must be > 0",
            ));
        }
        if self.n_outputs == 0 {
            return Err(Error::option("n_outputs", 0, "the head needs an output"));
        }
        if self.n_inputs == 0 {
            return Err(Error::option("n_inputs", 0, "the data has no features"));
        }
        Ok(())
    }

    /// Index of the representation layer: the last stochastic layer (where the MI is taken), or the last
    /// hidden layer of a full-precision network.
    pub fn mi_layer(&self) -> usize {
        self.stochastic
            .iter()
            .copied()
            .max()
            .unwrap_or(self.hidden.len() - 1)
    }

    /// True when the representation layer is stochastic (so its MI and certificate are defined).
    pub fn is_stochastic(&self) -> bool {
        !self.stochastic.is_empty()
    }

    /// Width `m` of the representation layer.
    pub fn code_width(&self) -> usize {
        self.hidden[self.mi_layer()]
    }
}

/// A dense layer `y = x W + b`, `W: [in, out]`.
struct Dense {
    w: Var,
    b: Var,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(self.w.as_tensor())?
            .broadcast_add(self.b.as_tensor())?)
    }
}

/// What one forward pass returns.
#[derive(Debug)]
pub struct Forward {
    /// Head logits, `[n]` (`[n, classes]` for a multi-class head).
    pub logits: Tensor,
    /// Probabilities `p` of the MI layer, `[n, m]` (a full-precision network: its activations).
    pub probs: Tensor,
    /// What the representation layer emitted (sample, `p` or threshold), `[n, m]`, detached.
    pub code: Tensor,
    /// The same, attached to the graph (straight-through in training): what an adversary reads.
    pub repr: Tensor,
}

/// The stochastically quantized network.
pub struct SqNet {
    cfg: ModelConfig,
    layers: Vec<Dense>,
    head: Dense,
    device: Device,
}

impl SqNet {
    /// A fresh network: Glorot-uniform weights, zero biases (as Keras, which the authors used).
    pub fn new<R: Rng>(cfg: &ModelConfig, device: &Device, rng: &mut R) -> Result<Self> {
        cfg.validate()?;
        let mut dims = vec![cfg.n_inputs];
        dims.extend(&cfg.hidden);
        dims.push(cfg.n_outputs);
        let mut dense: Vec<Dense> = Vec::with_capacity(dims.len() - 1);
        for w in dims.windows(2) {
            let (fan_in, fan_out) = (w[0], w[1]);
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            let values: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-limit..limit))
                .collect();
            dense.push(Dense {
                w: Var::from_tensor(&Tensor::from_vec(values, (fan_in, fan_out), device)?)?,
                b: Var::zeros(fan_out, DType::F32, device)?,
            });
        }
        let head = dense.pop().unwrap();
        Ok(SqNet {
            cfg: cfg.clone(),
            layers: dense,
            head,
            device: device.clone(),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Trainable variables, in a fixed order.
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .chain(std::iter::once(&self.head))
            .flat_map(|d| [d.w.clone(), d.b.clone()])
            .collect()
    }

    fn named(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (i, d) in self.layers.iter().enumerate() {
            out.push((format!("hidden.{i}.weight"), &d.w));
            out.push((format!("hidden.{i}.bias"), &d.b));
        }
        out.push(("head.weight".into(), &self.head.w));
        out.push(("head.bias".into(), &self.head.b));
        out
    }

    /// The weights by name (`hidden.{i}.weight` as `[in, out]`, `hidden.{i}.bias`, `head.*`).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.named()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect()
    }

    /// Overwrites the weights from named tensors, checking that every one is present with its shape.
    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (name, var) in self.named() {
            set_var(var, tensors, &name, origin)?;
        }
        Ok(())
    }

    /// One forward pass. `rng` draws the uniforms of every stochastic layer (training and `sample` mode).
    pub fn forward<R: Rng>(&self, x: &Tensor, mode: Mode, rng: &mut R) -> Result<Forward> {
        let mi_layer = self.cfg.mi_layer();
        let mut h = x.clone();
        let mut mi_out = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let z = layer.forward(&h)?;
            if self.cfg.stochastic.contains(&i) {
                let a = match self.cfg.pre_activation {
                    PreActivation::Tanh => z.tanh()?,
                    PreActivation::Linear => z,
                };
                let p = candle_nn::ops::sigmoid(&(&a * self.cfg.temperature)?)?;
                let out = match mode {
                    Mode::Train => {
                        let t = self.sample(&p, rng)?;
                        let base = match self.cfg.estimator {
                            Estimator::Identity => &a,
                            Estimator::Sigmoid => &p,
                        };
                        (base + (t - base)?.detach())?
                    }
                    Mode::Infer(Inference::Sample) => self.sample(&p, rng)?,
                    Mode::Infer(Inference::Prob) => p.clone(),
                    Mode::Infer(Inference::Threshold) => p.ge(0.5)?.to_dtype(DType::F32)?,
                };
                if i == mi_layer {
                    mi_out = Some((p, out.clone()));
                }
                h = out;
            } else {
                h = match self.cfg.activation {
                    Activation::Tanh => z.tanh()?,
                    Activation::Relu => z.relu()?,
                };
                if i == mi_layer {
                    mi_out = Some((h.clone(), h.clone()));
                }
            }
        }
        let logits = self.head.forward(&h)?;
        let logits = if self.cfg.n_outputs == 1 {
            logits.squeeze(1)?
        } else {
            logits
        };
        let (probs, repr) = mi_out.expect("validated: the MI layer is a hidden layer");
        Ok(Forward {
            logits,
            probs,
            code: repr.detach(),
            repr,
        })
    }

    /// `t = 1[p > u]`, `u ~ U[0, 1)` drawn from `rng` (on the host, so that a seed fixes it on any device).
    fn sample<R: Rng>(&self, p: &Tensor, rng: &mut R) -> Result<Tensor> {
        let u: Vec<f32> = (0..p.elem_count()).map(|_| rng.random::<f32>()).collect();
        let u = Tensor::from_vec(u, p.shape(), &self.device)?;
        Ok(p.gt(&u)?.to_dtype(DType::F32)?)
    }
}

/// Sets `var` from `tensors[name]`, which must exist with the variable's shape (a model directory's
/// weights file, `origin`, is named in the error).
pub(crate) fn set_var(
    var: &Var,
    tensors: &HashMap<String, Tensor>,
    name: &str,
    origin: &Path,
) -> Result<()> {
    let t = tensors.get(name).ok_or_else(|| Error::ModelDir {
        dir: origin.to_path_buf(),
        reason: format!("the weights file has no tensor '{name}'"),
    })?;
    if t.dims() != var.dims() {
        return Err(Error::ModelDir {
            dir: origin.to_path_buf(),
            reason: format!(
                "tensor '{name}' has shape {:?} but config.json implies {:?}",
                t.dims(),
                var.dims()
            ),
        });
    }
    var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
    fn threshold_and_prob_modes_agree_with_p() {
        let dev = Device::Cpu;
        let cfg = ModelConfig {
            n_inputs: 3,
            hidden: vec![4, 5],
            ..Default::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let net = SqNet::new(&cfg, &dev, &mut rng).unwrap();
        let x = Tensor::randn(0f32, 1., (7, 3), &dev).unwrap();
        let f = net
            .forward(&x, Mode::Infer(Inference::Prob), &mut rng)
            .unwrap();
        assert_eq!(f.code.dims(), &[7, 5]);
        let p = f.probs.to_vec2::<f32>().unwrap();
        let lo = 1.0 / (1.0 + 6f32.exp());
        assert!(p
            .iter()
            .flatten()
            .all(|&v| v >= lo - 1e-6 && v <= 1.0 - lo + 1e-6));
        let t = net
            .forward(&x, Mode::Infer(Inference::Threshold), &mut rng)
            .unwrap()
            .code
            .to_vec2::<f32>()
            .unwrap();
        for (pr, tr) in p.iter().zip(&t) {
            for (a, b) in pr.iter().zip(tr) {
                assert_eq!(*b, if *a >= 0.5 { 1.0 } else { 0.0 });
            }
        }
        let s = net
            .forward(&x, Mode::Infer(Inference::Sample), &mut rng)
            .unwrap()
            .code
            .to_vec2::<f32>()
            .unwrap();
        assert!(s.iter().flatten().all(|&v| v == 0.0 || v == 1.0));
    }
}

//! [`Net`]: optional convolutions, dense layers with stochastic binary layers, and a head.

use super::init::{glorot, zeros};
use super::{conv, Activation, Estimator, Inference, Mode, ModelConfig, PreActivation};
use crate::data::Dataset;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Rows per chunk when the convolutional features of a whole set are computed (memory, not results:
/// a row's features do not depend on the chunk it is computed in).
const FEATURE_CHUNK: usize = 500;

/// Rows per block of the passes from a [`Prefix`] (memory and parallelism, not results: a row's numbers
/// do not depend on the block it is computed in; tested).
const PASS_BLOCK: usize = 8192;

/// `0..n` cut into blocks of `size` rows, the remainder joined to the last block: no block is shorter than
/// `size` unless `n` is, because a matrix product of a few rows may take another kernel, whose sums are
/// not bit for bit those of the whole product.
fn blocks(n: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    let count = (n / size.max(1)).max(1);
    (0..count).map(|b| b * size..if b + 1 == count { n } else { (b + 1) * size }).collect()
}

/// `v` (row-major, `width` per row) cut at the rows of [`blocks`].
fn split_rows<'a, T>(mut v: &'a mut [T], width: usize, blocks: &[std::ops::Range<usize>]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(blocks.len());
    for r in blocks {
        let (head, tail) = std::mem::take(&mut v).split_at_mut(r.len() * width);
        parts.push(head);
        v = tail;
    }
    parts
}

/// The MI layer's probabilities of a set of rows, computed once ([`Net::prefix_of`]), on the host.
pub struct Prefix {
    /// `p`, row-major, `m` per row.
    p: Vec<f32>,
    m: usize,
}

impl Prefix {
    /// `p`, row-major (`m` per row).
    pub fn probs(&self) -> &[f32] {
        &self.p
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.p.len() / self.m.max(1)
    }
}

/// One inference pass from a [`Prefix`].
pub struct PrefixPass<'a> {
    /// Head logits, `[n]` for the binary head, `[n, classes]` for a multi-class head.
    pub logits: Tensor,
    /// What the MI layer emitted (sample, `p` or threshold), row-major.
    pub code: Cow<'a, [f32]>,
}

/// A dense layer `y = x W + b`, `W: [in, out]`.
struct Dense {
    w: Var,
    b: Var,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(self.w.as_tensor())?.broadcast_add(self.b.as_tensor())?)
    }
}

/// What one forward pass returns.
#[derive(Debug)]
pub struct Forward {
    /// Head logits, `[n]` for the binary head, `[n, classes]` for a multi-class head.
    pub logits: Tensor,
    /// Probabilities `p` of the MI layer, `[n, m]` (a full-precision network: its activations).
    pub probs: Tensor,
    /// What the representation layer emitted (sample, `p` or threshold), `[n, m]`, detached.
    pub code: Tensor,
    /// The same, attached to the graph (straight-through in training): what an adversary reads.
    pub repr: Tensor,
}

/// The stochastically quantized network.
pub struct Net {
    cfg: ModelConfig,
    convs: Vec<(Var, Var)>,
    layers: Vec<Dense>,
    head: Dense,
    device: Device,
}

impl Net {
    /// A fresh network: Glorot-uniform kernels and weights, zero biases; convolutions first, then the
    /// dense layers in order, all from `rng`.
    pub fn new<R: Rng>(cfg: &ModelConfig, device: &Device, rng: &mut R) -> Result<Self> {
        cfg.validate()?;
        let mut convs = Vec::new();
        if let Some(c) = &cfg.conv {
            let k = c.kernel;
            let mut c_in = 3;
            for &c_out in &c.channels {
                let w = glorot(c_in * k * k, c_out * k * k, (c_out, c_in, k, k), device, rng)?;
                convs.push((w, zeros(c_out, device)?));
                c_in = c_out;
            }
        }
        let mut dims = vec![cfg.n_inputs];
        dims.extend(&cfg.hidden);
        dims.push(cfg.n_outputs);
        let mut dense: Vec<Dense> = Vec::with_capacity(dims.len() - 1);
        for w in dims.windows(2) {
            let (fan_in, fan_out) = (w[0], w[1]);
            dense.push(Dense {
                w: glorot(fan_in, fan_out, (fan_in, fan_out), device, rng)?,
                b: zeros(fan_out, device)?,
            });
        }
        let head = dense.pop().unwrap();
        Ok(Net { cfg: cfg.clone(), convs, layers: dense, head, device: device.clone() })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Trainable variables in a fixed order: convolutions, dense layers, head (weight before bias).
    pub fn vars(&self) -> Vec<Var> {
        self.convs
            .iter()
            .map(|(w, b)| (w, b))
            .chain(self.layers.iter().chain(std::iter::once(&self.head)).map(|d| (&d.w, &d.b)))
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    fn named(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (i, (w, b)) in self.convs.iter().enumerate() {
            out.push((format!("conv.{i}.weight"), w));
            out.push((format!("conv.{i}.bias"), b));
        }
        for (i, d) in self.layers.iter().enumerate() {
            out.push((format!("hidden.{i}.weight"), &d.w));
            out.push((format!("hidden.{i}.bias"), &d.b));
        }
        out.push(("head.weight".into(), &self.head.w));
        out.push(("head.bias".into(), &self.head.b));
        out
    }

    /// The weights by name (`conv.{i}.*`, `hidden.{i}.weight` as `[in, out]`, `hidden.{i}.bias`, `head.*`).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.named().into_iter().map(|(k, v)| (k, v.as_tensor().clone())).collect()
    }

    /// Overwrites the weights from named tensors, checking that every one is present with its shape and
    /// holds only finite values (`origin`, a model directory, is named in the errors).
    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (name, var) in self.named() {
            let bad = |reason: String| Error::ModelDir { dir: origin.to_path_buf(), reason };
            let t = tensors.get(&name).ok_or_else(|| bad(format!("the weights file has no tensor '{name}'")))?;
            if t.dims() != var.dims() {
                return Err(bad(format!(
                    "tensor '{name}' has shape {:?} but config.json implies {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?;
            let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "tensor '{name}' holds a non-finite weight ({v}): the model is broken (a diverged \
                     training?) and its outputs would be meaningless"
                )));
            }
            var.set(&t.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// The inputs of the dense layers: the convolutional features (`[b, n_inputs]`), or `x` itself.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        if self.convs.is_empty() {
            return Ok(x.clone());
        }
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

    /// The dense-layer inputs of every row of `set` (computed in chunks for a convolutional network).
    pub fn features_of(&self, set: &Dataset) -> Result<Tensor> {
        if self.convs.is_empty() {
            return set.inputs(&self.device);
        }
        let mut parts = Vec::new();
        for start in (0..set.n).step_by(FEATURE_CHUNK) {
            let rows: Vec<usize> = (start..(start + FEATURE_CHUNK).min(set.n)).collect();
            parts.push(self.features(&set.batch(&rows, &self.device)?)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// One forward pass from inputs.
    pub fn forward<R: Rng>(&self, x: &Tensor, mode: Mode, rng: &mut R) -> Result<Forward> {
        self.forward_features(&self.features(x)?, mode, rng)
    }

    /// One forward pass of the dense layers from [`Net::features`]. `rng` draws the uniforms of every
    /// stochastic layer (training and `sample` mode), layer by layer, row-major.
    pub fn forward_features<R: Rng>(&self, x: &Tensor, mode: Mode, rng: &mut R) -> Result<Forward> {
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
                            Estimator::Exact => {
                                return Err(crate::Error::param(
                                    crate::schema::Param::Estimator,
                                    "exact",
                                    "the exact expected task loss is trained by the fused CPU step only (a \
                                     table model on CPU, backend auto, a penalty that step implements)",
                                ))
                            }
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
                h = self.activate(&z)?;
                if i == mi_layer {
                    mi_out = Some((h.clone(), h.clone()));
                }
            }
        }
        let logits = self.head.forward(&h)?;
        let logits = if self.cfg.n_outputs == 1 { logits.squeeze(1)? } else { logits };
        let (probs, repr) = mi_out.expect("validated: the MI layer is a hidden layer");
        Ok(Forward { logits, probs, code: repr.detach(), repr })
    }

    /// The layers up to the MI layer's probabilities for every row of `set`, run once for several inference
    /// passes over the same rows; `None` unless the MI layer is the only stochastic layer (an earlier one
    /// would sample anew on every pass). Blocks of rows run in parallel, with no intermediate the size of the
    /// whole set; [`Net::forward_prefix`] then gives exactly what [`Net::forward_features`] gives.
    pub fn prefix_of(&self, set: &Dataset) -> Result<Option<Prefix>> {
        let mi = self.cfg.mi_layer();
        if self.cfg.stochastic != [mi] {
            return Ok(None);
        }
        let m = self.cfg.code_width();
        // A convolutional network's blocks are as small as its feature chunks (the feature maps are large).
        let block = if self.convs.is_empty() { PASS_BLOCK } else { FEATURE_CHUNK };
        let mut p = vec![0f32; set.n * m];
        let cuts = blocks(set.n, block);
        split_rows(&mut p, m, &cuts).into_par_iter().zip(&cuts).try_for_each(|(out, rows)| -> Result<()> {
            let x = self.features(&set.batch(&rows.clone().collect::<Vec<_>>(), &self.device)?)?;
            out.copy_from_slice(&self.mi_probs(&x)?.flatten_all()?.to_vec1::<f32>()?);
            Ok(())
        })?;
        Ok(Some(Prefix { p, m }))
    }

    /// The MI layer's `p` of the dense-layer inputs `x` when it is the only stochastic layer.
    fn mi_probs(&self, x: &Tensor) -> Result<Tensor> {
        let mi = self.cfg.mi_layer();
        let mut h = x.clone();
        for layer in &self.layers[..mi] {
            h = self.activate(&layer.forward(&h)?)?;
        }
        let z = self.layers[mi].forward(&h)?;
        let a = match self.cfg.pre_activation {
            PreActivation::Tanh => z.tanh()?,
            PreActivation::Linear => z,
        };
        Ok(candle_nn::ops::sigmoid(&(&a * self.cfg.temperature)?)?)
    }

    /// An inference pass from a [`Prefix`]: the MI layer emits its sample (`1[p > u]`, the uniforms those
    /// [`Net::forward_features`] draws from `rng`, row-major), `p` or threshold, and the rest of the network
    /// runs on it, in blocks of rows in parallel. A block's uniforms are the stretch of the stream a
    /// row-major pass reaches at its first row (one 32-bit word each), so the codes, and `rng` afterwards, are
    /// the whole pass's.
    pub fn forward_prefix<'a>(
        &self,
        prefix: &'a Prefix,
        inference: Inference,
        rng: &mut ChaCha8Rng,
    ) -> Result<PrefixPass<'a>> {
        let (p, m) = (&prefix.p, prefix.m);
        let cuts = blocks(prefix.rows(), PASS_BLOCK);
        let code: Cow<[f32]> = match inference {
            Inference::Sample => {
                let start = rng.get_word_pos();
                let mut code = vec![0f32; p.len()];
                split_rows(&mut code, m, &cuts).into_par_iter().zip(&cuts).for_each(|(out, rows)| {
                    let mut r = rng.clone();
                    r.set_word_pos(start + (rows.start * m) as u128);
                    for (t, &v) in out.iter_mut().zip(&p[rows.start * m..rows.end * m]) {
                        *t = f32::from(u8::from(v > r.random::<f32>()));
                    }
                });
                rng.set_word_pos(start + p.len() as u128);
                Cow::Owned(code)
            }
            Inference::Prob => Cow::Borrowed(p),
            Inference::Threshold => Cow::Owned(p.iter().map(|&v| f32::from(u8::from(v >= 0.5))).collect()),
        };
        let parts = cuts
            .into_par_iter()
            .map(|rows| -> Result<Tensor> {
                let mut h = Tensor::from_slice(&code[rows.start * m..rows.end * m], (rows.len(), m), &self.device)?;
                for layer in &self.layers[self.cfg.mi_layer() + 1..] {
                    h = self.activate(&layer.forward(&h)?)?;
                }
                self.head.forward(&h)
            })
            .collect::<Result<Vec<_>>>()?;
        let logits = Tensor::cat(&parts, 0)?;
        let logits = if self.cfg.n_outputs == 1 { logits.squeeze(1)? } else { logits };
        Ok(PrefixPass { logits, code })
    }

    fn activate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(match self.cfg.activation {
            Activation::Tanh => z.tanh()?,
            Activation::Relu => z.relu()?,
        })
    }

    /// `t = 1[p > u]`, `u ~ U[0, 1)` drawn from `rng` (on the host, so that a seed fixes it on any device).
    fn sample<R: Rng>(&self, p: &Tensor, rng: &mut R) -> Result<Tensor> {
        let u: Vec<f32> = (0..p.elem_count()).map(|_| rng.random::<f32>()).collect();
        let u = Tensor::from_vec(u, p.shape(), &self.device)?;
        Ok(p.gt(&u)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConvLayers;
    use rand::SeedableRng;

    #[test]
    fn threshold_and_prob_modes_agree_with_p() {
        let dev = Device::Cpu;
        let cfg = ModelConfig { n_inputs: 3, hidden: vec![4, 5], ..Default::default() };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let net = Net::new(&cfg, &dev, &mut rng).unwrap();
        let x = Tensor::randn(0f32, 1., (7, 3), &dev).unwrap();
        let f = net.forward(&x, Mode::Infer(Inference::Prob), &mut rng).unwrap();
        assert_eq!(f.code.dims(), &[7, 5]);
        let p = f.probs.to_vec2::<f32>().unwrap();
        let lo = 1.0 / (1.0 + 6f32.exp());
        assert!(p.iter().flatten().all(|&v| v >= lo - 1e-6 && v <= 1.0 - lo + 1e-6));
        let t = net.forward(&x, Mode::Infer(Inference::Threshold), &mut rng).unwrap().code.to_vec2::<f32>().unwrap();
        for (pr, tr) in p.iter().zip(&t) {
            for (a, b) in pr.iter().zip(tr) {
                assert_eq!(*b, if *a >= 0.5 { 1.0 } else { 0.0 });
            }
        }
        let s = net.forward(&x, Mode::Infer(Inference::Sample), &mut rng).unwrap().code.to_vec2::<f32>().unwrap();
        assert!(s.iter().flatten().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn a_cached_prefix_gives_exactly_the_full_forward_pass() {
        let dev = Device::Cpu;
        // Two blocks, the second with a short tail: a row's numbers must not depend on the block it is in.
        let n = 2 * PASS_BLOCK + 5;
        for (hidden, stochastic, n_outputs) in [
            (vec![6, 5, 4], vec![1], 1),
            (vec![64, 32], vec![1], 1),
            (vec![6, 5], vec![1], 3),
            (vec![6, 5], vec![0, 1], 1),
        ] {
            let cfg = ModelConfig { n_inputs: 3, hidden, stochastic, n_outputs, ..Default::default() };
            let net = Net::new(&cfg, &dev, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).unwrap();
            let x = Tensor::randn(0f32, 1., (n, 3), &dev).unwrap();
            let set = Dataset {
                x: x.flatten_all().unwrap().to_vec1::<f32>().unwrap().into(),
                n,
                d: 3,
                shape: vec![3],
                y: vec![0; n],
                s: vec![0; n],
                n_groups: 2,
                n_classes: 2,
                w: None,
                t: None,
            };
            let Some(pre) = net.prefix_of(&set).unwrap() else {
                assert_eq!(cfg.stochastic.len(), 2, "only a single stochastic layer is cached");
                continue;
            };
            assert_eq!(pre.rows(), n);
            for inference in [Inference::Sample, Inference::Prob, Inference::Threshold] {
                let (mut r1, mut r2) =
                    (rand_chacha::ChaCha8Rng::seed_from_u64(2), rand_chacha::ChaCha8Rng::seed_from_u64(2));
                let a = net.forward_features(&x, Mode::Infer(inference), &mut r1).unwrap();
                let b = net.forward_prefix(&pre, inference, &mut r2).unwrap();
                let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(v(&a.logits), v(&b.logits));
                assert_eq!(a.logits.dims(), b.logits.dims());
                assert_eq!(v(&a.code), b.code.to_vec());
                assert_eq!(v(&a.probs), pre.probs());
                // The same stream afterwards: as many uniforms drawn.
                assert_eq!(r1.random::<u64>(), r2.random::<u64>());
            }
        }
    }

    #[test]
    fn image_network_shapes_and_non_finite_weights_are_refused() {
        let conv = ConvLayers { image: (28, 28), channels: vec![8, 16], kernel: 5 };
        let cfg = ModelConfig {
            n_inputs: conv.feature_width().unwrap(),
            hidden: vec![8, 4],
            n_outputs: 10,
            conv: Some(conv),
            ..Default::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let net = Net::new(&cfg, &Device::Cpu, &mut rng).unwrap();
        let x = Tensor::zeros((3, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let f = net.forward(&x, Mode::Infer(Inference::Sample), &mut rng).unwrap();
        assert_eq!(f.logits.dims(), &[3, 10]);
        assert_eq!(f.code.dims(), &[3, 4]);
        let mut t: HashMap<String, Tensor> = net.tensors().into_iter().map(|(k, v)| (k, v.copy().unwrap())).collect();
        net.set_tensors(&t, Path::new("m")).unwrap();
        let w = t["head.bias"].clone();
        let nan = Tensor::full(f32::NAN, w.shape(), &Device::Cpu).unwrap();
        t.insert("head.bias".into(), nan);
        let e = net.set_tensors(&t, Path::new("m")).unwrap_err().to_string();
        assert!(e.contains("non-finite weight"), "{e}");
    }
}

//! A fused CPU training step for tabular networks: forward, stable BCE, the per-neuron or exact joint
//! penalty, and backward written out over `matrixmultiply` GEMMs and loops over contiguous buffers, with no
//! graph and no per-operation allocation. Behind the same model ([`Net`] weights, the same RNG draws as
//! [`Net::forward`] in training mode), chosen automatically on CPU; candle stays the general path and the
//! reference: tests check that loss and gradients equal candle's for every option.

use super::{LossForm, TrainConfig};
use crate::error::Result;
use crate::linalg::sgemm;
use crate::model::{Activation, Estimator, ModelConfig, Net, PreActivation};
use crate::penalty::{mi, Estimate, PenaltyKind, Target};
use candle_core::Tensor;
use rand::Rng;

/// `tanh` as a rational minimax approximation on `[-7.9, 7.9]` (the coefficients Eigen uses for `float`),
/// relative error below 5e-7 against `f32::tanh` everywhere (tested), and 4x cheaper: libm's `tanhf` was a
/// third of the step's time.
#[inline]
#[allow(clippy::excessive_precision)] // the coefficients as published, not rounded by hand
pub fn tanh_fast(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = x
        * (4.893_524_6e-3
            + x2 * (6.372_619_3e-4
                + x2 * (1.485_722_4e-5
                    + x2 * (5.122_297e-8 + x2 * (-8.604_671_5e-11 + x2 * (2.000_187_9e-13 + x2 * -2.760_768_5e-16))))));
    let q = 4.893_525_2e-3 + x2 * (2.268_434_6e-3 + x2 * (1.185_347_1e-4 + x2 * 1.198_258_4e-6));
    p / q
}

/// Loss parts of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    /// The training loss.
    pub loss: f64,
    /// Mean binary cross-entropy.
    pub ce: f64,
    /// The penalty in bits (0 for a full-precision network).
    pub penalty: f64,
}

/// The tabular network's parameters and workspace for fused steps.
pub struct FusedNet {
    cfg: ModelConfig,
    /// Widths: inputs, hidden layers, 1.
    dims: Vec<usize>,
    /// Parameters in [`Net::vars`] order: `w0, b0, w1, b1, .., head_w, head_b` (`w` as `[in, out]`).
    pub params: Vec<Vec<f32>>,
    /// Gradients, same layout, filled by [`FusedNet::step`].
    pub grads: Vec<Vec<f32>>,
    outs: Vec<Vec<f32>>,
    pres: Vec<Vec<f32>>,
    probs: Vec<Vec<f32>>,
    g_h: Vec<f32>,
    g_z: Vec<f32>,
}

impl FusedNet {
    /// True when the fused step implements this configuration: a dense network with the binary head on
    /// CPU, and no penalty other than the batch estimate of the per-neuron or joint MI for parity.
    pub fn supports(tc: &TrainConfig, net: &Net) -> bool {
        let p = &tc.penalty;
        net.device().is_cpu()
            && net.config().conv.is_none()
            && net.config().n_outputs == 1
            && p.target == Target::Parity
            && p.estimate == Estimate::Batch
            && matches!(p.kind, PenaltyKind::PerNeuron | PenaltyKind::Joint)
    }

    /// Copies the weights of `net`.
    pub fn from_net(net: &Net) -> Result<Self> {
        let cfg = net.config().clone();
        let mut dims = vec![cfg.n_inputs];
        dims.extend(&cfg.hidden);
        if cfg.n_outputs != 1 {
            return Err(crate::Error::param("backend", "auto", "the fused step implements the binary head only"));
        }
        dims.push(1);
        let params = net
            .vars()
            .iter()
            .map(|v| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<Vec<_>>>()?;
        let grads = params.iter().map(|p| vec![0f32; p.len()]).collect();
        let n_hidden = cfg.hidden.len();
        Ok(FusedNet {
            cfg,
            dims,
            params,
            grads,
            outs: vec![Vec::new(); n_hidden],
            pres: vec![Vec::new(); n_hidden],
            probs: vec![Vec::new(); n_hidden],
            g_h: Vec::new(),
            g_z: Vec::new(),
        })
    }

    /// Writes the weights back into `net`.
    pub fn write_to(&self, net: &Net) -> Result<()> {
        for (var, p) in net.vars().iter().zip(&self.params) {
            var.set(&Tensor::from_slice(p, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// One training step's loss and gradients (into [`FusedNet::grads`]) on a batch: `x` row-major
    /// `n x d`, labels `y`, groups `s`. The uniforms of the binary samples are drawn from `rng` in the same
    /// order as [`Net::forward`] draws them, so both paths see the same samples.
    #[allow(clippy::too_many_arguments)]
    pub fn step<R: Rng>(
        &mut self,
        x: &[f32],
        y: &[f32],
        s: &[u32],
        n_groups: usize,
        tc: &TrainConfig,
        gamma: f64,
        rng: &mut R,
    ) -> Result<StepLoss> {
        let n = y.len();
        let n_hidden = self.cfg.hidden.len();
        let tau = self.cfg.temperature as f32;
        let mi_layer = self.cfg.mi_layer();
        // Forward.
        for l in 0..n_hidden {
            let (din, dout) = (self.dims[l], self.dims[l + 1]);
            let (w, b) = (&self.params[2 * l], &self.params[2 * l + 1]);
            let mut z = std::mem::take(&mut self.outs[l]);
            z.clear();
            for _ in 0..n {
                z.extend_from_slice(b);
            }
            let input: &[f32] = if l == 0 { x } else { &self.outs[l - 1] };
            sgemm(n, din, dout, input, false, w, false, &mut z, true);
            if self.cfg.stochastic.contains(&l) {
                let pre = &mut self.pres[l];
                pre.clear();
                pre.extend(z.iter().map(|&v| match self.cfg.pre_activation {
                    PreActivation::Tanh => tanh_fast(v),
                    PreActivation::Linear => v,
                }));
                let p = &mut self.probs[l];
                p.clear();
                p.extend(pre.iter().map(|&a| 1.0 / (1.0 + (-(a * tau)).exp())));
                for (zi, &pi) in z.iter_mut().zip(p.iter()) {
                    let u: f32 = rng.random();
                    *zi = if pi > u { 1.0 } else { 0.0 };
                }
            } else {
                for v in z.iter_mut() {
                    *v = match self.cfg.activation {
                        Activation::Tanh => tanh_fast(*v),
                        Activation::Relu => v.max(0.0),
                    };
                }
            }
            self.outs[l] = z;
        }
        let last = self.dims[n_hidden];
        let (hw, hb) = (&self.params[2 * n_hidden], self.params[2 * n_hidden + 1][0]);
        let h = &self.outs[n_hidden - 1];
        let w_ce = match tc.loss_form {
            LossForm::Sum => 1.0,
            LossForm::Convex => 1.0 - gamma,
        };
        let mut ce = 0f64;
        let mut g_logit = vec![0f32; n];
        for i in 0..n {
            let xl: f32 = hb + h[i * last..(i + 1) * last].iter().zip(hw).map(|(a, b)| a * b).sum::<f32>();
            let (xl64, yi) = (xl as f64, y[i] as f64);
            ce += xl64.max(0.0) - xl64 * yi + (-xl64.abs()).exp().ln_1p();
            let sig = 1.0 / (1.0 + (-xl64).exp());
            g_logit[i] = (w_ce * (sig - yi) / n as f64) as f32;
        }
        ce /= n as f64;
        // The penalty on the MI layer's p.
        let stochastic = self.cfg.is_stochastic();
        let (penalty, pen_grad) = if stochastic {
            let m = self.dims[mi_layer + 1];
            let p64: Vec<f64> = self.probs[mi_layer].iter().map(|&v| v as f64).collect();
            let want = gamma > 0.0;
            match tc.penalty.kind {
                PenaltyKind::Joint => mi::joint_mi_host(&p64, m, s, n_groups, want, true),
                _ => mi::per_neuron_mi_host(&p64, m, s, n_groups, want),
            }
        } else {
            (0.0, Vec::new())
        };
        let loss = w_ce * ce + if stochastic { gamma * penalty } else { 0.0 };
        // Backward: head.
        let (gw_head, rest) = self.grads[2 * n_hidden..].split_at_mut(1);
        let gw_head = &mut gw_head[0];
        gw_head.iter_mut().for_each(|g| *g = 0.0);
        for i in 0..n {
            for j in 0..last {
                gw_head[j] += h[i * last + j] * g_logit[i];
            }
        }
        rest[0][0] = g_logit.iter().sum();
        self.g_h.clear();
        for i in 0..n {
            self.g_h.extend(hw.iter().map(|w| g_logit[i] * w));
        }
        // Hidden layers, last to first.
        for l in (0..n_hidden).rev() {
            let (din, dout) = (self.dims[l], self.dims[l + 1]);
            self.g_z.clear();
            if self.cfg.stochastic.contains(&l) {
                let (p, a) = (&self.probs[l], &self.pres[l]);
                let with_pen = l == mi_layer && !pen_grad.is_empty();
                for k in 0..n * dout {
                    let dp_da = tau * p[k] * (1.0 - p[k]);
                    let mut g_a = match self.cfg.estimator {
                        Estimator::Identity => self.g_h[k],
                        Estimator::Sigmoid => self.g_h[k] * dp_da,
                    };
                    if with_pen {
                        g_a += (gamma * pen_grad[k]) as f32 * dp_da;
                    }
                    self.g_z.push(match self.cfg.pre_activation {
                        PreActivation::Tanh => g_a * (1.0 - a[k] * a[k]),
                        PreActivation::Linear => g_a,
                    });
                }
            } else {
                let out = &self.outs[l];
                for k in 0..n * dout {
                    self.g_z.push(match self.cfg.activation {
                        Activation::Tanh => self.g_h[k] * (1.0 - out[k] * out[k]),
                        Activation::Relu => {
                            if out[k] > 0.0 {
                                self.g_h[k]
                            } else {
                                0.0
                            }
                        }
                    });
                }
            }
            let input: &[f32] = if l == 0 { x } else { &self.outs[l - 1] };
            sgemm(din, n, dout, input, true, &self.g_z, false, &mut self.grads[2 * l], false);
            let gb = &mut self.grads[2 * l + 1];
            gb.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..n {
                for j in 0..dout {
                    gb[j] += self.g_z[i * dout + j];
                }
            }
            if l > 0 {
                self.g_h.clear();
                self.g_h.resize(n * din, 0.0);
                sgemm(n, dout, din, &self.g_z, false, &self.params[2 * l], true, &mut self.g_h, false);
            }
        }
        Ok(StepLoss { loss, ce, penalty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{bce_with_logits, Mode};
    use crate::penalty::PenaltySpec;
    use candle_core::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Candle's loss and gradients on the same weights and samples.
    #[allow(clippy::too_many_arguments)]
    fn candle_reference(
        net: &Net,
        x: &[f32],
        y: &[f32],
        s: &[u32],
        k: usize,
        tc: &TrainConfig,
        gamma: f64,
        seed: u64,
    ) -> (f64, Vec<Vec<f32>>) {
        let dev = Device::Cpu;
        let xt = Tensor::from_slice(x, (y.len(), x.len() / y.len()), &dev).unwrap();
        let yt = Tensor::from_slice(y, y.len(), &dev).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let out = net.forward(&xt, Mode::Train, &mut rng).unwrap();
        let ce = bce_with_logits(&out.logits, &yt).unwrap();
        let labels: Vec<u8> = y.iter().map(|&v| v as u8).collect();
        // The tensor form (not the fused op) is the reference.
        let groups = mi::group_onehot(s, k, &dev).unwrap();
        let p = out.probs.to_dtype(candle_core::DType::F64).unwrap();
        let pen = match tc.penalty.kind {
            PenaltyKind::Joint => mi::joint_mi_exact(&p, &groups),
            _ => mi::per_neuron_mi(&p, &groups),
        }
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap();
        let _ = labels;
        let w_ce = if tc.loss_form == LossForm::Convex { 1.0 - gamma } else { 1.0 };
        let loss = ((ce * w_ce).unwrap() + (pen * gamma).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let g =
            net.vars().iter().map(|v| grads.get(v).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        (loss.to_scalar::<f32>().unwrap() as f64, g)
    }

    #[test]
    fn tanh_fast_is_within_5e_7_of_tanh() {
        let mut worst = 0f64;
        for i in 0..2_000_000 {
            let x = i as f32 / 1e5 - 10.0;
            let (a, b) = (x.tanh() as f64, tanh_fast(x) as f64);
            worst = worst.max((a - b).abs() / a.abs().max(1e-30));
        }
        for i in 1..10_000 {
            let x = i as f32 * 1e-7;
            worst = worst.max(((x.tanh() - tanh_fast(x)) as f64).abs() / x.tanh() as f64);
        }
        assert!(worst < 5e-7, "{worst}");
        assert_eq!(tanh_fast(0.0), 0.0);
        assert_eq!(tanh_fast(-3.0), -tanh_fast(3.0));
    }

    #[test]
    fn fused_loss_and_gradients_equal_candle_for_every_option() {
        let mut data_rng = ChaCha8Rng::seed_from_u64(9);
        let (n, d, k) = (48, 5, 3);
        let x: Vec<f32> = (0..n * d).map(|_| data_rng.random::<f32>() * 2.0 - 1.0).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let mut cases = 0;
        for estimator in [Estimator::Identity, Estimator::Sigmoid] {
            for pre_activation in [PreActivation::Tanh, PreActivation::Linear] {
                for activation in [Activation::Tanh, Activation::Relu] {
                    for (penalty, stochastic) in [
                        (PenaltyKind::PerNeuron, vec![1]),
                        (PenaltyKind::Joint, vec![1]),
                        (PenaltyKind::PerNeuron, vec![0, 1]),
                        (PenaltyKind::PerNeuron, vec![]),
                    ] {
                        for loss_form in [LossForm::Sum, LossForm::Convex] {
                            let cfg = ModelConfig {
                                n_inputs: d,
                                hidden: vec![7, 6],
                                stochastic: stochastic.clone(),
                                pre_activation,
                                temperature: 3.0,
                                estimator,
                                activation,
                                n_outputs: 1,
                                conv: None,
                            };
                            let net = Net::new(&cfg, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(cases)).unwrap();
                            let gamma = 0.7;
                            let tc = TrainConfig {
                                penalty: PenaltySpec::new(penalty, Target::Parity),
                                loss_form,
                                gamma,
                                ..TrainConfig::default()
                            };
                            let (ref_loss, ref_grads) = candle_reference(
                                &net,
                                &x,
                                &y,
                                &s,
                                k,
                                &tc,
                                if stochastic.is_empty() { 0.0 } else { gamma },
                                100 + cases,
                            );
                            let mut fused = FusedNet::from_net(&net).unwrap();
                            let out = fused
                                .step(
                                    &x,
                                    &y,
                                    &s,
                                    k,
                                    &tc,
                                    if stochastic.is_empty() { 0.0 } else { gamma },
                                    &mut ChaCha8Rng::seed_from_u64(100 + cases),
                                )
                                .unwrap();
                            let case = format!("{estimator:?} {pre_activation:?} {activation:?} {penalty:?} {stochastic:?} {loss_form:?}");
                            assert!(
                                (out.loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
                                "{case}: loss {} vs {ref_loss}",
                                out.loss
                            );
                            for (gf, gr) in fused.grads.iter().zip(&ref_grads) {
                                let scale = gr.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
                                for (a, b) in gf.iter().zip(gr) {
                                    assert!(
                                        (a - b).abs() <= 1e-5 * scale,
                                        "{case}: gradient {a} vs {b} (scale {scale})"
                                    );
                                }
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 64);
    }
}

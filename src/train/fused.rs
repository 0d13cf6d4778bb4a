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

use super::kernels::{axpy, combine_rows, exp_fast, tanh_fast};
pub use super::kernels::{Rows, SparseRows};

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
    g_logit: Vec<f32>,
    p64: Vec<f64>,
    pen32: Vec<f32>,
    uniforms: Vec<u32>,
    /// The exact estimator's per-row doubling levels (`2^(m+1) - 1` each).
    levels: Vec<f64>,
}

impl FusedNet {
    /// True when the fused step implements this configuration: a dense network with the binary head on
    /// CPU (not a regression head: that one trains through candle's step), and no penalty other than the batch estimate of the per-neuron MI, the joint MI or the total
    /// variation, for parity or odds.
    pub fn supports(tc: &TrainConfig, net: &Net) -> bool {
        let p = &tc.penalty;
        net.device().is_cpu()
            && net.config().conv.is_none()
            && net.config().n_outputs == 1
            && !net.config().regression
            && p.estimate == Estimate::Batch
            && matches!(p.kind, PenaltyKind::PerNeuron | PenaltyKind::Joint | PenaltyKind::Tv)
    }

    /// Copies the weights of `net`.
    pub fn from_net(net: &Net) -> Result<Self> {
        let cfg = net.config().clone();
        let mut dims = vec![cfg.n_inputs];
        dims.extend(&cfg.hidden);
        if cfg.n_outputs != 1 || cfg.regression {
            let why = "the fused step implements the binary head only";
            return Err(crate::Error::param(crate::schema::Param::Backend, "auto", why));
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
            g_logit: Vec::new(),
            p64: Vec::new(),
            pen32: Vec::new(),
            uniforms: Vec::new(),
            levels: Vec::new(),
        })
    }

    /// Writes the weights back into `net`.
    pub fn write_to(&self, net: &Net) -> Result<()> {
        for (var, p) in net.vars().iter().zip(&self.params) {
            var.set(&Tensor::from_slice(p, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// One training step's loss and gradients (into [`FusedNet::grads`]) on a batch: inputs `x`, labels
    /// `y`, groups `s`. The uniforms of the binary samples are drawn from `rng` in the same order as
    /// [`Net::forward`] draws them, so both paths see the same samples.
    ///
    /// On x86-64 the step is compiled three times, for AVX-512, AVX2 and the baseline, and the widest the
    /// processor has runs. The results are bit-identical: every loop is element-wise or sums in a fixed
    /// order, Rust never fuses a multiply and an add on its own, and the vectors only change how many
    /// elements one instruction handles.
    #[allow(clippy::too_many_arguments)]
    pub fn step<R: Rng>(
        &mut self,
        x: Rows<'_>,
        y: &[f32],
        s: &[u32],
        n_groups: usize,
        tc: &TrainConfig,
        gamma: f64,
        rng: &mut R,
    ) -> Result<StepLoss> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor has the features the function is compiled for.
                return unsafe { self.step_avx512(x, y, s, n_groups, tc, gamma, rng) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.step_avx2(x, y, s, n_groups, tc, gamma, rng) };
            }
        }
        self.step_impl(x, y, s, n_groups, tc, gamma, rng)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    fn step_avx512<R: Rng>(
        &mut self,
        x: Rows<'_>,
        y: &[f32],
        s: &[u32],
        n_groups: usize,
        tc: &TrainConfig,
        gamma: f64,
        rng: &mut R,
    ) -> Result<StepLoss> {
        self.step_impl(x, y, s, n_groups, tc, gamma, rng)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    fn step_avx2<R: Rng>(
        &mut self,
        x: Rows<'_>,
        y: &[f32],
        s: &[u32],
        n_groups: usize,
        tc: &TrainConfig,
        gamma: f64,
        rng: &mut R,
    ) -> Result<StepLoss> {
        self.step_impl(x, y, s, n_groups, tc, gamma, rng)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn step_impl<R: Rng>(
        &mut self,
        x: Rows<'_>,
        y: &[f32],
        s: &[u32],
        n_groups: usize,
        tc: &TrainConfig,
        gamma: f64,
        rng: &mut R,
    ) -> Result<StepLoss> {
        let n = y.len();
        match x {
            Rows::Dense(x) => assert_eq!(x.len(), n * self.dims[0], "dense rows of the wrong width"),
            Rows::Sparse(x) => assert_eq!(x.rows(), n, "sparse rows of the wrong count"),
        }
        let n_hidden = self.cfg.hidden.len();
        let tau = self.cfg.temperature as f32;
        let mi_layer = self.cfg.mi_layer();
        // Loop-invariant choices as factors and flags, so that the element loops stay branch-free.
        let tanh_pre = self.cfg.pre_activation == PreActivation::Tanh;
        let sigmoid_est = self.cfg.estimator == Estimator::Sigmoid;
        let tanh_act = self.cfg.activation == Activation::Tanh;
        // Forward.
        for l in 0..n_hidden {
            let (din, dout) = (self.dims[l], self.dims[l + 1]);
            let (w, b) = (&self.params[2 * l], &self.params[2 * l + 1]);
            let mut z = std::mem::take(&mut self.outs[l]);
            z.clear();
            for _ in 0..n {
                z.extend_from_slice(b);
            }
            match (l, x) {
                (0, Rows::Sparse(x)) => {
                    for (i, zi) in z.chunks_exact_mut(dout).enumerate() {
                        combine_rows(zi, x.entries(i), w);
                    }
                }
                (0, Rows::Dense(x)) => sgemm(n, din, dout, x, false, w, false, &mut z, true),
                _ => sgemm(n, din, dout, &self.outs[l - 1], false, w, false, &mut z, true),
            }
            if self.cfg.stochastic.contains(&l) {
                let (pre, p) = (&mut self.pres[l], &mut self.probs[l]);
                pre.resize(n * dout, 0.0);
                p.resize(n * dout, 0.0);
                if tanh_pre {
                    pre.iter_mut().zip(&z).for_each(|(a, &v)| *a = tanh_fast(v));
                } else {
                    pre.copy_from_slice(&z);
                }
                p.iter_mut().zip(pre.iter()).for_each(|(p, &a)| *p = 1.0 / (1.0 + exp_fast(-(a * tau))));
                // The uniforms in one fill: the u32 stream of `rng.random::<f32>()` calls (rand 0.9 takes
                // the top 24 bits of one `next_u32` each), so the candle path draws the same (tested).
                self.uniforms.resize(n * dout, 0);
                rng.fill(&mut self.uniforms[..]);
                for ((zi, &pi), &bits) in z.iter_mut().zip(p.iter()).zip(&self.uniforms) {
                    let u = (bits >> 8) as f32 * (1.0 / 16_777_216.0);
                    *zi = if pi > u { 1.0 } else { 0.0 };
                }
            } else if tanh_act {
                z.iter_mut().for_each(|v| *v = tanh_fast(*v));
            } else {
                // ReLU keeps its input: the gradient passes where it is >= 0, as in candle (at 0 too).
                let pre = &mut self.pres[l];
                pre.clear();
                pre.extend_from_slice(&z);
                z.iter_mut().for_each(|v| *v = v.max(0.0));
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
        let exact = self.cfg.estimator == Estimator::Exact;
        let mut ce = 0f64;
        // The exact estimator's gradient of the expected CE at p (row-major n x m), else empty.
        let mut ce_grad_p: Vec<f64> = Vec::new();
        let mut exact_head: Option<(Vec<f64>, f64)> = None;
        if exact {
            let (value, g_p, g_w, g_b) = exact_expected_ce(&self.probs[mi_layer], last, hw, hb, y, &mut self.levels);
            ce = value;
            ce_grad_p = g_p;
            exact_head = Some((g_w, g_b));
        } else {
            // The logits, 8 rows at a time: each row still sums its products in order (a chain of dependent
            // additions), and 8 chains side by side keep the adder busy.
            self.g_logit.clear();
            self.g_logit.resize(n, 0.0);
            let mut rows8 = h.chunks_exact(8 * last);
            let mut logit8 = self.g_logit.chunks_exact_mut(8);
            for (h8, l8) in (&mut rows8).zip(&mut logit8) {
                let mut acc = [0f32; 8];
                for (j, &wj) in hw.iter().enumerate() {
                    for r in 0..8 {
                        acc[r] += h8[r * last + j] * wj;
                    }
                }
                l8.copy_from_slice(&acc);
            }
            for (hi, l) in rows8.remainder().chunks_exact(last).zip(logit8.into_remainder()) {
                *l = hi.iter().zip(hw).fold(0.0, |a, (x, w)| a + x * w);
            }
            for (g, &yi) in self.g_logit.iter_mut().zip(y) {
                let xl: f32 = hb + *g;
                let (xl64, yi) = (xl as f64, yi as f64);
                // One exp for both: e = exp(-|x|) gives the stable BCE and the sigmoid on either side of 0.
                let e = (-xl64.abs()).exp();
                ce += xl64.max(0.0) - xl64 * yi + e.ln_1p();
                let sig = if xl64 >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                *g = (w_ce * (sig - yi) / n as f64) as f32;
            }
            ce /= n as f64;
        }
        // The penalty on the MI layer's p.
        let stochastic = self.cfg.is_stochastic();
        let penalty = if stochastic {
            let m = self.dims[mi_layer + 1];
            self.p64.clear();
            self.p64.extend(self.probs[mi_layer].iter().map(|&v| v as f64));
            let want = gamma > 0.0;
            let host = |p: &[f64], m: usize, s: &[u32], k: usize, want: bool| match tc.penalty.kind {
                PenaltyKind::Joint => mi::joint_mi_host(p, m, s, k, want, true),
                PenaltyKind::Tv => mi::tv_host(p, m, s, k, want, true),
                _ => mi::per_neuron_mi_host(p, m, s, k, want),
            };
            let (value, grad) = match tc.penalty.target {
                Target::Parity => host(&self.p64, m, s, n_groups, want),
                Target::Odds => {
                    let labels: Vec<u32> = y.iter().map(|&v| (v > 0.5) as u32).collect();
                    mi::conditional_host(host, &self.p64, m, s, n_groups, &labels, 2, want)
                }
            };
            self.pen32.clear();
            if exact {
                // The expected CE's gradient at p joins the penalty's: both enter through dp/da.
                let pen = |k: usize| if grad.is_empty() { 0.0 } else { gamma * grad[k] };
                self.pen32.extend(ce_grad_p.iter().enumerate().map(|(k, &g)| (w_ce * g + pen(k)) as f32));
            } else {
                self.pen32.extend(grad.iter().map(|&g| (gamma * g) as f32));
            }
            value
        } else {
            self.pen32.clear();
            0.0
        };
        let loss = w_ce * ce + if stochastic { gamma * penalty } else { 0.0 };
        if let Some((g_w, g_b)) = exact_head {
            // Backward: the head's gradient came with the expected CE; nothing reaches the code layer
            // through a sample (its gradient is at p, in pen32).
            let (gw_head, rest) = self.grads[2 * n_hidden..].split_at_mut(1);
            for (g, v) in gw_head[0].iter_mut().zip(&g_w) {
                *g = (w_ce * v) as f32;
            }
            rest[0][0] = (w_ce * g_b) as f32;
            self.g_h.clear();
            self.g_h.resize(n * last, 0.0);
        } else {
            // Backward: head.
            let g_logit = &self.g_logit;
            let (gw_head, rest) = self.grads[2 * n_hidden..].split_at_mut(1);
            let gw_head = &mut gw_head[0];
            gw_head.fill(0.0);
            for (hi, &g) in h.chunks_exact(last).zip(g_logit) {
                axpy(gw_head, g, hi);
            }
            rest[0][0] = g_logit.iter().sum();
            self.g_h.clear();
            for &g in g_logit {
                self.g_h.extend(hw.iter().map(|w| g * w));
            }
        }
        // Hidden layers, last to first.
        for l in (0..n_hidden).rev() {
            let (din, dout) = (self.dims[l], self.dims[l + 1]);
            self.g_z.resize(n * dout, 0.0);
            if self.cfg.stochastic.contains(&l) {
                let (p, a) = (&self.probs[l], &self.pres[l]);
                // The gradient at the pre-activation from that at the sample (straight through, times
                // dp/da with the sigmoid estimator) and the penalty's at p; multiplying by 1 is exact, so
                // the factors stand in for branches and the loops vectorise.
                // The exact estimator passes its gradient at p straight through to a (dp/da := 1,
                // docs/design.md, section 1b), as the identity estimator passes the sample's.
                let g_pre = |gh: f32, pk: f32, ak: f32, pen: Option<f32>| {
                    let dp_da = if exact { 1.0 } else { tau * pk * (1.0 - pk) };
                    let mut g_a = gh * if sigmoid_est { dp_da } else { 1.0 };
                    if let Some(pg) = pen {
                        g_a += pg * dp_da;
                    }
                    g_a * if tanh_pre { 1.0 - ak * ak } else { 1.0 }
                };
                let g_z = self.g_z.iter_mut().zip(&self.g_h).zip(p.iter().zip(a.iter()));
                if l == mi_layer && !self.pen32.is_empty() {
                    for (((gz, &gh), (&pk, &ak)), &pg) in g_z.zip(&self.pen32) {
                        *gz = g_pre(gh, pk, ak, Some(pg));
                    }
                } else {
                    for ((gz, &gh), (&pk, &ak)) in g_z {
                        *gz = g_pre(gh, pk, ak, None);
                    }
                }
            } else {
                let (out, pre) = (&self.outs[l], &self.pres[l]);
                if tanh_act {
                    for ((gz, &gh), &o) in self.g_z.iter_mut().zip(&self.g_h).zip(out.iter()) {
                        *gz = gh * (1.0 - o * o);
                    }
                } else {
                    for ((gz, &gh), &z) in self.g_z.iter_mut().zip(&self.g_h).zip(pre.iter()) {
                        *gz = if z >= 0.0 { gh } else { 0.0 };
                    }
                }
            }
            let gw = &mut self.grads[2 * l];
            match (l, x) {
                (0, Rows::Sparse(x)) => {
                    // Scattered into the weight rows, row by row: the gradient rows stream through once
                    // and the weights' gradient stays in L1 (gathering by column instead measured slower).
                    gw.fill(0.0);
                    for (i, gzi) in self.g_z.chunks_exact(dout).enumerate() {
                        for (c, v) in x.row(i) {
                            axpy(&mut gw[c * dout..(c + 1) * dout], v, gzi);
                        }
                    }
                }
                (0, Rows::Dense(x)) => sgemm(din, n, dout, x, true, &self.g_z, false, gw, false),
                _ => sgemm(din, n, dout, &self.outs[l - 1], true, &self.g_z, false, gw, false),
            }
            let gb = &mut self.grads[2 * l + 1];
            gb.fill(0.0);
            for gzi in self.g_z.chunks_exact(dout) {
                axpy(gb, 1.0, gzi);
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

/// The exact estimator's task loss (docs/design.md, section 1b): the binary cross-entropy of the head
/// `logit(t) = w . t + b` averaged over the `2^m` codes with each row's code probabilities
/// `pi_i(t) = prod_j p_ij^t_j (1 - p_ij)^(1 - t_j)`, and its exact gradients. `p` row-major `n x m`, `y` the
/// labels (0 or 1). Returns the mean over rows, `dL/dp` (`n x m`), `dL/dw` and `dL/db`; `levels` is scratch.
pub(crate) fn exact_expected_ce(
    p: &[f32],
    m: usize,
    w: &[f32],
    b: f32,
    y: &[f32],
    levels: &mut Vec<f64>,
) -> (f64, Vec<f64>, Vec<f64>, f64) {
    let n = y.len();
    let codes = 1usize << m;
    // Code t's bit j is neuron j (the order of the doubling).
    let logit: Vec<f64> =
        (0..codes).map(|t| (0..m).filter(|j| t >> j & 1 == 1).fold(b as f64, |acc, j| acc + w[j] as f64)).collect();
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    // CE(logit, 1) = softplus(-logit), CE(logit, 0) = softplus(logit).
    let ce = [logit.iter().map(|&l| softplus(l)).collect::<Vec<_>>(), logit.iter().map(|&l| softplus(-l)).collect()];
    let mut mass = [vec![0f64; codes], vec![0f64; codes]];
    levels.resize(2 * codes - 1, 0.0);
    let (mut total, mut row, mut g) = (0f64, vec![0f64; m], vec![0f64; codes]);
    let mut grad_p = vec![0f64; n * m];
    let mut scratch = (Vec::new(), Vec::new());
    let inv_n = 1.0 / n as f64;
    for i in 0..n {
        row.iter_mut().zip(&p[i * m..(i + 1) * m]).for_each(|(r, &v)| *r = v as f64);
        let off = mi::doubling_into(&row, levels);
        let label = (y[i] > 0.5) as usize;
        let pi = &levels[off..];
        for t in 0..codes {
            total += pi[t] * ce[label][t];
            mass[label][t] += pi[t];
            g[t] = ce[label][t] * inv_n;
        }
        mi::doubling_backward(&row, levels, &g, &mut grad_p[i * m..(i + 1) * m], &mut scratch);
    }
    // dL/dlogit(t) = sum_i pi_i(t) (sigmoid(logit(t)) - y_i) / n.
    let mut grad_w = vec![0f64; m];
    let mut grad_b = 0f64;
    for t in 0..codes {
        let sig = 1.0 / (1.0 + (-logit[t]).exp());
        let gt = ((mass[0][t] + mass[1][t]) * sig - mass[1][t]) * inv_n;
        grad_b += gt;
        for (j, gw) in grad_w.iter_mut().enumerate() {
            if t >> j & 1 == 1 {
                *gw += gt;
            }
        }
    }
    (total * inv_n, grad_p, grad_w, grad_b)
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
    ) -> (f64, Vec<Vec<f32>>, f32) {
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
        let f = match tc.penalty.kind {
            PenaltyKind::Joint => mi::joint_mi_exact,
            PenaltyKind::Tv => mi::total_variation_exact,
            _ => mi::per_neuron_mi,
        };
        let pen = match tc.penalty.target {
            Target::Parity => f(&p, &groups),
            Target::Odds => {
                let labels: Vec<u32> = labels.iter().map(|&v| v as u32).collect();
                mi::conditional(f, &p, &groups, &labels, 2)
            }
        }
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap();
        let w_ce = if tc.loss_form == LossForm::Convex { 1.0 - gamma } else { 1.0 };
        let loss = ((ce * w_ce).unwrap() + (pen * gamma).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let g =
            net.vars().iter().map(|v| grads.get(v).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        // The head bias's gradient sums n terms w (sigmoid(logit) - y) / n that may cancel far below each
        // term; f32 sums then err on the scale of the terms' total, which is what that element is compared on.
        let logits = out.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let terms: f32 = logits.iter().zip(y).map(|(&l, &yi)| (1.0 / (1.0 + (-l).exp()) - yi).abs()).sum();
        (loss.to_scalar::<f32>().unwrap() as f64, g, (w_ce as f32).abs() * terms / y.len() as f32)
    }

    /// The exact estimator's loss and gradients by candle's autodiff: the network's layers written out,
    /// `p` passed straight through to `a` (`a + stop(p - a)`), the expected BCE over the `2^m` codes and the
    /// penalty on the same `p`.
    #[allow(clippy::too_many_arguments)]
    fn exact_reference(
        net: &Net,
        x: &[f32],
        y: &[f32],
        s: &[u32],
        k: usize,
        kind: PenaltyKind,
        gamma: f64,
    ) -> (f64, Vec<Vec<f32>>) {
        let dev = Device::Cpu;
        let cfg = net.config();
        let n = y.len();
        let vars = net.vars();
        let mut h = Tensor::from_slice(x, (n, x.len() / n), &dev).unwrap().to_dtype(candle_core::DType::F64).unwrap();
        let v64 = |k: usize| vars[k].as_tensor().to_dtype(candle_core::DType::F64).unwrap();
        let last = cfg.hidden.len() - 1;
        for l in 0..=last {
            let z = h.matmul(&v64(2 * l)).unwrap().broadcast_add(&v64(2 * l + 1)).unwrap();
            h = if l == last {
                let a = if cfg.pre_activation == PreActivation::Tanh { z.tanh().unwrap() } else { z };
                let p = candle_nn::ops::sigmoid(&(&a * cfg.temperature).unwrap()).unwrap();
                (&a + (p - &a).unwrap().detach()).unwrap()
            } else if cfg.activation == Activation::Tanh {
                z.tanh().unwrap()
            } else {
                z.relu().unwrap()
            };
        }
        let m = cfg.hidden[last];
        let pi = mi::code_probabilities(&h).unwrap();
        let codes: Vec<f64> = (0..1usize << m).flat_map(|t| (0..m).map(move |j| (t >> j & 1) as f64)).collect();
        let codes = Tensor::from_vec(codes, (1usize << m, m), &dev).unwrap();
        let logits = codes.matmul(&v64(2 * last + 2)).unwrap().broadcast_add(&v64(2 * last + 3)).unwrap().t().unwrap();
        let softplus = |t: &Tensor| -> Tensor {
            (t.relu().unwrap()
                + t.abs().unwrap().neg().unwrap().exp().unwrap().affine(1.0, 1.0).unwrap().log().unwrap())
            .unwrap()
        };
        let yt = Tensor::from_vec(y.iter().map(|&v| v as f64).collect::<Vec<_>>(), (n, 1), &dev).unwrap();
        // CE(l, 1) = softplus(-l), CE(l, 0) = softplus(l).
        let ce1 = softplus(&logits.neg().unwrap()).broadcast_mul(&yt).unwrap();
        let ce0 = softplus(&logits).broadcast_mul(&yt.affine(-1.0, 1.0).unwrap()).unwrap();
        let ce = (pi * (ce1 + ce0).unwrap()).unwrap().sum_all().unwrap().affine(1.0 / n as f64, 0.0).unwrap();
        let groups = mi::group_onehot(s, k, &dev).unwrap();
        let pen = match kind {
            PenaltyKind::Joint => mi::joint_mi_exact(&h, &groups),
            PenaltyKind::Tv => mi::total_variation_exact(&h, &groups),
            _ => mi::per_neuron_mi(&h, &groups),
        }
        .unwrap();
        let loss = (ce + (pen * gamma).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let g = vars
            .iter()
            .map(|v| {
                let g = grads.get(v).unwrap().to_dtype(candle_core::DType::F32).unwrap();
                g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            })
            .collect();
        (loss.to_scalar::<f64>().unwrap(), g)
    }

    #[test]
    fn the_exact_estimator_equals_autodiff_of_the_expected_loss() {
        let mut data_rng = ChaCha8Rng::seed_from_u64(21);
        let (n, d, k) = (40, 6, 2);
        let x: Vec<f32> = (0..n * d).map(|_| data_rng.random::<f32>() * 2.0 - 1.0).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % 5 < 2) as u32).collect();
        let mut cases = 0;
        for (m, kind, pre_activation, activation) in [
            (1, PenaltyKind::Tv, PreActivation::Tanh, Activation::Tanh),
            (3, PenaltyKind::Tv, PreActivation::Tanh, Activation::Relu),
            (3, PenaltyKind::Joint, PreActivation::Linear, Activation::Tanh),
            (2, PenaltyKind::PerNeuron, PreActivation::Tanh, Activation::Tanh),
        ] {
            for gamma in [0.0, 0.8] {
                let cfg = ModelConfig {
                    n_inputs: d,
                    hidden: vec![5, m],
                    stochastic: vec![1],
                    pre_activation,
                    temperature: 2.5,
                    estimator: Estimator::Exact,
                    activation,
                    n_outputs: 1,
                    regression: false,
                    conv: None,
                };
                cfg.validate().unwrap();
                let net = Net::new(&cfg, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(cases)).unwrap();
                // Weights large enough that the head separates codes and p spreads over (0, 1).
                for v in net.vars() {
                    v.set(&(v.as_tensor() * 3.0).unwrap()).unwrap();
                }
                let tc =
                    TrainConfig { penalty: PenaltySpec::new(kind, Target::Parity), gamma, ..TrainConfig::default() };
                let (ref_loss, ref_grads) = exact_reference(&net, &x, &y, &s, k, kind, gamma);
                let mut fused = FusedNet::from_net(&net).unwrap();
                let out =
                    fused.step(Rows::Dense(&x), &y, &s, k, &tc, gamma, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
                let case = format!("m {m} {kind:?} {pre_activation:?} {activation:?} gamma {gamma}");
                assert!(
                    (out.loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
                    "{case}: {} vs {ref_loss}",
                    out.loss
                );
                for (gf, gr) in fused.grads.iter().zip(&ref_grads) {
                    let scale = gr.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
                    for (a, b) in gf.iter().zip(gr) {
                        assert!((a - b).abs() <= 1e-4 * scale, "{case}: gradient {a} vs {b} (scale {scale})");
                    }
                }
                cases += 1;
            }
        }
        assert_eq!(cases, 8);
    }

    #[test]
    fn the_exact_estimator_is_refused_where_it_does_not_apply() {
        let base =
            ModelConfig { n_inputs: 4, hidden: vec![8, 3], estimator: Estimator::Exact, ..ModelConfig::default() };
        assert!(base.validate().is_ok());
        for bad in [
            ModelConfig { stochastic: vec![0], ..base.clone() },
            ModelConfig { stochastic: vec![0, 1], ..base.clone() },
            ModelConfig { hidden: vec![8, crate::model::EXACT_M_MAX + 1], ..base.clone() },
            ModelConfig { n_outputs: 10, ..base.clone() },
        ] {
            let e = bad.validate().unwrap_err();
            assert!(
                matches!(&e, crate::Error::InvalidParam { param, .. } if *param == crate::schema::Param::Estimator),
                "{e}"
            );
        }
        // The candle path has no exact estimator: training through it is an error, not a silent change.
        let net = Net::new(&base, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let x = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(net.forward(&x, Mode::Train, &mut ChaCha8Rng::seed_from_u64(0)).is_err());
    }

    #[test]
    fn every_compiled_width_gives_the_same_bits() {
        let mut r = ChaCha8Rng::seed_from_u64(5);
        let (n, d) = (37, 70);
        let x: Vec<f32> = (0..n * d).map(|k| if k % 5 == 0 { r.random::<f32>() - 0.5 } else { 0.0 }).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let sparse = SparseRows::from_dense(&x, d);
        let cfg = ModelConfig { n_inputs: d, hidden: vec![80, 21], ..ModelConfig::default() };
        let net = Net::new(&cfg, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(6)).unwrap();
        for kind in [PenaltyKind::PerNeuron, PenaltyKind::Joint] {
            let tc =
                TrainConfig { penalty: PenaltySpec::new(kind, Target::Parity), gamma: 0.5, ..TrainConfig::default() };
            for rows in [Rows::Dense(&x), Rows::Sparse(&sparse)] {
                type Run = fn(&mut FusedNet, Rows<'_>, &[f32], &[u32], &TrainConfig, &mut ChaCha8Rng) -> StepLoss;
                let mut runs: Vec<(&str, Run)> =
                    vec![("baseline", |f, x, y, s, tc, r| f.step_impl(x, y, s, 2, tc, 0.5, r).unwrap())];
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the feature was detected.
                        runs.push(("avx2", |f, x, y, s, tc, r| {
                            unsafe { f.step_avx2(x, y, s, 2, tc, 0.5, r) }.unwrap()
                        }));
                    }
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the feature was detected.
                        runs.push(("avx512", |f, x, y, s, tc, r| {
                            unsafe { f.step_avx512(x, y, s, 2, tc, 0.5, r) }.unwrap()
                        }));
                    }
                }
                let mut first: Option<(StepLoss, Vec<Vec<f32>>)> = None;
                for (name, run) in runs {
                    let mut f = FusedNet::from_net(&net).unwrap();
                    // Two steps, so that the second starts from updated weights.
                    let mut rng = ChaCha8Rng::seed_from_u64(7);
                    run(&mut f, rows, &y, &s, &tc, &mut rng);
                    for (p, g) in f.params.iter_mut().zip(&f.grads) {
                        p.iter_mut().zip(g).for_each(|(p, g)| *p -= 0.1 * g);
                    }
                    let loss = run(&mut f, rows, &y, &s, &tc, &mut rng);
                    match &first {
                        None => first = Some((loss, f.grads.clone())),
                        Some((l0, g0)) => {
                            assert_eq!(loss.loss.to_bits(), l0.loss.to_bits(), "{name} {kind:?}");
                            let bits = |g: &Vec<Vec<f32>>| g.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&f.grads), bits(g0), "{name} {kind:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fused_loss_and_gradients_equal_candle_for_every_option() {
        let mut data_rng = ChaCha8Rng::seed_from_u64(9);
        let (n, d, k) = (48, 5, 3);
        // Half the cells zero, so that the sparse rows differ from the dense ones in more than form.
        let x: Vec<f32> = (0..n * d)
            .map(|_| if data_rng.random_bool(0.5) { 0.0 } else { data_rng.random::<f32>() * 2.0 - 1.0 })
            .collect();
        let sparse = SparseRows::from_dense(&x, d);
        let y: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let mut cases = 0;
        for estimator in [Estimator::Identity, Estimator::Sigmoid] {
            for pre_activation in [PreActivation::Tanh, PreActivation::Linear] {
                for activation in [Activation::Tanh, Activation::Relu] {
                    for (penalty, target, stochastic) in [
                        (PenaltyKind::PerNeuron, Target::Parity, vec![1]),
                        (PenaltyKind::Joint, Target::Parity, vec![1]),
                        (PenaltyKind::Tv, Target::Parity, vec![1]),
                        (PenaltyKind::Joint, Target::Odds, vec![1]),
                        (PenaltyKind::Tv, Target::Odds, vec![1]),
                        (PenaltyKind::PerNeuron, Target::Parity, vec![0, 1]),
                        (PenaltyKind::PerNeuron, Target::Parity, vec![]),
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
                                regression: false,
                                conv: None,
                            };
                            let net = Net::new(&cfg, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(cases)).unwrap();
                            let gamma = 0.7;
                            let tc = TrainConfig {
                                penalty: PenaltySpec::new(penalty, target).with_estimate(Estimate::Batch),
                                loss_form,
                                gamma,
                                ..TrainConfig::default()
                            };
                            let (ref_loss, ref_grads, bias_terms) = candle_reference(
                                &net,
                                &x,
                                &y,
                                &s,
                                k,
                                &tc,
                                if stochastic.is_empty() { 0.0 } else { gamma },
                                100 + cases,
                            );
                            for (form, rows) in [("dense", Rows::Dense(&x)), ("sparse", Rows::Sparse(&sparse))] {
                                let mut fused = FusedNet::from_net(&net).unwrap();
                                let out = fused
                                    .step(
                                        rows,
                                        &y,
                                        &s,
                                        k,
                                        &tc,
                                        if stochastic.is_empty() { 0.0 } else { gamma },
                                        &mut ChaCha8Rng::seed_from_u64(100 + cases),
                                    )
                                    .unwrap();
                                let case = format!("{form} {estimator:?} {pre_activation:?} {activation:?} {penalty:?} {target:?} {stochastic:?} {loss_form:?}");
                                assert!(
                                    (out.loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
                                    "{case}: loss {} vs {ref_loss}",
                                    out.loss
                                );
                                for (t, (gf, gr)) in fused.grads.iter().zip(&ref_grads).enumerate() {
                                    let mut scale = gr.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
                                    if t == ref_grads.len() - 1 {
                                        scale = scale.max(bias_terms);
                                    }
                                    for (a, b) in gf.iter().zip(gr) {
                                        assert!(
                                            (a - b).abs() <= 1e-5 * scale,
                                            "{case}: gradient {a} vs {b} (scale {scale})"
                                        );
                                    }
                                }
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 112);
    }
}

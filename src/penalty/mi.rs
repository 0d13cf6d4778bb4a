//! Mutual information between the stochastic layer `T` and the sensitive attribute `S`, in bits, under the
//! empirical distribution of a set of rows (docs/design.md, sections 2 and 3).
//!
//! Given `x`, the neurons of `T` are independent Bernoullis with probabilities `p`, so every quantity here is
//! a function of the `n x m` matrix `p` and the group of each row. Tensor functions take `f64` tensors
//! (the `1e-12` clamp of docs/design.md, section 2 is not representable next to 1 in `f32`) and are differentiable
//! through `p`, so the same code serves as the training penalty and the evaluation metric.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use fairbits::penalty::mi;
//! // The XOR example of docs/design.md, section 3: each neuron alone says nothing about S, the pair says 1 bit.
//! let p = Tensor::new(&[[0f64, 0.], [1., 1.], [0., 1.], [1., 0.]], &Device::Cpu).unwrap();
//! let g = mi::group_onehot(&[0, 0, 1, 1], 2, &Device::Cpu).unwrap();
//! let per_neuron = mi::per_neuron_mi(&p, &g).unwrap().to_scalar::<f64>().unwrap();
//! let joint = mi::joint_mi_exact(&p, &g).unwrap().to_scalar::<f64>().unwrap();
//! assert!(per_neuron.abs() < 1e-9 && (joint - 1.0).abs() < 1e-9);
//! ```

use crate::error::{Error, Result};
use crate::linalg::gemm;
use crate::schema::Param;
use candle_core::{DType, Device, Tensor, D};
use rand::Rng;
use rayon::prelude::*;

/// Largest layer width for which the exact joint MI is enumerated by default (`2^20` codes).
pub const DEFAULT_M_MAX: usize = 20;

/// Clamp of `q` inside the binary entropy (docs/design.md, section 2).
const Q_EPS: f64 = 1e-12;

/// The `n x K` one-hot matrix of group memberships (`f64`).
pub fn group_onehot(s: &[u32], n_groups: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f64; s.len() * n_groups];
    for (i, &g) in s.iter().enumerate() {
        v[i * n_groups + g as usize] = 1.0;
    }
    Ok(Tensor::from_vec(v, (s.len(), n_groups), device)?)
}

/// Binary entropy in bits, elementwise: `h(q) = -q log2 q - (1 - q) log2 (1 - q)`, `q` clamped to
/// `[1e-12, 1 - 1e-12]`.
pub fn binary_entropy_bits(q: &Tensor) -> Result<Tensor> {
    let q = q.clamp(Q_EPS, 1.0 - Q_EPS)?;
    let one_minus = q.affine(-1.0, 1.0)?;
    let nats = ((&q * q.log()?)? + (&one_minus * one_minus.log()?)?)?.neg()?;
    Ok((nats / std::f64::consts::LN_2)?)
}

/// Row counts per group and their shares `n_s / n`, from the one-hot matrix.
fn group_weights(groups: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = groups.dim(0)? as f64;
    let counts = groups.sum(0)?;
    let weights = (&counts / n)?;
    Ok((counts, weights))
}

/// The paper's regulariser (docs/design.md, section 2): `sum_j [h(theta_j) - sum_s (n_s/n) h(theta_j^s)]`, with
/// `theta_j` the mean of `p_ij` over rows and `theta_j^s` over the rows of group `s`. Exactly
/// `sum_j I(T_j; S)`. Groups absent from the rows contribute nothing. `p: [n, m]`, `groups: [n, K]`, f64.
pub fn per_neuron_mi(p: &Tensor, groups: &Tensor) -> Result<Tensor> {
    let (counts, weights) = group_weights(groups)?;
    let theta = p.mean(0)?;
    // [K, m]: group sums of p divided by group sizes (absent groups: 0 / 1, weighted by 0 below).
    let theta_s = groups.t()?.matmul(p)?.broadcast_div(&counts.clamp(1.0, f64::MAX)?.unsqueeze(1)?)?;
    let h = binary_entropy_bits(&theta)?.sum_all()?;
    let h_s = binary_entropy_bits(&theta_s)?.sum(1)?;
    Ok((h - (weights * h_s)?.sum_all()?)?)
}

/// The per-neuron MI as one fused CPU operation: a single pass for the value and the closed-form gradient
/// `dI/dp_ij = (h'(theta_j) - h'(theta_j^{s_i})) / n`, `h'(q) = log2((1 - q) / q)`, both accumulated in
/// `f64`. Equal to [`per_neuron_mi`] in value and gradient (tested); used as the training penalty on CPU,
/// where it replaces about sixty small tensor operations per step.
pub fn per_neuron_mi_fused(p: &Tensor, s: &[u32], n_groups: usize) -> Result<Tensor> {
    Ok(p.apply_op1(PerNeuronMiOp { s: s.to_vec(), n_groups })?)
}

struct PerNeuronMiOp {
    s: Vec<u32>,
    n_groups: usize,
}

/// Column means overall and per group, and group counts, of a row-major `n x m` matrix.
fn neuron_means(p: &[f64], m: usize, s: &[u32], k: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = s.len();
    let mut theta = vec![0f64; m];
    let mut theta_s = vec![0f64; k * m];
    let mut counts = vec![0f64; k];
    for (row, &g) in p.chunks_exact(m).zip(s) {
        let g = g as usize;
        counts[g] += 1.0;
        for ((t, ts), &v) in theta.iter_mut().zip(&mut theta_s[g * m..(g + 1) * m]).zip(row) {
            *t += v;
            *ts += v;
        }
    }
    theta.iter_mut().for_each(|t| *t /= n as f64);
    for g in 0..k {
        let c = counts[g].max(1.0);
        theta_s[g * m..(g + 1) * m].iter_mut().for_each(|t| *t /= c);
    }
    (theta, theta_s, counts)
}

fn h_bits(q: f64) -> f64 {
    let q = q.clamp(Q_EPS, 1.0 - Q_EPS);
    -(q * q.ln() + (1.0 - q) * (1.0 - q).ln()) / std::f64::consts::LN_2
}

/// `h'(q)`, zero where the clamp is active (as the tensor form's gradient).
fn h_prime_bits(q: f64) -> f64 {
    if q <= Q_EPS || q >= 1.0 - Q_EPS {
        return 0.0;
    }
    ((1.0 - q).ln() - q.ln()) / std::f64::consts::LN_2
}

/// The per-neuron MI of a row-major `n x m` host matrix `p` and, with `want_grad`, its gradient
/// `dI/dp_ij = (h'(theta_j) - h'(theta_j^{s_i})) / n` (docs/design.md, section 2). Shared by the fused tensor
/// operation and the fused tabular trainer.
pub fn per_neuron_mi_host(p: &[f64], m: usize, s: &[u32], k: usize, want_grad: bool) -> (f64, Vec<f64>) {
    let n = s.len();
    let (theta, theta_s, counts) = neuron_means(p, m, s, k);
    let mut value: f64 = theta.iter().map(|&t| h_bits(t)).sum();
    for g in 0..k {
        let w = counts[g] / n as f64;
        if w > 0.0 {
            value -= w * theta_s[g * m..(g + 1) * m].iter().map(|&t| h_bits(t)).sum::<f64>();
        }
    }
    if !want_grad {
        return (value, Vec::new());
    }
    let d_all: Vec<f64> = theta.iter().map(|&t| h_prime_bits(t)).collect();
    // A row's gradient depends on its group only: one row per group, copied to the group's rows.
    let per_group: Vec<f64> = theta_s
        .chunks_exact(m)
        .flat_map(|ts| ts.iter().zip(&d_all).map(|(&t, &da)| (da - h_prime_bits(t)) / n as f64))
        .collect();
    let mut grad = Vec::with_capacity(n * m);
    for &g in s {
        grad.extend_from_slice(&per_group[g as usize * m..(g as usize + 1) * m]);
    }
    (value, grad)
}

/// The forward pass of the MI custom operations: reads the contiguous `n x m` matrix `p` (`f32` or `f64`),
/// checks that there is one group per row, and returns `value(p, m)` as a scalar of `p`'s type.
fn scalar_op_forward(
    name: &str,
    s: &[u32],
    storage: &candle_core::CpuStorage,
    layout: &candle_core::Layout,
    value: impl Fn(&[f64], usize) -> f64,
) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
    use candle_core::CpuStorage as C;
    let (n, m) = layout.shape().dims2()?;
    let (start, end) =
        layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{name} needs a contiguous p")))?;
    let p: Vec<f64> = match storage {
        C::F32(v) => v[start..end].iter().map(|&x| x as f64).collect(),
        C::F64(v) => v[start..end].to_vec(),
        _ => return Err(candle_core::Error::Msg(format!("{name} needs f32 or f64"))),
    };
    if s.len() != n {
        return Err(candle_core::Error::Msg(format!("{name}: {} groups for {n} rows", s.len())));
    }
    let v = value(&p, m);
    let out = match storage {
        C::F32(_) => C::F32(vec![v as f32]),
        _ => C::F64(vec![v]),
    };
    Ok((out, candle_core::Shape::from(())))
}

/// `p` of a custom operation's backward pass on the host, in `f64`, with its width.
fn host_p(t: &Tensor) -> candle_core::Result<(Vec<f64>, usize)> {
    Ok((t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?, t.dim(1)?))
}

impl candle_core::CustomOp1 for PerNeuronMiOp {
    fn name(&self) -> &'static str {
        "per-neuron-mi"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        scalar_op_forward(self.name(), &self.s, storage, layout, |p, m| {
            per_neuron_mi_host(p, m, &self.s, self.n_groups, false).0
        })
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (p, m) = host_p(arg)?;
        let n = self.s.len();
        let (_, grad) = per_neuron_mi_host(&p, m, &self.s, self.n_groups, true);
        let grad = Tensor::from_vec(grad, (n, m), arg.device())?.to_dtype(arg.dtype())?;
        Ok(Some(grad.broadcast_mul(grad_res)?))
    }
}

/// Code probabilities of a set of neurons per row: the `n x 2^k` matrix whose row `i` is
/// `kron_j [1 - p_ij, p_ij]`, built by doubling (docs/design.md, section 3).
pub(crate) fn code_probabilities(p: &Tensor) -> Result<Tensor> {
    let n = p.dim(0)?;
    let mut v = Tensor::ones((n, 1), p.dtype(), p.device())?;
    for j in 0..p.dim(1)? {
        let pj = p.narrow(1, j, 1)?;
        let qj = pj.affine(-1.0, 1.0)?;
        v = Tensor::cat(&[v.broadcast_mul(&qj)?, v.broadcast_mul(&pj)?], 1)?;
    }
    Ok(v)
}

/// `P(T = t | S = s)` for every code `t` and group `s`: a `[K, 2^m]` tensor, exact, in the GEMM form of
/// docs/design.md, section 3: with `A` the first `m1 = ceil(m/2)` neurons' code probabilities and `B` the rest's,
/// `P_s = (A * 1[S=s])^T B / n_s`. Rows of absent groups are zero. Differentiable through `p`.
pub fn code_distributions(p: &Tensor, groups: &Tensor) -> Result<Tensor> {
    let m = p.dim(1)?;
    let m1 = m.div_ceil(2);
    let a = code_probabilities(&p.narrow(1, 0, m1)?)?;
    let b = code_probabilities(&p.narrow(1, m1, m - m1)?)?;
    let (counts, _) = group_weights(groups)?;
    let counts: Vec<f64> = counts.to_vec1()?;
    let mut rows = Vec::with_capacity(counts.len());
    for (s, &n_s) in counts.iter().enumerate() {
        let g = groups.narrow(1, s, 1)?;
        let joint = a.broadcast_mul(&g)?.t()?.matmul(&b)?;
        rows.push((joint.flatten_all()? / n_s.max(1.0))?);
    }
    Ok(Tensor::stack(&rows, 0)?)
}

/// The exact joint MI as one fused CPU operation, for the training penalty: the forward pass is the GEMM
/// form of [`code_distributions`] (one `matrixmultiply` GEMM per group), the backward pass the closed form
/// `dI/dp_ij = (1/n) sum_t log2(P(t | s_i) / P(t)) d pi_i(t) / d p_ij` (the `1/ln 2` terms of the two entropies
/// cancel), with `pi_i(t) = A_i(t1) B_i(t2)`: two GEMMs per group contract `log2(P_s / P)` with `B` and
/// `A`, and a reverse pass through each row's doubling gives the derivative of the Kronecker products.
/// Equal to [`joint_mi_exact`] in value and gradient (tested).
pub fn joint_mi_fused(p: &Tensor, s: &[u32], n_groups: usize) -> Result<Tensor> {
    Ok(p.apply_op1(JointMiOp { s: s.to_vec(), n_groups })?)
}

struct JointMiOp {
    s: Vec<u32>,
    n_groups: usize,
}

/// Row `i`'s code probabilities over `k` neurons by doubling; `levels` receives every level
/// (sizes 1, 2, 4, .., 2^k, concatenated) for the backward pass; returns the offset of the last level.
pub(crate) fn doubling(p: &[f64], levels: &mut Vec<f64>) -> usize {
    levels.clear();
    levels.resize((2usize << p.len()) - 1, 0.0);
    doubling_into(p, levels)
}

/// [`doubling`] into a slice of exactly `2^(k+1) - 1` entries.
pub(crate) fn doubling_into(p: &[f64], levels: &mut [f64]) -> usize {
    let k = p.len();
    levels[0] = 1.0;
    for (j, &pj) in p.iter().enumerate() {
        // Level j (2^j entries) starts at 2^j - 1; level j + 1 follows it.
        let h = 1usize << j;
        let (cur, next) = levels.split_at_mut(2 * h - 1);
        let v = &cur[h - 1..];
        let (lo, hi) = next[..2 * h].split_at_mut(h);
        for c in 0..h {
            lo[c] = v[c] * (1.0 - pj);
            hi[c] = v[c] * pj;
        }
    }
    (1usize << k) - 1
}

/// Reverse of [`doubling`]: from the gradient `g` of the last level, the gradient of each `p_j`.
pub(crate) fn doubling_backward(
    p: &[f64],
    levels: &[f64],
    g: &[f64],
    out: &mut [f64],
    scratch: &mut (Vec<f64>, Vec<f64>),
) {
    let (grad, next) = scratch;
    grad.clear();
    grad.extend_from_slice(g);
    for j in (0..p.len()).rev() {
        let h = 1usize << j;
        let start = h - 1; // level j starts after 1 + 2 + .. + 2^(j-1) = 2^j - 1 entries
        let v = &levels[start..start + h];
        let (lo, hi) = grad.split_at(h);
        out[j] = (0..h).map(|c| v[c] * (hi[c] - lo[c])).sum();
        next.clear();
        next.extend((0..h).map(|c| lo[c] * (1.0 - p[j]) + hi[c] * p[j]));
        std::mem::swap(grad, next);
    }
}

/// The forward quantities of [`JointMiOp`], rows regrouped by group.
struct JointForward {
    m1: usize,
    m2: usize,
    /// Row indices, grouped: `order[bounds[s]..bounds[s + 1]]` are group `s`'s rows.
    order: Vec<usize>,
    bounds: Vec<usize>,
    /// `A` (`n x 2^m1`) and `B` (`n x 2^m2`) in `order`; per-row doubling levels for the backward pass.
    a: Vec<f64>,
    b: Vec<f64>,
    /// `P(t | s)` per group (`2^m` each) and `P(t)`.
    dists: Vec<Vec<f64>>,
    marginal: Vec<f64>,
    weights: Vec<f64>,
    /// Every row's doubling levels for both halves (in `order`), kept for small batches so that the
    /// backward pass need not redo them.
    levels: Option<(Vec<f64>, Vec<f64>)>,
}

impl JointForward {
    fn new(p: &[f64], m: usize, s: &[u32], k: usize, single: bool) -> Self {
        let n = s.len();
        let m1 = m.div_ceil(2);
        let m2 = m - m1;
        let (c1, c2) = (1usize << m1, 1usize << m2);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| s[i]);
        let bounds = group_bounds(s, k);
        let (mut a, mut b) = (vec![0f64; n * c1], vec![0f64; n * c2]);
        // Rows are independent: double them in parallel (large batches, whole test splits).
        let fill = |out: &mut [f64], width: usize, lo: usize, hi: usize| {
            out.par_chunks_mut(width).zip(order.par_iter()).for_each_init(
                Vec::new,
                |levels: &mut Vec<f64>, (dst, &i)| {
                    let off = doubling(&p[i * m + lo..i * m + hi], levels);
                    dst.copy_from_slice(&levels[off..]);
                },
            );
        };
        let levels = if n >= 1024 {
            fill(&mut a, c1, 0, m1);
            fill(&mut b, c2, m1, m);
            None
        } else {
            let (la, lb) = (2 * c1 - 1, 2 * c2 - 1);
            let (mut lv_a, mut lv_b) = (vec![0f64; n * la], vec![0f64; n * lb]);
            for (r, &i) in order.iter().enumerate() {
                let row = &p[i * m..(i + 1) * m];
                let la_row = &mut lv_a[r * la..(r + 1) * la];
                let off = doubling_into(&row[..m1], la_row);
                a[r * c1..(r + 1) * c1].copy_from_slice(&la_row[off..]);
                let lb_row = &mut lv_b[r * lb..(r + 1) * lb];
                let off = doubling_into(&row[m1..], lb_row);
                b[r * c2..(r + 1) * c2].copy_from_slice(&lb_row[off..]);
            }
            Some((lv_a, lv_b))
        };
        let mut dists = vec![vec![0f64; c1 * c2]; k];
        let mut marginal = vec![0f64; c1 * c2];
        let mut weights = vec![0f64; k];
        for g in 0..k {
            let (lo, hi) = (bounds[g], bounds[g + 1]);
            let n_s = hi - lo;
            if n_s == 0 {
                continue;
            }
            weights[g] = n_s as f64 / n as f64;
            gemm(
                single,
                c1,
                n_s,
                c2,
                1.0 / n_s as f64,
                &a[lo * c1..hi * c1],
                true,
                &b[lo * c2..hi * c2],
                false,
                &mut dists[g],
            );
            for (mv, dv) in marginal.iter_mut().zip(&dists[g]) {
                *mv += weights[g] * dv;
            }
        }
        JointForward { m1, m2, order, bounds, a, b, dists, marginal, weights, levels }
    }

    fn value(&self) -> f64 {
        self.value_and_logs(false).0
    }

    /// The gradient with respect to `p` (row-major `n x m`) of a function of the per-group code
    /// distributions whose derivative with respect to the code probabilities `pi_i(t)` of a row of group
    /// `g` is `l[g][t]` (an empty `l[g]`: 0): per group, `U = B_g L^T` and `V = A_g L` (two GEMMs, `L`
    /// reshaped `2^m1 x 2^m2`), then a reverse pass through each row's doubling of either half.
    fn rows_backward(&self, p: &[f64], m: usize, l: &[Vec<f64>], single: bool) -> Vec<f64> {
        let n = self.order.len();
        let mut scratch = (Vec::new(), Vec::new());
        let (c1, c2) = (1usize << self.m1, 1usize << self.m2);
        let mut grad = vec![0f64; n * m];
        let mut levels = Vec::new();
        let (mut u, mut v) = (Vec::new(), Vec::new());
        for (g, l) in l.iter().enumerate() {
            let (lo, hi) = (self.bounds[g], self.bounds[g + 1]);
            let n_s = hi - lo;
            if n_s == 0 || l.is_empty() {
                continue;
            }
            u.resize(n_s * c1, 0.0);
            v.resize(n_s * c2, 0.0);
            gemm(single, n_s, c2, c1, 1.0, &self.b[lo * c2..hi * c2], false, l, true, &mut u);
            gemm(single, n_s, c1, c2, 1.0, &self.a[lo * c1..hi * c1], false, l, false, &mut v);
            let (la, lb) = (2 * c1 - 1, 2 * c2 - 1);
            for r in 0..n_s {
                let i = self.order[lo + r];
                let row = &p[i * m..(i + 1) * m];
                let out = &mut grad[i * m..(i + 1) * m];
                let level_a: &[f64] = match &self.levels {
                    Some((lv_a, _)) => &lv_a[(lo + r) * la..(lo + r + 1) * la],
                    None => {
                        doubling(&row[..self.m1], &mut levels);
                        &levels
                    }
                };
                doubling_backward(
                    &row[..self.m1],
                    level_a,
                    &u[r * c1..(r + 1) * c1],
                    &mut out[..self.m1],
                    &mut scratch,
                );
                let level_b: &[f64] = match &self.levels {
                    Some((_, lv_b)) => &lv_b[(lo + r) * lb..(lo + r + 1) * lb],
                    None => {
                        doubling(&row[self.m1..], &mut levels);
                        &levels
                    }
                };
                doubling_backward(
                    &row[self.m1..],
                    level_b,
                    &v[r * c2..(r + 1) * c2],
                    &mut out[self.m1..],
                    &mut scratch,
                );
            }
        }
        grad
    }

    /// The MI and, when asked, `log2` of every group's distribution and of the marginal (clamped at
    /// 1e-300), computed once for both the value and the gradient.
    fn value_and_logs(&self, keep: bool) -> (f64, Vec<Vec<f64>>, Vec<f64>) {
        let logs = |d: &[f64]| -> Vec<f64> { d.iter().map(|&v| v.max(1e-300).log2()).collect() };
        let h = |d: &[f64], l: &[f64]| -> f64 { -d.iter().zip(l).map(|(v, lv)| v * lv).sum::<f64>() };
        let log_m = logs(&self.marginal);
        let mut i = h(&self.marginal, &log_m);
        let mut log_d = Vec::with_capacity(self.dists.len());
        for (g, d) in self.dists.iter().enumerate() {
            if self.weights[g] > 0.0 {
                let l = logs(d);
                i -= self.weights[g] * h(d, &l);
                log_d.push(if keep { l } else { Vec::new() });
            } else {
                log_d.push(Vec::new());
            }
        }
        (i, log_d, if keep { log_m } else { Vec::new() })
    }
}

/// The exact per-group code distributions `P(t | S = s)` (`2^m` each; zeros for absent groups), the group
/// shares and the joint MI of a row-major `n x m` host matrix `p`: the same numbers as
/// [`code_distributions`] and [`joint_mi_exact`], computed on the host with rows doubled in parallel and one
/// `f64` GEMM per group (the evaluation path; a test compares the two).
pub fn joint_mi_host_distributions(p: &[f64], m: usize, s: &[u32], k: usize) -> (f64, Vec<Vec<f64>>, Vec<f64>) {
    let f = JointForward::new(p, m, s, k, false);
    let value = f.value();
    (value, f.dists, f.weights)
}

/// The exact joint MI of a row-major `n x m` host matrix `p` and, with `want_grad`, its gradient (the
/// closed form of [`joint_mi_fused`]). Shared by the fused tensor operation (in `f64`) and the fused
/// tabular trainer (with `single`: its GEMMs in `f32`, like the rest of that step; entropies stay `f64`).
pub fn joint_mi_host(p: &[f64], m: usize, s: &[u32], k: usize, want_grad: bool, single: bool) -> (f64, Vec<f64>) {
    let n = s.len();
    let f = JointForward::new(p, m, s, k, single);
    let (value, log_d, log_m) = f.value_and_logs(want_grad);
    if !want_grad {
        return (value, Vec::new());
    }
    // dI/dpi_i(t) = log2(P(t | s_i) / P(t)) / n for a row of group s_i.
    let l: Vec<Vec<f64>> = (0..k)
        .map(|g| {
            if f.bounds[g + 1] == f.bounds[g] {
                return Vec::new();
            }
            log_d[g].iter().zip(&log_m).map(|(ls, lm)| (ls - lm) / n as f64).collect()
        })
        .collect();
    (value, f.rows_backward(p, m, &l, single))
}

/// The host form of [`conditional`]: `sum_y (n_y / n) f(rows of label y)` for a host penalty `f` (one of
/// [`per_neuron_mi_host`], [`joint_mi_host`], [`tv_host`] with its `single` flag bound), and its gradient,
/// each label's rows scaled by `n_y / n`. The fused CPU step's `odds` target on a batch.
#[allow(clippy::too_many_arguments)]
pub fn conditional_host(
    f: impl Fn(&[f64], usize, &[u32], usize, bool) -> (f64, Vec<f64>),
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    y: &[u32],
    n_labels: usize,
    want_grad: bool,
) -> (f64, Vec<f64>) {
    let n = y.len() as f64;
    let mut value = 0.0;
    let mut grad = if want_grad { vec![0f64; p.len()] } else { Vec::new() };
    for label in 0..n_labels as u32 {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == label).collect();
        if rows.is_empty() {
            continue;
        }
        let sub_p: Vec<f64> = rows.iter().flat_map(|&i| p[i * m..(i + 1) * m].iter().copied()).collect();
        let sub_s: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
        let w = rows.len() as f64 / n;
        let (v, g) = f(&sub_p, m, &sub_s, k, want_grad);
        value += w * v;
        if want_grad {
            for (r, &i) in rows.iter().enumerate() {
                for j in 0..m {
                    grad[i * m + j] = w * g[r * m + j];
                }
            }
        }
    }
    (value, grad)
}

/// The largest total variation between two groups' code distributions, `max_{a<b} sum_t max(0, P(t|a) -
/// P(t|b))`, of a row-major `n x m` host matrix `p` (docs/design.md, sections 4 and 4c), and with
/// `want_grad` its (sub)gradient: for the maximising pair, `1[P(t|a) > P(t|b)] / n_a` on the code
/// probabilities of a row of group `a`, its negative over `n_b` for group `b`, 0 elsewhere. The fused CPU
/// form of [`total_variation_exact`] (equal in value and gradient, tested).
pub fn tv_host(p: &[f64], m: usize, s: &[u32], k: usize, want_grad: bool, single: bool) -> (f64, Vec<f64>) {
    let f = JointForward::new(p, m, s, k, single);
    let present: Vec<usize> = (0..k).filter(|&g| f.bounds[g + 1] > f.bounds[g]).collect();
    let mut best: Option<(f64, usize, usize)> = None;
    for (x, &a) in present.iter().enumerate() {
        for &b in &present[x + 1..] {
            let tv: f64 = f.dists[a].iter().zip(&f.dists[b]).map(|(pa, pb)| (pa - pb).max(0.0)).sum();
            if best.is_none_or(|(v, _, _)| tv > v) {
                best = Some((tv, a, b));
            }
        }
    }
    let Some((value, a, b)) = best else {
        return (0.0, if want_grad { vec![0.0; p.len()] } else { Vec::new() });
    };
    if !want_grad {
        return (value, Vec::new());
    }
    let count = |g: usize| (f.bounds[g + 1] - f.bounds[g]) as f64;
    let ind: Vec<f64> = f.dists[a].iter().zip(&f.dists[b]).map(|(pa, pb)| (pa > pb) as u8 as f64).collect();
    let mut l = vec![Vec::new(); k];
    l[a] = ind.iter().map(|v| v / count(a)).collect();
    l[b] = ind.iter().map(|v| -v / count(b)).collect();
    (value, f.rows_backward(p, m, &l, single))
}

impl candle_core::CustomOp1 for JointMiOp {
    fn name(&self) -> &'static str {
        "joint-mi"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        scalar_op_forward(self.name(), &self.s, storage, layout, |p, m| {
            JointForward::new(p, m, &self.s, self.n_groups, false).value()
        })
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (p, m) = host_p(arg)?;
        let n = self.s.len();
        let (_, grad) = joint_mi_host(&p, m, &self.s, self.n_groups, true, false);
        let grad = Tensor::from_vec(grad, (n, m), arg.device())?.to_dtype(arg.dtype())?;
        Ok(Some(grad.broadcast_mul(grad_res)?))
    }
}

/// Entropy in bits of each row of a `[K, C]` tensor of distributions (zeros contribute 0).
fn entropy_bits(dist: &Tensor) -> Result<Tensor> {
    let logs = dist.clamp(1e-300, 1.0)?.log()?;
    Ok(((dist * logs)?.sum(D::Minus1)?.neg()? / std::f64::consts::LN_2)?)
}

/// `I(T; S) = H(T) - sum_s (n_s / n) H(T | S = s)` from the per-group code distributions and the shares.
pub fn joint_mi_from_distributions(dists: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let marginal = weights.unsqueeze(0)?.matmul(dists)?;
    let h = entropy_bits(&marginal)?.sum_all()?;
    let h_s = entropy_bits(dists)?;
    Ok((h - (weights * h_s)?.sum_all()?)?)
}

/// Exact joint MI by enumeration of all `2^m` codes (docs/design.md, section 3). Differentiable through `p`.
pub fn joint_mi_exact(p: &Tensor, groups: &Tensor) -> Result<Tensor> {
    let dists = code_distributions(p, groups)?;
    let (_, weights) = group_weights(groups)?;
    joint_mi_from_distributions(&dists, &weights)
}

/// The largest total variation between two groups' code distributions, `max_{a,b} sum_t max(0, P(t|a) -
/// P(t|b))` over the groups present (docs/design.md, sections 4 and 4b): what the population certificate
/// bounds, as a training penalty. Piecewise linear in the distributions, so its (sub)gradient flows
/// through `p` as the joint MI's does.
pub fn total_variation_exact(p: &Tensor, groups: &Tensor) -> Result<Tensor> {
    let dists = code_distributions(p, groups)?;
    tv_from_distributions(&dists, &group_weights(groups)?.0)
}

/// The largest pairwise total variation of per-group distributions `[K, C]` among groups with a positive
/// count.
pub fn tv_from_distributions(dists: &Tensor, counts: &Tensor) -> Result<Tensor> {
    let counts: Vec<f64> = counts.to_vec1()?;
    let present: Vec<usize> = (0..counts.len()).filter(|&g| counts[g] > 0.0).collect();
    let mut pairs = Vec::new();
    for (x, &a) in present.iter().enumerate() {
        for &b in &present[x + 1..] {
            pairs.push((dists.get(a)? - dists.get(b)?)?.relu()?.sum_all()?);
        }
    }
    if pairs.is_empty() {
        return Ok(Tensor::zeros((), dists.dtype(), dists.device())?);
    }
    Ok(Tensor::stack(&pairs, 0)?.max(0)?)
}

/// Row-wise log-sum-exp of an `[n, n]` tensor, with the max taken out (a constant for the gradient).
fn log_sum_exp_rows(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(1)?.detach();
    Ok((x.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?.log()? + max)?.squeeze(1)?)
}

/// The pairwise-distance estimate of the joint MI for any width (Kolchinsky and Tracey 2017, "Estimating
/// mixture entropy with pairwise distances"), with the KL divergence between the rows' product-Bernoulli
/// code distributions. The rows form a mixture; writing `C` for the row index, `I(T; S) = I(T; C) -
/// I(T; C | S)` and each term is estimated by `-mean_i ln mean_k exp(-KL(i || k))` over all rows, resp. over
/// the rows of `i`'s group. The `H(T | C)` terms cancel, leaving
/// `mean_i [ln mean_{k in s_i} e^{-KL_ik} - ln mean_k e^{-KL_ik}] / ln 2` bits. `KL_ik` is one GEMM:
/// `KL_ik = sum_j [p_ij ln p_ij + q_ij ln q_ij] - [p ln p^T + q ln q^T]_ik` with `q = 1 - p`. Cost
/// `O(n^2 m)`: a training penalty on batches, not an evaluation metric on whole splits. Exact (0) when `p`
/// does not depend on `s`; it is an estimate, not a bound (tests compare it with the exact value).
pub fn pairwise_kl_mi(p: &Tensor, groups: &Tensor) -> Result<Tensor> {
    let n = p.dim(0)? as f64;
    // KL is infinite at p in {0, 1}; the tanh pre-activation keeps p in [0.0025, 0.9975] anyway.
    let p = p.clamp(1e-6, 1.0 - 1e-6)?;
    let q = p.affine(-1.0, 1.0)?;
    let (lp, lq) = (p.log()?, q.log()?);
    let neg_h = ((&p * &lp)? + (&q * &lq)?)?.sum_keepdim(1)?;
    let cross = (p.matmul(&lp.t()?)? + q.matmul(&lq.t()?)?)?;
    let neg_kl = cross.broadcast_sub(&neg_h)?;
    let all = (log_sum_exp_rows(&neg_kl)? - n.ln())?;
    // Same-group mask: 0 inside the group, -1e300 outside.
    let same = groups.matmul(&groups.t()?)?;
    let masked = (&neg_kl + ((same - 1.0)? * 1e300)?)?;
    let counts = groups.matmul(&groups.sum(0)?.unsqueeze(1)?)?.squeeze(1)?;
    let own = (log_sum_exp_rows(&masked)? - counts.log()?)?;
    Ok(((own - all)?.mean_all()? / std::f64::consts::LN_2)?)
}

/// `I(T; S | Y) = sum_y P(y) I(T; S | Y = y)` for any of the MI functions above: the rows of each label
/// (labels `y` in `0..n_labels`) are taken apart, labels absent from the rows contribute nothing.
pub fn conditional<F>(f: F, p: &Tensor, groups: &Tensor, y: &[u32], n_labels: usize) -> Result<Tensor>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    let n = y.len() as f64;
    let mut total = Tensor::zeros((), p.dtype(), p.device())?;
    for label in 0..n_labels as u32 {
        let rows: Vec<u32> = (0..y.len() as u32).filter(|&i| y[i as usize] == label).collect();
        if rows.is_empty() {
            continue;
        }
        let idx = Tensor::from_vec(rows.clone(), rows.len(), p.device())?;
        let term = f(&p.index_select(&idx, 0)?, &groups.index_select(&idx, 0)?)?;
        total = (total + (term * (rows.len() as f64 / n))?)?;
    }
    Ok(total)
}

/// A Monte-Carlo estimate and its standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct McEstimate {
    /// The mean.
    pub mean: f64,
    /// Its standard error.
    pub stderr: f64,
}

/// Rows whose byte tables are built together (docs/design.md, section 3c): a code's product over them is
/// `ceil(m/8)` contiguous loads of `ROW_BLOCK` values, and the tables (`ceil(m/8) x 256 x ROW_BLOCK`, 128 KB
/// in f32 at m = 32) stay in a core's L2 cache while every code of a batch is evaluated.
const ROW_BLOCK: usize = 32;

/// Codes evaluated per pass over the rows: bounds the per-piece partial sums kept for the reduction.
const CODE_BATCH: usize = 4096;

/// The share of a group's `f32` sum that rows lost to underflow may hold: sums below the floor where
/// they could hold more ([`RowLogs::f32_floor`]) are computed again with `f64` tables.
const UNDERFLOW_SHARE: f64 = 1e-6;

/// Roundings on one row's way into a group's sum of a code of `m` bits, with `f32` tables (docs/design.md,
/// section 3c): byte 0's entry (9 rounded inputs, 8 products), each other byte's (8 and 8), the products
/// of the entries, and the block's lane sum.
fn roundings(m: usize) -> usize {
    let nb = m.div_ceil(8);
    17 + 16 * nb.saturating_sub(1) + nb.saturating_sub(1) + 4
}

/// How far the tables' `log P^_g(t)` ([`RowLogs::log_probs`]) may be from the exact value for codes of `m`
/// bits (docs/design.md, section 3c): an `f32` sum is within `roundings(m)` unit roundoffs of its value
/// (with a margin for second-order terms) plus [`UNDERFLOW_SHARE`]; `f64` sums, and the log-domain
/// fallback, are far closer. The certificate's Monte-Carlo terms allow for it (5.3e-6 at m = 32).
pub fn log_error(m: usize) -> f64 {
    let relative = 1.01 * roundings(m) as f64 * (f32::EPSILON as f64 / 2.0) + UNDERFLOW_SHARE;
    -(1.0 - relative).ln()
}

/// The float of a table pass: `f32` first, `f64` for the sums `f32` cannot give within [`log_error`].
trait Table:
    Copy + Default + Send + Sync + std::ops::MulAssign + std::ops::AddAssign + std::ops::Mul<Output = Self>
{
    /// Whether the pass flushes subnormal results to zero ([`FlushSubnormals`]).
    const FLUSH: bool;
    fn of(v: f64) -> Self;
    fn wide(self) -> f64;

    /// [`add_block`] with AVX2 instructions where a type has its own (the same bits).
    ///
    /// # Safety
    /// The processor has AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn add_block_avx2(tables: &[Self], bytes: &[u16], nb: usize, lanes: &mut [[f64; 8]]) {
        add_block(tables, bytes, nb, lanes)
    }
}

impl Table for f32 {
    const FLUSH: bool = true;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn wide(self) -> f64 {
        self as f64
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn add_block_avx2(tables: &[Self], bytes: &[u16], nb: usize, lanes: &mut [[f64; 8]]) {
        // SAFETY: the caller checked the feature.
        unsafe { add_block_f32_avx2(tables, bytes, nb, lanes) }
    }
}

impl Table for f64 {
    const FLUSH: bool = false;
    fn of(v: f64) -> Self {
        v
    }
    fn wide(self) -> f64 {
        self
    }
}

/// While alive, the thread's floating point flushes subnormal results and inputs to zero (x86-64's MXCSR
/// FTZ and DAZ bits; elsewhere nothing): an `f32` product that falls below `1.2e-38` is 0, as the error
/// bound of [`log_error`] allows, instead of a subnormal that the processor computes many times slower.
/// Restores the previous mode when dropped.
struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushSubnormals {
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut saved = 0u32;
            // SAFETY: stmxcsr stores the 32-bit control register to the given address, a local.
            unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack, preserves_flags)) };
            let flush = saved | 1 << 15 | 1 << 6;
            // SAFETY: ldmxcsr loads a valid control word: the saved one with FTZ (bit 15) and DAZ (bit 6) set.
            unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &flush, options(nostack, preserves_flags)) };
            FlushSubnormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushSubnormals {}
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the control word saved by `new` on this thread.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack, preserves_flags))
        };
    }
}

/// A group's scaled sum below this is recomputed in the log domain (docs/design.md, section 3c): the
/// product form may then have lost rows to underflow.
const TINY: f64 = 1e-200;

/// The rows' code distributions, for evaluating `log P^_g(t) = log mean_{i in g} q(t | x_i)` of many codes
/// `t` at once (docs/design.md, sections 3 and 3c). Row `i`'s probability of `t` is a product over the bytes
/// of the code of `q_i(byte)`; each block of rows gets one table per byte position (the 256 values of that
/// byte, each a product of 8 Bernoulli factors), so a code costs a few multiplications per row and no
/// `exp`. Factors are scaled by the row's most likely code and the group's best row (the scale comes back
/// as a logarithm). The tables are `f32` (sums in `f64`), within [`log_error`] of the exact values; a
/// group whose sum for a code falls below the floor where `f32` may have lost rows to underflow is summed
/// again with `f64` tables, and below `1e-200` recomputed for that code as a log-sum-exp. `p` is clamped to
/// `[1e-12, 1 - 1e-12]`, so hard codes stay finite. Rows are visited group by group. With row weights
/// ([`Self::weighted`]) each group's distribution is the weighted mixture `sum_{i in g} (w_i / W_g) q(t | x_i)`
/// (docs/design.md, section 4e): a row's weight joins its scale, so the same kernel serves it.
pub struct RowLogs<'a> {
    p: &'a [f64],
    m: usize,
    /// Row indices, grouped: `order[bounds[g]..bounds[g + 1]]` are group `g`'s rows.
    order: Vec<usize>,
    bounds: Vec<usize>,
    /// Per row (in `order`): the log-probability of its most likely code, plus the log of its weight.
    mode: Vec<f64>,
    /// Per group: the largest `mode` among its rows (0 for an empty group).
    top: Vec<f64>,
    /// Per row (in `order`): the log of its weight; `None` without weights (every weight 1).
    log_weight: Option<Vec<f64>>,
    /// Per group: the log of its total weight (its row count without weights); and of all groups'.
    log_total: Vec<f64>,
    log_all: f64,
}

/// Where each group's rows start when the rows are ordered by group: `bounds[g]..bounds[g + 1]` for group
/// `g < k` (the prefix sums of the group sizes).
fn group_bounds(s: &[u32], k: usize) -> Vec<usize> {
    let mut bounds = vec![0usize; k + 1];
    for &g in s {
        bounds[g as usize + 1] += 1;
    }
    for g in 0..k {
        bounds[g + 1] += bounds[g];
    }
    bounds
}

fn clamp_p(v: f64) -> f64 {
    v.clamp(Q_EPS, 1.0 - Q_EPS)
}

/// The log-probability of a row's most likely code: `sum_j ln max(p_j, 1 - p_j)` (`p` clamped). Each
/// factor is at least 1/2, so a product of up to 1,000 stays a normal `f64`: one logarithm per 1,000 bits,
/// each product taken in eight independent lanes (bit `j` in lane `j mod 8`) that the processor overlaps.
fn log_mode(row: &[f64]) -> f64 {
    row.chunks(1000)
        .map(|bits| {
            let mut lanes = [1f64; 8];
            for eight in bits.chunks(8) {
                for (lane, &v) in lanes.iter_mut().zip(eight) {
                    *lane *= clamp_p(v).max(1.0 - clamp_p(v));
                }
            }
            (((lanes[0] * lanes[4]) * (lanes[1] * lanes[5])) * ((lanes[2] * lanes[6]) * (lanes[3] * lanes[7]))).ln()
        })
        .sum()
}

impl<'a> RowLogs<'a> {
    /// `p` row-major `n x m`, each row's group `s < k`.
    pub fn new(p: &'a [f64], m: usize, s: &[u32], k: usize) -> Self {
        Self::grouped(p, m, k, s, |j| j, None)
    }

    /// [`Self::new`] of the rows `rows` of `p` (indices into `p` and `s`, in the order that defines the
    /// sums): the numbers of `p` and `s` restricted to those rows, bit for bit, without copying `p`.
    pub fn of_rows(p: &'a [f64], m: usize, s: &[u32], k: usize, rows: &[usize]) -> Self {
        let groups: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
        Self::grouped(p, m, k, &groups, |j| rows[j], None)
    }

    /// The rows `rows` of `p` (indices into `p`, `s` and `w`, in the order that defines the sums) with
    /// weights `w_i > 0`: `log P^_g(t)` is the log of the weighted mixture of group `g`'s rows.
    pub fn weighted(p: &'a [f64], m: usize, s: &[u32], k: usize, rows: &[usize], w: &[f64]) -> Self {
        let groups: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
        let weights: Vec<f64> = rows.iter().map(|&i| w[i]).collect();
        Self::grouped(p, m, k, &groups, |j| rows[j], Some(&weights))
    }

    /// Rows `0..groups.len()` (row `j` is row `index(j)` of `p`, in group `groups[j]`, of weight
    /// `weights[j]` where given) grouped by a counting sort, in their order within each group.
    fn grouped(
        p: &'a [f64],
        m: usize,
        k: usize,
        groups: &[u32],
        index: impl Fn(usize) -> usize,
        weights: Option<&[f64]>,
    ) -> Self {
        let bounds = group_bounds(groups, k);
        let mut next = bounds.clone();
        let mut order = vec![0usize; groups.len()];
        let mut log_weight = weights.map(|_| vec![0f64; groups.len()]);
        for (j, &g) in groups.iter().enumerate() {
            let at = next[g as usize];
            order[at] = index(j);
            if let (Some(lw), Some(w)) = (log_weight.as_mut(), weights) {
                lw[at] = w[j].ln();
            }
            next[g as usize] += 1;
        }
        let mut mode: Vec<f64> = order.par_iter().map(|&i| log_mode(&p[i * m..(i + 1) * m])).collect();
        if let Some(lw) = &log_weight {
            mode.iter_mut().zip(lw).for_each(|(mode, lw)| *mode += lw);
        }
        let (log_total, log_all) = match weights {
            None => ((0..k).map(|g| ((bounds[g + 1] - bounds[g]) as f64).ln()).collect(), (groups.len() as f64).ln()),
            Some(w) => {
                let mut total = vec![0f64; k];
                for (&g, &v) in groups.iter().zip(w) {
                    total[g as usize] += v;
                }
                let all: f64 = total.iter().sum();
                (total.iter().map(|t| t.ln()).collect(), all.ln())
            }
        };
        let top = (0..k)
            .map(|g| mode[bounds[g]..bounds[g + 1]].iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .map(|t| if t.is_finite() { t } else { 0.0 })
            .collect();
        RowLogs { p, m, order, bounds, mode, top, log_weight, log_total, log_all }
    }

    /// For each code of `codes` (row-major `c x m`, entries 0 or 1): `log P^_g(t)` for every group `g`
    /// (NaN for an empty group), then, with `overall`, `log P^(t)` over all rows. The rows are split into
    /// pieces of a fixed size (a function of the number of rows only) that run in parallel; each code's sum
    /// over a piece, and over the pieces, is taken in a fixed order, so the numbers depend neither on the
    /// thread count nor on the vector width.
    pub fn log_probs(&self, codes: &[f64], overall: bool) -> Vec<Vec<f64>> {
        self.log_probs_in(codes, overall, None)
    }

    /// [`Self::log_probs`] where code `d` needs only the groups `g` with `wanted(d, g)` (`None`: every code
    /// every group): a code is not evaluated on the rows of the groups it does not need, and their entries
    /// are NaN. The entries it needs are those of [`Self::log_probs`], bit for bit. `overall` needs every
    /// group.
    pub fn log_probs_in(
        &self,
        codes: &[f64],
        overall: bool,
        wanted: Option<&(dyn Fn(usize, usize) -> bool + Sync)>,
    ) -> Vec<Vec<f64>> {
        let wants = |d: usize, g: usize| wanted.is_none_or(|wanted| wanted(d, g));
        assert!(!overall || wanted.is_none(), "log P^(t) over all rows needs every group");
        let m = self.m;
        let c = codes.len() / m.max(1);
        let k = self.bounds.len() - 1;
        if c == 0 {
            return Vec::new();
        }
        let bytes = code_bytes(codes, m);
        let pieces = self.pieces();
        let size = |g: usize| self.bounds[g + 1] - self.bounds[g];
        let narrow = self.table_sums::<f32>(&bytes, &pieces, wanted);
        // Where f32 may have lost rows to underflow (its sum below the floor), f64 tables again.
        let redo = |d: usize, g: usize| size(g) > 0 && wants(d, g) && narrow[g][d] < self.f32_floor(g);
        let wide =
            ((0..c).any(|d| (0..k).any(|g| redo(d, g)))).then(|| self.table_sums::<f64>(&bytes, &pieces, Some(&redo)));
        (0..c)
            .into_par_iter()
            .map(|d| {
                let code = &codes[d * m..(d + 1) * m];
                let mut out: Vec<f64> = (0..k)
                    .map(|g| {
                        let sum = match &wide {
                            Some(wide) if redo(d, g) => wide[g][d],
                            _ => narrow[g][d],
                        };
                        if size(g) == 0 || !wants(d, g) {
                            f64::NAN
                        } else if sum >= TINY {
                            self.top[g] + sum.ln() - self.log_total[g]
                        } else {
                            self.log_prob_exact(g, code)
                        }
                    })
                    .collect();
                if overall {
                    // log P^(t) = log sum_g (n_g / n) P^_g(t), from the groups' sums.
                    let weighted =
                        (0..k).filter(|&g| self.bounds[g + 1] > self.bounds[g]).map(|g| out[g] + self.log_total[g]);
                    out.push(log_sum_exp(weighted) - self.log_all);
                }
                out
            })
            .collect()
    }

    /// The smallest `f32` sum of group `g` that rows lost to underflow hold at most [`UNDERFLOW_SHARE`] of:
    /// a flushed result is below `f32::MIN_POSITIVE`, so each of a row's [`roundings`] steps loses at most
    /// that much (later factors are at most 1).
    fn f32_floor(&self, g: usize) -> f64 {
        let rows = (self.bounds[g + 1] - self.bounds[g]) as f64;
        rows * roundings(self.m) as f64 * f32::MIN_POSITIVE as f64 / UNDERFLOW_SHARE
    }

    /// The rows in pieces that run in parallel: each group's rows in runs of `span` (a multiple of the row
    /// block, a function of the number of rows only), about 512 runs at most.
    fn pieces(&self) -> Vec<Piece> {
        let span = self.order.len().div_ceil(512).max(2048).next_multiple_of(ROW_BLOCK);
        let k = self.bounds.len() - 1;
        (0..k)
            .flat_map(|g| {
                let (lo, hi) = (self.bounds[g], self.bounds[g + 1]);
                (lo..hi).step_by(span).map(move |a| (g, a, (a + span).min(hi)))
            })
            .collect()
    }

    /// Each group's scaled sums `S_g(t)` of the codes `bytes` ([`code_bytes`]), with tables in `T`, over the
    /// `pieces` of the rows; a code is summed over group `g` only where `wanted(d, g)` (`None`: everywhere;
    /// the others are 0).
    fn table_sums<T: Table>(
        &self,
        bytes: &[u16],
        pieces: &[Piece],
        wanted: Option<&(dyn Fn(usize, usize) -> bool + Sync)>,
    ) -> Vec<Vec<f64>> {
        let (k, nb) = (self.bounds.len() - 1, self.m.div_ceil(8));
        let c = bytes.len() / nb.max(1);
        let mut sums = vec![vec![0f64; c]; k];
        for c0 in (0..c).step_by(CODE_BATCH) {
            let c1 = (c0 + CODE_BATCH).min(c);
            let batch = &bytes[c0 * nb..c1 * nb];
            // Each group's distinct codes in order; one list for all where every code needs every group.
            let lists: Vec<Distinct> = match wanted {
                None => vec![distinct_codes(batch, nb, (0..c1 - c0).collect())],
                Some(wanted) => (0..k)
                    .map(|g| distinct_codes(batch, nb, (0..c1 - c0).filter(|&d| wanted(c0 + d, g)).collect()))
                    .collect(),
            };
            let partial: Vec<Vec<f64>> = pieces
                .par_iter()
                .map(|&(g, lo, hi)| match &lists[g.min(lists.len() - 1)] {
                    none if none.of.is_empty() => vec![0.0; c1 - c0],
                    some => self.piece_sums::<T>((g, lo, hi), some, c1 - c0),
                })
                .collect();
            for (&(g, _, _), part) in pieces.iter().zip(&partial) {
                sums[g][c0..c1].iter_mut().zip(part).for_each(|(s, v)| *s += v);
            }
        }
        sums
    }

    /// `log P^_g(t)` as a log-sum-exp of the rows' log-likelihoods (the fallback of [`Self::log_probs`]).
    fn log_prob_exact(&self, g: usize, code: &[f64]) -> f64 {
        let (lo, hi) = (self.bounds[g], self.bounds[g + 1]);
        let ll: Vec<f64> = (lo..hi)
            .map(|at| {
                let i = self.order[at];
                let row = &self.p[i * self.m..(i + 1) * self.m];
                let own: f64 = row
                    .iter()
                    .zip(code)
                    .map(|(&v, &t)| if t != 0.0 { clamp_p(v).ln() } else { (1.0 - clamp_p(v)).ln() })
                    .sum();
                match &self.log_weight {
                    Some(lw) => own + lw[at],
                    None => own,
                }
            })
            .collect();
        log_sum_exp(ll.iter().copied()) - self.log_total[g]
    }

    /// The sums `sum_{r in lo..hi} exp(mode_r - top_g) prod_b table_r(byte_b(t))` of the piece `(g, lo, hi)`
    /// for each distinct code of `codes`, placed at each of its codes' positions among `out_len` (0
    /// elsewhere), compiled for the widest vector instructions the processor has, the `f32` block in AVX2
    /// registers under AVX-512 too ([`add_block_f32_avx2`]); the same bits at any width: products are
    /// element-wise, sums in a fixed order.
    fn piece_sums<T: Table>(&self, piece: Piece, codes: &Distinct, out_len: usize) -> Vec<f64> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor has the features the function is compiled for.
                return unsafe { self.piece_sums_avx512::<T>(piece, codes, out_len) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.piece_sums_avx2::<T>(piece, codes, out_len) };
            }
        }
        self.piece_sums_impl::<T, false>(piece, codes, out_len)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn piece_sums_avx512<T: Table>(&self, piece: Piece, codes: &Distinct, out_len: usize) -> Vec<f64> {
        self.piece_sums_impl::<T, true>(piece, codes, out_len)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn piece_sums_avx2<T: Table>(&self, piece: Piece, codes: &Distinct, out_len: usize) -> Vec<f64> {
        self.piece_sums_impl::<T, true>(piece, codes, out_len)
    }

    /// [`Self::piece_sums`]; with `AVX2` (the caller has checked the processor has it) each block's codes run
    /// through [`Table::add_block_avx2`].
    #[inline(always)]
    fn piece_sums_impl<T: Table, const AVX2: bool>(
        &self,
        (g, lo, hi): Piece,
        codes: &Distinct,
        out_len: usize,
    ) -> Vec<f64> {
        let nb = self.m.div_ceil(8);
        let _flush = T::FLUSH.then(FlushSubnormals::new);
        // Each distinct code's sum in eight lanes (lane l: rows l, l + 8, .. of every block), added up at the end.
        let mut lanes = vec![[0f64; 8]; codes.bytes.len() / nb.max(1)];
        let mut tables = vec![T::default(); nb * 256 * ROW_BLOCK];
        let mut factors = vec![T::default(); 2 * self.m * ROW_BLOCK];
        for start in (lo..hi).step_by(ROW_BLOCK) {
            let rows = (hi - start).min(ROW_BLOCK);
            self.fill_tables(g, start, rows, &mut tables, &mut factors);
            match AVX2 {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller checked the feature.
                true => unsafe { T::add_block_avx2(&tables, &codes.bytes, nb, &mut lanes) },
                _ => add_block(&tables, &codes.bytes, nb, &mut lanes),
            }
        }
        let mut out = vec![0f64; out_len];
        for &(d, u) in &codes.of {
            let a = &lanes[u as usize];
            out[d as usize] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        }
        out
    }

    /// The byte tables of rows `start..start + rows` (at most [`ROW_BLOCK`]; missing rows get zeros):
    /// `tables[(b * 256 + v) * ROW_BLOCK + r]` is row `r`'s probability of value `v` of byte `b`, each bit's
    /// factor divided by the larger of `p` and `1 - p`, and byte 0's times `exp(mode_r - top_g)`.
    #[inline(always)]
    fn fill_tables<T: Table>(&self, g: usize, start: usize, rows: usize, tables: &mut [T], factors: &mut [T]) {
        let m = self.m;
        // factors[(2 j + t) * ROW_BLOCK + r]: row r's scaled factor of bit j taking the value t.
        factors.iter_mut().for_each(|f| *f = T::default());
        for r in 0..rows {
            let i = self.order[start + r];
            for (j, &v) in self.p[i * m..(i + 1) * m].iter().enumerate() {
                let c = clamp_p(v);
                let top = c.max(1.0 - c);
                factors[2 * j * ROW_BLOCK + r] = T::of((1.0 - c) / top);
                factors[(2 * j + 1) * ROW_BLOCK + r] = T::of(c / top);
            }
        }
        for b in 0..m.div_ceil(8) {
            let bits = (m - 8 * b).min(8);
            let table = &mut tables[b * 256 * ROW_BLOCK..(b * 256 + (1 << bits)) * ROW_BLOCK];
            let first: &mut [T; ROW_BLOCK] = (&mut table[..ROW_BLOCK]).try_into().expect("a block");
            for (r, f) in first.iter_mut().enumerate() {
                *f = match (r < rows, b) {
                    (false, _) => T::default(),
                    (true, 0) => T::of((self.mode[start + r] - self.top[g]).exp()),
                    (true, _) => T::of(1.0),
                };
            }
            // Doubling (section 3): value v + 2^i of the first i + 1 bits is value v times bit i's factor.
            for i in 0..bits {
                let j = 8 * b + i;
                let f0: &[T; ROW_BLOCK] = factors[2 * j * ROW_BLOCK..][..ROW_BLOCK].try_into().expect("a block");
                let f1: &[T; ROW_BLOCK] = factors[(2 * j + 1) * ROW_BLOCK..][..ROW_BLOCK].try_into().expect("a block");
                let h = 1usize << i;
                let (low, high) = table[..2 * h * ROW_BLOCK].split_at_mut(h * ROW_BLOCK);
                for (src, dst) in low.chunks_exact_mut(ROW_BLOCK).zip(high.chunks_exact_mut(ROW_BLOCK)) {
                    for r in 0..ROW_BLOCK {
                        dst[r] = src[r] * f1[r];
                        src[r] *= f0[r];
                    }
                }
            }
        }
    }
}

/// Adds each code's sum over one block of rows to its lanes: `bytes` the codes (`nb` bytes each, in
/// order), `tables` the block's byte tables ([`RowLogs::fill_tables`]), `lanes[d][l]` code `d`'s running
/// sum of rows `l, l + 8, ..` of the blocks so far.
#[inline(always)]
fn add_block<T: Table>(tables: &[T], bytes: &[u16], nb: usize, lanes: &mut [[f64; 8]]) {
    let row = |b: usize, v: u16| -> &[T; ROW_BLOCK] {
        tables[(b * 256 + v as usize) * ROW_BLOCK..][..ROW_BLOCK].try_into().expect("a block")
    };
    // Every code runs the same steps (no branch on the code), so consecutive codes overlap in the
    // processor; codes in order share their first chunks' table rows in the cache.
    for (code, acc) in bytes.chunks_exact(nb).zip(lanes.iter_mut()) {
        let mut cur = *row(0, code[0]);
        for (b, &v) in code.iter().enumerate().skip(1) {
            let e = row(b, v);
            for r in 0..ROW_BLOCK {
                cur[r] *= e[r];
            }
        }
        // The block's rows in eight lanes in T, then added to the code's f64 lanes.
        let mut part = [T::default(); 8];
        for chunk in cur.chunks_exact(8) {
            for l in 0..8 {
                part[l] += chunk[l];
            }
        }
        for l in 0..8 {
            acc[l] += part[l].wide();
        }
    }
}

/// [`add_block`] for `f32` tables in AVX2 registers: the compiler's own vectorisation of it uses 128-bit
/// registers, and this runs the certificate's kernel about 1.5 times as fast. The same operations in the
/// same order (less the portable loop's first addition, `0 + rows 0-7`, which is exact: the entries are
/// nonnegative and, under [`FlushSubnormals`], never subnormal), so the same bits.
///
/// # Safety
/// The processor has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_block_f32_avx2(tables: &[f32], bytes: &[u16], nb: usize, lanes: &mut [[f64; 8]]) {
    use std::arch::x86_64::*;
    const { assert!(ROW_BLOCK == 32, "a block is four registers of eight f32") };
    let row = |b: usize, v: u16| -> &[f32; ROW_BLOCK] {
        tables[(b * 256 + v as usize) * ROW_BLOCK..][..ROW_BLOCK].try_into().expect("a block")
    };
    for (code, acc) in bytes.chunks_exact(nb).zip(lanes.iter_mut()) {
        // SAFETY: each load reads 8 f32 within a table row of ROW_BLOCK (bounds-checked by `row`); the
        // stores and loads of `acc` read and write its 8 f64.
        unsafe {
            let e = row(0, code[0]).as_ptr();
            let mut cur = [0, 8, 16, 24].map(|o| _mm256_loadu_ps(e.add(o)));
            for (b, &v) in code.iter().enumerate().skip(1) {
                let e = row(b, v).as_ptr();
                for (c, o) in cur.iter_mut().zip([0, 8, 16, 24]) {
                    *c = _mm256_mul_ps(*c, _mm256_loadu_ps(e.add(o)));
                }
            }
            // As add_block: ((rows 0-7 + rows 8-15) + rows 16-23) + rows 24-31, then into f64.
            let part = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(cur[0], cur[1]), cur[2]), cur[3]);
            let a = acc.as_mut_ptr();
            let low = _mm256_cvtps_pd(_mm256_castps256_ps128(part));
            let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(part));
            _mm256_storeu_pd(a, _mm256_add_pd(_mm256_loadu_pd(a), low));
            _mm256_storeu_pd(a.add(4), _mm256_add_pd(_mm256_loadu_pd(a.add(4)), high));
        }
    }
}

/// Each code of `codes` (row-major, `m` entries of 0 or 1 each) as its `ceil(m/8)` bytes: bit `i` of byte
/// `b` is neuron `8 b + i`.
fn code_bytes(codes: &[f64], m: usize) -> Vec<u16> {
    codes
        .chunks_exact(m.max(1))
        .flat_map(|t| t.chunks(8).map(|b| b.iter().rev().fold(0u16, |acc, &v| acc << 1 | (v != 0.0) as u16)))
        .collect()
}

/// A run of rows that one task sums: its group and the positions `lo..hi` of its rows in the grouped order.
type Piece = (usize, usize, usize);

/// A batch's distinct codes in lexicographic order (their bytes, `nb` each) and, for each code, the index
/// of its distinct code: a repeated code is evaluated once.
struct Distinct {
    bytes: Vec<u16>,
    of: Vec<(u32, u32)>,
}

/// The distinct codes among `order` (indices of codes of `nb` bytes each in `bytes`).
fn distinct_codes(bytes: &[u16], nb: usize, mut order: Vec<usize>) -> Distinct {
    let code = |d: usize| &bytes[d * nb..(d + 1) * nb];
    order.sort_by(|&a, &b| code(a).cmp(code(b)));
    let mut out = Distinct { bytes: Vec::new(), of: Vec::with_capacity(order.len()) };
    for (x, &d) in order.iter().enumerate() {
        if x == 0 || code(order[x - 1]) != code(d) {
            out.bytes.extend_from_slice(code(d));
        }
        out.of.push((d as u32, (out.bytes.len() / nb.max(1) - 1) as u32));
    }
    out
}

/// `count` codes drawn from rows: each a uniformly drawn row of `rows` and `t ~ Bernoulli(p_row)`;
/// returns the rows and the codes (row-major `count x m`).
pub fn sample_codes<R: Rng>(p: &[f64], m: usize, rows: &[usize], count: usize, rng: &mut R) -> (Vec<usize>, Vec<f64>) {
    let mut picked = Vec::with_capacity(count);
    let mut codes = Vec::with_capacity(count * m);
    for _ in 0..count {
        let i = rows[rng.random_range(0..rows.len())];
        picked.push(i);
        codes.extend((0..m).map(|j| (rng.random::<f64>() < p[i * m + j]) as u8 as f64));
    }
    (picked, codes)
}

/// Monte-Carlo joint MI for any `m` (docs/design.md, sections 3 and 3c): draw a row `i` uniformly and
/// `t ~ Bernoulli(p_i)`; `log2 P(t | s_i) - log2 P(t)` has mean `I(T; S)`. The log-probabilities of all
/// draws come from [`RowLogs`] (byte tables). `p` is row-major `n x m`. Draws come from `rng`.
pub fn joint_mi_monte_carlo<R: Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    n_groups: usize,
    draws: usize,
    rng: &mut R,
) -> Result<McEstimate> {
    let n = s.len();
    if n == 0 || p.len() != n * m || draws < 2 {
        return Err(Error::param(Param::McSamples, draws, "needs at least 2 draws and a non-empty p of shape n x m"));
    }
    let all: Vec<usize> = (0..n).collect();
    let (rows, codes) = sample_codes(p, m, &all, draws, rng);
    let logs = RowLogs::new(p, m, s, n_groups).log_probs(&codes, true);
    let terms: Vec<f64> =
        rows.iter().zip(&logs).map(|(&i, l)| (l[s[i] as usize] - l[n_groups]) / std::f64::consts::LN_2).collect();
    let d = terms.len() as f64;
    let mean = terms.iter().sum::<f64>() / d;
    let var = terms.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (d - 1.0);
    Ok(McEstimate { mean, stderr: (var / d).sqrt() })
}

/// `log sum_i exp(v_i)`, from the largest value (so no term overflows); `-inf` for no values.
pub(crate) fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Converts a row-major `n x m` slice to an `f64` tensor.
pub fn to_tensor(p: &[f64], m: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(p.to_vec(), (p.len() / m.max(1), m), device)?.to_dtype(DType::F64)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Codes evaluated on some groups only: those entries are [`RowLogs::log_probs`]' bit for bit, the
    /// others NaN; a group no code needs is not visited.
    #[test]
    fn log_probs_of_some_groups_are_those_of_all_bit_for_bit() {
        let mut r = ChaCha8Rng::seed_from_u64(4);
        let (n, m, k) = (5000, 20, 4);
        let s: Vec<u32> = (0..n).map(|_| r.random_range(0..3u32)).collect();
        let p: Vec<f64> = (0..n * m).map(|_| r.random::<f64>()).collect();
        let all: Vec<usize> = (0..n).collect();
        let (_, codes) = sample_codes(&p, m, &all, 300, &mut r);
        let logs = RowLogs::new(&p, m, &s, k);
        let every = logs.log_probs(&codes, false);
        let wanted = |d: usize, g: usize| !(d + g).is_multiple_of(3) && g != 3;
        let some = logs.log_probs_in(&codes, false, Some(&wanted));
        for (d, (got, want)) in some.iter().zip(&every).enumerate() {
            for g in 0..k {
                if wanted(d, g) {
                    assert_eq!(got[g].to_bits(), want[g].to_bits(), "code {d}, group {g}");
                } else {
                    assert!(got[g].is_nan(), "code {d}, group {g}: not wanted");
                }
            }
        }
    }

    /// The estimator before the byte tables (kept as the reference): one GEMM of codes and `D`, then a
    /// log-sum-exp per group.
    ///
    /// The rows' code distributions in log form, for evaluating `log P^_g(t) = log mean_{i in g} q(t | x_i)`
    /// of many codes `t` at once: with `B_i = sum_j ln(1 - p_ij)` and `D_ij = ln p_ij - ln(1 - p_ij)`, row `i`'s
    /// log-likelihood of `t` is `B_i + D_i . t`, so a batch of codes is one GEMM (`p` clamped to
    /// `[1e-12, 1 - 1e-12]` so that hard codes stay finite). Rows are stored group by group, so that each
    /// group's log-sum-exp runs over contiguous memory.
    struct ReferenceRowLogs {
        m: usize,
        base: Vec<f64>,
        diff: Vec<f64>,
        bounds: Vec<usize>,
    }

    impl ReferenceRowLogs {
        /// `p` row-major `n x m`, each row's group `s < k`.
        fn new(p: &[f64], m: usize, s: &[u32], k: usize) -> Self {
            let clamp = |v: f64| v.clamp(Q_EPS, 1.0 - Q_EPS);
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by_key(|&i| s[i]);
            let bounds = group_bounds(s, k);
            let row = |i: usize| &p[i * m..(i + 1) * m];
            let base = order.iter().map(|&i| row(i).iter().map(|&v| (1.0 - clamp(v)).ln()).sum()).collect();
            let diff =
                order.iter().flat_map(|&i| row(i).iter().map(|&v| clamp(v).ln() - (1.0 - clamp(v)).ln())).collect();
            ReferenceRowLogs { m, base, diff, bounds }
        }

        /// For each code of `codes` (row-major `c x m`, entries 0 or 1): `log P^_g(t)` for every group `g`
        /// (`-inf` for an empty group), then, with `overall`, `log P^(t)` over all rows. Codes are processed in
        /// chunks whose log-likelihood matrices stay near 64 MB, in parallel; each code's numbers do not
        /// depend on the chunking or the thread count.
        fn log_probs(&self, codes: &[f64], overall: bool) -> Vec<Vec<f64>> {
            let (n, m) = (self.base.len(), self.m);
            let c = codes.len() / m.max(1);
            let chunk = ((8 << 20) / n.max(1)).clamp(1, 256);
            let starts: Vec<usize> = (0..c).step_by(chunk).collect();
            let k = self.bounds.len() - 1;
            starts
                .par_iter()
                .flat_map_iter(|&start| {
                    let len = chunk.min(c - start);
                    // ll = T (len x m) . D^T (m x n): each code's log-likelihoods contiguous.
                    let mut ll = vec![0f64; len * n];
                    gemm(false, len, m, n, 1.0, &codes[start * m..(start + len) * m], false, &self.diff, true, &mut ll);
                    ll.chunks_mut(n.max(1))
                        .map(|row| {
                            row.iter_mut().zip(&self.base).for_each(|(v, b)| *v += b);
                            let lse = |lo: usize, hi: usize| {
                                log_sum_exp(row[lo..hi].iter().copied()) - ((hi - lo) as f64).ln()
                            };
                            let mut out: Vec<f64> = (0..k).map(|g| lse(self.bounds[g], self.bounds[g + 1])).collect();
                            if overall {
                                out.push(lse(0, n));
                            }
                            out
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    }

    /// Rows for the table tests: soft rows, rows at the tanh layer's limits and hard rows (clamped to
    /// 1e-12: a code far from a hard row underflows the product form and takes the log-domain fallback).
    fn mixed_rows(seed: u64, n: usize, m: usize, k: usize) -> (Vec<f64>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
        let p = (0..n * m)
            .map(|idx| match (idx / m) % 3 {
                0 => rng.random::<f64>(),
                1 => [0.0025, 0.9975][rng.random_range(0..2)],
                _ => rng.random_range(0..2) as f64,
            })
            .collect();
        (p, s)
    }

    /// The byte tables give the reference's log-probabilities (one GEMM of log-likelihoods, then a
    /// log-sum-exp) within their error bound ([`log_error`]) and `f64` rounding, for widths that do and do
    /// not fill their last byte, with an absent group and with codes that need the log-domain fallback.
    #[test]
    fn row_logs_equal_the_reference_estimator() {
        let cases =
            [(60, 50, 1, 2), (61, 300, 7, 3), (62, 257, 8, 2), (63, 500, 9, 4), (64, 700, 32, 2), (65, 90, 43, 3)];
        let mut fallbacks = 0;
        for (seed, n, m, k) in cases.into_iter().chain([(66, 40, 64, 2)]) {
            let (mut p, s) = mixed_rows(seed, n, m, k);
            if seed == 66 {
                // Hard rows only (64 bits, about 20 rows a group): a uniform code is some 24 bits from a group's
                // nearest row, and 17 or more bits from all of them give P^_g < 1e-12^17 < 1e-200.
                p.iter_mut().for_each(|v| *v = v.round());
            }
            let all: Vec<usize> = (0..n).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (_, mut codes) = sample_codes(&p, m, &all, 300, &mut rng);
            // Codes drawn uniformly as well: far from every row, so the product form underflows for some.
            codes.extend((0..50 * m).map(|_| rng.random_range(0..2) as f64));
            let got = RowLogs::new(&p, m, &s, k + 1).log_probs(&codes, true);
            let want = ReferenceRowLogs::new(&p, m, &s, k + 1).log_probs(&codes, true);
            // The reference sums m log-factors of magnitude at most ln(1e12) < 28 in f64: its rounding is
            // within a few m * 28 * eps; the tables are within their error bound.
            let tol = 8.0 * m as f64 * 28.0 * f64::EPSILON;
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(a.len(), k + 2);
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        x.is_nan() && y.is_nan() || (x - y).abs() <= log_error(m) + tol * (1.0 + y.abs()),
                        "m={m}: {x} vs {y}"
                    );
                }
                assert!(a[k].is_nan(), "the absent group");
                fallbacks += a[..k].iter().filter(|&&v| v < TINY.ln()).count();
            }
        }
        assert!(fallbacks > 0, "the log-domain fallback must be exercised");
    }

    /// Weighted rows (docs/design.md, section 4e): the byte tables give `log sum_{i in g} (w_i / W_g) q(t | x_i)`
    /// computed directly as a log-sum-exp, within [`log_error`] and `f64` rounding, over the rows of positive
    /// weight, with codes that need the log-domain fallback; and weights all 1 give the unweighted numbers bit
    /// for bit.
    #[test]
    fn weighted_row_logs_equal_a_direct_weighted_mixture() {
        let mut fallbacks = 0;
        for (seed, n, m, k, hard) in [(80, 400, 9, 3, false), (81, 700, 32, 2, false), (82, 60, 64, 2, true)] {
            let (mut p, s) = mixed_rows(seed, n, m, k);
            if hard {
                p.iter_mut().for_each(|v| *v = v.round());
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // A tenth of the rows weigh 0 and are left out, the others weigh up to 3.
            let w: Vec<f64> =
                (0..n).map(|_| if rng.random::<f64>() < 0.1 { 0.0 } else { 3.0 * rng.random::<f64>() }).collect();
            let rows: Vec<usize> = (0..n).filter(|&i| w[i] > 0.0).collect();
            let (_, mut codes) = sample_codes(&p, m, &rows, 200, &mut rng);
            codes.extend((0..30 * m).map(|_| rng.random_range(0..2) as f64));
            let got = RowLogs::weighted(&p, m, &s, k, &rows, &w).log_probs(&codes, true);
            let clamp = |v: f64| v.clamp(Q_EPS, 1.0 - Q_EPS);
            let log_q = |i: usize, t: &[f64]| -> f64 {
                (0..m)
                    .map(|j| if t[j] != 0.0 { clamp(p[i * m + j]).ln() } else { (1.0 - clamp(p[i * m + j])).ln() })
                    .sum()
            };
            let total =
                |g: Option<u32>| -> f64 { rows.iter().filter(|&&i| g.is_none_or(|g| s[i] == g)).map(|&i| w[i]).sum() };
            let tol = 8.0 * m as f64 * 28.0 * f64::EPSILON;
            for (t, out) in codes.chunks_exact(m).zip(&got) {
                for g in 0..=k {
                    let group = (g < k).then_some(g as u32);
                    let ll =
                        rows.iter().filter(|&&i| group.is_none_or(|g| s[i] == g)).map(|&i| log_q(i, t) + w[i].ln());
                    let want = log_sum_exp(ll) - total(group).ln();
                    assert!(
                        (out[g] - want).abs() <= log_error(m) + tol * (1.0 + want.abs()),
                        "m={m}, group {g}: {} vs {want}",
                        out[g]
                    );
                }
                fallbacks += out[..k].iter().filter(|&&v| v < TINY.ln()).count();
            }
            let ones = vec![1.0; n];
            let all: Vec<usize> = (0..n).collect();
            assert_eq!(
                RowLogs::weighted(&p, m, &s, k, &all, &ones).log_probs(&codes, true),
                RowLogs::new(&p, m, &s, k).log_probs(&codes, true),
                "weights 1, m={m}"
            );
        }
        assert!(fallbacks > 0, "the log-domain fallback must be exercised");
    }

    /// The vector widths the table kernel is compiled for, and any thread count, give the same bits.
    #[test]
    fn row_logs_do_not_depend_on_vector_width_or_threads() {
        let (p, s) = mixed_rows(70, 5000, 32, 2);
        let all: Vec<usize> = (0..p.len() / 32).collect();
        let (_, codes) = sample_codes(&p, 32, &all, 200, &mut ChaCha8Rng::seed_from_u64(70));
        let logs = RowLogs::new(&p, 32, &s, 2);
        let bytes = code_bytes(&codes, 32);
        let (lo, hi) = (logs.bounds[1], logs.bounds[2]);
        let c = bytes.len() / 4;
        let distinct = distinct_codes(&bytes, 4, (0..c).collect());
        fn widths<T: Table + PartialEq + std::fmt::Debug>(
            logs: &RowLogs,
            lo: usize,
            hi: usize,
            codes: &Distinct,
            c: usize,
        ) {
            let baseline = logs.piece_sums_impl::<T, false>((1, lo, hi), codes, c);
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the feature was detected.
                    assert_eq!(baseline, unsafe { logs.piece_sums_avx2::<T>((1, lo, hi), codes, c) });
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the feature was detected.
                    assert_eq!(baseline, unsafe { logs.piece_sums_avx512::<T>((1, lo, hi), codes, c) });
                }
            }
        }
        widths::<f32>(&logs, lo, hi, &distinct, c);
        widths::<f64>(&logs, lo, hi, &distinct, c);
        let with = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| logs.log_probs(&codes, true))
        };
        let one = with(1);
        assert_eq!(one, with(3));
        let mi = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| joint_mi_monte_carlo(&p, 32, &s, 2, 500, &mut ChaCha8Rng::seed_from_u64(1)).unwrap())
        };
        assert_eq!(mi(1), mi(2));
    }

    /// The `f32` pass is within [`log_error`] of the `f64` one wherever its sum is above its floor, and is
    /// not `f64` (the bound is not vacuous); below the floor (codes far from every row of a group) the
    /// `f64` pass takes over, and `log_probs` gives its numbers there.
    #[test]
    fn f32_sums_are_within_their_bound_and_the_f64_pass_takes_the_rest() {
        let (mut above, mut below, mut largest) = (0, 0, 0f64);
        // Mixed rows, and confident ones (every p 0.0025 or 0.9975: a uniform code disagrees with a row in
        // about m / 2 bits, so its f32 sum falls below the floor, its f64 sum not below 1e-200).
        for (seed, n, m, k, confident) in [(90, 3000, 32, 2, false), (91, 1500, 21, 3, true), (92, 800, 64, 2, true)] {
            let (mut p, s) = mixed_rows(seed, n, m, k);
            if confident {
                p.iter_mut().for_each(|v| *v = if *v >= 0.5 { 0.9975 } else { 0.0025 });
            }
            let all: Vec<usize> = (0..n).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (_, mut codes) = sample_codes(&p, m, &all, 300, &mut rng);
            codes.extend((0..100 * m).map(|_| rng.random_range(0..2) as f64));
            let logs = RowLogs::new(&p, m, &s, k);
            let (bytes, pieces, c) = (code_bytes(&codes, m), logs.pieces(), codes.len() / m);
            let narrow = logs.table_sums::<f32>(&bytes, &pieces, None);
            let wide = logs.table_sums::<f64>(&bytes, &pieces, None);
            let got = logs.log_probs(&codes, false);
            let mut here = 0f64;
            for g in 0..k {
                for d in 0..c {
                    let (x, y) = (narrow[g][d], wide[g][d]);
                    if y < TINY {
                        continue;
                    }
                    if x >= logs.f32_floor(g) {
                        above += 1;
                        here = here.max((x.ln() - y.ln()).abs());
                    } else {
                        below += 1;
                        let want = logs.top[g] + y.ln() - logs.log_total[g];
                        assert_eq!(got[d][g].to_bits(), want.to_bits(), "m={m}: the f64 pass's number");
                    }
                }
            }
            assert!(here <= log_error(m), "m={m}: {here} > {}", log_error(m));
            // The measurement docs/design.md quotes (`-- --nocapture` shows it).
            eprintln!("m={m}: largest |ln f32 sum - ln f64 sum| {here:.2e}, bound {:.2e}", log_error(m));
            largest = largest.max(here);
        }
        assert!(largest > 1e-9, "the f32 pass must differ from f64 ({largest})");
        assert!(above > 0 && below > 0, "both passes exercised ({above} above, {below} below)");
    }

    /// A repeated code is evaluated once and gets its numbers, in any position of the batch and whatever
    /// the groups each copy needs.
    #[test]
    fn repeated_codes_get_the_numbers_of_one() {
        let (p, s) = mixed_rows(71, 3000, 20, 3);
        let all: Vec<usize> = (0..p.len() / 20).collect();
        let (_, codes) = sample_codes(&p, 20, &all, 50, &mut ChaCha8Rng::seed_from_u64(71));
        let logs = RowLogs::new(&p, 20, &s, 3);
        let alone = logs.log_probs(&codes, true);
        // Every code three times, interleaved with the others.
        let tripled: Vec<f64> = (0..3).flat_map(|_| codes.iter().copied()).collect();
        let c = alone.len();
        let again = logs.log_probs(&tripled, true);
        for (d, v) in again.iter().enumerate() {
            assert_eq!(v, &alone[d % c], "copy {} of code {}", d / c, d % c);
        }
        // Copies needing different groups: each gets the entries it needs, bit for bit.
        let wanted = |d: usize, g: usize| !(d + g).is_multiple_of(3);
        let some = logs.log_probs_in(&tripled, false, Some(&wanted));
        for (d, v) in some.iter().enumerate() {
            for g in 0..3 {
                match wanted(d, g) {
                    true => assert_eq!(v[g].to_bits(), alone[d % c][g].to_bits(), "code {d} group {g}"),
                    false => assert!(v[g].is_nan()),
                }
            }
        }
    }

    /// Brute force: enumerate every code, `P(t | s)` as a plain average of products over rows.
    fn brute_joint(p: &[Vec<f64>], s: &[u32], k: usize) -> f64 {
        let m = p[0].len();
        let n = p.len() as f64;
        let mut h_cond = 0.0;
        let mut marginal = vec![0.0; 1 << m];
        for g in 0..k as u32 {
            let rows: Vec<&Vec<f64>> = p.iter().zip(s).filter(|(_, &sg)| sg == g).map(|(r, _)| r).collect();
            if rows.is_empty() {
                continue;
            }
            let mut h = 0.0;
            for (code, slot) in marginal.iter_mut().enumerate() {
                let prob: f64 = rows
                    .iter()
                    .map(|r| (0..m).map(|j| if code >> j & 1 == 1 { r[j] } else { 1.0 - r[j] }).product::<f64>())
                    .sum::<f64>()
                    / rows.len() as f64;
                *slot += prob * rows.len() as f64 / n;
                if prob > 0.0 {
                    h -= prob * prob.log2();
                }
            }
            h_cond += rows.len() as f64 / n * h;
        }
        let h: f64 = marginal.iter().filter(|&&q| q > 0.0).map(|q| -q * q.log2()).sum();
        h - h_cond
    }

    fn random_case(seed: u64, n: usize, m: usize, k: usize) -> (Vec<Vec<f64>>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
        let p = s
            .iter()
            .map(|&g| (0..m).map(|_| (rng.random::<f64>() * 0.6 + 0.1 * g as f64).min(0.999)).collect())
            .collect();
        (p, s)
    }

    fn tensors(p: &[Vec<f64>], s: &[u32], k: usize) -> (Tensor, Tensor) {
        let flat: Vec<f64> = p.iter().flatten().copied().collect();
        (to_tensor(&flat, p[0].len(), &Device::Cpu).unwrap(), group_onehot(s, k, &Device::Cpu).unwrap())
    }

    fn scalar(t: Tensor) -> f64 {
        t.to_scalar::<f64>().unwrap()
    }

    #[test]
    fn per_neuron_equals_sum_of_brute_force_marginals() {
        for (seed, k) in [(1, 2), (2, 3), (3, 5)] {
            let (p, s) = random_case(seed, 40, 4, k);
            let (pt, g) = tensors(&p, &s, k);
            let expected: f64 =
                (0..4).map(|j| brute_joint(&p.iter().map(|r| vec![r[j]]).collect::<Vec<_>>(), &s, k)).sum();
            assert!((scalar(per_neuron_mi(&pt, &g).unwrap()) - expected).abs() < 1e-10);
        }
    }

    #[test]
    fn exact_joint_equals_brute_force_enumeration() {
        for (seed, m, k) in [(4, 1, 2), (5, 3, 2), (6, 5, 3), (7, 6, 4)] {
            let (p, s) = random_case(seed, 30, m, k);
            let (pt, g) = tensors(&p, &s, k);
            let fast = scalar(joint_mi_exact(&pt, &g).unwrap());
            assert!((fast - brute_joint(&p, &s, k)).abs() < 1e-10, "m={m} k={k}");
        }
    }

    #[test]
    fn xor_example_per_neuron_zero_joint_one_bit() {
        let p = vec![vec![0., 0.], vec![1., 1.], vec![0., 1.], vec![1., 0.]];
        let s = vec![0, 0, 1, 1];
        let (pt, g) = tensors(&p, &s, 2);
        assert!(scalar(per_neuron_mi(&pt, &g).unwrap()).abs() < 1e-9);
        assert!((scalar(joint_mi_exact(&pt, &g).unwrap()) - 1.0).abs() < 1e-9);
        let flat: Vec<f64> = p.iter().flatten().copied().collect();
        let mc = joint_mi_monte_carlo(&flat, 2, &s, 2, 200, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!((mc.mean - 1.0).abs() < 1e-9 && mc.stderr < 1e-9);
    }

    #[test]
    fn zero_when_p_does_not_depend_on_s() {
        // Every group holds the same multiset of rows.
        let base = random_case(8, 10, 5, 1).0;
        let p: Vec<Vec<f64>> = base.iter().chain(&base).chain(&base).cloned().collect();
        let s: Vec<u32> = (0..30).map(|i| (i / 10) as u32).collect();
        let (pt, g) = tensors(&p, &s, 3);
        assert!(scalar(per_neuron_mi(&pt, &g).unwrap()).abs() < 1e-10);
        assert!(scalar(joint_mi_exact(&pt, &g).unwrap()).abs() < 1e-10);
        let flat: Vec<f64> = p.iter().flatten().copied().collect();
        let mc = joint_mi_monte_carlo(&flat, 5, &s, 3, 300, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert!(mc.mean.abs() < 1e-10);
    }

    #[test]
    fn monte_carlo_agrees_with_exact_within_three_standard_errors() {
        for (seed, m, k) in [(9, 6, 2), (10, 8, 3)] {
            let (p, s) = random_case(seed, 200, m, k);
            let (pt, g) = tensors(&p, &s, k);
            let exact = scalar(joint_mi_exact(&pt, &g).unwrap());
            let flat: Vec<f64> = p.iter().flatten().copied().collect();
            let mc = joint_mi_monte_carlo(&flat, m, &s, k, 4000, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            assert!(exact > 0.01, "the case must carry information: {exact}");
            assert!((mc.mean - exact).abs() < 3.0 * mc.stderr, "exact {exact} mc {mc:?}");
        }
    }

    #[test]
    fn absent_groups_contribute_nothing() {
        let (p, s) = random_case(11, 20, 3, 2);
        let (pt, g2) = tensors(&p, &s, 2);
        let (_, g4) = tensors(&p, &s, 4);
        let a = scalar(per_neuron_mi(&pt, &g2).unwrap());
        let b = scalar(per_neuron_mi(&pt, &g4).unwrap());
        assert!(b.is_finite() && (a - b).abs() < 1e-12);
        let a = scalar(joint_mi_exact(&pt, &g2).unwrap());
        let b = scalar(joint_mi_exact(&pt, &g4).unwrap());
        assert!((a - b).abs() < 1e-12);
    }

    #[test]
    fn fused_per_neuron_equals_tensor_form_in_value_and_gradient() {
        for (seed, k) in [(13, 2), (14, 4)] {
            let (p, s) = random_case(seed, 50, 6, k);
            let flat: Vec<f64> = p.iter().flatten().copied().collect();
            let g = group_onehot(&s, k + 1, &Device::Cpu).unwrap(); // one absent group
            for dtype in [DType::F64, DType::F32] {
                let var =
                    candle_core::Var::from_tensor(&to_tensor(&flat, 6, &Device::Cpu).unwrap().to_dtype(dtype).unwrap())
                        .unwrap();
                let fused = per_neuron_mi_fused(var.as_tensor(), &s, k + 1).unwrap();
                let reference = per_neuron_mi(&var.as_tensor().to_dtype(DType::F64).unwrap(), &g).unwrap();
                let (a, b) =
                    (fused.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap(), scalar(reference.clone()));
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-6 };
                assert!((a - b).abs() < tol * (1.0 + b.abs()), "{a} vs {b}");
                let ga: Vec<f64> = (fused * 3.0)
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(&var)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let gb: Vec<f64> = (reference * 3.0)
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(&var)
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                for (x, y) in ga.iter().zip(&gb) {
                    assert!((x - y).abs() < tol * (1.0 + y.abs()), "{x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn pairwise_estimate_tracks_the_exact_value() {
        // Zero without dependence, 1 bit on XOR, and ordered like the exact MI on random cases.
        let base = random_case(15, 10, 4, 1).0;
        let p: Vec<Vec<f64>> = base.iter().chain(&base).cloned().collect();
        let s: Vec<u32> = (0..20).map(|i| (i / 10) as u32).collect();
        let (pt, g) = tensors(&p, &s, 2);
        assert!(scalar(pairwise_kl_mi(&pt, &g).unwrap()).abs() < 1e-9);
        let xor = vec![vec![1e-9, 1e-9], vec![1.0 - 1e-9, 1.0 - 1e-9], vec![1e-9, 1.0 - 1e-9], vec![1.0 - 1e-9, 1e-9]];
        let (pt, g) = tensors(&xor, &[0, 0, 1, 1], 2);
        // The 1e-6 clamp leaves e^-KL ~ 1e-6 between codes one bit apart: about 3e-6 bits below 1.
        assert!((scalar(pairwise_kl_mi(&pt, &g).unwrap()) - 1.0).abs() < 1e-5);
        let mut pairs = Vec::new();
        for seed in 0..6 {
            let (p, s) = random_case(20 + seed, 60, 5, 2);
            let shifted: Vec<Vec<f64>> = p
                .iter()
                .zip(&s)
                .map(|(r, &g)| r.iter().map(|v| (v + 0.05 * seed as f64 * g as f64).min(0.99)).collect())
                .collect();
            let (pt, g) = tensors(&shifted, &s, 2);
            pairs.push((scalar(joint_mi_exact(&pt, &g).unwrap()), scalar(pairwise_kl_mi(&pt, &g).unwrap())));
        }
        pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        assert!(pairs.windows(2).filter(|w| w[1].1 > w[0].1).count() >= 4, "{pairs:?}");
    }

    #[test]
    fn conditional_mi_equals_brute_force_per_label() {
        let (p, s) = random_case(30, 40, 3, 3);
        let y: Vec<u32> = (0..40).map(|i| (i % 3 == 0) as u32).collect();
        let (pt, g) = tensors(&p, &s, 3);
        let got = scalar(conditional(joint_mi_exact, &pt, &g, &y, 3).unwrap());
        let mut expected = 0.0;
        for label in 0..2 {
            let rows: Vec<usize> = (0..40).filter(|&i| y[i] == label).collect();
            let pp: Vec<Vec<f64>> = rows.iter().map(|&i| p[i].clone()).collect();
            let ss: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
            expected += rows.len() as f64 / 40.0 * brute_joint(&pp, &ss, 3);
        }
        assert!((got - expected).abs() < 1e-10);
    }

    #[test]
    fn fused_joint_equals_tensor_form_in_value_and_gradient() {
        for (seed, m, k) in [(40, 1, 2), (41, 5, 2), (42, 6, 3), (43, 9, 4)] {
            let (p, s) = random_case(seed, 37, m, k);
            let flat: Vec<f64> = p.iter().flatten().copied().collect();
            let g = group_onehot(&s, k + 1, &Device::Cpu).unwrap(); // one absent group
            let var = candle_core::Var::from_tensor(&to_tensor(&flat, m, &Device::Cpu).unwrap()).unwrap();
            let fused = joint_mi_fused(var.as_tensor(), &s, k + 1).unwrap();
            let reference = joint_mi_exact(var.as_tensor(), &g).unwrap();
            let (a, b) = (scalar(fused.clone()), scalar(reference.clone()));
            assert!((a - b).abs() < 1e-12, "m={m}: {a} vs {b}");
            let grad = |t: Tensor| -> Vec<f64> {
                (t * 2.0).unwrap().backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap()
            };
            for (x, y) in grad(fused).iter().zip(&grad(reference)) {
                assert!((x - y).abs() < 1e-10 * (1.0 + y.abs()), "m={m}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn host_distributions_equal_the_tensor_form_on_a_large_split() {
        let (p, s) = random_case(50, 1500, 7, 3);
        let (pt, g) = tensors(&p, &s, 3);
        let flat: Vec<f64> = p.iter().flatten().copied().collect();
        let (value, dists, _) = joint_mi_host_distributions(&flat, 7, &s, 3);
        assert!((value - scalar(joint_mi_exact(&pt, &g).unwrap())).abs() < 1e-10);
        let reference: Vec<Vec<f64>> = code_distributions(&pt, &g).unwrap().to_vec2().unwrap();
        for (a, b) in dists.iter().zip(&reference) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-12);
            }
        }
        let (pn, _) = per_neuron_mi_host(&flat, 7, &s, 3, false);
        assert!((pn - scalar(per_neuron_mi(&pt, &g).unwrap())).abs() < 1e-10);
    }

    /// Gradient of the penalty through `p` against central finite differences.
    #[test]
    fn per_neuron_gradient_matches_finite_differences() {
        let (p, s) = random_case(12, 12, 3, 3);
        let flat: Vec<f64> = p.iter().flatten().copied().collect();
        let g = group_onehot(&s, 3, &Device::Cpu).unwrap();
        let var = candle_core::Var::from_tensor(&to_tensor(&flat, 3, &Device::Cpu).unwrap()).unwrap();
        let fused = |p: &Tensor, _: &Tensor| joint_mi_fused(p, &s, 3);
        type MiFn<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;
        let fs: [MiFn; 4] = [&per_neuron_mi, &joint_mi_exact, &pairwise_kl_mi, &fused];
        for f in fs {
            let grads = f(var.as_tensor(), &g).unwrap().backward().unwrap();
            let grad: Vec<f64> = grads.get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let h = 1e-6;
            for idx in 0..flat.len() {
                let eval = |delta: f64| {
                    let mut q = flat.clone();
                    q[idx] += delta;
                    scalar(f(&to_tensor(&q, 3, &Device::Cpu).unwrap(), &g).unwrap())
                };
                let fd = (eval(h) - eval(-h)) / (2.0 * h);
                assert!((fd - grad[idx]).abs() < 1e-6 * (1.0 + fd.abs()), "idx {idx}: fd {fd} vs {}", grad[idx]);
            }
        }
    }

    /// The TV penalty equals the total variation of brute-force code distributions (three groups: the
    /// largest pair), and its gradient equals finite differences away from ties.
    #[test]
    fn total_variation_penalty_equals_brute_force_and_its_gradient_finite_differences() {
        use candle_core::Var;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (n, m, k) = (12, 3, 3);
        let p: Vec<f64> = (0..n * m).map(|_| rng.random_range(0.05..0.95)).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let dev = Device::Cpu;
        let groups = group_onehot(&s, k, &dev).unwrap();
        let var = Var::from_tensor(&to_tensor(&p, m, &dev).unwrap()).unwrap();
        let tv = total_variation_exact(var.as_tensor(), &groups).unwrap();
        // Brute force: each group's distribution over the 2^m codes, the largest pairwise TV.
        let dist = |g: u32| -> Vec<f64> {
            let rows: Vec<usize> = (0..n).filter(|&i| s[i] == g).collect();
            (0..1usize << m)
                .map(|t| {
                    rows.iter()
                        .map(|&i| {
                            (0..m)
                                .map(|j| if t >> j & 1 == 1 { p[i * m + j] } else { 1.0 - p[i * m + j] })
                                .product::<f64>()
                        })
                        .sum::<f64>()
                        / rows.len() as f64
                })
                .collect()
        };
        let d: Vec<Vec<f64>> = (0..k as u32).map(dist).collect();
        let mut brute: f64 = 0.0;
        for a in 0..k {
            for b in a + 1..k {
                brute = brute.max(d[a].iter().zip(&d[b]).map(|(x, y)| (x - y).max(0.0)).sum());
            }
        }
        let value = tv.to_scalar::<f64>().unwrap();
        assert!((value - brute).abs() < 1e-12, "{value} vs {brute}");
        let grad: Vec<f64> = tv.backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let h = 1e-6;
        for idx in [0, 7, 20, 35] {
            let f = |delta: f64| {
                let mut q = p.clone();
                q[idx] += delta;
                total_variation_exact(&to_tensor(&q, m, &dev).unwrap(), &groups).unwrap().to_scalar::<f64>().unwrap()
            };
            let fd = (f(h) - f(-h)) / (2.0 * h);
            assert!((fd - grad[idx]).abs() < 1e-6, "p[{idx}]: {} vs {fd}", grad[idx]);
        }
    }
}

//! The information penalty estimated over the whole training set rather than one batch (docs/design.md,
//! section 3b).
//!
//! `I(T; S)` and `I(T; S | Y)` are functions of the per-cell averages of each row's code statistics, the
//! cells being the `(y, s)` pairs: `theta_{ys} = mean_{i in (y,s)} p_i` for the per-neuron form (design section 2) and `P(t | y, s) = mean_{i in (y,s)} prod_j Bernoulli(t_j; p_ij)` for the joint form (section 3). A batch alone estimates them badly when a cell is rare: at rho 0.99 a batch of 128 biased digits holds
//! one off-colour image or none, so `I(T; S | Y)` on the batch is close to 0 whatever the network does. The
//! bank keeps every training row's latest `p` (detached) and the per-cell sums of its statistics; on each
//! step the batch's rows are swapped out for their live, differentiable values. The estimate is the MI of
//! the whole training set with stale rows, its gradient flows through the batch: a memory bank in the sense
//! of contrastive learning. Cost per step: one pass over the batch's cells, independent of the training-set
//! size.

use super::{mi, PenaltyKind, JOINT_PENALTY_M_MAX};
use crate::error::{Error, Result};
use crate::schema::Param;
use candle_core::{DType, Device, Tensor};

/// Which quantity the bank estimates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `sum_j I(T_j; S)` (docs/design.md, section 2).
    PerNeuron,
    /// The exact joint `I(T; S)` (docs/design.md, section 3), `m <= 16`.
    Joint,
    /// The largest total variation between two groups' code distributions, `m <= 16` (the joint form's
    /// statistics).
    Tv,
}

impl Form {
    /// The bank's form of a training penalty (the pairwise and adversarial penalties have none).
    pub fn of(kind: PenaltyKind) -> Result<Form> {
        match kind {
            PenaltyKind::PerNeuron => Ok(Form::PerNeuron),
            PenaltyKind::Joint => Ok(Form::Joint),
            PenaltyKind::Tv => Ok(Form::Tv),
            other => Err(Error::param(
                Param::Penalty,
                format!("{other}@bank"),
                format!("the bank estimates the per-neuron and joint penalties, not {other}"),
            )),
        }
    }
}

/// Per-(label, group) sums of the rows' code statistics, and each row's latest `p`.
pub struct CellBank {
    form: Form,
    m: usize,
    n_labels: usize,
    n_groups: usize,
    /// Row-major `n x m`, the latest `p` of every row.
    p: Vec<f32>,
    /// Cell of every row: `y * n_groups + s`.
    cell: Vec<usize>,
    /// `[L K, d]` sums of the statistics (`d = m` or `2^m`).
    sums: Vec<f64>,
    /// Rows per cell.
    counts: Vec<f64>,
}

impl CellBank {
    /// A bank over `n` rows with their current `p` (row-major `n x m`), labels `y < n_labels` and groups
    /// `s < n_groups`.
    pub fn new(
        form: Form,
        p: Vec<f32>,
        m: usize,
        y: &[u32],
        s: &[u32],
        n_labels: usize,
        n_groups: usize,
    ) -> Result<Self> {
        if form != Form::PerNeuron && m > JOINT_PENALTY_M_MAX {
            return Err(Error::param(
                Param::Hidden,
                m,
                format!("the joint penalty enumerates 2^m codes: m must be at most {JOINT_PENALTY_M_MAX}"),
            ));
        }
        let n = y.len();
        assert!(p.len() == n * m && s.len() == n);
        let cell: Vec<usize> = y.iter().zip(s).map(|(&y, &s)| y as usize * n_groups + s as usize).collect();
        let mut counts = vec![0f64; n_labels * n_groups];
        for &c in &cell {
            counts[c] += 1.0;
        }
        let d = if form == Form::PerNeuron { m } else { 1 << m };
        let mut bank =
            CellBank { form, m, n_labels, n_groups, p, cell, sums: vec![0f64; n_labels * n_groups * d], counts };
        // Fill the sums in slices, so that the joint form never holds more than a slice of 2^m columns.
        for start in (0..n).step_by(1024) {
            let rows: Vec<usize> = (start..(start + 1024).min(n)).collect();
            let (cells, stats) = bank.cell_stats(&bank.stored(&rows)?, &rows)?;
            bank.add(&cells, &stats.to_vec2::<f64>()?, 1.0);
        }
        Ok(bank)
    }

    fn d(&self) -> usize {
        if self.form == Form::PerNeuron {
            self.m
        } else {
            1 << self.m
        }
    }

    /// The stored `p` of some rows, as an `f64` tensor.
    fn stored(&self, rows: &[usize]) -> Result<Tensor> {
        let v: Vec<f64> =
            rows.iter().flat_map(|&r| self.p[r * self.m..(r + 1) * self.m].iter().map(|&x| x as f64)).collect();
        Ok(Tensor::from_vec(v, (rows.len(), self.m), &Device::Cpu)?)
    }

    /// The cells present among `rows` and the sums of the rows' statistics per such cell (`[q, d]`,
    /// differentiable through `p`).
    fn cell_stats(&self, p: &Tensor, rows: &[usize]) -> Result<(Vec<usize>, Tensor)> {
        let mut cells: Vec<usize> = rows.iter().map(|&r| self.cell[r]).collect();
        cells.sort_unstable();
        cells.dedup();
        let position = |c: usize| cells.binary_search(&c).unwrap() as u32;
        let local: Vec<u32> = rows.iter().map(|&r| position(self.cell[r])).collect();
        let onehot = mi::group_onehot(&local, cells.len(), p.device())?;
        let stats = match self.form {
            Form::PerNeuron => onehot.t()?.matmul(p)?,
            Form::Joint | Form::Tv => {
                let sizes = onehot.sum(0)?.unsqueeze(1)?;
                mi::code_distributions(p, &onehot)?.broadcast_mul(&sizes)?
            }
        };
        Ok((cells, stats))
    }

    fn add(&mut self, cells: &[usize], stats: &[Vec<f64>], sign: f64) {
        let d = self.d();
        for (&c, row) in cells.iter().zip(stats) {
            for (a, b) in self.sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                *a += sign * b;
            }
        }
    }

    /// The penalty in bits (`f32` scalar): the MI of the whole bank with `rows` replaced by their live
    /// `p` (`[b, m]`, differentiable), `I(T; S | Y)` when `conditional`, else `I(T; S)`. Also returns the
    /// swap it computed, for [`CellBank::commit`] once the step is taken.
    pub fn penalty(&self, p: &Tensor, rows: &[usize], conditional: bool) -> Result<(Tensor, Swap)> {
        let dev = p.device();
        let p = p.to_dtype(DType::F64)?;
        let d = self.d();
        let (cells, live) = self.cell_stats(&p, rows)?;
        let (_, old) = self.cell_stats(&self.stored(rows)?.to_device(dev)?, rows)?;
        let idx = Tensor::from_vec(cells.iter().map(|&c| c as u32).collect::<Vec<_>>(), cells.len(), dev)?;
        let base = Tensor::from_vec(self.sums.clone(), (self.counts.len(), d), dev)?;
        let swap = Swap {
            rows: rows.to_vec(),
            p: p.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            cells: cells.clone(),
            old: old.to_vec2()?,
            new: live.detach().to_vec2()?,
        };
        let sums = base.index_add(&idx, &(live - old)?, 0)?;
        let (l, k) = (self.n_labels, self.n_groups);
        let counts = Tensor::from_vec(self.counts.clone(), (l, k), dev)?;
        let sums = sums.reshape((l, k, d))?;
        let n: f64 = self.counts.iter().sum();
        let value = if conditional {
            let mut total = Tensor::zeros((), DType::F64, dev)?;
            for y in 0..l {
                let n_y: f64 = self.counts[y * k..(y + 1) * k].iter().sum();
                if n_y == 0.0 {
                    continue;
                }
                let c = counts.get(y)?;
                let term = self.mi_from_sums(&sums.get(y)?, &c)?;
                total = (total + (term * (n_y / n))?)?;
            }
            total
        } else {
            self.mi_from_sums(&sums.sum(0)?, &counts.sum(0)?)?
        };
        Ok((value.to_dtype(DType::F32)?, swap))
    }

    /// MI from per-group sums `[K, d]` and group sizes `[K]`.
    fn mi_from_sums(&self, sums: &Tensor, counts: &Tensor) -> Result<Tensor> {
        let means = sums.broadcast_div(&counts.clamp(1.0, f64::MAX)?.unsqueeze(1)?)?;
        let weights = (counts / counts.sum_all()?.to_scalar::<f64>()?.max(1.0))?;
        match self.form {
            Form::Joint => mi::joint_mi_from_distributions(&means, &weights),
            Form::Tv => mi::tv_from_distributions(&means, counts),
            Form::PerNeuron => {
                let theta = weights.unsqueeze(0)?.matmul(&means)?;
                let h = mi::binary_entropy_bits(&theta)?.sum_all()?;
                let h_s = mi::binary_entropy_bits(&means)?.sum(1)?;
                Ok((h - (weights * h_s)?.sum_all()?)?)
            }
        }
    }

    /// Makes a step's swap permanent: the rows' new `p` and the cell sums' change, both computed by
    /// [`CellBank::penalty`] (no statistics are computed again).
    pub fn commit(&mut self, swap: Swap) {
        for (i, &r) in swap.rows.iter().enumerate() {
            self.p[r * self.m..(r + 1) * self.m].copy_from_slice(&swap.p[i * self.m..(i + 1) * self.m]);
        }
        // Old out, new in, as two sums: the same arithmetic as rebuilding the rows' statistics.
        self.add(&swap.cells, &swap.old, -1.0);
        self.add(&swap.cells, &swap.new, 1.0);
    }
}

/// What one step changes in a bank: the batch rows' new `p`, and their cells' statistics summed over
/// the rows' stored and new `p`.
pub struct Swap {
    rows: Vec<usize>,
    p: Vec<f32>,
    cells: Vec<usize>,
    old: Vec<Vec<f64>>,
    new: Vec<Vec<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use rand::{Rng, SeedableRng};

    fn setup(n: usize, m: usize) -> (Vec<f32>, Vec<u32>, Vec<u32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let p: Vec<f32> = (0..n * m).map(|_| rng.random_range(0.05..0.95)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
        let s: Vec<u32> = (0..n).map(|_| rng.random_range(0..4)).collect();
        (p, y, s)
    }

    /// The bank's penalty equals the MI of the whole set computed directly (mi::per_neuron_mi,
    /// mi::joint_mi_exact, mi::conditional), before and after rows change; its gradient equals the direct
    /// form's gradient on the batch rows.
    #[test]
    fn bank_equals_the_whole_set_mi_and_its_gradient() {
        let (n, m) = (60, 4);
        let (p0, y, s) = setup(n, m);
        let dev = Device::Cpu;
        for form in [Form::PerNeuron, Form::Joint, Form::Tv] {
            for conditional in [false, true] {
                let mut bank = CellBank::new(form, p0.clone(), m, &y, &s, 3, 4).unwrap();
                let mut current = p0.clone();
                let direct_f = match form {
                    Form::PerNeuron => mi::per_neuron_mi,
                    Form::Joint => mi::joint_mi_exact,
                    Form::Tv => mi::total_variation_exact,
                };
                for step in 0..3 {
                    let rows: Vec<usize> = (step * 7..step * 7 + 12).collect();
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step as u64);
                    let live: Vec<f32> = (0..rows.len() * m).map(|_| rng.random_range(0.05..0.95)).collect();
                    let var = Var::from_tensor(
                        &Tensor::from_vec(live.iter().map(|&v| v as f64).collect::<Vec<_>>(), (rows.len(), m), &dev)
                            .unwrap(),
                    )
                    .unwrap();
                    let (ours, swap) = bank.penalty(var.as_tensor(), &rows, conditional).unwrap();
                    // Direct: the whole set with the batch rows replaced, as one differentiable tensor.
                    let mut parts = Vec::new();
                    for r in 0..n {
                        if let Some(i) = rows.iter().position(|&x| x == r) {
                            parts.push(var.as_tensor().get(i).unwrap());
                        } else {
                            let v: Vec<f64> = current[r * m..(r + 1) * m].iter().map(|&x| x as f64).collect();
                            parts.push(Tensor::from_vec(v, m, &dev).unwrap());
                        }
                    }
                    let all = Tensor::stack(&parts, 0).unwrap();
                    let groups = mi::group_onehot(&s, 4, &dev).unwrap();
                    let direct = if conditional {
                        mi::conditional(direct_f, &all, &groups, &y, 3).unwrap()
                    } else {
                        direct_f(&all, &groups).unwrap()
                    };
                    let (a, b) = (
                        ours.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap(),
                        direct.to_scalar::<f64>().unwrap(),
                    );
                    assert!((a - b).abs() < 1e-5, "{form:?} conditional {conditional}: {a} vs {b}");
                    let g1 =
                        ours.backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                    let g2 =
                        direct.backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                    for (u, v) in g1.iter().zip(&g2) {
                        assert!((u - v).abs() < 1e-6 * (1.0 + v.abs()), "{form:?}: gradient {u} vs {v}");
                    }
                    bank.commit(swap);
                    for (i, &r) in rows.iter().enumerate() {
                        current[r * m..(r + 1) * m].copy_from_slice(&live[i * m..(i + 1) * m]);
                    }
                }
            }
        }
    }
}

//! The fused step's building blocks: vectorisable `tanh` and `exp`, a batch's rows as their nonzeros
//! ([`SparseRows`]), and the register-blocked product of those rows with a weight matrix. Every loop here is
//! element-wise or sums in a fixed order, so a function gives the same bits at any vector width.

/// `tanh` as a rational minimax approximation on `[-7.9, 7.9]` (the coefficients Eigen uses for `float`),
/// relative error below 5e-7 against `f32::tanh` everywhere (tested), and 4x cheaper: libm's `tanhf` was a
/// third of the step's time.
#[inline(always)]
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

/// `exp` in a form the compiler vectorises (Cephes' `expf`: range reduction by `ln 2`, a degree-6
/// polynomial, the exponent written into the bits), within 2 ulp of `f32::exp` on `[-87, 88]` (tested); the
/// argument is clamped there, so the result is finite and positive. libm's `expf` is a call per element
/// and was a sixth of the step's time in the sigmoid of the stochastic layer.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x / ln 2 to the nearest integer n by adding 1.5 * 2^23: the sum's last bits are then n in two's
    // complement, read from the bits (a float-to-int cast would keep the loop from vectorising).
    let t = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = t - 12_582_912.0;
    let n_bits = t.to_bits().wrapping_sub(12_582_912f32.to_bits());
    let r = x - n * 0.693_359_375 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// Rows in compressed form: row `i`'s nonzero entries are `entries[start[i]..start[i + 1]]`, (column,
/// value) pairs side by side so that a row is one stretch of memory. A one-hot encoded table is mostly
/// zeros (Adult: about 14 nonzeros of 102), and the first layer then costs the nonzeros, not the width.
#[derive(Clone, Debug, Default)]
pub struct SparseRows {
    start: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl SparseRows {
    /// No rows.
    pub fn clear(&mut self) {
        self.start.clear();
        self.start.push(0);
        self.entries.clear();
    }

    /// Appends one dense row (its nonzeros; a NaN is kept, so it propagates as in the dense product).
    pub fn push_row(&mut self, row: &[f32]) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        // Branch-free: every cell is written, and the end advances past the nonzero ones only.
        let base = self.entries.len();
        self.entries.resize(base + row.len(), (0, 0.0));
        let entries = &mut self.entries[base..];
        let mut end = 0;
        for (j, &v) in row.iter().enumerate() {
            entries[end] = (j as u32, v);
            end += (v != 0.0) as usize;
        }
        self.entries.truncate(base + end);
        self.start.push(base + end);
    }

    /// Appends row `i` of `other` (a batch gathered into one stretch of memory).
    pub fn push_from(&mut self, other: &SparseRows, i: usize) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        self.entries.extend_from_slice(&other.entries[other.start[i]..other.start[i + 1]]);
        self.start.push(self.entries.len());
    }

    /// The rows of a row-major matrix with `d` columns.
    pub fn from_dense(x: &[f32], d: usize) -> Self {
        let mut s = SparseRows::default();
        s.clear();
        x.chunks_exact(d).for_each(|row| s.push_row(row));
        s
    }

    /// True when the compressed form pays: at most a third of the cells of the first (up to) 4,096 rows
    /// are nonzero. Decided once per training run, so every batch takes the same path.
    pub fn pays_for(x: &[f32], d: usize) -> bool {
        let head = &x[..x.len().min(4096 * d)];
        !head.is_empty() && head.iter().filter(|&&v| v != 0.0).count() * 3 <= head.len()
    }

    pub(crate) fn rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Row `i`'s (column, value) pairs.
    pub(crate) fn entries(&self, i: usize) -> &[(u32, f32)] {
        &self.entries[self.start[i]..self.start[i + 1]]
    }

    pub(crate) fn row(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let r = self.start[i]..self.start[i + 1];
        self.entries[r].iter().map(|&(c, v)| (c as usize, v))
    }
}

/// `out += sum of v * w[c, :]` over the pairs `(c, v)` of `entries`, in their order, for a
/// row-major `w` with `out.len()` columns: a block of `B` columns sums in registers, not through a store
/// and reload per pair.
#[inline(always)]
fn combine_block<const B: usize>(out: &mut [f32], j0: usize, entries: &[(u32, f32)], w: &[f32], width: usize) {
    let mut acc: [f32; B] = out.try_into().expect("a block of B columns");
    for &(c, v) in entries {
        let wr: &[f32; B] = w[c as usize * width + j0..][..B].try_into().expect("B weights");
        for k in 0..B {
            acc[k] += v * wr[k];
        }
    }
    out.copy_from_slice(&acc);
}

/// `out += sum of v * w[c, :]` over `(c, v)` in order: 64 columns at a time, then 16, then one by one.
/// Each output sums its terms in the pairs' order whatever the blocking, so the result does not depend on
/// the vector width: the sparse first layer's product, a row's nonzeros times rows of the weights.
#[inline(always)]
pub(crate) fn combine_rows(out: &mut [f32], entries: &[(u32, f32)], w: &[f32]) {
    let width = out.len();
    let mut j0 = 0;
    while j0 + 64 <= width {
        combine_block::<64>(&mut out[j0..j0 + 64], j0, entries, w, width);
        j0 += 64;
    }
    while j0 + 16 <= width {
        combine_block::<16>(&mut out[j0..j0 + 16], j0, entries, w, width);
        j0 += 16;
    }
    for &(c, v) in entries {
        let c = c as usize;
        axpy(&mut out[j0..], v, &w[c * width + j0..(c + 1) * width]);
    }
}

/// The inputs of one step: dense rows (row-major `n x d`), or the batch's rows compressed (the training
/// loop gathers them into one [`SparseRows`], so that the step reads one stretch of memory).
#[derive(Clone, Copy, Debug)]
pub enum Rows<'a> {
    /// Row-major `n x d`.
    Dense(&'a [f32]),
    /// The batch's rows, compressed.
    Sparse(&'a SparseRows),
}

/// `acc += a * x` over two equal-length slices (a loop the compiler vectorises).
#[inline(always)]
pub(crate) fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    for (o, &v) in acc.iter_mut().zip(x) {
        *o += a * v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn exp_fast_is_within_2_ulp_of_exp() {
        let mut worst = 0f64;
        for i in 0..=1_750_000 {
            let x = -87.0 + i as f32 * 1e-4;
            let (a, b) = (x.exp() as f64, exp_fast(x) as f64);
            worst = worst.max((a - b).abs() / a);
        }
        // 2 ulp of a float is at most 2^-22 relative.
        assert!(worst <= 2.0 * f32::EPSILON as f64, "{worst}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-1000.0) > 0.0 && exp_fast(1000.0).is_finite());
        assert!(exp_fast(f32::NAN).is_nan());
    }

    /// The widths the step is compiled for give the same bits (the claim on [`FusedNet::step`]).
    #[test]
    fn sparse_rows_keep_the_nonzeros_in_order() {
        let x = [0.0, 2.0, 0.0, -1.0, 0.0, 0.0, f32::NAN, 0.0, 0.0];
        let s = SparseRows::from_dense(&x, 3);
        assert_eq!(s.rows(), 3);
        assert_eq!(s.row(0).collect::<Vec<_>>(), vec![(1, 2.0)]);
        assert_eq!(s.row(1).collect::<Vec<_>>(), vec![(0, -1.0)]);
        let r2: Vec<_> = s.row(2).collect();
        assert!(r2.len() == 1 && r2[0].0 == 0 && r2[0].1.is_nan());
        assert!(SparseRows::pays_for(&x, 3));
        assert!(!SparseRows::pays_for(&[1.0, 0.0, 2.0], 3));
    }
}

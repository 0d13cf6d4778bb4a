//! Probes that try to recover the sensitive attribute from a representation (docs/design.md, section 5): an
//! L2-regularised logistic regression and a random forest of 100 trees, both giving class probabilities so
//! that AUC is defined. Trained on the training split's representations, scored on the test split.

use super::metrics::{accuracy, macro_auc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A probe's score on the test split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeScore {
    /// AUC for `s` (macro one-vs-rest for more than two groups).
    pub auc: f64,
    /// Accuracy of the most probable group.
    pub accuracy: f64,
}

/// A representation: row-major `n x d` features with group labels.
#[derive(Clone, Copy, Debug)]
pub struct Repr<'a> {
    /// Features.
    pub x: &'a [f64],
    /// Width.
    pub d: usize,
    /// Groups.
    pub s: &'a [u32],
}

impl Repr<'_> {
    fn n(&self) -> usize {
        self.s.len()
    }
    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// Scores class probabilities: AUC and accuracy.
fn score(probs: &[Vec<f64>], s: &[u32]) -> ProbeScore {
    let k = probs.len();
    let pred: Vec<u32> =
        (0..s.len()).map(|i| (0..k).max_by(|&a, &b| probs[a][i].total_cmp(&probs[b][i])).unwrap() as u32).collect();
    ProbeScore { auc: macro_auc(probs, s), accuracy: accuracy(&pred, s) }
}

/// True when every feature is finite (a probe of a broken representation scores `NaN`, never hangs).
fn finite(r: &Repr) -> bool {
    r.x.iter().all(|v| v.is_finite())
}

const UNDEFINED: ProbeScore = ProbeScore { auc: f64::NAN, accuracy: f64::NAN };

/// Fits a logistic-regression probe on `train` and scores it on `test`.
pub fn logreg_probe(train: Repr, test: Repr, n_groups: usize) -> ProbeScore {
    if !finite(&train) || !finite(&test) {
        return UNDEFINED;
    }
    let probs: Vec<Vec<f64>> = if n_groups == 2 {
        let model = LogisticRegression::fit(train, |g| g == 1, 1.0);
        let p1: Vec<f64> = (0..test.n()).map(|i| model.prob(test.row(i))).collect();
        vec![p1.iter().map(|p| 1.0 - p).collect(), p1]
    } else {
        (0..n_groups as u32)
            .into_par_iter()
            .map(|c| {
                let model = LogisticRegression::fit(train, |g| g == c, 1.0);
                (0..test.n()).map(|i| model.prob(test.row(i))).collect()
            })
            .collect()
    };
    score(&probs, test.s)
}

/// Fits a random-forest probe (100 trees unless told otherwise) and scores it on `test`.
pub fn forest_probe(train: Repr, test: Repr, n_groups: usize, n_trees: usize, seed: u64) -> ProbeScore {
    if !finite(&train) || !finite(&test) {
        return UNDEFINED;
    }
    let forest = RandomForest::fit(train, n_groups, n_trees, seed);
    score(&forest.predict_proba(test), test.s)
}

/// Binary logistic regression with an L2 penalty `lambda/2 |w|^2` on the weights (not the intercept),
/// fitted by Newton's method; `lambda = 1` matches scikit-learn's default `C = 1`.
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    /// Weights, then the intercept last.
    pub coef: Vec<f64>,
}

impl LogisticRegression {
    /// Fits on the rows of `data`, the positive class being the groups where `positive` holds.
    pub fn fit(data: Repr, positive: impl Fn(u32) -> bool, lambda: f64) -> Self {
        let (n, d) = (data.n(), data.d);
        let dim = d + 1;
        let labels: Vec<f64> = data.s.iter().map(|&g| positive(g) as u8 as f64).collect();
        let mut w = vec![0f64; dim];
        for _ in 0..50 {
            let mut grad = vec![0f64; dim];
            let mut hess = vec![0f64; dim * dim];
            for i in 0..n {
                let row = data.row(i);
                let z = w[d] + row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
                let p = sigmoid(z);
                let (r, v) = (p - labels[i], p * (1.0 - p));
                for a in 0..dim {
                    let xa = if a < d { row[a] } else { 1.0 };
                    grad[a] += r * xa;
                    if v > 0.0 && xa != 0.0 {
                        for b in 0..=a {
                            let xb = if b < d { row[b] } else { 1.0 };
                            hess[a * dim + b] += v * xa * xb;
                        }
                    }
                }
            }
            for a in 0..dim {
                for b in 0..a {
                    hess[b * dim + a] = hess[a * dim + b];
                }
                let reg = if a < d { lambda } else { 1e-8 };
                grad[a] += if a < d { lambda * w[a] } else { 0.0 };
                hess[a * dim + a] += reg;
            }
            let Some(step) = cholesky_solve(&hess, &grad, dim) else {
                break;
            };
            let mut max_step: f64 = 0.0;
            for a in 0..dim {
                w[a] -= step[a];
                max_step = max_step.max(step[a].abs());
            }
            if max_step < 1e-8 {
                break;
            }
        }
        LogisticRegression { coef: w }
    }

    /// `P(positive | x)`.
    pub fn prob(&self, x: &[f64]) -> f64 {
        let d = self.coef.len() - 1;
        sigmoid(self.coef[d] + x.iter().zip(&self.coef).map(|(a, b)| a * b).sum::<f64>())
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Solves `A x = b` for symmetric positive-definite `A` (`dim x dim`, row-major); `None` if not SPD.
fn cholesky_solve(a: &[f64], b: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut sum = a[i * dim + j];
            for k in 0..j {
                sum -= l[i * dim + k] * l[j * dim + k];
            }
            if i == j {
                if sum <= 0.0 {
                    return None;
                }
                l[i * dim + i] = sum.sqrt();
            } else {
                l[i * dim + j] = sum / l[j * dim + j];
            }
        }
    }
    let mut y = vec![0f64; dim];
    for i in 0..dim {
        let s: f64 = (0..i).map(|k| l[i * dim + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * dim + i];
    }
    let mut x = vec![0f64; dim];
    for i in (0..dim).rev() {
        let s: f64 = (i + 1..dim).map(|k| l[k * dim + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * dim + i];
    }
    Some(x)
}

/// Most bins per feature: values are binned at training quantiles, so a split is "bin <= b".
const MAX_BINS: usize = 64;

/// A classification forest: bootstrap samples, `sqrt(d)` candidate features per split (more when none of
/// those splits), Gini impurity, grown until pure; probabilities are the mean of the leaves' class
/// fractions (as scikit-learn).
pub struct RandomForest {
    thresholds: Vec<Vec<f64>>,
    trees: Vec<Tree>,
    n_classes: usize,
}

struct Tree {
    /// `(feature, bin, left, right)` for a split; leaves have `left == u32::MAX` and `bin` = offset into
    /// `leaf_probs`.
    nodes: Vec<(u32, u32, u32, u32)>,
    leaf_probs: Vec<f64>,
}

impl RandomForest {
    /// Fits `n_trees` trees, in parallel; tree `k` draws from its own seeded stream, so the forest does not
    /// depend on the thread count.
    pub fn fit(data: Repr, n_classes: usize, n_trees: usize, seed: u64) -> Self {
        let (n, d) = (data.n(), data.d);
        let thresholds: Vec<Vec<f64>> = (0..d)
            .map(|f| {
                let mut v: Vec<f64> = (0..n).map(|i| data.x[i * d + f]).collect();
                v.sort_by(f64::total_cmp);
                v.dedup();
                if v.len() <= MAX_BINS {
                    v.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
                } else {
                    let mut t: Vec<f64> = (1..MAX_BINS).map(|q| v[q * v.len() / MAX_BINS]).collect();
                    t.dedup();
                    t
                }
            })
            .collect();
        // Column-major bins for cache-friendly histograms.
        let mut bins = vec![0u8; n * d];
        for f in 0..d {
            for i in 0..n {
                bins[f * n + i] = bin_of(&thresholds[f], data.x[i * d + f]);
            }
        }
        let n_bins: Vec<usize> = thresholds.iter().map(|t| t.len() + 1).collect();
        let trees = (0..n_trees)
            .into_par_iter()
            .map(|k| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(1000 + k as u64);
                grow_tree(&bins, n, d, &n_bins, data.s, n_classes, &mut rng)
            })
            .collect();
        RandomForest { thresholds, trees, n_classes }
    }

    /// Class probabilities, `[class][row]`.
    pub fn predict_proba(&self, data: Repr) -> Vec<Vec<f64>> {
        let (n, d) = (data.n(), data.d);
        let rows: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let b: Vec<u8> = (0..d).map(|f| bin_of(&self.thresholds[f], data.x[i * d + f])).collect();
                let mut acc = vec![0f64; self.n_classes];
                for tree in &self.trees {
                    let mut node = 0usize;
                    loop {
                        let (f, bin, l, r) = tree.nodes[node];
                        if l == u32::MAX {
                            let off = bin as usize;
                            for (c, a) in acc.iter_mut().enumerate() {
                                *a += tree.leaf_probs[off + c];
                            }
                            break;
                        }
                        node = if b[f as usize] as u32 <= bin { l } else { r } as usize;
                    }
                }
                acc.iter().map(|a| a / self.trees.len() as f64).collect()
            })
            .collect();
        (0..self.n_classes).map(|c| rows.iter().map(|r| r[c]).collect()).collect()
    }
}

fn bin_of(thresholds: &[f64], v: f64) -> u8 {
    thresholds.partition_point(|&t| t < v) as u8
}

fn grow_tree(bins: &[u8], n: usize, d: usize, n_bins: &[usize], y: &[u32], k: usize, rng: &mut ChaCha8Rng) -> Tree {
    let mut rows: Vec<u32> = (0..n).map(|_| rng.random_range(0..n as u32)).collect();
    let mtry = ((d as f64).sqrt().floor() as usize).max(1);
    let mut tree = Tree { nodes: Vec::new(), leaf_probs: Vec::new() };
    let mut features: Vec<usize> = (0..d).collect();
    let mut hist = vec![0u32; MAX_BINS * k];
    // Work stack: (node index, start, end, depth).
    tree.nodes.push((0, 0, 0, 0));
    let mut stack = vec![(0usize, 0usize, n, 0usize)];
    while let Some((node, start, end, depth)) = stack.pop() {
        let slice = &mut rows[start..end];
        let mut counts = vec![0u32; k];
        for &r in slice.iter() {
            counts[y[r as usize] as usize] += 1;
        }
        let total = slice.len() as f64;
        let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
        let mut best: Option<(f64, usize, usize)> = None;
        if !pure && slice.len() >= 2 && depth < 64 {
            let parent = gini_sum(&counts, total);
            features.shuffle(rng);
            for (tried, &f) in features.iter().enumerate() {
                if tried >= mtry && best.is_some() {
                    break;
                }
                let nb = n_bins[f];
                if nb < 2 {
                    continue;
                }
                hist[..nb * k].fill(0);
                let col = &bins[f * n..(f + 1) * n];
                for &r in slice.iter() {
                    hist[col[r as usize] as usize * k + y[r as usize] as usize] += 1;
                }
                let mut left = vec![0u32; k];
                let mut n_left = 0u32;
                for b in 0..nb - 1 {
                    for c in 0..k {
                        left[c] += hist[b * k + c];
                        n_left += hist[b * k + c];
                    }
                    let n_right = slice.len() as u32 - n_left;
                    if n_left == 0 || n_right == 0 {
                        continue;
                    }
                    let right: Vec<u32> = (0..k).map(|c| counts[c] - left[c]).collect();
                    let child = gini_sum(&left, n_left as f64) + gini_sum(&right, n_right as f64);
                    let gain = parent - child;
                    if gain > 1e-12 && best.is_none_or(|(g, _, _)| gain > g) {
                        best = Some((gain, f, b));
                    }
                }
            }
        }
        match best {
            Some((_, f, b)) => {
                let col = &bins[f * n..(f + 1) * n];
                let mut lo = 0;
                for i in 0..slice.len() {
                    if col[slice[i] as usize] as usize <= b {
                        slice.swap(lo, i);
                        lo += 1;
                    }
                }
                let left = tree.nodes.len();
                tree.nodes.push((0, 0, 0, 0));
                tree.nodes.push((0, 0, 0, 0));
                tree.nodes[node] = (f as u32, b as u32, left as u32, left as u32 + 1);
                stack.push((left, start, start + lo, depth + 1));
                stack.push((left + 1, start + lo, end, depth + 1));
            }
            None => {
                let off = tree.leaf_probs.len();
                tree.leaf_probs.extend(counts.iter().map(|&c| c as f64 / total));
                tree.nodes[node] = (0, off as u32, u32::MAX, u32::MAX);
            }
        }
    }
    tree
}

/// `n * gini(counts / n)`: the impurity weighted by the node's size.
fn gini_sum(counts: &[u32], n: f64) -> f64 {
    n - counts.iter().map(|&c| (c as f64) * (c as f64)).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xor_data(n: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut s = Vec::new();
        for _ in 0..n {
            let a = rng.random_bool(0.5) as u8 as f64;
            let b = rng.random_bool(0.5) as u8 as f64;
            x.extend([a, b, rng.random::<f64>()]);
            s.push(((a + b) as u32) % 2);
        }
        (x, s)
    }

    #[test]
    fn forest_finds_xor_that_logistic_regression_cannot() {
        let (xtr, str_) = xor_data(600, 0);
        let (xte, ste) = xor_data(300, 1);
        let tr = Repr { x: &xtr, d: 3, s: &str_ };
        let te = Repr { x: &xte, d: 3, s: &ste };
        let forest = forest_probe(tr, te, 2, 50, 7);
        let logreg = logreg_probe(tr, te, 2);
        assert!(forest.auc > 0.95, "{forest:?}");
        assert!(logreg.auc < 0.65, "{logreg:?}");
        // Same seed, same forest.
        assert_eq!(forest, forest_probe(tr, te, 2, 50, 7));
    }

    #[test]
    fn logistic_regression_matches_a_hand_fitted_case() {
        // Separable by x > 0 with an L2 penalty: the fit is finite and scores perfectly.
        let x: Vec<f64> = vec![-2.0, -1.0, -0.5, 0.5, 1.0, 2.0];
        let s: Vec<u32> = vec![0, 0, 0, 1, 1, 1];
        let r = Repr { x: &x, d: 1, s: &s };
        let m = LogisticRegression::fit(r, |g| g == 1, 1.0);
        assert!(m.coef.iter().all(|c| c.is_finite()));
        // The penalised optimum has zero gradient: sum (p - y) x + lambda w = 0 and sum (p - y) = 0.
        let g0: f64 = (0..6).map(|i| m.prob(&x[i..i + 1]) - s[i] as f64).sum();
        let g1: f64 = (0..6).map(|i| (m.prob(&x[i..i + 1]) - s[i] as f64) * x[i]).sum::<f64>() + m.coef[0];
        assert!(g0.abs() < 1e-8 && g1.abs() < 1e-8);
        assert_eq!(logreg_probe(r, r, 2).auc, 1.0);
    }

    #[test]
    fn multiclass_probes_give_macro_auc() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s: Vec<u32> = (0..300).map(|i| i % 3).collect();
        let x: Vec<f64> = s.iter().map(|&g| g as f64 + rng.random::<f64>() * 0.5).collect();
        let r = Repr { x: &x, d: 1, s: &s };
        assert!(forest_probe(r, r, 3, 20, 0).auc > 0.99);
        // One-vs-rest logistic regression cannot isolate the middle group on one feature, but the
        // outer groups are separable.
        let lr = logreg_probe(r, r, 3);
        assert!(lr.auc > 0.7 && lr.auc < 1.0, "{lr:?}");
    }
}

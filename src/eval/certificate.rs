//! The certificate of docs/design.md, section 4: from the joint MI `I(T; S)` (bits) and the group shares, an upper
//! bound on the demographic-parity gap of ANY classifier, and on the AUC of ANY probe for `S`, that
//! consumes ONE fresh sampled code per row. It does not cover consumers of `p` or of several samples.
//! Where the layer can be enumerated, the exact worst cases (total variation, likelihood-ratio AUC)
//! replace the bound.

use std::borrow::Cow;
use std::f64::consts::LN_2;

/// The caveat printed with every bound.
pub const CAVEAT: &str = "the empirical bounds describe the test rows, the population certificate the \
population they come from (with its confidence); both hold for any classifier or probe that consumes ONE code \
per row, and cover neither p nor averages of several samples of a row";

/// `J = sqrt(I ln2 / (2 a b))`, capped at 1: the Pinsker bound on TPR - FPR (and on a DP gap) between two
/// sides with shares `a` and `b`.
pub fn pinsker_j(mi_bits: f64, a: f64, b: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 {
        return 1.0;
    }
    (mi_bits.max(0.0) * LN_2 / (2.0 * a * b)).sqrt().min(1.0)
}

/// The AUC bound `0.5 + J - J^2 / 2` of a ROC curve under `TPR = FPR + J`.
pub fn auc_bound_from_j(j: f64) -> f64 {
    0.5 + j - j * j / 2.0
}

/// Certified bounds from `I(T; S)` and the group shares `pi` (summing to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Largest DP gap (max over pairs for more than two groups).
    pub dp_gap_bound: f64,
    /// Largest probe AUC for `S` (macro one-vs-rest for more than two groups).
    pub probe_auc_bound: f64,
}

/// Binary `S`: `dp <= J`, `auc <= 0.5 + J - J^2/2` with `J = sqrt(I ln2 / (2 pi0 pi1))`. More groups: pairwise
/// `gap_ab <= sqrt(I ln2 / (2 pi_a)) + sqrt(I ln2 / (2 pi_b))`, and the macro average of the one-vs-rest
/// AUC bounds with `J_a = sqrt(I ln2 / (2 pi_a (1 - pi_a)))`. Groups with share 0 are ignored.
pub fn bounds(mi_bits: f64, pi: &[f64]) -> Bounds {
    let present: Vec<f64> = pi.iter().copied().filter(|&v| v > 0.0).collect();
    let i = mi_bits.max(0.0);
    if present.len() == 2 {
        let j = pinsker_j(i, present[0], present[1]);
        return Bounds { dp_gap_bound: j, probe_auc_bound: auc_bound_from_j(j) };
    }
    if present.len() < 2 {
        return Bounds { dp_gap_bound: 0.0, probe_auc_bound: 0.5 };
    }
    let side = |a: f64| (i * LN_2 / (2.0 * a)).sqrt();
    let mut dp: f64 = 0.0;
    for (x, &a) in present.iter().enumerate() {
        for &b in &present[x + 1..] {
            dp = dp.max((side(a) + side(b)).min(1.0));
        }
    }
    let auc = present.iter().map(|&a| auc_bound_from_j(pinsker_j(i, a, 1.0 - a))).sum::<f64>() / present.len() as f64;
    Bounds { dp_gap_bound: dp, probe_auc_bound: auc }
}

/// Total-variation distance `sum_t max(0, P(t) - Q(t))`: the largest DP gap any classifier of one sampled
/// code can have between two groups with code distributions `P` and `Q`.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b).max(0.0)).sum()
}

/// AUC of the likelihood-ratio score `Q1(t) / Q0(t)` for telling `T ~ Q1` from `T ~ Q0`, exactly, over all
/// codes (ties count half): by Neyman-Pearson the largest AUC any probe of one sampled code can reach.
pub fn likelihood_ratio_auc(q0: &[f64], q1: &[f64]) -> f64 {
    if q0.iter().chain(q1).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let mut codes: Vec<(f64, f64, f64)> = q0
        .iter()
        .zip(q1)
        .filter(|(a, b)| **a > 0.0 || **b > 0.0)
        .map(|(&a, &b)| (if a > 0.0 { b / a } else { f64::INFINITY }, a, b))
        .collect();
    codes.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut below0, mut auc) = (0.0, 0.0);
    let mut k = 0;
    while k < codes.len() {
        let mut end = k;
        let (mut m0, mut m1) = (0.0, 0.0);
        while end < codes.len() && codes[end].0 == codes[k].0 {
            m0 += codes[end].1;
            m1 += codes[end].2;
            end += 1;
        }
        auc += m1 * (below0 + 0.5 * m0);
        below0 += m0;
        k = end;
    }
    let (t0, t1): (f64, f64) = (q0.iter().sum(), q1.iter().sum());
    auc / (t0 * t1)
}

/// The exact worst cases from per-group code distributions `dists[s][t] = P(t | S = s)` and shares `pi`:
/// `(tv, auc)`. Binary `S`: TV and the LR AUC of group 1 against group 0. More groups: the largest pairwise
/// TV, and the macro average of one-vs-rest LR AUCs.
pub fn exact_worst_case(dists: &[Vec<f64>], pi: &[f64]) -> (f64, f64) {
    let present: Vec<usize> = (0..pi.len()).filter(|&s| pi[s] > 0.0).collect();
    if present.len() < 2 {
        return (0.0, 0.5);
    }
    if present.len() == 2 {
        let (a, b) = (&dists[present[0]], &dists[present[1]]);
        return (total_variation(a, b), likelihood_ratio_auc(a, b));
    }
    let mut tv: f64 = 0.0;
    for (x, &a) in present.iter().enumerate() {
        for &b in &present[x + 1..] {
            tv = tv.max(total_variation(&dists[a], &dists[b]));
        }
    }
    let codes = dists[present[0]].len();
    let auc = present
        .iter()
        .map(|&a| {
            let rest: Vec<f64> = (0..codes)
                .map(|t| present.iter().filter(|&&b| b != a).map(|&b| pi[b] * dists[b][t]).sum::<f64>() / (1.0 - pi[a]))
                .collect();
            likelihood_ratio_auc(&rest, &dists[a])
        })
        .sum::<f64>()
        / present.len() as f64;
    (tv, auc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_trivial_at_zero_information_and_grow_with_it() {
        let b = bounds(0.0, &[0.3, 0.7]);
        assert_eq!(b.dp_gap_bound, 0.0);
        assert_eq!(b.probe_auc_bound, 0.5);
        let b1 = bounds(0.01, &[0.3, 0.7]);
        let b2 = bounds(0.05, &[0.3, 0.7]);
        assert!(b1.dp_gap_bound < b2.dp_gap_bound && b1.probe_auc_bound < b2.probe_auc_bound);
        // Hand computation: J = sqrt(0.01 ln2 / (2 * 0.21)).
        let j = (0.01 * LN_2 / 0.42f64).sqrt();
        assert!((b1.dp_gap_bound - j).abs() < 1e-12);
        assert!((b1.probe_auc_bound - (0.5 + j - j * j / 2.0)).abs() < 1e-12);
        assert_eq!(bounds(1.0, &[0.5, 0.5]).dp_gap_bound, 1.0);
        let b3 = bounds(0.01, &[0.2, 0.3, 0.5]);
        assert!(b3.dp_gap_bound > 0.0 && b3.probe_auc_bound > 0.5);
    }

    #[test]
    fn likelihood_ratio_auc_hand_examples() {
        // Identical distributions: 0.5. Disjoint supports: 1.
        assert!((likelihood_ratio_auc(&[0.5, 0.5], &[0.5, 0.5]) - 0.5).abs() < 1e-12);
        assert!((likelihood_ratio_auc(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        // q0 = (0.75, 0.25), q1 = (0.25, 0.75): ratios 1/3 and 3. P(score1 > score0) = 0.75*0.75 = 0.5625,
        // ties: 0.25*0.75 + 0.75*0.25 = 0.375, half of it 0.1875: AUC 0.75.
        assert!((likelihood_ratio_auc(&[0.75, 0.25], &[0.25, 0.75]) - 0.75).abs() < 1e-12);
        assert!((total_variation(&[0.75, 0.25], &[0.25, 0.75]) - 0.5).abs() < 1e-12);
    }
}

/// The population certificate of docs/design.md, section 4b: with confidence `1 - delta`, the total
/// variation between the groups' code distributions in the population, and what it bounds for any
/// consumer of one code per row.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Population {
    /// `1 - delta`.
    pub confidence: f64,
    /// Which codes are certified: `sample` (one fresh sample per row) or `threshold` (`1[p >= 0.5]`).
    pub codes: String,
    /// The upper bound `U` on `TV(P_a, P_b)` in the population (the largest over pairs of groups).
    pub tv_upper: f64,
    /// The plug-in `TV(P^_a, P^_b)` on the held-out rows (largest over pairs).
    pub tv_plugin: f64,
    /// Demographic-parity gap of any classifier of one code: `<= U`.
    pub dp_gap_bound: f64,
    /// Equalised-odds gap of any classifier of one code: `<= max_y U_y` over the strata of `y`.
    pub eo_gap_bound: f64,
    /// Balanced accuracy of any adversary telling two groups apart from one code: `<= (1 + U) / 2`.
    pub adversary_balanced_accuracy_bound: f64,
    /// AUC of any probe for `s` from one code: `<= 0.5 + U - U^2 / 2`.
    pub probe_auc_bound: f64,
    /// Held-out rows per group.
    pub n_per_group: Vec<usize>,
    /// `exact` (enumeration, or counting hard codes) or `monte-carlo` (with its sampling error term).
    pub method: String,
    /// With row weights (docs/design.md, section 4e): each group's effective number of rows
    /// `W_g^2 / sum_i w_i^2`, the `n_g` of the weighted McDiarmid term. Absent without weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_n_per_group: Option<Vec<f64>>,
}

/// The McDiarmid term `sqrt(ln(1/delta) (1/n_a + 1/n_b) / 2)` of one pair of groups.
pub fn mcdiarmid_eps(delta: f64, n_a: usize, n_b: usize) -> f64 {
    mcdiarmid_eps_from(delta, 1.0 / n_a as f64, 1.0 / n_b as f64)
}

/// The McDiarmid term `sqrt(ln(1/delta) (sum_a c_i^2 + sum_b c_i^2) / 2)` from each group's sum of squared
/// bounded differences (docs/design.md, section 4e): `1/n_g` for equal weights, `sum w_i^2 / W_g^2` for
/// weights `w`. [`mcdiarmid_eps`] is this with `1/n_a` and `1/n_b`, the same operations in the same order.
pub fn mcdiarmid_eps_from(delta: f64, squares_a: f64, squares_b: f64) -> f64 {
    ((1.0 / delta).ln() * (squares_a + squares_b) / 2.0).sqrt()
}

/// Row weights for a weighted certificate (docs/design.md, section 4e), checked: one per row, each finite
/// and `>= 0`, not all 0; an error names the first row (1-based) that is not.
pub fn check_weights(w: &[f64], n: usize) -> crate::error::Result<()> {
    let bad = |reason: String| crate::error::Error::Values { what: "certificate weights".into(), reason };
    if w.len() != n {
        return Err(bad(format!("{} weights for {n} rows", w.len())));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(bad(format!("row {} holds {}: a weight is a finite number >= 0", i + 1, w[i])));
    }
    if !w.iter().any(|v| *v > 0.0) {
        return Err(bad("every weight is 0: no row would count".into()));
    }
    Ok(())
}

/// Per group of `s` (`k` groups): the total weight `W_g`, the sum of squared shares
/// `sum_{i in g} (w_i / W_g)^2` (McDiarmid's `sum c_i^2`; 0 for a group of weight 0), and whether every row
/// of the group has the same positive weight (then the weighted certificate is the unweighted one).
fn weight_summary(w: &[f64], s: &[u32], k: usize) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let (mut total, mut squares) = (vec![0f64; k], vec![0f64; k]);
    let mut first: Vec<Option<f64>> = vec![None; k];
    let mut equal = vec![true; k];
    for (&v, &g) in w.iter().zip(s) {
        let g = g as usize;
        total[g] += v;
        squares[g] += v * v;
        match first[g] {
            None => first[g] = Some(v),
            Some(f) => equal[g] &= f == v,
        }
    }
    let shares = (0..k).map(|g| if total[g] > 0.0 { squares[g] / (total[g] * total[g]) } else { 0.0 }).collect();
    let uniform = (0..k).map(|g| equal[g] && first[g].is_none_or(|f| f > 0.0)).collect();
    (total, shares, uniform)
}

/// The Hoeffding term `sqrt(ln(1/delta) / (2 N))` of a mean of `N` values in `[0, 1]` (one-sided).
pub fn hoeffding_eps(delta: f64, samples: usize) -> f64 {
    ((1.0 / delta).ln() / (2.0 * samples as f64)).sqrt()
}

/// The sampling-error term of a Monte-Carlo mean of `terms` (i.i.d. values in `[0, 1]`, in the order they
/// were drawn) at `delta`, one-sided (docs/design.md, section 4b): `U - mean` (at least 0), with `U` the
/// betting upper bound of Waudby-Smith and Ramdas (2024). For a candidate mean `x` the capital
/// `K(x) = prod_i (1 - lambda_i (Z_i - x))` has expectation 1 at the true mean, whatever the bets
/// `lambda_i in [0, 3/4]` are as long as each depends only on the terms before it; so by Markov's inequality
/// the true mean is at least the smallest `x` with `K(x) >= 1/delta` with probability at most `delta`. `K` grows
/// with `x`, and that `x` is found by bisection. With bets tuned to the variance seen so far, the term is
/// about Hoeffding's where the terms spread over `[0, 1]` and about `sqrt(2 V ln(1/delta) / N)` where their
/// variance `V` is small (close groups). No terms: 1 (nothing is known).
pub fn mc_eps(delta: f64, terms: &[f64]) -> f64 {
    if terms.is_empty() {
        return 1.0;
    }
    let target = (1.0 / delta).ln();
    let bets = predictable_bets(terms, target);
    let log_capital =
        |x: f64| -> f64 { terms.iter().zip(&bets).map(|(&z, &lambda)| (-lambda * (z - x)).ln_1p()).sum() };
    let upper = if log_capital(1.0) < target {
        1.0
    } else {
        // log K(0) <= 0 < target <= log K(1): the crossing lies in [lo, hi], and hi is kept on the safe side.
        let (mut lo, mut hi) = (0f64, 1f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if log_capital(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    (upper - terms.iter().sum::<f64>() / terms.len() as f64).max(0.0)
}

/// The bets of [`mc_eps`]: `lambda_i = min(3/4, sqrt(2 ln(1/delta) / (N v_{i-1})))` with `v_{i-1}` the
/// variance of the terms before `i` about their running means, each estimate starting from one pseudo-term
/// of mean 1/2 and variance 1/4 (the fixed-`N` predictable plug-in of Waudby-Smith and Ramdas).
fn predictable_bets(terms: &[f64], target: f64) -> Vec<f64> {
    let n = terms.len() as f64;
    let (mut sum, mut squares) = (0.5f64, 0.25f64);
    terms
        .iter()
        .enumerate()
        .map(|(i, &z)| {
            let variance = squares / (i + 1) as f64;
            let lambda = (2.0 * target / (n * variance)).sqrt().min(0.75);
            sum += z;
            let running_mean = sum / (i + 2) as f64;
            squares += (z - running_mean) * (z - running_mean);
            lambda
        })
        .collect()
}

/// How the plug-in total variation of a set of rows is computed.
#[derive(Clone, Copy, Debug)]
pub struct TvMethod {
    /// Enumerate the `2^m` codes up to this width.
    pub m_max: usize,
    /// Monte-Carlo codes per group beyond it.
    pub samples: usize,
    /// Share of each pair's `delta` spent on the Monte-Carlo error.
    pub mc_share: f64,
}

/// One Monte-Carlo term of `TV(P^_a, P^_b)` for a code drawn from `P^_a` (`l`: its `log P^_g(t)`, each within
/// `err` of the exact value, [`crate::penalty::mi::log_error`]): `max(0, 1 - P^_b(t) / P^_a(t))` with the
/// ratio taken at the smallest the errors allow, so that the term is never below the exact one
/// (docs/design.md, section 4b).
fn tv_term(l: &[f64], a: usize, b: usize, err: f64) -> f64 {
    (1.0 - (l[b] - l[a] - 2.0 * err).exp()).max(0.0)
}

/// One pair's Monte-Carlo estimate from codes drawn from `P^_a` (`lp`: each code's `log P^_g(t)`):
/// `TV(P^_a, P^_b)` as the mean of `max(0, 1 - P^_b(t) / P^_a(t))`, and its sampling term ([`mc_eps`]).
fn mc_pair(lp: &[Vec<f64>], a: usize, b: usize, delta_mc: f64, err: f64) -> (f64, f64) {
    let terms: Vec<f64> = lp.iter().map(|l| tv_term(l, a, b, err)).collect();
    (terms.iter().sum::<f64>() / terms.len() as f64, mc_eps(delta_mc, &terms))
}

/// Whether every code probability of the rows `rows` of `p` (row-major, width `m`) is 0 or 1: hard codes.
fn all_hard(p: &[f64], m: usize, rows: &[usize]) -> bool {
    rows.iter().all(|&i| p[i * m..(i + 1) * m].iter().all(|&v| v == 0.0 || v == 1.0))
}

/// Plug-in total variations between every pair of groups (row-major `p`, `n x m`, entries in [0, 1]; hard
/// codes are point masses), and for Monte Carlo each pair's sampling error term at `delta_mc` ([`mc_eps`];
/// 0 where exact): `(tv[a][b], mc_eps[a][b], method)`.
pub fn pairwise_tv<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    method: TvMethod,
    delta_mc: f64,
    rng: &mut R,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, &'static str) {
    let all: Vec<usize> = (0..s.len()).collect();
    pairwise_tv_of(p, m, s, k, &all, method, delta_mc, rng)
}

/// [`pairwise_tv`] of the rows `rows` of `p` and `s` (indices, in the order that defines the sums): the same
/// numbers, bit for bit, as [`pairwise_tv`] of a copy of those rows, without the copy where the codes are
/// hard or Monte Carlo (a label's rows of millions of test rows are most of `p`).
#[allow(clippy::too_many_arguments)]
fn pairwise_tv_of<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    rows: &[usize],
    method: TvMethod,
    delta_mc: f64,
    rng: &mut R,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, &'static str) {
    use crate::penalty::mi;
    let row = |i: usize| &p[i * m..(i + 1) * m];
    let mut tv = vec![vec![0.0; k]; k];
    if all_hard(p, m, rows) {
        // Point masses: each group's distribution is the histogram of its codes (summed in the codes'
        // order, not a hash seed's).
        let mut counts: Vec<std::collections::BTreeMap<Vec<bool>, f64>> = vec![Default::default(); k];
        let mut sizes = vec![0f64; k];
        for &i in rows {
            let g = s[i] as usize;
            *counts[g].entry(row(i).iter().map(|&v| v == 1.0).collect()).or_default() += 1.0;
            sizes[g] += 1.0;
        }
        for a in 0..k {
            for b in 0..k {
                if a == b || sizes[a] == 0.0 || sizes[b] == 0.0 {
                    continue;
                }
                tv[a][b] = counts[a]
                    .iter()
                    .map(|(code, &c)| (c / sizes[a] - counts[b].get(code).copied().unwrap_or(0.0) / sizes[b]).max(0.0))
                    .sum();
            }
        }
        return (tv, vec![vec![0.0; k]; k], "exact");
    }
    if m <= method.m_max {
        // At most 2^m_max codes: a copy of the rows is small.
        let sub_p: Vec<f64> = rows.iter().flat_map(|&i| row(i).iter().copied()).collect();
        let sub_s: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
        let (_, dists, _) = mi::joint_mi_host_distributions(&sub_p, m, &sub_s, k);
        for a in 0..k {
            for b in 0..k {
                if a != b {
                    tv[a][b] = total_variation(&dists[a], &dists[b]);
                }
            }
        }
        return (tv, vec![vec![0.0; k]; k], "exact");
    }
    // TV(P_a, P_b) = E_{t ~ P_a}[max(0, 1 - P_b(t) / P_a(t))]: codes drawn from group a's rows serve every
    // pair (a, b > a).
    let logs = mi::RowLogs::of_rows(p, m, s, k, rows);
    let mut present = vec![false; k];
    rows.iter().for_each(|&i| present[s[i] as usize] = true);
    let draws: Draws = (0..k.saturating_sub(1))
        .map(|a| {
            let of_a: Vec<usize> = rows.iter().copied().filter(|&i| s[i] as usize == a).collect();
            (!of_a.is_empty()).then(|| logs.log_probs(&mi::sample_codes(p, m, &of_a, method.samples, rng).1, false))
        })
        .collect();
    let (tv, eps) = tv_from_draws(&draws, &present, delta_mc, m);
    (tv, eps, "monte-carlo")
}

/// Monte-Carlo draws for one set of pairwise total variations: entry `a` (for each group but the last) holds,
/// for each code drawn from `P^_a`, the code's `log P^_g(t)` for every group `g`; `None` where group `a`
/// draws none.
type Draws = Vec<Option<Vec<Vec<f64>>>>;

/// The pairwise plug-in total variations and their sampling terms at `delta_mc` ([`mc_pair`]) from codes
/// of `m` bits drawn from each group: pair `(a, b > a)` from group `a`'s codes, stored both ways; 0 where
/// either group is not `present` or `a` drew nothing. Each term allows for the tables' error
/// ([`crate::penalty::mi::log_error`]).
fn tv_from_draws(draws: &Draws, present: &[bool], delta_mc: f64, m: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (k, err) = (present.len(), crate::penalty::mi::log_error(m));
    let (mut tv, mut eps) = (vec![vec![0.0; k]; k], vec![vec![0.0; k]; k]);
    for (a, lp) in draws.iter().enumerate() {
        let Some(lp) = lp.as_ref().filter(|_| present[a]) else { continue };
        for b in (a + 1..k).filter(|&b| present[b]) {
            (tv[a][b], eps[a][b]) = mc_pair(lp, a, b, delta_mc, err);
            (tv[b][a], eps[b][a]) = (tv[a][b], eps[a][b]);
        }
    }
    (tv, eps)
}

/// `count` codes drawn from the `w`-weighted rows `rows`: a row with probability `w_i / sum w` (the first whose
/// running total passes a uniform draw), then `t ~ Bernoulli(p_row)`; the rows and the codes (row-major
/// `count x m`), as [`crate::penalty::mi::sample_codes`] draws from equal weights.
fn sample_codes_weighted<R: rand::Rng>(
    p: &[f64],
    m: usize,
    rows: &[usize],
    w: &[f64],
    count: usize,
    rng: &mut R,
) -> (Vec<usize>, Vec<f64>) {
    let cumulative: Vec<f64> = rows
        .iter()
        .scan(0f64, |acc, &i| {
            *acc += w[i];
            Some(*acc)
        })
        .collect();
    let last = *cumulative.last().expect("a non-empty set of rows");
    let (mut picked, mut codes) = (Vec::with_capacity(count), Vec::with_capacity(count * m));
    for _ in 0..count {
        let u = rng.random::<f64>() * last;
        let i = rows[cumulative.partition_point(|&c| c <= u).min(rows.len() - 1)];
        picked.push(i);
        codes.extend((0..m).map(|j| (rng.random::<f64>() < p[i * m + j]) as u8 as f64));
    }
    (picked, codes)
}

/// [`pairwise_tv`] of the `w`-weighted rows (docs/design.md, section 4e): group `g`'s plug-in is
/// `P^_g(t) = sum_{i in g} (w_i / W_g) q(t | x_i)` with `W_g` the group's total weight (rows of weight 0
/// take no part; a group of weight 0 is absent, its entries 0). Hard codes: weighted histograms; `m <=
/// m_max`: the weighted sum of each row's `2^m` code probabilities; wider: codes drawn from `P^_a` (a row
/// with probability `w_i / W_a`, then its Bernoullis) and every `log P^_g(t)` from the byte tables with the
/// rows' weights ([`crate::penalty::mi::RowLogs::weighted`]), with the sampling error term of
/// [`pairwise_tv`] (the draws are i.i.d. from `P^_a`). Every
/// sum runs in a fixed order, so the result depends on neither the thread count nor a hash seed.
#[allow(clippy::too_many_arguments)]
pub fn pairwise_tv_weighted<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    w: &[f64],
    method: TvMethod,
    delta_mc: f64,
    rng: &mut R,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, &'static str) {
    let all: Vec<usize> = (0..s.len()).collect();
    pairwise_tv_weighted_of(p, m, s, k, w, &all, method, delta_mc, rng)
}

/// [`pairwise_tv_weighted`] of the rows `rows` of `p`, `s` and `w`: the numbers of a copy of those rows, bit
/// for bit, without the copy (as [`pairwise_tv_of`]).
#[allow(clippy::too_many_arguments)]
fn pairwise_tv_weighted_of<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    w: &[f64],
    rows: &[usize],
    method: TvMethod,
    delta_mc: f64,
    rng: &mut R,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, &'static str) {
    use rayon::prelude::*;
    let row = |i: usize| &p[i * m..(i + 1) * m];
    // Each group's total weight, summed in the rows' order.
    let mut total = vec![0f64; k];
    for &i in rows {
        total[s[i] as usize] += w[i];
    }
    let rows_of =
        |g: usize| -> Vec<usize> { rows.iter().copied().filter(|&i| s[i] as usize == g && w[i] > 0.0).collect() };
    let mut tv = vec![vec![0.0; k]; k];
    if all_hard(p, m, rows) {
        let mut mass: Vec<std::collections::BTreeMap<Vec<bool>, f64>> = vec![Default::default(); k];
        for &i in rows {
            let (g, v) = (s[i] as usize, w[i]);
            if v > 0.0 {
                *mass[g].entry(row(i).iter().map(|&b| b == 1.0).collect()).or_default() += v / total[g];
            }
        }
        for a in 0..k {
            for b in 0..k {
                if a != b && total[a] > 0.0 && total[b] > 0.0 {
                    tv[a][b] =
                        mass[a].iter().map(|(code, &c)| (c - mass[b].get(code).copied().unwrap_or(0.0)).max(0.0)).sum();
                }
            }
        }
        return (tv, vec![vec![0.0; k]; k], "exact");
    }
    if m <= method.m_max {
        let codes = 1usize << m;
        let dists: Vec<Vec<f64>> = (0..k)
            .map(|g| {
                // Blocks of rows summed in parallel, the blocks' sums added in order.
                let parts: Vec<Vec<f64>> = rows_of(g)
                    .par_chunks(256)
                    .map(|block| {
                        let (mut acc, mut one) = (vec![0f64; codes], vec![0f64; codes]);
                        for &i in block {
                            // Doubling: the first j + 1 bits' probabilities from the first j's.
                            one[0] = w[i] / total[g];
                            for j in 0..m {
                                let (q, h) = (p[i * m + j], 1usize << j);
                                let (low, high) = one[..2 * h].split_at_mut(h);
                                for (lo, hi) in low.iter_mut().zip(high.iter_mut()) {
                                    *hi = *lo * q;
                                    *lo *= 1.0 - q;
                                }
                            }
                            acc.iter_mut().zip(&one).for_each(|(a, o)| *a += o);
                        }
                        acc
                    })
                    .collect();
                let mut d = vec![0f64; codes];
                for part in parts {
                    d.iter_mut().zip(&part).for_each(|(a, v)| *a += v);
                }
                d
            })
            .collect();
        for a in 0..k {
            for b in 0..k {
                if a != b && total[a] > 0.0 && total[b] > 0.0 {
                    tv[a][b] = total_variation(&dists[a], &dists[b]);
                }
            }
        }
        return (tv, vec![vec![0.0; k]; k], "exact");
    }
    // TV(P_a, P_b) = E_{t ~ P_a}[max(0, 1 - P_b(t) / P_a(t))], as in [`pairwise_tv`], each P^ weighted: the
    // byte tables of section 3c with each row's weight in its scale.
    let groups: Vec<Vec<usize>> = (0..k).map(rows_of).collect();
    let positive: Vec<usize> = rows.iter().copied().filter(|&i| w[i] > 0.0).collect();
    let logs = crate::penalty::mi::RowLogs::weighted(p, m, s, k, &positive, w);
    let present: Vec<bool> = groups.iter().map(|g| !g.is_empty()).collect();
    let draws: Draws = (0..k.saturating_sub(1))
        .map(|a| {
            (!groups[a].is_empty())
                .then(|| logs.log_probs(&sample_codes_weighted(p, m, &groups[a], w, method.samples, rng).1, false))
        })
        .collect();
    let (tv, eps) = tv_from_draws(&draws, &present, delta_mc, m);
    (tv, eps, "monte-carlo")
}

/// The Monte-Carlo draws of the population certificate from one pass over the rows (docs/design.md,
/// section 4b): those of demographic parity (every row) and of equalised odds (each label `y` with
/// `labels[y]`; `None` for the others). The rows' byte tables are built once, per cell (group and label),
/// with the weights `w` where given (rows of weight 0 take no part). Demographic parity draws `samples` codes
/// from each group `a` but the last and evaluates them on every cell: summed over the labels they give
/// `log P^_g(t)`. A code drawn from a row of label `y` is a draw from `P^_{a,y}`, so it serves equalised odds
/// for `y` as it is; each label's codes are topped up to `samples` with codes drawn from its cell, evaluated
/// on its cells only. Each label's codes are then `samples` i.i.d. draws from `P^_{a,y}` (given how many the
/// first draws gave it), as if drawn on their own, at about two thirds of the cost.
#[allow(clippy::too_many_arguments)]
fn joint_draws<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    y: &[u8],
    labels: &[bool],
    w: Option<&[f64]>,
    samples: usize,
    rng: &mut R,
) -> (Draws, Vec<Option<Draws>>) {
    use crate::penalty::mi;
    let n_labels = labels.len();
    let cell = |i: usize| y[i] as usize * k + s[i] as usize;
    let cells: Vec<u32> = (0..s.len()).map(|i| cell(i) as u32).collect();
    let rows: Vec<usize> = (0..s.len()).filter(|&i| w.is_none_or(|w| w[i] > 0.0)).collect();
    // Each cell's total (rows or weight), summed in the rows' order as the tables sum them.
    let mut total = vec![0f64; k * n_labels];
    for &i in &rows {
        total[cell(i)] += w.map_or(1.0, |w| w[i]);
    }
    let logs = match w {
        Some(w) => mi::RowLogs::weighted(p, m, &cells, k * n_labels, &rows, w),
        None => mi::RowLogs::of_rows(p, m, &cells, k * n_labels, &rows),
    };
    let draw = |of: &[usize], count: usize, rng: &mut R| match w {
        Some(w) => sample_codes_weighted(p, m, of, w, count, rng),
        None => mi::sample_codes(p, m, of, count, rng),
    };
    // log P^_g(t) = log sum_y W_{g,y} P^_{g,y}(t) - log W_g, over the cells with rows.
    let group_log = |lp: &[f64], g: usize| -> f64 {
        let in_g = (0..n_labels).map(|l| l * k + g).filter(|&c| total[c] > 0.0);
        let w_g: f64 = in_g.clone().map(|c| total[c]).sum();
        if w_g == 0.0 {
            return f64::NAN;
        }
        mi::log_sum_exp(in_g.map(|c| lp[c] + total[c].ln())) - w_g.ln()
    };
    // Every code first (each group's first draws, as parity draws them alone, then each label's top-ups),
    // then one pass over the rows. Per code: the group it was drawn from, its row's label, whether a top-up.
    let (mut codes, mut whose): (Vec<f64>, Vec<(usize, usize, bool)>) = (Vec::new(), Vec::new());
    let of: Vec<Vec<usize>> =
        (0..k.saturating_sub(1)).map(|a| rows.iter().copied().filter(|&i| s[i] as usize == a).collect()).collect();
    for (a, of_a) in of.iter().enumerate().filter(|(_, of_a)| !of_a.is_empty()) {
        let (picked, first) = draw(of_a, samples, rng);
        codes.extend(first);
        whose.extend(picked.iter().map(|&i| (a, y[i] as usize, false)));
    }
    for (a, of_a) in of.iter().enumerate() {
        for label in (0..n_labels).filter(|&l| labels[l]) {
            let of_cell: Vec<usize> = of_a.iter().copied().filter(|&i| y[i] as usize == label).collect();
            let have = whose.iter().filter(|&&(b, l, top_up)| b == a && l == label && !top_up).count();
            if !of_cell.is_empty() && have < samples {
                codes.extend(draw(&of_cell, samples - have, rng).1);
                whose.extend(std::iter::repeat_n((a, label, true), samples - have));
            }
        }
    }
    // A first draw is evaluated on every cell, a top-up on its label's.
    let wanted = |d: usize, c: usize| !whose[d].2 || c / k == whose[d].1;
    let lp = logs.log_probs_in(&codes, false, Some(&wanted));
    let mut dp: Draws = vec![None; k.saturating_sub(1)];
    let mut eo: Vec<Option<Draws>> = labels.iter().map(|&on| on.then(|| vec![None; k.saturating_sub(1)])).collect();
    for (&(a, label, top_up), l) in whose.iter().zip(&lp) {
        if !top_up {
            dp[a].get_or_insert_with(Vec::new).push((0..k).map(|g| group_log(l, g)).collect());
        }
        if let Some(eo) = eo[label].as_mut() {
            eo[a].get_or_insert_with(Vec::new).push(l[label * k..(label + 1) * k].to_vec());
        }
    }
    (dp, eo)
}

/// The population certificate of held-out rows: `p` their code probabilities (row-major `n x m`; pass
/// `1[p >= 0.5]` to certify thresholded codes), `s` their groups, `y` their labels (`< n_labels`).
/// `delta` is split evenly over the pairs of groups (and, for equalised odds, over the labels too); each
/// Monte-Carlo estimate spends `mc_share` of its part on its sampling error; wider than `m_max`,
/// demographic parity and equalised odds draw their codes together, in one pass over the rows
/// (section 4b of docs/design.md).
#[allow(clippy::too_many_arguments)]
pub fn population<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    y: &[u8],
    n_labels: usize,
    confidence: f64,
    method: TvMethod,
    codes: &str,
    rng: &mut R,
) -> Population {
    population_weighted(p, m, s, k, y, n_labels, None, confidence, method, codes, rng)
}

/// [`population`] for the `w`-weighted target population of docs/design.md, section 4e (`w` one weight
/// per row, checked by [`check_weights`]): the weighted plug-in TV ([`pairwise_tv_weighted`]) plus the
/// McDiarmid term with bounded differences `w_i / W_g` ([`mcdiarmid_eps_from`]), within each group for the
/// demographic-parity bound and within each group and label for equalised odds. Where every group of the
/// rows at hand has one weight for all its rows, the weighted plug-in and `eps` are the unweighted ones,
/// and exactly those are computed (the same numbers, bit for bit). `None`: [`population`].
#[allow(clippy::too_many_arguments)]
pub fn population_weighted<R: rand::Rng>(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    y: &[u8],
    n_labels: usize,
    w: Option<&[f64]>,
    confidence: f64,
    method: TvMethod,
    codes: &str,
    rng: &mut R,
) -> Population {
    let delta = 1.0 - confidence;
    let count = |rows: &[usize]| {
        let mut c = vec![0usize; k];
        for &i in rows {
            c[s[i] as usize] += 1;
        }
        c
    };
    // The weights among the rows `rows`, where they change anything (some group's rows weigh differently):
    // every row's, and each group's total and sum of squared shares among these rows.
    let weights_of = |rows: &[usize]| {
        let sizes = count(rows);
        // Every row (the demographic-parity bound): no copy.
        let whole = rows.len() == s.len();
        let sub_w: Option<Cow<[f64]>> =
            w.map(|w| if whole { Cow::Borrowed(w) } else { rows.iter().map(|&i| w[i]).collect() });
        let sub_s: Cow<[u32]> = if whole { Cow::Borrowed(s) } else { rows.iter().map(|&i| s[i]).collect() };
        w.zip(sub_w.as_ref())
            .map(|(w, sub_w)| (w, weight_summary(sub_w, &sub_s, k)))
            .filter(|(_, (_, _, uniform))| (0..k).any(|g| sizes[g] > 0 && !uniform[g]))
    };
    // The largest pairwise upper bound among the rows `rows`, with `delta_total` for all the pairs; `draws`:
    // the Monte-Carlo draws of these rows, where drawn already ([`joint_draws`]).
    let bound = |rows: &[usize], delta_total: f64, draws: Option<&Draws>, rng: &mut R| -> (f64, f64, &'static str) {
        let sizes = count(rows);
        let weighted = weights_of(rows);
        let present: Vec<usize> = match &weighted {
            Some((_, (total, _, _))) => (0..k).filter(|&g| total[g] > 0.0).collect(),
            None => (0..k).filter(|&g| sizes[g] > 0).collect(),
        };
        let pairs = present.len() * present.len().saturating_sub(1) / 2;
        if pairs == 0 {
            return (f64::NAN, f64::NAN, "exact");
        }
        let per_pair = delta_total / pairs as f64;
        let (delta_mc, delta_mcd) = (per_pair * method.mc_share, per_pair * (1.0 - method.mc_share));
        // A label's rows by their indices: no copy of `p`.
        let (tv, mc_eps, how) = match (draws, &weighted) {
            (Some(draws), _) => {
                let mut is_present = vec![false; k];
                present.iter().for_each(|&g| is_present[g] = true);
                let (tv, eps) = tv_from_draws(draws, &is_present, delta_mc, m);
                (tv, eps, "monte-carlo")
            }
            (None, Some((w, _))) => pairwise_tv_weighted_of(p, m, s, k, w, rows, method, delta_mc, rng),
            (None, None) => pairwise_tv_of(p, m, s, k, rows, method, delta_mc, rng),
        };
        let (mut upper, mut plugin) = (0f64, 0f64);
        for (x, &a) in present.iter().enumerate() {
            for &b in &present[x + 1..] {
                let t = tv[a][b].max(tv[b][a]);
                let delta_here = if how == "exact" { per_pair } else { delta_mcd };
                let eps = match &weighted {
                    Some((_, (_, squares, _))) => mcdiarmid_eps_from(delta_here, squares[a], squares[b]),
                    None => mcdiarmid_eps(delta_here, sizes[a], sizes[b]),
                };
                let u = t + mc_eps[a][b] + eps;
                upper = upper.max(u.min(1.0));
                plugin = plugin.max(t);
            }
        }
        (upper, plugin, how)
    };
    let all: Vec<usize> = (0..s.len()).collect();
    let by_label: Vec<Vec<usize>> =
        (0..n_labels as u8).map(|label| (0..y.len()).filter(|&i| y[i] == label).collect()).collect();
    // Monte Carlo (wider than m_max, soft codes): demographic parity's and equalised odds' codes from one pass
    // over the rows, where the weights count alike for every label and for all rows (otherwise each bound
    // draws its own).
    let monte_carlo = |rows: &[usize]| !rows.is_empty() && m > method.m_max && !all_hard(p, m, rows);
    let all_weighted = weights_of(&all).map(|(w, _)| w);
    let (dp_draws, eo_draws) = if monte_carlo(&all)
        && y.len() == s.len()
        && y.iter().all(|&v| (v as usize) < n_labels)
        && by_label.iter().all(|rows| weights_of(rows).is_some() == all_weighted.is_some())
    {
        let w = all_weighted;
        let labels: Vec<bool> = by_label.iter().map(|rows| monte_carlo(rows)).collect();
        let (dp, eo) = joint_draws(p, m, s, k, y, &labels, w, method.samples, rng);
        (Some(dp), eo)
    } else {
        (None, vec![None; n_labels])
    };
    let (u, plugin, how) = bound(&all, delta, dp_draws.as_ref(), rng);
    let mut eo: f64 = 0.0;
    for (rows, draws) in by_label.iter().zip(&eo_draws) {
        if !rows.is_empty() {
            let (u_y, _, _) = bound(rows, delta / n_labels as f64, draws.as_ref(), rng);
            if !u_y.is_nan() {
                eo = eo.max(u_y);
            }
        }
    }
    Population {
        confidence,
        codes: codes.to_string(),
        tv_upper: u,
        tv_plugin: plugin,
        dp_gap_bound: u,
        eo_gap_bound: eo,
        adversary_balanced_accuracy_bound: (1.0 + u) / 2.0,
        probe_auc_bound: auc_bound_from_j(u),
        n_per_group: count(&all),
        method: how.to_string(),
        effective_n_per_group: w.map(|w| {
            let (mut total, mut squares) = (vec![0f64; k], vec![0f64; k]);
            for (&v, &g) in w.iter().zip(s) {
                total[g as usize] += v;
                squares[g as usize] += v * v;
            }
            // W^2 / sum w^2 (not 1 / the squared shares: equal weights give n exactly).
            (0..k).map(|g| if squares[g] > 0.0 { total[g] * total[g] / squares[g] } else { 0.0 }).collect()
        }),
    }
}

/// The population certificate taken apart (docs/design.md, section 4c): `U = plug-in TV + eps`, and the
/// plug-in TV split into an estimate of the population TV and of the plug-in's upward (Jensen) bias.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Decomposition {
    /// The certified bound `U` (the pair of groups that attains it: its plug-in plus its `eps`).
    pub bound: f64,
    /// The plug-in total variation on the rows.
    pub tv_plugin: f64,
    /// The McDiarmid term.
    pub eps: f64,
    /// The estimate of the population TV `t`: the one at which the plug-in's expected value equals the
    /// observed plug-in, the expectation taken over rows redrawn from the rows themselves with the groups'
    /// distributions shrunk towards the pooled one until their TV is `t` (section 4c).
    pub tv_true: f64,
    /// The plug-in's bias at that TV: `tv_plugin - tv_true`.
    pub jensen_bias: f64,
    /// The mean plug-in TV of rows redrawn from the pooled rows (true TV 0): the bias the plug-in would
    /// have if the population TV were 0, the largest it can be.
    pub null_plugin: f64,
    /// The bootstrap bias: the mean plug-in TV of rows redrawn within each group, less the plug-in (the
    /// bias at TV = the plug-in; it underestimates the bias at a smaller TV).
    pub bootstrap_bias: f64,
    /// Redraws behind each mean.
    pub resamples: usize,
}

/// The mean largest pairwise plug-in TV of `resamples` redraws of the rows: group `g` gets `sizes[g]` rows,
/// each from group `g`'s rows with probability `lambda`, else from all rows (the same draws for every
/// `lambda`: seeded by `seed` and the redraw's index, so that the mean is monotone in `lambda`).
#[allow(clippy::too_many_arguments)]
fn redrawn_plugin(
    p: &[f64],
    m: usize,
    by_group: &[Vec<usize>],
    sizes: &[usize],
    k: usize,
    lambda: f64,
    method: TvMethod,
    resamples: usize,
    seed: u64,
) -> f64 {
    redrawn_plugin_stats(p, m, by_group, sizes, k, lambda, method, resamples, seed).0
}

/// [`redrawn_plugin`]'s mean and the standard deviation of the redraws' plug-ins.
#[allow(clippy::too_many_arguments)]
fn redrawn_plugin_stats(
    p: &[f64],
    m: usize,
    by_group: &[Vec<usize>],
    sizes: &[usize],
    k: usize,
    lambda: f64,
    method: TvMethod,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    use rand::{Rng, SeedableRng};
    let n: usize = by_group.iter().map(Vec::len).sum();
    let all: Vec<usize> = by_group.iter().flatten().copied().collect();
    let (mut total, mut squares) = (0.0, 0.0);
    for b in 0..resamples {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(b as u64));
        let (mut q, mut sq) = (Vec::with_capacity(n * m), Vec::with_capacity(n));
        for (g, rows) in by_group.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            for _ in 0..sizes[g] {
                let (u, a, c) = (rng.random::<f64>(), rng.random_range(0..rows.len()), rng.random_range(0..n));
                let i = if u < lambda { rows[a] } else { all[c] };
                q.extend_from_slice(&p[i * m..(i + 1) * m]);
                sq.push(g as u32);
            }
        }
        let (tv, _, _) = pairwise_tv(&q, m, &sq, k, method, 0.05, &mut rng);
        let v = tv.iter().flatten().fold(0f64, |a, &v| a.max(v));
        total += v;
        squares += v * v;
    }
    let r = resamples.max(1) as f64;
    let mean = total / r;
    (mean, (squares / r - mean * mean).max(0.0).sqrt())
}

/// The shrinkage `lambda` in `[0, 1]` at which the mean redrawn plug-in equals the observed plug-in
/// (shrinking towards the pooled rows by `lambda` scales the TV by `lambda`, and the mean plug-in grows with
/// it): bisection, given the means at 0 and 1.
fn calibrate(mean_at: &dyn Fn(f64) -> f64, observed: f64, at_zero: f64, at_one: f64) -> f64 {
    if at_zero >= observed {
        return 0.0;
    }
    if at_one <= observed {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..8 {
        let mid = (lo + hi) / 2.0;
        if mean_at(mid) < observed {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The plug-in TV expected on other rows of the same population with `sizes[g]` rows of group `g`, from
/// the rows at hand (docs/design.md, section 4d): the population TV estimated as in [`decompose`]
/// (`lambda` times the plug-in), then the mean largest pairwise plug-in of redraws of `sizes` rows at that
/// shrinkage. Returns the estimated population TV, the expected plug-in at `sizes`, and the standard
/// deviations of the plug-in at `sizes` and at the rows' own sizes (from the same redraws): the noise of
/// the prediction is about the root of the sum of their squares.
#[allow(clippy::too_many_arguments)]
pub fn expected_plugin_at(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    sizes: &[usize],
    method: TvMethod,
    resamples: usize,
    seed: u64,
) -> (f64, f64, f64, f64) {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (tv, _, _) = pairwise_tv(p, m, s, k, method, 0.05, &mut rng);
    let observed = tv.iter().flatten().fold(0f64, |a, &v| a.max(v));
    let by_group: Vec<Vec<usize>> = (0..k).map(|g| (0..s.len()).filter(|&i| s[i] as usize == g).collect()).collect();
    let own: Vec<usize> = by_group.iter().map(Vec::len).collect();
    let mean_at = |lambda: f64| redrawn_plugin(p, m, &by_group, &own, k, lambda, method, resamples, seed ^ 0xb007);
    let lambda = calibrate(&mean_at, observed, mean_at(0.0), mean_at(1.0));
    let (at_sizes, sd_sizes) =
        redrawn_plugin_stats(p, m, &by_group, sizes, k, lambda, method, resamples, seed ^ 0x5123);
    let (_, sd_own) = redrawn_plugin_stats(p, m, &by_group, &own, k, lambda, method, resamples, seed ^ 0x5124);
    (lambda * observed, at_sizes, sd_sizes, sd_own)
}

/// [`Decomposition`] of the certificate of the rows with code probabilities `p` (row-major `n x m`) and
/// groups `s`, at confidence `1 - delta`; `resamples` redraws per mean, `seed` for them.
#[allow(clippy::too_many_arguments)]
pub fn decompose(
    p: &[f64],
    m: usize,
    s: &[u32],
    k: usize,
    confidence: f64,
    method: TvMethod,
    resamples: usize,
    seed: u64,
) -> Decomposition {
    use rand::SeedableRng;
    let delta = 1.0 - confidence;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (tv, _, _) = pairwise_tv(p, m, s, k, method, delta, &mut rng);
    let tv_plugin = tv.iter().flatten().fold(0f64, |a, &v| a.max(v));
    let by_group: Vec<Vec<usize>> = (0..k).map(|g| (0..s.len()).filter(|&i| s[i] as usize == g).collect()).collect();
    let present: Vec<usize> = (0..k).filter(|&g| !by_group[g].is_empty()).collect();
    let pairs = (present.len() * present.len().saturating_sub(1) / 2).max(1);
    // The pair that attains the certificate carries its eps (the max over pairs of section 4b).
    let (mut eps, mut bound) = (0f64, 0f64);
    for (x, &a) in present.iter().enumerate() {
        for &b in &present[x + 1..] {
            let e = mcdiarmid_eps(delta / pairs as f64, by_group[a].len(), by_group[b].len());
            let u = tv[a][b].max(tv[b][a]) + e;
            if u > bound {
                (bound, eps) = (u, e);
            }
        }
    }
    let sizes: Vec<usize> = by_group.iter().map(Vec::len).collect();
    let mean_at = |lambda: f64| redrawn_plugin(p, m, &by_group, &sizes, k, lambda, method, resamples, seed ^ 0xb007);
    let null_plugin = mean_at(0.0);
    let at_plugin = mean_at(1.0);
    let lambda = calibrate(&mean_at, tv_plugin, null_plugin, at_plugin);
    let tv_true = lambda * tv_plugin;
    Decomposition {
        bound: bound.min(1.0),
        tv_plugin,
        eps,
        tv_true,
        jensen_bias: tv_plugin - tv_true,
        null_plugin,
        bootstrap_bias: at_plugin - tv_plugin,
        resamples,
    }
}

#[cfg(test)]
mod decomposition_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_bias_estimates_match_a_brute_force_simulation() {
        // A population of 8 hard codes, equal in both groups (true TV 0), and one where group 1 moves 0.1 of
        // its mass from code 0 to code 7 (true TV 0.1). The plug-in's expected value, by simulating fresh
        // samples from the population, is what the bootstrap and permutation estimates must approach.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (n0, n1, m) = (600, 900, 3);
        let base = [0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05];
        let draw = |shift: f64, g: u32, n: usize, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
            let mut w = base;
            if g == 1 {
                w[0] -= shift;
                w[7] += shift;
            }
            (0..n)
                .flat_map(|_| {
                    let (mut u, mut t) = (rng.random::<f64>(), 0usize);
                    while t < 7 && u >= w[t] {
                        u -= w[t];
                        t += 1;
                    }
                    (0..m).map(move |j| ((t >> j) & 1) as f64)
                })
                .collect()
        };
        let method = TvMethod { m_max: 20, samples: 1000, mc_share: 0.2 };
        let s: Vec<u32> = (0..n0 + n1).map(|i| (i >= n0) as u32).collect();
        for shift in [0.0, 0.1] {
            // Brute force: the expected plug-in TV over 400 fresh samples.
            let mut expected = 0.0;
            for _ in 0..400 {
                let mut p = draw(shift, 0, n0, &mut rng);
                p.extend(draw(shift, 1, n1, &mut rng));
                expected += pairwise_tv(&p, m, &s, 2, method, 0.05, &mut rng).0[0][1] / 400.0;
            }
            let true_bias = expected - shift;
            let mut p = draw(shift, 0, n0, &mut rng);
            p.extend(draw(shift, 1, n1, &mut rng));
            let d = decompose(&p, m, &s, 2, 0.95, method, 200, 11);
            assert!((d.eps - mcdiarmid_eps(0.05, n0, n1)).abs() < 1e-12);
            assert!((d.bound - (d.tv_plugin + d.eps)).abs() < 1e-12);
            assert!((d.jensen_bias + d.tv_true - d.tv_plugin).abs() < 1e-12);
            // The brute-force bias is about 0.05 at TV 0 and 0.01 at TV 0.1 here; the estimate from one
            // sample must find the population TV within a sampling error of the plug-in (about 0.015).
            assert!((d.tv_true - shift).abs() < 0.02, "shift {shift}: {d:?} (true bias {true_bias})");
            if shift == 0.0 {
                // With true TV 0 the pooled redraws estimate the expected plug-in itself, and the bootstrap
                // underestimates the bias (it measures it at TV = the plug-in).
                assert!((d.null_plugin - expected).abs() < 0.01, "{} vs {expected}", d.null_plugin);
                assert!(d.bootstrap_bias < 0.8 * true_bias, "{d:?}");
            } else {
                assert!(d.null_plugin < d.tv_plugin - 0.03, "{d:?}");
                assert!((d.jensen_bias - true_bias).abs() < 0.015, "{d:?} vs {true_bias}");
            }
        }
    }
}

#[cfg(test)]
mod subset_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A label's rows by their indices give the numbers of a copy of those rows, bit for bit, on every
    /// path (hard codes, enumeration, Monte Carlo with three groups), with and without row weights, and leave
    /// the draws where they were.
    #[test]
    fn rows_by_index_are_a_copy_of_those_rows_bit_for_bit() {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (m, hard) in [(3, true), (6, false), (14, false)] {
            let n = 700;
            let s: Vec<u32> = (0..n).map(|_| r.random_range(0..3u32)).collect();
            let p: Vec<f64> = (0..n * m)
                .map(|k| match hard {
                    true => (r.random::<f64>() < 0.3 + 0.2 * s[k / m] as f64) as u8 as f64,
                    false => r.random::<f64>().powi(3),
                })
                .collect();
            let rows: Vec<usize> = (0..n).filter(|_| r.random::<f64>() < 0.6).collect();
            let sub_p: Vec<f64> = rows.iter().flat_map(|&i| p[i * m..(i + 1) * m].iter().copied()).collect();
            let sub_s: Vec<u32> = rows.iter().map(|&i| s[i]).collect();
            let method = TvMethod { m_max: 8, samples: 300, mc_share: 0.2 };
            let (mut a, mut b) = (rand_chacha::ChaCha8Rng::seed_from_u64(9), rand_chacha::ChaCha8Rng::seed_from_u64(9));
            let copied = pairwise_tv(&sub_p, m, &sub_s, 3, method, 0.01, &mut a);
            let indexed = pairwise_tv_of(&p, m, &s, 3, &rows, method, 0.01, &mut b);
            assert_eq!(copied, indexed, "m = {m}");
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "the same draws, m = {m}");
            let expected = if hard || m <= 8 { "exact" } else { "monte-carlo" };
            assert_eq!(indexed.2, expected);
            assert!(indexed.0[0][1] > 0.0 && indexed.0[0][1] <= 1.0);
            // The same with weights (some 0): the weighted path reads the rows by index too.
            let w: Vec<f64> =
                (0..n).map(|_| if r.random::<f64>() < 0.1 { 0.0 } else { 2.0 * r.random::<f64>() }).collect();
            let sub_w: Vec<f64> = rows.iter().map(|&i| w[i]).collect();
            let (mut a, mut b) = (rand_chacha::ChaCha8Rng::seed_from_u64(9), rand_chacha::ChaCha8Rng::seed_from_u64(9));
            let copied = pairwise_tv_weighted(&sub_p, m, &sub_s, 3, &sub_w, method, 0.01, &mut a);
            let indexed = pairwise_tv_weighted_of(&p, m, &s, 3, &w, &rows, method, 0.01, &mut b);
            assert_eq!(copied, indexed, "weighted, m = {m}");
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "the same draws, weighted, m = {m}");
            assert_eq!(indexed.2, expected);
        }
    }

    /// The shared draws of the population certificate (docs/design.md, section 4b): each label gets exactly
    /// `samples` codes, and every estimate (parity over all rows, each label's equalised-odds TV) agrees with
    /// enumeration of the same rows within a few standard errors of its terms, with weights and without, for
    /// labels tied to the groups and rows; parity's plug-in is that of drawing alone (the same codes).
    #[test]
    fn shared_draws_estimate_each_labels_tv() {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (n, m, k, samples) = (3000, 10, 3, 6000);
        let s: Vec<u32> = (0..n).map(|_| r.random_range(0..k as u32)).collect();
        // Labels depend on the group and on the row's first bit: each label's TV differs from parity's.
        let p: Vec<f64> = (0..n * m).map(|j| (r.random::<f64>().powi(2) + 0.15 * s[j / m] as f64).min(0.98)).collect();
        let y: Vec<u8> = (0..n).map(|i| (r.random::<f64>() < 0.2 + 0.6 * p[i * m]) as u8).collect();
        let w: Vec<f64> = (0..n).map(|_| if r.random::<f64>() < 0.1 { 0.0 } else { 0.5 + r.random::<f64>() }).collect();
        let exact = TvMethod { m_max: 12, samples: 0, mc_share: 0.2 };
        for weights in [None, Some(&w[..])] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let (dp, eo) = joint_draws(&p, m, &s, k, &y, &[true, true], weights, samples, &mut rng);
            let all: Vec<usize> = (0..n).collect();
            let mut cases = vec![("parity", dp, all.clone())];
            for (label, draws) in eo.into_iter().enumerate() {
                let rows: Vec<usize> = all.iter().copied().filter(|&i| y[i] as usize == label).collect();
                cases.push((["label 0", "label 1"][label], draws.expect("both labels drawn"), rows));
            }
            for (name, draws, rows) in cases {
                let (want, _, how) = match weights {
                    Some(w) => pairwise_tv_weighted_of(&p, m, &s, k, w, &rows, exact, 0.01, &mut rng),
                    None => pairwise_tv_of(&p, m, &s, k, &rows, exact, 0.01, &mut rng),
                };
                assert_eq!(how, "exact");
                for (a, lp) in draws.iter().enumerate() {
                    let lp = lp.as_ref().expect("every group but the last draws");
                    assert_eq!(lp.len(), samples, "{name}, group {a}: the codes are topped up to `samples`");
                    for b in a + 1..k {
                        let terms: Vec<f64> =
                            lp.iter().map(|l| tv_term(l, a, b, crate::penalty::mi::log_error(m))).collect();
                        let mean = terms.iter().sum::<f64>() / samples as f64;
                        let sd = (terms.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / samples as f64).sqrt();
                        let se = sd / (samples as f64).sqrt();
                        assert!(
                            (mean - want[a][b]).abs() <= 4.0 * se,
                            "{name}, weights {}: pair ({a}, {b}) estimated {mean:.4}, enumerated {:.4} (se {se:.4})",
                            weights.is_some(),
                            want[a][b]
                        );
                    }
                }
            }
            // Parity's codes are those of drawing alone: the plug-in matches within the tables' error.
            let method = TvMethod { m_max: 8, samples, mc_share: 0.2 };
            let alone = match weights {
                Some(w) => {
                    pairwise_tv_weighted(&p, m, &s, k, w, method, 0.01, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
                }
                None => pairwise_tv(&p, m, &s, k, method, 0.01, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3)),
            };
            let (dp, _) = joint_draws(
                &p,
                m,
                &s,
                k,
                &y,
                &[true, true],
                weights,
                samples,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
            );
            let present = vec![true; k];
            let err = crate::penalty::mi::log_error(m);
            let (shared, _) = tv_from_draws(&dp, &present, 0.01, m);
            for a in 0..k {
                for b in 0..k {
                    // The same codes, their log-probabilities from other tables (cells, not groups): each
                    // within `err` of the exact value, so each term within 4 err of the other's.
                    let gap = (shared[a][b] - alone.0[a][b]).abs();
                    assert!(gap <= 4.0 * err + 1e-12, "parity ({a}, {b}): {gap}");
                }
            }
        }
    }

    /// The Monte-Carlo terms from the tables (f32 sums within `log_error`) are never below the exact terms
    /// (each `P^_g(t)` a direct log-sum-exp over its rows in f64), and without the allowance some would be:
    /// the allowance is what keeps them on the safe side.
    #[test]
    fn monte_carlo_terms_are_never_below_the_exact_ones() {
        use crate::penalty::mi;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (n, m, k) = (2000, 32, 2);
        let s: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
        // Soft rows whose groups differ a little: terms spread over (0, 1).
        let p: Vec<f64> = (0..n * m)
            .map(|idx| 1.0 / (1.0 + (-(4.0 * (rng.random::<f64>() - 0.5) + 0.5 * s[idx / m] as f64)).exp()))
            .collect();
        let of_0: Vec<usize> = (0..n).filter(|&i| s[i] == 0).collect();
        let (_, codes) = mi::sample_codes(&p, m, &of_0, 400, &mut rng);
        let lp = mi::RowLogs::new(&p, m, &s, k).log_probs(&codes, false);
        let exact = |t: &[f64], g: u32| -> f64 {
            let rows: Vec<usize> = (0..n).filter(|&i| s[i] == g).collect();
            let ll = rows.iter().map(|&i| {
                (0..m).map(|j| if t[j] != 0.0 { p[i * m + j].ln() } else { (1.0 - p[i * m + j]).ln() }).sum::<f64>()
            });
            mi::log_sum_exp(ll) - (rows.len() as f64).ln()
        };
        let err = mi::log_error(m);
        let mut below_without = 0;
        for (t, l) in codes.chunks_exact(m).zip(&lp) {
            let want = tv_term(&[exact(t, 0), exact(t, 1)], 0, 1, 0.0);
            assert!(tv_term(l, 0, 1, err) >= want, "{} < {want}", tv_term(l, 0, 1, err));
            below_without += (tv_term(l, 0, 1, 0.0) < want) as usize;
        }
        assert!(below_without > 0, "the tables' rounding must put some terms below the exact ones");
    }
}

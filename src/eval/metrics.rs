//! Assessment metrics of docs/design.md, section 5: ROC AUC (ties count half), accuracy, and the fairness gaps of
//! hard predictions by group. A metric never trains anything. Undefined values (a class or group absent)
//! are `NaN`, written as `null` in JSON.

use rayon::prelude::*;

/// ROC AUC of `scores` for `labels`: the probability that a random positive scores above a random negative,
/// ties counted half. `NaN` when either class is absent or a score is not finite (a broken model's output
/// has no ranking).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 || scores.iter().any(|s| !s.is_finite()) {
        return f64::NAN;
    }
    // Scores with their labels, sorted in parallel; the order among equal scores does not matter, as they
    // share a rank.
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Mann-Whitney with mid-ranks: equal scores share the average rank.
    let mut rank_sum_pos = 0.0;
    let mut k = 0;
    while k < pairs.len() {
        let mut end = k;
        while end < pairs.len() && pairs[end].0 == pairs[k].0 {
            end += 1;
        }
        let mid_rank = (k + end + 1) as f64 / 2.0;
        rank_sum_pos += mid_rank * pairs[k..end].iter().filter(|p| p.1).count() as f64;
        k = end;
    }
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Macro one-vs-rest AUC: `scores[c]` scores class `c`; classes absent from `labels` (or present alone)
/// are skipped. For two classes this is the AUC of `scores[1]`.
pub fn macro_auc(scores: &[Vec<f64>], labels: &[u32]) -> f64 {
    if scores.len() == 2 {
        let l: Vec<bool> = labels.iter().map(|&v| v == 1).collect();
        return roc_auc(&scores[1], &l);
    }
    let aucs: Vec<f64> = (0..scores.len())
        .map(|c| {
            let l: Vec<bool> = labels.iter().map(|&v| v as usize == c).collect();
            roc_auc(&scores[c], &l)
        })
        .filter(|a| !a.is_nan())
        .collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

/// Fraction of equal entries.
pub fn accuracy<T: PartialEq>(pred: &[T], truth: &[T]) -> f64 {
    let hits = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    hits as f64 / truth.len().max(1) as f64
}

/// `P(yhat = 1 | S = s)` per group, over the rows where `mask` holds; `None` for a group with no such row.
pub fn positive_rate_by_group(
    pred: &[bool],
    s: &[u32],
    n_groups: usize,
    mask: impl Fn(usize) -> bool,
) -> Vec<Option<f64>> {
    let mut pos = vec![0usize; n_groups];
    let mut tot = vec![0usize; n_groups];
    for i in 0..pred.len() {
        if mask(i) {
            tot[s[i] as usize] += 1;
            pos[s[i] as usize] += pred[i] as usize;
        }
    }
    (0..n_groups).map(|g| (tot[g] > 0).then(|| pos[g] as f64 / tot[g] as f64)).collect()
}

/// Largest `|r_a - r_b|` over pairs of groups with a rate.
pub fn max_pairwise_gap(rates: &[Option<f64>]) -> f64 {
    let r: Vec<f64> = rates.iter().flatten().copied().collect();
    if r.len() < 2 {
        return f64::NAN;
    }
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    max - min
}

/// Demographic-parity gap `|P(yhat=1 | S=0) - P(yhat=1 | S=1)|`; the max over pairs for more groups.
pub fn dp_gap(pred: &[bool], s: &[u32], n_groups: usize) -> f64 {
    max_pairwise_gap(&positive_rate_by_group(pred, s, n_groups, |_| true))
}

/// Equalised-odds gap: `max_{y in {0,1}}` of the DP gap among rows with label `y`.
pub fn eo_gap(pred: &[bool], y: &[u8], s: &[u32], n_groups: usize) -> f64 {
    (0..2u8)
        .map(|label| max_pairwise_gap(&positive_rate_by_group(pred, s, n_groups, |i| y[i] == label)))
        .fold(f64::NAN, f64::max)
}

/// Disparate-impact ratio `min(r, 1/r)` with `r = P(yhat=1|S=0) / P(yhat=1|S=1)`; the min over pairs for
/// more groups. Two zero rates give 1; one zero rate gives 0.
pub fn di_ratio(pred: &[bool], s: &[u32], n_groups: usize) -> f64 {
    let r: Vec<f64> = positive_rate_by_group(pred, s, n_groups, |_| true).into_iter().flatten().collect();
    if r.len() < 2 {
        return f64::NAN;
    }
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    if max == 0.0 {
        1.0
    } else {
        min / max
    }
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_hand_computed() {
        // Positives 0.8, 0.4; negatives 0.6, 0.2. Pairs: (0.8>0.6) (0.8>0.2) (0.4<0.6) (0.4>0.2): 3/4.
        assert_eq!(roc_auc(&[0.8, 0.6, 0.4, 0.2], &[true, false, true, false]), 0.75);
        // A tie between a positive and a negative counts half: (0.5=0.5) half, (0.5>0.1) one: 0.75.
        assert_eq!(roc_auc(&[0.5, 0.5, 0.1], &[true, false, false]), 0.75);
        // All tied: 0.5. Perfect and reversed.
        assert_eq!(roc_auc(&[1.0; 4], &[true, false, true, false]), 0.5);
        assert_eq!(roc_auc(&[0.9, 0.1], &[true, false]), 1.0);
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, false]), 0.0);
        assert!(roc_auc(&[0.1, 0.9], &[true, true]).is_nan());
    }

    #[test]
    fn macro_auc_averages_one_vs_rest() {
        let labels = [0u32, 1, 2, 2];
        let scores = vec![
            vec![0.9, 0.1, 0.1, 0.1], // class 0: perfect (ties among negatives only)
            vec![0.1, 0.2, 0.3, 0.0], // class 1: positive 0.2 beats 0.1, 0.0, loses to 0.3: 2/3
            vec![0.0, 0.0, 1.0, 1.0], // class 2: perfect
        ];
        assert!((macro_auc(&scores, &labels) - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn fairness_gaps_by_group() {
        // Group 0: 3 of 4 positive; group 1: 1 of 4.
        let pred = [true, true, true, false, true, false, false, false];
        let s = [0, 0, 0, 0, 1, 1, 1, 1];
        let y = [1, 1, 0, 0, 1, 1, 0, 0];
        assert_eq!(dp_gap(&pred, &s, 2), 0.5);
        assert!((di_ratio(&pred, &s, 2) - 1.0 / 3.0).abs() < 1e-12);
        // y=1: group 0 rate 1, group 1 rate 0.5; y=0: 0.5 vs 0: max 0.5.
        assert_eq!(eo_gap(&pred, &y, &s, 2), 0.5);
        // A third, absent group changes nothing.
        assert_eq!(dp_gap(&pred, &s, 3), 0.5);
        assert_eq!(di_ratio(&[false; 4], &[0, 0, 1, 1], 2), 1.0);
    }
}

//! The task metrics of a regression head (docs/design.md, section 5c): RMSE, R^2, MAE and the gap in
//! mean prediction between groups, in the target's own units. The information, probes and certificate
//! of a regression model are those of any table model ([`super::binary`]): they are about the codes,
//! whatever head reads them.

use super::nullable;
use crate::data::Scale;
use serde::{Deserialize, Serialize};

/// Regression metrics on the test rows (mean over draws in `sample` mode, with their standard
/// deviations), in the target's units.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Regression {
    /// Root mean squared error.
    #[serde(with = "nullable")]
    pub rmse: f64,
    /// Coefficient of determination `1 - SSE / SST` (SST about the test rows' own mean; 1 is perfect,
    /// 0 is the test mean's).
    #[serde(with = "nullable")]
    pub r2: f64,
    /// Mean absolute error.
    #[serde(with = "nullable")]
    pub mae: f64,
    /// The gap in mean prediction between groups: `max_g E[f | g] - min_g E[f | g]` (0 = groups
    /// predicted alike on average). For predictions in `[a, b]` the certificate bounds it by
    /// `(b - a) x TV` (docs/design.md, section 5c).
    #[serde(with = "nullable")]
    pub mean_gap: f64,
    /// Each group's mean prediction (index = `s`; mean over draws).
    pub mean_by_group: Vec<Option<f64>>,
    /// Std of `rmse` over draws.
    #[serde(with = "nullable")]
    pub rmse_std: f64,
    /// Std of `r2` over draws.
    #[serde(with = "nullable")]
    pub r2_std: f64,
    /// Std of `mae` over draws.
    #[serde(with = "nullable")]
    pub mae_std: f64,
    /// Std of `mean_gap` over draws.
    #[serde(with = "nullable")]
    pub mean_gap_std: f64,
    /// RMSE of the constant prediction of the training rows' mean: what a model must beat.
    #[serde(with = "nullable")]
    pub rmse_of_training_mean: f64,
}

/// RMSE, R^2, MAE and the mean-prediction gap of predictions `pred` against `truth` (both in the target's
/// units), then each group's mean prediction (`NaN` for a group without rows). R^2 is `NaN` when the
/// truth is constant.
pub fn scores(pred: &[f64], truth: &[f64], s: &[u32], n_groups: usize) -> Vec<f64> {
    let n = pred.len().max(1) as f64;
    let sse: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t).powi(2)).sum();
    let mean = truth.iter().sum::<f64>() / n;
    let sst: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let mae = pred.iter().zip(truth).map(|(p, t)| (p - t).abs()).sum::<f64>() / n;
    let r2 = if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN };
    let by_group = group_means(pred, s, n_groups);
    let present: Vec<f64> = by_group.iter().copied().filter(|v| !v.is_nan()).collect();
    let gap = if present.len() < 2 {
        f64::NAN
    } else {
        present.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - present.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let mut row = vec![(sse / n).sqrt(), r2, mae, gap];
    row.extend(by_group);
    row
}

/// The mean of `v` over each group's rows (`NaN` for a group without rows).
fn group_means(v: &[f64], s: &[u32], n_groups: usize) -> Vec<f64> {
    let mut sum = vec![0f64; n_groups];
    let mut count = vec![0usize; n_groups];
    for (x, &g) in v.iter().zip(s) {
        sum[g as usize] += x;
        count[g as usize] += 1;
    }
    sum.iter().zip(&count).map(|(s, &c)| if c == 0 { f64::NAN } else { s / c as f64 }).collect()
}

/// [`Regression`] from the rows of [`scores`] over draws; `truth` is the test rows' target in its units.
pub fn summarise(rows: &[Vec<f64>], truth: &[f64], scale: &Scale) -> Regression {
    let col = |c: usize| super::metrics::mean_std(&rows.iter().map(|r| r[c]).collect::<Vec<_>>());
    let ((rmse, rmse_std), (r2, r2_std), (mae, mae_std), (mean_gap, mean_gap_std)) = (col(0), col(1), col(2), col(3));
    let groups = rows.first().map_or(4, Vec::len);
    let mean_by_group = (4..groups).map(|c| Some(col(c).0).filter(|v| !v.is_nan())).collect();
    let n = truth.len().max(1) as f64;
    let rmse_of_training_mean = (truth.iter().map(|t| (t - scale.mean).powi(2)).sum::<f64>() / n).sqrt();
    Regression {
        rmse,
        r2,
        mae,
        mean_gap,
        mean_by_group,
        rmse_std,
        r2_std,
        mae_std,
        mean_gap_std,
        rmse_of_training_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scores_match_a_hand_computation() {
        let truth = [1.0, 2.0, 3.0, 4.0];
        let pred = [1.5, 2.0, 2.0, 5.0];
        let s = [0, 0, 1, 1];
        let row = scores(&pred, &truth, &s, 3);
        // SSE = 0.25 + 0 + 1 + 1 = 2.25; SST = 5 (mean 2.5); MAE = (0.5 + 0 + 1 + 1) / 4.
        assert!((row[0] - (2.25f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((row[1] - (1.0 - 2.25 / 5.0)).abs() < 1e-12);
        assert!((row[2] - 0.625).abs() < 1e-12);
        // Group means 1.75 and 3.5; the empty third group is left out of the gap.
        assert!((row[3] - 1.75).abs() < 1e-12);
        assert_eq!(&row[4..6], &[1.75, 3.5]);
        assert!(row[6].is_nan());
        let r = summarise(&[row.clone(), row], &truth, &Scale { mean: 2.0, std: 1.0, median: 2.5 });
        assert_eq!(r.mean_by_group, vec![Some(1.75), Some(3.5), None]);
        assert_eq!(r.rmse_std, 0.0);
        assert!((r.rmse_of_training_mean - (6.0f64 / 4.0).sqrt()).abs() < 1e-12);
        // A constant truth has no R^2.
        assert!(scores(&pred, &[2.0; 4], &s, 2)[1].is_nan());
    }
}

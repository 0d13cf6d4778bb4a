//! Property tests of the metrics, the MI and the certificate: ranges, symmetries, invariance to row order.

use candle_core::Device;
use fairbits::eval::{certificate, metrics};
use fairbits::penalty::mi;
use proptest::prelude::*;

fn joint(p: &[f64], m: usize, s: &[u32], k: usize) -> f64 {
    let pt = mi::to_tensor(p, m, &Device::Cpu).unwrap();
    let g = mi::group_onehot(s, k, &Device::Cpu).unwrap();
    mi::joint_mi_exact(&pt, &g).unwrap().to_scalar::<f64>().unwrap()
}

fn per_neuron(p: &[f64], m: usize, s: &[u32], k: usize) -> f64 {
    let pt = mi::to_tensor(p, m, &Device::Cpu).unwrap();
    let g = mi::group_onehot(s, k, &Device::Cpu).unwrap();
    mi::per_neuron_mi(&pt, &g).unwrap().to_scalar::<f64>().unwrap()
}

/// A layer: `n` rows of `m` probabilities and a group per row (at most `k` groups).
fn layer() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<u32>)> {
    (2usize..30, 1usize..6, 2usize..4).prop_flat_map(|(n, m, k)| {
        (Just(m), Just(k), proptest::collection::vec(0.0f64..=1.0, n * m), proptest::collection::vec(0u32..k as u32, n))
    })
}

fn reversed_rows(p: &[f64], m: usize, s: &[u32]) -> (Vec<f64>, Vec<u32>) {
    let rows: Vec<&[f64]> = p.chunks(m).rev().collect();
    (rows.concat(), s.iter().rev().copied().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn auc_is_a_probability_symmetric_and_order_free(scores in proptest::collection::vec(-3.0f64..3.0, 2..60), seed in 0u64..1000) {
        let labels: Vec<bool> = scores.iter().enumerate().map(|(i, _)| (i as u64 * 7 + seed) % 3 == 0).collect();
        let a = metrics::roc_auc(&scores, &labels);
        if labels.iter().all(|&l| l) || labels.iter().all(|&l| !l) {
            prop_assert!(a.is_nan());
        } else {
            prop_assert!((0.0..=1.0).contains(&a));
            let neg: Vec<f64> = scores.iter().map(|v| -v).collect();
            prop_assert!((a + metrics::roc_auc(&neg, &labels) - 1.0).abs() < 1e-12);
            // A strictly increasing transform changes nothing; nor does reversing the rows.
            let exp: Vec<f64> = scores.iter().map(|v| v.exp()).collect();
            prop_assert!((a - metrics::roc_auc(&exp, &labels)).abs() < 1e-12);
            let (rs, rl): (Vec<f64>, Vec<bool>) = scores.iter().rev().zip(labels.iter().rev()).map(|(a, b)| (*a, *b)).unzip();
            prop_assert!((a - metrics::roc_auc(&rs, &rl)).abs() < 1e-12);
        }
    }

    #[test]
    fn fairness_gaps_are_in_range_and_symmetric(pred in proptest::collection::vec(any::<bool>(), 4..80), seed in 0u64..1000) {
        let s: Vec<u32> = (0..pred.len()).map(|i| ((i as u64 * 5 + seed) % 2) as u32).collect();
        let y: Vec<u8> = (0..pred.len()).map(|i| ((i as u64 * 3 + seed) % 2) as u8).collect();
        let dp = metrics::dp_gap(&pred, &s, 2);
        let eo = metrics::eo_gap(&pred, &y, &s, 2);
        let di = metrics::di_ratio(&pred, &s, 2);
        prop_assert!((0.0..=1.0).contains(&dp));
        prop_assert!(eo.is_nan() || (0.0..=1.0).contains(&eo));
        prop_assert!((0.0..=1.0).contains(&di));
        let swapped: Vec<u32> = s.iter().map(|g| 1 - g).collect();
        prop_assert_eq!(dp, metrics::dp_gap(&pred, &swapped, 2));
        prop_assert_eq!(di, metrics::di_ratio(&pred, &swapped, 2));
        let rp: Vec<bool> = pred.iter().rev().copied().collect();
        let rs: Vec<u32> = s.iter().rev().copied().collect();
        prop_assert!((dp - metrics::dp_gap(&rp, &rs, 2)).abs() < 1e-12);
    }

    #[test]
    fn mi_is_in_range_and_invariant_to_rows_groups_and_neurons((m, k, p, s) in layer()) {
        let j = joint(&p, m, &s, k);
        let pn = per_neuron(&p, m, &s, k);
        let hs = (k as f64).log2();
        prop_assert!(j > -1e-9 && j <= (m as f64).min(hs) + 1e-9, "joint {}", j);
        prop_assert!(pn > -1e-9 && pn <= m as f64 * hs.min(1.0) + 1e-9, "per-neuron {}", pn);
        // Row order.
        let (rp, rs) = reversed_rows(&p, m, &s);
        prop_assert!((j - joint(&rp, m, &rs, k)).abs() < 1e-9);
        prop_assert!((pn - per_neuron(&rp, m, &rs, k)).abs() < 1e-9);
        // Relabelling the groups.
        let relabelled: Vec<u32> = s.iter().map(|g| (g + 1) % k as u32).collect();
        prop_assert!((j - joint(&p, m, &relabelled, k)).abs() < 1e-9);
        // Reversing the neurons.
        let flipped: Vec<f64> = p.chunks(m).flat_map(|r| r.iter().rev().copied()).collect();
        prop_assert!((j - joint(&flipped, m, &s, k)).abs() < 1e-9);
        prop_assert!((pn - per_neuron(&flipped, m, &s, k)).abs() < 1e-9);
        // The certificate is monotone in the information.
        let pi = [0.3, 0.7];
        prop_assert!(certificate::bounds(j, &pi).dp_gap_bound <= certificate::bounds(j + 0.01, &pi).dp_gap_bound);
    }
}

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
        let labels: Vec<bool> = scores.iter().enumerate().map(|(i, _)| (i as u64 * 7 + seed).is_multiple_of(3)).collect();
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

/// Values with NaN and infinities mixed into ordinary numbers.
fn hostile(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(
        prop_oneof![
            4 => -2.0f64..2.0,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(0.0),
        ],
        n,
    )
}

/// Runs `f` on another thread and fails if it has not returned within 10 s (a hang) or panicked.
fn finishes<F: FnOnce() + Send + 'static>(what: &str, f: F) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(), "{what} hung or panicked");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Regression (trust issue, item 2): the tie loop of the AUC never advanced on NaN scores, so `eval` of a
    /// model with NaN weights hung. Every metric, probe and certificate function must return (a number or
    /// NaN) on non-finite input: no hang, no panic.
    #[test]
    fn non_finite_scores_and_features_neither_hang_nor_panic(values in hostile(4..40), seed in 0u64..50) {
        let n = values.len();
        let labels: Vec<bool> = (0..n).map(|i| (i as u64 + seed).is_multiple_of(2)).collect();
        let s: Vec<u32> = (0..n).map(|i| ((i as u64 * 3 + seed) % 2) as u32).collect();
        let v = values.clone();
        finishes("roc_auc", move || {
            let a = metrics::roc_auc(&v, &labels);
            assert!(a.is_nan() || (0.0..=1.0).contains(&a));
        });
        let (v, s2) = (values.clone(), s.clone());
        finishes("macro_auc", move || {
            let _ = metrics::macro_auc(&[v.clone(), v.iter().map(|x| -x).collect()], &s2);
            let _ = metrics::mean_std(&v);
        });
        let v = values.clone();
        finishes("likelihood-ratio AUC and TV", move || {
            let half = v.len() / 2;
            let (q0, q1) = (&v[..half], &v[half..2 * half]);
            let _ = certificate::likelihood_ratio_auc(q0, q1);
            let _ = certificate::total_variation(q0, q1);
            let _ = certificate::exact_worst_case(&[q0.to_vec(), q1.to_vec()], &[0.5, 0.5]);
            let _ = certificate::bounds(v[0], &[0.4, 0.6]);
        });
        let (v, s3) = (values.clone(), s.clone());
        finishes("probes", move || {
            use fairbits::eval::probes::{forest_probe, logreg_probe, Repr};
            let r = Repr { x: &v, d: 1, s: &s3 };
            let a = logreg_probe(r, r, 2);
            let b = forest_probe(r, r, 2, 3, 0);
            if v.iter().any(|x| !x.is_finite()) {
                assert!(a.auc.is_nan() && b.auc.is_nan(), "a non-finite representation has no probe score");
            }
        });
    }
}

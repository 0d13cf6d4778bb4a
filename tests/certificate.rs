//! The certificate of docs/design.md, section 4 against the actual behaviour of many random classifiers and probes
//! that consume one sampled code per row.

use candle_core::Device;
use fairbits::eval::{certificate, metrics};
use fairbits::penalty::mi;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random layer: `n` rows, `m` neurons, `k` groups, with `p` shifted by group.
fn layer(seed: u64, n: usize, m: usize, k: usize, shift: f64) -> (Vec<f64>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
    let p = s
        .iter()
        .flat_map(|&g| {
            let base: Vec<f64> = (0..m).map(|_| rng.random::<f64>()).collect();
            base.into_iter()
                .map(move |b| (b * (1.0 - shift) + shift * (g as f64 / (k - 1) as f64)).clamp(0.0025, 0.9975))
        })
        .collect::<Vec<_>>();
    (p, s)
}

fn exact(p: &[f64], m: usize, s: &[u32], k: usize) -> (f64, Vec<Vec<f64>>, Vec<f64>) {
    let pt = mi::to_tensor(p, m, &Device::Cpu).unwrap();
    let g = mi::group_onehot(s, k, &Device::Cpu).unwrap();
    let info = mi::joint_mi_exact(&pt, &g).unwrap().to_scalar::<f64>().unwrap();
    let dists: Vec<Vec<f64>> = mi::code_distributions(&pt, &g).unwrap().to_vec2().unwrap();
    let mut shares = vec![0.0; k];
    for &v in s {
        shares[v as usize] += 1.0 / s.len() as f64;
    }
    (info, dists, shares)
}

/// Sample one code per row, as a consumer of the layer would see it.
fn sample_codes(p: &[f64], m: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    p.chunks(m)
        .map(|row| row.iter().enumerate().map(|(j, &q)| ((rng.random::<f64>() < q) as usize) << j).sum())
        .collect()
}

#[test]
fn random_classifiers_on_sampled_codes_respect_the_dp_bound() {
    for (seed, shift) in [(0, 0.05), (1, 0.2), (2, 0.5)] {
        let (m, k) = (5, 2);
        let (p, s) = layer(seed, 4000, m, k, shift);
        let (info, dists, shares) = exact(&p, m, &s, k);
        let b = certificate::bounds(info, &shares);
        let (tv, lr_auc) = certificate::exact_worst_case(&dists, &shares);
        assert!(tv <= b.dp_gap_bound + 1e-12, "TV {tv} above bound {}", b.dp_gap_bound);
        assert!(lr_auc <= b.probe_auc_bound + 1e-12);
        // The code index of the distributions differs from our bit order: compare through TV only, and
        // test the classifiers against the bound on freshly sampled codes.
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        for _ in 0..200 {
            // A random, possibly randomised classifier: each code maps to P(yhat = 1).
            let c: Vec<f64> = (0..1 << m)
                .map(|_| if rng.random_bool(0.5) { rng.random() } else { rng.random_bool(0.5) as u8 as f64 })
                .collect();
            // Its exact DP gap over the distribution of one sampled code per row.
            let rate = |g: u32| {
                let rows: Vec<usize> = (0..s.len()).filter(|&i| s[i] == g).collect();
                rows.iter()
                    .map(|&i| {
                        let row = &p[i * m..(i + 1) * m];
                        (0..1usize << m)
                            .map(|t| {
                                c[t] * (0..m)
                                    .map(|j| if t >> j & 1 == 1 { row[j] } else { 1.0 - row[j] })
                                    .product::<f64>()
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / rows.len() as f64
            };
            let gap = (rate(0) - rate(1)).abs();
            assert!(gap <= tv + 1e-9, "gap {gap} above TV {tv}");
            assert!(gap <= b.dp_gap_bound + 1e-9);
        }
        // And on actual samples, within sampling noise (4 standard errors of a difference of rates).
        let codes = sample_codes(&p, m, &mut rng);
        for _ in 0..200 {
            let c: Vec<bool> = (0..1 << m).map(|_| rng.random_bool(0.5)).collect();
            let pred: Vec<bool> = codes.iter().map(|&t| c[t]).collect();
            let gap = metrics::dp_gap(&pred, &s, 2);
            let se = (0.25 / (shares[0] * 4000.0) + 0.25 / (shares[1] * 4000.0)).sqrt();
            assert!(gap <= b.dp_gap_bound + 4.0 * se, "sampled gap {gap} bound {}", b.dp_gap_bound);
        }
    }
}

#[test]
fn random_probes_on_sampled_codes_respect_the_auc_bound() {
    let (m, k) = (4, 2);
    let (p, s) = layer(7, 6000, m, k, 0.3);
    let (info, dists, shares) = exact(&p, m, &s, k);
    let b = certificate::bounds(info, &shares);
    let (_, lr_auc) = certificate::exact_worst_case(&dists, &shares);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let codes = sample_codes(&p, m, &mut rng);
    let labels: Vec<bool> = s.iter().map(|&g| g == 1).collect();
    // The best probe on codes: the empirical likelihood ratio, plus random scorings.
    let mut counts = vec![[0f64; 2]; 1 << m];
    for (t, &g) in codes.iter().zip(&s) {
        counts[*t][g as usize] += 1.0;
    }
    let lr_scores: Vec<f64> = codes.iter().map(|&t| (counts[t][1] + 1e-9) / (counts[t][0] + 1e-9)).collect();
    let empirical_best = metrics::roc_auc(&lr_scores, &labels);
    let se = 0.5 / (6000f64 * shares[0] * shares[1]).sqrt();
    assert!(empirical_best <= b.probe_auc_bound + 3.0 * se, "{empirical_best} vs bound {}", b.probe_auc_bound);
    assert!((empirical_best - lr_auc).abs() < 4.0 * se, "empirical LR AUC {empirical_best} vs exact {lr_auc}");
    for _ in 0..100 {
        let score: Vec<f64> = (0..1 << m).map(|_| rng.random()).collect();
        let auc = metrics::roc_auc(&codes.iter().map(|&t| score[t]).collect::<Vec<_>>(), &labels);
        assert!(auc.max(1.0 - auc) <= b.probe_auc_bound + 3.0 * se);
    }
}

#[test]
fn more_groups_pairwise_bound_holds() {
    let (m, k) = (4, 3);
    let (p, s) = layer(11, 3000, m, k, 0.3);
    let (info, dists, shares) = exact(&p, m, &s, k);
    let b = certificate::bounds(info, &shares);
    let (tv, _) = certificate::exact_worst_case(&dists, &shares);
    assert!(tv > 0.01 && tv <= b.dp_gap_bound);
}

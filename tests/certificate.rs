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

/// A population of code distributions with a known total variation between its two groups: each group is a
/// mixture of "row types" (vectors of firing probabilities) drawn uniformly. Only the first two neurons
/// depend on the type; the others fire with probability 0.5 in every row of both groups, so the TV of the
/// whole layer equals the TV of the two-neuron marginals, which is enumerated exactly for any width.
struct Population {
    m: usize,
    types: [Vec<[f64; 2]>; 2],
}

impl Population {
    fn true_tv(&self) -> f64 {
        let dist = |g: usize| -> Vec<f64> {
            let t = &self.types[g];
            (0..4)
                .map(|code| {
                    t.iter()
                        .map(|q| (0..2).map(|j| if code >> j & 1 == 1 { q[j] } else { 1.0 - q[j] }).product::<f64>())
                        .sum::<f64>()
                        / t.len() as f64
                })
                .collect()
        };
        certificate::total_variation(&dist(0), &dist(1))
    }

    /// `n[g]` held-out rows of each group: their probabilities (row-major `n x m`) and groups.
    fn draw(&self, n: [usize; 2], rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<u32>) {
        let (mut p, mut s) = (Vec::new(), Vec::new());
        for (g, &count) in n.iter().enumerate() {
            for _ in 0..count {
                let q = self.types[g][rng.random_range(0..self.types[g].len())];
                p.extend_from_slice(&q);
                p.extend(std::iter::repeat_n(0.5, self.m - 2));
                s.push(g as u32);
            }
        }
        (p, s)
    }
}

/// The population certificate (docs/design.md, section 4b) covers the population's true TV in at least
/// `1 - delta` of many independent held-out samples, for soft and hard codes, by enumeration and (m = 24)
/// by Monte Carlo; it is also never below the plug-in TV.
#[test]
fn the_population_bound_covers_the_true_total_variation() {
    let soft = [vec![[0.2, 0.7], [0.6, 0.4], [0.5, 0.5]], vec![[0.3, 0.6], [0.7, 0.3], [0.5, 0.45]]];
    let hard = [vec![[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], vec![[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]];
    let method = |samples| certificate::TvMethod { m_max: 20, samples, mc_share: 0.2 };
    for (name, types, m, draws) in
        [("soft m=4", soft.clone(), 4, 200), ("hard m=4", hard, 4, 200), ("soft m=24", soft, 24, 200)]
    {
        let pop = Population { m, types };
        let truth = pop.true_tv();
        for delta in [0.05, 0.2] {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let (mut covered, mut wrong) = (0, 0);
            for _ in 0..draws {
                let (p, s) = pop.draw([60, 90], &mut rng);
                let y: Vec<u8> = (0..s.len()).map(|i| (i % 2) as u8).collect();
                let c = certificate::population(&p, m, &s, 2, &y, 2, 1.0 - delta, method(400), "sample", &mut rng);
                assert!(c.tv_upper >= c.tv_plugin, "{name}: the bound is below its own estimate");
                assert_eq!(c.method, if m > 20 { "monte-carlo" } else { "exact" });
                covered += (c.tv_upper >= truth) as usize;
                // A bound as far below the estimate as the real one is above it: the test must tell.
                wrong += (2.0 * c.tv_plugin - c.tv_upper >= truth) as usize;
            }
            let rate = covered as f64 / draws as f64;
            assert!((wrong as f64) < (1.0 - delta) * draws as f64, "{name}: the coverage check cannot fail ({wrong})");
            assert!(rate >= 1.0 - delta, "{name}, delta {delta}: coverage {rate} (true TV {truth})");
            eprintln!("{name}, delta {delta}: coverage {rate} of {draws} held-out samples (true TV {truth:.4})");
        }
    }
}

/// Where both run, the Monte-Carlo TV agrees with enumeration within its Hoeffding term (and sampling
/// noise well inside it).
#[test]
fn monte_carlo_tv_agrees_with_enumeration() {
    for (seed, shift) in [(3, 0.1), (4, 0.4)] {
        let (m, k) = (8, 2);
        let (p, s) = layer(seed, 1500, m, k, shift);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let exact = certificate::TvMethod { m_max: 20, samples: 0, mc_share: 0.2 };
        let (tv, _, how) = certificate::pairwise_tv(&p, m, &s, k, exact, 0.01, &mut rng);
        assert_eq!(how, "exact");
        let mc = certificate::TvMethod { m_max: 4, samples: 20_000, mc_share: 0.2 };
        let (est, eps, how) = certificate::pairwise_tv(&p, m, &s, k, mc, 0.01, &mut rng);
        assert_eq!(how, "monte-carlo");
        assert!((est[0][1] - tv[0][1]).abs() <= eps, "MC {} vs exact {} (eps {eps})", est[0][1], tv[0][1]);
        assert!((est[0][1] - tv[0][1]).abs() <= 0.02, "MC {} vs exact {}", est[0][1], tv[0][1]);
    }
}

/// The population bound is never below what classifiers of one sampled code actually achieve on fresh
/// data from the same population (up to sampling noise): random classifiers' DP gaps on a large sample.
#[test]
fn the_population_bound_is_above_achieved_dp_gaps() {
    let pop = Population { m: 4, types: [vec![[0.2, 0.7], [0.6, 0.4]], vec![[0.35, 0.55], [0.7, 0.3]]] };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (p, s) = pop.draw([300, 400], &mut rng);
    let y: Vec<u8> = (0..s.len()).map(|i| (i % 2) as u8).collect();
    let method = certificate::TvMethod { m_max: 20, samples: 400, mc_share: 0.2 };
    let c = certificate::population(&p, 4, &s, 2, &y, 2, 0.95, method, "sample", &mut rng);
    // A large fresh sample of the population, one sampled code per row.
    let (big_p, big_s) = pop.draw([20_000, 20_000], &mut rng);
    let codes = sample_codes(&big_p, 4, &mut rng);
    for _ in 0..300 {
        let f: Vec<bool> = (0..16).map(|_| rng.random_bool(0.5)).collect();
        let pred: Vec<bool> = codes.iter().map(|&t| f[t]).collect();
        let gap = metrics::dp_gap(&pred, &big_s, 2);
        // Sampling noise of a gap on 20,000 rows per group: under 0.02 with room to spare.
        assert!(gap <= c.dp_gap_bound + 0.02, "a classifier's gap {gap} above the bound {}", c.dp_gap_bound);
    }
    assert!(c.probe_auc_bound >= 0.5 && c.adversary_balanced_accuracy_bound <= 1.0);
}

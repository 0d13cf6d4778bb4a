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
/// by Monte Carlo (where equalised odds draws its codes with parity's, docs/design.md, section 4b, and is
/// covered too); it is also never below the plug-in TV.
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
            let (mut covered, mut wrong, mut eo_covered) = (0, 0, 0);
            for _ in 0..draws {
                let (p, s) = pop.draw([60, 90], &mut rng);
                let y: Vec<u8> = (0..s.len()).map(|i| (i % 2) as u8).collect();
                let c = certificate::population(&p, m, &s, 2, &y, 2, 1.0 - delta, method(400), "sample", &mut rng);
                assert!(c.tv_upper >= c.tv_plugin, "{name}: the bound is below its own estimate");
                assert_eq!(c.method, if m > 20 { "monte-carlo" } else { "exact" });
                covered += (c.tv_upper >= truth) as usize;
                // The labels are independent of the rows: each label's population TV is the groups' TV.
                eo_covered += (c.eo_gap_bound >= truth) as usize;
                // A bound as far below the estimate as the real one is above it: the test must tell.
                wrong += (2.0 * c.tv_plugin - c.tv_upper >= truth) as usize;
            }
            let rate = covered as f64 / draws as f64;
            assert!((wrong as f64) < (1.0 - delta) * draws as f64, "{name}: the coverage check cannot fail ({wrong})");
            assert!(rate >= 1.0 - delta, "{name}, delta {delta}: coverage {rate} (true TV {truth})");
            let eo_rate = eo_covered as f64 / draws as f64;
            assert!(eo_rate >= 1.0 - delta, "{name}, delta {delta}: equalised-odds coverage {eo_rate}");
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
        assert!(
            (est[0][1] - tv[0][1]).abs() <= eps[0][1],
            "MC {} vs exact {} (eps {})",
            est[0][1],
            tv[0][1],
            eps[0][1]
        );
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

/// The weighted certificate (docs/design.md, section 4e) with equal weights is the unweighted one, bit for
/// bit, every field (soft codes by enumeration, hard codes, and m = 24 by Monte Carlo, with the same
/// random draws): one weight for all rows, and one per group.
#[test]
fn equal_weights_give_the_unweighted_certificate_bit_for_bit() {
    let soft = [vec![[0.2, 0.7], [0.6, 0.4], [0.5, 0.5]], vec![[0.3, 0.6], [0.7, 0.3], [0.5, 0.45]]];
    let hard = [vec![[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], vec![[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]];
    let method = certificate::TvMethod { m_max: 20, samples: 400, mc_share: 0.2 };
    for (name, types, m) in [("soft m=4", soft.clone(), 4), ("hard m=4", hard, 4), ("soft m=24", soft, 24)] {
        let pop = Population { m, types };
        let (p, s) = pop.draw([60, 90], &mut ChaCha8Rng::seed_from_u64(5));
        let y: Vec<u8> = (0..s.len()).map(|i| (i % 3 == 0) as u8).collect();
        let plain =
            certificate::population(&p, m, &s, 2, &y, 2, 0.9, method, "sample", &mut ChaCha8Rng::seed_from_u64(9));
        for (what, w) in [
            ("all 1", vec![1.0; s.len()]),
            ("all 0.3", vec![0.3; s.len()]),
            ("0.7 and 3 by group", s.iter().map(|&g| if g == 0 { 0.7 } else { 3.0 }).collect::<Vec<f64>>()),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let weighted =
                certificate::population_weighted(&p, m, &s, 2, &y, 2, Some(&w), 0.9, method, "sample", &mut rng);
            let n_eff = weighted.effective_n_per_group.clone().expect("weighted: the effective sizes");
            assert!((n_eff[0] - 60.0).abs() < 1e-9 && (n_eff[1] - 90.0).abs() < 1e-9, "{name}, {what}: {n_eff:?}");
            assert_eq!(certificate::Population { effective_n_per_group: None, ..weighted }, plain, "{name}, {what}");
        }
    }
    // The weighted forms themselves reduce to the unweighted ones: the plug-in (exactly enumerated, within
    // rounding) and eps (bit for bit, from 1/n).
    let pop = Population { m: 4, types: [vec![[0.2, 0.7], [0.6, 0.4]], vec![[0.3, 0.6], [0.7, 0.3]]] };
    let (p, s) = pop.draw([60, 90], &mut ChaCha8Rng::seed_from_u64(6));
    let exact = certificate::TvMethod { m_max: 20, samples: 0, mc_share: 0.2 };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (tv, _, _) = certificate::pairwise_tv(&p, 4, &s, 2, exact, 0.05, &mut rng);
    let (tvw, _, how) = certificate::pairwise_tv_weighted(&p, 4, &s, 2, &vec![2.0; s.len()], exact, 0.05, &mut rng);
    assert_eq!(how, "exact");
    assert!((tv[0][1] - tvw[0][1]).abs() < 1e-12, "{} vs {}", tv[0][1], tvw[0][1]);
    for (a, b) in [(60, 90), (1, 7), (1000, 3)] {
        let from = certificate::mcdiarmid_eps_from(0.05, 1.0 / a as f64, 1.0 / b as f64);
        assert_eq!(from.to_bits(), certificate::mcdiarmid_eps(0.05, a, b).to_bits());
    }
}

/// Integer weights against the rows duplicated that many times: the weighted plug-in is the duplicated
/// rows' plug-in (the same code distributions), but the bound is not the duplicated rows' bound: copies are
/// not independent draws, so each group counts as `W_g^2 / sum w_i^2` rows, fewer than `W_g`, and eps is
/// larger (exactly the section 4e formula).
#[test]
fn integer_weights_have_the_plug_in_of_duplicated_rows_and_a_larger_eps() {
    let soft = [vec![[0.2, 0.7], [0.6, 0.4], [0.5, 0.5]], vec![[0.3, 0.6], [0.7, 0.3], [0.5, 0.45]]];
    let hard = [vec![[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], vec![[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]];
    let method = certificate::TvMethod { m_max: 20, samples: 400, mc_share: 0.2 };
    for (name, types) in [("soft", soft), ("hard", hard)] {
        let m = 4;
        let pop = Population { m, types };
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (p, s) = pop.draw([50, 70], &mut rng);
        let w: Vec<f64> = (0..s.len()).map(|_| rng.random_range(1..=4) as f64).collect();
        let y = vec![0u8; s.len()];
        let (mut dup_p, mut dup_s) = (Vec::new(), Vec::new());
        for i in 0..s.len() {
            for _ in 0..w[i] as usize {
                dup_p.extend_from_slice(&p[i * m..(i + 1) * m]);
                dup_s.push(s[i]);
            }
        }
        let dup_y = vec![0u8; dup_s.len()];
        let weighted =
            certificate::population_weighted(&p, m, &s, 2, &y, 1, Some(&w), 0.95, method, "sample", &mut rng);
        let dup = certificate::population(&dup_p, m, &dup_s, 2, &dup_y, 1, 0.95, method, "sample", &mut rng);
        assert!((weighted.tv_plugin - dup.tv_plugin).abs() < 1e-12, "{name}: {weighted:?} vs {dup:?}");
        let squares = |g: u32| {
            let (total, sq) =
                s.iter().zip(&w).filter(|(&h, _)| h == g).fold((0.0, 0.0), |(t, q), (_, &v)| (t + v, q + v * v));
            sq / (total * total)
        };
        let eps = certificate::mcdiarmid_eps_from(0.05, squares(0), squares(1));
        assert!((weighted.tv_upper - (weighted.tv_plugin + eps).min(1.0)).abs() < 1e-12, "{name}: {weighted:?}");
        let dup_eps = dup.tv_upper - dup.tv_plugin;
        assert!(eps > dup_eps * 1.05, "{name}: eps {eps} against the duplicated rows' {dup_eps}");
        let n_eff = weighted.effective_n_per_group.unwrap();
        assert!((n_eff[0] - 1.0 / squares(0)).abs() < 1e-9 && n_eff[0] < dup.n_per_group[0] as f64, "{n_eff:?}");
        assert_eq!(weighted.n_per_group, vec![50, 70]);
    }
}

/// A population of strata with a known weighted total variation (docs/design.md, section 4e): in group `g`,
/// stratum `h` has `sizes[g][h]` rows drawn from its row types, each of weight `weights[g][h]` (weights fixed
/// per stratum, as fairlearn's reweighting fixes them per cell). The target population's group `g` is the
/// mixture of its strata in the shares `sizes * weights / W_g`.
struct Strata {
    m: usize,
    types: [[Vec<[f64; 2]>; 2]; 2],
    sizes: [[usize; 2]; 2],
    weights: [[f64; 2]; 2],
}

impl Strata {
    /// The code distribution (of the two informative neurons) of group `g`, its strata mixed in `shares`.
    fn dist(&self, g: usize, shares: [f64; 2]) -> Vec<f64> {
        (0..4)
            .map(|code| {
                (0..2)
                    .map(|h| {
                        let t = &self.types[g][h];
                        shares[h]
                            * t.iter()
                                .map(|q| {
                                    (0..2).map(|j| if code >> j & 1 == 1 { q[j] } else { 1.0 - q[j] }).product::<f64>()
                                })
                                .sum::<f64>()
                            / t.len() as f64
                    })
                    .sum()
            })
            .collect()
    }

    /// The TV between the groups of the weighted target (`weighted`) or of the unweighted population.
    fn true_tv(&self, weighted: bool) -> f64 {
        let shares = |g: usize| {
            let mass: Vec<f64> =
                (0..2).map(|h| self.sizes[g][h] as f64 * if weighted { self.weights[g][h] } else { 1.0 }).collect();
            [mass[0] / (mass[0] + mass[1]), mass[1] / (mass[0] + mass[1])]
        };
        certificate::total_variation(&self.dist(0, shares(0)), &self.dist(1, shares(1)))
    }

    /// One held-out sample: probabilities, groups, weights, and the strata as labels.
    fn draw(&self, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<u32>, Vec<f64>, Vec<u8>) {
        let (mut p, mut s, mut w, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for g in 0..2 {
            for h in 0..2 {
                for _ in 0..self.sizes[g][h] {
                    let t = &self.types[g][h];
                    p.extend_from_slice(&t[rng.random_range(0..t.len())]);
                    p.extend(std::iter::repeat_n(0.5, self.m - 2));
                    s.push(g as u32);
                    w.push(self.weights[g][h]);
                    y.push(h as u8);
                }
            }
        }
        (p, s, w, y)
    }
}

/// The weighted certificate covers the weighted population's TV in at least `1 - delta` of 200 independent
/// held-out samples (soft codes by enumeration, by Monte Carlo at m = 24, hard codes), and the two
/// controls show that the test could fail: the unweighted certificate of the same rows misses the weighted
/// TV in most samples, and the weighted plug-in minus (rather than plus) eps misses it too.
#[test]
fn the_weighted_bound_covers_the_weighted_total_variation() {
    // Equal strata, so that the unweighted groups are nearly alike; the weights tilt group 0 towards its
    // stratum 1 and group 1 towards its stratum 0, which makes the weighted groups far apart.
    let soft = [
        [vec![[0.2, 0.3], [0.3, 0.2]], vec![[0.8, 0.7], [0.7, 0.8]]],
        [vec![[0.25, 0.3], [0.3, 0.25]], vec![[0.8, 0.75], [0.7, 0.8]]],
    ];
    let hard = [
        [vec![[0.0, 0.0], [0.0, 1.0]], vec![[1.0, 1.0], [1.0, 0.0]]],
        [vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], vec![[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]],
    ];
    let sizes = [[60, 60], [70, 50]];
    let weights = [[1.0, 4.0], [4.0, 1.0]];
    let method = |samples| certificate::TvMethod { m_max: 20, samples, mc_share: 0.2 };
    for (name, types, m) in [("soft m=4", soft.clone(), 4), ("hard m=4", hard, 4), ("soft m=24", soft, 24)] {
        let pop = Strata { m, types, sizes, weights };
        let (truth, unweighted_truth) = (pop.true_tv(true), pop.true_tv(false));
        assert!(
            (truth - unweighted_truth).abs() > 0.1,
            "{name}: the weights must matter ({truth} vs {unweighted_truth})"
        );
        for delta in [0.05, 0.2] {
            let mut rng = ChaCha8Rng::seed_from_u64(17);
            let (draws, mut covered, mut plain_covered, mut wrong) = (200, 0, 0, 0);
            for _ in 0..draws {
                let (p, s, w, y) = pop.draw(&mut rng);
                let c = certificate::population_weighted(
                    &p,
                    m,
                    &s,
                    2,
                    &y,
                    2,
                    Some(&w),
                    1.0 - delta,
                    method(400),
                    "sample",
                    &mut rng,
                );
                assert_eq!(c.method, if m > 20 { "monte-carlo" } else { "exact" });
                assert!(c.tv_upper >= c.tv_plugin);
                covered += (c.tv_upper >= truth) as usize;
                wrong += (2.0 * c.tv_plugin - c.tv_upper >= truth) as usize;
                let plain = certificate::population(&p, m, &s, 2, &y, 2, 1.0 - delta, method(400), "sample", &mut rng);
                plain_covered += (plain.tv_upper >= truth) as usize;
            }
            let rate = covered as f64 / draws as f64;
            eprintln!(
                "{name}, delta {delta}: weighted coverage {rate} (true weighted TV {truth:.4}, unweighted {unweighted_truth:.4}); \
                 unweighted certificate {plain_covered}/{draws}, minus eps {wrong}/{draws}"
            );
            assert!(rate >= 1.0 - delta, "{name}, delta {delta}: coverage {rate} (true TV {truth})");
            assert!((wrong as f64) < (1.0 - delta) * draws as f64, "{name}: the coverage check cannot fail ({wrong})");
            assert!((plain_covered as f64) < (1.0 - delta) * draws as f64, "{name}: the unweighted control covers");
        }
    }
}

/// Weights that are not a finite number >= 0, or all 0, are refused with the row named.
#[test]
fn bad_certificate_weights_are_refused_naming_the_row() {
    let ok = certificate::check_weights(&[1.0, 0.0, 2.5], 3);
    assert!(ok.is_ok());
    for (w, row) in
        [(vec![1.0, -0.5, 1.0], "row 2"), (vec![f64::NAN, 1.0, 1.0], "row 1"), (vec![1.0, 1.0, f64::INFINITY], "row 3")]
    {
        let e = certificate::check_weights(&w, 3).unwrap_err().to_string();
        assert!(e.contains(row) && e.contains("finite number >= 0"), "{e}");
    }
    let e = certificate::check_weights(&[0.0, 0.0, 0.0], 3).unwrap_err().to_string();
    assert!(e.contains("every weight is 0"), "{e}");
    let e = certificate::check_weights(&[1.0, 1.0], 3).unwrap_err().to_string();
    assert!(e.contains("2 weights for 3 rows"), "{e}");
}

/// The Monte-Carlo sampling term of docs/design.md, section 4b (`mc_eps`, the betting bound) covers the mean
/// of i.i.d. terms in `[0, 1]` in at least `1 - delta` of many repetitions, for terms of the largest and of
/// small variance, few and many draws. At 2,000 draws, where the terms spread over `[0, 1]` it is on average
/// within 5% of Hoeffding's term, for rare 1s half of it, and where the terms vary little (close groups) a
/// quarter of it or less, which is why it is used. A
/// bound a quarter as wide misses the mean of the widest terms more often than `delta` allows: the check
/// can fail.
#[test]
fn the_monte_carlo_term_covers_the_mean_of_bounded_terms() {
    type Draw = fn(&mut ChaCha8Rng) -> f64;
    // Each with its mean and the largest mean term allowed at 2,000 draws, as a share of Hoeffding's.
    let cases: [(&str, Draw, f64, f64); 4] = [
        ("Bernoulli(0.5)", |r| r.random_bool(0.5) as u8 as f64, 0.5, 1.05),
        ("Bernoulli(0.02)", |r| r.random_bool(0.02) as u8 as f64, 0.02, 0.5),
        // Mean 0.2 / 5, variance 0.04 (1/9 - 1/25): small terms, as max(0, 1 - P_b / P_a) of close groups.
        ("0.2 U^4", |r| 0.2 * r.random::<f64>().powi(4), 0.04, 0.25),
        ("the point 0.3", |_| 0.3, 0.3, 0.25),
    ];
    for (name, draw, mean, most) in cases {
        for (n, reps) in [(20, 4000), (2000, 400)] {
            for delta in [0.05, 0.2] {
                let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
                let (mut covered, mut narrow, mut width) = (0, 0, 0f64);
                for _ in 0..reps {
                    let terms: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
                    let estimate = terms.iter().sum::<f64>() / n as f64;
                    let eps = certificate::mc_eps(delta, &terms);
                    covered += (estimate + eps >= mean) as usize;
                    narrow += (estimate + eps / 4.0 >= mean) as usize;
                    width += eps / reps as f64;
                }
                let rate = covered as f64 / reps as f64;
                assert!(rate >= 1.0 - delta, "{name}, n {n}, delta {delta}: coverage {rate}");
                let hoeffding = certificate::hoeffding_eps(delta, n);
                if n == 2000 {
                    assert!(
                        width <= most * hoeffding,
                        "{name}, delta {delta}: {width} against Hoeffding's {hoeffding}"
                    );
                }
                if name == "Bernoulli(0.5)" && n == 2000 {
                    let narrow_rate = narrow as f64 / reps as f64;
                    assert!(narrow_rate < 1.0 - delta, "{name}: a quarter of the term still covers ({narrow_rate})");
                }
                eprintln!("{name}, n {n}, delta {delta}: coverage {rate} of {reps}, mean term {width:.4} (Hoeffding {hoeffding:.4})");
            }
        }
    }
}

/// The betting term by hand, for `N` equal terms `z`: every bet is at most 3/4, so the capital at `z + e` is at
/// most `(1 + 3 e / 4)^N` and the term at least `(delta^(-1/N) - 1) / (3/4)`; after the first few terms the
/// variance seen is small and the bets are 3/4, so it is within twice that. No terms: 1.
#[test]
fn the_betting_term_by_hand() {
    let (delta, n) = (0.01f64, 2000);
    let least = (delta.powf(-1.0 / n as f64) - 1.0) / 0.75;
    let got = certificate::mc_eps(delta, &vec![0.3; n]);
    assert!(got >= least && got <= 2.0 * least, "{got} against {least}");
    assert_eq!(certificate::mc_eps(delta, &[]), 1.0);
}

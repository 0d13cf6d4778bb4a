//! The penalties at work on synthetic data: the per-neuron penalty lowers the information in the layer and
//! the probes' s-AUC; on an XOR task only the joint penalty removes what the layer carries.

mod common;
use fairbits::eval::{BinaryMetrics, EvalOptions};
use fairbits::penalty::{Estimate, PenaltyKind, PenaltySpec, Target};
use fairbits::FairParams;

/// Trains `hidden` (last layer stochastic) on the CSV at `path` through the library API and evaluates it.
#[allow(clippy::too_many_arguments)]
fn run(
    path: &std::path::Path,
    hidden: Vec<usize>,
    penalty: PenaltyKind,
    gamma: f64,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    estimate: Estimate,
) -> BinaryMetrics {
    let spec = common::csv_spec(path, seed);
    let data = spec.prepare().unwrap();
    let model = FairParams::new()
        .hidden(hidden)
        .penalty(PenaltySpec::new(penalty, Target::Parity).with_estimate(estimate))
        .gamma(gamma)
        .epochs(epochs)
        .batch_size(batch_size)
        .seed(seed)
        .check()
        .unwrap()
        .fit(&data, &spec)
        .unwrap();
    let opts = EvalOptions { draws: 2, forest_trees: 30, ..Default::default() };
    let metrics = model.evaluate(&data, &opts, &model.run_info(f64::NAN, epochs), &()).unwrap();
    metrics.binary().unwrap().clone()
}

#[test]
fn gamma_lowers_information_and_probe_auc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syn.csv");
    common::write_synthetic(&path, 3000, 3);
    let plain = run(&path, vec![16, 8], PenaltyKind::PerNeuron, 0.0, 30, 128, 1, Estimate::Batch);
    let fair = run(&path, vec![16, 8], PenaltyKind::PerNeuron, 3.0, 30, 128, 1, Estimate::Batch);
    assert!(plain.information.mi_per_neuron_bits > 0.05, "{:?}", plain.information);
    assert!(fair.information.mi_per_neuron_bits < 0.5 * plain.information.mi_per_neuron_bits);
    assert!(fair.information.mi_joint_bits < plain.information.mi_joint_bits);
    assert!(fair.probes.logreg.prob < plain.probes.logreg.prob - 0.05, "{:?} vs {:?}", fair.probes, plain.probes);
    assert!(fair.probes.logreg.sample < plain.probes.logreg.sample);
    assert!(fair.fairness.dp_gap < plain.fairness.dp_gap);
    // Still learns the task.
    assert!(fair.task.auc > 0.7, "{:?}", fair.task);
}

/// `s` is the XOR of the signs of `x1` and `x2`; the task needs both signs (`x3` picks which), and `y` is
/// independent of `s`. A layer can carry both signs with every neuron independent of `s`: the per-neuron
/// penalty cannot see that, the joint penalty can (docs/design.md, section 3).
fn write_xor(path: &std::path::Path, n: usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut out = String::from("x1,x2,x3,s,y\n");
    for _ in 0..n {
        let x: Vec<f64> = (0..3).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
        let (b1, b2) = (x[0] > 0.0, x[1] > 0.0);
        let y = if x[2] > 0.0 { b1 } else { b2 };
        out += &format!("{:.4},{:.4},{:.4},{},{}\n", x[0], x[1], x[2], (b1 ^ b2) as u8, y as u8);
    }
    std::fs::write(path, out).unwrap();
}

/// Both estimates (on each batch, and over the whole training set, module `bank`): the per-neuron penalty
/// leaves the XOR in the layer, the joint penalty removes it.
#[test]
fn joint_penalty_removes_information_the_per_neuron_penalty_leaves_in_an_xor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xor.csv");
    write_xor(&path, 4000);
    for estimate in [Estimate::Batch, Estimate::Bank] {
        let fit = |penalty| run(&path, vec![32, 4], penalty, 3.0, 40, 128, 2, estimate);
        let (per_neuron, joint) = (fit(PenaltyKind::PerNeuron), fit(PenaltyKind::Joint));
        let (pn, jn) = (&per_neuron.information, &joint.information);
        eprintln!(
            "{estimate:?}: per-neuron run: {pn:?} forest {:?}\njoint run: {jn:?} forest {:?}",
            per_neuron.probes.forest, joint.probes.forest
        );
        assert!(pn.mi_joint_bits > 0.2, "the per-neuron penalty should leave the XOR in the layer: {pn:?}");
        assert!(jn.mi_joint_bits < 0.25 * pn.mi_joint_bits, "{jn:?} vs {pn:?}");
        if estimate == Estimate::Batch {
            assert!(pn.mi_per_neuron_bits < 0.05, "{pn:?}");
            assert!(joint.probes.forest.sample < per_neuron.probes.forest.sample - 0.1);
        }
    }
}

/// The bank refuses penalties it cannot estimate.
#[test]
fn bank_estimate_of_the_pairwise_penalty_is_refused() {
    let (d, _) = common::workdir();
    let o = common::fairbits(
        d.path(),
        &[
            "train",
            "--csv",
            "data.csv",
            "--target",
            "y",
            "--sensitive",
            "s",
            "--penalty",
            "pairwise@bank",
            "--gamma",
            "1",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("invalid --penalty = pairwise@bank"), "{}", common::stderr(&o));
}

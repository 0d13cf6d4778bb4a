//! On a synthetic dataset where `x1` carries `s`, the per-neuron penalty lowers the information in the
//! layer and the probes' s-AUC.

mod common;
use fairbits::data::{prepare, DataSpec, Source};
use fairbits::model::{ModelConfig, SqNet};
use fairbits::report::{evaluate, EvalOptions, RunInfo};
use fairbits::train::{rng, streams, train, TrainConfig};

fn run(gamma: f64, path: &std::path::Path) -> fairbits::Metrics {
    let spec = DataSpec {
        source: Source::Csv {
            path: path.to_path_buf(),
            target: "y".into(),
            sensitive: "s".into(),
            positive: None,
            categorical: vec![],
            drop: vec![],
        },
        test_size: 0.3,
        val_size: 0.0,
        seed: 1,
        include_sensitive: false,
    };
    let data = prepare(&spec, None).unwrap();
    let cfg = ModelConfig {
        n_inputs: data.train.d,
        hidden: vec![16, 8],
        stochastic: vec![1],
        ..Default::default()
    };
    let net = SqNet::new(&cfg, &candle_core::Device::Cpu, &mut rng(1, streams::INIT)).unwrap();
    let tc = TrainConfig {
        epochs: 30,
        batch_size: 128,
        gamma,
        seed: 1,
        ..Default::default()
    };
    let rep = train(
        &net,
        &data.train,
        None,
        &tc,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let info = RunInfo {
        dataset: "synthetic".into(),
        sensitive: "s".into(),
        groups: vec![],
        n_dropped: 0,
        seed: 1,
        gamma,
        penalty: "per-neuron".into(),
        train_seconds: rep.train_seconds,
        epochs: rep.epochs,
    };
    let opts = EvalOptions {
        draws: 3,
        forest_trees: 30,
        ..Default::default()
    };
    evaluate(&net, &data, &opts, &info).unwrap()
}

#[test]
fn gamma_lowers_information_and_probe_auc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syn.csv");
    common::write_synthetic(&path, 3000, 3);
    let plain = run(0.0, &path);
    let fair = run(3.0, &path);
    assert!(
        plain.information.mi_per_neuron_bits > 0.05,
        "{:?}",
        plain.information
    );
    assert!(fair.information.mi_per_neuron_bits < 0.5 * plain.information.mi_per_neuron_bits);
    assert!(fair.information.mi_joint_bits < plain.information.mi_joint_bits);
    assert!(
        fair.probes.logreg.prob < plain.probes.logreg.prob - 0.05,
        "{:?} vs {:?}",
        fair.probes,
        plain.probes
    );
    assert!(fair.probes.logreg.sample < plain.probes.logreg.sample);
    assert!(fair.fairness.dp_gap < plain.fairness.dp_gap);
    // Still learns the task.
    assert!(fair.task.auc > 0.7, "{:?}", fair.task);
}

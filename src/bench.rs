//! `fairbits bench`: wall-clock measurements printed as a table (medians of repeated runs, measured in one
//! process so that ratios between rows are meaningful on a noisy machine). Nothing here is asserted.

use crate::data::{tabular, Builtin, TableSpec};
use crate::error::Result;
use crate::model::{Inference, Mode, ModelConfig, Net};
use crate::penalty::{mi, PenaltyKind, PenaltySpec, Target};
use crate::rng::{rng, Stream};
use crate::train::{self, Backend, TrainConfig};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::time::Instant;

/// One row of the table.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// What was measured.
    pub what: String,
    /// The median measurement.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(repeats: usize, mut f: F) -> Result<f64> {
    let mut v = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(median(v))
}

/// Runs the benchmarks on the shipped Adult data; `repeats` runs of each, median reported.
pub fn run(repeats: usize) -> Result<Vec<BenchRow>> {
    let repeats = repeats.max(1);
    let data = tabular::prepare(&TableSpec::builtin(Builtin::Adult, 0), None)?;
    let mut rows = epoch_rows(&data, repeats)?;
    rows.extend(sweep_rows(&data)?);
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    rows.extend(mi_rows(repeats, &mut r)?);
    // Encoding throughput: one forward pass in sample mode over the test split.
    let device = Device::Cpu;
    let model = ModelConfig { n_inputs: data.test.d, ..ModelConfig::default() };
    let net = Net::new(&model, &device, &mut rng(0, Stream::Init))?;
    let x = Tensor::from_slice(&data.test.x, (data.test.n, data.test.d), &device)?;
    let secs = time(repeats, || net.forward(&x, Mode::Infer(Inference::Sample), &mut r).map(|_| ()))?;
    rows.push(BenchRow {
        what: "encode (sample mode), rows per second".into(),
        value: data.test.n as f64 / secs,
        unit: "rows/s",
    });
    rows.extend(conv_rows(repeats)?);
    rows.extend(command_rows(repeats)?);
    Ok(rows)
}

/// One training epoch and one step per penalty and backend, and the ratios that matter.
fn epoch_rows(data: &crate::data::Prepared, repeats: usize) -> Result<Vec<BenchRow>> {
    let steps = data.train.n.div_ceil(256) as f64;
    // (name, hidden, stochastic, penalty, gamma, backend)
    type Config<'a> = (&'a str, Vec<usize>, bool, PenaltyKind, f64, Backend);
    let configs: [Config; 8] = [
        ("per-neuron penalty, m = 32, candle", vec![64, 32], true, PenaltyKind::PerNeuron, 1.0, Backend::Candle),
        ("per-neuron penalty, m = 32, fused", vec![64, 32], true, PenaltyKind::PerNeuron, 1.0, Backend::Auto),
        ("full precision (mlp), no penalty, fused", vec![64, 32], false, PenaltyKind::PerNeuron, 0.0, Backend::Auto),
        ("per-neuron penalty, m = 12, fused", vec![64, 12], true, PenaltyKind::PerNeuron, 1.0, Backend::Auto),
        ("joint penalty (exact), m = 12, fused", vec![64, 12], true, PenaltyKind::Joint, 1.0, Backend::Auto),
        ("per-neuron penalty, m = 12, candle", vec![64, 12], true, PenaltyKind::PerNeuron, 1.0, Backend::Candle),
        ("joint penalty (exact), m = 12, candle", vec![64, 12], true, PenaltyKind::Joint, 1.0, Backend::Candle),
        ("pairwise penalty, m = 32, candle", vec![64, 32], true, PenaltyKind::Pairwise, 1.0, Backend::Candle),
    ];
    let (mut rows, mut epoch_seconds) = (Vec::new(), Vec::new());
    for (name, hidden, stochastic, penalty, gamma, backend) in configs {
        let stochastic = if stochastic { vec![1] } else { vec![] };
        let model = ModelConfig { n_inputs: data.train.d, stochastic, hidden, ..ModelConfig::default() };
        let penalty = PenaltySpec::new(penalty, Target::Parity);
        let tc = TrainConfig { epochs: 1, gamma, penalty, backend, ..TrainConfig::default() };
        let net = Net::new(&model, &Device::Cpu, &mut rng(0, Stream::Init))?;
        let secs = time(repeats, || train::fit(&net, &data.train, None, &tc, None, &()).map(|_| ()))?;
        epoch_seconds.push(secs);
        rows.push(BenchRow { what: format!("Adult epoch, {name}"), value: secs, unit: "s" });
        rows.push(BenchRow { what: format!("Adult step (batch 256), {name}"), value: secs / steps * 1e3, unit: "ms" });
    }
    for (what, a, b) in [
        ("epoch ratio: candle / fused (per-neuron, m = 32)", 0, 1),
        ("epoch ratio: joint / per-neuron (m = 12, fused)", 4, 3),
        ("epoch ratio: joint / per-neuron (m = 12, candle)", 6, 5),
    ] {
        rows.push(BenchRow { what: what.into(), value: epoch_seconds[a] / epoch_seconds[b], unit: "x" });
    }
    Ok(rows)
}

/// Sweep throughput: models of the default architecture (per-neuron penalty, 6 gammas x seeds) trained
/// side by side, one per core, 3 epochs each.
fn sweep_rows(data: &crate::data::Prepared) -> Result<Vec<BenchRow>> {
    let gammas = [0.0, 0.1, 0.5, 1.0, 2.0, 5.0];
    let mut rows = Vec::new();
    for models in [1usize, 6, 18] {
        let epochs = 3;
        let t = Instant::now();
        (0..models).into_par_iter().try_for_each(|k| -> Result<()> {
            let model = ModelConfig { n_inputs: data.train.d, ..ModelConfig::default() };
            let seed = (k / gammas.len()) as u64;
            let net = Net::new(&model, &Device::Cpu, &mut rng(seed, Stream::Init))?;
            let tc = TrainConfig { epochs, gamma: gammas[k % gammas.len()], seed, ..TrainConfig::default() };
            train::fit(&net, &data.train, None, &tc, None, &()).map(|_| ())
        })?;
        let secs = t.elapsed().as_secs_f64();
        let threads = rayon::current_num_threads();
        rows.push(BenchRow {
            what: format!("sweep throughput, {models} model(s) x {epochs} epochs, {threads} threads"),
            value: (models * epochs) as f64 / secs,
            unit: "model-epochs/s",
        });
    }
    Ok(rows)
}

/// The exact joint MI at evaluation (the host form: rows doubled in parallel, one GEMM per group) and the
/// Monte-Carlo estimate, on 9,000 rows of two groups.
fn mi_rows(repeats: usize, r: &mut rand_chacha::ChaCha8Rng) -> Result<Vec<BenchRow>> {
    let n = 9000;
    let s: Vec<u32> = (0..n).map(|_| r.random_range(0..2u32)).collect();
    let mut rows = Vec::new();
    for m in [8usize, 12, 16, 20] {
        let p: Vec<f64> = (0..n * m).map(|_| 0.0025 + 0.995 * r.random::<f64>()).collect();
        let secs = time(repeats.min(3), || {
            mi::joint_mi_host_distributions(&p, m, &s, 2);
            Ok(())
        })?;
        rows.push(BenchRow { what: format!("exact joint MI, m = {m}, 9,000 rows"), value: secs, unit: "s" });
    }
    let m = 32;
    let p: Vec<f64> = (0..n * m).map(|_| 0.0025 + 0.995 * r.random::<f64>()).collect();
    let secs = time(repeats.min(3), || {
        mi::joint_mi_monte_carlo(&p, m, &s, 2, 2000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).map(|_| ())
    })?;
    let what = "Monte-Carlo joint MI, m = 32, 9,000 rows, 2,000 draws".into();
    rows.push(BenchRow { what, value: secs, unit: "s" });
    Ok(rows)
}

/// The image encoder's convolutions (channels 8, 16; kernel 5) on a batch of 128 coloured 28 x 28 images:
/// forward and backward with candle's `conv2d` and with the im2col op of `conv`.
fn conv_rows(repeats: usize) -> Result<Vec<BenchRow>> {
    let device = Device::Cpu;
    let x = Tensor::rand(0f32, 1., (128, 3, 28, 28), &device)?;
    let w1 = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.1, (8, 3, 5, 5), &device)?)?;
    let w2 = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.1, (16, 8, 5, 5), &device)?)?;
    let step = |ours: bool| -> Result<()> {
        let conv = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
            if ours {
                crate::model::conv::conv2d(x, w)
            } else {
                Ok(x.conv2d(w, 0, 1, 1, 1)?)
            }
        };
        let h = conv(&x, w1.as_tensor())?.relu()?.max_pool2d(2)?;
        let h = conv(&h, w2.as_tensor())?.relu()?.max_pool2d(2)?;
        h.sqr()?.mean_all()?.backward()?;
        Ok(())
    };
    let candle = time(repeats, || step(false))?;
    let ours = time(repeats, || step(true))?;
    Ok(vec![
        BenchRow { what: "conv encoder step, batch 128, candle conv2d".into(), value: candle * 1e3, unit: "ms" },
        BenchRow { what: "conv encoder step, batch 128, im2col op (conv.rs)".into(), value: ours * 1e3, unit: "ms" },
        BenchRow { what: "conv encoder step: candle / im2col".into(), value: candle / ours, unit: "x" },
    ])
}

/// What `fairbits train --dataset adult` does with the defaults, part by part: reading and preparing the
/// data, training (50 epochs), evaluating (the default evaluation), and the whole against training alone.
fn command_rows(repeats: usize) -> Result<Vec<BenchRow>> {
    use crate::data::DataSpec;
    use crate::estimator::{FairModel, FairParams};
    let spec = DataSpec::Table(TableSpec::builtin(Builtin::Adult, 0));
    let (mut prep, mut train, mut eval) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats.min(3) {
        let t = Instant::now();
        let data = spec.prepare()?;
        prep.push(t.elapsed().as_secs_f64());
        let config = FairParams::new().check()?.resolve(&data, &spec)?;
        let t = Instant::now();
        let (model, report) = FairModel::train(config, &data, None, &())?;
        train.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let info = model.run_info(report.train_seconds, report.epochs);
        model.evaluate(&data, &model.config().eval, &info, &())?;
        eval.push(t.elapsed().as_secs_f64());
    }
    let (p, t, e) = (median(prep), median(train), median(eval));
    let row = |what: &str, value, unit| BenchRow { what: what.into(), value, unit };
    Ok(vec![
        row("the whole training run on adult: read and prepare the data", p, "s"),
        row("the whole training run on adult: training (50 epochs)", t, "s"),
        row("the whole training run on adult: evaluation (defaults)", e, "s"),
        row("the whole training run on adult: whole run / training", (p + t + e) / t, "x"),
    ])
}

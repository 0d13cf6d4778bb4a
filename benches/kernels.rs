//! Criterion benchmarks of the kernels: one training step (fused and candle), the per-neuron and joint
//! penalties with their gradients on a batch, and the exact joint MI of a test split. `cargo bench`.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use fairbits::model::{bce_with_logits, Mode, ModelConfig, Net};
use fairbits::penalty::mi;
use fairbits::train::{
    fused::{FusedNet, Rows, SparseRows},
    TrainConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn batch(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * d).map(|_| r.random::<f32>() * 2.0 - 1.0).collect();
    let y = (0..n).map(|_| r.random_bool(0.25) as u8 as f32).collect();
    let s = (0..n).map(|_| r.random_range(0..2u32)).collect();
    (x, y, s)
}

fn step(c: &mut Criterion) {
    let (x, y, s) = batch(256, 102, 0);
    let cfg = ModelConfig { n_inputs: 102, ..ModelConfig::default() };
    let net = Net::new(&cfg, &Device::Cpu, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let tc = TrainConfig { gamma: 1.0, ..TrainConfig::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut fused = FusedNet::from_net(&net).unwrap();
    c.bench_function("step 102-64-32-1, batch 256, per-neuron, fused", |b| {
        b.iter(|| fused.step(Rows::Dense(&x), &y, &s, 2, &tc, 1.0, &mut rng).unwrap())
    });
    // One-hot-like rows: 14 nonzeros of 102, as in Adult.
    let onehot: Vec<f32> = x.iter().enumerate().map(|(k, &v)| if k % 102 < 14 { v } else { 0.0 }).collect();
    let sparse = SparseRows::from_dense(&onehot, 102);
    c.bench_function("step 102-64-32-1, batch 256, per-neuron, fused, 14 nonzeros per row, dense", |b| {
        b.iter(|| fused.step(Rows::Dense(&onehot), &y, &s, 2, &tc, 1.0, &mut rng).unwrap())
    });
    c.bench_function("step 102-64-32-1, batch 256, per-neuron, fused, 14 nonzeros per row, sparse", |b| {
        b.iter(|| fused.step(Rows::Sparse(&sparse), &y, &s, 2, &tc, 1.0, &mut rng).unwrap())
    });
    let xt = Tensor::from_slice(&x, (256, 102), &Device::Cpu).unwrap();
    let yt = Tensor::from_slice(&y, 256, &Device::Cpu).unwrap();
    c.bench_function("step 102-64-32-1, batch 256, per-neuron, candle (forward + backward)", |b| {
        b.iter(|| {
            let out = net.forward(&xt, Mode::Train, &mut rng).unwrap();
            let ce = bce_with_logits(&out.logits, &yt).unwrap();
            let pen = mi::per_neuron_mi_fused(&out.probs, &s, 2).unwrap();
            (ce + pen).unwrap().backward().unwrap()
        })
    });
}

fn penalties(c: &mut Criterion) {
    let mut r = ChaCha8Rng::seed_from_u64(3);
    let s: Vec<u32> = (0..256).map(|_| r.random_range(0..2u32)).collect();
    for m in [12usize, 32] {
        let p: Vec<f64> = (0..256 * m).map(|_| 0.0025 + 0.995 * r.random::<f64>()).collect();
        c.bench_function(&format!("per-neuron MI + gradient, batch 256, m = {m}"), |b| {
            b.iter(|| mi::per_neuron_mi_host(&p, m, &s, 2, true))
        });
    }
    for m in [8usize, 12, 16] {
        let p: Vec<f64> = (0..256 * m).map(|_| 0.0025 + 0.995 * r.random::<f64>()).collect();
        c.bench_function(&format!("exact joint MI + gradient, batch 256, m = {m}"), |b| {
            b.iter(|| mi::joint_mi_host(&p, m, &s, 2, true, true))
        });
    }
}

fn evaluation(c: &mut Criterion) {
    let mut r = ChaCha8Rng::seed_from_u64(4);
    let n = 9000;
    let s: Vec<u32> = (0..n).map(|_| r.random_range(0..2u32)).collect();
    for m in [12usize, 16] {
        let p: Vec<f64> = (0..n * m).map(|_| 0.0025 + 0.995 * r.random::<f64>()).collect();
        c.bench_function(&format!("exact joint MI, 9,000 rows, m = {m}"), |b| {
            b.iter(|| mi::joint_mi_host_distributions(&p, m, &s, 2))
        });
    }
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(20);
    targets = step, penalties, evaluation
}
criterion_main!(kernels);

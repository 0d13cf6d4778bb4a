use fairbits::data::{Builtin, DataSpec, TableSpec};
use fairbits::eval::probes::{forest_probe, logreg_probe, Repr};
use fairbits::model::{Inference, Mode, ModelConfig, Net};
use fairbits::rng::{rng, Stream};
use std::time::Instant;
fn main() {
    let data = DataSpec::Table(TableSpec::builtin(Builtin::Adult, 0)).prepare().unwrap();
    let m: usize = std::env::args().nth(1).map(|v| v.parse().unwrap()).unwrap_or(32);
    let cfg = ModelConfig { n_inputs: data.train.d, hidden: vec![64, m], stochastic: vec![1], ..Default::default() };
    let net = Net::new(&cfg, &candle_core::Device::Cpu, &mut rng(0, Stream::Init)).unwrap();
    let mut r = rng(0, Stream::Eval);
    let rep = |set: &fairbits::data::Dataset, inf, r: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
        let f = net.forward(&set.inputs(net.device()).unwrap(), Mode::Infer(inf), r).unwrap();
        f.code.to_dtype(candle_core::DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    };
    for inf in [Inference::Sample, Inference::Prob] {
        let (tr, te) = (rep(&data.train, inf, &mut r), rep(&data.test, inf, &mut r));
        let a = Repr { x: &tr, d: m, s: &data.train.s };
        let b = Repr { x: &te, d: m, s: &data.test.s };
        let t = Instant::now();
        let f = forest_probe(a, b, 2, 100, 0);
        let tf = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let l = logreg_probe(a, b, 2);
        let tl = t.elapsed().as_secs_f64();
        println!("{inf:?}: forest {tf:.3}s auc {:.4}; logreg {tl:.3}s auc {:.4}", f.auc, l.auc);
    }
}

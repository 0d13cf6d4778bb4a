//! The population certificate of a saved model taken apart (docs/design.md, section 4c): certified bound =
//! plug-in TV + McDiarmid eps, plug-in TV = estimated population TV + Jensen bias, on the rows the model's
//! own certificate uses (its certification split, or its test split), for demographic parity and for each
//! label (equalised odds).
//!
//!     fairbits train --dataset adult --preset invariant --out /tmp/m
//!     cargo run --release --example decompose -- /tmp/m [RESAMPLES=100] [CONFIDENCE=0.95]   # JSON on stdout
use fairbits::eval::certificate::{decompose, TvMethod};
use fairbits::model::Inference;
use fairbits::FairModel;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or("usage: decompose MODEL_DIR [RESAMPLES] [CONFIDENCE]")?;
    let resamples: usize = args.get(2).map(|v| v.parse()).transpose()?.unwrap_or(100);
    let confidence: f64 = args.get(3).map(|v| v.parse()).transpose()?.unwrap_or(0.95);
    let model = FairModel::load(Path::new(dir))?;
    let data = model.eval_data(None)?;
    let (rows, from) = match &data.certify {
        Some(c) => (c, "certification split"),
        None => (&data.test, "test split"),
    };
    let m = model.code_width();
    let p: Vec<f64> = model.encode_set(rows, Inference::Prob, 0)?.iter().map(|&v| v as f64).collect();
    let method = TvMethod { m_max: 20, samples: 2000, mc_share: 0.2 };
    let dp = decompose(&p, m, &rows.s, rows.n_groups, confidence, method, resamples, 1);
    // Equalised odds: per label, with delta split over the labels as the certificate splits it.
    let mut eo = Vec::new();
    for label in 0..rows.n_classes as u8 {
        let idx: Vec<usize> = (0..rows.n).filter(|&i| rows.y[i] == label).collect();
        let sub: Vec<f64> = idx.iter().flat_map(|&i| p[i * m..(i + 1) * m].iter().copied()).collect();
        let s: Vec<u32> = idx.iter().map(|&i| rows.s[i]).collect();
        let labels = rows.n_classes as f64;
        eo.push(decompose(&sub, m, &s, rows.n_groups, 1.0 - (1.0 - confidence) / labels, method, resamples, 2));
    }
    let out = serde_json::json!({ "model": dir, "rows": from, "n": rows.n, "groups": rows.group_counts(),
        "code_width": m, "confidence": confidence, "dp": dp, "eo_by_label": eo });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

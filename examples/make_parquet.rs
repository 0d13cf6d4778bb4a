//! Writes a synthetic table as Parquet for the streaming benchmark (`scripts/stream_bench.sh`):
//! `cargo run --release --example make_parquet -- ROWS FEATURES OUT.parquet`. Numeric features (3
//! decimals), one text feature of 10 values, a binary group `s` carried by feature 0, and a binary target
//! `y` of a logistic model; written 100,000 rows per row group, so memory stays small whatever ROWS.

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: make_parquet ROWS FEATURES OUT.parquet";
    let rows: usize = args.get(1).and_then(|v| v.parse().ok()).expect(usage);
    let features: usize = args.get(2).and_then(|v| v.parse().ok()).expect(usage);
    let out = args.get(3).expect(usage);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut fields: Vec<String> = (0..features.saturating_sub(1)).map(|j| format!("x{j}")).collect();
    fields.push("kind".into());
    let mut writer = None;
    let chunk = 100_000;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let s: Vec<i64> = (0..n).map(|_| rng.random_bool(0.4) as i64).collect();
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        let mut logit = vec![0f64; n];
        for (j, name) in fields.iter().enumerate().take(features.saturating_sub(1)) {
            let v: Vec<f64> = (0..n)
                .map(|i| {
                    let z: f64 = rng.random::<f64>() * 2.0 - 1.0 + if j == 0 { s[i] as f64 } else { 0.0 };
                    (z * 1000.0).round() / 1000.0
                })
                .collect();
            if j < 5 {
                v.iter().enumerate().for_each(|(i, x)| logit[i] += x * (j as f64 + 1.0) * 0.5);
            }
            cols.push((name.clone(), Arc::new(Float64Array::from(v))));
        }
        let kinds: Vec<String> = (0..n).map(|_| format!("k{}", rng.random_range(0..10))).collect();
        cols.push(("kind".into(), Arc::new(StringArray::from(kinds))));
        let y: Vec<i64> = logit.iter().map(|l| (rng.random::<f64>() < 1.0 / (1.0 + (-l).exp())) as i64).collect();
        cols.push(("s".into(), Arc::new(Int64Array::from(s))));
        cols.push(("y".into(), Arc::new(Int64Array::from(y))));
        let batch = RecordBatch::try_from_iter(cols).expect("columns");
        let w = writer.get_or_insert_with(|| {
            let file = std::fs::File::create(out).expect("the output file");
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("a writer")
        });
        w.write(&batch).expect("write");
        done += n;
    }
    writer.expect("at least one row").close().expect("close");
}

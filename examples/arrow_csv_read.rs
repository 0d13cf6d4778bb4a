//! The arrow crates' CSV reader on a file of numbers, for the reader comparison of
//! `scripts/csv_read_bench.sh`: `cargo run --release --example arrow_csv_read -- FILE.csv [DROP]` reads the
//! file with a schema inferred from its first 1,000 rows, in batches of 65,536 rows, into a row-major f32
//! matrix of every column but DROP (the work `fairbits train` does to make its inputs), and prints the
//! seconds it took.

use arrow_array::{cast::AsArray, types::Float32Type, Array};
use std::io::Seek;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: arrow_csv_read FILE.csv [DROP]");
    let drop = args.get(2);
    let t = std::time::Instant::now();
    let mut file = std::fs::File::open(path).expect("open the file");
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (schema, _) = format.infer_schema(&mut file, Some(1000)).expect("infer the schema");
    file.rewind().expect("rewind");
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|&j| Some(schema.field(j).name()) != drop).collect();
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(schema))
        .with_format(format)
        .with_batch_size(65_536)
        .with_projection(keep.clone())
        .build(file)
        .expect("build the reader");
    let d = keep.len();
    let mut x: Vec<f32> = Vec::new();
    for batch in reader {
        let batch = batch.expect("a batch");
        let start = x.len();
        x.resize(start + batch.num_rows() * d, 0.0);
        for (j, col) in batch.columns().iter().enumerate() {
            let col = arrow_cast::cast(col, &arrow_schema::DataType::Float32).expect("cast to f32");
            let values = col.as_primitive::<Float32Type>();
            assert_eq!(values.null_count(), 0, "a missing value");
            for (i, &v) in values.values().iter().enumerate() {
                x[start + i * d + j] = v;
            }
        }
    }
    eprintln!("{} rows x {d} columns", x.len() / d.max(1));
    println!("{:.3}", t.elapsed().as_secs_f64());
}

//! Parquet and Arrow IPC input: the same rows give the same metrics as from CSV (100,000 rows, one
//! epoch), every command reads them, and a broken file is a clear error.

mod common;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use common::*;
use std::path::Path;
use std::sync::Arc;

/// The CSV's columns as Arrow arrays: whole numbers as Int64, other numbers as Float64, text as Utf8; an
/// empty cell is a null.
fn batch_of_csv(csv: &Path) -> RecordBatch {
    let t = fairbits::data::RawTable::from_path(csv, fairbits::data::Duplicates::Reject).unwrap();
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for (c, name) in t.header.iter().enumerate() {
        let cells: Vec<&str> = t.columns[c].iter().collect();
        let present = cells.iter().filter(|v| !v.is_empty());
        let array: ArrayRef = if present.clone().all(|v| v.parse::<i64>().is_ok()) {
            Arc::new(cells.iter().map(|v| v.parse::<i64>().ok()).collect::<Int64Array>())
        } else if present.clone().all(|v| v.parse::<f64>().is_ok()) {
            Arc::new(cells.iter().map(|v| v.parse::<f64>().ok()).collect::<Float64Array>())
        } else {
            Arc::new(cells.iter().map(|v| (!v.is_empty()).then_some(*v)).collect::<StringArray>())
        };
        cols.push((name.clone(), array));
    }
    RecordBatch::try_from_iter(cols).unwrap()
}

fn write_parquet(batch: &RecordBatch, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    // Several row groups, so that reading crosses batches.
    let props =
        parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(30_000)).build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn write_arrow(batch: &RecordBatch, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
}

/// The synthetic rows with every 997th `x2` left empty (a missing value: the row is dropped either way).
fn write_rows(dir: &Path, n: usize) -> std::path::PathBuf {
    let full = dir.join("full.csv");
    write_synthetic(&full, n, 3);
    let text = std::fs::read_to_string(&full).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 && i % 997 == 0 {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells[1] = "";
            out += &cells.join(",");
        } else {
            out += line;
        }
        out.push('\n');
    }
    let csv = dir.join("rows.csv");
    std::fs::write(&csv, out).unwrap();
    csv
}

#[test]
fn parquet_and_arrow_give_the_metrics_of_the_same_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_rows(dir.path(), 100_000);
    let batch = batch_of_csv(&csv);
    std::fs::create_dir(dir.path().join("pq")).unwrap();
    std::fs::create_dir(dir.path().join("ipc")).unwrap();
    write_parquet(&batch, &dir.path().join("pq/rows.parquet"));
    write_arrow(&batch, &dir.path().join("ipc/rows.arrow"));
    let metrics = |file: &str| {
        let args = ["train", "--csv", file, "--target", "y", "--sensitive", "s", "--epochs", "1", "--hidden", "16,8"];
        let o = fairbits(dir.path(), &[&args[..], &["--reproducible", "--json", "--probe-rows", "2000"]].concat());
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        stdout(&o)
    };
    let from_csv = metrics("rows.csv");
    assert!(from_csv.contains("\"n_dropped\": 100"), "{from_csv}");
    assert_eq!(metrics("pq/rows.parquet"), from_csv, "parquet");
    assert_eq!(metrics("ipc/rows.arrow"), from_csv, "arrow ipc");
    // Read in passes and trained from the mapped cache: the same encoders, splits and metrics.
    let streamed = |file: &str| {
        let args = ["train", "--csv", file, "--target", "y", "--sensitive", "s", "--epochs", "1", "--hidden", "16,8"];
        let more = ["--reproducible", "--json", "--probe-rows", "2000", "--stream", "--val-size", "0.1"];
        let o = fairbits(dir.path(), &[&args[..], &more].concat());
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        stdout(&o)
    };
    let args = ["train", "--csv", "rows.csv", "--target", "y", "--sensitive", "s", "--epochs", "1", "--hidden", "16,8"];
    let more = ["--reproducible", "--json", "--probe-rows", "2000", "--val-size", "0.1"];
    let in_memory = stdout(&fairbits(dir.path(), &[&args[..], &more].concat()));
    assert!(in_memory.contains("\"task\""), "{in_memory}");
    assert_eq!(streamed("pq/rows.parquet"), in_memory, "streamed parquet");
    assert_eq!(streamed("ipc/rows.arrow"), in_memory, "streamed arrow ipc");
}

#[test]
fn a_streamed_model_is_evaluated_again_by_streaming_and_a_streamed_csv_gives_the_in_memory_metrics() {
    let (dir, csv) = workdir();
    write_parquet(&batch_of_csv(&csv), &dir.path().join("data.parquet"));
    let base = ["train", "--target", "y", "--sensitive", "s", "--epochs", "3", "--stream", "--reproducible", "--json"];
    let o = fairbits(dir.path(), &[&base[..], &["--csv", "data.parquet", "--out", "m"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let trained: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let o = fairbits(dir.path(), &["eval", "--model", "m", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["task"], trained["task"]);
    assert_eq!(again["certificate"], trained["certificate"]);
    // A CSV file streams too, in batches smaller than the file (the pieces its block is cut into, four per
    // thread), with the metrics of the same file read whole.
    let big = write_rows(dir.path(), 70_000);
    let big = big.file_name().unwrap().to_str().unwrap();
    let args = ["train", "--target", "y", "--sensitive", "s", "--epochs", "1", "--hidden", "4,2", "--reproducible"];
    let run = |more: &[&str]| {
        let o = fairbits(dir.path(), &[&args[..], &["--input", big, "--json", "--forest-trees", "2"], more].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run(&["--stream"]), run(&[]), "a streamed CSV");
}

#[test]
fn every_command_reads_parquet_and_a_broken_file_is_a_clear_error() {
    let (dir, csv) = workdir();
    write_parquet(&batch_of_csv(&csv), &dir.path().join("data.parquet"));
    let train = ["train", "--csv", "data.parquet", "--target", "y", "--sensitive", "s", "--epochs", "2", "--out", "m"];
    let o = fairbits(dir.path(), &train);
    assert!(o.status.success(), "{}", stderr(&o));
    for args in [
        &["eval", "--model", "m", "--csv", "data.parquet", "--target", "y", "--sensitive", "s"][..],
        &["certify", "--model", "m", "--csv", "data.parquet", "--target", "y", "--sensitive", "s"],
        &["predict", "--model", "m", "--input", "data.parquet", "--output", "p.csv"],
        &["encode", "--model", "m", "--input", "data.parquet", "--output", "c.csv"],
        &["eval", "--model", "m"],
    ] {
        let o = fairbits(dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    std::fs::write(dir.path().join("broken.parquet"), b"not parquet at all").unwrap();
    let o = fairbits(dir.path(), &["train", "--csv", "broken.parquet", "--target", "y", "--sensitive", "s"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.parquet: not a readable Parquet file"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &["train", "--csv", "data.parquet", "--target", "nope", "--sensitive", "s"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("column 'nope' not found"), "{}", stderr(&o));
}

/// Arrow IPC files compressed as pyarrow writes them (`feather.write_feather` compresses with lz4 by default;
/// zstd on request) read as the same rows uncompressed: the committed fixtures were made once with pyarrow
/// 26.0.1 (in tests/fixtures/):
///
/// ```python
/// import pyarrow as pa, pyarrow.feather as feather, pyarrow.csv as pcsv
/// n = 80
/// t = pa.table({"a": [float(i % 7) + 0.5 for i in range(n)],
///               "colour": [["red", "blue", "green"][i % 3] for i in range(n)],
///               "s": [(i // 2) % 2 for i in range(n)], "y": [(i // 3) % 2 for i in range(n)]})
/// feather.write_feather(t, "pyarrow_lz4.arrow")
/// feather.write_feather(t, "pyarrow_zstd.arrow", compression="zstd")
/// pcsv.write_csv(t, "pyarrow_rows.csv", pcsv.WriteOptions(quoting_style="none"))
/// ```
///
/// and files compressed by the arrow crate itself (both codecs, larger) give the metrics of the uncompressed
/// file, in memory and streamed.
#[test]
fn compressed_arrow_ipc_files_read_as_their_rows() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    // One stem for all (the report names the dataset after it), in a directory each.
    let place = |from: &Path, to: &str| {
        let to = dir.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    place(&fixtures.join("pyarrow_rows.csv"), "csv/rows.csv");
    place(&fixtures.join("pyarrow_lz4.arrow"), "lz4/rows.arrow");
    place(&fixtures.join("pyarrow_zstd.arrow"), "zstd/rows.arrow");
    let metrics = |file: &str, more: &[&str]| {
        let args = ["train", "--input", file, "--target", "y", "--sensitive", "s", "--epochs", "1", "--hidden", "4,2"];
        let o = fairbits(dir.path(), &[&args[..], &["--reproducible", "--json", "--forest-trees", "2"], more].concat());
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        stdout(&o)
    };
    let csv = metrics("csv/rows.csv", &[]);
    assert!(csv.contains("\"task\""), "{csv}");
    for file in ["lz4/rows.arrow", "zstd/rows.arrow"] {
        assert_eq!(metrics(file, &[]), csv, "{file}");
        assert_eq!(metrics(file, &["--stream"]), csv, "{file} streamed");
    }
    // The arrow crate's own compression, on rows that span buffers worth compressing.
    let batch = batch_of_csv(&write_rows(dir.path(), 3000));
    std::fs::create_dir(dir.path().join("plain")).unwrap();
    write_arrow(&batch, &dir.path().join("plain/rows.arrow"));
    let reference = metrics("plain/rows.arrow", &[]);
    for (name, codec) in [("lz4c", arrow_ipc::CompressionType::LZ4_FRAME), ("zstdc", arrow_ipc::CompressionType::ZSTD)]
    {
        let options = arrow_ipc::writer::IpcWriteOptions::default().try_with_compression(Some(codec)).unwrap();
        std::fs::create_dir(dir.path().join(name)).unwrap();
        let path = dir.path().join(name).join("rows.arrow");
        let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(
            std::fs::File::create(&path).unwrap(),
            &batch.schema(),
            options,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        assert!(
            std::fs::metadata(&path).unwrap().len()
                < std::fs::metadata(dir.path().join("plain/rows.arrow")).unwrap().len()
        );
        assert_eq!(metrics(&format!("{name}/rows.arrow"), &[]), reference, "{name}");
    }
}

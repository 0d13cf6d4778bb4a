//! Parquet and Arrow IPC files as tables: read batch by batch with the arrow crates, every value formatted
//! into the same text cells a CSV would hold, so the typing rules (a column more than half numbers is
//! numeric), the missing-value rules (a null is an empty cell) and the error messages are the CSV's. In
//! messages a columnar file's "line N" is its N-th row (1-based).

use super::table::{Column, RawTable};
use crate::error::{Error, Result};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use std::fmt::Write;
use std::path::Path;

/// The columnar formats, by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.parquet`, `.pq`.
    Parquet,
    /// Arrow IPC: `.arrow`, `.feather`, `.ipc`.
    ArrowIpc,
}

impl Format {
    /// The format of `path`, when its extension names one.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "feather" | "ipc" => Some(Format::ArrowIpc),
            _ => None,
        }
    }
}

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    let format = if Format::of(path) == Some(Format::ArrowIpc) { "Arrow IPC" } else { "Parquet" };
    Error::Columnar { path: path.display().to_string(), format, reason: e.to_string() }
}

/// Reads a Parquet or Arrow IPC file into a table of text cells.
pub fn read(path: &Path, format: Format) -> Result<RawTable> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut table: Option<RawTable> = None;
    let mut add = |batch: RecordBatch| -> Result<()> { append(path, &mut table, &batch) };
    match format {
        Format::Parquet => {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(65_536).build())
                .map_err(|e| bad(path, e))?;
            for batch in reader {
                add(batch.map_err(|e| bad(path, e))?)?;
            }
        }
        Format::ArrowIpc => {
            let reader = arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
                .map_err(|e| bad(path, e))?;
            for batch in reader {
                add(batch.map_err(|e| bad(path, e))?)?;
            }
        }
    }
    table.ok_or_else(|| Error::NoRows { path: path.display().to_string(), detail: " (the file has no columns)".into() })
}

/// Appends a batch's rows (the first batch also gives the header).
fn append(path: &Path, table: &mut Option<RawTable>, batch: &RecordBatch) -> Result<()> {
    let t = table.get_or_insert_with(|| {
        let header = batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        RawTable {
            source: path.display().to_string(),
            columns: vec![Column::default(); header.len()],
            header,
            lines: Vec::new(),
        }
    });
    if t.header.is_empty() {
        return Err(Error::NoRows { path: t.source.clone(), detail: " (the file has no columns)".into() });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = t.header.iter().find(|h| !seen.insert(*h)) {
        return Err(Error::DuplicateColumn { path: t.source.clone(), column: dup.clone() });
    }
    // A null is an empty cell, as in a CSV; floats print as the shortest text that parses back to them.
    let options = FormatOptions::default().with_null("");
    let mut cell = String::new();
    for (c, array) in batch.columns().iter().enumerate() {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| bad(path, e))?;
        let column = &mut t.columns[c];
        for r in 0..array.len() {
            cell.clear();
            write!(cell, "{}", formatter.value(r)).map_err(|e| bad(path, e))?;
            if !column.push(cell.trim()) {
                return Err(Error::Csv {
                    path: t.source.clone(),
                    line: t.lines.len() as u64 + r as u64 + 1,
                    message: format!("column '{}' holds more than 4 GiB of text", t.header[c]),
                });
            }
        }
    }
    let first = t.lines.len() as u64 + 1;
    t.lines.extend(first..first + batch.num_rows() as u64);
    Ok(())
}

//! Parquet and Arrow IPC files as tables: read batch by batch with the arrow crates. A column of numbers
//! stays numbers ([`Column::from_numbers`]: no text unless something reads a cell as text); every other
//! value is formatted into the text cell a CSV would hold, so the typing rules (a column more than half
//! numbers is numeric), the missing-value rules (a null is an empty cell) and the error messages are the
//! CSV's. In
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
    let mut whole: Option<RawTable> = None;
    for_each_batch(path, format, |batch| {
        match whole.as_mut() {
            None => whole = Some(batch),
            Some(t) => {
                for (c, col) in batch.columns.iter().enumerate() {
                    if !t.columns[c].extend(col) {
                        return Err(Error::Csv {
                            path: t.source.clone(),
                            line: batch.lines[0],
                            message: format!("column '{}' holds more than 4 GiB of text", t.header[c]),
                        });
                    }
                }
                t.lines.extend(batch.lines);
            }
        }
        Ok(())
    })?;
    whole.ok_or_else(|| Error::NoRows { path: path.display().to_string(), detail: " (the file has no columns)".into() })
}

/// Calls `f` with each batch of rows of a Parquet or Arrow IPC file (about 65,536 rows; a Parquet row
/// group may be split), as a table of text cells whose lines are the rows' 1-based positions in the file.
pub fn for_each_batch(path: &Path, format: Format, mut f: impl FnMut(RawTable) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut first_line = 1u64;
    let mut add = |batch: RecordBatch| -> Result<()> {
        let table = convert(path, &batch, first_line)?;
        first_line += batch.num_rows() as u64;
        f(table)
    };
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
    Ok(())
}

/// Bytes a table of text cells takes per cell once read whole, with what preparing it adds (the encoded
/// inputs, the splits): measured as the peak resident memory of `train` on a 2,000,000-row, 50-column
/// Parquet file of floats (2.98 GB), rounded up.
pub const BYTES_PER_CELL_IN_MEMORY: f64 = 32.0;

/// The memory a columnar file would take read whole ([`read`]) and prepared, estimated before reading it:
/// its rows times its columns (from a Parquet file's footer; for Arrow IPC, whose footer does not count
/// rows, from the file's size at four bytes a cell) times [`BYTES_PER_CELL_IN_MEMORY`].
pub fn in_memory_estimate(path: &Path, format: Format) -> Result<f64> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let cells = match format {
        Format::Parquet => {
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| bad(path, e))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as f64;
            rows * builder.schema().fields().len() as f64
        }
        Format::ArrowIpc => {
            let size = file.metadata().map_err(|source| Error::Io { path: path.to_path_buf(), source })?.len();
            size as f64 / 4.0
        }
    };
    Ok(cells * BYTES_PER_CELL_IN_MEMORY)
}

/// A column of whole numbers or floats as `f64` values (a null is NaN, a missing cell), without text:
/// integers and `Float64` are the values their shortest text parses to, so the same as reading that text;
/// a `Float32` is widened exactly (as numpy widens it), which can differ in the last bits from parsing its
/// shortest `f32` text as an `f64`. `None` for any other type (text, booleans, dates: read as text).
fn numbers_of(array: &dyn Array) -> Option<Vec<f64>> {
    use arrow_schema::DataType as T;
    let numeric = matches!(
        array.data_type(),
        T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::UInt8
            | T::UInt16
            | T::UInt32
            | T::UInt64
            | T::Float32
            | T::Float64
    );
    if !numeric {
        return None;
    }
    let wide = arrow_cast::cast(array, &T::Float64).ok()?;
    let floats = wide.as_any().downcast_ref::<arrow_array::Float64Array>()?;
    Some(floats.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// A column of strings as its cells, trimmed (a null is an empty cell), read from the array's own strings,
/// as a dictionary of its values where they are few ([`Column::from_texts`]); `None` for another type,
/// `Some(None)` past 4 GiB of text.
fn texts_of(array: &dyn Array) -> Option<Option<Column>> {
    use arrow_array::cast::AsArray;
    fn column<'a>(cells: impl Iterator<Item = Option<&'a str>>) -> Option<Column> {
        Column::from_texts(cells.map(|c| c.map_or("", str::trim)))
    }
    if let Some(a) = array.as_string_opt::<i32>() {
        return Some(column(a.iter()));
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Some(column(a.iter()));
    }
    if let Some(a) = array.as_string_view_opt() {
        return Some(column(a.iter()));
    }
    // pandas' categoricals arrive as a dictionary of strings: their strings, cell by cell.
    use arrow_schema::DataType as T;
    match array.data_type() {
        T::Dictionary(_, values) if matches!(**values, T::Utf8 | T::LargeUtf8 | T::Utf8View) => {
            let strings = arrow_cast::cast(array, &T::Utf8).ok()?;
            texts_of(strings.as_ref())
        }
        _ => None,
    }
}

/// A batch as a table of text cells, its rows numbered from `first_line`.
fn convert(path: &Path, batch: &RecordBatch, first_line: u64) -> Result<RawTable> {
    let header = batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    let source = path.display().to_string();
    if header.is_empty() {
        return Err(Error::NoRows { path: source, detail: " (the file has no columns)".into() });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = header.iter().find(|h| !seen.insert(*h)) {
        return Err(Error::DuplicateColumn { path: source, column: dup.clone() });
    }
    // A list or a struct in a cell is no feature: its text ('[1, 2]') would become a category.
    if let Some(field) = batch.schema().fields().iter().find(|f| f.data_type().is_nested()) {
        let reason = format!(
            "column '{}' holds {} values (a nested type); fairbits reads flat columns of numbers, text or \
             booleans: flatten it or leave it out of the file",
            field.name(),
            field.data_type()
        );
        return Err(bad(path, reason));
    }
    // A null is an empty cell, as in a CSV; floats print as the shortest text that parses back to them.
    let options = FormatOptions::default().with_null("");
    let mut cell = String::new();
    let mut columns = Vec::with_capacity(header.len());
    for (c, array) in batch.columns().iter().enumerate() {
        if let Some(column) = numbers_of(array.as_ref()).and_then(Column::from_numbers) {
            columns.push(column);
            continue;
        }
        let too_big = || Error::Csv {
            path: source.clone(),
            line: first_line,
            message: format!("column '{}' holds more than 4 GiB of text", header[c]),
        };
        if let Some(texts) = texts_of(array.as_ref()) {
            columns.push(texts.ok_or_else(too_big)?);
            continue;
        }
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| bad(path, e))?;
        let mut column = Column::default();
        for r in 0..array.len() {
            cell.clear();
            write!(cell, "{}", formatter.value(r)).map_err(|e| bad(path, e))?;
            if !column.push(cell.trim()) {
                return Err(Error::Csv {
                    path: source,
                    line: first_line + r as u64,
                    message: format!("column '{}' holds more than 4 GiB of text", header[c]),
                });
            }
        }
        columns.push(column);
    }
    let lines = (first_line..first_line + batch.num_rows() as u64).collect();
    Ok(RawTable { source, header, columns, lines })
}

#[cfg(test)]
mod tests {
    use super::{numbers_of, texts_of};
    use arrow_array::{BooleanArray, Float32Array, Int64Array, StringArray};

    #[test]
    fn numeric_columns_cross_as_numbers_and_the_rest_as_text() {
        let f = numbers_of(&Float32Array::from(vec![Some(0.1f32), None])).unwrap();
        assert_eq!(f[0], 0.1f32 as f64); // widened exactly, not 0.1 as an f64
        assert!(f[1].is_nan());
        let big = 9_007_199_254_740_993i64; // 2^53 + 1: rounds as its text would parse
        assert_eq!(
            numbers_of(&Int64Array::from(vec![-3, big])).unwrap(),
            vec![-3.0, "9007199254740993".parse().unwrap()]
        );
        assert!(numbers_of(&StringArray::from(vec!["1"])).is_none());
        assert!(numbers_of(&BooleanArray::from(vec![true])).is_none());
    }

    #[test]
    fn strings_cross_as_a_dictionary_of_trimmed_cells_with_nulls_empty() {
        use crate::data::table::{Column, DICTIONARY_MAX};
        let cells = vec![Some(" b"), None, Some("a"), Some("b ")];
        let col = texts_of(&StringArray::from(cells.clone())).unwrap().unwrap();
        assert_eq!(col, Column::from_cells(["b", "", "a", "b"]));
        assert_eq!(col.dictionary().map(|(v, c)| (v.len(), c.to_vec())), Some((3, vec![0, 1, 2, 0])));
        let view = texts_of(&arrow_array::StringViewArray::from(cells)).unwrap().unwrap();
        assert_eq!(view, col);
        // An identifier: text cells, the same cells.
        let ids: Vec<String> = (0..DICTIONARY_MAX + 2).map(|r| format!("id{r}")).collect();
        let col = texts_of(&StringArray::from(ids.clone())).unwrap().unwrap();
        assert!(col.dictionary().is_none());
        assert_eq!(col, Column::from_cells(&ids));
        assert!(texts_of(&Int64Array::from(vec![1])).is_none());
        let categorical: arrow_array::DictionaryArray<arrow_array::types::Int8Type> =
            vec![Some("x"), None, Some("x")].into_iter().collect();
        assert_eq!(texts_of(&categorical).unwrap().unwrap(), Column::from_cells(["x", "", "x"]));
    }
}

//! Reading a CSV file into a table of trimmed string cells, column-major, remembering each row's line
//! in the file so that later errors can point at it.

use crate::error::{Error, Result};

/// Cells that mean "missing". A row with a missing cell in a used column is dropped and counted.
pub const MISSING_TOKENS: &[&str] = &["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL"];

/// True when a cell counts as missing.
pub fn is_missing(cell: &str) -> bool {
    MISSING_TOKENS.contains(&cell)
}

/// What to do when two columns share a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicates {
    /// Fail: a user's file with duplicate names is ambiguous.
    Reject,
    /// Keep the first, rename later ones `name.1`, `name.2` (the built-in COMPAS file repeats columns).
    Rename,
}

/// A CSV file as trimmed string cells.
#[derive(Clone, Debug)]
pub struct RawTable {
    /// Where the table came from, for messages.
    pub source: String,
    /// Column names.
    pub header: Vec<String>,
    /// `columns[c][r]`: the cell of column `c`, row `r`.
    pub columns: Vec<Vec<String>>,
    /// 1-based line of each row in the file (header = line 1).
    pub lines: Vec<u64>,
}

impl RawTable {
    /// Reads CSV bytes. A byte-order mark is skipped; ragged rows and invalid UTF-8 are errors naming the
    /// line. Lines are counted from the bytes themselves (the CSV reader's own count skips blank lines).
    pub fn read(bytes: &[u8], source: &str, duplicates: Duplicates) -> Result<Self> {
        let newlines: Vec<u64> = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i as u64)
            .collect();
        // A record's recorded start can precede the blank lines the reader skipped: step over them.
        let line_of = |byte: u64| {
            let mut b = byte as usize;
            while b < bytes.len() && (bytes[b] == b'\n' || bytes[b] == b'\r') {
                b += 1;
            }
            newlines.partition_point(|&nl| nl < b as u64) as u64 + 1
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let csv_err = |e: csv::Error| {
            let line = e.position().map(|p| line_of(p.byte())).unwrap_or(0);
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("the row has {len} fields but the header has {expected_len}"),
                csv::ErrorKind::Utf8 { err, .. } => {
                    format!("field {} is not valid UTF-8", err.field() + 1)
                }
                _ => e.to_string(),
            };
            Error::Csv {
                path: source.to_string(),
                line,
                message,
            }
        };
        let header_rec = rdr.headers().map_err(csv_err)?.clone();
        if header_rec.is_empty() || (header_rec.len() == 1 && header_rec[0].is_empty()) {
            return Err(Error::EmptyFile {
                path: source.to_string(),
            });
        }
        let mut header: Vec<String> = Vec::with_capacity(header_rec.len());
        for name in header_rec.iter() {
            let name = name.trim_start_matches('\u{feff}').to_string();
            if header.contains(&name) {
                match duplicates {
                    Duplicates::Reject => {
                        return Err(Error::DuplicateColumn {
                            path: source.to_string(),
                            column: name,
                        })
                    }
                    Duplicates::Rename => {
                        let mut k = 1;
                        while header.contains(&format!("{name}.{k}")) {
                            k += 1;
                        }
                        header.push(format!("{name}.{k}"));
                        continue;
                    }
                }
            }
            header.push(name);
        }
        let mut columns = vec![Vec::new(); header.len()];
        let mut lines = Vec::new();
        let mut rec = csv::StringRecord::new();
        loop {
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    // A blank line inside the file reads as one empty field; skip it like pandas does.
                    if rec.len() == 1 && rec[0].is_empty() && header.len() > 1 {
                        continue;
                    }
                    lines.push(rec.position().map(|p| line_of(p.byte())).unwrap_or(0));
                    for (c, cell) in rec.iter().enumerate() {
                        columns[c].push(cell.to_string());
                    }
                }
                Err(e) => return Err(csv_err(e)),
            }
        }
        Ok(RawTable {
            source: source.to_string(),
            header,
            columns,
            lines,
        })
    }

    /// Reads a CSV file from disk.
    pub fn from_path(path: &std::path::Path, duplicates: Duplicates) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::read(&bytes, &path.display().to_string(), duplicates)
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// Index of a column, or an error listing the header.
    pub fn col(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                path: self.source.clone(),
                column: name.to_string(),
                available: self.header.join(", "),
            })
    }

    /// The cells of a column.
    pub fn column(&self, name: &str) -> Result<&[String]> {
        Ok(&self.columns[self.col(name)?])
    }

    /// Adds (or replaces) a column.
    pub fn set_column(&mut self, name: &str, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.n_rows());
        match self.header.iter().position(|h| h == name) {
            Some(c) => self.columns[c] = cells,
            None => {
                self.header.push(name.to_string());
                self.columns.push(cells);
            }
        }
    }

    /// Keeps the rows for which `keep` is true.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        for col in &mut self.columns {
            let mut it = keep.iter();
            col.retain(|_| *it.next().unwrap());
        }
        let mut it = keep.iter();
        self.lines.retain(|_| *it.next().unwrap());
    }
}

/// Parses a numeric cell; `None` when it is not a number.
pub fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok()
}

/// Sorts values numerically when all are numbers, otherwise lexicographically. Used to give target and
/// group values a stable, documented order (so `0 < 1`, `Female < Male`).
pub fn sort_values(values: &mut [String]) {
    if values.iter().all(|v| parse_number(v).is_some()) {
        values.sort_by(|a, b| {
            parse_number(a)
                .unwrap()
                .partial_cmp(&parse_number(b).unwrap())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    } else {
        values.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<RawTable> {
        RawTable::read(s.as_bytes(), "t.csv", Duplicates::Reject)
    }

    #[test]
    fn reads_trimmed_cells_and_lines() {
        let t = read("a, b\n1, x\n\n2,\"y, z\"\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(t.columns[1], vec!["x", "y, z"]);
        assert_eq!(t.lines, vec![2, 4]);
    }

    #[test]
    fn ragged_row_names_the_line() {
        let e = read("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("t.csv: line 3"), "{e}");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let t = read("\u{feff}a,b\n1,2\n").unwrap();
        assert_eq!(t.header[0], "a");
    }

    #[test]
    fn empty_file_and_duplicates_are_errors() {
        assert!(matches!(read(""), Err(Error::EmptyFile { .. })));
        assert!(matches!(
            read("a,a\n1,2\n"),
            Err(Error::DuplicateColumn { .. })
        ));
        let t = RawTable::read("a,a\n1,2\n".as_bytes(), "t", Duplicates::Rename).unwrap();
        assert_eq!(t.header, vec!["a", "a.1"]);
    }

    #[test]
    fn sorts_numbers_numerically() {
        let mut v = vec!["10".to_string(), "9".into(), "-1".into()];
        sort_values(&mut v);
        assert_eq!(v, vec!["-1", "9", "10"]);
    }
}

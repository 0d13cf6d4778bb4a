//! Reading a CSV file into a table of trimmed string cells, column-major, remembering each row's line
//! in the file so that later errors can point at it.

use crate::error::{Error, Result};
use crate::schema::Param;
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

/// Byte offsets of the line breaks read so far.
#[derive(Default)]
struct LineBreaks {
    newlines: Vec<u64>,
    returns: Vec<u64>,
}

impl LineBreaks {
    /// 1-based line of the first non-break byte at or after `byte`.
    fn line_of(&self, byte: u64) -> u64 {
        let mut b = byte;
        while self.newlines.binary_search(&b).is_ok() || self.returns.binary_search(&b).is_ok() {
            b += 1;
        }
        self.newlines.partition_point(|&nl| nl < b) as u64 + 1
    }
}

/// Passes bytes through, recording where the line breaks are.
struct CountingReader<R> {
    inner: R,
    offset: u64,
    breaks: Rc<RefCell<LineBreaks>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'\n' => breaks.newlines.push(self.offset + i as u64),
                b'\r' => breaks.returns.push(self.offset + i as u64),
                _ => {}
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Cells that mean "missing". A row with a missing cell in a used column is dropped and counted.
pub const MISSING_TOKENS: &[&str] = &["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL"];

fn not_a_file(path: &std::path::Path) -> Error {
    Error::Io { path: path.to_path_buf(), source: std::io::Error::other("a directory, not a table file") }
}

/// True when a cell counts as missing.
pub fn is_missing(cell: &str) -> bool {
    // Every token is at most 4 bytes: a longer cell is settled by its length.
    cell.len() <= 4 && MISSING_TOKENS.contains(&cell)
}

/// What to do when two columns share a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicates {
    /// Fail: a user's file with duplicate names is ambiguous.
    Reject,
    /// Keep the first, rename later ones `name.1`, `name.2` (the built-in COMPAS file repeats columns).
    Rename,
}

/// One column's cells, stored compactly: the texts back to back in one buffer and their end offsets, so a
/// cell costs its bytes plus 4 (a `String` per cell would cost 24 more and an allocation). A column of
/// numbers ([`Column::from_numbers`]: from memory, a columnar file, or a CSV column of plain decimals) keeps
/// the numbers instead: the encoders read them directly ([`Column::number`], [`Column::missing`]), and the
/// text a file holding them would give ([`number_text`]) is written only when something reads a cell as
/// text (a category, a message). A column of few distinct texts (a category) may be held as a dictionary
/// ([`Column::from_dictionary`]): each distinct text once and a 4-byte code per cell, which the encoders
/// read per distinct value rather than per cell ([`Column::dictionary`]).
#[derive(Clone, Debug, Default)]
pub struct Column {
    text: String,
    ends: Vec<u32>,
    /// The numbers of a column from memory; when set, `text` and `ends` are unused and the text lives in
    /// `written`, filled on first need.
    numbers: Option<Vec<f64>>,
    written: std::sync::OnceLock<Box<Column>>,
    /// A dictionary column: its distinct texts (`text`/`ends` hold them) and each cell's index among them.
    codes: Option<Vec<u32>>,
}

impl PartialEq for Column {
    /// Equal cells (a column of numbers equals the column of their texts).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Column {
    /// A column of numbers from memory (NaN = missing): each cell reads as the shortest text that parses
    /// back to the same value ([`number_text`]), the cell a CSV file holding it gives, but is only written
    /// when read as text. `None` when their texts could pass the 4 GiB a column holds (over 178 million
    /// numbers of the longest text, 24 bytes): such a column is pushed as text, which fails cleanly.
    pub fn from_numbers(values: Vec<f64>) -> Option<Self> {
        Self::numbers_fit(values.len()).then(|| Column { numbers: Some(values), ..Column::default() })
    }

    /// Whether the texts of `n` numbers surely fit in the 4 GiB a column holds.
    fn numbers_fit(n: usize) -> bool {
        const LONGEST: usize = 24; // "-1.2345678901234567e-308"
        n.saturating_mul(LONGEST) <= u32::MAX as usize
    }

    /// The numbers of a column made by [`Column::from_numbers`].
    pub fn numbers(&self) -> Option<&[f64]> {
        self.numbers.as_deref()
    }

    /// A column of `values` (distinct texts) and one index into them per cell: cell `r` is
    /// `values[codes[r]]`. Codes must be below the number of values.
    pub fn from_dictionary(values: Column, codes: Vec<u32>) -> Self {
        debug_assert!(values.codes.is_none() && values.numbers.is_none());
        debug_assert!(codes.iter().all(|&c| (c as usize) < values.len()));
        Column { codes: Some(codes), ..values }
    }

    /// A column of the given cells (trimmed by the caller), as a dictionary while they hold at most
    /// [`DICTIONARY_MAX`] distinct values, else as text ([`TextBuilder`]); `None` past 4 GiB of text.
    pub fn from_texts<'a>(cells: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut builder = TextBuilder::default();
        cells.into_iter().all(|c| builder.push(c)).then(|| builder.finish())
    }

    /// A dictionary column's distinct texts and each cell's index among them ([`Column::from_dictionary`]).
    pub fn dictionary(&self) -> Option<(DictValues<'_>, &[u32])> {
        self.codes.as_deref().map(|codes| (DictValues(self), codes))
    }

    /// The `k`-th stored text (a dictionary's value, or a text column's cell).
    fn stored(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// Whether the texts of a column of numbers have been written (for tests of what reads them).
    #[cfg(test)]
    pub(crate) fn written(&self) -> bool {
        self.written.get().is_some()
    }

    /// The cells as text: the column itself, or the texts of its numbers, written once.
    fn texts(&self) -> &Column {
        match &self.numbers {
            None => self,
            Some(values) => self.written.get_or_init(|| {
                let mut c = Box::<Column>::default();
                let mut buf = String::new();
                for &v in values {
                    number_text(v, &mut buf);
                    // At most 24 bytes a number: `from_numbers` made sure the texts fit.
                    let pushed = c.push(&buf);
                    debug_assert!(pushed);
                }
                c
            }),
        }
    }

    /// A column of text cells, its numbers or dictionary written out (before it is changed in place);
    /// `false` (nothing changed) when a dictionary's cells written out would pass 4 GiB.
    fn make_text(&mut self) -> bool {
        if self.numbers.is_some() {
            self.texts();
            let written = self.written.take().unwrap_or_default();
            *self = *written;
        }
        if let Some(codes) = &self.codes {
            let mut c = Column::default();
            for &k in codes {
                if !c.push_stored(self.stored(k as usize)) {
                    return false;
                }
            }
            *self = c;
        }
        true
    }

    /// Cell `r` as a number when it is one: a column of numbers gives its value (NaN for a missing cell),
    /// a text column the cell parsed ([`parse_number`]). The same value either way: the text of a number
    /// parses back to it.
    pub fn number(&self, r: usize) -> Option<f64> {
        match &self.numbers {
            Some(values) => Some(values[r]),
            None => parse_number(self.get(r)),
        }
    }

    /// Whether cell `r` is missing ([`is_missing`]); for a column of numbers, whether it is NaN (whose
    /// text, `NaN`, is a missing token).
    pub fn missing(&self, r: usize) -> bool {
        match &self.numbers {
            Some(values) => values[r].is_nan(),
            None => is_missing(self.get(r)),
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        match (&self.numbers, &self.codes) {
            (Some(values), _) => values.len(),
            (None, Some(codes)) => codes.len(),
            (None, None) => self.ends.len(),
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `r`.
    pub fn get(&self, r: usize) -> &str {
        match &self.codes {
            Some(codes) => self.stored(codes[r] as usize),
            None => self.texts().stored(r),
        }
    }

    /// The cells in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |r| self.get(r))
    }

    /// Appends a cell; `false` when the column would pass 4 GiB of text.
    pub fn push(&mut self, cell: &str) -> bool {
        self.make_text() && self.push_stored(cell)
    }

    /// Appends a text to `text` and `ends` as they are (a cell, or a dictionary's value); `false` past 4 GiB.
    fn push_stored(&mut self, cell: &str) -> bool {
        let end = self.text.len() + cell.len();
        if end > u32::MAX as usize {
            return false;
        }
        self.text.push_str(cell);
        self.ends.push(end as u32);
        true
    }

    /// Appends another column's cells; `false` when the column would pass 4 GiB of text.
    pub fn extend(&mut self, other: &Column) -> bool {
        // Numbers after numbers stay numbers (a columnar file read batch by batch).
        if let (Some(a), Some(b)) = (self.numbers.as_mut(), other.numbers.as_ref()) {
            if Self::numbers_fit(a.len() + b.len()) {
                a.extend_from_slice(b);
                self.written = std::sync::OnceLock::new();
                return true;
            }
        }
        if let (Some(_), Some((values, codes))) = (&self.codes, other.dictionary()) {
            if self.extend_dictionary(values, codes) {
                return true;
            }
        }
        if !self.make_text() {
            return false;
        }
        if other.codes.is_some() {
            // A dictionary's cells, written out one by one.
            let bytes: usize = other.iter().map(str::len).sum();
            return self.text.len() + bytes <= u32::MAX as usize && other.iter().all(|c| self.push_stored(c));
        }
        let other = other.texts();
        let base = self.text.len();
        if base + other.text.len() > u32::MAX as usize {
            return false;
        }
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|&e| e + base as u32));
        true
    }

    /// Appends another dictionary column's cells to this dictionary column, adding its new values; `false`
    /// (nothing changed) when the values would pass [`DICTIONARY_MAX`] or 4 GiB of text.
    fn extend_dictionary(&mut self, values: DictValues<'_>, codes: &[u32]) -> bool {
        let mut index: rustc_hash::FxHashMap<&str, u32> =
            (0..self.ends.len()).map(|k| (self.stored(k), k as u32)).collect();
        let mut added: Vec<&str> = Vec::new();
        let remap: Vec<u32> = (0..values.len())
            .map(|k| {
                let v = values.get(k);
                let next = index.len() as u32;
                *index.entry(v).or_insert_with(|| {
                    added.push(v);
                    next
                })
            })
            .collect();
        let text = self.text.len() + added.iter().map(|v| v.len()).sum::<usize>();
        if index.len() > DICTIONARY_MAX || text > u32::MAX as usize {
            return false;
        }
        drop(index);
        for v in added {
            self.push_stored(v);
        }
        let mine = self.codes.as_mut().expect("a dictionary column");
        mine.extend(codes.iter().map(|&c| remap[c as usize]));
        true
    }

    /// Appends a cell trimmed of surrounding white space, as a file's cells are; `false` past 4 GiB.
    pub fn push_trimmed(&mut self, cell: &str) -> bool {
        self.push(cell.trim())
    }

    /// A column of the given cells.
    pub fn from_cells<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> Self {
        let mut c = Column::default();
        for cell in cells {
            assert!(c.push(cell.as_ref()), "derived column over 4 GiB");
        }
        c
    }

    /// Keeps the cells where `keep` is true (a column of numbers stays one).
    pub fn retain(&mut self, keep: &[bool]) {
        if let Some(codes) = &mut self.codes {
            let mut it = keep.iter();
            codes.retain(|_| *it.next().expect("a flag per cell"));
            return;
        }
        if let Some(values) = &self.numbers {
            let kept = values.iter().zip(keep).filter(|(_, &k)| k).map(|(&v, _)| v).collect();
            *self = Column { numbers: Some(kept), ..Column::default() }; // fewer numbers: their texts fit
            return;
        }
        let kept = Column::from_cells((0..self.len()).filter(|&r| keep[r]).map(|r| self.get(r)));
        *self = kept;
    }
}

/// The most distinct values a dictionary column holds ([`Column::from_dictionary`]); a column with more
/// is held as text cells (an identifier, free text: a dictionary would save nothing).
pub const DICTIONARY_MAX: usize = 1 << 16;

/// Builds a column cell by cell: a dictionary ([`Column::from_dictionary`]) while it holds at most
/// [`DICTIONARY_MAX`] distinct values, then text cells (an identifier, free text: a dictionary would save
/// nothing). A column begun with numbers ([`TextBuilder::after_numbers`]) is text from the start.
pub struct TextBuilder {
    /// Each value's code while the column is a dictionary; `None` once it is text.
    index: Option<rustc_hash::FxHashMap<Box<str>, u32>>,
    column: Column,
}

impl Default for TextBuilder {
    fn default() -> Self {
        TextBuilder { index: Some(Default::default()), column: Column::from_dictionary(Column::default(), Vec::new()) }
    }
}

impl TextBuilder {
    /// A text column whose first cells are the texts of `numbers` ([`number_text`]).
    pub fn after_numbers(numbers: Vec<f64>) -> Self {
        let mut column = Column::from_numbers(numbers).expect("numbers of one piece, far from 4 GiB of text");
        column.make_text();
        TextBuilder { index: None, column }
    }

    /// Appends a cell; `false` when the column would pass 4 GiB of text.
    pub fn push(&mut self, cell: &str) -> bool {
        let Some(index) = &mut self.index else { return self.column.push(cell) };
        let k = match index.get(cell) {
            Some(&k) => k,
            None if index.len() < DICTIONARY_MAX => {
                let k = index.len() as u32;
                index.insert(cell.into(), k);
                if !self.column.push_stored(cell) {
                    return false;
                }
                k
            }
            None => {
                self.index = None;
                return self.column.push(cell); // writes the dictionary's cells out first
            }
        };
        self.column.codes.as_mut().expect("a dictionary column").push(k);
        true
    }

    /// The column.
    pub fn finish(self) -> Column {
        self.column
    }
}

/// A dictionary column's distinct texts ([`Column::dictionary`]).
#[derive(Clone, Copy, Debug)]
pub struct DictValues<'a>(&'a Column);

impl<'a> DictValues<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `k`.
    pub fn get(&self, k: usize) -> &'a str {
        self.0.stored(k)
    }
}

/// A CSV file as trimmed string cells.
#[derive(Clone, Debug)]
pub struct RawTable {
    /// Where the table came from, for messages.
    pub source: String,
    /// Column names.
    pub header: Vec<String>,
    /// The cells, column by column.
    pub columns: Vec<Column>,
    /// 1-based line of each row in the file (header = line 1).
    pub lines: Vec<u64>,
}

impl RawTable {
    /// Reads CSV bytes. A byte-order mark is skipped; ragged rows and invalid UTF-8 are errors naming the
    /// line.
    pub fn read(bytes: &[u8], source: &str, duplicates: Duplicates) -> Result<Self> {
        super::chunked::read(bytes, source, duplicates, None, super::chunked::Plan::default_for_threads())
    }

    /// Reads a CSV stream without holding its bytes, sequentially: lines are counted from the line breaks
    /// seen on the way (the CSV reader's own count skips blank lines). Files are read in parallel
    /// ([`RawTable::from_path_with`], [`RawTable::read`]); this reader is the reference they are tested
    /// against.
    pub fn read_from<R: Read>(reader: R, source: &str, duplicates: Duplicates) -> Result<Self> {
        Self::read_with(reader, source, duplicates, None)
    }

    /// [`RawTable::read_from`] with a field separator (default `,`). A file whose header comes out as one
    /// column holding `;` or a tab is an error that names the separator to pass.
    pub fn read_with<R: Read>(
        reader: R,
        source: &str,
        duplicates: Duplicates,
        delimiter: Option<char>,
    ) -> Result<Self> {
        let mut whole = None;
        Self::read_batches(reader, source, duplicates, delimiter, usize::MAX, |t| {
            whole = Some(t);
            Ok(())
        })?;
        Ok(whole.expect("the last batch is always passed on"))
    }

    /// [`RawTable::read_with`] in batches of `batch_rows` records: `f` gets each batch as a table of its own
    /// (the header, the cells, the rows' line numbers in the file), the last one always, even when empty.
    pub fn read_batches<R: Read>(
        reader: R,
        source: &str,
        duplicates: Duplicates,
        delimiter: Option<char>,
        batch_rows: usize,
        mut f: impl FnMut(RawTable) -> Result<()>,
    ) -> Result<()> {
        let sep = separator(delimiter)?;
        let breaks = Rc::new(RefCell::new(LineBreaks::default()));
        let counting = CountingReader { inner: reader, offset: 0, breaks: Rc::clone(&breaks) };
        // A record's recorded start can precede the blank lines the reader skipped: step over them.
        let line_of = |byte: u64| breaks.borrow().line_of(byte);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .delimiter(sep)
            .from_reader(counting);
        let csv_err = |e: csv::Error| {
            let line = e.position().map(|p| line_of(p.byte())).unwrap_or(0);
            Error::Csv { path: source.to_string(), line, message: csv_message(&e) }
        };
        let header_rec = rdr.headers().map_err(csv_err)?.clone();
        let header = header_names(&header_rec, source, duplicates, delimiter)?;
        let mut columns = vec![Column::default(); header.len()];
        let mut lines = Vec::new();
        let mut rec = csv::StringRecord::new();
        let batch = |columns: &mut Vec<Column>, lines: &mut Vec<u64>| RawTable {
            source: source.to_string(),
            header: header.clone(),
            columns: std::mem::replace(columns, vec![Column::default(); header.len()]),
            lines: std::mem::take(lines),
        };
        loop {
            if lines.len() == batch_rows {
                f(batch(&mut columns, &mut lines))?;
            }
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    // A blank line inside the file reads as one empty field; skip it like pandas does.
                    if rec.len() == 1 && rec[0].is_empty() && header.len() > 1 {
                        continue;
                    }
                    let line = rec.position().map(|p| line_of(p.byte())).unwrap_or(0);
                    lines.push(line);
                    for (c, cell) in rec.iter().enumerate() {
                        if !columns[c].push(cell) {
                            return Err(Error::Csv {
                                path: source.to_string(),
                                line,
                                message: format!("column '{}' holds more than 4 GiB of text", header[c]),
                            });
                        }
                    }
                }
                Err(e) => return Err(csv_err(e)),
            }
        }
        f(batch(&mut columns, &mut lines))
    }

    /// Reads a CSV file from disk.
    pub fn from_path(path: &std::path::Path, duplicates: Duplicates) -> Result<Self> {
        Self::from_path_with(path, duplicates, None)
    }

    /// Reads a CSV file with a field separator (a name ending in `.gz` is decompressed on the way), or a
    /// Parquet or Arrow IPC file by its extension ([`super::columnar`]).
    pub fn from_path_with(path: &std::path::Path, duplicates: Duplicates, delimiter: Option<char>) -> Result<Self> {
        if let Some(format) = super::columnar::Format::of(path) {
            if path.is_dir() {
                return Err(not_a_file(path));
            }
            return super::columnar::read(path, format);
        }
        let plan = super::chunked::Plan::default_for_threads();
        let source = path.display().to_string();
        Self::open_csv(path, |r| super::chunked::read(r, &source, duplicates, delimiter, plan))
    }

    /// Calls `f` with a CSV file's bytes (a name ending in `.gz` decompressed on the way).
    fn open_csv<T>(path: &std::path::Path, f: impl FnOnce(&mut dyn Read) -> Result<T>) -> Result<T> {
        if path.is_dir() {
            return Err(not_a_file(path));
        }
        let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        if path.extension().is_some_and(|e| e == "gz") {
            return f(&mut std::io::BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(reader)));
        }
        f(&mut reader)
    }

    /// A CSV file (`.gz` decompressed on the way) in batches of whole records, each a table of its own, at
    /// least one (parsed in parallel: [`super::chunked::for_each_piece`]): how a CSV file is streamed.
    pub fn csv_batches(
        path: &std::path::Path,
        duplicates: Duplicates,
        delimiter: Option<char>,
        f: impl FnMut(RawTable) -> Result<()>,
    ) -> Result<()> {
        let plan = super::chunked::Plan::default_for_threads();
        let source = path.display().to_string();
        Self::open_csv(path, |r| super::chunked::for_each_piece(r, &source, duplicates, delimiter, plan, f))
    }

    /// A table from columns of cells held in memory (a data frame): a message's "line" is the 0-based row
    /// position. The caller trims the cells as a file's are ([`Column::push_trimmed`]).
    pub fn from_columns(source: &str, header: Vec<String>, columns: Vec<Column>) -> Result<Self> {
        let n = columns.first().map_or(0, Column::len);
        if header.len() != columns.len() || header.is_empty() {
            let (expected, got) = (format!("{} columns", header.len()), format!("{} columns", columns.len()));
            return Err(Error::Shape { what: source.to_string(), expected, got });
        }
        for (name, col) in header.iter().zip(&columns) {
            if col.len() != n {
                let what = format!("{source}: column '{name}'");
                return Err(Error::Shape { what, expected: format!("{n} rows"), got: format!("{} rows", col.len()) });
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = header.iter().find(|h| !seen.insert(*h)) {
            return Err(Error::DuplicateColumn { path: source.to_string(), column: dup.clone() });
        }
        Ok(RawTable { source: source.to_string(), header, columns, lines: (0..n as u64).collect() })
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// Index of a column, or an error listing the header.
    pub fn col(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| Error::MissingColumn {
            path: self.source.clone(),
            column: name.to_string(),
            available: self.header.join(", "),
        })
    }

    /// The cells of a column.
    pub fn column(&self, name: &str) -> Result<&Column> {
        Ok(&self.columns[self.col(name)?])
    }

    /// Adds (or replaces) a column.
    pub fn set_column(&mut self, name: &str, cells: Column) {
        debug_assert_eq!(cells.len(), self.n_rows());
        match self.header.iter().position(|h| h == name) {
            Some(c) => self.columns[c] = cells,
            None => {
                self.header.push(name.to_string());
                self.columns.push(cells);
            }
        }
    }

    /// Whether each row has no missing cell ([`Column::missing`]) in the given columns (indices).
    pub fn complete_rows(&self, columns: &[usize]) -> Vec<bool> {
        use rayon::prelude::*;
        const BLOCK: usize = 8192;
        let mut keep = vec![true; self.n_rows()];
        // Blocks of rows in parallel, column by column within a block.
        keep.par_chunks_mut(BLOCK).enumerate().for_each(|(b, keep)| {
            for &c in columns {
                let col = &self.columns[c];
                for (i, k) in keep.iter_mut().enumerate() {
                    *k &= !col.missing(b * BLOCK + i);
                }
            }
        });
        keep
    }

    /// Keeps the rows for which `keep` is true (nothing to do when all are).
    pub fn retain_rows(&mut self, keep: &[bool]) {
        use rayon::prelude::*;
        if keep.iter().all(|&k| k) {
            return;
        }
        self.columns.par_iter_mut().for_each(|col| col.retain(keep));
        let mut it = keep.iter();
        self.lines.retain(|_| *it.next().unwrap());
    }
}

/// What a csv crate error says, in this crate's words for the errors a user's file makes.
pub(super) fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("the row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not valid UTF-8", err.field() + 1),
        _ => e.to_string(),
    }
}

/// The field separator's byte (default `,`); it must be one ASCII character.
pub(super) fn separator(delimiter: Option<char>) -> Result<u8> {
    let sep = delimiter.unwrap_or(',');
    if !sep.is_ascii() {
        return Err(Error::param(Param::Delimiter, sep, "must be one ASCII character"));
    }
    Ok(sep as u8)
}

/// The column names of a header record (trimmed, as read with [`csv::Trim::All`]): an empty header is an
/// empty file; a header that comes out as one column holding `;` or a tab (no separator given) is an error
/// naming the separator to pass; a repeated name is refused or renamed (`name.1`) as `duplicates` says.
pub(super) fn header_names(
    header_rec: &csv::StringRecord,
    source: &str,
    duplicates: Duplicates,
    delimiter: Option<char>,
) -> Result<Vec<String>> {
    if header_rec.is_empty() || (header_rec.len() == 1 && header_rec[0].is_empty()) {
        return Err(Error::EmptyFile { path: source.to_string() });
    }
    if let (1, None) = (header_rec.len(), delimiter) {
        if let Some((name, c)) = [("';'", ';'), ("tab", '\t')].into_iter().find(|(_, c)| header_rec[0].contains(*c)) {
            let header = header_rec[0].chars().take(60).collect::<String>();
            return Err(Error::Separator { path: source.to_string(), header, looks: name, separator: c });
        }
    }
    let mut header: Vec<String> = Vec::with_capacity(header_rec.len());
    for name in header_rec.iter() {
        let name = name.trim_start_matches('\u{feff}').to_string();
        if header.contains(&name) {
            match duplicates {
                Duplicates::Reject => return Err(Error::DuplicateColumn { path: source.to_string(), column: name }),
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
    Ok(header)
}

/// Parses a numeric cell; `None` when it is not a number.
pub fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok()
}

/// Writes `v` into `buf` (cleared first) as `format!("{v}")` would: the shortest text that parses back to
/// `v`, how a number from memory becomes a cell the encoders read like a file's. A whole number below
/// 2^53 takes the integer formatter (the same digits, faster); -0 keeps its sign on the float path; a
/// magnitude below 1e-5 or from 1e16 up takes the exponent form (`1e308`, not 309 digits).
pub fn number_text(v: f64, buf: &mut String) {
    use std::fmt::Write;
    buf.clear();
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 && !(v == 0.0 && v.is_sign_negative()) {
        write!(buf, "{}", v as i64)
    } else if v.is_finite() && v != 0.0 && !(1e-5..1e16).contains(&v.abs()) {
        // `1e308`, not three hundred digits (in a message, a category); it parses back the same.
        write!(buf, "{v:e}")
    } else {
        write!(buf, "{v}")
    }
    .expect("writing to a String");
}

/// Sorts values numerically when all are numbers, otherwise lexicographically. Used to give target and
/// group values a stable, documented order (so `0 < 1`, `Female < Male`).
pub fn sort_values(values: &mut [String]) {
    if values.iter().all(|v| parse_number(v).is_some()) {
        values.sort_by(|a, b| {
            parse_number(a).unwrap().partial_cmp(&parse_number(b).unwrap()).unwrap_or(std::cmp::Ordering::Equal)
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
    fn numbers_appended_to_numbers_stay_numbers() {
        let mut a = Column::from_numbers(vec![1.5, f64::NAN]).unwrap();
        let _ = a.get(0); // texts written once...
        assert!(a.extend(&Column::from_numbers(vec![3.0]).unwrap()));
        let v = a.numbers().expect("still a column of numbers");
        assert_eq!((v.len(), v[0], v[2]), (3, 1.5, 3.0));
        assert!(a.missing(1) && !a.missing(2));
        assert_eq!((a.get(0), a.get(2)), ("1.5", "3")); // ...and again after the append
        let mut t = Column::from_cells(["x"]);
        assert!(t.extend(&Column::from_numbers(vec![2.0]).unwrap()));
        assert!(t.numbers().is_none());
        assert_eq!(t.get(1), "2");
    }

    #[test]
    fn a_dictionary_column_reads_like_its_cells_through_every_change() {
        let dict = |values: &[&str], codes: Vec<u32>| Column::from_dictionary(Column::from_cells(values), codes);
        let mut a = dict(&["x", "y"], vec![1, 0, 1]);
        assert_eq!(a, Column::from_cells(["y", "x", "y"]));
        // Another dictionary: its values merged, codes remapped, still a dictionary.
        assert!(a.extend(&dict(&["z", "y"], vec![0, 1])));
        assert_eq!(a, Column::from_cells(["y", "x", "y", "z", "y"]));
        let (values, codes) = a.dictionary().expect("still a dictionary");
        assert_eq!((values.len(), codes), (3, &[1, 0, 1, 2, 1][..]));
        a.retain(&[true, false, true, true, false]);
        assert_eq!(a, Column::from_cells(["y", "y", "z"]));
        assert!(a.missing(0) == is_missing("y") && a.number(0).is_none());
        // Text or numbers appended, or a cell pushed: the cells written out as text.
        let mut b = a.clone();
        assert!(b.extend(&Column::from_numbers(vec![2.5]).unwrap()));
        assert_eq!(b, Column::from_cells(["y", "y", "z", "2.5"]));
        assert!(b.dictionary().is_none());
        let mut c = Column::from_cells(["w"]);
        assert!(c.extend(&a));
        assert_eq!(c, Column::from_cells(["w", "y", "y", "z"]));
        assert!(a.push("NA") && a.missing(3));
        assert_eq!(a, Column::from_cells(["y", "y", "z", "NA"]));
    }

    #[test]
    fn number_text_is_the_display_form() {
        let mut buf = String::new();
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = vec![0.0, -0.0, 1.0, -1.0, 39.0, 1e15, 9_007_199_254_740_991.0, 9_007_199_254_740_992.0];
        values.extend([1e21, 0.1, -2.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, f64::MAX]);
        for _ in 0..100_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            values.push((r >> 11) as f64 * if r & 1 == 0 { 1.0 } else { -1.0 }); // whole numbers up to 2^53
            values.push(f64::from_bits(r)); // any bits
        }
        for v in values {
            number_text(v, &mut buf);
            let whole = v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0;
            if !whole && v.is_finite() && v != 0.0 && !(1e-5..1e16).contains(&v.abs()) {
                // Very large or small: the exponent form, which parses back to the same value.
                assert_eq!(buf, format!("{v:e}"), "{v:?}");
                assert_eq!(buf.parse::<f64>().unwrap(), v, "{v:?}");
            } else {
                assert_eq!(buf, format!("{v}"), "{v:?}");
            }
        }
        number_text(1e308, &mut buf);
        assert_eq!(buf, "1e308");
    }

    #[test]
    fn reads_trimmed_cells_and_lines() {
        let t = read("a, b\n1, x\n\n2,\"y, z\"\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(t.columns[1].iter().collect::<Vec<_>>(), vec!["x", "y, z"]);
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
        assert!(matches!(read("a,a\n1,2\n"), Err(Error::DuplicateColumn { .. })));
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

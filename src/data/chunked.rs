//! A whole CSV file read in blocks, each cut into pieces of whole records that are parsed in parallel into typed
//! cells: a column whose cells are all plain decimal numbers (text that [`number_text`](super::table::number_text)
//! writes back unchanged, e.g. `-0.25`, `42`) is held as numbers, parsed once here; a column of text as a
//! dictionary of its distinct values (up to [`DICTIONARY_MAX`](super::table::DICTIONARY_MAX)); any other column as
//! its text cells, as the sequential reader ([`RawTable::read_with`]) holds them. The table, its line numbers and
//! its errors are the sequential reader's (`tests` compares the two); the cells' types only spare the encoders a
//! second parse.
//!
//! A cut must fall between records: a line break inside a quoted field is not one. The cuts follow the
//! quotes (a quote opens a field at its start and closes it before a separator or a line break); a block
//! whose quotes do not follow that rule (a quote inside an unquoted field, text after a closing quote) is
//! read in one piece, up to where the csv crate's own parser ends its last whole record.

use super::table::{csv_message, header_names, separator, Column, Duplicates, RawTable, TextBuilder};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::io::Read;

/// Bytes read per block (more when a record is longer): the text held at once besides the table.
const BLOCK: usize = 32 << 20;

/// How the blocks are cut and read (tests make them small to put cuts everywhere).
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// Bytes per block.
    pub block: usize,
    /// Pieces per block.
    pub pieces: usize,
}

impl Plan {
    /// Blocks of [`BLOCK`] bytes, four pieces per thread.
    pub fn default_for_threads() -> Plan {
        Plan { block: BLOCK, pieces: 4 * rayon::current_num_threads() }
    }
}

/// Reads a whole CSV stream as [`RawTable::read_with`] does, in parallel.
pub(super) fn read<R: Read>(
    reader: R,
    source: &str,
    duplicates: Duplicates,
    delimiter: Option<char>,
    plan: Plan,
) -> Result<RawTable> {
    let mut whole: Option<RawTable> = None;
    for_each_piece(reader, source, duplicates, delimiter, plan, |piece| {
        match whole.as_mut() {
            None => whole = Some(piece),
            Some(table) => append(table, piece)?,
        }
        Ok(())
    })?;
    Ok(whole.expect("a piece is always passed on"))
}

/// Calls `f` with each piece of a CSV stream, in order, as a table of its own (the header, the cells, the
/// rows' lines in the file), at least once (a file without rows gives one empty piece): how a file is read
/// whole ([`read`]) or streamed. The pieces of a block are parsed in parallel, so `f` sees one block's
/// pieces after they are all parsed; their errors are the sequential reader's, the first in the file.
pub(super) fn for_each_piece<R: Read>(
    mut reader: R,
    source: &str,
    duplicates: Duplicates,
    delimiter: Option<char>,
    plan: Plan,
    mut f: impl FnMut(RawTable) -> Result<()>,
) -> Result<()> {
    let sep = separator(delimiter)?;
    let io = |e: std::io::Error| Error::Csv { path: source.to_string(), line: 0, message: e.to_string() };
    let mut buf: Vec<u8> = Vec::new();
    let mut at_eof = fill(&mut reader, &mut buf, plan.block).map_err(io)?;
    // The header: read as the sequential reader reads it, from a block holding all of it.
    let (header, start) = loop {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .delimiter(sep)
            .from_reader(&buf[..]);
        let rec = rdr.headers().cloned();
        let end = rdr.position().byte() as usize;
        if end < buf.len() || at_eof {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| line_at(&buf, p.byte() as usize, 1));
                Error::Csv { path: source.to_string(), line, message: csv_message(&e) }
            })?;
            break (header_names(&rec, source, duplicates, delimiter)?, end);
        }
        let more = buf.len() + plan.block;
        at_eof = fill(&mut reader, &mut buf, more).map_err(io)?;
    };
    // The 1-based line the data left in `buf` from `start` begins on.
    let mut line = 1 + newlines(&buf[..start]);
    buf.drain(..start);
    loop {
        // Irregular quoting: the block's whole records found as the csv crate finds them, in one piece.
        let scan = scan(&buf, sep, plan.pieces, at_eof)
            .unwrap_or_else(|| Scan { cuts: Vec::new(), end: if at_eof { buf.len() } else { records_end(&buf, sep) } });
        if scan.end == 0 && !at_eof {
            // Not one whole record yet: read on.
            let more = buf.len() + plan.block;
            at_eof = fill(&mut reader, &mut buf, more).map_err(io)?;
            continue;
        }
        let data = &buf[..scan.end];
        let bounds: Vec<usize> = std::iter::once(0).chain(scan.cuts).chain(std::iter::once(scan.end)).collect();
        let (firsts, next_line) = first_lines(data, &bounds, line);
        let pieces: Vec<Result<(Vec<Column>, Vec<u64>)>> = (bounds.windows(2).zip(&firsts))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(w, &first)| parse_piece(&data[w[0]..w[1]], first, &header, source, sep))
            .collect();
        for piece in pieces {
            let (columns, lines) = piece?;
            f(RawTable { source: source.to_string(), header: header.clone(), columns, lines })?;
        }
        line = next_line;
        buf.drain(..scan.end);
        if at_eof && buf.is_empty() {
            return Ok(());
        }
        if !at_eof {
            at_eof = fill(&mut reader, &mut buf, plan.block).map_err(io)?;
        }
    }
}

/// Where the last whole record of `data` (which starts at a record's start) ends, as the csv crate's
/// parser sees it (the cuts of a block whose quotes [`scan`] cannot follow); 0 when none ends in it.
fn records_end(data: &[u8], sep: u8) -> usize {
    use csv_core::ReadRecordResult as R;
    let mut rdr = csv_core::ReaderBuilder::new().delimiter(sep).build();
    // The fields are not kept: the output buffers are reused whenever they fill.
    let (mut out, mut ends) = (vec![0u8; 1 << 16], vec![0usize; 1 << 10]);
    let (mut at, mut end) = (0, 0);
    loop {
        let (result, read, _, _) = rdr.read_record(&data[at..], &mut out, &mut ends);
        at += read;
        match result {
            R::Record => end = at,
            R::OutputFull | R::OutputEndsFull => {}
            R::InputEmpty | R::End => return end,
        }
    }
}

/// Reads until `buf` holds `size` bytes or the stream ends; whether it ended.
fn fill<R: Read>(reader: &mut R, buf: &mut Vec<u8>, size: usize) -> std::io::Result<bool> {
    let want = size.saturating_sub(buf.len());
    let got = reader.by_ref().take(want as u64).read_to_end(buf)?;
    Ok(got < want)
}

/// Number of line feeds in `bytes`.
fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The line of the first byte at or after `at` that is not a line break, counting from `first` at the
/// start of `bytes` (a record's recorded start can precede the blank lines the reader skipped).
fn line_at(bytes: &[u8], at: usize, first: u64) -> u64 {
    first + newlines(&bytes[..past_breaks(bytes, at)])
}

/// The first position at or after `at` (at most the end) that is not a line break.
fn past_breaks(bytes: &[u8], at: usize) -> usize {
    let at = at.min(bytes.len());
    at + bytes[at..].iter().take_while(|&&b| b == b'\n' || b == b'\r').count()
}

/// The first line of each piece between `bounds`, the first starting on `first`, and the line after the
/// last piece.
fn first_lines(data: &[u8], bounds: &[usize], first: u64) -> (Vec<u64>, u64) {
    let counts: Vec<u64> = bounds.par_windows(2).map(|w| newlines(&data[w[0]..w[1]])).collect();
    let mut line = first;
    let firsts = counts
        .iter()
        .map(|&n| {
            line += n;
            line - n
        })
        .collect();
    (firsts, line)
}

/// Where a block of data (starting at a record's start) may be cut.
#[derive(Debug, PartialEq)]
struct Scan {
    /// Cut points inside `..end`, increasing, each just after a line feed that ends a record.
    cuts: Vec<usize>,
    /// The end of the last whole record (the whole block at the end of the stream).
    end: usize,
}

/// The cuts of `data` into about `pieces` pieces of whole records, and where its whole records end;
/// `None` when a quote does not follow the rule that makes the cuts exact (the module's note).
fn scan(data: &[u8], sep: u8, pieces: usize, at_eof: bool) -> Option<Scan> {
    // Quoted fields holding a line feed (whose line feeds end nothing), and where an unclosed one opens.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut open_at = None;
    let ends_field = |b: u8| b == sep || b == b'\n' || b == b'\r';
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'"', &data[i..]) {
        let q = i + k;
        if q > 0 && !ends_field(data[q - 1]) {
            return None; // a quote inside an unquoted field: a literal to the csv crate
        }
        let mut j = q + 1;
        let close = loop {
            match memchr::memchr(b'"', &data[j..]) {
                None => break None,
                Some(k) => {
                    let c = j + k;
                    match data.get(c + 1) {
                        Some(b'"') => j = c + 2, // an escaped quote
                        Some(&b) if ends_field(b) => break Some(c),
                        Some(_) => return None, // text after the closing quote
                        // The last byte: closing only if nothing follows (or an escape, read on).
                        None => break at_eof.then_some(c),
                    }
                }
            }
        };
        let Some(c) = close else {
            open_at = Some(q);
            break;
        };
        if memchr::memchr(b'\n', &data[q..c]).is_some() {
            spans.push((q, c));
        }
        i = c + 1;
    }
    // A line feed at `p` ends a record unless a quoted field holds it.
    let quoted = |p: usize| {
        let k = spans.partition_point(|&(open, _)| open < p);
        k > 0 && p < spans[k - 1].1
    };
    let limit = open_at.unwrap_or(data.len());
    let end = if at_eof {
        data.len()
    } else {
        let mut end = 0;
        let mut p = limit;
        while let Some(nl) = memchr::memrchr(b'\n', &data[..p]) {
            if !quoted(nl) {
                end = nl + 1;
                break;
            }
            p = nl;
        }
        end
    };
    let cut_limit = end.min(limit);
    let mut cuts = Vec::new();
    for k in 1..pieces {
        let mut from = (k * cut_limit / pieces).max(cuts.last().copied().unwrap_or(0));
        while let Some(off) = memchr::memchr(b'\n', &data[from..cut_limit]) {
            let nl = from + off;
            if !quoted(nl) {
                if nl + 1 < cut_limit && cuts.last() != Some(&(nl + 1)) {
                    cuts.push(nl + 1);
                }
                break;
            }
            from = nl + 1;
        }
    }
    Some(Scan { cuts, end })
}

/// The cells of one piece of whole records, column by column, and each record's line.
fn parse_piece(bytes: &[u8], first: u64, header: &[String], source: &str, sep: u8) -> Result<(Vec<Column>, Vec<u64>)> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(sep).from_reader(bytes);
    let mut sinks: Vec<Sink> = (0..header.len()).map(|_| Sink::default()).collect();
    let mut lines = Vec::new();
    let mut rec = csv::ByteRecord::new();
    // Line feeds counted up to `seen`, incrementally: records come in order.
    let (mut seen, mut line) = (0usize, first);
    let mut line_of = |at: usize| {
        let at = past_breaks(bytes, at);
        line += newlines(&bytes[seen..at]);
        seen = at;
        line
    };
    let bad = |line: u64, message: String| Error::Csv { path: source.to_string(), line, message };
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| line_of(p.byte() as usize));
                return Err(bad(line, csv_message(&e)));
            }
        }
        let line = line_of(rec.position().map_or(0, |p| p.byte() as usize));
        if rec.len() != header.len() {
            return Err(bad(line, format!("the row has {} fields but the header has {}", rec.len(), header.len())));
        }
        for (c, field) in rec.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(field) else {
                return Err(bad(line, format!("field {} is not valid UTF-8", c + 1)));
            };
            if !sinks[c].push(text.trim()) {
                return Err(bad(line, format!("column '{}' holds more than 4 GiB of text", header[c])));
            }
        }
        lines.push(line);
    }
    Ok((sinks.into_iter().map(Sink::finish).collect(), lines))
}

/// Appends a piece to the table.
fn append(table: &mut RawTable, piece: RawTable) -> Result<()> {
    for (c, col) in piece.columns.into_iter().enumerate() {
        let whole = &mut table.columns[c];
        let ok = if whole.is_empty() {
            *whole = col;
            true
        } else {
            whole.extend(&col)
        };
        if !ok {
            return Err(Error::Csv {
                path: table.source.clone(),
                line: piece.lines.first().copied().unwrap_or(0),
                message: format!("column '{}' holds more than 4 GiB of text", table.header[c]),
            });
        }
    }
    table.lines.extend(piece.lines);
    Ok(())
}

/// One column's cells of a piece: numbers while every cell is a plain decimal ([`plain_number`]), text
/// from the first that is not (the numbers before it written back as the text they were read from); a
/// column whose first cell is not a number is built by a [`TextBuilder`] (a dictionary of its values while
/// they are few).
enum Sink {
    Numbers(Vec<f64>),
    Texts(TextBuilder),
}

impl Default for Sink {
    fn default() -> Self {
        Sink::Numbers(Vec::new())
    }
}

impl Sink {
    /// Appends a trimmed cell; `false` when the column would pass 4 GiB of text.
    fn push(&mut self, cell: &str) -> bool {
        match self {
            Sink::Texts(texts) => texts.push(cell),
            Sink::Numbers(numbers) => {
                if let Some(v) = plain_number(cell) {
                    numbers.push(v);
                    return true;
                }
                let numbers = std::mem::take(numbers);
                let mut texts =
                    if numbers.is_empty() { TextBuilder::default() } else { TextBuilder::after_numbers(numbers) };
                let pushed = texts.push(cell);
                *self = Sink::Texts(texts);
                pushed
            }
        }
    }

    fn finish(self) -> Column {
        match self {
            Sink::Numbers(numbers) => {
                Column::from_numbers(numbers).expect("a piece's numbers are far from 4 GiB of text")
            }
            Sink::Texts(texts) => texts.finish(),
        }
    }
}

/// The value of a cell that is a plain decimal: an optional `-`, digits without a leading zero (or one zero), and
/// optionally `.` and digits not ending in zero; at most 15 significant digits, and at least 1e-5 in magnitude
/// unless whole. Such a text is exactly what [`number_text`](super::table::number_text) writes for its value (the
/// shortest text that parses back: 15 digits tell doubles apart), and its value is an exact integer over an exact
/// power of ten, so one division rounds it correctly, as `str::parse` does. `None` for any other text (which stays
/// text and is parsed by the encoders as before).
pub(super) fn plain_number(cell: &str) -> Option<f64> {
    let b = cell.as_bytes();
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let int_len = digits.iter().take_while(|d| d.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && digits[0] == b'0') {
        return None;
    }
    let frac = match digits.get(int_len) {
        None => &[][..],
        Some(b'.') => &digits[int_len + 1..],
        Some(_) => return None,
    };
    if digits.len() > int_len && (frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) || frac.ends_with(b"0")) {
        return None;
    }
    let whole_zero = int_len == 1 && digits[0] == b'0';
    // Zeros before the first significant digit: the integer part's lone zero and the fraction's leading ones.
    let leading = if whole_zero { 1 + frac.iter().take_while(|&&d| d == b'0').count() } else { 0 };
    let significant = (int_len + frac.len()).saturating_sub(leading);
    if significant > 15 || (whole_zero && !frac.is_empty() && leading - 1 > 4) {
        return None;
    }
    let mantissa = digits[..int_len].iter().chain(frac).fold(0u64, |m, &d| m * 10 + u64::from(d - b'0'));
    const POW10: [f64; 20] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19];
    let v = mantissa as f64 / POW10[frac.len()];
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::{number_text, DICTIONARY_MAX};

    fn sequential(text: &[u8], delimiter: Option<char>) -> Result<RawTable> {
        RawTable::read_with(text, "t.csv", Duplicates::Reject, delimiter)
    }

    fn chunked(text: impl AsRef<[u8]>, delimiter: Option<char>, plan: Plan) -> Result<RawTable> {
        read(text.as_ref(), "t.csv", Duplicates::Reject, delimiter, plan)
    }

    /// The same header, cells (as text), lines, or the same error message.
    fn same(text: impl AsRef<[u8]>, delimiter: Option<char>, plan: Plan) {
        let text = text.as_ref();
        let want = sequential(text, delimiter);
        match (chunked(text, delimiter, plan), want) {
            (Ok(got), Ok(want)) => {
                assert_eq!(got.header, want.header, "{text:?} {plan:?}");
                assert_eq!(got.lines, want.lines, "{text:?} {plan:?}");
                assert_eq!(got.columns, want.columns, "{text:?} {plan:?}");
            }
            (got, want) => {
                let got = got.map(|_| ()).map_err(|e| e.to_string());
                let want = want.map(|_| ()).map_err(|e| e.to_string());
                assert_eq!(got, want, "{text:?} {plan:?}");
            }
        }
    }

    #[test]
    fn a_plain_number_is_the_text_its_value_writes_and_parses_as_str_parse_does() {
        let mut r = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut buf = String::new();
        let mut accepted = 0;
        for _ in 0..400_000 {
            let x = next();
            // Values as data files hold them: a few digits at various scales, and any double.
            let v = match x % 4 {
                0 => (x >> 20) as f64 % 1e6 / [1.0, 10.0, 100.0, 1e3, 1e5, 1e7][(x >> 8) as usize % 6],
                1 => f64::from_bits(x),
                2 => ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0,
                _ => ((x >> 30) as i64 - (1 << 33)) as f64,
            };
            number_text(v, &mut buf);
            let texts = [buf.clone(), format!("{v:.3}"), format!("{:.2}", v * 1e-4), format!("{}", (v as i64) % 1000)];
            for t in &texts {
                if let Some(p) = plain_number(t) {
                    accepted += 1;
                    assert_eq!(p.to_bits(), t.parse::<f64>().unwrap().to_bits(), "{t}");
                    let mut back = String::new();
                    number_text(p, &mut back);
                    assert_eq!(&back, t, "{t}");
                }
            }
        }
        assert!(accepted > 600_000, "{accepted}");
        for t in ["0", "-0", "7", "-42", "0.5", "-0.25", "0.00001", "123456789012345", "1.23456789012345"] {
            assert!(plain_number(t).is_some(), "{t}");
        }
        for t in [
            "",
            "-",
            "+1",
            "01",
            "1.",
            ".5",
            "1.0",
            "1.50",
            "1e5",
            "0.000001",
            "1234567890123456",
            "1.2.3",
            "NaN",
            "inf",
            "1_0",
            " 1",
            "0x10",
            "-.5",
            "0.0",
        ] {
            assert!(plain_number(t).is_none(), "{t}");
        }
    }

    #[test]
    fn the_parallel_reader_gives_the_sequential_tables_lines_and_errors() {
        let cases = [
            "a,b\n1,x\n2,y\n3,z\n",
            "a, b\n1, x\n\n2,\"y, z\"\n",
            "a,b\r\n1.5,2\r\n-3,4\r\n\r\n5,6",
            "\u{feff}a,b\n1,\"multi\nline\"\n2,\"q\"\"uote\"\n3,\"\"\n",
            "a,b\n1,2\n3\n4,5\n",
            "a,b\n1,2\n3,4,5\n",
            "a,b\n1,2\n\"open,3\n4,5\n",
            "a,b\n1,x\"y\n2,3\n",
            "a,b\n1,\"x\"y\n2,3\n",
            "a;b\n1;2\n",
            "",
            "a,a\n1,2\n",
            "a,b\n",
            "a,b\n1,NA\n2,?\n1.0,3\n01,4\n 7 ,\t8\t\n",
            "x,y,z\n0.1,-0,5\n0.10,1e3,5\n0.000001,1,2\n",
            "a,b\n\n\n1,2\n\n3,4\n\n",
        ];
        let plans = [Plan { block: 1 << 20, pieces: 1 }, Plan { block: 4, pieces: 3 }, Plan { block: 7, pieces: 2 }];
        for text in cases {
            for plan in plans {
                same(text, None, plan);
            }
        }
        same("a\tb\n1\t2\n", Some('\t'), plans[1]);
        same(b"a,b\n1,2\n3,\xff\n", None, plans[1]);
        same(b"a,\xffb\n1,2\n", None, plans[0]);
        same("a\n1\n\n2\n", None, plans[2]);
        // Generated files: numbers, text, quotes, missing cells, blank lines and line endings of both kinds,
        // read in blocks and pieces of many sizes.
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r % n
        };
        for case in 0..300 {
            let mut text = String::from("p,q,r\n");
            for _ in 0..next(40) {
                let cells: Vec<String> = (0..3)
                    .map(|_| match next(9) {
                        0 => String::new(),
                        1 => format!("\"t{},{}\"", next(10), next(3)),
                        2 => "\"two\nlines\"".into(),
                        3 => format!("{}.{}", next(100), next(100)),
                        4 => "?".into(),
                        5 => format!(" {} ", next(1000)),
                        _ => format!("{}", next(50) as f64 / 8.0 - 3.0),
                    })
                    .collect();
                text.push_str(&cells.join(","));
                text.push_str(if next(5) == 0 { "\r\n" } else { "\n" });
                if next(10) == 0 {
                    text.push('\n');
                }
            }
            let plan = Plan { block: 1 + next(200) as usize, pieces: 1 + next(5) as usize };
            assert!(scan(text.as_bytes(), b',', 2, true).is_some(), "regular quoting is cut by its quotes: {text:?}");
            same(&text, None, plan);
            if case % 50 == 0 {
                same(&text, None, Plan::default_for_threads());
            }
        }
    }

    #[test]
    fn plain_numbers_are_held_as_numbers_and_other_columns_as_text() {
        let t = chunked("a,b,c\n1,x,1.0\n-2.5,y,2\n", None, Plan::default_for_threads()).unwrap();
        assert_eq!(t.columns[0].numbers(), Some(&[1.0, -2.5][..]));
        assert!(t.columns[1].numbers().is_none() && t.columns[2].numbers().is_none());
        assert_eq!(t.columns[2].iter().collect::<Vec<_>>(), ["1.0", "2"]);
    }

    #[test]
    fn a_text_column_is_a_dictionary_until_it_has_too_many_values() {
        let mut text = String::from("a,b,c\n");
        for r in 0..(DICTIONARY_MAX + 10) {
            text.push_str(&format!("k{},id{r},{}\n", r % 3, r % 2));
        }
        // One piece: the identifier passes the limit and becomes text; many pieces: each piece's dictionary
        // stays under it, and so does their merge until it passes it.
        for plan in [Plan { block: 1 << 30, pieces: 1 }, Plan { block: 1 << 16, pieces: 3 }] {
            let t = chunked(&text, None, plan).unwrap();
            let (values, codes) = t.columns[0].dictionary().expect("a dictionary of three values");
            assert_eq!((values.len(), codes.len()), (3, DICTIONARY_MAX + 10));
            assert!(t.columns[1].dictionary().is_none(), "{plan:?}");
            assert_eq!(t.columns[1].get(DICTIONARY_MAX + 9), format!("id{}", DICTIONARY_MAX + 9));
            assert_eq!(t.columns[2].numbers().map(<[f64]>::len), Some(DICTIONARY_MAX + 10));
            same(&text, None, plan);
        }
    }

    #[test]
    fn a_block_of_irregular_quotes_is_read_in_one_piece_as_the_csv_crate_reads_it() {
        for text in ["a,b\n1,x\"y\n", "a,b\n1,\"x\"y\n", "a,b\n1, \"x\"\n"] {
            assert!(scan(text.as_bytes(), b',', 2, true).is_none(), "{text:?}");
        }
        // Stray quotes, quoted line breaks and text after a closing quote, cut into blocks of every size.
        let text = "a,b\n1,5'10\"\n2,\"two\nlines\"x\n3,\"q\"\"\"\n4,\"\n\"\n5, \"6\"\n".repeat(20);
        for block in 1..40 {
            same(&text, None, Plan { block, pieces: 3 });
        }
        assert_eq!(records_end(b"1,2\n3,\"4\n", b','), 4);
        assert_eq!(records_end(b"1,\"a\nb\"\n3", b','), 8);
    }
}

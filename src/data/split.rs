//! The stratified splits of docs/design.md, section 6. Tables: within every `(y, s)` cell, a seeded
//! shuffle, then `round(n_cell * certify_size)` rows to the certification split, `round(n_cell * test_size)`
//! to the test split and, of the rest, `round(n * val_size)` to validation. Images: within every class, a
//! seeded shuffle and a fixed number of images taken.

use super::TableSpec;
use crate::error::{Error, Result};
use crate::rng::{rng, Stream};
use crate::schema::Param;
use rand::seq::SliceRandom;
use rand::Rng;

/// Sorted row indices of the splits of a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Splits {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub val: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// Rows held out for the population certificate (empty unless `certify_size > 0`).
    pub certify: Vec<usize>,
}

/// Returns sorted row indices of (train, validation, test).
pub fn stratified(
    y: &[u8],
    s: &[u32],
    n_groups: usize,
    spec: &TableSpec,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let sp = splits(y, s, n_groups, spec)?;
    Ok((sp.train, sp.val, sp.test))
}

/// The splits of a table, the certification split included.
pub fn splits(y: &[u8], s: &[u32], n_groups: usize, spec: &TableSpec) -> Result<Splits> {
    let mut rng = rng(spec.seed, Stream::Split);
    // One cell per (label, group); at least the two labels of a binary target, in the same order.
    let classes = y.iter().max().map_or(2, |&top| (top as usize + 1).max(2));
    let mut cells: Vec<Vec<usize>> = vec![Vec::new(); classes * n_groups];
    for i in 0..y.len() {
        cells[y[i] as usize * n_groups + s[i] as usize].push(i);
    }
    let (mut train, mut val, mut test, mut certify) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for mut cell in cells {
        cell.shuffle(&mut rng);
        let n_cert = (cell.len() as f64 * spec.certify_size).round() as usize;
        let n_test = ((cell.len() as f64 * spec.test_size).round() as usize).min(cell.len() - n_cert);
        let rest = cell.len() - n_test - n_cert;
        let n_val = (rest as f64 * spec.val_size).round() as usize;
        let cell = &cell[..];
        let (c, t) = (n_cert, n_cert + n_test);
        certify.extend_from_slice(&cell[..c]);
        test.extend_from_slice(&cell[c..t]);
        val.extend_from_slice(&cell[t..t + n_val]);
        train.extend_from_slice(&cell[t + n_val..]);
    }
    if test.is_empty() {
        let why = format!("with {} rows the test split is empty", y.len());
        return Err(Error::param(Param::TestSize, spec.test_size, why));
    }
    if train.is_empty() {
        // Blame the share that took the last training rows.
        let (param, value) = match (val.is_empty(), certify.is_empty()) {
            (false, _) => (Param::ValSize, spec.val_size),
            (true, false) => (Param::CertifySize, spec.certify_size),
            (true, true) => (Param::TestSize, spec.test_size),
        };
        return Err(Error::param(param, value, format!("with {} rows this leaves no training rows", y.len())));
    }
    for v in [&mut train, &mut val, &mut test, &mut certify] {
        v.sort_unstable();
    }
    Ok(Splits { train, val, test, certify })
}

/// A class-stratified sample: `take(class_size)` rows of each class, in a seeded random order; returns the
/// chosen rows and the rest, each sorted.
pub fn by_class<R: Rng>(labels: &[u8], take: impl Fn(usize) -> usize, rng: &mut R) -> (Vec<usize>, Vec<usize>) {
    let (mut chosen, mut rest) = (Vec::new(), Vec::new());
    for c in 0..=255u8 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        if idx.is_empty() {
            continue;
        }
        idx.shuffle(rng);
        let k = take(idx.len()).min(idx.len());
        chosen.extend_from_slice(&idx[..k]);
        rest.extend_from_slice(&idx[k..]);
    }
    chosen.sort_unstable();
    rest.sort_unstable();
    (chosen, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Builtin, Source};

    fn spec(seed: u64) -> TableSpec {
        TableSpec {
            source: Source::Builtin { name: Builtin::Adult, sensitive: None },
            test_size: 0.3,
            val_size: 0.0,
            seed,
            include_sensitive: false,
            certify_size: 0.0,
            stream: false,
            missing: Default::default(),
        }
    }

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let y: Vec<u8> = (0..1000).map(|i| (i % 3 == 0) as u8).collect();
        let s: Vec<u32> = (0..1000).map(|i| (i % 7 < 2) as u32).collect();
        let (tr, va, te) = stratified(&y, &s, 2, &spec(0)).unwrap();
        assert!(va.is_empty());
        assert_eq!(tr.len() + te.len(), 1000);
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 1000);
        // Every (y, s) cell keeps its share within one row of rounding.
        for yy in 0..2u8 {
            for ss in 0..2u32 {
                let cell = |idx: &[usize]| idx.iter().filter(|&&i| y[i] == yy && s[i] == ss).count();
                let total = cell(&tr) + cell(&te);
                assert!((cell(&te) as f64 - 0.3 * total as f64).abs() <= 0.5 + 1e-9);
            }
        }
        assert_eq!(stratified(&y, &s, 2, &spec(0)).unwrap().2, te);
        assert_ne!(stratified(&y, &s, 2, &spec(1)).unwrap().2, te);
    }
}

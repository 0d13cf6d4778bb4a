//! The stratified split of DESIGN section 6: within every `(y, s)` cell, a seeded shuffle, then
//! `round(n_cell * test_size)` rows to the test split and, of the rest, `round(n * val_size)` to validation.

use super::DataSpec;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream of the split's RNG (the other streams seed initialisation, batches and noise).
const SPLIT_STREAM: u64 = 1;

/// Returns sorted row indices of (train, validation, test).
pub fn stratified(
    y: &[u8],
    s: &[u32],
    n_groups: usize,
    spec: &DataSpec,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(SPLIT_STREAM);
    let mut cells: Vec<Vec<usize>> = vec![Vec::new(); 2 * n_groups];
    for i in 0..y.len() {
        cells[y[i] as usize * n_groups + s[i] as usize].push(i);
    }
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for mut cell in cells {
        cell.shuffle(&mut rng);
        let n_test = (cell.len() as f64 * spec.test_size).round() as usize;
        let rest = cell.len() - n_test;
        let n_val = (rest as f64 * spec.val_size).round() as usize;
        test.extend_from_slice(&cell[..n_test]);
        val.extend_from_slice(&cell[n_test..n_test + n_val]);
        train.extend_from_slice(&cell[n_test + n_val..]);
    }
    if train.is_empty() || test.is_empty() {
        return Err(Error::option(
            "--test-size",
            spec.test_size,
            format!(
                "with {} rows this leaves an empty train or test split",
                y.len()
            ),
        ));
    }
    train.sort_unstable();
    val.sort_unstable();
    test.sort_unstable();
    Ok((train, val, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Builtin, Source};

    fn spec(seed: u64) -> DataSpec {
        DataSpec {
            source: Source::Builtin {
                name: Builtin::Adult,
                sensitive: None,
            },
            test_size: 0.3,
            val_size: 0.0,
            seed,
            include_sensitive: false,
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
                let cell =
                    |idx: &[usize]| idx.iter().filter(|&&i| y[i] == yy && s[i] == ss).count();
                let total = cell(&tr) + cell(&te);
                assert!((cell(&te) as f64 - 0.3 * total as f64).abs() <= 0.5 + 1e-9);
            }
        }
        assert_eq!(stratified(&y, &s, 2, &spec(0)).unwrap().2, te);
        assert_ne!(stratified(&y, &s, 2, &spec(1)).unwrap().2, te);
    }
}

//! Any bytes through the CSV-to-tensor path (read, drop missing, split, fit encoders, transform): an error
//! is fine, a panic is a bug, and every number that comes out must be finite.
#![no_main]

use fairbits::data::{prepare_table, Duplicates, RawTable, Roles, Source, TableSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(table) = RawTable::read(bytes, "fuzz.csv", Duplicates::Reject) else { return };
    if table.header.len() < 3 {
        return;
    }
    // Last column the target, the one before it the sensitive attribute, the rest features.
    let n = table.header.len();
    let tspec = Roles {
        target: table.header[n - 1].clone(),
        positive: None,
        sensitive: table.header[n - 2].clone(),
        features: table.header[..n - 2].to_vec(),
        categorical: vec![],
        bins: None,
        task: Default::default(),
    };
    let spec = TableSpec {
        source: Source::Csv {
            path: "fuzz.csv".into(),
            target: String::new(),
            sensitive: String::new(),
            sensitive_bins: None,
            positive: None,
            categorical: vec![],
            drop: vec![],
            delimiter: None,
            task: Default::default(),
        },
        test_size: 0.3,
        val_size: 0.2,
        seed: 0,
        include_sensitive: false,
        certify_size: 0.0,
        stream: false,
        missing: Default::default(),
    };
    if let Ok(p) = prepare_table(table, &tspec, &spec, None) {
        for d in [&p.train, &p.test] {
            assert_eq!(d.x.len(), d.n * d.d);
            assert!(d.x.iter().all(|v| v.is_finite()), "non-finite feature");
            assert!(d.s.iter().all(|&g| (g as usize) < d.n_groups));
            assert!(d.y.iter().all(|&y| (y as usize) < d.n_classes));
        }
    }
});

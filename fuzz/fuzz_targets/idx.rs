//! Any bytes through the IDX parser: an error or sizes that agree with the data, never a panic.
#![no_main]

use fairbits::data::parse_idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((dims, data)) = parse_idx(bytes, "fuzz.idx") {
        assert_eq!(dims.iter().product::<usize>(), data.len());
    }
});

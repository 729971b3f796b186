//! Any bytes: the reader opens, decodes and verifies them or returns a format error, within
//! the default limits (the per-byte element policy included) and libFuzzer's memory limit;
//! a panic or an abort is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relcode::format::{Limits, Reader};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Reader::from_bytes(data.to_vec(), Limits::default()) {
        for t in 0..r.tensors().map(|t| t.len()).unwrap_or(0) {
            let _ = r.decode_tensor(t);
        }
        let _ = r.verify();
    }
});

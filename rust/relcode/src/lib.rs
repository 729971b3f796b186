//! relcode core: deterministic random streams, relative-entropy-coding samplers and the
//! chunked bitstream. No Python here; `relcode-py` is a thin binding over this crate.
#![allow(clippy::excessive_precision)]
// Lane loops index several arrays in step; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod channel;
pub mod codes;
pub mod format;
pub mod stream;

/// Lowercase hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

//! relcode core: deterministic random streams, relative-entropy-coding samplers and the
//! chunked bitstream. No Python here; `relcode-py` is a thin binding over this crate.
#![allow(clippy::excessive_precision)]

pub mod stream;

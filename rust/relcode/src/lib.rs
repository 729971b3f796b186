//! relcode core: deterministic random streams, relative-entropy-coding samplers and the
//! chunked bitstream. No Python here; `relcode-py` is a thin binding over this crate.
//!
//! Relative entropy coding (REC) transmits a *sample* of a target distribution Q (a
//! posterior over weights, say) rather than a value: encoder and decoder share a coding
//! distribution P and a root seed, and the message is an index into randomness both sides
//! regenerate, about KL(Q || P) bits long. This crate holds the three pieces that have to
//! agree bit for bit between the two sides:
//!
//! - [`stream`]: deterministic random streams. Philox4x32-10 blocks keyed by (seed,
//!   purpose) and counted by (stream id, position), turned into uniforms, standard normals
//!   (Box-Muller) and normal quantiles (`ndtri`) by the crate's own elementary functions.
//!   Normative: spec/stream.md.
//! - [`codes`]: the integer codes of messages (fixed length, Elias-delta, zeta) with an
//!   MSB-first bit writer and a bounds-checked reader.
//! - [`channel`]: the REC samplers for diagonal Gaussian blocks (MRC, ORC, PFR, A* coding
//!   and its 1D variants, greedy and Poisson rejection samplers), each an encoder that
//!   searches for a message and a decoder that regenerates the sample from it. Normative
//!   for messages and decoding: spec/channel.md.
//! - [`format`](mod@format): the container (spec/format.md), beside those three: preamble,
//!   framed and checksummed chunks, header, index and digests. Bytes only: it calls no
//!   sampler and reads no stream.
//! - [`coding`]: on top of both, what a file's layouts and messages mean: the seeded block
//!   layout of each group, the messages' codes, and the encoder and decoder of whole files
//!   (groups coded and decoded in parallel).
//!
//! The layers build on one another one way: `stream` → `codes` → `channel`; `format` on
//! its own; `coding` on `channel` and `format`.
//!
//! # Determinism
//!
//! A decoded value is a function of the seed, the file (or message) and the options alone,
//! bit for bit, on every machine:
//!
//! - every value the decoder regenerates comes from a fixed sequence of IEEE-754 basic
//!   operations (+, -, ×, ÷, sqrt, conversions) in the order the spec writes them, with no
//!   fused multiply-add, and no transcendental function from the platform's math library
//!   (the logarithm, sine and cosine of the stream are the crate's own polynomials);
//! - every SIMD backend ([`stream::Backend`]) gives the scalar code's bits, and a backend
//!   the CPU lacks is refused with an error, never run;
//! - parallel work is split into fixed chunks and every value depends on its position
//!   alone, so the thread count changes neither decoded values nor encoded bytes.
//!
//! Encoders may use the platform's `exp` and `ln` to choose a message (that choice is not
//! normative); whatever message they choose decodes identically everywhere.
//!
//! # Examples
//!
//! Draw normals from a stream, code one Gaussian block and decode it back, then write and
//! read a small file:
//!
//! ```
//! use relcode::channel::{self, Keys, Method, Options, Target};
//! use relcode::coding::{self, EncodeInput, LayoutRule, PriorArg, TensorInput, TensorSource};
//! use relcode::format::{DigestMode, Limits, Reader};
//! use relcode::stream::{purpose, Backend, Stream};
//!
//! // 1. Normals 0 .. 8 of stream 3 of the candidate purpose under root seed 42.
//! let s = Stream::new(42, purpose::CANDIDATES, 3);
//! let mut z = [0f32; 8];
//! s.fill_normals(0, &mut z, Backend::Auto)?;
//! assert_eq!(z[5].to_bits(), s.normal(5).to_bits());
//!
//! // 2. One block of four weights: Q is the posterior, P the prior the decoder knows.
//! let (q_mean, q_std) = ([0.05, -0.02, 0.11, 0.0], [0.03, 0.04, 0.02, 0.05]);
//! let (p_mean, p_std) = ([0.0f32; 4], [0.1f32; 4]);
//! let target = Target { q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std };
//! let keys = Keys::new(42);
//! let opts = Options { bits: Some(12), ..Options::default() }; // 2^12 candidates
//! let mut sample = [0f32; 4];
//! let enc = channel::encode(Method::Mrc, &target, &keys, 0, &opts, &mut sample)?;
//! assert_eq!(enc.bits, 12);
//! let mut decoded = [0f32; 4];
//! channel::decode(Method::Mrc, &enc.message, &p_mean, &p_std, &keys, 0, &opts, &mut decoded)?;
//! assert_eq!(decoded.map(f32::to_bits), sample.map(f32::to_bits));
//!
//! // 3. A file holding one coded tensor of 100 weights.
//! let q_mean: Vec<f64> = (0..100).map(|i| 0.002 * (i % 50) as f64 - 0.05).collect();
//! let q_std = vec![0.03; 100];
//! let input = EncodeInput {
//!     tensors: vec![TensorInput {
//!         name: "w".into(),
//!         shape: vec![10, 10],
//!         source: TensorSource::Coded {
//!             q_mean: &q_mean,
//!             q_std: &q_std,
//!             p_mean: PriorArg::Scalar(0.0),
//!             p_std: PriorArg::Scalar(0.1),
//!         },
//!     }],
//!     seed: 42,
//!     method: Method::Pfr,
//!     options: Options { bits: Some(10), ..Options::default() },
//!     bits_per_block: 10.0,
//!     layout: LayoutRule::Fixed { block_size: None },
//!     chunk_size: 1 << 16,
//!     digest: DigestMode::Tensor,
//!     meta: None,
//!     max_excess: None,
//! };
//! let (bytes, report) = coding::encode(Vec::new(), &input)?;
//! assert_eq!(report.bytes, bytes.len() as u64);
//! let file = Reader::from_bytes(bytes, Limits::default())?;
//! let out = file.decode_all()?; // checks every digest too
//! assert_eq!(out.coded, report.coded); // what the encoder's samples were
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![allow(clippy::excessive_precision)]
// Lane loops index several arrays in step; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod channel;
pub mod codes;
pub mod coding;
pub mod format;
pub mod stream;

/// Lowercase hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

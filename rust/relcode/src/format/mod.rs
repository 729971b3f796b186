//! The relcode file format, version 1.0 (normative: spec/format.md).
//!
//! A file is a preamble (magic, version), framed chunks, a trailing index and an end magic.
//! Chunks carry a type, a length and a CRC32C, so a reader finds and checks each one on its
//! own and decodes coded groups in parallel; a writer streams chunks in any order and never
//! seeks back, because the index and the tensor digests come last.
//!
//! Why groups: a large weight set is cut into groups (contiguous element ranges of the coded
//! vector). Each group has its own seeded permutation and block layout, and block `j` of
//! group `g` reads the random streams with id `g · 2^32 + j`, so groups are encoded and
//! decoded independently, on any machine, in bounded memory, and the bytes never depend on
//! how the work was scheduled.
//!
//! This layer is the container only: bytes, structure, limits and checksums. It calls no
//! sampler and reads no random stream; what a group's layout and messages mean (the seeded
//! permutation, the messages' codes, encoding and decoding) is [`crate::coding`]'s, which
//! builds on this one (the only thing shared downwards is the stream spec version the
//! header records, `crate::stream::STREAM_VERSION`).
//!
//! Modules: `msgpack` (bounded reader, canonical writer), `header` (what the HEAD chunk
//! holds), `layout` (groups and their block sizes), `chunk` (frames and payloads), `write`
//! (streaming writer and digests), `read` (validating reader: structure, priors, raw
//! tensors, digests).

pub mod chunk;
pub mod header;
pub mod layout;
pub mod msgpack;
pub mod read;
pub mod write;

pub use chunk::ChunkType;
pub use header::{DigestMode, Dtype, Header, Prior, PriorValue, TensorInfo};
pub use layout::{Group, Rule};
pub use read::{Decoded, Reader, Source};
pub use write::{DigestBuilder, Writer};

use std::fmt;

/// First eight bytes of every file: `\x89RELC\r\n\x1a` (a non-ASCII byte, the name, and the
/// line-ending and end-of-file bytes that text-mode transfers would alter).
pub const MAGIC: [u8; 8] = *b"\x89RELC\r\n\x1a";
/// Last eight bytes of every file.
pub const END_MAGIC: [u8; 8] = *b"\x89RELCEND";
/// The major version this build writes and reads.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this build writes (readers accept any minor of their major).
pub const VERSION_MINOR: u16 = 0;
/// The channel spec version files record (spec/channel.md).
pub const CHANNEL_VERSION: u64 = 1;
/// Bytes of the preamble (magic, major, minor, reserved).
pub const PREAMBLE_LEN: usize = 16;
/// Bytes of a chunk frame before its payload.
pub const FRAME_LEN: usize = 16;
/// Bytes of the tail (index offset, end magic).
pub const TAIL_LEN: usize = 16;
/// Largest block dimension a file may hold (block sizes are stored as u16).
pub const MAX_BLOCK_DIM: usize = 65535;

/// Errors of the format and coding layers: one variant per failure; [`FormatError::class`]
/// sorts them into the classes the spec names.
#[derive(Clone, Debug, PartialEq)]
pub enum FormatError {
    /// The bytes do not start with the relcode magic: not a relcode file.
    NotRelcode,
    /// The file ends inside a structure (preamble, chunk, index or tail).
    Truncated(String),
    /// The last eight bytes are not the end magic: the file was cut or appended to.
    BadEndMagic,
    /// A major format version this build does not read.
    UnsupportedVersion {
        /// The major version in the preamble.
        major: u16,
        /// The minor version in the preamble.
        minor: u16,
    },
    /// A stream or channel spec version this build does not read.
    UnsupportedSpec {
        /// Which spec: `"stream"` or `"channel"`.
        what: &'static str,
        /// The version the header records.
        version: u64,
    },
    /// A chunk type this build does not know and that is not marked optional.
    UnknownChunk([u8; 4]),
    /// A method id, option, dtype or layout rule this build does not know, or a method
    /// this build cannot decode yet.
    Unsupported(String),
    /// A reserved field or padding bit is not zero.
    Reserved(String),
    /// A chunk's CRC32C does not match its bytes.
    Crc {
        /// The chunk's type.
        chunk: [u8; 4],
        /// Byte offset of the chunk's frame in the file.
        offset: u64,
    },
    /// A decoded tensor does not hash to the SHA-256 the file records.
    Digest {
        /// What failed: `tensor "name"` in `tensor` digest mode, the file's tensors in `all`
        /// mode.
        what: String,
    },
    /// The base file the file references is not available.
    BaseMissing(String),
    /// A base file was given whose SHA-256 is not the one the file references.
    BaseMismatch {
        /// The SHA-256 the file references, lowercase hexadecimal.
        want: String,
        /// The SHA-256 of the base file given, lowercase hexadecimal.
        got: String,
    },
    /// The file claims more than the reader's limits allow.
    Limit(String),
    /// The structure is inconsistent or a field has the wrong type or value.
    Malformed(String),
    /// A message cannot be read or decoded.
    Message {
        /// The group: the MSGS chunk's group id when the message is read, the stream group
        /// (`instance · groups + group` with instances) when it is decoded.
        group: u32,
        /// The message's index: within the MSGS chunk when it is read (instance by instance
        /// with instances), its block within the group when it is decoded.
        block: u64,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing failed.
    Io(String),
    /// An argument passed to a writer is invalid.
    InvalidInput(String),
    /// A sampler could not produce a sample within its limits (its iteration cap, or a tree
    /// node deeper than a message addresses): the target is too far from the coding
    /// distribution for the method.
    Sampler(String),
    /// The caller cancelled the work (an interrupt) before it was complete.
    Cancelled,
}

/// The class of a [`FormatError`]: the error classes the spec names (spec/format.md:
/// `FormatError`, `VersionError`, `ChecksumError`, `LimitError`) and the caller's side of a
/// failure (I/O, bad arguments, a sampler's limit, cancellation). Each binding maps a class
/// to one exception type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The file is malformed (`FormatError`).
    Format,
    /// The file needs a newer reader (`VersionError`).
    Version,
    /// A checksum or digest does not match (`ChecksumError`).
    Checksum,
    /// The file claims more than the reader's limits allow (`LimitError`).
    Limit,
    /// Reading or writing failed.
    Io,
    /// An argument is invalid.
    Input,
    /// A sampler could not produce a sample within its limits.
    Sampler,
    /// The caller cancelled the work.
    Cancelled,
}

impl ErrorClass {
    /// The name the spec and the conformance vectors use (`"FormatError"`, ...; `"OSError"`,
    /// `"InputError"`, `"SamplerError"` and `"CancelledError"` for the caller's side).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Format => "FormatError",
            ErrorClass::Version => "VersionError",
            ErrorClass::Checksum => "ChecksumError",
            ErrorClass::Limit => "LimitError",
            ErrorClass::Io => "OSError",
            ErrorClass::Input => "InputError",
            ErrorClass::Sampler => "SamplerError",
            ErrorClass::Cancelled => "CancelledError",
        }
    }
}

impl FormatError {
    /// The class of this error: the one rule that sorts failures (the bindings map classes to
    /// exception types; the conformance vectors name them).
    pub fn class(&self) -> ErrorClass {
        match self {
            FormatError::UnsupportedVersion { .. }
            | FormatError::UnsupportedSpec { .. }
            | FormatError::UnknownChunk(_)
            | FormatError::Unsupported(_) => ErrorClass::Version,
            FormatError::Crc { .. } | FormatError::Digest { .. } | FormatError::BaseMismatch { .. } => {
                ErrorClass::Checksum
            }
            FormatError::Limit(_) => ErrorClass::Limit,
            FormatError::Io(_) => ErrorClass::Io,
            FormatError::InvalidInput(_) => ErrorClass::Input,
            FormatError::Sampler(_) => ErrorClass::Sampler,
            FormatError::Cancelled => ErrorClass::Cancelled,
            FormatError::NotRelcode
            | FormatError::Truncated(_)
            | FormatError::BadEndMagic
            | FormatError::Reserved(_)
            | FormatError::BaseMissing(_)
            | FormatError::Malformed(_)
            | FormatError::Message { .. } => ErrorClass::Format,
        }
    }
}

fn tag(t: &[u8; 4]) -> String {
    t.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::NotRelcode => write!(f, "not a relcode file (the magic bytes are missing)"),
            FormatError::Truncated(w) => write!(f, "the file is truncated: {w}"),
            FormatError::BadEndMagic => {
                write!(f, "the file does not end with the relcode end magic: it was cut short or appended to")
            }
            FormatError::UnsupportedVersion { major, minor } => write!(
                f,
                "format version {major}.{minor} is not supported (this build reads {VERSION_MAJOR}.x); \
                 upgrade relcode"
            ),
            FormatError::UnsupportedSpec { what, version } => {
                write!(f, "{what} version {version} is not supported by this build; upgrade relcode")
            }
            FormatError::UnknownChunk(t) => {
                write!(f, "unknown required chunk type {:?}: the file needs a newer relcode", tag(t))
            }
            FormatError::Unsupported(w) => write!(f, "{w}; the file needs a newer relcode"),
            FormatError::Reserved(w) => write!(f, "reserved field is not zero: {w}"),
            FormatError::Crc { chunk, offset } => {
                write!(f, "CRC32C mismatch in the {} chunk at byte {offset}: the file is corrupt", tag(chunk))
            }
            FormatError::Digest { what } => write!(
                f,
                "{what} does not decode to the SHA-256 the file records: the file is corrupt or was \
                 decoded by a nonconforming implementation"
            ),
            FormatError::BaseMissing(w) => write!(f, "{w}"),
            FormatError::BaseMismatch { want, got } => {
                write!(f, "the base file has SHA-256 {got}, but the file references {want}")
            }
            FormatError::Limit(w) => write!(f, "{w} (a reader limit; raise it only for trusted files)"),
            FormatError::Malformed(w) => write!(f, "malformed file: {w}"),
            FormatError::Message { group, block, why } => {
                write!(f, "malformed file: message of block {block} of group {group}: {why}")
            }
            FormatError::Io(w) => write!(f, "{w}"),
            FormatError::InvalidInput(w) => write!(f, "{w}"),
            FormatError::Sampler(w) => write!(f, "{w}"),
            FormatError::Cancelled => write!(f, "cancelled before it was complete"),
        }
    }
}

impl std::error::Error for FormatError {}

impl From<std::io::Error> for FormatError {
    fn from(e: std::io::Error) -> FormatError {
        FormatError::Io(e.to_string())
    }
}

/// What a reader accepts. Every claim of the file is checked against these (and against the
/// bytes present) before anything is allocated for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest HEAD payload in bytes.
    pub max_header_bytes: u64,
    /// Most tensors in a file.
    pub max_tensors: u64,
    /// Most dimensions of one tensor.
    pub max_rank: u64,
    /// Longest tensor name in bytes.
    pub max_name_bytes: u64,
    /// Most elements over all tensors of a file: bounds what a decode allocates.
    pub max_elements: u64,
    /// Most elements of one group: bounds the memory of one group's permutation and decode.
    pub max_group_elements: u64,
    /// Deepest MessagePack nesting (the free-form metadata included).
    pub max_depth: u64,
    /// Decoder policy, not a format limit: most elements per byte of the file (with its
    /// base's bytes), beyond the first `ELEMENTS_FREE` elements; 0 turns it off. A coded
    /// element costs no bytes of its own (a block of 65535 elements can take a one-bit
    /// message), so without this a 500-byte file could make a decode allocate gigabytes.
    /// 4096 per byte is 1/512 bit per element: far fewer bits than any trained model
    /// needs (a 100M-parameter model must be at least 24 KiB).
    pub max_elements_per_byte: u64,
}

/// Elements any file may hold whatever its length (see `Limits::max_elements_per_byte`).
pub const ELEMENTS_FREE: u64 = 1 << 24;

impl Limits {
    /// Default limits, except that `max_elements` is `n` and the per-byte policy is off:
    /// what a caller that names its own element limit gets.
    pub fn with_max_elements(n: u64) -> Limits {
        Limits { max_elements: n, max_elements_per_byte: 0, ..Limits::default() }
    }

    /// The most elements a file of `bytes` bytes (its base included) may decode to.
    pub fn elements_for(&self, bytes: u64) -> u64 {
        if self.max_elements_per_byte == 0 {
            return self.max_elements;
        }
        let budget = self.max_elements_per_byte.saturating_mul(bytes).max(ELEMENTS_FREE);
        budget.min(self.max_elements)
    }

    /// Refuses `elements` in a file of `bytes` bytes beyond `elements_for(bytes)`.
    pub fn check_elements(&self, elements: u64, bytes: u64) -> Result<(), FormatError> {
        let most = self.elements_for(bytes);
        if elements > most {
            let why = if most < self.max_elements {
                format!(
                    "the file claims {elements} elements in {bytes} bytes, more than the {} per byte \
                     (at least {ELEMENTS_FREE}) this reader accepts; pass max_elements to decode it",
                    self.max_elements_per_byte
                )
            } else {
                format!("the file claims {elements} elements, more than the limit of {most} (max_elements)")
            };
            return Err(FormatError::Limit(why));
        }
        Ok(())
    }
}

/// A zeroed vector of `n` items, or a `LimitError` when this machine cannot hold it: sizes
/// that come from a file are allocated fallibly (a failed infallible allocation aborts).
pub fn try_zeroed<T: Clone + Default>(n: u64, what: &str) -> Result<Vec<T>, FormatError> {
    let oom = || {
        FormatError::Limit(format!(
            "cannot allocate {} bytes for {what}: not enough memory",
            n.saturating_mul(std::mem::size_of::<T>() as u64)
        ))
    };
    let n = usize::try_from(n).map_err(|_| oom())?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| oom())?;
    v.resize(n, T::default());
    Ok(v)
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 1 << 24,
            max_tensors: 1 << 20,
            max_rank: 32,
            max_name_bytes: 4096,
            max_elements: 1 << 31,
            max_group_elements: 1 << 26,
            max_depth: 32,
            max_elements_per_byte: 4096,
        }
    }
}

/// CRC32C (Castagnoli) of the concatenation of `parts`.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0u32, |c, p| crc32c::crc32c_append(c, p))
}

/// SHA-256 of little-endian float32 values, without copying them all at once.
pub fn sha256_f32(hasher: &mut sha2::Sha256, values: &[f32]) {
    use sha2::Digest;
    if cfg!(target_endian = "little") {
        // SAFETY: f32 has no padding; on little-endian targets its bytes are its LE encoding.
        let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, values.len() * 4) };
        hasher.update(bytes);
    } else {
        let mut buf = Vec::with_capacity(4096);
        for c in values.chunks(1024) {
            buf.clear();
            for v in c {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            hasher.update(&buf);
        }
    }
}

/// Lowercase hexadecimal of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

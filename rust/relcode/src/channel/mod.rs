//! Relative-entropy-coding samplers (normative for messages and decoding: spec/channel.md).
//!
//! Every method implements one contract: given a target Q and a coding distribution P
//! (diagonal Gaussians of one block), the root seed's keys and the block's stream id, the
//! encoder returns a message and the number of proposals it examined; the decoder takes
//! the message, P, the keys and the id, and regenerates the sample bit for bit. The
//! dispatcher here computes `code.sample` by running the decoder on the encoder's message,
//! so the two can never disagree.
//!
//! Entry points: [`encode`] and [`decode`] for one block, [`encode_batch`] and
//! [`decode_batch`] for many blocks of one dimension (in parallel, with results that never
//! depend on the thread count), [`decode_many`] for blocks of mixed sizes laid out back to
//! back, and [`write_message`] / [`read_message`] for the bits of a message.
//!
//! Decoding uses only the deterministic streams and the crate's own `ndtri`, so a message
//! decodes to the same bits on every machine and backend. Encoders of the exact samplers
//! use the platform's `exp` and `ln` to choose a message; that choice never affects how
//! any message decodes.
//!
//! # Examples
//!
//! An exact method (PFR) and a fixed-budget one (MRC with 2^10 candidates) on one block:
//!
//! ```
//! use relcode::channel::{decode, encode, Keys, Method, Options, Target};
//!
//! let (q_mean, q_std) = ([0.12, -0.30, 0.05], [0.05, 0.08, 0.10]);
//! let (p_mean, p_std) = ([0.0f32; 3], [0.2f32; 3]);
//! let target = Target { q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std };
//! let keys = Keys::new(42); // the root seed
//! let id = 7; // the block's stream id
//!
//! for (method, opts) in [
//!     (Method::Pfr, Options::default()),
//!     (Method::Mrc, Options { bits: Some(10), ..Options::default() }),
//! ] {
//!     let mut sample = [0f32; 3];
//!     let enc = encode(method, &target, &keys, id, &opts, &mut sample)?;
//!     // The decoder needs only P, the seed, the id, the options and the message.
//!     let mut out = [0f32; 3];
//!     decode(method, &enc.message, &p_mean, &p_std, &keys, id, &opts, &mut out)?;
//!     assert_eq!(out.map(f32::to_bits), sample.map(f32::to_bits));
//! }
//! # Ok::<(), relcode::channel::ChannelError>(())
//! ```

pub mod candidates;
pub mod gaussian;

mod agrs;
mod astar;
mod fixed;
mod gprs;
mod grs;
mod pfr;
pub mod pool;
pub mod quantile;

use crate::codes::{BitReader, BitWriter, CodeError, IndexCode};
use crate::stream::{derive_key, purpose, Backend, BackendError, Supported};
#[cfg(target_arch = "x86_64")]
use crate::stream::{Avx2Cpu, Avx512Cpu};
use gaussian::Block;
use rayon::prelude::*;
use std::fmt;

/// The coding methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Minimal random coding (MIRACLE): 2^bits candidates, index drawn by importance weight.
    Mrc,
    /// Ordered random coding (Theis and Yosri): MRC's candidates with sorted exponentials.
    Orc,
    /// Poisson functional representation (Li and El Gamal); truncated at 2^bits if `bits` is set.
    Pfr,
    /// A* coding with the global bound (equals PFR in distribution; log-space Gumbel process).
    Astar,
    /// A* coding with sample splitting (1D).
    AsStar,
    /// A* coding with dyadic splitting (1D).
    AdStar,
    /// Depth-limited AD* (1D, fixed-length heap index).
    DadStar,
    /// Greedy rejection sampling (Harsha et al.), 1D.
    Grs,
    /// Adaptive greedy rejection sampling (Flamich and Theis), 1D.
    Agrs,
    /// Greedy Poisson rejection sampling, global (1D).
    Gprs,
    /// Parallel GPRS over J sub-processes (1D).
    GprsParallel,
    /// Branch-and-bound GPRS, split-on-sample or dyadic (1D).
    GprsBnb,
}

/// What `methods()` reports.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// The method's name, as [`Method::name`] returns it and [`Method::parse`] reads it.
    pub name: &'static str,
    /// Exact samplers output samples distributed exactly as Q.
    pub exact: bool,
    /// Largest block dimension accepted (`None`: any).
    pub max_dim: Option<usize>,
    /// Whether the method spends a fixed 2^bits candidate budget (and a fixed-length message).
    pub fixed_budget: bool,
    /// Whether the method needs a bounded density ratio (every posterior std below the prior's).
    pub needs_bounded_ratio: bool,
    /// Expected runtime, in words.
    pub runtime: &'static str,
    /// What the message holds and how it is coded.
    pub message: &'static str,
}

impl Method {
    /// Every method, in the order of their stable ids: `Method::ALL[m.id() as usize] == m`.
    /// The order is part of the file format (spec/format.md, method ids) and never changes.
    pub const ALL: [Method; 12] = [
        Method::Mrc,
        Method::Orc,
        Method::Pfr,
        Method::Astar,
        Method::AsStar,
        Method::AdStar,
        Method::DadStar,
        Method::Grs,
        Method::Agrs,
        Method::Gprs,
        Method::GprsParallel,
        Method::GprsBnb,
    ];

    /// The method's lowercase name: `mrc`, `orc`, `pfr`, `astar`, `as_star`, `ad_star`,
    /// `dad_star`, `grs`, `agrs`, `gprs`, `gprs_parallel` or `gprs_bnb`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The method called `name` (exactly as [`Method::name`] spells it), or `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::channel::Method;
    ///
    /// assert_eq!(Method::parse("as_star"), Some(Method::AsStar));
    /// assert_eq!(Method::parse("AS*"), None);
    /// assert!(Method::ALL.iter().all(|&m| Method::parse(m.name()) == Some(m)));
    /// ```
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Stable numeric id used by the file format: the method's position in [`Method::ALL`]
    /// (0 `mrc` .. 11 `gprs_bnb`).
    pub fn id(self) -> u8 {
        Method::ALL.iter().position(|&m| m == self).unwrap() as u8
    }

    /// The method whose [`Method::id`] is `id`, or `None` for an id above 11.
    pub fn from_id(id: u8) -> Option<Method> {
        Method::ALL.get(id as usize).copied()
    }

    /// What the method is and needs: exactness, the largest block dimension, whether it
    /// has a fixed budget or needs a bounded density ratio, its runtime and its message.
    pub fn info(self) -> MethodInfo {
        let i = |name, exact, max_dim, fixed_budget, needs_bounded_ratio, runtime, message| MethodInfo {
            name,
            exact,
            max_dim,
            fixed_budget,
            needs_bounded_ratio,
            runtime,
            message,
        };
        match self {
            Method::Mrc => i("mrc", false, None, true, false, "2^bits candidates", "index, bits-bit fixed"),
            Method::Orc => i("orc", false, None, true, false, "2^bits candidates", "index, bits-bit fixed"),
            Method::Pfr => i(
                "pfr",
                true,
                None,
                false,
                true,
                "exp(D_inf) + 1 proposals on average; 2^bits when truncated (then approximate)",
                "arrival index, universal code; bits-bit fixed when truncated",
            ),
            Method::Astar => i(
                "astar",
                true,
                None,
                false,
                true,
                "exp(D_inf) + 1 proposals",
                "arrival index, universal code",
            ),
            Method::AsStar => {
                i("as_star", true, Some(1), false, true, "O(D_inf) nodes", "heap index, universal code")
            }
            Method::AdStar => {
                i("ad_star", true, Some(1), false, true, "~D_inf nodes", "heap index, universal code")
            }
            Method::DadStar => i(
                "dad_star",
                false,
                Some(1),
                false,
                true,
                "<= 2^(depth+1) nodes",
                "heap index, (depth+1)-bit fixed",
            ),
            Method::Grs => {
                i("grs", true, Some(1), false, true, "exp(D_inf) proposals", "proposal index, universal code")
            }
            Method::Agrs => i(
                "agrs",
                true,
                Some(1),
                false,
                true,
                "O(KL) proposals (empirical), flat in D_inf",
                "proposal bound (dyadic pair, universal code) and step index (universal code)",
            ),
            Method::Gprs => {
                i("gprs", true, Some(1), false, true, "exp(D_inf) proposals", "arrival index, universal code")
            }
            Method::GprsParallel => i(
                "gprs_parallel",
                true,
                Some(1),
                false,
                true,
                "exp(D_inf)/J + O(log J) rounds",
                "sub-process (log2 J bits) and its arrival index (universal code)",
            ),
            Method::GprsBnb => {
                i("gprs_bnb", true, Some(1), false, true, "O(KL) nodes", "heap index, universal code")
            }
        }
    }

    /// Whether this method, with these options, has a fixed-length message and 2^bits candidates.
    pub fn is_fixed_budget(self, opts: &Options) -> bool {
        matches!(self, Method::Mrc | Method::Orc) || (self == Method::Pfr && opts.bits.is_some())
    }

    /// The budget in bits of a method whose sample is only as good as a fixed, known message
    /// length: `bits` for the fixed-budget methods (2^bits candidates), `depth + 1` for
    /// dad_star (2^(depth+1) - 1 tree nodes). A block whose KL exceeds it is still coded,
    /// but approximately, and the further it exceeds it the further the sample lands from
    /// Q. `None` for the exact methods: their messages grow with the block's KL instead.
    pub fn budget_bits(self, opts: &Options) -> Option<u32> {
        if self.is_fixed_budget(opts) {
            opts.bits
        } else if self == Method::DadStar {
            opts.depth.map(|d| d + 1)
        } else {
            None
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How branch-and-bound GPRS splits a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// At the node's sample (Alg. 5): one child survives, no heap needed.
    Sample,
    /// At the P-median of the node (Alg. 6 with dyadic intervals): the index alone locates a node.
    Dyadic,
}

/// Method options. Each method reads the ones it documents and `validate` refuses the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Fixed budget: 2^bits candidates (required by mrc and orc; truncates pfr).
    pub bits: Option<u32>,
    /// Code of variable-length indices.
    pub index_code: IndexCode,
    /// Iteration cap; reaching it is an error, never a silently wrong sample.
    pub max_steps: u64,
    /// Depth limit of dad_star.
    pub depth: Option<u32>,
    /// Sub-processes J of gprs_parallel (a power of two).
    pub parallel: u32,
    /// Split rule of gprs_bnb.
    pub split: Split,
    /// Shared candidate pool (fixed-budget methods).
    pub pool: bool,
    /// SIMD backend of candidate generation and selection (never changes any result). Every
    /// entry point refuses one this CPU cannot run (`ChannelError::Backend`).
    pub backend: Backend,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bits: None,
            index_code: IndexCode::EliasDelta,
            max_steps: 1 << 24,
            depth: None,
            parallel: 4,
            split: Split::Sample,
            pool: false,
            backend: Backend::Auto,
        }
    }
}

/// Errors of the channel layer.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelError {
    /// Arguments are invalid (NaN, non-positive std, shapes, options).
    InvalidInput(String),
    /// The method cannot code this target (dimension, unbounded density ratio).
    Unsupported(String),
    /// The iteration cap was reached before a sample was accepted.
    IterationCap {
        /// The method whose search stopped.
        method: Method,
        /// The steps taken when it stopped: [`Options::max_steps`], or fewer when a
        /// method's own limit came first (a stream position beyond 2^64 for gprs_parallel,
        /// more than 2^21 open nodes for dyadic gprs_bnb).
        steps: u64,
    },
    /// A tree search needed a node deeper than a message can address (heap indices are 64-bit).
    DepthLimit {
        /// The method whose search stopped.
        method: Method,
        /// The deepest level a message addresses (62: heap indices stay below 2^63).
        depth: u32,
    },
    /// A message that no encoder with these options can produce.
    InvalidMessage(String),
    /// The options ask for a SIMD backend this CPU cannot run.
    Backend(BackendError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::InvalidInput(m)
            | ChannelError::Unsupported(m)
            | ChannelError::InvalidMessage(m) => f.write_str(m),
            ChannelError::Backend(e) => e.fmt(f),
            ChannelError::DepthLimit { method, depth } => write!(
                f,
                "{method} needed a tree node deeper than {depth} levels, the deepest a 64-bit heap index \
                 addresses: the target lies too far out in P's tail (a KL of roughly 50 bits or more in \
                 one dimension), which no 1D tree search reaches, whatever its split rule. Use a prior \
                 that covers the posterior (a larger prior std, or a prior mean nearer the posterior \
                 mean); a fixed-budget method (mrc, orc, pfr with bits) accepts the target but carries \
                 at most 32 bits per block, so its sample would land far from Q"
            ),
            ChannelError::IterationCap { method, steps } => write!(
                f,
                "{method} reached its iteration cap of {steps} steps without a sample; raise max_steps, \
                 or use a fixed-budget method (mrc, orc, pfr with bits)"
            ),
        }
    }
}

impl std::error::Error for ChannelError {}

impl From<BackendError> for ChannelError {
    fn from(e: BackendError) -> ChannelError {
        ChannelError::Backend(e)
    }
}

impl From<CodeError> for ChannelError {
    fn from(e: CodeError) -> ChannelError {
        ChannelError::InvalidMessage(e.to_string())
    }
}

/// The keys of every purpose of one root seed, derived once per call.
#[derive(Clone, Copy, Debug)]
pub struct Keys {
    /// The root seed the keys were derived from.
    pub seed: u64,
    /// Key of (seed, `CAND`): candidate normals, read by encoders and decoders.
    pub cand: [u32; 2],
    /// Key of (seed, `NODE`): node uniforms of the 1D tree samplers and agrs.
    pub node: [u32; 2],
    /// Key of (seed, `NOIS`): encoder-only noise; decoders never read it.
    pub noise: [u32; 2],
    /// Key of (seed, `POOL`): the shared candidate pools of the pool mode.
    pub pool: [u32; 2],
    /// Key of (seed, `XFRM`): the block-keyed transforms of the pool mode.
    pub xfrm: [u32; 2],
}

impl Keys {
    /// Derives the five keys of root seed `seed` (one Philox call each, `derive_key`).
    pub fn new(seed: u64) -> Keys {
        Keys {
            seed,
            cand: derive_key(seed, purpose::CANDIDATES),
            node: derive_key(seed, purpose::NODES),
            noise: derive_key(seed, purpose::NOISE),
            pool: derive_key(seed, purpose::POOL),
            xfrm: derive_key(seed, purpose::TRANSFORM),
        }
    }
}

/// What is transmitted for one block: the method's index and, for the methods that send
/// two numbers (gprs_parallel: the sub-process; agrs), a second field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Message {
    /// The main field (spec/channel.md section 3): the candidate index k < 2^bits of mrc,
    /// orc and truncated pfr; the arrival index n >= 1 of pfr, astar, grs, gprs and
    /// gprs_parallel; the heap index h >= 1 of as_star, ad_star, dad_star and gprs_bnb; the
    /// accepting step k >= 1 of agrs.
    pub index: u64,
    /// The second field: the sub-process j < J of gprs_parallel, the proposal bound b >= 1
    /// of agrs; 0 for every other method, which does not transmit it.
    pub aux: u64,
}

impl Message {
    /// A message of one field: `index`, with `aux` = 0.
    pub fn new(index: u64) -> Message {
        Message { index, aux: 0 }
    }
}

/// One block to code: Q in float64 (encoder only), P in float32 (what files store). All four
/// slices have the block dimension d as their length.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// Means of Q, per dimension (finite).
    pub q_mean: &'a [f64],
    /// Standard deviations of Q, per dimension (positive and finite).
    pub q_std: &'a [f64],
    /// Means of P, per dimension (finite): what the decoder is given.
    pub p_mean: &'a [f32],
    /// Standard deviations of P, per dimension (positive and finite). The exact methods
    /// need `q_std < p_std` in every dimension (a bounded density ratio).
    pub p_std: &'a [f32],
}

/// The encoder's result for one block.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// The message to transmit: what [`decode`] takes to regenerate the sample.
    pub message: Message,
    /// Proposals, candidates or tree nodes examined.
    pub steps: u64,
    /// Code length of the message in bits, exactly what a file spends.
    pub bits: u32,
}

fn log2_exact(j: u32) -> Option<u32> {
    if j.is_power_of_two() {
        Some(j.trailing_zeros())
    } else {
        None
    }
}

/// Checks that `opts` make sense for `method` and block dimension `d`, and that this CPU runs
/// their backend.
///
/// # Errors
///
/// [`ChannelError::Backend`] for a backend this CPU cannot run; [`ChannelError::Unsupported`]
/// for d > 1 with a one-dimensional method; [`ChannelError::InvalidInput`] for d = 0 and for
/// options the method refuses (mrc and orc without `bits`, `bits` above 32, dad_star without
/// `depth` or with `depth` above 62, gprs_parallel with `parallel` not a power of two in
/// 1 ..= 65536, pool mode
/// without a fixed budget, `max_steps` = 0, an invalid `index_code`).
pub fn validate(method: Method, opts: &Options, d: usize) -> Result<(), ChannelError> {
    validated(method, opts, d).map(|_| ())
}

/// `validate`, keeping the proof that this CPU runs the options' backend.
fn validated(method: Method, opts: &Options, d: usize) -> Result<Supported, ChannelError> {
    let simd = opts.backend.checked()?;
    check_options(method, opts, d)?;
    Ok(simd)
}

/// `validate` without the backend.
fn check_options(method: Method, opts: &Options, d: usize) -> Result<(), ChannelError> {
    let bad = |m: String| Err(ChannelError::InvalidInput(m));
    if let Some(max) = method.info().max_dim {
        if d > max {
            return Err(ChannelError::Unsupported(format!(
                "{method} codes one dimension at a time, got blocks of dimension {d}; \
                 use blocks of size 1, or mrc, orc, pfr or astar for multi-dimensional blocks"
            )));
        }
    }
    if d == 0 {
        return bad("blocks must have at least one dimension".into());
    }
    opts.index_code.validate().map_err(ChannelError::InvalidInput)?;
    match method {
        Method::Mrc | Method::Orc => {
            let Some(b) = opts.bits else {
                return bad(format!("{method} needs bits=C (2^C candidates)"));
            };
            if b > 32 {
                return bad(format!("bits must be at most 32, got {b}"));
            }
        }
        Method::Pfr => {
            if let Some(b) = opts.bits {
                if b > 32 {
                    return bad(format!("bits must be at most 32, got {b}"));
                }
            }
        }
        Method::DadStar => match opts.depth {
            None => return bad("dad_star needs depth=D (heap indices below 2^(D+1))".into()),
            Some(dep) if dep > 62 => return bad(format!("depth must be at most 62, got {dep}")),
            _ => {}
        },
        Method::GprsParallel if log2_exact(opts.parallel).is_none() || opts.parallel > 1 << 16 => {
            return bad(format!("parallel must be a power of two in 1..=65536, got {}", opts.parallel));
        }
        _ => {}
    }
    if opts.pool && !method.is_fixed_budget(opts) {
        return bad(format!("pool mode needs a fixed-budget method (mrc, orc, pfr with bits), not {method}"));
    }
    if opts.max_steps == 0 {
        return bad("max_steps must be positive".into());
    }
    Ok(())
}

/// Checks one target: finite values, positive stds, and a bounded ratio where required.
/// Returns the target in standard coordinates.
///
/// # Errors
///
/// [`ChannelError::InvalidInput`] for slices of unequal lengths, a non-finite mean, or a
/// standard deviation that is not positive and finite; [`ChannelError::Unsupported`] when an
/// exact method (one that [`MethodInfo::needs_bounded_ratio`], without a fixed budget) meets
/// a dimension with `q_std >= p_std`.
pub fn check_target(method: Method, t: &Target<'_>, opts: &Options) -> Result<Block, ChannelError> {
    let d = t.p_mean.len();
    if t.q_mean.len() != d || t.q_std.len() != d || t.p_std.len() != d {
        return Err(ChannelError::InvalidInput(
            "q_mean, q_std, p_mean and p_std must have equal shapes".into(),
        ));
    }
    for i in 0..d {
        if !t.q_mean[i].is_finite() || !t.p_mean[i].is_finite() {
            return Err(ChannelError::InvalidInput(format!("means must be finite (dimension {i})")));
        }
        if !(t.q_std[i] > 0.0 && t.q_std[i].is_finite() && t.p_std[i] > 0.0 && t.p_std[i].is_finite()) {
            return Err(ChannelError::InvalidInput(format!(
                "stds must be positive and finite (dimension {i})"
            )));
        }
    }
    let block = Block::new(t.q_mean, t.q_std, t.p_mean, t.p_std);
    if method.info().needs_bounded_ratio && !method.is_fixed_budget(opts) && !block.bounded() {
        let i = block.dims.iter().position(|s| !s.bounded()).unwrap_or(0);
        return Err(ChannelError::Unsupported(format!(
            "{method} is exact and needs every posterior std below the prior std (infinite D_inf); \
             dimension {i} has q_std/p_std = {:.6}. Use a fixed-budget method that accepts any target: \
             mrc, orc or pfr with bits=C",
            block.dims[i].s
        )));
    }
    Ok(block)
}

/// The fields of a method's message, in the order written, with their codes.
pub fn message_codes(method: Method, opts: &Options) -> Vec<(Field, IndexCode)> {
    match method {
        Method::Mrc | Method::Orc => vec![(Field::Index, IndexCode::Fixed(opts.bits.unwrap_or(0) as u8))],
        Method::Pfr => match opts.bits {
            Some(b) => vec![(Field::Index, IndexCode::Fixed(b as u8))],
            None => vec![(Field::Index, opts.index_code)],
        },
        Method::DadStar => vec![(Field::Index, IndexCode::Fixed(opts.depth.unwrap_or(0) as u8 + 1))],
        Method::GprsParallel => vec![
            (Field::Aux, IndexCode::Fixed(log2_exact(opts.parallel).unwrap_or(0) as u8)),
            (Field::Index, opts.index_code),
        ],
        Method::Agrs => agrs::message_codes(opts),
        _ => vec![(Field::Index, opts.index_code)],
    }
}

/// Which part of a `Message` a code field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`Message::index`].
    Index,
    /// [`Message::aux`].
    Aux,
}

fn field(m: &Message, f: Field) -> u64 {
    match f {
        Field::Index => m.index,
        Field::Aux => m.aux,
    }
}

/// Code length of `msg` in bits.
///
/// # Errors
///
/// [`ChannelError::InvalidMessage`] when a field is not representable by its code (a value
/// of 2^b or more in a b-bit field, or 0 in a universal-code field).
pub fn message_bits(method: Method, opts: &Options, msg: &Message) -> Result<u32, ChannelError> {
    let mut n = 0u32;
    for (f, code) in message_codes(method, opts) {
        n += code.len(field(msg, f))?;
    }
    Ok(n)
}

/// Appends the code of `msg`, its fields in the order of [`message_codes`], without padding;
/// returns its length in bits (what [`message_bits`] gives).
///
/// # Errors
///
/// [`ChannelError::InvalidMessage`] when a field is not representable by its code. A field
/// already written stays in `w`.
pub fn write_message(
    method: Method,
    opts: &Options,
    msg: &Message,
    w: &mut BitWriter,
) -> Result<u32, ChannelError> {
    let mut n = 0;
    for (f, code) in message_codes(method, opts) {
        n += code.write(w, field(msg, f))?;
    }
    Ok(n)
}

/// Reads one message written by [`write_message`] with the same method and options.
///
/// # Errors
///
/// [`ChannelError::InvalidMessage`] when the bits end inside a field or hold a malformed
/// code word. Field values are not range-checked here; [`decode`] checks them.
pub fn read_message(method: Method, opts: &Options, r: &mut BitReader<'_>) -> Result<Message, ChannelError> {
    read_message_with(&message_codes(method, opts), r)
}

/// `read_message` given the method's `message_codes` (readers of many messages look them up once).
pub fn read_message_with(
    codes: &[(Field, IndexCode)],
    r: &mut BitReader<'_>,
) -> Result<Message, ChannelError> {
    let mut m = Message::default();
    for &(f, code) in codes {
        let v = code.read(r)?;
        match f {
            Field::Index => m.index = v,
            Field::Aux => m.aux = v,
        }
    }
    Ok(m)
}

/// Encodes one block. `sample` receives the coded weights (what `decode` returns).
///
/// `keys` are those of the root seed ([`Keys::new`]) and `id` is the block's stream id; the
/// decoder needs both. `sample` must have the block's dimension. The returned
/// [`Encoded::bits`] is the exact code length of the message, and the sample is
/// computed by running [`decode`] on the message, so encoder and decoder cannot disagree.
///
/// # Errors
///
/// Everything [`validate`] and [`check_target`] refuse; [`ChannelError::IterationCap`] or
/// [`ChannelError::DepthLimit`] when the search stops without a sample (never a silently
/// wrong one); [`ChannelError::InvalidInput`] when `sample` has the wrong length or a pool
/// would exceed `pool::MAX_POOL_ELEMENTS`.
///
/// # Examples
///
/// Encode, transmit the message's bits, and decode on the other side:
///
/// ```
/// use relcode::channel::{decode, encode, read_message, write_message, Keys, Method, Options, Target};
/// use relcode::codes::{BitReader, BitWriter};
///
/// let (q_mean, q_std) = ([0.4], [0.05]);
/// let (p_mean, p_std) = ([0.0f32], [0.5f32]);
/// let target = Target { q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std };
/// let (keys, id, opts) = (Keys::new(2024), 0, Options::default());
///
/// let mut sample = [0f32];
/// let enc = encode(Method::AdStar, &target, &keys, id, &opts, &mut sample)?;
/// let mut w = BitWriter::new();
/// assert_eq!(write_message(Method::AdStar, &opts, &enc.message, &mut w)?, enc.bits);
/// let bytes = w.finish();
///
/// let mut r = BitReader::new(&bytes, enc.bits as u64);
/// let message = read_message(Method::AdStar, &opts, &mut r)?;
/// let mut out = [0f32];
/// decode(Method::AdStar, &message, &p_mean, &p_std, &keys, id, &opts, &mut out)?;
/// assert_eq!(out[0].to_bits(), sample[0].to_bits());
/// # Ok::<(), relcode::channel::ChannelError>(())
/// ```
pub fn encode(
    method: Method,
    t: &Target<'_>,
    keys: &Keys,
    id: u64,
    opts: &Options,
    sample: &mut [f32],
) -> Result<Encoded, ChannelError> {
    let simd = validated(method, opts, t.p_mean.len())?;
    let block = check_target(method, t, opts)?;
    let (message, steps) = match method {
        Method::Mrc => fixed::encode(&block, keys, id, opts, fixed::Rule::Mrc, simd)?,
        Method::Orc => fixed::encode(&block, keys, id, opts, fixed::Rule::Orc, simd)?,
        Method::Pfr if opts.bits.is_some() => fixed::encode(&block, keys, id, opts, fixed::Rule::Pfr, simd)?,
        Method::Pfr => pfr::encode(&block, keys, id, opts, simd)?,
        Method::Astar => astar::encode_global(&block, keys, id, opts, simd)?,
        Method::AsStar => astar::encode_as(&block, keys, id, opts)?,
        Method::AdStar => astar::encode_ad(&block, keys, id, opts)?,
        Method::DadStar => astar::encode_dad(&block, keys, id, opts)?,
        Method::Grs => grs::encode(&block, keys, id, opts)?,
        Method::Agrs => agrs::encode(&block, keys, id, opts)?,
        Method::Gprs => gprs::encode_global(&block, keys, id, opts)?,
        Method::GprsParallel => gprs::encode_parallel(&block, keys, id, opts)?,
        Method::GprsBnb => gprs::encode_bnb(&block, keys, id, opts)?,
    };
    decode(method, &message, t.p_mean, t.p_std, keys, id, opts, sample)?;
    let bits = message_bits(method, opts, &message)?;
    Ok(Encoded { message, steps, bits })
}

/// Decodes one block into `out` (length = block dimension).
///
/// Needs only P (`p_mean`, `p_std`), the root seed's `keys`, the block's stream `id`, the
/// method and options the encoder used, and the message; the result is the same bits on
/// every machine and backend.
///
/// # Errors
///
/// [`ChannelError::InvalidInput`] when `p_mean`, `p_std` and `out` differ in length;
/// everything [`validate`] refuses; [`ChannelError::InvalidMessage`] for a message no
/// encoder with these options produces (a field outside its code or range: k >= 2^bits,
/// n = 0, h = 0, a heap index too deep, j >= J, a candidate beyond the stream).
///
/// # Examples
///
/// ```
/// use relcode::channel::{decode, ChannelError, Message, Method, Options, Keys};
///
/// let opts = Options { bits: Some(8), ..Options::default() };
/// let (p_mean, p_std) = ([0.0f32; 2], [1.0f32; 2]);
/// let keys = Keys::new(1);
/// // Any index below 2^8 is candidate k of block 5's candidate stream.
/// let mut out = [0f32; 2];
/// decode(Method::Mrc, &Message::new(200), &p_mean, &p_std, &keys, 5, &opts, &mut out)?;
/// assert!(out.iter().all(|x| x.is_finite()));
/// // Index 256 is outside the budget: an error, never a sample.
/// let bad = decode(Method::Mrc, &Message::new(256), &p_mean, &p_std, &keys, 5, &opts, &mut out);
/// assert!(matches!(bad, Err(ChannelError::InvalidMessage(_))));
/// # Ok::<(), ChannelError>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn decode(
    method: Method,
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let d = p_mean.len();
    if p_std.len() != d || out.len() != d {
        return Err(ChannelError::InvalidInput(
            "p_mean, p_std and the output must have equal lengths".into(),
        ));
    }
    validate(method, opts, d)?;
    message_bits(method, opts, message)?; // every field representable by its code
    match method {
        Method::Mrc | Method::Orc => fixed::decode(message, p_mean, p_std, keys, id, opts, out),
        Method::Pfr if opts.bits.is_some() => fixed::decode(message, p_mean, p_std, keys, id, opts, out),
        Method::Pfr | Method::Astar => pfr::decode(message, p_mean, p_std, keys, id, out),
        Method::AsStar => astar::decode_as(message, p_mean, p_std, keys, id, opts, out),
        Method::AdStar => astar::decode_ad(message, p_mean, p_std, keys, id, opts, out),
        Method::DadStar => astar::decode_dad(message, p_mean, p_std, keys, id, opts, out),
        Method::Grs | Method::Gprs => pfr::decode(message, p_mean, p_std, keys, id, out),
        Method::Agrs => agrs::decode(message, p_mean, p_std, keys, id, opts, out),
        Method::GprsParallel => gprs::decode_parallel(message, p_mean, p_std, keys, id, opts, out),
        Method::GprsBnb => gprs::decode_bnb(message, p_mean, p_std, keys, id, opts, out),
    }
}

/// A batch of `n` problems of dimension `d`, row-major; problem i uses stream id `ids[i]`.
/// Every parameter slice holds `n * d` values, problem i at `i * d .. (i + 1) * d`.
pub struct Batch<'a> {
    /// Dimension of every problem (positive).
    pub d: usize,
    /// Means of Q, `n * d` of them.
    pub q_mean: &'a [f64],
    /// Standard deviations of Q, `n * d` of them.
    pub q_std: &'a [f64],
    /// Means of P, `n * d` of them.
    pub p_mean: &'a [f32],
    /// Standard deviations of P, `n * d` of them.
    pub p_std: &'a [f32],
    /// The stream id of each problem; its length is the number of problems `n`.
    pub ids: &'a [u64],
}

impl<'a> Batch<'a> {
    /// Problem `i` of the batch.
    pub fn target(&self, i: usize) -> Target<'a> {
        let r = i * self.d..(i + 1) * self.d;
        Target {
            q_mean: &self.q_mean[r.clone()],
            q_std: &self.q_std[r.clone()],
            p_mean: &self.p_mean[r.clone()],
            p_std: &self.p_std[r],
        }
    }
}

/// Encodes a batch in parallel on the current rayon pool. Results (and the first error, by
/// problem index) never depend on the number of threads.
///
/// Problem i is coded as [`encode`] codes it alone with `Keys::new(seed)` and id
/// `b.ids[i]`; its sample goes to `samples[i * d .. (i + 1) * d]`. `samples` and the slices
/// of `b` must hold `b.ids.len() * b.d` values (not checked: other lengths panic or leave
/// problems out).
///
/// # Errors
///
/// `(i, error)` for the first problem i that fails, with the errors of [`encode`]; errors
/// of the options or the backend come as problem 0.
///
/// # Examples
///
/// ```
/// use relcode::channel::{decode_batch, encode_batch, Batch, Method, Options};
///
/// let (n, d) = (4, 2);
/// let q_mean: Vec<f64> = (0..n * d).map(|i| 0.01 * i as f64).collect();
/// let q_std = vec![0.05; n * d];
/// let (p_mean, p_std) = (vec![0.0f32; n * d], vec![0.1f32; n * d]);
/// let ids: Vec<u64> = (0..n as u64).collect();
/// let b = Batch { d, q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std, ids: &ids };
/// let opts = Options { bits: Some(12), ..Options::default() };
///
/// let mut samples = vec![0f32; n * d];
/// let enc = encode_batch(Method::Orc, &b, 7, &opts, &mut samples).map_err(|(_, e)| e)?;
/// let messages: Vec<_> = enc.iter().map(|e| e.message).collect();
/// let mut out = vec![0f32; n * d];
/// decode_batch(Method::Orc, &messages, d, &p_mean, &p_std, &ids, 7, &opts, &mut out)
///     .map_err(|(_, e)| e)?;
/// assert_eq!(out, samples);
/// # Ok::<(), relcode::channel::ChannelError>(())
/// ```
pub fn encode_batch(
    method: Method,
    b: &Batch<'_>,
    seed: u64,
    opts: &Options,
    samples: &mut [f32],
) -> Result<Vec<Encoded>, (usize, ChannelError)> {
    let d = b.d;
    let n = b.ids.len();
    let simd = validated(method, opts, d).map_err(|e| (0, e))?;
    let keys = Keys::new(seed);
    if opts.pool {
        pool::prepare_with(&keys, d, opts.bits.unwrap_or(0), simd).map_err(|e| (0, e))?;
        if method.is_fixed_budget(opts) {
            return encode_pool_batch(method, b, &keys, opts, simd, samples);
        }
    }
    let out: Vec<Result<Encoded, ChannelError>> = samples
        .par_chunks_mut(d)
        .with_max_len(1)
        .enumerate()
        .map(|(i, s)| encode(method, &b.target(i), &keys, b.ids[i], opts, s))
        .collect();
    debug_assert_eq!(out.len(), n);
    out.into_iter().enumerate().map(|(i, r)| r.map_err(|e| (i, e))).collect()
}

/// Pool mode of the fixed-budget methods: problems are scored in bundles that share each
/// tile of the pool while it is in cache (`fixed::select_bundle`). Every problem's result is
/// exactly what `encode` gives it alone, whatever the bundle size and thread count.
fn encode_pool_batch(
    method: Method,
    b: &Batch<'_>,
    keys: &Keys,
    opts: &Options,
    simd: Supported,
    samples: &mut [f32],
) -> Result<Vec<Encoded>, (usize, ChannelError)> {
    let d = b.d;
    let n = b.ids.len();
    let bits = opts.bits.expect("validated");
    let rule = match method {
        Method::Mrc => fixed::Rule::Mrc,
        Method::Orc => fixed::Rule::Orc,
        _ => fixed::Rule::Pfr,
    };
    // enough bundles to keep every thread busy; at most POOL_BUNDLE blocks share a tile
    let per = n.div_ceil(4 * rayon::current_num_threads()).clamp(1, POOL_BUNDLE);
    let out: Vec<Vec<Result<Encoded, ChannelError>>> = samples
        .par_chunks_mut(d * per)
        .with_max_len(1)
        .enumerate()
        .map(|(c, chunk)| {
            let first = c * per;
            let m = chunk.len() / d; // d > 0: validated
            let mut errs: Vec<Option<ChannelError>> = Vec::with_capacity(m);
            let mut ok: Vec<fixed::Coefs> = Vec::with_capacity(m);
            for i in first..first + m {
                match check_target(method, &b.target(i), opts) {
                    Ok(block) => {
                        ok.push(pool::coefs(&block, keys, b.ids[i]));
                        errs.push(None);
                    }
                    Err(e) => errs.push(Some(e)),
                }
            }
            let mut ks = match pool::select_bundle(&ok, keys, bits, rule, simd) {
                Ok(ks) => ks.into_iter(),
                Err(e) => return (0..m).map(|_| Err(e.clone())).collect(),
            };
            errs.into_iter()
                .zip(chunk.chunks_mut(d))
                .enumerate()
                .map(|(j, (err, s))| {
                    if let Some(e) = err {
                        return Err(e);
                    }
                    let i = first + j;
                    let message = Message::new(ks.next().expect("one index per valid block"));
                    let t = b.target(i);
                    decode(method, &message, t.p_mean, t.p_std, keys, b.ids[i], opts, s)?;
                    let len = message_bits(method, opts, &message)?;
                    Ok(Encoded { message, steps: 1u64 << bits, bits: len })
                })
                .collect()
        })
        .collect();
    let out: Vec<Result<Encoded, ChannelError>> = out.into_iter().flatten().collect();
    debug_assert_eq!(out.len(), n);
    out.into_iter().enumerate().map(|(i, r)| r.map_err(|e| (i, e))).collect()
}

/// Blocks per pool-mode bundle: enough to amortise a tile over, few enough for their scratch
/// (about 3 KiB each at d = 16) and the tile to stay in L1/L2.
const POOL_BUNDLE: usize = 8;

/// The candidate a candidate-based message names, or `None` for the methods that decode
/// otherwise (tree samplers, agrs): candidate k of the CAND stream (or of the pool).
fn candidate_index(method: Method, opts: &Options, m: &Message) -> Option<Result<u64, ChannelError>> {
    let bad = |why: String| Some(Err(ChannelError::InvalidMessage(why)));
    match method {
        Method::Mrc | Method::Orc => Some(Ok(m.index)),
        Method::Pfr if opts.bits.is_some() => Some(Ok(m.index)),
        Method::Pfr | Method::Astar | Method::Grs | Method::Gprs => {
            if m.index == 0 {
                return bad("arrival indices start at 1".into());
            }
            Some(Ok(m.index - 1))
        }
        Method::GprsParallel => {
            let j = opts.parallel as u64;
            if m.index == 0 || m.aux >= j {
                return bad(format!("gprs_parallel message ({}, {}) out of range", m.aux, m.index));
            }
            match (m.index - 1).checked_mul(j).and_then(|v| v.checked_add(m.aux)) {
                Some(k) => Some(Ok(k)),
                None => bad("gprs_parallel candidate index overflows".into()),
            }
        }
        _ => None,
    }
}

/// Decodes blocks laid out back to back: block i has `sizes[i]` elements of `out` (and of
/// `p_mean`, `p_std`), stream id `ids[i]` and message `messages[i]`. Candidate-based methods
/// regenerate every candidate of the slice together, sixteen normals per SIMD step whatever
/// their blocks; the others decode block by block. Bit-identical to `decode` per block.
/// Refuses a backend this CPU cannot run (as block 0) before decoding anything.
///
/// # Errors
///
/// `(i, error)` for the first block i that fails, with the errors [`decode`] gives it alone,
/// plus [`ChannelError::InvalidInput`] for a prior mean that is not finite or a prior std
/// that is not positive and finite, and (as block 0) for lengths that do not add up
/// (`ids`, `messages` and `sizes` of one length; `p_mean`, `p_std` and `out` of the sum of
/// `sizes`). Blocks before the failing one may already be written.
///
/// # Examples
///
/// ```
/// use relcode::channel::{decode, decode_many, Keys, Message, Method, Options};
///
/// let opts = Options { bits: Some(10), ..Options::default() };
/// let keys = Keys::new(3);
/// let sizes = [3u32, 1, 5];
/// let ids = [10u64, 11, 12];
/// let messages = [Message::new(5), Message::new(1023), Message::new(0)];
/// let (p_mean, p_std) = (vec![0.5f32; 9], vec![0.25f32; 9]);
/// let mut out = vec![0f32; 9];
/// decode_many(Method::Mrc, &opts, &keys, &ids, &messages, &sizes, &p_mean, &p_std, &mut out)
///     .map_err(|(_, e)| e)?;
/// // The same bits as decoding each block alone.
/// let mut last = [0f32; 5];
/// decode(Method::Mrc, &messages[2], &p_mean[4..], &p_std[4..], &keys, 12, &opts, &mut last)?;
/// assert_eq!(out[4..], last);
/// # Ok::<(), relcode::channel::ChannelError>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn decode_many(
    method: Method,
    opts: &Options,
    keys: &Keys,
    ids: &[u64],
    messages: &[Message],
    sizes: &[u32],
    p_mean: &[f32],
    p_std: &[f32],
    out: &mut [f32],
) -> Result<(), (usize, ChannelError)> {
    let simd = opts.backend.checked().map_err(|e| (0, e.into()))?;
    let blocks = ManyBlocks { method, opts, keys, ids, messages, sizes, p_mean, p_std };
    // the same code compiled for the widest vectors here (its loops over weights vectorise;
    // no fused multiply-add either way, so every build gives the same bits)
    match simd {
        // SAFETY: `cpu` proves that this CPU has AVX-512F.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx512(cpu) => unsafe { decode_many_avx512(cpu, &blocks, out) },
        // SAFETY: `cpu` proves that this CPU has AVX2.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx2(cpu) => unsafe { decode_many_avx2(cpu, &blocks, out) },
        _ => decode_many_body(&blocks, Supported::Scalar, out),
    }
}

/// `decode_many`'s input: everything but the output.
#[derive(Clone, Copy)]
struct ManyBlocks<'a> {
    method: Method,
    opts: &'a Options,
    keys: &'a Keys,
    ids: &'a [u64],
    messages: &'a [Message],
    sizes: &'a [u32],
    p_mean: &'a [f32],
    p_std: &'a [f32],
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX-512F this body is compiled
// for; the body's one raw operation, a `set_len`, states its own invariant.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn decode_many_avx512(
    cpu: Avx512Cpu,
    blocks: &ManyBlocks<'_>,
    out: &mut [f32],
) -> Result<(), (usize, ChannelError)> {
    decode_many_body(blocks, Supported::Avx512(cpu), out)
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX2 this body is compiled for;
// the body's one raw operation, a `set_len`, states its own invariant.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn decode_many_avx2(
    cpu: Avx2Cpu,
    blocks: &ManyBlocks<'_>,
    out: &mut [f32],
) -> Result<(), (usize, ChannelError)> {
    decode_many_body(blocks, Supported::Avx2(cpu), out)
}

#[inline(always)]
fn decode_many_body(
    blocks: &ManyBlocks<'_>,
    simd: Supported,
    out: &mut [f32],
) -> Result<(), (usize, ChannelError)> {
    let ManyBlocks { method, opts, keys, ids, messages, sizes, p_mean, p_std } = *blocks;
    let total: usize = sizes.iter().map(|&s| s as usize).sum();
    if ids.len() != sizes.len()
        || messages.len() != sizes.len()
        || [p_mean.len(), p_std.len(), out.len()] != [total; 3]
    {
        return Err((0, ChannelError::InvalidInput("decode_many: inconsistent lengths".into())));
    }
    // Priors in one pass (vectorisable, no early exit); a bad one is reported at its block
    // below, so errors come in block order as if each block were checked on its own.
    let bad_prior = |(&m, &s): (&f32, &f32)| !(m.is_finite() && s > 0.0 && s.is_finite());
    let prior_ok = p_mean.iter().zip(p_std).fold(true, |ok, e| ok & !bad_prior(e));
    let bad_block = if prior_ok {
        usize::MAX
    } else {
        let e = p_mean.iter().zip(p_std).position(bad_prior).unwrap_or(0);
        let mut end = 0usize;
        sizes
            .iter()
            .position(|&s| {
                end += s as usize;
                e < end
            })
            .unwrap_or(usize::MAX)
    };
    // The common case first: fixed-budget methods, candidates from each block's own stream.
    // Anything unusual (a bad size, index or prior) leaves it for the general loop below,
    // which then reports the first problem exactly as it always does.
    if let (Some(bits), false, true) = (opts.bits, opts.pool, method.is_fixed_budget(opts)) {
        if bad_block == usize::MAX && validate(method, opts, 1).is_ok() {
            // every element is written below before the lengths are set (no zeroing pass)
            let (mut sid, mut pos) = (Vec::<u64>::with_capacity(total), Vec::<u64>::with_capacity(total));
            let (si, po) = (&mut sid.spare_capacity_mut()[..total], &mut pos.spare_capacity_mut()[..total]);
            let mut at = 0usize;
            let mut ok = true;
            for ((&s, m), &id) in sizes.iter().zip(messages).zip(ids) {
                let (d, k) = (s as usize, m.index);
                if d == 0 || k >> bits != 0 || candidates::check(k, d).is_err() {
                    ok = false;
                    break;
                }
                let base = candidates::position(k, 0, d);
                let (si, po) = (&mut si[at..at + d], &mut po[at..at + d]);
                for j in 0..d {
                    si[j].write(id);
                    po[j].write(base + GROUP_STRIDE * j as u64);
                }
                at += d;
            }
            if ok {
                debug_assert_eq!(at, total);
                // SAFETY: the loop wrote elements 0..total of both (the sizes add up to total)
                unsafe {
                    sid.set_len(total);
                    pos.set_len(total);
                }
                let mut z = vec![0f32; total];
                crate::stream::normals_at_with(keys.cand, &sid, &pos, &mut z, simd);
                for e in 0..total {
                    out[e] = crate::stream::candidate_weight(p_mean[e], p_std[e], z[e]);
                }
                return Ok(());
            }
        }
    }
    let mut sid: Vec<u64> = Vec::with_capacity(total);
    let mut pos: Vec<u64> = Vec::with_capacity(total);
    let mut neg: Vec<u32> = Vec::new(); // sign bits to flip (pool mode)
    let mut from_candidates = vec![false; sizes.len()];
    let mut off = 0usize;
    let mut valid_d = 0usize; // the last dimension validated (0: none yet)
    let mut scratch = Vec::new();
    let mut tr = pool::Transform { perm: Vec::new(), neg: Vec::new() };
    let codes = message_codes(method, opts);
    for (i, (&s, m)) in sizes.iter().zip(messages).enumerate() {
        let d = s as usize;
        let range = off..off + d;
        off += d;
        if d != valid_d {
            validate(method, opts, d).map_err(|e| (i, e))?;
            valid_d = d;
        }
        for &(f, code) in &codes {
            code.len(field(m, f)).map_err(|e| (i, e.into()))?;
        }
        if i == bad_block {
            return Err((
                i,
                ChannelError::InvalidInput("prior means must be finite and stds positive".into()),
            ));
        }
        let k = match candidate_index(method, opts, m) {
            Some(k) => k.map_err(|e| (i, e))?,
            None => {
                decode(
                    method,
                    m,
                    &p_mean[range.clone()],
                    &p_std[range.clone()],
                    keys,
                    ids[i],
                    opts,
                    &mut out[range],
                )
                .map_err(|e| (i, e))?;
                continue;
            }
        };
        if let Some(b) = opts.bits {
            if method.is_fixed_budget(opts) && k >> b != 0 {
                return Err((
                    i,
                    ChannelError::InvalidMessage(format!("index {k} is outside the 2^{b} candidates")),
                ));
            }
        }
        candidates::check(k, d).map_err(|e| (i, e))?;
        from_candidates[i] = true;
        if opts.pool {
            pool::transform_into(keys, ids[i], d, &mut scratch, &mut tr);
            sid.resize(sid.len() + d, d as u64);
            pos.extend(tr.perm.iter().map(|&j| candidates::position(k, j, d)));
            neg.resize(sid.len() - d, 0);
            neg.extend(tr.neg.iter().map(|&n| (n as u32) << 31));
        } else {
            // normal j of candidate k sits at base + 16 j (candidates::position)
            let base = candidates::position(k, 0, d);
            sid.resize(sid.len() + d, ids[i]);
            pos.extend((0..d as u64).map(|j| base + GROUP_STRIDE * j));
        }
    }
    if sid.is_empty() {
        return Ok(());
    }
    // Every candidate-based block contributed its d positions in order; walk them again.
    let mut z = vec![0f32; sid.len()];
    let key = if opts.pool { keys.pool } else { keys.cand };
    crate::stream::normals_at_with(key, &sid, &pos, &mut z, simd);
    if opts.pool {
        neg.resize(z.len(), 0);
        for (x, &n) in z.iter_mut().zip(&neg) {
            *x = f32::from_bits(x.to_bits() ^ n);
        }
    }
    let (mut zi, mut off) = (0usize, 0usize);
    for (&s, &cand) in sizes.iter().zip(&from_candidates) {
        let d = s as usize;
        if cand {
            let (o, m, sd, x) =
                (&mut out[off..off + d], &p_mean[off..off + d], &p_std[off..off + d], &z[zi..zi + d]);
            for e in 0..d {
                o[e] = crate::stream::candidate_weight(m[e], sd[e], x[e]);
            }
            zi += d;
        }
        off += d;
    }
    Ok(())
}

/// Stream distance between consecutive normals of one candidate (the interleaving group).
const GROUP_STRIDE: u64 = candidates::GROUP as u64;

/// Decodes a batch in parallel: `messages.len()` blocks of dimension `d`, block i with stream
/// id `ids[i]` under root seed `seed`, into `out[i * d .. (i + 1) * d]`. The bits are those of
/// [`decode`] per block, whatever the thread count. `p_mean`, `p_std` and `out` must hold
/// `messages.len() * d` values and `ids` one per block (not checked: other lengths panic or
/// are refused as invalid input).
///
/// # Errors
///
/// `(i, error)` for the first block i that fails, as [`decode_many`] reports it; errors of
/// the options or the backend come as block 0.
#[allow(clippy::too_many_arguments)]
pub fn decode_batch(
    method: Method,
    messages: &[Message],
    d: usize,
    p_mean: &[f32],
    p_std: &[f32],
    ids: &[u64],
    seed: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), (usize, ChannelError)> {
    validate(method, opts, d).map_err(|e| (0, e))?;
    let keys = Keys::new(seed);
    // Fixed chunks of blocks, decoded together: the result never depends on the thread count.
    const BLOCKS: usize = 512;
    let sizes = vec![d as u32; BLOCKS];
    let res: Vec<Result<(), (usize, ChannelError)>> = out
        .par_chunks_mut(d * BLOCKS)
        .enumerate()
        .map(|(c, o)| {
            let b0 = c * BLOCKS;
            let nb = o.len() / d;
            let r = b0 * d..(b0 + nb) * d;
            decode_many(
                method,
                opts,
                &keys,
                &ids[b0..b0 + nb],
                &messages[b0..b0 + nb],
                &sizes[..nb],
                &p_mean[r.clone()],
                &p_std[r],
                o,
            )
            .map_err(|(i, e)| (b0 + i, e))
        })
        .collect();
    res.into_iter().collect()
}

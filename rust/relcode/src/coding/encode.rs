//! Encoding and assembling whole files.
//!
//! `encode` is the in-memory encoder behind `relcode.encode`: it lays out the coded vector
//! in groups of at most `chunk_size` elements, packs each group into blocks (fixed size or
//! KL-greedy after a seeded permutation), codes every block in parallel with the channel
//! layer and writes the file in canonical chunk order. `assemble` writes a file from a
//! layout and messages that a caller produced block by block (the progressive encoders of
//! the torch and INR layers), decoding the messages itself so the recorded digests are
//! always what a decoder computes. Both write chunks in the same order a streaming writer
//! would: HEAD, raw tensors, then per group its prior DATA, LAYO and MSGS, then the index.
//!
//! Rate accounting. Every block's KL(Q‖P) is known from the layout before it is coded, and
//! its message length once it is: `encode` and `encode_group` report both per coded tensor
//! (`TensorRate`). A method with a fixed budget (mrc, orc, pfr with bits: 2^bits
//! candidates; dad_star: depth + 1 bits) codes a block whose KL exceeds the budget anyway,
//! approximately, so such blocks are counted, and `max_excess` refuses them before any
//! block is coded.

use super::decode::{decode_group, GroupPrior};
use super::layout::{block_id, kl_greedy_sizes, order, permutation};
use super::messages::{messages_payload, min_message_bits, Messages};
use crate::channel::{self, ChannelError, Keys, Message, Method, Options, Target};
use crate::format::chunk::{Role, MSGS};
use crate::format::header::{DigestMode, Dtype, Header, Prior, PriorValue, TensorInfo};
use crate::format::layout::{Group, Rule};
use crate::format::msgpack::Value;
use crate::format::{FormatError, Limits, Reader, Writer, MAX_BLOCK_DIM};
use rayon::prelude::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Elements per DATA chunk of a raw tensor.
pub const RAW_PIECE: u64 = 1 << 20;

/// A prior parameter as given by the caller.
#[derive(Clone, Copy, Debug)]
pub enum PriorArg<'a> {
    /// One value for every element of the tensor (stored in the header).
    Scalar(f32),
    /// One value per element, row-major, exactly as many as the tensor has (stored in DATA
    /// chunks).
    Elements(&'a [f32]),
}

impl PriorArg<'_> {
    fn value(&self) -> PriorValue {
        match self {
            PriorArg::Scalar(x) => PriorValue::Scalar(*x),
            PriorArg::Elements(_) => PriorValue::Elements,
        }
    }
    fn at(&self, i: usize) -> f32 {
        match self {
            PriorArg::Scalar(x) => *x,
            PriorArg::Elements(v) => v[i],
        }
    }
}

/// Where a tensor's values come from.
#[derive(Clone, Copy, Debug)]
pub enum TensorSource<'a> {
    /// A posterior to code (float64 or float32 upcast by the caller) with its prior.
    Coded {
        /// Posterior means, one per element, row-major; finite.
        q_mean: &'a [f64],
        /// Posterior standard deviations, one per element; finite and positive.
        q_std: &'a [f64],
        /// Prior means (float32, finite), known to the decoder.
        p_mean: PriorArg<'a>,
        /// Prior standard deviations (float32, finite and positive), known to the decoder.
        p_std: PriorArg<'a>,
    },
    /// Stored verbatim (little-endian bytes of `dtype`).
    Raw {
        /// The element type.
        dtype: Dtype,
        /// The elements' little-endian bytes, row-major: exactly `numel · dtype.size()`.
        bytes: &'a [u8],
    },
}

/// One tensor to write: its name, its shape and where its values come from.
#[derive(Clone, Debug)]
pub struct TensorInput<'a> {
    /// The tensor's name: 1 to 4096 bytes, unique among the input's tensors (the file lists
    /// tensors sorted by name, whatever order they are given in).
    pub name: String,
    /// The dimensions, row-major (`[]` for a 0-d tensor); their product is the element
    /// count every slice of `source` must match.
    pub shape: Vec<u64>,
    /// Coded (a posterior and its prior) or raw values.
    pub source: TensorSource<'a>,
}

/// How `encode` splits groups into blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayoutRule {
    /// Seeded permutation into blocks of `block_size` (default: the size that gives about
    /// `bits_per_block` of KL per block on average; MIRACLE).
    Fixed {
        /// Members per block, 1 to 65535; `None` derives it from the total KL.
        block_size: Option<u32>,
    },
    /// Seeded permutation packed greedily to at most `bits_per_block` of KL and
    /// `max_block_size` elements per block (COMBINER).
    Kl {
        /// Most members per block, 1 to 65535 (relcode's default is 25).
        max_block_size: u32,
    },
}

/// Everything [`encode`] needs to write a file.
#[derive(Clone, Debug)]
pub struct EncodeInput<'a> {
    /// The tensors, in any order (at most 2^20, with at most 2^31 elements in all).
    pub tensors: Vec<TensorInput<'a>>,
    /// Root seed of the messages and of every group's permutation (recorded in the header).
    pub seed: u64,
    /// The channel method that codes every block.
    pub method: Method,
    /// The method's options (for mrc and orc, `bits` is required; this encoder does not
    /// derive it from `bits_per_block`).
    pub options: Options,
    /// Target KL per block in bits, positive and finite: it sets the block size of the
    /// fixed layout with `block_size: None`, and the KL budget of the KL-greedy layout.
    pub bits_per_block: f64,
    /// How each group is split into blocks.
    pub layout: LayoutRule,
    /// Most elements per group: 1 to `Limits::max_group_elements` (2^26); the coded
    /// vector is cut into groups of this many elements, the last one shorter.
    pub chunk_size: u64,
    /// What the index's digests cover.
    pub digest: DigestMode,
    /// Free-form metadata written as the header's `meta` value (by convention a map).
    pub meta: Option<Value>,
    /// Refuse, before coding anything, a block whose KL exceeds its budget by more than this
    /// many bits (`Some(0.0)`: any over-budget block). Only methods with a budget
    /// (`Method::budget_bits`) are checked; `None` codes every block.
    pub max_excess: Option<f64>,
}

/// What `encode` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodeReport {
    /// The header written (tensors sorted by name).
    pub header: Header,
    /// Number of layout groups written.
    pub groups: u64,
    /// Number of blocks (messages) in all groups.
    pub blocks: u64,
    /// Message bits in all.
    pub bits: u64,
    /// File length in bytes.
    pub bytes: u64,
    /// KL(Q‖P) in bits per coded tensor, in header order (raw tensors: 0).
    pub kl: Vec<f64>,
    /// Digests as recorded in the index.
    pub digests: Vec<[u8; 32]>,
    /// The decoded coded vector (what a decoder returns).
    pub coded: Vec<f32>,
    /// Proposals examined in all.
    pub steps: u64,
    /// Rate accounting per tensor, in header order (raw tensors: the default, no blocks).
    pub rate: Vec<TensorRate>,
}

/// What a coded tensor's blocks carry and cost. A block that spans several tensors splits
/// its message bits among them in proportion to their KL in it (by element count when its
/// KL is 0); block counts and excesses count the whole block for every tensor it touches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorRate {
    /// KL(Q‖P) of the tensor's elements in bits.
    pub kl_bits: f64,
    /// Message bits spent on it.
    pub message_bits: f64,
    /// Blocks that hold at least one of its elements.
    pub blocks: u64,
    /// Of those, the blocks whose KL exceeds their budget (methods with a budget only; an
    /// exact method's message is as long as its sample needs, so it has none).
    pub over_budget_blocks: u64,
    /// The largest KL minus message bits over those blocks (negative when every block has
    /// slack); `None` when no block holds an element of the tensor.
    pub worst_excess_bits: Option<f64>,
}

impl TensorRate {
    /// Adds the blocks of `o` (the same tensor in another group).
    pub fn merge(&mut self, o: &TensorRate) {
        self.kl_bits += o.kl_bits;
        self.message_bits += o.message_bits;
        self.blocks += o.blocks;
        self.over_budget_blocks += o.over_budget_blocks;
        self.worst_excess_bits = match (self.worst_excess_bits, o.worst_excess_bits) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A coded tensor's piece in one group: the group's next `count` elements (coded-vector
/// order) are elements `first..first + count` of tensor `name`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span<'a> {
    /// The tensor's name (only used in reports and error messages).
    pub name: &'a str,
    /// Flat index, within the tensor, of the span's first element.
    pub first: u64,
    /// Number of elements.
    pub count: u64,
}

/// What `encode_group` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupCoded {
    /// The group's messages, one per block in block order, tagged with the stream group
    /// id `gid` that coded them.
    pub messages: Messages,
    /// The decoded values, in the group's coded-vector order.
    pub values: Vec<f32>,
    /// Message bits of each block.
    pub bits: Vec<u32>,
    /// Proposals examined.
    pub steps: u64,
    /// One per span (one for the whole group when no spans were given).
    pub rate: Vec<TensorRate>,
}

/// A block's KL as the layout fixes it, before it is coded.
struct BlockKl {
    /// KL(Q‖P) of the block in bits.
    kl: f64,
    /// (span, KL bits, elements) of each span the block touches.
    parts: Vec<(u32, f64, u32)>,
    /// The element (offset into the group) with the most KL, and its KL.
    top: (u32, f64),
}

/// The KL of every block of a group. `kl_of(k)` is the KL in bits of the group's element
/// `k`; `ends` the cumulative ends of the spans.
fn block_kls(
    order: &[u32],
    sizes: &[u32],
    offs: &[usize],
    ends: &[u64],
    kl_of: impl Fn(usize) -> f64 + Sync,
) -> Vec<BlockKl> {
    (0..sizes.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|j| {
            let mut b = BlockKl { kl: 0.0, parts: Vec::new(), top: (0, f64::NEG_INFINITY) };
            for &k in &order[offs[j]..offs[j] + sizes[j] as usize] {
                let x = kl_of(k as usize);
                b.kl += x;
                if x > b.top.1 {
                    b.top = (k, x);
                }
                let s = ends.partition_point(|&e| e <= k as u64) as u32;
                match b.parts.iter_mut().find(|p| p.0 == s) {
                    Some(p) => {
                        p.1 += x;
                        p.2 += 1;
                    }
                    None => b.parts.push((s, x, 1)),
                }
            }
            b.parts.sort_by_key(|p| p.0);
            b
        })
        .collect()
}

/// Refuses the worst block over its budget by more than `max_excess` bits, naming its
/// tensor and its element with the most KL.
fn check_blocks(
    gid: u32,
    blocks: &[BlockKl],
    spans: &[Span<'_>],
    ends: &[u64],
    method: Method,
    opts: &Options,
    max_excess: Option<f64>,
) -> Result<(), FormatError> {
    let (Some(max), Some(budget)) = (max_excess, method.budget_bits(opts)) else {
        return Ok(());
    };
    let over = |b: &BlockKl| b.kl - budget as f64 > max;
    let n = blocks.iter().filter(|b| over(b)).count();
    let Some((j, b)) =
        blocks.iter().enumerate().filter(|(_, b)| over(b)).max_by(|x, y| x.1.kl.total_cmp(&y.1.kl))
    else {
        return Ok(());
    };
    let (k, top) = b.top;
    let at = ends.partition_point(|&e| e <= k as u64);
    let start = if at == 0 { 0 } else { ends[at - 1] };
    let (tensor, elem) = (spans[at].name, spans[at].first + k as u64 - start);
    let whose = if tensor.is_empty() {
        format!("element {elem} of the group")
    } else {
        format!("tensor {tensor:?}, element {elem}")
    };
    let knob = if method == Method::DadStar { "depth" } else { "bits (or bits_per_block)" };
    Err(bad(format!(
        "{n} block(s) of group {gid} exceed their {budget}-bit {method} budget by more than max_excess = \
         {max} bits; the worst, block {j} ({whose} holds {top:.1} of its bits), has KL {:.1} bits, \
         {:.1} over budget: it would be coded approximately, far from the posterior. Raise {knob}, \
         give that element a prior that covers its posterior, use an exact method (pfr without bits), \
         or raise max_excess",
        b.kl,
        b.kl - budget as f64
    )))
}

/// Cumulative span ends, checking that the spans tile a group of `count` elements (no
/// spans: the group as one unnamed piece).
fn span_ends<'a>(spans: &'a [Span<'a>], count: u64) -> Result<(Vec<Span<'a>>, Vec<u64>), FormatError> {
    let spans: Vec<Span<'a>> =
        if spans.is_empty() { vec![Span { name: "", first: 0, count }] } else { spans.to_vec() };
    let mut ends = Vec::with_capacity(spans.len());
    let mut e = 0u64;
    for s in &spans {
        e = e.checked_add(s.count).ok_or_else(|| bad("the tensor pieces overflow"))?;
        ends.push(e);
    }
    if e != count {
        return Err(bad(format!("the tensor pieces cover {e} elements, the group has {count}")));
    }
    Ok((spans, ends))
}

/// Per-span rates from the blocks' KLs and message bits.
fn rates_of(blocks: &[BlockKl], bits: &[u32], nspans: usize, budgeted: bool) -> Vec<TensorRate> {
    let mut r = vec![TensorRate::default(); nspans];
    for (b, &m) in blocks.iter().zip(bits) {
        let m = m as f64;
        let excess = b.kl - m;
        let n: u32 = b.parts.iter().map(|p| p.2).sum();
        for &(s, kl, cnt) in &b.parts {
            let t = &mut r[s as usize];
            t.kl_bits += kl;
            t.message_bits += if b.kl > 0.0 { m * (kl / b.kl) } else { m * cnt as f64 / n as f64 };
            t.blocks += 1;
            t.over_budget_blocks += (budgeted && b.kl > m) as u64;
            t.worst_excess_bits = Some(t.worst_excess_bits.map_or(excess, |w| w.max(excess)));
        }
    }
    r
}

/// Offsets of the blocks in `order`.
fn offsets(sizes: &[u32]) -> Vec<usize> {
    let mut offs = Vec::with_capacity(sizes.len());
    let mut o = 0usize;
    for &s in sizes {
        offs.push(o);
        o += s as usize;
    }
    offs
}

/// Checks a group's blocks against the method's budget without coding them (`elem_kl`: the
/// KL in bits of the group's elements, coded-vector order; see `EncodeInput::max_excess`).
/// Returns the budget in bits (`None`: the method has none, nothing to check).
pub fn check_group_budget(
    g: &Group,
    gid: u32,
    elem_kl: &[f64],
    spans: &[Span<'_>],
    method: Method,
    opts: &Options,
    max_excess: Option<f64>,
) -> Result<Option<u32>, FormatError> {
    check_max_excess(max_excess)?;
    let budget = method.budget_bits(opts);
    if max_excess.is_none() || budget.is_none() {
        return Ok(budget);
    }
    if elem_kl.len() as u64 != g.count {
        return Err(bad("the element KLs do not match the group"));
    }
    let (spans, ends) = span_ends(spans, g.count)?;
    let (order, sizes) = (order(g), g.sizes());
    let blocks = block_kls(&order, &sizes, &offsets(&sizes), &ends, |k| elem_kl[k]);
    check_blocks(gid, &blocks, &spans, &ends, method, opts, max_excess)?;
    Ok(budget)
}

fn check_max_excess(max_excess: Option<f64>) -> Result<(), FormatError> {
    match max_excess {
        Some(x) if x.is_nan() => Err(bad("max_excess must be a number of bits or None")),
        _ => Ok(()),
    }
}

type BlockResult = Result<(Message, Vec<f32>, u32, u64), FormatError>;

/// What `assemble` returns: the sink, the file length, the digests and the decoded coded vector.
pub type Assembled<W> = (W, u64, Vec<[u8; 32]>, Vec<f32>);

/// KL(N(qm, qs²) ‖ N(pm, ps²)) in bits.
pub fn kl_bits(qm: f64, qs: f64, pm: f64, ps: f64) -> f64 {
    let r = qs / ps;
    let d = (qm - pm) / ps;
    (0.5 * (r * r + d * d - 1.0) - r.ln()) / std::f64::consts::LN_2
}

/// Whether a coded element is valid: finite means, positive finite stds.
pub fn valid_element(qm: f64, qs: f64, pm: f32, ps: f32) -> bool {
    qm.is_finite() && pm.is_finite() && qs > 0.0 && qs.is_finite() && ps > 0.0 && ps.is_finite()
}

/// The KL-greedy rule of group `group` (COMBINER): its elements, with KLs `elem_kl` in
/// coded-vector order, taken in the group's seeded permutation and packed into blocks of
/// at most `budget` bits of KL and `max_size` elements.
pub fn kl_greedy_rule(seed: u64, group: u32, elem_kl: &[f64], budget: f64, max_size: u32) -> Rule {
    let perm = permutation(seed, group, elem_kl.len() as u32);
    Rule::Sizes { sizes: kl_greedy_sizes(perm.iter().map(|&i| elem_kl[i as usize]), budget, max_size) }
}

/// The group `g` of a streaming encoder: elements `start ..` of the coded vector with
/// posterior (`qm`, `qs`) and prior (`pm`, `ps`), checked, laid out by `layout` (the fixed
/// rule needs its block size). Returns the group and the KL of each element in bits.
#[allow(clippy::too_many_arguments)]
pub fn stream_group(
    g: u32,
    seed: u64,
    start: u64,
    qm: &[f64],
    qs: &[f64],
    pm: &[f32],
    ps: &[f32],
    layout: LayoutRule,
    bits_per_block: f64,
) -> Result<(Group, Vec<f64>), FormatError> {
    let count = qm.len() as u64;
    if count == 0 || [qs.len(), pm.len(), ps.len()].iter().any(|&l| l as u64 != count) {
        return Err(bad("a group needs q_mean, q_std, p_mean and p_std of one positive length"));
    }
    let most = Limits::default().max_group_elements;
    if count > most {
        return Err(bad(format!("groups have at most {most} elements")));
    }
    let mut kl = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        if !valid_element(qm[i], qs[i], pm[i], ps[i]) {
            return Err(bad(format!(
                "element {} of the group: means must be finite and stds positive and finite",
                start + i as u64
            )));
        }
        kl.push(kl_bits(qm[i], qs[i], pm[i] as f64, ps[i] as f64));
    }
    let size = match layout {
        LayoutRule::Fixed { block_size: Some(s) } | LayoutRule::Kl { max_block_size: s } => s,
        LayoutRule::Fixed { block_size: None } => return Err(bad("a streaming group needs a block size")),
    };
    if size == 0 || size as usize > MAX_BLOCK_DIM {
        return Err(bad(format!("block sizes must be in 1..={MAX_BLOCK_DIM}")));
    }
    let rule = match layout {
        LayoutRule::Fixed { .. } => Rule::Fixed { size },
        LayoutRule::Kl { .. } => {
            if !(bits_per_block > 0.0 && bits_per_block.is_finite()) {
                return Err(bad("bits_per_block must be positive"));
            }
            kl_greedy_rule(seed, g, &kl, bits_per_block, size)
        }
    };
    Ok((Group { id: g, seed, start, count, rule }, kl))
}

fn bad(msg: impl Into<String>) -> FormatError {
    FormatError::InvalidInput(msg.into())
}

/// Checks a tensor name and shape; returns the element count.
pub fn check_tensor(name: &str, shape: &[u64], limits: &Limits) -> Result<u64, FormatError> {
    if name.is_empty() || name.len() as u64 > limits.max_name_bytes {
        return Err(bad(format!("tensor names must have 1 to {} bytes", limits.max_name_bytes)));
    }
    if shape.len() as u64 > limits.max_rank {
        return Err(bad(format!("tensor {name:?} has more than {} dimensions", limits.max_rank)));
    }
    shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d).filter(|&n| n <= limits.max_elements))
        .ok_or_else(|| bad(format!("tensor {name:?} has more than {} elements", limits.max_elements)))
}

/// Codes the blocks of one group. `qm`, `qs`, `pm`, `ps` are the group's elements in
/// coded-vector order and `spans` the tensor pieces they belong to (empty: the group as one
/// unnamed piece); block j reads stream id `gid · 2^32 + j` (`gid` is the group id, or
/// `instance · groups + group` in a file with instances). Every block's KL is computed
/// first, and with `max_excess` a block over its budget is refused before any is coded.
/// Returns the messages, the decoded values (same order), the bits of each block, the
/// steps taken and the rate of each span.
#[allow(clippy::too_many_arguments)]
pub fn encode_group(
    g: &Group,
    gid: u32,
    qm: &[f64],
    qs: &[f64],
    pm: &[f32],
    ps: &[f32],
    spans: &[Span<'_>],
    seed: u64,
    method: Method,
    opts: &Options,
    max_excess: Option<f64>,
) -> Result<GroupCoded, FormatError> {
    let never = AtomicBool::new(false);
    encode_group_cancellable(g, gid, qm, qs, pm, ps, spans, seed, method, opts, max_excess, &never)
}

/// [`encode_group`] that stops early when `cancel` becomes true: every block checks it
/// before it is coded, so a cancelled call returns [`FormatError::Cancelled`] within one
/// block's time. Cancelling never changes what an uncancelled call returns.
#[allow(clippy::too_many_arguments)]
pub fn encode_group_cancellable(
    g: &Group,
    gid: u32,
    qm: &[f64],
    qs: &[f64],
    pm: &[f32],
    ps: &[f32],
    spans: &[Span<'_>],
    seed: u64,
    method: Method,
    opts: &Options,
    max_excess: Option<f64>,
    cancel: &AtomicBool,
) -> Result<GroupCoded, FormatError> {
    check_max_excess(max_excess)?;
    let n = g.count as usize;
    if [qm.len(), qs.len(), pm.len(), ps.len()].iter().any(|&l| l != n) {
        return Err(bad(format!(
            "a group of {n} elements needs {n} values of q_mean, q_std, p_mean and p_std"
        )));
    }
    let (spans, ends) = span_ends(spans, g.count)?;
    let order = order(g);
    let sizes = g.sizes();
    let keys = Keys::new(seed);
    let offs = offsets(&sizes);
    let kls = block_kls(&order, &sizes, &offs, &ends, |k| kl_bits(qm[k], qs[k], pm[k] as f64, ps[k] as f64));
    check_blocks(gid, &kls, &spans, &ends, method, opts, max_excess)?;
    let results: Vec<BlockResult> = (0..sizes.len())
        .into_par_iter()
        .with_max_len(1)
        .map(|j| {
            if cancel.load(Ordering::Relaxed) {
                return Err(FormatError::Cancelled);
            }
            let idx = &order[offs[j]..offs[j] + sizes[j] as usize];
            let gq = |v: &[f64]| idx.iter().map(|&k| v[k as usize]).collect::<Vec<f64>>();
            let gp = |v: &[f32]| idx.iter().map(|&k| v[k as usize]).collect::<Vec<f32>>();
            let (a, b, c, d) = (gq(qm), gq(qs), gp(pm), gp(ps));
            let t = Target { q_mean: &a, q_std: &b, p_mean: &c, p_std: &d };
            let mut sample = vec![0f32; idx.len()];
            let e = channel::encode(method, &t, &keys, block_id(g.id, j as u32), opts, &mut sample).map_err(
                |e| match e {
                    ChannelError::IterationCap { .. } | ChannelError::DepthLimit { .. } => {
                        FormatError::Sampler(format!("group {} block {j}: {e}", g.id))
                    }
                    e => FormatError::InvalidInput(format!("group {} block {j}: {e}", g.id)),
                },
            )?;
            Ok((e.message, sample, e.bits, e.steps))
        })
        .collect();
    let mut messages = Vec::with_capacity(sizes.len());
    let mut values = vec![0f32; n];
    let mut bits = Vec::with_capacity(sizes.len());
    let mut steps = 0u64;
    for (j, r) in results.into_iter().enumerate() {
        let (m, s, b, st) = r?;
        for (v, &k) in s.iter().zip(&order[offs[j]..]) {
            values[k as usize] = *v;
        }
        messages.push(m);
        bits.push(b);
        steps += st;
    }
    let rate = rates_of(&kls, &bits, spans.len(), method.budget_bits(opts).is_some());
    Ok(GroupCoded {
        messages: Messages { group: gid, method, options: opts.clone(), messages },
        values,
        bits,
        steps,
        rate,
    })
}

/// Block sizes of a fixed layout that gives about `bits_per_block` of KL per block.
pub fn fixed_block_size(n: u64, kl_total: f64, bits_per_block: f64) -> u32 {
    let blocks = (kl_total / bits_per_block).ceil().max(1.0).min(n.max(1) as f64) as u64;
    n.div_ceil(blocks).clamp(1, MAX_BLOCK_DIM as u64) as u32
}

/// Checks that a method and options can be stored in a file.
pub fn check_method(method: Method, opts: &Options) -> Result<(), FormatError> {
    channel::validate(method, opts, 1).or_else(|e| match e {
        ChannelError::Unsupported(_) => Ok(()),
        e => Err(bad(e.to_string())),
    })?;
    if min_message_bits(method, opts) == 0 {
        return Err(bad(format!(
            "{method} with bits=0 sends nothing; files need at least one bit per block"
        )));
    }
    Ok(())
}

/// Encodes tensors into a file written to `out`, in canonical chunk order; returns the
/// sink and what was written. The bytes depend only on the input, never on the order the
/// tensors are given in or on the thread count. Errors: `InvalidInput` for an invalid
/// argument (a repeated or empty name, a length that does not match the shape, a
/// non-finite mean or a non-positive std, an out-of-range option, or a target the method cannot code),
/// `Sampler` when a sampler reaches its limit, `Io` when writing fails.
///
/// # Examples
///
/// A coded tensor with a per-layer prior and a raw tensor, written to memory:
///
/// ```
/// use relcode::channel::{Method, Options};
/// use relcode::coding::{self, EncodeInput, LayoutRule, PriorArg, TensorInput, TensorSource};
/// use relcode::format::{self, DigestMode, Dtype};
///
/// let q_mean: Vec<f64> = (0..64).map(|i| 0.01 * (i % 8) as f64 - 0.04).collect();
/// let q_std = vec![0.05; 64];
/// let bias: Vec<u8> = [1.5f32, -0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
/// let input = EncodeInput {
///     tensors: vec![
///         TensorInput {
///             name: "weight".into(),
///             shape: vec![8, 8],
///             source: TensorSource::Coded {
///                 q_mean: &q_mean,
///                 q_std: &q_std,
///                 p_mean: PriorArg::Scalar(0.0),
///                 p_std: PriorArg::Scalar(0.1),
///             },
///         },
///         TensorInput {
///             name: "bias".into(),
///             shape: vec![2],
///             source: TensorSource::Raw { dtype: Dtype::F32, bytes: &bias },
///         },
///     ],
///     seed: 7,
///     method: Method::Pfr,
///     options: Options { bits: Some(8), ..Options::default() }, // truncated pfr, 2^8 candidates
///     bits_per_block: 8.0,
///     layout: LayoutRule::Kl { max_block_size: 25 },
///     chunk_size: 1 << 20,
///     digest: DigestMode::Tensor,
///     meta: None,
///     max_excess: None,
/// };
/// let (bytes, report) = coding::encode(Vec::new(), &input)?;
/// assert_eq!(report.bytes, bytes.len() as u64);
/// assert_eq!(bytes[..8], format::MAGIC);
/// // The header lists the tensors sorted by name; one digest per tensor.
/// let names: Vec<&str> = report.header.tensors.iter().map(|t| t.name.as_str()).collect();
/// assert_eq!(names, ["bias", "weight"]);
/// assert_eq!(report.digests.len(), 2);
/// assert_eq!(report.bits, 8 * report.blocks); // every block's message has 8 bits
/// assert_eq!(report.coded.len(), 64); // the sample the decoder will return
/// # Ok::<(), relcode::format::FormatError>(())
/// ```
pub fn encode<W: Write>(out: W, input: &EncodeInput<'_>) -> Result<(W, EncodeReport), FormatError> {
    encode_cancellable(out, input, &AtomicBool::new(false))
}

/// [`encode`] that stops early with [`FormatError::Cancelled`] when `cancel` becomes true
/// (checked before each block is coded); an uncancelled call writes the same bytes.
pub fn encode_cancellable<W: Write>(
    out: W,
    input: &EncodeInput<'_>,
    cancel: &AtomicBool,
) -> Result<(W, EncodeReport), FormatError> {
    let limits = Limits::default();
    check_method(input.method, &input.options)?;
    check_max_excess(input.max_excess)?;
    if !(input.bits_per_block > 0.0 && input.bits_per_block.is_finite()) {
        return Err(bad("bits_per_block must be positive"));
    }
    if input.chunk_size == 0 || input.chunk_size > limits.max_group_elements {
        return Err(bad(format!("chunk_size must be in 1..={}", limits.max_group_elements)));
    }
    if input.tensors.len() as u64 > limits.max_tensors {
        return Err(bad("too many tensors"));
    }
    // Sort by name: the bytes never depend on the order tensors were given in.
    let mut order: Vec<usize> = (0..input.tensors.len()).collect();
    order.sort_by(|&a, &b| input.tensors[a].name.as_bytes().cmp(input.tensors[b].name.as_bytes()));
    for w in order.windows(2) {
        if input.tensors[w[0]].name == input.tensors[w[1]].name {
            return Err(bad(format!("tensor name {:?} is repeated", input.tensors[w[0]].name)));
        }
    }
    let tensors: Vec<&TensorInput<'_>> = order.iter().map(|&i| &input.tensors[i]).collect();
    let mut infos = Vec::with_capacity(tensors.len());
    let mut total = 0u64;
    for t in &tensors {
        let n = check_tensor(&t.name, &t.shape, &limits)?;
        total = total
            .checked_add(n)
            .filter(|&x| x <= limits.max_elements)
            .ok_or_else(|| bad("too many elements"))?;
        let (dtype, prior) = match &t.source {
            TensorSource::Coded { q_mean, q_std, p_mean, p_std } => {
                for (what, len) in [("q_mean", q_mean.len()), ("q_std", q_std.len())] {
                    if len as u64 != n {
                        return Err(bad(format!(
                            "{:?}: {what} has {len} elements, the shape says {n}",
                            t.name
                        )));
                    }
                }
                for (what, p) in [("p_mean", p_mean), ("p_std", p_std)] {
                    if let PriorArg::Elements(v) = p {
                        if v.len() as u64 != n {
                            return Err(bad(format!(
                                "{:?}: {what} has {} elements, the shape says {n}",
                                t.name,
                                v.len()
                            )));
                        }
                    }
                }
                (Dtype::F32, Some(Prior { mean: p_mean.value(), std: p_std.value() }))
            }
            TensorSource::Raw { dtype, bytes } => {
                if bytes.len() as u64 != n * dtype.size() {
                    return Err(bad(format!(
                        "{:?}: raw data has {} bytes, expected {}",
                        t.name,
                        bytes.len(),
                        n * dtype.size()
                    )));
                }
                (*dtype, None)
            }
        };
        infos.push(TensorInfo { name: t.name.clone(), shape: t.shape.clone(), dtype, prior });
    }
    // The coded vector, gathered (posterior in f64, prior in f32) with per-element checks.
    let mut qm = Vec::new();
    let mut qs = Vec::new();
    let mut pm = Vec::new();
    let mut ps = Vec::new();
    let mut kl = vec![0f64; tensors.len()];
    let mut elem_kl = Vec::new();
    for (ti, t) in tensors.iter().enumerate() {
        if let TensorSource::Coded { q_mean, q_std, p_mean, p_std } = &t.source {
            for i in 0..q_mean.len() {
                let (a, b, c, d) = (q_mean[i], q_std[i], p_mean.at(i), p_std.at(i));
                if !valid_element(a, b, c, d) {
                    return Err(bad(format!(
                        "{:?} element {i}: means must be finite and stds positive and finite",
                        t.name
                    )));
                }
                let k = kl_bits(a, b, c as f64, d as f64);
                kl[ti] += k;
                elem_kl.push(k);
                qm.push(a);
                qs.push(b);
                pm.push(c);
                ps.push(d);
            }
        }
    }
    let n = qm.len() as u64;
    // Layout.
    let ngroups = n.div_ceil(input.chunk_size);
    if ngroups > u32::MAX as u64 {
        return Err(bad("too many groups; raise chunk_size"));
    }
    let fixed = match input.layout {
        LayoutRule::Fixed { block_size: Some(s) } => {
            if s == 0 || s as usize > MAX_BLOCK_DIM {
                return Err(bad(format!("block_size must be in 1..={MAX_BLOCK_DIM}")));
            }
            Some(s)
        }
        LayoutRule::Fixed { block_size: None } => {
            Some(fixed_block_size(n, elem_kl.iter().sum(), input.bits_per_block))
        }
        LayoutRule::Kl { max_block_size } => {
            if max_block_size == 0 || max_block_size as usize > MAX_BLOCK_DIM {
                return Err(bad(format!("max_block_size must be in 1..={MAX_BLOCK_DIM}")));
            }
            None
        }
    };
    let groups: Vec<Group> = (0..ngroups)
        .into_par_iter()
        .map(|g| {
            let start = g * input.chunk_size;
            let count = input.chunk_size.min(n - start);
            let rule = match (fixed, input.layout) {
                (Some(size), _) => Rule::Fixed { size },
                (None, LayoutRule::Kl { max_block_size }) => {
                    let kl = &elem_kl[start as usize..(start + count) as usize];
                    kl_greedy_rule(input.seed, g as u32, kl, input.bits_per_block, max_block_size)
                }
                _ => unreachable!(),
            };
            Group { id: g as u32, seed: input.seed, start, count, rule }
        })
        .collect();
    // The tensor pieces of each group (coded tensors, coded-vector order).
    let mut coded_starts = Vec::new();
    let mut c = 0u64;
    for (ti, t) in tensors.iter().enumerate() {
        if let TensorSource::Coded { q_mean, .. } = &t.source {
            coded_starts.push((ti, c, q_mean.len() as u64));
            c += q_mean.len() as u64;
        }
    }
    let spans_of = |g: &Group| -> (Vec<usize>, Vec<Span<'_>>) {
        let (e0, e1) = (g.start, g.start + g.count);
        coded_starts
            .iter()
            .filter_map(|&(ti, s, len)| {
                let (a, b) = (s.max(e0), (s + len).min(e1));
                (a < b).then(|| (ti, Span { name: &tensors[ti].name, first: a - s, count: b - a }))
            })
            .unzip()
    };
    // Every block's KL is known from the layout: refuse an over-budget block before coding any.
    if input.max_excess.is_some() && input.method.budget_bits(&input.options).is_some() {
        for g in &groups {
            let r = g.start as usize..(g.start + g.count) as usize;
            let (_, spans) = spans_of(g);
            check_group_budget(g, g.id, &elem_kl[r], &spans, input.method, &input.options, input.max_excess)?;
        }
    }
    // Code every group.
    let mut coded = vec![0f32; n as usize];
    let mut all_msgs = Vec::with_capacity(groups.len());
    let (mut bits, mut steps, mut blocks) = (0u64, 0u64, 0u64);
    let mut rate = vec![TensorRate::default(); tensors.len()];
    for g in &groups {
        let r = g.start as usize..(g.start + g.count) as usize;
        let (slots, spans) = spans_of(g);
        let out = encode_group_cancellable(
            g,
            g.id,
            &qm[r.clone()],
            &qs[r.clone()],
            &pm[r.clone()],
            &ps[r.clone()],
            &spans,
            input.seed,
            input.method,
            &input.options,
            input.max_excess,
            cancel,
        )?;
        coded[r].copy_from_slice(&out.values);
        bits += out.bits.iter().map(|&x| x as u64).sum::<u64>();
        blocks += out.messages.messages.len() as u64;
        steps += out.steps;
        for (&ti, tr) in slots.iter().zip(&out.rate) {
            rate[ti].merge(tr);
        }
        all_msgs.push(out.messages);
    }
    // The tensor's KL exactly as `kl` reports it (summed in element order).
    for (r, &k) in rate.iter_mut().zip(&kl) {
        r.kl_bits = k;
    }
    let mut header = Header::new(input.seed);
    header.digest = input.digest;
    header.tensors = infos;
    header.groups = ngroups;
    header.meta = input.meta.clone();
    let raw: Vec<(usize, &[u8])> = tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.source {
            TensorSource::Raw { bytes, .. } => Some((i, bytes)),
            _ => None,
        })
        .collect();
    let elems: Vec<(usize, Role, &[f32])> = tensors
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            let mut v = Vec::new();
            if let TensorSource::Coded { p_mean, p_std, .. } = t.source {
                if let PriorArg::Elements(x) = p_mean {
                    v.push((i, Role::PriorMean, x));
                }
                if let PriorArg::Elements(x) = p_std {
                    v.push((i, Role::PriorStd, x));
                }
            }
            v
        })
        .collect();
    let (out, bytes, digests) =
        write_file(out, &header, &header.tensors.clone(), &raw, &elems, &groups, &all_msgs, &coded)?;
    Ok((out, EncodeReport { header, groups: ngroups, blocks, bits, bytes, kl, digests, coded, steps, rate }))
}

/// Writes a complete file in canonical chunk order. `tensors` are the tensors the file
/// decodes to (the header's, or the base's for a file with a base, in which case `raw`,
/// `elems` and the LAYO chunks are not written). `coded` is the decoded coded vector.
#[allow(clippy::too_many_arguments)]
pub fn write_file<W: Write>(
    out: W,
    header: &Header,
    tensors: &[TensorInfo],
    raw: &[(usize, &[u8])],
    elems: &[(usize, Role, &[f32])],
    groups: &[Group],
    msgs: &[Messages],
    coded: &[f32],
) -> Result<(W, u64, Vec<[u8; 32]>), FormatError> {
    let own = header.base.is_none();
    let mut w = Writer::new(out, header, tensors)?;
    if !own {
        for &(t, bytes) in raw {
            w.hash_raw(t, 0, bytes)?;
        }
    } else {
        for &(t, bytes) in raw {
            let size = tensors[t].dtype.size();
            let n = bytes.len() as u64 / size;
            let mut s = 0u64;
            loop {
                let e = (s + RAW_PIECE).min(n);
                w.data(Role::Raw, t, s, &bytes[(s * size) as usize..(e * size) as usize])?;
                s = e;
                if s >= n {
                    break;
                }
            }
        }
    }
    // Coded-vector start of each tensor.
    let mut starts = Vec::with_capacity(tensors.len());
    let mut c = 0u64;
    for t in tensors {
        starts.push(c);
        if t.coded() {
            c += t.numel();
        }
    }
    if !own {
        // Messages only. `msgs[i · G + g]` holds instance i's messages of group g; the MSGS
        // chunk of group g holds every instance's, instance by instance.
        let ng = groups.len();
        let n: u64 = groups.iter().map(|g| g.count).sum();
        let k = msgs.len().checked_div(ng).unwrap_or(0);
        for (gi, g) in groups.iter().enumerate() {
            let first = &msgs[gi];
            let mut merged = Messages {
                group: gi as u32,
                method: first.method,
                options: first.options.clone(),
                messages: Vec::new(),
            };
            for i in 0..k {
                let m = &msgs[i * ng + gi];
                if m.method != first.method || m.options != first.options {
                    return Err(bad("every instance of a group must use one method and one set of options"));
                }
                merged.messages.extend_from_slice(&m.messages);
                let start = i as u64 * n + g.start;
                w.hash_coded(start, &coded[start as usize..(start + g.count) as usize])?;
            }
            w.chunk(MSGS, 0, &messages_payload(&merged)?)?;
        }
        return w.finish();
    }
    for (gi, g) in groups.iter().enumerate() {
        if own {
            for &(t, role, vals) in elems {
                let (s, e) = (starts[t], starts[t] + tensors[t].numel());
                let (a, b) = (s.max(g.start), e.min(g.start + g.count));
                if a < b {
                    let bytes: Vec<u8> = vals[(a - s) as usize..(b - s) as usize]
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect();
                    w.data(role, t, a - s, &bytes)?;
                }
            }
            w.layout(g)?;
        }
        if header.messages {
            let r = g.start as usize..(g.start + g.count) as usize;
            w.messages(&msgs[gi], g.start, &coded[r])?;
        }
    }
    w.finish()
}

/// A file assembled from a caller's layout and messages (the progressive encoders).
pub struct Assembly<'a> {
    /// The header to write; its tensors (without a base) must be sorted by name, and its
    /// `groups` must equal `groups.len()`.
    pub header: Header,
    /// Raw tensors (index into the header's tensors, bytes).
    pub raw: Vec<(usize, &'a [u8])>,
    /// Per-element priors (tensor index, role, values).
    pub elems: Vec<(usize, Role, &'a [f32])>,
    /// The layout groups, numbered 0.. and tiling the coded vector in order (ignored for a
    /// file with a base, whose layout is the base's).
    pub groups: Vec<Group>,
    /// One per group when the header says the file holds messages.
    pub messages: Vec<Messages>,
}

/// Writes an assembled file, decoding its messages to compute the digests. `base` must be
/// given when the header names one; then tensors, priors and groups come from it.
pub fn assemble<W: Write>(
    out: W,
    a: &Assembly<'_>,
    base: Option<&Reader>,
) -> Result<Assembled<W>, FormatError> {
    let limits = Limits::default();
    let h = &a.header;
    let (tensors, groups): (Vec<TensorInfo>, Vec<Group>) = match (h.base, base) {
        (Some(_), Some(b)) => (b.tensors()?.to_vec(), b.groups()?.to_vec()),
        (Some(_), None) => return Err(bad("the header names a base file; pass it")),
        (None, _) => (h.tensors.clone(), a.groups.clone()),
    };
    if h.base.is_none() {
        // Check the header and the layout as a reader would.
        Header::parse(&h.to_bytes(), &limits).map_err(|e| bad(e.to_string()))?;
        let mut at = 0u64;
        for (i, g) in groups.iter().enumerate() {
            g.validate(&limits).map_err(|e| bad(e.to_string()))?;
            if g.id as usize != i || g.start != at {
                return Err(bad("groups must be numbered 0.. and tile the coded vector in order"));
            }
            at += g.count;
        }
        let coded: u64 = tensors.iter().filter(|t| t.coded()).map(|t| t.numel()).sum();
        if at != coded || h.groups != groups.len() as u64 {
            return Err(bad(format!("the groups cover {at} elements, the coded tensors have {coded}")));
        }
    }
    let n: u64 = groups.iter().map(|g| g.count).sum();
    let k = h.instances.unwrap_or(1);
    if h.instances.is_some() && h.base.is_none() {
        return Err(bad("only a file with a base holds instances"));
    }
    let total =
        k.checked_mul(n).filter(|&t| t <= limits.max_elements).ok_or_else(|| bad("too many elements"))?;
    if k.checked_mul(groups.len() as u64).is_none_or(|m| m > u32::MAX as u64 + 1) {
        return Err(bad("too many instances"));
    }
    let mut coded = vec![0f32; if h.messages { total as usize } else { 0 }];
    if h.messages {
        if a.messages.len() as u64 != k * groups.len() as u64 {
            return Err(bad(format!(
                "{} message groups for {k} instances of {} layout groups",
                a.messages.len(),
                groups.len()
            )));
        }
        let ng = groups.len().max(1);
        for (mi, m) in a.messages.iter().enumerate() {
            let g = &groups[mi % ng];
            check_method(m.method, &m.options)?;
            if m.group as usize != mi {
                return Err(bad("messages must be given in group order"));
            }
            let (pm, ps) = match base {
                Some(b) if h.base.is_some() => b.prior_range(g.start, g.start + g.count)?,
                _ => prior_of(&tensors, &a.elems, g.start, g.start + g.count)?,
            };
            let start = (mi / ng) as u64 * n + g.start;
            let r = start as usize..(start + g.count) as usize;
            decode_group(g, mi as u32, m, GroupPrior::from_elements(&pm, &ps), h.seed, &mut coded[r])
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    // A file with a base hashes the base's raw tensors too (they are part of what it decodes to).
    let mut base_raw: Vec<(usize, Vec<u8>)> = Vec::new();
    if let (Some(_), Some(b)) = (h.base, base) {
        for (t, info) in tensors.iter().enumerate() {
            if !info.coded() {
                let mut v = vec![0u8; (info.numel() * info.dtype.size()) as usize];
                b.read_raw(t, &mut v)?;
                base_raw.push((t, v));
            }
        }
    }
    let raw: Vec<(usize, &[u8])> =
        if h.base.is_some() { base_raw.iter().map(|(t, v)| (*t, &v[..])).collect() } else { a.raw.clone() };
    let (out, bytes, digests) = write_file(out, h, &tensors, &raw, &a.elems, &groups, &a.messages, &coded)?;
    Ok((out, bytes, digests, coded))
}

/// The prior of coded-vector range [e0, e1) from header scalars and per-element arrays.
fn prior_of(
    tensors: &[TensorInfo],
    elems: &[(usize, Role, &[f32])],
    e0: u64,
    e1: u64,
) -> Result<(Vec<f32>, Vec<f32>), FormatError> {
    let n = (e1 - e0) as usize;
    let (mut pm, mut ps) = (vec![0f32; n], vec![0f32; n]);
    let mut s = 0u64;
    for (t, info) in tensors.iter().enumerate() {
        let Some(p) = info.prior else { continue };
        let e = s + info.numel();
        let (a, b) = (s.max(e0), e.min(e1));
        if a < b {
            for (val, role, out) in [(p.mean, Role::PriorMean, &mut pm), (p.std, Role::PriorStd, &mut ps)] {
                let dst = &mut out[(a - e0) as usize..(b - e0) as usize];
                match val {
                    PriorValue::Scalar(x) => dst.fill(x),
                    PriorValue::Elements => {
                        let v = elems
                            .iter()
                            .find(|(tt, r, _)| *tt == t && *r == role)
                            .ok_or_else(|| {
                                bad(format!("{:?}: per-element prior values are missing", info.name))
                            })?
                            .2;
                        if v.len() as u64 != info.numel() {
                            return Err(bad(format!(
                                "{:?}: the prior has the wrong number of elements",
                                info.name
                            )));
                        }
                        dst.copy_from_slice(&v[(a - s) as usize..(b - s) as usize]);
                    }
                }
            }
        }
        s = e;
    }
    for i in 0..n {
        if !(pm[i].is_finite() && ps[i].is_finite() && ps[i] > 0.0) {
            return Err(bad(format!(
                "coded element {}: the prior needs a finite mean and a positive std",
                e0 + i as u64
            )));
        }
    }
    Ok((pm, ps))
}

//! A* coding (Flamich, Markou and Hernandez-Lobato 2022): the global bound, AS* (sample
//! splitting), AD* (dyadic splitting) and DAD* (depth-limited AD*).
//!
//! All four are A* sampling (Maddison, Tarlow and Minka 2014) run on one unit-rate Poisson
//! process with marks from P: a point (t, x) scores t / r(x), and the point with the least
//! score is distributed exactly as Q (the mapping theorem turns the process of
//! (t / r(x), x) into one with mean measure Lebesgue x Q). A* sampling finds that point
//! without visiting the whole process by organising it as a tree of regions: node B holds
//! the first point of the process in B after its parent's time, so its time is the
//! parent's plus Exp(1) / P(B), and no point in B's subtree can score below
//! t_B / sup_B r. The search pops nodes in order of that bound and stops when the bound of
//! every unexplored node is no better than the best score seen.
//!
//! - **Global bound** (`astar`): one region, the whole space; the tree is a chain, node n is
//!   arrival n of the candidate stream, and the message is exactly PFR's arrival index. The
//!   times are kept as Gumbels G_n = -ln T_n in log space (G_n = TruncGumbel(G_{n-1})), so
//!   nothing overflows or loses resolution however large D_inf is (float32 times break
//!   published implementations above about 28 bits). Any dimension: it needs only log r and
//!   log r_max. Expected proposals exp(D_inf) + 1.
//! - **AS\*** splits a node at its own sample (both children stay A* nodes because a split
//!   may depend on the node's point); expected nodes O(D_inf) for unimodal 1D ratios.
//! - **AD\*** splits at the P-median of the node, so the heap index alone locates a node and
//!   the decoder is O(1); nodes about D_inf / ln 2, and log2 of the heap index about KL bits.
//! - **DAD\*** never creates nodes deeper than `depth`: the search is then over a finite,
//!   stratified set of 2^(depth+1) - 1 points and the output is approximate (biased like
//!   MRC/ORC with that many candidates; the bias vanishes once depth exceeds KL by a few bits).
//!
//! The 1D methods work in P's quantile domain (`quantile`): intervals keep full precision
//! in both tails, node h's point is `Interval::sample(U_h)` with U_h the uniform at position h
//! of the block's NODE stream, and the decoded value is that point's binary32 quantile. The
//! decoders use only the interval arithmetic, `ndtri` and the stream, all deterministic
//! IEEE basic operations; the encoders' bounds and times may use the platform's libm. Heap
//! indices are u64: a search that needs a node deeper than 62 is an iteration-cap error,
//! never a wrong sample.

use super::candidates::GROUP;
use super::fixed::exponentials;
use super::gaussian::{Block, Std1};
use super::quantile::{Coord, Interval};
use super::{ChannelError, Keys, Message, Method, Options};
use crate::stream::{candidate_weight, Stream, Supported};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Deepest node a tree search may use: heap indices of depth 62 lie in [2^62, 2^63).
pub const MAX_DEPTH: u32 = 62;

/// Smallest standardised target std (q_std / p_std) the 1D tree samplers accept. The
/// quantile domain resolves 2^-54 near the median, so an interval of P-mass m carries a
/// relative mass error up to 2^-54 / m; targets narrower than this would search intervals
/// whose masses (and hence child times) are no longer accurate to ~1e-7.
pub const MIN_TREE_STD: f64 = 1e-9;

/// ln(exp(a) + exp(b)) without overflow.
#[inline]
fn logaddexp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// ln E for an Exp(1) draw E = -ln U, U the 52-bit uniform at position `p` of `noise`.
#[inline]
fn log_exponential(noise: &Stream, p: u64) -> f64 {
    (-noise.uniform_f64(p).ln()).ln()
}

fn finite_d_inf(method: Method, d_inf: f64) -> Result<f64, ChannelError> {
    if d_inf.is_finite() {
        Ok(d_inf)
    } else {
        Err(ChannelError::Unsupported(format!(
            "{method}: the target is too far from the prior for a finite bound on the density ratio; \
             use a fixed-budget method (mrc, orc, pfr with bits)"
        )))
    }
}

// ------------------------------------------------------------------------------------------
// Global bound
// ------------------------------------------------------------------------------------------

/// A* coding with the global bound: the top-down Gumbel process over the candidate stream.
/// Arrival n (1-based) is candidate n - 1 with Gumbel G_n = -ln T_n, T_n the arrival times
/// of PFR (the same encoder exponentials), so this selects PFR's index up to rounding.
pub(super) fn encode_global(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
    simd: Supported,
) -> Result<(Message, u64), ChannelError> {
    let d = block.dims.len();
    let log_r_max = finite_d_inf(Method::Astar, block.d_inf())?;
    let coef: Vec<(f64, f64)> = block.dims.iter().map(|s| (s.quad().0, s.quad().1)).collect();
    let offset = block.log_r_offset();
    let cand = Stream::with_key(keys.cand, id);
    let noise = Stream::with_key(keys.noise, id);
    let mut z = vec![0f32; GROUP * d];
    let mut w = [0u32; GROUP];
    let mut best = f64::NEG_INFINITY; // max over m < n of G_m + log r(X_m)
    let mut best_n = 0u64;
    let mut gumbel = 0f64;
    let mut g = 0u64;
    loop {
        cand.fill_normals_with(g * (GROUP * d) as u64, &mut z, simd);
        noise.fill_words_with(g * GROUP as u64, &mut w, simd);
        let e = exponentials(&w);
        for l in 0..GROUP {
            let n = g * GROUP as u64 + l as u64 + 1;
            // G_n = TruncGumbel(0, bound G_{n-1}) = -ln(exp(-G_{n-1}) + E_n)
            //     = G_{n-1} - ln(1 + E_n exp(G_{n-1})), and G_1 = -ln E_1.
            let en = e[l] as f64;
            gumbel = if n == 1 { -en.ln() } else { gumbel - (en * gumbel.exp()).ln_1p() };
            if best >= gumbel + log_r_max {
                return Ok((Message::new(best_n), n));
            }
            if n > opts.max_steps {
                return Err(ChannelError::IterationCap { method: Method::Astar, steps: opts.max_steps });
            }
            let mut lr = offset;
            for (j, &(a, b)) in coef.iter().enumerate() {
                let x = z[j * GROUP + l] as f64;
                lr += (a * x + b) * x;
            }
            let v = gumbel + lr;
            if v > best {
                best = v;
                best_n = n;
            }
        }
        g += 1;
    }
}

// ------------------------------------------------------------------------------------------
// Tree searches over the quantile domain (AS*, AD*, DAD*)
// ------------------------------------------------------------------------------------------

/// How a node's region is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// At the node's sample (AS*).
    Sample,
    /// At the P-median (AD*), children only down to `limit` (DAD*: the depth option).
    Dyadic { limit: u32 },
}

/// The density ratio of a standardised 1D target, in the form the bounds need:
/// log r(x) = log r_max - (x - nu)^2 / (2 kappa), free of cancellation.
struct Ratio {
    nu: f64,
    two_kappa: f64,
    log_r_max: f64,
}

impl Ratio {
    fn new(method: Method, s: &Std1) -> Result<Ratio, ChannelError> {
        if s.s < MIN_TREE_STD {
            return Err(ChannelError::Unsupported(format!(
                "{method} resolves targets down to q_std/p_std = {MIN_TREE_STD:e}, got {:e}; \
                 widen the posterior or use a fixed-budget method (mrc, orc, pfr with bits)",
                s.s
            )));
        }
        let log_r_max = finite_d_inf(method, s.d_inf())?;
        let (nu, kappa) = (s.nu(), s.kappa());
        if !(nu.is_finite() && kappa.is_finite() && kappa > 0.0) {
            finite_d_inf(method, f64::INFINITY)?;
        }
        Ok(Ratio { nu, two_kappa: 2.0 * kappa, log_r_max })
    }

    #[inline]
    fn log_r(&self, x: f64) -> f64 {
        let u = x - self.nu;
        self.log_r_max - u * u / self.two_kappa
    }

    /// sup of log r over [a, b]: r is unimodal with mode nu, so it is r(clip(nu, a, b)).
    #[inline]
    fn sup(&self, a: f64, b: f64) -> f64 {
        self.log_r(self.nu.min(b).max(a))
    }
}

/// A node waiting in the heap: its A* bound (the key), log time, heap index, region, and
/// the region's standard-normal endpoints (kept so that each quantile is computed once).
struct Node {
    key: f64,
    log_t: f64,
    h: u64,
    iv: Interval,
    xs: (f64, f64),
}

impl PartialEq for Node {
    fn eq(&self, o: &Node) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Node {}
impl PartialOrd for Node {
    fn partial_cmp(&self, o: &Node) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Node {
    /// Reversed, so that `BinaryHeap` pops the least key first (ties: the smaller index).
    fn cmp(&self, o: &Node) -> Ordering {
        o.key.total_cmp(&self.key).then(o.h.cmp(&self.h))
    }
}

/// Depth of heap index h >= 1: floor(log2 h).
#[inline]
fn depth_of(h: u64) -> u32 {
    63 - h.leading_zeros()
}

/// The node uniforms of a block: U_h at position h of (seed, NODE, id).
#[inline]
fn node_uniform(keys: &Keys, id: u64, h: u64) -> f64 {
    Stream::with_key(keys.node, id).uniform_f64(h)
}

fn search(
    method: Method,
    split: Split,
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let ratio = Ratio::new(method, &block.dims[0])?;
    let nodes = Stream::with_key(keys.node, id);
    let noise = Stream::with_key(keys.noise, id);
    let cap = |steps| Err(ChannelError::IterationCap { method, steps });

    let mut heap = BinaryHeap::new();
    let root_t = log_exponential(&noise, 1);
    let root = Node {
        key: root_t - ratio.log_r_max,
        log_t: root_t,
        h: 1,
        iv: Interval::FULL,
        xs: (f64::NEG_INFINITY, f64::INFINITY),
    };
    heap.push(root);
    let mut best = f64::INFINITY; // min over popped nodes of ln t - ln r(x)
    let mut best_h = 0u64;
    let mut steps = 0u64;
    while let Some(top) = heap.peek() {
        if top.key >= best {
            break;
        }
        let node = heap.pop().expect("peeked");
        if steps >= opts.max_steps {
            return cap(opts.max_steps);
        }
        let depth = depth_of(node.h);
        if depth > MAX_DEPTH {
            // a node beyond the deepest heap index a message may carry is needed
            return Err(ChannelError::DepthLimit { method, depth: MAX_DEPTH });
        }
        steps += 1;
        let x = node.iv.sample(nodes.uniform_f64(node.h));
        let xv = x.x();
        let v = node.log_t - ratio.log_r(xv);
        if v < best {
            best = v;
            best_h = node.h;
        }
        let (a, b) = node.xs;
        let (children, log_mass, mid) = match split {
            Split::Sample => {
                let (lo, hi) = node.iv.split(x);
                ([lo, hi], [lo.mass().ln(), hi.mass().ln()], xv)
            }
            Split::Dyadic { limit } => {
                if depth >= limit {
                    continue;
                }
                let k = node.h - (1u64 << depth);
                let lm = -((depth + 1) as f64) * std::f64::consts::LN_2;
                let lo = Interval::dyadic(depth + 1, 2 * k);
                ([lo, Interval::dyadic(depth + 1, 2 * k + 1)], [lm, lm], lo.hi.x())
            }
        };
        for (i, iv) in children.into_iter().enumerate() {
            if log_mass[i].is_nan() || log_mass[i] == f64::NEG_INFINITY {
                continue; // an empty region (or one an ulp wide, inverted by rounding) holds no point
            }
            let h = 2 * node.h + i as u64;
            let xs = if i == 0 { (a, mid) } else { (mid, b) };
            let log_t = logaddexp(node.log_t, log_exponential(&noise, h) - log_mass[i]);
            let key = log_t - ratio.sup(xs.0, xs.1);
            if key < best {
                heap.push(Node { key, log_t, h, iv, xs });
            }
        }
    }
    Ok((Message::new(best_h), steps))
}

pub(super) fn encode_as(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    search(Method::AsStar, Split::Sample, block, keys, id, opts)
}

pub(super) fn encode_ad(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    search(Method::AdStar, Split::Dyadic { limit: MAX_DEPTH + 1 }, block, keys, id, opts)
}

pub(super) fn encode_dad(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let limit = opts.depth.expect("validated: dad_star has a depth");
    search(Method::DadStar, Split::Dyadic { limit }, block, keys, id, opts)
}

/// Checks a heap index against the deepest node a method may send.
fn check_heap_index(method: Method, h: u64, max_depth: u32) -> Result<u32, ChannelError> {
    if h == 0 {
        return Err(ChannelError::InvalidMessage(format!("{method}: heap indices start at 1, got 0")));
    }
    let depth = depth_of(h);
    if depth > max_depth {
        return Err(ChannelError::InvalidMessage(format!(
            "{method}: heap index {h} is a node of depth {depth}, deeper than the limit {max_depth}"
        )));
    }
    Ok(depth)
}

fn write_weight(x: Coord, p_mean: &[f32], p_std: &[f32], out: &mut [f32]) {
    out[0] = candidate_weight(p_mean[0], p_std[0], x.z());
}

/// The point of AS* node h: walk from the root along the bits of h after its leading one
/// (0: lower part, 1: upper part), splitting each ancestor at its own point. O(depth).
pub fn as_point(keys: &Keys, id: u64, h: u64) -> Coord {
    let nodes = Stream::with_key(keys.node, id);
    let depth = depth_of(h);
    let mut iv = Interval::FULL;
    let mut cur = 1u64;
    for level in (0..depth).rev() {
        let x = iv.sample(nodes.uniform_f64(cur));
        let bit = (h >> level) & 1;
        let (lo, hi) = iv.split(x);
        iv = if bit == 0 { lo } else { hi };
        cur = 2 * cur + bit;
    }
    iv.sample(nodes.uniform_f64(h))
}

/// The point of AD* / DAD* node h = 2^d + k: the dyadic interval (d, k) sampled at U_h. O(1).
pub fn ad_point(keys: &Keys, id: u64, h: u64) -> Coord {
    let depth = depth_of(h);
    Interval::dyadic(depth, h - (1u64 << depth)).sample(node_uniform(keys, id, h))
}

pub(super) fn decode_as(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    _: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    check_heap_index(Method::AsStar, message.index, MAX_DEPTH)?;
    write_weight(as_point(keys, id, message.index), p_mean, p_std, out);
    Ok(())
}

pub(super) fn decode_ad(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    _: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    check_heap_index(Method::AdStar, message.index, MAX_DEPTH)?;
    write_weight(ad_point(keys, id, message.index), p_mean, p_std, out);
    Ok(())
}

pub(super) fn decode_dad(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let limit = opts.depth.expect("validated: dad_star has a depth");
    check_heap_index(Method::DadStar, message.index, limit)?;
    write_weight(ad_point(keys, id, message.index), p_mean, p_std, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logaddexp_is_stable() {
        assert_eq!(logaddexp(f64::NEG_INFINITY, 1.5), 1.5);
        assert!((logaddexp(1000.0, 1000.0) - (1000.0 + std::f64::consts::LN_2)).abs() < 1e-12);
        assert!((logaddexp(0.0, -800.0)).abs() < 1e-300);
    }

    #[test]
    fn bound_uses_the_mode_of_the_ratio() {
        // mu = 1, s = 0.5: nu = 4/3, not mu
        let r = Ratio::new(Method::AsStar, &Std1 { mu: 1.0, s: 0.5 }).unwrap();
        assert!((r.nu - 4.0 / 3.0).abs() < 1e-15);
        assert!((r.sup(0.0, f64::INFINITY) - r.log_r_max).abs() < 1e-12);
        assert!((r.sup(f64::NEG_INFINITY, 0.0) - r.log_r(0.0)).abs() < 1e-12);
        assert!((r.sup(2.0, 3.0) - r.log_r(2.0)).abs() < 1e-12);
    }

    #[test]
    fn as_and_ad_points_agree_at_the_root() {
        let keys = Keys::new(5);
        assert_eq!(as_point(&keys, 3, 1), ad_point(&keys, 3, 1));
    }
}

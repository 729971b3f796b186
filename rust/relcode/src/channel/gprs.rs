//! Greedy Poisson rejection sampling (Flamich 2023): global, parallel and branch-and-bound.
//!
//! Why it is exact. Shared randomness is a unit-rate Poisson process on time x P: arrival
//! times T_1 < T_2 < ... and marks X_n ~ P. GPRS accepts the first arrival under the graph
//! {(t, x): r(x) >= h(t)} of the solution of dh/dt = g(h), h(0) = 0, where
//! g(h) = E_P[(r - h)_+] is the target mass not yet accepted; by construction the first
//! point under the graph lands at x with density q(x), and E[N] = r_max = exp(D_inf)
//! exactly. The encoder never needs h itself: a point at time t is under the graph iff
//! t <= sigma(r(x)), with sigma = h^-1 the stretch function (`gaussian::Stretch`).
//! Errors in sigma would bias the sample, never decodability: the decoder only replays
//! which point was accepted.
//!
//! - Global: arrival n is candidate n - 1 of the candidate stream, its exponential gap the
//!   uniform n - 1 of the noise stream. The message is n (universal code).
//! - Parallel: J sub-processes of rate 1/J (superposed, they are one unit-rate process);
//!   sub-process j's n-th arrival is candidate (n - 1) J + j. Each runs its own search
//!   under the shared graph and retires once its time passes the earliest acceptance so
//!   far; the earliest accepted point is global GPRS's point. Message (j, n).
//! - Branch and bound, in P's quantile domain: the process is organised as a binary tree
//!   of intervals (node h holds the first point of its interval after its parent's time;
//!   children 2h and 2h + 1 are its lower and upper parts). Subtrees that cannot reach
//!   the graph are pruned: every later point in an interval C has time >= t_C and h only
//!   grows, so sup_C r < h(t_C) rules C out. Split-on-sample (Alg. 5) splits at the
//!   node's sample: the side away from the mode of r is always pruned, so the search is a
//!   path, O(KL) deep and flat in D_inf. Dyadic (Alg. 6) splits at the P-median, so the
//!   heap index alone locates a node; the search pops nodes from a min-heap by time.
//!   The message is the accepted node's heap index (universal code).

use super::candidates;
use super::gaussian::{Block, Std1, Stretch};
use super::quantile::Interval;
use super::{ChannelError, Keys, Message, Method, Options, Split};
use crate::stream::{candidate_weight, Stream};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Deepest tree node: heap indices stay below 2^63.
pub(super) const MAX_DEPTH: u32 = 62;

/// Largest heap of open nodes the dyadic search keeps (about 32 MiB).
const MAX_OPEN: usize = 1 << 21;

fn cap(method: Method, steps: u64) -> ChannelError {
    ChannelError::IterationCap { method, steps }
}

/// Exp(1) draw from the uniform at position `p` of the noise stream.
#[inline]
fn exponential(noise: &Stream, p: u64) -> f64 {
    -noise.uniform_f64(p).ln()
}

pub(super) fn encode_global(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let target = block.dims[0];
    let mut stretch = Stretch::new(target);
    let cand = Stream::with_key(keys.cand, id);
    let noise = Stream::with_key(keys.noise, id);
    let mut t = 0.0;
    let mut n = 0u64;
    loop {
        n += 1;
        if n > opts.max_steps {
            return Err(cap(Method::Gprs, opts.max_steps));
        }
        t += exponential(&noise, n - 1);
        let x = cand.normal(n - 1) as f64;
        if stretch.below(t, target.gap(x)) {
            return Ok((Message::new(n), n));
        }
    }
}

pub(super) fn encode_parallel(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let target = block.dims[0];
    let mut stretch = Stretch::new(target);
    let cand = Stream::with_key(keys.cand, id);
    let noise = Stream::with_key(keys.noise, id);
    let j_count = opts.parallel as u64;
    let rate = opts.parallel as f64; // inter-arrival scale of each sub-process
    let mut time = vec![0f64; opts.parallel as usize];
    let mut alive = vec![true; opts.parallel as usize];
    let mut best = f64::INFINITY;
    let mut best_msg: Option<Message> = None;
    let mut round = 0u64;
    // Lockstep rounds: in round n every live sub-process examines its n-th arrival. A
    // sub-process retires when it accepts (its later points are later) or when its time
    // passes the best accepted time (no later point of it can be earlier).
    loop {
        // retire every sub-process already past the best acceptance
        for (a, &t) in alive.iter_mut().zip(&time) {
            *a = *a && t <= best;
        }
        if !alive.iter().any(|&a| a) {
            break;
        }
        round += 1;
        if round > opts.max_steps {
            return Err(cap(Method::GprsParallel, opts.max_steps));
        }
        for j in 0..j_count {
            let ju = j as usize;
            if !alive[ju] {
                continue;
            }
            let p = (round - 1)
                .checked_mul(j_count)
                .and_then(|v| v.checked_add(j))
                .ok_or_else(|| cap(Method::GprsParallel, round))?;
            time[ju] += rate * exponential(&noise, p);
            if time[ju] > best {
                alive[ju] = false;
                continue;
            }
            let x = cand.normal(p) as f64;
            if stretch.below(time[ju], target.gap(x)) {
                best = time[ju];
                best_msg = Some(Message { index: round, aux: j });
                alive[ju] = false;
            }
        }
    }
    best_msg.map(|m| (m, round)).ok_or_else(|| cap(Method::GprsParallel, round))
}

/// Decoder of gprs_parallel: sub-process j's n-th arrival is candidate (n - 1) J + j.
pub(super) fn decode_parallel(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let j_count = opts.parallel as u64;
    if message.index == 0 {
        return Err(ChannelError::InvalidMessage("gprs_parallel arrival indices start at 1".into()));
    }
    if message.aux >= j_count {
        return Err(ChannelError::InvalidMessage(format!(
            "gprs_parallel sub-process {} out of range for parallel={j_count}",
            message.aux
        )));
    }
    let k = (message.index - 1)
        .checked_mul(j_count)
        .and_then(|v| v.checked_add(message.aux))
        .ok_or_else(|| ChannelError::InvalidMessage("gprs_parallel candidate index overflows".into()))?;
    candidates::weights(&Stream::with_key(keys.cand, id), k, p_mean, p_std, out)
}

/// Depth of heap index h >= 1: floor(log2 h).
#[inline]
fn depth(h: u64) -> u32 {
    63 - h.leading_zeros()
}

/// The interval of split-on-sample node `h`: walk from the root along the bits of h after
/// its leading one (0: lower part, 1: upper part), splitting every ancestor at its sample.
fn sample_split_interval(node: &Stream, h: u64) -> Interval {
    let d = depth(h);
    let mut iv = Interval::FULL;
    let mut a = 1u64;
    for level in (0..d).rev() {
        let x = iv.sample(node.uniform_f64(a));
        let (lower, upper) = iv.split(x);
        let bit = (h >> level) & 1;
        iv = if bit == 0 { lower } else { upper };
        a = 2 * a + bit;
    }
    iv
}

/// Decoder of gprs_bnb: the sample of the accepted node.
pub(super) fn decode_bnb(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let h = message.index;
    if h == 0 {
        return Err(ChannelError::InvalidMessage("heap indices start at 1".into()));
    }
    if depth(h) > MAX_DEPTH {
        return Err(ChannelError::InvalidMessage(format!(
            "heap index {h} is deeper than the largest depth {MAX_DEPTH}"
        )));
    }
    let node = Stream::with_key(keys.node, id);
    let iv = match opts.split {
        Split::Sample => sample_split_interval(&node, h),
        Split::Dyadic => {
            let d = depth(h);
            Interval::dyadic(d, h - (1u64 << d))
        }
    };
    let z = iv.sample(node.uniform_f64(h)).z();
    out[0] = candidate_weight(p_mean[0], p_std[0], z);
    Ok(())
}

pub(super) fn encode_bnb(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let target = block.dims[0];
    let node = Stream::with_key(keys.node, id);
    let noise = Stream::with_key(keys.noise, id);
    match opts.split {
        Split::Sample => search_sample_split(target, &node, &noise, opts),
        Split::Dyadic => search_dyadic(target, &node, &noise, opts),
    }
}

/// Alg. 5: one path from the root; the side of each rejected sample away from the mode
/// of r is pruned (r there is below r(x) < h(t) <= h of any later time).
fn search_sample_split(
    target: Std1,
    node: &Stream,
    noise: &Stream,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let mut stretch = Stretch::new(target);
    let nu = target.nu();
    let mut iv = Interval::FULL;
    let mut h = 1u64;
    let mut t = 0.0;
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > opts.max_steps {
            return Err(cap(Method::GprsBnb, opts.max_steps));
        }
        t += exponential(noise, h) / iv.mass();
        let xc = iv.sample(node.uniform_f64(h));
        let x = xc.x();
        if stretch.below(t, target.gap(x)) {
            return Ok((Message::new(h), steps));
        }
        if depth(h) >= MAX_DEPTH {
            return Err(ChannelError::DepthLimit { method: Method::GprsBnb, depth: MAX_DEPTH });
        }
        let (lower, upper) = iv.split(xc);
        if x < nu {
            iv = upper;
            h = 2 * h + 1;
        } else {
            iv = lower;
            h *= 2;
        }
    }
}

/// An open node of the dyadic search, ordered by time (earliest first), then heap index.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Open {
    t: f64,
    h: u64,
}

impl Eq for Open {}

impl Ord for Open {
    fn cmp(&self, o: &Open) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the earliest time pops first
        o.t.total_cmp(&self.t).then(o.h.cmp(&self.h))
    }
}

impl PartialOrd for Open {
    fn partial_cmp(&self, o: &Open) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The largest level of r (smallest gap) over the interval: r is unimodal with mode nu.
fn min_gap(target: &Std1, iv: &Interval) -> f64 {
    let (a, b) = iv.xs();
    target.gap(target.nu().max(a).min(b))
}

/// Alg. 6 with dyadic intervals: pop the earliest open node; accept its point if it lies
/// under the graph; otherwise open its children, pruning those whose best point cannot
/// reach the graph at their own (earliest possible) time.
fn search_dyadic(
    target: Std1,
    node: &Stream,
    noise: &Stream,
    opts: &Options,
) -> Result<(Message, u64), ChannelError> {
    let mut stretch = Stretch::new(target);
    let mut heap = BinaryHeap::new();
    heap.push(Open { t: exponential(noise, 1), h: 1 });
    let mut steps = 0u64;
    while let Some(Open { t, h }) = heap.pop() {
        steps += 1;
        if steps > opts.max_steps {
            return Err(cap(Method::GprsBnb, opts.max_steps));
        }
        let d = depth(h);
        if d > MAX_DEPTH {
            return Err(ChannelError::DepthLimit { method: Method::GprsBnb, depth: MAX_DEPTH });
        }
        let iv = Interval::dyadic(d, h - (1u64 << d));
        let x = iv.sample(node.uniform_f64(h)).x();
        if stretch.below(t, target.gap(x)) {
            return Ok((Message::new(h), steps));
        }
        for c in [2 * h, 2 * h + 1] {
            let cd = d + 1;
            let civ = Interval::dyadic(cd, c - (1u64 << cd));
            let tc = t + exponential(noise, c) / civ.mass();
            if stretch.below(tc, min_gap(&target, &civ)) {
                heap.push(Open { t: tc, h: c });
            }
        }
        if heap.len() > MAX_OPEN {
            return Err(cap(Method::GprsBnb, steps));
        }
    }
    // Every subtree was pruned: only possible if the graph were wrong numerically.
    Err(cap(Method::GprsBnb, steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_split_paths_replay_the_encoder() {
        let node = Stream::new(5, crate::stream::purpose::NODES, 2);
        // walking to node 0b1011 = lower, upper, upper
        let mut iv = Interval::FULL;
        let mut a = 1u64;
        for bit in [0u64, 1, 1] {
            let x = iv.sample(node.uniform_f64(a));
            let (lo, up) = iv.split(x);
            iv = if bit == 0 { lo } else { up };
            a = 2 * a + bit;
        }
        assert_eq!(a, 0b1011);
        assert_eq!(sample_split_interval(&node, a), iv);
        assert_eq!(sample_split_interval(&node, 1), Interval::FULL);
        assert!(
            super::super::quantile::Coord::ZERO.lt(iv.lo) && iv.hi.lt(super::super::quantile::Coord::ONE)
        );
    }

    #[test]
    fn open_nodes_pop_earliest_first() {
        let mut heap = BinaryHeap::new();
        for (t, h) in [(3.0, 4), (1.0, 7), (2.0, 2), (1.0, 5)] {
            heap.push(Open { t, h });
        }
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop().map(|o| o.h)).collect();
        assert_eq!(order, vec![5, 7, 2, 4]);
    }
}

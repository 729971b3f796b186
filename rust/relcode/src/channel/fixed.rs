//! The fixed-budget samplers: MRC, ORC and truncated PFR over 2^bits candidates.
//!
//! One fused loop serves all three: candidates are generated a tile at a time (never the
//! whole set), scored, given encoder noise and reduced to the best key, with sixteen
//! candidates per SIMD register thanks to the interleaved layout of `candidates`. The
//! three rules differ only in the noise added to the log density ratio:
//! - MRC: Gumbel noise, key = log w + G (Gumbel-max draws the index with probability
//!   proportional to its importance weight);
//! - ORC: key = log w - log E_(k), E_(k) the k-th order statistic of 2^bits exponentials;
//! - truncated PFR: key = log w - log T_k, T_k the k-th arrival of a unit Poisson process.
//!
//! Scoring uses no fused multiply-add and sums dimensions in order, and the noise uses
//! the stream's own log, so every backend and thread count selects the same index: the
//! same inputs give the same file everywhere, not only the same decoded bits.

use super::candidates::{self, GROUP};
use super::gaussian::Block;
use super::{ChannelError, Keys, Message, Options};
use crate::stream::{fine_uniform, math::logf, Stream, Supported};
#[cfg(target_arch = "x86_64")]
use crate::stream::{Avx2Cpu, Avx512Cpu};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// The selection rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Mrc,
    Orc,
    Pfr,
}

/// Normals per tile (about 16 KiB of float32), so a tile stays in L1.
const TILE_NORMALS: usize = 4096;

/// Most groups in a tile (dimension 1).
const TILE_GROUPS: usize = TILE_NORMALS / GROUP;

/// Score coefficients of log r(z) = sum_j (a_j z_j + b_j) z_j + const, in float32.
pub(super) fn coefficients(block: &Block) -> (Vec<f32>, Vec<f32>) {
    block
        .dims
        .iter()
        .map(|s| {
            let (a, b, _) = s.quad();
            (a as f32, b as f32)
        })
        .unzip()
}

/// Scores of the sixteen candidates of one group: `z` holds d rows of sixteen normals.
#[inline(always)]
pub(super) fn score_group(z: &[f32], a: &[f32], b: &[f32]) -> [f32; GROUP] {
    let mut acc = [0f32; GROUP];
    for (j, row) in z.chunks_exact(GROUP).enumerate() {
        let (aj, bj) = (a[j], b[j]);
        for l in 0..GROUP {
            let x = row[l];
            acc[l] += (aj * x + bj) * x;
        }
    }
    acc
}

/// `score_group` of four consecutive groups, interleaved; identical results.
#[inline(always)]
pub(super) fn score_groups4(z: &[f32], a: &[f32], b: &[f32]) -> [[f32; GROUP]; 4] {
    let d = a.len();
    let stride = GROUP * d;
    assert!(z.len() >= 4 * stride && b.len() == d);
    let mut acc = [[0f32; GROUP]; 4];
    for j in 0..d {
        let (aj, bj) = (a[j], b[j]);
        for (q, accq) in acc.iter_mut().enumerate() {
            let at = q * stride + j * GROUP;
            let row: &[f32; GROUP] = z[at..at + GROUP].try_into().unwrap();
            for l in 0..GROUP {
                let x = row[l];
                accq[l] += (aj * x + bj) * x;
            }
        }
    }
    acc
}

/// Exp(1) draws -ln u from sixteen noise words (u the fine uniform of each word).
#[inline(always)]
pub(super) fn exponentials(w: &[u32]) -> [f32; GROUP] {
    let mut e = [0f32; GROUP];
    for l in 0..GROUP {
        e[l] = -logf(fine_uniform(w[l]));
    }
    e
}

/// Inclusive prefix sums of sixteen values in a fixed (Hillis-Steele) order, offset by `carry`.
#[inline(always)]
pub(super) fn prefix(v: &[f64; GROUP], carry: f64) -> [f64; GROUP] {
    let x = prefix_step::<8>(prefix_step::<4>(prefix_step::<2>(prefix_step::<1>(*v))));
    let mut out = [0f64; GROUP];
    for l in 0..GROUP {
        out[l] = carry + x[l];
    }
    out
}

/// One Hillis-Steele step: x[l] + x[l - S] for l >= S (a constant shift, so it vectorises).
#[inline(always)]
fn prefix_step<const S: usize>(x: [f64; GROUP]) -> [f64; GROUP] {
    let mut y = x;
    for l in S..GROUP {
        y[l] = x[l] + x[l - S];
    }
    y
}

/// Lane numbers 0..16 as float64.
const LANES_F64: [f64; GROUP] = {
    let mut v = [0f64; GROUP];
    let mut l = 0;
    while l < GROUP {
        v[l] = l as f64;
        l += 1;
    }
    v
};

/// Slack for `mrc_floor`, far above the rounding of the bound and of the two logarithms.
const MRC_SLACK: f32 = 1e-3;

/// A lower bound of `logf(-logf(u))`, u the fine uniform of noise word `w`, without a
/// logarithm: the MRC key `score - logf(-logf(u))` is then at most `score - mrc_floor(w)`.
/// With j = w >> 9 and m = 2^23 - j >= 1: for j > 0, u = (j + 0.5) 2^-23, so
/// 1 - u = (m - 0.5) 2^-23 >= m 2^-24; for j = 0, u < 2^-23 and 1 - u >= 1/2 = m 2^-24.
/// As -ln u >= 1 - u, ln(-ln u) >= ln m - 24 ln 2 >= (e - 24) ln 2, e = floor(log2 m) read
/// from the exponent of m as float32 (exact: m <= 2^23). The slack covers the rounding of
/// this product and the few ulp of error of the two `logf` (checked for every j by a test).
#[inline(always)]
fn mrc_floor(w: u32) -> f32 {
    let m = (1u32 << 23) - (w >> 9);
    let e = ((m as f32).to_bits() >> 23) as i32 - 127;
    (e - 24) as f32 * core::f32::consts::LN_2 - MRC_SLACK
}

/// Slack for `could_win`: far above the error of `logf` (under 2 ulp, so under 1e-5 for the
/// times that occur), so that log T_first - SKIP_SLACK <= logf(T_l) for every later lane.
const SKIP_SLACK: f32 = 1e-3;

/// Whether any lane's key `score - logf(T_l)` can exceed that lane's best, given `log_first`
/// = logf(T_first) <= log T_l. Conservative: with lo = log_first - SKIP_SLACK < logf(T_l),
/// fl(score - logf(T_l)) <= fl(score - lo) because rounding is monotone, so a lane whose
/// key would win also passes this test. Keys equal to the best never replace it.
#[inline(always)]
fn could_win(score: &[f32; GROUP], log_first: f32, best: &Best) -> bool {
    let lo = log_first - SKIP_SLACK;
    let mut any = false;
    for l in 0..GROUP {
        any |= score[l] - lo > best.val[l];
    }
    any
}

/// Running best key per lane, reduced at the end to the first maximum.
#[derive(Clone, Copy)]
pub(super) struct Best {
    val: [f32; GROUP],
    idx: [u64; GROUP],
}

impl Best {
    pub(super) fn new() -> Best {
        Best { val: [f32::NEG_INFINITY; GROUP], idx: [u64::MAX; GROUP] }
    }

    #[inline(always)]
    pub(super) fn update(&mut self, key: &[f32; GROUP], kbase: u64, valid: usize) {
        for l in 0..GROUP {
            let better = l < valid && key[l] > self.val[l];
            self.val[l] = if better { key[l] } else { self.val[l] };
            self.idx[l] = if better { kbase + l as u64 } else { self.idx[l] };
        }
    }

    /// The index of the largest key; ties go to the smallest index.
    pub(super) fn index(&self) -> Option<u64> {
        let mut best: Option<(f32, u64)> = None;
        for l in 0..GROUP {
            if self.idx[l] == u64::MAX {
                continue;
            }
            best = match best {
                Some((v, i)) if v > self.val[l] || (v == self.val[l] && i < self.idx[l]) => Some((v, i)),
                _ => Some((self.val[l], self.idx[l])),
            };
        }
        best.map(|(_, i)| i)
    }
}

/// Where the scored candidates come from.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// Fresh candidates of the block's own stream, generated a tile at a time.
    Stream(Stream),
    /// A shared pool (group-interleaved, at least 2^bits candidates), already generated.
    Pool(&'a [f32]),
}

/// A selection's running state: the best keys per lane and the last arrival time.
struct State {
    best: Best,
    carry: f64,
}

/// Scores groups g0 .. g0 + ng of one block (candidates in `tile`, ng groups of d rows),
/// updating its state `st`; `w`, `sc` and `ex` are scratch of at least ng groups.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn feed(
    a: &[f32],
    b: &[f32],
    noise: Stream,
    n: u64,
    rule: Rule,
    st: &mut State,
    w: &mut [u32],
    sc: &mut [[f32; GROUP]],
    ex: &mut [[f32; GROUP]],
    tile: &[f32],
    g0: u64,
    ng: usize,
    simd: Supported,
) {
    let d = a.len();
    let nf = n as f64;
    // the running state in locals (registers), written back once per tile
    let (mut best, mut carry) = (st.best, st.carry);
    noise.fill_words_with(g0 * GROUP as u64, &mut w[..ng * GROUP], simd);
    // Independent passes over the tile's groups keep many groups in flight at once;
    // four groups share each pass over the dimensions (four accumulator chains).
    let mut g = 0;
    while g + 4 <= ng {
        let q = score_groups4(&tile[g * GROUP * d..(g + 4) * GROUP * d], a, b);
        sc[g..g + 4].copy_from_slice(&q);
        g += 4;
    }
    while g < ng {
        sc[g] = score_group(&tile[g * GROUP * d..(g + 1) * GROUP * d], a, b);
        g += 1;
    }
    #[cfg(target_arch = "x86_64")]
    match simd {
        Supported::Avx512(cpu) => {
            let (sc, w, orc) = (&sc[..ng], &w[..ng * GROUP], rule == Rule::Orc);
            // SAFETY: `cpu` proves that this CPU has AVX-512F; both functions assert the
            // lengths of `w` and `ex` against `sc` before touching them.
            unsafe {
                match rule {
                    Rule::Mrc => avx512::mrc(cpu, sc, w, ex, &mut best, g0, n),
                    _ => avx512::timed(cpu, sc, w, ex, &mut best, &mut carry, g0, n, orc),
                }
            }
            st.best = best;
            st.carry = carry;
            return;
        }
        Supported::Avx2(cpu) => {
            let (sc, w, orc) = (&sc[..ng], &w[..ng * GROUP], rule == Rule::Orc);
            // SAFETY: `cpu` proves that this CPU has AVX2; both functions assert the lengths
            // of `w` and `ex` against `sc` before touching them.
            unsafe {
                match rule {
                    Rule::Mrc => avx2::mrc(cpu, sc, w, ex, &mut best, g0, n),
                    _ => avx2::timed(cpu, sc, w, ex, &mut best, &mut carry, g0, n, orc),
                }
            }
            st.best = best;
            st.carry = carry;
            return;
        }
        Supported::Scalar => {}
    }
    if rule == Rule::Mrc {
        // An upper bound of each key from a cheap lower bound of its noise term: a group
        // whose bounds all stay at or below their lanes' best keys cannot change the
        // selection, and its thirty-two logarithms are skipped (most groups, once the best
        // keys have grown). Computed keys, hence the index, are exactly the plain loop's.
        for g in 0..ng {
            for l in 0..GROUP {
                ex[g][l] = sc[g][l] - mrc_floor(w[g * GROUP + l]);
            }
        }
        for g in 0..ng {
            let mut any = false;
            for l in 0..GROUP {
                any |= ex[g][l] > best.val[l];
            }
            if any {
                let e = exponentials(&w[g * GROUP..(g + 1) * GROUP]);
                for l in 0..GROUP {
                    sc[g][l] -= logf(e[l]);
                }
                let kbase = (g0 + g as u64) * GROUP as u64;
                best.update(&sc[g], kbase, (n - kbase).min(GROUP as u64) as usize);
            }
        }
    } else {
        for g in 0..ng {
            ex[g] = exponentials(&w[g * GROUP..(g + 1) * GROUP]);
        }
        for g in 0..ng {
            let kbase = (g0 + g as u64) * GROUP as u64;
            let mut inc = [0f64; GROUP];
            if rule == Rule::Pfr {
                for l in 0..GROUP {
                    inc[l] = ex[g][l] as f64;
                }
            } else {
                // the k-th order statistic of n exponentials: sum of E_j / (n - j); the
                // integers are exact in float64, so n - (kbase + l) = (n - kbase) - l
                let left = nf - kbase as f64;
                for l in 0..GROUP {
                    inc[l] = ex[g][l] as f64 / (left - LANES_F64[l]).max(1.0);
                }
            }
            let t = prefix(&inc, carry);
            carry = t[GROUP - 1];
            for l in 0..GROUP {
                ex[g][l] = t[l] as f32;
            }
        }
        for g in 0..ng {
            let kbase = (g0 + g as u64) * GROUP as u64;
            // The times T grow along the candidates, so log T of the group's first lane
            // bounds every lane's noise term from below: when even that bound cannot lift
            // a lane above its best key, no key of the group can (see `could_win`), and
            // the sixteen logarithms are skipped. The keys that are computed, and hence
            // the selected index, are exactly those of the plain loop.
            if could_win(&sc[g], logf(ex[g][0]), &best) {
                for l in 0..GROUP {
                    sc[g][l] -= logf(ex[g][l]);
                }
                best.update(&sc[g], kbase, (n - kbase).min(GROUP as u64) as usize);
            }
        }
    }
    st.best = best;
    st.carry = carry;
}

/// One block's selection in progress: its coefficients, encoder noise, best keys so far and
/// the running arrival time, fed the candidates a tile at a time. The result depends only
/// on the block and its candidates, never on how the candidates are cut into tiles.
struct Selector<'a> {
    a: &'a [f32],
    b: &'a [f32],
    noise: Stream,
    n: u64,
    rule: Rule,
    st: State,
    w: Vec<u32>,
    sc: Vec<[f32; GROUP]>,
    ex: Vec<[f32; GROUP]>,
}

impl<'a> Selector<'a> {
    fn new(
        a: &'a [f32],
        b: &'a [f32],
        noise: Stream,
        bits: u32,
        rule: Rule,
        per_tile: usize,
    ) -> Selector<'a> {
        Selector {
            a,
            b,
            noise,
            n: 1u64 << bits,
            rule,
            st: State { best: Best::new(), carry: 0.0 },
            w: vec![0u32; per_tile * GROUP],
            sc: vec![[0f32; GROUP]; per_tile],
            ex: vec![[0f32; GROUP]; per_tile],
        }
    }

    /// Scores groups g0 .. g0 + ng, whose candidates `tile` holds (ng groups of d rows).
    #[inline(always)]
    fn feed(&mut self, tile: &[f32], g0: u64, ng: usize, simd: Supported) {
        let (w, sc, ex) = (&mut self.w, &mut self.sc, &mut self.ex);
        feed(self.a, self.b, self.noise, self.n, self.rule, &mut self.st, w, sc, ex, tile, g0, ng, simd);
    }

    fn index(&self) -> u64 {
        self.st.best.index().unwrap_or(0)
    }
}

/// The best key's candidate index under `rule`, scoring `n = 2^bits` candidates of `source`
/// with coefficients (a, b) and the block's own encoder noise.
#[inline(always)]
fn select_body(
    a: &[f32],
    b: &[f32],
    source: Source<'_>,
    noise: Stream,
    bits: u32,
    rule: Rule,
    simd: Supported,
) -> u64 {
    let d = a.len();
    let groups = (1u64 << bits).div_ceil(GROUP as u64);
    let per_tile = (TILE_NORMALS / (GROUP * d)).max(1);
    let mut z = match source {
        Source::Stream(_) => vec![0f32; per_tile * GROUP * d],
        Source::Pool(_) => Vec::new(),
    };
    let n = 1u64 << bits;
    let mut w = vec![0u32; per_tile * GROUP];
    let mut sc = vec![[0f32; GROUP]; per_tile];
    let mut ex = vec![[0f32; GROUP]; per_tile];
    let mut st = State { best: Best::new(), carry: 0.0 };
    let mut g0 = 0u64;
    while g0 < groups {
        let ng = (per_tile as u64).min(groups - g0) as usize;
        let tile: &[f32] = match source {
            Source::Stream(cand) => {
                cand.fill_normals_with(g0 * (GROUP * d) as u64, &mut z[..ng * GROUP * d], simd);
                &z[..ng * GROUP * d]
            }
            Source::Pool(pool) => {
                let from = g0 as usize * GROUP * d;
                &pool[from..from + ng * GROUP * d]
            }
        };
        feed(a, b, noise, n, rule, &mut st, &mut w, &mut sc, &mut ex, tile, g0, ng, simd);
        g0 += ng as u64;
    }
    st.best.index().unwrap_or(0)
}

/// Pool mode for several blocks at once: each tile of the shared pool is scored against
/// every block while it is in cache, so the pool streams from memory once per bundle rather
/// than once per block. Each block's index equals what `select` returns for it alone.
#[inline(always)]
fn select_bundle_body(coefs: &[Coefs], pool: &[f32], bits: u32, rule: Rule, simd: Supported) -> Vec<u64> {
    let Some(first) = coefs.first() else { return Vec::new() };
    let d = first.a.len();
    let groups = (1u64 << bits).div_ceil(GROUP as u64);
    let per_tile = (TILE_NORMALS / (GROUP * d)).max(1);
    let mut sels: Vec<Selector<'_>> =
        coefs.iter().map(|c| Selector::new(&c.a, &c.b, c.noise, bits, rule, per_tile)).collect();
    let mut g0 = 0u64;
    while g0 < groups {
        let ng = (per_tile as u64).min(groups - g0) as usize;
        let from = g0 as usize * GROUP * d;
        let tile = &pool[from..from + ng * GROUP * d];
        for sel in sels.iter_mut() {
            sel.feed(tile, g0, ng, simd);
        }
        g0 += ng as u64;
    }
    sels.iter().map(Selector::index).collect()
}

/// A block's pool-mode scoring coefficients (the block's transform folded in) and noise.
pub(super) struct Coefs {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub noise: Stream,
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX-512F this body is compiled
// for; the body is safe code, and passes the same proof to the SIMD kernels it calls.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn select_bundle_avx512(
    cpu: Avx512Cpu,
    coefs: &[Coefs],
    pool: &[f32],
    bits: u32,
    rule: Rule,
) -> Vec<u64> {
    select_bundle_body(coefs, pool, bits, rule, Supported::Avx512(cpu))
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX2 this body is compiled for;
// the body is safe code, and passes the same proof to the SIMD kernels it calls.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_bundle_avx2(cpu: Avx2Cpu, coefs: &[Coefs], pool: &[f32], bits: u32, rule: Rule) -> Vec<u64> {
    select_bundle_body(coefs, pool, bits, rule, Supported::Avx2(cpu))
}

/// The selected index of each block of a bundle (all of one dimension) in pool mode.
pub(super) fn select_bundle(
    coefs: &[Coefs],
    pool: &[f32],
    bits: u32,
    rule: Rule,
    simd: Supported,
) -> Vec<u64> {
    debug_assert!(coefs.iter().all(|c| c.a.len() == coefs[0].a.len() && c.b.len() == c.a.len()));
    match simd {
        // SAFETY: `cpu` proves that this CPU has AVX-512F.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx512(cpu) => unsafe { select_bundle_avx512(cpu, coefs, pool, bits, rule) },
        // SAFETY: `cpu` proves that this CPU has AVX2.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx2(cpu) => unsafe { select_bundle_avx2(cpu, coefs, pool, bits, rule) },
        _ => select_bundle_body(coefs, pool, bits, rule, Supported::Scalar),
    }
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX-512F this body is compiled
// for; the body is safe code, and passes the same proof to the SIMD kernels it calls.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn select_avx512(
    cpu: Avx512Cpu,
    a: &[f32],
    b: &[f32],
    source: Source<'_>,
    noise: Stream,
    bits: u32,
    rule: Rule,
) -> u64 {
    select_body(a, b, source, noise, bits, rule, Supported::Avx512(cpu))
}

// SAFETY: callers hold `cpu`, the proof that this CPU has the AVX2 this body is compiled for;
// the body is safe code, and passes the same proof to the SIMD kernels it calls.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_avx2(
    cpu: Avx2Cpu,
    a: &[f32],
    b: &[f32],
    source: Source<'_>,
    noise: Stream,
    bits: u32,
    rule: Rule,
) -> u64 {
    select_body(a, b, source, noise, bits, rule, Supported::Avx2(cpu))
}

/// The selected candidate index for `rule`.
pub(super) fn select(
    a: &[f32],
    b: &[f32],
    source: Source<'_>,
    noise: Stream,
    bits: u32,
    rule: Rule,
    simd: Supported,
) -> u64 {
    match simd {
        // SAFETY: `cpu` proves that this CPU has AVX-512F.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx512(cpu) => unsafe { select_avx512(cpu, a, b, source, noise, bits, rule) },
        // SAFETY: `cpu` proves that this CPU has AVX2.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx2(cpu) => unsafe { select_avx2(cpu, a, b, source, noise, bits, rule) },
        _ => select_body(a, b, source, noise, bits, rule, Supported::Scalar),
    }
}

pub(super) fn encode(
    block: &Block,
    keys: &Keys,
    id: u64,
    opts: &Options,
    rule: Rule,
    simd: Supported,
) -> Result<(Message, u64), ChannelError> {
    let bits = opts.bits.expect("validated");
    let noise = Stream::with_key(keys.noise, id);
    let k = if opts.pool {
        super::pool::select(block, keys, id, bits, rule, simd)?
    } else {
        let (a, b) = coefficients(block);
        select(&a, &b, Source::Stream(Stream::with_key(keys.cand, id)), noise, bits, rule, simd)
    };
    Ok((Message::new(k), 1u64 << bits))
}

pub(super) fn decode(
    message: &Message,
    p_mean: &[f32],
    p_std: &[f32],
    keys: &Keys,
    id: u64,
    opts: &Options,
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let bits = opts.bits.expect("validated");
    if message.index >> bits != 0 {
        return Err(ChannelError::InvalidMessage(format!(
            "index {} is outside the 2^{bits} candidates",
            message.index
        )));
    }
    if opts.pool {
        super::pool::weights(keys, id, message.index, p_mean, p_std, out)
    } else {
        candidates::weights(&Stream::with_key(keys.cand, id), message.index, p_mean, p_std, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Backend, Stream, Supported};

    /// Successive uniforms of a test stream.
    fn uniforms(key: [u32; 2], id: u64) -> impl FnMut() -> f64 {
        let (u, mut at) = (Stream::with_key(key, id), 0u64);
        move || {
            at += 1;
            u.uniform_f64(at)
        }
    }

    /// The plain loop: every key computed, in candidate order, first maximum kept.
    fn naive(a: &[f32], b: &[f32], cand: Stream, noise: Stream, bits: u32, rule: Rule) -> u64 {
        let d = a.len();
        let n = 1usize << bits;
        let groups = n.div_ceil(GROUP); // the last group is partial below 16 candidates
        let mut z = vec![0f32; groups * GROUP * d];
        cand.fill_normals_with(0, &mut z, Supported::Scalar);
        let mut w = vec![0u32; groups * GROUP];
        noise.fill_words_with(0, &mut w, Supported::Scalar);
        let (mut best, mut arg, mut carry) = (f32::NEG_INFINITY, 0u64, 0f64);
        for g in 0..groups {
            let s = score_group(&z[g * GROUP * d..(g + 1) * GROUP * d], a, b);
            let e = exponentials(&w[g * GROUP..(g + 1) * GROUP]);
            let mut inc = [0f64; GROUP];
            for l in 0..GROUP {
                let k = (g * GROUP + l) as f64;
                inc[l] = match rule {
                    Rule::Orc => e[l] as f64 / (n as f64 - k).max(1.0),
                    _ => e[l] as f64,
                };
            }
            let t = prefix(&inc, carry);
            carry = t[GROUP - 1];
            for l in 0..GROUP {
                let key = match rule {
                    Rule::Mrc => s[l] - logf(e[l]),
                    _ => s[l] - logf(t[l] as f32),
                };
                if g * GROUP + l < n && key > best {
                    best = key;
                    arg = (g * GROUP + l) as u64;
                }
            }
        }
        arg
    }

    #[test]
    fn selection_equals_the_plain_loop() {
        // random blocks from a Philox counter: means, stds from near-prior to very narrow
        let mut uniform = uniforms([1, 2], 7);
        let mut checked = 0;
        for &d in &[1usize, 2, 3, 16] {
            for trial in 0..24u64 {
                let qm: Vec<f64> = (0..d).map(|_| (uniform() - 0.5) * 4.0 / (d as f64).sqrt()).collect();
                // narrow targets (large score gaps) and wide ones (close calls between keys)
                let (lo, width) = if trial % 2 == 0 { (0.02, 0.9) } else { (0.6, 0.38) };
                let qs: Vec<f64> = (0..d).map(|_| lo + width * uniform()).collect();
                let block = Block::new(&qm, &qs, &vec![0.0; d], &vec![1.0; d]);
                let (a, b) = coefficients(&block);
                for rule in [Rule::Mrc, Rule::Orc, Rule::Pfr] {
                    for bits in [3u32, 6, 12, 13] {
                        let cand = Stream::with_key([11, 12], trial);
                        let noise = Stream::with_key([13, 14], trial);
                        let want = naive(&a, &b, cand, noise, bits, rule);
                        for backend in [Backend::Scalar, Backend::Avx2, Backend::Avx512] {
                            let Ok(simd) = backend.checked() else { continue };
                            let got = select(&a, &b, Source::Stream(cand), noise, bits, rule, simd);
                            assert_eq!(got, want, "d {d} trial {trial} {rule:?} bits {bits} {backend:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 24 * 3 * 4);
    }

    #[test]
    fn the_mrc_floor_bounds_every_noise_term() {
        // u depends on the word only through j = w >> 9, except for j = 0 (the fine tail):
        // so these words cover every value the noise term can take
        let mut tight = f32::INFINITY;
        let words = (1u32..1 << 23).map(|j| j << 9).chain(0..512);
        for w in words {
            let term = logf(-logf(fine_uniform(w)));
            let floor = mrc_floor(w);
            assert!(floor <= term, "word {w:#x}: floor {floor} above {term}");
            tight = tight.min(term - floor);
        }
        // the slack is what keeps the bound safe where it is tightest (u next to 1)
        assert!(tight < 2.0 * MRC_SLACK, "{tight}");
    }

    #[test]
    fn the_skip_test_never_drops_a_winning_lane() {
        // keys just above and just below each lane's best, times from tiny to huge
        let mut uniform = uniforms([3, 4], 9);
        let mut winners = 0;
        for _ in 0..20000 {
            let first = (10f64).powf(-3.0 + 9.0 * uniform()) as f32;
            let mut t = [0f32; GROUP];
            let mut acc = first as f64;
            for tl in t.iter_mut() {
                *tl = acc as f32;
                acc += acc * 1e-6 * uniform(); // close times: the bound is nearly tight
            }
            let mut score = [0f32; GROUP];
            let mut best = Best::new();
            let mut any = false;
            for l in 0..GROUP {
                score[l] = (uniform() as f32 - 0.5) * 20.0;
                let key = score[l] - logf(t[l]);
                let above = uniform() < 0.05;
                let step = key.abs().max(1.0) * f32::EPSILON * (1.0 + 4.0 * uniform() as f32);
                best.val[l] = if above { key - step } else { key + step };
                any |= key > best.val[l];
            }
            if any {
                winners += 1;
                assert!(could_win(&score, logf(t[0]), &best), "dropped a winner: {t:?} {score:?}");
            }
        }
        assert!(winners > 10000, "{winners}");
    }
}

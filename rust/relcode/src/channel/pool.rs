//! Pool mode of the fixed-budget samplers (normative: spec/channel.md section 7).
//!
//! MIRACLE and COMBINER score every block against one table of candidates per block size;
//! scoring a table already in memory is several times faster than generating fresh
//! candidates, but identical posteriors in two blocks then pick the same vectors. Pool mode
//! keeps the speed and removes that coupling: candidate k of block b is the pool vector z_k
//! (one pool per seed and dimension) under a cheap block-keyed transform, x_j = s_j z_k[p(j)]
//! with signs s_j and a permutation p of the dimensions drawn from the block's key. The
//! transform folds into the score coefficients, so scoring costs what scoring a shared table
//! costs, and decoding regenerates only z_k and the transform, in O(d).
//! Encoder noise stays per block (a shared noise sequence would correlate blocks' choices).

use super::candidates::{self, GROUP};
use super::fixed::{coefficients, Coefs, Rule, Source};
use super::gaussian::Block;
use super::{ChannelError, Keys};
use crate::stream::{candidate_weight, Backend, Stream, Supported};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Largest pool kept in memory, in float32 elements (candidates x dimension): 1 GiB.
pub const MAX_POOL_ELEMENTS: u64 = 1 << 28;

/// The block-keyed transform: block dimension j reads pool dimension `perm[j]`, negated
/// when `neg[j]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// A permutation of 0 .. d: block dimension j reads pool dimension `perm[j]`.
    pub perm: Vec<usize>,
    /// Per block dimension j, whether the pool value is negated (d entries).
    pub neg: Vec<bool>,
}

/// The transform of block `id` for dimension `d`, from stream (seed, XFRM, id): words
/// 0 .. ceil(d/32) hold the sign bits (bit j mod 32 of word floor(j/32)); the next d - 1
/// words drive a Fisher-Yates shuffle, i = d-1 down to 1 swapping i with
/// floor(w (i + 1) / 2^32).
pub fn transform(keys: &Keys, id: u64, d: usize) -> Transform {
    let mut t = Transform { perm: Vec::new(), neg: Vec::new() };
    transform_into(keys, id, d, &mut Vec::new(), &mut t);
    t
}

/// `transform` into reused buffers (`words` is scratch space).
pub fn transform_into(keys: &Keys, id: u64, d: usize, words: &mut Vec<u32>, t: &mut Transform) {
    let nsign = d.div_ceil(32);
    words.clear();
    words.resize(nsign + d.saturating_sub(1), 0);
    Stream::with_key(keys.xfrm, id).fill_words_with(0, words, Supported::Scalar);
    t.neg.clear();
    t.neg.extend((0..d).map(|j| (words[j / 32] >> (j % 32)) & 1 == 1));
    t.perm.clear();
    t.perm.extend(0..d);
    for (step, i) in (1..d).rev().enumerate() {
        let w = words[nsign + step] as u64;
        let j = ((w * (i as u64 + 1)) >> 32) as usize;
        t.perm.swap(i, j);
    }
}

/// The pool of `seed` for dimension `d`: its first `n` candidates, group-interleaved.
struct Table {
    n: u64,
    z: Vec<f32>,
}

type Cache = Mutex<HashMap<(u64, usize), Arc<Table>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The shared pool (at least `n` candidates) of (seed, d), built once and cached for every
/// thread. Candidates k of the pool are normals pos(k, i, d) of stream (seed, POOL, d).
fn table(keys: &Keys, d: usize, n: u64, simd: Supported) -> Result<Arc<Table>, ChannelError> {
    let elements = n.div_ceil(GROUP as u64) * (GROUP * d) as u64;
    if elements > MAX_POOL_ELEMENTS {
        return Err(ChannelError::InvalidInput(format!(
            "a pool of 2^{} candidates of dimension {d} needs {elements} floats, more than the {MAX_POOL_ELEMENTS} \
             pool mode keeps in memory; use fewer bits or the per-block mode",
            n.trailing_zeros()
        )));
    }
    let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = map.get(&(keys.seed, d)) {
        if t.n >= n {
            return Ok(t.clone());
        }
    }
    let mut z = vec![0f32; elements as usize];
    Stream::with_key(keys.pool, d as u64).fill_normals_par_with(0, &mut z, simd);
    let t = Arc::new(Table { n, z });
    let total: u64 = map.values().map(|t| t.z.len() as u64).sum::<u64>() + elements;
    if total > MAX_POOL_ELEMENTS {
        map.clear();
    }
    map.insert((keys.seed, d), t.clone());
    Ok(t)
}

/// Builds (or finds) the pool a batch will use, before the parallel region starts, with
/// `backend` checked against the CPU first (nothing runs if it fails).
pub fn prepare(keys: &Keys, d: usize, bits: u32, backend: Backend) -> Result<(), ChannelError> {
    prepare_with(keys, d, bits, backend.checked()?)
}

/// `prepare` on a backend already checked.
pub(super) fn prepare_with(keys: &Keys, d: usize, bits: u32, simd: Supported) -> Result<(), ChannelError> {
    table(keys, d, 1u64 << bits, simd).map(|_| ())
}

/// A block's scoring coefficients against the pool, its transform folded in:
/// score_j(x_j) with x_j = s_j z[p(j)], so pool dimension i = p(j) gets (a_j, s_j b_j).
pub(super) fn coefs(block: &Block, keys: &Keys, id: u64) -> Coefs {
    let d = block.dims.len();
    let (a, b) = coefficients(block);
    let tr = transform(keys, id, d);
    let mut ap = vec![0f32; d];
    let mut bp = vec![0f32; d];
    for j in 0..d {
        ap[tr.perm[j]] = a[j];
        bp[tr.perm[j]] = if tr.neg[j] { -b[j] } else { b[j] };
    }
    Coefs { a: ap, b: bp, noise: Stream::with_key(keys.noise, id) }
}

/// Pool-mode selection for one block.
pub(super) fn select(
    block: &Block,
    keys: &Keys,
    id: u64,
    bits: u32,
    rule: Rule,
    simd: Supported,
) -> Result<u64, ChannelError> {
    let d = block.dims.len();
    let t = table(keys, d, 1u64 << bits, simd)?;
    let c = coefs(block, keys, id);
    Ok(super::fixed::select(&c.a, &c.b, Source::Pool(&t.z), c.noise, bits, rule, simd))
}

/// Pool-mode selection for a bundle of blocks of one dimension (see `fixed::select_bundle`).
pub(super) fn select_bundle(
    coefs: &[Coefs],
    keys: &Keys,
    bits: u32,
    rule: Rule,
    simd: Supported,
) -> Result<Vec<u64>, ChannelError> {
    let Some(first) = coefs.first() else { return Ok(Vec::new()) };
    let t = table(keys, first.a.len(), 1u64 << bits, simd)?;
    Ok(super::fixed::select_bundle(coefs, &t.z, bits, rule, simd))
}

/// Decoder: the weights of candidate `k` of block `id` in pool mode.
pub(super) fn weights(
    keys: &Keys,
    id: u64,
    k: u64,
    p_mean: &[f32],
    p_std: &[f32],
    out: &mut [f32],
) -> Result<(), ChannelError> {
    let d = out.len();
    candidates::check(k, d)?;
    let pool = Stream::with_key(keys.pool, d as u64);
    let mut z = vec![0f32; d];
    candidates::normals(&pool, k, &mut z);
    let tr = transform(keys, id, d);
    for j in 0..d {
        let v = z[tr.perm[j]];
        let x = if tr.neg[j] { -v } else { v };
        out[j] = candidate_weight(p_mean[j], p_std[j], x);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_are_permutations_and_differ_between_blocks() {
        let keys = Keys::new(5);
        for d in [1usize, 2, 16, 33, 64] {
            let t = transform(&keys, 9, d);
            let mut p = t.perm.clone();
            p.sort_unstable();
            assert_eq!(p, (0..d).collect::<Vec<_>>());
        }
        let a = transform(&keys, 1, 16);
        let b = transform(&keys, 2, 16);
        assert_ne!(a, b);
    }
}

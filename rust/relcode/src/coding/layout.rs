//! Block layouts (spec/format.md, section 6): which elements each block of a group takes.
//!
//! The coded vector (every coded tensor flattened row-major, tensors in header order) is cut
//! into groups ([`Group`]): contiguous element ranges, each partitioned into blocks by a rule.
//! The `fixed` and `sizes` rules take the group's elements in the order of a seeded
//! permutation (stream purpose `PERM`, stream id = group id) and cut that order into blocks of
//! a fixed size (MIRACLE) or of listed sizes (KL-greedy packing, COMBINER); `explicit` lists
//! the members. A permutation covers one group only, so memory stays bounded by the group size
//! however large the weight set is.

use crate::format::layout::{Group, Rule};
use crate::format::{FormatError, MAX_BLOCK_DIM};
use crate::stream::{purpose, Stream, Supported};

/// Stream id of block `j` of group `g`: `g · 2^32 + j`.
pub fn block_id(group: u32, j: u32) -> u64 {
    ((group as u64) << 32) | j as u64
}

/// The seeded permutation of `0..n` for group `group` (Fisher–Yates driven by the PERM
/// stream; spec/format.md, section 6.2).
pub fn permutation(seed: u64, group: u32, n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    shuffle(seed, group, &mut order);
    order
}

/// `permutation`, allocated fallibly (`None` when this machine cannot hold it).
pub fn try_permutation(seed: u64, group: u32, n: u32) -> Option<Vec<u32>> {
    let mut order = Vec::new();
    order.try_reserve_exact(n as usize).ok()?;
    order.extend(0..n);
    shuffle(seed, group, &mut order);
    Some(order)
}

/// Fisher–Yates shuffle of `order` (which holds `0..n`) by the PERM stream of `group`.
fn shuffle(seed: u64, group: u32, order: &mut [u32]) {
    let n = order.len() as u32;
    if n < 2 {
        return;
    }
    let s = Stream::new(seed, purpose::PERMUTATION, group as u64);
    const STEPS: usize = 2048;
    let mut words = vec![0u32; 2 * STEPS];
    let steps = n as u64 - 1;
    let mut k: u64 = 0;
    let simd = Supported::best();
    while k < steps {
        let m = (steps - k).min(STEPS as u64) as usize;
        s.fill_words_with(2 * k, &mut words[..2 * m], simd);
        for t in 0..m {
            let i = (n as u64 - 1 - (k + t as u64)) as usize;
            let r = (words[2 * t] as u64) | ((words[2 * t + 1] as u64) << 32);
            let j = ((r as u128 * (i as u128 + 1)) >> 64) as usize;
            order.swap(i, j);
        }
        k += m as u64;
    }
}

/// Member offsets of group `g` (into the group) in block order: block j takes the next
/// `g.sizes()[j]`.
pub fn order(g: &Group) -> Vec<u32> {
    match &g.rule {
        Rule::Fixed { .. } | Rule::Sizes { .. } => permutation(g.seed, g.id, g.count as u32),
        Rule::Explicit { members, .. } => members.clone(),
    }
}

/// `order`, allocated fallibly: a `LimitError` when this machine cannot hold it.
pub fn try_order(g: &Group) -> Result<Vec<u32>, FormatError> {
    let oom =
        || FormatError::Limit(format!("cannot allocate the order of group {}: not enough memory", g.id));
    match &g.rule {
        Rule::Fixed { .. } | Rule::Sizes { .. } => {
            try_permutation(g.seed, g.id, g.count as u32).ok_or_else(oom)
        }
        Rule::Explicit { members, .. } => {
            let mut v = Vec::new();
            v.try_reserve_exact(members.len()).map_err(|_| oom())?;
            v.extend_from_slice(members);
            Ok(v)
        }
    }
}

/// KL-greedy packing (COMBINER): walk the elements in order, starting a new block when
/// adding the next element would take the block's KL above `budget` or its size above
/// `max_size`. An element whose KL alone exceeds the budget gets a block of its own.
pub fn kl_greedy_sizes(kl: impl IntoIterator<Item = f64>, budget: f64, max_size: u32) -> Vec<u16> {
    let max_size = max_size.clamp(1, MAX_BLOCK_DIM as u32);
    let mut sizes = Vec::new();
    let (mut n, mut acc) = (0u32, 0f64);
    for k in kl {
        if n > 0 && (acc + k > budget || n >= max_size) {
            sizes.push(n as u16);
            n = 0;
            acc = 0.0;
        }
        n += 1;
        acc += k;
    }
    if n > 0 {
        sizes.push(n as u16);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_permutation_and_seeded() {
        for n in [0u32, 1, 2, 3, 17, 5000] {
            let p = permutation(7, 3, n);
            let mut s = p.clone();
            s.sort_unstable();
            assert_eq!(s, (0..n).collect::<Vec<_>>());
        }
        assert_ne!(permutation(7, 3, 100), permutation(7, 4, 100));
        assert_ne!(permutation(8, 3, 100), permutation(7, 3, 100));
        assert_eq!(permutation(7, 3, 100), permutation(7, 3, 100));
    }

    #[test]
    fn permutation_matches_the_spec_pseudocode() {
        // Straight transcription of spec/format.md section 6.2 with single-word reads.
        let (seed, g, n) = (11u64, 2u32, 4099u32);
        let s = Stream::new(seed, purpose::PERMUTATION, g as u64);
        let mut order: Vec<u32> = (0..n).collect();
        for i in (1..n as u64).rev() {
            let k = n as u64 - 1 - i;
            let r = s.word(2 * k) as u64 | (s.word(2 * k + 1) as u64) << 32;
            let j = ((r as u128 * (i as u128 + 1)) >> 64) as usize;
            order.swap(i as usize, j);
        }
        assert_eq!(order, permutation(seed, g, n));
    }

    #[test]
    fn greedy_packing() {
        assert_eq!(kl_greedy_sizes([5.0, 5.0, 5.0, 5.0], 16.0, 25), vec![3, 1]);
        assert_eq!(kl_greedy_sizes([20.0, 1.0, 1.0], 16.0, 25), vec![1, 2]);
        assert_eq!(kl_greedy_sizes([0.0; 7], 16.0, 3), vec![3, 3, 1]);
        assert!(kl_greedy_sizes([], 16.0, 3).is_empty());
    }
}

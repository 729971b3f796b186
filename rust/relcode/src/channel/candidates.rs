//! Where candidate normals live in the stream, and regenerating one candidate.
//!
//! Candidates are interleaved in groups of sixteen: normal j of candidate k of a
//! d-dimensional block is position `(k / 16) * 16 d + 16 j + k % 16` of the block's
//! candidate stream (normative: spec/channel.md). Sixteen consecutive stream positions
//! are then one dimension of sixteen consecutive candidates, so the encoder scores whole
//! SIMD registers of candidates without transposing, for every d, and still regenerates
//! any single candidate in O(d).

use super::ChannelError;
use crate::stream::{candidate_weight, Stream};

/// Candidates per interleaving group.
pub const GROUP: usize = 16;

/// Stream position of normal `j` of candidate `k` in dimension `d`.
#[inline]
pub fn position(k: u64, j: usize, d: usize) -> u64 {
    (k / GROUP as u64) * (GROUP * d) as u64 + (GROUP * j) as u64 + k % GROUP as u64
}

/// Whether every normal of candidate `k` in dimension `d` has a stream position below 2^64
/// (messages that name a candidate beyond the stream are invalid, not wrapped around).
pub fn check(k: u64, d: usize) -> Result<(), ChannelError> {
    let end = (k / GROUP as u64 + 1).checked_mul((GROUP * d) as u64);
    match end {
        Some(_) => Ok(()),
        None => Err(ChannelError::InvalidMessage(format!(
            "candidate index {k} lies beyond the candidate stream for dimension {d}"
        ))),
    }
}

/// The standard normals of candidate `k` (dimension `z.len()`).
pub fn normals(stream: &Stream, k: u64, z: &mut [f32]) {
    let d = z.len();
    for (j, zj) in z.iter_mut().enumerate() {
        *zj = stream.normal(position(k, j, d));
    }
}

/// The weights of candidate `k`: `prior_std * z + prior_mean` in float32.
pub fn weights(
    stream: &Stream,
    k: u64,
    p_mean: &[f32],
    p_std: &[f32],
    out: &mut [f32],
) -> Result<(), ChannelError> {
    check(k, out.len())?;
    normals(stream, k, out);
    for i in 0..out.len() {
        out[i] = candidate_weight(p_mean[i], p_std[i], out[i]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{purpose, Backend};

    #[test]
    fn groups_are_contiguous_in_the_stream() {
        let s = Stream::new(3, purpose::CANDIDATES, 9);
        for d in [1usize, 3, 16, 25] {
            let mut tile = vec![0f32; 2 * GROUP * d];
            s.fill_normals(5 * (GROUP * d) as u64, &mut tile, Backend::Auto).unwrap();
            for k in 80..112u64 {
                let mut z = vec![0f32; d];
                normals(&s, k, &mut z);
                for j in 0..d {
                    let local = ((k - 80) / 16) as usize * GROUP * d + GROUP * j + (k % 16) as usize;
                    assert_eq!(z[j].to_bits(), tile[local].to_bits());
                }
            }
        }
    }
}

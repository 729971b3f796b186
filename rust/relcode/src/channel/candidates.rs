//! Where candidate normals live in the stream, and regenerating one candidate.
//!
//! Candidates are interleaved in groups of sixteen: normal j of candidate k of a
//! d-dimensional block is position `(k / 16) * 16 d + 16 j + k % 16` of the block's
//! candidate stream (normative: spec/channel.md). Sixteen consecutive stream positions
//! are then one dimension of sixteen consecutive candidates, so the encoder scores whole
//! SIMD registers of candidates without transposing, for every d, and still regenerates
//! any single candidate in O(d).

use crate::stream::{candidate_weight, Backend, Stream};

/// Candidates per interleaving group.
pub const GROUP: usize = 16;

/// Stream position of normal `j` of candidate `k` in dimension `d`.
#[inline]
pub fn position(k: u64, j: usize, d: usize) -> u64 {
    (k / GROUP as u64) * (GROUP * d) as u64 + (GROUP * j) as u64 + k % GROUP as u64
}

/// The standard normals of candidate `k` (dimension `z.len()`).
///
/// Decoders call this once per block, so it is the decoder's inner loop. Normal j of the
/// candidate is at position `base + 16 j`, so every normal comes from its own Philox block,
/// `base / 4 + 4 j`, and takes the same word pair and the same half (cos or sin) of the
/// Box-Muller transform (`base % 4` does not depend on j). The SIMD paths evaluate 16 (or 8)
/// of those blocks at once; they use the stream's own vector Philox and Box-Muller, which
/// are asserted equal to the scalar ones, and give the scalar path's bits.
pub fn normals(stream: &Stream, k: u64, z: &mut [f32]) {
    let d = z.len();
    #[cfg(target_arch = "x86_64")]
    if d >= 4 {
        match Backend::Auto.resolve() {
            // SAFETY: the backend was detected on this CPU.
            Backend::Avx512 => return unsafe { simd::normals_avx512(stream, position(k, 0, d), z) },
            Backend::Avx2 => return unsafe { simd::normals_avx2(stream, position(k, 0, d), z) },
            _ => {}
        }
    }
    normals_scalar(stream, k, z);
}

/// [`normals`] one Philox block at a time (the reference the SIMD paths must equal).
pub fn normals_scalar(stream: &Stream, k: u64, z: &mut [f32]) {
    let d = z.len();
    for (j, zj) in z.iter_mut().enumerate() {
        *zj = stream.normal(position(k, j, d));
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use crate::stream::normal::{avx2 as n2, avx512 as n16};
    use crate::stream::philox::{avx2 as p2, avx512 as p16};
    use crate::stream::Stream;
    use core::arch::x86_64::*;

    /// Normals at positions `base + 16 j`, j < z.len(), sixteen at a time.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn normals_avx512(stream: &Stream, base: u64, z: &mut [f32]) {
        let d = z.len();
        let rk = p16::round_keys(stream.key);
        let id_lo = _mm512_set1_epi32(stream.id as u32 as i32);
        let id_hi = _mm512_set1_epi32((stream.id >> 32) as u32 as i32);
        let step = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60);
        let (high_pair, sine) = (base & 2 != 0, base & 1 != 0);
        let mut j = 0usize;
        while j < d {
            let b = (base >> 2).wrapping_add(4 * j as u64);
            let b_lo = _mm512_set1_epi32(b as u32 as i32);
            let lo = _mm512_add_epi32(b_lo, step);
            let carry = _mm512_cmplt_epu32_mask(lo, b_lo);
            let hi = _mm512_set1_epi32((b >> 32) as u32 as i32);
            let hi = _mm512_mask_add_epi32(hi, carry, hi, _mm512_set1_epi32(1));
            let w = p16::philox16([lo, hi, id_lo, id_hi], &rk);
            let (c, s) =
                if high_pair { n16::box_muller16(w[2], w[3]) } else { n16::box_muller16(w[0], w[1]) };
            let n = (d - j).min(16);
            let mask: __mmask16 = if n == 16 { 0xFFFF } else { (1u16 << n) - 1 };
            _mm512_mask_storeu_ps(z.as_mut_ptr().add(j), mask, if sine { s } else { c });
            j += 16;
        }
    }

    /// Normals at positions `base + 16 j`, j < z.len(), eight at a time.
    #[target_feature(enable = "avx2")]
    pub unsafe fn normals_avx2(stream: &Stream, base: u64, z: &mut [f32]) {
        let d = z.len();
        let rk = p2::round_keys(stream.key);
        let id_lo = _mm256_set1_epi32(stream.id as u32 as i32);
        let id_hi = _mm256_set1_epi32((stream.id >> 32) as u32 as i32);
        let step = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        let flip = _mm256_set1_epi32(i32::MIN);
        let (high_pair, sine) = (base & 2 != 0, base & 1 != 0);
        let mut tmp = [0f32; 8];
        let mut j = 0usize;
        while j < d {
            let b = (base >> 2).wrapping_add(4 * j as u64);
            let b_lo = _mm256_set1_epi32(b as u32 as i32);
            let lo = _mm256_add_epi32(b_lo, step);
            // Unsigned lo < b_lo (a carry) as a signed compare of the flipped values: all ones.
            let carry = _mm256_cmpgt_epi32(_mm256_xor_si256(b_lo, flip), _mm256_xor_si256(lo, flip));
            let hi = _mm256_sub_epi32(_mm256_set1_epi32((b >> 32) as u32 as i32), carry);
            let w = p2::philox8([lo, hi, id_lo, id_hi], &rk);
            let (c, s) = if high_pair { n2::box_muller8(w[2], w[3]) } else { n2::box_muller8(w[0], w[1]) };
            let n = (d - j).min(8);
            if n == 8 {
                _mm256_storeu_ps(z.as_mut_ptr().add(j), if sine { s } else { c });
            } else {
                _mm256_storeu_ps(tmp.as_mut_ptr(), if sine { s } else { c });
                z[j..j + n].copy_from_slice(&tmp[..n]);
            }
            j += 8;
        }
    }
}

/// The weights of candidate `k`: `prior_std * z + prior_mean` in float32.
pub fn weights(stream: &Stream, k: u64, p_mean: &[f32], p_std: &[f32], out: &mut [f32]) {
    normals(stream, k, out);
    for i in 0..out.len() {
        out[i] = candidate_weight(p_mean[i], p_std[i], out[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{purpose, Backend};

    #[test]
    fn simd_normals_equal_scalar() {
        // Every dimension up to 70 (full and partial vectors), candidates around interleaving
        // groups, ids with high bits, and blocks whose low counter word carries into the high.
        for (seed, id) in [(3u64, 9u64), (7, u64::MAX - 5), (11, 1 << 40)] {
            let s = Stream::new(seed, purpose::CANDIDATES, id);
            for d in 1..=70usize {
                let far = ((1u64 << 34) / (16 * d as u64)) * 16; // base / 4 near 2^32
                for k in (0..40u64).chain(far - 40..far + 40).chain([u32::MAX as u64, 1 << 33]) {
                    let mut want = vec![0f32; d];
                    normals_scalar(&s, k, &mut want);
                    let mut got = vec![0f32; d];
                    normals(&s, k, &mut got);
                    let base = position(k, 0, d);
                    #[cfg(target_arch = "x86_64")]
                    for (avail, f) in [
                        (
                            Backend::Avx512.available(),
                            simd::normals_avx512 as unsafe fn(&Stream, u64, &mut [f32]),
                        ),
                        (Backend::Avx2.available(), simd::normals_avx2),
                    ] {
                        if avail {
                            let mut v = vec![0f32; d];
                            unsafe { f(&s, base, &mut v) };
                            assert_eq!(
                                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                                "d {d} k {k}"
                            );
                        }
                    }
                    let _ = base;
                    assert_eq!(
                        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        "d {d} k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn groups_are_contiguous_in_the_stream() {
        let s = Stream::new(3, purpose::CANDIDATES, 9);
        for d in [1usize, 3, 16, 25] {
            let mut tile = vec![0f32; 2 * GROUP * d];
            s.fill_normals(5 * (GROUP * d) as u64, &mut tile, Backend::Auto);
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

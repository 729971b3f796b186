//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
//! with Random123's constants and key schedule: round r uses the key bumped r times.

use super::consts::{PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1};

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 evaluation: 128-bit counter, 64-bit key, 128 bits out.
///
/// # Examples
///
/// The first known answer of spec/stream.md section 1 (Random123's `kat_vectors`):
///
/// ```
/// use relcode::stream::philox4x32_10;
///
/// assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
/// ```
#[inline(always)]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k0 = key[0];
    let mut k1 = key[1];
    let mut r = 0;
    loop {
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0];
        r += 1;
        if r == 10 {
            return c;
        }
        k0 = k0.wrapping_add(PHILOX_W0);
        k1 = k1.wrapping_add(PHILOX_W1);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! Eight Philox evaluations at once: word i of the eight outputs in one register.
    //!
    //! Every function here runs AVX2 instructions: the `#[target_feature]` ones take the
    //! proof `Avx2Cpu`, and the `#[inline(always)]` helpers are called only where that
    //! proof is held (inside those functions, or in tests that obtained it).
    use super::super::consts::{PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1};
    use crate::stream::Avx2Cpu;
    use core::arch::x86_64::*;

    /// High and low 32-bit halves of the eight products a[l] * m. Moves between the even
    /// and odd 32-bit positions use shuffles (port 5) rather than 64-bit shifts, which
    /// would compete with the multiplies for ports 0 and 1.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2 (see the module).
    #[inline(always)]
    unsafe fn mulhilo(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_shuffle_epi32::<0xF5>(a), m);
        let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_shuffle_epi32::<0xA0>(odd));
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_shuffle_epi32::<0xF5>(even), odd);
        (hi, lo)
    }

    /// The ten round keys of `key`, broadcast: (k0 + r W0, k1 + r W1) for r = 0..9.
    // SAFETY: register-only AVX2 code; `_cpu` proves that this CPU has AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn round_keys(_cpu: Avx2Cpu, key: [u32; 2]) -> [[__m256i; 2]; 10] {
        let mut rk = [[_mm256_setzero_si256(); 2]; 10];
        let (mut k0, mut k1) = (key[0], key[1]);
        for r in rk.iter_mut() {
            *r = [_mm256_set1_epi32(k0 as i32), _mm256_set1_epi32(k1 as i32)];
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        rk
    }

    /// Words of Philox blocks `b .. b+8` of stream `id` (b % 8 == 0), stored in stream order.
    // SAFETY: `_cpu` proves that this CPU has AVX2; callers pass an `out` valid for writes
    // of 32 u32 (the four unaligned stores cover out[0..32] exactly).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn words32(_cpu: Avx2Cpu, rk: &[[__m256i; 2]; 10], id: u64, b: u64, out: *mut u32) {
        let c = [
            _mm256_add_epi32(_mm256_set1_epi32(b as u32 as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
            _mm256_set1_epi32((b >> 32) as u32 as i32),
            _mm256_set1_epi32(id as u32 as i32),
            _mm256_set1_epi32((id >> 32) as u32 as i32),
        ];
        let w = philox8(c, rk);
        let z = w.map(|x| _mm256_castsi256_ps(x));
        let t0 = _mm256_unpacklo_ps(z[0], z[1]);
        let t1 = _mm256_unpackhi_ps(z[0], z[1]);
        let t2 = _mm256_unpacklo_ps(z[2], z[3]);
        let t3 = _mm256_unpackhi_ps(z[2], z[3]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let p = out as *mut f32;
        _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(u0, u1));
        _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x20>(u2, u3));
        _mm256_storeu_ps(p.add(16), _mm256_permute2f128_ps::<0x31>(u0, u1));
        _mm256_storeu_ps(p.add(24), _mm256_permute2f128_ps::<0x31>(u2, u3));
    }

    /// Philox4x32-10 on eight counters (c[i] holds word i of each), given `round_keys`.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2 (see the module).
    #[inline(always)]
    pub unsafe fn philox8(c: [__m256i; 4], rk: &[[__m256i; 2]; 10]) -> [__m256i; 4] {
        let m0 = _mm256_set1_epi32(PHILOX_M0 as i32);
        let m1 = _mm256_set1_epi32(PHILOX_M1 as i32);
        let [mut c0, mut c1, mut c2, mut c3] = c;
        for k in rk.iter() {
            let (hi0, lo0) = mulhilo(c0, m0);
            let (hi1, lo1) = mulhilo(c2, m1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k[0]);
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k[1]);
            c1 = lo1;
            c3 = lo0;
        }
        [c0, c1, c2, c3]
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    //! Sixteen Philox evaluations at once (AVX-512F): word i of the sixteen outputs in one
    //! register; three-way XORs in one ternary-logic instruction.
    //!
    //! Every function here runs AVX-512F instructions: the `#[target_feature]` ones take the
    //! proof `Avx512Cpu`, and the `#[inline(always)]` helpers are called only where that
    //! proof is held (inside those functions, or in tests that obtained it).
    use super::super::consts::{PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1};
    use crate::stream::Avx512Cpu;
    use core::arch::x86_64::*;

    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    unsafe fn mulhilo(a: __m512i, m: __m512i) -> (__m512i, __m512i) {
        let even = _mm512_mul_epu32(a, m);
        let odd = _mm512_mul_epu32(_mm512_shuffle_epi32::<0xF5>(a), m);
        let lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_shuffle_epi32::<0xA0>(odd));
        let hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_shuffle_epi32::<0xF5>(even), odd);
        (hi, lo)
    }

    /// The ten round keys of `key`, broadcast.
    // SAFETY: register-only AVX-512F code; `_cpu` proves that this CPU has AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn round_keys(_cpu: Avx512Cpu, key: [u32; 2]) -> [[__m512i; 2]; 10] {
        let mut rk = [[_mm512_setzero_si512(); 2]; 10];
        let (mut k0, mut k1) = (key[0], key[1]);
        for r in rk.iter_mut() {
            *r = [_mm512_set1_epi32(k0 as i32), _mm512_set1_epi32(k1 as i32)];
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        rk
    }

    /// Counters of Philox blocks `b .. b+16` of stream `id`.
    // SAFETY: register-only AVX-512F code; callers hold the proof of AVX-512F.
    #[inline(always)]
    unsafe fn counters(id: u64, b: u64) -> [__m512i; 4] {
        [
            _mm512_add_epi32(
                _mm512_set1_epi32(b as u32 as i32),
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            ),
            _mm512_set1_epi32((b >> 32) as u32 as i32),
            _mm512_set1_epi32(id as u32 as i32),
            _mm512_set1_epi32((id >> 32) as u32 as i32),
        ]
    }

    /// The 64 words of sixteen blocks (word i of each in w[i]) stored in stream order.
    // SAFETY: callers hold the proof of AVX-512F and pass an `out` valid for writes of 64 u32
    // (the four unaligned stores cover out[0..64] exactly).
    #[inline(always)]
    unsafe fn store_words(w: [__m512i; 4], out: *mut u32) {
        let z = w.map(|x| _mm512_castsi512_ps(x));
        let t0 = _mm512_unpacklo_ps(z[0], z[1]);
        let t1 = _mm512_unpackhi_ps(z[0], z[1]);
        let t2 = _mm512_unpacklo_ps(z[2], z[3]);
        let t3 = _mm512_unpackhi_ps(z[2], z[3]);
        let u0 = _mm512_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm512_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm512_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm512_shuffle_ps::<0xEE>(t1, t3);
        let v0 = _mm512_shuffle_f32x4::<0x44>(u0, u1);
        let v1 = _mm512_shuffle_f32x4::<0x44>(u2, u3);
        let v2 = _mm512_shuffle_f32x4::<0xEE>(u0, u1);
        let v3 = _mm512_shuffle_f32x4::<0xEE>(u2, u3);
        let p = out as *mut f32;
        _mm512_storeu_ps(p, _mm512_shuffle_f32x4::<0x88>(v0, v1));
        _mm512_storeu_ps(p.add(16), _mm512_shuffle_f32x4::<0xDD>(v0, v1));
        _mm512_storeu_ps(p.add(32), _mm512_shuffle_f32x4::<0x88>(v2, v3));
        _mm512_storeu_ps(p.add(48), _mm512_shuffle_f32x4::<0xDD>(v2, v3));
    }

    /// Words of Philox blocks `b .. b+16` of stream `id` (b % 16 == 0), stored in stream order.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; callers pass an `out` valid for
    // writes of 64 u32.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn words64(_cpu: Avx512Cpu, rk: &[[__m512i; 2]; 10], id: u64, b: u64, out: *mut u32) {
        store_words(philox16(counters(id, b), rk), out);
    }

    /// `words64` of blocks `b .. b+32`, the two Philox chains interleaved.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; callers pass an `out` valid for
    // writes of 128 u32 (two `store_words` of 64 each, at out and out + 64).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn words128(_cpu: Avx512Cpu, rk: &[[__m512i; 2]; 10], id: u64, b: u64, out: *mut u32) {
        let [w0, w1] = philox16x2(counters(id, b), counters(id, b.wrapping_add(16)), rk);
        store_words(w0, out);
        store_words(w1, out.add(64));
    }

    /// Philox4x32-10 on sixteen counters (c[i] holds word i of each), given `round_keys`.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    pub unsafe fn philox16(c: [__m512i; 4], rk: &[[__m512i; 2]; 10]) -> [__m512i; 4] {
        let m0 = _mm512_set1_epi32(PHILOX_M0 as i32);
        let m1 = _mm512_set1_epi32(PHILOX_M1 as i32);
        let [mut c0, mut c1, mut c2, mut c3] = c;
        for k in rk.iter() {
            let (hi0, lo0) = mulhilo(c0, m0);
            let (hi1, lo1) = mulhilo(c2, m1);
            c0 = _mm512_ternarylogic_epi32::<0x96>(hi1, c1, k[0]);
            c2 = _mm512_ternarylogic_epi32::<0x96>(hi0, c3, k[1]);
            c1 = lo1;
            c3 = lo0;
        }
        [c0, c1, c2, c3]
    }

    /// Two independent `philox16` chains interleaved, so that one's multiplies fill the
    /// other's latency.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    pub unsafe fn philox16x2(a: [__m512i; 4], b: [__m512i; 4], rk: &[[__m512i; 2]; 10]) -> [[__m512i; 4]; 2] {
        let m0 = _mm512_set1_epi32(PHILOX_M0 as i32);
        let m1 = _mm512_set1_epi32(PHILOX_M1 as i32);
        let [mut a0, mut a1, mut a2, mut a3] = a;
        let [mut b0, mut b1, mut b2, mut b3] = b;
        for k in rk.iter() {
            let (ahi0, alo0) = mulhilo(a0, m0);
            let (bhi0, blo0) = mulhilo(b0, m0);
            let (ahi1, alo1) = mulhilo(a2, m1);
            let (bhi1, blo1) = mulhilo(b2, m1);
            a0 = _mm512_ternarylogic_epi32::<0x96>(ahi1, a1, k[0]);
            b0 = _mm512_ternarylogic_epi32::<0x96>(bhi1, b1, k[0]);
            a2 = _mm512_ternarylogic_epi32::<0x96>(ahi0, a3, k[1]);
            b2 = _mm512_ternarylogic_epi32::<0x96>(bhi0, b3, k[1]);
            a1 = alo1;
            b1 = blo1;
            a3 = alo0;
            b3 = blo0;
        }
        [[a0, a1, a2, a3], [b0, b1, b2, b3]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors (kat_vectors, "philox4x32 10").
    #[test]
    fn random123_known_answers() {
        assert_eq!(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_matches_scalar() {
        let Ok(crate::stream::Supported::Avx2(cpu)) = crate::stream::Backend::Avx2.checked() else {
            return;
        };
        use core::arch::x86_64::*;
        let key = [0x1234_5678, 0x9abc_def0];
        let mut words = [[0u32; 8]; 4];
        for l in 0..8 {
            for (w, row) in words.iter_mut().enumerate() {
                row[l] = (l as u32).wrapping_mul(0x9E37_79B9) ^ (w as u32 * 0x85EB_CA6B) ^ 0xFFFF_FF00;
            }
        }
        // SAFETY: `cpu` proves AVX2; the loads and stores move 8 u32 of 8-element rows.
        let out = unsafe {
            let c = [0, 1, 2, 3].map(|w| _mm256_loadu_si256(words[w].as_ptr() as *const __m256i));
            let o = avx2::philox8(c, &avx2::round_keys(cpu, key));
            let mut res = [[0u32; 8]; 4];
            for w in 0..4 {
                _mm256_storeu_si256(res[w].as_mut_ptr() as *mut __m256i, o[w]);
            }
            res
        };
        for l in 0..8 {
            let want = philox4x32_10([words[0][l], words[1][l], words[2][l], words[3][l]], key);
            for w in 0..4 {
                assert_eq!(out[w][l], want[w]);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_matches_scalar() {
        let Ok(crate::stream::Supported::Avx512(cpu)) = crate::stream::Backend::Avx512.checked() else {
            return;
        };
        use core::arch::x86_64::*;
        let key = [0xdead_beef, 0x0bad_f00d];
        let mut words = [[0u32; 16]; 4];
        for l in 0..16 {
            for (w, row) in words.iter_mut().enumerate() {
                row[l] =
                    (l as u32).wrapping_mul(0x85EB_CA6B) ^ (w as u32).wrapping_mul(0xC2B2_AE35) ^ 0xFFFF_FFF0;
            }
        }
        // SAFETY: `cpu` proves AVX-512F; the loads and stores move 16 u32 of 16-element rows.
        let out = unsafe {
            let c = [0, 1, 2, 3].map(|w| _mm512_loadu_si512(words[w].as_ptr() as *const _));
            let o = avx512::philox16(c, &avx512::round_keys(cpu, key));
            let mut res = [[0u32; 16]; 4];
            for w in 0..4 {
                _mm512_storeu_si512(res[w].as_mut_ptr() as *mut _, o[w]);
            }
            res
        };
        for l in 0..16 {
            let want = philox4x32_10([words[0][l], words[1][l], words[2][l], words[3][l]], key);
            for w in 0..4 {
                assert_eq!(out[w][l], want[w]);
            }
        }
    }
}

//! The normal transform: Box-Muller from two 32-bit words, in float32, own log/sin/cos.
//!
//! Why Box-Muller: it costs about a third of an inverse-CDF transform per normal with
//! the same exactness guarantees, and two words make two normals, so the four words of
//! one Philox block give four normals and normal `p` of a stream is still computed alone
//! in O(1). Tail accuracy: the radius word resolves the uniform to 2^-23 and, below
//! 2^-23, to 2^-32, so |z| <= sqrt(66 ln 2) = 6.764 and every tail probability above
//! 2^-33 is reproduced to within one grid cell (see spec/stream.md, "Tail accuracy").

use super::consts::PI_4_F;
use super::math::{logf, sincos_octant};

const TWO_M23: f32 = 1.0 / 8_388_608.0;
const TWO_M32: f32 = 1.0 / 4_294_967_296.0;

/// The radius uniform of `box_muller`: (j + 1/2) 2^-23 with j = a >> 9, refined to
/// ((a & 0x1FF) + 1/2) 2^-32 when j = 0. Exact, in [2^-33, 1 - 2^-24].
#[inline(always)]
pub fn fine_uniform(a: u32) -> f32 {
    let j = a >> 9;
    let main = (j as f32 + 0.5) * TWO_M23;
    let tail = ((a & 0x1FF) as f32 + 0.5) * TWO_M32;
    if j != 0 {
        main
    } else {
        tail
    }
}

/// Two standard normals (r cos t, r sin t) from a radius word `a` and an angle word `b`.
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> (f32, f32) {
    let r = (logf(fine_uniform(a)) * -2.0).sqrt();
    let o = b >> 29;
    let mut t = (b >> 6) & 0x007F_FFFF;
    if o & 1 == 1 {
        t ^= 0x007F_FFFF;
    }
    let alpha = ((t as f32 + 0.5) * TWO_M23) * PI_4_F;
    let (s, c) = sincos_octant(alpha);
    let (mut cs, mut sn) = if ((o + 1) >> 1) & 1 == 1 { (s, c) } else { (c, s) };
    if ((o + 2) >> 2) & 1 == 1 {
        cs = -cs;
    }
    if (o >> 2) & 1 == 1 {
        sn = -sn;
    }
    (r * cs, r * sn)
}

/// The four normals of one Philox block: (cos, sin) of words (0, 1), then of words (2, 3).
#[inline(always)]
pub fn block_normals(w: [u32; 4]) -> [f32; 4] {
    let (z0, z1) = box_muller(w[0], w[1]);
    let (z2, z3) = box_muller(w[2], w[3]);
    [z0, z1, z2, z3]
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! The normal transform on eight lanes. Every function here runs AVX2 instructions: the
    //! `#[target_feature]` ones take the proof `Avx2Cpu`, and the `#[inline(always)]`
    //! helpers are called only where that proof is held (inside those functions, inside the
    //! AVX2 selection of `channel::fixed`, or in tests that obtained it).
    use super::super::consts::*;
    use crate::stream::Avx2Cpu;
    use core::arch::x86_64::*;

    // SAFETY: register-only AVX2 arithmetic (`c` is read by safe indexing); callers hold the
    // proof of AVX2 (see the module).
    #[inline(always)]
    unsafe fn horner(x: __m256, c: &[f32]) -> __m256 {
        let mut p = _mm256_set1_ps(c[c.len() - 1]);
        for &ck in c[..c.len() - 1].iter().rev() {
            p = _mm256_add_ps(_mm256_mul_ps(p, x), _mm256_set1_ps(ck));
        }
        p
    }

    /// `math::logf` on eight lanes, same operations in the same order.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
    #[inline(always)]
    pub unsafe fn logf8(x: __m256) -> __m256 {
        let bits = _mm256_castps_si256(x);
        let e = _mm256_sub_epi32(
            _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xFF)),
            _mm256_set1_epi32(127),
        );
        let mbits = _mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi32(0x007F_FFFF)),
            _mm256_set1_epi32(0x3F80_0000),
        );
        let big = _mm256_cmpgt_epi32(mbits, _mm256_set1_epi32(SQRT2_MANT_F as i32));
        let mbits = _mm256_sub_epi32(mbits, _mm256_and_si256(big, _mm256_set1_epi32(0x0080_0000)));
        let e = _mm256_sub_epi32(e, big);
        let f = _mm256_sub_ps(_mm256_castsi256_ps(mbits), _mm256_set1_ps(1.0));
        let z = _mm256_mul_ps(f, f);
        let p = horner(f, &LOGF_P);
        let ef = _mm256_cvtepi32_ps(e);
        let mut t = _mm256_mul_ps(f, z);
        t = _mm256_mul_ps(t, p);
        t = _mm256_add_ps(t, _mm256_mul_ps(ef, _mm256_set1_ps(LN2_LO_F)));
        t = _mm256_sub_ps(t, _mm256_mul_ps(_mm256_set1_ps(0.5), z));
        let s = _mm256_add_ps(f, t);
        _mm256_add_ps(s, _mm256_mul_ps(ef, _mm256_set1_ps(LN2_HI_F)))
    }

    /// `normal::fine_uniform` on eight lanes.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
    #[inline(always)]
    pub unsafe fn fine_uniform8(a: __m256i) -> __m256 {
        let two_m23 = _mm256_set1_ps(1.0 / 8_388_608.0);
        let two_m32 = _mm256_set1_ps(1.0 / 4_294_967_296.0);
        let half = _mm256_set1_ps(0.5);
        let j = _mm256_srli_epi32::<9>(a);
        let jz = _mm256_castsi256_ps(_mm256_cmpeq_epi32(j, _mm256_setzero_si256()));
        let xm = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(j), half), two_m23);
        let low = _mm256_and_si256(a, _mm256_set1_epi32(0x1FF));
        let xt = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(low), half), two_m32);
        _mm256_blendv_ps(xm, xt, jz)
    }

    /// `normal::box_muller` on eight lanes.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
    #[inline(always)]
    pub unsafe fn box_muller8(a: __m256i, b: __m256i) -> (__m256, __m256) {
        let two_m23 = _mm256_set1_ps(1.0 / 8_388_608.0);
        let half = _mm256_set1_ps(0.5);
        let r = _mm256_sqrt_ps(_mm256_mul_ps(logf8(fine_uniform8(a)), _mm256_set1_ps(-2.0)));

        let o = _mm256_srli_epi32::<29>(b);
        let one = _mm256_set1_epi32(1);
        let odd = _mm256_and_si256(o, one);
        let flip =
            _mm256_and_si256(_mm256_sub_epi32(_mm256_setzero_si256(), odd), _mm256_set1_epi32(0x007F_FFFF));
        let t = _mm256_xor_si256(
            _mm256_and_si256(_mm256_srli_epi32::<6>(b), _mm256_set1_epi32(0x007F_FFFF)),
            flip,
        );
        let phi = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(t), half), two_m23);
        let alpha = _mm256_mul_ps(phi, _mm256_set1_ps(PI_4_F));

        let x2 = _mm256_mul_ps(alpha, alpha);
        let p = horner(x2, &SIN_S);
        let st = _mm256_mul_ps(_mm256_mul_ps(alpha, x2), p);
        let s = _mm256_add_ps(alpha, st);
        let q = horner(x2, &COS_C);
        let u = _mm256_mul_ps(_mm256_mul_ps(x2, x2), q);
        let v = _mm256_sub_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(half, x2));
        let c = _mm256_add_ps(v, u);

        let swap = _mm256_and_si256(_mm256_srli_epi32::<1>(_mm256_add_epi32(o, one)), one);
        let swap_mask = _mm256_castsi256_ps(_mm256_cmpeq_epi32(swap, one));
        let cs = _mm256_blendv_ps(c, s, swap_mask);
        let sn = _mm256_blendv_ps(s, c, swap_mask);
        let cneg = _mm256_slli_epi32::<31>(_mm256_srli_epi32::<2>(_mm256_add_epi32(o, _mm256_set1_epi32(2))));
        let sneg = _mm256_slli_epi32::<31>(_mm256_srli_epi32::<2>(o));
        let cs = _mm256_xor_ps(cs, _mm256_castsi256_ps(cneg));
        let sn = _mm256_xor_ps(sn, _mm256_castsi256_ps(sneg));
        (_mm256_mul_ps(r, cs), _mm256_mul_ps(r, sn))
    }

    // SAFETY: register-only AVX2 code; callers hold the proof of AVX2.
    #[inline(always)]
    unsafe fn counters(id: u64, b: u64) -> [__m256i; 4] {
        let lo = b as u32;
        let hi = (b >> 32) as u32;
        [
            _mm256_add_epi32(_mm256_set1_epi32(lo as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
            _mm256_set1_epi32(hi as i32),
            _mm256_set1_epi32(id as u32 as i32),
            _mm256_set1_epi32((id >> 32) as u32 as i32),
        ]
    }

    /// Box-Muller on the words of eight blocks, stored as their 32 normals in stream order.
    // SAFETY: callers hold the proof of AVX2 and pass a `p` valid for writes of 32 f32 (the
    // four unaligned stores cover p[0..32] exactly).
    #[inline(always)]
    unsafe fn transform_store(w: [__m256i; 4], p: *mut f32) {
        let (z0, z1) = box_muller8(w[0], w[1]);
        let (z2, z3) = box_muller8(w[2], w[3]);
        let t0 = _mm256_unpacklo_ps(z0, z1);
        let t1 = _mm256_unpackhi_ps(z0, z1);
        let t2 = _mm256_unpacklo_ps(z2, z3);
        let t3 = _mm256_unpackhi_ps(z2, z3);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(u0, u1));
        _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x20>(u2, u3));
        _mm256_storeu_ps(p.add(16), _mm256_permute2f128_ps::<0x31>(u0, u1));
        _mm256_storeu_ps(p.add(24), _mm256_permute2f128_ps::<0x31>(u2, u3));
    }

    /// Normals at eight arbitrary (stream id, position) pairs under round keys `rk`.
    // SAFETY: `_cpu` proves that this CPU has AVX2; `ids` and `pos` are read by safe
    // indexing, the loads read local arrays of eight, and the one store of eight lanes
    // follows the assert that `out` holds them.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn gather8(_cpu: Avx2Cpu, rk: &[[__m256i; 2]; 10], ids: &[u64], pos: &[u64], out: &mut [f32]) {
        assert!(out.len() >= 8);
        let mut c = [[0u32; 8]; 4];
        let mut sel = [0u32; 8];
        let mut odd = [0u32; 8];
        for l in 0..8 {
            let b = pos[l] >> 2;
            c[0][l] = b as u32;
            c[1][l] = (b >> 32) as u32;
            c[2][l] = ids[l] as u32;
            c[3][l] = (ids[l] >> 32) as u32;
            sel[l] = if pos[l] & 2 != 0 { u32::MAX } else { 0 };
            odd[l] = if pos[l] & 1 != 0 { u32::MAX } else { 0 };
        }
        let cv = c.map(|w| _mm256_loadu_si256(w.as_ptr() as *const __m256i));
        let w = super::super::philox::avx2::philox8(cv, rk);
        let m = _mm256_loadu_si256(sel.as_ptr() as *const __m256i);
        let a = _mm256_blendv_epi8(w[0], w[2], m);
        let b = _mm256_blendv_epi8(w[1], w[3], m);
        let (zc, zs) = box_muller8(a, b);
        let o = _mm256_castsi256_ps(_mm256_loadu_si256(odd.as_ptr() as *const __m256i));
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_blendv_ps(zc, zs, o));
    }

    /// The 32 normals of Philox blocks `b .. b+8` of stream `id` under round keys `rk`,
    /// in stream order. `b` must be a multiple of 8.
    // SAFETY: `_cpu` proves that this CPU has AVX2; `transform_store` writes 32 floats, which
    // the assert shows `out` holds.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn normals32(_cpu: Avx2Cpu, rk: &[[__m256i; 2]; 10], id: u64, b: u64, out: &mut [f32]) {
        assert!(out.len() >= 32);
        debug_assert!(b.is_multiple_of(8));
        let w = super::super::philox::avx2::philox8(counters(id, b), rk);
        transform_store(w, out.as_mut_ptr());
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    //! The normal transform on sixteen lanes. Every function here runs AVX-512F
    //! instructions: the `#[target_feature]` ones take the proof `Avx512Cpu`, and the
    //! `#[inline(always)]` helpers are called only where that proof is held (inside those
    //! functions, inside the AVX-512 selection of `channel::fixed`, or in tests that
    //! obtained it).
    use super::super::consts::*;
    use crate::stream::Avx512Cpu;
    use core::arch::x86_64::*;

    // SAFETY: register-only AVX-512F arithmetic (`c` is read by safe indexing); callers hold
    // the proof of AVX-512F (see the module).
    #[inline(always)]
    unsafe fn horner(x: __m512, c: &[f32]) -> __m512 {
        let mut p = _mm512_set1_ps(c[c.len() - 1]);
        for &ck in c[..c.len() - 1].iter().rev() {
            p = _mm512_add_ps(_mm512_mul_ps(p, x), _mm512_set1_ps(ck));
        }
        p
    }

    /// `math::logf` on sixteen lanes, same operations in the same order.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    pub unsafe fn logf16(x: __m512) -> __m512 {
        let bits = _mm512_castps_si512(x);
        let e = _mm512_sub_epi32(
            _mm512_and_si512(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(0xFF)),
            _mm512_set1_epi32(127),
        );
        let mbits = _mm512_or_si512(
            _mm512_and_si512(bits, _mm512_set1_epi32(0x007F_FFFF)),
            _mm512_set1_epi32(0x3F80_0000),
        );
        let big = _mm512_cmpgt_epi32_mask(mbits, _mm512_set1_epi32(SQRT2_MANT_F as i32));
        let mbits = _mm512_mask_sub_epi32(mbits, big, mbits, _mm512_set1_epi32(0x0080_0000));
        let e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
        let f = _mm512_sub_ps(_mm512_castsi512_ps(mbits), _mm512_set1_ps(1.0));
        let z = _mm512_mul_ps(f, f);
        let p = horner(f, &LOGF_P);
        let ef = _mm512_cvtepi32_ps(e);
        let mut t = _mm512_mul_ps(f, z);
        t = _mm512_mul_ps(t, p);
        t = _mm512_add_ps(t, _mm512_mul_ps(ef, _mm512_set1_ps(LN2_LO_F)));
        t = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_set1_ps(0.5), z));
        let s = _mm512_add_ps(f, t);
        _mm512_add_ps(s, _mm512_mul_ps(ef, _mm512_set1_ps(LN2_HI_F)))
    }

    /// `normal::fine_uniform` on sixteen lanes.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    pub unsafe fn fine_uniform16(a: __m512i) -> __m512 {
        let two_m23 = _mm512_set1_ps(1.0 / 8_388_608.0);
        let two_m32 = _mm512_set1_ps(1.0 / 4_294_967_296.0);
        let half = _mm512_set1_ps(0.5);
        let j = _mm512_srli_epi32::<9>(a);
        let jz = _mm512_cmpeq_epi32_mask(j, _mm512_setzero_si512());
        let xm = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(j), half), two_m23);
        let low = _mm512_and_si512(a, _mm512_set1_epi32(0x1FF));
        let xt = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(low), half), two_m32);
        _mm512_mask_blend_ps(jz, xm, xt)
    }

    /// `normal::box_muller` on sixteen lanes.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    pub unsafe fn box_muller16(a: __m512i, b: __m512i) -> (__m512, __m512) {
        let two_m23 = _mm512_set1_ps(1.0 / 8_388_608.0);
        let half = _mm512_set1_ps(0.5);
        let r = _mm512_sqrt_ps(_mm512_mul_ps(logf16(fine_uniform16(a)), _mm512_set1_ps(-2.0)));

        let o = _mm512_srli_epi32::<29>(b);
        let one = _mm512_set1_epi32(1);
        let odd = _mm512_test_epi32_mask(o, one);
        let t = _mm512_and_si512(_mm512_srli_epi32::<6>(b), _mm512_set1_epi32(0x007F_FFFF));
        let t = _mm512_mask_xor_epi32(t, odd, t, _mm512_set1_epi32(0x007F_FFFF));
        let phi = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(t), half), two_m23);
        let alpha = _mm512_mul_ps(phi, _mm512_set1_ps(PI_4_F));

        let x2 = _mm512_mul_ps(alpha, alpha);
        let p = horner(x2, &SIN_S);
        let st = _mm512_mul_ps(_mm512_mul_ps(alpha, x2), p);
        let s = _mm512_add_ps(alpha, st);
        let q = horner(x2, &COS_C);
        let u = _mm512_mul_ps(_mm512_mul_ps(x2, x2), q);
        let v = _mm512_sub_ps(_mm512_set1_ps(1.0), _mm512_mul_ps(half, x2));
        let c = _mm512_add_ps(v, u);

        let swap = _mm512_test_epi32_mask(_mm512_add_epi32(o, one), _mm512_set1_epi32(2));
        let cs = _mm512_mask_blend_ps(swap, c, s);
        let sn = _mm512_mask_blend_ps(swap, s, c);
        let cneg = _mm512_slli_epi32::<31>(_mm512_srli_epi32::<2>(_mm512_add_epi32(o, _mm512_set1_epi32(2))));
        let sneg = _mm512_slli_epi32::<31>(_mm512_srli_epi32::<2>(o));
        let cs = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cs), cneg));
        let sn = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sn), sneg));
        (_mm512_mul_ps(r, cs), _mm512_mul_ps(r, sn))
    }

    // SAFETY: register-only AVX-512F code; callers hold the proof of AVX-512F.
    #[inline(always)]
    unsafe fn counters(id: u64, b: u64) -> [__m512i; 4] {
        let lo = b as u32;
        let hi = (b >> 32) as u32;
        [
            _mm512_add_epi32(
                _mm512_set1_epi32(lo as i32),
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            ),
            _mm512_set1_epi32(hi as i32),
            _mm512_set1_epi32(id as u32 as i32),
            _mm512_set1_epi32((id >> 32) as u32 as i32),
        ]
    }

    /// Box-Muller on the words of sixteen blocks, stored as their 64 normals in stream order.
    // SAFETY: callers hold the proof of AVX-512F and pass a `p` valid for writes of 64 f32
    // (the four unaligned stores cover p[0..64] exactly).
    #[inline(always)]
    unsafe fn transform_store(w: [__m512i; 4], p: *mut f32) {
        let (z0, z1) = box_muller16(w[0], w[1]);
        let (z2, z3) = box_muller16(w[2], w[3]);
        // 4 x 16 transpose: out[4l + m] = z_m[l].
        let t0 = _mm512_unpacklo_ps(z0, z1);
        let t1 = _mm512_unpackhi_ps(z0, z1);
        let t2 = _mm512_unpacklo_ps(z2, z3);
        let t3 = _mm512_unpackhi_ps(z2, z3);
        let u0 = _mm512_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm512_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm512_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm512_shuffle_ps::<0xEE>(t1, t3);
        let v0 = _mm512_shuffle_f32x4::<0x44>(u0, u1);
        let v1 = _mm512_shuffle_f32x4::<0x44>(u2, u3);
        let v2 = _mm512_shuffle_f32x4::<0xEE>(u0, u1);
        let v3 = _mm512_shuffle_f32x4::<0xEE>(u2, u3);
        _mm512_storeu_ps(p, _mm512_shuffle_f32x4::<0x88>(v0, v1));
        _mm512_storeu_ps(p.add(16), _mm512_shuffle_f32x4::<0xDD>(v0, v1));
        _mm512_storeu_ps(p.add(32), _mm512_shuffle_f32x4::<0x88>(v2, v3));
        _mm512_storeu_ps(p.add(48), _mm512_shuffle_f32x4::<0xDD>(v2, v3));
    }

    /// Philox counters (block = pos >> 2, stream id; word i of each in c[i]) of sixteen
    /// (id, position) pairs, and the masks of positions using words 2-3 and the sine.
    // SAFETY: callers hold the proof of AVX-512F; the four loads of eight u64 read ids[0..16]
    // and pos[0..16], which the assert shows exist.
    #[inline(always)]
    unsafe fn counters16(ids: &[u64], pos: &[u64]) -> ([__m512i; 4], u16, u16) {
        assert!(ids.len() >= 16 && pos.len() >= 16);
        // 64-bit halves split into 32-bit words, eight lanes at a time
        let p =
            [_mm512_loadu_si512(pos.as_ptr() as *const _), _mm512_loadu_si512(pos[8..].as_ptr() as *const _)];
        let i =
            [_mm512_loadu_si512(ids.as_ptr() as *const _), _mm512_loadu_si512(ids[8..].as_ptr() as *const _)];
        let b = p.map(|x| _mm512_srli_epi64::<2>(x));
        let join = |lo: __m256i, hi: __m256i| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
        let low = |x: [__m512i; 2]| join(_mm512_cvtepi64_epi32(x[0]), _mm512_cvtepi64_epi32(x[1]));
        let high = |x: [__m512i; 2]| low(x.map(|v| _mm512_srli_epi64::<32>(v)));
        let mask = |bit: i64| {
            let m = _mm512_set1_epi64(bit);
            (_mm512_test_epi64_mask(p[0], m) as u16) | ((_mm512_test_epi64_mask(p[1], m) as u16) << 8)
        };
        ([low(b), high(b), low(i), high(i)], mask(2), mask(1))
    }

    /// The normal each lane asks for, from its Philox block `w`.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    unsafe fn pick16(w: [__m512i; 4], sel: u16, odd: u16) -> __m512 {
        let a = _mm512_mask_blend_epi32(sel, w[0], w[2]);
        let b = _mm512_mask_blend_epi32(sel, w[1], w[3]);
        let (zc, zs) = box_muller16(a, b);
        _mm512_mask_blend_ps(odd, zc, zs)
    }

    /// Normals at sixteen arbitrary (stream id, position) pairs under round keys `rk`.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; `counters16` asserts that `ids` and
    // `pos` hold the sixteen lanes it loads, and the assert here that `out` holds the sixteen
    // stored.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gather16(
        _cpu: Avx512Cpu,
        rk: &[[__m512i; 2]; 10],
        ids: &[u64],
        pos: &[u64],
        out: &mut [f32],
    ) {
        assert!(out.len() >= 16);
        let (c, sel, odd) = counters16(ids, pos);
        let w = super::super::philox::avx512::philox16(c, rk);
        _mm512_storeu_ps(out.as_mut_ptr(), pick16(w, sel, odd));
    }

    /// `gather16` on thirty-two pairs, the two Philox chains interleaved.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; the assert shows all three slices
    // hold the thirty-two lanes read and stored.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gather32(
        _cpu: Avx512Cpu,
        rk: &[[__m512i; 2]; 10],
        ids: &[u64],
        pos: &[u64],
        out: &mut [f32],
    ) {
        assert!(ids.len() >= 32 && pos.len() >= 32 && out.len() >= 32);
        let (c0, sel0, odd0) = counters16(ids, pos);
        let (c1, sel1, odd1) = counters16(&ids[16..], &pos[16..]);
        let [w0, w1] = super::super::philox::avx512::philox16x2(c0, c1, rk);
        _mm512_storeu_ps(out.as_mut_ptr(), pick16(w0, sel0, odd0));
        _mm512_storeu_ps(out[16..].as_mut_ptr(), pick16(w1, sel1, odd1));
    }

    /// The 64 normals of Philox blocks `b .. b+16` of stream `id` under round keys `rk`,
    /// in stream order. `b` must be a multiple of 16.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; `transform_store` writes 64 floats,
    // which the assert shows `out` holds.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn normals64(_cpu: Avx512Cpu, rk: &[[__m512i; 2]; 10], id: u64, b: u64, out: &mut [f32]) {
        assert!(out.len() >= 64);
        debug_assert!(b.is_multiple_of(16));
        let w = super::super::philox::avx512::philox16(counters(id, b), rk);
        transform_store(w, out.as_mut_ptr());
    }

    /// The 128 normals of Philox blocks `b .. b+32`, two independent chains interleaved.
    // SAFETY: `_cpu` proves that this CPU has AVX-512F; the two `transform_store`s write
    // floats 0..64 and 64..128, which the assert shows `out` holds.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn normals128(_cpu: Avx512Cpu, rk: &[[__m512i; 2]; 10], id: u64, b: u64, out: &mut [f32]) {
        assert!(out.len() >= 128);
        debug_assert!(b.is_multiple_of(16));
        let [w0, w1] = super::super::philox::avx512::philox16x2(counters(id, b), counters(id, b + 16), rk);
        transform_store(w0, out.as_mut_ptr());
        transform_store(w1, out.as_mut_ptr().add(64));
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod exhaustive {
    //! Every distinct radius input and every distinct angle input of the transform, through
    //! the scalar path and each SIMD path: the results must be bit-identical.
    use super::box_muller;
    use crate::stream::{Avx2Cpu, Avx512Cpu, Backend, Supported};
    use core::arch::x86_64::*;

    /// Checks 16 (radius word, angle word) pairs on every available SIMD path.
    fn check(a: &[u32; 16], b: &[u32; 16]) {
        let want: Vec<(u32, u32)> =
            (0..16).map(|l| box_muller(a[l], b[l])).map(|(x, y)| (x.to_bits(), y.to_bits())).collect();
        if let Ok(Supported::Avx2(cpu)) = Backend::Avx2.checked() {
            // SAFETY: `cpu` proves that this CPU has AVX2.
            let got = unsafe { run_avx2(cpu, a, b) };
            assert_eq!(got, want, "avx2 at radius word {:#x}, angle word {:#x}", a[0], b[0]);
        }
        if let Ok(Supported::Avx512(cpu)) = Backend::Avx512.checked() {
            // SAFETY: `cpu` proves that this CPU has AVX-512F.
            let got = unsafe { run_avx512(cpu, a, b) };
            assert_eq!(got, want, "avx512 at radius word {:#x}, angle word {:#x}", a[0], b[0]);
        }
    }

    /// Runs `check` over `words(i)` for i in 0..n, sixteen at a time.
    fn sweep(n: u64, words: impl Fn(u64) -> (u32, u32)) {
        let mut a = [0u32; 16];
        let mut b = [0u32; 16];
        for i in 0..n {
            let (x, y) = words(i);
            a[(i % 16) as usize] = x;
            b[(i % 16) as usize] = y;
            if i % 16 == 15 || i + 1 == n {
                check(&a, &b);
            }
        }
    }

    /// Every radius value: 2^23 values of j = a >> 9 and the 2^9 refined tail values.
    fn radius(i: u64) -> (u32, u32) {
        let a = if i < 1 << 23 { (i as u32) << 9 } else { (i - (1 << 23)) as u32 };
        (a, 0x9E37_79B9)
    }

    #[test]
    fn simd_transform_equals_scalar_on_every_radius_and_sampled_angles() {
        sweep((1 << 23) + (1 << 9), radius);
        // every octant, fraction bits sampled with a stride coprime to 2^23
        sweep(1 << 18, |i| {
            (0x8000_0000, (((i * 2_654_435_761) as u32 & 0x7F_FFFF) << 6) | ((i as u32 & 7) << 29))
        });
    }

    /// All 2^26 angle values (a slower sweep: `cargo test --release -- --ignored`).
    #[test]
    #[ignore]
    fn simd_transform_equals_scalar_on_every_angle() {
        sweep(1 << 26, |i| (0x8000_0000, ((i as u32) << 6) | 0x2A));
    }

    // SAFETY: `_cpu` proves AVX2; the loads read halves of 16-element arrays and the stores
    // fill local arrays of eight.
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(_cpu: Avx2Cpu, a: &[u32; 16], b: &[u32; 16]) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(16);
        for h in 0..2 {
            let va = _mm256_loadu_si256(a[8 * h..].as_ptr() as *const __m256i);
            let vb = _mm256_loadu_si256(b[8 * h..].as_ptr() as *const __m256i);
            let (x, y) = super::avx2::box_muller8(va, vb);
            let mut xs = [0f32; 8];
            let mut ys = [0f32; 8];
            _mm256_storeu_ps(xs.as_mut_ptr(), x);
            _mm256_storeu_ps(ys.as_mut_ptr(), y);
            out.extend(xs.iter().zip(&ys).map(|(x, y)| (x.to_bits(), y.to_bits())));
        }
        out
    }

    // SAFETY: `_cpu` proves AVX-512F; the loads read 16-element arrays and the stores fill
    // local arrays of sixteen.
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(_cpu: Avx512Cpu, a: &[u32; 16], b: &[u32; 16]) -> Vec<(u32, u32)> {
        let va = _mm512_loadu_si512(a.as_ptr() as *const _);
        let vb = _mm512_loadu_si512(b.as_ptr() as *const _);
        let (x, y) = super::avx512::box_muller16(va, vb);
        let mut xs = [0f32; 16];
        let mut ys = [0f32; 16];
        _mm512_storeu_ps(xs.as_mut_ptr(), x);
        _mm512_storeu_ps(ys.as_mut_ptr(), y);
        xs.iter().zip(&ys).map(|(x, y)| (x.to_bits(), y.to_bits())).collect()
    }
}

//! AVX2 form of the selection's noise and reduction, the counterpart of `avx512` with eight
//! lanes to a register (two per group of sixteen, four for float64): the same operations as
//! the portable loops, in the same order, so the keys and the selected index are identical.
//!
//! `mrc` and `timed` take the proof `Avx2Cpu` that this CPU has AVX2; the `#[inline(always)]`
//! helpers run inside them only.

use super::{Best, GROUP, MRC_SLACK, SKIP_SLACK, TILE_GROUPS};
use crate::stream::normal::avx2::{fine_uniform8, logf8};
use crate::stream::Avx2Cpu;
use core::arch::x86_64::*;

/// The running best keys (two halves) and their candidate indices (four quarters of u64).
struct Regs {
    val: [__m256; 2],
    idx: [__m256i; 4],
}

impl Regs {
    // SAFETY: callers hold the proof of AVX2; the loads read val[0..16] (two of eight f32)
    // and idx[0..16] (four of four u64) of `b`'s fixed-size arrays.
    #[inline(always)]
    unsafe fn load(b: &Best) -> Regs {
        let v = |h: usize| _mm256_loadu_ps(b.val[8 * h..].as_ptr());
        let i = |q: usize| _mm256_loadu_si256(b.idx[4 * q..].as_ptr() as *const __m256i);
        Regs { val: [v(0), v(1)], idx: [i(0), i(1), i(2), i(3)] }
    }

    // SAFETY: callers hold the proof of AVX2; the stores write exactly the ranges `load` reads.
    #[inline(always)]
    unsafe fn store(&self, b: &mut Best) {
        for h in 0..2 {
            _mm256_storeu_ps(b.val[8 * h..].as_mut_ptr(), self.val[h]);
        }
        for q in 0..4 {
            _mm256_storeu_si256(b.idx[4 * q..].as_mut_ptr() as *mut __m256i, self.idx[q]);
        }
    }

    /// `Best::update`: lanes below `valid` whose key exceeds the best take it.
    // SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
    #[inline(always)]
    unsafe fn update(&mut self, key: [__m256; 2], kbase: u64, n: u64) {
        let valid = _mm256_set1_epi32((n - kbase).min(GROUP as u64) as i32);
        let base = _mm256_set1_epi64x(kbase as i64);
        for h in 0..2 {
            let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let lane = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * h as i32));
            let ok = _mm256_castsi256_ps(_mm256_cmpgt_epi32(valid, lane));
            let better = _mm256_and_ps(ok, _mm256_cmp_ps::<_CMP_GT_OQ>(key[h], self.val[h]));
            self.val[h] = _mm256_blendv_ps(self.val[h], key[h], better);
            let m = _mm256_castps_si256(better);
            for (k, m64) in
                [_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m)].into_iter().enumerate()
            {
                let q = 2 * h + k;
                let at = _mm256_add_epi64(base, _mm256_setr_epi64x(0, 1, 2, 3));
                let at = _mm256_add_epi64(at, _mm256_set1_epi64x(4 * q as i64));
                self.idx[q] = _mm256_blendv_epi8(self.idx[q], at, _mm256_cvtepi32_epi64(m64));
            }
        }
    }
}

/// -x by flipping the sign bit, as the portable negation does.
// SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
#[inline(always)]
unsafe fn neg(x: __m256) -> __m256 {
    _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(x), _mm256_set1_epi32(i32::MIN)))
}

/// `exponentials` on eight noise words.
// SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
#[inline(always)]
unsafe fn exponentials8(words: __m256i) -> __m256 {
    neg(logf8(fine_uniform8(words)))
}

/// Noise words `at .. at + 8` of `w`.
// SAFETY: callers hold the proof of AVX2; the load reads the bounds-checked subslice
// `w[at..at + 8]`.
#[inline(always)]
unsafe fn words8(w: &[u32], at: usize) -> __m256i {
    _mm256_loadu_si256(w[at..at + 8].as_ptr() as *const __m256i)
}

/// Lanes `8h .. 8h + 8` of a group.
// SAFETY: callers hold the proof of AVX2 and pass h < 2, so the load reads v[8h..8h + 8]
// of the sixteen (`v[8 * h..]` is bounds-checked, and at least eight long for h <= 1).
#[inline(always)]
unsafe fn half(v: &[f32; GROUP], h: usize) -> __m256 {
    debug_assert!(h < 2);
    _mm256_loadu_ps(v[8 * h..].as_ptr())
}

/// Whether any of the sixteen lanes of `a` exceeds its lane of `b`.
// SAFETY: register-only AVX2 arithmetic; callers hold the proof of AVX2.
#[inline(always)]
unsafe fn any_above(a: [__m256; 2], b: [__m256; 2]) -> bool {
    let m0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(a[0], b[0]));
    let m1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(a[1], b[1]));
    (m0 | m1) != 0
}

/// MRC as `avx512::mrc` does it: bounds first (into `ex`), logarithms only where a bound wins.
// SAFETY: `_cpu` proves that this CPU has AVX2; the loads and stores go through `words8`,
// `half` and subslices of `ex[g]` (g < sc.len() <= ex.len(), asserted), all bounds-checked.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mrc(
    _cpu: Avx2Cpu,
    sc: &[[f32; GROUP]],
    w: &[u32],
    ex: &mut [[f32; GROUP]],
    best: &mut Best,
    g0: u64,
    n: u64,
) {
    assert!(w.len() >= sc.len() * GROUP && ex.len() >= sc.len());
    let top = _mm256_set1_epi32(1 << 23);
    for (g, s) in sc.iter().enumerate() {
        for h in 0..2 {
            let words = words8(w, g * GROUP + 8 * h);
            // mrc_floor: (e - 24) ln 2 - slack, e the exponent of m = 2^23 - (w >> 9)
            let m = _mm256_cvtepi32_ps(_mm256_sub_epi32(top, _mm256_srli_epi32::<9>(words)));
            let e = _mm256_sub_epi32(
                _mm256_srli_epi32::<23>(_mm256_castps_si256(m)),
                _mm256_set1_epi32(127 + 24),
            );
            let floor = _mm256_mul_ps(_mm256_cvtepi32_ps(e), _mm256_set1_ps(core::f32::consts::LN_2));
            let floor = _mm256_sub_ps(floor, _mm256_set1_ps(MRC_SLACK));
            _mm256_storeu_ps(ex[g][8 * h..].as_mut_ptr(), _mm256_sub_ps(half(s, h), floor));
        }
    }
    let mut r = Regs::load(best);
    for (g, s) in sc.iter().enumerate() {
        if any_above([half(&ex[g], 0), half(&ex[g], 1)], r.val) {
            let key = |h: usize| {
                let e = exponentials8(words8(w, g * GROUP + 8 * h));
                _mm256_sub_ps(half(s, h), logf8(e))
            };
            r.update([key(0), key(1)], (g0 + g as u64) * GROUP as u64, n);
        }
    }
    r.store(best);
}

/// ORC or truncated PFR as `avx512::timed` does it: exponentials, then increments, the
/// Hillis-Steele prefix of `fixed::prefix` (four float64 quarters) and the running time,
/// then the `could_win` test and the keys.
// SAFETY: `_cpu` proves that this CPU has AVX2; the loads and stores go through `words8`,
// `half`, subslices of the groups of `ex` (ng <= ex.len(), asserted) and local arrays of
// eight, all bounds-checked.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn timed(
    _cpu: Avx2Cpu,
    sc: &[[f32; GROUP]],
    w: &[u32],
    ex: &mut [[f32; GROUP]],
    best: &mut Best,
    carry: &mut f64,
    g0: u64,
    n: u64,
    orc: bool,
) {
    let ng = sc.len();
    assert!(w.len() >= ng * GROUP && ex.len() >= ng && ng <= TILE_GROUPS);
    for (g, e) in ex[..ng].iter_mut().enumerate() {
        for h in 0..2 {
            _mm256_storeu_ps(e[8 * h..].as_mut_ptr(), exponentials8(words8(w, g * GROUP + 8 * h)));
        }
    }
    let nf = n as f64;
    let one = _mm256_set1_pd(1.0);
    let mut firsts = [0f32; TILE_GROUPS];
    let mut c = _mm256_set1_pd(*carry);
    for (g, e) in ex[..ng].iter_mut().enumerate() {
        let kbase = (g0 + g as u64) * GROUP as u64;
        let (v0, v1) = (half(e, 0), half(e, 1));
        let mut x = [
            _mm256_cvtps_pd(_mm256_castps256_ps128(v0)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v0)),
            _mm256_cvtps_pd(_mm256_castps256_ps128(v1)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v1)),
        ];
        if orc {
            let left = _mm256_set1_pd(nf - kbase as f64);
            for (q, xq) in x.iter_mut().enumerate() {
                let lanes = _mm256_add_pd(_mm256_setr_pd(0.0, 1.0, 2.0, 3.0), _mm256_set1_pd(4.0 * q as f64));
                *xq = _mm256_div_pd(*xq, _mm256_max_pd(_mm256_sub_pd(left, lanes), one));
            }
        }
        // x[l] += x[l - s] for s = 1, 2, 4, 8, lanes below s unchanged
        let p = x; // s = 1: each quarter rotated up one lane, lane 0 from the previous quarter
        let rot = p.map(|v| _mm256_permute4x64_pd::<0b10_01_00_11>(v));
        x[0] = _mm256_blend_pd::<0b1110>(p[0], _mm256_add_pd(p[0], rot[0]));
        for q in 1..4 {
            x[q] = _mm256_add_pd(p[q], _mm256_blend_pd::<0b0001>(rot[q], rot[q - 1]));
        }
        let p = x; // s = 2: the upper half of the previous quarter, then the lower half of this one
        x[0] =
            _mm256_blend_pd::<0b1100>(p[0], _mm256_add_pd(p[0], _mm256_permute2f128_pd::<0x08>(p[0], p[0])));
        for q in 1..4 {
            x[q] = _mm256_add_pd(p[q], _mm256_permute2f128_pd::<0x21>(p[q - 1], p[q]));
        }
        let p = x; // s = 4: the previous quarter
        for q in 1..4 {
            x[q] = _mm256_add_pd(p[q], p[q - 1]);
        }
        let p = x; // s = 8: two quarters back
        for q in 2..4 {
            x[q] = _mm256_add_pd(p[q], p[q - 2]);
        }
        // times carry + x; the next carry is carry + x[15], the last time
        let t = x.map(|v| _mm256_cvtpd_ps(_mm256_add_pd(c, v)));
        c = _mm256_add_pd(c, _mm256_permute4x64_pd::<0xFF>(x[3]));
        _mm256_storeu_ps(e.as_mut_ptr(), _mm256_set_m128(t[1], t[0]));
        _mm256_storeu_ps(e[8..].as_mut_ptr(), _mm256_set_m128(t[3], t[2]));
        firsts[g] = _mm_cvtss_f32(t[0]);
    }
    *carry = _mm256_cvtsd_f64(c);
    for chunk in firsts[..ng].chunks_mut(8) {
        let mut v = [1f32; 8];
        v[..chunk.len()].copy_from_slice(chunk);
        let l = _mm256_sub_ps(logf8(_mm256_loadu_ps(v.as_ptr())), _mm256_set1_ps(SKIP_SLACK));
        _mm256_storeu_ps(v.as_mut_ptr(), l);
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    // could_win: log T of the first lane bounds every lane's noise term
    let mut r = Regs::load(best);
    for (g, s) in sc.iter().enumerate() {
        let bound = _mm256_set1_ps(firsts[g]);
        let (s0, s1) = (half(s, 0), half(s, 1));
        if any_above([_mm256_sub_ps(s0, bound), _mm256_sub_ps(s1, bound)], r.val) {
            let (t0, t1) = (half(&ex[g], 0), half(&ex[g], 1));
            r.update(
                [_mm256_sub_ps(s0, logf8(t0)), _mm256_sub_ps(s1, logf8(t1))],
                (g0 + g as u64) * GROUP as u64,
                n,
            );
        }
    }
    r.store(best);
}

//! AVX-512 form of the selection's noise and reduction (`fixed::feed` after scoring): the
//! same operations as the portable loops, in the same order, so the keys and the selected
//! index are identical; the running best keys and the arrival-time chain stay in registers.
//!
//! `mrc` and `timed` take the proof `Avx512Cpu` that this CPU has AVX-512F; the
//! `#[inline(always)]` helpers run inside them only.

use super::{Best, GROUP, MRC_SLACK, SKIP_SLACK, TILE_GROUPS};
use crate::stream::normal::avx512::{fine_uniform16, logf16};
use crate::stream::Avx512Cpu;
use core::arch::x86_64::*;

/// The running best keys and their candidate indices (two halves of eight u64).
struct Regs {
    val: __m512,
    lo: __m512i,
    hi: __m512i,
}

impl Regs {
    // SAFETY: callers hold the proof of AVX-512F; the loads read val[0..16] and idx[0..16]
    // (two of eight u64) of `b`'s fixed-size arrays.
    #[inline(always)]
    unsafe fn load(b: &Best) -> Regs {
        Regs {
            val: _mm512_loadu_ps(b.val.as_ptr()),
            lo: _mm512_loadu_si512(b.idx.as_ptr() as *const __m512i),
            hi: _mm512_loadu_si512(b.idx[8..].as_ptr() as *const __m512i),
        }
    }

    // SAFETY: callers hold the proof of AVX-512F; the stores write exactly the ranges `load`
    // reads.
    #[inline(always)]
    unsafe fn store(&self, b: &mut Best) {
        _mm512_storeu_ps(b.val.as_mut_ptr(), self.val);
        _mm512_storeu_si512(b.idx.as_mut_ptr() as *mut __m512i, self.lo);
        _mm512_storeu_si512(b.idx[8..].as_mut_ptr() as *mut __m512i, self.hi);
    }

    /// `Best::update`: lanes below `valid` whose key exceeds the best take it.
    // SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
    #[inline(always)]
    unsafe fn update(&mut self, key: __m512, kbase: u64, n: u64) {
        let valid = (n - kbase).min(GROUP as u64);
        let valid: __mmask16 = if valid >= GROUP as u64 { 0xFFFF } else { (1u16 << valid) - 1 };
        let better = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(valid, key, self.val);
        self.val = _mm512_mask_mov_ps(self.val, better, key);
        let base = _mm512_set1_epi64(kbase as i64);
        let lo = _mm512_add_epi64(base, _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
        let hi = _mm512_add_epi64(base, _mm512_set_epi64(15, 14, 13, 12, 11, 10, 9, 8));
        self.lo = _mm512_mask_mov_epi64(self.lo, better as u8, lo);
        self.hi = _mm512_mask_mov_epi64(self.hi, (better >> 8) as u8, hi);
    }
}

/// -x by flipping the sign bit, as the portable negation does.
// SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
#[inline(always)]
unsafe fn neg(x: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN)))
}

/// `exponentials`: -logf(u) of sixteen noise words.
// SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
#[inline(always)]
unsafe fn exponentials16(words: __m512i) -> __m512 {
    neg(logf16(fine_uniform16(words)))
}

/// MRC over the groups of `sc` (first group g0): `fixed::mrc_floor` bounds each key from
/// above (first pass, into `ex`), and only groups where a bound beats its lane's best get
/// their two logarithms (second pass).
// SAFETY: `_cpu` proves that this CPU has AVX-512F; the loads of sixteen words at
// w + 16 g stay inside `w` because g < sc.len() and w.len() >= 16 sc.len() (asserted), and the
// other loads and stores move the sixteen lanes of one group of `sc` or `ex` (g < ex.len(),
// asserted, and indexing is bounds-checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn mrc(
    _cpu: Avx512Cpu,
    sc: &[[f32; GROUP]],
    w: &[u32],
    ex: &mut [[f32; GROUP]],
    best: &mut Best,
    g0: u64,
    n: u64,
) {
    assert!(w.len() >= sc.len() * GROUP && ex.len() >= sc.len());
    let top = _mm512_set1_epi32(1 << 23);
    for (g, s) in sc.iter().enumerate() {
        let words = _mm512_loadu_si512(w.as_ptr().add(g * GROUP) as *const __m512i);
        // mrc_floor: (e - 24) ln 2 - slack, e the exponent of m = 2^23 - (w >> 9)
        let m = _mm512_cvtepi32_ps(_mm512_sub_epi32(top, _mm512_srli_epi32::<9>(words)));
        let e =
            _mm512_sub_epi32(_mm512_srli_epi32::<23>(_mm512_castps_si512(m)), _mm512_set1_epi32(127 + 24));
        let floor = _mm512_mul_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(core::f32::consts::LN_2));
        let floor = _mm512_sub_ps(floor, _mm512_set1_ps(MRC_SLACK));
        _mm512_storeu_ps(ex[g].as_mut_ptr(), _mm512_sub_ps(_mm512_loadu_ps(s.as_ptr()), floor));
    }
    let mut r = Regs::load(best);
    for (g, s) in sc.iter().enumerate() {
        if _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_loadu_ps(ex[g].as_ptr()), r.val) != 0 {
            let words = _mm512_loadu_si512(w.as_ptr().add(g * GROUP) as *const __m512i);
            let key = _mm512_sub_ps(_mm512_loadu_ps(s.as_ptr()), logf16(exponentials16(words)));
            r.update(key, (g0 + g as u64) * GROUP as u64, n);
        }
    }
    r.store(best);
}

/// `v` shifted up by S lanes within sixteen (lo, hi), zeros entering lane 0.
// SAFETY: register-only AVX-512F arithmetic; callers hold the proof of AVX-512F.
#[inline(always)]
unsafe fn shift<const S: i32, const R: i32>(lo: __m512d, hi: __m512d) -> (__m512d, __m512d) {
    let (l, h) = (_mm512_castpd_si512(lo), _mm512_castpd_si512(hi));
    (
        _mm512_castsi512_pd(_mm512_alignr_epi64::<R>(l, _mm512_setzero_si512())),
        _mm512_castsi512_pd(_mm512_alignr_epi64::<R>(h, l)),
    )
}

/// ORC or truncated PFR over the groups of `sc` (first group g0), with the running arrival
/// time `carry`: increments, the Hillis-Steele prefix of `fixed::prefix`, float32 times,
/// the `could_win` test and the keys, as the portable passes compute them. In passes over
/// the groups, so that only the running time is carried from group to group.
// SAFETY: `_cpu` proves that this CPU has AVX-512F; the loads of sixteen words at w + 16 g
// stay inside `w` because g < ng and w.len() >= 16 ng (asserted), and the other loads and
// stores move the sixteen lanes of one group of `sc` or `ex` (ng <= ex.len(), asserted) or
// of a local array of sixteen.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn timed(
    _cpu: Avx512Cpu,
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
        let words = _mm512_loadu_si512(w.as_ptr().add(g * GROUP) as *const __m512i);
        _mm512_storeu_ps(e.as_mut_ptr(), exponentials16(words));
    }
    let nf = n as f64;
    let lanes_lo = _mm512_set_pd(7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0);
    let lanes_hi = _mm512_set_pd(15.0, 14.0, 13.0, 12.0, 11.0, 10.0, 9.0, 8.0);
    let one = _mm512_set1_pd(1.0);
    let last = _mm512_set1_epi64(7);
    // logf of each group's first time, sixteen groups to a register
    let mut firsts = [0f32; TILE_GROUPS];
    let mut c = _mm512_set1_pd(*carry);
    for (g, e) in ex[..ng].iter_mut().enumerate() {
        let kbase = (g0 + g as u64) * GROUP as u64;
        let v = _mm512_loadu_ps(e.as_ptr());
        let mut lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        let mut hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))));
        if orc {
            let left = _mm512_set1_pd(nf - kbase as f64);
            lo = _mm512_div_pd(lo, _mm512_max_pd(_mm512_sub_pd(left, lanes_lo), one));
            hi = _mm512_div_pd(hi, _mm512_max_pd(_mm512_sub_pd(left, lanes_hi), one));
        }
        // x[l] += x[l - s] for s = 1, 2, 4 (lanes below s unchanged), then 8
        let (a, b) = shift::<1, 7>(lo, hi);
        hi = _mm512_add_pd(hi, b);
        lo = _mm512_mask_add_pd(lo, 0xFE, lo, a);
        let (a, b) = shift::<2, 6>(lo, hi);
        hi = _mm512_add_pd(hi, b);
        lo = _mm512_mask_add_pd(lo, 0xFC, lo, a);
        let (a, b) = shift::<4, 4>(lo, hi);
        hi = _mm512_add_pd(hi, b);
        lo = _mm512_mask_add_pd(lo, 0xF0, lo, a);
        hi = _mm512_add_pd(hi, lo);
        // times carry + x; the next carry is carry + x[15], the last time
        let (tlo, thi) = (_mm512_add_pd(c, lo), _mm512_add_pd(c, hi));
        c = _mm512_add_pd(c, _mm512_permutexvar_pd(last, hi));
        let t = _mm512_castpd_ps(_mm512_insertf64x4::<1>(
            _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(tlo))),
            _mm256_castps_pd(_mm512_cvtpd_ps(thi)),
        ));
        _mm512_storeu_ps(e.as_mut_ptr(), t);
        firsts[g] = _mm512_cvtss_f32(t);
    }
    *carry = _mm_cvtsd_f64(_mm512_castpd512_pd128(c));
    for chunk in firsts[..ng].chunks_mut(GROUP) {
        let mut v = [1f32; GROUP];
        v[..chunk.len()].copy_from_slice(chunk);
        let l = _mm512_sub_ps(logf16(_mm512_loadu_ps(v.as_ptr())), _mm512_set1_ps(SKIP_SLACK));
        _mm512_storeu_ps(v.as_mut_ptr(), l);
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    // could_win: log T of the first lane bounds every lane's noise term
    let mut r = Regs::load(best);
    for (g, s) in sc.iter().enumerate() {
        let s = _mm512_loadu_ps(s.as_ptr());
        if _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_sub_ps(s, _mm512_set1_ps(firsts[g])), r.val) != 0 {
            let t = _mm512_loadu_ps(ex[g].as_ptr());
            r.update(_mm512_sub_ps(s, logf16(t)), (g0 + g as u64) * GROUP as u64, n);
        }
    }
    r.store(best);
}

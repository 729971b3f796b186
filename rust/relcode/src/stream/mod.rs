//! Deterministic random streams (normative: spec/stream.md).
//!
//! A stream is named by a root seed, a purpose tag and a 64-bit stream id. Its words are
//! Philox4x32-10 blocks: block `b` of stream (seed, purpose, id) is
//! `philox4x32_10([lo(b), hi(b), lo(id), hi(id)], derive_key(seed, purpose))`.
//! The id lives in the counter, not in a hashed key, so two ids of one (seed, purpose)
//! can never share a block: streams are disjoint by construction, not with high
//! probability. Every value at position `p` depends on `(seed, purpose, id, p)` alone,
//! so chunking, batching, thread count and SIMD width cannot change any bit.
//!
//! The conversions from words to numbers (`uniform_f64_from_words`, `box_muller`, `ndtri`)
//! use this crate's own elementary functions (`math`), a fixed sequence of IEEE-754 basic
//! operations with no fused multiply-add, so every machine and every [`Backend`] produces
//! the same bits.
//!
//! # Examples
//!
//! ```
//! use relcode::stream::{purpose, Backend, Stream};
//!
//! // Stream 7 of the candidate purpose under root seed 42.
//! let s = Stream::new(42, purpose::CANDIDATES, 7);
//! let mut z = vec![0f32; 1000];
//! s.fill_normals(0, &mut z, Backend::Auto)?;
//! // Bulk filling and random access agree bit for bit.
//! assert_eq!(z[123].to_bits(), s.normal(123).to_bits());
//! // Normals never exceed sqrt(66 ln 2) = 6.764 in magnitude.
//! assert!(z.iter().all(|x| x.abs() <= 6.765));
//! # Ok::<(), relcode::stream::BackendError>(())
//! ```

pub mod consts;
pub mod dispatch;
pub mod math;
pub mod ndtri;
pub mod normal;
pub mod philox;

pub use dispatch::{Avx2Cpu, Avx512Cpu, Backend, BackendError, CpuFeatures, Feature, Supported};
pub use ndtri::ndtri;
pub use normal::{box_muller, fine_uniform};
pub use philox::philox4x32_10;

use rayon::prelude::*;

/// Version of this stream definition, recorded in every file.
pub const STREAM_VERSION: u32 = 1;

/// Purpose tags: the first counter word of the key derivation, ASCII little-endian.
pub mod purpose {
    /// Candidate normals of the fixed-budget and global samplers; `relcode.stream.normals`.
    pub const CANDIDATES: u32 = u32::from_le_bytes(*b"CAND");
    /// Uniforms of the nodes of 1D tree samplers (AS*, AD*, DAD*, GPRS branch and bound, AGRS).
    pub const NODES: u32 = u32::from_le_bytes(*b"NODE");
    /// Encoder-only noise (Gumbel, exponential and acceptance draws); decoders never read it.
    pub const NOISE: u32 = u32::from_le_bytes(*b"NOIS");
    /// Shared candidate pools of the pool mode.
    pub const POOL: u32 = u32::from_le_bytes(*b"POOL");
    /// Block-keyed transforms of the pool mode.
    pub const TRANSFORM: u32 = u32::from_le_bytes(*b"XFRM");
    /// Seeded permutations of block layouts.
    pub const PERMUTATION: u32 = u32::from_le_bytes(*b"PERM");
    /// Signs of shared weight groups (the hashing trick of the torch layer).
    pub const SIGN: u32 = u32::from_le_bytes(*b"SIGN");
}

/// The Philox key of (seed, purpose): the first two words of
/// `philox4x32_10([purpose, KDF_TAG, 0, 0], [lo(seed), hi(seed)])`.
#[inline]
pub fn derive_key(seed: u64, purpose: u32) -> [u32; 2] {
    let o = philox4x32_10([purpose, consts::KDF_TAG, 0, 0], [seed as u32, (seed >> 32) as u32]);
    [o[0], o[1]]
}

/// One stream: (key, id). Cheap to copy; every accessor is a pure function of position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// The Philox key of (seed, purpose), as [`derive_key`] returns it.
    pub key: [u32; 2],
    /// The stream id: counter words 2 (low half) and 3 (high half) of every block.
    pub id: u64,
}

impl Stream {
    /// Stream `id` of root seed `seed` and purpose tag `purpose` (one of [`purpose`]'s
    /// constants), with its key derived now (one Philox call).
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::stream::{derive_key, purpose, Stream};
    ///
    /// let s = Stream::new(42, purpose::NODES, 3);
    /// assert_eq!(s, Stream::with_key(derive_key(42, purpose::NODES), 3));
    /// // Random access: every value depends on its position alone.
    /// let u = s.uniform_f64(10);
    /// assert!(u > 0.0 && u < 1.0);
    /// assert_eq!(s.word(9), s.block(2)[1]);
    /// ```
    pub fn new(seed: u64, purpose: u32, id: u64) -> Stream {
        Stream { key: derive_key(seed, purpose), id }
    }

    /// Stream `id` of a key that was already derived (saves the derivation in hot loops).
    #[inline(always)]
    pub fn with_key(key: [u32; 2], id: u64) -> Stream {
        Stream { key, id }
    }

    /// Philox block `b`: words 4b .. 4b+3.
    #[inline(always)]
    pub fn block(&self, b: u64) -> [u32; 4] {
        philox4x32_10([b as u32, (b >> 32) as u32, self.id as u32, (self.id >> 32) as u32], self.key)
    }

    /// Word `p` of the stream.
    #[inline]
    pub fn word(&self, p: u64) -> u32 {
        self.block(p >> 2)[(p & 3) as usize]
    }

    /// Uniform number `p`: words 2p (high) and 2p+1 (low) give 52 bits k, and the
    /// uniform is (k + 1/2) 2^-52, exactly, in [2^-53, 1 - 2^-53].
    #[inline]
    pub fn uniform_f64(&self, p: u64) -> f64 {
        let w = self.block(p >> 1);
        let (hi, lo) = if p & 1 == 0 { (w[0], w[1]) } else { (w[2], w[3]) };
        uniform_f64_from_words(hi, lo)
    }

    /// Standard normal number `p` of the stream.
    #[inline]
    pub fn normal(&self, p: u64) -> f32 {
        let w = self.block(p >> 2);
        let (c, s) = if p & 2 == 0 { box_muller(w[0], w[1]) } else { box_muller(w[2], w[3]) };
        if p & 1 == 0 {
            c
        } else {
            s
        }
    }

    /// Normals `start .. start + out.len()` into `out`, on this thread, computed by `backend`
    /// once it is checked against the CPU (`Backend::checked`; nothing runs if it fails).
    /// Positions must not pass 2^64 (callers check `start + len` does not overflow).
    /// `out[i]` is bit for bit `self.normal(start + i)` on every backend.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when `backend` is a SIMD backend this CPU cannot run (`Auto` and
    /// `Scalar` never fail); `out` is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::stream::{purpose, Backend, Stream};
    ///
    /// let s = Stream::new(1, purpose::POOL, 16);
    /// let mut bulk = vec![0f32; 300];
    /// s.fill_normals(5, &mut bulk, Backend::Auto)?;
    /// let mut portable = vec![0f32; 300];
    /// s.fill_normals(5, &mut portable, Backend::Scalar)?;
    /// for (i, (a, b)) in bulk.iter().zip(&portable).enumerate() {
    ///     assert_eq!(a.to_bits(), b.to_bits());
    ///     assert_eq!(a.to_bits(), s.normal(5 + i as u64).to_bits());
    /// }
    /// # Ok::<(), relcode::stream::BackendError>(())
    /// ```
    pub fn fill_normals(&self, start: u64, out: &mut [f32], backend: Backend) -> Result<(), BackendError> {
        self.fill_normals_with(start, out, backend.checked()?);
        Ok(())
    }

    /// `fill_normals` on a backend already checked.
    pub fn fill_normals_with(&self, start: u64, out: &mut [f32], simd: Supported) {
        match simd {
            // SAFETY: `cpu` proves that this CPU has AVX2; the function bounds its own writes.
            #[cfg(target_arch = "x86_64")]
            Supported::Avx2(cpu) => unsafe { self.fill_normals_avx2(cpu, start, out) },
            // SAFETY: `cpu` proves that this CPU has AVX-512F; the function bounds its own writes.
            #[cfg(target_arch = "x86_64")]
            Supported::Avx512(cpu) => unsafe { self.fill_normals_avx512(cpu, start, out) },
            _ => self.fill_normals_scalar(start, out),
        }
    }

    fn fill_normals_scalar(&self, start: u64, out: &mut [f32]) {
        let mut i = 0usize;
        let n = out.len();
        let mut p = start;
        while i < n {
            let z = normal::block_normals(self.block(p >> 2));
            let first = (p & 3) as usize;
            let take = (4 - first).min(n - i);
            out[i..i + take].copy_from_slice(&z[first..first + take]);
            i += take;
            p = p.wrapping_add(take as u64);
        }
    }

    // SAFETY: callers hold `cpu`, the proof that this CPU has the AVX2 this body is compiled
    // for; every SIMD store goes to a 32-element subslice `out[i..i + 32]` (bounds-checked).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_normals_avx2(&self, cpu: Avx2Cpu, start: u64, out: &mut [f32]) {
        let n = out.len();
        // Scalar head up to the next multiple of 32 positions (8 Philox blocks).
        let head = (((32 - (start % 32)) % 32) as usize).min(n);
        self.fill_normals_scalar(start, &mut out[..head]);
        let mut i = head;
        let mut p = start.wrapping_add(head as u64);
        let rk = philox::avx2::round_keys(cpu, self.key);
        while n - i >= 32 {
            normal::avx2::normals32(cpu, &rk, self.id, p >> 2, &mut out[i..i + 32]);
            i += 32;
            p = p.wrapping_add(32);
        }
        self.fill_normals_scalar(p, &mut out[i..]);
    }

    // SAFETY: callers hold `cpu`, the proof that this CPU has the AVX-512F this body is
    // compiled for; every SIMD store goes to a 128- or 64-element subslice of `out`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fill_normals_avx512(&self, cpu: Avx512Cpu, start: u64, out: &mut [f32]) {
        let n = out.len();
        let head = (((64 - (start % 64)) % 64) as usize).min(n);
        self.fill_normals_scalar(start, &mut out[..head]);
        let mut i = head;
        let mut p = start.wrapping_add(head as u64);
        let rk = philox::avx512::round_keys(cpu, self.key);
        while n - i >= 128 {
            normal::avx512::normals128(cpu, &rk, self.id, p >> 2, &mut out[i..i + 128]);
            i += 128;
            p = p.wrapping_add(128);
        }
        while n - i >= 64 {
            normal::avx512::normals64(cpu, &rk, self.id, p >> 2, &mut out[i..i + 64]);
            i += 64;
            p = p.wrapping_add(64);
        }
        self.fill_normals_scalar(p, &mut out[i..]);
    }

    /// Words `start .. start + out.len()` into `out`, on this thread, computed by `backend`
    /// once it is checked against the CPU. `out[i]` is `self.word(start + i)` on every
    /// backend.
    /// Positions must not pass 2^64, as for `fill_normals`.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when `backend` is a SIMD backend this CPU cannot run; `out` is then
    /// left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::stream::{purpose, Backend, Stream};
    ///
    /// let s = Stream::new(9, purpose::NOISE, 1 << 40);
    /// let mut w = [0u32; 70];
    /// s.fill_words(3, &mut w, Backend::Auto)?;
    /// assert!(w.iter().enumerate().all(|(i, &x)| x == s.word(3 + i as u64)));
    /// # Ok::<(), relcode::stream::BackendError>(())
    /// ```
    pub fn fill_words(&self, start: u64, out: &mut [u32], backend: Backend) -> Result<(), BackendError> {
        self.fill_words_with(start, out, backend.checked()?);
        Ok(())
    }

    /// `fill_words` on a backend already checked.
    pub fn fill_words_with(&self, start: u64, out: &mut [u32], simd: Supported) {
        match simd {
            #[cfg(target_arch = "x86_64")]
            Supported::Avx512(cpu) => self.fill_words_avx512(cpu, start, out),
            #[cfg(target_arch = "x86_64")]
            Supported::Avx2(cpu) => self.fill_words_avx2(cpu, start, out),
            _ => self.fill_words_scalar(start, out),
        }
    }

    fn fill_words_scalar(&self, start: u64, out: &mut [u32]) {
        let mut i = 0usize;
        let n = out.len();
        let mut p = start;
        while i < n {
            let w = self.block(p >> 2);
            let first = (p & 3) as usize;
            let take = (4 - first).min(n - i);
            out[i..i + take].copy_from_slice(&w[first..first + take]);
            i += take;
            p = p.wrapping_add(take as u64);
        }
    }

    /// AVX-512 words: sixteen Philox blocks (64 words) per batch, two batches interleaved.
    #[cfg(target_arch = "x86_64")]
    fn fill_words_avx512(&self, cpu: Avx512Cpu, start: u64, out: &mut [u32]) {
        const STEP: usize = 64;
        let n = out.len();
        let head = (((STEP as u64 - (start % STEP as u64)) % STEP as u64) as usize).min(n);
        self.fill_words_scalar(start, &mut out[..head]);
        let mut i = head;
        let mut p = start.wrapping_add(head as u64);
        // SAFETY: `cpu` proves that this CPU has AVX-512F; each call writes through the
        // pointer of a subslice of exactly the words it stores (128, then 64).
        unsafe {
            let rk = philox::avx512::round_keys(cpu, self.key);
            while n - i >= 2 * STEP {
                philox::avx512::words128(cpu, &rk, self.id, p >> 2, out[i..i + 2 * STEP].as_mut_ptr());
                i += 2 * STEP;
                p = p.wrapping_add(2 * STEP as u64);
            }
            while n - i >= STEP {
                philox::avx512::words64(cpu, &rk, self.id, p >> 2, out[i..i + STEP].as_mut_ptr());
                i += STEP;
                p = p.wrapping_add(STEP as u64);
            }
        }
        self.fill_words_scalar(p, &mut out[i..]);
    }

    /// AVX2 words: eight Philox blocks (32 words) per batch.
    #[cfg(target_arch = "x86_64")]
    fn fill_words_avx2(&self, cpu: Avx2Cpu, start: u64, out: &mut [u32]) {
        const STEP: usize = 32;
        let n = out.len();
        let head = (((STEP as u64 - (start % STEP as u64)) % STEP as u64) as usize).min(n);
        self.fill_words_scalar(start, &mut out[..head]);
        let mut i = head;
        let mut p = start.wrapping_add(head as u64);
        // SAFETY: `cpu` proves that this CPU has AVX2; each call writes through the pointer
        // of a subslice of exactly the 32 words it stores.
        unsafe {
            let rk = philox::avx2::round_keys(cpu, self.key);
            while n - i >= STEP {
                philox::avx2::words32(cpu, &rk, self.id, p >> 2, out[i..i + STEP].as_mut_ptr());
                i += STEP;
                p = p.wrapping_add(STEP as u64);
            }
        }
        self.fill_words_scalar(p, &mut out[i..]);
    }

    /// Like `fill_normals`, split over the current rayon pool in fixed chunks of 2^16
    /// normals: the result is the same bits as `fill_normals` for any thread count.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when `backend` is a SIMD backend this CPU cannot run (checked once,
    /// before any thread starts); `out` is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::stream::{purpose, Backend, Stream};
    ///
    /// let s = Stream::new(3, purpose::CANDIDATES, 0);
    /// let mut par = vec![0f32; 200_000];
    /// s.fill_normals_par(0, &mut par, Backend::Auto)?;
    /// let mut one = vec![0f32; 200_000];
    /// s.fill_normals(0, &mut one, Backend::Auto)?;
    /// assert!(par.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()));
    /// # Ok::<(), relcode::stream::BackendError>(())
    /// ```
    pub fn fill_normals_par(
        &self,
        start: u64,
        out: &mut [f32],
        backend: Backend,
    ) -> Result<(), BackendError> {
        self.fill_normals_par_with(start, out, backend.checked()?);
        Ok(())
    }

    /// `fill_normals_par` on a backend already checked.
    pub fn fill_normals_par_with(&self, start: u64, out: &mut [f32], simd: Supported) {
        const CHUNK: usize = 1 << 16;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            self.fill_normals_with(start.wrapping_add((c * CHUNK) as u64), chunk, simd)
        });
    }
}

/// Normals of one key at arbitrary (stream id, position) pairs: `out[i]` is normal
/// `pos[i]` of stream `ids[i]`. A decoder that regenerates many candidates of many blocks
/// evaluates them sixteen (AVX-512) or eight (AVX2) at a time, whatever their streams.
/// `backend` is checked against the CPU first (nothing runs if it fails).
///
/// # Errors
///
/// [`BackendError`] when `backend` is a SIMD backend this CPU cannot run.
///
/// # Panics
///
/// If `ids`, `pos` and `out` do not all have the same length.
///
/// # Examples
///
/// ```
/// use relcode::stream::{derive_key, normals_at, purpose, Backend, Stream};
///
/// let key = derive_key(77, purpose::CANDIDATES);
/// let ids = [5u64, 5, 900, 1 << 63];
/// let pos = [0u64, 17, 3, u64::MAX];
/// let mut out = [0f32; 4];
/// normals_at(key, &ids, &pos, &mut out, Backend::Auto)?;
/// for i in 0..4 {
///     assert_eq!(out[i].to_bits(), Stream::with_key(key, ids[i]).normal(pos[i]).to_bits());
/// }
/// # Ok::<(), relcode::stream::BackendError>(())
/// ```
pub fn normals_at(
    key: [u32; 2],
    ids: &[u64],
    pos: &[u64],
    out: &mut [f32],
    backend: Backend,
) -> Result<(), BackendError> {
    normals_at_with(key, ids, pos, out, backend.checked()?);
    Ok(())
}

/// `normals_at` on a backend already checked.
///
/// # Panics
///
/// If `ids`, `pos` and `out` do not all have the same length.
pub fn normals_at_with(key: [u32; 2], ids: &[u64], pos: &[u64], out: &mut [f32], simd: Supported) {
    assert!(ids.len() == pos.len() && pos.len() == out.len());
    let n = out.len();
    let mut i = 0usize;
    match simd {
        // SAFETY: `cpu` proves that this CPU has AVX-512F; each call gets subslices of
        // exactly the 32 or 16 lanes it reads and writes.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx512(cpu) => unsafe {
            let rk = philox::avx512::round_keys(cpu, key);
            while n - i >= 32 {
                normal::avx512::gather32(cpu, &rk, &ids[i..i + 32], &pos[i..i + 32], &mut out[i..i + 32]);
                i += 32;
            }
            while n - i >= 16 {
                normal::avx512::gather16(cpu, &rk, &ids[i..i + 16], &pos[i..i + 16], &mut out[i..i + 16]);
                i += 16;
            }
        },
        // SAFETY: `cpu` proves that this CPU has AVX2; each call gets subslices of exactly
        // the 8 lanes it reads and writes.
        #[cfg(target_arch = "x86_64")]
        Supported::Avx2(cpu) => unsafe {
            let rk = philox::avx2::round_keys(cpu, key);
            while n - i >= 8 {
                normal::avx2::gather8(cpu, &rk, &ids[i..i + 8], &pos[i..i + 8], &mut out[i..i + 8]);
                i += 8;
            }
        },
        _ => {}
    }
    for j in i..n {
        out[j] = Stream::with_key(key, ids[j]).normal(pos[j]);
    }
}

/// Uniform in (0, 1) from one word: (w + 1/2) 2^-32, exact in float64.
#[inline(always)]
pub fn uniform_f64_from_word(w: u32) -> f64 {
    (w as f64 + 0.5) * (1.0 / 4_294_967_296.0)
}

/// Uniform in (0, 1) from two words: k = (hi << 20) | (lo >> 12) (52 bits), (k + 1/2) 2^-52.
#[inline(always)]
pub fn uniform_f64_from_words(hi: u32, lo: u32) -> f64 {
    let k = ((hi as u64) << 20) | ((lo as u64) >> 12);
    (k as f64 + 0.5) * (1.0 / 4_503_599_627_370_496.0)
}

/// Uniform in (0, 1) from one word in float32: ((w >> 9) + 1/2) 2^-23, exact.
#[inline(always)]
pub fn uniform_f32_from_word(w: u32) -> f32 {
    ((w >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// Candidate weight: `prior_mean + prior_std * z` in float32, multiply then add.
#[inline(always)]
pub fn candidate_weight(prior_mean: f32, prior_std: f32, z: f32) -> f32 {
    prior_std * z + prior_mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_random_access_for_all_backends_and_offsets() {
        let s = Stream::new(42, purpose::CANDIDATES, 7);
        for &start in &[0u64, 1, 3, 31, 32, 33, 1000, u64::MAX - 200] {
            let n = 150;
            let want: Vec<f32> = (0..n as u64).map(|i| s.normal(start + i)).collect();
            for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512, Backend::Auto] {
                let Ok(simd) = b.checked() else { continue };
                let mut got = vec![0f32; n];
                s.fill_normals_with(start, &mut got, simd);
                assert_eq!(
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "start {start} backend {b:?}"
                );
            }
        }
    }

    #[test]
    fn fill_words_matches_random_access() {
        let s = Stream::new(9, purpose::NOISE, 1 << 40);
        for &start in &[0u64, 3, 64, 65, 1001, u64::MAX - 300] {
            let want: Vec<u32> = (0..250u64).map(|i| s.word(start.wrapping_add(i))).collect();
            for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512] {
                let Ok(simd) = b.checked() else { continue };
                let mut got = vec![0u32; 250];
                s.fill_words_with(start, &mut got, simd);
                assert_eq!(got, want, "{b:?} at {start}");
            }
        }
    }

    #[test]
    fn normals_at_matches_random_access_for_all_backends() {
        let key = derive_key(77, purpose::CANDIDATES);
        // lengths that leave every SIMD step and the scalar tail something to do
        for n in [203u64, 240, 7] {
            let ids: Vec<u64> = (0..n).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            let pos: Vec<u64> = (0..n).map(|i| i.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (i << 60)).collect();
            let want: Vec<u32> =
                ids.iter().zip(&pos).map(|(&s, &p)| Stream::with_key(key, s).normal(p).to_bits()).collect();
            for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512, Backend::Auto] {
                let Ok(simd) = b.checked() else { continue };
                let mut out = vec![0f32; ids.len()];
                normals_at_with(key, &ids, &pos, &mut out, simd);
                assert_eq!(out.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want, "{b:?} n {n}");
            }
        }
    }

    #[test]
    fn uniforms_strictly_inside() {
        assert!(uniform_f64_from_word(0) > 0.0 && uniform_f64_from_word(u32::MAX) < 1.0);
        assert!(uniform_f64_from_words(0, 0) > 0.0 && uniform_f64_from_words(u32::MAX, u32::MAX) < 1.0);
        assert!(uniform_f32_from_word(0) > 0.0 && uniform_f32_from_word(u32::MAX) < 1.0);
    }

    #[test]
    fn extreme_words_give_finite_normals() {
        for &a in &[0u32, 1, 511, 512, u32::MAX] {
            for &b in &[0u32, u32::MAX, 1 << 29, (1 << 29) - 1] {
                let (x, y) = box_muller(a, b);
                assert!(x.is_finite() && y.is_finite());
                assert!(x.abs() <= 6.765 && y.abs() <= 6.765);
            }
        }
    }
}

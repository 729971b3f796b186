//! Which SIMD code may run here: the one place that checks a requested backend against the
//! running CPU.
//!
//! Code compiled with `#[target_feature(enable = ...)]` is undefined behaviour on a CPU that
//! lacks those features, so no safe call may reach it unchecked. `Backend::checked` is the
//! only check: it compares the request with the features detected once per process and
//! returns either a `BackendError` or a `Supported` backend. The SIMD variants of `Supported`
//! carry zero-sized proofs, `Avx2Cpu` and `Avx512Cpu`, whose fields are private to this
//! module: nothing else, in this crate or outside it, can make one. Every `#[target_feature]`
//! function of the crate takes the proof of its features as an argument, so reaching SIMD
//! code needs a value that only the check hands out.
//!
//! `Backend::resolve_for` is the same rule on a given feature set (pure, for tests and for
//! reporting); it returns a plain `Backend`, never a proof.

use std::fmt;
use std::sync::OnceLock;

/// Which implementation computes bulk normals and words. All give identical bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Best available on this CPU.
    Auto,
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2, eight Philox blocks per step.
    Avx2,
    /// x86-64 AVX-512F, sixteen Philox blocks per step.
    Avx512,
}

/// A CPU feature that a SIMD backend's code may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// AVX: 256-bit floating-point vectors (implied by every other feature here).
    Avx,
    /// AVX2: 256-bit integer vectors; with AVX, what [`Backend::Avx2`] needs.
    Avx2,
    /// FMA3: fused multiply-add instructions. Implied by AVX-512F and so required by
    /// [`Backend::Avx512`]; the stream itself never fuses a multiplication and an addition.
    Fma,
    /// F16C: half-precision conversions (implied by AVX-512F).
    F16c,
    /// AVX-512 Foundation: 512-bit vectors, what [`Backend::Avx512`] adds to the others.
    Avx512f,
}

impl Feature {
    /// Every feature, in the order messages list them.
    pub const ALL: [Feature; 5] =
        [Feature::Avx, Feature::Avx2, Feature::Fma, Feature::F16c, Feature::Avx512f];

    /// The name `is_x86_feature_detected!` and `#[target_feature]` use.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Avx => "avx",
            Feature::Avx2 => "avx2",
            Feature::Fma => "fma",
            Feature::F16c => "f16c",
            Feature::Avx512f => "avx512f",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of CPU features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuFeatures(u8);

impl CpuFeatures {
    /// No feature: what a CPU without any SIMD extension the backends use reports.
    pub const NONE: CpuFeatures = CpuFeatures(0);
    /// Every feature of `Feature::ALL`.
    pub const ALL: CpuFeatures = CpuFeatures::of(&Feature::ALL);

    /// The set of `features`.
    pub const fn of(features: &[Feature]) -> CpuFeatures {
        let mut bits = 0u8;
        let mut i = 0;
        while i < features.len() {
            bits |= features[i].bit();
            i += 1;
        }
        CpuFeatures(bits)
    }

    /// Whether `f` is in this set.
    pub fn contains(self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// Whether every feature of `other` is in this set.
    pub fn contains_all(self, other: CpuFeatures) -> bool {
        self.0 & other.0 == other.0
    }

    /// The features of both sets.
    pub fn intersect(self, other: CpuFeatures) -> CpuFeatures {
        CpuFeatures(self.0 & other.0)
    }

    /// The features of the running CPU, detected on the first call and cached.
    pub fn detect() -> CpuFeatures {
        static DETECTED: OnceLock<CpuFeatures> = OnceLock::new();
        *DETECTED.get_or_init(detect_now)
    }
}

fn detect_now() -> CpuFeatures {
    #[cfg(target_arch = "x86_64")]
    {
        let on = [
            (Feature::Avx, std::is_x86_feature_detected!("avx")),
            (Feature::Avx2, std::is_x86_feature_detected!("avx2")),
            (Feature::Fma, std::is_x86_feature_detected!("fma")),
            (Feature::F16c, std::is_x86_feature_detected!("f16c")),
            (Feature::Avx512f, std::is_x86_feature_detected!("avx512f")),
        ];
        CpuFeatures(on.iter().filter(|(_, yes)| *yes).fold(0, |bits, (f, _)| bits | f.bit()))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        CpuFeatures::NONE
    }
}

/// The features the checks compare against: the detected ones, narrowed in unit tests by
/// `tests::masked` (a mask only ever removes features, so it cannot make a check unsound).
fn running() -> CpuFeatures {
    let f = CpuFeatures::detect();
    #[cfg(test)]
    let f = f.intersect(tests::mask());
    f
}

/// Proof that the running CPU has what AVX2 code of this crate may use (`Backend::Avx2`'s
/// features). Only `Backend::checked` makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx2Cpu(());

/// Proof that the running CPU has what AVX-512F code of this crate may use
/// (`Backend::Avx512`'s features, a superset of AVX2's). Only `Backend::checked` makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512Cpu(());

/// A concrete backend that runs on this CPU; the SIMD ones carry the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supported {
    /// Portable Rust code (runs everywhere).
    Scalar,
    /// AVX2 code, with the proof that this CPU runs it.
    Avx2(Avx2Cpu),
    /// AVX-512F code, with the proof that this CPU runs it.
    Avx512(Avx512Cpu),
}

impl Supported {
    /// The widest backend this CPU runs (what `Backend::Auto` stands for).
    pub fn best() -> Supported {
        Backend::Auto.checked().unwrap_or(Supported::Scalar)
    }

    /// The concrete backend.
    pub fn backend(self) -> Backend {
        match self {
            Supported::Scalar => Backend::Scalar,
            Supported::Avx2(_) => Backend::Avx2,
            Supported::Avx512(_) => Backend::Avx512,
        }
    }
}

/// A backend that the running CPU cannot execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// The backend asked for.
    pub backend: Backend,
    /// Its CPU features that the CPU lacks (never empty).
    pub missing: Vec<Feature>,
    /// The concrete backends the CPU does run.
    pub available: Vec<Backend>,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: Vec<&str>| v.join(", ");
        write!(
            f,
            "backend {:?} needs the CPU features {}, which this CPU lacks; use \"auto\" or one of the \
             backends it runs: {}",
            self.backend.name(),
            names(self.missing.iter().map(|m| m.name()).collect()),
            names(self.available.iter().map(|b| b.name()).collect()),
        )
    }
}

impl std::error::Error for BackendError {}

impl Backend {
    /// The concrete backends, narrowest first.
    pub const CONCRETE: [Backend; 3] = [Backend::Scalar, Backend::Avx2, Backend::Avx512];

    /// The CPU features the backend's code is compiled for: those its `#[target_feature]`
    /// attributes name and the wider ones they imply (AVX-512F implies AVX2, FMA and F16C;
    /// each of those implies AVX). Empty for the portable backends.
    pub const fn features(self) -> &'static [Feature] {
        match self {
            Backend::Auto | Backend::Scalar => &[],
            Backend::Avx2 => &[Feature::Avx, Feature::Avx2],
            Backend::Avx512 => &[Feature::Avx, Feature::Avx2, Feature::Fma, Feature::F16c, Feature::Avx512f],
        }
    }

    /// The rule of `checked` on a given feature set: the concrete backend `self` stands for
    /// on a CPU with `cpu`, or why it cannot run there. `Auto` takes the widest backend
    /// whose features are all present; an explicit backend must have all of its own.
    pub fn resolve_for(self, cpu: CpuFeatures) -> Result<Backend, BackendError> {
        let runs = |b: Backend| cpu.contains_all(b.feature_set());
        match self {
            Backend::Auto if runs(Backend::Avx512) => Ok(Backend::Avx512),
            Backend::Auto if runs(Backend::Avx2) => Ok(Backend::Avx2),
            Backend::Auto => Ok(Backend::Scalar),
            b if runs(b) => Ok(b),
            b => Err(b.refusal(cpu)),
        }
    }

    /// `features` as a set (one mask test per check).
    fn feature_set(self) -> CpuFeatures {
        const AVX2: CpuFeatures = CpuFeatures::of(Backend::Avx2.features());
        const AVX512: CpuFeatures = CpuFeatures::of(Backend::Avx512.features());
        match self {
            Backend::Auto | Backend::Scalar => CpuFeatures::NONE,
            Backend::Avx2 => AVX2,
            Backend::Avx512 => AVX512,
        }
    }

    /// Why `self` cannot run on a CPU with `cpu`.
    #[cold]
    fn refusal(self, cpu: CpuFeatures) -> BackendError {
        BackendError {
            backend: self,
            missing: self.features().iter().copied().filter(|&f| !cpu.contains(f)).collect(),
            available: Backend::CONCRETE.into_iter().filter(|c| cpu.contains_all(c.feature_set())).collect(),
        }
    }

    /// The backend checked against the running CPU: the concrete backend, with the proof of
    /// its features, or an error naming the missing ones. The only way to a proof.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when `self` is `Avx2` or `Avx512` and the running CPU lacks one of
    /// its [`features`](Backend::features); `Auto` and `Scalar` always succeed.
    ///
    /// # Examples
    ///
    /// ```
    /// use relcode::stream::{Backend, CpuFeatures};
    ///
    /// let best = Backend::Auto.checked().unwrap(); // never fails
    /// assert!(Backend::CONCRETE.contains(&best.backend()));
    /// match Backend::Avx512.checked() {
    ///     Ok(s) => assert_eq!(s.backend(), Backend::Avx512),
    ///     Err(e) => assert!(!e.missing.is_empty() && e.available.contains(&Backend::Scalar)),
    /// }
    /// // The same rule on a given feature set, without a proof:
    /// assert_eq!(Backend::Auto.resolve_for(CpuFeatures::NONE), Ok(Backend::Scalar));
    /// ```
    pub fn checked(self) -> Result<Supported, BackendError> {
        Ok(match self.resolve_for(running())? {
            Backend::Avx512 => Supported::Avx512(Avx512Cpu(())),
            Backend::Avx2 => Supported::Avx2(Avx2Cpu(())),
            _ => Supported::Scalar,
        })
    }

    /// Whether this backend can run on this CPU.
    pub fn available(self) -> bool {
        self.checked().is_ok()
    }

    /// Parses "auto", "scalar", "avx2" or "avx512".
    pub fn parse(name: &str) -> Option<Backend> {
        match name {
            "auto" => Some(Backend::Auto),
            "scalar" => Some(Backend::Scalar),
            "avx2" => Some(Backend::Avx2),
            "avx512" => Some(Backend::Avx512),
            _ => None,
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static MASK: Cell<CpuFeatures> = const { Cell::new(CpuFeatures::ALL) };
    }

    /// The features this thread's checks may see (all, unless inside `masked`).
    pub(super) fn mask() -> CpuFeatures {
        MASK.with(Cell::get)
    }

    /// Runs `f` with this thread's checks seeing at most `allowed`: the CPU as if it lacked
    /// every other feature. Checks run on the calling thread before any parallel work.
    pub(crate) fn masked<R>(allowed: CpuFeatures, f: impl FnOnce() -> R) -> R {
        struct Restore(CpuFeatures);
        impl Drop for Restore {
            fn drop(&mut self) {
                MASK.with(|m| m.set(self.0));
            }
        }
        let _restore = Restore(MASK.with(|m| m.replace(allowed)));
        f()
    }

    const AVX2_ONLY: CpuFeatures = CpuFeatures::of(&[Feature::Avx, Feature::Avx2]);

    #[test]
    fn without_features_only_the_portable_backends_resolve() {
        let cpu = CpuFeatures::NONE;
        assert_eq!(Backend::Auto.resolve_for(cpu), Ok(Backend::Scalar));
        assert_eq!(Backend::Scalar.resolve_for(cpu), Ok(Backend::Scalar));
        let e = Backend::Avx2.resolve_for(cpu).unwrap_err();
        assert_eq!((e.backend, e.missing.as_slice()), (Backend::Avx2, &[Feature::Avx, Feature::Avx2][..]));
        assert_eq!(e.available, [Backend::Scalar]);
        let e = Backend::Avx512.resolve_for(cpu).unwrap_err();
        assert_eq!(e.missing, Backend::Avx512.features());
        assert_eq!(e.available, [Backend::Scalar]);
        let msg = e.to_string();
        assert!(msg.contains("\"avx512\"") && msg.contains("avx512f") && msg.contains("scalar"), "{msg}");
    }

    #[test]
    fn each_backend_needs_exactly_its_features() {
        assert_eq!(Backend::Auto.resolve_for(AVX2_ONLY), Ok(Backend::Avx2));
        assert_eq!(Backend::Avx2.resolve_for(AVX2_ONLY), Ok(Backend::Avx2));
        let e = Backend::Avx512.resolve_for(AVX2_ONLY).unwrap_err();
        assert_eq!(e.missing, [Feature::Fma, Feature::F16c, Feature::Avx512f]);
        assert_eq!(e.available, [Backend::Scalar, Backend::Avx2]);
        // AVX-512F alone is not enough: its code may use what it implies
        let bare = CpuFeatures::of(&[Feature::Avx512f]);
        assert_eq!(Backend::Auto.resolve_for(bare), Ok(Backend::Scalar));
        assert!(Backend::Avx512.resolve_for(bare).is_err() && Backend::Avx2.resolve_for(bare).is_err());
        for b in [Backend::Auto, Backend::Scalar, Backend::Avx2, Backend::Avx512] {
            let want = if b == Backend::Auto { Backend::Avx512 } else { b };
            assert_eq!(b.resolve_for(CpuFeatures::ALL), Ok(want));
            assert_eq!(Backend::parse(b.name()), Some(b));
        }
    }

    #[test]
    fn a_masked_cpu_refuses_its_missing_backends() {
        masked(CpuFeatures::NONE, || {
            for b in [Backend::Avx2, Backend::Avx512] {
                let e = b.checked().unwrap_err();
                assert_eq!(e.backend, b);
                assert!(!e.missing.is_empty() && !b.available());
            }
            assert_eq!(Backend::Auto.checked(), Ok(Supported::Scalar));
            assert_eq!(Supported::best(), Supported::Scalar);
        });
        masked(AVX2_ONLY, || {
            assert!(Backend::Avx512.checked().is_err());
            let want = Backend::Avx2.resolve_for(CpuFeatures::detect()).ok();
            assert_eq!(Backend::Auto.checked().ok().map(Supported::backend), want.or(Some(Backend::Scalar)));
        });
        // the mask is gone afterwards: the checks see the detected CPU again
        for b in Backend::CONCRETE {
            assert_eq!(b.checked().ok().map(Supported::backend), b.resolve_for(CpuFeatures::detect()).ok());
        }
    }

    /// A buffer no backend would write: checks that a refused call ran nothing.
    const UNTOUCHED: f32 = -1234.5;

    fn untouched(v: &[f32]) -> bool {
        v.iter().all(|&x| x.to_bits() == UNTOUCHED.to_bits())
    }

    fn is_backend(e: &crate::channel::ChannelError, b: Backend) -> bool {
        matches!(e, crate::channel::ChannelError::Backend(x) if x.backend == b && !x.missing.is_empty())
    }

    #[test]
    fn every_stream_entry_refuses_a_backend_the_cpu_lacks() {
        use crate::stream::{normals_at, purpose, Stream};
        let s = Stream::new(1, purpose::CANDIDATES, 2);
        masked(CpuFeatures::NONE, || {
            for b in [Backend::Avx2, Backend::Avx512] {
                let mut z = vec![UNTOUCHED; 300];
                assert_eq!(s.fill_normals(5, &mut z, b).unwrap_err().backend, b);
                assert_eq!(s.fill_normals_par(5, &mut z, b).unwrap_err().backend, b);
                assert!(untouched(&z), "{b:?} ran");
                let mut w = vec![7u32; 300];
                assert_eq!(s.fill_words(5, &mut w, b).unwrap_err().backend, b);
                assert!(w.iter().all(|&x| x == 7), "{b:?} ran");
                let ids: Vec<u64> = (0..300).collect();
                assert_eq!(normals_at(s.key, &ids, &ids, &mut z, b).unwrap_err().backend, b);
                assert!(untouched(&z), "{b:?} ran");
            }
            // the portable backends still run, with the scalar bits
            let want: Vec<u32> = (0..300).map(|i| s.normal(5 + i).to_bits()).collect();
            for b in [Backend::Auto, Backend::Scalar] {
                let mut z = vec![UNTOUCHED; 300];
                s.fill_normals(5, &mut z, b).unwrap();
                assert_eq!(z.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want, "{b:?}");
            }
        });
        // at most AVX2: AVX-512 is refused for what the masked CPU lacks
        masked(AVX2_ONLY, || {
            let seen = CpuFeatures::detect().intersect(AVX2_ONLY);
            let lacks: Vec<Feature> =
                Backend::Avx512.features().iter().copied().filter(|&f| !seen.contains(f)).collect();
            let mut z = vec![UNTOUCHED; 64];
            assert_eq!(s.fill_normals(0, &mut z, Backend::Avx512).unwrap_err().missing, lacks);
            assert!(lacks.contains(&Feature::Avx512f) && untouched(&z));
        });
    }

    #[test]
    fn every_channel_entry_refuses_a_backend_the_cpu_lacks() {
        use crate::channel::{
            decode, decode_batch, decode_many, encode, encode_batch, pool, validate, Batch, Keys, Message,
            Method, Options, Target,
        };
        let (n, d) = (3usize, 4usize);
        let q_mean = vec![0.25f64; n * d];
        let q_std = vec![0.5f64; n * d];
        let p_mean = vec![0f32; n * d];
        let p_std = vec![1f32; n * d];
        let ids: Vec<u64> = (0..n as u64).collect();
        let keys = Keys::new(11);
        let t = Target { q_mean: &q_mean[..d], q_std: &q_std[..d], p_mean: &p_mean[..d], p_std: &p_std[..d] };
        let b = Batch { d, q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std, ids: &ids };
        let messages = vec![Message::new(1); n];
        let sizes = vec![d as u32; n];
        let methods = [
            (Method::Mrc, Some(8u32), false),
            (Method::Orc, Some(8), true),
            (Method::Pfr, Some(8), false),
            (Method::Pfr, None, false),
            (Method::Astar, None, false),
        ];
        masked(CpuFeatures::NONE, || {
            for backend in [Backend::Avx2, Backend::Avx512] {
                assert!(is_backend(&pool::prepare(&keys, d, 8, backend).unwrap_err(), backend));
                for (m, bits, pooled) in methods {
                    let opts = Options { bits, pool: pooled, backend, ..Options::default() };
                    let ok = Options { backend: Backend::Auto, ..opts.clone() };
                    let why = format!("{m} {bits:?} pool {pooled} {backend:?}");
                    assert!(is_backend(&validate(m, &opts, d).unwrap_err(), backend), "{why}");
                    let mut out = vec![UNTOUCHED; n * d];
                    assert!(is_backend(&encode(m, &t, &keys, 0, &opts, &mut out[..d]).unwrap_err(), backend));
                    let e = encode_batch(m, &b, 11, &opts, &mut out).unwrap_err();
                    assert!(e.0 == 0 && is_backend(&e.1, backend), "{why}");
                    // the same call with `auto` runs: only the backend was refused
                    let enc = encode(m, &t, &keys, 0, &ok, &mut vec![0f32; d]).unwrap();
                    let e =
                        decode(m, &enc.message, &p_mean[..d], &p_std[..d], &keys, 0, &opts, &mut out[..d]);
                    assert!(is_backend(&e.unwrap_err(), backend), "{why}");
                    let e = decode_many(m, &opts, &keys, &ids, &messages, &sizes, &p_mean, &p_std, &mut out);
                    let e = e.unwrap_err();
                    assert!(e.0 == 0 && is_backend(&e.1, backend), "{why}");
                    let e = decode_batch(m, &messages, d, &p_mean, &p_std, &ids, 11, &opts, &mut out);
                    let e = e.unwrap_err();
                    assert!(e.0 == 0 && is_backend(&e.1, backend), "{why}");
                    assert!(untouched(&out), "{why}: a refused call wrote its output");
                }
            }
        });
        // a file that asks for the backend is refused as bad input, before anything is coded
        masked(CpuFeatures::NONE, || {
            let opts = Options { bits: Some(8), backend: Backend::Avx512, ..Options::default() };
            let e = crate::coding::encode::check_method(Method::Mrc, &opts).unwrap_err();
            assert_eq!(e.class().name(), "InputError", "{e}");
            assert!(e.to_string().contains("avx512f"), "{e}");
        });
    }

    #[test]
    fn detection_is_cached_and_consistent_with_std() {
        let f = CpuFeatures::detect();
        assert_eq!(f, CpuFeatures::detect());
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(f.contains(Feature::Avx2), std::is_x86_feature_detected!("avx2"));
            assert_eq!(f.contains(Feature::Avx512f), std::is_x86_feature_detected!("avx512f"));
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(f, CpuFeatures::NONE);
    }
}

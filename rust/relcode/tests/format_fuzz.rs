//! A bounded fuzz of the reader for the default `cargo test`: seeded, structure-aware
//! mutations of valid files (count and length fields of every chunk overwritten with huge or
//! off-by-one values, CRCs recomputed so the parsers behind the CRC check see them), random
//! bytes, and the hostile corpus of tests/hostile/files. Every input must give `Ok` or a
//! format error, with the default limits (the per-byte element policy included); never a
//! panic. A few seconds in release mode; the cases are a fixed function of the seed.

use relcode::channel::{Method, Options};
use relcode::coding::{encode, EncodeInput, LayoutRule, PriorArg, TensorInput, TensorSource};
use relcode::format::{DigestMode, Limits, Reader};
use std::time::{Duration, Instant};

/// xorshift64*: a dependency-free, reproducible stream of test choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn sample(seed: u64, method: Method, options: Options, layout: LayoutRule, chunk: u64) -> Vec<u8> {
    let n = 60usize;
    let qm: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.01).collect();
    let qs = vec![0.03f64; n];
    let pm: Vec<f32> = (0..n).map(|i| (i as f32) * 0.001).collect();
    let raw: Vec<u8> = (0..24u8).collect();
    let tensors = vec![
        TensorInput {
            name: "b".into(),
            shape: vec![6],
            source: TensorSource::Coded {
                q_mean: &qm[..6],
                q_std: &qs[..6],
                p_mean: PriorArg::Scalar(0.0),
                p_std: PriorArg::Scalar(0.1),
            },
        },
        TensorInput {
            name: "r".into(),
            shape: vec![2, 3],
            source: TensorSource::Raw { dtype: relcode::format::Dtype::F32, bytes: &raw },
        },
        TensorInput {
            name: "w".into(),
            shape: vec![6, 10],
            source: TensorSource::Coded {
                q_mean: &qm,
                q_std: &qs,
                p_mean: PriorArg::Elements(&pm),
                p_std: PriorArg::Scalar(0.1),
            },
        },
    ];
    let input = EncodeInput {
        tensors,
        seed,
        method,
        options,
        bits_per_block: 8.0,
        layout,
        chunk_size: chunk,
        digest: DigestMode::Tensor,
        meta: None,
        max_excess: None,
    };
    encode(Vec::new(), &input).unwrap().0
}

fn samples() -> Vec<Vec<u8>> {
    let bits = |b| Options { bits: Some(b), ..Options::default() };
    vec![
        sample(1, Method::Pfr, bits(8), LayoutRule::Kl { max_block_size: 5 }, 32),
        sample(2, Method::Mrc, bits(4), LayoutRule::Fixed { block_size: Some(4) }, 1 << 20),
        sample(3, Method::Pfr, Options::default(), LayoutRule::Kl { max_block_size: 3 }, 16),
        sample(4, Method::Orc, bits(1), LayoutRule::Fixed { block_size: Some(60) }, 1 << 20),
    ]
}

/// (offset, length) of every chunk frame that can be walked from the preamble.
fn frames(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 16usize;
    while at + 16 <= b.len() {
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(end) = (at + 16).checked_add(len).filter(|&e| e <= b.len()) else { break };
        out.push((at, len));
        at = end;
    }
    out
}

fn fix_crcs(b: &mut [u8]) {
    for (at, len) in frames(b) {
        let crc = relcode::format::crc32c(&[&b[at..at + 12], &b[at + 16..at + 16 + len]]);
        b[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Opens and fully decodes `bytes`; any panic fails the test (it unwinds through here).
fn check(bytes: Vec<u8>) -> Result<(), relcode::format::FormatError> {
    let r = Reader::from_bytes(bytes, Limits::default())?;
    for t in 0..r.tensors().map(|t| t.len()).unwrap_or(0) {
        r.decode_tensor(t)?;
    }
    r.verify()
}

const HUGE: [u64; 8] = [0, 1, 0xFF, 0xFFFF, 0xFFFF_FFFF, 0x8000_0000, 1 << 40, u64::MAX];

/// One structure-aware mutation: a field of a chunk payload (at an offset that holds a
/// count, a length or an id in some chunk type) overwritten, or a generic byte mutation.
fn mutate(b: &mut Vec<u8>, rng: &mut Rng) {
    let fs = frames(b);
    match rng.below(6) {
        0..=2 if !fs.is_empty() => {
            let (at, len) = fs[rng.below(fs.len())];
            // offsets of the u32/u64 fields of DATA, LAYO, MSGS and INDX payloads
            let offsets = [0usize, 4, 8, 16, 24, 32, 36, 40];
            let off = offsets[rng.below(offsets.len())];
            let v = HUGE[rng.below(HUGE.len())].wrapping_add(rng.below(3) as u64).wrapping_sub(1);
            let width = if rng.below(2) == 0 { 4 } else { 8 };
            let p = at + 16 + off;
            if off + width <= len {
                b[p..p + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
        }
        3 => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        4 => {
            let i = rng.below(b.len());
            b.truncate(i.max(1));
        }
        _ => {
            // a frame's length field
            if let Some(&(at, _)) = fs.get(rng.below(fs.len().max(1))) {
                let v = HUGE[rng.below(HUGE.len())] as u32;
                b[at + 8..at + 12].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

#[test]
fn structured_mutations_never_panic() {
    let files = samples();
    for f in &files {
        check(f.clone()).expect("the samples are valid");
    }
    let mut rng = Rng(0x5EED_2026_1203);
    let t0 = Instant::now();
    let mut errors = 0usize;
    for k in 0..40_000 {
        let mut b = files[k % files.len()].clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut b, &mut rng);
        }
        if rng.below(4) != 0 {
            fix_crcs(&mut b);
        }
        errors += check(b).is_err() as usize;
        assert!(t0.elapsed() < Duration::from_secs(60), "the fuzz ran for over a minute at case {k}");
    }
    assert!(errors > 10_000, "most mutations must be refused ({errors})");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(17);
    for k in 0..20_000 {
        let n = rng.below(400);
        let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if k % 2 == 0 && n >= 16 {
            b[..16].copy_from_slice(b"\x89RELC\r\n\x1a\x01\x00\x00\x00\x00\x00\x00\x00");
        }
        if k % 3 == 0 && n >= 32 {
            let m = b.len();
            b[m - 8..].copy_from_slice(b"\x89RELCEND");
        }
        assert!(check(b).is_err());
    }
}

#[test]
fn the_hostile_corpus_is_refused_with_its_error_class() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 20);
    for (name, want) in cases {
        let bytes = std::fs::read(dir.join(format!("{name}.relc"))).unwrap();
        let t0 = Instant::now();
        let e = check(bytes).expect_err(name);
        let want = want["error"].as_str().unwrap();
        assert!(want == "FormatError" || e.class().name() == want, "{name}: {} ({e})", e.class().name());
        assert_ne!(e.class().name(), "OSError", "{name}");
        assert!(t0.elapsed() < Duration::from_millis(500), "{name} took {:?}", t0.elapsed());
    }
}

#[test]
fn the_element_budget_follows_the_file_length() {
    let l = Limits::default();
    assert_eq!(l.elements_for(517), relcode::format::ELEMENTS_FREE);
    assert_eq!(l.elements_for(1 << 20), 1 << 32 >> 1); // 4096 per byte, capped at 2^31
    assert_eq!(l.elements_for(25_000), 4096 * 25_000); // a 100M-parameter model fits in 24 KiB
    assert!(l.check_elements(100_000_000, 25_000).is_ok());
    assert_eq!(l.check_elements(1 << 26, 517).unwrap_err().class().name(), "LimitError");
    let trusted = Limits::with_max_elements(1 << 40);
    assert_eq!(trusted.elements_for(517), 1 << 40);
    assert_eq!(
        Limits::with_max_elements(10).check_elements(11, 1 << 30).unwrap_err().class().name(),
        "LimitError"
    );
}

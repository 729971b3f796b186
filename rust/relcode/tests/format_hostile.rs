//! Hostile input: random mutations of valid files never panic, never hang, and either decode
//! to the recorded digests or fail with a format error. Mutations are tried both as they are
//! (the CRCs catch them) and with every chunk's CRC recomputed, so the parsers behind the
//! CRC check see them too.

use proptest::prelude::*;
use relcode::channel::{Method, Options};
use relcode::coding::{encode, EncodeInput, LayoutRule, PriorArg, TensorInput, TensorSource};
use relcode::format::{DigestMode, Limits, Reader};

fn sample_file(seed: u64, method: Method, bits: Option<u32>, kl: bool, chunk: u64) -> Vec<u8> {
    sample_with(seed, method, Options { bits, ..Options::default() }, kl, chunk)
}

fn sample_with(seed: u64, method: Method, options: Options, kl: bool, chunk: u64) -> Vec<u8> {
    let n = 40usize;
    let qm: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.01).collect();
    let qs = vec![0.03f64; n];
    let pm: Vec<f32> = (0..n).map(|i| (i as f32) * 0.001).collect();
    let raw: Vec<u8> = (0..24u8).collect();
    let tensors = vec![
        TensorInput {
            name: "w".into(),
            shape: vec![5, 8],
            source: TensorSource::Coded {
                q_mean: &qm,
                q_std: &qs,
                p_mean: PriorArg::Elements(&pm),
                p_std: PriorArg::Scalar(0.1),
            },
        },
        TensorInput {
            name: "b".into(),
            shape: vec![4],
            source: TensorSource::Coded {
                q_mean: &qm[..4],
                q_std: &qs[..4],
                p_mean: PriorArg::Scalar(0.0),
                p_std: PriorArg::Scalar(0.1),
            },
        },
        TensorInput {
            name: "r".into(),
            shape: vec![2, 3],
            source: TensorSource::Raw { dtype: relcode::format::Dtype::I32, bytes: &raw },
        },
    ];
    let input = EncodeInput {
        tensors,
        seed,
        method,
        options,
        bits_per_block: 8.0,
        layout: if kl {
            LayoutRule::Kl { max_block_size: 5 }
        } else if method.info().max_dim == Some(1) {
            LayoutRule::Fixed { block_size: Some(1) }
        } else {
            LayoutRule::Fixed { block_size: Some(3) }
        },
        chunk_size: chunk,
        digest: DigestMode::Tensor,
        meta: None,
        max_excess: None,
    };
    encode(Vec::new(), &input).unwrap().0
}

/// Recomputes the CRC of every chunk that can still be walked from the preamble.
fn fix_crcs(b: &mut [u8]) {
    let mut at = 16usize;
    while at + 16 <= b.len() {
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let Some(end) = (at + 16).checked_add(len).filter(|&e| e <= b.len()) else { return };
        let crc = crc32c_of(&[&b[at..at + 12], &b[at + 16..end]]);
        b[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn crc32c_of(parts: &[&[u8]]) -> u32 {
    relcode::format::crc32c(parts)
}

fn check(bytes: Vec<u8>) {
    let limits = Limits { max_elements: 1 << 20, ..Limits::default() };
    if let Ok(r) = Reader::from_bytes(bytes, limits) {
        // Either every digest matches or an error says why; never a panic.
        let _ = r.verify();
        for t in 0..r.tensors().map(|t| t.len()).unwrap_or(0) {
            let _ = r.decode_tensor(t);
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Overwrite32(usize, u32),
    Overwrite64(usize, u64),
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let n = b.len();
    if n == 0 {
        // an earlier truncation emptied the file: only insertions still apply
        if let Mutation::Insert(_, v) = m {
            b.extend_from_slice(v);
        }
        return;
    }
    match m {
        Mutation::Flip(i, bit) => b[i % n] ^= 1 << (bit % 8),
        Mutation::Truncate(i) => b.truncate(i % n),
        Mutation::Insert(i, v) => {
            let at = i % n;
            b.splice(at..at, v.iter().copied());
        }
        Mutation::Overwrite32(i, v) => {
            let at = i % n.saturating_sub(4).max(1);
            if at + 4 <= n {
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::Overwrite64(i, v) => {
            let at = i % n.saturating_sub(8).max(1);
            if at + 8 <= n {
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big = prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(0x8000_0000), any::<u32>()];
    let big64 = prop_oneof![Just(0u64), Just(u64::MAX), Just(1 << 40), Just(1_000_000_000_000), any::<u64>()];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), big).prop_map(|(i, v)| Mutation::Overwrite32(i, v)),
        (any::<usize>(), big64).prop_map(|(i, v)| Mutation::Overwrite64(i, v)),
    ]
}

proptest! {
    // A fixed seed keeps CI reproducible (the slow Python mutation sweep explores further).
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261129),
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..6,
        muts in proptest::collection::vec(mutation(), 1..4),
        fix in any::<bool>(),
    ) {
        let mut b = match which {
            0 => sample_file(1, Method::Pfr, Some(8), true, 64),
            1 => sample_file(2, Method::Pfr, None, true, 16),
            2 => sample_file(3, Method::Mrc, Some(6), false, 20),
            3 => sample_file(4, Method::Orc, Some(4), false, 1 << 20),
            4 => sample_with(5, Method::AsStar, Options::default(), false, 16),
            _ => sample_with(6, Method::DadStar, Options { depth: Some(10), ..Options::default() }, false, 32),
        };
        for m in &muts {
            apply(&mut b, m);
        }
        if fix {
            fix_crcs(&mut b);
        }
        check(b);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_preamble_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut b = b"\x89RELC\r\n\x1a\x01\x00\x00\x00\x00\x00\x00\x00".to_vec();
        b.extend(tail);
        check(b);
    }
}

#[test]
fn every_mutation_of_a_small_file_is_caught_or_decodes() {
    // Exhaustive single-bit flips of a small file, with and without CRC fix-up: a flip that
    // the CRC does not catch must be caught by a digest or leave the values unchanged.
    let good = sample_file(9, Method::Pfr, Some(8), true, 1 << 20);
    let want = Reader::from_bytes(good.clone(), Limits::default()).unwrap().decode_all().unwrap();
    for i in 0..good.len() {
        for fix in [false, true] {
            let mut b = good.clone();
            b[i] ^= 1 << (i % 8);
            if fix {
                fix_crcs(&mut b);
            }
            if let Ok(r) = Reader::from_bytes(b, Limits::default()) {
                if let Ok(d) = r.decode_all() {
                    assert_eq!(d.tensors.len(), want.tensors.len(), "byte {i}");
                    // One flipped bit cannot change both the values and their digest.
                    for ((_, a), (_, w)) in d.tensors.iter().zip(&want.tensors) {
                        assert_eq!(a, w, "byte {i} decodes to other values with valid digests");
                    }
                }
            }
        }
    }
}

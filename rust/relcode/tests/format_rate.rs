//! Rate accounting and strict budgets: per-block KL against message bits, aggregated per
//! tensor by `encode` and `encode_group`, and `max_excess` refusing over-budget blocks
//! before any block is coded.

use relcode::channel::{Method, Options};
use relcode::coding::encode::{check_group_budget, encode_group, kl_bits, PriorArg};
use relcode::coding::{
    encode, EncodeInput, EncodeReport, LayoutRule, Span, TensorInput, TensorRate, TensorSource,
};
use relcode::format::layout::{Group, Rule};
use relcode::format::{DigestMode, FormatError};

const PRIOR: f64 = 0.1;

/// A posterior: means and stds.
type Posterior = (Vec<f64>, Vec<f64>);

/// 40 small weights, element 17 an outlier about 160 bits of KL away from the prior.
fn weights() -> Posterior {
    let mut m: Vec<f64> = (0..40).map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.004).collect();
    m[17] = 1.5;
    (m, vec![0.05; 40])
}

fn bias() -> Posterior {
    ((0..9).map(|i| (i as f64 - 4.0) * 0.01).collect(), vec![0.05; 9])
}

fn coded<'a>(name: &str, (m, s): &'a Posterior) -> TensorInput<'a> {
    TensorInput {
        name: name.into(),
        shape: vec![m.len() as u64],
        source: TensorSource::Coded {
            q_mean: m,
            q_std: s,
            p_mean: PriorArg::Scalar(0.0),
            p_std: PriorArg::Scalar(PRIOR as f32),
        },
    }
}

/// Encodes `w` and `b` (header order: b, then w) with 10 bits of KL per block.
fn run(
    (w, b): (&Posterior, &Posterior),
    method: Method,
    options: Options,
    layout: LayoutRule,
    chunk_size: u64,
    max_excess: Option<f64>,
) -> Result<EncodeReport, FormatError> {
    let input = EncodeInput {
        tensors: vec![coded("w", w), coded("b", b)],
        seed: 3,
        method,
        options,
        bits_per_block: 10.0,
        layout,
        chunk_size,
        digest: DigestMode::Tensor,
        meta: None,
        max_excess,
    };
    encode(Vec::new(), &input).map(|(_, rep)| rep)
}

fn mrc(bits: u32) -> Options {
    Options { bits: Some(bits), ..Options::default() }
}

fn rate<'a>(rep: &'a EncodeReport, name: &str) -> &'a TensorRate {
    let i = rep.header.tensors.iter().position(|t| t.name == name).unwrap();
    &rep.rate[i]
}

fn outlier_kl() -> f64 {
    kl_bits(1.5, 0.05, 0.0, PRIOR as f32 as f64)
}

#[test]
fn an_outlier_is_counted_over_budget_with_its_excess() {
    let (w, b) = (weights(), bias());
    let kl_layout = LayoutRule::Kl { max_block_size: 25 };
    let rep = run((&w, &b), Method::Mrc, mrc(10), kl_layout, 1 << 20, None).unwrap();
    let rw = rate(&rep, "w");
    // KL-greedy packing puts the outlier (more KL than a block's worth) alone in its block
    assert_eq!(rw.over_budget_blocks, 1, "{rw:?}");
    assert!((rw.worst_excess_bits.unwrap() - (outlier_kl() - 10.0)).abs() < 1e-9, "{rw:?}");
    assert!(outlier_kl() > 150.0);
    let rb = rate(&rep, "b");
    assert_eq!(rb.over_budget_blocks, 0, "{rb:?}");
    assert!(rb.worst_excess_bits.unwrap() <= 0.0, "{rb:?}");
    // the KL is the report's, the bits add up to the file's, every block is counted
    for (r, k) in rep.rate.iter().zip(&rep.kl) {
        assert_eq!(r.kl_bits, *k);
    }
    let bits: f64 = rep.rate.iter().map(|r| r.message_bits).sum();
    assert!((bits - rep.bits as f64).abs() < 1e-6, "{bits} vs {}", rep.bits);
    assert_eq!(rep.bits, 10 * rep.blocks);
    assert!(rw.blocks + rb.blocks >= rep.blocks);
}

#[test]
fn strict_mode_refuses_before_coding_and_names_the_block() {
    let (w, b) = (weights(), bias());
    let kl_layout = LayoutRule::Kl { max_block_size: 25 };
    let e = run((&w, &b), Method::Mrc, mrc(10), kl_layout, 1 << 20, Some(0.0)).unwrap_err();
    let FormatError::InvalidInput(msg) = &e else { panic!("{e:?}") };
    assert_eq!(e.class().name(), "InputError");
    let kl = format!("{:.1}", outlier_kl());
    for part in ["tensor \"w\"", "element 17", "10-bit mrc budget", "block ", &kl] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    // a tolerance above the excess lets the same input through, byte for byte as without one
    let loose = run((&w, &b), Method::Mrc, mrc(10), kl_layout, 1 << 20, Some(outlier_kl())).unwrap();
    let plain = run((&w, &b), Method::Mrc, mrc(10), kl_layout, 1 << 20, None).unwrap();
    assert_eq!(loose, plain);
    // NaN is no tolerance
    let e = run((&w, &b), Method::Mrc, mrc(10), kl_layout, 1 << 20, Some(f64::NAN)).unwrap_err();
    assert!(matches!(e, FormatError::InvalidInput(_)), "{e:?}");

    // Before coding: with dad_star (a budget of depth + 1 bits) an element of the first group
    // cannot be coded at all (posterior std above the prior's, which only the coder refuses),
    // and the outlier sits in a later group. Without max_excess the coder's error comes
    // first; with it, the budget check refuses before any group is coded.
    let (mut w, b) = (weights(), bias());
    w.1[0] = 0.101;
    let dad = Options { depth: Some(9), ..Options::default() };
    let fixed1 = LayoutRule::Fixed { block_size: Some(1) };
    let e = run((&w, &b), Method::DadStar, dad.clone(), fixed1, 16, None).unwrap_err();
    assert!(e.to_string().contains("needs every posterior std below the prior std"), "{e}");
    let e = run((&w, &b), Method::DadStar, dad, fixed1, 16, Some(0.0)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("10-bit dad_star budget") && msg.contains("element 17"), "{msg}");
    // coded vector b[0..9], w[0..40] in groups of 16: w[0] is in group 0, w[17] in group 1
    assert!(msg.contains("of group 1"), "{msg}");
}

#[test]
fn exact_methods_report_the_excess_but_have_no_budget() {
    // an outlier exact pfr can reach (about 7 bits of KL)
    let (mut w, b) = (weights(), bias());
    w.0[17] = 0.3;
    let kl_layout = LayoutRule::Kl { max_block_size: 25 };
    // pfr without bits: messages as long as the sample needs, never refused
    let exact = Options::default();
    let rep = run((&w, &b), Method::Pfr, exact.clone(), kl_layout, 1 << 20, Some(0.0)).unwrap();
    for r in &rep.rate {
        assert_eq!(r.over_budget_blocks, 0, "{r:?}");
        assert!(r.worst_excess_bits.is_some());
    }
    // KL-greedy blocks of at most 10 bits, messages of about that many: some slack or excess
    let rw = rate(&rep, "w");
    assert!(rw.worst_excess_bits.unwrap().abs() < 20.0, "{rw:?}");
    let bits: f64 = rep.rate.iter().map(|r| r.message_bits).sum();
    assert!((bits - rep.bits as f64).abs() < 1e-6);
}

#[test]
fn a_block_across_tensors_splits_its_bits_by_kl_or_by_count() {
    // b (9 elements) and w (40) in one block of 49: it spans both tensors
    let (w, b) = (weights(), bias());
    let fixed = LayoutRule::Fixed { block_size: Some(49) };
    let rep = run((&w, &b), Method::Mrc, mrc(12), fixed, 1 << 20, None).unwrap();
    assert_eq!(rep.blocks, 1);
    let (rw, rb) = (rate(&rep, "w"), rate(&rep, "b"));
    assert_eq!((rw.blocks, rb.blocks), (1, 1));
    let share = rep.kl[1] / (rep.kl[0] + rep.kl[1]); // header order: b, w
    assert!((rw.message_bits - 12.0 * share).abs() < 1e-9, "{rw:?}");
    assert!((rb.message_bits + rw.message_bits - 12.0).abs() < 1e-9);
    // both see the whole block's excess
    assert_eq!(rw.worst_excess_bits, rb.worst_excess_bits);
    assert!((rw.worst_excess_bits.unwrap() - (rep.kl[0] + rep.kl[1] - 12.0)).abs() < 1e-6);
    assert_eq!((rw.over_budget_blocks, rb.over_budget_blocks), (1, 1));

    // Q = P: no KL, so the bits go by element count (40 : 9)
    let z = |n: usize| (vec![0.0; n], vec![PRIOR as f32 as f64; n]);
    let rep = run((&z(40), &z(9)), Method::Mrc, mrc(7), fixed, 1 << 20, None).unwrap();
    let (rw, rb) = (rate(&rep, "w"), rate(&rep, "b"));
    assert!((rw.message_bits - 7.0 * 40.0 / 49.0).abs() < 1e-9, "{rw:?}");
    assert!((rb.message_bits - 7.0 * 9.0 / 49.0).abs() < 1e-9, "{rb:?}");
    assert_eq!(rw.worst_excess_bits, Some(-7.0));
}

#[test]
fn groups_coded_one_by_one_add_up_to_the_whole_file() {
    // what a streaming encoder does: encode_group per group with its tensor pieces, merged
    let (w, b) = (weights(), bias());
    let opts = mrc(10);
    let rep =
        run((&w, &b), Method::Mrc, opts.clone(), LayoutRule::Kl { max_block_size: 25 }, 16, None).unwrap();
    // coded vector: b (9) then w (40)
    let qm: Vec<f64> = b.0.iter().chain(&w.0).copied().collect();
    let qs: Vec<f64> = b.1.iter().chain(&w.1).copied().collect();
    let names: Vec<(&str, u64, u64)> = vec![("b", 0, 9), ("w", 9, 40)];
    let mut total = vec![TensorRate::default(); 2];
    for g in 0..qm.len().div_ceil(16) {
        let (s, e) = (g * 16, ((g + 1) * 16).min(qm.len()));
        let spans: Vec<(usize, Span<'_>)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, &(name, ts, n))| {
                let (a, z) = ((s as u64).max(ts), (e as u64).min(ts + n));
                (a < z).then_some((i, Span { name, first: a - ts, count: z - a }))
            })
            .collect();
        let sp: Vec<Span<'_>> = spans.iter().map(|x| x.1).collect();
        let kl: Vec<f64> = (s..e).map(|k| kl_bits(qm[k], qs[k], 0.0, PRIOR as f32 as f64)).collect();
        let sizes = relcode::coding::layout::kl_greedy_sizes(
            relcode::coding::permutation(3, g as u32, (e - s) as u32).iter().map(|&i| kl[i as usize]),
            10.0,
            25,
        );
        let grp = Group {
            id: g as u32,
            seed: 3,
            start: s as u64,
            count: (e - s) as u64,
            rule: Rule::Sizes { sizes },
        };
        let n = e - s;
        let out = encode_group(
            &grp,
            g as u32,
            &qm[s..e],
            &qs[s..e],
            &vec![0.0; n],
            &vec![PRIOR as f32; n],
            &sp,
            3,
            Method::Mrc,
            &opts,
            None,
        )
        .unwrap();
        assert_eq!(out.rate.len(), sp.len());
        for ((i, _), r) in spans.iter().zip(&out.rate) {
            total[*i].merge(r);
        }
        // the check alone agrees with the coder and returns the budget
        assert_eq!(check_group_budget(&grp, g as u32, &kl, &sp, Method::Mrc, &opts, None), Ok(Some(10)));
        let strict = check_group_budget(&grp, g as u32, &kl, &sp, Method::Mrc, &opts, Some(0.0));
        assert_eq!(strict.is_err(), out.rate.iter().any(|r| r.over_budget_blocks > 0), "group {g}");
    }
    for (t, r) in total.iter().zip(&rep.rate) {
        assert!((t.kl_bits - r.kl_bits).abs() < 1e-9);
        assert!((t.message_bits - r.message_bits).abs() < 1e-9);
        assert_eq!(
            (t.blocks, t.over_budget_blocks, t.worst_excess_bits),
            (r.blocks, r.over_budget_blocks, r.worst_excess_bits)
        );
    }
    assert_eq!(total[1].over_budget_blocks, 1);
}

#[test]
fn tensor_pieces_must_tile_the_group() {
    let g = Group { id: 0, seed: 0, start: 0, count: 4, rule: Rule::Fixed { size: 2 } };
    let q = [0.0; 4];
    let s = [0.05; 4];
    let spans = [Span { name: "a", first: 0, count: 3 }];
    let e = encode_group(&g, 0, &q, &s, &[0.0; 4], &[0.1; 4], &spans, 0, Method::Mrc, &mrc(4), None);
    assert!(matches!(e, Err(FormatError::InvalidInput(_))), "{e:?}");
    // no pieces: one row for the whole group
    let out = encode_group(&g, 0, &q, &s, &[0.0; 4], &[0.1; 4], &[], 0, Method::Mrc, &mrc(4), None).unwrap();
    assert_eq!(out.rate.len(), 1);
    assert_eq!((out.rate[0].blocks, out.rate[0].over_budget_blocks), (2, 0));
}

#[test]
fn merging_rates_adds_and_keeps_the_worst() {
    let mut a = TensorRate {
        kl_bits: 1.0,
        message_bits: 2.0,
        blocks: 1,
        over_budget_blocks: 0,
        worst_excess_bits: Some(-1.0),
    };
    a.merge(&TensorRate::default());
    assert_eq!(a.worst_excess_bits, Some(-1.0));
    a.merge(&TensorRate {
        kl_bits: 5.0,
        message_bits: 3.0,
        blocks: 2,
        over_budget_blocks: 1,
        worst_excess_bits: Some(2.0),
    });
    assert_eq!(
        a,
        TensorRate {
            kl_bits: 6.0,
            message_bits: 5.0,
            blocks: 3,
            over_budget_blocks: 1,
            worst_excess_bits: Some(2.0)
        }
    );
    let mut e = TensorRate::default();
    e.merge(&a);
    assert_eq!(e, a);
}

#[test]
fn budgets_are_those_of_the_approximate_fixed_length_methods() {
    let o = Options::default();
    assert_eq!(Method::Mrc.budget_bits(&mrc(10)), Some(10));
    assert_eq!(Method::Orc.budget_bits(&mrc(7)), Some(7));
    assert_eq!(Method::Pfr.budget_bits(&mrc(12)), Some(12));
    assert_eq!(Method::Pfr.budget_bits(&o), None);
    assert_eq!(Method::DadStar.budget_bits(&Options { depth: Some(9), ..o.clone() }), Some(10));
    for m in [Method::Astar, Method::AdStar, Method::Gprs, Method::GprsBnb, Method::Grs, Method::Agrs] {
        assert_eq!(m.budget_bits(&o), None, "{m}");
    }
}

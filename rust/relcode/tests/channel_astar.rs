//! A* coding family (astar, as_star, ad_star, dad_star): round trips, value stability,
//! exactness, runtime and codelength against the reference simulations, invariance under
//! standardisation, and every refusal.

use relcode::channel::{
    decode, encode, encode_batch, read_message, write_message, Batch, ChannelError, Encoded, Keys, Method,
    Options, Target,
};
use relcode::codes::{BitReader, BitWriter};

const LN2: f64 = std::f64::consts::LN_2;

fn dad(depth: u32) -> Options {
    Options { depth: Some(depth), ..Options::default() }
}

fn opts_for(m: Method) -> Options {
    if m == Method::DadStar {
        dad(10)
    } else {
        Options::default()
    }
}

/// `n` copies of the standardised 1D problem Q = N(mu, s^2), P = N(0, 1), ids 0..n.
fn batch(m: Method, mu: f64, s: f64, n: usize, seed: u64, opts: &Options) -> (Vec<Encoded>, Vec<f64>) {
    let qm = vec![mu; n];
    let qs = vec![s; n];
    let pm = vec![0f32; n];
    let ps = vec![1f32; n];
    let ids: Vec<u64> = (0..n as u64).collect();
    let b = Batch { d: 1, q_mean: &qm, q_std: &qs, p_mean: &pm, p_std: &ps, ids: &ids };
    let mut out = vec![0f32; n];
    let enc =
        encode_batch(m, &b, seed, opts, &mut out).unwrap_or_else(|(i, e)| panic!("{m} problem {i}: {e}"));
    (enc, out.into_iter().map(f64::from).collect())
}

fn kl_bits(mu: f64, s: f64) -> f64 {
    (0.5 * (s * s + mu * mu - 1.0) - s.ln()) / LN2
}

fn r_max(mu: f64, s: f64) -> f64 {
    (-s.ln() + mu * mu / (2.0 * (1.0 - s * s))).exp()
}

fn mean_sd(v: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = v.collect();
    let n = v.len();
    let m = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
    (m, var.sqrt(), n)
}

/// Standard normal CDF: erfc by its Chebyshev fit (fractional error below 1.2e-7, far
/// below the KS resolutions used here).
fn phi(x: f64) -> f64 {
    let z = (x / std::f64::consts::SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// One-sample Kolmogorov-Smirnov distance against N(mu, s^2).
fn ks_distance(mut v: Vec<f64>, mu: f64, s: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mut d = 0f64;
    for (i, x) in v.iter().enumerate() {
        let f = phi((x - mu) / s);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
    }
    d
}

/// The KS distance a correct sampler stays below with probability 1 - 1e-4 (Kolmogorov).
fn ks_critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

const ALL: [Method; 4] = [Method::Astar, Method::AsStar, Method::AdStar, Method::DadStar];

// ------------------------------------------------------------------------------------------
// Round trips and value stability
// ------------------------------------------------------------------------------------------

#[test]
fn round_trip_every_method_through_the_bitstream() {
    let keys = Keys::new(0xA57A);
    let targets: [(f64, f64, f32, f32); 6] = [
        (0.3, 0.2, 0.0, 1.0),
        (-1.1, 0.05, 0.2, 0.5),
        (2.0, 0.3, -1.0, 0.7),
        (0.0, 0.999, 0.0, 1.0),
        (1e-3, 1e-3, 1e-3, 2e-3),
        (7.0, 0.6, 1.0, 1.5),
    ];
    for m in ALL {
        let opts = opts_for(m);
        let mut w = BitWriter::new();
        let mut sent = vec![];
        for (i, &(qm, qs, pm, ps)) in targets.iter().enumerate() {
            let t = Target { q_mean: &[qm], q_std: &[qs], p_mean: &[pm], p_std: &[ps] };
            let mut x = [0f32];
            let e = match encode(m, &t, &keys, i as u64, &opts, &mut x) {
                Ok(e) => e,
                // astar needs exp(D_inf) proposals: the far targets stop at the cap
                Err(ChannelError::IterationCap { .. }) if m == Method::Astar => continue,
                Err(e) => panic!("{m} target {i}: {e}"),
            };
            assert!(x[0].is_finite());
            let n = write_message(m, &opts, &e.message, &mut w).unwrap();
            assert_eq!(n, e.bits);
            sent.push((i, e.message, x[0], pm, ps));
        }
        assert!(sent.len() >= 3, "{m}");
        let len = w.bit_len();
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes, len);
        for (i, msg, x, pm, ps) in sent {
            let got = read_message(m, &opts, &mut r).unwrap();
            assert_eq!(got, msg);
            let mut y = [0f32];
            decode(m, &got, &[pm], &[ps], &keys, i as u64, &opts, &mut y).unwrap();
            assert_eq!(y[0].to_bits(), x.to_bits(), "{m} target {i}");
        }
        assert_eq!(r.remaining(), 0);
    }
}

#[test]
fn astar_round_trips_in_many_dimensions() {
    let keys = Keys::new(3);
    for d in [2usize, 5, 25] {
        // D_inf about 2.5 bits in all: two informative dimensions, the rest close to P
        let qm: Vec<f64> = (0..d).map(|i| if i < 2 { 0.4 - 0.6 * i as f64 } else { 0.01 }).collect();
        let qs: Vec<f64> = (0..d).map(|i| if i < 2 { 0.6 } else { 0.995 }).collect();
        let pm: Vec<f32> = (0..d).map(|i| 0.01 * i as f32).collect();
        let ps = vec![1.25f32; d];
        let t = Target { q_mean: &qm, q_std: &qs, p_mean: &pm, p_std: &ps };
        let mut x = vec![0f32; d];
        let e = encode(Method::Astar, &t, &keys, 11, &Options::default(), &mut x).unwrap();
        let mut y = vec![0f32; d];
        decode(Method::Astar, &e.message, &pm, &ps, &keys, 11, &Options::default(), &mut y).unwrap();
        assert_eq!(x, y);
        // the decoder of astar is pfr's: candidate n - 1
        decode(Method::Pfr, &e.message, &pm, &ps, &keys, 11, &Options::default(), &mut y).unwrap();
        assert_eq!(x, y);
    }
}

/// Hard-coded messages, steps and sample bits: any change of a bit an encoder or decoder
/// produces fails here (and needs a new stream or channel version).
#[test]
fn value_stability() {
    let keys = Keys::new(20240611);
    // (method, q_mean, q_std, p_mean, p_std, id) -> (message, steps, sample bits)
    type Case = (Method, f64, f64, f32, f32, u64, u64, u64, u32);
    let cases: [Case; 12] = [
        (Method::Astar, 1.0, 0.25, 0.0, 1.0, 0, 1, 2, 0x3F00F8FD),
        (Method::Astar, 0.4, 0.3, 0.1, 0.5, 7, 1, 2, 0x3F48EF9B),
        (Method::Astar, -2.0, 0.05, -1.5, 2.0, 1 << 40, 44, 54, 0xBFFB1DCD),
        (Method::AsStar, 1.0, 0.25, 0.0, 1.0, 0, 14, 4, 0x3F974887),
        (Method::AsStar, 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3DA51EB1),
        (Method::AsStar, 5.0, 0.01, 0.0, 1.0, 1 << 40, 16383, 14, 0x409FC49B),
        (Method::AdStar, 1.0, 0.25, 0.0, 1.0, 0, 3, 4, 0x3F237336),
        (Method::AdStar, 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3E91F3BB),
        (Method::AdStar, 5.0, 0.01, 0.0, 1.0, 1 << 40, 16777213, 24, 0x409FEBBD),
        (Method::DadStar, 1.0, 0.25, 0.0, 1.0, 0, 3, 4, 0x3F237336),
        (Method::DadStar, 0.4, 0.3, 0.1, 0.5, 7, 3, 2, 0x3E91F3BB),
        (Method::DadStar, 5.0, 0.01, 0.0, 1.0, 1 << 40, 1023, 11, 0x406FD6A5),
    ];
    let mut got = vec![];
    for &(m, qm, qs, pm, ps, id, ..) in &cases {
        let t = Target { q_mean: &[qm], q_std: &[qs], p_mean: &[pm], p_std: &[ps] };
        let mut x = [0f32];
        let e = encode(m, &t, &keys, id, &opts_for(m), &mut x).unwrap();
        got.push((e.message.index, e.steps, x[0].to_bits()));
    }
    let want: Vec<(u64, u64, u32)> = cases.iter().map(|c| (c.6, c.7, c.8)).collect();
    if got != want {
        for (c, g) in cases.iter().zip(&got) {
            eprintln!("{:?} id {}: {:?}", c.0, c.5, g);
        }
    }
    assert_eq!(got, want);
}

// ------------------------------------------------------------------------------------------
// Exactness and the reference's runtime and codelength numbers
// ------------------------------------------------------------------------------------------

#[test]
fn exact_methods_sample_the_target() {
    let n = 20_000;
    for (m, mu, s) in [
        (Method::AsStar, 1.0, 0.25),
        (Method::AsStar, 1.0, 0.97),
        (Method::AsStar, 0.0, 1e-3),
        (Method::AsStar, 6.0, 0.3),
        (Method::AdStar, 1.0, 0.25),
        (Method::AdStar, 1.0, 0.97),
        (Method::AdStar, 0.0, 1e-3),
        (Method::AdStar, 6.0, 0.3),
        (Method::Astar, 1.0, 0.25),
        (Method::Astar, 1.0, 0.9),
    ] {
        let (_, x) = batch(m, mu, s, n, 17, &Options::default());
        let (mean, sd, _) = mean_sd(x.iter().copied());
        let d = ks_distance(x, mu, s);
        assert!(d < ks_critical(n), "{m} ({mu}, {s}): KS distance {d}");
        assert!((mean - mu).abs() < 4.0 * s / (n as f64).sqrt(), "{m} ({mu}, {s}): mean {mean}");
        let var_z = (sd * sd / (s * s) - 1.0) / (2.0 / n as f64).sqrt();
        assert!(var_z.abs() < 4.0, "{m} ({mu}, {s}): sd {sd}");
    }
}

/// astar and pfr are the same process (same candidates, same exponentials): they pick the
/// same arrival and stop at the same proposal, up to rounding of near ties.
#[test]
fn astar_selects_the_pfr_arrival() {
    let n = 4000;
    for (mu, s) in [(1.0, 0.25), (0.0, 0.05)] {
        let (a, _) = batch(Method::Astar, mu, s, n, 5, &Options::default());
        let (p, _) = batch(Method::Pfr, mu, s, n, 5, &Options::default());
        let same = a.iter().zip(&p).filter(|(a, p)| a.message == p.message && a.steps == p.steps).count();
        assert!(same >= n - 4, "({mu}, {s}): {same} of {n}");
    }
}

/// Mean proposals of the global bound: r_max + 1 (reference sections 3.4, 3.5, 8).
#[test]
fn astar_runtime_is_r_max_plus_one() {
    let n = 20_000;
    for (mu, s) in [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25)] {
        let (enc, _) = batch(Method::Astar, mu, s, n, 9, &Options::default());
        let (mean, sd, _) = mean_sd(enc.iter().map(|e| e.steps as f64));
        let want = r_max(mu, s) + 1.0;
        let se = sd / (n as f64).sqrt();
        assert!((mean - want).abs() < 4.0 * se, "({mu}, {s}): {mean} vs {want} (se {se})");
    }
}

/// Four combined standard errors of a mean over `n` runs and a reference simulation's
/// (which used as few as 1500-2000 runs per cell).
fn tolerance(sd: f64, n: usize) -> f64 {
    4.0 * sd * (1.0 / n as f64 + 1.0 / 2000.0).sqrt()
}

/// AS* nodes (reference section 7 and the D_inf sweep of section 8): grows with D_inf at
/// fixed KL.
#[test]
fn as_star_nodes_match_the_reference() {
    let n = 20_000;
    let mut sweep = vec![];
    for (mu, s, want) in [
        (0.0, 0.5, 1.80),
        (1.0, 0.25, 3.27),
        (2.0, 0.25, 4.61),
        (1.0, 0.7, 2.14),
        (1.0, 0.9, 3.08),
        (1.0, 0.97, 8.39),
    ] {
        let (enc, _) = batch(Method::AsStar, mu, s, n, 21, &Options::default());
        let (mean, sd, _) = mean_sd(enc.iter().map(|e| e.steps as f64));
        let tol = tolerance(sd, n);
        assert!((mean - want).abs() < tol, "({mu}, {s}): {mean} nodes vs {want} (tol {tol})");
        if mu == 1.0 && s > 0.5 {
            sweep.push(mean);
        }
    }
    // KL stays at 0.72-0.87 bits while D_inf goes 1.9 -> 3.9 -> 12.2 bits
    assert!(sweep[0] < sweep[1] && 2.0 * sweep[1] < sweep[2], "{sweep:?}");
}

/// AD* nodes grow like D_inf; the mean log2 heap index is within one bit of KL.
#[test]
fn ad_star_nodes_and_codelength_match_the_reference() {
    let n = 20_000;
    for (mu, s, want) in
        [(1.0, 0.25, 2.83), (2.0, 0.25, 4.68), (1.0, 0.7, 2.06), (1.0, 0.9, 3.42), (1.0, 0.97, 11.16)]
    {
        let (enc, _) = batch(Method::AdStar, mu, s, n, 23, &Options::default());
        let (mean, sd, _) = mean_sd(enc.iter().map(|e| e.steps as f64));
        let tol = tolerance(sd, n);
        assert!((mean - want).abs() < tol, "({mu}, {s}): {mean} nodes vs {want} (tol {tol})");
    }
    for (mu, s) in [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05), (0.0, 0.002), (3.0, 0.2), (5.0, 0.05)]
    {
        let (enc, _) = batch(Method::AdStar, mu, s, 4000, 29, &Options::default());
        let (lh, ..) = mean_sd(enc.iter().map(|e| (e.message.index as f64).log2()));
        let kl = kl_bits(mu, s);
        assert!((lh - kl).abs() <= 1.0, "({mu}, {s}): E log2 h = {lh}, KL = {kl}");
    }
}

/// DAD*'s bias shrinks with the depth limit (reference section 3.8: KS 0.337, 0.089, 0.024,
/// 0.008, 0.006 at depths 1, 2, 3, 4, 6 for Q = N(1, 1/16)); its message is depth + 1 bits.
#[test]
fn dad_star_bias_shrinks_with_depth() {
    let n = 20_000;
    let mut last = f64::INFINITY;
    for (depth, want) in [(1u32, 0.337), (2, 0.089), (3, 0.024), (4, 0.008), (6, 0.006)] {
        let (enc, x) = batch(Method::DadStar, 1.0, 0.25, n, 31, &dad(depth));
        assert!(enc.iter().all(|e| e.bits == depth + 1 && e.message.index < 2 << depth));
        let d = ks_distance(x, 1.0, 0.25);
        // sampling noise of the KS distance at n = 20000 is about 0.004
        assert!((d - want).abs() < 0.25 * want + 0.006, "depth {depth}: KS {d} vs {want}");
        assert!(d < last + 0.004, "depth {depth}: KS {d} after {last}");
        last = d;
    }
    assert!(last < ks_critical(n));
}

// ------------------------------------------------------------------------------------------
// Invariance
// ------------------------------------------------------------------------------------------

/// Coding Q = N(m + sp mu, (sp s)^2) against P = N(m, sp^2) is coding N(mu, s^2) against
/// N(0, 1): same messages and steps; the sample is the standard one through the weight rule.
#[test]
fn results_are_invariant_under_standardisation() {
    let keys = Keys::new(77);
    // m and sp chosen so that standardising is exact in binary64
    let (m, sp) = (0.375f32, 2.5f32);
    for meth in ALL {
        for (id, (mu, s)) in [(0.5, 0.25), (-1.25, 0.125), (3.0, 0.5)].into_iter().enumerate() {
            if meth == Method::Astar && r_max(mu, s) > 1e3 {
                continue;
            }
            let opts = opts_for(meth);
            let mut z = [0f32];
            let std = Target { q_mean: &[mu], q_std: &[s], p_mean: &[0.0], p_std: &[1.0] };
            let a = encode(meth, &std, &keys, id as u64, &opts, &mut z).unwrap();
            let (qm, qs) = (m as f64 + sp as f64 * mu, sp as f64 * s);
            let gen = Target { q_mean: &[qm], q_std: &[qs], p_mean: &[m], p_std: &[sp] };
            let mut x = [0f32];
            let b = encode(meth, &gen, &keys, id as u64, &opts, &mut x).unwrap();
            assert_eq!(a, b, "{meth} ({mu}, {s})");
            assert_eq!(x[0].to_bits(), (sp * z[0] + m).to_bits(), "{meth} ({mu}, {s})");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Refusals
// ------------------------------------------------------------------------------------------

fn enc1(m: Method, qm: f64, qs: f64, opts: &Options) -> Result<Encoded, ChannelError> {
    let t = Target { q_mean: &[qm], q_std: &[qs], p_mean: &[0.0], p_std: &[1.0] };
    encode(m, &t, &Keys::new(1), 0, opts, &mut [0f32])
}

#[test]
fn one_dimensional_methods_refuse_blocks() {
    let t = Target { q_mean: &[0.0, 0.1], q_std: &[0.5, 0.5], p_mean: &[0.0, 0.0], p_std: &[1.0, 1.0] };
    for m in [Method::AsStar, Method::AdStar, Method::DadStar] {
        let e = encode(m, &t, &Keys::new(1), 0, &opts_for(m), &mut [0f32; 2]).unwrap_err();
        assert!(matches!(&e, ChannelError::Unsupported(s) if s.contains("one dimension")), "{e}");
        let e = decode(
            m,
            &Default::default(),
            &[0.0; 2],
            &[1.0; 2],
            &Keys::new(1),
            0,
            &opts_for(m),
            &mut [0f32; 2],
        );
        assert!(matches!(e, Err(ChannelError::Unsupported(_))));
    }
}

#[test]
fn exact_methods_refuse_unbounded_ratios_and_bad_values() {
    for m in ALL {
        let o = opts_for(m);
        for s in [1.0, 1.5] {
            let e = enc1(m, 0.3, s, &o).unwrap_err();
            assert!(matches!(&e, ChannelError::Unsupported(t) if t.contains("mrc")), "{m}: {e}");
        }
        for (qm, qs) in [(f64::NAN, 0.5), (0.0, f64::NAN), (f64::INFINITY, 0.5), (0.0, 0.0), (0.0, -0.5)] {
            assert!(matches!(enc1(m, qm, qs, &o), Err(ChannelError::InvalidInput(_))), "{m} ({qm}, {qs})");
        }
        // finite, bounded, but too far out for any bound on the ratio
        assert!(matches!(enc1(m, 1e200, 0.5, &o), Err(ChannelError::Unsupported(_))), "{m}");
    }
    // narrower than the quantile domain resolves
    for m in [Method::AsStar, Method::AdStar, Method::DadStar] {
        assert!(matches!(enc1(m, 0.5, 1e-10, &opts_for(m)), Err(ChannelError::Unsupported(_))));
    }
}

#[test]
fn invalid_messages_are_refused() {
    let keys = Keys::new(1);
    let bad = |m: Method, h: u64, o: &Options| {
        let msg = relcode::channel::Message::new(h);
        decode(m, &msg, &[0.0], &[1.0], &keys, 0, o, &mut [0f32])
    };
    for m in ALL {
        assert!(matches!(bad(m, 0, &opts_for(m)), Err(ChannelError::InvalidMessage(_))), "{m}");
    }
    // AS*/AD* heap indices never pass depth 62
    for m in [Method::AsStar, Method::AdStar] {
        assert!(bad(m, (1 << 63) - 1, &Options::default()).is_ok());
        assert!(matches!(bad(m, 1 << 63, &Options::default()), Err(ChannelError::InvalidMessage(_))));
        assert!(matches!(bad(m, u64::MAX, &Options::default()), Err(ChannelError::InvalidMessage(_))));
    }
    // DAD*: h < 2^(depth + 1)
    assert!(bad(Method::DadStar, 15, &dad(3)).is_ok());
    assert!(matches!(bad(Method::DadStar, 16, &dad(3)), Err(ChannelError::InvalidMessage(_))));
    assert!(matches!(bad(Method::DadStar, 1 << 40, &dad(3)), Err(ChannelError::InvalidMessage(_))));
    // a depth above 62 is not an option
    assert!(matches!(enc1(Method::DadStar, 0.0, 0.5, &dad(63)), Err(ChannelError::InvalidInput(_))));
    assert!(matches!(
        enc1(Method::DadStar, 0.0, 0.5, &Options::default()),
        Err(ChannelError::InvalidInput(_))
    ));
}

#[test]
fn iteration_caps_raise() {
    let one = |m: Method| Options { max_steps: 1, ..opts_for(m) };
    for m in ALL {
        let e = enc1(m, 2.0, 0.05, &one(m)).unwrap_err();
        assert!(matches!(e, ChannelError::IterationCap { method, .. } if method == m), "{m}: {e}");
        // Q = P: the first point wins; the tree searches stop after the root, the global
        // bound after looking at the second arrival's time
        let e = enc1(m, 0.0, 1.0 - 1e-12, &one(m)).unwrap();
        let steps = if m == Method::Astar { 2 } else { 1 };
        assert_eq!((e.message.index, e.steps), (1, steps), "{m}");
    }
    // a target whose nodes would lie deeper than heap indices reach (D_inf ~ 76 bits)
    let e = enc1(Method::AdStar, 10.0, 0.1, &Options::default()).unwrap_err();
    assert!(matches!(e, ChannelError::DepthLimit { method: Method::AdStar, depth: 62 }), "{e}");
    // the hint names what helps (a prior that covers the posterior), not another split rule,
    // which has the same depth limit
    let hint = e.to_string();
    assert!(hint.contains("larger prior std") && !hint.contains("split='sample'"), "{hint}");
    let as_star = enc1(Method::AsStar, 10.0, 0.1, &Options::default()).unwrap_err();
    assert!(matches!(as_star, ChannelError::DepthLimit { .. }), "{as_star}");
    // a prior four times wider brings the same posterior within reach
    let t = Target { q_mean: &[10.0], q_std: &[0.1], p_mean: &[0.0], p_std: &[4.0] };
    let mut out = [0f32];
    encode(Method::AdStar, &t, &Keys::new(7), 3, &Options::default(), &mut out).unwrap();
    assert!((out[0] - 10.0).abs() < 1.0, "{}", out[0]);
    // and astar far beyond its budget
    let e = enc1(Method::Astar, 6.0, 0.3, &Options { max_steps: 1 << 16, ..Options::default() }).unwrap_err();
    assert!(matches!(e, ChannelError::IterationCap { method: Method::Astar, .. }), "{e}");
}

/// Deep in a tail (nu at 8 prior stds) the tree samplers keep their precision.
#[test]
fn far_targets_stay_finite_and_decodable() {
    let keys = Keys::new(4);
    for m in [Method::AsStar, Method::AdStar] {
        for id in 0..200u64 {
            let t = Target { q_mean: &[-8.0], q_std: &[0.2], p_mean: &[0.0], p_std: &[1.0] };
            let mut x = [0f32];
            let e = encode(m, &t, &keys, id, &Options::default(), &mut x).unwrap();
            assert!((x[0] + 8.0).abs() < 1.5, "{m}: {}", x[0]);
            let mut y = [0f32];
            decode(m, &e.message, &[0.0], &[1.0], &keys, id, &Options::default(), &mut y).unwrap();
            assert_eq!(x, y);
        }
    }
}

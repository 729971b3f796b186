//! The rejection samplers: grs, agrs, gprs, gprs_parallel and gprs_bnb (both splits).
//!
//! Round trips are bit exact; exactness is tested by Kolmogorov-Smirnov and moment tests at
//! fixed seeds; runtimes and code lengths against the oracles of the sampler reference
//! (exp(D_inf) proposals for grs and global gprs, flat split-on-sample depth in D_inf,
//! published node counts); messages are pinned by value-stability tests.

use relcode::channel::gaussian::{norm_sf, Std1};
use relcode::channel::{
    decode, decode_batch, encode, encode_batch, read_message, write_message, Batch, ChannelError, Encoded,
    Keys, Message, Method, Options, Split, Target,
};
use relcode::codes::{BitReader, BitWriter, IndexCode};

const LN2: f64 = std::f64::consts::LN_2;

/// The method variants under test, by name.
fn variants() -> Vec<(&'static str, Method, Options)> {
    let o = Options::default();
    vec![
        ("grs", Method::Grs, o.clone()),
        ("agrs", Method::Agrs, o.clone()),
        ("gprs", Method::Gprs, o.clone()),
        ("gprs_parallel", Method::GprsParallel, o.clone()),
        ("gprs_bnb/sample", Method::GprsBnb, o.clone()),
        ("gprs_bnb/dyadic", Method::GprsBnb, Options { split: Split::Dyadic, ..o }),
    ]
}

/// n copies of Q = N(mu, s^2) against P = N(p_mean, p_std^2) in one batch (ids 0..n).
struct Run {
    samples: Vec<f32>,
    enc: Vec<Encoded>,
}

fn run(
    method: Method,
    opts: &Options,
    mu: f64,
    s: f64,
    n: usize,
    seed: u64,
) -> Result<Run, (usize, ChannelError)> {
    run_p(method, opts, mu, s, 0.0, 1.0, n, seed)
}

#[allow(clippy::too_many_arguments)]
fn run_p(
    method: Method,
    opts: &Options,
    q_mean: f64,
    q_std: f64,
    p_mean: f32,
    p_std: f32,
    n: usize,
    seed: u64,
) -> Result<Run, (usize, ChannelError)> {
    let qm = vec![q_mean; n];
    let qs = vec![q_std; n];
    let pm = vec![p_mean; n];
    let ps = vec![p_std; n];
    let ids: Vec<u64> = (0..n as u64).collect();
    let b = Batch { d: 1, q_mean: &qm, q_std: &qs, p_mean: &pm, p_std: &ps, ids: &ids };
    let mut samples = vec![0f32; n];
    let enc = encode_batch(method, &b, seed, opts, &mut samples)?;
    Ok(Run { samples, enc })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn std_err(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64 / v.len() as f64).sqrt()
}

/// One-sample Kolmogorov-Smirnov test against N(mu, s^2): (statistic, asymptotic p-value).
fn ks(samples: &[f32], mu: f64, s: f64) -> (f64, f64) {
    let mut x: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
    x.sort_by(|a, b| a.total_cmp(b));
    let n = x.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &v) in x.iter().enumerate() {
        let f = norm_sf(-(v - mu) / s);
        d = d.max(f - i as f64 / n).max((i + 1) as f64 / n - f);
    }
    let l = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let mut p = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let sign = if k as u32 % 2 == 1 { 1.0 } else { -1.0 };
        p += 2.0 * sign * (-2.0 * k * k * l * l).exp();
    }
    (d, p.clamp(0.0, 1.0))
}

/// KS, mean and variance checks of samples against N(mu, s^2).
fn assert_distributed_as(name: &str, samples: &[f32], mu: f64, s: f64) {
    let n = samples.len() as f64;
    let (d, p) = ks(samples, mu, s);
    assert!(p > 1e-4, "{name} vs N({mu}, {s}^2): KS D = {d:.5}, p = {p:.2e}");
    let x: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
    let m = mean(&x);
    assert!((m - mu).abs() < 4.0 * s / n.sqrt(), "{name} vs N({mu}, {s}^2): mean {m}");
    let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
    let z = (var / (s * s) - 1.0) / (2.0 / n).sqrt();
    assert!(z.abs() < 4.0, "{name} vs N({mu}, {s}^2): variance {var} (z = {z:.2})");
}

#[test]
fn round_trips_are_bit_exact() {
    // varied targets and priors in one batch, including non-standard P
    let n = 64;
    let q_mean: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 * 0.4 - 2.0).collect();
    let q_std: Vec<f64> = (0..n).map(|i| 0.02 + ((i * 13) % 7) as f64 * 0.1).collect();
    let p_mean: Vec<f32> = (0..n).map(|i| ((i * 5) % 3) as f32 * 0.5 - 0.5).collect();
    let p_std: Vec<f32> = (0..n).map(|i| 1.0 + ((i * 3) % 4) as f32 * 0.25).collect();
    let ids: Vec<u64> = (0..n as u64).map(|i| i * 1000 + 7).collect();
    let b = Batch { d: 1, q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std, ids: &ids };
    let mut vs = variants();
    for j in [1, 2, 8] {
        vs.push(("gprs_parallel/J", Method::GprsParallel, Options { parallel: j, ..Options::default() }));
    }
    vs.push(("agrs/zeta", Method::Agrs, Options { index_code: IndexCode::Zeta(3), ..Options::default() }));
    for (name, m, opts) in vs {
        let mut samples = vec![0f32; n];
        let enc = encode_batch(m, &b, 99, &opts, &mut samples).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let msgs: Vec<Message> = enc.iter().map(|e| e.message).collect();
        let mut out = vec![0f32; n];
        decode_batch(m, &msgs, 1, &p_mean, &p_std, &ids, 99, &opts, &mut out).unwrap();
        for i in 0..n {
            assert_eq!(out[i].to_bits(), samples[i].to_bits(), "{name} problem {i}");
            // the message survives its code, and `bits` is exactly what is written
            let mut w = BitWriter::new();
            let len = write_message(m, &opts, &msgs[i], &mut w).unwrap();
            assert_eq!(len, enc[i].bits, "{name} problem {i}");
            let bytes = w.finish();
            let back = read_message(m, &opts, &mut BitReader::new(&bytes, len as u64)).unwrap();
            assert_eq!(back, msgs[i], "{name} problem {i}");
        }
        // results never depend on the thread count
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let mut again = vec![0f32; n];
        let enc1 = pool.install(|| encode_batch(m, &b, 99, &opts, &mut again)).unwrap();
        assert_eq!(enc1, enc, "{name}");
    }
}

#[test]
fn samples_are_exact_on_the_reference_targets() {
    let targets = [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05), (1.0, 0.9), (1.0, 0.97)];
    for (name, m, opts) in variants() {
        for (k, &(mu, s)) in targets.iter().enumerate() {
            let r = run(m, &opts, mu, s, 5000, 1000 + k as u64).unwrap();
            assert_distributed_as(name, &r.samples, mu, s);
        }
    }
}

#[test]
fn samples_are_exact_for_small_sigma_and_distant_means() {
    // sigma = 1e-3 (r_max = 1000), |mu| 5-6 prior stds (KL 18-28 bits), a non-standard P
    let tree = [
        ("agrs", Method::Agrs, Options::default()),
        ("gprs_bnb/sample", Method::GprsBnb, Options::default()),
        ("gprs_bnb/dyadic", Method::GprsBnb, Options { split: Split::Dyadic, ..Options::default() }),
    ];
    for (name, m, opts) in &tree {
        for (k, &(mu, s)) in [(0.0, 1e-3), (5.0, 0.5), (-6.0, 0.2), (1.5, 1e-3)].iter().enumerate() {
            let r = run(*m, opts, mu, s, 4000, 2000 + k as u64).unwrap();
            assert_distributed_as(name, &r.samples, mu, s);
        }
        // P = N(3, 2^2), Q = N(-7, 0.5^2): mu = -5, s = 0.25 in standard coordinates
        let r = run_p(*m, opts, -7.0, 0.5, 3.0, 2.0, 4000, 2100).unwrap();
        assert_distributed_as(name, &r.samples, -7.0, 0.5);
    }
    // the candidate-based samplers with r_max = 1000
    for (name, m, opts) in [
        ("grs", Method::Grs, Options::default()),
        ("gprs", Method::Gprs, Options::default()),
        ("gprs_parallel", Method::GprsParallel, Options { parallel: 16, ..Options::default() }),
    ] {
        let r = run(m, &opts, 0.0, 1e-3, 1500, 2200).unwrap();
        assert_distributed_as(name, &r.samples, 0.0, 1e-3);
    }
}

#[test]
fn invariant_under_standardisation() {
    // the same standard-coordinate problem under two priors selects the same messages
    for (name, m, opts) in variants() {
        let a = run_p(m, &opts, 1.0, 0.25, 0.0, 1.0, 200, 5).unwrap();
        let b = run_p(m, &opts, 4.0, 0.5, 2.0, 2.0, 200, 5).unwrap();
        let ma: Vec<Message> = a.enc.iter().map(|e| e.message).collect();
        let mb: Vec<Message> = b.enc.iter().map(|e| e.message).collect();
        assert_eq!(ma, mb, "{name}");
    }
}

#[test]
fn proposals_of_grs_and_global_gprs_average_r_max() {
    // E[N] = exp(D_inf) exactly (Flamich and Theis; Flamich): within 4 standard errors
    for (mu, s, want) in [(1.0, 0.25, 6.818), (0.0, 0.5, 2.0), (2.0, 0.25, 33.77)] {
        assert!((Std1 { mu, s }.d_inf().exp() - want).abs() < 0.01);
        for m in [Method::Grs, Method::Gprs] {
            let r = run(m, &Options::default(), mu, s, 10_000, 31).unwrap();
            let steps: Vec<f64> = r.enc.iter().map(|e| e.steps as f64).collect();
            let (got, se) = (mean(&steps), std_err(&steps));
            assert!((got - want).abs() < 4.0 * se, "{m} on ({mu}, {s}): {got} +- {se}, expected {want}");
            // the message is the proposal index
            assert!(r.enc.iter().all(|e| e.message.index == e.steps));
        }
    }
}

#[test]
fn parallel_rounds_shrink_like_r_max_over_j() {
    // reference [sim] for Q = N(1, 1/16): 6.83 / 4.77 / 3.74 / 3.10 rounds for J = 1/2/4/8;
    // rounds ~ r_max / J + O(log J)
    let r_max = Std1 { mu: 1.0, s: 0.25 }.d_inf().exp();
    let mut prev = f64::INFINITY;
    for (j, reference) in [(1u32, 6.83), (2, 4.77), (4, 3.74), (8, 3.10)] {
        let opts = Options { parallel: j, ..Options::default() };
        let r = run(Method::GprsParallel, &opts, 1.0, 0.25, 10_000, 41).unwrap();
        let rounds: Vec<f64> = r.enc.iter().map(|e| e.steps as f64).collect();
        let got = mean(&rounds);
        let jf = j as f64;
        assert!(got > r_max / jf && got < r_max / jf + 2.0 * jf.log2() + 0.5, "J = {j}: {got} rounds");
        assert!((got / reference - 1.0).abs() < 0.12, "J = {j}: {got} rounds, reference {reference}");
        assert!(got < prev);
        prev = got;
        // sub-process j's arrival n is candidate (n - 1) J + j
        assert!(r.enc.iter().all(|e| e.message.aux < j as u64 && e.message.index >= 1));
    }
}

#[test]
fn split_on_sample_depth_is_flat_in_d_inf() {
    // Q = N(1, s^2): KL 0.72-0.87 bits, D_inf 1.9 -> 36 bits; reference depths 2.07/2.11/2.18/2.19
    let mut depths = vec![];
    for (s, reference) in [(0.7, 2.07), (0.9, 2.11), (0.97, 2.18), (0.99, 2.19)] {
        let r = run(Method::GprsBnb, &Options::default(), 1.0, s, 5000, 51).unwrap();
        let d: Vec<f64> = r.enc.iter().map(|e| e.steps as f64).collect();
        let got = mean(&d);
        assert!(
            (got - reference).abs() < 0.1 + 3.0 * std_err(&d),
            "s = {s}: depth {got}, reference {reference}"
        );
        // the path is the message: depth = floor(log2 h) + 1
        assert!(r.enc.iter().all(|e| 64 - e.message.index.leading_zeros() as u64 == e.steps));
        depths.push(got);
    }
    let spread =
        depths.iter().cloned().fold(f64::MIN, f64::max) - depths.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.3, "depths {depths:?}");
}

#[test]
fn tree_searches_match_published_node_counts() {
    // reference section 7: (mu, s) -> split-on-sample depth, dyadic nodes
    let table = [
        (0.0, 0.5, 1.71, 1.67),
        (1.0, 0.25, 3.15, 2.63),
        (2.0, 0.25, 4.52, 4.23),
        (0.0, 0.05, 5.19, 5.80),
        (0.0, 0.01, 8.30, 9.74),
        (3.0, 0.2, 7.23, 7.92),
        (4.0, 0.1, 11.52, 14.07),
        (5.0, 0.05, 16.96, 21.57),
    ];
    for (k, &(mu, s, sos, dyadic)) in table.iter().enumerate() {
        let kl = Std1 { mu, s }.kl() / LN2;
        for (split, want) in [(Split::Sample, sos), (Split::Dyadic, dyadic)] {
            let opts = Options { split, ..Options::default() };
            let r = run(Method::GprsBnb, &opts, mu, s, 3000, 61 + k as u64).unwrap();
            let nodes: Vec<f64> = r.enc.iter().map(|e| e.steps as f64).collect();
            let got = mean(&nodes);
            let tol = 0.05 * want + 4.0 * std_err(&nodes);
            assert!((got - want).abs() < tol, "({mu}, {s}) {split:?}: {got} nodes, reference {want}");
            if split == Split::Dyadic {
                // log2 of the heap index is within a bit of KL
                let l2: Vec<f64> = r.enc.iter().map(|e| (e.message.index as f64).log2()).collect();
                let m = mean(&l2);
                assert!(m > kl - 1.0 && m < kl + 1.0, "({mu}, {s}) dyadic: E[log2 h] = {m}, KL {kl}");
            } else if kl > 3.0 {
                // O(KL): between 0.7 and 1.5 nodes per bit once KL dominates the constant
                assert!(got > 0.7 * kl && got < 1.5 * kl + 1.0, "({mu}, {s}) depth {got}, KL {kl}");
            }
        }
    }
}

#[test]
fn global_gprs_code_length_meets_the_poisson_bound() {
    // E[log2 N] <= KL + 1.53 bits (Li and El Gamal); also for the rejection samplers
    for (mu, s) in [(0.0, 0.5), (1.0, 0.25), (2.0, 0.25), (0.0, 0.05)] {
        let kl = Std1 { mu, s }.kl() / LN2;
        for m in [Method::Gprs, Method::Grs] {
            let r = run(m, &Options::default(), mu, s, 5000, 71).unwrap();
            let l2: Vec<f64> = r.enc.iter().map(|e| (e.message.index as f64).log2()).collect();
            let got = mean(&l2);
            assert!(got <= kl + 1.53, "{m} ({mu}, {s}): E[log2 N] = {got}, KL {kl}");
        }
    }
}

#[test]
fn agrs_takes_few_steps_flat_in_d_inf() {
    // steps grow slowly with KL and do not follow D_inf (GRS would take exp(D_inf))
    let mut flat = vec![];
    for s in [0.7, 0.9, 0.97, 0.99] {
        let r = run(Method::Agrs, &Options::default(), 1.0, s, 3000, 81).unwrap();
        flat.push(mean(&r.enc.iter().map(|e| e.steps as f64).collect::<Vec<_>>()));
    }
    let spread =
        flat.iter().cloned().fold(f64::MIN, f64::max) - flat.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.3 && flat.iter().all(|&k| k < 2.5), "{flat:?}");
    for (mu, s) in [(1.0, 0.25), (2.0, 0.25), (0.0, 0.01), (4.0, 0.1), (5.0, 0.5)] {
        let kl = Std1 { mu, s }.kl() / LN2;
        let r = run(Method::Agrs, &Options::default(), mu, s, 3000, 82).unwrap();
        let k = mean(&r.enc.iter().map(|e| e.steps as f64).collect::<Vec<_>>());
        assert!(k < 2.0 + kl.log2().max(0.0) * 1.5, "({mu}, {s}): {k} steps at KL {kl}");
        // the transmitted bound holds the sample: decode reproduces it (checked by encode)
        // and the code length stays within KL + 2 log2(KL) + 8 bits on average
        let bits = mean(&r.enc.iter().map(|e| e.bits as f64).collect::<Vec<_>>());
        assert!(bits < kl + 2.0 * (kl + 1.0).log2() + 8.0, "({mu}, {s}): {bits} bits at KL {kl}");
    }
}

#[test]
fn a_target_equal_to_the_prior_takes_the_first_proposal() {
    // s -> 1, mu = 0: r is 1 up to 1e-6, the first proposal is accepted
    for (name, m, opts) in variants() {
        let r = run(m, &opts, 0.0, 1.0 - 1e-6, 50, 3).unwrap();
        for e in &r.enc {
            assert_eq!(e.message.index, 1, "{name}");
            assert_eq!(e.steps, 1, "{name}");
        }
    }
}

fn single(
    method: Method,
    opts: &Options,
    mu: f64,
    s: f64,
    seed: u64,
    id: u64,
) -> Result<Encoded, ChannelError> {
    let t = Target { q_mean: &[mu], q_std: &[s], p_mean: &[0.0], p_std: &[1.0] };
    let mut out = [0f32];
    encode(method, &t, &Keys::new(seed), id, opts, &mut out)
}

/// (method, options, q_mean, q_std, seed, id, expected (index, aux)).
type Pinned<'a> = (Method, &'a Options, f64, f64, u64, u64, (u64, u64));

#[test]
fn value_stability() {
    // (method, options, q_mean, q_std, seed, id) -> message (index, aux): pinned, so that
    // any change to a sampler's choices is deliberate
    let o = Options::default();
    let dy = Options { split: Split::Dyadic, ..o.clone() };
    let j8 = Options { parallel: 8, ..o.clone() };
    let cases: [Pinned<'_>; 12] = [
        (Method::Grs, &o, 1.0, 0.25, 0, 0, (3, 0)),
        (Method::Grs, &o, -0.5, 0.6, 7, 123, (3, 0)),
        (Method::Agrs, &o, 1.0, 0.25, 0, 0, (2, 6)),
        (Method::Agrs, &o, 4.0, 0.1, 7, 123, (5, 65534)),
        (Method::Gprs, &o, 1.0, 0.25, 0, 0, (3, 0)),
        (Method::Gprs, &o, -0.5, 0.6, 7, 123, (3, 0)),
        (Method::GprsParallel, &o, 1.0, 0.25, 0, 0, (7, 1)),
        (Method::GprsParallel, &j8, 2.0, 0.25, 7, 123, (1, 7)),
        (Method::GprsBnb, &o, 1.0, 0.25, 0, 0, (15, 0)),
        (Method::GprsBnb, &o, 4.0, 0.1, 7, 123, (16383, 0)),
        (Method::GprsBnb, &dy, 1.0, 0.25, 0, 0, (7, 0)),
        (Method::GprsBnb, &dy, 4.0, 0.1, 7, 123, (8191, 0)),
    ];
    let mut got = vec![];
    for (m, opts, mu, s, seed, id, _) in cases.iter() {
        let e = single(*m, opts, *mu, *s, *seed, *id).unwrap();
        got.push((e.message.index, e.message.aux));
    }
    let want: Vec<(u64, u64)> = cases.iter().map(|c| c.6).collect();
    assert_eq!(got, want);
}

#[test]
fn decoded_values_are_pinned() {
    // the sample behind a fixed message, as float32 bits (decoders only: no encoder search)
    let keys = Keys::new(11);
    let o = Options::default();
    let cases: [(Method, Options, Message, u32); 5] = [
        (Method::Grs, o.clone(), Message::new(3), 0x3f211da0),
        (Method::Agrs, o.clone(), Message { index: 2, aux: 13 }, 0x3f92571b),
        (
            Method::GprsParallel,
            Options { parallel: 4, ..o.clone() },
            Message { index: 2, aux: 3 },
            0x3cc1c270,
        ),
        (Method::GprsBnb, o.clone(), Message::new(0b1011), 0xbfe89512),
        (Method::GprsBnb, Options { split: Split::Dyadic, ..o.clone() }, Message::new(0b1011), 0x3e54fd14),
    ];
    let mut got = vec![];
    for (m, opts, msg, _) in &cases {
        let mut out = [0f32];
        decode(*m, msg, &[0.5], &[2.0], &keys, 5, opts, &mut out).unwrap();
        got.push(out[0].to_bits());
    }
    let want: Vec<u32> = cases.iter().map(|c| c.3).collect();
    assert_eq!(got, want);
}

#[test]
fn bad_input_is_refused_clearly() {
    let keys = Keys::new(0);
    for (name, m, opts) in variants() {
        // d > 1
        let t = Target { q_mean: &[0.0, 0.0], q_std: &[0.5, 0.5], p_mean: &[0.0, 0.0], p_std: &[1.0, 1.0] };
        let mut out = [0f32; 2];
        let e = encode(m, &t, &keys, 0, &opts, &mut out).unwrap_err();
        assert!(matches!(e, ChannelError::Unsupported(ref s) if s.contains("one dimension")), "{name}: {e}");
        // s >= 1: infinite D_inf, named fixed-budget alternatives
        for s in [1.0, 1.5] {
            let e = single(m, &opts, 0.3, s, 0, 0).unwrap_err();
            assert!(matches!(e, ChannelError::Unsupported(ref t) if t.contains("mrc")), "{name}: {e}");
        }
        // NaN and infinities
        for (mu, s) in [(f64::NAN, 0.5), (0.0, f64::NAN), (f64::INFINITY, 0.5), (0.0, 0.0), (0.0, -1.0)] {
            let e = single(m, &opts, mu, s, 0, 0).unwrap_err();
            assert!(matches!(e, ChannelError::InvalidInput(_)), "{name}: {e}");
        }
        // a message no encoder produces
        let mut out = [0f32];
        let e =
            decode(m, &Message { index: 0, aux: 1 }, &[0.0], &[1.0], &keys, 0, &opts, &mut out).unwrap_err();
        assert!(matches!(e, ChannelError::InvalidMessage(_)), "{name}: {e}");
    }
    let mut out = [0f32];
    let dec = |m: Method, opts: &Options, msg: Message, out: &mut [f32]| {
        decode(m, &msg, &[0.0], &[1.0], &keys, 0, opts, out)
    };
    // sub-process j >= J
    let j4 = Options { parallel: 4, ..Options::default() };
    assert!(dec(Method::GprsParallel, &j4, Message { index: 1, aux: 4 }, &mut out).is_err());
    assert!(dec(Method::GprsParallel, &j4, Message { index: 1, aux: 3 }, &mut out).is_ok());
    // (n - 1) J + j beyond 2^64
    assert!(dec(Method::GprsParallel, &j4, Message { index: u64::MAX, aux: 3 }, &mut out).is_err());
    // J not a power of two
    let j3 = Options { parallel: 3, ..Options::default() };
    assert!(matches!(single(Method::GprsParallel, &j3, 0.0, 0.5, 0, 0), Err(ChannelError::InvalidInput(_))));
    // heap indices deeper than 62, agrs bounds 0 or deeper than 62
    for split in [Split::Sample, Split::Dyadic] {
        let o = Options { split, ..Options::default() };
        assert!(dec(Method::GprsBnb, &o, Message::new(1 << 63), &mut out).is_err());
        assert!(dec(Method::GprsBnb, &o, Message::new((1 << 63) - 1), &mut out).is_ok());
    }
    let o = Options::default();
    assert!(dec(Method::Agrs, &o, Message { index: 1, aux: 0 }, &mut out).is_err());
    assert!(dec(Method::Agrs, &o, Message { index: 1, aux: 1 << 63 }, &mut out).is_err());
    assert!(dec(Method::Agrs, &o, Message { index: u64::MAX, aux: (1 << 63) - 1 }, &mut out).is_ok());
}

#[test]
fn iteration_caps_raise() {
    // max_steps = 1 on a target whose first proposal is almost never accepted
    for (name, m, opts) in variants() {
        let opts = Options { max_steps: 1, ..opts };
        let e = single(m, &opts, 3.0, 0.1, 0, 0).unwrap_err();
        assert!(matches!(e, ChannelError::IterationCap { method, .. } if method == m), "{name}: {e}");
        assert!(e.to_string().contains("max_steps"), "{name}");
    }
    // a target beyond the tree depth (KL ~ 72 bits): a clear error, never a wrong sample
    for (name, m, opts) in variants().into_iter().filter(|v| matches!(v.1, Method::GprsBnb | Method::Agrs)) {
        let e = single(m, &opts, 10.0, 0.5, 0, 0).unwrap_err();
        assert!(
            matches!(e, ChannelError::DepthLimit { .. } | ChannelError::IterationCap { .. }),
            "{name}: {e}"
        );
    }
}

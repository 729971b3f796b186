//! SIMD dispatch on the running CPU: every backend it runs passes every entry point with the
//! scalar bits, and every backend it lacks is refused with a `Backend` error, never run.
//! (Refusals on a CPU made to lack the features are unit tests of `stream::dispatch`.)

use relcode::channel::{
    decode_batch, decode_many, encode, encode_batch, Batch, ChannelError, Encoded, Keys, Message, Method,
    Options, Target,
};
use relcode::stream::{normals_at, purpose, Backend, CpuFeatures, Stream, Supported};

const BACKENDS: [Backend; 4] = [Backend::Scalar, Backend::Avx2, Backend::Avx512, Backend::Auto];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_checks_follow_the_detected_features() {
    let cpu = CpuFeatures::detect();
    for b in BACKENDS {
        let checked = b.checked();
        assert_eq!(checked.as_ref().ok().map(|s| s.backend()), b.resolve_for(cpu).ok(), "{b:?}");
        assert_eq!(checked.is_ok(), b.available(), "{b:?}");
        if let Err(e) = checked {
            assert_eq!(e.backend, b);
            assert!(e.missing.iter().all(|&f| !cpu.contains(f)) && !e.missing.is_empty());
            assert!(e.to_string().contains(b.name()), "{e}");
        }
    }
    // auto is never refused, and stands for the widest backend that runs
    let widest = [Backend::Avx512, Backend::Avx2].into_iter().find(|b| b.available());
    assert_eq!(Backend::Auto.checked().unwrap().backend(), widest.unwrap_or(Backend::Scalar));
    assert_eq!(Supported::best(), Backend::Auto.checked().unwrap());
}

#[test]
fn streams_give_the_scalar_bits_on_every_backend_or_refuse_it() {
    let s = Stream::new(4, purpose::CANDIDATES, 9);
    let (start, n) = (13u64, 1000usize);
    let want: Vec<u32> = (0..n as u64).map(|i| s.normal(start + i).to_bits()).collect();
    let want_words: Vec<u32> = (0..n as u64).map(|i| s.word(start + i)).collect();
    let ids: Vec<u64> = (0..n as u64).map(|i| i % 7).collect();
    let pos: Vec<u64> = (0..n as u64).map(|i| i * 31 + 5).collect();
    let want_at: Vec<u32> =
        ids.iter().zip(&pos).map(|(&i, &p)| Stream::with_key(s.key, i).normal(p).to_bits()).collect();
    for b in BACKENDS {
        let mut z = vec![0f32; n];
        let mut w = vec![0u32; n];
        let runs = b.available();
        assert_eq!(s.fill_normals(start, &mut z, b).is_ok(), runs, "{b:?}");
        assert_eq!(s.fill_words(start, &mut w, b).is_ok(), runs, "{b:?}");
        if runs {
            assert_eq!(bits(&z), want, "{b:?}");
            assert_eq!(w, want_words, "{b:?}");
            let mut z = vec![0f32; n];
            s.fill_normals_par(start, &mut z, b).unwrap();
            assert_eq!(bits(&z), want, "{b:?} in parallel");
            normals_at(s.key, &ids, &pos, &mut z, b).unwrap();
            assert_eq!(bits(&z), want_at, "{b:?} at positions");
        } else {
            assert!(z.iter().all(|&x| x == 0.0) && w.iter().all(|&x| x == 0), "{b:?} ran");
        }
    }
}

/// One small problem set: n blocks of dimension d.
struct Problems {
    d: usize,
    q_mean: Vec<f64>,
    q_std: Vec<f64>,
    p_mean: Vec<f32>,
    p_std: Vec<f32>,
    ids: Vec<u64>,
}

fn problems(n: usize, d: usize) -> Problems {
    let u = Stream::with_key([3, 5], d as u64);
    let x: Vec<f64> = (0..2 * (n * d) as u64).map(|i| u.uniform_f64(i)).collect();
    Problems {
        d,
        q_mean: x[..n * d].iter().map(|v| (v - 0.5) * 2.0).collect(),
        q_std: x[n * d..].iter().map(|v| 0.1 + 0.8 * v).collect(),
        p_mean: vec![0.05; n * d],
        p_std: vec![1.1; n * d],
        ids: (0..n as u64).map(|i| 5 * i + 2).collect(),
    }
}

/// Everything the channel entries produce for `opts`: per-block encodings and samples, the
/// batch encodings and samples, and the decodes of many blocks and of a batch.
type Outputs = (Vec<Encoded>, Vec<u32>, Vec<Encoded>, Vec<u32>, Vec<u32>, Vec<u32>);

fn run(m: Method, opts: &Options, p: &Problems) -> Result<Outputs, ChannelError> {
    let (d, n) = (p.d, p.ids.len());
    let keys = Keys::new(21);
    let mut alone = vec![0f32; n * d];
    let mut enc = Vec::new();
    for i in 0..n {
        let r = i * d..(i + 1) * d;
        let t = Target {
            q_mean: &p.q_mean[r.clone()],
            q_std: &p.q_std[r.clone()],
            p_mean: &p.p_mean[r.clone()],
            p_std: &p.p_std[r.clone()],
        };
        enc.push(encode(m, &t, &keys, p.ids[i], opts, &mut alone[r])?);
    }
    let b = Batch { d, q_mean: &p.q_mean, q_std: &p.q_std, p_mean: &p.p_mean, p_std: &p.p_std, ids: &p.ids };
    let mut batch = vec![0f32; n * d];
    let benc = encode_batch(m, &b, 21, opts, &mut batch).map_err(|e| e.1)?;
    let messages: Vec<Message> = enc.iter().map(|e| e.message).collect();
    let sizes = vec![d as u32; n];
    let mut many = vec![0f32; n * d];
    decode_many(m, opts, &keys, &p.ids, &messages, &sizes, &p.p_mean, &p.p_std, &mut many)
        .map_err(|e| e.1)?;
    let mut dec = vec![0f32; n * d];
    decode_batch(m, &messages, d, &p.p_mean, &p.p_std, &p.ids, 21, opts, &mut dec).map_err(|e| e.1)?;
    Ok((enc, bits(&alone), benc, bits(&batch), bits(&many), bits(&dec)))
}

#[test]
fn channels_give_the_scalar_bits_on_every_backend_or_refuse_it() {
    let cases = [
        (Method::Mrc, Some(11u32), false),
        (Method::Mrc, Some(10), true),
        (Method::Orc, Some(10), false),
        (Method::Orc, Some(9), true),
        (Method::Pfr, Some(10), false),
        (Method::Pfr, Some(10), true),
        (Method::Pfr, None, false),
        (Method::Astar, None, false),
    ];
    for d in [1usize, 3, 16] {
        let p = problems(9, d);
        for (m, nbits, pool) in cases {
            if nbits.is_none() && d > 1 {
                continue; // exact samplers: a KL that a 1D block keeps small
            }
            let base = Options { bits: nbits, pool, backend: Backend::Scalar, ..Options::default() };
            let want = run(m, &base, &p).unwrap();
            for b in BACKENDS {
                let opts = Options { backend: b, ..base.clone() };
                let why = format!("{m} bits {nbits:?} pool {pool} d {d} {b:?}");
                match run(m, &opts, &p) {
                    Ok(got) => {
                        assert!(b.available(), "{why}: ran on a CPU without it");
                        assert!(got == want, "{why}: differs from scalar");
                    }
                    Err(ChannelError::Backend(e)) => {
                        assert!(!b.available() && e.backend == b, "{why}: {e}");
                    }
                    Err(e) => panic!("{why}: {e}"),
                }
            }
        }
    }
}

//! The rejection samplers (grs, agrs, gprs, gprs_parallel, gprs_bnb): encode and decode
//! of one 1D block, on targets of growing KL and D_inf. Each iteration codes a fresh
//! block id, so the numbers average over the samplers' random runtimes.
use criterion::{criterion_group, criterion_main, Criterion};
use relcode::channel::{decode, encode, Keys, Message, Method, Options, Split, Target};
use std::hint::black_box;

fn variants() -> Vec<(&'static str, Method, Options)> {
    let o = Options::default();
    vec![
        ("grs", Method::Grs, o.clone()),
        ("agrs", Method::Agrs, o.clone()),
        ("gprs", Method::Gprs, o.clone()),
        ("gprs_parallel_J4", Method::GprsParallel, o.clone()),
        ("gprs_bnb_sample", Method::GprsBnb, o.clone()),
        ("gprs_bnb_dyadic", Method::GprsBnb, Options { split: Split::Dyadic, ..o }),
    ]
}

fn encode_1d(c: &mut Criterion) {
    let keys = Keys::new(7);
    // (mu, s): KL 2.0 / D_inf 2.8 bits; KL 4.2 / D_inf 5.1; KL 0.7 / D_inf 12.3 (flat for
    // the tree and adaptive methods, r_max = 4869 proposals for grs and global gprs)
    for (mu, s) in [(1.0, 0.25), (2.0, 0.25), (1.0, 0.97)] {
        let mut g = c.benchmark_group(format!("rejection_encode_mu{mu}_s{s}"));
        g.sample_size(10);
        let t = Target { q_mean: &[mu], q_std: &[s], p_mean: &[0.0], p_std: &[1.0] };
        for (name, m, opts) in variants() {
            let mut id = 0u64;
            let mut out = [0f32];
            g.bench_function(name, |b| {
                b.iter(|| {
                    id += 1;
                    encode(m, &t, &keys, black_box(id), &opts, &mut out).unwrap()
                })
            });
        }
        g.finish();
    }
}

fn decode_1d(c: &mut Criterion) {
    let keys = Keys::new(7);
    let mut g = c.benchmark_group("rejection_decode");
    // messages of the size a KL ~ 15 bit block produces
    let cases = [
        ("gprs", Method::Gprs, Options::default(), Message::new(20_000)),
        ("agrs", Method::Agrs, Options::default(), Message { index: 4, aux: (1 << 16) + 12_345 }),
        ("gprs_bnb_sample", Method::GprsBnb, Options::default(), Message::new((1 << 13) + 1234)),
        (
            "gprs_bnb_dyadic",
            Method::GprsBnb,
            Options { split: Split::Dyadic, ..Options::default() },
            Message::new((1 << 15) + 1234),
        ),
    ];
    for (name, m, opts, msg) in cases {
        let mut out = [0f32];
        g.bench_function(name, |b| {
            b.iter(|| decode(m, black_box(&msg), &[0.0], &[1.0], &keys, 3, &opts, &mut out).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, encode_1d, decode_1d);
criterion_main!(benches);

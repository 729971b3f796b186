use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relcode::channel::{decode_many, encode, Keys, Message, Method, Options, Target};

fn fixed_budget(c: &mut Criterion) {
    let keys = Keys::new(7);
    let mut g = c.benchmark_group("fixed_budget_C16");
    g.sample_size(10);
    for &d in &[1usize, 3, 16, 64] {
        let q_mean: Vec<f64> = (0..d).map(|i| 0.3 * ((i % 5) as f64 - 2.0)).collect();
        let q_std = vec![0.6f64; d];
        let p_mean = vec![0f32; d];
        let p_std = vec![1f32; d];
        let t = Target { q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std };
        let mut out = vec![0f32; d];
        g.throughput(Throughput::Elements((d as u64) << 16));
        for m in [Method::Mrc, Method::Pfr] {
            let opts = Options { bits: Some(16), ..Options::default() };
            g.bench_function(format!("{m}/d{d}"), |b| {
                b.iter(|| encode(m, &t, &keys, 3, &opts, &mut out).unwrap())
            });
            let pooled = Options { bits: Some(16), pool: true, ..Options::default() };
            g.bench_function(format!("{m}-pool/d{d}"), |b| {
                b.iter(|| encode(m, &t, &keys, 3, &pooled, &mut out).unwrap())
            });
        }
    }
    g.finish();
}

fn decoding(c: &mut Criterion) {
    let keys = Keys::new(7);
    let (d, n) = (8usize, 4096usize);
    let messages: Vec<Message> = (0..n as u64).map(|i| Message::new((i * 2_654_435_761) % 256)).collect();
    let ids: Vec<u64> = (0..n as u64).collect();
    let sizes = vec![d as u32; n];
    let p_mean = vec![0f32; n * d];
    let p_std = vec![1f32; n * d];
    let mut out = vec![0f32; n * d];
    let mut g = c.benchmark_group("decode_many_d8");
    g.throughput(Throughput::Elements((n * d) as u64));
    for pool in [false, true] {
        let opts = Options { bits: Some(8), pool, ..Options::default() };
        g.bench_function(if pool { "mrc-pool" } else { "mrc" }, |b| {
            b.iter(|| {
                decode_many(Method::Mrc, &opts, &keys, &ids, &messages, &sizes, &p_mean, &p_std, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fixed_budget, decoding);
criterion_main!(benches);

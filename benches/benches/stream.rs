use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relcode::stream::{ndtri, purpose, Backend, Stream};
use std::hint::black_box;

fn normals(c: &mut Criterion) {
    let s = Stream::new(1, purpose::CANDIDATES, 3);
    let mut out = vec![0f32; 1 << 16];
    let mut g = c.benchmark_group("normals");
    g.throughput(Throughput::Elements(out.len() as u64));
    for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512] {
        if !b.available() {
            continue;
        }
        g.bench_function(format!("{b:?}"), |bench| {
            bench.iter(|| s.fill_normals(black_box(12345), &mut out, b))
        });
    }
    g.finish();
    let mut small = vec![0f32; 4096];
    let mut g = c.benchmark_group("normals_4096");
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("auto", |bench| {
        bench.iter(|| s.fill_normals(black_box(4096), &mut small, Backend::Auto))
    });
    g.finish();
}

fn ndtri_bench(c: &mut Criterion) {
    let us: Vec<f64> = (0..4096).map(|i| (i as f64 + 0.5) / 4096.0).collect();
    let mut g = c.benchmark_group("ndtri");
    g.throughput(Throughput::Elements(us.len() as u64));
    g.bench_function("scalar", |b| b.iter(|| us.iter().map(|&u| ndtri(black_box(u))).sum::<f64>()));
    g.finish();
}

criterion_group!(benches, normals, ndtri_bench);
criterion_main!(benches);

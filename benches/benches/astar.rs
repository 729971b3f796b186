//! Tree nodes per second of AS* and AD* (one thread), and proposals per second of the
//! global-bound A* coder, on targets from the reference tables: scale- and location-
//! dominated, and D_inf far above KL.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use relcode::channel::{encode, Keys, Method, Options, Target};

/// Problems per measured iteration (stream ids 0..PROBLEMS).
const PROBLEMS: u64 = 256;

fn run(m: Method, mu: f64, s: f64, keys: &Keys, opts: &Options) -> u64 {
    let t = Target { q_mean: &[mu], q_std: &[s], p_mean: &[0.0], p_std: &[1.0] };
    let mut out = [0f32];
    (0..PROBLEMS).map(|id| encode(m, &t, keys, id, opts, &mut out).unwrap().steps).sum()
}

fn trees(c: &mut Criterion) {
    let keys = Keys::new(7);
    let opts = Options::default();
    let mut g = c.benchmark_group("astar_nodes");
    g.sample_size(10);
    for (mu, s) in [(1.0, 0.25), (0.0, 0.002), (5.0, 0.05), (1.0, 0.97)] {
        for m in [Method::AsStar, Method::AdStar] {
            // throughput in tree nodes: the search is deterministic, so count them once
            let nodes = run(m, mu, s, &keys, &opts);
            g.throughput(Throughput::Elements(nodes));
            g.bench_function(format!("{m}/mu{mu}_s{s}"), |b| b.iter(|| run(m, mu, s, &keys, &opts)));
        }
    }
    g.finish();

    let mut g = c.benchmark_group("astar_global_proposals");
    g.sample_size(10);
    for (mu, s) in [(1.0, 0.25), (0.0, 0.01)] {
        let proposals = run(Method::Astar, mu, s, &keys, &opts);
        g.throughput(Throughput::Elements(proposals));
        g.bench_function(format!("astar/mu{mu}_s{s}"), |b| {
            b.iter(|| run(Method::Astar, mu, s, &keys, &opts))
        });
    }
    g.finish();
}

criterion_group!(benches, trees);
criterion_main!(benches);

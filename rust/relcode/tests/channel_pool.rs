//! Pool mode in batches: blocks are scored in bundles that share each tile of the pool, and
//! every block's result must equal what encoding it alone gives, for any bundle size (batch
//! size) and thread count, with errors reported for the right problem.

use relcode::channel::{encode, encode_batch, Batch, Keys, Method, Options, Target};
use relcode::stream::Stream;

fn uniforms(n: usize, tag: u64) -> Vec<f64> {
    let u = Stream::with_key([5, 6], tag);
    (0..n as u64).map(|i| u.uniform_f64(i)).collect()
}

fn threads(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

#[test]
fn bundled_pool_batches_equal_blocks_coded_alone() {
    let methods = [("mrc", Method::Mrc, None), ("orc", Method::Orc, None), ("pfr", Method::Pfr, Some(10u32))];
    for &d in &[1usize, 5, 16] {
        for &n in &[1usize, 7, 41] {
            let u = uniforms(2 * n * d, (d * 100 + n) as u64);
            let q_mean: Vec<f64> = u[..n * d].iter().map(|x| (x - 0.5) * 3.0).collect();
            let q_std: Vec<f64> = u[n * d..].iter().map(|x| 0.05 + 0.9 * x).collect();
            let p_mean = vec![0.1f32; n * d];
            let p_std = vec![1.2f32; n * d];
            let ids: Vec<u64> = (0..n as u64).map(|i| 3 * i + 1).collect();
            let b = Batch { d, q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std, ids: &ids };
            for (name, m, bits) in methods {
                let opts = Options { pool: true, bits: Some(bits.unwrap_or(10)), ..Options::default() };
                let keys = Keys::new(17);
                let mut alone = vec![0f32; n * d];
                let want: Vec<_> = (0..n)
                    .map(|i| {
                        let r = i * d..(i + 1) * d;
                        let t = Target {
                            q_mean: &q_mean[r.clone()],
                            q_std: &q_std[r.clone()],
                            p_mean: &p_mean[r.clone()],
                            p_std: &p_std[r.clone()],
                        };
                        encode(m, &t, &keys, ids[i], &opts, &mut alone[r]).unwrap()
                    })
                    .collect();
                for t in [1, 3] {
                    let mut samples = vec![0f32; n * d];
                    let got = threads(t).install(|| encode_batch(m, &b, 17, &opts, &mut samples)).unwrap();
                    assert_eq!(got, want, "{name} d {d} n {n} threads {t}");
                    let same = samples.iter().zip(&alone).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{name} d {d} n {n} threads {t}: samples differ");
                }
            }
        }
    }
}

#[test]
fn a_bad_target_in_a_bundle_is_reported_for_its_problem() {
    let (n, d) = (12usize, 4usize);
    let q_mean = vec![0.3f64; n * d];
    let mut q_std = vec![0.5f64; n * d];
    q_std[5 * d + 2] = f64::NAN; // problem 5
    q_std[9 * d] = -1.0; // problem 9
    let p_mean = vec![0f32; n * d];
    let p_std = vec![1f32; n * d];
    let ids: Vec<u64> = (0..n as u64).collect();
    let b = Batch { d, q_mean: &q_mean, q_std: &q_std, p_mean: &p_mean, p_std: &p_std, ids: &ids };
    let opts = Options { pool: true, bits: Some(8), ..Options::default() };
    for t in [1, 2] {
        let mut samples = vec![0f32; n * d];
        let err = threads(t).install(|| encode_batch(Method::Mrc, &b, 3, &opts, &mut samples)).unwrap_err();
        assert_eq!(err.0, 5, "threads {t}: {err:?}");
    }
}

//! spec/vectors/stream: every vector must reproduce bit for bit, with every backend.

use relcode::channel::{self, Keys, Message, Method, Options};
use relcode::stream::{self, purpose, Backend, Stream};
use serde_json::Value;
use std::path::PathBuf;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/vectors/stream").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["stream_version"], stream::STREAM_VERSION);
    v
}

fn hex32(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().unwrap(), 16).unwrap()
}
fn hex64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap(), 16).unwrap()
}
fn dec(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}
fn words(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(hex32).collect()
}
fn purpose_of(name: &str) -> u32 {
    u32::from_le_bytes(name.as_bytes().try_into().unwrap())
}

#[test]
fn philox_vectors() {
    for case in load("philox.json")["cases"].as_array().unwrap() {
        let c = words(&case["counter"]);
        let k = words(&case["key"]);
        let out = stream::philox4x32_10([c[0], c[1], c[2], c[3]], [k[0], k[1]]);
        assert_eq!(out.to_vec(), words(&case["output"]));
    }
}

#[test]
fn key_vectors() {
    for case in load("keys.json")["cases"].as_array().unwrap() {
        let k = stream::derive_key(dec(&case["seed"]), purpose_of(case["purpose"].as_str().unwrap()));
        assert_eq!(k.to_vec(), words(&case["key"]));
    }
}

#[test]
fn normal_vectors_all_backends() {
    for case in load("normals.json")["cases"].as_array().unwrap() {
        let s = Stream::new(dec(&case["seed"]), purpose::CANDIDATES, dec(&case["stream"]));
        let start = dec(&case["start"]);
        let want = words(&case["bits"]);
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(s.normal(start.wrapping_add(i as u64)).to_bits(), w);
        }
        for b in [Backend::Scalar, Backend::Avx2, Backend::Avx512, Backend::Auto] {
            if !b.available() {
                continue;
            }
            let mut out = vec![0f32; want.len()];
            s.fill_normals(start, &mut out, b).unwrap();
            assert_eq!(out.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want, "{b:?}");
        }
    }
}

#[test]
fn uniform_vectors() {
    for case in load("uniforms.json")["cases"].as_array().unwrap() {
        let s = Stream::new(
            dec(&case["seed"]),
            purpose_of(case["purpose"].as_str().unwrap()),
            dec(&case["stream"]),
        );
        let start = dec(&case["start"]);
        for (i, b) in case["bits"].as_array().unwrap().iter().enumerate() {
            assert_eq!(s.uniform_f64(start + i as u64).to_bits(), hex64(b));
        }
    }
}

#[test]
fn ndtri_vectors() {
    for case in load("ndtri.json")["cases"].as_array().unwrap() {
        let p = f64::from_bits(hex64(&case["p"]));
        assert_eq!(stream::ndtri(p).to_bits(), hex64(&case["x"]), "ndtri({p:e})");
    }
}

#[test]
fn candidate_vectors() {
    for case in load("candidates.json")["cases"].as_array().unwrap() {
        let s = Stream::new(dec(&case["seed"]), purpose::CANDIDATES, dec(&case["stream"]));
        let k = dec(&case["index"]);
        let pm: Vec<f32> = words(&case["prior_mean"]).into_iter().map(f32::from_bits).collect();
        let ps: Vec<f32> = words(&case["prior_std"]).into_iter().map(f32::from_bits).collect();
        let d = pm.len() as u64;
        // the group-interleaved layout of spec/stream.md section 5 (spec/channel.md section 2)
        let pos = |j: u64| (k / 16) * 16 * d + 16 * j + k % 16;
        let got: Vec<u32> = (0..d)
            .map(|j| stream::candidate_weight(pm[j as usize], ps[j as usize], s.normal(pos(j))).to_bits())
            .collect();
        assert_eq!(got, words(&case["bits"]));
        // what the decoder of a real message returns: exact pfr's message n is candidate n - 1
        let keys = Keys::new(dec(&case["seed"]));
        let mut out = vec![0f32; d as usize];
        channel::decode(
            Method::Pfr,
            &Message::new(k + 1),
            &pm,
            &ps,
            &keys,
            dec(&case["stream"]),
            &Options::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.iter().map(|x| x.to_bits()).collect::<Vec<u32>>(), got);
    }
}

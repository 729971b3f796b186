//! Decoding many blocks at once (`decode_many`, what files and batches use) must give what
//! decoding each block alone gives, for every backend and for blocks of mixed sizes, and must
//! report the first bad block exactly as the block-by-block checks would.

use relcode::channel::{decode, decode_many, ChannelError, Keys, Message, Method, Options};
use relcode::stream::{Backend, Stream};

fn words(n: usize, tag: u64) -> Vec<u32> {
    let s = Stream::with_key([7, 8], tag);
    (0..n as u64).map(|i| s.word(i)).collect()
}

struct Case {
    sizes: Vec<u32>,
    ids: Vec<u64>,
    messages: Vec<Message>,
    p_mean: Vec<f32>,
    p_std: Vec<f32>,
}

fn case(blocks: usize, bits: u32, tag: u64) -> Case {
    let w = words(3 * blocks, tag);
    let sizes: Vec<u32> = (0..blocks).map(|i| 1 + w[i] % 40).collect();
    let total: usize = sizes.iter().map(|&s| s as usize).sum();
    let ids: Vec<u64> =
        (0..blocks as u64).map(|i| (i << 32) | (w[blocks + i as usize] as u64 >> 8)).collect();
    let messages = (0..blocks).map(|i| Message::new(w[2 * blocks + i] as u64 >> (32 - bits))).collect();
    let p = words(total, tag + 1);
    let p_mean = p.iter().map(|&x| (x % 1000) as f32 / 500.0 - 1.0).collect();
    let p_std = p.iter().map(|&x| 0.05 + (x >> 22) as f32 / 512.0).collect();
    Case { sizes, ids, messages, p_mean, p_std }
}

fn one_by_one(method: Method, opts: &Options, keys: &Keys, c: &Case) -> Vec<u32> {
    let mut out = vec![0f32; c.p_mean.len()];
    let mut off = 0;
    for (i, &s) in c.sizes.iter().enumerate() {
        let r = off..off + s as usize;
        decode(
            method,
            &c.messages[i],
            &c.p_mean[r.clone()],
            &c.p_std[r.clone()],
            keys,
            c.ids[i],
            opts,
            &mut out[r],
        )
        .unwrap();
        off += s as usize;
    }
    out.iter().map(|x| x.to_bits()).collect()
}

fn together(
    method: Method,
    opts: &Options,
    keys: &Keys,
    c: &Case,
) -> Result<Vec<u32>, (usize, ChannelError)> {
    let mut out = vec![0f32; c.p_mean.len()];
    decode_many(method, opts, keys, &c.ids, &c.messages, &c.sizes, &c.p_mean, &c.p_std, &mut out)?;
    Ok(out.iter().map(|x| x.to_bits()).collect())
}

#[test]
fn many_blocks_decode_as_each_block_alone() {
    let keys = Keys::new(23);
    for (method, bits) in [(Method::Mrc, 12u32), (Method::Orc, 16), (Method::Pfr, 8), (Method::Mrc, 32)] {
        for pool in [false, true] {
            let c = case(300, bits, bits as u64 + pool as u64);
            let base = Options { bits: Some(bits), pool, ..Options::default() };
            let want = one_by_one(method, &base, &keys, &c);
            for backend in [Backend::Scalar, Backend::Avx2, Backend::Avx512] {
                if !backend.available() {
                    continue;
                }
                let opts = Options { backend, ..base };
                assert_eq!(
                    together(method, &opts, &keys, &c).unwrap(),
                    want,
                    "{method} {bits} {pool} {backend:?}"
                );
            }
        }
    }
}

#[test]
fn the_first_bad_block_is_reported() {
    let keys = Keys::new(5);
    let opts = Options { bits: Some(10), ..Options::default() };
    let good = case(200, 10, 77);
    // an index beyond the budget at block 120, and a bad prior later (block 150): the index
    let mut c = case(200, 10, 77);
    c.messages[120] = Message::new(1 << 10);
    let at150: usize = c.sizes[..150].iter().map(|&s| s as usize).sum();
    c.p_std[at150] = 0.0;
    let (i, e) = together(Method::Mrc, &opts, &keys, &c).unwrap_err();
    assert_eq!(i, 120, "{e}");
    // the bad prior alone is reported at its own block
    c.messages[120] = good.messages[120];
    let (i, e) = together(Method::Mrc, &opts, &keys, &c).unwrap_err();
    assert!(matches!(e, ChannelError::InvalidInput(_)) && i == 150, "{i} {e}");
    // an empty block
    let mut c = case(200, 10, 77);
    c.sizes[3] = 0;
    let extra = good.sizes[3] as usize;
    let at3: usize = c.sizes[..3].iter().map(|&s| s as usize).sum();
    c.p_mean.drain(at3..at3 + extra);
    c.p_std.drain(at3..at3 + extra);
    assert_eq!(together(Method::Mrc, &opts, &keys, &c).unwrap_err().0, 3);
}

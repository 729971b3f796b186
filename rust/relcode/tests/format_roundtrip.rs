//! Round trips, determinism across thread counts, the streaming writer with groups finished
//! out of order, lazy reading from disk, and one test per error the vectors do not cover.

use relcode::channel::{Message, Method, Options};
use relcode::coding::encode::{encode_group, PriorArg};
use relcode::coding::{encode, EncodeInput, LayoutRule, Messages, TensorInput, TensorSource};
use relcode::format::chunk::Role;
use relcode::format::layout::{Group, Rule};
use relcode::format::read::FileSource;
use relcode::format::{
    DigestMode, Dtype, FormatError, Header, Limits, Prior, PriorValue, Reader, TensorInfo, Writer,
};
use std::sync::Arc;

fn posterior(n: usize, k: u64) -> (Vec<f64>, Vec<f64>) {
    let m = (0..n).map(|i| ((i as u64 * 7919 + k) % 101) as f64 * 0.002 - 0.1).collect();
    (m, vec![0.04; n])
}

fn input<'a>(
    qm: &'a [f64],
    qs: &'a [f64],
    method: Method,
    bits: Option<u32>,
    layout: LayoutRule,
) -> EncodeInput<'a> {
    EncodeInput {
        tensors: vec![
            TensorInput {
                name: "w".into(),
                shape: vec![qm.len() as u64],
                source: TensorSource::Coded {
                    q_mean: qm,
                    q_std: qs,
                    p_mean: PriorArg::Scalar(0.0),
                    p_std: PriorArg::Scalar(0.1),
                },
            },
            TensorInput {
                name: "a".into(),
                shape: vec![],
                source: TensorSource::Coded {
                    q_mean: &qm[..1],
                    q_std: &qs[..1],
                    p_mean: PriorArg::Scalar(0.0),
                    p_std: PriorArg::Scalar(1.0),
                },
            },
        ],
        seed: 42,
        method,
        options: Options { bits, ..Options::default() },
        bits_per_block: 10.0,
        layout,
        chunk_size: 97,
        digest: DigestMode::Tensor,
        meta: None,
        max_excess: None,
    }
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

#[test]
fn bytes_and_values_do_not_depend_on_threads() {
    let (qm, qs) = posterior(500, 1);
    for (method, bits, layout) in [
        (Method::Pfr, Some(10), LayoutRule::Kl { max_block_size: 25 }),
        (Method::Pfr, None, LayoutRule::Kl { max_block_size: 4 }),
        (Method::Mrc, Some(8), LayoutRule::Fixed { block_size: None }),
        (Method::Orc, Some(8), LayoutRule::Fixed { block_size: Some(7) }),
    ] {
        let one = pool(1).install(|| encode(Vec::new(), &input(&qm, &qs, method, bits, layout)).unwrap());
        let four = pool(4).install(|| encode(Vec::new(), &input(&qm, &qs, method, bits, layout)).unwrap());
        assert_eq!(one.0, four.0, "{method}");
        let r = Reader::from_bytes(one.0.clone(), Limits::default()).unwrap();
        let d1 = pool(1).install(|| r.decode_all().unwrap());
        let d4 = pool(3).install(|| r.decode_all().unwrap());
        assert_eq!(d1, d4);
        assert_eq!(d1.coded, one.1.coded, "decoder and encoder report agree");
        assert_eq!(one.1.groups, 6);
    }
}

#[test]
fn crc32c_check_value() {
    assert_eq!(relcode::format::crc32c(&[b"123456789"]), 0xE306_9283);
    assert_eq!(relcode::format::crc32c(&[b"1234", b"56789"]), 0xE306_9283);
}

/// Encodes three groups and writes them in the order 2, 0, 1: the digests still match.
#[test]
fn streaming_writer_accepts_groups_in_any_order() {
    let n = 30u64;
    let (qm, qs) = posterior(n as usize, 3);
    let pm = vec![0f32; n as usize];
    let ps = vec![0.1f32; n as usize];
    let mut h = Header::new(5);
    h.tensors = vec![
        TensorInfo { name: "r".into(), shape: vec![3], dtype: Dtype::F64, prior: None },
        TensorInfo {
            name: "w".into(),
            shape: vec![n],
            dtype: Dtype::F32,
            prior: Some(Prior { mean: PriorValue::Scalar(0.0), std: PriorValue::Elements }),
        },
    ];
    h.groups = 3;
    let opts = Options { bits: Some(6), ..Options::default() };
    let groups: Vec<Group> = (0..3)
        .map(|g| Group { id: g, seed: 5, start: g as u64 * 10, count: 10, rule: Rule::Fixed { size: 3 } })
        .collect();
    let tensors = h.tensors.clone();
    let mut w = Writer::new(Vec::new(), &h, &tensors).unwrap();
    let mut want = vec![0f32; n as usize];
    for &g in &[2usize, 0, 1] {
        let gr = &groups[g];
        let r = gr.start as usize..(gr.start + gr.count) as usize;
        let out = encode_group(
            gr,
            gr.id,
            &qm[r.clone()],
            &qs[r.clone()],
            &pm[r.clone()],
            &ps[r.clone()],
            &[],
            5,
            Method::Pfr,
            &opts,
            None,
        )
        .unwrap();
        let (m, vals) = (out.messages, out.values);
        let std_bytes: Vec<u8> = ps[r.clone()].iter().flat_map(|x| x.to_le_bytes()).collect();
        w.data(Role::PriorStd, 1, gr.start, &std_bytes).unwrap();
        w.layout(gr).unwrap();
        w.messages(&m, gr.start, &vals).unwrap();
        want[r].copy_from_slice(&vals);
    }
    let raw: Vec<u8> = [1.0f64, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    w.data(Role::Raw, 0, 0, &raw).unwrap();
    let (bytes, _, _) = w.finish().unwrap();
    let r = Reader::from_bytes(bytes.clone(), Limits::default()).unwrap();
    let d = r.decode_all().unwrap();
    assert_eq!(d.coded, want);
    // Lazily from disk, tensor by tensor.
    let path = std::env::temp_dir().join(format!("relcode-stream-{}.relc", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let lazy = Reader::open(Box::new(FileSource::open(&path).unwrap()), Limits::default(), false).unwrap();
    let w_bytes = lazy.decode_tensor(1).unwrap();
    assert_eq!(w_bytes, want.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
    assert_eq!(lazy.decode_tensor(0).unwrap(), raw);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn digest_builder_refuses_missing_values() {
    let (qm, qs) = posterior(10, 0);
    let mut h = Header::new(0);
    h.tensors = vec![TensorInfo {
        name: "w".into(),
        shape: vec![10],
        dtype: Dtype::F32,
        prior: Some(Prior { mean: PriorValue::Scalar(0.0), std: PriorValue::Scalar(0.1) }),
    }];
    h.groups = 1;
    let g = Group { id: 0, seed: 0, start: 0, count: 10, rule: Rule::Fixed { size: 5 } };
    let t = h.tensors.clone();
    let mut w = Writer::new(Vec::new(), &h, &t).unwrap();
    w.layout(&g).unwrap();
    let opts = Options { bits: Some(4), ..Options::default() };
    let out =
        encode_group(&g, 0, &qm, &qs, &[0.0; 10], &[0.1; 10], &[], 0, Method::Mrc, &opts, None).unwrap();
    let (m, vals) = (out.messages, out.values);
    w.messages(&m, 0, &vals[..5]).unwrap();
    assert!(matches!(w.finish(), Err(FormatError::InvalidInput(_))));
}

fn small() -> Vec<u8> {
    let (qm, qs) = posterior(20, 9);
    encode(Vec::new(), &input(&qm, &qs, Method::Pfr, None, LayoutRule::Kl { max_block_size: 3 })).unwrap().0
}

/// Recomputes the CRC of the chunk at `at`.
fn fix_crc(b: &mut [u8], at: usize) {
    let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
    let crc = relcode::format::crc32c(&[&b[at..at + 12], &b[at + 16..at + 16 + len]]);
    b[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn error_message_malformed_code_word() {
    // Exact pfr: Elias-delta indices. Zero the message bits of the first group: a code word
    // of only zeros is malformed (an unterminated prefix).
    let mut b = small();
    let r = Reader::from_bytes(b.clone(), Limits::default()).unwrap();
    let f = *r.frames().iter().find(|f| &f.kind == b"MSGS").unwrap();
    let at = f.offset as usize;
    let optlen = u16::from_le_bytes(b[at + 16 + 6..at + 16 + 8].try_into().unwrap()) as usize;
    let bits_at = at + 16 + 8 + optlen + 12;
    for x in &mut b[bits_at..f.end() as usize] {
        *x = 0;
    }
    fix_crc(&mut b, at);
    let e = Reader::from_bytes(b, Limits::default()).and_then(|r| r.decode_all()).unwrap_err();
    assert!(matches!(e, FormatError::Message { .. }), "{e}");
    assert_eq!(e.class().name(), "FormatError");
}

#[test]
fn error_io_and_invalid_input_and_encode() {
    let e = FileSource::open(std::path::Path::new("/nonexistent/relcode.relc")).err().unwrap();
    assert!(matches!(e, FormatError::Io(_)));
    assert_eq!(e.class().name(), "OSError");
    let (qm, mut qs) = posterior(8, 1);
    let mut inp = input(&qm, &qs, Method::Mrc, Some(0), LayoutRule::Fixed { block_size: None });
    let e = encode(Vec::new(), &inp).unwrap_err();
    assert!(matches!(e, FormatError::InvalidInput(_)), "bits=0 sends nothing: {e}");
    inp.options.bits = Some(4);
    inp.chunk_size = 0;
    assert!(matches!(encode(Vec::new(), &inp).unwrap_err(), FormatError::InvalidInput(_)));
    // Exact pfr refuses a posterior wider than its prior: the channel layer's error.
    qs[3] = 0.5;
    let inp = input(&qm, &qs, Method::Pfr, None, LayoutRule::Fixed { block_size: Some(2) });
    let e = encode(Vec::new(), &inp).unwrap_err();
    assert!(matches!(e, FormatError::InvalidInput(_)), "{e}");
    assert_eq!(e.class().name(), "InputError");
}

#[test]
fn base_errors() {
    let b = small();
    let r = Reader::from_bytes(b.clone(), Limits::default()).unwrap();
    // A file without a base refuses one.
    let mut r2 = Reader::from_bytes(b, Limits::default()).unwrap();
    assert!(matches!(r2.attach_base(Arc::new(r)), Err(FormatError::InvalidInput(_))));
}

#[test]
fn limits_are_enforced_before_allocating() {
    let b = small();
    let tight = Limits { max_elements: 5, ..Limits::default() };
    assert!(matches!(Reader::from_bytes(b.clone(), tight), Err(FormatError::Limit(_))));
    let tight = Limits { max_header_bytes: 10, ..Limits::default() };
    assert!(matches!(Reader::from_bytes(b.clone(), tight), Err(FormatError::Limit(_))));
    let tight = Limits { max_group_elements: 3, ..Limits::default() };
    assert!(matches!(Reader::from_bytes(b, tight), Err(FormatError::Limit(_))));
}

#[test]
fn messages_that_do_not_fit_their_code_are_refused_by_the_writer() {
    let m = Messages {
        group: 0,
        method: Method::Mrc,
        options: Options { bits: Some(4), ..Options::default() },
        messages: vec![Message::new(16)],
    };
    assert!(matches!(relcode::coding::messages::messages_payload(&m), Err(FormatError::InvalidInput(_))));
}

#[test]
fn cancelled_group_stops_and_uncancelled_is_unchanged() {
    use relcode::coding::encode::encode_group_cancellable;
    use std::sync::atomic::AtomicBool;
    let (qm, qs) = posterior(40, 3);
    let g = Group { id: 0, seed: 0, start: 0, count: 40, rule: Rule::Fixed { size: 5 } };
    let opts = Options { bits: Some(4), ..Options::default() };
    let (pm, ps) = ([0.0f32; 40], [0.1f32; 40]);
    let want = encode_group(&g, 0, &qm, &qs, &pm, &ps, &[], 7, Method::Mrc, &opts, None).unwrap();
    let off = AtomicBool::new(false);
    let got =
        encode_group_cancellable(&g, 0, &qm, &qs, &pm, &ps, &[], 7, Method::Mrc, &opts, None, &off).unwrap();
    assert_eq!(got.messages, want.messages);
    assert_eq!(got.values, want.values);
    let on = AtomicBool::new(true);
    let e = encode_group_cancellable(&g, 0, &qm, &qs, &pm, &ps, &[], 7, Method::Mrc, &opts, None, &on);
    assert!(matches!(e, Err(FormatError::Cancelled)));
    assert_eq!(FormatError::Cancelled.class().name(), "CancelledError");
}

//! The messages of a group (spec/format.md, MSGS): the method, the decode-relevant options
//! and one message per block, read and written with the method's codes. The container's
//! framing of a MSGS payload (group id, method byte, options bytes, bit count) is
//! [`crate::format::chunk`]'s; what the bytes mean is this module's.

use crate::channel::{self, Message, Method, Options, Split};
use crate::codes::{BitReader, BitWriter, IndexCode};
use crate::format::chunk::{self, oom, MSGS};
use crate::format::msgpack::{self, ReadLimits, Value};
use crate::format::{FormatError, Writer};
use std::io::Write;

/// Whether option `key` applies to `method` with options `opts`.
fn applies(key: &str, m: Method, opts: &Options) -> bool {
    match key {
        "bits" => matches!(m, Method::Mrc | Method::Orc | Method::Pfr),
        "pool" => m.is_fixed_budget(opts),
        "index_code" | "zeta_k" => {
            channel::message_codes(m, opts).iter().any(|(_, c)| !matches!(c, IndexCode::Fixed(_)))
        }
        "depth" => m == Method::DadStar,
        "parallel" => m == Method::GprsParallel,
        "split" => m == Method::GprsBnb,
        _ => false,
    }
}

/// The options map of a MSGS chunk: every decode-relevant option that applies to the method
/// and differs from its default (`bits` and `depth` whenever set).
pub fn options_value(m: Method, o: &Options) -> Value {
    let d = Options::default();
    let mut e: Vec<(&'static str, Value)> = Vec::new();
    if let (Some(b), true) = (o.bits, applies("bits", m, o)) {
        e.push(("bits", Value::UInt(b as u64)));
    }
    if applies("index_code", m, o) {
        if let IndexCode::Zeta(k) = o.index_code {
            e.push(("index_code", Value::Str("zeta".into())));
            e.push(("zeta_k", Value::UInt(k as u64)));
        }
    }
    if let (Some(dep), true) = (o.depth, applies("depth", m, o)) {
        e.push(("depth", Value::UInt(dep as u64)));
    }
    if o.parallel != d.parallel && applies("parallel", m, o) {
        e.push(("parallel", Value::UInt(o.parallel as u64)));
    }
    if o.split != d.split && applies("split", m, o) {
        e.push(("split", Value::Str("dyadic".into())));
    }
    if o.pool && applies("pool", m, o) {
        e.push(("pool", Value::Bool(true)));
    }
    Value::map(e)
}

/// Options from a MSGS options map. Unknown keys need a newer reader; known keys that do
/// not apply to the method, or that a writer would not have written, are malformed.
pub fn parse_options(m: Method, v: &Value) -> Result<Options, FormatError> {
    let bad = |s: String| FormatError::Malformed(format!("{m} options: {s}"));
    let entries = v.as_map().ok_or_else(|| bad("the options are not a map".into()))?;
    let mut o = Options::default();
    let uint =
        |x: &Value, k: &str| x.as_u64().ok_or_else(|| bad(format!("{k} must be a non-negative integer")));
    let mut code: Option<String> = None;
    let mut zeta: Option<u64> = None;
    for (k, x) in entries {
        let k = k.as_str().ok_or_else(|| bad("option names must be strings".into()))?;
        match k {
            "bits" => o.bits = Some(uint(x, k)?.min(u32::MAX as u64) as u32),
            "depth" => o.depth = Some(uint(x, k)?.min(u32::MAX as u64) as u32),
            "parallel" => o.parallel = uint(x, k)?.min(u32::MAX as u64) as u32,
            "zeta_k" => zeta = Some(uint(x, k)?),
            "index_code" => {
                code = Some(x.as_str().ok_or_else(|| bad("index_code must be a string".into()))?.into())
            }
            "split" => {
                o.split = match x.as_str() {
                    Some("sample") => Split::Sample,
                    Some("dyadic") => Split::Dyadic,
                    _ => return Err(bad("split must be \"sample\" or \"dyadic\"".into())),
                }
            }
            "pool" => match x {
                Value::Bool(b) => o.pool = *b,
                _ => return Err(bad("pool must be a bool".into())),
            },
            other => return Err(FormatError::Unsupported(format!("option {other:?} of {m} is not known"))),
        }
    }
    o.index_code = match (code.as_deref(), zeta) {
        (None | Some("elias_delta"), None) => IndexCode::EliasDelta,
        (Some("zeta"), Some(k)) if (1..=32).contains(&k) => IndexCode::Zeta(k as u8),
        (Some("zeta"), _) => return Err(bad("index_code \"zeta\" needs zeta_k in 1..=32".into())),
        (Some("elias_delta") | None, _) => return Err(bad("zeta_k needs index_code \"zeta\"".into())),
        (Some(c), _) => return Err(FormatError::Unsupported(format!("index code {c:?} is not known"))),
    };
    for (k, _) in entries {
        let k = k.as_str().unwrap();
        if !applies(k, m, &o) {
            return Err(bad(format!("option {k:?} does not apply")));
        }
    }
    if matches!(m, Method::Mrc | Method::Orc) && o.bits.is_none() {
        return Err(bad("bits is required".into()));
    }
    if m == Method::DadStar && o.depth.is_none() {
        return Err(bad("depth is required".into()));
    }
    // The block dimension is checked per block by the reader; here only the options.
    channel::validate(m, &o, 1).or_else(|e| match e {
        channel::ChannelError::Unsupported(_) => Ok(()),
        e => Err(bad(e.to_string())),
    })?;
    Ok(o)
}

/// The shortest message of a method with these options, in bits.
pub fn min_message_bits(m: Method, o: &Options) -> u32 {
    channel::message_codes(m, o)
        .iter()
        .map(|(_, code)| match code {
            IndexCode::Fixed(b) => *b as u32,
            _ => 1,
        })
        .sum()
}

/// The messages of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Messages {
    /// The group id: in a MSGS chunk, a layout group id (`0 .. groups`); the messages of
    /// instance i of a file with instances, before the writer merges them into their
    /// group's chunk, carry the stream group `i · groups + g`.
    pub group: u32,
    /// The channel method that coded every message of the group.
    pub method: Method,
    /// The options every message of the group was coded with (only the decode-relevant
    /// ones that differ from the defaults are written: [`options_value`]).
    pub options: Options,
    /// One message per block, in block order (with instances: instance 0's blocks, then
    /// instance 1's, and so on).
    pub messages: Vec<Message>,
}

/// Encodes a MSGS payload; fails if a message cannot be written with the method's codes.
pub fn messages_payload(m: &Messages) -> Result<Vec<u8>, FormatError> {
    let opts = msgpack::encode(&options_value(m.method, &m.options));
    let mut w = BitWriter::new();
    for (j, msg) in m.messages.iter().enumerate() {
        channel::write_message(m.method, &m.options, msg, &mut w)
            .map_err(|e| FormatError::InvalidInput(format!("group {} block {j}: {e}", m.group)))?;
    }
    let nbits = w.bit_len();
    let bits = w.finish();
    Ok(chunk::msgs_payload(m.group, m.method.id(), &opts, m.messages.len() as u32, nbits, &bits))
}

/// Parses a MSGS payload and reads every message; `max_depth` bounds the nesting of the
/// options map. The message count is checked against the bits present, not against the
/// group's block count (the caller does that). Errors: `Unsupported` for an unknown method
/// id, option or index code, `Reserved` for a non-zero reserved byte or padding bit,
/// `Message` for a message that cannot be read, `Malformed` otherwise.
pub fn parse_messages(payload: &[u8], max_depth: usize) -> Result<Messages, FormatError> {
    let head = chunk::parse_msgs_head(payload)?;
    let (group, mid) = (head.group, head.method);
    let method = Method::from_id(mid)
        .ok_or_else(|| FormatError::Unsupported(format!("method id {mid} is not known")))?;
    let ov = msgpack::decode(head.options, ReadLimits { max_depth })?;
    let options = parse_options(method, &ov)?;
    let chunk::MsgsBits { blocks, nbits, bits } = chunk::parse_msgs_bits(&head)?;
    // Every message takes at least one bit (files never hold zero-width messages), so the
    // message count is bounded by the bits present before anything is allocated.
    let min_bits = min_message_bits(method, &options);
    if min_bits == 0 {
        return Err(FormatError::Malformed(format!("group {group}: {method} messages would have zero bits")));
    }
    if blocks as u64 > nbits / min_bits as u64 {
        return Err(FormatError::Malformed(format!(
            "group {group}: {blocks} messages cannot fit in {nbits} bits"
        )));
    }
    let mut r = BitReader::new(bits, nbits);
    // 16 bytes per message of at least one bit: allocated fallibly
    let mut messages = Vec::new();
    messages.try_reserve_exact(blocks as usize).map_err(|_| oom("messages", blocks))?;
    let codes = channel::message_codes(method, &options);
    for j in 0..blocks {
        let msg = channel::read_message_with(&codes, &mut r).map_err(|e| FormatError::Message {
            group,
            block: j as u64,
            why: e.to_string(),
        })?;
        messages.push(msg);
    }
    if r.position() != nbits {
        return Err(FormatError::Malformed(format!(
            "group {group}: {} bits after the last message",
            nbits - r.position()
        )));
    }
    Ok(Messages { group, method, options, messages })
}

impl<W: Write> Writer<W> {
    /// The MSGS chunk of a group, with the group's decoded values (for the digests) and the
    /// coded-vector start of the group.
    pub fn messages(&mut self, m: &Messages, start: u64, values: &[f32]) -> Result<(), FormatError> {
        let payload = messages_payload(m)?;
        self.hash_coded(start, values)?;
        self.chunk(MSGS, 0, &payload)
    }
}

//! The HEAD chunk: a MessagePack map with what a decoder needs and nothing only the encoder
//! needs (spec/format.md, section 5). Tensors are listed sorted by name, so the bytes never
//! depend on the order a caller supplied them in.

use super::msgpack::{self, ReadLimits, Value};
use super::{FormatError, Limits, CHANNEL_VERSION};
use crate::stream::STREAM_VERSION;

/// Element types. Coded tensors are float32; raw tensors may be any of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE-754 binary16 (`float16`), 2 bytes.
    F16,
    /// IEEE-754 binary32 (`float32`), 4 bytes: the only dtype of coded tensors.
    F32,
    /// IEEE-754 binary64 (`float64`), 8 bytes.
    F64,
    /// Signed 8-bit integer (`int8`).
    I8,
    /// Signed 16-bit integer (`int16`), 2 bytes.
    I16,
    /// Signed 32-bit integer (`int32`), 4 bytes.
    I32,
    /// Signed 64-bit integer (`int64`), 8 bytes.
    I64,
    /// Unsigned 8-bit integer (`uint8`).
    U8,
    /// Boolean (`bool`): one byte, 0 or 1 (readers refuse any other byte).
    Bool,
}

impl Dtype {
    /// Every dtype of format version 1.0, in the order of the header table.
    pub const ALL: [Dtype; 9] = [
        Dtype::F16,
        Dtype::F32,
        Dtype::F64,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::U8,
        Dtype::Bool,
    ];

    /// The name files use (numpy's names).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::Bool => "bool",
        }
    }

    /// The dtype a file names `name` (see [`Dtype::name`]); `None` for an unknown name,
    /// which readers refuse as a `VersionError`.
    pub fn parse(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
            Dtype::F16 | Dtype::I16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
}

/// One prior parameter of a coded tensor: one float32 for the whole tensor, or one per
/// element (stored in DATA chunks).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PriorValue {
    /// One value for every element, stored in the header as a MessagePack float 32 (its
    /// exact bits); means must be finite, stds finite and positive.
    Scalar(f32),
    /// One float32 per element, in DATA chunks of role prior mean or prior std (the header
    /// holds the string `"elements"`).
    Elements,
}

/// The coding distribution of a coded tensor: N(mean, std²) per element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prior {
    /// The prior mean (header key `prior_mean`).
    pub mean: PriorValue,
    /// The prior standard deviation (header key `prior_std`).
    pub std: PriorValue,
}

/// A tensor: coded (it has a prior) or raw (stored verbatim).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name: 1 byte to `Limits::max_name_bytes` (4096 by default) of UTF-8,
    /// unique in the file (tensors are sorted by the bytes of their names).
    pub name: String,
    /// The dimensions, row-major (`[]` for a 0-d tensor; zero dimensions allowed).
    pub shape: Vec<u64>,
    /// The element type; always [`Dtype::F32`] for a coded tensor.
    pub dtype: Dtype,
    /// The prior of a coded tensor; `None` for a raw tensor.
    pub prior: Option<Prior>,
}

impl TensorInfo {
    /// Whether the tensor is coded (sent as messages) rather than raw: whether it has a
    /// prior.
    pub fn coded(&self) -> bool {
        self.prior.is_some()
    }

    /// Number of elements (the header parser has checked that it does not overflow).
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// What the trailing digests cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestMode {
    /// One SHA-256 per decoded tensor, in header order.
    Tensor,
    /// One SHA-256 of all decoded tensors' bytes, concatenated in header order.
    All,
}

impl DigestMode {
    /// The name the header records: `"tensor"` or `"all"`.
    pub fn name(self) -> &'static str {
        match self {
            DigestMode::Tensor => "tensor",
            DigestMode::All => "all",
        }
    }

    /// The mode a header names `s`; `None` for an unknown name, which readers refuse as a
    /// `VersionError`.
    pub fn parse(s: &str) -> Option<DigestMode> {
        match s {
            "tensor" => Some(DigestMode::Tensor),
            "all" => Some(DigestMode::All),
            _ => None,
        }
    }
}

/// The header of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Root seed of the file's messages.
    pub seed: u64,
    /// Stream version (spec/stream.md).
    pub stream: u64,
    /// Channel version (spec/channel.md).
    pub channel: u64,
    /// What the index's digests cover.
    pub digest: DigestMode,
    /// Whether the file holds one MSGS chunk per group (false: a base file of priors and layout).
    pub messages: bool,
    /// SHA-256 of the base file that supplies tensors, priors and layout.
    pub base: Option<[u8; 32]>,
    /// Tensors, sorted by name (empty when `base` is set).
    pub tensors: Vec<TensorInfo>,
    /// Number of layout groups (0 when `base` is set).
    pub groups: u64,
    /// With a base: the number of instances of the base's coded tensors the file holds
    /// (COMBINER: one per image patch); its coded tensors decode stacked, shape (K, ...).
    pub instances: Option<u64>,
    /// Free-form metadata (a map, by convention).
    pub meta: Option<Value>,
}

impl Header {
    /// A header with the current stream and channel versions and no tensors.
    pub fn new(seed: u64) -> Header {
        Header {
            seed,
            stream: STREAM_VERSION as u64,
            channel: CHANNEL_VERSION,
            digest: DigestMode::Tensor,
            messages: true,
            base: None,
            tensors: Vec::new(),
            groups: 0,
            instances: None,
            meta: None,
        }
    }

    /// The HEAD payload (canonical MessagePack).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m: Vec<(&'static str, Value)> = vec![
            ("channel", Value::UInt(self.channel)),
            ("digest", Value::Str(self.digest.name().into())),
            ("messages", Value::Bool(self.messages)),
            ("seed", Value::UInt(self.seed)),
            ("stream", Value::UInt(self.stream)),
        ];
        if let Some(b) = self.base {
            m.push(("base", Value::Bin(b.to_vec())));
            if let Some(k) = self.instances {
                m.push(("instances", Value::UInt(k)));
            }
        } else {
            m.push(("groups", Value::UInt(self.groups)));
            let ts = self.tensors.iter().map(tensor_value).collect();
            m.push(("tensors", Value::Array(ts)));
        }
        if let Some(meta) = &self.meta {
            m.push(("meta", meta.clone()));
        }
        msgpack::encode(&Value::map(m))
    }

    /// Parses and checks a HEAD payload.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Header, FormatError> {
        if bytes.len() as u64 > limits.max_header_bytes {
            return Err(FormatError::Limit(format!(
                "the header has {} bytes, more than the limit of {}",
                bytes.len(),
                limits.max_header_bytes
            )));
        }
        let v = msgpack::decode(bytes, ReadLimits { max_depth: limits.max_depth as usize })?;
        if v.as_map().is_none() {
            return Err(bad("the header is not a map"));
        }
        for (k, _) in v.as_map().unwrap() {
            if k.as_str().is_none() {
                return Err(bad("header keys must be strings"));
            }
        }
        let uint = |key: &str| -> Result<u64, FormatError> {
            v.get(key)
                .ok_or_else(|| bad(format!("the header has no {key:?}")))?
                .as_u64()
                .ok_or_else(|| bad(format!("header field {key:?} must be a non-negative integer")))
        };
        let stream = uint("stream")?;
        if stream != STREAM_VERSION as u64 {
            return Err(FormatError::UnsupportedSpec { what: "stream", version: stream });
        }
        let channel = uint("channel")?;
        if channel != CHANNEL_VERSION {
            return Err(FormatError::UnsupportedSpec { what: "channel", version: channel });
        }
        let seed = uint("seed")?;
        let digest = match v.get("digest") {
            Some(Value::Str(s)) => DigestMode::parse(s).ok_or_else(|| {
                FormatError::Unsupported(format!("digest mode {s:?} is not known to this build"))
            })?,
            _ => return Err(bad("header field \"digest\" must be \"tensor\" or \"all\"")),
        };
        let messages = match v.get("messages") {
            Some(Value::Bool(b)) => *b,
            _ => return Err(bad("header field \"messages\" must be a bool")),
        };
        let meta = v.get("meta").cloned();
        let base = match v.get("base") {
            None => None,
            Some(Value::Bin(b)) if b.len() == 32 => Some(<[u8; 32]>::try_from(&b[..]).unwrap()),
            Some(_) => return Err(bad("header field \"base\" must be 32 bytes (a SHA-256)")),
        };
        if base.is_some() {
            if v.get("tensors").is_some() || v.get("groups").is_some() {
                return Err(bad("a file with a base takes its tensors and groups from the base"));
            }
            if !messages {
                return Err(bad("a file with a base must hold messages"));
            }
            let instances = match v.get("instances") {
                None => None,
                Some(Value::UInt(k)) if *k >= 1 => Some(*k),
                Some(_) => return Err(bad("header field \"instances\" must be a positive integer")),
            };
            return Ok(Header {
                seed,
                stream,
                channel,
                digest,
                messages,
                base,
                tensors: Vec::new(),
                groups: 0,
                instances,
                meta,
            });
        }
        if v.get("instances").is_some() {
            return Err(bad("only a file with a base holds instances"));
        }
        let groups = uint("groups")?;
        let Some(Value::Array(ts)) = v.get("tensors") else {
            return Err(bad("header field \"tensors\" must be an array"));
        };
        if ts.len() as u64 > limits.max_tensors {
            return Err(FormatError::Limit(format!(
                "the file has {} tensors, more than the limit of {}",
                ts.len(),
                limits.max_tensors
            )));
        }
        let mut tensors = Vec::with_capacity(ts.len());
        let mut total: u64 = 0;
        for t in ts {
            let info = parse_tensor(t, limits)?;
            if let Some(prev) = tensors.last() {
                let prev: &TensorInfo = prev;
                if prev.name.as_bytes() >= info.name.as_bytes() {
                    return Err(bad(format!(
                        "tensor names must be unique and sorted; {:?} follows {:?}",
                        info.name, prev.name
                    )));
                }
            }
            total =
                total.checked_add(info.numel()).filter(|&t| t <= limits.max_elements).ok_or_else(|| {
                    FormatError::Limit(format!(
                        "the tensors have more than {} elements in all (max_elements)",
                        limits.max_elements
                    ))
                })?;
            tensors.push(info);
        }
        let coded = tensors.iter().any(|t| t.coded() && t.numel() > 0);
        if coded == (groups == 0) {
            return Err(bad("a file has layout groups exactly when its coded tensors have elements"));
        }
        Ok(Header { seed, stream, channel, digest, messages, base, tensors, groups, instances: None, meta })
    }
}

fn bad(msg: impl Into<String>) -> FormatError {
    FormatError::Malformed(msg.into())
}

fn prior_value(p: PriorValue) -> Value {
    match p {
        PriorValue::Scalar(x) => Value::F32(x),
        PriorValue::Elements => Value::Str("elements".into()),
    }
}

fn tensor_value(t: &TensorInfo) -> Value {
    let mut m = vec![
        ("name", Value::Str(t.name.clone())),
        ("shape", Value::Array(t.shape.iter().map(|&s| Value::UInt(s)).collect())),
        ("dtype", Value::Str(t.dtype.name().into())),
        ("coded", Value::Bool(t.coded())),
    ];
    if let Some(p) = t.prior {
        m.push(("prior_mean", prior_value(p.mean)));
        m.push(("prior_std", prior_value(p.std)));
    }
    Value::map(m)
}

fn parse_prior(v: Option<&Value>, what: &str, name: &str) -> Result<PriorValue, FormatError> {
    match v {
        Some(Value::F32(x)) => {
            let ok = if what == "prior_std" { x.is_finite() && *x > 0.0 } else { x.is_finite() };
            if !ok {
                return Err(bad(format!("tensor {name:?}: {what} {x} is not a valid prior parameter")));
            }
            Ok(PriorValue::Scalar(*x))
        }
        Some(Value::Str(s)) if s == "elements" => Ok(PriorValue::Elements),
        _ => Err(bad(format!("tensor {name:?}: {what} must be a float32 or \"elements\""))),
    }
}

fn parse_tensor(v: &Value, limits: &Limits) -> Result<TensorInfo, FormatError> {
    if v.as_map().is_none() {
        return Err(bad("each tensor must be a map"));
    }
    let name = match v.get("name") {
        Some(Value::Str(s)) => s.clone(),
        _ => return Err(bad("a tensor has no name")),
    };
    if name.is_empty() || name.len() as u64 > limits.max_name_bytes {
        return Err(FormatError::Limit(format!(
            "tensor names must have 1 to {} bytes, got {}",
            limits.max_name_bytes,
            name.len()
        )));
    }
    let Some(Value::Array(dims)) = v.get("shape") else {
        return Err(bad(format!("tensor {name:?}: shape must be an array")));
    };
    if dims.len() as u64 > limits.max_rank {
        return Err(FormatError::Limit(format!(
            "tensor {name:?} has {} dimensions, more than the limit of {}",
            dims.len(),
            limits.max_rank
        )));
    }
    let mut shape = Vec::with_capacity(dims.len());
    let mut numel: u64 = 1;
    for d in dims {
        let d = d.as_u64().ok_or_else(|| bad(format!("tensor {name:?}: dimensions must be integers")))?;
        numel = numel.checked_mul(d).filter(|&n| n <= limits.max_elements).ok_or_else(|| {
            FormatError::Limit(format!(
                "tensor {name:?} claims more than {} elements (max_elements)",
                limits.max_elements
            ))
        })?;
        shape.push(d);
    }
    let dtype = match v.get("dtype") {
        Some(Value::Str(s)) => {
            Dtype::parse(s).ok_or_else(|| FormatError::Unsupported(format!("dtype {s:?} is not known")))?
        }
        _ => return Err(bad(format!("tensor {name:?}: dtype must be a string"))),
    };
    let coded = match v.get("coded") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(bad(format!("tensor {name:?}: coded must be a bool"))),
    };
    let prior = if coded {
        if dtype != Dtype::F32 {
            return Err(bad(format!("coded tensor {name:?} must be float32")));
        }
        Some(Prior {
            mean: parse_prior(v.get("prior_mean"), "prior_mean", &name)?,
            std: parse_prior(v.get("prior_std"), "prior_std", &name)?,
        })
    } else {
        if v.get("prior_mean").is_some() || v.get("prior_std").is_some() {
            return Err(bad(format!("raw tensor {name:?} has a prior")));
        }
        None
    };
    Ok(TensorInfo { name, shape, dtype, prior })
}

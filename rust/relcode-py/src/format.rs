#![allow(clippy::type_complexity)] // pyo3 returns tuples of arrays
//! Bindings of `relcode::format` and `relcode::coding`: the in-memory encoder, the assembler used by the
//! progressive encoders, layout helpers and a reader object. The Python module
//! `relcode.format` wraps these; nothing here is public API.

use crate::channel::{method, options};
use crate::errors::{error, input_error};
use crate::pool;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};
use relcode::channel::{Message, Options};
use relcode::coding::encode::{self as fenc, PriorArg};
use relcode::coding::{self, layout as flay, EncodeInput, LayoutRule, Messages, TensorInput, TensorSource};
use relcode::format::chunk::Role;
use relcode::format::layout::{Group, Rule};
use relcode::format::msgpack::Value;
use relcode::format::read::FileSource;
use relcode::format::{
    try_zeroed, DigestMode, Dtype, FormatError, Header, Limits, Prior, PriorValue, Reader, TensorInfo,
};
use std::sync::Arc;

fn ferr(py: Python<'_>, e: &FormatError) -> PyErr {
    match crate::errors::Exc::of_format(e) {
        Some(exc) => error(py, exc, e.to_string()),
        None => pyo3::exceptions::PyOSError::new_err(e.to_string()),
    }
}

fn ferr0(e: FormatError) -> PyErr {
    Python::attach(|py| ferr(py, &e))
}

// ---------------------------------------------------------------------------------------
// MessagePack values <-> Python objects (metadata)

fn to_value(o: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > 24 {
        return Err(input_error("metadata is nested too deeply"));
    }
    if o.is_none() {
        return Ok(Value::Nil);
    }
    if o.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(o.extract()?));
    }
    if let Ok(s) = o.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_string()));
    }
    if let Ok(b) = o.cast::<PyBytes>() {
        return Ok(Value::Bin(b.as_bytes().to_vec()));
    }
    if let Ok(d) = o.cast::<PyDict>() {
        let mut m = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            m.push((to_value(&k, depth + 1)?, to_value(&v, depth + 1)?));
        }
        return Ok(Value::Map(m));
    }
    if let Ok(l) = o.cast::<PyList>() {
        return Ok(Value::Array(l.iter().map(|x| to_value(&x, depth + 1)).collect::<PyResult<_>>()?));
    }
    if let Ok(t) = o.cast::<PyTuple>() {
        return Ok(Value::Array(t.iter().map(|x| to_value(&x, depth + 1)).collect::<PyResult<_>>()?));
    }
    if o.is_instance_of::<PyFloat>() {
        return Ok(Value::F64(o.extract()?));
    }
    if let Ok(v) = o.extract::<u64>() {
        return Ok(Value::UInt(v));
    }
    if let Ok(v) = o.extract::<i64>() {
        return Ok(Value::Int(v));
    }
    if o.hasattr("dtype")? && o.getattr("dtype")?.str()?.to_str()? == "float32" {
        let v: f64 = o.call_method0("__float__")?.extract()?;
        return Ok(Value::F32(v as f32));
    }
    if let Ok(v) = o.call_method0("__float__").and_then(|f| f.extract::<f64>()) {
        return Ok(Value::F64(v));
    }
    Err(input_error(format!(
        "metadata values must be None, bool, int, float, str, bytes, lists or dicts, not {}",
        o.get_type().name()?
    )))
}

fn from_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Nil => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::UInt(x) => x.into_pyobject(py)?.into_any(),
        Value::Int(x) => x.into_pyobject(py)?.into_any(),
        Value::F32(x) => (*x as f64).into_pyobject(py)?.into_any(),
        Value::F64(x) => x.into_pyobject(py)?.into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bin(b) => PyBytes::new(py, b).into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(from_value(py, x)?)?;
            }
            l.into_any()
        }
        Value::Map(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                let k = from_value(py, k)?;
                // unhashable keys (lists, maps) become their repr
                let k = if k.hash().is_ok() { k } else { k.repr()?.into_any() };
                d.set_item(k, from_value(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn meta_arg(meta: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Value>> {
    match meta {
        None => Ok(None),
        Some(m) if m.is_none() => Ok(None),
        Some(m) => Ok(Some(to_value(m, 0)?)),
    }
}

fn digest_mode(s: &str) -> PyResult<DigestMode> {
    DigestMode::parse(s).ok_or_else(|| input_error(format!("digest must be 'tensor' or 'all', got {s:?}")))
}

fn dtype(s: &str) -> PyResult<Dtype> {
    Dtype::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Dtype::ALL.iter().map(|d| d.name()).collect();
        input_error(format!("dtype {s:?} cannot be stored; use one of {}", names.join(", ")))
    })
}

fn hexs(d: &[[u8; 32]]) -> Vec<String> {
    d.iter().map(|x| relcode::format::hex(x)).collect()
}

// ---------------------------------------------------------------------------------------
// Encoding

type CodedArg<'py> = (
    String,
    Vec<u64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray1<'py, f32>,
);
type RawArg<'py> = (String, Vec<u64>, String, PyReadonlyArray1<'py, u8>);

fn prior_arg<'a>(a: &'a [f32]) -> PriorArg<'a> {
    if a.len() == 1 {
        PriorArg::Scalar(a[0])
    } else {
        PriorArg::Elements(a)
    }
}

/// Encodes coded and raw tensors into file bytes; returns (bytes, report dict).
#[pyfunction]
#[pyo3(signature = (coded, raw, seed, method_name, bits_per_block, layout, block_size, max_block_size, chunk_size, digest, meta=None, threads=None, max_excess=None, cancel=None, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn format_encode<'py>(
    py: Python<'py>,
    coded: Vec<CodedArg<'py>>,
    raw: Vec<RawArg<'py>>,
    seed: u64,
    method_name: &str,
    bits_per_block: f64,
    layout: &str,
    block_size: Option<u32>,
    max_block_size: u32,
    chunk_size: u64,
    digest: &str,
    meta: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    max_excess: Option<f64>,
    cancel: Option<Bound<'py, CancelFlag>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyDict>)> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        let rule = match layout {
            "fixed" => LayoutRule::Fixed { block_size },
            "kl" => LayoutRule::Kl { max_block_size },
            other => return Err(input_error(format!("layout must be 'kl' or 'fixed', got {other:?}"))),
        };
        let meta = meta_arg(meta)?;
        let mut tensors = Vec::new();
        let cs: Vec<_> = coded
            .iter()
            .map(|(n, s, a, b, c, d)| Ok((n, s, a.as_slice()?, b.as_slice()?, c.as_slice()?, d.as_slice()?)))
            .collect::<PyResult<_>>()
            .map_err(|_: PyErr| input_error("arrays must be contiguous"))?;
        for (name, shape, qm, qs, pm, ps) in &cs {
            tensors.push(TensorInput {
                name: name.to_string(),
                shape: shape.to_vec(),
                source: TensorSource::Coded {
                    q_mean: qm,
                    q_std: qs,
                    p_mean: prior_arg(pm),
                    p_std: prior_arg(ps),
                },
            });
        }
        let rs: Vec<_> = raw
            .iter()
            .map(|(n, s, d, b)| {
                Ok((n, s, dtype(d)?, b.as_slice().map_err(|_| input_error("raw data must be contiguous"))?))
            })
            .collect::<PyResult<_>>()?;
        for (name, shape, dt, bytes) in &rs {
            tensors.push(TensorInput {
                name: name.to_string(),
                shape: shape.to_vec(),
                source: TensorSource::Raw { dtype: *dt, bytes },
            });
        }
        let input = EncodeInput {
            tensors,
            seed,
            method: m,
            options: opts,
            bits_per_block,
            layout: rule,
            chunk_size,
            digest: digest_mode(digest)?,
            meta,
            max_excess,
        };
        let flag = CancelFlag::of(cancel);
        let res = pool::run(py, threads, || fenc::encode_cancellable(Vec::new(), &input, &flag))?;
        let (bytes, rep) = res.map_err(|e| ferr(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("names", rep.header.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>())?;
        d.set_item("groups", rep.groups)?;
        d.set_item("blocks", rep.blocks)?;
        d.set_item("bits", rep.bits)?;
        d.set_item("bytes", rep.bytes)?;
        d.set_item("steps", rep.steps)?;
        d.set_item("kl", rep.kl)?;
        let rate = PyList::empty(py);
        for (t, r) in rep.header.tensors.iter().zip(&rep.rate) {
            if t.coded() {
                rate.append(rate_dict(py, r)?)?;
            } else {
                rate.append(py.None())?;
            }
        }
        d.set_item("rate", rate)?;
        d.set_item("digests", hexs(&rep.digests))?;
        d.set_item("coded", PyArray1::from_vec(py, rep.coded))?;
        Ok((PyBytes::new(py, &bytes), d))
    })
}

/// A tensor's rate accounting as a dict (the keys of `relcode.format.Report.rate`).
fn rate_dict<'py>(py: Python<'py>, r: &fenc::TensorRate) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kl_bits", r.kl_bits)?;
    d.set_item("message_bits", r.message_bits)?;
    d.set_item("blocks", r.blocks)?;
    d.set_item("over_budget_blocks", r.over_budget_blocks)?;
    d.set_item("worst_excess_bits", r.worst_excess_bits)?;
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// Layouts

/// The seeded permutation of `0..n` of group `group`.
#[pyfunction]
fn layout_permutation(py: Python<'_>, seed: u64, group: u32, n: u64) -> PyResult<Bound<'_, PyArray1<u32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        if n > Limits::default().max_group_elements {
            return Err(input_error(format!(
                "groups have at most {} elements",
                Limits::default().max_group_elements
            )));
        }
        let p = py.detach(|| flay::permutation(seed, group, n as u32));
        Ok(PyArray1::from_vec(py, p))
    })
}

/// KL-greedy block sizes of elements with these KLs (bits), in order.
#[pyfunction]
fn layout_kl_sizes<'py>(
    py: Python<'py>,
    kl: PyReadonlyArray1<'py, f64>,
    budget: f64,
    max_size: u32,
) -> PyResult<Bound<'py, PyArray1<u16>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let kl = kl.as_slice().map_err(|_| input_error("kl must be contiguous"))?;
        Ok(PyArray1::from_vec(py, flay::kl_greedy_sizes(kl.iter().copied(), budget, max_size)))
    })
}

type GroupArg<'py> =
    (u32, String, u64, u64, u64, u32, Option<PyReadonlyArray1<'py, u16>>, Option<PyReadonlyArray1<'py, u32>>);

fn group_of(g: &GroupArg<'_>) -> PyResult<Group> {
    let (id, rule, seed, start, count, size, sizes, members) = g;
    let sz = || -> PyResult<Vec<u16>> {
        Ok(sizes.as_ref().ok_or_else(|| input_error("sizes are missing"))?.as_slice()?.to_vec())
    };
    let rule = match rule.as_str() {
        "fixed" => Rule::Fixed { size: *size },
        "sizes" => Rule::Sizes { sizes: sz()? },
        "explicit" => Rule::Explicit {
            sizes: sz()?,
            members: members.as_ref().ok_or_else(|| input_error("members are missing"))?.as_slice()?.to_vec(),
        },
        r => return Err(input_error(format!("unknown layout rule {r:?}"))),
    };
    Ok(Group { id: *id, seed: *seed, start: *start, count: *count, rule })
}

fn group_dict<'py>(py: Python<'py>, g: &Group) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", g.id)?;
    d.set_item("rule", g.rule.name())?;
    d.set_item("seed", g.seed)?;
    d.set_item("start", g.start)?;
    d.set_item("count", g.count)?;
    d.set_item("blocks", g.blocks())?;
    match &g.rule {
        Rule::Fixed { size } => d.set_item("block_size", size)?,
        Rule::Sizes { sizes } => d.set_item("sizes", PyArray1::from_slice(py, sizes))?,
        Rule::Explicit { sizes, members } => {
            d.set_item("sizes", PyArray1::from_slice(py, sizes))?;
            d.set_item("members", PyArray1::from_slice(py, members))?;
        }
    }
    Ok(d)
}

/// Checks a layout (groups in order) and returns each group's member order and sizes.
#[pyfunction]
fn layout_check<'py>(py: Python<'py>, groups: Vec<GroupArg<'py>>) -> PyResult<Bound<'py, PyList>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let limits = Limits::default();
        let out = PyList::empty(py);
        let mut at = 0u64;
        for (i, g) in groups.iter().enumerate() {
            let g = group_of(g)?;
            g.validate(&limits).map_err(|e| input_error(e.to_string()))?;
            if g.id as usize != i || g.start != at {
                return Err(input_error("groups must be numbered 0.. and tile the coded vector in order"));
            }
            at += g.count;
            let (order, sizes) = py.detach(|| (flay::order(&g), g.sizes()));
            out.append((PyArray1::from_vec(py, order), PyArray1::from_vec(py, sizes)))?;
        }
        Ok(out)
    })
}

// ---------------------------------------------------------------------------------------
// Assembling files from a caller's layout and messages

type TensorArg = (String, Vec<u64>, String, bool, Option<f32>, Option<f32>);
type MsgArg<'py> = (u32, String, PyReadonlyArray1<'py, u64>, PyReadonlyArray1<'py, u64>, Bound<'py, PyDict>);

/// Writes a file from a layout, priors and messages; decodes the messages to compute the
/// digests. Returns (bytes, digests, coded vector).
#[pyfunction]
#[pyo3(signature = (seed, tensors, groups, raw, elems, messages, has_messages, digest, meta=None, base=None, instances=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn format_assemble<'py>(
    py: Python<'py>,
    seed: u64,
    tensors: Vec<TensorArg>,
    groups: Vec<GroupArg<'py>>,
    raw: Vec<(usize, PyReadonlyArray1<'py, u8>)>,
    elems: Vec<(usize, u8, PyReadonlyArray1<'py, f32>)>,
    messages: Vec<MsgArg<'py>>,
    has_messages: bool,
    digest: &str,
    meta: Option<&Bound<'py, PyAny>>,
    base: Option<PyRef<'py, FormatReader>>,
    instances: Option<u64>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyBytes>, Vec<String>, Bound<'py, PyArray1<f32>>)> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let mut h = Header::new(seed);
        h.instances = instances;
        h.digest = digest_mode(digest)?;
        h.messages = has_messages;
        h.meta = meta_arg(meta)?;
        let base_reader = base.as_ref().map(|b| b.inner.clone());
        if let Some(b) = &base_reader {
            h.base = Some(b.file_sha256().map_err(|e| ferr(py, &e))?);
        } else {
            for (name, shape, dt, coded, pm, ps) in tensors {
                let prior = if coded {
                    let v = |x: Option<f32>| x.map(PriorValue::Scalar).unwrap_or(PriorValue::Elements);
                    Some(Prior { mean: v(pm), std: v(ps) })
                } else {
                    None
                };
                h.tensors.push(TensorInfo { name, shape, dtype: dtype(&dt)?, prior });
            }
            h.groups = groups.len() as u64;
        }
        let gs: Vec<Group> = groups.iter().map(group_of).collect::<PyResult<_>>()?;
        let raw_s: Vec<(usize, &[u8])> =
            raw.iter().map(|(t, a)| Ok((*t, a.as_slice()?))).collect::<PyResult<_>>()?;
        let elem_s: Vec<(usize, Role, &[f32])> = elems
            .iter()
            .map(|(t, r, a)| {
                let role = Role::from_id(*r)
                    .filter(|&r| r != Role::Raw)
                    .ok_or_else(|| input_error("bad prior role"))?;
                Ok((*t, role, a.as_slice()?))
            })
            .collect::<PyResult<_>>()?;
        let mut msgs = Vec::with_capacity(messages.len());
        for (g, mname, index, aux, kw) in &messages {
            let m = method(mname)?;
            let o: Options = options(m, Some(kw))?;
            let (i, a) = (index.as_slice()?, aux.as_slice()?);
            if i.len() != a.len() {
                return Err(input_error("index and aux must have equal lengths"));
            }
            let ms = i.iter().zip(a).map(|(&x, &y)| Message { index: x, aux: y }).collect();
            msgs.push(Messages { group: *g, method: m, options: o, messages: ms });
        }
        let a = fenc::Assembly { header: h, raw: raw_s, elems: elem_s, groups: gs, messages: msgs };
        let res = pool::run(py, threads, || fenc::assemble(Vec::new(), &a, base_reader.as_deref()))?;
        let (bytes, _, digests, coded) = res.map_err(|e| ferr(py, &e))?;
        Ok((PyBytes::new(py, &bytes), hexs(&digests), PyArray1::from_vec(py, coded)))
    })
}

// ---------------------------------------------------------------------------------------
// Reading

/// An opened relcode file.
#[pyclass(module = "relcode._native", name = "FormatReader", frozen)]
pub struct FormatReader {
    inner: Arc<Reader>,
}

/// The reader's limits: the defaults (2^31 elements, and no more than the per-byte policy
/// allows) or, when the caller names `max_elements`, exactly that many.
fn limits_arg(max_elements: Option<u64>) -> Limits {
    match max_elements {
        Some(m) => Limits::with_max_elements(m),
        None => Limits::default(),
    }
}

fn tensor_dict<'py>(py: Python<'py>, t: &TensorInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &t.name)?;
    d.set_item("shape", PyTuple::new(py, &t.shape)?)?;
    d.set_item("dtype", t.dtype.name())?;
    d.set_item("coded", t.coded())?;
    if let Some(p) = t.prior {
        for (k, v) in [("prior_mean", p.mean), ("prior_std", p.std)] {
            match v {
                PriorValue::Scalar(x) => d.set_item(k, x as f64)?,
                PriorValue::Elements => d.set_item(k, "elements")?,
            }
        }
    }
    Ok(d)
}

#[pymethods]
impl FormatReader {
    /// Opens a file from a path (lazily checked unless `eager`) or from bytes (eagerly).
    #[staticmethod]
    #[pyo3(signature = (path=None, data=None, eager=true, max_elements=None))]
    fn open(
        py: Python<'_>,
        path: Option<std::path::PathBuf>,
        data: Option<Vec<u8>>,
        eager: bool,
        max_elements: Option<u64>,
    ) -> PyResult<FormatReader> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let limits = limits_arg(max_elements);
            let r = py.detach(|| -> Result<Reader, FormatError> {
                match (path, data) {
                    (Some(p), None) => Reader::open(Box::new(FileSource::open(&p)?), limits, eager),
                    (None, Some(d)) => Reader::open(Box::new(d), limits, true),
                    _ => Err(FormatError::InvalidInput("give a path or bytes".into())),
                }
            });
            Ok(FormatReader { inner: Arc::new(r.map_err(ferr0)?) })
        })
    }

    /// Opens a file (eagerly checked) and attaches its base (checked by SHA-256).
    #[staticmethod]
    #[pyo3(signature = (base, path=None, data=None, max_elements=None))]
    fn open_with_base(
        py: Python<'_>,
        base: PyRef<'_, FormatReader>,
        path: Option<std::path::PathBuf>,
        data: Option<Vec<u8>>,
        max_elements: Option<u64>,
    ) -> PyResult<FormatReader> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let limits = limits_arg(max_elements);
            let base = base.inner.clone();
            let r = py.detach(move || -> Result<Reader, FormatError> {
                let mut r = match (path, data) {
                    (Some(p), None) => Reader::open(Box::new(FileSource::open(&p)?), limits, true)?,
                    (None, Some(d)) => Reader::open(Box::new(d), limits, true)?,
                    _ => return Err(FormatError::InvalidInput("give a path or bytes".into())),
                };
                r.attach_base(base)?;
                Ok(r)
            });
            Ok(FormatReader { inner: Arc::new(r.map_err(ferr0)?) })
        })
    }

    /// Header fields, version and chunk list (what `inspect` shows).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = &self.inner;
            let h = &r.header;
            let d = PyDict::new(py);
            d.set_item("version", format!("{}.{}", r.version.0, r.version.1))?;
            d.set_item("bytes", r.len())?;
            d.set_item("seed", h.seed)?;
            d.set_item("stream_version", h.stream)?;
            d.set_item("channel_version", h.channel)?;
            d.set_item("digest", h.digest.name())?;
            d.set_item("messages", h.messages)?;
            d.set_item("base", h.base.map(|b| relcode::format::hex(&b)))?;
            d.set_item("base_attached", r.base().is_some())?;
            d.set_item("instances", h.instances)?;
            d.set_item(
                "metadata",
                match &h.meta {
                    Some(v) => from_value(py, v)?,
                    None => py.None().into_bound(py),
                },
            )?;
            d.set_item(
                "base_metadata",
                match r.base().and_then(|b| b.header.meta.clone()) {
                    Some(v) => from_value(py, &v)?,
                    None => py.None().into_bound(py),
                },
            )?;
            d.set_item("digests", hexs(r.digests()))?;
            let chunks = PyList::empty(py);
            for f in r.frames() {
                let c = PyDict::new(py);
                c.set_item("type", String::from_utf8_lossy(&f.kind).into_owned())?;
                c.set_item("offset", f.offset)?;
                c.set_item("length", f.len)?;
                c.set_item("optional", f.flags & 1 == 1)?;
                chunks.append(c)?;
            }
            d.set_item("chunks", chunks)?;
            let tensors = PyList::empty(py);
            let groups = PyList::empty(py);
            if let (Ok(ts), Ok(gs)) = (r.tensors(), r.groups()) {
                for t in ts {
                    tensors.append(tensor_dict(py, t)?)?;
                }
                for g in gs {
                    groups.append(group_dict(py, g)?)?;
                }
            }
            d.set_item("tensors", tensors)?;
            d.set_item("groups", groups)?;
            Ok(d)
        })
    }

    /// Method, options, block count and message bits of each group (reads the MSGS chunks).
    fn message_summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let out = PyList::empty(py);
            if !self.inner.header.messages {
                return Ok(out);
            }
            let n = self.inner.groups().map(|g| g.len()).unwrap_or(0);
            for g in 0..n {
                let (m, o, blocks, bits) = self.inner.messages_summary(g).map_err(|e| ferr(py, &e))?;
                out.append((m, from_value(py, &o)?, blocks, bits))?;
            }
            Ok(out)
        })
    }

    /// The messages of group `g`: (method, options dict, index, aux).
    fn messages<'py>(
        &self,
        py: Python<'py>,
        g: usize,
    ) -> PyResult<(String, Bound<'py, PyAny>, Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>)> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let m = self.inner.messages(g).map_err(|e| ferr(py, &e))?;
            let o = coding::messages::options_value(m.method, &m.options);
            Ok((
                m.method.name().to_string(),
                from_value(py, &o)?,
                PyArray1::from_vec(py, m.messages.iter().map(|x| x.index).collect()),
                PyArray1::from_vec(py, m.messages.iter().map(|x| x.aux).collect()),
            ))
        })
    }

    /// SHA-256 (hex) of the whole file.
    fn file_sha256(&self, py: Python<'_>) -> PyResult<String> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            py.detach(move || r.file_sha256()).map(|d| relcode::format::hex(&d)).map_err(ferr0)
        })
    }

    /// Indices of the tensors the file decodes to.
    fn decoded_tensors(&self) -> PyResult<Vec<usize>> {
        crate::errors::guard(crate::errors::Exc::Format, || self.inner.decoded_tensors().map_err(ferr0))
    }

    /// Decodes every tensor and checks the digests: list of (index, array) with float32
    /// arrays for coded tensors (views into one buffer) and uint8 bytes for raw ones.
    #[pyo3(signature = (threads=None))]
    fn decode_all<'py>(&self, py: Python<'py>, threads: Option<usize>) -> PyResult<Bound<'py, PyList>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            let n = r.coded_len().map_err(|e| ferr(py, &e))? as usize;
            let n = if r.header.messages { n } else { 0 };
            let list = r.decoded_tensors().map_err(|e| ferr(py, &e))?;
            let tensors = r.tensors().map_err(|e| ferr(py, &e))?.to_vec();
            // Fallible allocations (sizes come from the file), handed to numpy without a copy.
            let mut cs = try_zeroed::<f32>(n as u64, "the coded vector").map_err(|e| ferr(py, &e))?;
            let mut rs: Vec<(usize, Vec<u8>)> = Vec::new();
            for &t in &list {
                if !tensors[t].coded() {
                    let b = tensors[t].numel() * tensors[t].dtype.size();
                    rs.push((t, try_zeroed::<u8>(b, "a raw tensor").map_err(|e| ferr(py, &e))?));
                }
            }
            let res = pool::run(py, threads, || -> Result<(), FormatError> {
                if n > 0 {
                    r.decode_coded(&mut cs)?;
                }
                for (t, o) in rs.iter_mut() {
                    r.read_raw(*t, o)?;
                }
                let mut views: Vec<Option<&[u8]>> = vec![None; tensors.len()];
                for (t, o) in rs.iter() {
                    views[*t] = Some(&o[..]);
                }
                r.check_digests(&cs, &views)
            })?;
            res.map_err(|e| ferr(py, &e))?;
            let coded = PyArray1::from_vec(py, cs);
            let out = PyList::empty(py);
            let mut ri = rs.into_iter().map(|(t, v)| (t, PyArray1::from_vec(py, v)));
            for &t in &list {
                let ranges = r.coded_ranges(t).map_err(|e| ferr(py, &e))?;
                if ranges.is_empty() {
                    let (_, arr) = ri.next().unwrap();
                    out.append((t, arr))?;
                } else if ranges.len() == 1 {
                    let (a, b) = ranges[0];
                    let view = coded.call_method1(
                        "__getitem__",
                        (pyo3::types::PySlice::new(py, a as isize, b as isize, 1),),
                    )?;
                    out.append((t, view))?;
                } else {
                    // Instances: gather the tensor's slice of every instance.
                    let cr = coded.readonly();
                    let cs = cr.as_slice()?;
                    let mut v = Vec::with_capacity(ranges.iter().map(|(a, b)| (b - a) as usize).sum());
                    for (a, b) in ranges {
                        v.extend_from_slice(&cs[a as usize..b as usize]);
                    }
                    out.append((t, PyArray1::from_vec(py, v)))?;
                }
            }
            Ok(out)
        })
    }

    /// Decodes one tensor (checking its digest in `tensor` digest mode): float32 for coded
    /// tensors, little-endian bytes (uint8) for raw ones.
    #[pyo3(signature = (t, threads=None))]
    fn decode_tensor<'py>(
        &self,
        py: Python<'py>,
        t: usize,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            let n = r.tensors().map_err(|e| ferr(py, &e))?.len();
            if t >= n {
                return Err(input_error(format!("no tensor {t}")));
            }
            let coded = r.tensors().map_err(|e| ferr(py, &e))?[t].coded();
            let bytes = pool::run(py, threads, || r.decode_tensor(t))?.map_err(|e| ferr(py, &e))?;
            if coded {
                let mut v = try_zeroed::<f32>(bytes.len() as u64 / 4, "a decoded tensor")
                    .map_err(|e| ferr(py, &e))?;
                for (o, c) in v.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes(c.try_into().unwrap());
                }
                Ok(PyArray1::from_vec(py, v).into_any())
            } else {
                Ok(PyArray1::from_vec(py, bytes).into_any())
            }
        })
    }

    /// Decodes the coded-vector range [e0, e1).
    #[pyo3(signature = (e0, e1, threads=None))]
    fn decode_range<'py>(
        &self,
        py: Python<'py>,
        e0: u64,
        e1: u64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            if e1 < e0 || e1 > r.coded_len().map_err(|e| ferr(py, &e))? {
                return Err(input_error("range out of bounds"));
            }
            let mut v = try_zeroed::<f32>(e1 - e0, "a decoded range").map_err(|e| ferr(py, &e))?;
            pool::run(py, threads, || r.decode_range(e0, e1, &mut v))?.map_err(|e| ferr(py, &e))?;
            Ok(PyArray1::from_vec(py, v))
        })
    }

    /// The prior (means, stds) of the coded-vector range [e0, e1).
    fn prior_range<'py>(
        &self,
        py: Python<'py>,
        e0: u64,
        e1: u64,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>)> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            if e1 < e0 || e1 > r.coded_len().map_err(|e| ferr(py, &e))? {
                return Err(input_error("range out of bounds"));
            }
            let (m, s) = py.detach(|| r.prior_range(e0, e1)).map_err(ferr0)?;
            Ok((PyArray1::from_vec(py, m), PyArray1::from_vec(py, s)))
        })
    }

    /// Raw tensor `t` as little-endian bytes (uint8).
    fn read_raw<'py>(&self, py: Python<'py>, t: usize) -> PyResult<Bound<'py, PyArray1<u8>>> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            let ts = r.tensors().map_err(|e| ferr(py, &e))?;
            let info = ts.get(t).ok_or_else(|| input_error(format!("no tensor {t}")))?;
            let mut v = try_zeroed::<u8>(info.numel() * info.dtype.size(), "a raw tensor")
                .map_err(|e| ferr(py, &e))?;
            py.detach(|| r.read_raw(t, &mut v)).map_err(ferr0)?;
            Ok(PyArray1::from_vec(py, v))
        })
    }

    /// Checks the CRC of every chunk, one at a time, without decoding.
    fn check_chunks(&self, py: Python<'_>) -> PyResult<()> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            py.detach(move || r.check_chunks()).map_err(ferr0)
        })
    }

    /// Checks every CRC and digest by decoding everything.
    #[pyo3(signature = (threads=None))]
    fn verify(&self, py: Python<'_>, threads: Option<usize>) -> PyResult<()> {
        crate::errors::guard(crate::errors::Exc::Format, || {
            let r = self.inner.clone();
            pool::run(py, threads, || r.verify())?.map_err(|e| ferr(py, &e))
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(format_encode, m)?)?;
    m.add_function(wrap_pyfunction!(format_assemble, m)?)?;
    m.add_function(wrap_pyfunction!(layout_permutation, m)?)?;
    m.add_function(wrap_pyfunction!(layout_kl_sizes, m)?)?;
    m.add_function(wrap_pyfunction!(layout_check, m)?)?;
    m.add_function(wrap_pyfunction!(format_encode_group, m)?)?;
    m.add_function(wrap_pyfunction!(format_check_group, m)?)?;
    m.add_class::<FormatReader>()?;
    m.add_class::<FormatStreamWriter>()?;
    m.add_class::<CancelFlag>()?;
    m.add("FORMAT_VERSION", (relcode::format::VERSION_MAJOR, relcode::format::VERSION_MINOR))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Streaming

/// The layout rule a streaming encoder names: KL-greedy (`size` = most elements per block)
/// or fixed (`size` = elements per block).
fn stream_layout(rule: &str, size: u32) -> PyResult<LayoutRule> {
    match rule {
        "fixed" => Ok(LayoutRule::Fixed { block_size: Some(size) }),
        "kl" => Ok(LayoutRule::Kl { max_block_size: size }),
        r => Err(input_error(format!("layout must be 'kl' or 'fixed', got {r:?}"))),
    }
}

/// A flag that stops `format_encode_group` calls early: set it (from any thread) and every
/// call given it returns `relcode.errors.CancelledError` within one block's time.
#[pyclass(module = "relcode._native", name = "CancelFlag", frozen)]
pub struct CancelFlag {
    flag: Arc<std::sync::atomic::AtomicBool>,
}

impl CancelFlag {
    /// The flag a call was given, or one that is never set.
    fn of(cancel: Option<Bound<'_, CancelFlag>>) -> Arc<std::sync::atomic::AtomicBool> {
        cancel.map(|c| c.get().flag.clone()).unwrap_or_default()
    }
}

#[pymethods]
impl CancelFlag {
    #[new]
    fn new() -> CancelFlag {
        CancelFlag { flag: Arc::default() }
    }

    /// Cancels every call given this flag (now and later).
    fn set(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The tensor pieces of a streaming group: (name, first element in the tensor, count).
type SpanArg = (String, u64, u64);

fn spans_of(tensors: &Option<Vec<SpanArg>>) -> Vec<fenc::Span<'_>> {
    tensors
        .iter()
        .flatten()
        .map(|(name, first, count)| fenc::Span { name, first: *first, count: *count })
        .collect()
}

/// Encodes one group of a streaming encoder (any process: a Dask worker, say). Returns the
/// LAYO payload, the MSGS payload, the decoded values and a report dict; the writer
/// process hands them to `FormatStreamWriter.write_group`. `tensors` names the group's
/// tensor pieces in order (the report's `rate` has one row per piece; without it, one row
/// for the whole group); `max_excess` refuses a block over its budget before any is coded.
#[pyfunction]
#[pyo3(signature = (g, seed, start, q_mean, q_std, p_mean, p_std, method_name, layout, size, bits_per_block, threads=None, tensors=None, max_excess=None, cancel=None, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn format_encode_group<'py>(
    py: Python<'py>,
    g: u32,
    seed: u64,
    start: u64,
    q_mean: PyReadonlyArray1<'py, f64>,
    q_std: PyReadonlyArray1<'py, f64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
    method_name: &str,
    layout: &str,
    size: u32,
    bits_per_block: f64,
    threads: Option<usize>,
    tensors: Option<Vec<SpanArg>>,
    max_excess: Option<f64>,
    cancel: Option<Bound<'py, CancelFlag>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyArray1<f32>>, Bound<'py, PyDict>)> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        fenc::check_method(m, &opts).map_err(|e| ferr(py, &e))?;
        let (qm, qs, pm, ps) = (q_mean.as_slice()?, q_std.as_slice()?, p_mean.as_slice()?, p_std.as_slice()?);
        let rule = stream_layout(layout, size)?;
        let spans = spans_of(&tensors);
        let flag = CancelFlag::of(cancel);
        let res = pool::run(py, threads, || {
            let (group, _) =
                coding::encode::stream_group(g, seed, start, qm, qs, pm, ps, rule, bits_per_block)?;
            let out = coding::encode::encode_group_cancellable(
                &group, g, qm, qs, pm, ps, &spans, seed, m, &opts, max_excess, &flag,
            )?;
            let mp = coding::messages::messages_payload(&out.messages)?;
            Ok::<_, FormatError>((mp, out, group))
        })?;
        let (mp, out, group) = res.map_err(|e| ferr(py, &e))?;
        let lp = relcode::format::chunk::layout_payload(&group);
        let d = PyDict::new(py);
        d.set_item("blocks", out.bits.len())?;
        d.set_item("bits", out.bits.iter().map(|&b| b as u64).sum::<u64>())?;
        d.set_item("steps", out.steps)?;
        d.set_item("count", group.count)?;
        let rate = PyList::empty(py);
        let whole = [(None, 0u64, group.count)];
        let named: Vec<_> = spans.iter().map(|s| (Some(s.name), s.first, s.count)).collect();
        let pieces = if spans.is_empty() { &whole[..] } else { &named[..] };
        for ((name, first, count), r) in pieces.iter().zip(&out.rate) {
            let row = rate_dict(py, r)?;
            row.set_item("name", name)?;
            row.set_item("first", first)?;
            row.set_item("count", count)?;
            rate.append(row)?;
        }
        d.set_item("rate", rate)?;
        Ok((PyBytes::new(py, &lp), PyBytes::new(py, &mp), PyArray1::from_vec(py, out.values), d))
    })
}

/// Checks one group of a streaming encoder against the method's budget without coding it:
/// raises `InputError` for a block over its budget by more than `max_excess` bits. Returns
/// the budget in bits (None: the method has none).
#[pyfunction]
#[pyo3(signature = (g, seed, start, q_mean, q_std, p_mean, p_std, method_name, layout, size, bits_per_block, max_excess, threads=None, tensors=None, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn format_check_group<'py>(
    py: Python<'py>,
    g: u32,
    seed: u64,
    start: u64,
    q_mean: PyReadonlyArray1<'py, f64>,
    q_std: PyReadonlyArray1<'py, f64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
    method_name: &str,
    layout: &str,
    size: u32,
    bits_per_block: f64,
    max_excess: Option<f64>,
    threads: Option<usize>,
    tensors: Option<Vec<SpanArg>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<u32>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        fenc::check_method(m, &opts).map_err(|e| ferr(py, &e))?;
        let (qm, qs, pm, ps) = (q_mean.as_slice()?, q_std.as_slice()?, p_mean.as_slice()?, p_std.as_slice()?);
        let rule = stream_layout(layout, size)?;
        let spans = spans_of(&tensors);
        let res = pool::run(py, threads, || {
            let (group, kl) =
                coding::encode::stream_group(g, seed, start, qm, qs, pm, ps, rule, bits_per_block)?;
            coding::encode::check_group_budget(&group, g, &kl, &spans, m, &opts, max_excess)
        })?;
        res.map_err(|e| ferr(py, &e))
    })
}

type FileWriter = relcode::format::Writer<std::io::BufWriter<std::fs::File>>;

/// A streaming file writer: header first, then raw tensors, priors and groups as they come,
/// then the index. Memory: the index and the digest reorder buffer.
#[pyclass(module = "relcode._native", name = "FormatStreamWriter")]
pub struct FormatStreamWriter {
    inner: std::sync::Mutex<Option<FileWriter>>,
}

impl FormatStreamWriter {
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut FileWriter) -> Result<T, FormatError>,
    ) -> PyResult<T> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let w = g.as_mut().ok_or_else(|| input_error("the writer is closed"))?;
        f(w).map_err(|e| ferr(py, &e))
    }
}

#[pymethods]
impl FormatStreamWriter {
    #[new]
    #[pyo3(signature = (path, seed, tensors, groups, digest="tensor", meta=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        seed: u64,
        tensors: Vec<TensorArg>,
        groups: u64,
        digest: &str,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<FormatStreamWriter> {
        crate::errors::guard(crate::errors::Exc::Relcode, || {
            let mut h = Header::new(seed);
            h.digest = digest_mode(digest)?;
            h.meta = meta_arg(meta)?;
            for (name, shape, dt, coded, pm, ps) in tensors {
                let prior = coded.then(|| {
                    let v = |x: Option<f32>| x.map(PriorValue::Scalar).unwrap_or(PriorValue::Elements);
                    Prior { mean: v(pm), std: v(ps) }
                });
                h.tensors.push(TensorInfo { name, shape, dtype: dtype(&dt)?, prior });
            }
            h.groups = groups;
            Header::parse(&h.to_bytes(), &Limits::default()).map_err(|e| input_error(e.to_string()))?;
            let f = std::fs::File::create(&path)
                .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", path.display())))?;
            let t = h.tensors.clone();
            let w = relcode::format::Writer::new(std::io::BufWriter::with_capacity(1 << 20, f), &h, &t)
                .map_err(|e| ferr(py, &e))?;
            Ok(FormatStreamWriter { inner: std::sync::Mutex::new(Some(w)) })
        })
    }

    /// Raw tensor values (little-endian bytes) from element `start`.
    fn write_raw(
        &self,
        py: Python<'_>,
        tensor: usize,
        start: u64,
        data: PyReadonlyArray1<'_, u8>,
    ) -> PyResult<()> {
        crate::errors::guard(crate::errors::Exc::Relcode, || {
            let d = data.as_slice()?;
            self.with(py, |w| w.data(Role::Raw, tensor, start, d))
        })
    }

    /// Per-element prior values (role 1: means, 2: stds) from element `start`.
    fn write_prior(
        &self,
        py: Python<'_>,
        tensor: usize,
        role: u8,
        start: u64,
        values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        crate::errors::guard(crate::errors::Exc::Relcode, || {
            let role = Role::from_id(role)
                .filter(|&r| r != Role::Raw)
                .ok_or_else(|| input_error("role must be 1 or 2"))?;
            let bytes: Vec<u8> = values.as_slice()?.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.with(py, |w| w.data(role, tensor, start, &bytes))
        })
    }

    /// A group encoded by `format_encode_group`: its LAYO and MSGS payloads and decoded values.
    fn write_group(
        &self,
        py: Python<'_>,
        start: u64,
        layo: &[u8],
        msgs: &[u8],
        values: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<()> {
        crate::errors::guard(crate::errors::Exc::Relcode, || {
            let v = values.as_slice()?;
            let (layo, msgs) = (layo.to_vec(), msgs.to_vec());
            self.with(py, |w| {
                let g = relcode::format::chunk::parse_layout(&layo)?;
                let m = coding::messages::parse_messages(&msgs, 32)?;
                if g.start != start
                    || g.count != v.len() as u64
                    || m.group != g.id
                    || m.messages.len() as u64 != g.blocks()
                {
                    return Err(FormatError::InvalidInput(
                        "the group's payloads and values do not match".into(),
                    ));
                }
                w.chunk(*b"LAYO", 0, &layo)?;
                w.messages(&m, start, v)
            })
        })
    }

    /// Bytes written so far.
    fn position(&self, py: Python<'_>) -> PyResult<u64> {
        crate::errors::guard(crate::errors::Exc::Relcode, || self.with(py, |w| Ok(w.position())))
    }

    /// Writes the index and the tail; returns the digests (hex).
    fn finish(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        crate::errors::guard(crate::errors::Exc::Relcode, || {
            let w = self
                .inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or_else(|| input_error("the writer is closed"))?;
            let (_, _, d) = py.detach(|| w.finish()).map_err(ferr0)?;
            Ok(hexs(&d))
        })
    }

    /// Drops the writer without finishing (the caller removes the partial file).
    fn abort(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

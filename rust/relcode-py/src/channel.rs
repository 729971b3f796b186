//! Bindings of `relcode::channel`.

use crate::errors::{error, input_error, Exc};
use crate::pool;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use relcode::channel::{self, Batch, ChannelError, Field, Message, Method, Options, Split};
use relcode::codes::IndexCode;
use relcode::stream::Backend;

pub fn channel_error(py: Python<'_>, e: &ChannelError, problem: Option<usize>) -> PyErr {
    let prefix = problem.map(|i| format!("problem {i}: ")).unwrap_or_default();
    error(py, Exc::of_channel(e), format!("{prefix}{e}"))
}

pub fn method(name: &str) -> PyResult<Method> {
    Method::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        input_error(format!("unknown method {name:?}; expected one of {}", names.join(", ")))
    })
}

/// Options from a dict of keyword arguments; unknown or inapplicable names are refused.
pub fn options(m: Method, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut o = Options::default();
    let Some(kw) = kwargs else { return Ok(o) };
    let mut zeta_k: Option<u8> = None;
    let mut code_name: Option<String> = None;
    for (k, v) in kw.iter() {
        let key: String = k.extract()?;
        let applies = match key.as_str() {
            "index_code" | "zeta_k" | "max_steps" | "backend" => true,
            "bits" | "pool" => matches!(m, Method::Mrc | Method::Orc | Method::Pfr),
            "depth" => m == Method::DadStar,
            "parallel" => m == Method::GprsParallel,
            "split" => m == Method::GprsBnb,
            _ => {
                return Err(input_error(format!(
                    "unknown option {key:?}; options are bits, index_code, zeta_k, max_steps, depth, \
                     parallel, split, pool and backend"
                )))
            }
        };
        if !applies {
            return Err(input_error(format!("option {key:?} does not apply to {m}")));
        }
        if v.is_none() {
            continue;
        }
        let int = |name: &str| -> PyResult<u64> {
            if v.is_instance_of::<pyo3::types::PyBool>() {
                return Err(input_error(format!("{name} must be an integer, not a bool")));
            }
            v.extract::<u64>().map_err(|_| input_error(format!("{name} must be a non-negative integer")))
        };
        match key.as_str() {
            "bits" => {
                let b = int("bits")?;
                if b > 32 {
                    return Err(input_error(format!("bits must be at most 32, got {b}")));
                }
                o.bits = Some(b as u32);
            }
            "max_steps" => o.max_steps = int("max_steps")?,
            "depth" => o.depth = Some(int("depth")?.min(u32::MAX as u64) as u32),
            "parallel" => o.parallel = int("parallel")?.min(u32::MAX as u64) as u32,
            "zeta_k" => zeta_k = Some(int("zeta_k")?.min(255) as u8),
            "index_code" => {
                code_name = Some(v.extract().map_err(|_| input_error("index_code must be a string"))?)
            }
            "split" => {
                let s: String = v.extract().map_err(|_| input_error("split must be a string"))?;
                o.split = match s.as_str() {
                    "sample" => Split::Sample,
                    "dyadic" => Split::Dyadic,
                    _ => return Err(input_error(format!("split must be 'sample' or 'dyadic', got {s:?}"))),
                };
            }
            "pool" => o.pool = v.extract().map_err(|_| input_error("pool must be a bool"))?,
            "backend" => {
                let s: String = v.extract().map_err(|_| input_error("backend must be a string"))?;
                let b = Backend::parse(&s).ok_or_else(|| input_error(format!("unknown backend {s:?}")))?;
                // the core's one rule (`Backend::checked`); every core entry applies it again
                b.checked().map_err(|e| input_error(e.to_string()))?;
                o.backend = b;
            }
            _ => unreachable!(),
        }
    }
    o.index_code = match (code_name.as_deref(), zeta_k) {
        (None | Some("elias_delta"), None) => IndexCode::EliasDelta,
        (Some("elias_delta"), Some(_)) => return Err(input_error("zeta_k needs index_code='zeta'")),
        (None | Some("zeta"), Some(k)) => IndexCode::Zeta(k),
        (Some("zeta"), None) => return Err(input_error("index_code='zeta' needs zeta_k")),
        (Some(other), _) => {
            return Err(input_error(format!("index_code must be 'elias_delta' or 'zeta', got {other:?}")))
        }
    };
    o.index_code.validate().map_err(input_error)?;
    Ok(o)
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| input_error(format!("{name} must be contiguous")))
}

type EncodeOut<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u64>>,
);

/// Encodes n problems of dimension d (flattened, row-major).
#[pyfunction]
#[pyo3(signature = (method_name, d, q_mean, q_std, p_mean, p_std, ids, seed, threads=None, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn channel_encode<'py>(
    py: Python<'py>,
    method_name: &str,
    d: usize,
    q_mean: PyReadonlyArray1<'py, f64>,
    q_std: PyReadonlyArray1<'py, f64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
    ids: PyReadonlyArray1<'py, u64>,
    seed: u64,
    threads: Option<usize>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<EncodeOut<'py>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        let (qm, qs, pm, ps, ids) = (
            slice(&q_mean, "q_mean")?,
            slice(&q_std, "q_std")?,
            slice(&p_mean, "p_mean")?,
            slice(&p_std, "p_std")?,
            slice(&ids, "ids")?,
        );
        let n = ids.len();
        if d == 0 || [qm.len(), qs.len(), pm.len(), ps.len()].iter().any(|&l| l != n * d) {
            return Err(input_error("q_mean, q_std, p_mean and p_std must all have n * d elements, d > 0"));
        }
        let batch = Batch { d, q_mean: qm, q_std: qs, p_mean: pm, p_std: ps, ids };
        let mut samples = vec![0f32; n * d];
        let res = pool::run(py, threads, || channel::encode_batch(m, &batch, seed, &opts, &mut samples))?;
        let enc = res.map_err(|(i, e)| channel_error(py, &e, Some(i)))?;
        let index: Vec<u64> = enc.iter().map(|e| e.message.index).collect();
        let aux: Vec<u64> = enc.iter().map(|e| e.message.aux).collect();
        let bits: Vec<u32> = enc.iter().map(|e| e.bits).collect();
        let steps: Vec<u64> = enc.iter().map(|e| e.steps).collect();
        Ok((
            PyArray1::from_vec(py, samples),
            PyArray1::from_vec(py, index),
            PyArray1::from_vec(py, aux),
            PyArray1::from_vec(py, bits),
            PyArray1::from_vec(py, steps),
        ))
    })
}

/// Decodes n messages (index and aux fields) of dimension d.
#[pyfunction]
#[pyo3(signature = (method_name, d, index, aux, p_mean, p_std, ids, seed, threads=None, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn channel_decode<'py>(
    py: Python<'py>,
    method_name: &str,
    d: usize,
    index: PyReadonlyArray1<'py, u64>,
    aux: PyReadonlyArray1<'py, u64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
    ids: PyReadonlyArray1<'py, u64>,
    seed: u64,
    threads: Option<usize>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        let (index, aux, pm, ps, ids) = (
            slice(&index, "index")?,
            slice(&aux, "aux")?,
            slice(&p_mean, "p_mean")?,
            slice(&p_std, "p_std")?,
            slice(&ids, "ids")?,
        );
        let n = ids.len();
        if d == 0 || index.len() != n || aux.len() != n || pm.len() != n * d || ps.len() != n * d {
            return Err(input_error("messages, ids and priors have inconsistent sizes"));
        }
        let messages: Vec<Message> =
            index.iter().zip(aux).map(|(&i, &a)| Message { index: i, aux: a }).collect();
        let mut out = vec![0f32; n * d];
        let res = pool::run(py, threads, || {
            channel::decode_batch(m, &messages, d, pm, ps, ids, seed, &opts, &mut out)
        })?;
        res.map_err(|(i, e)| channel_error(py, &e, Some(i)))?;
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Code lengths of messages (without decoding them).
#[pyfunction]
#[pyo3(signature = (method_name, index, aux, **kwargs))]
fn channel_message_bits<'py>(
    py: Python<'py>,
    method_name: &str,
    index: PyReadonlyArray1<'py, u64>,
    aux: PyReadonlyArray1<'py, u64>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        let (index, aux) = (slice(&index, "index")?, slice(&aux, "aux")?);
        let mut out = Vec::with_capacity(index.len());
        for (i, (&x, &a)) in index.iter().zip(aux).enumerate() {
            let b = channel::message_bits(m, &opts, &Message { index: x, aux: a })
                .map_err(|e| channel_error(py, &e, Some(i)))?;
            out.push(b);
        }
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Checks the options and n problems of dimension d (flattened) exactly as the CPU encoder
/// does before it codes them (`relcode::channel::validate` and `check_target`), so that
/// another encoder (the GPU path) refuses the same inputs with the same errors.
#[pyfunction]
#[pyo3(signature = (method_name, d, q_mean, q_std, p_mean, p_std, **kwargs))]
#[allow(clippy::too_many_arguments)]
fn channel_check_targets<'py>(
    py: Python<'py>,
    method_name: &str,
    d: usize,
    q_mean: PyReadonlyArray1<'py, f64>,
    q_std: PyReadonlyArray1<'py, f64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<()> {
    crate::errors::guard(Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        let (qm, qs, pm, ps) = (
            slice(&q_mean, "q_mean")?,
            slice(&q_std, "q_std")?,
            slice(&p_mean, "p_mean")?,
            slice(&p_std, "p_std")?,
        );
        if d == 0 || [qs.len(), pm.len(), ps.len()].iter().any(|&l| l != qm.len()) || qm.len() % d != 0 {
            return Err(input_error("q_mean, q_std, p_mean and p_std must all have n * d elements, d > 0"));
        }
        channel::validate(m, &opts, d).map_err(|e| channel_error(py, &e, None))?;
        for i in 0..qm.len() / d {
            let r = i * d..(i + 1) * d;
            let t = channel::Target {
                q_mean: &qm[r.clone()],
                q_std: &qs[r.clone()],
                p_mean: &pm[r.clone()],
                p_std: &ps[r],
            };
            channel::check_target(m, &t, &opts).map_err(|e| channel_error(py, &e, Some(i)))?;
        }
        Ok(())
    })
}

/// The fixed message length in bits of `method` with these options (mrc, orc, pfr with
/// `bits`, dad_star), or None for methods whose messages vary in length.
#[pyfunction]
#[pyo3(signature = (method_name, **kwargs))]
fn channel_budget_bits(method_name: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Option<u32>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        Ok(m.budget_bits(&options(m, kwargs)?))
    })
}

/// KL(Q ‖ P) in bits of each element, as the samplers see it (P in float32):
/// `relcode::channel::gaussian::Std1::kl` over ln 2. The one Gaussian KL Python uses.
#[pyfunction]
fn channel_kl_bits<'py>(
    py: Python<'py>,
    q_mean: PyReadonlyArray1<'py, f64>,
    q_std: PyReadonlyArray1<'py, f64>,
    p_mean: PyReadonlyArray1<'py, f32>,
    p_std: PyReadonlyArray1<'py, f32>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let (qm, qs) = (slice(&q_mean, "q_mean")?, slice(&q_std, "q_std")?);
        let (pm, ps) = (slice(&p_mean, "p_mean")?, slice(&p_std, "p_std")?);
        if qs.len() != qm.len() || pm.len() != qm.len() || ps.len() != qm.len() {
            return Err(input_error("q_mean, q_std, p_mean and p_std must have one value per element"));
        }
        let out = (0..qm.len())
            .map(|i| channel::gaussian::Std1::new(qm[i], qs[i], pm[i], ps[i]).kl() / std::f64::consts::LN_2)
            .collect();
        Ok(PyArray1::from_vec(py, out))
    })
}

/// The message fields of a method with these options, in the order they are written.
#[pyfunction]
#[pyo3(signature = (method_name, **kwargs))]
fn channel_message_fields(
    method_name: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<&'static str>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let m = method(method_name)?;
        let opts = options(m, kwargs)?;
        Ok(channel::message_codes(m, &opts)
            .into_iter()
            .map(|(f, _)| match f {
                Field::Index => "index",
                Field::Aux => "aux",
            })
            .collect())
    })
}

/// Builds (or finds) the shared pool of (seed, d) with at least 2^bits candidates.
#[pyfunction]
#[pyo3(signature = (seed, d, bits, threads=None))]
fn channel_prepare_pool(
    py: Python<'_>,
    seed: u64,
    d: usize,
    bits: u32,
    threads: Option<usize>,
) -> PyResult<()> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        if d == 0 || bits > 32 {
            return Err(input_error("pool dimension must be positive and bits at most 32"));
        }
        let keys = relcode::channel::Keys::new(seed);
        let res = pool::run(py, threads, || relcode::channel::pool::prepare(&keys, d, bits, Backend::Auto))?;
        res.map_err(|e| channel_error(py, &e, None))
    })
}

/// Every method with its properties.
#[pyfunction]
fn channel_methods(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let list = PyList::empty(py);
        for m in Method::ALL {
            let i = m.info();
            let d = PyDict::new(py);
            d.set_item("name", i.name)?;
            d.set_item("exact", i.exact)?;
            d.set_item("max_dim", i.max_dim)?;
            d.set_item("fixed_budget", i.fixed_budget)?;
            d.set_item("needs_bounded_ratio", i.needs_bounded_ratio)?;
            d.set_item("runtime", i.runtime)?;
            d.set_item("message", i.message)?;
            d.set_item("id", m.id())?;
            list.append(d)?;
        }
        Ok(list)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(channel_encode, m)?)?;
    m.add_function(wrap_pyfunction!(channel_decode, m)?)?;
    m.add_function(wrap_pyfunction!(channel_message_bits, m)?)?;
    m.add_function(wrap_pyfunction!(channel_kl_bits, m)?)?;
    m.add_function(wrap_pyfunction!(channel_budget_bits, m)?)?;
    m.add_function(wrap_pyfunction!(channel_check_targets, m)?)?;
    m.add_function(wrap_pyfunction!(channel_message_fields, m)?)?;
    m.add_function(wrap_pyfunction!(channel_methods, m)?)?;
    m.add_function(wrap_pyfunction!(channel_prepare_pool, m)?)?;
    Ok(())
}

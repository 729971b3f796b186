//! Bindings of `relcode::stream`.

use crate::errors::input_error;
use crate::pool;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use rayon::prelude::*;
use relcode::stream::{self, Backend, Stream, Supported};

/// The named backend, checked against this CPU by the core's one rule (`Backend::checked`).
fn backend(name: &str) -> PyResult<Supported> {
    let b = Backend::parse(name).ok_or_else(|| {
        input_error(format!("unknown backend {name:?}; expected auto, scalar, avx2 or avx512"))
    })?;
    b.checked().map_err(|e| input_error(e.to_string()))
}

/// Philox4x32-10 of each row of `counters` (n, 4) under `key` (2,).
#[pyfunction]
fn philox4x32_10<'py>(
    py: Python<'py>,
    counters: PyReadonlyArray2<'py, u32>,
    key: PyReadonlyArray1<'py, u32>,
) -> PyResult<Bound<'py, PyArray2<u32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let shape = counters.shape();
        if shape[1] != 4 {
            return Err(input_error(format!("counters must have shape (n, 4), got {shape:?}")));
        }
        let key = key.as_slice().map_err(|_| input_error("key must be contiguous"))?;
        if key.len() != 2 {
            return Err(input_error(format!("key must have shape (2,), got ({},)", key.len())));
        }
        let k = [key[0], key[1]];
        let c = counters.as_slice().map_err(|_| input_error("counters must be C-contiguous"))?;
        let out: Vec<u32> = py.detach(|| {
            c.par_chunks(4 * 4096)
                .flat_map_iter(|ch| {
                    ch.chunks_exact(4)
                        .flat_map(|r| stream::philox4x32_10([r[0], r[1], r[2], r[3]], k))
                        .collect::<Vec<u32>>()
                })
                .collect()
        });
        let n = shape[0];
        PyArray1::from_vec(py, out).reshape([n, 4])
    })
}

/// The Philox key of (seed, purpose).
#[pyfunction]
fn derive_key(seed: u64, purpose: u32) -> (u32, u32) {
    let k = stream::derive_key(seed, purpose);
    (k[0], k[1])
}

/// Normals `start .. start + count` of candidate stream (seed, stream).
#[pyfunction]
#[pyo3(signature = (seed, stream_id, start, count, backend_name="auto", threads=None, purpose=stream::purpose::CANDIDATES))]
#[allow(clippy::too_many_arguments)]
fn normals<'py>(
    py: Python<'py>,
    seed: u64,
    stream_id: u64,
    start: u64,
    count: u64,
    backend_name: &str,
    threads: Option<usize>,
    purpose: u32,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let b = backend(backend_name)?;
        if start.checked_add(count).is_none() && !(start.wrapping_add(count) == 0 && count > 0) {
            return Err(input_error("start + count must not exceed 2**64"));
        }
        if count > (1u64 << 33) {
            return Err(input_error(format!("count {count} is too large for one call (at most 2**33)")));
        }
        let s = Stream::new(seed, purpose, stream_id);
        let mut out = vec![0f32; count as usize];
        pool::run(py, threads, || s.fill_normals_par_with(start, &mut out, b))?;
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Raw 32-bit words `start .. start + count` of stream (seed, purpose, stream).
#[pyfunction]
fn words<'py>(
    py: Python<'py>,
    seed: u64,
    purpose: u32,
    stream_id: u64,
    start: u64,
    count: u64,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        if count > (1u64 << 32) {
            return Err(input_error("count is too large for one call (at most 2**32)"));
        }
        let s = Stream::new(seed, purpose, stream_id);
        let out: Vec<u32> = py.detach(|| (0..count).map(|i| s.word(start.wrapping_add(i))).collect());
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Uniforms `start .. start + count` (u52) of stream (seed, purpose, stream).
#[pyfunction]
fn uniforms<'py>(
    py: Python<'py>,
    seed: u64,
    purpose: u32,
    stream_id: u64,
    start: u64,
    count: u64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        if count > (1u64 << 32) {
            return Err(input_error("count is too large for one call (at most 2**32)"));
        }
        let s = Stream::new(seed, purpose, stream_id);
        let out: Vec<f64> = py.detach(|| (0..count).map(|i| s.uniform_f64(start.wrapping_add(i))).collect());
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Elementwise inverse normal CDF; every input must lie strictly inside (0, 1).
#[pyfunction]
#[pyo3(signature = (u, threads=None))]
fn ndtri<'py>(
    py: Python<'py>,
    u: PyReadonlyArray1<'py, f64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    crate::errors::guard(crate::errors::Exc::Relcode, || {
        let u = u.as_slice().map_err(|_| input_error("u must be contiguous"))?;
        if let Some(i) = u.iter().position(|&x| !(x > 0.0 && x < 1.0)) {
            return Err(input_error(format!(
                "ndtri needs values strictly inside (0, 1); element {i} is {}",
                u[i]
            )));
        }
        let out = pool::run(py, threads, || {
            u.par_iter().with_min_len(4096).map(|&x| stream::ndtri(x)).collect::<Vec<f64>>()
        })?;
        Ok(PyArray1::from_vec(py, out))
    })
}

/// Names of the bulk-normal backends this CPU can run.
#[pyfunction]
fn backends() -> Vec<&'static str> {
    Backend::CONCRETE.into_iter().filter(|b| b.available()).map(Backend::name).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(philox4x32_10, m)?)?;
    m.add_function(wrap_pyfunction!(derive_key, m)?)?;
    m.add_function(wrap_pyfunction!(normals, m)?)?;
    m.add_function(wrap_pyfunction!(words, m)?)?;
    m.add_function(wrap_pyfunction!(uniforms, m)?)?;
    m.add_function(wrap_pyfunction!(ndtri, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    Ok(())
}

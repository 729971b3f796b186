//! `relcode._native`: thin glue between the core crate and Python. Argument checks, error
//! mapping to the `relcode.errors` classes, and the GIL released around every heavy call.
//! Validation that needs Python semantics (dtype coercion, broadcasting) lives in the
//! Python package; everything reaching this layer is still checked, never trusted.

use pyo3::prelude::*;

mod channel;
mod errors;
mod format;
mod pool;
mod stream;

/// Panics on purpose (inside the entry-point guard and on a worker thread when `threads` is
/// given): lets the tests check that a panic reaches Python as a relcode error.
#[pyfunction]
#[pyo3(signature = (message, threads=None))]
fn _panic_for_tests(py: Python<'_>, message: String, threads: Option<usize>) -> PyResult<()> {
    errors::guard(crate::errors::Exc::Relcode, || {
        pool::run(py, threads, || {
            if threads.is_some() {
                use rayon::prelude::*;
                (0..4).into_par_iter().for_each(|i| assert!(i != 3, "{message}"));
            }
            panic!("{message}");
        })
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("STREAM_VERSION", relcode::stream::STREAM_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    stream::register(m)?;
    channel::register(m)?;
    format::register(m)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    Ok(())
}

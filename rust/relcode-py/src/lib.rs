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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("STREAM_VERSION", relcode::stream::STREAM_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    stream::register(m)?;
    channel::register(m)?;
    format::register(m)?;
    Ok(())
}

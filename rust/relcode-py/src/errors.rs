//! Python exceptions for core errors: the classes live in `relcode/errors.py` (so they can
//! inherit from both `RelcodeError` and `ValueError`); this module looks them up by name.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An exception of class `relcode.errors.<class>` with message `msg`.
pub fn error(py: Python<'_>, class: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    let cls = py
        .import("relcode.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match cls {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// `relcode.errors.InputError`: bad arguments (shapes, ranges, NaN, unknown names).
pub fn input_error(msg: impl Into<String>) -> PyErr {
    Python::attach(|py| error(py, "InputError", msg))
}

/// Runs a binding's body and turns a Rust panic into `relcode.errors.<class>`: a panic is a
/// bug, but it must reach Python as a relcode error (pyo3's own `PanicException` derives from
/// `BaseException`, which `except Exception` does not catch). Every entry point of this
/// module goes through here. (A failed allocation aborts instead of panicking, so sizes that
/// come from a file are allocated fallibly in the core.)
pub fn guard<T>(class: &'static str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Python::attach(|py| {
                error(py, class, format!("internal error in relcode (please report it): {why}"))
            }))
        }
    }
}

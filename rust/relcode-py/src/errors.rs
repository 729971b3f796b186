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

//! Python exceptions for core errors, typed: [`Exc`] is every class of `relcode/errors.py` the
//! bindings raise (the classes live there so that they can inherit from both `RelcodeError`
//! and `ValueError`), and [`Exc::of_format`] / [`Exc::of_channel`] are the one mapping from
//! core errors to them. The classes are imported once; no error is ever mapped by a string.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use relcode::channel::ChannelError;
use relcode::format::{ErrorClass, FormatError};

/// An exception class of `relcode.errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exc {
    Relcode,
    Input,
    Sampler,
    Format,
    Version,
    Checksum,
    Limit,
    Cancelled,
}

impl Exc {
    const ALL: [Exc; 8] = [
        Exc::Relcode,
        Exc::Input,
        Exc::Sampler,
        Exc::Format,
        Exc::Version,
        Exc::Checksum,
        Exc::Limit,
        Exc::Cancelled,
    ];

    /// The class's name in `relcode.errors`.
    pub const fn name(self) -> &'static str {
        match self {
            Exc::Relcode => "RelcodeError",
            Exc::Input => "InputError",
            Exc::Sampler => "SamplerError",
            Exc::Format => "FormatError",
            Exc::Version => "VersionError",
            Exc::Checksum => "ChecksumError",
            Exc::Limit => "LimitError",
            Exc::Cancelled => "CancelledError",
        }
    }

    /// The class of a channel error: the sampler could not produce a sample (its iteration
    /// cap or depth limit) or the arguments are invalid.
    pub fn of_channel(e: &ChannelError) -> Exc {
        match e {
            ChannelError::IterationCap { .. } | ChannelError::DepthLimit { .. } => Exc::Sampler,
            _ => Exc::Input,
        }
    }

    /// The class of a format error (the core sorts them: [`FormatError::class`]); `None`
    /// for an I/O error (a Python `OSError`).
    pub fn of_format(e: &FormatError) -> Option<Exc> {
        Some(match e.class() {
            ErrorClass::Format => Exc::Format,
            ErrorClass::Version => Exc::Version,
            ErrorClass::Checksum => Exc::Checksum,
            ErrorClass::Limit => Exc::Limit,
            ErrorClass::Io => return None,
            ErrorClass::Input => Exc::Input,
            ErrorClass::Sampler => Exc::Sampler,
            ErrorClass::Cancelled => Exc::Cancelled,
        })
    }
}

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The classes of [`Exc::ALL`], imported from `relcode.errors` once.
fn classes(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    CLASSES.get_or_try_init(py, || {
        let m = py.import("relcode.errors")?;
        Exc::ALL.iter().map(|e| Ok(m.getattr(e.name())?.cast_into::<PyType>()?.unbind())).collect()
    })
}

/// An exception of class `exc` with message `msg` (if `relcode.errors` cannot be imported,
/// that import error: never a silently different class).
pub fn error(py: Python<'_>, exc: Exc, msg: impl Into<String>) -> PyErr {
    match classes(py) {
        Ok(c) => PyErr::from_type(c[exc as usize].bind(py).clone(), msg.into()),
        Err(e) => e,
    }
}

/// `relcode.errors.InputError`: bad arguments (shapes, ranges, NaN, unknown names).
pub fn input_error(msg: impl Into<String>) -> PyErr {
    Python::attach(|py| error(py, Exc::Input, msg))
}

/// Runs a binding's body and turns a Rust panic into `relcode.errors.<class>`: a panic is a
/// bug, but it must reach Python as a relcode error (pyo3's own `PanicException` derives from
/// `BaseException`, which `except Exception` does not catch). Every entry point of this
/// module goes through here. (A failed allocation aborts instead of panicking, so sizes that
/// come from a file are allocated fallibly in the core.)
pub fn guard<T>(class: Exc, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
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

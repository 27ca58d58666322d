//! s4db's errors as Python exceptions. The classes live in
//! `s4db_rs/errors.py` (so that, say, `InvalidArgumentError` is also a
//! `ValueError`); this maps each kind of [`s4db::Error`] to one of them.

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The Python exception for an s4db error.
pub(crate) fn to_py(e: s4db::Error) -> PyErr {
    let class = match &e {
        s4db::Error::Io { .. } => "IoError",
        s4db::Error::Corruption { .. } => "CorruptionError",
        s4db::Error::InvalidArgument(_) => "InvalidArgumentError",
        s4db::Error::Locked(_) => "LockedError",
        s4db::Error::Closed(_) => "ClosedError",
        s4db::Error::ReadOnly => "ReadOnlyError",
        s4db::Error::NotFound(_) => "NotFoundError",
        s4db::Error::Conflict(_) => "ConflictError",
        s4db::Error::Remote { .. } => "RemoteError",
        s4db::Error::OnRemote(_) => "OnRemoteError",
        _ => "Error",
    };
    let message = e.to_string();
    Python::attach(|py| match raise_as(py, class, &message) {
        Ok(err) | Err(err) => err,
    })
}

fn raise_as(py: Python<'_>, class: &str, message: &str) -> PyResult<PyErr> {
    let cls = py.import("s4db_rs.errors")?.getattr(class)?;
    Ok(PyErr::from_value(cls.call1((message,))?))
}

/// `KeyError(key)`, as a mapping raises it.
pub(crate) fn key_error(key: &Bound<'_, PyAny>) -> PyErr {
    PyKeyError::new_err(key.clone().unbind())
}

/// `TypeError` for an argument of the wrong type.
pub(crate) fn type_error(what: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let name = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("{what} must be bytes or str, not {name}"))
}

/// `ValueError` for a bad argument value.
pub(crate) fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

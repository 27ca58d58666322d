//! Keys and values between Python and s4db: `bytes`, `bytearray`,
//! `memoryview` or `str` (UTF-8) in; `bytes`, or `str` in text mode, out.

use std::borrow::Cow;

use pyo3::exceptions::PyUnicodeDecodeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::errors::{type_error, value_error};

/// How keys or values come back to Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Bytes,
    Str,
}

impl Mode {
    pub(crate) fn parse(what: &str, s: &str) -> PyResult<Mode> {
        match s {
            "bytes" => Ok(Mode::Bytes),
            "str" => Ok(Mode::Str),
            other => Err(value_error(format!(
                "{what} must be \"bytes\" or \"str\", not {other:?}"
            ))),
        }
    }

    /// `b` as a Python object: `bytes`, or `str` (which fails with
    /// `UnicodeDecodeError` on bytes that are not UTF-8).
    pub(crate) fn to_py<'py>(self, py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Mode::Bytes => Ok(PyBytes::new(py, b).into_any()),
            Mode::Str => match std::str::from_utf8(b) {
                Ok(s) => Ok(PyString::new(py, s).into_any()),
                Err(e) => Err(PyErr::from_value(
                    PyUnicodeDecodeError::new_utf8(py, b, e)?.into_any(),
                )),
            },
        }
    }
}

/// The bytes of a key or value given from Python (`what` names it in the
/// error): borrowed from `bytes`, copied from the others.
pub(crate) fn bytes_of<'a>(what: &str, obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(match s.to_cow()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        });
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let b = obj.call_method0("tobytes")?;
        let b = b.cast::<PyBytes>()?;
        return Ok(Cow::Owned(b.as_bytes().to_vec()));
    }
    Err(type_error(what, obj))
}

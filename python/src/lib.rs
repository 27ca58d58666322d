//! The native part of the `s4db_rs` Python package (`s4db_rs._native`):
//! `open`, `open_remote`, the `Db` handle, its iterators and reports. The
//! pure-Python part (`s4db_rs/__init__.py`, `errors.py`) re-exports these,
//! defines the exceptions and registers `Db` as a `MutableMapping`.

mod convert;
mod db;
mod errors;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::convert::Mode;
use crate::errors::{to_py, value_error};

/// S3 credentials from keyword arguments, if any were given.
fn credentials(
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
) -> PyResult<Option<s4db::Credentials>> {
    match (access_key, secret_key) {
        (Some(a), Some(s)) => {
            let c = s4db::Credentials::new(a, s);
            Ok(Some(match session_token {
                Some(t) => c.with_session_token(t),
                None => c,
            }))
        }
        (None, None) if session_token.is_none() => Ok(None),
        _ => Err(value_error(
            "give access_key and secret_key together (session_token only with both)",
        )),
    }
}

/// The remote settings `timeout=` (seconds: the limit of one remote
/// operation, retries included) and `retries=` ask for.
fn remote_options(
    timeout: Option<f64>,
    retries: Option<&Bound<'_, PyAny>>,
) -> PyResult<s4db::RemoteOptions> {
    let mut o = s4db::RemoteOptions::default();
    if let Some(secs) = timeout {
        let t = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                value_error(format!(
                    "timeout must be a positive number of seconds, not {secs}"
                ))
            })?;
        o = o.timeout(t);
    }
    if let Some(n) = retries {
        if !n.is_instance_of::<PyInt>() {
            let name = n
                .get_type()
                .name()
                .map(|t| t.to_string())
                .unwrap_or_default();
            return Err(PyTypeError::new_err(format!(
                "retries must be an int, not {name}"
            )));
        }
        let n = n
            .extract::<u32>()
            .map_err(|_| value_error(format!("retries must be 0 to {}, not {n}", u32::MAX)))?;
        o = o.retries(n);
    }
    Ok(o)
}

/// `b`, reaching its remote as the keyword arguments every call that names
/// a remote takes say: the credentials given (else the AWS environment
/// variables), and `timeout=` / `retries=`.
pub(crate) fn reach(
    b: s4db::DbBuilder,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<&Bound<'_, PyAny>>,
) -> PyResult<s4db::DbBuilder> {
    let b = b.remote_options(remote_options(timeout, retries)?);
    Ok(match credentials(access_key, secret_key, session_token)? {
        Some(c) => b.credentials(c),
        None => b,
    })
}

/// Opens (or creates) the database in directory `path`.
#[pyfunction]
#[pyo3(signature = (
    path, flag="c", remote=None, *, keys="bytes", values="bytes", max_segment_size=None,
    sync=None, lock_wait=None, access_key=None, secret_key=None, session_token=None,
    timeout=None, retries=None,
))]
#[allow(clippy::too_many_arguments)]
fn open(
    py: Python<'_>,
    path: PathBuf,
    flag: &str,
    remote: Option<String>,
    keys: &str,
    values: &str,
    max_segment_size: Option<u64>,
    sync: Option<&str>,
    lock_wait: Option<f64>,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<Bound<'_, PyAny>>,
) -> PyResult<db::Db> {
    let (keys, values) = (Mode::parse("keys", keys)?, Mode::parse("values", values)?);
    let mut b = s4db::blocking::Db::builder(&path);
    b = match flag {
        "r" => b.read_only(true).create_if_missing(false),
        "w" => b.create_if_missing(false),
        "c" | "n" => b.create_if_missing(true),
        other => {
            return Err(value_error(format!(
                "flag must be \"r\", \"w\", \"c\" or \"n\", not {other:?}"
            )));
        }
    };
    if flag == "n" && remote.is_some() {
        return Err(value_error(
            "flag \"n\" empties a local database and cannot be combined with a remote",
        ));
    }
    let b = configure(
        reach(
            b,
            access_key,
            secret_key,
            session_token,
            timeout,
            retries.as_ref(),
        )?,
        remote,
        max_segment_size,
        sync,
        lock_wait,
    )?;
    let handle = py
        .detach(|| {
            let db = b.open_blocking()?;
            if flag == "n" && !db.is_empty() {
                db.delete_range::<&[u8]>(..)?;
                db.compact_with(s4db::CompactOptions::default().full(true))?;
            }
            Ok(db)
        })
        .map_err(to_py)?;
    Ok(db::Db::new(handle, keys, values))
}

/// Opens a new, empty in-memory database (files in a private directory in
/// RAM, removed by `close()` or when the handle is dropped).
#[pyfunction]
#[pyo3(signature = (
    remote=None, *, keys="bytes", values="bytes", max_segment_size=None, sync=None,
    access_key=None, secret_key=None, session_token=None, timeout=None, retries=None,
))]
#[allow(clippy::too_many_arguments)]
fn memory(
    py: Python<'_>,
    remote: Option<String>,
    keys: &str,
    values: &str,
    max_segment_size: Option<u64>,
    sync: Option<&str>,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<Bound<'_, PyAny>>,
) -> PyResult<db::Db> {
    let (keys, values) = (Mode::parse("keys", keys)?, Mode::parse("values", values)?);
    let b = configure(
        reach(
            s4db::DbBuilder::memory(),
            access_key,
            secret_key,
            session_token,
            timeout,
            retries.as_ref(),
        )?,
        remote,
        max_segment_size,
        sync,
        None,
    )?;
    let handle = py.detach(|| b.open_blocking()).map_err(to_py)?;
    Ok(db::Db::new(handle, keys, values))
}

/// The options `open` and `memory` share, beside how to reach the
/// remote ([`reach`]), applied to `b`.
fn configure(
    mut b: s4db::DbBuilder,
    remote: Option<String>,
    max_segment_size: Option<u64>,
    sync: Option<&str>,
    lock_wait: Option<f64>,
) -> PyResult<s4db::DbBuilder> {
    if let Some(url) = remote {
        b = b.remote(url);
    }
    if let Some(n) = max_segment_size {
        b = b.max_segment_size(n);
    }
    if let Some(s) = sync {
        b = b.sync(match s {
            "never" => s4db::SyncPolicy::Never,
            "flush" => s4db::SyncPolicy::OnFlush,
            "always" => s4db::SyncPolicy::EveryWrite,
            other => {
                return Err(value_error(format!(
                    "sync must be \"never\", \"flush\" or \"always\", not {other:?}"
                )));
            }
        });
    }
    if let Some(secs) = lock_wait {
        let wait = Duration::try_from_secs_f64(secs)
            .map_err(|_| value_error("lock_wait must be a number of seconds, 0 or more"))?;
        b = b.lock_wait(wait);
    }
    Ok(b)
}

/// Opens a read-only handle on the database at a remote URL, with no local
/// copy: each get reads a few byte ranges.
#[pyfunction]
#[pyo3(signature = (
    url, *, keys="bytes", values="bytes", access_key=None, secret_key=None, session_token=None,
    timeout=None, retries=None,
))]
#[allow(clippy::too_many_arguments)]
fn open_remote(
    py: Python<'_>,
    url: String,
    keys: &str,
    values: &str,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<Bound<'_, PyAny>>,
) -> PyResult<db::Db> {
    let (keys, values) = (Mode::parse("keys", keys)?, Mode::parse("values", values)?);
    let b = reach(
        s4db::DbBuilder::for_remote(url),
        access_key,
        secret_key,
        session_token,
        timeout,
        retries.as_ref(),
    )?;
    let handle = py.detach(|| b.open_blocking()).map_err(to_py)?;
    Ok(db::Db::new(handle, keys, values))
}

/// Converts the database the Python s4db (0.8 or 0.10) wrote at `source`
/// into the s4db database in directory `path` (see the package README).
#[pyfunction]
#[pyo3(signature = (
    source, path, *, mode=None, access_key=None, secret_key=None, session_token=None,
    timeout=None, retries=None,
))]
#[allow(clippy::too_many_arguments)]
fn migrate(
    py: Python<'_>,
    source: String,
    path: PathBuf,
    mode: Option<&str>,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<Bound<'_, PyAny>>,
) -> PyResult<report::Report> {
    let from = match mode {
        None => None,
        Some("index") => Some(s4db::MigrateFrom::Index),
        Some("replay") => Some(s4db::MigrateFrom::Replay),
        Some(other) => {
            return Err(value_error(format!(
                "mode must be \"index\", \"replay\" or None, not {other:?}"
            )));
        }
    };
    let src = reach(
        s4db::DbBuilder::for_remote(source),
        access_key,
        secret_key,
        session_token,
        timeout,
        retries.as_ref(),
    )?;
    let r = py
        .detach(|| {
            let db = s4db::blocking::Db::builder(&path)
                .create_if_missing(true)
                .open_blocking()?;
            let r = db.migrate_from(src, from);
            let closed = db.close();
            let r = r?;
            closed.map(|()| r)
        })
        .map_err(to_py)?;
    report::from::migrate(py, &r)
}

/// Commits the shards staged as `names` (`Db.stage`) to the database at
/// `url` in one conditional write: readers see all of them or none; where
/// shards hold the same key, the one named last wins.
#[pyfunction]
#[pyo3(signature = (
    url, names, *, access_key=None, secret_key=None, session_token=None, timeout=None,
    retries=None,
))]
#[allow(clippy::too_many_arguments)]
fn ingest(
    py: Python<'_>,
    url: String,
    names: Vec<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    session_token: Option<String>,
    timeout: Option<f64>,
    retries: Option<Bound<'_, PyAny>>,
) -> PyResult<report::Report> {
    let b = reach(
        s4db::DbBuilder::for_remote(url),
        access_key,
        secret_key,
        session_token,
        timeout,
        retries.as_ref(),
    )?;
    let r = py.detach(|| b.ingest_blocking(&names)).map_err(to_py)?;
    report::from::ingest(py, &r)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(open_remote, m)?)?;
    m.add_function(wrap_pyfunction!(memory, m)?)?;
    m.add_function(wrap_pyfunction!(migrate, m)?)?;
    m.add_function(wrap_pyfunction!(ingest, m)?)?;
    m.add_class::<db::Db>()?;
    m.add_class::<db::KeyIter>()?;
    m.add_class::<db::ItemIter>()?;
    m.add_class::<report::Report>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

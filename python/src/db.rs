//! The dict-like handle: `s4db_rs.Db` over [`s4db::blocking::Db`]. Every
//! call that does I/O or real work releases the GIL; the handle is safe to
//! share between threads.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::convert::{Mode, bytes_of};
use crate::errors::{key_error, to_py, value_error};
use crate::report::{Report, from};

/// An open s4db database (see `s4db_rs.open`).
#[pyclass(frozen, module = "s4db_rs", name = "Db")]
pub(crate) struct Db {
    db: s4db::blocking::Db,
    keys: Mode,
    values: Mode,
}

impl Db {
    pub(crate) fn new(db: s4db::blocking::Db, keys: Mode, values: Mode) -> Db {
        Db { db, keys, values }
    }
}

/// Runs `f` without the GIL and turns its error into a Python exception.
fn unlocked<T: Send>(py: Python<'_>, f: impl FnOnce() -> s4db::Result<T> + Send) -> PyResult<T> {
    py.detach(f).map_err(to_py)
}

/// A key and value given from Python, as bytes.
type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// A time to live in seconds, as a duration: positive and finite.
fn ttl_of(ttl: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(ttl)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| value_error("ttl must be a positive, finite number of seconds"))
}

/// A metadata name: a `str`.
fn name_of(name: &Bound<'_, PyAny>) -> PyResult<String> {
    name.cast::<PyString>()
        .map(|s| s.to_string())
        .map_err(|_| PyTypeError::new_err("a metadata name must be a str"))
}

/// The keys of an iterable, as bytes.
fn keys_of<'a>(items: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<Cow<'a, [u8]>>> {
    items.iter().map(|k| bytes_of("key", k)).collect()
}

#[pymethods]
impl Db {
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = bytes_of("key", key)?;
        match unlocked(py, || self.db.get(&k))? {
            Some(v) => self.values.to_py(py, &v),
            None => Err(key_error(key)),
        }
    }

    /// The value of `key`, or `default` if there is none.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = bytes_of("key", key)?;
        match unlocked(py, || self.db.get(&k))? {
            Some(v) => self.values.to_py(py, &v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (k, v) = (bytes_of("key", key)?, bytes_of("value", value)?);
        unlocked(py, || self.db.put(&k, &v))
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = bytes_of("key", key)?;
        let existed = unlocked(py, || {
            let there = self.db.contains(&k)?;
            if there {
                self.db.delete(&k)?;
            }
            Ok(there)
        })?;
        if existed { Ok(()) } else { Err(key_error(key)) }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let k = bytes_of("key", key)?;
        unlocked(py, || self.db.contains(&k))
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.db.len()).unwrap_or(usize::MAX)
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<KeyIter> {
        self.keys(py)
    }

    /// Every key, sorted, as a lazy iterator over a list taken now (keys
    /// only: no value is read).
    fn keys(&self, py: Python<'_>) -> PyResult<KeyIter> {
        let keys = unlocked(py, || self.db.keys())?;
        Ok(KeyIter {
            keys: Mutex::new(keys.into_iter()),
            mode: self.keys,
        })
    }

    /// `(key, value)` pairs in key order, read lazily.
    fn items(&self, py: Python<'_>) -> PyResult<ItemIter> {
        let it = unlocked(py, || self.db.iter())?;
        Ok(ItemIter::new(it, self.keys, self.values, Yield::Items))
    }

    /// Values in key order, read lazily.
    fn values(&self, py: Python<'_>) -> PyResult<ItemIter> {
        let it = unlocked(py, || self.db.iter())?;
        Ok(ItemIter::new(it, self.keys, self.values, Yield::Values))
    }

    /// `(key, value)` pairs of the keys that start with `prefix`, in key
    /// order, read lazily.
    fn scan_prefix(&self, py: Python<'_>, prefix: &Bound<'_, PyAny>) -> PyResult<ItemIter> {
        let p = bytes_of("prefix", prefix)?;
        let it = unlocked(py, || self.db.scan_prefix(&p))?;
        Ok(ItemIter::new(it, self.keys, self.values, Yield::Items))
    }

    /// Puts every pair of `items` (a mapping, or an iterable of
    /// `(key, value)` pairs) in one atomic batch; with `ttl` (seconds), each
    /// expires that long from now.
    #[pyo3(signature = (items, ttl=None))]
    fn put_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>, ttl: Option<f64>) -> PyResult<()> {
        let ttl = ttl.map(ttl_of).transpose()?;
        let pairs = if items.hasattr("items")? {
            items.call_method0("items")?
        } else {
            items.clone()
        };
        let mut held: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = Vec::new();
        for pair in pairs.try_iter()? {
            let pair = pair?;
            let t = pair
                .cast::<PyTuple>()
                .map_err(|_| value_error("put_many takes a mapping or (key, value) pairs"))?;
            if t.len() != 2 {
                return Err(value_error(
                    "put_many takes a mapping or (key, value) pairs",
                ));
            }
            held.push((t.get_item(0)?, t.get_item(1)?));
        }
        let converted: Vec<Pair<'_>> = held
            .iter()
            .map(|(k, v)| Ok((bytes_of("key", k)?, bytes_of("value", v)?)))
            .collect::<PyResult<_>>()?;
        unlocked(py, || {
            let Some(ttl) = ttl else {
                return self.db.put_many(converted.iter().map(|(k, v)| (k, v)));
            };
            let mut b = s4db::WriteBatch::new();
            for (k, v) in &converted {
                b.put_with_ttl(k, v, ttl)?;
            }
            self.db.write(b)
        })
    }

    /// Sets `key` to `value` until `ttl` seconds from now; then the key
    /// reads as absent everywhere, and compaction drops it.
    fn put_with_ttl(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: f64,
    ) -> PyResult<()> {
        let ttl = ttl_of(ttl)?;
        let (k, v) = (bytes_of("key", key)?, bytes_of("value", value)?);
        unlocked(py, || self.db.put_with_ttl(&k, &v, ttl))
    }

    /// The database metadata, as a dict of `str` names to `bytes` values.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let all = self.db.metadata().map_err(to_py)?;
        let out = PyDict::new(py);
        for (name, value) in all {
            out.set_item(name, PyBytes::new(py, &value))?;
        }
        Ok(out)
    }

    /// Sets metadata `name` to `value` (bytes or str) and commits it.
    fn set_metadata(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let name = name_of(name)?;
        let value = bytes::Bytes::copy_from_slice(&bytes_of("value", value)?);
        unlocked(py, || self.db.update_metadata([(name, Some(value))]))
    }

    /// Removes metadata `name` (nothing happens if it is not set).
    fn remove_metadata(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = name_of(name)?;
        unlocked(py, || self.db.update_metadata([(name, None)]))
    }

    /// Applies a mapping of names to values (`None` removes the name) as
    /// one commit.
    fn update_metadata(&self, py: Python<'_>, changes: &Bound<'_, PyAny>) -> PyResult<()> {
        let changes = changes
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("update_metadata takes a dict of names to values"))?;
        let mut list = Vec::with_capacity(changes.len());
        for (name, value) in changes.iter() {
            let value = if value.is_none() {
                None
            } else {
                Some(bytes::Bytes::copy_from_slice(&bytes_of("value", &value)?))
            };
            list.push((name_of(&name)?, value));
        }
        unlocked(py, || self.db.update_metadata(list))
    }

    /// The values of `keys`, in order (`None` where a key has none). Remote
    /// reads are coalesced and run in parallel.
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let held: Vec<Bound<'_, PyAny>> = keys.try_iter()?.collect::<PyResult<_>>()?;
        let ks = keys_of(&held)?;
        let got = unlocked(py, || self.db.get_many(ks.iter()))?;
        let mut out = Vec::with_capacity(got.len());
        for v in got {
            out.push(match v {
                Some(v) => self.values.to_py(py, &v)?,
                None => py.None().into_bound(py),
            });
        }
        PyList::new(py, out)
    }

    /// Deletes every key of `keys` in one atomic batch (a missing key is
    /// not an error).
    fn delete_many(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        let held: Vec<Bound<'_, PyAny>> = keys.try_iter()?.collect::<PyResult<_>>()?;
        let ks = keys_of(&held)?;
        unlocked(py, || {
            let mut batch = s4db::WriteBatch::new();
            for k in &ks {
                batch.delete(k)?;
            }
            self.db.write(batch)
        })
    }

    /// Deletes every key that starts with `prefix` in one atomic write;
    /// returns how many there were.
    fn delete_prefix(&self, py: Python<'_>, prefix: &Bound<'_, PyAny>) -> PyResult<u64> {
        let p = bytes_of("prefix", prefix)?;
        unlocked(py, || self.db.delete_prefix(&p))
    }

    /// Deletes every key `k` with `start <= k < end` (`None`: unbounded) in
    /// one atomic write; returns how many there were.
    #[pyo3(signature = (start=None, end=None))]
    fn delete_range(
        &self,
        py: Python<'_>,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        use std::ops::Bound as B;
        let s = start.map(|s| bytes_of("start", s)).transpose()?;
        let e = end.map(|e| bytes_of("end", e)).transpose()?;
        let lo = s.as_deref().map_or(B::Unbounded, B::Included);
        let hi = e.as_deref().map_or(B::Unbounded, B::Excluded);
        unlocked(py, || self.db.delete_range::<&[u8]>((lo, hi)))
    }

    /// Makes every write so far durable (fsync, unless the sync policy is
    /// `"never"`).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        unlocked(py, || self.db.flush())
    }

    /// Writes the index, so that the next open replays nothing.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        unlocked(py, || self.db.checkpoint())
    }

    /// Rewrites the segments of which at least `min_dead_percent` is dead
    /// (every segment with `full`).
    #[pyo3(signature = (full = false, min_dead_percent = 50))]
    fn compact(&self, py: Python<'_>, full: bool, min_dead_percent: i64) -> PyResult<Report> {
        let percent = u8::try_from(min_dead_percent).map_err(|_| {
            to_py(s4db::Error::InvalidArgument(format!(
                "min_dead_percent must be 1 to 100, not {min_dead_percent}"
            )))
        })?;
        let opts = s4db::CompactOptions::default()
            .full(full)
            .min_dead_percent(percent);
        let r = unlocked(py, || self.db.compact_with(opts))?;
        from::compaction(py, &r)
    }

    /// Rebuilds the index from the segments, keeping every good record.
    fn rebuild_index(&self, py: Python<'_>) -> PyResult<Report> {
        let r = unlocked(py, || self.db.rebuild_index())?;
        from::rebuild(py, &r)
    }

    /// Reads every segment and checks every checksum; problems are listed.
    fn verify(&self, py: Python<'_>) -> PyResult<Report> {
        let r = unlocked(py, || self.db.verify())?;
        from::verify(py, &r)
    }

    /// Sizes and counts.
    fn stats(&self, py: Python<'_>) -> PyResult<Report> {
        let r = unlocked(py, || self.db.stats())?;
        from::stats(py, &r)
    }

    /// Uploads new segments, then commits the index (see the README).
    #[pyo3(signature = (rebase=false, single_writer=false))]
    fn upload(&self, py: Python<'_>, rebase: bool, single_writer: bool) -> PyResult<Report> {
        let opts = s4db::UploadOptions::default()
            .rebase(rebase)
            .single_writer(single_writer);
        let r = unlocked(py, || self.db.upload_with(opts))?;
        from::upload(py, &r)
    }

    /// Makes the directory a copy of its remote; `force` discards writes
    /// that were never uploaded.
    #[pyo3(signature = (force=false))]
    fn download(&self, py: Python<'_>, force: bool) -> PyResult<Report> {
        let opts = s4db::DownloadOptions::default().force(force);
        let r = unlocked(py, || self.db.download_with(opts))?;
        from::download(py, &r)
    }

    /// Brings back a database whose remote `index.idx` was lost, into this
    /// directory (which must hold no key); `upload` then commits it.
    fn restore_from_remote(&self, py: Python<'_>) -> PyResult<Report> {
        let r = unlocked(py, || self.db.restore_from_remote())?;
        from::restore(py, &r)
    }

    /// Deletes remote segments no reader can need any more, after `grace`
    /// seconds.
    #[pyo3(signature = (grace=3600.0))]
    fn gc(&self, py: Python<'_>, grace: f64) -> PyResult<Report> {
        let grace = Duration::try_from_secs_f64(grace)
            .map_err(|_| value_error("grace must be a number of seconds, 0 or more"))?;
        let r = unlocked(py, || self.db.gc(grace))?;
        from::gc(py, &r)
    }

    /// What the next upload would publish: the keys put and deleted since
    /// the last sync with the remote, sorted by key.
    fn changes(&self, py: Python<'_>) -> PyResult<Report> {
        let c = unlocked(py, || self.db.changes())?;
        from::changes(py, &c, |k| self.keys.to_py(py, k).map(Bound::unbind))
    }

    /// Drops unsynced changes: of every key (`keys=None`), or of the keys
    /// given; they read as at the last sync again.
    #[pyo3(signature = (keys=None))]
    fn discard(&self, py: Python<'_>, keys: Option<&Bound<'_, PyAny>>) -> PyResult<Report> {
        let r = match keys {
            None => unlocked(py, || self.db.discard_all())?,
            Some(keys) => {
                let held: Vec<Bound<'_, PyAny>> = keys.try_iter()?.collect::<PyResult<_>>()?;
                let ks = keys_of(&held)?;
                unlocked(py, || self.db.discard(ks.iter()))?
            }
        };
        from::discard(py, &r)
    }

    /// Deletes the database from its remote: `index.idx` first, then every
    /// object under the prefix. The local directory stays.
    fn delete_remote(&self, py: Python<'_>) -> PyResult<Report> {
        let r = unlocked(py, || self.db.delete_remote())?;
        from::delete_remote(py, &r)
    }

    /// Copies the remote's committed state to the remote at `url` (its
    /// `index.idx` last); run it again to resume an interrupted copy.
    #[pyo3(signature = (
        url, *, access_key=None, secret_key=None, session_token=None, timeout=None, retries=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn copy_remote(
        &self,
        py: Python<'_>,
        url: String,
        access_key: Option<String>,
        secret_key: Option<String>,
        session_token: Option<String>,
        timeout: Option<f64>,
        retries: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Report> {
        let to = crate::reach(
            s4db::DbBuilder::for_remote(url),
            access_key,
            secret_key,
            session_token,
            timeout,
            retries.as_ref(),
        )?;
        let r = unlocked(py, || self.db.copy_remote(to))?;
        from::copy_remote(py, &r)
    }

    /// Folds every index run into one: after an ingest of many shards,
    /// lookups consult one run again and the key count is exact.
    fn merge_index(&self, py: Python<'_>) -> PyResult<()> {
        unlocked(py, || self.db.merge_index())
    }

    /// Stages this database as shard `name` of the database at `url`, for
    /// `s4db_rs.ingest` to commit: its segments and index runs, then a
    /// manifest; readers see nothing until the ingest.
    #[pyo3(signature = (
        url, name, *, access_key=None, secret_key=None, session_token=None, timeout=None,
        retries=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &self,
        py: Python<'_>,
        url: String,
        name: String,
        access_key: Option<String>,
        secret_key: Option<String>,
        session_token: Option<String>,
        timeout: Option<f64>,
        retries: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Report> {
        let to = crate::reach(
            s4db::DbBuilder::for_remote(url),
            access_key,
            secret_key,
            session_token,
            timeout,
            retries.as_ref(),
        )?;
        let r = unlocked(py, || self.db.stage(to, &name))?;
        from::stage(py, &r)
    }

    /// For a handle on a remote alone: checks for a newer commit and moves
    /// to it; `True` if there was one.
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        unlocked(py, || self.db.refresh())
    }

    /// Flushes and closes; later calls raise `ClosedError`. Closing twice
    /// is allowed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        unlocked(py, || self.db.close())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let path = self.db.to_async().path().display().to_string();
        if path.is_empty() {
            "<s4db_rs.Db on a remote>".to_string()
        } else {
            format!("<s4db_rs.Db {path:?}>")
        }
    }
}

/// Keys, from a list taken when the iterator was made.
#[pyclass(frozen, module = "s4db_rs", name = "KeyIterator")]
pub(crate) struct KeyIter {
    keys: Mutex<std::vec::IntoIter<bytes::Bytes>>,
    mode: Mode,
}

#[pymethods]
impl KeyIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = self.keys.lock().map_err(|_| poisoned())?.next();
        match next {
            Some(k) => self.mode.to_py(py, &k),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __length_hint__(&self) -> usize {
        self.keys.lock().map_or(0, |k| k.len())
    }
}

#[derive(Debug, Clone, Copy)]
enum Yield {
    Items,
    Values,
}

/// Pairs or values, read lazily from an s4db iterator.
#[pyclass(frozen, module = "s4db_rs", name = "ItemIterator")]
pub(crate) struct ItemIter {
    inner: Mutex<s4db::blocking::Iter>,
    keys: Mode,
    values: Mode,
    what: Yield,
}

impl ItemIter {
    fn new(inner: s4db::blocking::Iter, keys: Mode, values: Mode, what: Yield) -> ItemIter {
        ItemIter {
            inner: Mutex::new(inner),
            keys,
            values,
            what,
        }
    }
}

fn poisoned() -> PyErr {
    value_error("this iterator failed in another thread")
}

#[pymethods]
impl ItemIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = py.detach(|| self.inner.lock().map(|mut it| it.next()).map_err(|_| ()));
        match next.map_err(|_| poisoned())? {
            Some(Ok((k, v))) => match self.what {
                Yield::Values => self.values.to_py(py, &v),
                Yield::Items => Ok(PyTuple::new(
                    py,
                    [self.keys.to_py(py, &k)?, self.values.to_py(py, &v)?],
                )?
                .into_any()),
            },
            Some(Err(e)) => Err(to_py(e)),
            None => Err(PyStopIteration::new_err(())),
        }
    }
}

//! The public async handle, [`Db`], its builder, and [`Iter`].
//!
//! Gets and puts that only touch memory and the page cache run inline; work
//! that may block for long (opening, fsync under `EveryWrite`, compaction,
//! rebuild, verify, close) runs on tokio's blocking pool when a tokio runtime
//! is present, and inline otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};
use crate::options::{Options, SyncPolicy};
use crate::report::{CompactionReport, RebuildReport, Stats, VerifyReport};

/// Runs blocking work off the async worker threads when possible.
async fn offload<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.spawn_blocking(f).await.map_err(|e| {
            Error::io(
                "running a background task",
                std::io::Error::other(e.to_string()),
            )
        })?,
        Err(_) => f(),
    }
}

/// Configures and opens a [`Db`]. Every setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct DbBuilder {
    path: PathBuf,
    opts: Options,
}

impl DbBuilder {
    /// A builder for the database in directory `path`, with default options.
    pub fn new(path: impl AsRef<Path>) -> Self {
        DbBuilder {
            path: path.as_ref().to_path_buf(),
            opts: Options::default(),
        }
    }

    /// Soft size limit of a segment file. Default 64 MiB; allowed 4 KiB to 2 GiB.
    pub fn max_segment_size(mut self, bytes: u64) -> Self {
        self.opts.max_segment_size = bytes;
        self
    }

    /// When to fsync. Default [`SyncPolicy::OnFlush`].
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.opts.sync = policy;
        self
    }

    /// Open without writing anything, sharing the directory with other
    /// read-only handles. Default `false`.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.opts.read_only = yes;
        self
    }

    /// Create the directory and an empty database if there is none. Default `true`.
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.opts.create_if_missing = yes;
        self
    }

    /// Rebuild the index from the segments instead of loading `index.idx`:
    /// the repair path for a lost or corrupt index. The report is available
    /// from [`Db::rebuild_report`]. Default `false`.
    pub fn rebuild_index(mut self, yes: bool) -> Self {
        self.opts.rebuild_index = yes;
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, opts: Options) -> Self {
        self.opts = opts;
        self
    }

    /// Opens the database.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle holds the directory,
    /// [`Error::NotFound`] if there is no database and `create_if_missing` is
    /// off (or the handle is read-only), [`Error::Corruption`] if
    /// `index.idx` or a sealed segment fails its checks (see
    /// [`DbBuilder::rebuild_index`]), [`Error::InvalidArgument`] for bad
    /// options, [`Error::Io`] for I/O failures.
    pub async fn open(self) -> Result<Db> {
        offload(move || self.open_sync()).await
    }

    pub(crate) fn open_sync(self) -> Result<Db> {
        let (engine, rebuilt) = Engine::open(&self.path, self.opts)?;
        Ok(Db {
            engine: Arc::new(engine),
            rebuilt: rebuilt.map(Arc::new),
        })
    }
}

/// An open s4db database. Cheap to clone (clones share one handle); `Send +
/// Sync`, so many tasks can read while one writes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> s4db::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let db = s4db::Db::open(dir.path()).await?;
/// db.put("hello", "world").await?;
/// assert_eq!(db.get("hello").await?.as_deref(), Some(&b"world"[..]));
/// db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) engine: Arc<Engine>,
    rebuilt: Option<Arc<RebuildReport>>,
}

/// Iterates over a snapshot of keys (sorted bytewise) and their values.
/// Values are read lazily; the snapshot stays valid across later writes and
/// compactions.
#[derive(Debug)]
pub struct Iter {
    snap: Snapshot,
    pos: usize,
}

impl Iter {
    /// The next key and value, or `None` at the end.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a record fails its checks, [`Error::Io`].
    pub async fn next(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        self.next_sync()
    }

    pub(crate) fn next_sync(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        let item = self.snap.value(self.pos).transpose()?;
        self.pos += 1;
        Some(item)
    }

    /// Entries not yet returned.
    pub fn remaining(&self) -> usize {
        self.snap.items.len().saturating_sub(self.pos)
    }
}

impl Db {
    /// Opens (creating if needed) the database in directory `path` with
    /// default options. See [`DbBuilder`] for the options.
    ///
    /// # Errors
    /// As [`DbBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::new(path).open().await
    }

    /// A builder for the database in `path`.
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder::new(path)
    }

    /// The report of the index rebuild done while opening, if one was done
    /// (asked for, or because `index.idx` was missing).
    pub fn rebuild_report(&self) -> Option<&RebuildReport> {
        self.rebuilt.as_deref()
    }

    /// The value of `key`, or `None`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long key,
    /// [`Error::Corruption`] if the record fails its checksum or holds another
    /// key, [`Error::Closed`], [`Error::Io`].
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.engine.get(key.as_ref())
    }

    /// The values of several keys, in the order given.
    ///
    /// # Errors
    /// As [`Db::get`]; the first failure is returned.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        keys.into_iter()
            .map(|k| self.engine.get(k.as_ref()))
            .collect()
    }

    /// Whether `key` is present (no value is read).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad key, [`Error::Closed`].
    pub async fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.engine.contains(key.as_ref())
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        self.engine.len()
    }

    /// True when there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key, sorted bytewise.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn keys(&self) -> Result<Vec<Bytes>> {
        let e = self.engine.clone();
        offload(move || {
            Ok(e.snapshot(None)?
                .items
                .into_iter()
                .map(|(k, _)| k)
                .collect())
        })
        .await
    }

    /// Iterates over every key and value, sorted by key.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn iter(&self) -> Result<Iter> {
        self.scan(None).await
    }

    /// Iterates over the keys starting with `prefix`, sorted, with values.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        self.scan(Some(prefix.as_ref().to_vec())).await
    }

    async fn scan(&self, prefix: Option<Vec<u8>>) -> Result<Iter> {
        let e = self.engine.clone();
        let snap = offload(move || e.snapshot(prefix.as_deref())).await?;
        Ok(Iter { snap, pos: 0 })
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty key or a key or value over the
    /// limits ([`crate::MAX_KEY_LEN`], [`crate::MAX_VALUE_LEN`]),
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Io`].
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value)?;
        self.write(b).await
    }

    /// Deletes `key` (deleting a missing key is not an error).
    ///
    /// # Errors
    /// As [`Db::put`].
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key)?;
        self.write(b).await
    }

    /// Puts every pair atomically: after a crash, all or none are visible.
    ///
    /// # Errors
    /// As [`Db::put`]; on an error nothing is written.
    pub async fn put_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        self.write(WriteBatch::from_pairs(pairs)?).await
    }

    /// Applies a batch atomically.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Io`].
    pub async fn write(&self, batch: WriteBatch) -> Result<()> {
        if let Some(seq) = self.engine.write(batch)? {
            let e = self.engine.clone();
            offload(move || e.wait_durable(seq)).await?;
        }
        Ok(())
    }

    /// Makes every write so far durable (fsync), unless the policy is
    /// [`SyncPolicy::Never`].
    ///
    /// # Errors
    /// [`Error::Io`] (after which the handle refuses writes), [`Error::ReadOnly`],
    /// [`Error::Closed`].
    pub async fn flush(&self) -> Result<()> {
        let e = self.engine.clone();
        offload(move || e.flush()).await
    }

    /// Writes `index.idx` now if anything changed, so that the next open
    /// replays nothing. `close()` does this too.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn checkpoint(&self) -> Result<()> {
        let e = self.engine.clone();
        offload(move || e.checkpoint()).await
    }

    /// Rewrites every live record into new segments, dropping overwritten
    /// records and tombstones; the new index is durable before anything is
    /// deleted. Readers keep working; writers wait.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a live record fails its checks (nothing is
    /// changed then), [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn compact(&self) -> Result<CompactionReport> {
        let e = self.engine.clone();
        offload(move || crate::compaction::compact(&e)).await
    }

    /// Rebuilds the index from the segment files alone, checking every
    /// checksum, skipping damaged ranges and cutting a torn tail; writes the
    /// new `index.idx`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn rebuild_index(&self) -> Result<RebuildReport> {
        let e = self.engine.clone();
        offload(move || e.rebuild_index()).await
    }

    /// Reads every segment, checks every checksum and that the index and the
    /// segments agree. Problems are listed in the report, not returned as errors.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Closed`].
    pub async fn verify(&self) -> Result<VerifyReport> {
        let e = self.engine.clone();
        offload(move || crate::verify::verify(&e)).await
    }

    /// Sizes and counts.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn stats(&self) -> Result<Stats> {
        self.engine.stats()
    }

    /// Writes `index.idx` if needed and closes the handle (all clones).
    /// Dropping the last clone does the same, logging rather than returning
    /// an error.
    ///
    /// # Errors
    /// [`Error::Io`] if the index cannot be written.
    pub async fn close(&self) -> Result<()> {
        let e = self.engine.clone();
        offload(move || e.close()).await
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.engine.opts
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.engine.dir
    }

    pub(crate) fn from_parts(engine: Arc<Engine>, rebuilt: Option<Arc<RebuildReport>>) -> Db {
        Db { engine, rebuilt }
    }

    pub(crate) fn rebuilt_arc(&self) -> Option<Arc<RebuildReport>> {
        self.rebuilt.clone()
    }

    pub(crate) fn sync_policy(&self) -> SyncPolicy {
        self.engine.opts.sync
    }
}

pub(crate) fn iter_from(snap: Snapshot) -> Iter {
    Iter { snap, pos: 0 }
}

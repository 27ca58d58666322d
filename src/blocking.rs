//! A synchronous handle for callers without an async runtime.
//!
//! [`Db`] mirrors [`crate::Db`] method for method and shares its engine: the
//! work is the same, only the calling convention differs. It may be used from
//! any thread, inside or outside a tokio runtime (its calls block).

use std::ops::RangeBounds;
use std::path::Path;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::builder::DbBuilder;
use crate::error::Result;
use crate::options::SyncPolicy;
use crate::report::{CompactionReport, RebuildReport, Stats, VerifyReport};
use crate::{DownloadReport, GcReport, UploadOptions, UploadReport};

/// A blocking handle to an s4db database. Cheap to clone; `Send + Sync`.
///
/// ```
/// # fn main() -> s4db::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let db = s4db::blocking::Db::open(dir.path())?;
/// db.put("k", "v")?;
/// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    inner: crate::Db,
}

/// Blocking iteration over a snapshot; see [`crate::Iter`].
#[derive(Debug)]
pub struct Iter(crate::Iter);

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_sync()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.remaining(), Some(self.0.remaining()))
    }
}

impl DbBuilder {
    /// Opens the database as a blocking handle.
    ///
    /// # Errors
    /// As [`DbBuilder::open`].
    pub fn open_blocking(self) -> Result<Db> {
        Ok(Db {
            inner: futures::executor::block_on(self.open())?,
        })
    }

    /// [`DbBuilder::delete_remote`], waiting for it.
    ///
    /// # Errors
    /// As [`DbBuilder::delete_remote`].
    pub fn delete_remote_blocking(self) -> Result<crate::DeleteRemoteReport> {
        futures::executor::block_on(self.delete_remote())
    }

    /// [`DbBuilder::ingest`], waiting for it.
    ///
    /// # Errors
    /// As [`DbBuilder::ingest`].
    pub fn ingest_blocking<S: AsRef<str>>(
        self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<crate::IngestReport> {
        futures::executor::block_on(self.ingest(names))
    }

    /// [`DbBuilder::copy_remote`], waiting for it.
    ///
    /// # Errors
    /// As [`DbBuilder::copy_remote`].
    pub fn copy_remote_blocking(self, to: DbBuilder) -> Result<crate::CopyRemoteReport> {
        futures::executor::block_on(self.copy_remote(to))
    }
}

impl Db {
    /// Opens (creating if needed) the database in `path` with default options.
    ///
    /// # Errors
    /// As [`crate::DbBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        DbBuilder::new(path).open_blocking()
    }

    /// A builder; finish it with [`DbBuilder::open_blocking`].
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder::new(path)
    }

    /// Opens a new, empty in-memory database: see [`DbBuilder::memory`].
    ///
    /// # Errors
    /// As [`crate::DbBuilder::open`].
    pub fn memory() -> Result<Db> {
        DbBuilder::memory().open_blocking()
    }

    /// The async handle sharing this database.
    pub fn to_async(&self) -> crate::Db {
        self.inner.clone()
    }

    /// See [`crate::Db::rebuild_report`].
    pub fn rebuild_report(&self) -> Option<&RebuildReport> {
        self.inner.rebuild_report()
    }

    /// See [`crate::Db::get`].
    ///
    /// # Errors
    /// As [`crate::Db::get`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        // Local records are read right here; anything remote goes through
        // the async path.
        if let Some(engine) = self.inner.local_engine()
            && let Ok(v) = engine.get_local(key.as_ref())?
        {
            return Ok(v);
        }
        futures::executor::block_on(self.inner.get(key))
    }

    /// See [`crate::Db::get_many`].
    ///
    /// # Errors
    /// As [`crate::Db::get`].
    pub fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        futures::executor::block_on(self.inner.get_many(keys))
    }

    /// See [`crate::Db::contains`].
    ///
    /// # Errors
    /// As [`crate::Db::contains`].
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        futures::executor::block_on(self.inner.contains(key))
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// True when there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// See [`crate::Db::keys`].
    ///
    /// # Errors
    /// As [`crate::Db::keys`].
    pub fn keys(&self) -> Result<Vec<Bytes>> {
        futures::executor::block_on(self.inner.keys())
    }

    /// See [`crate::Db::iter`].
    ///
    /// # Errors
    /// As [`crate::Db::iter`].
    pub fn iter(&self) -> Result<Iter> {
        futures::executor::block_on(self.inner.iter()).map(Iter)
    }

    /// See [`crate::Db::scan_prefix`].
    ///
    /// # Errors
    /// As [`crate::Db::scan_prefix`].
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        futures::executor::block_on(self.inner.scan_prefix(prefix)).map(Iter)
    }

    /// See [`crate::Db::put`].
    ///
    /// # Errors
    /// As [`crate::Db::put`].
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value)?;
        self.write(b)
    }

    /// See [`crate::Db::put_with_ttl`].
    ///
    /// # Errors
    /// As [`crate::Db::put_with_ttl`].
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put_with_ttl(key, value, ttl)?;
        self.write(b)
    }

    /// See [`crate::Db::metadata`].
    ///
    /// # Errors
    /// As [`crate::Db::metadata`].
    pub fn metadata(&self) -> Result<std::collections::BTreeMap<String, Bytes>> {
        self.inner.metadata()
    }

    /// See [`crate::Db::set_metadata`].
    ///
    /// # Errors
    /// As [`crate::Db::update_metadata`].
    pub fn set_metadata(&self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Result<()> {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.update_metadata([(name.into(), Some(value))])
    }

    /// See [`crate::Db::remove_metadata`].
    ///
    /// # Errors
    /// As [`crate::Db::update_metadata`].
    pub fn remove_metadata(&self, name: impl Into<String>) -> Result<()> {
        self.update_metadata([(name.into(), None)])
    }

    /// See [`crate::Db::update_metadata`].
    ///
    /// # Errors
    /// As [`crate::Db::update_metadata`].
    pub fn update_metadata(
        &self,
        changes: impl IntoIterator<Item = (String, Option<Bytes>)>,
    ) -> Result<()> {
        futures::executor::block_on(self.inner.update_metadata(changes))
    }

    /// See [`crate::Db::delete`].
    ///
    /// # Errors
    /// As [`crate::Db::delete`].
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key)?;
        self.write(b)
    }

    /// See [`crate::Db::delete_prefix`].
    ///
    /// # Errors
    /// As [`crate::Db::delete_prefix`].
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<u64> {
        futures::executor::block_on(self.inner.delete_prefix(prefix))
    }

    /// See [`crate::Db::delete_range`].
    ///
    /// # Errors
    /// As [`crate::Db::delete_range`].
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<u64> {
        futures::executor::block_on(self.inner.delete_range(range))
    }

    /// See [`crate::Db::put_many`].
    ///
    /// # Errors
    /// As [`crate::Db::put_many`].
    pub fn put_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<()> {
        self.write(WriteBatch::from_pairs(pairs)?)
    }

    /// See [`crate::Db::write`].
    ///
    /// # Errors
    /// As [`crate::Db::write`].
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let engine = self.inner.engine()?;
        match engine.write(batch)? {
            Some(seq) if self.inner.sync_policy() == SyncPolicy::EveryWrite => {
                engine.wait_durable(seq)
            }
            _ => Ok(()),
        }
    }

    /// See [`crate::Db::flush`].
    ///
    /// # Errors
    /// As [`crate::Db::flush`].
    pub fn flush(&self) -> Result<()> {
        self.inner.engine()?.flush()
    }

    /// See [`crate::Db::checkpoint`].
    ///
    /// # Errors
    /// As [`crate::Db::checkpoint`].
    pub fn checkpoint(&self) -> Result<()> {
        self.inner.engine()?.checkpoint()
    }

    /// See [`crate::Db::compact`].
    ///
    /// # Errors
    /// As [`crate::Db::compact`].
    pub fn compact(&self) -> Result<CompactionReport> {
        futures::executor::block_on(self.inner.compact())
    }

    /// See [`crate::Db::compact_with`].
    ///
    /// # Errors
    /// As [`crate::Db::compact_with`].
    pub fn compact_with(&self, opts: crate::CompactOptions) -> Result<CompactionReport> {
        futures::executor::block_on(self.inner.compact_with(opts))
    }

    /// See [`crate::Db::rebuild_index`].
    ///
    /// # Errors
    /// As [`crate::Db::rebuild_index`].
    pub fn rebuild_index(&self) -> Result<RebuildReport> {
        futures::executor::block_on(self.inner.rebuild_index())
    }

    /// See [`crate::Db::verify`].
    ///
    /// # Errors
    /// As [`crate::Db::verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        futures::executor::block_on(self.inner.verify())
    }

    /// See [`crate::Db::open_remote`].
    ///
    /// # Errors
    /// As [`crate::Db::open_remote`].
    pub fn open_remote(url: impl Into<String>) -> Result<Db> {
        DbBuilder::for_remote(url).open_blocking()
    }

    /// See [`crate::Db::upload`].
    ///
    /// # Errors
    /// As [`crate::Db::upload`].
    pub fn upload(&self) -> Result<UploadReport> {
        futures::executor::block_on(self.inner.upload())
    }

    /// See [`crate::Db::upload_with`].
    ///
    /// # Errors
    /// As [`crate::Db::upload`].
    pub fn upload_with(&self, opts: UploadOptions) -> Result<UploadReport> {
        futures::executor::block_on(self.inner.upload_with(opts))
    }

    /// See [`crate::Db::delete_remote`].
    ///
    /// # Errors
    /// As [`crate::Db::delete_remote`].
    pub fn delete_remote(&self) -> Result<crate::DeleteRemoteReport> {
        futures::executor::block_on(self.inner.delete_remote())
    }

    /// See [`crate::Db::migrate_from`].
    ///
    /// # Errors
    /// As [`crate::Db::migrate_from`].
    pub fn migrate_from(
        &self,
        source: DbBuilder,
        from: Option<crate::MigrateFrom>,
    ) -> Result<crate::MigrateReport> {
        futures::executor::block_on(self.inner.migrate_from(source, from))
    }

    /// See [`crate::Db::changes`].
    ///
    /// # Errors
    /// As [`crate::Db::changes`].
    pub fn changes(&self) -> Result<crate::Changes> {
        futures::executor::block_on(self.inner.changes())
    }

    /// See [`crate::Db::discard_all`].
    ///
    /// # Errors
    /// As [`crate::Db::discard_all`].
    pub fn discard_all(&self) -> Result<crate::DiscardReport> {
        futures::executor::block_on(self.inner.discard_all())
    }

    /// See [`crate::Db::discard`].
    ///
    /// # Errors
    /// As [`crate::Db::discard`].
    pub fn discard<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<crate::DiscardReport> {
        futures::executor::block_on(self.inner.discard(keys))
    }

    /// See [`crate::Db::merge_index`].
    ///
    /// # Errors
    /// As [`crate::Db::merge_index`].
    pub fn merge_index(&self) -> Result<()> {
        futures::executor::block_on(self.inner.merge_index())
    }

    /// See [`crate::Db::stage`].
    ///
    /// # Errors
    /// As [`crate::Db::stage`].
    pub fn stage(&self, to: DbBuilder, name: &str) -> Result<crate::StageReport> {
        futures::executor::block_on(self.inner.stage(to, name))
    }

    /// See [`crate::Db::copy_remote`].
    ///
    /// # Errors
    /// As [`crate::Db::copy_remote`].
    pub fn copy_remote(&self, to: DbBuilder) -> Result<crate::CopyRemoteReport> {
        futures::executor::block_on(self.inner.copy_remote(to))
    }

    /// See [`crate::Db::download`].
    ///
    /// # Errors
    /// As [`crate::Db::download`].
    pub fn download(&self) -> Result<DownloadReport> {
        futures::executor::block_on(self.inner.download())
    }

    /// See [`crate::Db::download_with`].
    ///
    /// # Errors
    /// As [`crate::Db::download`].
    pub fn download_with(&self, opts: crate::DownloadOptions) -> Result<DownloadReport> {
        futures::executor::block_on(self.inner.download_with(opts))
    }

    /// See [`crate::Db::restore_from_remote`].
    ///
    /// # Errors
    /// As [`crate::Db::restore_from_remote`].
    pub fn restore_from_remote(&self) -> Result<crate::RestoreReport> {
        futures::executor::block_on(self.inner.restore_from_remote())
    }

    /// See [`crate::Db::gc`].
    ///
    /// # Errors
    /// As [`crate::Db::gc`].
    pub fn gc(&self, grace: std::time::Duration) -> Result<GcReport> {
        futures::executor::block_on(self.inner.gc(grace))
    }

    /// See [`crate::Db::gc_with`].
    ///
    /// # Errors
    /// As [`crate::Db::gc_with`].
    pub fn gc_with(&self, opts: crate::GcOptions) -> Result<GcReport> {
        futures::executor::block_on(self.inner.gc_with(opts))
    }

    /// See [`crate::Db::refresh`].
    ///
    /// # Errors
    /// As [`crate::Db::refresh`].
    pub fn refresh(&self) -> Result<bool> {
        futures::executor::block_on(self.inner.refresh())
    }

    /// See [`crate::Db::remote_stats`].
    pub fn remote_stats(&self) -> Option<crate::RemoteStats> {
        self.inner.remote_stats()
    }

    /// See [`crate::Db::stats`].
    ///
    /// # Errors
    /// As [`crate::Db::stats`].
    pub fn stats(&self) -> Result<Stats> {
        futures::executor::block_on(self.inner.stats())
    }

    /// See [`crate::Db::close`].
    ///
    /// # Errors
    /// As [`crate::Db::close`].
    pub fn close(&self) -> Result<()> {
        match self.inner.local_engine() {
            Some(engine) => engine.close(),
            None => futures::executor::block_on(self.inner.close()),
        }
    }
}

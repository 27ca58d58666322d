//! The public async handle, [`Db`]: over a local directory (the engine,
//! with or without a remote attached) or over a remote alone (a
//! [`RemoteReader`]).
//!
//! Gets and puts that only touch memory and the page cache run inline; work
//! that may block for long (opening, fsync under `EveryWrite`, compaction,
//! rebuild, verify, close) runs on tokio's blocking pool when a tokio runtime
//! is present, and inline otherwise.

use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::engine::compaction::CompactOptions;
use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};
use crate::io::offload::offload;
use crate::iter::Iter;
use crate::options::{Options, SyncPolicy};
use crate::remote::RemoteStats;
use crate::remote::ctx::RemoteCtx;
use crate::report::{CompactionReport, RebuildReport, Stats, VerifyReport};
use crate::sync::copy::CopyRemoteReport;
use crate::sync::download::DownloadReport;
use crate::sync::gc::{Collector, GcReport};
use crate::sync::remote_read::{self, Wanted};
use crate::sync::remote_reader::RemoteReader;
use crate::sync::remove::DeleteRemoteReport;
use crate::sync::upload::{UploadOptions, UploadReport};

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
    handle: Handle,
}

/// What a [`Db`] reads and writes through.
#[derive(Debug, Clone)]
enum Handle {
    /// A local directory (with or without a remote attached).
    Local {
        engine: Arc<Engine>,
        /// The report of the rebuild done while opening, if any.
        rebuilt: Option<Arc<RebuildReport>>,
    },
    /// A remote alone, read-only.
    Remote(Arc<RemoteReader>),
}

impl Db {
    /// The report of the index rebuild done while opening, if one was done
    /// (`crate::DbBuilder::rebuild_index`; a missing `index.idx` fails the open instead).
    pub fn rebuild_report(&self) -> Option<&RebuildReport> {
        match &self.handle {
            Handle::Local { rebuilt, .. } => rebuilt.as_deref(),
            Handle::Remote(_) => None,
        }
    }

    /// For a handle over a remote alone: checks whether the remote index
    /// changed (a conditional GET with `If-None-Match` on its entity tag, or a
    /// HEAD after a full load) and, if so, switches to the new one. Returns
    /// whether it changed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a handle with a local directory,
    /// [`Error::NotFound`] if the remote index is gone, [`Error::Remote`].
    pub async fn refresh(&self) -> Result<bool> {
        match &self.handle {
            Handle::Remote(r) => r.refresh().await,
            Handle::Local { .. } => Err(Error::InvalidArgument(
                "refresh() is for handles opened with open_remote; a local directory syncs with download()".into(),
            )),
        }
    }

    /// The value of `key`, or `None`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long key,
    /// [`Error::Corruption`] if the record fails its checksum or holds another
    /// key, [`Error::Closed`], [`Error::Io`].
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        let engine = match &self.handle {
            Handle::Remote(r) => return Ok(r.get_many(&[key]).await?.pop().flatten()),
            Handle::Local { engine, .. } => engine,
        };
        match engine.get_local(key)? {
            Ok(v) => Ok(v),
            Err((seg, loc)) => remote_read::get_one(engine.remote(), &seg, key, loc).await,
        }
    }

    /// The values of several keys, in the order given.
    ///
    /// # Errors
    /// As [`Db::get`]; the first failure is returned.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let engine = match &self.handle {
            Handle::Remote(r) => {
                let keys: Vec<K> = keys.into_iter().collect();
                let refs: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
                return r.get_many(&refs).await;
            }
            Handle::Local { engine, .. } => engine,
        };
        let mut out = Vec::new();
        let mut remote: Vec<(Arc<crate::engine::segment::Segment>, Vec<Wanted>)> = Vec::new();
        for (slot, key) in keys.into_iter().enumerate() {
            let key = key.as_ref();
            match engine.get_local(key)? {
                Ok(v) => out.push(v),
                Err((seg, loc)) => {
                    out.push(None);
                    let w = Wanted {
                        slot,
                        key: Bytes::copy_from_slice(key),
                        loc,
                    };
                    remote_read::want(&mut remote, &seg, w);
                }
            }
        }
        if !remote.is_empty() {
            remote_read::get_many(engine.remote(), remote, &mut out).await?;
        }
        Ok(out)
    }

    /// Whether `key` is present: from the index alone, no value read,
    /// unless the database holds records with an expiry (then as
    /// [`Db::get`], which leaves an expired key out).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad key, [`Error::Closed`].
    pub async fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        if self.may_expire() {
            // The index cannot tell an expired key (FORMAT.md §3.4).
            return Ok(self.get(key).await?.is_some());
        }
        match &self.handle {
            Handle::Remote(r) => r.contains(key).await,
            Handle::Local { engine, .. } => engine.contains(key),
        }
    }

    /// Whether some record may carry an expiry (FORMAT.md §3.4).
    fn may_expire(&self) -> bool {
        match &self.handle {
            Handle::Remote(r) => r.may_expire(),
            Handle::Local { engine, .. } => engine.may_expire(),
        }
    }

    /// Number of live keys, from the index: a key whose record expired
    /// (see [`Db::put_with_ttl`]) counts until a compaction drops it.
    pub fn len(&self) -> u64 {
        match &self.handle {
            Handle::Remote(r) => r.len(),
            Handle::Local { engine, .. } => engine.len(),
        }
    }

    /// True when there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The database metadata (FORMAT.md §4.8): a small map of names to
    /// values, committed with the data. A handle over a remote alone has it
    /// from its first read of the remote index: no request.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn metadata(&self) -> Result<std::collections::BTreeMap<String, Bytes>> {
        let entries = match &self.handle {
            Handle::Remote(r) => {
                r.check_open()?;
                r.metadata()
            }
            Handle::Local { engine, .. } => {
                engine.check_open()?;
                engine.metadata()
            }
        };
        Ok(entries.into_iter().collect())
    }

    /// Sets metadata `name` to `value` (see [`Db::update_metadata`]).
    ///
    /// # Errors
    /// As [`Db::update_metadata`].
    pub async fn set_metadata(
        &self,
        name: impl Into<String>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.update_metadata([(name.into(), Some(value))]).await
    }

    /// Removes metadata `name`, if present (see [`Db::update_metadata`]).
    ///
    /// # Errors
    /// As [`Db::update_metadata`].
    pub async fn remove_metadata(&self, name: impl Into<String>) -> Result<()> {
        self.update_metadata([(name.into(), None)]).await
    }

    /// Sets (`Some`) or removes (`None`) several metadata names at once, and
    /// commits them locally with everything written before: a checkpoint,
    /// which costs what [`Db::checkpoint`] does (the pending index changes
    /// plus the root). The next [`Db::upload`] publishes them in the same
    /// commit as the data, so readers see both or neither. A rebase keeps
    /// this directory's changes to a name over the remote's; a download
    /// takes the remote's metadata.
    ///
    /// Names are 1 to 65,535 bytes of UTF-8; names and values together take
    /// at most 64 KiB (each entry costs its name and value plus 6 bytes,
    /// and the section 8). The metadata lives in `index.idx`: a rebuild
    /// keeps it, but a database whose `index.idx` was lost is rebuilt
    /// without it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad name or metadata over the limit,
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Io`]. Nothing
    /// changes then.
    pub async fn update_metadata(
        &self,
        changes: impl IntoIterator<Item = (String, Option<Bytes>)>,
    ) -> Result<()> {
        let changes: Vec<(String, Option<Bytes>)> = changes.into_iter().collect();
        let engine = self.engine()?.clone();
        offload(move || engine.update_metadata(changes)).await
    }

    /// Every live key, sorted bytewise.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn keys(&self) -> Result<Vec<Bytes>> {
        if self.may_expire() {
            // Expired keys are left out by reading their records.
            let mut it = self.iter().await?;
            let mut out = Vec::with_capacity(it.remaining());
            while let Some(item) = it.next().await {
                out.push(item?.0);
            }
            return Ok(out);
        }
        let snap = self.snapshot(None).await?;
        Ok(snap.items.into_iter().map(|(k, _)| k).collect())
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
        let snap = self.snapshot(prefix).await?;
        Ok(Iter::new(self.remote_ctx().cloned(), snap))
    }

    /// Every live key (only those starting with `prefix`, if given), sorted,
    /// with its location. A handle over a remote alone loads the whole
    /// remote index first.
    async fn snapshot(&self, prefix: Option<Vec<u8>>) -> Result<Snapshot> {
        match &self.handle {
            Handle::Remote(r) => r.snapshot(prefix).await,
            Handle::Local { engine, .. } => {
                let e = engine.clone();
                offload(move || e.snapshot(prefix.as_deref())).await
            }
        }
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

    /// Sets `key` to `value` until `ttl` from now; then `key` reads as
    /// absent everywhere (see [`WriteBatch::put_with_ttl`]). The record is
    /// 8 bytes longer; reads cost the same. Once a database holds such a
    /// record, [`Db::contains`] and [`Db::keys`] read records, not only the
    /// index, to leave expired keys out.
    ///
    /// # Errors
    /// As [`Db::put`].
    pub async fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put_with_ttl(key, value, ttl)?;
        self.write(b).await
    }

    /// Deletes `key`. Deleting a missing key is not an error and writes
    /// nothing.
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

    /// Deletes every key that starts with `prefix` (every key, for an empty
    /// prefix) in one atomic write: after a crash, all of them are gone or
    /// none is. Returns how many it deleted.
    ///
    /// Cost: one pass over the whole index to find the keys (the index is
    /// hashed, not sorted), then one tombstone per deleted key (about 16
    /// bytes plus the key) in one batch, like [`Db::write`]. Other writes wait
    /// for the pass.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the tombstones would exceed one batch
    /// ([`MAX_BATCH_BYTES`](crate::MAX_BATCH_BYTES): some tens of millions
    /// of keys; nothing is deleted then), [`Error::ReadOnly`],
    /// [`Error::Closed`], [`Error::Io`].
    pub async fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<u64> {
        let prefix = prefix.as_ref().to_vec();
        self.delete_where(Some(prefix), |_| true).await
    }

    /// Deletes every key in `range` (bytewise order, as iteration sorts) in
    /// one atomic write; `"a".."c"` deletes keys from `a` up to but not
    /// including `c`. Returns how many it deleted. Costs as
    /// [`Db::delete_prefix`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the range starts after it ends, or as
    /// [`Db::delete_prefix`].
    pub async fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<u64> {
        let owned = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        let (start, end) = (owned(range.start_bound()), owned(range.end_bound()));
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
            (&start, &end)
            && s > e
        {
            return Err(Error::InvalidArgument(
                "the range starts after it ends".into(),
            ));
        }
        self.delete_where(None, move |k| {
            let bounds = (
                start.as_ref().map(Vec::as_slice),
                end.as_ref().map(Vec::as_slice),
            );
            RangeBounds::<[u8]>::contains(&bounds, k)
        })
        .await
    }

    /// Deletes the keys under `prefix` that `doomed` picks, atomically.
    async fn delete_where(
        &self,
        prefix: Option<Vec<u8>>,
        doomed: impl Fn(&[u8]) -> bool + Send + 'static,
    ) -> Result<u64> {
        let e = self.engine()?.clone();
        offload(move || {
            let (n, seq) = e.delete_where(prefix.as_deref(), doomed)?;
            if let Some(seq) = seq {
                e.wait_durable(seq)?;
            }
            Ok(n)
        })
        .await
    }

    /// Applies a batch atomically.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Io`].
    pub async fn write(&self, batch: WriteBatch) -> Result<()> {
        let engine = self.engine()?;
        if let Some(seq) = engine.write(batch)? {
            let e = engine.clone();
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
        let e = self.engine()?.clone();
        offload(move || e.flush()).await
    }

    /// Writes `index.idx` now if anything changed, so that the next open
    /// replays nothing. `close()` does this too.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn checkpoint(&self) -> Result<()> {
        let e = self.engine()?.clone();
        offload(move || e.checkpoint()).await
    }

    /// Selective compaction with the default options: rewrites the
    /// segments of which at least half the record bytes are dead
    /// (overwritten, deleted, tombstones) and leaves the others alone. See
    /// [`Db::compact_with`].
    ///
    /// # Errors
    /// As [`Db::compact_with`].
    pub async fn compact(&self) -> Result<CompactionReport> {
        self.compact_with(CompactOptions::default()).await
    }

    /// Rewrites the live records of the segments whose dead fraction reaches
    /// [`CompactOptions::min_dead_percent`] (of every segment with
    /// [`CompactOptions::full`]) into new segments, then deletes the
    /// segments it replaced; the new index is durable before anything is
    /// deleted. Readers keep working; writers wait.
    ///
    /// Cost: reading and writing only the rewritten segments, plus passes
    /// over the index (to count live bytes per segment, collect the keys
    /// that move, and build the new `index.idx`, which is written whole);
    /// the next upload sends only the new segments and `index.idx`. A selective compaction keeps the tombstones
    /// that older segments it left alone may still need; a full one drops
    /// every tombstone (FORMAT.md §5).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `min_dead_percent` outside 1 to 100;
    /// [`Error::Corruption`] if a record to copy fails its checks, or a
    /// segment a selective compaction would rewrite is damaged (nothing is
    /// changed then); [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn compact_with(&self, opts: CompactOptions) -> Result<CompactionReport> {
        let e = self.engine()?.clone();
        crate::sync::download::hydrate(&e).await?;
        offload(move || crate::engine::compaction::compact(&e, opts)).await
    }

    /// Folds every index run into one (FORMAT.md §4.7): after an ingest of
    /// many shards (§10.11), lookups consult one run again instead of one
    /// per shard, and the key count is exact again. Reads and writes the
    /// index only, never a record, so a directory reading through its
    /// remote needs no segment locally; the next [`Db::upload`] sends the
    /// one new run and the root. Cost: O(live keys) to read the runs and
    /// write the new one (about 31 bytes per key).
    ///
    /// # Errors
    /// [`Error::Corruption`] if a run fails its checks, [`Error::Io`],
    /// [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn merge_index(&self) -> Result<()> {
        let e = self.engine()?.clone();
        offload(move || e.merge_index()).await
    }

    /// Rebuilds the index from the segment files alone, checking every
    /// checksum, skipping damaged ranges and cutting a torn tail; writes the
    /// new `index.idx`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn rebuild_index(&self) -> Result<RebuildReport> {
        let e = self.engine()?.clone();
        crate::sync::download::hydrate(&e).await?;
        offload(move || e.rebuild_index()).await
    }

    /// Reads every segment, checks every checksum and that the index and the
    /// segments agree. Problems are listed in the report, not returned as errors.
    /// It only reads: a segment the directory lacks (only its remote holds
    /// it) is not fetched but reported, counted in
    /// [`VerifyReport::segments_missing`]; [`Db::download`] fetches the
    /// missing segments.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Closed`].
    pub async fn verify(&self) -> Result<VerifyReport> {
        let e = match &self.handle {
            Handle::Remote(r) => return r.verify().await,
            Handle::Local { engine, .. } => engine.clone(),
        };
        offload(move || crate::engine::verify::verify(&e)).await
    }

    /// Sizes and counts.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn stats(&self) -> Result<Stats> {
        let engine = match &self.handle {
            Handle::Remote(r) => return r.stats(),
            Handle::Local { engine, .. } => engine,
        };
        let mut stats = engine.stats()?;
        if let Some(ctx) = engine.remote() {
            let synced = crate::format::remote_state::SyncState::load_for(
                engine.dir(),
                &ctx.url.describe(),
            )?
            .unwrap_or_default();
            stats.unuploaded_segments = engine.unsynced_segments(&synced.segments).len() as u64;
        }
        Ok(stats)
    }

    /// Writes `index.idx` if needed and closes the handle (all clones).
    /// Dropping the last clone does the same, logging rather than returning
    /// an error.
    ///
    /// # Errors
    /// [`Error::Io`] if the index cannot be written.
    pub async fn close(&self) -> Result<()> {
        match &self.handle {
            Handle::Remote(r) => {
                r.close();
                Ok(())
            }
            Handle::Local { engine, .. } => {
                let e = engine.clone();
                offload(move || e.close()).await
            }
        }
    }

    // ----- remote -----

    /// Sends every sealed segment the remote lacks, then commits `index.idx`
    /// conditionally (FORMAT.md §10.2). The active segment is sealed first.
    /// Uploading to a remote other than the directory's own (an empty one: a
    /// backup copy) keeps a sync state of its own and leaves the directory's
    /// own remote alone (FORMAT.md §10.4).
    ///
    /// # Errors
    /// [`Error::Conflict`] if another writer committed since this directory
    /// last synced (nothing local is lost; see [`Db::upload_with`] and
    /// `rebase`), [`Error::Remote`] (also when the operation timeout runs
    /// out), [`Error::InvalidArgument`] without a remote or for a read-only
    /// `http(s)://` one, [`Error::ReadOnly`].
    pub async fn upload(&self) -> Result<UploadReport> {
        self.upload_with(UploadOptions::default()).await
    }

    /// [`Db::upload`] with options (`rebase`).
    ///
    /// # Errors
    /// As [`Db::upload`].
    pub async fn upload_with(&self, opts: UploadOptions) -> Result<UploadReport> {
        crate::sync::upload::upload(self.engine()?, opts).await
    }

    /// Makes the local directory a copy of the remote database: fetches and
    /// checks every segment it lacks, then adopts the remote index.
    /// Refuses while local writes are not uploaded, and when the directory
    /// syncs with another remote (FORMAT.md §10.4); see
    /// [`Db::download_with`] and [`crate::DownloadOptions::force`].
    ///
    /// # Errors
    /// [`Error::Conflict`] for unuploaded writes or another remote's
    /// directory, [`Error::NotFound`] if the
    /// remote holds no database, [`Error::Corruption`] if a fetched file
    /// fails its checks, [`Error::Remote`], [`Error::ReadOnly`].
    pub async fn download(&self) -> Result<DownloadReport> {
        self.download_with(crate::DownloadOptions::default()).await
    }

    /// [`Db::download`] with options (`force`).
    ///
    /// # Errors
    /// As [`Db::download`]; with `force`, no conflict.
    pub async fn download_with(&self, opts: crate::DownloadOptions) -> Result<DownloadReport> {
        let engine = self.engine()?;
        engine.remote_ctx()?;
        crate::sync::download::download(engine, opts).await
    }

    /// Brings back a database whose remote `index.idx` was lost: fetches
    /// every segment object under the prefix (except those of staged
    /// shards) into this directory as stored, rebuilds the index from them
    /// (keeping every record whose checksum is good, FORMAT.md §6.3), and
    /// remembers them as the remote's, so that the next [`Db::upload`]
    /// sends none of them again and commits a new `index.idx`. Nothing
    /// remote is written. Costs one listing and one GET per segment object.
    /// A restore that stops part way leaves the remote as it was; running
    /// it again in the same directory finishes it, and until then
    /// [`Db::upload`] refuses there (`restore.pending`, FORMAT.md §2).
    /// Segments of uploads that never committed (and that `gc` has not
    /// deleted yet) cannot be told from committed ones, so they are
    /// restored too.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the remote has an `index.idx` (use
    /// [`Db::download`]), when this directory holds keys (and no restore
    /// that stopped part way), without a remote or for a read-only one;
    /// [`Error::NotFound`] when the prefix holds no segment either;
    /// [`Error::Remote`], [`Error::Io`], [`Error::ReadOnly`].
    pub async fn restore_from_remote(&self) -> Result<crate::RestoreReport> {
        crate::sync::restore::restore(self.engine()?).await
    }

    /// Deletes remote segments that no reader can need: obsolete ones whose
    /// grace period has passed since the commit that dropped them, and
    /// never-committed ones older than the grace period. The default grace
    /// is [`crate::DEFAULT_GC_GRACE`] (one hour).
    ///
    /// # Errors
    /// [`Error::Remote`], [`Error::InvalidArgument`] without a remote.
    pub async fn gc(&self, grace: std::time::Duration) -> Result<GcReport> {
        self.gc_with(crate::sync::gc::GcOptions::default().grace(grace))
            .await
    }

    /// [`Db::gc`] with options (grace period, single-writer mode).
    ///
    /// # Errors
    /// As [`Db::gc`]; without `single_writer`, an [`Error::Remote`] naming
    /// conditional writes on a server that does not enforce them.
    pub async fn gc_with(&self, opts: crate::sync::gc::GcOptions) -> Result<GcReport> {
        let by = match &self.handle {
            Handle::Remote(r) => Collector {
                ctx: r.ctx().clone(),
                local: None,
                writer_id: r.writer_id(),
                sync_lock: r.sync_lock(),
            },
            Handle::Local { engine, .. } => Collector {
                ctx: engine.remote_ctx()?,
                local: Some(engine),
                writer_id: engine.writer_id(),
                sync_lock: engine.sync_lock(),
            },
        };
        crate::sync::gc::gc(by, opts).await
    }

    /// Deletes the database from the attached remote: `index.idx` first (so
    /// readers see "no database", not half of one), then every object under
    /// the prefix (FORMAT.md §10.8). The local directory keeps all its data
    /// and forgets what it had uploaded there, so a later upload sends
    /// everything again. Running it again after a crash deletes what is
    /// left. No other writer may commit to the remote meanwhile. Cost: one
    /// listing of the prefix and one DELETE request per 1,000 objects.
    ///
    /// For a remote with no local directory, use [`DbBuilder::delete_remote`](crate::DbBuilder::delete_remote).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with no remote attached or a read-only
    /// (`http(s)://`) URL, [`Error::ReadOnly`] for a read-only handle or a
    /// handle over a remote alone, [`Error::Remote`] for network and server
    /// failures (objects listed before the failure may be gone; run it
    /// again), [`Error::Io`] if the sync state cannot be saved.
    pub async fn delete_remote(&self) -> Result<DeleteRemoteReport> {
        let engine = self.engine()?;
        engine.check_writable()?;
        let ctx = engine.remote_ctx()?;
        let _sync = engine.sync_lock().lock().await;
        crate::sync::remove::delete_remote(&ctx, Some(engine)).await
    }

    /// What the next upload would publish: for each key written since this
    /// directory's last sync with its remote, its latest write (put, with
    /// the value's length, or delete), sorted by key, with counts. Values are
    /// not read. After a local compaction since the sync, every live key is
    /// listed (`Changes::compacted`). Cost: one read of the segments written
    /// since the sync, holding the writer lock meanwhile; no network.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with no remote attached, [`Error::ReadOnly`]
    /// for a handle over a remote alone, [`Error::Corruption`] for a damaged
    /// unsynced segment, [`Error::Io`].
    pub async fn changes(&self) -> Result<crate::Changes> {
        crate::sync::changes::changes(self.engine()?).await
    }

    /// Drops every change that was never uploaded: the directory returns to
    /// the state of its last sync (FORMAT.md §10.10). Crash safe: a crash
    /// leaves the old state or the new one. Needs the remote, which must
    /// still hold the commit this directory last synced. Cost: one GET of
    /// `index.idx`, a read of the unsynced segments, an index write.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with no remote attached or before any sync;
    /// [`Error::Conflict`] if another writer committed since the last sync
    /// (the synced state is gone from the remote) or the directory compacted
    /// since; [`Error::ReadOnly`], [`Error::Remote`], [`Error::Io`].
    pub async fn discard_all(&self) -> Result<crate::DiscardReport> {
        self.discard_where(None).await
    }

    /// Drops the never-uploaded changes of `keys` only: each reads again as
    /// at the last sync (present with its synced value, or absent), and
    /// other changes stay, in one crash-safe step. As
    /// [`Db::discard_all`] otherwise.
    ///
    /// # Errors
    /// As [`Db::discard_all`].
    pub async fn discard<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<crate::DiscardReport> {
        let set = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self.discard_where(Some(set)).await
    }

    async fn discard_where(
        &self,
        keys: Option<std::collections::HashSet<Vec<u8>>>,
    ) -> Result<crate::DiscardReport> {
        crate::sync::changes::discard(self.engine()?, keys).await
    }

    /// Copies the committed state of this handle's remote (not local writes
    /// that were never uploaded) to the remote of `to`, a builder made with
    /// [`DbBuilder::for_remote`](crate::DbBuilder::for_remote) (its URL,
    /// credentials and remote options): a consistent, independent backup,
    /// also while writers keep committing to the source (FORMAT.md §10.9).
    /// Every segment that commit's `index.idx` lists is copied, then that
    /// `index.idx` byte for byte, last, so the destination holds no database
    /// until it holds all of it. On one S3 endpoint the server copies the
    /// segments (`CopyObject`) when it allows; otherwise they pass through
    /// s4db, at most 4 at a time, each checked as a download checks it.
    /// Running it again after a crash copies only what is missing. Cost: one
    /// GET of `index.idx`, one listing of the destination, one request per
    /// segment (plus its bytes, when not copied server-side).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with no remote attached, a read-only or
    /// bad destination URL, or a builder with a local directory;
    /// [`Error::NotFound`] if the source holds no database;
    /// [`Error::Conflict`] if the destination holds another database, or
    /// segments of one whose `index.idx` was lost (or one was committed
    /// there during the copy); [`Error::Corruption`] for
    /// a source segment that fails its checks; [`Error::Remote`] for network
    /// and server failures (run it again to resume).
    pub async fn copy_remote(&self, to: crate::DbBuilder) -> Result<CopyRemoteReport> {
        let src = self
            .remote_ctx()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("this database has no remote to copy".into()))?;
        let dst = to.remote_alone(
            "copy_remote's destination",
            "a builder made with DbBuilder::for_remote",
        )?;
        crate::sync::copy::copy_remote(&src, &dst).await
    }

    /// Stages this database as shard `name` of the database at `to`'s remote
    /// (a builder made with [`DbBuilder::for_remote`](crate::DbBuilder::for_remote)),
    /// for a later [`DbBuilder::ingest`](crate::DbBuilder::ingest) to commit
    /// (FORMAT.md §10.11). Sends every segment and index run of this
    /// directory under the remote's prefix (create-only; their names are
    /// this directory's own), then the manifest `stage_{name}.idx` (this
    /// directory's root), replacing a manifest of the same name. The
    /// committed `index.idx` is not touched: readers see nothing until the
    /// ingest. A shard never ingested is harmless, and `gc` removes it once
    /// its manifest is older than the grace period (so ingest within it).
    ///
    /// Build each shard from scratch, in its own directory with no remote
    /// attached (each directory has its own writer id, so shards never
    /// clash). A key the shard put and then deleted stays deleted after the
    /// ingest, over the shards given before it: staging writes an index run
    /// of those deletes, found in the shard's segments, so compact a shard
    /// only after staging it (a compaction may drop a delete). Cost: the
    /// shard's bytes read once and sent once, plus a manifest of a few KB.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad name (1 to 100 characters of
    /// `A-Z a-z 0-9 . _ -`), a builder with a local directory or a
    /// read-only URL, a handle over a remote alone, or a directory holding
    /// segments another directory wrote (a download or copy);
    /// [`Error::ReadOnly`], [`Error::Closed`], [`Error::Io`],
    /// [`Error::Remote`] (run it again: what was sent is not sent twice).
    pub async fn stage(&self, to: crate::DbBuilder, name: &str) -> Result<crate::StageReport> {
        let engine = self.engine()?;
        let dst = to.remote_alone(
            "stage's destination",
            "a builder made with DbBuilder::for_remote",
        )?;
        crate::sync::stage::stage(engine, &dst, name).await
    }

    /// Requests and bytes sent through the remote so far; `None` without one.
    pub fn remote_stats(&self) -> Option<RemoteStats> {
        let mut stats = self.remote_ctx().map(|r| r.stats())?;
        if let Handle::Remote(r) = &self.handle {
            stats.cached_index_pages = r.cached_pages() as u64;
        }
        Some(stats)
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        match &self.handle {
            Handle::Remote(r) => r.options(),
            Handle::Local { engine, .. } => engine.options(),
        }
    }

    /// The directory of the database (empty for a handle over a remote
    /// alone).
    pub fn path(&self) -> &Path {
        match &self.handle {
            Handle::Remote(_) => Path::new(""),
            Handle::Local { engine, .. } => engine.dir(),
        }
    }

    /// A handle over the local database behind `engine`.
    pub(crate) fn local(engine: Arc<Engine>, rebuilt: Option<Arc<RebuildReport>>) -> Db {
        Db {
            handle: Handle::Local { engine, rebuilt },
        }
    }

    /// A handle over a remote alone.
    pub(crate) fn over_remote(reader: RemoteReader) -> Db {
        Db {
            handle: Handle::Remote(Arc::new(reader)),
        }
    }

    /// The engine of a local handle, for calls that write.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a handle over a remote alone (after
    /// [`Error::Closed`] once it is closed).
    pub(crate) fn engine(&self) -> Result<&Arc<Engine>> {
        match &self.handle {
            Handle::Local { engine, .. } => Ok(engine),
            Handle::Remote(r) => {
                r.check_open()?;
                Err(Error::ReadOnly)
            }
        }
    }

    /// The engine of a local handle; `None` over a remote alone.
    pub(crate) fn local_engine(&self) -> Option<&Arc<Engine>> {
        match &self.handle {
            Handle::Local { engine, .. } => Some(engine),
            Handle::Remote(_) => None,
        }
    }

    /// The attached remote, if any.
    fn remote_ctx(&self) -> Option<&Arc<RemoteCtx>> {
        match &self.handle {
            Handle::Remote(r) => Some(r.ctx()),
            Handle::Local { engine, .. } => engine.remote(),
        }
    }

    pub(crate) fn sync_policy(&self) -> SyncPolicy {
        self.options().sync
    }
}

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
use crate::io::offload::offload;
use crate::options::{Options, SyncPolicy};
use crate::remote::ctx::{Credentials, RemoteCtx};
use crate::remote::{RemoteOptions, RemoteStats};
use crate::report::{CompactionReport, RebuildReport, Stats, VerifyReport};
use crate::sync::download::DownloadReport;
use crate::sync::gc::GcReport;
use crate::sync::remote_read::{self, Wanted};
use crate::sync::remote_reader::RemoteReader;
use crate::sync::upload::{UploadOptions, UploadReport};

/// How a handle over a remote alone ([`Db::open_remote`]) reads `index.idx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadIndex {
    /// By byte ranges: the first 64 KiB, then one page per lookup, cached.
    /// A cold get is three requests at any database size. The default.
    #[default]
    Lazy,
    /// The whole file at open: for readers that will touch most keys.
    Full,
}

/// Configures and opens a [`Db`]. Every setter documents its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct DbBuilder {
    /// `None` for a read-only handle over a remote alone.
    path: Option<PathBuf>,
    opts: Options,
    remote: Option<String>,
    credentials: Option<Credentials>,
    remote_opts: RemoteOptions,
    load_index: LoadIndex,
    /// A store in place of the one the remote URL names (tests only).
    store: Option<Arc<dyn crate::remote::ObjectStore>>,
}

impl DbBuilder {
    /// A builder for the database in directory `path`, with default options.
    pub fn new(path: impl AsRef<Path>) -> Self {
        DbBuilder {
            path: Some(path.as_ref().to_path_buf()),
            opts: Options::default(),
            remote: None,
            credentials: None,
            remote_opts: RemoteOptions::default(),
            load_index: LoadIndex::default(),
            store: None,
        }
    }

    /// A builder for a read-only handle over the remote at `url` alone, with
    /// no local directory (see [`Db::open_remote`]).
    pub fn for_remote(url: impl Into<String>) -> Self {
        DbBuilder {
            path: None,
            opts: Options {
                read_only: true,
                ..Options::default()
            },
            remote: Some(url.into()),
            credentials: None,
            remote_opts: RemoteOptions::default(),
            load_index: LoadIndex::default(),
            store: None,
        }
    }

    /// Attaches a remote: `s3://BUCKET/PREFIX[?endpoint=…&region=…&style=path|virtual&anonymous=true]`,
    /// `http(s)://…` (read-only) or `file:///ABS/PATH`. Default: none.
    ///
    /// A directory with no database that is opened with a remote holding one
    /// fetches only the remote's index; its reads then go to the remote
    /// until [`Db::download`] fetches the segments.
    pub fn remote(mut self, url: impl Into<String>) -> Self {
        self.remote = Some(url.into());
        self
    }

    /// S3 credentials; default: the standard AWS variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
    /// and unsigned requests if they are unset.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How a handle over a remote alone reads `index.idx`; default
    /// [`LoadIndex::Lazy`]. Ignored for local directories.
    pub fn load_index(mut self, how: LoadIndex) -> Self {
        self.load_index = how;
        self
    }

    /// Timeouts, retries, multipart and parallelism of remote requests;
    /// default [`RemoteOptions::default`].
    pub fn remote_options(mut self, opts: RemoteOptions) -> Self {
        self.remote_opts = opts;
        self
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

    /// Open without writing anything. A read-only handle takes no lock: it
    /// works on read-only media and for users who can only read, and it opens
    /// beside a writer (in this or another process), seeing every batch that
    /// writer had completed when the handle opened (FORMAT.md §6.4). It does
    /// not see later writes: open again for a newer view. Default `false`.
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

    /// How long opening for writing waits for another writer to close the
    /// directory before [`Error::Locked`]. Default 250 ms.
    pub fn lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.opts.lock_wait = wait;
        self
    }

    /// Uses `store` for the remote instead of the one its URL names; the URL
    /// still names the remote (its sync state, its messages). For protocol
    /// tests without a server.
    #[cfg(test)]
    pub(crate) fn object_store(mut self, store: Arc<dyn crate::remote::ObjectStore>) -> Self {
        self.store = Some(store);
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
    /// [`Error::Locked`] if another writer holds the directory (after
    /// [`DbBuilder::lock_wait`]; read-only handles never are),
    /// [`Error::NotFound`] if there is no database and `create_if_missing` is
    /// off (or the handle is read-only), [`Error::Corruption`] if
    /// `index.idx` or a sealed segment fails its checks (see
    /// [`DbBuilder::rebuild_index`]), [`Error::InvalidArgument`] for bad
    /// options, [`Error::Io`] for I/O failures.
    pub async fn open(self) -> Result<Db> {
        let remote = match &self.remote {
            Some(url) => Some(Arc::new(RemoteCtx::open_with(
                url,
                self.credentials.as_ref(),
                self.remote_opts.clone(),
                self.store.clone(),
            )?)),
            None => None,
        };
        let Some(path) = self.path.clone() else {
            let ctx = remote.ok_or_else(|| {
                Error::InvalidArgument("a remote-only handle needs a remote URL".into())
            })?;
            let (engine, lazy, etag) = match self.load_index {
                LoadIndex::Lazy => {
                    let lazy = crate::index::lazy::LazyIndex::open(&ctx)
                        .await?
                        .ok_or_else(|| ctx.no_database())?;
                    let engine = Arc::new(Engine::over_remote_lazy(ctx, &lazy, self.opts)?);
                    let etag = lazy.etag.clone();
                    (engine, Some(lazy), etag)
                }
                LoadIndex::Full => {
                    let (base, etag) = crate::sync::remote_index::fetch_index(&ctx)
                        .await?
                        .ok_or_else(|| ctx.no_database())?;
                    (
                        Arc::new(Engine::over_remote(ctx, base, self.opts)),
                        None,
                        etag,
                    )
                }
            };
            let reader = RemoteReader::new(engine.clone(), lazy, etag);
            return Ok(Db {
                engine,
                reader: Some(Arc::new(reader)),
                rebuilt: None,
            });
        };
        if let Some(ctx) = &remote
            && !self.opts.read_only
            && self.opts.create_if_missing
            && !path.join(crate::INDEX_FILE_NAME).exists()
            && crate::engine::files::list_segments(&path).map_or(true, |s| s.is_empty())
        {
            crate::sync::download::fetch_index_only(
                ctx,
                &path,
                crate::format::segment_id::new_writer_id()?,
            )
            .await?;
        }
        offload(move || {
            let (engine, rebuilt) = Engine::open(&path, self.opts, remote)?;
            Ok(Db {
                engine: Arc::new(engine),
                reader: None,
                rebuilt: rebuilt.map(Arc::new),
            })
        })
        .await
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
    /// The local engine, or for a handle over a remote alone the read-only
    /// engine its reader loads the whole index into.
    pub(crate) engine: Arc<Engine>,
    /// Present exactly for a handle over a remote alone.
    pub(crate) reader: Option<Arc<RemoteReader>>,
    rebuilt: Option<Arc<RebuildReport>>,
}

/// Iterates over a snapshot of keys (sorted bytewise) and their values.
/// Values are read lazily, a chunk at a time (records only the remote holds
/// are fetched with coalesced range requests); the snapshot stays valid
/// across later writes and compactions.
#[derive(Debug)]
pub struct Iter {
    engine: Arc<Engine>,
    snap: Snapshot,
    pos: usize,
    ready: std::collections::VecDeque<(Bytes, Bytes)>,
}

/// Entries an iterator reads ahead at a time.
const ITER_CHUNK: usize = 256;

impl Iter {
    /// The next key and value, or `None` at the end.
    ///
    /// # Errors
    /// [`Error::Corruption`] if a record fails its checks, [`Error::Io`],
    /// [`Error::Remote`]. The entries of a chunk that failed are skipped.
    pub async fn next(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        if self.ready.is_empty()
            && self.pos < self.snap.items.len()
            && let Err(e) = self.fill().await
        {
            return Some(Err(e));
        }
        self.ready.pop_front().map(Ok)
    }

    async fn fill(&mut self) -> Result<()> {
        let end = (self.pos + ITER_CHUNK).min(self.snap.items.len());
        let chunk = &self.snap.items[self.pos..end];
        self.pos = end;
        let mut values: Vec<Option<Bytes>> = vec![None; chunk.len()];
        let mut remote: Vec<(Arc<crate::engine::segment::Segment>, Vec<Wanted>)> = Vec::new();
        for (slot, (key, loc)) in chunk.iter().enumerate() {
            let seg = self
                .snap
                .segments
                .get(loc.segment as usize)
                .ok_or_else(|| {
                    Error::corruption(
                        crate::INDEX_FILE_NAME,
                        0,
                        "index names a segment that is not open",
                    )
                })?;
            if seg.is_local() {
                let v = seg.read_value(key, u64::from(loc.offset), loc.len as usize)?;
                values[slot] = Some(Bytes::from(v));
            } else {
                let w = Wanted {
                    slot,
                    key: key.clone(),
                    loc: *loc,
                };
                remote_read::want(&mut remote, seg, w);
            }
        }
        if !remote.is_empty() {
            remote_read::get_many(&self.engine, remote, &mut values).await?;
        }
        for ((key, _), v) in chunk.iter().zip(values) {
            let v = v.ok_or_else(|| {
                Error::corruption(crate::INDEX_FILE_NAME, 0, "a record could not be read")
            })?;
            self.ready.push_back((key.clone(), v));
        }
        Ok(())
    }

    pub(crate) fn next_sync(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        futures::executor::block_on(self.next())
    }

    /// Entries not yet returned.
    pub fn remaining(&self) -> usize {
        self.snap.items.len().saturating_sub(self.pos) + self.ready.len()
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
    /// (`DbBuilder::rebuild_index`; a missing `index.idx` fails the open instead).
    pub fn rebuild_report(&self) -> Option<&RebuildReport> {
        self.rebuilt.as_deref()
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
        match &self.reader {
            Some(r) => r.refresh().await,
            None => Err(Error::InvalidArgument(
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
        if let Some(r) = self.lazy_reader() {
            crate::batch::check_key(key)?;
            return Ok(r.get_many(&[key]).await?.pop().flatten());
        }
        let (seg, loc) = match self.engine.get_local(key)? {
            Ok(v) => return Ok(v),
            Err(remote) => remote,
        };
        match remote_read::get_one(&self.engine, &seg, key, loc).await {
            // A handle over a remote alone reloads the index once: garbage
            // collection may have removed a segment an old index named.
            Err(Error::NotFound(_)) if self.reader.is_some() => {
                if let Some(r) = &self.reader {
                    r.load_full_index().await?;
                }
                match self.engine.get_local(key)? {
                    Ok(v) => Ok(v),
                    Err((seg, loc)) => remote_read::get_one(&self.engine, &seg, key, loc).await,
                }
            }
            other => other,
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
        if let Some(r) = self.lazy_reader() {
            let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_ref().to_vec()).collect();
            for k in &keys {
                crate::batch::check_key(k)?;
            }
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            return r.get_many(&refs).await;
        }
        let mut out = Vec::new();
        let mut remote: Vec<(Arc<crate::engine::segment::Segment>, Vec<Wanted>)> = Vec::new();
        for (slot, key) in keys.into_iter().enumerate() {
            let key = key.as_ref();
            match self.engine.get_local(key)? {
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
            remote_read::get_many(&self.engine, remote, &mut out).await?;
        }
        Ok(out)
    }

    /// Whether `key` is present (no value is read).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad key, [`Error::Closed`].
    pub async fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        match &self.reader {
            Some(r) => r.contains(key).await,
            None => self.engine.contains(key),
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        match &self.reader {
            Some(r) => r.len(),
            None => self.engine.len(),
        }
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
        self.ensure_full().await?;
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

    /// Loads the whole remote index of a handle over a remote alone (for
    /// calls that need every key); nothing for a local handle.
    async fn ensure_full(&self) -> Result<()> {
        match &self.reader {
            Some(r) => r.ensure_full().await,
            None => Ok(()),
        }
    }

    /// The reader of a handle over a remote alone while it reads the index
    /// by byte ranges. Local handles answer without taking any lock.
    pub(crate) fn lazy_reader(&self) -> Option<&Arc<RemoteReader>> {
        self.reader.as_ref().filter(|r| r.lazy().is_some())
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
        self.ensure_full().await?;
        let e = self.engine.clone();
        let snap = offload(move || e.snapshot(prefix.as_deref())).await?;
        Ok(iter_from(self.engine.clone(), snap))
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
        crate::sync::download::hydrate(&self.engine).await?;
        let e = self.engine.clone();
        offload(move || crate::engine::compaction::compact(&e)).await
    }

    /// Rebuilds the index from the segment files alone, checking every
    /// checksum, skipping damaged ranges and cutting a torn tail; writes the
    /// new `index.idx`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::ReadOnly`], [`Error::Closed`].
    pub async fn rebuild_index(&self) -> Result<RebuildReport> {
        crate::sync::download::hydrate(&self.engine).await?;
        let e = self.engine.clone();
        offload(move || e.rebuild_index()).await
    }

    /// Reads every segment, checks every checksum and that the index and the
    /// segments agree. Problems are listed in the report, not returned as errors.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Closed`].
    pub async fn verify(&self) -> Result<VerifyReport> {
        if let Some(r) = &self.reader {
            return r.verify().await;
        }
        crate::sync::download::hydrate(&self.engine).await?;
        let e = self.engine.clone();
        offload(move || crate::engine::verify::verify(&e)).await
    }

    /// Sizes and counts.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn stats(&self) -> Result<Stats> {
        if let Some(r) = &self.reader {
            return r.stats();
        }
        let mut stats = self.engine.stats()?;
        if let Some(ctx) = self
            .engine
            .remote()
            .filter(|_| !self.engine.is_remote_only())
        {
            let synced =
                crate::sync::state::SyncState::load_for(self.engine.dir(), &ctx.url.describe())?
                    .unwrap_or_default();
            stats.unuploaded_segments =
                self.engine.unsynced_segments(&synced.segments).len() as u64;
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
        let e = self.engine.clone();
        offload(move || e.close()).await
    }

    // ----- remote -----

    /// Opens a read-only handle over the remote at `url` alone: no local
    /// directory, nothing downloaded but the index; every get reads its
    /// record with one range request. Works anonymously over `http(s)://`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad URL, [`Error::NotFound`] if the
    /// remote holds no database, [`Error::Corruption`] if its index fails its
    /// checks, [`Error::Remote`] for network and server failures.
    pub async fn open_remote(url: impl Into<String>) -> Result<Db> {
        DbBuilder::for_remote(url).open().await
    }

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
        crate::sync::upload::upload(&self.engine, opts).await
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
        self.engine.remote_ctx()?;
        crate::sync::download::download(&self.engine, opts).await
    }

    /// Deletes remote segments that no reader can need: obsolete ones whose
    /// grace period has passed since the commit that dropped them, and
    /// never-committed ones older than the grace period. The default grace
    /// is [`crate::DEFAULT_GC_GRACE`] (one hour).
    ///
    /// # Errors
    /// [`Error::Remote`], [`Error::InvalidArgument`] without a remote.
    pub async fn gc(&self, grace: std::time::Duration) -> Result<GcReport> {
        crate::sync::gc::gc(
            &self.engine,
            crate::sync::gc::GcOptions::default().grace(grace),
        )
        .await
    }

    /// [`Db::gc`] with options (grace period, single-writer mode).
    ///
    /// # Errors
    /// As [`Db::gc`]; without `single_writer`, an [`Error::Remote`] naming
    /// conditional writes on a server that does not enforce them.
    pub async fn gc_with(&self, opts: crate::sync::gc::GcOptions) -> Result<GcReport> {
        crate::sync::gc::gc(&self.engine, opts).await
    }

    /// Requests and bytes sent through the remote so far; `None` without one.
    pub fn remote_stats(&self) -> Option<RemoteStats> {
        self.engine.remote().map(|r| r.stats())
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        self.engine.options()
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        self.engine.dir()
    }

    pub(crate) fn from_parts(engine: Arc<Engine>, rebuilt: Option<Arc<RebuildReport>>) -> Db {
        Db {
            engine,
            reader: None,
            rebuilt,
        }
    }

    pub(crate) fn rebuilt_arc(&self) -> Option<Arc<RebuildReport>> {
        self.rebuilt.clone()
    }

    pub(crate) fn sync_policy(&self) -> SyncPolicy {
        self.engine.options().sync
    }
}

pub(crate) fn iter_from(engine: Arc<Engine>, snap: Snapshot) -> Iter {
    Iter {
        engine,
        snap,
        pos: 0,
        ready: std::collections::VecDeque::new(),
    }
}

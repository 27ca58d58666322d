//! A handle over a remote alone (no local directory): the index it reads
//! (by byte ranges, FORMAT.md §10.6, or whole), the entity tag it pinned,
//! the reload-and-retry policy when the index changes or a segment vanishes,
//! and the switch to the whole index for calls that need every key.
//!
//! It holds no engine: every record is read from the remote with range
//! requests (`remote_read`), and nothing is ever written but, through `gc`,
//! the remote itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::engine::segment::Segment;
use crate::engine::view::{Snapshot, View, remote_segments};
use crate::error::{Error, Result};
use crate::index::lazy::{Changed, LazyIndex};
use crate::io::offload::offload;
use crate::options::Options;
use crate::remote::ctx::RemoteCtx;
use crate::remote::{ObjectStore, Prefix};
use crate::report::{Stats, VerifyReport};
use crate::sync::remote_read::{self, Wanted};

/// How often a read starts again when the remote index changed under it.
const ATTEMPTS: usize = 3;

/// The remote-only handle behind a [`crate::Db`] opened over a remote alone.
#[derive(Debug)]
pub(crate) struct RemoteReader {
    ctx: Arc<RemoteCtx>,
    /// The options it was opened with (always read-only).
    opts: Options,
    loaded: RwLock<Loaded>,
    /// The entity tag of the remote index this handle reads.
    etag: Mutex<String>,
    closed: AtomicBool,
    /// Serialises this handle's `gc` runs.
    sync_lock: tokio::sync::Mutex<()>,
}

/// The index a reader reads through.
#[derive(Debug, Clone)]
enum Loaded {
    /// By byte ranges, with remote handles for its segment table.
    Lazy(Arc<LazyIndex>, Arc<Vec<Arc<Segment>>>),
    /// The whole index, in memory.
    Whole(Arc<View>),
}

impl RemoteReader {
    /// Opens the remote index of `ctx`: its header and directory only when
    /// `lazy`, else the whole file.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the remote holds no database,
    /// [`Error::Corruption`] if the index fails its checks, [`Error::Remote`].
    pub(crate) async fn open(ctx: Arc<RemoteCtx>, opts: Options, lazy: bool) -> Result<Self> {
        let (loaded, etag) = if lazy {
            let lazy = LazyIndex::open(&ctx, None)
                .await?
                .ok_or_else(|| ctx.no_database())?;
            let etag = lazy.etag.clone();
            (Self::lazy_view(lazy), etag)
        } else {
            let (base, etag) = crate::sync::remote_index::fetch_index(&ctx, None)
                .await?
                .ok_or_else(|| ctx.no_database())?;
            (Loaded::Whole(Arc::new(View::of_remote(base))), etag)
        };
        Ok(RemoteReader {
            ctx,
            opts: Options {
                read_only: true,
                ..opts
            },
            loaded: RwLock::new(loaded),
            etag: Mutex::new(etag),
            closed: AtomicBool::new(false),
            sync_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn lazy_view(lazy: LazyIndex) -> Loaded {
        let segments = remote_segments(&lazy.segment_table);
        Loaded::Lazy(Arc::new(lazy), Arc::new(segments))
    }

    fn loaded(&self) -> Loaded {
        self.loaded.read().clone()
    }

    /// The remote it reads.
    pub(crate) fn ctx(&self) -> &Arc<RemoteCtx> {
        &self.ctx
    }

    /// The options it was opened with.
    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    /// Serialises this handle's remote operations.
    pub(crate) fn sync_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.sync_lock
    }

    /// The writer that last committed the index it reads.
    pub(crate) fn writer_id(&self) -> u64 {
        match &*self.loaded.read() {
            Loaded::Lazy(lazy, _) => lazy.writer_id,
            Loaded::Whole(view) => view.index.base().writer_id(),
        }
    }

    /// # Errors
    /// [`Error::Closed`] after [`RemoteReader::close`].
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("close() was called".into()));
        }
        Ok(())
    }

    /// Closes the handle: later calls fail with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The database metadata of the index it reads (held since the first
    /// read: no request).
    pub(crate) fn metadata(&self) -> Vec<(String, Bytes)> {
        match &*self.loaded.read() {
            Loaded::Lazy(lazy, _) => lazy.metadata.clone(),
            Loaded::Whole(view) => view.index.base().root().metadata.clone(),
        }
    }

    /// Whether some record may carry an expiry (FORMAT.md §3.4).
    pub(crate) fn may_expire(&self) -> bool {
        match &*self.loaded.read() {
            Loaded::Lazy(lazy, _) => lazy.may_expire,
            Loaded::Whole(view) => view.index.may_expire(),
        }
    }

    /// Live keys, from the byte-range index's header while there is one.
    pub(crate) fn len(&self) -> u64 {
        match &*self.loaded.read() {
            Loaded::Lazy(lazy, _) => lazy.key_count,
            Loaded::Whole(view) => view.index.live_keys(),
        }
    }

    /// Sizes and counts, from the byte-range index's header while there is one.
    pub(crate) fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        Ok(match self.loaded() {
            Loaded::Lazy(lazy, _) => Stats {
                keys: lazy.key_count,
                segments: lazy.segment_table.len() as u64,
                live_bytes: lazy.live_bytes,
                total_bytes: lazy.segment_table.iter().map(|s| s.indexed_len).sum(),
                unindexed_changes: 0,
                index_memory_bytes: 0,
                index_mapped_bytes: 0,
                index_runs: lazy.run_count() as u64,
                unuploaded_segments: 0,
                damaged_files: Vec::new(),
            },
            Loaded::Whole(view) => view.stats(),
        })
    }

    /// Whether `key` is present (no record is read).
    pub(crate) async fn contains(&self, key: &[u8]) -> Result<bool> {
        self.check_open()?;
        crate::batch::check_key(key)?;
        for _ in 0..ATTEMPTS {
            match self.loaded() {
                Loaded::Whole(view) => return Ok(view.index.get(key)?.is_some()),
                Loaded::Lazy(lazy, _) => match lazy.lookup(&self.ctx, key).await? {
                    Ok(loc) => return Ok(loc.is_some()),
                    Err(Changed) => self.reload().await?,
                },
            }
        }
        Err(kept_changing())
    }

    /// The values of `keys`, in order: the index pages needed (while reading
    /// by byte ranges), then the records with coalesced range requests.
    /// The index is reloaded (at most twice) if it changed underneath or a
    /// segment it named is gone (garbage collection after a newer commit).
    pub(crate) async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        self.check_open()?;
        for k in keys {
            crate::batch::check_key(k)?;
        }
        for attempt in 0..ATTEMPTS {
            let last = attempt + 1 == ATTEMPTS;
            let mut groups: Vec<(Arc<Segment>, Vec<Wanted>)> = Vec::new();
            let mut want = |slot: usize, seg: &Arc<Segment>, loc| {
                let key = Bytes::copy_from_slice(keys[slot]);
                remote_read::want(&mut groups, seg, Wanted { slot, key, loc });
            };
            match self.loaded() {
                Loaded::Whole(view) => {
                    for (slot, key) in keys.iter().enumerate() {
                        if let Some((seg, loc)) = view.locate(key)? {
                            want(slot, &seg, loc);
                        }
                    }
                }
                Loaded::Lazy(lazy, segments) => {
                    let locs = match lazy.lookup_many(&self.ctx, keys).await {
                        Ok(Ok(l)) => l,
                        Ok(Err(Changed)) => {
                            self.reload().await?;
                            continue;
                        }
                        // A page failing its checksum, or a range the object
                        // no longer covers, may come from an index being
                        // replaced (or a cache mixing versions): reload
                        // before calling it an error.
                        Err(e)
                            if (e.is_corruption() || matches!(e, Error::Remote { .. }))
                                && !last =>
                        {
                            self.reload().await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    for (slot, loc) in locs.into_iter().enumerate() {
                        let Some(loc) = loc else { continue };
                        let seg = segments.get(loc.segment as usize).ok_or_else(|| {
                            Error::corruption(
                                crate::INDEX_FILE_NAME,
                                0,
                                "an entry names a segment not in the table",
                            )
                        })?;
                        want(slot, seg, loc);
                    }
                }
            }
            let mut out = vec![None; keys.len()];
            if groups.is_empty() {
                return Ok(out);
            }
            match remote_read::get_many(Some(&self.ctx), groups, &mut out).await {
                Ok(()) => return Ok(out),
                Err(Error::NotFound(_)) if !last => self.reload().await?,
                Err(e) => return Err(e),
            }
        }
        Err(kept_changing())
    }

    /// Every live key (only those starting with `prefix`, if given), sorted,
    /// with its location and the segments they point into. Loads the whole
    /// index first.
    pub(crate) async fn snapshot(&self, prefix: Option<Vec<u8>>) -> Result<Snapshot> {
        self.check_open()?;
        let view = self.whole().await?;
        offload(move || Ok(view.capture(prefix.as_deref())?.sorted())).await
    }

    /// The whole index, loading it if it is read by byte ranges.
    async fn whole(&self) -> Result<Arc<View>> {
        if let Loaded::Whole(view) = self.loaded() {
            return Ok(view);
        }
        self.load_whole().await
    }

    /// Reloads the index this handle reads, the same way it was read.
    async fn reload(&self) -> Result<()> {
        match self.loaded() {
            Loaded::Lazy(..) => self.reload_lazy().await,
            Loaded::Whole(_) => self.load_whole().await.map(drop),
        }
    }

    /// Reopens the byte-range index (it changed, or a segment vanished).
    async fn reload_lazy(&self) -> Result<()> {
        let ctx = &self.ctx;
        // Retried once: the first read may be torn by a concurrent replace.
        let cache = self.page_cache();
        let lazy = match LazyIndex::open(ctx, cache.clone()).await {
            Err(e) if e.is_corruption() => LazyIndex::open(ctx, cache).await,
            other => other,
        }?
        .ok_or_else(|| ctx.no_database())?;
        self.use_lazy(lazy);
        Ok(())
    }

    /// The page cache of the byte-range index in use, if any: the next one
    /// keeps the pages of the runs it shares (FORMAT.md §10.6).
    fn page_cache(&self) -> Option<Arc<Mutex<crate::index::page_cache::PageCache>>> {
        match &*self.loaded.read() {
            Loaded::Lazy(lazy, _) => Some(lazy.cache()),
            Loaded::Whole(_) => None,
        }
    }

    /// Pages in the byte-range index's cache (0 after a full load).
    pub(crate) fn cached_pages(&self) -> usize {
        self.page_cache().map_or(0, |c| c.lock().len())
    }

    /// Switches to `lazy`, pinning its entity tag.
    fn use_lazy(&self, lazy: LazyIndex) {
        *self.etag.lock() = lazy.etag.clone();
        *self.loaded.write() = Self::lazy_view(lazy);
    }

    /// Fetches the whole remote index and switches this handle to it,
    /// pinning its entity tag.
    async fn load_whole(&self) -> Result<Arc<View>> {
        let (base, etag) = crate::sync::remote_index::fetch_index(&self.ctx, None)
            .await?
            .ok_or_else(|| self.ctx.no_database())?;
        let view = Arc::new(View::of_remote(base));
        *self.etag.lock() = etag;
        *self.loaded.write() = Loaded::Whole(view.clone());
        Ok(view)
    }

    /// Checks whether the remote index changed (a conditional GET with
    /// `If-None-Match` on its entity tag, or a HEAD after a full load) and,
    /// if so, switches to the new one. Returns whether it changed.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the remote index is gone, [`Error::Remote`].
    pub(crate) async fn refresh(&self) -> Result<bool> {
        self.check_open()?;
        let ctx = &self.ctx;
        let known = self.etag.lock().clone();
        let store = ctx.store.clone();
        if let Loaded::Lazy(..) = self.loaded() {
            let tag = known.clone();
            let answer = ctx
                .run(async move {
                    store
                        .get_prefix(
                            crate::INDEX_FILE_NAME,
                            crate::index::lazy::FIRST_READ,
                            Some(&tag),
                        )
                        .await
                })
                .await?;
            return match answer {
                Prefix::NotModified => Ok(false),
                Prefix::Missing => Err(ctx.no_database()),
                // Some servers answer 200 to a matching If-None-Match: compare tags.
                Prefix::Got { etag, .. } if etag == known => Ok(false),
                Prefix::Got { bytes, etag, total } => {
                    let cache = self.page_cache();
                    let lazy = LazyIndex::from_first_read(ctx, bytes, etag, total, cache).await?;
                    self.use_lazy(lazy);
                    Ok(true)
                }
            };
        }
        let head = ctx
            .run(async move { store.head(crate::INDEX_FILE_NAME).await })
            .await?;
        if head.is_some_and(|h| h.etag == known) {
            return Ok(false);
        }
        self.load_whole().await?;
        Ok(true)
    }

    /// Verifies the remote database: every segment is fetched whole and held
    /// in memory while it is checked like a local one (for a remote larger
    /// than memory, download it and verify the copy).
    pub(crate) async fn verify(&self) -> Result<VerifyReport> {
        let snap = self.snapshot(None).await?;
        let ctx = &self.ctx;
        let mut fetched = std::collections::HashMap::new();
        for seg in &snap.segments {
            let (store, name) = (ctx.store.clone(), seg.name());
            let n = name.clone();
            let obj = ctx.run(async move { store.get(&n).await }).await?;
            let body = obj.ok_or_else(|| {
                Error::NotFound(format!("segment {name} is missing from the remote"))
            })?;
            fetched.insert(name, body.body);
        }
        offload(move || {
            crate::engine::verify::verify_with(snap, true, |seg| {
                let body = fetched.get(&seg.name()).cloned().unwrap_or_default();
                Ok(Some(body.slice(..body.len().min(seg.len() as usize))))
            })
        })
        .await
    }
}

fn kept_changing() -> Error {
    Error::remote(
        "reading index.idx",
        None,
        "the remote index kept changing; retry later",
    )
}

//! A handle over a remote alone (no local directory): its byte-range view of
//! the remote `index.idx` (FORMAT.md §10.6), the entity tag it pinned, the
//! reload-and-retry policy when the index changes or a segment vanishes, and
//! the switch to the whole index for calls that need every key.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::lazy::LazyIndex;
use crate::io::offload::offload;
use crate::remote::ObjectStore;
use crate::report::{Stats, VerifyReport};
use crate::sync::remote_read::{self, Wanted};

/// The remote-only part of a [`crate::Db`] opened over a remote alone.
#[derive(Debug)]
pub(crate) struct RemoteReader {
    /// The read-only engine over the remote's segments: empty while the
    /// index is read by byte ranges, the whole index once it is loaded.
    engine: Arc<Engine>,
    /// The byte-range index (`None` once the whole index is loaded).
    lazy: RwLock<Option<Arc<LazyIndex>>>,
    /// The entity tag of the remote index this handle reads.
    etag: Mutex<Option<String>>,
}

impl RemoteReader {
    /// A reader over `engine` (an engine over the remote), reading the index
    /// by byte ranges through `lazy`, or whole (`lazy` `None`) at `etag`.
    pub(crate) fn new(engine: Arc<Engine>, lazy: Option<LazyIndex>, etag: String) -> Self {
        RemoteReader {
            engine,
            lazy: RwLock::new(lazy.map(Arc::new)),
            etag: Mutex::new(Some(etag)),
        }
    }

    /// Live keys, from the byte-range index's header while there is one.
    pub(crate) fn len(&self) -> u64 {
        match &*self.lazy.read() {
            Some(lazy) => lazy.header.key_count,
            None => self.engine.len(),
        }
    }

    /// Sizes and counts, from the byte-range index's header while there is one.
    pub(crate) fn stats(&self) -> Result<Stats> {
        self.engine.check_open()?;
        match &*self.lazy.read() {
            Some(lazy) => Ok(Stats {
                keys: lazy.header.key_count,
                segments: lazy.segment_table.len() as u64,
                live_bytes: lazy.header.live_bytes,
                total_bytes: lazy.segment_table.iter().map(|s| s.indexed_len).sum(),
                unindexed_changes: 0,
                index_memory_bytes: 0,
                unuploaded_segments: 0,
            }),
            None => self.engine.stats(),
        }
    }

    /// Whether `key` is present, through the byte-range index while there
    /// is one.
    pub(crate) async fn contains(&self, key: &[u8]) -> Result<bool> {
        crate::batch::check_key(key)?;
        for _ in 0..3 {
            let Some(lazy) = self.lazy() else {
                return self.engine.contains(key);
            };
            let ctx = self.engine.remote_ctx()?;
            match lazy.lookup(&ctx, key).await? {
                Ok(loc) => return Ok(loc.is_some()),
                Err(crate::index::lazy::Changed) => self.reload_lazy().await?,
            }
        }
        Err(Error::remote(
            "reading index.idx",
            None,
            "the remote index kept changing; retry later",
        ))
    }

    /// The byte-range index, while the whole index is not loaded.
    pub(crate) fn lazy(&self) -> Option<Arc<LazyIndex>> {
        self.lazy.read().clone()
    }

    /// Reopens the byte-range index (it changed, or a segment vanished).
    pub(crate) async fn reload_lazy(&self) -> Result<()> {
        let ctx = self.engine.remote_ctx()?;
        // Retried once: the first read may be torn by a concurrent replace.
        let lazy = match LazyIndex::open(&ctx).await {
            Err(e) if e.is_corruption() => LazyIndex::open(&ctx).await,
            other => other,
        }?
        .ok_or_else(|| ctx.no_database())?;
        self.use_lazy(lazy);
        Ok(())
    }

    /// Switches to `lazy`, pinning its entity tag.
    fn use_lazy(&self, lazy: LazyIndex) {
        *self.etag.lock() = Some(lazy.etag.clone());
        *self.lazy.write() = Some(Arc::new(lazy));
    }

    /// Gets through the byte-range index: the pages needed, then the records,
    /// reloading the index (at most twice) if it changed underneath.
    pub(crate) async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        let ctx = self.engine.remote_ctx()?;
        for attempt in 0..3 {
            let Some(lazy) = self.lazy() else { break };
            let locs = match lazy.lookup_many(&ctx, keys).await {
                Ok(Ok(l)) => l,
                Ok(Err(crate::index::lazy::Changed)) => {
                    self.reload_lazy().await?;
                    continue;
                }
                // A page failing its checksum, or a range the object no longer
                // covers, may come from an index being replaced (or a cache
                // mixing versions): reload before calling it an error.
                Err(e)
                    if (e.is_corruption() || matches!(e, Error::Remote { .. })) && attempt < 2 =>
                {
                    self.reload_lazy().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut groups: Vec<(Arc<crate::engine::segment::Segment>, Vec<Wanted>)> = Vec::new();
            for (slot, (key, loc)) in keys.iter().zip(locs).enumerate() {
                let Some(loc) = loc else { continue };
                let seg = lazy.segments[loc.segment as usize].clone();
                let w = Wanted {
                    slot,
                    key: Bytes::copy_from_slice(key),
                    loc,
                };
                remote_read::want(&mut groups, &seg, w);
            }
            let mut out = vec![None; keys.len()];
            if groups.is_empty() {
                return Ok(out);
            }
            match remote_read::get_many(&self.engine, groups, &mut out).await {
                Ok(()) => return Ok(out),
                // A segment gone: garbage collection after a newer commit.
                Err(Error::NotFound(_)) if attempt < 2 => self.reload_lazy().await?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::remote(
            "reading index.idx",
            None,
            "the remote index kept changing; retry later",
        ))
    }

    /// Loads the whole remote index (for calls that need every key).
    pub(crate) async fn ensure_full(&self) -> Result<()> {
        if self.lazy().is_none() {
            return Ok(());
        }
        self.load_full_index().await
    }

    /// Fetches the whole remote index and switches this handle to it,
    /// recording its entity tag and dropping any lazily read one.
    pub(crate) async fn load_full_index(&self) -> Result<()> {
        let ctx = self.engine.remote_ctx()?;
        let (base, etag) = crate::sync::remote_index::fetch_index(&ctx)
            .await?
            .ok_or_else(|| ctx.no_database())?;
        self.engine.reload_remote(base);
        *self.etag.lock() = Some(etag);
        *self.lazy.write() = None;
        Ok(())
    }

    /// For a handle over a remote alone: checks whether the remote index
    /// changed (a conditional GET with `If-None-Match` on its entity tag, or a
    /// HEAD after a full load) and, if so, switches to the new one. Returns
    /// whether it changed.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the remote index is gone, [`Error::Remote`].
    pub(crate) async fn refresh(&self) -> Result<bool> {
        let ctx = self.engine.remote_ctx()?;
        let known = self.etag.lock().clone();
        let store = ctx.store.clone();
        if self.lazy().is_some() {
            let tag = known.clone();
            let answer = ctx
                .run(async move {
                    store
                        .get_prefix(
                            crate::INDEX_FILE_NAME,
                            crate::index::lazy::FIRST_READ,
                            tag.as_deref(),
                        )
                        .await
                })
                .await?;
            return match answer {
                crate::remote::Prefix::NotModified => Ok(false),
                crate::remote::Prefix::Missing => Err(ctx.no_database()),
                // Some servers answer 200 to a matching If-None-Match: compare tags.
                crate::remote::Prefix::Got { etag, .. } if Some(&etag) == known.as_ref() => {
                    Ok(false)
                }
                crate::remote::Prefix::Got { bytes, etag, total } => {
                    let lazy = LazyIndex::from_first_read(&ctx, bytes, etag, total).await?;
                    self.use_lazy(lazy);
                    Ok(true)
                }
            };
        }
        let head = ctx
            .run(async move { store.head(crate::INDEX_FILE_NAME).await })
            .await?;
        if head.map(|h| h.etag) == known {
            return Ok(false);
        }
        self.load_full_index().await?;
        Ok(true)
    }

    /// Verify for a handle over a remote alone: every segment is fetched
    /// whole and held in memory while it is checked like a local one (for a
    /// remote larger than memory, download it and verify the copy).
    pub(crate) async fn verify(&self) -> Result<VerifyReport> {
        self.ensure_full().await?;
        let ctx = self.engine.remote_ctx()?;
        let segments = self.engine.segments();
        let mut fetched = std::collections::HashMap::new();
        for seg in segments {
            let (store, name) = (ctx.store.clone(), seg.name());
            let n = name.clone();
            let obj = ctx.run(async move { store.get(&n).await }).await?;
            let body = obj.ok_or_else(|| {
                Error::NotFound(format!("segment {name} is missing from the remote"))
            })?;
            fetched.insert(name, body.body);
        }
        let e = self.engine.clone();
        offload(move || {
            crate::engine::verify::verify_with(&e, |seg| {
                let body = fetched.get(&seg.name()).cloned().unwrap_or_default();
                Ok(body.slice(..body.len().min(seg.len() as usize)))
            })
        })
        .await
    }
}

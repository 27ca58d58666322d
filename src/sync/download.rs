//! `download`: make the local directory a copy of the remote database
//! (FORMAT.md §10.2).
//!
//! Refuses while the directory holds writes that were never uploaded,
//! unless forced. Every segment the remote index lists and the directory
//! lacks is fetched (in parallel), checked (header, every record's
//! checksum) and written atomically; then the remote index, with this
//! directory's own writer id, becomes the local index. Local segments it does
//! not list are deleted only then. A rebase and a discard fetch the same way
//! before they adopt a remote index ([`fetch_for_adoption`]).
//!
//! Opening an empty directory with a remote fetches just the index: reads
//! of segments the directory lacks go to the remote.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{INDEX_FILE_NAME, SegmentEntry};
use crate::format::remote_state::SyncState;
use crate::format::scan;
use crate::format::segment_header::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::index::layers::Layers;
use crate::io::fsutil::{atomic_write, sync_dir};
use crate::io::offload::offload;
use crate::options::setters;
use crate::remote::ObjectStore;
use crate::remote::ctx::RemoteCtx;
use crate::sync::remote_index::fetch_index;

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DownloadReport {
    /// Segments fetched.
    pub segments_downloaded: u64,
    /// Bytes of the segments fetched.
    pub segment_bytes: u64,
    /// Segments already present locally.
    pub segments_present: u64,
    /// Live keys after the download.
    pub keys: u64,
}

/// How to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Discard writes that were never uploaded, and switch a directory that
    /// syncs with another remote to this one (FORMAT.md §10.4). Default
    /// `false`: both are refused with [`crate::Error::Conflict`].
    pub force: bool,
}

setters!(DownloadOptions {
    /// Sets `force`.
    force: bool,
});

/// Checks a fetched segment: its header names it, it covers what the index
/// says, and every record up to there is valid.
pub(crate) fn check_segment(entry: &SegmentEntry, bytes: &[u8]) -> Result<()> {
    let name = entry.id.file_name();
    let header = SegmentHeader::decode(bytes)
        .map_err(|d| Error::corruption(format!("{name} (remote)"), 0, d))?;
    if header.id != entry.id {
        return Err(Error::corruption(
            format!("{name} (remote)"),
            0,
            "segment header names another segment",
        ));
    }
    let covered = bytes.get(..entry.indexed_len as usize).ok_or_else(|| {
        Error::corruption(
            format!("{name} (remote)"),
            bytes.len() as u64,
            "shorter than index.idx says",
        )
    })?;
    let scanned = scan::scan::<std::convert::Infallible>(
        covered.get(SEGMENT_HEADER_LEN..).unwrap_or_default(),
        SEGMENT_HEADER_LEN as u64,
        false,
        |_| Ok(()),
    )
    .unwrap_or_else(|e| match e {});
    if let Some(t) = scanned.tail {
        return Err(Error::corruption(
            format!("{name} (remote)"),
            t.offset,
            t.reason,
        ));
    }
    Ok(())
}

/// Whether `dir` already holds a good copy of the segment.
pub(crate) fn present(dir: &Path, entry: &SegmentEntry) -> bool {
    let path = dir.join(entry.id.file_name());
    std::fs::metadata(&path).is_ok_and(|m| m.len() >= entry.indexed_len)
        && crate::engine::files::read_header(&path).is_ok_and(|h| h.is_ok_and(|h| h.id == entry.id))
}

pub(crate) async fn download(
    engine: &Arc<Engine>,
    opts: DownloadOptions,
) -> Result<DownloadReport> {
    let force = opts.force;
    let ctx = engine.remote_ctx()?;
    engine.check_writable()?;
    let _sync = engine.sync_lock().lock().await;
    let describe = ctx.url.describe();
    if let Some(own) = SyncState::load(engine.dir())?
        && own.remote != describe
        && !force
    {
        return Err(Error::Conflict(format!(
            "this directory syncs with {}; downloading from {describe} would replace its contents with that remote's: download with force (CLI: download --force) to switch it, or use another directory",
            own.remote
        )));
    }
    let state = SyncState::load_or_new(engine.dir(), &describe)?;
    let refuse = |n: usize| {
        Error::Conflict(format!(
            "{n} local segment(s) hold writes that were never uploaded; upload them first, or download with force to discard them (CLI: download --force)"
        ))
    };
    if !force {
        let unsynced = engine.unsynced_segments(&state.segments);
        if !unsynced.is_empty() {
            return Err(refuse(unsynced.len()));
        }
    }
    let (remote, etag) = fetch_index(&ctx, Some(engine.dir()))
        .await?
        .ok_or_else(|| ctx.no_database())?;
    let mut report = DownloadReport::default();
    let fetched = fetch_for_adoption(engine, &ctx, &remote).await?;
    report.segments_present = fetched.present;
    report.segments_downloaded = fetched.segments;
    report.segment_bytes = fetched.bytes;

    let e = engine.clone();
    let table = remote.segments().iter().map(|s| s.id).collect();
    let synced_state =
        SyncState::synced(&ctx.url.describe(), etag, table, state.conditions).of_index(&remote);
    let synced = state.segments.clone();
    let keys = offload(move || {
        let mut w = e.writer();
        if !force && !e.unsynced_segments(&synced).is_empty() {
            return Err(Error::Conflict(
                "writes were made during the download; nothing was changed".into(),
            ));
        }
        e.seal_active(&mut w)?;
        let mut meta = remote.meta();
        meta.writer_id = e.writer_id();
        // Every local segment the remote does not list is below this number,
        // so recovery deletes it as obsolete.
        meta.next_segment_number = meta.next_segment_number.max(w.next_number);
        let adopted = remote.with_meta(meta);
        e.adopt_index(&mut w, adopted)?;
        Ok(e.len())
    })
    .await?;
    synced_state.save_as_own(engine.dir())?;
    report.keys = keys;
    Ok(report)
}

/// What [`fetch_for_adoption`] did.
pub(crate) struct Fetched {
    /// Segments fetched.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Segments the directory already held.
    pub present: u64,
}

/// Fetches every segment `remote` lists that the directory lacks, each
/// checked and durable (fsync, rename), before `remote` is adopted as the
/// local index (a download, a rebase, a discard; FORMAT.md §10.2, §10.3).
///
/// Until the adoption, `index.idx` does not list the fetched segments. So
/// that a crash in between leaves the directory as it was, the local
/// index's next segment number is first raised above every fetched
/// segment's number (and made durable): a reopen then deletes them as
/// obsolete (FORMAT.md §6.1) instead of replaying another writer's
/// segments as this directory's own writes.
pub(crate) async fn fetch_for_adoption(
    engine: &Arc<Engine>,
    ctx: &RemoteCtx,
    remote: &Layers,
) -> Result<Fetched> {
    let dir = engine.dir().to_path_buf();
    let wanted: Vec<SegmentEntry> = remote
        .segments()
        .iter()
        .filter(|e| !present(&dir, e))
        .copied()
        .collect();
    let present = (remote.segments().len() - wanted.len()) as u64;
    if wanted.is_empty() {
        return Ok(Fetched {
            segments: 0,
            bytes: 0,
            present,
        });
    }
    let above = wanted
        .iter()
        .map(|e| e.id.number.saturating_add(1))
        .fold(remote.next_segment_number(), u64::max);
    let e = engine.clone();
    offload(move || {
        let mut w = e.writer();
        if w.next_number < above {
            w.next_number = above;
            e.checkpoint_locked(&mut w)?;
        }
        Ok(())
    })
    .await?;
    let segments = wanted.len() as u64;
    let bytes = fetch_segments(ctx, &dir, wanted, check_segment).await?;
    Ok(Fetched {
        segments,
        bytes,
        present,
    })
}

/// Fetches segments in parallel into `dir`, each written atomically once
/// `check` accepts it; returns the bytes fetched.
pub(crate) async fn fetch_segments(
    ctx: &RemoteCtx,
    dir: &Path,
    wanted: Vec<SegmentEntry>,
    check: fn(&SegmentEntry, &[u8]) -> Result<()>,
) -> Result<u64> {
    let store = ctx.store.clone();
    let parallel = ctx.opts.parallelism;
    let dir = dir.to_path_buf();
    ctx.run(async move {
        let results: Vec<Result<u64>> = futures::stream::iter(wanted)
            .map(|entry| {
                let (store, dir) = (store.clone(), dir.clone());
                async move {
                    let name = entry.id.file_name();
                    let obj = store.get(&name).await?.ok_or_else(|| {
                        Error::NotFound(format!(
                            "segment {name} listed in the remote index is missing from the remote"
                        ))
                    })?;
                    let body: Bytes = obj.body;
                    let n = body.len() as u64;
                    offload(move || {
                        check(&entry, &body)?;
                        atomic_write(&dir, &name, &body)
                    })
                    .await?;
                    Ok(n)
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        results.into_iter().sum()
    })
    .await
}

/// Fetches every segment the local index lists but only the remote holds,
/// so that maintenance (compaction, rebuild) can read all records; with no
/// remote attached that is [`Error::OnRemote`].
pub(crate) async fn hydrate(engine: &Arc<Engine>) -> Result<u64> {
    let missing: Vec<SegmentEntry> = {
        engine
            .segments()
            .iter()
            .filter(|s| !s.is_local())
            .map(|s| SegmentEntry {
                id: s.id(),
                indexed_len: s.len(),
                flags: crate::format::index_file::SEGTAB_SEALED,
            })
            .collect()
    };
    let Some(first) = missing.first() else {
        return Ok(0);
    };
    let ctx = engine.remote().cloned().ok_or_else(|| {
        Error::on_remote(format!(
            "{} segment(s) this reads are on the remote (such as {})",
            missing.len(),
            first.id.file_name()
        ))
    })?;
    let _sync = engine.sync_lock().lock().await;
    let n = missing.len() as u64;
    fetch_segments(&ctx, engine.dir(), missing, check_segment).await?;
    let e = engine.clone();
    offload(move || {
        let mut w = e.writer();
        e.seal_active(&mut w)?;
        e.checkpoint_locked(&mut w)?;
        let base = e.base_index();
        let own = base.with_meta(base.meta());
        e.adopt_index(&mut w, own)
    })
    .await?;
    Ok(n)
}

/// For a directory with no database: fetches the remote index (not the
/// segments) and makes it the directory's own. Returns `false` if the remote
/// holds no database either.
pub(crate) async fn fetch_index_only(ctx: &RemoteCtx, dir: &Path, writer_id: u64) -> Result<bool> {
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let Some((remote, etag)) = fetch_index(ctx, Some(dir)).await? else {
        return Ok(false);
    };
    let mut meta = remote.meta();
    meta.writer_id = writer_id;
    let table = remote.segments().iter().map(|s| s.id).collect();
    let own = remote.own_root_bytes(meta)?;
    atomic_write(dir, INDEX_FILE_NAME, &own)?;
    SyncState::synced(&ctx.url.describe(), etag, table, None)
        .of_index(&remote)
        .reading_through(true)
        .save(dir)?;
    sync_dir(dir)?;
    Ok(true)
}

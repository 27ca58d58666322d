//! `restore`: bring back a database whose remote `index.idx` was lost, from
//! the segment objects still under its prefix (FORMAT.md §10.2, §6.3).
//!
//! 1. The remote must have no `index.idx` (one that has is downloaded,
//!    not restored), and the directory must hold no key, unless it holds
//!    `restore.pending`: a restore that stopped part way, which this one
//!    finishes. `restore.pending` is written (and fsynced) before the first
//!    segment is fetched; while it is there, an upload refuses, so that a
//!    part of the database never gets committed as the whole.
//! 2. Every segment object under the prefix that no staged shard's manifest
//!    names is fetched into the directory as it is: damage is left for the
//!    rebuild to find and report, so every record whose checksum is good is
//!    kept.
//! 3. The index is rebuilt from the directory's segments (§6.3: a complete
//!    full compaction run supersedes the segments below it).
//! 4. The directory remembers those segments as the remote's, with no entity
//!    tag: the next upload sends none of them again, commits with
//!    `If-None-Match: *`, and puts the ones the rebuild superseded in the
//!    obsolete table, for `gc`. Then `restore.pending` is removed.
//!
//! Nothing remote is written. A restore that stops part way leaves the
//! remote as it was; running it again in the same directory finishes it. A
//! listing cannot tell a committed segment from one whose upload never
//! committed (and that `gc` has not deleted yet): both are restored.

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::format::index_file::{INDEX_FILE_NAME, SegmentEntry};
use crate::format::remote_state::SyncState;
use crate::io::fsutil::{atomic_write, sync_dir};
use crate::io::offload::offload;
use crate::remote::ObjectStore;
use crate::report::RebuildReport;
use crate::sync::download::{fetch_segments, present};
use crate::sync::unindexed::{listing, unindexed_segments};

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Segment objects fetched.
    pub segments_downloaded: u64,
    /// Their bytes.
    pub segment_bytes: u64,
    /// Segment objects the directory already held.
    pub segments_present: u64,
    /// What the rebuild from the segments found (keys, superseded
    /// segments, damaged ranges skipped).
    pub rebuild: RebuildReport,
}

/// The marker of a restore in progress, in the database directory.
pub(crate) const RESTORE_MARKER: &str = "restore.pending";

/// Refuses to publish a directory whose restore stopped part way: its
/// segments are a part of the database, and committing them as the whole
/// would leave the rest for `gc`.
///
/// # Errors
/// [`Error::Conflict`] while `restore.pending` is in `dir`.
pub(crate) fn ensure_no_restore_pending(dir: &std::path::Path) -> Result<()> {
    if dir.join(RESTORE_MARKER).exists() {
        return Err(Error::Conflict(format!(
            "a restore into this directory stopped part way ({RESTORE_MARKER} is there): restore again to finish it (CLI: restore) before uploading"
        )));
    }
    Ok(())
}

pub(crate) async fn restore(engine: &Arc<Engine>) -> Result<RestoreReport> {
    let ctx = engine.remote_ctx()?;
    ctx.ensure_writable("restore from")?;
    engine.check_writable()?;
    let _sync = engine.sync_lock().lock().await;
    let describe = ctx.url.describe();
    let store = ctx.store.clone();
    if ctx
        .run(async move { store.head(INDEX_FILE_NAME).await })
        .await?
        .is_some()
    {
        return Err(Error::InvalidArgument(format!(
            "{describe} has an index.idx: download it instead of restoring it (CLI: download)"
        )));
    }
    let resuming = engine.dir().join(RESTORE_MARKER).exists();
    if engine.len() != 0 && !resuming {
        return Err(Error::InvalidArgument(format!(
            "this directory holds {} key(s); restore into an empty directory",
            engine.len()
        )));
    }
    let found = unindexed_segments(&ctx, &listing(&ctx).await?).await?;
    if found.is_empty() {
        return Err(Error::NotFound(format!(
            "{describe} has no index.idx and no segment to restore from"
        )));
    }
    let dir = engine.dir().to_path_buf();
    atomic_write(&dir, RESTORE_MARKER, format!("{describe}\n").as_bytes())?;
    let entries: Vec<SegmentEntry> = found
        .iter()
        .map(|&(id, size)| SegmentEntry {
            id,
            indexed_len: size,
            flags: 0,
        })
        .collect();
    let (have, wanted): (Vec<SegmentEntry>, Vec<SegmentEntry>) =
        entries.iter().partition(|e| present(&dir, e));
    let mut report = RestoreReport {
        segments_downloaded: wanted.len() as u64,
        segments_present: have.len() as u64,
        ..RestoreReport::default()
    };
    // As stored: the rebuild checks every record and reports damage.
    report.segment_bytes = fetch_segments(&ctx, &dir, wanted, |_, _| Ok(())).await?;
    let e = engine.clone();
    report.rebuild = offload(move || e.rebuild_index()).await?;
    let mut state = SyncState::load_or_new(engine.dir(), &describe)?;
    state.forget_uploads();
    state.segments = entries.iter().map(|e| e.id).collect();
    state.save(engine.dir())?;
    let marker = dir.join(RESTORE_MARKER);
    std::fs::remove_file(&marker).ctx(|| format!("removing {}", marker.display()))?;
    sync_dir(&dir)?;
    Ok(report)
}
